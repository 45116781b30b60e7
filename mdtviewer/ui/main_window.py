"""The review window: study browser, viewports in a layout, report panel beside them.

Public API other parts of the UI hook into (keep these names):
``open_paths(paths)``, ``set_privacy(on)`` / ``privacy``, ``set_layout(rows, cols)``,
``viewports``, ``current_viewport()``, ``show_instance(uid, frame_1based=None)``,
``index``, ``report_panel``, and the menus File/View/Cine/Tools/Help.
Optional modules in :data:`OPTIONAL_UI_MODULES` are imported when present and
their ``install(window)`` is called.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import sys
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QGridLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

import mdtviewer.ui.qtfix  # noqa: F401  (first: PySide6 6.12 None refcount bug, see there)
from mdtviewer.dicom.model import Instance, Patient, Series, Study
from mdtviewer.imaging.framecache import DEFAULT_CACHE_BYTES
from mdtviewer.infra import paths as mdt_paths
from mdtviewer.infra import settings
from mdtviewer.ui import background_io
from mdtviewer.ui.viewer.browser import DOC_KINDS, StudyBrowser, image_instances, patients_of
from mdtviewer.ui.viewer.cine_player import SPEEDS, now
from mdtviewer.ui.viewer.overlays import HIDDEN, format_date, format_person_name
from mdtviewer.ui.viewer.viewport import Viewport
from mdtviewer.ui.viewer.workers import FrameService, ScanThread, key_image_uids

log = logging.getLogger(__name__)

#: UI modules written separately; each is imported if present and ``install(window)`` called
OPTIONAL_UI_MODULES = (
    "mdtviewer.ui.dialogs.pacs_dialog",
    "mdtviewer.ui.review.review_editor",
    "mdtviewer.ui.mdt.presenter",
    "mdtviewer.ui.dialogs.export_dialog",
)

LAYOUTS = ((1, 1), (1, 2), (2, 1), (2, 2), (1, 3))
#: layout chosen for a newly opened study by its number of image series (more: 2×2)
LAYOUT_FOR_COUNT = {0: (1, 1), 1: (1, 1), 2: (1, 2), 3: (1, 3)}
MAX_RECENT = 10
TICK_MS = 4


def _new_index() -> Any:
    from mdtviewer.dicom.index import StudyIndex

    return StudyIndex()


class _PlaceholderReportPanel(QWidget):
    """Stands in until mdtviewer.ui.reports.report_panel is available: lists the study's documents."""

    imageReferenceActivated = Signal(str, int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.list = QListWidget(self)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Reports"))
        lay.addWidget(self.list)

    def set_instances(self, instances: list[Instance]) -> None:
        self.list.clear()
        for i in instances:
            self.list.addItem(f"{i.kind.upper()}: {i.title or i.path.name}")

    def set_privacy(self, on: bool) -> None:  # nothing identifying is shown
        pass


def _make_report_panel(parent: QWidget) -> QWidget:
    try:
        from mdtviewer.ui.reports.report_panel import ReportPanel

        return ReportPanel(parent)
    except ModuleNotFoundError as exc:
        if exc.name != "mdtviewer.ui.reports.report_panel":
            log.warning("report panel unavailable: %s", exc)
    except Exception as exc:  # noqa: BLE001 - the images must still be reviewable
        log.warning("report panel failed to start: %s", exc)
    return _PlaceholderReportPanel(parent)


class MainWindow(QMainWindow):
    """The review window."""

    keyImagesFound = Signal(object)
    scanFinished = Signal()

    def __init__(self, privacy: bool = False, cache_bytes: int | None = None):
        super().__init__()
        self.setObjectName("MainWindow")
        self.setAcceptDrops(True)
        self._audited_studies: set[str] = set()
        cfg = settings.get_section("viewer") or {}
        # kept in memory: the File menu must not read the settings file each time it opens
        self._recent: list[str] = [str(r) for r in cfg.get("recent", []) or [] if isinstance(r, str)]
        if cache_bytes is None:
            cache_bytes = int(cfg.get("cache_bytes", DEFAULT_CACHE_BYTES) or DEFAULT_CACHE_BYTES)
        # decode threads hand the interpreter back to the UI thread within 1 ms (default 5 ms),
        # so a frame due now is not held up behind a worker's Python code
        sys.setswitchinterval(0.001)
        self.service = FrameService(cache_bytes, parent=self)
        self.service.default_fps = float(cfg.get("default_fps", 30.0) or 30.0)
        self.index = _new_index()
        self.privacy = False
        self._scan: ScanThread | None = None
        self._scan_queue: list[list[str]] = []
        self._scanning_paths: list[str] = []
        self._autofill = True
        #: once the user picks a layout, opening a study no longer changes it
        self._layout_chosen = False
        self._maximised: Viewport | None = None
        self._current: Viewport | None = None
        self._all_viewports: list[Viewport] = []
        self.viewports: list[Viewport] = []
        self.rows, self.cols = 1, 1
        self.sync = False
        self.measure_mode = False
        self.frame_problems: dict[str, str] = {}

        # central: viewport grid | report panel
        self.grid_host = QWidget(self)
        self.grid_host.setObjectName("viewportGrid")
        self.grid = QGridLayout(self.grid_host)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(2)
        self.grid_host.setStyleSheet("#viewportGrid { background: #202020; }")
        self.report_panel = _make_report_panel(self)
        self.report_panel.setMinimumWidth(200)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.addWidget(self.grid_host)
        self.splitter.addWidget(self.report_panel)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.setCentralWidget(self.splitter)
        if hasattr(self.report_panel, "imageReferenceActivated"):
            self.report_panel.imageReferenceActivated.connect(self._on_report_reference)

        # docks
        self.browser = StudyBrowser(self)
        self.browser_dock = QDockWidget("Studies", self)
        self.browser_dock.setObjectName("studiesDock")
        self.browser_dock.setWidget(self.browser)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.browser_dock)
        self.problems = QListWidget(self)
        self.problems.setObjectName("problemsList")
        # the reason is the point of the list: wrap it rather than cut it off at the dock's edge
        self.problems.setWordWrap(True)
        self.problems.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.problems.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.problems_dock = QDockWidget("Problems", self)
        self.problems_dock.setObjectName("problemsDock")
        self.problems_dock.setWidget(self.problems)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.problems_dock)
        self.problems_dock.hide()
        self.browser.seriesActivated.connect(self._on_series_activated)
        self.browser.documentActivated.connect(lambda uid: self.show_instance(uid))
        self.browser.thumbnailWanted.connect(self.service.request_thumbnail)
        self.service.thumbReady.connect(self.browser.set_thumbnail)
        self.service.thumbFailed.connect(self._on_thumb_failed)
        self.service.frameFailed.connect(self._on_frame_failed)
        self.service.imageLoaded.connect(self._on_image_loaded)
        self.keyImagesFound.connect(self._on_key_images)

        # status bar: message, scan progress + cancel
        self.progress = QProgressBar(self)
        self.progress.setMaximumWidth(220)
        self.progress.setFormat("Scanning %v/%m")
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.cancel_scan)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.cancel_button)
        self.progress.hide()
        self.cancel_button.hide()

        # cine: a precise single-shot timer re-armed for the next frame boundary of any playing viewport
        self.tick_timer = QTimer(self)
        self.tick_timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.tick_timer.setSingleShot(True)
        self.tick_timer.setInterval(TICK_MS)
        self.tick_timer.timeout.connect(self._tick)
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(250)
        self._refresh_timer.timeout.connect(self._refresh_browser)

        self._build_menus()
        self.set_layout(1, 1)
        self.resize(1600, 900)
        self.resizeDocks([self.browser_dock], [330], Qt.Orientation.Horizontal)
        self.splitter.setSizes([900, 370])
        self.set_privacy(privacy)
        self._update_title()
        self._install_optional()

    # ================================================================ menus
    def add_action(self, menu: QMenu, text: str, slot: Any, shortcut: Any = None, checkable: bool = False, name: str = "") -> QAction:
        """A menu action whose shortcut works window-wide (also with the menu bar hidden, e.g. presenting)."""
        a = QAction(text, self)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        a.setCheckable(checkable)
        if checkable:
            a.toggled.connect(slot)
        else:
            a.triggered.connect(lambda _=False: slot())
        if name:
            a.setObjectName(name)
        menu.addAction(a)
        self.addAction(a)
        return a

    def _build_menus(self) -> None:
        mb = self.menuBar()
        self.file_menu = mb.addMenu("&File")
        self.file_menu.setObjectName("File")
        self.view_menu = mb.addMenu("&View")
        self.view_menu.setObjectName("View")
        self.cine_menu = mb.addMenu("&Cine")
        self.cine_menu.setObjectName("Cine")
        self.tools_menu = mb.addMenu("&Tools")
        self.tools_menu.setObjectName("Tools")
        self.help_menu = mb.addMenu("&Help")
        self.help_menu.setObjectName("Help")

        f = self.file_menu
        self.add_action(f, "Open &folder…", self._open_folder_dialog, QKeySequence.StandardKey.Open)
        self.add_action(f, "Open f&iles…", self._open_files_dialog, "Ctrl+Shift+O")
        self.add_action(f, "Open &DICOMDIR…", self._open_dicomdir_dialog)
        self.add_action(f, "Open d&emo study", self.open_demo)
        self.recent_menu = f.addMenu("&Recent studies")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        f.addSeparator()
        self.add_action(f, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        v = self.view_menu
        lay = v.addMenu("&Layout")
        group = QActionGroup(self)
        self.layout_actions: dict[tuple[int, int], QAction] = {}
        for k, (r, c) in enumerate(LAYOUTS, 1):
            a = self.add_action(lay, f"{r}×{c}", lambda r=r, c=c: self.choose_layout(r, c), str(k))
            a.setCheckable(True)
            group.addAction(a)
            self.layout_actions[(r, c)] = a
        mx = self.add_action(
            v, "Maximise / restore viewport", lambda: self.toggle_maximise(self.current_viewport()), "Return"
        )
        # only while a viewport has the focus: Return in the study browser opens the selected series
        self.removeAction(mx)
        mx.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.grid_host.addAction(mx)
        v.addSeparator()
        self.add_action(v, "&Fit to window", lambda: self._each_current("fit_to_window"), "F")
        self.add_action(v, "Actual size (1:1)", lambda: self._each_current("actual_size"), "Ctrl+1")
        self.add_action(v, "Zoom in", lambda: self._cur_call(lambda vp: vp.zoom_by(1.25)), "+")
        self.add_action(v, "Zoom out", lambda: self._cur_call(lambda vp: vp.zoom_by(0.8)), "-")
        self.add_action(v, "&Invert", lambda: self._cur_call(lambda vp: vp.set_invert(not vp.invert)), "I")
        self.add_action(v, "&Reset window/level", lambda: self._each_current("reset_window"), "R")
        self.overlay_action = self.add_action(v, "Show &overlays", self._set_overlays, "O", checkable=True)
        self.overlay_action.setChecked(True)
        v.addSeparator()
        self.privacy_action = self.add_action(
            v, "&Privacy: hide patient identifiers", self.set_privacy, "F9", checkable=True, name="privacyAction"
        )
        v.addSeparator()
        self.report_action = self.add_action(v, "Report &panel", self.report_panel.setVisible, "F4", checkable=True)
        self.report_action.setChecked(True)
        v.addAction(self.browser_dock.toggleViewAction())
        v.addAction(self.problems_dock.toggleViewAction())

        c = self.cine_menu
        self.play_action = self.add_action(c, "&Play / pause", self.play_pause, "Space")
        self.add_action(c, "Next frame", lambda: self.step(1), "Right")
        self.add_action(c, "Previous frame", lambda: self.step(-1), "Left")
        self.add_action(c, "First frame", lambda: self._cur_call(lambda vp: vp.first(), sync=True), "Home")
        self.add_action(c, "Last frame", lambda: self._cur_call(lambda vp: vp.last(), sync=True), "End")
        sp = c.addMenu("&Speed")
        sgroup = QActionGroup(self)
        self.speed_actions: dict[float, QAction] = {}
        for s in SPEEDS:
            a = QAction(f"{s:g}×", self)
            a.setCheckable(True)
            a.triggered.connect(lambda _=False, s=s: self.set_speed(s))
            sgroup.addAction(a)
            sp.addAction(a)
            self.speed_actions[s] = a
        self.speed_actions[1.0].setChecked(True)
        self.add_action(c, "Faster", lambda: self.set_speed(min(4.0, self.current_viewport().speed * 2)), "]")
        self.add_action(c, "Slower", lambda: self.set_speed(max(0.25, self.current_viewport().speed / 2)), "[")
        self.loop_action = self.add_action(c, "&Loop", self._set_loop, "L", checkable=True)
        self.loop_action.setChecked(True)
        self.sync_action = self.add_action(c, "&Synchronise viewports", self.set_sync, "S", checkable=True)

        t = self.tools_menu
        self.measure_action = self.add_action(t, "&Measure distance", self.set_measure_mode, "M", checkable=True)
        self.add_action(t, "Clear measurements", self.clear_measurements, "Delete")
        self.add_action(t, "Save &screenshot…", self._screenshot_dialog, "Ctrl+Shift+S")
        self.add_action(t, "Frame &cache size…", self._cache_dialog)

        h = self.help_menu
        self.add_action(h, "&Keyboard and mouse", self._show_keys, "F1")
        self.add_action(h, "&About mdtviewer", self._about)

    def menu(self, name: str) -> QMenu:
        """The top-level menu called *name* (File, View, Cine, Tools, Help, or one an add-on created)."""
        for a in self.menuBar().actions():
            m = a.menu()
            if m is not None and (m.objectName() == name or a.text().replace("&", "") == name):
                return m
        m = self.menuBar().addMenu(name)
        m.setObjectName(name)
        return m

    def _install_optional(self) -> None:
        self.optional_modules: dict[str, Any] = {}
        for name in OPTIONAL_UI_MODULES:
            try:
                mod = importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name == name:
                    continue
                log.warning("optional UI module %s failed to import: %s", name, exc)
                continue
            except Exception as exc:  # noqa: BLE001 - a broken add-on must not stop the viewer
                log.warning("optional UI module %s failed to import: %s", name, exc)
                continue
            try:
                install = getattr(mod, "install", None)
                if install is not None:
                    install(self)
                self.optional_modules[name] = mod
            except Exception as exc:  # noqa: BLE001
                log.warning("optional UI module %s failed to install: %s", name, exc)

    # ================================================================ opening
    def open_paths(self, paths: list[str]) -> None:
        """Index files, folders or DICOMDIRs in the background; studies appear as found."""
        paths = [str(p) for p in paths if str(p)]
        if not paths:
            return
        self._add_recent(paths)
        if self._scan is not None:
            self._scan_queue.append(paths)
            return
        self._start_scan(paths)

    def _start_scan(self, paths: list[str]) -> None:
        self._scanning_paths = paths
        self._scan = ScanThread(self.index, paths, self)
        self._scan.progress.connect(self._on_scan_progress)
        self._scan.instanceFound.connect(lambda _i: self._schedule_refresh())
        self._scan.failed.connect(lambda msg: self.statusBar().showMessage(f"Scan failed: {msg}", 10000))
        self._scan.finished.connect(self._on_scan_finished)
        self.progress.setRange(0, 0)
        self.progress.show()
        self.cancel_button.show()
        self.statusBar().showMessage("Scanning…")
        self._scan.start()

    def is_scanning(self) -> bool:
        return self._scan is not None or bool(self._scan_queue)

    def cancel_scan(self) -> None:
        if self._scan is not None:
            self._scan.cancel()
        self._scan_queue.clear()

    def _on_scan_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)

    def _schedule_refresh(self) -> None:
        if not self._refresh_timer.isActive():
            # the first study shows at once; after that the tree is rebuilt at most 4 times a second
            self._refresh_timer.start(0 if self.browser.tree.topLevelItemCount() == 0 else 250)

    def _refresh_browser(self) -> None:
        self.browser.refresh(self.index)

    def _on_scan_finished(self) -> None:
        scan = self._scan
        self._scan = None
        cancelled = scan is not None and scan.cancel_event.is_set()
        self.progress.hide()
        self.cancel_button.hide()
        self.browser.refresh(self.index)
        self._refresh_problems()
        n = sum(len(st.instances()) for st in self._studies())
        msg = f"{n} instances in {len(self._studies())} studies"
        if cancelled:
            msg = "Scan cancelled; " + msg
        if self.problems.count():
            msg += f"; {self.problems.count()} problem file(s) (see Problems)"
            self.problems_dock.show()
        self.statusBar().showMessage(msg, 8000)
        self._find_key_images()
        if self._autofill and not any(vp.stack for vp in self.viewports):
            newest = sorted(self._studies(), key=lambda s: (s.study_date or "", s.study_time or ""), reverse=True)
            first = next((s for s in newest if any(image_instances(se) for se in s.series.values())), None)
            if first is not None:
                if not self._layout_chosen:
                    # side by side is the point of the review: one viewport per image series, up to 2×2
                    n = len(self.image_series(first))
                    rows, cols = LAYOUT_FOR_COUNT.get(n, (2, 2))
                    if (rows, cols) != (self.rows, self.cols):
                        self.set_layout(rows, cols)
                self.show_study(first.study_instance_uid)
        if scan is not None:
            scan.deleteLater()
        if self._scan_queue:
            self._start_scan(self._scan_queue.pop(0))
        else:
            self.scanFinished.emit()

    def _refresh_problems(self) -> None:
        self.problems.clear()
        probs = [(Path(p.path), p.reason) for p in getattr(self.index, "problems", []) or []]
        for st in self._studies():
            for inst in st.instances():
                if inst.error:
                    probs.append((Path(inst.path), inst.error))
        probs += [(Path(p), r) for p, r in self.frame_problems.items()]
        # duplicate SOP Instance UIDs: the first file found is shown, the others are named here, never merged
        # silently (the kept file's name may hold a patient's name: not while privacy is on)
        for kept, dup, _uid in list(getattr(self.index, "duplicates", []) or []):
            same_as = "another file" if self.privacy else Path(kept).name
            probs.append((Path(dup), f"same SOP Instance UID as {same_as}: not shown (the first file found is shown)"))
        for n, (path, reason) in enumerate(probs, 1):
            shown = f"file {n}" if self.privacy else path.name
            it = QListWidgetItem(f"{shown} — {reason}")
            # the path can hold a patient's name (folders named after patients): not while privacy is on
            it.setToolTip(reason if self.privacy else f"{path}\n{reason}")
            self.problems.addItem(it)
        self.problems_dock.setWindowTitle(f"Problems ({len(probs)})")

    def _find_key_images(self) -> None:
        kos = [inst.path for st in self._studies() for inst in st.instances() if inst.kind == "kos"]
        if not kos:
            return
        threading.Thread(
            target=lambda: self.keyImagesFound.emit(key_image_uids(kos)), daemon=True, name="mdt-kos"
        ).start()

    def _on_key_images(self, uids: set[str]) -> None:
        self.browser.set_key_uids(uids)

    def _on_image_loaded(self, _token: Any, li: Any) -> None:
        if li.error and str(li.instance.path) not in self.frame_problems:
            self.frame_problems[str(li.instance.path)] = li.error
            self._refresh_problems()
            self.problems_dock.show()

    def _on_thumb_failed(self, series_uid: str, path: str, reason: str) -> None:
        """A series whose first frame cannot be decoded is found while making thumbnails, before anyone opens it."""
        self.browser.set_thumbnail_failed(series_uid, reason)
        if path not in self.frame_problems:
            self.frame_problems[path] = f"frame 1 cannot be decoded: {reason}"
            self._refresh_problems()
            if not self.is_scanning():
                self.problems_dock.show()

    def _on_frame_failed(self, key: Any, reason: str) -> None:
        if isinstance(key, tuple) and key and isinstance(key[0], str) and key[0] not in self.frame_problems:
            self.frame_problems[key[0]] = f"frame {key[1] + 1} cannot be decoded: {reason}"
            self._refresh_problems()

    # dialogs
    def _open_folder_dialog(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Open folder of DICOM files")
        if d:
            self.open_paths([d])

    def _open_files_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open DICOM files", "", "DICOM (*.dcm *.DCM *);;All files (*)")
        if files:
            self.open_paths(files)

    def _open_dicomdir_dialog(self) -> None:
        f, _ = QFileDialog.getOpenFileName(self, "Open DICOMDIR", "", "DICOMDIR (DICOMDIR dicomdir);;All files (*)")
        if f:
            self.open_paths([f])

    def open_demo(self) -> bool:
        demo = mdt_paths.resources_dir() / "demo"
        if not demo.is_dir():
            QMessageBox.warning(self, "Demo study", "The demo study is not installed.")
            return False
        self.open_paths([str(demo)])
        return True

    def _add_recent(self, paths: list[str]) -> None:
        """Put *paths* first in File › Recent; saved on the I/O thread (no disk wait on a click)."""
        # absolute, not resolve(): resolving walks the file system (a slow network share) on the UI thread
        new = [os.path.abspath(p) for p in paths]
        recent: list[str] = []
        for r in new + self._recent:
            if r not in recent:
                recent.append(r)
        self._recent = recent[:MAX_RECENT]
        background_io.submit(_save_recent, list(self._recent))

    def recent(self) -> list[str]:
        return list(self._recent)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for r in self.recent():
            label = "(hidden while privacy is on)" if self.privacy else r
            a = self.recent_menu.addAction(label)
            a.triggered.connect(lambda _=False, r=r: self.open_paths([r]))
        if not self.recent():
            self.recent_menu.addAction("(none)").setEnabled(False)

    # drag and drop of files/folders onto the window
    def dragEnterEvent(self, ev: Any) -> None:
        if ev.mimeData().hasUrls():
            ev.acceptProposedAction()

    def dropEvent(self, ev: Any) -> None:
        paths = [u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.open_paths(paths)
            ev.acceptProposedAction()

    # ================================================================ index helpers
    def _studies(self) -> list[Study]:
        try:
            return [st for p in patients_of(self.index) for st in p.studies.values()]
        except RuntimeError:
            return []

    def _locate(
        self, *, series_uid: str = "", instance_uid: str = ""
    ) -> tuple[Patient | None, Study | None, Series | None, Instance | None]:
        for p in patients_of(self.index):
            for st in p.studies.values():
                for se in st.series.values():
                    if series_uid and se.series_instance_uid == series_uid:
                        return p, st, se, None
                    if instance_uid:
                        for inst in se.instances:
                            if inst.sop_instance_uid == instance_uid:
                                return p, st, se, inst
        return None, None, None, None

    def patient_number(self, study_uid: str) -> int | None:
        """1-based number of the study's patient, as the browser lists them ("Patient N" while privacy is on)."""
        try:
            sig = tuple(len(p.studies) for p in patients_of(self.index))
        except RuntimeError:
            sig = None
        if getattr(self, "_pnum_sig", None) != sig:
            self._pnum_sig = sig
            self._pnum: dict[str, int] = {}
            try:
                for n, p in enumerate(patients_of(self.index), 1):
                    for uid in p.studies:
                        self._pnum[uid] = n
            except RuntimeError:  # the scan thread changed a dict under us: ask again next paint
                self._pnum_sig = None
        return self._pnum.get(study_uid)

    def image_series(self, study: Study) -> list[Series]:
        out = [se for se in study.series.values() if image_instances(se)]
        return sorted(out, key=lambda s: (s.series_number is None, s.series_number or 0, s.series_instance_uid))

    # ================================================================ showing
    def show_study(self, study_uid: str) -> None:
        """Fill the viewports with the study's image series, in series order."""
        st = next((s for s in self._studies() if s.study_instance_uid == study_uid), None)
        if st is None:
            return
        series = self.image_series(st)
        for vp, se in zip(self.viewports, series):
            vp.set_series(image_instances(se))
        self._study_changed(st)

    def show_series(
        self, series_uid: str, viewport: Viewport | None = None, instance_uid: str | None = None, frame: int = 0
    ) -> bool:
        _p, st, se, _i = self._locate(series_uid=series_uid)
        if se is None:
            return False
        imgs = image_instances(se)
        if not imgs:
            return False
        vp = viewport or self.current_viewport()
        vp.set_series(imgs, start_uid=instance_uid, frame=frame)
        self.set_current_viewport(vp)
        if st is not None:
            self._study_changed(st)
        return True

    def show_instance(self, sop_instance_uid: str, frame_1based: int | None = None) -> bool:
        """Bring an instance (and frame, 1-based) on screen: images in a viewport, documents in the report panel."""
        _p, st, se, inst = self._locate(instance_uid=sop_instance_uid)
        if inst is None or se is None:
            self.statusBar().showMessage("That image is not in the open studies.", 8000)
            return False
        if inst.kind in DOC_KINDS:
            if st is not None:
                self._study_changed(st)
            show = getattr(self.report_panel, "show_instance", None)
            if callable(show):
                show(sop_instance_uid)
            self.report_panel.setVisible(True)
            return True
        frame = max(0, (frame_1based or 1) - 1)
        for vp in self.viewports:
            if vp.series_uid == se.series_instance_uid:
                if vp.instance is not None and vp.instance.sop_instance_uid == sop_instance_uid:
                    vp.stop()
                    vp.set_frame(frame)
                else:
                    vp.set_series(image_instances(se), start_uid=sop_instance_uid, frame=frame)
                self.set_current_viewport(vp)
                return True
        return self.show_series(se.series_instance_uid, instance_uid=sop_instance_uid, frame=frame)

    def _on_report_reference(self, uid: str, frame: int) -> None:
        if not self.show_instance(uid, frame or None):
            self.statusBar().showMessage("The referenced image is not in the open studies.", 8000)

    def _on_series_activated(self, payload: dict) -> None:
        self.show_series(payload.get("series", ""), instance_uid=payload.get("instance"))

    def _on_series_dropped(self, vp: Viewport, payload: dict) -> None:
        self.show_series(payload.get("series", ""), viewport=vp, instance_uid=payload.get("instance"))

    def _study_changed(self, st: Study) -> None:
        if st.study_instance_uid and st.study_instance_uid not in self._audited_studies:
            self._audited_studies.add(st.study_instance_uid)
            from mdtviewer.infra import audit

            # fsynced, maybe sent to a syslog server: never on the UI thread
            background_io.submit(
                audit.record, "study-opened", study_uid=st.study_instance_uid, detail={"instances": len(st.instances())}
            )
        docs = [i for i in st.instances() if i.kind in DOC_KINDS]
        sig = (st.study_instance_uid, tuple(i.sop_instance_uid for i in docs))
        if sig != getattr(self, "_report_sig", None):
            self._report_sig = sig
            try:
                self.report_panel.set_instances(docs, st.study_instance_uid)
            except TypeError:
                self.report_panel.set_instances(docs)
        self.browser.set_current_study(st.study_instance_uid)
        self._update_title()

    def current_study(self) -> Study | None:
        vp = self.current_viewport()
        uid = vp.study_uid if vp is not None and vp.study_uid else self.browser.current_study
        return next((s for s in self._studies() if s.study_instance_uid == uid), None)

    def _update_title(self) -> None:
        title = "mdtviewer"
        st = self.current_study()
        if self.privacy:
            title += f" — {HIDDEN} (privacy on, F9)"
        elif st is not None:
            p = next((p for p in patients_of(self.index) if st.study_instance_uid in p.studies), None)
            if p is not None:
                title += f" — {format_person_name(p.patient_name) or '(no name)'} ({p.patient_id})"
            if st.study_date:
                title += f" — {format_date(st.study_date)}"
        self.setWindowTitle(title)

    # ================================================================ layout
    def choose_layout(self, rows: int, cols: int) -> None:
        """The user's layout choice (keys 1-5, View › Layout): kept when further studies are opened."""
        self._layout_chosen = True
        self.set_layout(rows, cols)

    def set_layout(self, rows: int, cols: int) -> None:
        rows, cols = max(1, min(4, int(rows))), max(1, min(4, int(cols)))
        n = rows * cols
        while len(self._all_viewports) < n:
            vp = Viewport(self.service, len(self._all_viewports) + 1, self.grid_host)
            vp.activated.connect(self.set_current_viewport)
            vp.maximiseToggled.connect(self.toggle_maximise)
            vp.seriesDropped.connect(self._on_series_dropped)
            vp.pathsDropped.connect(self.open_paths)
            vp.statusMessage.connect(lambda m: self.statusBar().showMessage(m, 10000))
            vp.frameChanged.connect(self._on_frame_changed)
            vp.set_privacy(self.privacy)
            vp.patient_number = self.patient_number
            vp.measure_mode = self.measure_mode
            vp.overlays_visible = self.overlay_action.isChecked() if hasattr(self, "overlay_action") else True
            self._all_viewports.append(vp)
        for vp in self._all_viewports:
            self.grid.removeWidget(vp)
            vp.hide()
        for vp in self._all_viewports[n:]:
            vp.stop()
        self.viewports = self._all_viewports[:n]
        for k, vp in enumerate(self.viewports):
            self.grid.addWidget(vp, k // cols, k % cols)
            vp.show()
        self.rows, self.cols = rows, cols
        self._maximised = None
        if self._current not in self.viewports:
            self.set_current_viewport(self.viewports[0])
        self._mark_current()
        a = self.layout_actions.get((rows, cols)) if hasattr(self, "layout_actions") else None
        if a is not None:
            a.setChecked(True)
        # fill newly shown empty viewports with the study's next series
        st = self.current_study()
        if st is not None:
            shown = {vp.series_uid for vp in self.viewports if vp.stack}
            rest = [se for se in self.image_series(st) if se.series_instance_uid not in shown]
            for vp in self.viewports:
                if not vp.stack and rest:
                    vp.set_series(image_instances(rest.pop(0)))

    def toggle_maximise(self, vp: Viewport | None) -> None:
        if vp is None:
            return
        if self._maximised is not None:
            for v in self.viewports:
                v.show()
            self._maximised = None
        else:
            for v in self.viewports:
                v.setVisible(v is vp)
            self._maximised = vp
        self.set_current_viewport(vp)
        self._mark_current()

    def current_viewport(self) -> Viewport:
        return self._current if self._current in self.viewports else self.viewports[0]

    def set_current_viewport(self, vp: Viewport) -> None:
        if self._current is vp:
            return
        if self._current is not None:
            self._current.active = False
            self._current.update()
        self._current = vp
        self._mark_current()
        if vp.study_uid:
            st = next((s for s in self._studies() if s.study_instance_uid == vp.study_uid), None)
            if st is not None:
                self._study_changed(st)
        self._sync_actions()

    def _mark_current(self) -> None:
        """The frame around the viewport that keys act on: shown whenever more than one viewport is visible."""
        visible = [v for v in self.viewports if not v.isHidden()]
        for v in self._all_viewports:
            on = v is self._current and len(visible) > 1
            if v.active != on:
                v.active = on
                v.update()

    def _sync_actions(self) -> None:
        vp = self.current_viewport()
        a = self.speed_actions.get(vp.speed) if hasattr(self, "speed_actions") else None
        if a is not None:
            a.setChecked(True)

    def _cur_call(self, fn: Any, sync: bool = False) -> None:
        vp = self.current_viewport()
        fn(vp)
        if sync and self.sync:
            self._follow(vp)

    def _each_current(self, method: str) -> None:
        getattr(self.current_viewport(), method)()

    def _on_frame_changed(self, vp: Viewport) -> None:
        pass

    # ================================================================ cine
    def play_pause(self) -> None:
        vp = self.current_viewport()
        targets = [v for v in self.viewports if v.is_cine()] if self.sync else [vp]
        if any(v.playing for v in targets):
            for v in targets:
                v.stop()
        else:
            self.play(targets, leader=vp)
        self._update_timer()

    def play(self, targets: list[Viewport] | None = None, leader: Viewport | None = None) -> None:
        """Start playing *targets* (default: the current viewport, or all cines when synchronised)."""
        leader = leader or self.current_viewport()
        if targets is None:
            targets = [v for v in self.viewports if v.is_cine()] if self.sync else [leader]
        wall = now()
        if self.sync and leader.clock is not None:
            p = leader.position()
            loop_ms = leader.clock.total_ms
            for v in targets:
                v.speed = leader.speed
                v.start(wall, position=p, loop_ms=loop_ms)
        else:
            for v in targets:
                v.start(wall)
        self._update_timer()

    def stop_all(self) -> None:
        for v in self._all_viewports:
            v.stop()
        self._update_timer()

    def _update_timer(self) -> None:
        playing = any(v.playing for v in self.viewports)
        if playing and not self.tick_timer.isActive():
            self.tick_timer.start(0)
        elif not playing and self.tick_timer.isActive():
            self.tick_timer.stop()

    def _tick(self) -> None:
        t = now()
        nxt = None
        for v in self.viewports:
            if v.playing:
                v.tick(t)
                if v.play is not None:
                    w = v.play.next_change_wall(t)
                    nxt = w if nxt is None else min(nxt, w)
        if nxt is None:
            self.tick_timer.stop()
            return
        wait_ms = math.ceil(max(0.0, nxt - now()) * 1000.0)
        self.tick_timer.start(max(1, min(TICK_MS * 25, wait_ms)))

    def step(self, delta: int) -> None:
        vp = self.current_viewport()
        if vp.playing:
            self.play_pause()
        vp.step(delta)
        if self.sync:
            self._follow(vp)

    def _follow(self, leader: Viewport) -> None:
        p = leader.position()
        for v in self.viewports:
            if v is not leader and v.is_cine() and not v.playing:
                v.seek_position(p)

    def set_speed(self, s: float) -> None:
        s = max(0.25, min(4.0, float(s)))
        targets = self.viewports if self.sync else [self.current_viewport()]
        was = [v for v in targets if v.playing]
        for v in targets:
            v.stop()
            v.speed = s
        if was:
            self.play([v for v in targets if v.is_cine()] if self.sync else was, leader=self.current_viewport())
        a = self.speed_actions.get(s)
        if a is not None:
            a.setChecked(True)
        self.statusBar().showMessage(f"Speed {s:g}×", 3000)

    def _set_loop(self, on: bool) -> None:
        for v in self._all_viewports:
            v.loop = bool(on)
            if v.play is not None:
                v.play.loop = bool(on)

    def set_sync(self, on: bool) -> None:
        """Synchronised play: every cine follows the current viewport by normalised loop position."""
        self.sync = bool(on)
        if self.sync_action.isChecked() != self.sync:
            self.sync_action.setChecked(self.sync)
        playing = any(v.playing for v in self.viewports)
        if self.sync:
            leader = self.current_viewport()
            if playing:
                for v in self.viewports:
                    v.stop()
                self.play([v for v in self.viewports if v.is_cine()], leader=leader)
            else:
                self._follow(leader)
        self.statusBar().showMessage("Viewports synchronised" if self.sync else "Viewports play independently", 3000)

    # ================================================================ tools
    def set_measure_mode(self, on: bool) -> None:
        self.measure_mode = bool(on)
        if self.measure_action.isChecked() != self.measure_mode:
            self.measure_action.setChecked(self.measure_mode)
        for v in self._all_viewports:
            v.measure_mode = self.measure_mode
            v.setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.ArrowCursor)
        self.statusBar().showMessage(
            "Measure: drag a line on the image (distance in mm within one calibrated region)" if on else "Measure off",
            5000,
        )

    def clear_measurements(self) -> None:
        vp = self.current_viewport()
        vp.measurements.clear()
        vp.update()

    def _set_overlays(self, on: bool) -> None:
        for v in self._all_viewports:
            v.overlays_visible = bool(on)
            v.update()

    def set_privacy(self, on: bool) -> None:
        """Hide (or show again) every patient identifier on screen; stays until switched off."""
        self.privacy = bool(on)
        if self.privacy_action.isChecked() != self.privacy:
            self.privacy_action.blockSignals(True)
            self.privacy_action.setChecked(self.privacy)
            self.privacy_action.blockSignals(False)
        for v in self._all_viewports:
            v.set_privacy(self.privacy)
        self.browser.set_privacy(self.privacy)
        sp = getattr(self.report_panel, "set_privacy", None)
        if callable(sp):
            sp(self.privacy)
        self._refresh_problems()
        self._update_title()
        self.statusBar().showMessage(
            "Privacy ON: patient identifiers hidden (F9 to show)" if self.privacy else "Privacy off", 5000
        )

    def grab_png(self, path: str | Path) -> bool:
        return bool(self.grab().save(str(path), "PNG"))

    def _screenshot_dialog(self) -> None:
        f, _ = QFileDialog.getSaveFileName(self, "Save screenshot", "mdtviewer.png", "PNG (*.png)")
        if f:
            self.grab_png(f)

    def set_cache_bytes(self, n: int) -> None:
        """Change the decoded-frame budget now and in the settings (viewer.cache_bytes)."""
        n = max(64 << 20, int(n))
        self.service.cache.set_max_bytes(n)
        background_io.submit(_save_viewer_setting, "cache_bytes", n)

    def _cache_dialog(self) -> None:
        from PySide6.QtWidgets import QInputDialog

        cur = self.service.cache.max_bytes >> 20
        mb, ok = QInputDialog.getInt(
            self,
            "Frame cache",
            f"Memory for decoded frames (MB; now {self.service.cache.nbytes >> 20} MB used):",
            cur,
            64,
            65536,
            64,
        )
        if ok:
            self.set_cache_bytes(mb << 20)

    MOUSE_HELP = (
        ("Left-drag", "window/level (grey images); draws a line in measure mode (M)"),
        ("Right-drag or Ctrl+wheel", "zoom"),
        ("Middle-drag", "pan"),
        ("Wheel", "next/previous frame (or image of a stack)"),
        ("Double-click", "maximise the viewport / restore the layout"),
        ("Drag a series from Studies", "show it in that viewport"),
        ("Drop files or folders", "open them"),
    )

    def shortcut_rows(self) -> list[tuple[str, str, str]]:
        """(menu, command, keys) for every menu command with a shortcut, add-ons' included."""
        rows: list[tuple[str, str, str]] = []

        def walk(menu: QMenu, title: str) -> None:
            for a in menu.actions():
                if a.menu() is not None:
                    walk(a.menu(), title)
                elif not a.shortcut().isEmpty():
                    keys = a.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
                    rows.append((title, a.text().replace("&", "").rstrip("…"), keys))

        for top in self.menuBar().actions():
            if top.menu() is not None:
                walk(top.menu(), top.text().replace("&", ""))
        return rows

    def _keys_html(self) -> str:
        import html

        def table(rows: list[tuple[str, ...]]) -> str:
            # the key or gesture first, in bold: that is what the eye looks for
            cells = "".join(
                "<tr>"
                + "".join(
                    f"<td style='padding:2px 14px 2px 0'>{'<b>' + html.escape(c) + '</b>' if k == 0 else html.escape(c)}</td>"
                    for k, c in enumerate(r)
                )
                + "</tr>"
                for r in rows
            )
            return f"<table>{cells}</table>"

        keys = [(k, f"Layout {t}" if t[:1].isdigit() else t, menu) for menu, t, k in self.shortcut_rows()]
        return (
            "<h3>Mouse</h3>"
            + table(list(self.MOUSE_HELP))
            + "<h3>Keys</h3>"
            + table(keys)
            + "<p>Privacy (F9) hides patient identifiers everywhere on screen until switched off.</p>"
        )

    def _show_keys(self) -> None:
        from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser

        dlg = QDialog(self)
        dlg.setObjectName("keysDialog")
        dlg.setWindowTitle("Keyboard and mouse")
        text = QTextBrowser(dlg)
        text.setHtml(self._keys_html())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, dlg)
        buttons.rejected.connect(dlg.reject)
        lay = QVBoxLayout(dlg)
        lay.addWidget(text)
        lay.addWidget(buttons)
        dlg.resize(620, 700)
        self.keys_dialog = dlg
        dlg.open()

    def _about(self) -> None:
        import html

        from mdtviewer import __version__

        QMessageBox.about(
            self,
            "About mdtviewer",
            f"<h3>mdtviewer {__version__}</h3>"
            "<p>DICOM review of vascular ultrasound: cines and stills beside the report, reviews and "
            "sign-off saved as DICOM SR in the patient's study.</p>"
            "<p><b>Not for primary diagnosis unless validated locally.</b></p>"
            f"<p>Data folder: {html.escape(str(mdt_paths.home()))}<br>"
            "Keyboard and mouse: F1. Licence: MIT.</p>",
        )

    def sizeHint(self) -> QSize:
        return QSize(1600, 900)

    def closeEvent(self, ev: Any) -> None:
        self.stop_all()
        self.cancel_scan()
        if self._scan is not None:
            self._scan.wait(3000)
        self.service.close()
        background_io.flush()
        super().closeEvent(ev)

    # ================================================================ test helpers
    def visible_texts(self) -> list[str]:
        """Every text a person can see now: title, labels, tree items, list items, overlays, status."""
        from PySide6.QtWidgets import QAbstractButton, QLineEdit, QTextEdit, QTreeWidget

        out = [self.windowTitle(), self.statusBar().currentMessage()]
        for w in self.findChildren(QWidget):
            if not w.isVisible():
                continue
            if isinstance(w, QLabel) or isinstance(w, QAbstractButton) or isinstance(w, QLineEdit):
                out.append(w.text())
            elif isinstance(w, QTextEdit):
                out.append(w.toPlainText())
            elif isinstance(w, QTreeWidget):
                root = w.invisibleRootItem()
                stack = [root.child(i) for i in range(root.childCount())]
                while stack:
                    it = stack.pop()
                    out.extend(it.text(c) for c in range(w.columnCount()))
                    out.append(it.toolTip(0))
                    stack.extend(it.child(i) for i in range(it.childCount()))
            elif isinstance(w, QListWidget):
                out.extend(w.item(i).text() for i in range(w.count()))
                out.extend(w.item(i).toolTip() for i in range(w.count()))
            elif isinstance(w, QDockWidget):
                out.append(w.windowTitle())
            if isinstance(w, Viewport):
                out.append(w.overlay_text())
        return [t for t in out if t]


def _save_viewer_setting(name: str, value: Any) -> None:
    cfg = settings.get_section("viewer") or {}
    cfg[name] = value
    settings.set_section("viewer", cfg)


def _save_recent(recent: list[str]) -> None:
    _save_viewer_setting("recent", recent)


def app_instance() -> QApplication:
    app = QApplication.instance()
    if app is None:
        app = QApplication(["mdtviewer"])
        app.setApplicationName("mdtviewer")
    return app  # type: ignore[return-value]
