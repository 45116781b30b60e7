"""The viewport grid: layouts 1×1 … 1×3 and 2×2, maximise/restore, the current viewport, drop targets.

Each viewport sits in a cell with its cine bar below the image (:mod:`.cine_bar`;
hidden for single-frame images), so the controls never cover image content.

Viewports are created on demand and kept when the layout shrinks (hidden,
stopped), so a series shown in viewport 3 is still there when 2×2 comes
back.  Each viewport is a drop target for series dragged from the study
browser and for files dragged from the desktop; the grid forwards both as
signals, and says which viewport is current (the one keys act on, framed
when more than one is visible).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGridLayout, QVBoxLayout, QWidget

from mdtviewer.ui import tasks
from mdtviewer.ui.viewer.cine_bar import CineBar
from mdtviewer.ui.viewer.viewport import Viewport
from mdtviewer.ui.viewer.workers import FrameService

#: the layouts offered in View › Layout (keys 1-5), rows × columns
LAYOUTS: tuple[tuple[int, int], ...] = ((1, 1), (1, 2), (2, 1), (2, 2), (1, 3))
#: layout chosen for a newly opened study by its number of image series (more: 2×2)
LAYOUT_FOR_COUNT: dict[int, tuple[int, int]] = {0: (1, 1), 1: (1, 1), 2: (1, 2), 3: (1, 3)}


#: grey-image window/level presets on the image's REAL range (the modality values of the frame on screen, after
#: Modality LUT / Rescale: not the file's window, not 0-255): name -> (label, width factor of that range).
#: Ultrasound is mostly 8-bit (about 0-255); a 12/16-bit CT, MR, CR or NM image gets the same presets on its
#: own range instead of a 0-255 window that shows it all white or all black.
RANGE_PRESETS: dict[str, tuple[str, float]] = {
    "full": ("Full range", 1.0),
    "contrast": ("High contrast", 0.5),
    "soft": ("Soft (low contrast)", 1.5),
}
#: CT presets in Hounsfield units (Rescale applied): name -> (label, centre, width); refused on other modalities
CT_PRESETS: dict[str, tuple[str, float, float]] = {
    "ct_angio": ("CT angiography", 150.0, 600.0),
    "ct_soft": ("CT soft tissue", 40.0, 400.0),
    "ct_bone": ("CT bone", 500.0, 2000.0),
    "ct_lung": ("CT lung", -600.0, 1500.0),
}


def range_window(lo: float, hi: float) -> tuple[float, float]:
    """The window (centre, width) that spans modality values *lo* .. *hi* (as the default display does)."""
    return (lo + hi + 1.0) / 2.0, max(2.0, hi - lo + 1.0)


def value_range(raw: np.ndarray) -> tuple[float, float]:
    """Lowest and highest modality value of a frame (NaN-safe)."""
    return float(np.nanmin(raw)), float(np.nanmax(raw))


def layout_for_count(n: int) -> tuple[int, int]:
    """One viewport per image series, side by side, up to 2×2."""
    return LAYOUT_FOR_COUNT.get(n, (2, 2))


class ViewportCell(QWidget):
    """One place of the grid: the viewport, and its cine bar under it."""

    def __init__(self, service: FrameService, number: int, parent: QWidget | None = None):
        super().__init__(parent)
        self.setProperty("viewportCell", True)  # the viewport sizes its text from the cell (Viewport.layout_height)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        self.viewport = Viewport(service, number, self)
        self.cine_bar = CineBar(self.viewport, self)
        lay.addWidget(self.viewport, 1)
        lay.addWidget(self.cine_bar, 0)

    def set_shown(self, on: bool) -> None:
        self.setVisible(on)
        self.viewport.setVisible(on)


class ViewportGrid(QWidget):
    """Lays out the viewports and keeps track of the current one."""

    #: the current viewport changed (the new one)
    currentChanged = Signal(object)
    #: a series was dropped on a viewport (viewport, payload of MIME_SERIES)
    seriesDropped = Signal(object, dict)
    #: files or folders were dropped on a viewport
    pathsDropped = Signal(list)
    #: a viewport has something to say in the status bar
    statusMessage = Signal(str)
    #: rows, columns
    layoutChanged = Signal(int, int)
    #: a viewport (and its cine bar) was made: the playback controller wires the bar
    viewportAdded = Signal(object)

    def __init__(
        self, service: FrameService, parent: QWidget | None = None, setup: Callable[[Viewport], None] | None = None
    ):
        super().__init__(parent)
        self.setObjectName("viewportGrid")
        self.setStyleSheet("#viewportGrid { background: #202020; }")
        self._service = service
        self._setup = setup
        self._layout = QGridLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(2)
        self._all: list[Viewport] = []
        self._cells: dict[int, ViewportCell] = {}  # id(viewport) -> its cell
        self._shown: list[Viewport] = []
        self._rows, self._cols = 1, 1
        self._maximised: Viewport | None = None
        self._current: Viewport | None = None

    # ------------------------------------------------------------------ state
    def viewports(self) -> list[Viewport]:
        """The viewports of the layout, row by row (hidden ones of a maximised layout included)."""
        return list(self._shown)

    def all_viewports(self) -> list[Viewport]:
        """Every viewport made so far, also those the current layout does not show."""
        return list(self._all)

    def cine_bar(self, vp: Viewport) -> CineBar:
        """The cine toolbar under *vp*."""
        return self._cells[id(vp)].cine_bar

    def cine_bars(self) -> list[CineBar]:
        """The cine bars of every viewport made so far."""
        return [self._cells[id(v)].cine_bar for v in self._all]

    def shape(self) -> tuple[int, int]:
        return self._rows, self._cols

    def maximised(self) -> Viewport | None:
        """The viewport shown alone (double-click, Return), or None."""
        return self._maximised

    def current(self) -> Viewport:
        return self._current if self._current in self._shown else self._shown[0]

    # ------------------------------------------------------------------ layout
    def set_layout(self, rows: int, cols: int) -> None:
        rows, cols = max(1, min(4, int(rows))), max(1, min(4, int(cols)))
        n = rows * cols
        while len(self._all) < n:
            self._all.append(self._new_viewport(len(self._all) + 1))
        for vp in self._all:
            cell = self._cells[id(vp)]
            self._layout.removeWidget(cell)
            cell.set_shown(False)
        for vp in self._all[n:]:
            vp.stop()
        self._shown = self._all[:n]
        for k, vp in enumerate(self._shown):
            cell = self._cells[id(vp)]
            self._layout.addWidget(cell, k // cols, k % cols)
            cell.set_shown(True)
        self._rows, self._cols = rows, cols
        self._maximised = None
        if self._current not in self._shown:
            self.set_current(self._shown[0])
        self.mark_current()
        self.layoutChanged.emit(rows, cols)

    def _new_viewport(self, number: int) -> Viewport:
        cell = ViewportCell(self._service, number, self)
        vp = cell.viewport
        self._cells[id(vp)] = cell
        vp.activated.connect(self.set_current)
        vp.maximiseToggled.connect(self.toggle_maximise)
        vp.seriesDropped.connect(self.seriesDropped)
        vp.pathsDropped.connect(self.pathsDropped)
        vp.statusMessage.connect(self.statusMessage)
        if self._setup is not None:
            self._setup(vp)
        self.viewportAdded.emit(vp)
        return vp

    def set_current(self, vp: Viewport) -> None:
        if self._current is vp:
            return
        self._current = vp
        self.mark_current()
        self.currentChanged.emit(vp)

    def toggle_maximise(self, vp: Viewport | None = None) -> None:
        """Show *vp* (default: the current viewport) alone, or bring the layout back."""
        vp = vp or self.current()
        if self._maximised is not None:
            for v in self._shown:
                self._cells[id(v)].set_shown(True)
            self._maximised = None
        else:
            for v in self._shown:
                self._cells[id(v)].set_shown(v is vp)
            self._maximised = vp
        self.set_current(vp)
        self.mark_current()

    # ------------------------------------------------------------------ window/level presets (issue 15.6)
    def window_preset(self, name: str) -> bool:
        """Apply a grey-image preset (:data:`RANGE_PRESETS`, :data:`CT_PRESETS`) to the current viewport.

        Range presets start from the real range of the frame on screen: at once from the frame cache or, for
        a file without a window, from the first frame's range the display already uses; when that is not
        exact the range is read on a worker and the preset applied again (unless the window was changed since).
        Refused, with the reason in the status bar, on colour images and (CT presets) on other modalities.
        """
        vp = self.current()
        li = vp.loaded
        if li is None or li.error:
            self.statusMessage.emit("Window/level: no image on screen.")
            return False
        if li.is_color:
            self.statusMessage.emit("Window/level presets apply to grey images; this image is in colour.")
            return False
        if name in CT_PRESETS:
            label, c, w = CT_PRESETS[name]
            modality = vp.instance.modality if vp.instance is not None else ""
            if modality != "CT":
                self.statusMessage.emit(f"{label}: a preset in Hounsfield units, for CT; this image is "
                                        f"{modality or 'of no stated modality'}.")
                return False
            vp.set_window_level(c, w)
            self.statusMessage.emit(f"Window/level: {label} (C {c:g} W {w:g})")
            return True
        if name not in RANGE_PRESETS:
            raise ValueError(f"unknown window/level preset {name!r}")
        frame = vp.frame_index
        raw = self._service.get((li.key, frame, "raw"))
        if raw is not None:
            rng: tuple[float, float] = value_range(raw)
        elif li.default_window:
            c0, w0 = li.default_window
            rng = (c0 - w0 / 2.0, c0 + w0 / 2.0 - 1.0)
        else:
            rng = (0.0, 255.0)
        set_to = self._apply_range_preset(vp, name, rng)
        if raw is None and li.source is not None:
            source = li.source

            def exact(got: Any) -> None:
                if vp.loaded is li and vp.frame_index == frame and vp.window_level == set_to:
                    self._apply_range_preset(vp, name, got)

            tasks.run(self, lambda _t: value_range(source.frame_raw(frame)), name="window-range",
                      lane="window-range", on_result=exact, expected=(OSError, ValueError, IndexError))
        return True

    def _apply_range_preset(self, vp: Viewport, name: str, rng: tuple[float, float]) -> tuple[float, float]:
        label, k = RANGE_PRESETS[name]
        c, w = range_window(*rng)
        vp.set_window_level(c, w * k)
        level = vp.window_level or (c, w * k)
        self.statusMessage.emit(f"Window/level: {label} (C {level[0]:g} W {level[1]:g}; image values "
                                f"{rng[0]:g} to {rng[1]:g})")
        return level

    def mark_current(self) -> None:
        """Frame the viewport that keys act on whenever more than one viewport is visible."""
        visible = [v for v in self._shown if not v.isHidden()]
        for v in self._all:
            v.set_active(v is self._current and len(visible) > 1)
