"""QA2 5, 11 and 17 in the logbook, on reviews of a corpus study written with `mdtviewer sr write` (and,
for files written before the signer's role was recorded, with the review API as the old code wrote them):

- an outcome counts only when a trainer signed it; one signed by anyone else (older files: the signer is
  not among the document's observers, or is the trainee) counts as unsigned, with a note (JSON, text, CSV, PDF);
- the CSV's trainer column is the trainer only: the trainer who signed, or a trainer who wrote the draft;
  empty for a trainee's own draft (the tester's pre_trainee_author.json);
- the PDF title reads the trainee's name as a person ("Trainee, Tom"), not "Trainee^Tom".
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path

import pydicom
import pytest
import pytestqt  # noqa: F401  (a test dependency: fail, never skip)

from conftest import TESTDATA
from mdtviewer.cli import main as cli_main
from mdtviewer.sr.model import ImageRating, Person, Review, Verifier
from mdtviewer.workflows import reviews
from sr_helpers import sign_as

SIEMENS = TESTDATA / "us_siemens_s2000_rgb_explicit_le.dcm"
ACUSON = TESTDATA / "us_acuson_sequoia_ybr_full_rle.dcm"


def _uid(p: Path) -> str:
    return str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)


def _head(p: Path):
    return pydicom.dcmread(p, stop_before_pixels=True)


def _sr_write(tmp_path: Path, data: dict, name: str, study: Path, out: Path) -> Path:
    js = tmp_path / f"{name}.json"
    js.write_text(json.dumps(data), encoding="utf-8")
    target = out / f"{name}.dcm"
    assert cli_main(["sr", "write", "--review", str(js), "--study", str(study), "--out", str(target)]) == 0
    return target


def _older_signed(study: Path, out: Path, signer: str) -> Path:
    """A trainee's own preceptorship signed as the code before QA2 5 wrote it: the signer's role not
    recorded (a Verifier without role names no observer)."""
    head = _head(study)
    tom = Person("Trainee^Tom", "trainee")
    review = Review(kind="preceptorship", author=tom, trainee=tom,
                    study_instance_uid=str(head.StudyInstanceUID), protocol="carotid-duplex", outcome="competent",
                    image_ratings=[ImageRating(str(head.SOPInstanceUID), None, "good")])
    checks = reviews.check_signer  # that code had no signer checks (HAZ-030 C1, C5 came later)
    reviews.check_signer = lambda review, verifier: None
    try:
        return reviews.sign(review, Verifier(signer, "Northfield Vascular Lab"), [head], folder=out)
    finally:
        reviews.check_signer = checks


def _logbook(capsys, folder: Path, *extra: str) -> tuple[str, str]:
    capsys.readouterr()
    assert cli_main(["logbook", "--folder", str(folder), *extra]) == 0
    o = capsys.readouterr()
    return o.out, o.err


def test_an_older_outcome_signed_by_a_non_trainer_counts_as_unsigned_with_a_note(tmp_path, capsys):
    out = tmp_path / "reviews"
    out.mkdir()
    _older_signed(SIEMENS, out, "Okafor^Ada")  # a second reader signed it (QA2 5's ta_signed.dcm)
    _older_signed(ACUSON, out, "Trainee^Tom")  # the trainee signed their own competence
    j, _ = _logbook(capsys, out, "--json")
    (log,) = json.loads(j)
    assert (log["trainee"], log["reviews"], log["signed"], log["unsigned"]) == ("Trainee^Tom", 2, 0, 2)
    assert log["signed_not_by_trainer"] == 2
    cd = log["by_protocol"]["carotid-duplex"]
    assert (cd["signed"], cd["competent"], cd["needs_supervision"]) == (0, 0, 0)
    assert len(log["notes"]) == 1 and "not recorded as a trainer" in log["notes"][0]
    text, _ = _logbook(capsys, out)
    assert "0 signed" in text and "note: 2 review(s) signed by someone not recorded as a trainer" in text
    csv_file = tmp_path / "lb.csv"
    _logbook(capsys, out, "--csv", str(csv_file))
    rows = list(csv.DictReader(io.StringIO(csv_file.read_text(encoding="utf-8"))))
    assert [(r["state"], r["outcome"], r["trainer"]) for r in rows] == [("not trainer-signed", "", "")] * 2
    pdf = tmp_path / "lb.pdf"
    _logbook(capsys, out, "--pdf", str(pdf))
    shown = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                           check=True).stdout
    assert "0 signed" in shown and "not recorded as a trainer" in shown
    # a trainer's worklist lists them as awaiting sign-off (a trainer signs an amendment)
    capsys.readouterr()
    assert cli_main(["worklist", "--folder", str(out), "--json"]) == 0
    wl = json.loads(capsys.readouterr().out)
    assert len(wl["drafts"]) == 2 and all(d["signed"] for d in wl["drafts"])


def test_trainer_column_is_the_trainer_only(tmp_path, capsys):
    """QA2 11: a trainee's own draft has no trainer; a trainer's draft names them; a signed record names the
    trainer who signed it, not its author."""
    out = tmp_path / "reviews"
    out.mkdir()
    sop = _uid(SIEMENS)
    # the tester's pre_trainee_author.json: the trainee's own draft
    _sr_write(tmp_path, {"kind": "preceptorship", "author": {"name": "Trainee^Tom", "role": "trainee"},
                         "protocol": "carotid-duplex", "outcome": "competent", "summary": "self review draft",
                         "images": [{"sop_instance_uid": sop, "quality": "good"}]}, "draft", SIEMENS, out)
    # a trainee's record signed by a trainer (the trainer's profile)
    sign_as("Okafor^Ada", "Northfield Vascular Lab", role="trainer")
    _sr_write(tmp_path, {"kind": "preceptorship", "author": {"name": "Trainee^Tom", "role": "trainee"},
                         "verifier": {}, "protocol": "carotid-duplex", "outcome": "competent",
                         "images": [{"sop_instance_uid": _uid(ACUSON), "quality": "good"}]}, "signed", ACUSON, out)
    # a trainer's draft about another trainee
    _sr_write(tmp_path, {"kind": "preceptorship", "author": {"name": "Trainer^Tess", "role": "trainer"},
                         "trainee": {"name": "Ann Trainee"}, "protocol": "carotid-duplex"},
              "trainer_draft", SIEMENS, out)
    csv_file = tmp_path / "lb.csv"
    _logbook(capsys, out, "--csv", str(csv_file))
    rows = list(csv.DictReader(io.StringIO(csv_file.read_text(encoding="utf-8"))))
    got = sorted((r["trainee"], r["state"], r["outcome"], r["trainer"]) for r in rows)
    assert got == [("Ann Trainee", "draft", "", "Trainer^Tess"),
                   ("Trainee^Tom", "draft", "", ""),
                   ("Trainee^Tom", "signed", "competent", "Okafor^Ada")]
    j, _ = _logbook(capsys, out, "--json", "--trainee", "Trainee^Tom")
    (log,) = json.loads(j)
    assert (log["reviews"], log["signed"], log["by_protocol"]["carotid-duplex"]["competent"]) == (2, 1, 1)


def test_logbook_pdf_title_reads_the_name_as_a_person(tmp_path, capsys):
    out = tmp_path / "reviews"
    out.mkdir()
    sign_as("Okafor^Ada", "Northfield Vascular Lab", role="trainer")
    _sr_write(tmp_path, {"kind": "preceptorship", "author": {"name": "Okafor^Ada", "role": "trainer"},
                         "verifier": {}, "trainee": {"name": "Trainee^Tom"}, "protocol": "carotid-duplex",
                         "outcome": "needs-supervision"}, "pre", SIEMENS, out)
    pdf = tmp_path / "lb.pdf"
    _logbook(capsys, out, "--pdf", str(pdf))
    shown = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                           check=True).stdout
    assert "Preceptorship logbook: Trainee, Tom" in shown and "^" not in shown


@pytest.mark.gui
def test_logbook_window_shows_the_same_states_and_trainers(qtbot, window, tmp_path):
    out = tmp_path / "reviews"
    out.mkdir()
    _older_signed(SIEMENS, out, "Okafor^Ada")  # signed by a second reader (older file)
    sign_as("Trainer^Tess", "Northfield Vascular Lab", role="trainer")
    _sr_write(tmp_path, {"kind": "preceptorship", "author": {"name": "Trainee^Tom", "role": "trainee"},
                         "verifier": {}, "protocol": "carotid-duplex", "outcome": "needs-supervision"},
              "signed", ACUSON, out)
    window.action("review.logbook").trigger()
    win = window.logbook_window
    with qtbot.waitSignal(win.loaded, timeout=20000):
        pass
    win.folders.append(str(out))
    with qtbot.waitSignal(win.loaded, timeout=20000):
        win.refresh()
    items = [win.table.topLevelItem(i) for i in range(win.table.topLevelItemCount())]
    got = sorted((it.text(4), it.text(5), it.text(8)) for it in items)
    assert got == [("not trainer-signed", "", ""), ("signed", "needs-supervision", "Trainer^Tess")]
    odd = next(it for it in items if it.text(4) == "not trainer-signed")
    assert "Okafor^Ada" in odd.toolTip(4) and "counted as unsigned" in odd.toolTip(4)
    assert win.plot_data()["competence"] == {"competent": [0], "needs supervision": [1]}
