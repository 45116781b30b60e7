"""Presenter mode for the MDT meeting, over the review window.

The window makes one :class:`Presenter`; its commands are in the **MDT** menu
(declared in :mod:`mdtviewer.ui.actions`).  A dock holds the meeting list
(:class:`mdtviewer.workflows.mdt_session.MDTSession`): add the current study, order,
note, save/open, prefetch from PACS in the background (progress in the status
bar), and **Present** (F5):

* full screen, docks, menu and status bar hidden, privacy switched on (and
  restored on leaving, Esc), a large case banner ("Case 2 of 5 · label ·
  note"), larger overlay text where the viewport supports it;
* PageDown / PageUp: next / previous case.  Each case's image series are
  laid out side by side (1, 2, 3 or 2×2), the report panel beside them, the
  case's other imaging in the remaining viewports (the studies added as
  related, e.g. the patient's CT, else the same patient's other open studies,
  newest first), and the cine loops start playing;
* **Mask burned-in text** (Ctrl+M, or the MDT menu): the image is masked by
  the same privacy plan as privacy mode (:func:`mdtviewer.imaging.masking.privacy_plan`:
  the Sequence of Ultrasound Regions, else the scanner's template, else the
  text found in the pixels, then OCR of the patient's own identifiers), so an
  image privacy already made safe is never blanked whole by Ctrl+M (QA 6: a
  GE LOGIQ prior masked by detection turned black).  An image the plan must
  hide stays black with "hidden: may show identifiers", one click from its
  template.  A keep-rectangle drawn in the session ("Draw keep-rectangle",
  then drag on the image; kept in the session) narrows what is shown further
  for a series without regions: nothing unmasked is shown while masking is on.

The banner shows the case label and note; the note is passed through
:func:`mdtviewer.infra.logsafe.redact` (known identifiers and person-name-looking
text are hidden) because notes are free text.

The viewport's public API does the rest: ``set_display_filter`` (masks each
frame after the viewport's own windowing and privacy blanking) and
``set_overlay_scale``.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from mdtviewer.dicom.model import Study
from mdtviewer.imaging import masking
from mdtviewer.infra.errors import MdtError
from mdtviewer.pacs.client import RetrieveProgress
from mdtviewer.pacs.localstore import LocalStore
from mdtviewer.ui import tasks
from mdtviewer.ui.errors import error_text, show_error
from mdtviewer.ui.viewer.browser import image_instances
from mdtviewer.ui.viewer.viewport import Viewport
from mdtviewer.workflows.mdt_session import MDTCase, MDTSession, SessionError

if TYPE_CHECKING:  # the window imports this module: no import at run time
    from mdtviewer.ui.main_window import MainWindow

log = logging.getLogger(__name__)

#: how much larger the overlay text is while presenting (viewports with ``overlay_scale``)
OVERLAY_SCALE = 1.6
BANNER_PT = 22
#: viewports used for one case: its series first, then its related imaging
MAX_PANES = 4


def _layout_for(n: int) -> tuple[int, int]:
    return {0: (1, 1), 1: (1, 1), 2: (1, 2), 3: (1, 3)}.get(n, (2, 2))


class Presenter(QObject):
    """State and actions of the MDT presenter for one main window."""

    caseShown = Signal(int)
    prefetchProgress = Signal(int, int, str)
    prefetchFinished = Signal(object)
    #: masking of burned-in text switched on or off (the window's MDT › Mask action follows)
    maskChanged = Signal(bool)

    def __init__(self, window: MainWindow):
        super().__init__(window)
        self.main_window = window
        self.session: MDTSession | None = None
        self.index = -1
        self.active = False
        self.mask_burned_in = False
        self._saved: dict[str, Any] = {}
        self._pending_uid: str | None = None
        self._drawing: tuple[Viewport, QPointF] | None = None
        self._filtered: set[int] = set()  # viewports whose events this presenter watches (keep-rectangles)
        self._draw_armed = False
        self._prefetch_task: tasks.Task | None = None
        self._prefetch_cancel = threading.Event()  # the running prefetch's cancel event
        self._loose_rects: dict[str, list[int]] = {}  # keep-rectangles when no case is current

        # banner (a toolbar at the top, shown only while presenting)
        self.banner = QLabel("")
        self.banner.setObjectName("presenterBanner")
        f = QFont()
        f.setPointSize(BANNER_PT)
        f.setBold(True)
        self.banner.setFont(f)
        self.banner.setStyleSheet("color: #f0f0c0; background: #101010; padding: 6px;")
        # the banner never widens the window past the screen: long labels and notes are elided to the
        # window's width (_fit_banner; full text in the tooltip).  Its width follows that text: an Ignored
        # policy inside a QToolBar got zero width (QA 4), so it expands from its size hint instead
        self.banner.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.banner.setMinimumWidth(1)  # > 0: the layout takes it instead of the label's text width
        self._banner_text = ""
        window.installEventFilter(self)
        self.bar = QToolBar("Presenter", window)
        self.bar.setObjectName("presenterBar")
        self.bar.setMovable(False)
        self.bar.addWidget(self.banner)
        window.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.bar)
        self.bar.hide()

        self._build_dock()
        window.scanFinished.connect(self._on_scan_finished)
        self.prefetchProgress.connect(self._on_prefetch_progress)
        self.prefetchFinished.connect(self._on_prefetch_finished)
        self._autoplay_timer = QTimer(self)
        self._autoplay_timer.setInterval(100)
        self._autoplay_timer.timeout.connect(self._autoplay)
        self._autoplay_deadline = 0
        # loops that played before presenting play again once their images are back (after leaving the mode)
        self._resume: list[Viewport] = []
        self._resume_deadline = 0
        self._resume_timer = QTimer(self)
        self._resume_timer.setInterval(50)
        self._resume_timer.timeout.connect(self._resume_playing)

    # ------------------------------------------------------------------ UI
    def _build_dock(self) -> None:
        w = self.main_window
        host = QWidget()
        lay = QVBoxLayout(host)
        lay.setContentsMargins(4, 4, 4, 4)
        self.title_label = QLabel("No MDT session")
        lay.addWidget(self.title_label)
        self.case_list = QListWidget()
        self.case_list.setObjectName("mdtCaseList")
        self.case_list.itemDoubleClicked.connect(lambda it: self.go_to(self.case_list.row(it)))
        lay.addWidget(self.case_list)
        row = QHBoxLayout()
        for text, slot in (("Up", lambda: self._move(-1)), ("Down", lambda: self._move(1)),
                           ("Note…", self._edit_note), ("Remove", self._remove)):
            b = QPushButton(text)
            b.clicked.connect(lambda _=False, s=slot: s())
            row.addWidget(b)
        lay.addLayout(row)
        self.dock = QDockWidget("MDT session", w)
        self.dock.setObjectName("mdtSessionDock")
        self.dock.setWidget(host)
        w.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.dock)
        self.dock.hide()

    def _refresh_list(self) -> None:
        self.case_list.clear()
        s = self.session
        if s is None:
            self.title_label.setText("No MDT session")
            return
        self.title_label.setText(f"{s.title} {s.meeting_date}".strip())
        for k, c in enumerate(s.cases, 1):
            text = f"{k}. {c.label or 'Case ' + str(k)}"
            if c.note:
                text += f" — {self._safe(c.note)}"
            if c.is_remote:
                text += f" [{c.source}]"
            related = c.related_note()  # other studies found on PACS; "issuer unknown" said, never hidden
            if related:
                text += f" — {related}"
            it = QListWidgetItem(text)
            self.case_list.addItem(it)
        if 0 <= self.index < self.case_list.count():
            self.case_list.setCurrentRow(self.index)

    def _safe(self, text: str) -> str:
        """Free text for the shared screen: identifiers of every open patient hidden."""
        from mdtviewer.infra.logsafe import redact, register_identifiers

        for pt in self.main_window.patients():
            register_identifiers(pt.patient_name, pt.patient_id, pt.birth_date)
        return redact(" ".join(str(text).split()))

    # ------------------------------------------------------------------ session
    def new_session(self, title: str = "MDT meeting") -> MDTSession:
        self.set_session(MDTSession(title=title))
        return self.session  # type: ignore[return-value]

    def set_session(self, session: MDTSession) -> None:
        self.session = session
        self.index = -1
        self._refresh_list()
        self.dock.show()

    def load_session(self, path: str | Path) -> MDTSession:
        s = MDTSession.load(path)
        self.set_session(s)
        return s

    def save_session(self) -> Path | None:
        if self.session is None:
            return None
        try:
            return self.session.save()
        except (OSError, SessionError) as exc:
            self.main_window.statusBar().showMessage(error_text(exc, "Session not saved"), 10000)
            return None

    def save_session_as(self, path: str | Path | None = None) -> Path | None:
        """MDT › Save session as…: a file of the user's choice (asked when *path* is not given)."""
        if self.session is None:
            self.main_window.statusBar().showMessage("No MDT session to save.", 5000)
            return None
        if path is None:
            from mdtviewer.workflows.mdt_session import default_path

            start = str(self.session.path or default_path(self.session.title, self.session.meeting_date))
            f, _ = QFileDialog.getSaveFileName(self.main_window, "Save MDT session as", start, "MDT session (*.json)")
            if not f:
                return None
            path = f if f.endswith(".json") else f + ".json"
        try:
            out = self.session.save(path)
        except (OSError, SessionError) as exc:
            self.main_window.statusBar().showMessage(error_text(exc, "Session not saved"), 10000)
            return None
        self.main_window.statusBar().showMessage(f"MDT session saved as {Path(out).name}", 5000)
        return out

    def open_dialog(self) -> None:
        from mdtviewer.workflows.mdt_session import sessions_dir

        f, _ = QFileDialog.getOpenFileName(
            self.main_window, "Open MDT session", str(sessions_dir()), "MDT session (*.json)"
        )
        if f:
            try:
                self.load_session(f)
            except (SessionError, OSError) as exc:
                show_error(self.main_window, exc, "MDT session not opened", title="MDT session")

    def add_current_study(self) -> None:
        st = self.main_window.current_study()
        if st is None:
            self.main_window.statusBar().showMessage("Open a study first.", 5000)
            return
        if self.session is None:
            self.new_session()
        try:
            case = self.session.add_case(st.study_instance_uid, label=f"Case {len(self.session.cases) + 1}")
            # where its files are: the session reopens from them after a restart
            # less what a rejection note withdrew (IHE IOCM): never brought back into an MDT case
            case.files = sorted({str(i.path) for i in st.instances() if not i.withdrawn})
        except SessionError as exc:
            self.main_window.statusBar().showMessage(error_text(exc), 5000)
        self._refresh_list()

    def _move(self, delta: int) -> None:
        row = self.case_list.currentRow()
        if self.session is None or row < 0:
            return
        self.session.move_case(self.session.cases[row], row + delta)
        self._refresh_list()
        self.case_list.setCurrentRow(max(0, min(len(self.session.cases) - 1, row + delta)))

    def _remove(self) -> None:
        row = self.case_list.currentRow()
        if self.session is not None and row >= 0:
            self.session.remove_case(self.session.cases[row])
            self._refresh_list()

    def _edit_note(self) -> None:
        row = self.case_list.currentRow()
        if self.session is None or row < 0:
            return
        case = self.session.cases[row]
        text, ok = QInputDialog.getMultiLineText(
            self.main_window, "Case note", "Note (no patient identifiers):", case.note
        )
        if ok:
            case.note = text
            self._refresh_list()

    # ------------------------------------------------------------------ prefetch
    def start_prefetch(self) -> bool:
        """Retrieve the session's PACS cases (and the patients' other imaging there) into the
        local store on a background thread; progress in the status bar, cancel with
        :meth:`cancel_prefetch`.  The network never runs on the UI thread."""
        if self.session is None or self.prefetching():
            return False
        from mdtviewer.workflows.mdt_session import prefetch

        session = self.session

        def progress(task: tasks.Task, k: int, n: int, case: Any, detail: Any) -> None:
            # per study (detail: the retrieve's result) and per instance (detail: RetrieveProgress)
            label = case.label or f"case {session.cases.index(case) + 1}" if case in session.cases else ""
            if isinstance(detail, RetrieveProgress):
                label = f"{label}: {detail.completed} of {detail.total} images"
            task.progress((k, n, label))

        def run(task: tasks.Task) -> Any:
            return prefetch(session, progress=lambda *a: progress(task, *a), cancel=task.cancel.is_set)

        self._prefetch_task = tasks.run(
            self, run, name="mdt-prefetch", on_progress=lambda v: self.prefetchProgress.emit(*v),
            on_result=self.prefetchFinished.emit,
            on_error=lambda message: self.prefetchFinished.emit(tasks.JobFailed(message)),
        )
        self._prefetch_cancel = self._prefetch_task.cancel
        self.main_window.statusBar().showMessage("Prefetching MDT cases…")
        return True

    def cancel_prefetch(self) -> None:
        if self._prefetch_task is not None:
            self._prefetch_task.request_cancel()

    def prefetching(self) -> bool:
        return self._prefetch_task is not None and self._prefetch_task.running()

    def _on_prefetch_progress(self, k: int, n: int, label: str) -> None:
        text = f"Prefetching MDT cases: {k} of {n} studies done"
        if label:
            text += f" ({label})"
        self.main_window.statusBar().showMessage(text)

    def _on_prefetch_finished(self, out: Any) -> None:
        if isinstance(out, Exception):
            self.main_window.statusBar().showMessage(error_text(out, "Prefetch failed"), 15000)
            return
        cases: dict[int, bool] = {}
        for o in out:  # a case is ready when its own study and its related imaging all arrived
            cases[id(o.case)] = cases.get(id(o.case), True) and bool(o.ok)
        ok = sum(cases.values())
        extra = len(out) - len(cases)
        text = f"Prefetch finished: {ok} of {len(cases)} cases ready"
        if extra:
            text += f" (with {extra} related stud{'y' if extra == 1 else 'ies'})"
        if self._prefetch_cancel.is_set():
            text += "; cancelled"
        self.main_window.statusBar().showMessage(text, 15000)
        if self.session is not None:
            self._refresh_list()  # cases may have gained related imaging
            if extra and self.session.path is not None:
                self.save_session()  # keep what was found with the meeting list the user saved

    # ------------------------------------------------------------------ presenting
    def toggle_presenting(self) -> None:
        if self.active:
            self.stop()
        else:
            self.start()

    def start(self, index: int | None = None) -> bool:
        w = self.main_window
        if self.session is None or not self.session.cases:
            w.statusBar().showMessage("No MDT session with cases: add studies first (MDT menu).", 8000)
            return False
        if not self.active:
            self._saved = {
                "privacy": w.privacy,
                "browser": w.browser_dock.isVisible(),
                "problems": w.problems_dock.isVisible(),
                "dock": self.dock.isVisible(),
                "menubar": w.menuBar().isVisible(),
                "statusbar": w.statusBar().isVisible(),
                "maximized": w.isMaximized(),
                "layout": (w.rows, w.cols),
                "mask": self.mask_burned_in,
                "fullscreen": w.isFullScreen(),
                "report_panel": w.report_panel.isVisibleTo(w),
                # what each viewport showed, and which one was current: given back on leaving (QA2 #7: a 2x2 of
                # four studies came back as 1x1 with the meeting's last case)
                "views": [self._view_of(vp) for vp in w.viewports],
                "current": w.viewports.index(w.current_viewport()) if w.current_viewport() in w.viewports else 0,
                # the loops that were playing play again after the meeting, not left paused
                "playing": [i for i, vp in enumerate(w.viewports) if vp.playing],
            }
            self._resume_timer.stop()
            self.active = True
            w.set_privacy(True)
            for d in (w.browser_dock, w.problems_dock, self.dock):
                d.hide()
            w.menuBar().hide()
            w.statusBar().hide()
            self.bar.show()
            for vp in w.grid.all_viewports():
                self.prepare_viewport(vp)
            w.showFullScreen()
            self._audit("study-opened", None, {"presenter": "start"})
        self.go_to(self.index if index is None and self.index >= 0 else (index or 0))
        return True

    def stop(self) -> None:
        if not self.active:
            return
        w = self.main_window
        self.active = False
        self.bar.hide()
        self._autoplay_timer.stop()
        s = self._saved
        # leaving the mode restores the state before it: masking switched on while presenting goes off
        # again (an image left black under normal overlays with nothing saying why was the hazard)
        self.set_mask(bool(s.get("mask", False)))
        for vp in w.grid.all_viewports():
            self.prepare_viewport(vp)
        self._pending_uid = None  # a case still being opened is not shown after the mode ended
        w.stop_all()
        rows, cols = s.get("layout", (w.rows, w.cols))
        if (rows, cols) != (w.rows, w.cols):
            w.set_layout(rows, cols)
        self._restore_views(s.get("views"), int(s.get("current", 0)))
        vps = w.viewports
        self._resume = [vps[i] for i in s.get("playing", []) if i < len(vps) and vps[i].stack]
        if self._resume:
            self._resume_deadline = 200  # ticks of 50 ms: images still loading after 10 s stay paused
            self._resume_timer.start()
        if "report_panel" in s:
            w.set_report_panel_visible(bool(s["report_panel"]))
        w.menuBar().setVisible(s.get("menubar", True))
        w.statusBar().setVisible(s.get("statusbar", True))
        w.browser_dock.setVisible(s.get("browser", True))
        w.problems_dock.setVisible(s.get("problems", False))
        self.dock.setVisible(s.get("dock", True))
        if s.get("fullscreen"):
            pass  # it was full screen before presenting: stays so
        elif s.get("maximized"):
            w.showMaximized()
        else:
            w.showNormal()
        w.set_privacy(s.get("privacy", False))

    @staticmethod
    def _view_of(vp: Viewport) -> dict[str, Any] | None:
        """What a viewport shows (series, instance, frame) and how (window/level, zoom, pan, invert); None
        when it is empty."""
        inst = vp.instance
        if not vp.stack or inst is None:
            return None
        return {
            "series_uid": vp.series_uid,
            "instance_uid": inst.sop_instance_uid,
            "frame": int(vp.frame_index),
            "window_level": vp.window_level,
            "fit": vp.fit,
            "scale": vp.scale,
            "center": QPointF(vp.center),
            "invert": vp.invert,
        }

    def _restore_views(self, views: list[dict[str, Any] | None] | None, current: int) -> None:
        """Give each viewport of the restored layout back what it showed before presenting (a series no longer
        open leaves its viewport empty, said in the status bar), and the current viewport."""
        if views is None:
            return
        w = self.main_window
        vps = w.viewports
        missing = 0
        for vp, view in zip(vps, views):
            if view is None:
                if vp.stack:
                    vp.clear()
                continue
            inst = vp.instance
            same = (vp.stack and inst is not None and vp.series_uid == view["series_uid"]
                    and inst.sop_instance_uid == view["instance_uid"])
            if same:
                vp.set_frame(int(view["frame"]))
            elif not w.show_series(view["series_uid"], viewport=vp, instance_uid=view["instance_uid"],
                                   frame=int(view["frame"])):
                vp.clear()
                missing += 1
                continue
            # the user's view of the image: set after the series is opened (opening resets it to fit, no
            # window); the image loads in the background and keeps it
            vp.window_level = view["window_level"]
            vp.fit, vp.scale, vp.center = view["fit"], view["scale"], QPointF(view["center"])
            vp.invert = view["invert"]
            vp.redisplay()
        for vp in vps[len(views):]:
            if vp.stack:
                vp.clear()
        if vps:
            w.set_current_viewport(vps[max(0, min(len(vps) - 1, current))])
        if missing:
            w.statusBar().showMessage(
                f"{missing} viewport(s) left empty: the series they showed before presenting is no longer open.",
                10000)

    def next_case(self) -> None:
        if self.session is not None and self.session.cases:
            self.go_to(min(len(self.session.cases) - 1, self.index + 1))

    def previous_case(self) -> None:
        if self.session is not None and self.session.cases:
            self.go_to(max(0, self.index - 1))

    def current_case(self) -> MDTCase | None:
        if self.session is None or not (0 <= self.index < len(self.session.cases)):
            return None
        return self.session.cases[self.index]

    def go_to(self, index: int) -> None:
        """Bring case *index* on screen (opening it from the local store if needed)."""
        if self.session is None or not self.session.cases:
            return
        index = max(0, min(int(index), len(self.session.cases) - 1))
        commands = getattr(self.main_window, "commands", None)
        if index != self.index and commands is not None and not commands.offer_save():
            return  # unsaved measurements of this case: the user cancelled the switch
        self.index = index
        case = self.session.cases[index]
        self.set_banner()
        if self.case_list.count() > index:
            self.case_list.setCurrentRow(index)
        needed = [(case.study_uid, case.files)] + [
            (str(r.get("study_uid", "")), list(r.get("files") or [])) for r in case.related if r.get("study_uid")]
        paths = [p for uid, files in needed if self._study(uid) is None for p in self._case_paths(uid, files)]
        if not paths:
            if self._study(case.study_uid) is not None:
                self._show_case()
            elif case.is_remote:
                self.set_banner(f"study not available here: prefetch the session from {case.source} first")
            elif case.files:
                self.set_banner("study not available here: its files were moved or deleted")
            else:
                self.set_banner("study not available here: open its folder, or add it again")
            return
        self._pending_uid = case.study_uid  # shown when the local store's files are indexed
        self.main_window.open_paths([str(p) for p in paths])

    def _case_paths(self, study_uid: str, files: list[str]) -> list[Path]:
        """Where to open a study from: the files it was added from (when still there), else the local store."""
        here = [Path(f) for f in files if Path(f).is_file()]
        return here or self._local_paths(study_uid)

    def _local_paths(self, study_uid: str) -> list[Path]:
        """The case's files in the local store ([] when it has none, or cannot be read: said in the status bar)."""
        try:
            with LocalStore() as store:
                return list(store.study_paths(study_uid))
        except (OSError, sqlite3.Error, MdtError) as exc:
            self.main_window.statusBar().showMessage(error_text(exc, "Local store not read"), 10000)
            return []

    def _study(self, uid: str) -> Study | None:
        return self.main_window.study(uid)

    def _on_scan_finished(self) -> None:
        case = self.current_case()
        if self._pending_uid and case is not None and case.study_uid == self._pending_uid:
            self._pending_uid = None
            if self._study(case.study_uid) is not None:
                self._show_case()
            else:
                self.set_banner("study could not be opened")

    def _show_case(self) -> None:
        w = self.main_window
        case = self.current_case()
        if case is None:
            return
        st = self._study(case.study_uid)
        if st is None:
            return
        w.stop_all()
        series = list(w.image_series(st))[:MAX_PANES]
        related = []
        for rst in self._related_studies(case, st):
            if len(series) + len(related) >= MAX_PANES:
                break
            related.extend(w.image_series(rst)[:1])
        panes = series + related
        rows, cols = _layout_for(len(panes))
        w.set_layout(rows, cols)
        w.show_study(case.study_uid)
        for vp, se in zip(w.viewports[len(series):], related):
            vp.set_series(image_instances(se))
        for vp in w.viewports[len(panes):]:
            vp.clear()
        for vp in w.viewports:
            self.prepare_viewport(vp)
        w.set_report_panel_visible(True)
        self.set_banner()
        self._autoplay_deadline = 100  # ticks of 100 ms
        self._autoplay_timer.start()
        self._audit("study-opened", case.study_uid, {"presenter": "case", "case": self.index + 1})
        self.caseShown.emit(self.index)

    def _related_studies(self, case: MDTCase, st: Study) -> list[Study]:
        """The case's other imaging: studies named in the case, else the same patient's other open studies.

        Only ever the same identified patient (Patient ID + issuer): a related study of another patient,
        or any related study of a case without a Patient ID, is never laid beside the case."""
        own = self.main_window.patient_of(st.study_instance_uid)
        if own is None or not own.identified:
            return []
        out = []
        for r in case.related:
            rst = self._study(str(r.get("study_uid", "")))
            if rst is None or rst is st:
                continue
            if own.same_patient(self.main_window.patient_of(rst.study_instance_uid)):
                out.append(rst)
        if out:
            return out
        others = [s for s in own.studies.values() if s is not st]
        return sorted(others, key=lambda s: (s.study_date or "", s.study_time or ""), reverse=True)

    def add_current_as_related(self) -> None:
        """Show the current study beside the selected case (e.g. the patient's CT)."""
        st = self.main_window.current_study()
        row = self.case_list.currentRow()
        if st is None or self.session is None or row < 0:
            self.main_window.statusBar().showMessage("Select a case and open the related study first.", 5000)
            return
        case = self.session.cases[row]
        mine = self.main_window.patient_of(case.study_uid)
        theirs = self.main_window.patient_of(st.study_instance_uid)
        if st.study_instance_uid != case.study_uid and (mine is None or not mine.same_patient(theirs)):
            self.main_window.statusBar().showMessage(
                "Not added: that study is not the same identified patient as the case "
                "(Patient ID and issuer must match).",
                8000,
            )
            return
        if st.study_instance_uid != case.study_uid and all(
            r.get("study_uid") != st.study_instance_uid for r in case.related
        ):
            case.related.append({"study_uid": st.study_instance_uid, "source": "local"})
        self._refresh_list()

    def _autoplay(self) -> None:
        self._autoplay_deadline -= 1
        w = self.main_window
        cines = [v for v in w.viewports if v.stack and v.is_cine()]
        waiting = [v for v in w.viewports if v.stack and v.loaded is None]
        if cines and not waiting:
            if not any(v.playing for v in cines):
                w.play(cines, leader=cines[0])
            self._autoplay_timer.stop()
        elif self._autoplay_deadline <= 0 or (not waiting and not cines):
            self._autoplay_timer.stop()

    def _resume_playing(self) -> None:
        """Play again the loops that played before presenting, once their images are loaded (they are reopened
        in the background).  A user who starts or stops a loop meanwhile has the last word."""
        self._resume_deadline -= 1
        w = self.main_window
        targets = [v for v in self._resume if v in w.viewports and v.stack]
        if self.active or not targets or any(v.playing for v in w.viewports):
            self._resume_timer.stop()
            return
        if any(v.loaded is None for v in targets):
            if self._resume_deadline <= 0:
                self._resume_timer.stop()
            return
        self._resume_timer.stop()
        cines = [v for v in targets if v.is_cine()]
        if cines:
            cur = w.current_viewport()
            w.play(cines, leader=cur if cur in cines else cines[0])

    def set_banner(self, extra: str = "") -> None:
        case = self.current_case()
        if case is None or self.session is None:
            self.banner.setText("")
            return
        parts = [f"Case {self.index + 1} of {len(self.session.cases)}"]
        if case.label and not _same_case_number(case.label, self.index + 1):  # not "Case 1 of 2 · Case 1"
            parts.append(self._safe(case.label))
        if case.note:
            parts.append(self._safe(case.note))
        if self.mask_burned_in:
            parts.append("burned-in text masked")
        if extra:
            parts.append(extra)
        self._banner_text = "  ·  ".join(parts)
        self._fit_banner()

    def _fit_banner(self) -> None:
        """The banner's text cut to the window's width (the whole text in its tooltip)."""
        full = self._banner_text
        room = max(100, self.main_window.width() - 40)
        self.banner.setText(self.banner.fontMetrics().elidedText(full, Qt.TextElideMode.ElideRight, room))
        self.banner.setToolTip(full)

    def _audit(self, event: str, study_uid: str | None, detail: dict) -> None:
        try:
            from mdtviewer.infra import audit

            audit.record(event, study_uid=study_uid, detail=detail)
        except Exception:
            log.warning("audit record failed", exc_info=True)

    # ------------------------------------------------------------------ masking
    def set_mask(self, on: bool) -> None:
        changed = self.mask_burned_in != bool(on)
        self.mask_burned_in = bool(on)
        for vp in self.main_window.grid.all_viewports():
            self.prepare_viewport(vp)
            if vp.stack and vp.loaded is not None:
                vp.redisplay()
        self.set_banner()
        if changed:
            self.maskChanged.emit(self.mask_burned_in)

    def keep_rects(self) -> dict[str, list[int]]:
        case = self.current_case()
        return case.keep_rects if case is not None else self._loose_rects

    def set_keep_rect(self, series_uid: str, rect) -> None:
        x0, y0, x1, y1 = (int(v) for v in rect)
        self.keep_rects()[series_uid] = [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)]
        for vp in self.main_window.viewports:
            if vp.series_uid == series_uid and vp.loaded is not None:
                vp.redisplay()

    def filter_frame(self, vp: Viewport, arr: np.ndarray) -> np.ndarray:
        """The display frame with burned-in text masked (when masking is on): the viewport's privacy plan
        (regions, template, detection, OCR: the one privacy mode applies, worked out in the background;
        black until it is known), narrowed by a keep-rectangle drawn in the session for a series without
        regions.  An image the plan hides stays black."""
        if not self.mask_burned_in or arr is None:
            return arr
        plan = vp.masking_plan()
        if plan is None or plan.hidden:
            return np.zeros_like(arr)
        out = plan.apply(arr)
        rect = None if (vp.loaded is not None and vp.loaded.regions) else self.keep_rects().get(vp.series_uid)
        if rect:
            try:
                keep = masking.keep_mask(arr.shape[0], arr.shape[1], [tuple(rect)])
            except masking.CleanPixelError:
                return np.zeros_like(arr)
            out = masking.apply_mask(out, keep, 0)
        return out

    def prepare_viewport(self, vp: Viewport) -> None:
        """Presenter text size and masking for *vp* (the window calls it for every new viewport too)."""
        vp.set_overlay_scale(OVERLAY_SCALE if self.active else 1.0)
        if id(vp) not in self._filtered:
            vp.installEventFilter(self)  # for drawing keep-rectangles
            self._filtered.add(id(vp))
        vp.set_display_filter(self.filter_frame if self.mask_burned_in else None)

    def arm_keep_rect(self) -> None:
        self._draw_armed = True
        self.main_window.statusBar().showMessage(
            "Drag on the image to mark the area to keep (the image, not the text).", 10000
        )
        self.set_banner("drag to mark the area to keep")

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:
        if obj is self.main_window and ev.type() == QEvent.Type.Resize:
            self._fit_banner()  # full screen or a smaller window: the banner follows the width
            return False
        if not self._draw_armed or not isinstance(obj, Viewport):
            return False
        t = ev.type()
        if t == QEvent.Type.MouseButtonPress and ev.button() == Qt.MouseButton.LeftButton:
            self._drawing = (obj, ev.position())
            return True
        if t == QEvent.Type.MouseButtonRelease and self._drawing is not None and self._drawing[0] is obj:
            start = self._drawing[1]
            self._drawing = None
            self._draw_armed = False
            x0, y0 = obj.to_image(start)
            x1, y1 = obj.to_image(ev.position())
            w, h = obj.image_size()
            clip = lambda v, hi: int(max(0, min(hi - 1, round(v))))  # noqa: E731
            if obj.series_uid:
                self.set_keep_rect(obj.series_uid, (clip(x0, w), clip(y0, h), clip(x1, w), clip(y1, h)))
            self.set_banner()
            return True
        return t == QEvent.Type.MouseMove and self._drawing is not None


def _same_case_number(label: str, number: int) -> bool:
    """A label that only numbers the case as the banner's "Case N of M" does ("Case 1", "case #1", "1")."""
    import re

    m = re.fullmatch(r"\s*(?:case\s*#?\s*)?(\d+)\s*", label, re.IGNORECASE)
    return m is not None and int(m.group(1)) == number
