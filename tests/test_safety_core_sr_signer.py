"""HAZ-024: `sr write` signs as the reviewer profile of this computer account, never as a name in the JSON.

Real corpus studies (the GE LOGIQ 700 files, symlinked), the real command line, the written SR read back
with pydicom and dcmtk's dsrdump.
"""

from __future__ import annotations

import json
import time

import pydicom
import pytest

from mdtviewer.cli import main as cli_main
from mdtviewer.infra import audit
from mdtviewer.workflows import reviewer_profile
from sr_helpers import GE_FILES, dsrdump, uid

ADA = reviewer_profile.ReviewerProfile("Okafor^Ada", "second-reader", "HCPC CS054321", "Northfield Vascular Lab")


@pytest.fixture
def study(tmp_path):
    d = tmp_path / "study"
    d.mkdir()
    for p in GE_FILES:
        (d / p.name).symlink_to(p)
    return d


def _review(verifier=None):
    d = {"kind": "second-opinion", "author": {"name": "Okafor^Ada", "role": "second-reader"},
         "agreement": "agree", "summary": "Agree.", "images": [{"sop_instance_uid": uid(GE_FILES[0])}]}
    if verifier is not None:
        d["verifier"] = verifier
    return d


def _write(tmp_path, study, capsys, data, name="r"):
    js = tmp_path / f"{name}.json"
    js.write_text(json.dumps(data), encoding="utf-8")
    out = tmp_path / f"{name}.dcm"
    rc = cli_main(["sr", "write", "--review", str(js), "--study", str(study), "--out", str(out)])
    o, err = capsys.readouterr()
    return rc, o, err, out


def test_without_a_profile_nothing_is_signed_but_a_draft_is_written(tmp_path, study, capsys):
    assert reviewer_profile.load() is None
    rc, out, err, f = _write(tmp_path, study, capsys, _review({"name": "Okafor^Ada", "organization": "Lab"}))
    assert rc == 1 and out == "" and not f.exists()
    assert len(err.strip().splitlines()) == 1 and "no reviewer profile on this computer account" in err
    rc, out, err, f = _write(tmp_path, study, capsys, _review(), name="draft")
    assert rc == 0 and pydicom.dcmread(f).VerificationFlag == "UNVERIFIED"
    # an incomplete profile (no registration for a second reader) cannot sign either
    reviewer_profile.save(reviewer_profile.ReviewerProfile("Okafor^Ada", "second-reader", "", "Lab"))
    rc, out, err, f = _write(tmp_path, study, capsys, _review({}), name="incomplete")
    assert rc == 1 and "lacks professional registration" in err and not f.exists()


def test_a_json_cannot_sign_in_someone_elses_name(tmp_path, study, capsys):
    reviewer_profile.save(ADA)
    rc, out, err, f = _write(tmp_path, study, capsys, _review({"name": "Reader^Rita", "organization": "Lab"}))
    assert rc == 1 and out == "" and not f.exists()
    assert "names 'Reader^Rita' as verifier" in err and "'Okafor^Ada'" in err
    assert len(err.strip().splitlines()) == 1


def test_the_profile_signs_with_its_organisation_registration_and_the_time_of_writing(tmp_path, study, capsys):
    reviewer_profile.save(ADA)
    before = time.strftime("%Y%m%d%H%M%S")
    # the same person however the JSON spells the name; its organisation and a backdated time are ignored
    data = _review({"name": "ADA OKAFOR", "organization": "Elsewhere", "datetime": "20000101120000"})
    data["graded_report"] = None  # signed recording that no report was graded (QA2 13)
    rc, out, err, f = _write(tmp_path, study, capsys, data)
    assert rc == 0, err
    ds = pydicom.dcmread(f)
    vo = ds.VerifyingObserverSequence[0]
    assert ds.VerificationFlag == "VERIFIED"
    assert (str(vo.VerifyingObserverName), str(vo.VerifyingOrganization)) == ("Okafor^Ada", "Northfield Vascular Lab")
    assert vo.VerifyingObserverIdentificationCodeSequence[0].CodeValue == "HCPC CS054321"
    assert vo.VerificationDateTime[:14] >= before  # now, not 2000
    assert vo.VerificationDateTime[:14] >= f"{ds.ContentDate}{str(ds.ContentTime).split('.')[0]}"
    assert "Okafor^Ada" in dsrdump(f)
    # an empty verifier object signs as the profile too; the audit keeps the computer account, not the name
    rc, out, err, f2 = _write(tmp_path, study, capsys, {**_review({}), "graded_report": None}, name="r2")
    assert rc == 0 and str(pydicom.dcmread(f2).VerifyingObserverSequence[0].VerifyingObserverName) == "Okafor^Ada"
    signed = [e for e in audit.read_records() if e.get("event") == "sr-signed"]
    assert len(signed) == 2 and all(e["detail"]["os_account"] == reviewer_profile.os_account() for e in signed)
    assert "Okafor" not in json.dumps(signed)
