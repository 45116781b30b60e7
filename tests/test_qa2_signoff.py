"""QA2 5 and 13 on the command line, on corpus files: who may sign a trainee's competence, and a signed
second opinion names the report it grades (or says, explicitly, that it grades none).

- A preceptorship outcome is signed only by a reviewer profile whose role is trainer: `sr write` with a
  "Second reader" profile refuses in one line naming the role needed (exit 1, nothing written); with a trainer
  profile it signs, and the SR records the signer as a person observer in the trainer role.
- A signed second opinion without ``graded_report`` is refused; ``"graded_report": null`` signs and the SR
  records "No report graded".
"""

from __future__ import annotations

import json
from pathlib import Path

import pydicom

from conftest import TESTDATA
from mdtviewer.cli import main as cli_main
from mdtviewer.sr import codes
from mdtviewer.sr.review_reader import review_from_sr
from mdtviewer.workflows import reviewer_profile
from sr_helpers import dciodvfy_errors, dsrdump, sign_as

SIEMENS = TESTDATA / "us_siemens_s2000_rgb_explicit_le.dcm"
SOP = str(pydicom.dcmread(SIEMENS, stop_before_pixels=True).SOPInstanceUID)

#: the tester's ta_signed.json: a trainee's own preceptorship, outcome competent, asked to be signed
TRAINEE_SIGNED = {"kind": "preceptorship", "author": {"name": "Trainee^Tom", "role": "trainee"}, "verifier": {},
                  "protocol": "carotid-duplex", "outcome": "competent", "summary": "x",
                  "images": [{"sop_instance_uid": SOP, "quality": "good"}]}
#: the tester's so.json: a signed second opinion naming no report
SECOND = {"kind": "second-opinion", "author": {"name": "Okafor^Ada", "role": "second-reader"},
          "verifier": {"name": "Ada Okafor"}, "agreement": "minor-discrepancy",
          "agreement_reason": "ICA PSV under-called", "peer_review_score": "2a", "reporter": "Smith^John",
          "summary": "Agree with plaque, grade differs.",
          "images": [{"sop_instance_uid": SOP, "quality": "good", "comment": "fine"}]}


def _write(tmp_path: Path, capsys, data: dict, name: str) -> tuple[int, str, str, Path]:
    js = tmp_path / f"{name}.json"
    js.write_text(json.dumps(data), encoding="utf-8")
    out = tmp_path / "out" / f"{name}.dcm"
    out.parent.mkdir(exist_ok=True)
    capsys.readouterr()
    rc = cli_main(["sr", "write", "--review", str(js), "--study", str(SIEMENS), "--out", str(out)])
    o, e = capsys.readouterr()
    return rc, o, e, out


def test_a_second_reader_profile_cannot_sign_a_trainees_competence(tmp_path, capsys):
    sign_as("Okafor^Ada", "Northfield Vascular Lab", role="second-reader")
    rc, out, err, f = _write(tmp_path, capsys, TRAINEE_SIGNED, "ta_signed")
    assert rc == 1 and out == "" and not f.exists()
    assert len(err.strip().splitlines()) == 1, err
    assert "signed only by a Trainer (preceptor)" in err and "Second reader" in err
    # a reporting scientist or the trainee cannot either; a draft (no verifier) is still written by anyone
    for role in ("reporting-scientist", "trainee"):
        sign_as("Okafor^Ada", "Northfield Vascular Lab", role=role)
        rc, out, err, f = _write(tmp_path, capsys, TRAINEE_SIGNED, f"ta_{role}")
        assert rc == 1 and "signed only by a Trainer (preceptor)" in err and not f.exists()
    draft = {k: v for k, v in TRAINEE_SIGNED.items() if k != "verifier"}
    rc, out, err, f = _write(tmp_path, capsys, draft, "draft")
    assert rc == 0 and pydicom.dcmread(f).VerificationFlag == "UNVERIFIED"
    # the logbook counts nothing as signed
    capsys.readouterr()
    assert cli_main(["logbook", "--folder", str(tmp_path / "out"), "--json"]) == 0
    (log,) = json.loads(capsys.readouterr().out)
    assert (log["trainee"], log["reviews"], log["signed"]) == ("Trainee^Tom", 1, 0)
    assert log["by_protocol"]["carotid-duplex"]["competent"] == 0


def test_a_trainer_profile_signs_and_is_recorded_as_the_trainer(tmp_path, capsys):
    sign_as("Okafor^Ada", "Northfield Vascular Lab", role="trainer")
    rc, out, err, f = _write(tmp_path, capsys, TRAINEE_SIGNED, "ta_signed")
    assert rc == 0, err
    ds = pydicom.dcmread(f)
    assert ds.VerificationFlag == "VERIFIED"
    r = review_from_sr(f)
    assert r.author.name == "Trainee^Tom" and r.trainee == r.author
    assert r.verifier is not None and (r.verifier.name, r.verifier.role) == ("Okafor^Ada", "trainer")
    dump = dsrdump(f)
    assert "Trainer (preceptor)" in dump and "Okafor^Ada" in dump
    assert dciodvfy_errors(f) == []
    capsys.readouterr()
    assert cli_main(["logbook", "--folder", str(tmp_path / "out"), "--json"]) == 0
    (log,) = json.loads(capsys.readouterr().out)
    assert (log["reviews"], log["signed"], log["signed_not_by_trainer"], log["notes"]) == (1, 1, 0, [])
    assert log["by_protocol"]["carotid-duplex"]["competent"] == 1


def test_sr_write_refuses_a_signed_second_opinion_naming_no_report(tmp_path, capsys):
    sign_as("Okafor^Ada", "Northfield Vascular Lab", role="second-reader")
    rc, out, err, f = _write(tmp_path, capsys, SECOND, "so")
    assert rc == 1 and out == "" and not f.exists()
    assert len(err.strip().splitlines()) == 1 and "names the report it grades" in err
    assert '"graded_report": null' in err
    # said explicitly: signed, and the SR records that no report was graded
    rc, out, err, f = _write(tmp_path, capsys, {**SECOND, "graded_report": None}, "so_none")
    assert rc == 0, err
    r = review_from_sr(f)
    assert r.signed and r.no_report_graded and r.graded_report_uid is None
    assert '"No report graded")="Signed without naming the r' in dsrdump(f)
    assert any(it.ConceptNameCodeSequence[0].CodeValue == codes.NO_GRADED_REPORT.value
               for c in pydicom.dcmread(f).ContentSequence for it in c.get("ContentSequence", []))
    assert dciodvfy_errors(f) == []
    # a draft needs no report yet; an unsigned request is not refused
    draft = {k: v for k, v in SECOND.items() if k != "verifier"}
    rc, out, err, f = _write(tmp_path, capsys, draft, "so_draft")
    assert rc == 0 and not review_from_sr(f).no_report_graded


def test_a_second_opinion_grading_a_report_in_the_study_signs(tmp_path, capsys):
    """The graded report named by its SOP Instance UID (an SR in --study) is referenced, no 'none' item."""
    study = tmp_path / "study"
    study.mkdir()
    (study / "img.dcm").symlink_to(SIEMENS)
    sign_as("Reporter^Rita", "Northfield Vascular Lab", role="reporting-scientist")
    base = {k: v for k, v in SECOND.items() if k not in ("verifier", "agreement", "agreement_reason",
                                                         "peer_review_score")}
    js = tmp_path / "report.json"
    js.write_text(json.dumps({**base, "author": {"name": "Reporter^Rita", "role": "reporting-scientist"},
                              "verifier": {}, "agreement": "agree", "graded_report": None}), encoding="utf-8")
    assert cli_main(["sr", "write", "--review", str(js), "--study", str(study), "--out",
                     str(study / "report.dcm")]) == 0
    graded = str(pydicom.dcmread(study / "report.dcm").SOPInstanceUID)
    sign_as("Okafor^Ada", "Northfield Vascular Lab", role="second-reader")
    js2 = tmp_path / "so.json"
    js2.write_text(json.dumps({**SECOND, "graded_report": graded}), encoding="utf-8")
    out = tmp_path / "so.dcm"
    assert cli_main(["sr", "write", "--review", str(js2), "--study", str(study), "--out", str(out)]) == 0
    r = review_from_sr(out)
    assert r.graded_report_uid == graded and not r.no_report_graded
    assert "No report graded" not in dsrdump(out)


def test_profile_refusal_names_the_role_needed():
    p = reviewer_profile.ReviewerProfile("Okafor^Ada", "second-reader", "HCPC 1", "Lab")
    assert "Trainer (preceptor)" in p.refusal("preceptorship") and "Second reader" in p.refusal("preceptorship")
    assert p.refusal("second-opinion") == ""
    assert reviewer_profile.ReviewerProfile("Okafor^Ada", "trainer", "HCPC 1", "Lab").refusal("preceptorship") == ""


def test_a_trainee_declaring_the_trainer_role_cannot_sign_off_their_own_competence(tmp_path, capsys, monkeypatch):
    """HAZ-030 C5: the trainer role is self-declared in the profile; a trainee who declares it ("Tom Trainee" is
    the record's Trainee^Tom) is refused in one line, nothing written.  A file signed that way before this
    control (written here with the check switched off) counts as unsigned in the logbook, with its note."""
    sign_as("Tom Trainee", "Northfield Vascular Lab", role="trainer")
    rc, out, err, f = _write(tmp_path, capsys, TRAINEE_SIGNED, "self_signed")
    assert rc == 1 and out == "" and not f.exists()
    assert len(err.strip().splitlines()) == 1, err
    assert "does not sign off their own preceptorship" in err
    # another trainer signs the same record
    sign_as("Okafor^Ada", "Northfield Vascular Lab", role="trainer")
    rc, out, err, f = _write(tmp_path, capsys, TRAINEE_SIGNED, "trainer_signed")
    assert rc == 0, err
    # an older file: signed by the trainee in the trainer role before the control existed
    from mdtviewer.workflows import reviews

    sign_as("Tom Trainee", "Northfield Vascular Lab", role="trainer")
    monkeypatch.setattr(reviews, "check_signer", lambda review, verifier: None)
    rc, out, err, old = _write(tmp_path, capsys, TRAINEE_SIGNED, "older")
    assert rc == 0, err
    r = review_from_sr(old)
    assert r.verifier is not None and (r.verifier.name, r.verifier.role) == ("Tom Trainee", "trainer")
    (old.parent / "trainer_signed.dcm").unlink()
    capsys.readouterr()
    assert cli_main(["logbook", "--folder", str(tmp_path / "out"), "--json"]) == 0
    (log,) = json.loads(capsys.readouterr().out)
    assert (log["reviews"], log["signed"], log["signed_not_by_trainer"]) == (1, 0, 1)
    assert log["by_protocol"]["carotid-duplex"]["competent"] == 0
    assert "or by the trainee they assess" in log["notes"][0]


def test_a_middle_name_or_initial_does_not_make_the_trainee_someone_else(tmp_path, capsys):
    """QA3 1: profile "Lee^Ann" (trainer) signed a preceptorship of "Lee^Ann^M": the same person with an initial.
    Any form of the trainee's name, with a middle name, initial or suffix added on either side, is refused;
    another trainer, and a trainee sharing only one name with the signer, are not."""
    refuse = [("Lee^Ann^M", "Lee^Ann"), ("Lee^Ann", "Lee^Ann^Marie"), ("Ann M. Lee", "Lee^Ann"),
              ("LEE^ANN^^Dr", "Ann Lee"), ("Lee^Ann", "lee, ann")]
    for trainee, signer in refuse:
        assert reviewer_profile.self_sign_off(trainee, signer), (trainee, signer)
    for trainee, signer in [("Lee^Ann", "Okafor^Ada"), ("Lee^Ann", "Lee^Tom"), ("Lee^Ann", "Ann^Smith^J")]:
        assert reviewer_profile.self_sign_off(trainee, signer) == "", (trainee, signer)
    sign_as("Lee^Ann", "Northfield Vascular Lab", role="trainer")
    data = {**TRAINEE_SIGNED, "author": {"name": "Lee^Ann^M", "role": "trainee"}}
    rc, out, err, f = _write(tmp_path, capsys, data, "initial")
    assert rc == 1 and not f.exists() and "does not sign off their own preceptorship" in err
