"""Peer-review score, reporter and MDT outcome in the review editor (issue 13).

A trainer/second reader grades the demo study's report through the real window: the score combo
spells each RADPEER-style meaning out, the reporter is offered from the graded report's verifier,
the MDT outcome is chosen; the signed SR holds them exactly as `mdtviewer sr write` writes the same
JSON; reopening restores them; an amendment changes the score; `audit discrepancies` and `logbook`
count the latest version once.

Test data: the packaged demo study (mdtviewer/resources/demo, pydicom test files, MIT) copied to a
temporary folder; its Basic Text SR copy is given a Verifying Observer ("Reporter^Rita", pydicom)
so that the report names who signed it (the demo SR names nobody).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from mdtviewer.cli import main as cli_main
from mdtviewer.infra import paths
from mdtviewer.sr import codes
from mdtviewer.sr.review_reader import review_from_sr
from mdtviewer.ui.review.review_editor import ReviewEditor
from mdtviewer.workflows.review_form import PEER_SCORE_MEANINGS
from test_ui_review_editor import answer_next_dialog

pytestmark = pytest.mark.gui

DEMO = paths.resources_dir() / "demo"
OURS = {codes.PEER_SCORE.value, codes.REPORTER.value, codes.MDT_OUTCOME.value}


@pytest.fixture
def study(tmp_path) -> Path:
    d = tmp_path / "demo"
    shutil.copytree(DEMO, d, ignore=shutil.ignore_patterns("*.md", "LICENSE"))
    sr = d / "study1_series3_sr.dcm"
    ds = pydicom.dcmread(sr)
    v = Dataset()
    v.VerifyingObserverName = "Reporter^Rita"
    v.VerifyingOrganization = "Demo Vascular Lab"
    v.VerificationDateTime = "20240102101500"
    v.VerifyingObserverIdentificationCodeSequence = []
    ds.VerifyingObserverSequence = [v]
    ds.VerificationFlag = "VERIFIED"
    ds.CompletionFlag = "COMPLETE"
    ds.save_as(sr)
    return d


def answer_dialogs(seen: list[str]) -> None:
    """Fill the first-time reviewer profile, then press Sign on the confirmation."""
    answer_next_dialog(QMessageBox.StandardButton.Yes, seen)


def sign(qtbot, editor) -> Path:
    seen: list[str] = []
    answer_dialogs(seen)
    with qtbot.waitSignal(editor.saved, timeout=20000) as blocker:
        qtbot.mouseClick(editor.sign_btn, Qt.MouseButton.LeftButton)
    assert seen, "the sign-off confirmation was shown"
    return Path(blocker.args[0])


def peer_items(path: Path) -> list[tuple]:
    """(concept code, value code or text) of the score, reporter and MDT outcome items, as written."""
    out = []

    def walk(seq) -> None:
        for it in seq:
            name = it.ConceptNameCodeSequence[0]
            if name.CodeValue in OURS:
                val = it.ConceptCodeSequence[0] if "ConceptCodeSequence" in it else None
                out.append((name.CodeValue, name.CodingSchemeDesignator, it.RelationshipType, it.ValueType,
                            (val.CodeValue, val.CodingSchemeDesignator, val.CodeMeaning) if val else it.TextValue))
            walk(it.get("ContentSequence", []))

    walk(pydicom.dcmread(path).ContentSequence)
    return sorted(out)


def choose(combo, data) -> None:
    combo.setCurrentIndex(combo.findData(data))


def test_score_reporter_mdt_outcome_round_trip(qtbot, window, study, tmp_path, capsys):
    with qtbot.waitSignal(window.scanFinished, timeout=30_000):
        window.open_paths([str(study)])
    panel = window.report_panel
    qtbot.waitUntil(lambda: any(e.category == "sr" for e in panel.entries()), timeout=15_000)
    window.action("review.editor").trigger()
    ed = window.review_editor
    qtbot.waitUntil(lambda: ed.isVisible(), timeout=5_000)
    choose(ed.kind, "second-opinion")
    ed.author_name.setText("Sam Second")
    ed.author_org.setText("Vascular Lab")

    # the score combo: every RADPEER-style score with its meaning spelled out (tooltip and the line under it)
    assert [ed.peer_score.itemData(i) for i in range(ed.peer_score.count())] == [None, "1", "2a", "2b", "3a", "3b"]
    for i in range(1, ed.peer_score.count()):
        assert ed.peer_score.itemData(i, Qt.ItemDataRole.ToolTipRole) == PEER_SCORE_MEANINGS[ed.peer_score.itemData(i)]
    assert "not ordinarily expected" in PEER_SCORE_MEANINGS["2b"] and "most of the time" in PEER_SCORE_MEANINGS["3a"]
    # score 1 with no grade yet is agreement
    choose(ed.peer_score, "1")
    assert ed.agreement.currentData() == "agree" and "concur" in ed.score_meaning_text()
    # a contradiction is said at once and refused on saving
    choose(ed.agreement, "major-discrepancy")
    assert "Score 1 means" in ed.score_meaning_text()
    assert ed.save_draft() is False and "Score 1 means" in ed.status.text()
    choose(ed.peer_score, "2b")
    assert ed.score_meaning_text() == PEER_SCORE_MEANINGS["2b"]
    ed.agreement_reason.setText("ICA stenosis under-graded")

    # grade the report selected in the panel: its verifier is offered and taken as the reporter
    sr_entry = next(e for e in panel.entries() if e.category == "sr")
    assert panel.select(sr_entry.sop_instance_uid)
    qtbot.mouseClick(ed.grade_btn, Qt.MouseButton.LeftButton)
    assert ed.reporter_choices() == ["Reporter Rita"] and ed.reporter.currentText() == "Reporter Rita"
    choose(ed.mdt_outcome, "discrepancy-found")
    assert [ed.mdt_outcome.itemText(i) for i in range(ed.mdt_outcome.count())][1:] == [
        "Report confirmed", "Discrepancy found", "Further imaging"]

    signed = sign(qtbot, ed)
    r = review_from_sr(signed)
    assert (r.agreement, r.peer_review_score, r.reporter, r.mdt_outcome, r.graded_report_uid) == (
        "major-discrepancy", "2b", "Reporter Rita", "discrepancy-found", sr_entry.sop_instance_uid)

    # exactly as `mdtviewer sr write` writes the same review JSON
    js = tmp_path / "same.json"
    js.write_text(json.dumps({
        "kind": "second-opinion", "author": {"name": "Sam Second", "role": "second-reader"},
        "verifier": {"name": "Sam Second", "organization": "Vascular Lab"},
        "agreement": "major-discrepancy", "agreement_reason": "ICA stenosis under-graded",
        "peer_review_score": "2b", "reporter": "Reporter Rita", "mdt_outcome": "discrepancy-found",
        "graded_report": sr_entry.sop_instance_uid, "study_instance_uid": r.study_instance_uid}),
        encoding="utf-8")
    cli_out = tmp_path / "cli.dcm"
    assert cli_main(["sr", "write", "--review", str(js), "--study", str(study), "--out", str(cli_out)]) == 0
    assert peer_items(signed) == peer_items(cli_out)
    assert {i[0] for i in peer_items(signed)} == OURS
    assert (codes.PEER_SCORE.value, codes.PEER_SCORE.scheme, "CONTAINS", "CODE",
            (codes.PEER_SCORE_CODES["2b"].value, codes.PEER_SCORE_CODES["2b"].scheme,
             codes.PEER_SCORE_CODES["2b"].meaning)) in peer_items(signed)

    # reopened in another editor (amend): the controls show what was signed, the reporter choices again
    other = ReviewEditor(window)
    qtbot.addWidget(other)
    assert other.open_review(signed)
    assert other.peer_score.currentData() == "2b" and other.reporter.currentText() == "Reporter Rita"
    assert other.mdt_outcome.currentData() == "discrepancy-found" and other.reporter_choices() == ["Reporter Rita"]
    assert other.agreement.currentData() == "major-discrepancy"
    choose(other.peer_score, "3b")
    choose(other.mdt_outcome, "further-imaging")
    amended = sign(qtbot, other)
    a = review_from_sr(amended)
    assert (a.peer_review_score, a.mdt_outcome, a.reporter) == ("3b", "further-imaging", "Reporter Rita")
    assert a.predecessor_sop_instance_uid == pydicom.dcmread(signed).SOPInstanceUID

    # the audit counts the latest version once (the local store holds both signed files)
    capsys.readouterr()
    assert cli_main(["audit", "discrepancies", "--json"]) == 0
    j = json.loads(capsys.readouterr().out)
    assert j["reviews"] == 1 and j["by_agreement"]["major-discrepancy"] == 1
    assert j["by_score"] == {"1": 0, "2a": 0, "2b": 0, "3a": 0, "3b": 1, "unscored": 0}
    assert j["by_mdt_outcome"] == {"report-confirmed": 0, "discrepancy-found": 0, "further-imaging": 1}
    assert list(j["by_reporter"]) == ["Reporter Rita"] and j["by_reporter"]["Reporter Rita"]["major-discrepancy"] == 1

    # a preceptorship discussed at the MDT: its outcome is counted in the trainee's logbook
    other.new_review()
    choose(other.kind, "preceptorship")
    assert not other.peer_score.isVisibleTo(other) and other.mdt_outcome.isVisibleTo(other)
    other.trainee_name.setText("Ann Trainee")
    choose(other.outcome, "competent")
    choose(other.mdt_outcome, "report-confirmed")
    other.author_name.setText("Sam Second")
    other.author_org.setText("Vascular Lab")
    # a preceptorship outcome is signed by a trainer only (QA2 5): Sam signs it in a trainer's profile
    from mdtviewer.workflows import reviewer_profile

    prof = reviewer_profile.load()
    assert prof is not None and prof.refusal("preceptorship")
    prof.role = "trainer"
    reviewer_profile.save(prof)
    sign(qtbot, other)
    capsys.readouterr()
    assert cli_main(["logbook", "--json"]) == 0
    (log,) = json.loads(capsys.readouterr().out)
    assert log["trainee"] == "Ann Trainee" and log["signed"] == 1
    assert log["mdt_outcomes"] == {"report-confirmed": 1, "discrepancy-found": 0, "further-imaging": 0}


def test_score_controls_readable_in_the_narrow_editor(qtbot, window):
    """Beside the demo study at 1280x800 (the editor dock at its narrowest): every score choice is
    readable in full in its box, and the meaning under it is as tall as its wrapped lines."""
    from PySide6.QtWidgets import QStyle, QStyleOptionComboBox

    with qtbot.waitSignal(window.scanFinished, timeout=30_000):
        assert window.open_demo()
    window.action("review.editor").trigger()
    ed = window.review_editor
    choose(ed.kind, "second-opinion")
    for _ in range(5):
        QApplication.processEvents()
        qtbot.wait(30)
    box = ed.peer_score
    opt = QStyleOptionComboBox()
    box.initStyleOption(opt)
    room = box.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, opt,
                                      QStyle.SubControl.SC_ComboBoxEditField, box).width()
    for i in range(box.count()):
        assert box.fontMetrics().horizontalAdvance(box.itemText(i)) <= room, (box.itemText(i), room)
    for score in ("2a", "3b"):
        choose(box, score)
        qtbot.wait(30)
        lab = ed.score_meaning
        assert lab.isVisible() and lab.text() == PEER_SCORE_MEANINGS[score]
        assert lab.height() >= lab.heightForWidth(lab.width()), (lab.height(), lab.heightForWidth(lab.width()))


def test_form_score_rules_and_reporter_candidates():
    from mdtviewer.workflows.review_form import (
        EditorState,
        ReviewFormError,
        build_review,
        reporter_candidates,
        score_conflict,
        state_from_review,
    )

    assert score_conflict("agree", "1") == score_conflict(None, "2b") == score_conflict("agree", None) == ""
    assert "choose Agree" in score_conflict("minor-discrepancy", "1")
    assert "Minor or Major" in score_conflict("agree", "3a")
    st = EditorState(author_name="Sam Second", study_instance_uid="1.2.3.4", agreement="agree",
                     peer_review_score="2a", reporter="  Rita   Reporter ", mdt_outcome="further-imaging")
    with pytest.raises(ReviewFormError, match="Score 2a is a discrepancy"):
        build_review(st)
    st.agreement = "minor-discrepancy"
    r = build_review(st)
    assert (r.peer_review_score, r.reporter, r.mdt_outcome) == ("2a", "Rita Reporter", "further-imaging")
    back = state_from_review(r)
    assert (back.peer_review_score, back.reporter, back.mdt_outcome) == ("2a", "Rita Reporter", "further-imaging")
    # a preceptorship keeps the MDT outcome, never a score or reporter left from a second opinion
    st.kind, st.trainee_name = "preceptorship", "Ann Trainee"
    p = build_review(st)
    assert (p.peer_review_score, p.reporter, p.mdt_outcome) == (None, "", "further-imaging")
    # authors first, then verifiers, then the listed author; carets as spaces; each once
    assert reporter_candidates(["Reporter^Rita"], ["Reporter^Rita", "Boss^Big"], "Reporter Rita; X Y") == [
        "Reporter Rita", "Boss Big", "X Y"]
    assert reporter_candidates(None, None, "") == []
