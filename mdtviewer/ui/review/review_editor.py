"""The review editor: a dock beside the viewports for second opinions and preceptorship.

The reviewer works from the image on screen: "Comment on this frame", "Tick
from the image on screen" and "Rate this frame" take the current viewport's
SOP instance and frame, so nobody types a UID.  The form's content is an
:class:`EditorState`; :func:`build_review` turns it into a validated
:class:`mdtviewer.sr.model.Review` (plain function, tested without clicking)
and :func:`state_from_review` does the reverse when a draft is continued or a
signed review amended.  Writing the SR runs on a worker thread; the report
panel is refreshed when the file is on disk.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QColor, QKeySequence, QTextCursor
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

from mdtviewer.sr import model as m
from mdtviewer.sr.protocols import Protocol, load_protocols
from mdtviewer.ui import tasks

log = logging.getLogger(__name__)

KIND_LABELS = {"second-opinion": "Second opinion", "preceptorship": "Preceptorship"}
ROLE_LABELS = {
    "reporting-scientist": "Reporting scientist",
    "second-reader": "Second reader",
    "trainee": "Trainee",
    "trainer": "Trainer (preceptor)",
}
AGREEMENT_LABELS = {
    "agree": "Agree",
    "minor-discrepancy": "Minor discrepancy",
    "major-discrepancy": "Major discrepancy",
}
QUALITY_LABELS = {"good": "Good", "adequate": "Adequate", "poor": "Poor"}
OUTCOME_LABELS = {"competent": "Competent", "needs-supervision": "Needs supervision"}


# --------------------------------------------------------------------- state (no Qt)


@dataclass
class ViewState:
    """One view of the chosen protocol and the image/frame that shows it (None: not yet found)."""

    view_id: str
    label: str
    required: bool = True
    sop_instance_uid: str | None = None
    frame: int | None = None

    @property
    def present(self) -> bool:
        return bool(self.sop_instance_uid)


@dataclass
class EditorState:
    """Everything the form holds, as plain data."""

    kind: str = "second-opinion"
    author_name: str = ""
    author_role: str = "second-reader"
    author_organization: str = ""
    study_instance_uid: str = ""
    summary: str = ""
    # second opinion
    agreement: str | None = None
    agreement_reason: str = ""
    # preceptorship
    trainee_name: str = ""
    protocol: str | None = None
    views: list[ViewState] = field(default_factory=list)
    ratings: list[m.ImageRating] = field(default_factory=list)
    outcome: str | None = None
    # both
    comments: list[m.ImageComment] = field(default_factory=list)
    key_images: list[m.KeyImage] = field(default_factory=list)
    #: the signed review this one amends (its file and SOP Instance UID)
    amends_path: Path | None = None
    predecessor_sop_instance_uid: str | None = None
    #: the draft file being continued (a later save replaces it)
    draft_path: Path | None = None

    def missing_views(self) -> list[ViewState]:
        return [v for v in self.views if v.required and not v.present]


def views_for_protocol(protocol: Protocol, previous: list[ViewState] | None = None) -> list[ViewState]:
    """The protocol's views, keeping the links already made for the same view ids."""
    old = {v.view_id: v for v in previous or []}
    out = []
    for pv in protocol.views:
        o = old.get(pv.id)
        out.append(ViewState(pv.id, pv.label, pv.required, o.sop_instance_uid if o else None, o.frame if o else None))
    return out


def build_review(state: EditorState, verifier: m.Verifier | None = None) -> m.Review:
    """The review the form describes; ValueError (one line) says what to fix.

    Fields of the other kind are dropped (a second opinion keeps no protocol).
    Required views without an image are recorded as missing; optional ones
    without an image are left out.
    """
    name = state.author_name.strip()
    if not name:
        raise ValueError("enter the author's name")
    author = m.Person(name, state.author_role, state.author_organization.strip())
    common: dict[str, Any] = dict(
        kind=state.kind,
        author=author,
        study_instance_uid=state.study_instance_uid,
        summary=state.summary.strip(),
        comments=list(state.comments),
        key_images=list(state.key_images),
        verifier=verifier,
        predecessor_sop_instance_uid=state.predecessor_sop_instance_uid,
    )
    if not state.study_instance_uid:
        raise ValueError("open an image of the study to review first")
    if state.kind == "second-opinion":
        reason = state.agreement_reason.strip()
        if reason and not state.agreement:
            raise ValueError("choose an agreement grade for the reason given")
        return m.Review(**common, agreement=state.agreement or None, agreement_reason=reason)
    if state.kind != "preceptorship":
        raise ValueError(f"unknown review kind {state.kind!r}")
    views = []
    if state.protocol:
        for v in state.views:
            if v.present:
                views.append(m.ViewCheck(v.view_id, True, v.sop_instance_uid, v.frame))
            elif v.required:
                views.append(m.ViewCheck(v.view_id, False))
    trainee = m.Person(state.trainee_name.strip(), "trainee") if state.trainee_name.strip() else None
    return m.Review(
        **common,
        trainee=trainee,
        protocol=state.protocol or None,
        views=views,
        image_ratings=list(state.ratings),
        outcome=state.outcome or None,
    )


def state_from_review(review: m.Review, protocols: dict[str, Protocol] | None = None) -> EditorState:
    """The form for an existing review (draft to continue, signed review to amend)."""
    st = EditorState(
        kind=review.kind,
        author_name=review.author.name,
        author_role=review.author.role,
        author_organization=review.author.organization,
        study_instance_uid=review.study_instance_uid,
        summary=review.summary,
        agreement=review.agreement,
        agreement_reason=review.agreement_reason,
        trainee_name=review.trainee.name if review.trainee else "",
        protocol=review.protocol,
        ratings=list(review.image_ratings),
        outcome=review.outcome,
        comments=list(review.comments),
        key_images=list(review.key_images),
        predecessor_sop_instance_uid=review.predecessor_sop_instance_uid,
    )
    proto = (protocols or {}).get(review.protocol or "")
    checks = {v.view_id: v for v in review.views}
    if proto is not None:
        st.views = views_for_protocol(proto)
    else:  # protocol file gone: keep what the review recorded
        st.views = [ViewState(v.view_id, v.view_id, True) for v in review.views]
    for v in st.views:
        c = checks.get(v.view_id)
        if c is not None and c.present:
            v.sop_instance_uid, v.frame = c.sop_instance_uid, c.frame
    return st


def study_instance(index: Any, study_instance_uid: str) -> Any:
    """One instance of the study (an image if there is one), from a StudyIndex."""
    best = None
    try:
        studies = index.studies()
    except Exception:  # noqa: BLE001
        return None
    for _patient, study in studies:
        if study.study_instance_uid != study_instance_uid:
            continue
        for inst in study.instances():
            if inst.error:
                continue
            if inst.kind in ("image", "cine"):
                return inst
            best = best or inst
    return best


def _short_uid(uid: str | None) -> str:
    if not uid:
        return ""
    return uid if len(uid) <= 20 else "\u2026" + uid[-16:]


def _frame_text(frame: int | None) -> str:
    return f"frame {frame}" if frame else "image"


# --------------------------------------------------------------------- writing (worker thread)


def _reviews_api():
    from mdtviewer.workflows import reviews

    return reviews


def write_review(
    review: m.Review,
    evidence: list[Path],
    *,
    sign: m.Verifier | None = None,
    amends: Path | None = None,
    replaces_draft: Path | None = None,
) -> Path:
    """Write the review SR (draft, signed, or amendment); returns the new file.

    Runs on a worker thread.  A continued draft replaces the previous draft
    file only after the new one is safely written (drafts are not records
    yet; signed reviews are never touched).
    """
    api = _reviews_api()
    if amends is not None:
        if sign is not None:
            review = replace(review, verifier=sign)
        path = Path(api.amend(amends, review, evidence))
    elif sign is not None:
        path = Path(api.sign(replace(review, verifier=None) if review.verifier else review, sign, evidence))
    else:
        path = Path(api.save_draft(review, evidence))
    if replaces_draft is not None and Path(replaces_draft).resolve() != path.resolve():
        _discard_draft(Path(replaces_draft))
    return path


def _discard_draft(path: Path) -> None:
    """Remove a superseded draft, but only if it really is an unsigned draft."""
    try:
        import pydicom

        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["VerificationFlag"])
        if str(ds.get("VerificationFlag", "")).upper() == "UNVERIFIED":
            path.unlink()
    except (OSError, Exception) as exc:  # noqa: BLE001 - a leftover draft is harmless
        log.warning("could not remove superseded draft: %s", exc)


# --------------------------------------------------------------------- widget


class ReviewEditor(QWidget):
    """The form.  ``window`` supplies the image on screen, the index and the report panel."""

    #: a review was written (its path)
    saved = Signal(str)
    #: a save failed (the one-line reason)
    failed = Signal(str)

    def __init__(self, window: Any = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("ReviewEditor")
        self.window_ = window
        self._protocols: dict[str, Protocol] = {}
        self._protocol_error = ""
        try:
            self._protocols = load_protocols()
        except ValueError as exc:
            self._protocol_error = str(exc)
        self._state = EditorState()
        self._busy = False
        self.last_send_message = ""
        self._build_ui()
        self._state = self._remembered_author(EditorState())
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
        sf.addRow("Agreement", self.agreement)
        self.agreement_reason = QLineEdit(self.second_box)
        self.agreement_reason.setPlaceholderText("Reason (what differs and why)")
        sf.addRow("Reason", self.agreement_reason)
        lay.addWidget(self.second_box)

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
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

    # ----------------------------------------------------------------- state <-> widgets

    def _load_state(self, st: EditorState) -> None:
        self._state = st
        self.kind.setCurrentIndex(max(0, self.kind.findData(st.kind)))
        self.author_name.setText(st.author_name)
        self.author_role.setCurrentIndex(max(0, self.author_role.findData(st.author_role)))
        self.author_org.setText(st.author_organization)
        self.agreement.setCurrentIndex(max(0, self.agreement.findData(st.agreement)) if st.agreement else 0)
        self.agreement_reason.setText(st.agreement_reason)
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
        st.trainee_name = self.trainee_name.text()
        st.protocol = self.protocol.currentData()
        st.outcome = self.outcome.currentData()
        st.summary = self.summary.toPlainText()
        if not st.study_instance_uid:
            st.study_instance_uid = self._study_on_screen() or ""
        return st

    def set_state(self, st: EditorState) -> None:
        self._load_state(st)

    def set_study(self, study_instance_uid: str) -> None:
        """The study under review (the main window calls this when a study is opened)."""
        if not self._state.study_instance_uid or self._is_empty():
            self._state.study_instance_uid = study_instance_uid
            self._update_mode()

    def _is_empty(self) -> bool:
        st = self._state
        return not (
            st.comments
            or st.ratings
            or any(v.present for v in st.views)
            or self.summary.toPlainText().strip()
            or st.draft_path
            or st.amends_path
        )

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
        if not st.protocol:
            self.missing_label.setText("Choose the protocol the scan followed to check its required views.")
        elif missing:
            names = [v.label for v in missing]
            shown = ", ".join(names[:3]) + (f" \u2026 and {len(names) - 3} more" if len(names) > 3 else "")
            self.missing_label.setText(
                f"{len(missing)} required view{'s' if len(missing) != 1 else ''} missing: {shown}"
            )
            self.missing_label.setToolTip("\n".join(names))
        else:
            self.missing_label.setText("All required views present.")
        if not missing:
            self.missing_label.setToolTip("")
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
        if st.amends_path:
            text = (
                "Amending a signed review: saving writes a new report that references it; "
                "the signed one is kept unchanged."
            )
        elif st.draft_path:
            text = "Continuing a saved draft."
        else:
            text = "New review."
        if st.study_instance_uid:
            text += f" Study \u2026{st.study_instance_uid[-12:]}."
        self.mode_label.setText(text)
        tip = str(st.amends_path or st.draft_path or "")
        self.mode_label.setToolTip(tip)

    def _on_kind_changed(self, *_: Any) -> None:
        kind = self.kind.currentData()
        self.second_box.setVisible(kind == "second-opinion")
        self.precept_box.setVisible(kind == "preceptorship")
        role = self.author_role.currentData()
        if kind == "preceptorship" and role in ("second-reader", "trainee"):
            self.author_role.setCurrentIndex(self.author_role.findData("trainer"))
        elif kind == "second-opinion" and role == "trainer":
            self.author_role.setCurrentIndex(self.author_role.findData("second-reader"))

    def _on_protocol_changed(self, *_: Any) -> None:
        pid = self.protocol.currentData()
        st = self._state
        st.protocol = pid
        proto = self._protocols.get(pid) if pid else None
        st.views = views_for_protocol(proto, st.views) if proto else []
        self._refresh_lists()

    # ----------------------------------------------------------------- working from the image on screen

    def current_reference(self) -> tuple[str, int | None, Any] | None:
        """(SOP Instance UID, 1-based frame or None for a single-frame image, Instance) on screen."""
        w = self.window_
        vp = None
        try:
            vp = w.current_viewport() if w is not None else None
        except Exception:  # noqa: BLE001 - no viewport yet
            vp = None
        inst = getattr(vp, "instance", None) if vp is not None else None
        if inst is None:
            return None
        nframes = int(getattr(inst, "number_of_frames", 0) or 0)
        frame = int(getattr(vp, "frame_index", 0) or 0) + 1 if nframes > 1 else None
        return inst.sop_instance_uid, frame, inst

    def _study_on_screen(self) -> str | None:
        ref = self.current_reference()
        return ref[2].study_instance_uid if ref and getattr(ref[2], "study_instance_uid", "") else None

    def _need_reference(self) -> tuple[str, int | None] | None:
        ref = self.current_reference()
        if ref is None:
            self._say("Show an image in a viewport first.", error=True)
            return None
        uid, frame, inst = ref
        study = getattr(inst, "study_instance_uid", "")
        if self._state.study_instance_uid and study and study != self._state.study_instance_uid:
            self._say("The image on screen belongs to another study than the one under review.", error=True)
            return None
        if not self._state.study_instance_uid and study:
            self._state.study_instance_uid = study
            self._update_mode()
        return uid, frame

    def comment_on_current_frame(self) -> bool:
        text = self.comment_text.toPlainText().strip()
        if not text:
            self._say("Type the comment first.", error=True)
            return False
        ref = self._need_reference()
        if ref is None:
            return False
        self._state.comments.append(m.ImageComment(ref[0], ref[1], text))
        self.comment_text.clear()
        self._refresh_lists()
        self._say(f"Comment added on {self._ref_label(ref[0], ref[1])}.")
        return True

    def tick_selected_view(self) -> bool:
        item = self.views.currentItem()
        if item is None:
            self._say("Select the protocol view this image shows.", error=True)
            return False
        ref = self._need_reference()
        if ref is None:
            return False
        vid = item.data(0, Qt.ItemDataRole.UserRole)
        for v in self._state.views:
            if v.view_id == vid:
                v.sop_instance_uid, v.frame = ref
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
        vid = item.data(0, Qt.ItemDataRole.UserRole)
        for v in self._state.views:
            if v.view_id == vid:
                v.sop_instance_uid, v.frame = None, None
        self._refresh_lists()

    def rate_current_frame(self) -> bool:
        ref = self._need_reference()
        if ref is None:
            return False
        rating = m.ImageRating(ref[0], ref[1], self.quality.currentData(), self.quality_reason.text().strip())
        st = self._state
        st.ratings = [r for r in st.ratings if (r.sop_instance_uid, r.frame) != (ref[0], ref[1])] + [rating]
        self.quality_reason.clear()
        self._refresh_lists()
        self._say(f"Rated {self._ref_label(ref[0], ref[1])}: {QUALITY_LABELS[rating.quality]}.")
        return True

    def _remove_rating(self) -> None:
        row = self.ratings.indexOfTopLevelItem(self.ratings.currentItem()) if self.ratings.currentItem() else -1
        if 0 <= row < len(self._state.ratings):
            del self._state.ratings[row]
            self._refresh_lists()

    def _remove_comment(self) -> None:
        row = self.comments.indexOfTopLevelItem(self.comments.currentItem()) if self.comments.currentItem() else -1
        if 0 <= row < len(self._state.comments):
            del self._state.comments[row]
            self._refresh_lists()

    def _ref_label(self, uid: str | None, frame: int | None) -> str:
        """'frame 7/34 of US #1 (...151815.1.1)': enough to recognise the image, no identifiers."""
        inst = None
        index = getattr(self.window_, "index", None)
        if uid and index is not None:
            try:
                inst = index.find_instance(uid)
            except Exception:  # noqa: BLE001
                inst = None
        tail = f"\u2026{uid[-10:]}" if uid else "?"
        if inst is None:
            return f"{_frame_text(frame)} of {tail}"
        n = int(getattr(inst, "number_of_frames", 0) or 0)
        what = f"frame {frame}/{n}" if frame and n > 1 else "image"
        num = f" #{inst.instance_number}" if inst.instance_number is not None else ""
        return f"{what} of {inst.modality or 'image'}{num} ({tail})"

    def _show_ref(self, uid: str | None, frame: int | None) -> None:
        if uid and self.window_ is not None and hasattr(self.window_, "show_instance"):
            self.window_.show_instance(uid, int(frame or 0))

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
        index = getattr(self.window_, "index", None)
        if index is None:
            raise ValueError("no studies are open")
        out: list[Path] = []
        in_study = False
        for uid in review.referenced_uids():
            try:
                inst = index.find_instance(uid)
            except Exception:  # noqa: BLE001
                inst = None
            if inst is None:
                raise ValueError(f"the referenced image \u2026{uid[-12:]} is not among the open studies; open it first")
            out.append(Path(inst.path))
            in_study = in_study or inst.study_instance_uid == review.study_instance_uid
        if not in_study:
            inst = study_instance(index, review.study_instance_uid)
            if inst is None:
                raise ValueError("the reviewed study is not open; open it first")
            out.append(Path(inst.path))
        return out

    def save_draft(self) -> bool:
        """Save the form as a draft (UNVERIFIED/PARTIAL); True when the write was started."""
        return self._save(sign=None)

    def sign_off(self) -> bool:
        """Sign the review (VERIFIED) after a confirmation naming who signs."""
        st = self.state()
        name = st.author_name.strip()
        org = st.author_organization.strip()
        if not name or not org:
            self._say("To sign, enter your name and organisation (they go on the record as the verifier).", error=True)
            return False
        try:
            verifier = m.Verifier(name, org, m.now_dt())
            build_review(st, verifier)  # validate before asking
        except ValueError as exc:
            self._say(f"Cannot sign yet: {exc}", error=True)
            return False
        what = KIND_LABELS.get(st.kind, st.kind).lower()
        text = (
            f"Sign this {what} as\n\n    {name}\n    {org}\n\n"
            "A signed review is part of the patient's record and is never changed: "
            "later corrections are saved as an amendment that references it."
        )
        if not self.confirm("Sign off review", text):
            self._say("Not signed.")
            return False
        return self._save(sign=verifier)

    def confirm(self, title: str, text: str) -> bool:
        box = QMessageBox(
            QMessageBox.Icon.Question,
            title,
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setObjectName("signConfirm")
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.button(QMessageBox.StandardButton.Yes).setText("Sign")
        return box.exec() == QMessageBox.StandardButton.Yes

    def _save(self, sign: m.Verifier | None) -> bool:
        if self._busy:
            self._say("Still saving the previous version\u2026", error=True)
            return False
        st = self.state()
        try:
            review = build_review(st, None)
            evidence = self.evidence_for(review)
        except ValueError as exc:
            self._say(f"Not saved: {exc}", error=True)
            self.failed.emit(str(exc))
            return False
        amends = st.amends_path
        replaces = st.draft_path
        node = self.send_node.currentData() if sign is not None else None  # drafts stay on this computer
        self._set_busy(True)
        self._say("Saving\u2026")

        def job(_task: tasks.Task) -> tuple[Any, bool, str]:
            # a failure to write goes to _on_write_failed (nothing half-written: atomic writes)
            result = write_review(review, evidence, sign=sign, amends=amends, replaces_draft=replaces)
            sent = ""
            if node:
                try:
                    sent = _reviews_api().send(result, node)
                except Exception as exc:  # noqa: BLE001 - the signed file is safe locally; the reason is shown
                    sent = f"{node}: not sent ({tasks.describe_error(exc)[0]})"
            return result, sign is not None, sent

        tasks.run(self, job, name="review-writer", lane="review-writer", on_result=self._on_written,
                  on_error=self._on_write_failed, expected=(OSError, ValueError))
        return True

    def _on_write_failed(self, reason: str) -> None:
        self._set_busy(False)
        self._say(f"Not saved: {reason}", error=True)
        self.failed.emit(reason)

    def _on_written(self, payload: object) -> None:
        result, signed, sent = payload  # type: ignore[misc]
        self._set_busy(False)
        path = Path(result)
        st = self._state
        self._remember_author()
        if signed:
            # the record is closed: further changes amend this signed review
            st.amends_path = path
            st.draft_path = None
            st.predecessor_sop_instance_uid = self._sop_uid_of(path)
            self._say(
                f"Signed and saved as {path.name}. Further changes will be saved as an amendment."
                + (f" PACS: {sent}." if sent else "")
            )
            self.last_send_message = sent
        else:
            if st.amends_path is not None:
                # the amendment is now a draft of its own; keep its predecessor link
                st.amends_path = None
            st.draft_path = path
            self._say(f"Draft saved as {path.name}.")
        self._update_mode()
        self._refresh_report_panel()
        self.saved.emit(str(path))

    @staticmethod
    def _sop_uid_of(path: Path) -> str | None:
        try:
            import pydicom

            return str(pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"]).SOPInstanceUID)
        except Exception:  # noqa: BLE001
            return None

    def _refresh_report_panel(self) -> None:
        panel = getattr(self.window_, "report_panel", None)
        if panel is None:
            return
        if hasattr(panel, "refresh"):
            if (
                self._state.study_instance_uid
                and hasattr(panel, "_study_uids")
                and self._state.study_instance_uid not in panel._study_uids
            ):
                panel._study_uids.append(self._state.study_instance_uid)
            panel.refresh()

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        for b in (self.save_btn, self.sign_btn, self.edit_btn, self.new_btn):
            b.setEnabled(not busy)

    def is_busy(self) -> bool:
        return self._busy

    def refresh_nodes(self) -> None:
        """Fill the PACS choice from the saved nodes (kept selection, else the remembered one)."""
        current = self.send_node.currentData() if self.send_node.count() else self._remembered("send_to")
        names: list[str] = []
        try:
            from mdtviewer.pacs.nodes import load_nodes

            names = [n.name for n in load_nodes()]
        except Exception as exc:  # noqa: BLE001 - no PACS configured is normal
            log.debug("no PACS nodes: %s", exc)
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

    @staticmethod
    def _remembered(key: str) -> Any:
        try:
            from mdtviewer.infra import settings

            saved = settings.get_section("reviewer") or {}
            return saved.get(key) if isinstance(saved, dict) else None
        except Exception:  # noqa: BLE001
            return None

    @staticmethod
    def _remembered_author(st: EditorState) -> EditorState:
        """Who wrote the last review on this computer (name, role, organisation):
        most reviews are by the same person."""
        try:
            from mdtviewer.infra import settings

            saved = settings.get_section("reviewer") or {}
        except Exception:  # noqa: BLE001 - settings are a convenience
            return st
        if isinstance(saved, dict):
            st.author_name = str(saved.get("name", "") or "")
            if saved.get("role") in m.ROLES:
                st.author_role = saved["role"]
            st.author_organization = str(saved.get("organization", "") or "")
        return st

    def _remember_author(self) -> None:
        st = self._state
        try:
            from mdtviewer.infra import settings

            settings.set_section(
                "reviewer",
                {
                    "name": st.author_name.strip(),
                    "role": st.author_role,
                    "organization": st.author_organization.strip(),
                    "send_to": self.send_node.currentData(),
                },
            )
        except Exception as exc:  # noqa: BLE001
            log.warning("could not remember the reviewer: %s", exc)

    # ----------------------------------------------------------------- opening existing reviews

    def new_review(self) -> None:
        keep = self.state()
        st = EditorState(
            kind=keep.kind,
            author_name=keep.author_name,
            author_role=keep.author_role,
            author_organization=keep.author_organization,
            study_instance_uid=self._study_on_screen() or keep.study_instance_uid,
        )
        self._load_state(st)
        self._say("")

    def open_review(self, path: str | Path) -> bool:
        """Continue a draft, or start an amendment of a signed review, from its file."""
        path = Path(path)
        try:
            from mdtviewer.sr.writer import review_from_sr

            review = review_from_sr(path)
        except Exception as exc:  # noqa: BLE001 - not one of our reviews, or unreadable
            self._say(f"Cannot open this review: {exc}", error=True)
            return False
        st = state_from_review(review, self._protocols)
        if review.verifier is not None:
            st.amends_path = path
            st.predecessor_sop_instance_uid = self._sop_uid_of(path)
            msg = "Amending the signed review: your changes will be saved as a new report referencing it."
        else:
            st.draft_path = path
            msg = "Draft reopened."
        self._load_state(st)
        self._say(msg)
        return True

    def update_edit_button(self) -> None:
        """Say what the button will do with the report selected in the panel."""
        panel = getattr(self.window_, "report_panel", None)
        entry = panel.current_entry() if panel is not None and hasattr(panel, "current_entry") else None
        if entry is not None and entry.category == "review" and not entry.error:
            self.edit_btn.setText("Amend selected review" if entry.verified else "Continue selected draft")
        else:
            self.edit_btn.setText("Open selected review")

    def edit_selected_review(self) -> bool:
        """Open the review selected in the report panel (or choose among the study's reviews)."""
        panel = getattr(self.window_, "report_panel", None)
        entry = panel.current_entry() if panel is not None and hasattr(panel, "current_entry") else None
        if entry is None or entry.category != "review":
            reviews = [e for e in (panel.entries() if panel is not None else []) if e.category == "review"]
            if not reviews:
                self._say("This study has no review of ours to open.", error=True)
                return False
            labels = [f"{e.label()} \u2014 {e.author} \u2014 {e.status} \u2014 {e.date}" for e in reviews]
            choice, ok = QInputDialog.getItem(self, "Open review", "Review:", labels, 0, False)
            if not ok:
                return False
            entry = reviews[labels.index(choice)]
        return self.open_review(entry.path)

    # ----------------------------------------------------------------- messages

    def _say(self, text: str, error: bool = False) -> None:
        self.status.setStyleSheet("color:#a00" if error else "")
        self.status.setText(text)


class ReviewDock(QDockWidget):
    """The editor in a dock widget (right side, hidden until asked for)."""

    def __init__(self, window: Any):
        super().__init__("Review", window)
        self.setObjectName("ReviewDock")
        self.editor = ReviewEditor(window, self)
        self.setWidget(self.editor)
        self.setMinimumWidth(340)


def install(window: Any) -> ReviewDock:
    """Dock the review editor in *window* (hidden) and add its toggle to a "Review" menu."""
    dock = ReviewDock(window)
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    dock.hide()
    menu = None
    for act in window.menuBar().actions():
        if act.menu() is not None and act.text().replace("&", "") == "Review":
            menu = act.menu()
    if menu is None:
        menu = window.menuBar().addMenu("&Review")
    toggle = dock.toggleViewAction()
    toggle.setText("Review &editor")
    toggle.setShortcut(QKeySequence("Ctrl+Shift+R"))
    menu.addAction(toggle)
    comment = QAction("&Comment on this frame\u2026", window)
    comment.setShortcut(QKeySequence("Ctrl+Shift+C"))

    def _comment() -> None:
        dock.show()
        dock.raise_()
        dock.editor.comment_text.setFocus()

    comment.triggered.connect(_comment)
    menu.addAction(comment)
    panel = getattr(window, "report_panel", None)
    if panel is not None and hasattr(panel, "documentShown"):
        panel.documentShown.connect(lambda *_: dock.editor.update_edit_button())
    window.review_dock = dock
    window.review_editor = dock.editor
    return dock
