"""The review window: study browser, viewports in a layout, report panel beside them.

The window is the shell that composes the parts, each in its own module:

* :mod:`mdtviewer.ui.actions` declares every command (menu, text, shortcut,
  handler); the window builds its menus and Help › Keyboard and mouse from it;
* :class:`~mdtviewer.ui.viewer.grid.ViewportGrid` lays out the viewports;
* :class:`~mdtviewer.ui.viewer.playback.PlaybackController` plays the cines;
* :class:`~mdtviewer.ui.viewer.problems.ProblemsList` lists the files that cannot be used;
* :mod:`mdtviewer.ui.help` shows Help › Keyboard and mouse (from the action table) and About;
* the features are imported and wired here, explicitly: the report panel,
  the review editor dock, the MDT presenter, the PACS and export dialogs.
  A feature that cannot be imported stops the start-up with the error
  (never a window with a menu missing).

Public API other parts of the UI use: ``open_paths(paths)``,
``set_privacy(on)`` / ``privacy``, ``set_layout(rows, cols)``,
``viewports``, ``current_viewport()``, ``show_instance(uid, frame_1based=None)``,
``studies()``, ``image_series(study)``, ``current_study()``, ``index``,
``report_panel``, ``review_editor``, ``presenter``, ``action(id)``, ``menu(name)``.
"""

from __future__ import annotations

import gc
import logging
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QColor, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QLabel,
    QListWidget,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QWidget,
)

import mdtviewer.ui.qtfix  # noqa: F401  (first: PySide6 6.12 None refcount bug, see there)
from mdtviewer.dicom.index import StudyIndex
from mdtviewer.dicom.model import Instance, Patient, Series, Study
from mdtviewer.imaging.framecache import DEFAULT_CACHE_BYTES
from mdtviewer.infra import paths as mdt_paths
from mdtviewer.infra import settings
from mdtviewer.infra.lazymodule import LazyModule
from mdtviewer.ui import actions as action_table
from mdtviewer.ui import help as help_pages
from mdtviewer.ui import tasks
from mdtviewer.ui.actions import ACTIONS, MENUS, SUBMENUS, ActionSpec
from mdtviewer.ui.commands import ViewerCommands
from mdtviewer.ui.dialogs import pacs_dialog
from mdtviewer.ui.dialogs.pacs_dialog import OutboxRetrier
from mdtviewer.ui.mdt.presenter import Presenter
from mdtviewer.ui.reports.measurement_list import MeasurementList
from mdtviewer.ui.reports.report_panel import ReportPanel
from mdtviewer.ui.reports.worksheet_view import WorksheetView
from mdtviewer.ui.review.review_editor import ReviewDock, ReviewEditor
from mdtviewer.ui.viewer.browser import DOC_KINDS, StudyBrowser, image_instances, patients_of
from mdtviewer.ui.viewer.grid import LAYOUTS, ViewportGrid, layout_for_count
from mdtviewer.ui.viewer.overlays import HIDDEN, format_date, format_person_name
from mdtviewer.ui.viewer.playback import PlaybackController
from mdtviewer.ui.viewer.problems import ProblemsList
from mdtviewer.ui.viewer.viewport import Viewport
from mdtviewer.ui.viewer.workers import FrameService, LoadedImage, key_image_uids, start_scan

if TYPE_CHECKING:
    from mdtviewer.ui.dialogs import export_dialog, template_dialog
    from mdtviewer.ui.review import logbook_view
    from mdtviewer.ui.review.logbook_view import LogbookWindow
else:
    # features first opened from a menu: found now (a missing part stops the start, as every feature's
    # import does), executed when first opened; pyqtgraph alone was ~0.2 s of start-up (issue 12.5)
    export_dialog = LazyModule("mdtviewer.ui.dialogs.export_dialog")
    template_dialog = LazyModule("mdtviewer.ui.dialogs.template_dialog")
    logbook_view = LazyModule("mdtviewer.ui.review.logbook_view")

log = logging.getLogger(__name__)

__all__ = ["LAYOUTS", "MainWindow", "app_instance"]

MAX_RECENT = 10


#: a colour per patient when several are on screen (frame of each viewport), and its name for the overlay
PATIENT_COLOURS = [("#1e90ff", "blue"), ("#ff8c00", "orange"), ("#d000d0", "magenta"), ("#00c070", "green")]


#: patient names that de-identification tools put in place of a name (title: "Anonymous patient")
_PLACEHOLDER_NAME = re.compile(r"^\W*(anonymi[sz]ed|anonymous|anon|removed|de-?identified)\b", re.IGNORECASE)


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
        self.index = StudyIndex()
        self.privacy = False
        self._scan: tasks.Task | None = None
        self._scan_queue: list[list[str]] = []
        self._scanning_paths: list[str] = []
        #: show the newest study when a scan ends (`mdtviewer open` lays out its PATHs itself)
        self.autofill = True
        #: once the user picks a layout, opening a study no longer changes it
        self._layout_chosen = False
        self.measure_mode = False
        self.overlays_visible = True
        #: View › Show withdrawn images (audit): the browser may open an image a rejection note withdrew
        self.show_withdrawn = False
        self._report_sig: tuple | None = None
        self._pnum_sig: tuple | None = None
        self._pnum: dict[str, int] = {}
        self.pacs_dialog: pacs_dialog.PacsDialog | None = None
        self.export_dialog: export_dialog.ExportDialog | None = None
        self.keys_dialog: QWidget | None = None
        self.extracted_archives: list[Path] = []

        # central: viewport grid | report panel
        self.grid = ViewportGrid(self.service, self, setup=self._setup_viewport)
        self.grid.currentChanged.connect(self._on_current_changed)
        self.grid.seriesDropped.connect(self._on_series_dropped)
        self.grid.pathsDropped.connect(self.open_paths)
        self.grid.statusMessage.connect(lambda m: self.statusBar().showMessage(m, 10000))
        self.grid.layoutChanged.connect(self._on_layout_changed)
        self.playback = PlaybackController(self.grid, self)
        self.playback.message.connect(lambda m: self.statusBar().showMessage(m, 3000))
        self.playback.speedChanged.connect(self._check_speed_action)
        self.playback.syncChanged.connect(lambda on: self._set_checked("cine.sync", on))
        self.report_panel = ReportPanel(self)
        self.report_panel.setMinimumWidth(200)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.addWidget(self.grid)
        self.splitter.addWidget(self.report_panel)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.setCentralWidget(self.splitter)
        self.report_panel.imageReferenceActivated.connect(self._on_report_reference)
        # a rejection note fetched from the PACS withdraws local images too, not only the reports it names
        self.report_panel.rejectionNotesFound.connect(self._index_rejection_notes)
        self._notes_indexed: set[str] = set()
        # the vessel worksheet of the study's measurement reports (issue 15.4): a tab of the report panel
        self.worksheet_view = WorksheetView(self)
        self.report_panel.add_tab(self.worksheet_view, "Worksheet")
        self.worksheet_view.imageReferenceActivated.connect(self._on_report_reference)
        self.report_panel.loaded.connect(lambda: self.worksheet_view.set_entries(self.report_panel.entries()))
        # each saved measurement, clickable to its image and frame (issue 15: ui/reports/measurement_list)
        self.measurement_list = MeasurementList(self)
        self.report_panel.add_tab(self.measurement_list, "Measurements")
        self.measurement_list.imageReferenceActivated.connect(self._on_report_reference)
        self.report_panel.loaded.connect(lambda: self.measurement_list.set_entries(self.report_panel.entries()))

        # docks
        self.browser = StudyBrowser(self)
        self.browser_dock = QDockWidget("Studies", self)
        self.browser_dock.setObjectName("studiesDock")
        self.browser_dock.setWidget(self.browser)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.browser_dock)
        self.problems = ProblemsList(self)
        self.problems_dock = QDockWidget("Problems", self)
        self.problems_dock.setObjectName("problemsDock")
        self.problems_dock.setWidget(self.problems)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.problems_dock)
        self.problems_dock.hide()
        self.browser.seriesActivated.connect(self._on_series_activated)
        self.browser.documentActivated.connect(self.show_instance)
        self.browser.thumbnailWanted.connect(self.service.request_thumbnail)
        self.service.thumbReady.connect(self.browser.set_thumbnail)
        self.service.thumbFailed.connect(self._on_thumb_failed)
        self.service.frameFailed.connect(self._on_frame_failed)
        self.service.imageLoaded.connect(self._on_image_loaded)
        self.problems.follow(self.service)  # regions/timing refused in an opened image: listed with the reason
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
        # the problem count, kept by the Problems list itself (files found undecodable after the scan join it
        # later): the status bar and the dock's title show the same number, never a count of their own
        self.problems_label = QLabel("", self)
        self.problems_label.setObjectName("problemsCount")
        self.statusBar().addPermanentWidget(self.problems_label)
        self.problems_label.hide()
        self.problems.countChanged.connect(self._on_problem_count)
        # a damaged settings file was set aside at start (infra.settings): said until the window closes, or the
        # PACS nodes and reviewer profile are simply gone with no reason (QA3 3)
        kept = settings.take_set_aside()
        self.settings_label = QLabel("", self)
        self.settings_label.setObjectName("settingsSetAside")
        self.settings_label.setStyleSheet("QLabel { color: #ffb000; font-weight: bold; padding: 1px 6px; }")
        self.statusBar().addPermanentWidget(self.settings_label)
        self.settings_label.setVisible(bool(kept))
        if kept:
            self.settings_label.setText("Settings file damaged: defaults in use (PACS nodes, reviewer profile)")
            self.settings_label.setToolTip(
                "The settings file could not be read and was kept as " + ", ".join(str(k) for k in kept)
                + ". The PACS nodes, reviewer profile and viewer settings in it are not in use; set them again, "
                "or repair that file and put it back as " + str(mdt_paths.settings_file()) + ".")
        # more than one patient's images on screen: said in the window, each viewport framed in its colour
        self.patients_label = QLabel("", self)
        self.patients_label.setObjectName("patientsOnScreen")
        self.patients_label.setStyleSheet(
            "QLabel { background: #b00020; color: white; font-weight: bold; padding: 1px 6px; }")
        self.statusBar().addPermanentWidget(self.patients_label)
        self.patients_label.hide()
        self._screen_timer = QTimer(self)
        self._screen_timer.setSingleShot(True)
        self._screen_timer.setInterval(0)
        self._screen_timer.timeout.connect(self._on_screen_changed)
        self._n_patients_on_screen = 0
        self.report_panel.screen_context = self.screen_context
        self.report_panel.patient_number = self.patient_number
        # failures of background jobs that no panel shows itself: the reason, or "internal error … (log)"
        tasks.errors.reported.connect(self._on_task_error)

        # while a scan runs the browser takes what the index placed since its last look, 20 times a
        # second (a few ms of row inserts each time: never a rebuild, never a signal per file)
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setInterval(50)
        self._refresh_timer.timeout.connect(self._refresh_browser)

        # features, wired explicitly (their commands are in the action table)
        self.review_dock = ReviewDock(self, self)
        self.review_editor: ReviewEditor = self.review_dock.editor
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.review_dock)
        self.review_dock.hide()
        self.report_panel.documentShown.connect(lambda _uid: self.review_editor.update_edit_button())
        self.presenter = Presenter(self)
        self.presenter.maskChanged.connect(lambda on: self._set_checked("mdt.mask", on))
        self.outbox_retrier = OutboxRetrier(self)
        # key images, DICOM tags, window/level presets, full screen (issue 15; actions name them commands.*)
        self.commands = ViewerCommands(self)
        for v in self.grid.all_viewports():
            self.commands.attach_viewport(v)

        self._actions: dict[str, QAction] = {}
        self._menus: dict[str, QMenu] = {}
        self._build_menus()
        self.grid.set_layout(1, 1)
        self.resize(1600, 900)
        self.resizeDocks([self.browser_dock], [330], Qt.Orientation.Horizontal)
        self.splitter.setSizes([900, 370])
        self.set_privacy(privacy)
        self._update_title()

    # ================================================================ menus (from the action table)
    def _build_menus(self) -> None:
        mb = self.menuBar()
        for name, title in MENUS:
            m = mb.addMenu(title)
            m.setObjectName(name)
            self._menus[name] = m
        groups: dict[str, QActionGroup] = {}
        for spec in ACTIONS:
            a = self._make_action(spec)
            self._actions[spec.id] = a
            if spec.group:
                g = groups.get(spec.group)
                if g is None:
                    g = groups[spec.group] = QActionGroup(self)
                g.addAction(a)
            if spec.menu:
                menu = self._menu_for(spec.menu)
                if spec.separator_before:
                    menu.addSeparator()
                menu.addAction(a)
            if spec.scope == "viewports":
                # only while a viewport has the focus: Return in the study browser opens the selected series
                a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                self.grid.addAction(a)
            else:
                self.addAction(a)
        # File › Recent studies: filled each time it opens
        self.recent_menu = QMenu("&Recent studies", self)
        self.recent_menu.aboutToShow.connect(self.fill_recent_menu)
        file_actions = self.file_menu.actions()
        after_demo = file_actions[file_actions.index(self._actions["file.open_demo"]) + 1]
        self.file_menu.insertMenu(after_demo, self.recent_menu)
        # the commands other code and tests reach by name
        self.privacy_action = self._actions["view.privacy"]
        self.overlay_action = self._actions["view.overlays"]
        self.report_action = self._actions["view.report_panel"]
        self.play_action = self._actions["cine.play"]
        self.loop_action = self._actions["cine.loop"]
        self.sync_action = self._actions["cine.sync"]
        self.measure_action = self._actions["tools.measure"]
        self.pacs_action = self._actions["file.pacs"]
        self.export_action = self._actions["file.export"]
        self.open_archive_action = self._actions["file.open_archive"]
        self.layout_actions: dict[tuple[int, int], QAction] = {
            (s.args[0], s.args[1]): self._actions[s.id] for s in ACTIONS if s.group == "layout"
        }
        self.speed_actions: dict[float, QAction] = {
            float(s.args[0]): self._actions[s.id] for s in ACTIONS if s.group == "speed"
        }

    def _make_action(self, spec: ActionSpec) -> QAction:
        if spec.dock:
            a = self._dock(spec.dock).toggleViewAction()
            if spec.text:
                a.setText(spec.text)
        else:
            a = QAction(spec.text, self)
            a.setCheckable(spec.checkable)
            a.setChecked(spec.checked)
            handler = self.handler(spec)
            if spec.checkable and not spec.group:
                a.toggled.connect(handler)
            else:
                args = spec.args
                a.triggered.connect(lambda _=False, h=handler, args=args: self._run_command(h, args))
        if spec.shortcut is not None:
            a.setShortcut(action_table.key_sequence(spec.shortcut))
            # window-wide: also with the menu bar hidden (presenting)
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        if spec.name:
            a.setObjectName(spec.name)
        if spec.tip:
            a.setStatusTip(spec.tip)
        return a

    def handler(self, spec: ActionSpec) -> Callable[..., Any]:
        """The callable a declared action runs: a method of the window or of one of its features."""
        target: Any = self
        for part in spec.handler.split("."):
            target = getattr(target, part)  # AttributeError: the table names a handler that does not exist
        if not callable(target):
            raise TypeError(f"action {spec.id}: {spec.handler} is not callable")
        return target

    def _dock(self, name: str) -> QDockWidget:
        target: Any = self
        for part in name.split("."):
            target = getattr(target, part)
        if not isinstance(target, QDockWidget):
            raise TypeError(f"{name} is not a dock")
        return target

    def _menu_for(self, path: str) -> QMenu:
        if path in self._menus:
            return self._menus[path]
        parent, _, _leaf = path.rpartition("/")
        m = self._menu_for(parent).addMenu(SUBMENUS.get(path, _leaf))
        m.setObjectName(path)
        self._menus[path] = m
        return m

    def _run_command(self, handler: Callable[..., Any], args: tuple) -> None:
        """A menu command; a feature imported on its first opening (export, templates, logbook)
        that fails to import is an error the user sees, with the log file's path, not a silent menu."""
        try:
            handler(*args)
        except ImportError as exc:
            from mdtviewer.ui.errors import show_error

            show_error(self, exc, "a part of the viewer cannot be imported")

    def action(self, action_id: str) -> QAction:
        """The window's QAction for a declared command (see :mod:`mdtviewer.ui.actions`)."""
        return self._actions[action_id]

    def menu(self, name: str) -> QMenu:
        """The top-level menu called *name* (File, View, Cine, Tools, Review, MDT, Help)."""
        return self._menus[name]

    @property
    def file_menu(self) -> QMenu:
        return self._menus["File"]

    @property
    def view_menu(self) -> QMenu:
        return self._menus["View"]

    @property
    def cine_menu(self) -> QMenu:
        return self._menus["Cine"]

    @property
    def tools_menu(self) -> QMenu:
        return self._menus["Tools"]

    @property
    def help_menu(self) -> QMenu:
        return self._menus["Help"]

    def _set_checked(self, action_id: str, on: bool) -> None:
        """Reflect a state in its checkable action without running the action's handler again."""
        a = self._actions.get(action_id)
        if a is not None and a.isChecked() != bool(on):
            a.blockSignals(True)
            a.setChecked(bool(on))
            a.blockSignals(False)

    # ================================================================ feature commands
    def open_pacs_dialog(self) -> pacs_dialog.PacsDialog:
        if self.pacs_dialog is None:
            self.pacs_dialog = pacs_dialog.PacsDialog(self)
        self.pacs_dialog.show()
        self.pacs_dialog.raise_()
        return self.pacs_dialog

    def open_export_dialog(self) -> export_dialog.ExportDialog:
        dlg = export_dialog.ExportDialog(self)
        dlg.resize(1100, 700)
        dlg.show()
        self.export_dialog = dlg
        return dlg

    def open_encrypted_archive(self, path: str | None = None, password: str | None = None) -> str | None:
        return export_dialog.open_encrypted_archive(self, path, password)

    def open_logbook(self) -> LogbookWindow:
        """Review › Logbook, worklist and audit (a window of its own; rows open their study and review)."""
        win = getattr(self, "logbook_window", None)
        if win is None:
            win = self.logbook_window = logbook_view.LogbookWindow(self, self)
            win.refresh()
        win.show()
        win.raise_()
        return win

    def comment_on_frame(self) -> None:
        """Review › Comment on this frame: the editor, with the cursor in its comment box."""
        self.review_dock.show()
        self.review_dock.raise_()
        self.review_editor.focus_comment()

    # ================================================================ layout and the current viewport
    @property
    def viewports(self) -> list[Viewport]:
        """The viewports of the current layout, row by row."""
        return self.grid.viewports()

    @property
    def rows(self) -> int:
        return self.grid.shape()[0]

    @property
    def cols(self) -> int:
        return self.grid.shape()[1]

    def _setup_viewport(self, vp: Viewport) -> None:
        """A new viewport of the grid takes the window's current settings."""
        vp.set_privacy(self.privacy)
        vp.set_patient_number_source(self.patient_number)
        vp.seriesShown.connect(lambda _vp: self._schedule_screen_check())
        # "hidden: may show identifiers — set a template for this scanner": one click to that template (C9)
        vp.templateRequested.connect(lambda v: template_dialog.open_from_warning(self, v))
        vp.set_measure_mode(self.measure_mode)
        if hasattr(self, "commands"):  # measurements drawn into the window's shared list (ui.commands)
            self.commands.attach_viewport(vp)
        vp.set_overlays_visible(self.overlays_visible)
        vp.set_loop(self.playback.loop)
        # presenter mode (masking, large text) applies to viewports made while presenting too
        self.presenter.prepare_viewport(vp)

    def choose_layout(self, rows: int, cols: int) -> None:
        """The user's layout choice (keys 1-5, View › Layout): kept when further studies are opened."""
        self._layout_chosen = True
        self.set_layout(rows, cols)

    def set_layout(self, rows: int, cols: int) -> None:
        self.grid.set_layout(rows, cols)

    def _on_layout_changed(self, rows: int, cols: int) -> None:
        a = self.layout_actions.get((rows, cols))
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
        if vp is not None:
            self.grid.toggle_maximise(vp)

    def toggle_maximise_current(self) -> None:
        self.grid.toggle_maximise(self.current_viewport())

    def maximised_viewport(self) -> Viewport | None:
        return self.grid.maximised()

    def current_viewport(self) -> Viewport:
        return self.grid.current()

    def set_current_viewport(self, vp: Viewport) -> None:
        self.grid.set_current(vp)

    def _on_current_changed(self, vp: Viewport) -> None:
        if vp.study_uid:
            st = self.study(vp.study_uid)
            if st is not None:
                self._study_changed(st)
        self._check_speed_action(vp.speed)

    def _check_speed_action(self, speed: float) -> None:
        a = self.speed_actions.get(speed)
        if a is not None:
            a.setChecked(True)
        else:  # a rate typed in the cine bar is none of the menu's steps: none is ticked
            for x in self.speed_actions.values():
                g = x.actionGroup()
                if g is not None:
                    g.setExclusionPolicy(QActionGroup.ExclusionPolicy.ExclusiveOptional)
                x.setChecked(False)

    # ================================================================ view commands (current viewport)
    def fit_to_window(self) -> None:
        self.current_viewport().fit_to_window()

    def actual_size(self) -> None:
        self.current_viewport().actual_size()

    def zoom_in(self) -> None:
        self.current_viewport().zoom_by(1.25)

    def zoom_out(self) -> None:
        self.current_viewport().zoom_by(0.8)

    def toggle_invert(self) -> None:
        vp = self.current_viewport()
        vp.set_invert(not vp.invert)

    def reset_window_level(self) -> None:
        self.current_viewport().reset_window()

    def set_overlays(self, on: bool) -> None:
        self.overlays_visible = bool(on)
        self._set_checked("view.overlays", on)
        for v in self.grid.all_viewports():
            v.set_overlays_visible(self.overlays_visible)

    def set_show_withdrawn(self, on: bool) -> None:
        """Audit view of withdrawn images (IHE IOCM): opened only from the browser, each marked WITHDRAWN in red.

        Turned off, a viewport showing a withdrawn image shows its series' current images (or nothing)."""
        self.show_withdrawn = bool(on)
        self._set_checked("view.show_withdrawn", self.show_withdrawn)
        if not self.show_withdrawn:
            self._drop_withdrawn()

    def _drop_withdrawn(self) -> None:
        """Viewports showing an image a rejection note withdrew (outside the audit view) show their series'
        current images instead, or nothing."""
        for vp in self.viewports:
            if any(i.withdrawn for i in vp.stack):
                _p, _st, se, _i = self._locate(series_uid=vp.series_uid)
                keep = image_instances(se) if se is not None else []
                if keep:
                    vp.set_series(keep)
                else:
                    vp.clear()

    def set_report_panel_visible(self, on: bool) -> None:
        self.report_panel.setVisible(bool(on))
        self._set_checked("view.report_panel", on)

    # ================================================================ cine (the playback controller)
    @property
    def sync(self) -> bool:
        return self.playback.sync

    def play_pause(self) -> None:
        self.playback.play_pause()

    def play(self, targets: list[Viewport] | None = None, leader: Viewport | None = None) -> None:
        """Start playing *targets* (default: the current viewport, or all cines when synchronised)."""
        self.playback.play(targets, leader)

    def stop_all(self) -> None:
        self.playback.stop_all()

    def step(self, delta: int) -> None:
        self.playback.step(delta)

    def first_frame(self) -> None:
        self.playback.first()

    def last_frame(self) -> None:
        self.playback.last()

    def set_speed(self, s: float) -> None:
        self.playback.set_speed(s)

    def faster(self) -> None:
        self.playback.faster()

    def slower(self) -> None:
        self.playback.slower()

    def set_loop(self, on: bool) -> None:
        self._set_checked("cine.loop", on)
        self.playback.set_loop(on)

    def set_sync(self, on: bool) -> None:
        """Synchronised play: every cine follows the current viewport by normalised loop position."""
        self._set_checked("cine.sync", on)
        self.playback.set_sync(on)

    def set_sync_stretch(self, on: bool) -> None:
        """The explicit choice: synchronised loops stretched to the leading loop's length (speed changes)."""
        self._set_checked("cine.sync_stretch", on)
        self.playback.set_stretch(on)

    # ================================================================ tools
    def set_measure_mode(self, on: bool) -> None:
        self.measure_mode = bool(on)
        self._set_checked("tools.measure", on)
        for v in self.grid.all_viewports():
            v.set_measure_mode(self.measure_mode)
        self.statusBar().showMessage(
            "Measure: drag a line on the image (distance in mm within one calibrated region)" if on else "Measure off",
            5000,
        )

    def clear_measurements(self) -> None:
        self.current_viewport().clear_measurements()

    def set_privacy(self, on: bool) -> None:
        """Hide (or show again) every patient identifier on screen; stays until switched off."""
        self.privacy = bool(on)
        self._set_checked("view.privacy", self.privacy)
        for v in self.grid.all_viewports():
            v.set_privacy(self.privacy)
        self.browser.set_privacy(self.privacy)
        self.report_panel.set_privacy(self.privacy)
        self.commands.set_privacy(self.privacy)
        self._refresh_problems()
        self._update_title()
        self.statusBar().showMessage(
            "Privacy ON: patient identifiers hidden (F9 to show)" if self.privacy else "Privacy off", 5000
        )

    def grab_png(self, path: str | Path) -> bool:
        return bool(self.grab().save(str(path), "PNG"))

    def screenshot_dialog(self) -> None:
        f, _ = QFileDialog.getSaveFileName(self, "Save screenshot", "mdtviewer.png", "PNG (*.png)")
        if f:
            self.grab_png(f)

    def set_cache_bytes(self, n: int) -> None:
        """Change the decoded-frame budget now and in the settings (viewer.cache_bytes)."""
        n = max(64 << 20, int(n))
        self.service.cache.set_max_bytes(n)
        tasks.persist(_save_viewer_setting, "cache_bytes", n)

    def masking_template_dialog(self) -> None:
        """Tools › Masking template for this scanner… (mdtviewer.ui.dialogs.template_dialog)."""
        template_dialog.open_for_viewport(self)

    def cache_dialog(self) -> None:
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

    # ================================================================ opening
    def open_paths(self, paths: list[str]) -> None:
        """Index files, folders or DICOMDIRs in the background; studies appear as found."""
        paths = [str(p) for p in paths if str(p)]
        if not paths:
            return
        if not self.commands.offer_save():  # another study/folder: unsaved measurements asked about first
            return
        self._add_recent(paths)
        if self._scan is not None:
            self._scan_queue.append(paths)
            return
        self._start_scan(paths)

    def _start_scan(self, paths: list[str]) -> None:
        self._scanning_paths = paths
        self._scan = start_scan(
            self, self.index, paths, progress=self._on_scan_progress, found=None,
            failed=lambda msg: self.statusBar().showMessage(f"Scan failed: {msg}", 10000),
            finished=lambda _task: self._on_scan_finished(),
        )
        self.progress.setRange(0, 0)
        self.progress.show()
        self.cancel_button.show()
        self.statusBar().showMessage("Scanning…")
        self._scan_progress = (0, 0)
        self._refresh_timer.start()

    def is_scanning(self) -> bool:
        return self._scan is not None or bool(self._scan_queue)

    def cancel_scan(self) -> None:
        if self._scan is not None:
            self._scan.request_cancel()
        self._scan_queue.clear()

    def _on_scan_progress(self, done: int, total: int) -> None:
        self._scan_progress = (done, total)  # shown by the refresh timer: a repaint per file stalled the UI

    def _refresh_browser(self) -> None:
        # what the scan built so far lives as long as the index: out of the collector's sight, or its
        # full collections over a growing heap hold every thread for 0.1-0.5 s (measured at 10k-50k files)
        gc.freeze()
        self.browser.refresh(self.index)
        done, total = self._scan_progress
        if total and (self.progress.maximum(), self.progress.value()) != (total, done):
            self.progress.setRange(0, total)
            self.progress.setValue(done)

    def _on_scan_finished(self) -> None:
        self.browser.refresh(self.index)
        if self.browser.pending():  # the tree still lists the last files, a few ms at a time: end the scan after
            self.browser.caughtUp.connect(self._on_scan_finished, Qt.ConnectionType.SingleShotConnection)
            return
        scan = self._scan
        cancelled = scan is not None and scan.cancel.is_set()
        self.progress.hide()
        self.cancel_button.hide()
        self._refresh_timer.stop()
        self._refresh_problems()
        n = sum(len(se.instances) for st in self.studies() for se in st.series.values())
        msg = f"{n} instances in {len(self.studies())} studies"
        if cancelled:
            msg = "Scan cancelled; " + msg
        self.statusBar().showMessage(msg, 8000)
        # the first study goes on screen in event-loop passes of its own (layout, then the study): with
        # the lines above in the same pass, the end of a 50,000-file scan held the UI thread ~0.2 s at once
        QTimer.singleShot(0, self, self._after_scan)

    def _after_scan(self) -> None:
        first_uid = ""
        if self.autofill and not any(vp.stack for vp in self.viewports):
            newest = sorted(self.studies(), key=lambda s: (s.study_date or "", s.study_time or ""), reverse=True)
            first = next((s for s in newest if any(image_instances(se) for se in s.series.values())), None)
            if first is not None:
                first_uid = first.study_instance_uid
                if not self._layout_chosen:
                    # side by side is the point of the review: one viewport per image series, up to 2×2
                    rows, cols = layout_for_count(len(self.image_series(first)))
                    if (rows, cols) != (self.rows, self.cols):
                        self.set_layout(rows, cols)
        # building the layout and filling it are each ~20 ms of CPU, and the background jobs the new
        # study starts (measurements, reports, frames) share the interpreter with this thread: one pass
        # each keeps every UI-thread stall under 100 ms (benchmarks/scan_large.py)
        QTimer.singleShot(0, self, lambda: self._show_after_scan(first_uid))

    def _show_after_scan(self, first_uid: str) -> None:
        if first_uid and not any(vp.stack for vp in self.viewports):
            self.show_study(first_uid)
        if not self.show_withdrawn:  # a rejection note this scan found withdraws what may be on screen
            self._drop_withdrawn()
        self._scan = None
        # shown once the scan has ended, with the lines a thumbnail found meanwhile (before this pass, a
        # thumbnail failing between the scan's end and here left its line in a hidden dock)
        if self.problems.count():  # how many: the status bar's problem label, kept current by the list
            self.problems_dock.show()
        # after the first study is on screen and its frames are decoding: a search over every instance
        # started at once held the interpreter while the new viewports were set up (~0.1 s stalls at 10k)
        QTimer.singleShot(300, self, self._find_key_images)
        if self._scan_queue:
            self._start_scan(self._scan_queue.pop(0))
        else:
            self.scanFinished.emit()

    def _index_rejection_notes(self, paths: list[str]) -> None:
        """Index rejection notes the report panel found outside the index (fetched from the PACS into the local
        store), so that they withdraw the study's images as a note in the opened folder does."""
        new = [p for p in paths if p not in self._notes_indexed]
        if not new:
            return
        self._notes_indexed.update(new)
        self.statusBar().showMessage(
            f"{len(new)} rejection note(s) from the PACS: the images they withdraw are taken off the study", 10000)
        if self._scan is not None:
            self._scan_queue.append(new)
        else:
            self._start_scan(new)

    def _refresh_problems(self) -> None:
        self.problems.set_privacy(self.privacy)
        self.problems.refresh(self.index, self.studies())  # the dock title and status bar follow countChanged

    def _on_problem_count(self, n: int) -> None:
        self.problems_dock.setWindowTitle(f"Problems ({n})" if n else "Problems")
        self.problems_label.setText(f"{n} problem file(s) (see Problems)")
        self.problems_label.setVisible(n > 0)

    def _find_key_images(self) -> None:
        studies = self.studies()

        # listing the KOS among 50,000 instances took ~40 ms of the UI thread: in the job too
        def job(_task: tasks.Task) -> set[str]:
            kos = [
                i.path
                for st in studies
                for se in list(st.series.values())
                for i in list(se.instances)
                if i.kind == "kos" and not i.withdrawn  # a key-image note a rejection note withdrew flags nothing
            ]
            return key_image_uids(kos) if kos else set()

        tasks.run(self, job, name="key-images", on_result=self.keyImagesFound.emit)

    def _on_task_error(self, message: str, bug: bool) -> None:
        self.statusBar().showMessage(message, 30000 if bug else 15000)

    def _on_key_images(self, uids: set[str]) -> None:
        self.browser.set_key_uids(uids)

    def _on_image_loaded(self, _token: object, li: LoadedImage) -> None:
        if li.error and self.problems.add_frame_problem(str(li.instance.path), li.error):
            self._refresh_problems()
            self.problems_dock.show()

    def _on_thumb_failed(self, series_uid: str, path: str, reason: str) -> None:
        """A series whose first frame cannot be decoded is found while making thumbnails, before anyone opens it."""
        self.browser.set_thumbnail_failed(series_uid, reason)
        if self.problems.add_frame_problem(path, f"frame 1 cannot be decoded: {reason}"):
            self._refresh_problems()
            if not self.is_scanning():
                self.problems_dock.show()

    def _on_frame_failed(self, key: object, reason: str) -> None:
        if not (isinstance(key, tuple) and key and isinstance(key[0], str)):
            return
        if self.problems.add_frame_problem(key[0], f"frame {key[1] + 1} cannot be decoded: {reason}"):
            self._refresh_problems()

    # dialogs
    def open_folder_dialog(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Open folder of DICOM files")
        if d:
            self.open_paths([d])

    def open_files_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open DICOM files", "", "DICOM (*.dcm *.DCM *);;All files (*)")
        if files:
            self.open_paths(files)

    def open_dicomdir_dialog(self) -> None:
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
        tasks.persist(_save_recent, list(self._recent))

    def recent(self) -> list[str]:
        return list(self._recent)

    def fill_recent_menu(self) -> None:
        """File › Recent studies, filled as it opens (paths hidden while privacy is on)."""
        self.recent_menu.clear()
        for r in self.recent():
            label = "(hidden while privacy is on)" if self.privacy else r
            a = self.recent_menu.addAction(label)
            a.triggered.connect(lambda _=False, r=r: self.open_paths([r]))
        if not self.recent():
            self.recent_menu.addAction("(none)").setEnabled(False)

    # drag and drop of files/folders onto the window
    def dragEnterEvent(self, ev: QDragEnterEvent) -> None:
        if ev.mimeData().hasUrls():
            ev.acceptProposedAction()

    def dropEvent(self, ev: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.open_paths(paths)
            ev.acceptProposedAction()

    # ================================================================ index helpers
    def studies(self) -> list[Study]:
        """Every open study (as the browser lists them)."""
        try:
            return [st for p in patients_of(self.index) for st in p.studies.values()]
        except RuntimeError:  # the scan thread changed a dict under us
            return []

    def study(self, study_uid: str) -> Study | None:
        """The open study with this Study Instance UID, or None."""
        return next((s for s in self.studies() if s.study_instance_uid == study_uid), None)

    def patients(self) -> list[Patient]:
        """The open studies' patients, in the browser's order."""
        try:
            return list(patients_of(self.index))
        except RuntimeError:
            return []

    def patient_of(self, study_uid: str) -> Patient | None:
        """The patient an open study belongs to (identity: Patient ID + issuer; no ID = its own patient)."""
        return next((p for p in self.patients() if study_uid and study_uid in p.studies), None)

    def _schedule_screen_check(self) -> None:
        timer = getattr(self, "_screen_timer", None)  # viewports made before the status bar is built
        if timer is not None:
            timer.start()

    def screen_context(self) -> list[dict[str, str]]:
        """Whose images are on screen: one entry per viewport showing a series (patient ID, issuer, study)."""
        out = []
        for vp in self.viewports:
            if not vp.stack or not vp.study_uid:
                continue
            p = self.patient_of(vp.study_uid)
            st = self.study(vp.study_uid)
            out.append({
                "patient_id": p.patient_id if p is not None else "",
                "issuer": p.issuer if p is not None else "",
                "study_uid": vp.study_uid,
                "study_date": st.study_date if st is not None else "",
            })
        return out

    def patients_on_screen(self) -> int:
        """How many different patients the viewports show now (identity: Patient ID + issuer)."""
        return self._n_patients_on_screen

    def _on_screen_changed(self) -> None:
        groups: list[Any] = []
        of_vp: dict[int, int] = {}
        for vp in self.viewports:
            if not vp.stack or not vp.study_uid:
                continue
            p = self.patient_of(vp.study_uid)
            who: Any = p if p is not None else vp.study_uid
            g = next((k for k, q in enumerate(groups)
                      if q is who or (isinstance(q, Patient) and q.same_patient(p))), None)
            if g is None:
                groups.append(who)
                g = len(groups) - 1
            of_vp[id(vp)] = g
        n = len(groups)
        self._n_patients_on_screen = n
        for vp in self.grid.all_viewports():
            g = of_vp.get(id(vp))
            if n > 1 and g is not None:
                colour, cname = PATIENT_COLOURS[g % len(PATIENT_COLOURS)]
                vp.set_patient_band(QColor(colour), f"{n} patients: {cname}")
            else:
                vp.set_patient_band(None)
        if n > 1:
            self.patients_label.setText(f"{n} patients on screen")
            self.patients_label.show()
        else:
            self.patients_label.hide()
        self.report_panel.update_context()
        self._update_title()

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
        if self._pnum_sig != sig:
            self._pnum_sig = sig
            self._pnum = {}
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
        st = self.study(study_uid)
        if st is None:
            return
        series = self.image_series(st)
        for vp, se in zip(self.viewports, series):
            vp.set_series(image_instances(se))
        self._study_changed(st)

    def show_series(
        self, series_uid: str, viewport: Viewport | None = None, instance_uid: str | None = None, frame: int = 0,
        audit: bool = False,
    ) -> bool:
        """Show a series' current images; withdrawn ones (IHE IOCM) only with *audit* (the browser, with
        View › Show withdrawn images on): no other caller lays out a withdrawn image."""
        _p, st, se, _i = self._locate(series_uid=series_uid)
        if se is None:
            return False
        imgs = image_instances(se, include_withdrawn=audit and self.show_withdrawn)
        if instance_uid and not any(i.sop_instance_uid == instance_uid for i in imgs):
            inst = next((i for i in se.instances if i.sop_instance_uid == instance_uid), None)
            if inst is not None and inst.withdrawn:
                self.statusBar().showMessage(
                    f"Withdrawn ({inst.withdrawn}): not shown. View › Show withdrawn images to audit it.", 10000)
                return False
        if not imgs:
            if any(i.withdrawn for i in se.instances):
                self.statusBar().showMessage(
                    "This series is withdrawn: not shown. View › Show withdrawn images to audit it.", 10000)
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
            self.report_panel.show_instance(sop_instance_uid)
            self.set_report_panel_visible(True)
            return True
        if inst.withdrawn and not self.show_withdrawn:  # a reference to it shows nothing else in its place
            self.statusBar().showMessage(
                f"That image is withdrawn ({inst.withdrawn}): not shown. View › Show withdrawn images to audit it.",
                10000)
            return False
        frame = max(0, (frame_1based or 1) - 1)
        for vp in self.viewports:
            if vp.series_uid == se.series_instance_uid:
                if vp.instance is not None and vp.instance.sop_instance_uid == sop_instance_uid:
                    vp.stop()
                    vp.set_frame(frame)
                else:
                    vp.set_series(image_instances(se, include_withdrawn=bool(inst.withdrawn)),
                                  start_uid=sop_instance_uid, frame=frame)
                self.set_current_viewport(vp)
                return True
        return self.show_series(se.series_instance_uid, instance_uid=sop_instance_uid, frame=frame,
                                audit=bool(inst.withdrawn))

    def _on_report_reference(self, uid: str, frame: int) -> None:
        _p, _st, _se, inst = self._locate(instance_uid=uid)
        if not self.show_instance(uid, frame or None) and not (inst is not None and inst.withdrawn):
            # a withdrawn image is open: show_instance said so, why, and how to audit it (QA3 #4)
            self.statusBar().showMessage("The referenced image is not in the open studies.", 8000)

    def _on_series_activated(self, payload: dict) -> None:
        self.show_series(payload.get("series", ""), instance_uid=payload.get("instance"), audit=True)

    def _on_series_dropped(self, vp: Viewport, payload: dict) -> None:
        self.show_series(payload.get("series", ""), viewport=vp, instance_uid=payload.get("instance"), audit=True)

    def _study_changed(self, st: Study) -> None:
        if st.study_instance_uid and st.study_instance_uid not in self._audited_studies:
            self._audited_studies.add(st.study_instance_uid)
            from mdtviewer.infra import audit

            # fsynced, maybe sent to a syslog server: never on the UI thread
            tasks.persist(
                audit.record, "study-opened", study_uid=st.study_instance_uid, detail={"instances": len(st.instances())}
            )
        docs = [i for i in st.instances() if i.kind in DOC_KINDS]
        sig = (st.study_instance_uid, tuple(i.sop_instance_uid for i in docs))
        if sig != self._report_sig:
            self._report_sig = sig
            self.report_panel.set_instances(docs, st.study_instance_uid)
        self.browser.set_current_study(st.study_instance_uid)
        self._update_title()

    def current_study(self) -> Study | None:
        vp = self.current_viewport()
        uid = vp.study_uid if vp is not None and vp.study_uid else self.browser.current_study
        return self.study(uid) if uid else None

    def _update_title(self) -> None:
        title = "mdtviewer"
        st = self.current_study()
        if self.privacy:
            title += f" — {HIDDEN} (privacy on, F9)"
        elif st is not None:
            p = next((p for p in patients_of(self.index) if st.study_instance_uid in p.studies), None)
            name = format_person_name(p.patient_name) if p is not None else ""
            if p is None or _PLACEHOLDER_NAME.match(name) or not (name or p.identified):
                # a de-identified study ("Anonymized", "ANONYMOUS", no name nor ID): say so, with what tells it
                # apart (its description, date), never a placeholder with empty parentheses
                title += " — Anonymous patient" + (f" ({p.patient_id})" if p is not None and p.identified else "")
                if st.study_description.strip():
                    title += f" — {st.study_description.strip()}"
            elif not p.identified:
                title += f" — {p.no_id_label()}: {name}"
            else:
                title += f" — {name or '(no name)'} ({p.patient_id})"
            if st.study_date:
                title += f" — {format_date(st.study_date)}"
        if getattr(self, "_n_patients_on_screen", 0) > 1:
            title += f" — {self._n_patients_on_screen} PATIENTS ON SCREEN"
        self.setWindowTitle(title)

    def shortcut_rows(self) -> list[tuple[str, str, str]]:
        """(menu, command, keys) for every declared command with a shortcut (from the action table)."""
        docks = {s.dock: self._dock(s.dock).windowTitle() for s in ACTIONS if s.dock}
        return action_table.shortcut_rows(docks)

    def show_keys(self) -> None:
        """Help › Keyboard and mouse: every declared key, and the mouse gestures."""
        self.keys_dialog = help_pages.keys_dialog(self, self.shortcut_rows())
        self.keys_dialog.open()

    def about(self) -> None:
        help_pages.show_about(self)

    def sizeHint(self) -> QSize:
        return QSize(1600, 900)

    def changeEvent(self, ev: QEvent) -> None:
        super().changeEvent(ev)
        if ev.type() == QEvent.Type.WindowStateChange and hasattr(self, "_actions"):
            # View › Full screen (F11) is ticked exactly when the window is full screen, whoever made it so
            # (F11, the MDT presenter entering or leaving, the window manager)
            self._set_checked("view.full_screen", self.isFullScreen())

    def closeEvent(self, ev: QCloseEvent) -> None:
        if not self.commands.offer_save():  # unsaved measurements: save, discard, or stay open
            ev.ignore()
            return
        self.stop_all()
        self.cancel_scan()
        self.service.close()  # decode workers cancelled and joined before any widget goes
        tasks.shutdown(self)  # every other job of the window and its panels, dialogs and add-ons
        tasks.flush()  # settings and audit writes reach the disk
        super().closeEvent(ev)

    # ================================================================ test helpers
    def visible_texts(self) -> list[str]:
        """Every text a person can see now: title, labels, tree items, list items, overlays, status."""
        from PySide6.QtWidgets import QAbstractButton, QLineEdit, QTextEdit, QTreeWidget

        out = [self.windowTitle(), self.statusBar().currentMessage()]
        for w in self.findChildren(QWidget):
            if not w.isVisible():
                continue
            if isinstance(w, (QLabel, QAbstractButton, QLineEdit)):
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
