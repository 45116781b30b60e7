"""The review editor: a dock beside the viewports for second opinions and preceptorship.

The reviewer works from the image on screen: "Comment on this frame", "Tick
from the image on screen" and "Rate this frame" take the current viewport's
SOP instance and frame, so nobody types a UID.  The form's content is an
:class:`~mdtviewer.workflows.review_form.EditorState` (Qt-free, in
:mod:`mdtviewer.workflows.review_form`, with the validation that makes it a
Review); this module only shows it and reads it back.  Writing the SR runs as
a background task; the report panel is refreshed when the file is on disk.

The editor needs a :class:`ReviewHost` (the main window): the image on
screen, the open studies, a way to show an image, and the report panel.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QTextCursor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDockWidget,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from mdtviewer.dicom.model import Instance
from mdtviewer.infra.errors import MdtError
from mdtviewer.pacs.nodes import load_nodes
from mdtviewer.sr import model as m
from mdtviewer.sr.protocols import Protocol as ScanProtocol
from mdtviewer.sr.protocols import load_protocols
from mdtviewer.ui import tasks
from mdtviewer.ui.errors import error_text
from mdtviewer.ui.reports.report_panel import ReportPanel
from mdtviewer.workflows import review_form as form
from mdtviewer.workflows import reviews
from mdtviewer.workflows.review_form import (
    AGREEMENT_LABELS,
    KIND_LABELS,
    MDT_OUTCOME_LABELS,
    NO_REPORT_QUESTION,
    OUTCOME_LABELS,
    PEER_SCORE_LABELS,
    PEER_SCORE_MEANINGS,
    QUALITY_LABELS,
    ROLE_LABELS,
    EditorState,
    ReviewFormError,
    build_review,
    state_from_review,
    write_review,
)


class ImageOnScreen(Protocol):
    """What the editor reads from the current viewport."""

    @property
    def instance(self) -> Instance | None: ...

    @property
    def frame_index(self) -> int: ...


class ReviewHost(Protocol):
    """What the editor needs from the window it works in (the main window; tests use a stand-in)."""

    @property
    def index(self) -> form.StudiesIndex: ...

    @property
    def report_panel(self) -> ReportPanel: ...

    def current_viewport(self) -> ImageOnScreen: ...

    def show_instance(self, sop_instance_uid: str, frame_1based: int | None = None) -> bool: ...


# --------------------------------------------------------------------- widget


class ReviewEditor(QWidget):
    """The form.  Its *host* (the main window) supplies the image on screen, the index and the report panel."""

    #: a review was written (its path)
    saved = Signal(str)
    #: a save failed (the one-line reason)
    failed = Signal(str)

    def __init__(self, host: ReviewHost | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("ReviewEditor")
        self.host = host
        self._protocols: dict[str, ScanProtocol] = {}
        self._protocol_error = ""
        try:
            self._protocols = load_protocols()
        except ValueError as exc:
            self._protocol_error = error_text(exc)
        self._state = EditorState()
        self._busy = False
        self.last_send_message = ""
        self._build_ui()
        self._state = form.with_remembered_author(EditorState())
        self._load_state(self._state)

    # ----------------------------------------------------------------- UI

    def _build_ui(self) -> None:
        inner = QWidget(self)
        lay = QVBoxLayout(inner)
        self.mode_label = QLabel(inner)
        self.mode_label.setObjectName("reviewMode")
        self.mode_label.setWordWrap(True)
        lay.addWidget(self.mode_label)

        form = QFormLayout()
        self.kind = QComboBox(inner)
        for k in m.KINDS:
            self.kind.addItem(KIND_LABELS[k], k)
        self.kind.currentIndexChanged.connect(self._on_kind_changed)
        form.addRow("Review", self.kind)
        self.author_name = QLineEdit(inner)
        self.author_name.setPlaceholderText("Your name as it should appear on the record")
        form.addRow("Author", self.author_name)
        self.author_role = QComboBox(inner)
        for r in m.ROLES:
            self.author_role.addItem(ROLE_LABELS[r], r)
        form.addRow("Role", self.author_role)
        self.author_org = QLineEdit(inner)
        self.author_org.setPlaceholderText("Department / trust (needed to sign)")
        form.addRow("Organisation", self.author_org)
        lay.addLayout(form)

        # second opinion
        self.second_box = QGroupBox("Agreement with the original report", inner)
        sf = QFormLayout(self.second_box)
        self.agreement = QComboBox(self.second_box)
        self.agreement.addItem("\u2014 choose \u2014", None)
        for a in m.AGREEMENTS:
            self.agreement.addItem(AGREEMENT_LABELS[a], a)
        self.agreement_reason = QLineEdit(self.second_box)
        self.agreement_reason.setPlaceholderText("Reason (what differs and why)")
        # RADPEER-style peer-review score: short choices, each meaning spelled out under the box (issue 13)
        self.peer_score = QComboBox(self.second_box)
        self.peer_score.setObjectName("peerReviewScore")
        self.peer_score.addItem("\u2014 not scored \u2014", None)
        for sc in m.PEER_REVIEW_SCORES:
            self.peer_score.addItem(PEER_SCORE_LABELS[sc], sc)
            self.peer_score.setItemData(self.peer_score.count() - 1, PEER_SCORE_MEANINGS[sc],
                                        Qt.ItemDataRole.ToolTipRole)
        self.peer_score.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.peer_score.setMinimumContentsLength(14)
        self.peer_score.setToolTip("RADPEER-style score: 1 concur; 2 discrepancy not ordinarily expected to be made; "
                                   "3 discrepancy that should be made most of the time; a/b unlikely/likely "
                                   "clinically significant")
        self.score_meaning = QLabel("", self.second_box)
        self.score_meaning.setWordWrap(True)
        self.score_meaning.setObjectName("peerReviewScoreMeaning")
        self.peer_score.currentIndexChanged.connect(self._on_score_changed)
        self.agreement.currentIndexChanged.connect(self._show_score_meaning)
        # whose report is graded: the graded report's authors/verifiers are offered, any name may be typed
        self.reporter = QComboBox(self.second_box)
        self.reporter.setObjectName("reporter")
        self.reporter.setEditable(True)
        self.reporter.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.reporter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.reporter.setMinimumContentsLength(14)
        line = self.reporter.lineEdit()
        if line is not None:
            line.setPlaceholderText("Who wrote the report under review")
            line.setMaxLength(192)
        self.reporter.setToolTip("The reporter whose report this second opinion grades (the discrepancy audit "
                                 "counts by reporter); filled from the graded report's author or verifier")
        # the report this second opinion grades: referenced in the SR (content item and evidence)
        self.graded_label = _WrappedLabel("No report named: select it in the report panel", self.second_box)
        self.graded_label.setObjectName("gradedReport")
        self.graded_label.setWordWrap(True)
        self.grade_btn = QPushButton("Grade the selected report", self.second_box)
        self.grade_btn.setObjectName("gradeSelectedReport")
        self.grade_btn.setToolTip("Name the report (SR or PDF) selected in the report panel as the one this "
                                  "second opinion grades; its author or verifier is offered as the reporter")
        self.grade_btn.clicked.connect(self.grade_selected_report)
        lay.addWidget(self.second_box)
        # in the order a reviewer works: which report, whose, how it is graded
        sf.addRow("Report graded", self.graded_label)
        sf.addRow(self.grade_btn)
        sf.addRow("Reporter", self.reporter)
        sf.addRow("Agreement", self.agreement)
        sf.addRow("Reason", self.agreement_reason)
        # the score, full width, its meaning under it (a word-wrapped label in a form row is squeezed)
        score_box = QWidget(self.second_box)
        score_lay = QVBoxLayout(score_box)
        score_lay.setContentsMargins(0, 4, 0, 0)
        score_head = QLabel("Peer-review score (RADPEER-style)", score_box)
        score_head.setBuddy(self.peer_score)
        score_lay.addWidget(score_head)
        score_lay.addWidget(self.peer_score)
        score_lay.addWidget(self.score_meaning)
        sf.addRow(score_box)

        # preceptorship
        self.precept_box = QGroupBox("Preceptorship", inner)
        pl = QVBoxLayout(self.precept_box)
        pf = QFormLayout()
        self.trainee_name = QLineEdit(self.precept_box)
        self.trainee_name.setPlaceholderText("Trainee who performed the scan")
        pf.addRow("Trainee", self.trainee_name)
        self.protocol = QComboBox(self.precept_box)
        self.protocol.addItem("\u2014 choose protocol \u2014", None)
        for pid, p in sorted(self._protocols.items(), key=lambda kv: kv[1].name):
            self.protocol.addItem(p.name, pid)
        self.protocol.currentIndexChanged.connect(self._on_protocol_changed)
        pf.addRow("Protocol", self.protocol)
        pl.addLayout(pf)
        if self._protocol_error:
            err = QLabel(f"Protocol files: {self._protocol_error}", self.precept_box)
            err.setWordWrap(True)
            err.setStyleSheet("color:#a00")
            pl.addWidget(err)
        self.views = QTreeWidget(self.precept_box)
        self.views.setObjectName("protocolViews")
        self.views.setHeaderLabels(["View", "Image"])
        self.views.setRootIsDecorated(False)
        self.views.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.views.itemDoubleClicked.connect(self._on_view_double_clicked)
        self.views.itemChanged.connect(self._on_view_check_changed)
        self.views.header().setStretchLastSection(False)
        self.views.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.views.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        pl.addWidget(self.views)
        vb = QHBoxLayout()
        self.tick_view_btn = QPushButton("Tick from image on screen", self.precept_box)
        self.tick_view_btn.setToolTip("Link the selected view to the image and frame in the current viewport")
        self.tick_view_btn.clicked.connect(self.tick_selected_view)
        self.clear_view_btn = QPushButton("Clear", self.precept_box)
        self.clear_view_btn.clicked.connect(self._clear_selected_view)
        vb.addWidget(self.tick_view_btn)
        vb.addWidget(self.clear_view_btn)
        pl.addLayout(vb)
        self.missing_label = QLabel(self.precept_box)
        self.missing_label.setObjectName("missingViews")
        self.missing_label.setWordWrap(True)
        pl.addWidget(self.missing_label)

        qb = QHBoxLayout()
        self.quality = QComboBox(self.precept_box)
        for q in m.QUALITIES:
            self.quality.addItem(QUALITY_LABELS[q], q)
        self.quality_reason = QLineEdit(self.precept_box)
        self.quality_reason.setPlaceholderText("Reason for the rating")
        self.rate_btn = QPushButton("Rate this frame", self.precept_box)
        self.rate_btn.setToolTip("Rate the image quality of the frame in the current viewport")
        self.rate_btn.clicked.connect(self.rate_current_frame)
        qb.addWidget(QLabel("Image quality", self.precept_box))
        qb.addWidget(self.quality, 1)
        qb.addWidget(self.rate_btn)
        pl.addLayout(qb)
        pl.addWidget(self.quality_reason)
        self.ratings = QTreeWidget(self.precept_box)
        self.ratings.setObjectName("qualityRatings")
        self.ratings.setHeaderLabels(["Image", "Quality", "Reason"])
        self.ratings.setRootIsDecorated(False)
        self.ratings.itemDoubleClicked.connect(self._on_ref_double_clicked)
        pl.addWidget(self.ratings)
        rm = QPushButton("Remove rating", self.precept_box)
        rm.clicked.connect(self._remove_rating)
        pl.addWidget(rm, 0, Qt.AlignmentFlag.AlignRight)
        of = QFormLayout()
        self.outcome = QComboBox(self.precept_box)
        self.outcome.addItem("\u2014 choose \u2014", None)
        for o in m.OUTCOMES:
            self.outcome.addItem(OUTCOME_LABELS[o], o)
        of.addRow("Outcome", self.outcome)
        pl.addLayout(of)
        lay.addWidget(self.precept_box)

        # MDT cases (either kind): what the meeting decided about the report
        mf = QFormLayout()
        self.mdt_outcome = QComboBox(inner)
        self.mdt_outcome.setObjectName("mdtOutcome")
        self.mdt_outcome.addItem("\u2014 not an MDT case \u2014", None)
        for o in m.MDT_OUTCOMES:
            self.mdt_outcome.addItem(MDT_OUTCOME_LABELS[o], o)
        self.mdt_outcome.setToolTip("For cases discussed at the MDT meeting: the report confirmed, a discrepancy "
                                    "found, or further imaging asked for")
        mf.addRow("MDT outcome", self.mdt_outcome)
        lay.addLayout(mf)

        # comments
        cbox = QGroupBox("Comments on images", inner)
        cl = QVBoxLayout(cbox)
        self.comment_text = QPlainTextEdit(cbox)
        self.comment_text.setPlaceholderText("Comment on the frame on screen\u2026")
        self.comment_text.setFixedHeight(60)
        cl.addWidget(self.comment_text)
        self.comment_btn = QPushButton("Comment on this frame", cbox)
        self.comment_btn.setToolTip("Adds the comment with a reference to the image and frame in the current viewport")
        self.comment_btn.clicked.connect(self.comment_on_current_frame)
        cl.addWidget(self.comment_btn, 0, Qt.AlignmentFlag.AlignRight)
        self.comments = QTreeWidget(cbox)
        self.comments.setObjectName("imageComments")
        self.comments.setHeaderLabels(["Image", "Comment"])
        self.comments.setRootIsDecorated(False)
        self.comments.itemDoubleClicked.connect(self._on_ref_double_clicked)
        cl.addWidget(self.comments)
        rmc = QPushButton("Remove comment", cbox)
        rmc.clicked.connect(self._remove_comment)
        cl.addWidget(rmc, 0, Qt.AlignmentFlag.AlignRight)
        lay.addWidget(cbox)

        lay.addWidget(QLabel("Summary", inner))
        self.summary = QPlainTextEdit(inner)
        self.summary.setPlaceholderText("Overall summary")
        self.summary.setFixedHeight(80)
        lay.addWidget(self.summary)

        sf2 = QFormLayout()
        self.send_node = QComboBox(inner)
        self.send_node.setObjectName("sendNode")
        self.send_node.setToolTip(
            "Signed reviews are stored in the patient's study on this PACS; "
            "if it is unreachable they wait in the outbox"
        )
        sf2.addRow("Send signed to", self.send_node)
        lay.addLayout(sf2)
        self.refresh_nodes()

        bl = QHBoxLayout()
        self.save_btn = QPushButton("Save draft", inner)
        self.save_btn.clicked.connect(self.save_draft)
        self.sign_btn = QPushButton("Sign off\u2026", inner)
        self.sign_btn.clicked.connect(self.sign_off)
        bl.addWidget(self.save_btn)
        bl.addWidget(self.sign_btn)
        lay.addLayout(bl)
        bl2 = QHBoxLayout()
        self.edit_btn = QPushButton("Open selected review", inner)
        self.edit_btn.setToolTip(
            "Continue the draft selected in the report panel, or amend the signed review selected there"
        )
        self.edit_btn.clicked.connect(self.edit_selected_review)
        self.new_btn = QPushButton("New review", inner)
        self.new_btn.clicked.connect(self.new_review)
        bl2.addWidget(self.edit_btn)
        bl2.addWidget(self.new_btn)
        lay.addLayout(bl2)
        self.status = QLabel(inner)
        self.status.setObjectName("reviewStatus")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.status)
        lay.addStretch(1)

        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        inner.setMinimumWidth(300)
        scroll.setWidget(inner)
        # the outcome of the last sign-off, above everything (outside the scroll area, always in view) and
        # before any amend notice: "SIGNED by NAME (REG) at TIME" or "NOT signed: why" (QA 21)
        self.sign_result = QLabel(self)
        self.sign_result.setObjectName("reviewSignResult")
        self.sign_result.setWordWrap(True)
        self.sign_result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.sign_result.hide()
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.sign_result)
        outer.addWidget(scroll)

    def _show_sign_result(self, text: str, signed: bool) -> None:
        """Say plainly whether the review was signed (empty text: nothing to say, the line goes)."""
        self.sign_result.setText(text)
        colour = "#0a5d1e" if signed else "#a00"
        self.sign_result.setStyleSheet(
            f"font-weight: bold; color: {colour}; border: 2px solid {colour}; padding: 6px; margin: 4px;")
        self.sign_result.setVisible(bool(text))

    # ----------------------------------------------------------------- state <-> widgets

    def _load_state(self, st: EditorState) -> None:
        self._state = st
        self.kind.setCurrentIndex(max(0, self.kind.findData(st.kind)))
        self.author_name.setText(st.author_name)
        self.author_role.setCurrentIndex(max(0, self.author_role.findData(st.author_role)))
        self.author_org.setText(st.author_organization)
        self.agreement.setCurrentIndex(max(0, self.agreement.findData(st.agreement)) if st.agreement else 0)
        self.agreement_reason.setText(st.agreement_reason)
        self.peer_score.blockSignals(True)
        self.peer_score.setCurrentIndex(max(0, self.peer_score.findData(st.peer_review_score))
                                        if st.peer_review_score else 0)
        self.peer_score.blockSignals(False)
        self.reporter.clear()
        self.reporter.setEditText(st.reporter)
        self.mdt_outcome.setCurrentIndex(max(0, self.mdt_outcome.findData(st.mdt_outcome)) if st.mdt_outcome else 0)
        self._show_score_meaning()
        self.trainee_name.setText(st.trainee_name)
        self.protocol.blockSignals(True)
        idx = self.protocol.findData(st.protocol) if st.protocol else 0
        if st.protocol and idx < 0:  # a protocol no longer on disk: keep it selectable
            self.protocol.addItem(st.protocol, st.protocol)
            idx = self.protocol.count() - 1
        self.protocol.setCurrentIndex(idx)
        self.protocol.blockSignals(False)
        self.outcome.setCurrentIndex(max(0, self.outcome.findData(st.outcome)) if st.outcome else 0)
        self.summary.setPlainText(st.summary)
        self.summary.moveCursor(QTextCursor.MoveOperation.End)  # continue where the text ends
        self._graded_title = ""
        self._restore_graded_entry()
        self._show_graded()
        self._refresh_lists()
        self._on_kind_changed()
        self._update_mode()

    def state(self) -> EditorState:
        """The form's content now (also what Save would write)."""
        st = self._state
        st.kind = self.kind.currentData()
        st.author_name = self.author_name.text()
        st.author_role = self.author_role.currentData()
        st.author_organization = self.author_org.text()
        st.agreement = self.agreement.currentData()
        st.agreement_reason = self.agreement_reason.text()
        st.peer_review_score = self.peer_score.currentData()
        st.reporter = self.reporter.currentText().strip()
        st.mdt_outcome = self.mdt_outcome.currentData()
        st.trainee_name = self.trainee_name.text()
        st.protocol = self.protocol.currentData()
        st.outcome = self.outcome.currentData()
        st.summary = self.summary.toPlainText()
        if not st.study_instance_uid:
            st.study_instance_uid = self._study_on_screen() or ""
        return st

    def set_state(self, st: EditorState) -> None:
        self._load_state(st)

    def grade_selected_report(self) -> bool:
        """Name the report selected in the report panel (an SR or PDF, not one of our reviews) as graded."""
        panel = getattr(self.host, "report_panel", None) if self.host is not None else None
        e = panel.current_entry() if panel is not None else None
        if e is None or e.category not in ("sr", "pdf") or e.error:
            self._say("Select the original report (SR or PDF) in the report panel first.", error=True)
            return False
        self._state.graded_report_uid = e.sop_instance_uid
        self._graded_title = f"{e.label()} ({e.date})" if e.date else e.label()
        self._show_graded()
        doc = e.doc
        names = form.reporter_candidates(doc.author_observers if doc is not None else None,
                                         [v.name for v in doc.verifiers] if doc is not None else None, e.author)
        self.set_reporter_choices(names)
        return True

    def _restore_graded_entry(self) -> None:
        """A reopened review's graded report, when the report panel lists it: its title, and its
        authors/verifiers offered as the reporter."""
        uid = self._state.graded_report_uid
        panel = getattr(self.host, "report_panel", None) if self.host is not None and uid else None
        e = next((x for x in panel.entries() if x.sop_instance_uid == uid), None) if panel is not None else None
        if e is None:
            return
        self._graded_title = f"{e.label()} ({e.date})" if e.date else e.label()
        doc = e.doc
        self.set_reporter_choices(form.reporter_candidates(
            doc.author_observers if doc is not None else None,
            [v.name for v in doc.verifiers] if doc is not None else None, e.author))

    def set_reporter_choices(self, names: list[str]) -> None:
        """Offer *names* (the graded report's authors/verifiers) in the Reporter box; the first is taken
        when no reporter is given yet, a reporter already typed or chosen is kept."""
        typed = self.reporter.currentText().strip()
        self.reporter.blockSignals(True)
        self.reporter.clear()
        for n in names:
            self.reporter.addItem(n, n)
        self.reporter.setEditText(typed or (names[0] if names else ""))
        self.reporter.blockSignals(False)

    def reporter_choices(self) -> list[str]:
        return [self.reporter.itemText(i) for i in range(self.reporter.count())]

    def _on_score_changed(self, *_: Any) -> None:
        """A score of 1 with no grade yet is agreement; the grade is never changed once chosen."""
        score = self.peer_score.currentData()
        if score == "1" and self.agreement.currentData() is None:
            self.agreement.setCurrentIndex(self.agreement.findData("agree"))
        self._show_score_meaning()

    def _show_score_meaning(self, *_: Any) -> None:
        score = self.peer_score.currentData()
        conflict = form.score_conflict(self.agreement.currentData(), score)
        if conflict:
            self.score_meaning.setStyleSheet("color:#a00")
            self.score_meaning.setText(conflict)
        else:
            self.score_meaning.setStyleSheet("color:#555")
            self.score_meaning.setText(PEER_SCORE_MEANINGS[score] if score else
                                       "Not scored (optional): 1 concur; 2 not ordinarily expected to be made; "
                                       "3 should be made most of the time; a/b unlikely/likely significant.")

    def score_meaning_text(self) -> str:
        return self.score_meaning.text()

    def _show_graded(self) -> None:
        uid = self._state.graded_report_uid
        if not uid:
            self.graded_label.setText("No report named: select it in the report panel")
        else:
            self.graded_label.setText(getattr(self, "_graded_title", "") or f"report \u2026{uid[-12:]}")

    def set_study(self, study_instance_uid: str) -> None:
        """The study under review (the main window calls this when a study is opened)."""
        if not self._state.study_instance_uid or self._is_empty():
            self._state.study_instance_uid = study_instance_uid
            self._update_mode()

    def _is_empty(self) -> bool:
        return self._state.is_empty() and not self.summary.toPlainText().strip()

    def _refresh_lists(self) -> None:
        st = self._state
        self.views.blockSignals(True)
        self.views.clear()
        for v in st.views:
            full = self._ref_label(v.sop_instance_uid, v.frame) if v.present else ""
            where = full.split(" of ")[0] if v.present else ("missing" if v.required else "(optional)")
            item = QTreeWidgetItem([v.label + ("" if v.required else " (optional)"), where])
            if full:
                item.setToolTip(1, full)
            item.setData(0, Qt.ItemDataRole.UserRole, v.view_id)
            item.setToolTip(0, f"{v.view_id}: {v.label}")
            if v.present:
                item.setCheckState(0, Qt.CheckState.Checked)
                item.setData(1, Qt.ItemDataRole.UserRole, (v.sop_instance_uid, v.frame))
            else:
                item.setCheckState(0, Qt.CheckState.Unchecked)
                if v.required:
                    item.setForeground(1, QColor("#b00000"))
            self.views.addTopLevelItem(item)
        self.views.blockSignals(False)
        missing = st.missing_views()
        self.missing_label.setText(st.missing_text())
        self.missing_label.setToolTip("\n".join(v.label for v in missing) if st.protocol else "")
        self.ratings.clear()
        for r in st.ratings:
            item = QTreeWidgetItem(
                [self._ref_label(r.sop_instance_uid, r.frame), QUALITY_LABELS.get(r.quality, r.quality), r.reason]
            )
            item.setData(0, Qt.ItemDataRole.UserRole, (r.sop_instance_uid, r.frame))
            self.ratings.addTopLevelItem(item)
        self.comments.clear()
        for c in st.comments:
            item = QTreeWidgetItem([self._ref_label(c.sop_instance_uid, c.frame), c.text])
            item.setData(0, Qt.ItemDataRole.UserRole, (c.sop_instance_uid, c.frame))
            item.setToolTip(1, c.text)
            self.comments.addTopLevelItem(item)

    def _update_mode(self) -> None:
        st = self._state
        self.mode_label.setText(st.mode_text())
        self.mode_label.setToolTip(str(st.amends_path or st.draft_path or ""))

    def _on_kind_changed(self, *_: Any) -> None:
        kind = self.kind.currentData()
        self.second_box.setVisible(kind == "second-opinion")
        self.precept_box.setVisible(kind == "preceptorship")
        role = self.author_role.currentData()
        new_role = form.default_role_for(kind, role)
        if new_role != role:
            self.author_role.setCurrentIndex(self.author_role.findData(new_role))

    def _on_protocol_changed(self, *_: Any) -> None:
        pid = self.protocol.currentData()
        self._state.choose_protocol(self._protocols.get(pid) if pid else None, pid)
        self._refresh_lists()

    # ----------------------------------------------------------------- working from the image on screen

    def current_reference(self) -> tuple[str, int | None, Instance] | None:
        """(SOP Instance UID, 1-based frame or None for a single-frame image, Instance) on screen."""
        if self.host is None:
            return None
        vp = self.host.current_viewport()
        inst = vp.instance
        if inst is None:
            return None
        frame = vp.frame_index + 1 if (inst.number_of_frames or 0) > 1 else None
        return inst.sop_instance_uid, frame, inst

    def _study_on_screen(self) -> str | None:
        ref = self.current_reference()
        return ref[2].study_instance_uid if ref and ref[2].study_instance_uid else None

    def _need_reference(self) -> tuple[str, int | None] | None:
        ref = self.current_reference()
        if ref is None:
            self._say("Show an image in a viewport first.", error=True)
            return None
        uid, frame, inst = ref
        had_study = bool(self._state.study_instance_uid)
        try:
            self._state.check_study(inst.study_instance_uid)
        except ReviewFormError as exc:
            self._say(exc.reason, error=True)
            return None
        if not had_study:
            self._update_mode()
        return uid, frame

    def comment_on_current_frame(self) -> bool:
        text = self.comment_text.toPlainText()
        if not text.strip():
            self._say("Type the comment first.", error=True)
            return False
        ref = self._need_reference()
        if ref is None:
            return False
        self._state.add_comment(ref[0], ref[1], text)
        self.comment_text.clear()
        self._refresh_lists()
        self._say(f"Comment added on {self._ref_label(ref[0], ref[1])}.")
        return True

    def focus_comment(self) -> None:
        """Put the cursor in the comment box (Review › Comment on this frame)."""
        self.comment_text.setFocus()

    def tick_selected_view(self) -> bool:
        item = self.views.currentItem()
        if item is None:
            self._say("Select the protocol view this image shows.", error=True)
            return False
        ref = self._need_reference()
        if ref is None:
            return False
        self._state.tick_view(item.data(0, Qt.ItemDataRole.UserRole), ref[0], ref[1])
        self._refresh_lists()
        # move on to the next missing view, as a reviewer works down the list
        for row in range(self.views.topLevelItemCount()):
            it = self.views.topLevelItem(row)
            if it.checkState(0) != Qt.CheckState.Checked:
                self.views.setCurrentItem(it)
                break
        self._say(f"View ticked from {self._ref_label(ref[0], ref[1])}.")
        return True

    def _on_view_check_changed(self, item: QTreeWidgetItem, column: int) -> None:
        """Ticking a view's box links it to the image on screen; unticking clears it."""
        if column != 0:
            return
        vid = item.data(0, Qt.ItemDataRole.UserRole)
        view = next((v for v in self._state.views if v.view_id == vid), None)
        if view is None:
            return
        checked = item.checkState(0) == Qt.CheckState.Checked
        if checked == view.present:
            return
        # the list is rebuilt by the change: do it after Qt has finished with this item
        QTimer.singleShot(0, lambda: self._apply_view_check(vid, checked))

    def _apply_view_check(self, vid: str, checked: bool) -> None:
        for row in range(self.views.topLevelItemCount()):
            if self.views.topLevelItem(row).data(0, Qt.ItemDataRole.UserRole) == vid:
                self.views.setCurrentItem(self.views.topLevelItem(row))
                break
        else:
            return
        if checked:
            if not self.tick_selected_view():
                self._refresh_lists()  # nothing on screen: undo the tick
        else:
            self._clear_selected_view()

    def _clear_selected_view(self) -> None:
        item = self.views.currentItem()
        if item is None:
            return
        self._state.tick_view(item.data(0, Qt.ItemDataRole.UserRole), None)
        self._refresh_lists()

    def rate_current_frame(self) -> bool:
        ref = self._need_reference()
        if ref is None:
            return False
        rating = self._state.rate(ref[0], ref[1], self.quality.currentData(), self.quality_reason.text())
        self.quality_reason.clear()
        self._refresh_lists()
        self._say(f"Rated {self._ref_label(ref[0], ref[1])}: {QUALITY_LABELS[rating.quality]}.")
        return True

    def _remove_rating(self) -> None:
        row = self.ratings.indexOfTopLevelItem(self.ratings.currentItem()) if self.ratings.currentItem() else -1
        if self._state.remove_rating(row):
            self._refresh_lists()

    def _remove_comment(self) -> None:
        row = self.comments.indexOfTopLevelItem(self.comments.currentItem()) if self.comments.currentItem() else -1
        if self._state.remove_comment(row):
            self._refresh_lists()

    def _ref_label(self, uid: str | None, frame: int | None) -> str:
        """'frame 7/34 of US #1 (...151815.1.1)': enough to recognise the image, no identifiers."""
        inst = self.host.index.find_instance(uid) if uid and self.host is not None else None
        return form.reference_label(uid, frame, inst)

    def _show_ref(self, uid: str | None, frame: int | None) -> None:
        if uid and self.host is not None:
            self.host.show_instance(uid, int(frame or 0))

    def _on_ref_double_clicked(self, item: QTreeWidgetItem, _col: int) -> None:
        data = item.data(0, Qt.ItemDataRole.UserRole)
        if data:
            self._show_ref(*data)

    def _on_view_double_clicked(self, item: QTreeWidgetItem, _col: int) -> None:
        data = item.data(1, Qt.ItemDataRole.UserRole)
        if data:
            self._show_ref(*data)

    # ----------------------------------------------------------------- saving

    def evidence_for(self, review: m.Review) -> list[Path]:
        """Files of every image the review references, plus one instance of the
        reviewed study (the SR takes the patient and study modules from it)."""
        return form.evidence_for(review, self.host.index if self.host is not None else None)

    def save_draft(self) -> bool:
        """Save the form as a draft (UNVERIFIED/PARTIAL); True when the write was started."""
        return self._save(sign=None)

    def sign_off(self) -> bool:
        """Sign the review (VERIFIED) as the reviewer profile's person, after a confirmation naming them.

        Whatever happens, the editor says plainly whether the review was signed."""
        from mdtviewer.workflows import reviewer_profile

        st = self.state()
        try:
            form.sign_check(st)  # validate before asking
        except ReviewFormError as exc:
            self._not_signed(exc.reason)
            return False
        profile = reviewer_profile.load()
        if profile is None or profile.missing():
            profile = self.edit_profile(first_time=True)
            if profile is None:
                self._not_signed("signing needs your reviewer profile (Review \u203a Reviewer profile\u2026).")
                return False
        bad = reviewer_profile.problem(profile)  # a profile edited by hand: the rules it is saved under
        if bad is not None:
            self._not_signed(f"the reviewer profile cannot sign ({bad}): set it again in Review \u203a "
                             "Reviewer profile\u2026")
            return False
        try:
            verifier = profile.verifier()
        except m.ReviewError as exc:
            self._not_signed(f"the reviewer profile cannot sign ({exc})")
            return False
        refusal = profile.refusal(st.kind)  # a preceptorship outcome: a trainer only (QA2 5)
        if not refusal and st.kind == "preceptorship":  # never the trainee it assesses (HAZ-030 C5)
            trainee = st.trainee_name.strip() or (st.author_name.strip() if st.author_role == "trainee" else "")
            refusal = reviewer_profile.self_sign_off(trainee, profile.name)
        if refusal:
            self._not_signed(f"{refusal}.")
            return False
        what = KIND_LABELS.get(st.kind, st.kind).lower()
        who = ROLE_LABELS.get(profile.role, profile.role)
        if profile.registration:
            who += f", {profile.registration}"
        # a second opinion names the report it grades (issue 10.10); signing without one is a choice made
        # explicitly in the sign-off question, and the SR records that no report was graded (QA2 13)
        no_report = st.kind == "second-opinion" and not st.graded_report_uid
        text = (
            (f"{NO_REPORT_QUESTION}\nThis second opinion names no report: select the report in the report "
             "panel and use \u201cGrade the selected report\u201d, or sign recording that no report was graded.\n\n"
             if no_report else "")
            + f"Sign this {what} as\n\n    {profile.name}\n    {who}\n    {profile.organization}\n\n"
            "A signed review is part of the patient's record and is never changed: "
            "later corrections are saved as an amendment that references it."
        )
        if not self.confirm("Sign off review", text, sign_label="Sign without a report" if no_report else "Sign"):
            self._not_signed("sign-off cancelled. The review is unchanged.")
            return False
        self._signer = profile
        return self._save(sign=verifier, no_report=no_report)

    def _not_signed(self, reason: str) -> None:
        self._say(f"NOT signed: {reason}", error=True)
        self._show_sign_result(f"NOT signed: {reason}", signed=False)

    def edit_profile(self, first_time: bool = False):
        """Review › Reviewer profile…: set who signs on this account; the profile, or None when cancelled."""
        from mdtviewer.ui.review.profile_dialog import ReviewerProfileDialog
        from mdtviewer.workflows import reviewer_profile

        current = reviewer_profile.load()
        if current is None and first_time:  # first sign-off here: start from the form's author
            st = self.state()
            current = reviewer_profile.ReviewerProfile(
                name=st.author_name.strip(), role=st.author_role, organization=st.author_organization.strip())
        dlg = ReviewerProfileDialog(self, current)
        if dlg.exec() != ReviewerProfileDialog.DialogCode.Accepted:
            return None
        return reviewer_profile.load()

    def confirm(self, title: str, text: str, sign_label: str = "Sign") -> bool:
        box = QMessageBox(
            QMessageBox.Icon.Question,
            title,
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setObjectName("signConfirm")
        # Return signs (the button the dialog is about); Esc cancels; the editor then says which happened
        box.setDefaultButton(QMessageBox.StandardButton.Yes)
        box.setEscapeButton(QMessageBox.StandardButton.Cancel)
        box.button(QMessageBox.StandardButton.Yes).setText(sign_label)
        return box.exec() == QMessageBox.StandardButton.Yes

    def _save(self, sign: m.Verifier | None, no_report: bool = False) -> bool:
        if self._busy:
            self._say("Still saving the previous version\u2026", error=True)
            return False
        st = self.state()
        try:
            review = build_review(st, None)
            if no_report and sign is not None and not review.graded_report_uid:
                review = replace(review, no_report_graded=True)  # signed knowingly without one: recorded
            evidence = self.evidence_for(review)
        except ReviewFormError as exc:
            self._say(f"Not saved: {exc.reason}", error=True)
            self.failed.emit(exc.reason)
            return False
        amends = st.amends_path
        replaces = st.draft_path
        node = self.send_node.currentData() if sign is not None else None  # drafts stay on this computer
        self._set_busy(True)
        self._signing = sign is not None
        self._say("Saving\u2026")

        def job(_task: tasks.Task) -> tuple[Any, bool, str, str]:
            # a failure to write goes to _on_write_failed (nothing half-written: atomic writes)
            result = write_review(review, evidence, sign=sign, amends=amends, replaces_draft=replaces)
            # the time the signature carries, as written (shown to the signer)
            at = _verification_time(Path(result)) if sign is not None else ""
            sent = ""
            if node:
                try:
                    sent = reviews.send(result, node)
                except Exception as exc:  # noqa: BLE001 - the signed file is safe locally; the reason is shown
                    sent = f"{node}: not sent ({tasks.describe_error(exc)[0]})"
            return result, sign is not None, sent, at

        tasks.run(self, job, name="review-writer", lane="review-writer", on_result=self._on_written,
                  on_error=self._on_write_failed, expected=(OSError, ValueError))
        return True

    def _on_write_failed(self, reason: str) -> None:
        self._set_busy(False)
        if getattr(self, "_signing", False):
            self._show_sign_result(f"NOT signed: the review could not be saved ({reason})", signed=False)
        self._say(f"Not saved: {reason}", error=True)
        self.failed.emit(reason)

    def _on_written(self, payload: object) -> None:
        result, signed, sent, at = payload  # type: ignore[misc]
        self._set_busy(False)
        path = Path(result)
        st = self._state
        form.remember_reviewer(st, self.send_node.currentData())
        # a signed record is closed: further changes amend it
        st.after_save(path, signed, form.sop_instance_uid_of(path) if signed else None)
        if signed:
            signer = getattr(self, "_signer", None)
            by = f" by {signer.name}" + (f" ({signer.registration})" if signer.registration else "") if signer else ""
            at = f" at {at}" if at else ""
            self._show_sign_result(f"SIGNED{by}{at}. Saved as {path.name}.", signed=True)
            self._say(
                f"SIGNED{by}{at} and saved as {path.name}. Further changes will be saved as an amendment."
                + (f" PACS: {sent}." if sent else "")
            )
            self.last_send_message = sent
        else:
            self._show_sign_result("", signed=False)
            self._say(f"Draft saved as {path.name}.")
        self._update_mode()
        self._refresh_report_panel()
        self.saved.emit(str(path))

    def _refresh_report_panel(self) -> None:
        """The report panel lists the review just written (also when the study had no report yet)."""
        if self.host is None:
            return
        panel = self.host.report_panel
        panel.add_study(self._state.study_instance_uid)
        panel.refresh()

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        for b in (self.save_btn, self.sign_btn, self.edit_btn, self.new_btn):
            b.setEnabled(not busy)

    def is_busy(self) -> bool:
        return self._busy

    def refresh_nodes(self) -> None:
        """Fill the PACS choice from the saved nodes (kept selection, else the remembered one)."""
        if self.send_node.count():
            current = self.send_node.currentData()
        else:
            current = form.remembered_reviewer().get("send_to")
        names: list[str] = []
        try:
            names = [n.name for n in load_nodes()]  # none saved: [] (keeping reviews local is normal)
        except (MdtError, OSError) as exc:  # a broken nodes file: said here, the review can still be saved
            self._say(error_text(exc, "PACS nodes not read"), error=True)
        self.send_node.blockSignals(True)
        self.send_node.clear()
        self.send_node.addItem("Keep on this computer only", None)
        for n in names:
            self.send_node.addItem(n, n)
        idx = self.send_node.findData(current) if current else 0
        self.send_node.setCurrentIndex(max(0, idx))
        self.send_node.blockSignals(False)

    def showEvent(self, event: Any) -> None:
        self.refresh_nodes()
        super().showEvent(event)

    # ----------------------------------------------------------------- opening existing reviews

    def new_review(self) -> None:
        self._load_state(self.state().next_review(self._study_on_screen() or ""))
        self._show_sign_result("", signed=False)
        self._say("")

    def open_review(self, path: str | Path) -> bool:
        """Continue a draft, or start an amendment of a signed review, from its file."""
        path = Path(path)
        try:
            from mdtviewer.sr.review_reader import review_from_sr

            review = review_from_sr(path)
        except Exception as exc:  # noqa: BLE001 - not one of ours, unreadable (its reason), or a bug (reported so)
            self._say(error_text(exc, "Cannot open this review"), error=True)
            return False
        st = state_from_review(review, self._protocols)
        if review.verifier is not None:
            st.amends_path = path
            st.predecessor_sop_instance_uid = form.sop_instance_uid_of(path)
            msg = "Amending the signed review: your changes will be saved as a new report referencing it."
        else:
            st.draft_path = path
            msg = "Draft reopened."
        self._load_state(st)
        self._show_sign_result("", signed=False)  # the line was about the last sign-off, not this review
        self._say(msg)
        return True

    def update_edit_button(self) -> None:
        """Say what the button will do with the report selected in the panel."""
        entry = self.host.report_panel.current_entry() if self.host is not None else None
        if entry is not None and entry.category == "review" and not entry.error:
            self.edit_btn.setText("Amend selected review" if entry.verified else "Continue selected draft")
        else:
            self.edit_btn.setText("Open selected review")

    def edit_selected_review(self) -> bool:
        """Open the review selected in the report panel (or choose among the study's reviews)."""
        panel = self.host.report_panel if self.host is not None else None
        entry = panel.current_entry() if panel is not None else None
        if entry is None or entry.category != "review":
            ours = [e for e in (panel.entries() if panel is not None else []) if e.category == "review"]
            if not ours:
                self._say("This study has no review of ours to open.", error=True)
                return False
            labels = [f"{e.label()} \u2014 {e.author} \u2014 {e.status} \u2014 {e.date}" for e in ours]
            choice, ok = QInputDialog.getItem(self, "Open review", "Review:", labels, 0, False)
            if not ok:
                return False
            entry = ours[labels.index(choice)]
        return self.open_review(entry.path)

    # ----------------------------------------------------------------- messages

    def _say(self, text: str, error: bool = False) -> None:
        self.status.setStyleSheet("color:#a00" if error else "")
        self.status.setText(text)


class _WrappedLabel(QLabel):
    """A word-wrapped label that is as tall as its wrapped text at its width: a plain one in a form row
    of a scroll area was squeezed to less than its lines (the 'Report graded' text cut, QA 11)."""

    def __init__(self, text: str, parent: QWidget | None = None):
        super().__init__(text, parent)
        self.setWordWrap(True)

    def _fit_height(self) -> None:
        need = self.heightForWidth(max(1, self.width()))
        if need > 0 and need != self.minimumHeight():
            self.setMinimumHeight(need)

    def resizeEvent(self, ev: Any) -> None:
        super().resizeEvent(ev)
        self._fit_height()

    def setText(self, text: str) -> None:
        super().setText(text)
        self._fit_height()


def _verification_time(path: Path) -> str:
    """The Verification DateTime of a signed review file, for reading: '2026-12-05 02:27:13 +0000'."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["VerifyingObserverSequence"])
        dt = str(ds.VerifyingObserverSequence[-1].VerificationDateTime)
    except Exception:  # noqa: BLE001 - the signature is written; only its time is not shown
        return ""
    m = re.match(r"(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)?[.\d]*([+-]\d{4})?$", dt)
    if not m:
        return dt
    y, mo, d, h, mi, sec, tz = m.groups()
    return f"{y}-{mo}-{d} {h}:{mi}:{sec or '00'}" + (f" {tz}" if tz else "")


class ReviewDock(QDockWidget):
    """The editor in a dock widget (right side, hidden until asked for; Review › Review editor)."""

    def __init__(self, host: ReviewHost, parent: QWidget | None = None):
        super().__init__("Review", parent)
        self.setObjectName("ReviewDock")
        self.editor = ReviewEditor(host, self)
        self.setWidget(self.editor)
        self.setMinimumWidth(340)
