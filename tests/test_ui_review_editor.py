"""The review editor: state -> Review as a plain function, and the whole flow by
clicking (second opinion, preceptorship, save draft, sign off, amend) on a
small study made from corpus ultrasound files in a temp folder.

Waits use qtbot's event loops only (PySide6 6.12 processEvents() corrupts
None's refcount on Python 3.11).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace

import pydicom
import pytest
from pydicom.uid import generate_uid
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMainWindow, QMessageBox

from mdtviewer.dicom.index import scan
from mdtviewer.sr import model as m
from mdtviewer.sr.protocols import load_protocols
from mdtviewer.sr.reader import read_sr
from mdtviewer.sr.review_reader import review_from_sr
from mdtviewer.ui.reports.report_panel import ReportPanel
from mdtviewer.ui.review.review_editor import ReviewDock
from mdtviewer.workflows.review_form import EditorState, build_review, state_from_review, views_for_protocol

pytestmark = pytest.mark.gui

STUDY_FILES = [
    "usmf_hp_jpeg_ybr422_34f.dcm",
    "usmf_sonosite_jpeg_ybr422_30f.dcm",
    "us_philips_epiq7c_mono2_jpeg_lossless_sv1.dcm",
]


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory, testdata) -> Path:
    """Three corpus ultrasound files made into one study of one patient (in a temp folder)."""
    d = tmp_path_factory.mktemp("study")
    study_uid = generate_uid()
    for name in STUDY_FILES:
        ds = pydicom.dcmread(testdata / name)
        ds.StudyInstanceUID = study_uid
        ds.PatientName = "Kowalski^Zbigniew"
        ds.PatientID = "PID-1234"
        ds.PatientBirthDate = "19500101"
        ds.save_as(d / name)
    return d


@pytest.fixture
def index(study_dir):
    idx = scan([study_dir], workers=1)
    assert len(idx.instances()) == len(STUDY_FILES)
    return idx


def uid_of(index, name: str) -> str:
    return next(i.sop_instance_uid for i in index.instances() if i.path.name == name)


class StandInWindow(QMainWindow):
    """A :class:`ReviewHost` other than the main window (the real MainWindow is tested below)."""

    def __init__(self, index):
        super().__init__()
        self.index = index
        self.privacy = False
        self.report_panel = ReportPanel(self)
        self.setCentralWidget(self.report_panel)
        self.screen_image = SimpleNamespace(instance=None, frame_index=0)
        self.shown: list[tuple[str, int]] = []
        self.review_dock = ReviewDock(self, self)
        self.review_editor = self.review_dock.editor
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.review_dock)
        self.review_dock.hide()
        self.report_panel.documentShown.connect(lambda _uid: self.review_editor.update_edit_button())

    def current_viewport(self):
        return self.screen_image

    def show_instance(self, uid: str, frame: int) -> bool:
        self.shown.append((uid, frame))
        return True

    def look_at(self, name: str, frame_index: int = 0) -> None:
        self.screen_image.instance = next(i for i in self.index.instances() if i.path.name == name)
        self.screen_image.frame_index = frame_index


@pytest.fixture
def window(qtbot, index):
    w = StandInWindow(index)
    qtbot.addWidget(w)
    w.resize(1200, 900)
    w.show()
    return w


def answer_next_dialog(button: QMessageBox.StandardButton, seen: list[str]) -> None:
    """Click *button* on the next modal message box, recording its text."""

    def click() -> None:
        from mdtviewer.ui.review.profile_dialog import ReviewerProfileDialog

        box = QApplication.activeModalWidget()
        if isinstance(box, ReviewerProfileDialog):
            # the first sign-off on this account sets the reviewer profile (started from the form's author)
            if not box.registration.text():
                box.registration.setText("HCPC TEST0001")
            box.accept()
            QTimer.singleShot(20, click)
            return
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, click)
            return
        seen.append(box.text())
        box.button(button).click()

    QTimer.singleShot(0, click)


def wait_saved(qtbot, editor, action) -> Path:
    with qtbot.waitSignal(editor.saved, timeout=20000) as blocker:
        assert action() is not False
    return Path(blocker.args[0])


def type_text(qtbot, widget, text: str) -> None:
    """Type like a user; non-ASCII is inserted as an input method would (QTest aborts on it)."""
    if text.isascii():
        qtbot.keyClicks(widget, text)
    elif hasattr(widget, "insertPlainText"):
        widget.insertPlainText(text)
    else:
        widget.insert(text)


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


# ---------------------------------------------------------------- plain functions (no clicking)


def test_build_review_second_opinion():
    st = EditorState(
        kind="second-opinion",
        author_name="Łukasz Żółć",
        author_role="second-reader",
        author_organization="Ærøskøbing Vascular Lab",
        study_instance_uid="1.2.3",
        agreement="minor-discrepancy",
        agreement_reason="ICA PSV under-called",
        summary="  ok  ",
        comments=[m.ImageComment("1.2.3.4", 5, "velocity cursor misplaced")],
        trainee_name="ignored",
        protocol="carotid-duplex",
        outcome="competent",
    )  # preceptorship fields are dropped
    r = build_review(st)
    assert r.kind == "second-opinion" and r.author == m.Person(
        "Łukasz Żółć", "second-reader", "Ærøskøbing Vascular Lab"
    )
    assert r.agreement == "minor-discrepancy" and r.agreement_reason == "ICA PSV under-called" and r.summary == "ok"
    assert r.protocol is None and r.outcome is None and r.trainee is None
    assert r.comments == [m.ImageComment("1.2.3.4", 5, "velocity cursor misplaced")]
    assert r.verifier is None


def test_build_review_errors_say_what_to_fix():
    with pytest.raises(ValueError, match="author's name"):
        build_review(EditorState(study_instance_uid="1.2.3"))
    with pytest.raises(ValueError, match="agreement grade"):
        build_review(EditorState(author_name="A", study_instance_uid="1.2.3", agreement_reason="why"))
    with pytest.raises(ValueError, match="open an image"):
        build_review(EditorState(author_name="A"))
    with pytest.raises(ValueError, match="without an agreement grade"):
        build_review(EditorState(author_name="A", study_instance_uid="1.2.3"), m.Verifier("A", "Org"))


def test_build_review_preceptorship_views_and_round_trip():
    proto = load_protocols()["carotid-duplex"]
    views = views_for_protocol(proto)
    views[0].sop_instance_uid, views[0].frame = "1.2.3.4", 7
    optional = [v for v in views if not v.required]
    st = EditorState(
        kind="preceptorship",
        author_name="Trainer^Tess",
        author_role="trainer",
        author_organization="Vasc Lab",
        study_instance_uid="1.2.3",
        trainee_name="Trainee^Tom",
        protocol=proto.id,
        views=views,
        ratings=[m.ImageRating("1.2.3.4", 7, "poor", "gain too high")],
        outcome="needs-supervision",
        agreement="agree",
    )  # second-opinion field dropped
    r = build_review(st)
    assert r.trainee == m.Person("Trainee^Tom", "trainee")
    assert r.views[0] == m.ViewCheck(views[0].view_id, True, "1.2.3.4", 7)
    assert all(not v.present for v in r.views[1:])
    assert len(r.views) == len(proto.required_views) + (
        1 if views[0] in optional else 0
    )  # optional unticked views left out
    assert r.agreement is None and r.outcome == "needs-supervision"
    back = state_from_review(r, {proto.id: proto})
    assert build_review(back) == r
    assert [v.view_id for v in back.views] == [v.id for v in proto.views]


# ---------------------------------------------------------------- by clicking


def test_second_opinion_draft_sign_amend(qtbot, window, index):
    editor = window.review_editor
    dock = window.review_dock
    assert dock.isHidden()
    dock.toggleViewAction().trigger()
    assert dock.isVisible()

    assert editor.kind.currentData() == "second-opinion"
    type_text(qtbot, editor.author_name, "Łukasz Żółć")
    editor.author_role.setCurrentIndex(editor.author_role.findData("second-reader"))
    type_text(qtbot, editor.author_org, "Ærøskøbing Vascular Lab")
    editor.agreement.setCurrentIndex(editor.agreement.findData("minor-discrepancy"))
    type_text(qtbot, editor.agreement_reason, "PSV under-called")

    # comment on frame 12 of the cine on screen
    window.look_at("usmf_hp_jpeg_ybr422_34f.dcm", frame_index=11)
    type_text(qtbot, editor.comment_text, "Aliasing here — raise the scale")
    qtbot.mouseClick(editor.comment_btn, Qt.MouseButton.LeftButton)
    cine_uid = uid_of(index, "usmf_hp_jpeg_ybr422_34f.dcm")
    assert editor.state().comments == [m.ImageComment(cine_uid, 12, "Aliasing here — raise the scale")]
    assert editor.comment_text.toPlainText() == ""
    # single-frame image: referenced without a frame number
    window.look_at("us_philips_epiq7c_mono2_jpeg_lossless_sv1.dcm")
    type_text(qtbot, editor.comment_text, "Good plaque view")
    qtbot.mouseClick(editor.comment_btn, Qt.MouseButton.LeftButton)
    still_uid = uid_of(index, "us_philips_epiq7c_mono2_jpeg_lossless_sv1.dcm")
    assert editor.state().comments[1] == m.ImageComment(still_uid, None, "Good plaque view")
    type_text(qtbot, editor.summary, "Agree with the report apart from the ICA grading.")

    # save draft
    draft = wait_saved(qtbot, editor, lambda: qtbot.mouseClick(editor.save_btn, Qt.MouseButton.LeftButton))
    assert draft.is_file()
    # the next editor (next session) remembers who the reviewer is
    from mdtviewer.ui.review.review_editor import ReviewEditor

    other = ReviewEditor(window)
    qtbot.addWidget(other)
    assert (other.author_name.text(), other.author_role.currentData(), other.author_org.text()) == (
        "Łukasz Żółć",
        "second-reader",
        "Ærøskøbing Vascular Lab",
    )
    expected = build_review(editor.state())
    assert review_from_sr(draft) == expected
    doc = read_sr(draft)
    assert doc.verification_flag == "UNVERIFIED" and doc.completion_flag == "PARTIAL"
    assert doc.study_instance_uid == expected.study_instance_uid == index.find_instance(cine_uid).study_instance_uid
    assert "Continuing a saved draft" in editor.mode_label.text()
    # the report panel lists it
    qtbot.waitUntil(lambda: any(e.path == draft for e in window.report_panel.entries()), timeout=10000)
    entry = next(e for e in window.report_panel.entries() if e.path == draft)
    assert entry.category == "review" and entry.status == "draft" and entry.kind == "second-opinion"
    assert "Łukasz Żółć" in entry.author

    # sign off: the confirmation names who signs
    seen: list[str] = []
    answer_next_dialog(QMessageBox.StandardButton.Yes, seen)
    signed = wait_saved(qtbot, editor, lambda: qtbot.mouseClick(editor.sign_btn, Qt.MouseButton.LeftButton))
    assert "Łukasz Żółć" in seen[0] and "Ærøskøbing Vascular Lab" in seen[0]
    sdoc = read_sr(signed)
    assert sdoc.verification_flag == "VERIFIED" and sdoc.completion_flag == "COMPLETE"
    assert [(v.name, v.organization) for v in sdoc.verifiers] == [("Łukasz Żółć", "Ærøskøbing Vascular Lab")]
    sreview = review_from_sr(signed)
    assert sreview.verifier is not None and sreview.agreement == "minor-discrepancy"
    assert not draft.exists()  # the superseded draft is gone; the signed record remains
    assert "Amending" in editor.mode_label.text()
    signed_hash = sha(signed)

    # amend: change the summary, save -> a new SR naming the signed one; the signed file untouched
    editor.summary.clear()
    type_text(qtbot, editor.summary, "Agree; ICA grading corrected after discussion at MDT.")
    amended = wait_saved(qtbot, editor, lambda: qtbot.mouseClick(editor.save_btn, Qt.MouseButton.LeftButton))
    assert amended != signed and signed.is_file() and sha(signed) == signed_hash
    adoc = read_sr(amended)
    assert adoc.predecessors == [sdoc.sop_instance_uid]
    assert review_from_sr(amended).summary == "Agree; ICA grading corrected after discussion at MDT."
    # and the amendment can be signed in turn (the signed original still untouched)
    seen.clear()
    answer_next_dialog(QMessageBox.StandardButton.Yes, seen)
    amended_signed = wait_saved(qtbot, editor, lambda: qtbot.mouseClick(editor.sign_btn, Qt.MouseButton.LeftButton))
    asdoc = read_sr(amended_signed)
    assert asdoc.verification_flag == "VERIFIED" and asdoc.predecessors == [sdoc.sop_instance_uid]
    assert sha(signed) == signed_hash and not amended.exists()
    # newest verified first in the panel
    qtbot.waitUntil(lambda: any(e.path == amended_signed for e in window.report_panel.entries()), timeout=10000)
    reviews = [e for e in window.report_panel.entries() if e.category == "review"]
    assert [e.path for e in reviews][:2] == [amended_signed, signed]
    assert reviews[0].status == "signed" and reviews[1].status == "signed, superseded"


def test_sign_cancelled_writes_nothing(qtbot, window, index, mdt_home):
    editor = window.review_editor
    window.look_at("usmf_sonosite_jpeg_ybr422_30f.dcm", 0)
    type_text(qtbot, editor.author_name, "Reader^Rita")
    type_text(qtbot, editor.author_org, "Lab")
    editor.agreement.setCurrentIndex(editor.agreement.findData("agree"))
    seen: list[str] = []
    answer_next_dialog(QMessageBox.StandardButton.Cancel, seen)
    assert editor.sign_off() is False
    assert seen and "Reader^Rita" in seen[0]
    assert list(mdt_home.rglob("*.dcm")) == []
    # signing needs an organisation: said plainly, no dialog
    editor.author_org.clear()
    assert editor.sign_off() is False
    assert "organisation" in editor.status.text()


def test_preceptorship_by_clicking(qtbot, window, index):
    editor = window.review_editor
    window.review_dock.show()
    editor.kind.setCurrentIndex(editor.kind.findData("preceptorship"))
    assert editor.precept_box.isVisibleTo(editor) and not editor.second_box.isVisibleTo(editor)
    assert editor.author_role.currentData() == "trainer"
    type_text(qtbot, editor.author_name, "Trainer^Tess")
    type_text(qtbot, editor.author_org, "St Elsewhere Vascular Unit")
    type_text(qtbot, editor.trainee_name, "Trainee^Tom")
    editor.protocol.setCurrentIndex(editor.protocol.findData("carotid-duplex"))
    proto = load_protocols()["carotid-duplex"]
    assert editor.views.topLevelItemCount() == len(proto.views)
    n_required = len(proto.required_views)
    assert f"{n_required} required views missing" in editor.missing_label.text()

    # tick the first view from frame 5 of one cine, the second from frame 20 of another
    cine1, cine2 = uid_of(index, "usmf_hp_jpeg_ybr422_34f.dcm"), uid_of(index, "usmf_sonosite_jpeg_ybr422_30f.dcm")
    editor.views.setCurrentItem(editor.views.topLevelItem(0))
    window.look_at("usmf_hp_jpeg_ybr422_34f.dcm", 4)
    qtbot.mouseClick(editor.tick_view_btn, Qt.MouseButton.LeftButton)
    assert editor.views.currentItem() is editor.views.topLevelItem(1)  # moved on to the next view
    window.look_at("usmf_sonosite_jpeg_ybr422_30f.dcm", 19)
    qtbot.mouseClick(editor.tick_view_btn, Qt.MouseButton.LeftButton)
    st = editor.state()
    assert (st.views[0].sop_instance_uid, st.views[0].frame) == (cine1, 5)
    assert (st.views[1].sop_instance_uid, st.views[1].frame) == (cine2, 20)
    ticked_required = sum(1 for v in st.views[:2] if v.required)
    assert f"{n_required - ticked_required} required view" in editor.missing_label.text()
    assert proto.required_views[-1].label in editor.missing_label.toolTip()
    # ticking a view's box does the same as the button; unticking clears it
    editor.views.topLevelItem(2).setCheckState(0, Qt.CheckState.Checked)
    qtbot.waitUntil(lambda: editor.state().views[2].present, timeout=3000)
    assert (editor.state().views[2].sop_instance_uid, editor.state().views[2].frame) == (cine2, 20)
    editor.views.topLevelItem(2).setCheckState(0, Qt.CheckState.Unchecked)
    qtbot.waitUntil(lambda: not editor.state().views[2].present, timeout=3000)

    # rate the frame on screen, re-rating replaces
    editor.quality.setCurrentIndex(editor.quality.findData("good"))
    qtbot.mouseClick(editor.rate_btn, Qt.MouseButton.LeftButton)
    editor.quality.setCurrentIndex(editor.quality.findData("poor"))
    type_text(qtbot, editor.quality_reason, "Doppler angle > 60°")
    qtbot.mouseClick(editor.rate_btn, Qt.MouseButton.LeftButton)
    assert editor.state().ratings == [m.ImageRating(cine2, 20, "poor", "Doppler angle > 60°")]
    assert editor.ratings.topLevelItemCount() == 1
    # double-click a rating shows that image and frame
    item = editor.ratings.topLevelItem(0)
    editor.ratings.itemDoubleClicked.emit(item, 0)
    assert window.shown[-1] == (cine2, 20)

    editor.outcome.setCurrentIndex(editor.outcome.findData("needs-supervision"))
    type_text(qtbot, editor.summary, "Repeat the ICA views with a better angle.")
    seen: list[str] = []
    answer_next_dialog(QMessageBox.StandardButton.Yes, seen)
    signed = wait_saved(qtbot, editor, lambda: qtbot.mouseClick(editor.sign_btn, Qt.MouseButton.LeftButton))
    assert "Trainer^Tess" in seen[0] and "St Elsewhere Vascular Unit" in seen[0]
    r = review_from_sr(signed)
    assert r.kind == "preceptorship" and r.protocol == "carotid-duplex" and r.outcome == "needs-supervision"
    assert r.trainee is not None and r.trainee.name == "Trainee^Tom"
    assert r.views[0] == m.ViewCheck(proto.views[0].id, True, cine1, 5)
    assert r.views[1] == m.ViewCheck(proto.views[1].id, True, cine2, 20)
    assert sum(1 for v in r.views if not v.present) == n_required - ticked_required
    assert r.image_ratings == [m.ImageRating(cine2, 20, "poor", "Doppler angle > 60°")]
    assert r.verifier.name == "Trainer^Tess" and r.verifier.organization == "St Elsewhere Vascular Unit"
    assert read_sr(signed).verification_flag == "VERIFIED"
    # what the trainer signed in the editor is as clean for DCMTK and dicom3tools as the CLI's
    from sr_helpers import dciodvfy_errors, dsrdump

    text = dsrdump(signed)
    assert 'PNAME:(,,"Person Observer Name")="Trainee^Tom"' in text and '(121094,DCM,"Performing")' in text
    assert dciodvfy_errors(signed) == []


def test_continue_draft_selected_in_report_panel(qtbot, window, index):
    editor = window.review_editor
    window.look_at("usmf_hp_jpeg_ybr422_34f.dcm", 2)
    type_text(qtbot, editor.author_name, "Reader^Rita")
    type_text(qtbot, editor.summary, "first pass")
    draft = wait_saved(qtbot, editor, editor.save_draft)
    # start afresh, then reopen the draft from the report panel
    editor.new_review()
    assert editor.summary.toPlainText() == "" and "New review" in editor.mode_label.text()
    panel = window.report_panel
    qtbot.waitUntil(lambda: any(e.path == draft for e in panel.entries()), timeout=10000)
    assert panel.select(next(e.sop_instance_uid for e in panel.entries() if e.path == draft))
    qtbot.waitUntil(
        lambda: panel.current_entry().path == draft and "first pass" in panel.browser.toPlainText(), timeout=5000
    )
    assert editor.edit_btn.text() == "Continue selected draft"
    qtbot.mouseClick(editor.edit_btn, Qt.MouseButton.LeftButton)
    assert editor.summary.toPlainText() == "first pass" and "Continuing a saved draft" in editor.mode_label.text()
    type_text(qtbot, editor.summary, ", second pass")
    draft2 = wait_saved(qtbot, editor, editor.save_draft)
    assert draft2 != draft and not draft.exists()
    assert review_from_sr(draft2).summary == "first pass, second pass"


def test_comment_needs_an_image_on_screen(qtbot, window):
    editor = window.review_editor
    type_text(qtbot, editor.comment_text, "no image")
    assert editor.comment_on_current_frame() is False
    assert "Show an image" in editor.status.text()
    assert editor.state().comments == []


def test_unknown_image_reported_not_written(qtbot, window, index, mdt_home):
    editor = window.review_editor
    window.look_at("usmf_hp_jpeg_ybr422_34f.dcm", 0)
    type_text(qtbot, editor.author_name, "Reader^Rita")
    st = editor.state()
    st.comments.append(m.ImageComment(generate_uid(), 1, "elsewhere"))
    assert editor.save_draft() is False
    assert "not among the open studies" in editor.status.text()
    assert list(mdt_home.rglob("*.dcm")) == []


# ---------------------------------------------------------------- in the real review window


def test_in_the_real_main_window(qtbot, study_dir):
    from mdtviewer.ui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    with qtbot.waitSignal(w.scanFinished, timeout=30000):
        w.open_paths([str(study_dir)])
    editor = w.review_editor  # wired by the window itself
    assert w.review_dock.isHidden()
    toggle = next(a for a in w.menu("Review").actions() if "editor" in a.text())
    assert toggle.shortcut().toString() == "Ctrl+Shift+R"
    toggle.trigger()
    assert w.review_dock.isVisible()
    cine = next(i for i in w.index.instances() if i.path.name == "usmf_hp_jpeg_ybr422_34f.dcm")
    assert w.show_instance(cine.sop_instance_uid, 7)
    qtbot.waitUntil(
        lambda: w.current_viewport().instance is not None and w.current_viewport().frame_index == 6, timeout=10000
    )
    assert w.current_viewport().instance.sop_instance_uid == cine.sop_instance_uid
    type_text(qtbot, editor.author_name, "Reader^Rita")
    type_text(qtbot, editor.comment_text, "Check this frame")
    qtbot.mouseClick(editor.comment_btn, Qt.MouseButton.LeftButton)
    assert editor.state().comments == [m.ImageComment(cine.sop_instance_uid, 7, "Check this frame")]
    draft = wait_saved(qtbot, editor, lambda: qtbot.mouseClick(editor.save_btn, Qt.MouseButton.LeftButton))
    assert review_from_sr(draft).comments[0].frame == 7
    panel = w.report_panel
    qtbot.waitUntil(lambda: any(e.path == draft for e in panel.entries()), timeout=10000)
    # the review's image reference, clicked in the report panel, brings that frame back on screen
    w.show_instance(cine.sop_instance_uid, 1)
    qtbot.waitUntil(lambda: w.current_viewport().frame_index == 0, timeout=5000)
    panel.select(next(e.sop_instance_uid for e in panel.entries() if e.path == draft))
    qtbot.waitUntil(lambda: "Check this frame" in panel.browser.toPlainText(), timeout=5000)
    from test_ui_report_panel import anchors, click_anchor

    idx = next(i for i, a in enumerate(anchors(panel.browser)) if a[1] == "frame 7")
    with qtbot.waitSignal(panel.imageReferenceActivated, timeout=3000):
        click_anchor(qtbot, panel.browser, idx)
    qtbot.waitUntil(lambda: w.current_viewport().frame_index == 6, timeout=5000)
    assert w.current_viewport().instance.sop_instance_uid == cine.sop_instance_uid
    # privacy from the window reaches the panel
    assert "Kowalski" in panel.browser.toPlainText()  # the review names the patient of the study
    w.set_privacy(True)
    assert "Kowalski" not in panel.browser.toPlainText()


# ---------------------------------------------------------------- stored to the PACS


@pytest.mark.orthanc
def test_signed_review_sent_to_pacs_and_queued_when_down(qtbot, window, index, orthanc_peer_factory):
    from mdtviewer.pacs import outbox
    from mdtviewer.pacs.nodes import PacsNode, add_node
    from orthanc_peer import free_port

    peer = orthanc_peer_factory()
    add_node(PacsNode("orthanc", peer.aet, "127.0.0.1", peer.dicom_port))
    add_node(PacsNode("down", "NOBODY", "127.0.0.1", free_port(), connect_timeout=2))
    editor = window.review_editor
    editor.refresh_nodes()
    assert [editor.send_node.itemData(i) for i in range(editor.send_node.count())] == [None, "orthanc", "down"]
    editor.send_node.setCurrentIndex(editor.send_node.findData("orthanc"))
    window.look_at("usmf_hp_jpeg_ybr422_34f.dcm", 0)
    type_text(qtbot, editor.author_name, "Reader^Rita")
    type_text(qtbot, editor.author_org, "Lab")
    editor.agreement.setCurrentIndex(editor.agreement.findData("agree"))
    # a draft is never sent
    draft = wait_saved(qtbot, editor, editor.save_draft)
    assert read_sr(draft).sop_instance_uid not in peer.sop_instance_uids()
    answer_next_dialog(QMessageBox.StandardButton.Yes, [])
    signed = wait_saved(qtbot, editor, editor.sign_off)
    assert editor.last_send_message == "stored on orthanc"
    assert read_sr(signed).sop_instance_uid in peer.sop_instance_uids()
    # PACS down: the amendment is signed and kept in the outbox, nothing lost
    editor.send_node.setCurrentIndex(editor.send_node.findData("down"))
    type_text(qtbot, editor.summary, "amended")
    answer_next_dialog(QMessageBox.StandardButton.Yes, [])
    amended = wait_saved(qtbot, editor, editor.sign_off)
    assert "outbox" in editor.last_send_message and "outbox" in editor.status.text()
    assert amended.is_file()
    assert [i.original_name for i in outbox.pending("down")] == [amended.name]
