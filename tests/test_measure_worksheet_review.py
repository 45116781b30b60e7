"""A signed review includes the vascular worksheet of the study's measurement SRs (issue 15).

How the files were made
-----------------------
* Image: the synthetic PW Doppler image of :mod:`test_measurements` (a pydicom copy of the corpus
  Siemens S2000 image in tmp_path, a spectral Doppler region added and a known spectrum drawn in:
  PSV 100 cm/s, EDV 20 cm/s).
* Measurement SRs: our code (``workflows.measurement_files``), computed from that image's region and
  saved in the test's own store; then amended (the ICA PSV caliper 10 rows higher: 105 cm/s).
* Review: a second opinion about that study, signed with ``workflows.reviews.sign`` (the path the
  window's sign-off takes), checked with DCMTK ``dsrdump`` and dicom3tools ``dciodvfy``.
"""

from __future__ import annotations

import pydicom
import pytest

from mdtviewer.cli.sr import main as sr_main
from mdtviewer.sr.model import Person, Review, Verifier
from mdtviewer.workflows import measurement_files as mf
from mdtviewer.workflows import reviews
from mdtviewer.workflows import worksheet as wsheet
from sr_helpers import dciodvfy_errors, dsrdump
from test_measurements import CYCLE, DT, EDV, PSV, make_doppler_image, row_of

pytestmark = [pytest.mark.dcmtk, pytest.mark.filterwarnings("ignore::UserWarning")]

C_PEAK = CYCLE + int(round(0.08 / DT))
C_END = 2 * CYCLE - 1


def _review(study: str, uid: str, signed: bool) -> Review:
    return Review(kind="second-opinion", author=Person("Åse Ødegård", "second-reader", "Vascular Lab"),
                  study_instance_uid=study, summary="Agree: 50-69 % right ICA stenosis.", agreement="agree",
                  peer_review_score="1",
                  verifier=Verifier("Åse Ødegård", "Vascular Lab", "20261205101500+0000") if signed else None)


def test_signed_review_includes_the_latest_worksheet_and_references_its_report(tmp_path, capsys):
    folder = tmp_path / "study"
    folder.mkdir()
    path = make_doppler_image(folder)
    head = pydicom.dcmread(path, stop_before_pixels=True)
    uid, study = str(head.SOPInstanceUID), str(head.StudyInstanceUID)
    headers = {uid: head}
    reqs = [
        {"sop_instance_uid": uid, "type": "psv", "points": [[C_PEAK, row_of(PSV)]], "site": "ICA", "side": "right"},
        {"sop_instance_uid": uid, "type": "edv", "points": [[C_END, row_of(EDV)]], "site": "ICA", "side": "right"},
        {"sop_instance_uid": uid, "type": "psv", "points": [[C_PEAK, row_of(40)]], "site": "CCA", "side": "right"},
        {"sop_instance_uid": uid, "type": "distance", "points": [[300, 100], [600, 380]]},
    ]
    measured, ops = mf.compute(mf.parse_requests(reqs), headers.__getitem__, {uid: path}.__getitem__)
    first = mf.save(measured, [head], "Åse Ødegård", operands=ops)  # into the store, as the window saves
    moved = [dict(reqs[0], points=[[C_PEAK, row_of(PSV) - 10]])] + reqs[1:]
    measured2, ops2 = mf.compute(mf.parse_requests(moved), headers.__getitem__, {uid: path}.__getitem__)
    second = mf.amend(first, measured2, [head], "Åse Ødegård", operands=ops2)
    current = wsheet.study_reports(study)
    assert [str(d.SOPInstanceUID) for d in current] == [str(pydicom.dcmread(second).SOPInstanceUID)]

    # a draft has no worksheet; the signed review has it
    draft = reviews.save_draft(_review(study, uid, signed=False), [head], folder=tmp_path / "out")
    assert wsheet.read_worksheet_lines(pydicom.dcmread(draft)) == ([], [])
    signed = reviews.sign(_review(study, uid, signed=False), Verifier("Åse Ødegård", "Vascular Lab"), [head],
                          folder=tmp_path / "out")
    dsrdump(signed)
    assert dciodvfy_errors(signed) == []
    ds = pydicom.dcmread(signed)
    assert ds.VerificationFlag == "VERIFIED"
    refs, lines = wsheet.read_worksheet_lines(ds)
    assert refs == [str(pydicom.dcmread(second).SOPInstanceUID)]  # the latest version only
    row = next(line for line in lines if line.startswith("right Internal carotid artery:"))
    assert "PSV 105 cm/s" in row and "EDV 20 cm/s" in row, row
    assert any(line.startswith("Right ICA stenosis (") and "PSV 105 cm/s" in line for line in lines), lines
    assert any(line.startswith("Distance: ") for line in lines)  # a value without a vessel too
    evidence = [s.ReferencedSOPInstanceUID for st in ds.PertinentOtherEvidenceSequence
                for se in st.ReferencedSeriesSequence for s in se.ReferencedSOPSequence]
    assert refs[0] in evidence
    # sr show prints it with the review
    capsys.readouterr()
    assert sr_main(["show", str(signed)]) == 0
    out = capsys.readouterr().out
    assert "Vascular worksheet" in out and "PSV 105 cm/s" in out and "Measurement report" in out


def test_no_measurement_reports_no_worksheet(tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    head = pydicom.dcmread(make_doppler_image(folder), stop_before_pixels=True)
    signed = reviews.sign(_review(str(head.StudyInstanceUID), str(head.SOPInstanceUID), False),
                          Verifier("Åse Ødegård", "Vascular Lab"), [head], folder=tmp_path / "out")
    ds = pydicom.dcmread(signed)
    assert wsheet.read_worksheet_lines(ds) == ([], []) and "PertinentOtherEvidenceSequence" not in ds


def test_sr_write_signed_review_with_measurements_includes_their_worksheet(tmp_path, capsys):
    import json

    from sr_helpers import sign_as

    folder = tmp_path / "study"
    folder.mkdir()
    head = pydicom.dcmread(make_doppler_image(folder), stop_before_pixels=True)
    uid = str(head.SOPInstanceUID)
    sign_as("Åse Ødegård", "Vascular Lab", role="second-reader")
    data = {"kind": "second-opinion", "author": {"name": "Åse Ødegård", "role": "second-reader"},
            "verifier": {"name": "Åse Ødegård"}, "graded_report": None, "agreement": "agree", "summary": "Agree.",
            "measurements": [{"sop_instance_uid": uid, "type": "psv", "points": [[C_PEAK, row_of(PSV)]],
                              "site": "ICA", "side": "left"}]}
    js = tmp_path / "r.json"
    js.write_text(json.dumps(data), encoding="utf-8")
    capsys.readouterr()
    rc = sr_main(["write", "--review", str(js), "--study", str(folder), "--out", str(tmp_path / "review.dcm")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    review, measurements = (tmp_path / "review.dcm"), (tmp_path / "review_measurements.dcm")
    assert out.split() == [str(review), str(measurements)]
    dsrdump(review)
    assert dciodvfy_errors(review) == []
    refs, lines = wsheet.read_worksheet_lines(pydicom.dcmread(review))
    assert refs == [str(pydicom.dcmread(measurements).SOPInstanceUID)]
    assert any(line.startswith("left Internal carotid artery: PSV 100 cm/s") for line in lines), lines
