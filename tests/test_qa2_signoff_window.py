"""QA2 5 and 13 in the window (pytest-qt, real corpus cine): the review editor's Sign off refuses a
preceptorship outcome for a profile that is not a trainer (one line naming the role needed, no dialog, nothing
written), and a second opinion naming no graded report is signed only through the question "No report graded:
sign anyway?", the SR then recording that no report was graded."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
import pytestqt  # noqa: F401  (a test dependency: fail, never skip)
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from mdtviewer.sr.review_reader import review_from_sr
from mdtviewer.workflows import reviewer_profile
from sr_helpers import CINE
from test_ui_safety_signoff import fill_second_opinion, press_in_next_box

pytestmark = pytest.mark.gui

READER = reviewer_profile.ReviewerProfile("Okafor^Ada", "second-reader", "HCPC CS054321", "Northfield Vascular Lab")


def _fill_preceptorship(qtbot, window, editor) -> None:
    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        window.open_paths([str(CINE)])
    window.show_study(str(pydicom.dcmread(CINE, stop_before_pixels=True).StudyInstanceUID))
    qtbot.waitUntil(lambda: window.viewports[0].loaded is not None, timeout=20_000)
    window.review_dock.show()
    editor.new_review()
    editor.kind.setCurrentIndex(editor.kind.findData("preceptorship"))
    editor.author_name.setText("Trainee^Tom")
    editor.author_role.setCurrentIndex(editor.author_role.findData("trainee"))
    editor.author_org.setText("Northfield Vascular Lab")
    editor.trainee_name.setText("Trainee^Tom")
    editor.outcome.setCurrentIndex(editor.outcome.findData("competent"))


def _refused_without_a_box(qtbot, editor) -> bool:
    """Sign off is refused before any confirmation: a dialog would be a bug here (recorded, closed, never
    left blocking)."""
    boxes: list[str] = []

    def refuse_any_box() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            boxes.append(box.text())
            box.reject()

    timer = QTimer()
    timer.timeout.connect(refuse_any_box)
    timer.start(20)
    try:
        refused = editor.sign_off() is False
        qtbot.wait(100)
    finally:
        timer.stop()
    return refused and boxes == []


def test_sign_off_of_a_preceptorship_needs_a_trainer_profile(qtbot, window, mdt_home):
    editor = window.review_editor
    _fill_preceptorship(qtbot, window, editor)
    reviewer_profile.save(READER)
    assert _refused_without_a_box(qtbot, editor)
    line = editor.sign_result.text()
    assert line.startswith("NOT signed: a preceptorship outcome is signed only by a Trainer (preceptor)"), line
    assert "Second reader" in line and editor.sign_result.isVisible()
    assert editor.status.text().startswith("NOT signed")
    assert list(mdt_home.rglob("*.dcm")) == []

    # the same form with a trainer's profile: signed, the trainer recorded as the signer in that role
    reviewer_profile.save(reviewer_profile.ReviewerProfile("Okafor^Ada", "trainer", "HCPC CS054321",
                                                           "Northfield Vascular Lab"))
    seen: list[str] = []
    press_in_next_box(Qt.Key.Key_Return, seen)
    with qtbot.waitSignal(editor.saved, timeout=20_000) as blocker:
        assert editor.sign_off() is not False
    assert seen and "Trainer (preceptor)" in seen[0]
    r = review_from_sr(Path(blocker.args[0]))
    assert r.outcome == "competent" and r.trainee is not None and r.trainee.name == "Trainee^Tom"
    assert r.verifier is not None and (r.verifier.name, r.verifier.role) == ("Okafor^Ada", "trainer")


def test_a_trainee_with_a_trainer_profile_cannot_sign_off_their_own_preceptorship(qtbot, window, mdt_home):
    """HAZ-030 C5: the role is self-declared; the trainee named in the record ("Tom Trainee" is Trainee^Tom)
    is refused before any confirmation, nothing written."""
    editor = window.review_editor
    _fill_preceptorship(qtbot, window, editor)
    reviewer_profile.save(reviewer_profile.ReviewerProfile("Tom Trainee", "trainer", "HCPC CS000009",
                                                           "Northfield Vascular Lab"))
    assert _refused_without_a_box(qtbot, editor)
    line = editor.sign_result.text()
    assert line.startswith("NOT signed: a trainee does not sign off their own preceptorship"), line
    assert list(mdt_home.rglob("*.dcm")) == []


def test_second_opinion_without_a_graded_report_asks_and_records_none(qtbot, window, mdt_home):
    editor = window.review_editor
    fill_second_opinion(qtbot, window, editor, author="Okafor^Ada")
    reviewer_profile.save(READER)
    assert "No report named" in editor.graded_label.text()

    # the sign-off question says no report is graded; Esc: not signed, nothing written
    seen: list[str] = []
    press_in_next_box(Qt.Key.Key_Escape, seen)
    assert editor.sign_off() is False
    assert seen and seen[0].startswith("No report graded: sign anyway?") and "Okafor^Ada" in seen[0]
    assert editor.sign_result.text().startswith("NOT signed") and list(mdt_home.rglob("*.dcm")) == []

    # answered: signed, and the SR records that no report was graded
    buttons: list[str] = []

    def sign_without_report() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, sign_without_report)
            return
        buttons.append(box.button(QMessageBox.StandardButton.Yes).text())
        box.button(QMessageBox.StandardButton.Yes).click()

    QTimer.singleShot(0, sign_without_report)
    with qtbot.waitSignal(editor.saved, timeout=20_000) as blocker:
        assert editor.sign_off() is not False
    assert buttons == ["Sign without a report"]
    r = review_from_sr(Path(blocker.args[0]))
    assert r.signed and r.no_report_graded and r.graded_report_uid is None
    assert editor.sign_result.text().startswith("SIGNED by Okafor^Ada")
