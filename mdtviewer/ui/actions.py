"""Every command of the review window, declared in one table (as Spyder declares its actions).

The window builds its menus, window-wide shortcuts and Help › Keyboard and
mouse from :data:`ACTIONS`; a command is added here, not wired by hand.
``handler`` names a method of :class:`mdtviewer.ui.main_window.MainWindow`
(or of one of its features: ``"presenter.next_case"``); a test checks that
every handler exists, so a renamed method fails at once instead of leaving
a dead menu item.

Rules the window applies to a spec:

* ``checkable`` without ``group``: the handler gets the new state (toggled);
  otherwise the handler is called with ``args`` when the action is triggered.
* ``dock``: the action is that dock's own show/hide action (text and
  shortcut from the spec; ``text`` empty keeps the dock's title).
* ``scope="viewports"``: the shortcut works only while a viewport has the
  focus (Return in the study browser opens the selected series instead).
* ``menu=""``: a window-wide shortcut with no menu item (Esc leaves presenter mode).
* ``menu="View/Layout"``: an entry of a submenu.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QKeySequence

from mdtviewer.ui.viewer.cine_player import SPEEDS
from mdtviewer.ui.viewer.grid import CT_PRESETS, LAYOUTS

Shortcut = str | QKeySequence.StandardKey | None

#: top-level menus, left to right (object names; the title carries the mnemonic)
MENUS: tuple[tuple[str, str], ...] = (
    ("File", "&File"),
    ("View", "&View"),
    ("Cine", "&Cine"),
    ("Tools", "&Tools"),
    ("Review", "&Review"),
    ("MDT", "&MDT"),
    ("Help", "&Help"),
)
SUBMENUS: dict[str, str] = {"View/Layout": "&Layout", "Cine/Speed": "&Speed", "View/Window": "&Window/level presets"}


@dataclass(frozen=True)
class ActionSpec:
    """One command: where it sits, what it says, which key runs it, what it calls."""

    id: str
    text: str
    menu: str
    handler: str = ""
    shortcut: Shortcut = None
    checkable: bool = False
    checked: bool = False
    args: tuple = ()
    group: str = ""
    scope: str = "window"  # window | viewports
    dock: str = ""
    separator_before: bool = False
    name: str = ""  # objectName (tests and style sheets find the action by it)
    tip: str = ""


def _layout_specs() -> tuple[ActionSpec, ...]:
    return tuple(
        ActionSpec(
            f"view.layout.{r}x{c}",
            f"{r}×{c}",
            "View/Layout",
            "choose_layout",
            str(k),
            checkable=True,
            checked=(r, c) == (1, 1),
            args=(r, c),
            group="layout",
        )
        for k, (r, c) in enumerate(LAYOUTS, 1)
    )


def _speed_specs() -> tuple[ActionSpec, ...]:
    return tuple(
        ActionSpec(
            f"cine.speed.{s:g}",
            f"{s:g}×",
            "Cine/Speed",
            "set_speed",
            None,
            checkable=True,
            checked=s == 1.0,
            args=(s,),
            group="speed",
        )
        for s in SPEEDS
    )


ACTIONS: tuple[ActionSpec, ...] = (
    # ---------------------------------------------------------------- File
    ActionSpec("file.open_folder", "Open &folder…", "File", "open_folder_dialog", QKeySequence.StandardKey.Open),
    ActionSpec("file.open_files", "Open f&iles…", "File", "open_files_dialog", "Ctrl+Shift+O"),
    ActionSpec("file.open_dicomdir", "Open &DICOMDIR…", "File", "open_dicomdir_dialog"),
    ActionSpec("file.open_demo", "Open d&emo study", "File", "open_demo"),
    # (File › Recent studies is filled when it opens: the window puts it here)
    ActionSpec(
        "file.pacs",
        "&PACS…",
        "File",
        "open_pacs_dialog",
        "Ctrl+Shift+P",
        separator_before=True,
        name="pacsAction",
        tip="Query a PACS and retrieve studies into the local store",
    ),
    ActionSpec(
        "file.open_archive", "Open encr&ypted archive…", "File", "open_encrypted_archive", name="openArchiveAction"
    ),
    ActionSpec(
        "file.export", "&Export de-identified…", "File", "open_export_dialog", "Ctrl+E", name="exportDeidentifiedAction"
    ),
    ActionSpec("file.quit", "&Quit", "File", "close", QKeySequence.StandardKey.Quit, separator_before=True),
    # ---------------------------------------------------------------- View
    *_layout_specs(),
    ActionSpec(
        "view.maximise", "Maximise / restore viewport", "View", "toggle_maximise_current", "Return", scope="viewports"
    ),
    ActionSpec("view.fit", "&Fit to window", "View", "fit_to_window", "F", separator_before=True),
    ActionSpec("view.actual_size", "Actual size (1:1)", "View", "actual_size", "Ctrl+1"),
    ActionSpec("view.zoom_in", "Zoom in", "View", "zoom_in", "+"),
    ActionSpec("view.zoom_out", "Zoom out", "View", "zoom_out", "-"),
    ActionSpec("view.invert", "&Invert", "View", "toggle_invert", "I"),
    ActionSpec("view.reset_window", "&Reset window/level", "View", "reset_window_level", "R"),
    ActionSpec("view.overlays", "Show &overlays", "View", "set_overlays", "O", checkable=True, checked=True),
    # IHE IOCM: images a rejection note withdrew are never laid out on their own; an audit may look at one
    ActionSpec("view.show_withdrawn", "Show &withdrawn images (audit)", "View", "set_show_withdrawn",
               checkable=True, tip="Let a withdrawn image be opened from the study browser, marked WITHDRAWN in red"),
    # grey images: presets on the image's real range (after Modality LUT / Rescale), CT ones in HU (issue 15.6)
    ActionSpec("view.window.full", "Full range", "View/Window", "grid.window_preset", "F6", args=("full",),
               group="window_preset", tip="The lowest to the highest value of the frame on screen"),
    ActionSpec("view.window.contrast", "High contrast", "View/Window", "grid.window_preset", "F7",
               args=("contrast",), group="window_preset"),
    ActionSpec("view.window.soft", "Soft (low contrast)", "View/Window", "grid.window_preset", "F8",
               args=("soft",), group="window_preset"),
    *(ActionSpec(f"view.window.{k}", f"{label} (W {w:g}, L {c:g})", "View/Window", "grid.window_preset",
                 args=(k,), group="window_preset", separator_before=k == "ct_angio",
                 tip="CT only: a window in Hounsfield units")
      for k, (label, c, w) in CT_PRESETS.items()),
    ActionSpec("view.full_screen", "F&ull screen", "View", "commands.set_full_screen", "F11", checkable=True,
               name="fullScreenAction"),
    ActionSpec(
        "view.privacy",
        "&Privacy: hide patient identifiers",
        "View",
        "set_privacy",
        "F9",
        checkable=True,
        separator_before=True,
        name="privacyAction",
    ),
    ActionSpec(
        "view.report_panel",
        "Report &panel",
        "View",
        "set_report_panel_visible",
        "F4",
        checkable=True,
        checked=True,
        separator_before=True,
    ),
    ActionSpec("view.studies", "", "View", dock="browser_dock"),
    ActionSpec("view.problems", "", "View", dock="problems_dock"),
    # ---------------------------------------------------------------- Cine
    ActionSpec("cine.play", "&Play / pause", "Cine", "play_pause", "Space",
               tip="The current viewport (every cine when synchronised)"),
    ActionSpec("cine.play_all", "Play / pause &all viewports", "Cine", "playback.play_pause_all", "Shift+Space",
               name="playAllAction"),
    ActionSpec("cine.next", "Next frame", "Cine", "step", "Right", args=(1,)),
    ActionSpec("cine.previous", "Previous frame", "Cine", "step", "Left", args=(-1,)),
    ActionSpec("cine.first", "First frame", "Cine", "first_frame", "Home"),
    ActionSpec("cine.last", "Last frame", "Cine", "last_frame", "End"),
    *_speed_specs(),
    ActionSpec("cine.faster", "Faster", "Cine", "faster", "]"),
    ActionSpec("cine.slower", "Slower", "Cine", "slower", "["),
    ActionSpec("cine.loop", "&Loop", "Cine", "set_loop", "L", checkable=True, checked=True),
    ActionSpec("cine.sync", "&Synchronise viewports", "Cine", "set_sync", "S", checkable=True,
               tip="Start every loop together, each at its own native frame rate"),
    ActionSpec(
        "cine.sync_stretch",
        "S&tretch synchronised loops to the leading loop's length",
        "Cine",
        "set_sync_stretch",
        checkable=True,
        tip="Changes the other loops' playing speed: their overlays show the effective rate and factor",
    ),
    # ---------------------------------------------------------------- Tools
    ActionSpec("tools.measure", "&Measure distance", "Tools", "commands.measure_key", "M", checkable=True),
    ActionSpec("tools.clear_measurements", "Clear measurements", "Tools", "clear_measurements", "Delete"),
    # measuring tools (issue 15.1): each value from imaging.measurements, refused outside a calibrated region
    ActionSpec("tools.area", "&Area (polygon; double-click closes)", "Tools", "commands.set_tool", "A",
               args=("area",), name="areaToolAction"),
    ActionSpec("tools.ellipse", "Area (&ellipse, drag)", "Tools", "commands.set_tool", "E", args=("ellipse",)),
    ActionSpec("tools.angle", "An&gle (three clicks)", "Tools", "commands.set_tool", "G", args=("angle",)),
    ActionSpec("tools.length", "Polyline &length (double-click ends)", "Tools", "commands.set_tool", "T",
               args=("length",)),
    ActionSpec("tools.velocity", "Doppler &velocity at a point", "Tools", "commands.set_tool", "V",
               args=("velocity",), separator_before=True),
    ActionSpec("tools.psv", "&PSV caliper", "Tools", "commands.set_tool", "P", args=("psv",)),
    ActionSpec("tools.edv", "E&DV caliper", "Tools", "commands.set_tool", "D", args=("edv",)),
    ActionSpec("tools.ri", "&RI (PSV, then EDV)", "Tools", "commands.set_tool", "Shift+R", args=("ri",)),
    ActionSpec("tools.arrow", "&Arrow annotation (drag tail to head)", "Tools", "commands.set_tool", "Shift+A",
               args=("arrow",), separator_before=True),
    ActionSpec("tools.text", "Te&xt annotation (click, type, Return)", "Tools", "commands.set_tool", "Shift+T",
               args=("text",)),
    ActionSpec("tools.undo", "&Undo measurement", "Tools", "commands.undo", QKeySequence.StandardKey.Undo,
               separator_before=True, name="undoMeasurementAction"),
    ActionSpec("tools.save_measurements", "&Save measurements in the study", "Tools",
               "commands.save_measurements", QKeySequence.StandardKey.Save, name="saveMeasurementsAction",
               tip="Write a measurement SR (TID 1500) in the study, amending the last one, and send it"),
    ActionSpec("tools.key_image", "Mark &key image (Of Interest)", "Tools", "commands.mark_key_image", "K",
               args=("of-interest",), separator_before=True, name="keyImageAction",
               tip="Save a Key Object Selection naming this frame, in the study, and send it"),
    ActionSpec("tools.key_image_teaching", "Mark key image for &teaching", "Tools", "commands.mark_key_image",
               "Shift+K", args=("for-teaching",)),
    ActionSpec("tools.tags", "DICOM &tags…", "Tools", "commands.open_tag_browser", "Ctrl+T", name="tagBrowserAction"),
    ActionSpec("tools.screenshot", "Save &screenshot…", "Tools", "screenshot_dialog", "Ctrl+Shift+S"),
    ActionSpec("tools.cache", "Frame &cache size…", "Tools", "cache_dialog"),
    ActionSpec("tools.masking_template", "Masking &template for this scanner…", "Tools", "masking_template_dialog"),
    # ---------------------------------------------------------------- Review
    ActionSpec("review.editor", "Review &editor", "Review", shortcut="Ctrl+Shift+R", dock="review_dock"),
    ActionSpec("review.comment", "&Comment on this frame…", "Review", "comment_on_frame", "Ctrl+Shift+C"),
    ActionSpec("review.logbook", "&Logbook, worklist and audit…", "Review", "open_logbook", "Ctrl+Shift+L"),
    ActionSpec("review.profile", "Reviewer &profile…", "Review", "review_editor.edit_profile",
               tip="Who signs reviews on this account: name, role, registration (HCPC/RCCP), organisation"),
    # ---------------------------------------------------------------- MDT
    ActionSpec("mdt.new", "&New session", "MDT", "presenter.new_session"),
    ActionSpec("mdt.open", "&Open session…", "MDT", "presenter.open_dialog"),
    ActionSpec("mdt.save", "&Save session", "MDT", "presenter.save_session"),
    ActionSpec("mdt.save_as", "Save session &as…", "MDT", "presenter.save_session_as"),
    ActionSpec(
        "mdt.add", "&Add current study to the session", "MDT", "presenter.add_current_study", separator_before=True
    ),
    ActionSpec(
        "mdt.related",
        "Add current study as &related imaging of the selected case",
        "MDT",
        "presenter.add_current_as_related",
    ),
    ActionSpec("mdt.prefetch", "&Prefetch cases from PACS", "MDT", "presenter.start_prefetch"),
    ActionSpec("mdt.cancel_prefetch", "&Cancel prefetch", "MDT", "presenter.cancel_prefetch"),
    ActionSpec(
        "mdt.present",
        "&Present (full screen)",
        "MDT",
        "presenter.toggle_presenting",
        "F5",
        separator_before=True,
        name="presentAction",
    ),
    ActionSpec("mdt.next", "&Next case", "MDT", "presenter.next_case", "PgDown", name="nextCaseAction"),
    ActionSpec("mdt.previous", "P&revious case", "MDT", "presenter.previous_case", "PgUp", name="previousCaseAction"),
    ActionSpec(
        "mdt.mask", "&Mask burned-in text", "MDT", "presenter.set_mask", "Ctrl+M", checkable=True, name="maskAction"
    ),
    ActionSpec("mdt.keep_rect", "Draw &keep-rectangle for this series", "MDT", "presenter.arm_keep_rect", "Ctrl+K"),
    ActionSpec("mdt.session_list", "Session &list", "MDT", dock="presenter.dock"),
    ActionSpec("mdt.leave", "Leave presenter", "", "presenter.stop", "Esc"),
    # ---------------------------------------------------------------- Help
    ActionSpec("help.keys", "&Keyboard and mouse", "Help", "show_keys", "F1"),
    ActionSpec("help.about", "&About mdtviewer", "Help", "about"),
)


def spec(action_id: str) -> ActionSpec:
    """The spec with this id (KeyError when there is none)."""
    for s in ACTIONS:
        if s.id == action_id:
            return s
    raise KeyError(action_id)


def key_sequence(shortcut: Shortcut) -> QKeySequence:
    return QKeySequence() if shortcut is None else QKeySequence(shortcut)


def plain_text(text: str) -> str:
    """Menu text without mnemonics and the trailing ellipsis (as Help lists it)."""
    return text.replace("&", "").rstrip("…")


def shortcut_rows(dock_titles: dict[str, str] | None = None) -> list[tuple[str, str, str]]:
    """(menu, command, keys) for every declared command with a shortcut, in table order.

    *dock_titles* names the docks whose action takes its text from the dock.
    """
    rows: list[tuple[str, str, str]] = []
    for s in ACTIONS:
        if s.shortcut is None:
            continue
        keys = key_sequence(s.shortcut).toString(QKeySequence.SequenceFormat.NativeText)
        if not keys:
            continue
        text = s.text or (dock_titles or {}).get(s.dock, s.dock)
        top = s.menu.split("/")[0] or "Window"
        rows.append((top, plain_text(text), keys))
    return rows
