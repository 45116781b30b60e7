"""One image viewport: paints a decoded frame (QImage over a uint8 array), overlays, measurements, cine.

A plain QWidget painting a QImage was chosen over a scene graph: one
``drawImage`` per frame is the cheapest path on a 2-core machine playing four
cines, and every pixel of the overlay is under our control.

Mouse conventions users know from Weasis/Horos/RadiAnt: left-drag window/level
(grey images), right-drag or Ctrl+wheel zoom, middle-drag pan, wheel steps
frames; double-click maximises.  In measure mode (M) left-drag draws a
calibrated distance instead.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPen
from PySide6.QtWidgets import QPushButton, QSizePolicy, QWidget

import mdtviewer.ui.qtfix  # noqa: F401  (first: PySide6 6.12 None refcount bug, see there)
from mdtviewer.dicom.model import Instance
from mdtviewer.imaging.cine import CineClock, PlayState
from mdtviewer.imaging.colour import is_rgb32, rgb32_to_rgb
from mdtviewer.imaging.framecache import cache_budget_frames, prefetch_plan
from mdtviewer.imaging.masking import HIDDEN_MESSAGE, PrivacyPlan, privacy_plan
from mdtviewer.ui import tasks
from mdtviewer.ui.viewer import measure as measure_mod
from mdtviewer.ui.viewer.cine_player import PlaybackStats, now
from mdtviewer.ui.viewer.overlays import (
    FrameStatus,
    OverlayInfo,
    Placement,
    WarningLine,
    corner_texts,
    fit_lines,
    is_side_line,
    mask_line,
    place_overlay,
    steady_lines,
)
from mdtviewer.ui.viewer.workers import PRIO_NOW, FrameService, LoadedImage, window_to_uint8

#: MIME type the study browser puts on a dragged series / instance
MIME_SERIES = "application/x-mdtviewer-series"

#: f(viewport, uint8 display frame) -> uint8 frame, applied after windowing and privacy blanking
DisplayFilter = Callable[["Viewport", np.ndarray], np.ndarray]

_TEXT = QColor(235, 235, 160)
_SHADOW = QColor(0, 0, 0)
#: behind each overlay line, so text stays readable over bright tissue and the scanner's own burned-in text
_BACKING = QColor(0, 0, 0, 190)
#: a line that warns (privacy could not mask the burned-in text)
_WARN = QColor(255, 130, 90)
#: the frame round an image a rejection note withdrew (shown only in the audit view)
_WITHDRAWN_FRAME = QColor(230, 0, 0)
#: its overlay line (a warning line starting so), red and readable on the dark backing
_WITHDRAWN_TEXT = QColor(255, 70, 70)
WITHDRAWN_PREFIX = "WITHDRAWN: "
#: the examined side (RIGHT / LEFT), bold: a wrong-side decision turns on it
_SIDE = QColor(120, 220, 255)

#: frames decoded ahead of the play head (per viewport)
PREFETCH_AHEAD = 12


def to_qimage(arr: np.ndarray) -> QImage:
    """Wrap a uint8 H×W or H×W×3 array, or a packed H×W uint32 0xFFRRGGBB frame (a palette image's
    display form, :meth:`FrameSource.display_frame`), kept alive by the caller, as a QImage."""
    arr = np.ascontiguousarray(arr)
    h, w = arr.shape[:2]
    if is_rgb32(arr):
        return QImage(arr.data, w, h, arr.strides[0], QImage.Format.Format_RGB32)
    if arr.ndim == 2:
        return QImage(arr.data, w, h, arr.strides[0], QImage.Format.Format_Grayscale8)
    if arr.shape[2] == 4:
        return QImage(arr.data, w, h, arr.strides[0], QImage.Format.Format_RGBA8888)
    return QImage(arr.data, w, h, arr.strides[0], QImage.Format.Format_RGB888)


class Viewport(QWidget):
    """Shows one series (a stack of instances; frames of the current instance)."""

    activated = Signal(object)  # self
    maximiseToggled = Signal(object)
    seriesDropped = Signal(object, dict)  # self, payload from MIME_SERIES
    pathsDropped = Signal(list)
    statusMessage = Signal(str)
    frameChanged = Signal(object)  # self
    #: the series on screen changed (set_series/clear): the window re-counts the patients on screen
    seriesShown = Signal(object)  # self
    #: the user asked, from the "hidden: may show identifiers" warning, to set this scanner's masking template
    templateRequested = Signal(object)  # self
    measured = Signal(object)  # measure.Mark (a value, or its refusal with the reason)
    #: the measurements changed (added, undone, cleared): the window knows there is something to save
    marksChanged = Signal(object)  # self
    #: play started or stopped here (the cine bar shows ▶ or ❚❚)
    playingChanged = Signal(bool)
    #: overlay text size factor changed (presenter mode): the cine bar scales with it
    overlayScaleChanged = Signal(float)

    def __init__(self, service: FrameService, number: int = 0, parent: QWidget | None = None):
        super().__init__(parent)
        self.service = service
        self.number = number
        self.setAcceptDrops(True)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(120, 90)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, True)

        self.stack: list[Instance] = []
        self.stack_pos = 0
        self.series_uid = ""
        self.study_uid = ""
        self.loaded: LoadedImage | None = None
        self.frame_index = 0
        self.error: str | None = None
        self.privacy = False
        self.overlays_visible = True
        self.active = False
        self._token = 0
        self._gen = 0
        self._pending_frame: int | None = None

        # display
        self._arr: np.ndarray | None = None
        self._qimg: QImage | None = None
        self._shown_key: tuple | None = None
        self._painted_key: tuple | None = None
        self.fit = True
        self.scale = 1.0
        self.center = QPointF(0, 0)
        self.window_level: tuple[float, float] | None = None  # user window centre/width (grey only)
        self.invert = False
        #: f(viewport, uint8 frame) -> uint8 frame applied last (presenter masking); see set_display_filter
        self._display_filter: DisplayFilter | None = None
        #: overlay text size factor (presenter mode shows larger text); see set_overlay_scale
        self.overlay_scale = 1.0
        #: f(study_uid) -> the browser's patient number, shown instead of the name while privacy is on
        self._patient_number: Callable[[str], int | None] | None = None
        #: more than one patient on screen: this viewport's patient colour and its overlay line (None: one patient)
        self._band: tuple[QColor, str] | None = None
        #: one click from the "hidden" warning to this scanner's masking template (shown only with the warning)
        self.template_button = QPushButton("Set a masking template for this scanner…", self)
        self.template_button.setObjectName("setTemplateFromWarning")
        self.template_button.setToolTip("Draw, once, where this scanner puts the image: privacy and presenter "
                                        "mode then show it masked (the dialog pixelates the image while privacy is on)")
        self.template_button.clicked.connect(lambda: self.templateRequested.emit(self))
        self.template_button.hide()

        # cine
        self.clock: CineClock | None = None
        self.play: PlayState | None = None
        self.speed = 1.0
        self.loop = True
        #: play back and forth (the cine bar's Sweep mode) instead of round and round
        self.sweep = False
        self.stats = PlaybackStats()
        self._due_of_shown: float | None = None
        self._played_any = False
        self._mask_for: Any = ""
        self._mask: PrivacyPlan | None = None  # the privacy plan of _mask_for (None: not known yet)
        self._mask_error = ""  # the plan could not be worked out: why (the image stays black)
        #: a background check of the playing file's version is under way (one at a time; HAZ-018)
        self._file_check_busy = False
        #: how play goes on once a file replaced on disk while it played is open again (None: not reopening)
        self._resume: dict[str, Any] | None = None
        #: one overlay line saying the file on screen was replaced on disk while it played ("" when not)
        self.file_notice = ""

        # interaction
        self.measure_mode = False
        #: the tool the left button draws with in measure mode (a key of measure.TOOLS)
        self.tool = "distance"
        #: every measurement drawn in this viewport, on any image/frame (the window may share one list
        #: between viewports: see ui.commands); only those of the image and frame on screen are drawn
        self.marks: list[measure_mod.Mark] = []
        #: marks added here, newest last (Ctrl+Z removes them in turn)
        self._undo: list[measure_mod.Mark] = []
        #: clicks of a tool being drawn (polygon, trace, angle, RI) and where the mouse is now
        self._pending: list[tuple[float, float]] = []
        self._hover_pt: tuple[float, float] | None = None
        self._drag_button: Qt.MouseButton | None = None
        self._drag_start = QPointF()
        self._drag_last = QPointF()
        self._drag_p0: tuple[float, float] | None = None
        self._drag_p1: tuple[float, float] | None = None
        self.last_status = ""
        #: the last measurement refused (outside a calibrated region ...): said in the status bar, not kept
        self.last_refusal: measure_mod.Mark | None = None
        self._ov_key: tuple | None = None
        self._ov_blocks: dict[str, QImage | None] = {}
        self._ov_avail: dict[str, int] = {}
        self._ov_fitted: dict[str, list[tuple[str, bool]]] = {}
        #: where the image and the corner texts go in fit mode (overlays.place_overlay), and for what
        self._placement: Placement | None = None
        self._placement_key: tuple | None = None
        #: where each corner's text was last painted (widget pixels)
        self._ov_rects: dict[str, QRectF] = {}
        #: a paint raised once: logged, not again for every frame
        self._paint_failed = False
        self._ov_font = QFont()
        self._ov_fm = QFontMetrics(self._ov_font)
        #: where the measurement labels were last painted (tests check they stay on screen)
        self.label_rects: list[QRectF] = []
        #: the leader line of each label last painted (from its measurement to its box), None when beside it
        self.label_leaders: list[tuple[QPointF, QPointF] | None] = []
        #: the measurements and annotations last painted on the image (tests read what is drawn)
        self.drawn_marks: list[measure_mod.Mark] = []
        #: where the scale bar's "1 cm" was last painted (tests check its size), or None
        self.scale_bar_label_rect: QRectF | None = None

        service.frameReady.connect(self._on_frame_ready)
        service.frameFailed.connect(self._on_frame_failed)
        service.imageLoaded.connect(self._on_image_loaded)

    # ------------------------------------------------------------------ content
    @property
    def instance(self) -> Instance | None:
        return self.stack[self.stack_pos] if self.stack else None

    @property
    def n_frames(self) -> int:
        return self.loaded.n_frames if self.loaded else (self.instance.number_of_frames if self.instance else 0) or 1

    def is_cine(self) -> bool:
        return self.loaded is not None and self.loaded.n_frames > 1

    def set_series(self, instances: list[Instance], start_uid: str | None = None, frame: int = 0) -> None:
        """Show a series: *instances* are its displayable images, in order."""
        self.stop()
        self.stack = list(instances)
        self.series_uid = self.stack[0].series_instance_uid if self.stack else ""
        self.study_uid = self.stack[0].study_instance_uid if self.stack else ""
        pos = 0
        if start_uid:
            for i, inst in enumerate(self.stack):
                if inst.sop_instance_uid == start_uid:
                    pos = i
        self._open(pos, frame)
        self.seriesShown.emit(self)

    def clear(self) -> None:
        self.stop()
        self.stack = []
        self.loaded = None
        self._arr = self._qimg = None
        self._shown_key = self._painted_key = None
        self.error = None
        self._pending = []
        self.update()
        self.seriesShown.emit(self)

    def _open(self, pos: int, frame: int = 0, resume: dict[str, Any] | None = None) -> None:
        self.stop()
        self._resume = resume
        if resume is None:
            self.file_notice = ""
        self.stack_pos = max(0, min(len(self.stack) - 1, pos))
        self.loaded = None
        self.clock = None
        self.error = None
        self.window_level = None
        self._pending = []
        self._arr = self._qimg = None
        self._shown_key = self._painted_key = None
        self.frame_index = 0
        self._pending_frame = frame
        self.fit = True
        self._token += 1
        inst = self.instance
        if inst is None:
            self.update()
            return
        self._gen = self.service.new_generation(id(self))
        self.service.open_image((id(self), self._token), inst, owner=id(self))
        self.update()

    def _on_image_loaded(self, token: Any, li: LoadedImage) -> None:
        if token != (id(self), self._token):
            return
        self.loaded = li
        if li.error:
            self.error = li.error
            self.update()
            self.frameChanged.emit(self)
            return
        self.clock = CineClock(li.durations_ms) if li.n_frames > 1 else None
        f = self._pending_frame or 0
        self._pending_frame = None
        resume, self._resume = self._resume, None
        if resume is not None:
            f = self._resumed(li, resume)
        self.set_frame(max(0, min(li.n_frames - 1, f)))
        self.frameChanged.emit(self)
        if resume is not None and resume["playing"] and self.clock is not None:
            stretch = float(resume["stretch"])
            self.start(now(), loop_ms=self.clock.total_ms / stretch if abs(stretch - 1.0) > 1e-9 else None)

    def _resumed(self, li: LoadedImage, resume: dict[str, Any]) -> int:
        """The file was replaced on disk while it played and is open again: say so, keep the user's view, and
        return the frame to go on from (the same one, or the first when the frame count changed)."""
        n_old = int(resume["n_frames"])
        if li.n_frames != n_old:
            frame = 0
            self.file_notice = (f"File replaced on disk ({n_old} → {li.n_frames} frames): "
                                + ("playing the new file from frame 1" if li.n_frames > 1 else "showing the new file"))
        else:
            frame = int(resume["frame"])
            self.file_notice = f"File replaced on disk: playing the new file on from frame {frame + 1}"
        self.window_level, self.fit, self.scale, self.center = resume["view"]
        self._status(self.file_notice)
        return frame

    # ------------------------------------------------------------------ frames
    def _mode(self) -> str:
        if self.loaded is not None and not self.loaded.is_color and self.window_level is not None:
            return "raw"
        return "disp"

    def _key(self, i: int, mode: str | None = None) -> tuple:
        # the file version is part of the key: a file replaced under the same path never shows old frames
        return (self.loaded.key if self.loaded else "", i, mode or self._mode(),
                self.loaded.version if self.loaded else None)

    def set_frame(self, i: int, *, prefetch: bool = True) -> None:
        """Go to frame *i* (0-based) of the current instance; painted when decoded."""
        if self.loaded is None or self.loaded.error:
            if self.loaded is None:
                self._pending_frame = i
            return
        version = self.loaded.version
        if self.play is None and version is not None and not version.is_current():
            self._open(self.stack_pos, i)  # the file changed on disk since it was opened: show the new one
            return
        n = self.loaded.n_frames
        i = max(0, min(n - 1, int(i)))
        self.frame_index = i
        self._show_if_ready(i)
        if prefetch:
            self._prefetch(i)
        self.frameChanged.emit(self)

    def _prefetch(self, i: int) -> None:
        if self.loaded is None:
            return
        n = self.loaded.n_frames
        ahead = PREFETCH_AHEAD if self.play else 3
        # never prefetch more than this viewport's share of the cache holds (it would evict the frame on screen)
        # bytes a cached frame takes: 4 a pixel for packed RGB32 colour (palette, JPEG) and grey windowed from
        # raw values; 3 for other RGB (counted as 4 here: a few frames less prefetched, never more than fit)
        per_frame = max(1, self.loaded.rows * self.loaded.columns * 4)
        ahead = min(ahead, cache_budget_frames(self.service.cache.max_bytes, per_frame, 4))
        direction = self.play.direction(now()) if self.play else 1
        for k, j in enumerate(prefetch_plan(i, n, min(ahead, n - 1), loop=True, direction=direction)):
            self.service.request(self._key(j), PRIO_NOW + k, owner=id(self), generation=self._gen)

    def _show_if_ready(self, i: int) -> bool:
        key = self._key(i)
        arr = self.service.get(key)
        if arr is None:
            self.service.request(key, PRIO_NOW, owner=id(self), generation=self._gen)
            return False
        self._display(key, arr)
        return True

    def _display(self, key: tuple, arr: np.ndarray) -> None:
        packed = is_rgb32(arr)  # palette or JPEG frame as Qt's RGB32: painted as it is when nothing changes it
        if packed and (key[2] == "raw" or self.invert or self.privacy or self._display_filter is not None):
            # inverted, masked or filtered: the RGB array every other image takes, the same steps below
            arr, packed = rgb32_to_rgb(arr), False
        if key[2] == "raw":
            c, w = self.window_level or self._auto_window(arr)
            inv = self.invert != (self.loaded is not None and self.loaded.photometric == "MONOCHROME1")
            arr = window_to_uint8(arr, c, w, inv)
        elif self.invert:
            arr = np.ascontiguousarray(255 - arr)
        if arr.dtype != np.uint8 and not packed:
            arr = np.clip(arr, 0, 255).astype(np.uint8)
        if self.privacy:
            # burned-in name/ID/date: masked (regions, template or detected text) or the image is hidden
            plan = self._privacy_plan()
            arr = np.ascontiguousarray(plan.apply(arr) if plan is not None else np.zeros_like(arr))
        if self._display_filter is not None:
            arr = np.ascontiguousarray(self._display_filter(self, arr))
        self._arr = arr
        self._qimg = to_qimage(arr)
        self._shown_key = key
        self.update()

    def _privacy_plan(self) -> PrivacyPlan | None:
        """How this image may be shown while privacy is on (:func:`mdtviewer.imaging.masking.privacy_plan`).

        None until it is worked out: that reads the header and may run OCR, so it runs as a background
        task, never on the UI thread; meanwhile the image stays black (nothing unmasked is shown).
        """
        li = self.loaded
        if li is None or li.error:
            return None
        if self._mask_for != (li.key, li.version):  # per file version: a replaced file gets its own plan
            self._mask_for = (li.key, li.version)
            self._mask = None
            self._mask_error = ""
            key, path, source = self._mask_for, li.key, li.source
            tasks.run(
                self, lambda _t: privacy_plan(path, source=source), name="privacy-plan", lane="privacy-plan",
                on_result=lambda plan: self._on_privacy_plan(key, plan),
                on_error=lambda reason: self._on_privacy_plan_failed(key, reason),
            )
        return self._mask

    def _on_privacy_plan(self, key: Any, plan: PrivacyPlan) -> None:
        if key == self._mask_for:  # still this image
            self._mask = plan
            self.redisplay()

    def _on_privacy_plan_failed(self, key: Any, reason: str) -> None:
        if key == self._mask_for:  # the image stays black, and says why
            self._mask_error = reason
            self.update()

    def pending_points(self) -> list[tuple[float, float]]:
        """The clicks of the shape being drawn (image pixels), not yet a measurement."""
        return list(self._pending)

    def masking_plan(self) -> PrivacyPlan | None:
        """The privacy plan of the image on screen (:func:`mdtviewer.imaging.masking.privacy_plan`: regions,
        template, detection, OCR), the one privacy mode and the presenter's mask (Ctrl+M) both apply.
        Worked out in the background when first asked; None until then (and for no image)."""
        return self._privacy_plan()

    def _masking(self) -> bool:
        """Burned-in text is masked on this viewport: privacy, or a display filter (the presenter's Ctrl+M)."""
        return self.privacy or self._display_filter is not None

    def privacy_pending(self) -> bool:
        """True while the image is masked (privacy, or the presenter's mask) and how to mask it is still
        being worked out (shown black)."""
        li = self.loaded
        return bool(self._masking() and li is not None and not li.error and self._mask is None
                    and not self._mask_error)

    def forget_privacy_plan(self) -> None:
        """Work out again how privacy masks this image (a masking template changed); redisplays."""
        self._mask_for = ""
        self._mask = None
        self._mask_error = ""
        self.redisplay()

    def _auto_window(self, raw: np.ndarray) -> tuple[float, float]:
        if self.loaded is not None and self.loaded.default_window:
            return self.loaded.default_window
        lo, hi = float(np.min(raw)), float(np.max(raw))
        return ((lo + hi) / 2.0, max(1.0, hi - lo))

    def _on_frame_ready(self, key: Any, arr: Any = None) -> None:
        if self.loaded is None or not isinstance(key, tuple) or key[0] != self.loaded.key:
            return
        if self.play is not None:
            self.tick(now())
            return
        if key == self._key(self.frame_index) and self._shown_key != key:
            if arr is None:
                arr = self.service.get(key)
            if arr is not None:
                self._display(key, arr)

    def _on_frame_failed(self, key: Any, reason: str) -> None:
        li = self.loaded
        if (self.play is not None and li is not None and li.version is not None and isinstance(key, tuple)
                and key[:1] == (li.key,) and key[3:4] == (li.version,) and not li.version.is_current()):
            self.reload_changed_file()  # a frame due later could not be decoded: the file changed while playing
            return
        if self.loaded is not None and isinstance(key, tuple) and key[:2] == (self.loaded.key, self.frame_index):
            version = self.loaded.version
            if version is not None and key[3:4] == (version,) and not version.is_current():
                self._open(self.stack_pos, self.frame_index)  # the file changed on disk: open the new one
                return
            self.error = f"frame {self.frame_index + 1}: {reason}"
            self.update()

    def is_settled(self) -> bool:
        """True once the current frame is painted (or the image failed): screenshots wait for this."""
        if not self.stack:
            return True
        if self.error:
            return True
        if self.privacy_pending():
            return False  # shown black until privacy knows how to mask it
        shown = self._shown_key
        return self._painted_key is not None and self._painted_key == shown and shown[1] == self.frame_index

    # ------------------------------------------------------------------ stepping
    def step(self, delta: int) -> None:
        if self.is_cine():
            self.set_frame((self.frame_index + delta) % self.n_frames)
        elif len(self.stack) > 1:
            self._open((self.stack_pos + delta) % len(self.stack))

    def first(self) -> None:
        if self.is_cine():
            self.set_frame(0)
        elif len(self.stack) > 1:
            self._open(0)

    def last(self) -> None:
        if self.is_cine():
            self.set_frame(self.n_frames - 1)
        elif len(self.stack) > 1:
            self._open(len(self.stack) - 1)

    def position(self) -> float:
        return self.clock.position(self.frame_index) if self.clock else 0.0

    def seek_position(self, p: float) -> None:
        if self.clock:
            self.set_frame(self.clock.frame_at(p * self.clock.total_ms))

    # ------------------------------------------------------------------ cine
    @property
    def playing(self) -> bool:
        return self.play is not None

    def start(self, wall: float | None = None, position: float | None = None, loop_ms: float | None = None) -> bool:
        """Play from the current frame (or normalised *position*); *loop_ms* stretches the loop for sync."""
        if not self.is_cine() or self.clock is None:
            return False
        wall = now() if wall is None else wall
        pos = self.position() if position is None else position
        speed = self.speed
        if loop_ms:
            speed = self.speed * self.clock.total_ms / loop_ms
        self.play = PlayState(self.clock, wall, pos * self.clock.total_ms, speed, self.loop, self.sweep)
        self._due_of_shown = None
        self._played_any = False
        self._gen = self.service.new_generation(id(self))
        self._prefetch(self.frame_index)
        self.update()
        self.playingChanged.emit(True)
        return True

    def stop(self) -> None:
        if self._resume is not None:
            self._resume["playing"] = False  # paused while a replaced file is opened again: it stays paused
        if self.play is not None:
            self.play = None
            self._gen = self.service.new_generation(id(self))
            self.update()
            self.playingChanged.emit(False)

    def tick(self, t: float) -> None:
        """Called by the window's precise timer: show the frame due at wall time *t*, dropping late ones."""
        ps = self.play
        if ps is None or self.loaded is None:
            return
        if ps.finished(t):
            self.set_frame(self.n_frames - 1)
            self.stop()
            self.frameChanged.emit(self)
            return
        due_frame = ps.frame_at(t)
        shown = self._shown_key[1] if self._shown_key and self._shown_key[0] == self.loaded.key else -1
        if due_frame == shown:
            return
        arr = self.service.get(self._key(due_frame))
        if arr is None:
            self.service.request(self._key(due_frame), PRIO_NOW, owner=id(self), generation=self._gen)
            self._prefetch(due_frame)
            return
        if shown >= 0 and self._played_any:
            # frames whose time passed without being shown are dropped, never shown late
            self.stats.dropped += ps.skipped(shown, due_frame)
            if self._painted_key != self._shown_key:
                self.stats.dropped += 1  # replaced before it reached the screen
        self._played_any = True
        self.frame_index = due_frame
        self._due_of_shown = ps.due_wall(due_frame, t)
        self._display(self._key(due_frame), arr)
        self._prefetch(due_frame)
        self.frameChanged.emit(self)

    def check_file_changed(self) -> bool:
        """While playing: ask in the background (one stat, off the UI thread) whether the file on screen was
        replaced on disk; if it was, :meth:`reload_changed_file`.  A loop playing from frames already decoded
        reads no file, so nothing else would notice (HAZ-018).  One check at a time; the playback controller
        calls this at most every ``playback.FILE_CHECK_S``.  True when a check was started."""
        li = self.loaded
        if self.play is None or li is None or li.version is None or self._file_check_busy:
            return False
        version = li.version
        self._file_check_busy = True
        tasks.run(self, lambda _t: version.is_current(), name="file-check", lane="file-check",
                  on_result=lambda current: self._on_file_checked(version, bool(current)),
                  on_error=lambda _reason: self._on_file_checked(version, True))
        return True

    def _on_file_checked(self, version: Any, current: bool) -> None:
        self._file_check_busy = False
        li = self.loaded
        if not current and self.play is not None and li is not None and li.version == version:
            self.reload_changed_file()

    def reload_changed_file(self) -> None:
        """The file on screen was replaced on disk: drop its old version's frames and decoder, open it again
        and, if it was playing, play the new file on from the same frame (frame 1 when the frame count
        changed, which the overlay says), keeping the window, zoom, speed and play mode."""
        li = self.loaded
        if li is None:
            return
        ps = self.play
        resume = {
            "frame": self.frame_index, "n_frames": li.n_frames, "playing": ps is not None,
            "stretch": ps.speed / self.speed if ps is not None and self.speed else 1.0,
            "view": (self.window_level, self.fit, self.scale, QPointF(self.center)),
        }
        if li.version is not None:
            self.service.forget_version(li.version)
        self._open(self.stack_pos, self.frame_index, resume=resume)

    def next_change_wall(self, t: float) -> float | None:
        """Wall time of the next frame boundary while playing (None when paused)."""
        return self.play.next_change_wall(t) if self.play is not None else None

    def set_speed(self, s: float) -> None:
        """Playback speed for the next start (the window's speed control stops and restarts play)."""
        self.speed = float(s)

    def set_loop(self, on: bool) -> None:
        """Loop the cine, or stop on its last frame (also for the loop now playing)."""
        self.loop = bool(on)
        if self.play is not None:
            self.play.loop = self.loop

    # ------------------------------------------------------------------ settings the window and presenter make
    def set_active(self, on: bool) -> None:
        """Frame this viewport as the one keys act on."""
        if self.active != bool(on):
            self.active = bool(on)
            self.update()

    def set_measure_mode(self, on: bool) -> None:
        self.measure_mode = bool(on)
        self._pending = []
        if not self.measure_mode:
            self.tool = "distance"  # M turns measuring on again with the distance tool
        self.setCursor(Qt.CursorShape.CrossCursor if self.measure_mode else Qt.CursorShape.ArrowCursor)
        self.update()

    def set_tool(self, tool: str) -> None:
        """Draw with *tool* (a key of measure.TOOLS) in measure mode."""
        if tool not in measure_mod.TOOLS:
            raise ValueError(f"unknown measuring tool {tool!r}")
        self.tool = tool
        self._pending = []
        self.update()

    def set_overlays_visible(self, on: bool) -> None:
        self.overlays_visible = bool(on)
        self.update()

    def set_overlay_scale(self, scale: float) -> None:
        """Overlay and measurement text size factor (presenter mode shows larger text)."""
        self.overlay_scale = float(scale)
        self.update()
        self.overlayScaleChanged.emit(self.overlay_scale)

    def set_display_filter(self, fn: DisplayFilter | None) -> None:
        """A last step on every displayed frame (presenter masking); None removes it. Redisplays."""
        if fn == self._display_filter:
            return
        self._display_filter = fn
        self.redisplay()

    def display_filter(self) -> DisplayFilter | None:
        return self._display_filter

    def set_patient_band(self, colour: QColor | None, label: str = "") -> None:
        """Mark this viewport's patient (a coloured frame and an overlay line) while several are on screen."""
        band = (QColor(colour), label) if colour is not None else None
        if band != self._band:
            self._band = band
            self.update()

    def patient_band(self) -> tuple[QColor, str] | None:
        return self._band

    def set_patient_number_source(self, fn: Callable[[str], int | None] | None) -> None:
        """Where the overlay gets "Patient N" for a study while privacy hides the name."""
        self._patient_number = fn

    def clear_measurements(self) -> None:
        """Remove the measurements of the image and frame on screen."""
        gone = set(map(id, self.measurements))
        self.marks[:] = [m for m in self.marks if id(m) not in gone]
        self._undo = [m for m in self._undo if id(m) not in gone]
        self._pending = []
        self.update()
        self.marksChanged.emit(self)

    @property
    def measurements(self) -> list[measure_mod.Mark]:
        """The measurements drawn on the image and frame on screen, oldest first."""
        inst = self.instance
        if inst is None:
            return []
        frame = self.current_frame_number()
        return [m for m in self.marks if m.on(inst.sop_instance_uid, frame)]

    def current_frame_number(self) -> int | None:
        """1-based frame on screen of a multi-frame image; None for a single frame (as the SR says it)."""
        return self.frame_index + 1 if self.loaded is not None and self.loaded.n_frames > 1 else None

    def undo(self) -> bool:
        """Remove the last click of a tool being drawn, else the last measurement made here."""
        if self._pending:
            self._pending.pop()
            self.update()
            return True
        while self._undo:
            m = self._undo.pop()
            if any(x is m for x in self.marks):
                self.marks[:] = [x for x in self.marks if x is not m]
                self._status(f"Undone: {m.text}")
                self.update()
                self.marksChanged.emit(self)
                return True
        return False

    def add_marks(self, marks: list[measure_mod.Mark]) -> None:
        """Show measurements read back from a file (not undoable: they are in the record)."""
        self.marks.extend(marks)
        self.update()

    # ------------------------------------------------------------------ what is on screen (tests read these)
    def displayed_array(self) -> np.ndarray | None:
        """The uint8 frame on screen now (after windowing, privacy blanking and the display filter):
        H×W grey or H×W×3 RGB (a palette frame painted in its packed form is given back as RGB)."""
        if self._arr is not None and is_rgb32(self._arr):
            return rgb32_to_rgb(self._arr)
        return self._arr

    def shown_frame(self) -> int | None:
        """0-based frame index of the frame on screen, or None when nothing is shown yet."""
        if self._shown_key is None or self.loaded is None or self._shown_key[0] != self.loaded.key:
            return None
        return int(self._shown_key[1])

    def shows_window_level(self) -> bool:
        """True when the frame on screen was windowed from the raw values with the user's window/level."""
        return self._shown_key is not None and self._shown_key[2] == "raw"

    def set_window_level(self, centre: float, width: float) -> None:
        """Window a grey image at *centre*/*width* (as a left-drag does); redisplays."""
        self.window_level = (float(centre), max(1.0, float(width)))
        self.redisplay()

    def layout_height(self) -> int:
        """Height of this viewport's place in the layout (its grid cell, cine bar included): text sizes follow
        it, so a cine with its bar and a still beside it get one size."""
        cell = self.parentWidget()
        return cell.height() if cell is not None and cell.property("viewportCell") else self.height()

    def overlay_text_px(self) -> int:
        """Pixel size of the overlay and scale-bar text: grows with the viewport (11..14 px) and in presenter
        mode, only as far as the width rule allows (date and scale stay whole)."""
        base = max(11, min(14, self.height() // 40 + 8, self.width() // 26))
        return max(base, min(round(base * self.overlay_scale), self.width() // 26))

    def overlay_font(self) -> QFont:
        """The font the corner texts were last painted with (one size for every viewport of a layout)."""
        return QFont(self._ov_font)

    def overlay_font_metrics(self) -> QFontMetrics:
        return QFontMetrics(self._ov_font)

    def overlay_room(self, corner: str) -> int:
        """Pixels of width the corner's text (tl, tr, bl, br) was given at the last paint (0 before one)."""
        return int(self._ov_avail.get(corner, 0))

    def overlay_painted(self) -> bool:
        """True once the corner texts have been laid out for the viewport's current size and text."""
        return self._ov_key is not None

    def overlay_shown_lines(self) -> dict[str, list[str]]:
        """The corner lines exactly as last painted: shortened or wrapped to fit (:func:`overlays.fit_lines`)."""
        return {k: [t for t, _w in v] for k, v in self._ov_fitted.items()}

    def overlay_warning_lines(self) -> list[str]:
        """The corner lines last painted in the warning colour."""
        return [t for v in self._ov_fitted.values() for t, w in v if w]

    def frame_key(self, i: int | None = None) -> tuple:
        """The frame cache key of frame *i* (default: the current frame) as this viewport displays it."""
        return self._key(self.frame_index if i is None else i)

    # ------------------------------------------------------------------ geometry
    def image_size(self) -> tuple[int, int]:
        if self._arr is not None:
            return self._arr.shape[1], self._arr.shape[0]
        if self.loaded is not None and self.loaded.columns:
            return self.loaded.columns, self.loaded.rows
        inst = self.instance
        if inst is not None and inst.columns and inst.rows:
            return inst.columns, inst.rows
        return 1, 1

    def _fit_rect(self) -> tuple[float, float, float, float]:
        """The image's place in fit mode: where the last layout put it (clear of the corner texts, see
        :func:`overlays.place_overlay`), or centred in the whole viewport before one / with overlays off."""
        w, h = self.image_size()
        pl = self._placement
        if pl is not None and self._placement_key is not None and self._placement_key[:4] == (
                self.width(), self.height(), w, h):
            return pl.image
        s = max(1e-3, min(self.width() / w, self.height() / h))
        return ((self.width() - w * s) / 2.0, (self.height() - h * s) / 2.0, w * s, h * s)

    def effective_scale(self) -> float:
        if self.fit:
            return max(1e-3, self._fit_rect()[2] / self.image_size()[0])
        return self.scale

    def _center(self) -> QPointF:
        """The image point at the viewport's centre (in fit mode: where the layout put the image)."""
        if self.fit:
            x, y, _w, _h = self._fit_rect()
            s = self.effective_scale()
            return QPointF((self.width() / 2.0 - x) / s, (self.height() / 2.0 - y) / s)
        return self.center

    def image_rect(self) -> QRectF:
        """Where the image is drawn, in widget pixels (it may reach past the viewport when zoomed)."""
        w, h = self.image_size()
        return QRectF(self.to_widget(0, 0), self.to_widget(w, h))

    def banner_rows(self) -> int | None:
        """Image rows at the top that hold the scanner's burned-in banner (patient, hospital, probe, date), as
        far as known: the rows above the topmost ultrasound region, else above the first row the privacy plan
        shows; None when not known (0: the image has none)."""
        li = self.loaded
        if li is None:
            return None
        if li.regions:
            return max(0, min(int(r.y0) for r in li.regions))
        plan = self._mask if self._masking() else None
        if plan is not None and plan.action == "mask" and plan.show is not None and plan.show.any():
            return int(np.argmax(plan.show.any(axis=1)))
        return None

    def overlay_rects(self) -> dict[str, QRectF]:
        """Where each corner's text block (tl, tr, bl, br) was last painted, in widget pixels (no entry for an
        empty corner)."""
        return {k: QRectF(r) for k, r in self._ov_rects.items()}

    def overlay_placement(self) -> str:
        """How the last layout placed image and text (:class:`overlays.Placement` ``mode``; "" before one)."""
        return self._placement.mode if self._placement is not None else ""

    def to_widget(self, x: float, y: float) -> QPointF:
        s = self.effective_scale()
        c = self._center()
        return QPointF((x - c.x()) * s + self.width() / 2.0, (y - c.y()) * s + self.height() / 2.0)

    def to_image(self, p: QPointF) -> tuple[float, float]:
        s = self.effective_scale()
        c = self._center()
        return ((p.x() - self.width() / 2.0) / s + c.x(), (p.y() - self.height() / 2.0) / s + c.y())

    def _unfit(self) -> None:
        if self.fit:
            self.scale = self.effective_scale()
            self.center = self._center()
            self.fit = False

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        w, h = self.image_size()
        fit = min(self.width() / w, self.height() / h)
        self._unfit()
        before = self.to_image(anchor) if anchor is not None else None
        self.scale = max(min(0.05, fit), min(max(40.0, 8 * fit), self.scale * factor))
        if anchor is not None and before is not None:
            after = self.to_image(anchor)
            self.center = QPointF(self.center.x() + before[0] - after[0], self.center.y() + before[1] - after[1])
        self.update()

    def fit_to_window(self) -> None:
        self.fit = True
        self.update()

    def actual_size(self) -> None:
        self._unfit()
        self.scale = 1.0
        self.update()

    def set_invert(self, on: bool) -> None:
        self.invert = bool(on)
        self.redisplay()

    def reset_window(self) -> None:
        self.window_level = None
        self.redisplay()

    def redisplay(self) -> None:
        if self.loaded is not None and not self.loaded.error:
            self._shown_key = None
            self.set_frame(self.frame_index, prefetch=False)
        self.update()

    # ------------------------------------------------------------------ overlay
    def frame_status(self) -> FrameStatus:
        li = self.loaded
        st = FrameStatus(
            frame=self.frame_index, n_frames=self.n_frames, stack_pos=self.stack_pos, stack_len=len(self.stack)
        )
        if li is not None:
            if self.clock is not None:
                st.fps = self.clock.fps
            st.timing_source = li.timing_source
            st.scale_text = measure_mod.scale_text(li.regions)
            if not li.is_color and self._shown_key is not None:
                if self.window_level is not None:
                    st.window = self.window_level
                elif li.default_window:
                    st.window = li.default_window
        st.playing = self.play is not None
        # the factor the loop plays at now (a stretched synchronised loop differs from the chosen speed)
        st.speed = self.play.speed if self.play is not None else self.speed
        st.zoom = self.effective_scale()
        return st

    def overlay_lines(self) -> dict[str, list[str]]:
        """The overlay text as painted (tests read this)."""
        if not self.stack:
            return {"c": ["Drop a series here"]}
        info = self.loaded.overlay if self.loaded else OverlayInfo()
        plan = self._privacy_plan() if self._masking() and self.loaded is not None and not self.loaded.error else None
        masked = self._masking() and not (plan is not None and plan.action == "show")
        out = corner_texts(info, self.frame_status(), self.privacy, masked=masked)
        if self.privacy and self._patient_number is not None and out.get("tl"):
            # names hidden: the browser's "Patient N" still tells two patients side by side apart
            n = self._patient_number(self.study_uid)
            if n:
                out["tl"][0] = f"Patient {n} {out['tl'][0]}"
        if self._band is not None:  # after whose images these are (name, ID, DOB lines)
            tl = out.setdefault("tl", [])
            tl.insert(min(3, len(tl)), self._band[1])
        # one line says how the image is masked: privacy and the presenter's mask (Ctrl+M) apply the same plan,
        # so it is said once; a masked image always says so (black areas are never left unexplained)
        note = mask_line(plan.message if plan is not None else "", self._display_filter is not None,
                         warn=plan is not None and (plan.hidden or plan.ocr == "not installed"))
        if note:
            out.setdefault("tl", []).append(note)
        withdrawn = self.withdrawn_reason()
        if withdrawn:  # IHE IOCM audit view: first line, warning colour, and a red frame (see _paint)
            out.setdefault("tl", []).insert(0, WarningLine(f"{WITHDRAWN_PREFIX}{withdrawn}"))
        if self.file_notice:
            out.setdefault("bl", []).append(self.file_notice)
        if self.error:
            out["c"] = [f"Cannot show this image: {self.error}"]
        elif self._qimg is None:
            out["c"] = ["Loading…"]
        elif plan is not None and plan.hidden:
            out["c"] = [HIDDEN_MESSAGE]
        elif self._masking() and self._mask_error:
            out["c"] = [f"{HIDDEN_MESSAGE} ({self._mask_error})"]
        elif self.privacy_pending():
            out["c"] = ["Checking for burned-in text…"]
        return out

    def withdrawn_reason(self) -> str:
        """Why the image on screen was withdrawn by a rejection note (IHE IOCM); "" for a current image."""
        inst = self.instance
        return str(getattr(inst, "withdrawn", "") or "") if inst is not None else ""

    def overlay_text(self) -> str:
        return "\n".join(line for lines in self.overlay_lines().values() for line in lines)

    def set_privacy(self, on: bool) -> None:
        if self.privacy != bool(on):
            self.privacy = bool(on)
            self.redisplay()
        self.update()

    # ------------------------------------------------------------------ painting
    def paintEvent(self, ev: Any) -> None:
        # painting never raises: an exception left a QPainter open, and Qt then crashed the
        # process (a 0-row image: ZeroDivisionError, then SIGSEGV); the view stays black instead
        p = QPainter(self)
        try:
            self._paint(p)
        except Exception:
            if not self._paint_failed:
                self._paint_failed = True
                import logging

                logging.getLogger(__name__).exception("a viewport could not be painted (logged once per viewport)")
        finally:
            if p.isActive():
                p.end()
        if self._shown_key is not None and self._painted_key != self._shown_key:
            self._painted_key = self._shown_key
            if self.play is not None and self._due_of_shown is not None:
                self.stats.record_shown((now() - self._due_of_shown) * 1000.0)
                self._due_of_shown = None

    def _paint(self, p: QPainter) -> None:
        p.fillRect(self.rect(), QColor(0, 0, 0))
        lines: dict[str, list[str]] | None = None
        if self.overlays_visible or not self.stack:
            lines = self.overlay_lines()
            self._layout_overlay(lines)  # first: where the text goes decides where the fitted image goes
        else:
            self._placement, self._placement_key, self._ov_rects = None, None, {}
        if self._qimg is not None:
            w, h = self.image_size()
            tl = self.to_widget(0, 0)
            br = self.to_widget(w, h)
            if self.play is None:
                p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            p.drawImage(QRectF(tl, br), self._qimg, QRectF(0, 0, w, h))
            self._draw_scale_bar(p)
        self._draw_measurements(p)
        if lines is not None:
            self._draw_overlay(p, lines)
        else:
            self._place_template_button({})  # overlays off: the warning is not drawn, nor is its button
        if self._band is not None and self.stack:
            p.setPen(QPen(self._band[0], 8))  # this viewport's patient: a colour nobody can miss
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(self.rect().adjusted(4, 4, -4, -4))
        if self.withdrawn_reason() and self.stack:  # never mistaken for a current image, overlays on or off
            p.setPen(QPen(_WITHDRAWN_FRAME, 10))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(self.rect().adjusted(5, 5, -5, -5))
        if self.active:
            p.setPen(QPen(QColor(255, 200, 0), 2))
            p.drawRect(self.rect().adjusted(1, 1, -1, -1))

    def _keep_top_clear(self) -> bool:
        """The corner texts must stay off the image's top rows: the scanner's burned-in banner is there (known
        from the regions or the privacy plan), or is to be expected (ultrasound, where every scanner writes one)."""
        rows = self.banner_rows()
        if rows is not None:
            return rows > 0
        li = self.loaded
        return li is not None and li.overlay.modality.upper() == "US"

    def blanked_banner_rows(self) -> int:
        """The banner rows (:meth:`banner_rows`) that are black on screen: privacy or the presenter's mask
        blanks them (the plan shows nothing there).  The top lines may lie over them: they hide nothing."""
        rows = self.banner_rows() or 0
        plan = self._mask if self._masking() else None
        if rows <= 0 or plan is None or plan.action != "mask" or plan.show is None:
            return 0
        return rows if not bool(plan.show[:rows].any()) else 0

    def _frame_margin(self) -> int:
        """How far in the corner texts start: inside the patient's colour frame or the red WITHDRAWN frame."""
        return 16 if self.stack and (self._band is not None or self.withdrawn_reason()) else 6

    def _layout_overlay(self, lines: dict[str, list[str]]) -> None:
        """Font, place and width of the corner texts and, in fit mode, where the image goes: beside, above or
        below the text, never under it where the scanner's banner is (:func:`overlays.place_overlay`).  Worked
        out from the lines with their per-frame numbers at their widest, so playing never moves the image."""
        m = self._frame_margin()
        # one size for every viewport of the layout (from its size only, not its text): text that jumps in
        # size from one viewport to the next reads as a different kind of information
        px = self.overlay_text_px()
        if self._ov_font.pixelSize() != px:
            f = QFont()
            f.setPixelSize(px)
            self._ov_font, self._ov_fm = f, QFontMetrics(f)
            self._ov_key = None
        fm = self._ov_fm
        corners = {k: list(lines.get(k, [])) for k in ("tl", "tr", "bl", "br")}
        steady = steady_lines(corners)
        iw, ih = self.image_size()
        key = (self.width(), self.height(), iw, ih, px, m, self._keep_top_clear(), self.blanked_banner_rows(),
               tuple(tuple(steady[k]) for k in ("tl", "tr", "bl", "br")))
        if key != self._placement_key:  # not per frame: only when the size or what the corners say changes
            bold = QFont(self._ov_font)
            bold.setBold(True)
            bfm = QFontMetrics(bold)

            def width(t: str) -> int:  # as painted: the side line is bold
                return (bfm if is_side_line(t) else fm).horizontalAdvance(t)

            self._placement = place_overlay(self.width() - 2 * (m - 6), self.height() - 2 * (m - 6), iw, ih,
                                            steady, width, fm.height(), margin=6, keep_top_clear=bool(key[6]),
                                            blank_top_rows=int(key[7]))
            if m != 6:  # laid out inside the patient's colour frame
                x, y, w, h = self._placement.image
                self._placement = Placement((x + m - 6, y + m - 6, w, h), self._placement.avail,
                                            self._placement.mode, self._placement.outside)
            self._placement_key = key
        self._ov_avail = dict(self._placement.avail) if self._placement is not None else {}

    def _draw_overlay(self, p: QPainter, lines: dict[str, list[str]]) -> None:
        """Corner texts; the three corners that do not change per frame are rendered once and cached."""
        m = self._frame_margin()
        static = tuple(tuple(lines.get(k, [])) for k in ("tl", "tr", "br"))
        bottom_left = tuple(len(t) for t in lines.get("bl", []))
        avail = tuple(sorted(self._ov_avail.items()))
        key = (self.width(), self.height(), self._ov_font.pixelSize(), static, bottom_left, avail)
        if key != self._ov_key:
            fm = self._ov_fm
            bold = QFont(self._ov_font)
            bold.setBold(True)
            bfm = QFontMetrics(bold)

            def width(t: str) -> int:
                return (bfm if is_side_line(t) else fm).horizontalAdvance(t)

            # too long for its room: shortened, then wrapped, never cut mid-word (QA 13)
            self._ov_fitted = {
                k: [
                    (fm.elidedText(t, Qt.TextElideMode.ElideRight, self._ov_avail.get(k, 80)), w)
                    for t, w in fit_lines(lines.get(k, []), self._ov_avail.get(k, 80), width)
                ]
                for k in ("tl", "tr", "br")
            }
            self._ov_blocks = {k: self._render_block(self._ov_fitted[k], k != "tl") for k in ("tl", "tr", "br")}
            self._ov_key = key
        fm = self._ov_fm
        lh = fm.height()
        rects: dict[str, QRectF] = {}
        for k, img in self._ov_blocks.items():
            if img is None:
                continue
            x = m - 2 if k == "tl" else self.width() - m + 2 - img.width()
            y = m if k in ("tl", "tr") else self.height() - m - img.height()
            p.drawImage(x, y, img)
            rects[k] = QRectF(x, y, img.width(), img.height())
        p.setFont(self._ov_font)
        avail_bl = self._ov_avail.get("bl", 80)
        bl = [fm.elidedText(t, Qt.TextElideMode.ElideRight, avail_bl)
              for t, _w in fit_lines(lines.get("bl", []), avail_bl, fm.horizontalAdvance)]
        self._ov_fitted["bl"] = [(t, False) for t in bl]
        y0 = self.height() - m - lh * len(bl)
        if bl:
            rects["bl"] = QRectF(m - 2, y0, max(fm.horizontalAdvance(t) for t in bl) + 5, lh * len(bl))
        self._ov_rects = rects
        for k, text in enumerate(bl):
            y = y0 + k * lh + fm.ascent()
            p.fillRect(m - 2, y0 + k * lh, fm.horizontalAdvance(text) + 5, lh, _BACKING)
            p.setPen(_SHADOW)
            p.drawText(m + 1, y + 1, text)
            p.setPen(_TEXT)
            p.drawText(m, y, text)
        if "c" in lines:
            p.setPen(QColor(200, 200, 200))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, "\n".join(lines["c"]))
        self._place_template_button(lines)

    def template_button_shown(self) -> bool:
        """True while the "hidden" warning offers its one-click "Set a masking template…" button."""
        return not self.template_button.isHidden()

    def _place_template_button(self, lines: dict[str, list[str]]) -> None:
        """Under the "hidden: may show identifiers" warning: the button that sets this scanner's template.
        Only for an image that names its scanner (a template for "unnamed scanner" would fit any screen)."""
        plan = self._mask if self.loaded is not None and not self.loaded.error else None
        want = (lines.get("c") == [HIDDEN_MESSAGE] and plan is not None and plan.scanner is not None
                and bool(plan.scanner.manufacturer or plan.scanner.model))
        if want:
            b = self.template_button
            b.adjustSize()
            w = min(b.sizeHint().width(), max(80, self.width() - 12))
            b.setGeometry((self.width() - w) // 2, self.height() // 2 + self._ov_fm.height() + 8, w,
                          b.sizeHint().height())
        if want != self.template_button_shown():
            self.template_button.setVisible(want)

    def _render_block(self, fitted: list[tuple[str, bool]], right: bool) -> QImage | None:
        """One corner's lines, each ``(text, warning)``, on a dark backing over the scanner's own text."""
        if not fitted:
            return None
        lines = [t for t, _w in fitted]
        fm = self._ov_fm
        bold = QFont(self._ov_font)
        bold.setBold(True)
        bfm = QFontMetrics(bold)
        side = [is_side_line(t) for t in lines]
        w = max((bfm if sd else fm).horizontalAdvance(t) for t, sd in zip(lines, side)) + 2
        h = fm.height() * len(lines) + 2
        w += 4
        img = QImage(w, h, QImage.Format.Format_ARGB32_Premultiplied)
        img.fill(0)
        q = QPainter(img)
        q.setFont(self._ov_font)
        # one backing for the whole block, not a ragged one per line: where the block lies over the scanner's
        # burned-in banner, the banner's letters no longer peek out between lines and read as overlay text
        q.fillRect(0, 0, w, h, _BACKING)
        for k, text in enumerate(lines):
            q.setFont(bold if side[k] else self._ov_font)
            tw = (bfm if side[k] else fm).horizontalAdvance(text)
            x = w - 4 - tw if right else 2
            y = k * fm.height() + fm.ascent()
            q.setPen(_SHADOW)
            q.drawText(x + 1, y + 1, text)
            withdrawn = fitted[k][1] and text.startswith(WITHDRAWN_PREFIX)  # the audit view's line: red
            q.setPen(_WITHDRAWN_TEXT if withdrawn else _WARN if fitted[k][1] else _SIDE if side[k] else _TEXT)
            q.drawText(x, y, text)
        q.end()
        return img

    def _draw_scale_bar(self, p: QPainter) -> None:
        self.scale_bar_label_rect = None
        if self.loaded is None:
            return
        r = measure_mod.tissue_region(self.loaded.regions)
        if r is None:
            return
        dx_cm = abs(float(r.physical_delta_x))
        px_per_cm = self.effective_scale() / dx_cm
        if px_per_cm < 8:
            return
        # legible on a projector: label, ticks and line grow with the overlay text (viewport size, presenter mode)
        f = QFont()
        f.setPixelSize(self.overlay_text_px())
        p.setFont(f)
        k_size = max(1.0, f.pixelSize() / 12.0)
        x = self.width() - 14 * k_size
        y0 = self.height() / 2 - px_per_cm / 2
        p.setPen(QPen(QColor(235, 235, 160), max(2.0, 1.5 * k_size)))
        p.drawLine(QPointF(x, y0), QPointF(x, y0 + px_per_cm))
        for k in range(11):
            y = y0 + k * px_per_cm / 10
            p.drawLine(QPointF(x - (6 if k % 5 == 0 else 3) * k_size, y), QPointF(x, y))
        fm = QFontMetrics(f)
        tw = fm.horizontalAdvance("1 cm")
        self.scale_bar_label_rect = QRectF(x - tw - 4, y0 - 4 - fm.ascent(), tw + 4, fm.height())
        p.fillRect(QRectF(x - tw - 4, y0 - 4 - fm.ascent(), tw + 4, fm.height()), _BACKING)
        p.drawText(QPointF(x - tw - 2, y0 - 4), "1 cm")

    def _draw_measurements(self, p: QPainter) -> None:
        self.label_rects = []
        self.label_leaders = []
        self.drawn_marks = list(self.measurements)
        items = list(self.drawn_marks)
        regions = self.loaded.regions if self.loaded else []
        live_pts: list[tuple[float, float]] = []
        if self._drag_p0 is not None and self._drag_p1 is not None:
            # the value follows the mouse while drawing, so the user sees a refusal before letting go
            if math.hypot(self._drag_p1[0] - self._drag_p0[0], self._drag_p1[1] - self._drag_p0[1]) >= 2:
                items.append(measure_mod.compute_mark(self.tool, regions, [self._drag_p0, self._drag_p1]))
            else:
                live_pts = [self._drag_p0]
        elif self._pending:
            live_pts = list(self._pending) + ([self._hover_pt] if self._hover_pt is not None else [])
        if not items and not live_pts:
            return
        f = QFont()
        # legible on a projector: grows with the viewport and with presenter mode; small against a small image
        iw, ih = self.image_size()
        s = self.effective_scale()
        f.setPixelSize(measure_mod.label_px(self.height(), (iw * s, ih * s), self.overlay_scale))
        f.setBold(True)
        p.setFont(f)
        p.setBrush(Qt.BrushStyle.NoBrush)
        if live_pts:
            p.setPen(QPen(QColor(255, 220, 80), 2, Qt.PenStyle.DashLine))
            w = [self.to_widget(*q) for q in live_pts]
            for a, b in zip(w, w[1:]):
                p.drawLine(a, b)
            for q in w:
                p.drawEllipse(q, 3, 3)
        labels: list[tuple[QPointF, str, QColor]] = []
        shapes: list[list[tuple[float, float]]] = []
        for m in items:
            colour = QColor(80, 255, 80) if m.ok else QColor(255, 90, 90)
            if m.is_annotation:
                colour = QColor(255, 220, 80)
            p.setPen(QPen(colour, 2))
            w = [self.to_widget(*q) for q in m.points]
            if m.kind == "arrow" and len(w) == 2:
                measure_mod.draw_arrow(p, w[0], w[1])
                anchor = w[0]  # its words (if any) at the tail, the head stays clear
            elif m.kind == "text" and w:
                p.drawEllipse(w[0], 2, 2)
                anchor = w[0]
            elif m.graphic == "ELLIPSE" and len(w) == 4:
                xs, ys = [q.x() for q in w], [q.y() for q in w]
                p.drawEllipse(QRectF(QPointF(min(xs), min(ys)), QPointF(max(xs), max(ys))))
                anchor = QPointF(*measure_mod.ellipse_anchor([(q.x(), q.y()) for q in w]))
            elif m.graphic == "POINT" or (m.kind in ("ri", "psv", "edv", "velocity")):
                for q in w:  # a caliper: a cross and a short horizontal tick at the velocity read
                    p.drawLine(QPointF(q.x() - 8, q.y()), QPointF(q.x() + 8, q.y()))
                    p.drawLine(QPointF(q.x(), q.y() - 8), QPointF(q.x(), q.y() + 8))
                if len(w) == 2:
                    p.setPen(QPen(colour, 1, Qt.PenStyle.DotLine))
                    p.drawLine(w[0], w[1])
                anchor = w[-1]
            else:
                if m.graphic == "POLYGON" and len(w) > 2:
                    w = w + [w[0]]
                for a, b in zip(w, w[1:]):
                    p.drawLine(a, b)
                for q in w:
                    p.drawEllipse(q, 3, 3)
                anchor = w[-1] if w else QPointF(0, 0)
            if m.text:
                labels.append((anchor, m.text, colour))
                on_screen = [self.to_widget(*t) for t in m.points]
                shapes.append(measure_mod.shape_outline(m.graphic, m.kind, [(q.x(), q.y()) for q in on_screen]))
        self._draw_labels(p, labels, shapes)

    def _label_top(self) -> float:
        """Highest widget row a label may use: below the scanner's burned-in banner (the rows above the
        topmost calibrated region)."""
        top = 4.0
        regions = self.loaded.regions if self.loaded else []
        if regions:
            top = max(top, self.to_widget(0, min(float(r.y0) for r in regions)).y() + 2)
        return min(top, self.height() / 2)

    def _draw_labels(self, p: QPainter, labels: list[tuple[QPointF, str, QColor]],
                     shapes: list[list[tuple[float, float]]] | None = None) -> None:
        """Each measurement's value beside its point, on a dark backing, inside the viewport and below the
        banner; labels of one frame never overlap: one that would is moved to the next free slot with a
        leader line to its measurement (``measure.place_labels``)."""
        fm = QFontMetrics(p.font())
        texts = [fm.elidedText(t, Qt.TextElideMode.ElideRight, max(40, self.width() - 16)) for _a, t, _c in labels]
        sizes = [(fm.horizontalAdvance(t) + 6.0, float(fm.height())) for t in texts]
        top = self._label_top()
        bounds = (2.0, top, max(0.0, self.width() - 4.0), max(0.0, self.height() - top - 2.0))
        anchors = [(a.x(), a.y()) for a, _t, _c in labels]
        placed = measure_mod.place_labels(anchors, sizes, bounds)
        # a label away from its measurement, or as near another's shape as its own, is tied to it by a line
        linked = measure_mod.leaders(anchors, placed, shapes)
        for (anchor, _t, colour), text, (x, y, w, h), link in zip(labels, texts, placed, linked):
            rect = QRectF(x, y, w, h)
            leader = None
            if link:
                ex, ey = measure_mod.leader_end((anchor.x(), anchor.y()), (x, y, w, h))
                leader = (QPointF(anchor), QPointF(ex, ey))
                p.setPen(QPen(colour, 1, Qt.PenStyle.DashLine))
                p.drawLine(anchor, QPointF(ex, ey))
            self.label_leaders.append(leader)
            p.fillRect(rect, _BACKING)
            p.setPen(colour)
            p.drawText(QPointF(x + 3, y + fm.ascent()), text)
            self.label_rects.append(rect)

    # ------------------------------------------------------------------ mouse
    def mousePressEvent(self, ev: Any) -> None:
        self.activated.emit(self)
        self._drag_button = ev.button()
        self._drag_start = self._drag_last = ev.position()
        if ev.button() == Qt.MouseButton.LeftButton and self.measure_mode and self._qimg is not None:
            gesture = measure_mod.TOOLS[self.tool][2]
            pt = self.to_image(ev.position())
            if gesture == "drag":
                self._drag_p0 = pt
                self._drag_p1 = self._drag_p0
            else:
                self._pending.append(pt)
                if gesture.startswith("clicks:") and len(self._pending) >= int(gesture.split(":")[1]):
                    pts, self._pending = self._pending, []
                    if self.tool == "text":  # the words are typed in place (no modal dialog)
                        measure_mod.open_text_entry(self, pts[0])
                    else:
                        self.add_mark(self.tool, pts)
                self._drag_button = None  # a click, not a drag: the mouse move shows the next segment
                self.update()
                ev.accept()
                return
        ev.accept()

    def mouseMoveEvent(self, ev: Any) -> None:
        pos = ev.position()
        if self._drag_button is None:
            if self._pending:
                self._hover_pt = self.to_image(pos)
                self.update()
            self._hover(pos)
            return
        d = pos - self._drag_last
        self._drag_last = pos
        b = self._drag_button
        if b == Qt.MouseButton.LeftButton:
            if self._drag_p0 is not None:
                self._drag_p1 = self.to_image(pos)
                self.update()
            elif self.loaded is not None and not self.loaded.is_color:
                self._drag_window(d.x(), d.y())
        elif b == Qt.MouseButton.RightButton:
            self.zoom_by(math.exp(-d.y() / 200.0), self._drag_start)
        elif b == Qt.MouseButton.MiddleButton:
            self._unfit()
            s = self.effective_scale()
            self.center = QPointF(self.center.x() - d.x() / s, self.center.y() - d.y() / s)
            self.update()

    def _drag_window(self, dx: float, dy: float) -> None:
        if self.window_level is None:
            raw = self.service.get(self._key(self.frame_index, "raw"))
            self.window_level = (
                self.loaded.default_window
                if self.loaded and self.loaded.default_window
                else (self._auto_window(raw) if raw is not None else (128.0, 256.0))
            )
        c, w = self.window_level
        # as in Weasis/RadiAnt: one pixel of mouse moves the window by about 1/256 of its width, so an
        # 8-bit image moves by single grey levels and a 12/16-bit CT does not need a screen-wide drag
        k = max(1.0, w / 256.0)
        self.window_level = (c + dy * k, max(1.0, w + dx * k))
        self.redisplay()

    def mouseReleaseEvent(self, ev: Any) -> None:
        if self._drag_button == Qt.MouseButton.LeftButton and self._drag_p0 is not None:
            p0, p1 = self._drag_p0, self.to_image(ev.position())
            self._drag_p0 = self._drag_p1 = None
            if math.hypot(p1[0] - p0[0], p1[1] - p0[1]) >= 2:
                self.add_mark(self.tool, [p0, p1])
        self._drag_button = None
        self.update()

    def add_measurement(self, p0: tuple[float, float], p1: tuple[float, float]) -> measure_mod.Mark:
        """Measure a distance between two image points (pixel coordinates) with this frame's calibration."""
        return self.add_mark("distance", [p0, p1])

    def add_mark(self, tool: str, points: list[tuple[float, float]], note: str = "") -> measure_mod.Mark:
        """Measure with *tool* over image *points* on the image and frame on screen: the value comes from
        ``imaging.measurements.measure``; outside a calibrated region it is refused with the reason.
        An arrow or text annotation (*note*: its words) needs no calibration."""
        regions = self.loaded.regions if self.loaded else []
        inst = self.instance
        where = {
            "sop_instance_uid": inst.sop_instance_uid if inst else "",
            "study_instance_uid": inst.study_instance_uid if inst else "",
            "path": str(inst.path) if inst else "",
            "frame": self.current_frame_number(),
        }
        if tool in measure_mod.ANNOTATION_TOOLS:
            r = measure_mod.annotation_mark(tool, points, note, **where)  # type: ignore[arg-type]
        elif tool == "distance" and not regions:
            legacy = measure_mod.measure(regions, points[0], points[1])  # no calibration: pixels, and says so
            r = measure_mod.Mark("distance", "distance", (points[0], points[1]), True, legacy.text, legacy.reason,
                                 **where)  # type: ignore[arg-type]
        else:
            r = measure_mod.compute_mark(tool, regions, points, **where)
        if not r.ok:  # refused: the reason whole in the status bar, nothing left drawn on the image (QA2 #9)
            self.last_refusal = r
            self._status(r.status)
            self.measured.emit(r)
            self.update()
            return r
        self.marks.append(r)
        self._undo.append(r)
        self._status(r.status)
        self.measured.emit(r)
        self.marksChanged.emit(self)
        self.update()
        return r

    def finish_pending(self) -> measure_mod.Mark | None:
        """Close a polygon / end a trace being drawn (what a double-click does)."""
        gesture = measure_mod.TOOLS[self.tool][2]
        need = 3 if gesture == "closed" else 2
        pts, self._pending = self._pending, []
        self._hover_pt = None
        # a double-click's second press lands on the last point: drop a repeat
        while len(pts) > 1 and math.hypot(pts[-1][0] - pts[-2][0], pts[-1][1] - pts[-2][1]) < 1:
            pts.pop()
        if len(pts) < need:
            self._status(f"{measure_mod.TOOLS[self.tool][1]}: needs at least {need} points")
            self.update()
            return None
        return self.add_mark(self.tool, pts)

    def _hover(self, pos: QPointF) -> None:
        if self.loaded is None or not self.loaded.regions:
            return
        x, y = self.to_image(pos)
        txt = measure_mod.doppler_text(self.loaded.regions, x, y)
        if txt:
            self._status(txt)

    def _status(self, msg: str) -> None:
        self.last_status = msg
        self.statusMessage.emit(msg)

    def wheelEvent(self, ev: Any) -> None:
        dy = ev.angleDelta().y()
        if not dy:
            return
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom_by(1.15 if dy > 0 else 1 / 1.15, ev.position())
        else:
            self.activated.emit(self)
            if self.playing:
                self.stop()  # stepping a playing loop would be overridden by the next tick: pause, then step
            self.step(-1 if dy > 0 else 1)
        ev.accept()

    def mouseDoubleClickEvent(self, ev: Any) -> None:
        if self.measure_mode and ev.button() == Qt.MouseButton.LeftButton:
            if self._pending and measure_mod.TOOLS[self.tool][2] in ("open", "closed"):
                self.finish_pending()
            ev.accept()  # measuring: a double-click never maximises (it ends a trace / closes an area)
            return
        self.maximiseToggled.emit(self)
        ev.accept()

    # ------------------------------------------------------------------ drops
    def dragEnterEvent(self, ev: Any) -> None:
        md = ev.mimeData()
        if md.hasFormat(MIME_SERIES) or md.hasUrls():
            ev.acceptProposedAction()

    def dragMoveEvent(self, ev: Any) -> None:
        self.dragEnterEvent(ev)

    def dropEvent(self, ev: Any) -> None:
        md = ev.mimeData()
        if md.hasFormat(MIME_SERIES):
            try:
                payload = json.loads(bytes(md.data(MIME_SERIES)).decode("utf-8"))
            except ValueError:
                return
            self.activated.emit(self)
            self.seriesDropped.emit(self, payload)
            ev.acceptProposedAction()
        elif md.hasUrls():
            paths = [u.toLocalFile() for u in md.urls() if u.isLocalFile()]
            if paths:
                self.pathsDropped.emit([str(Path(p)) for p in paths])
                ev.acceptProposedAction()
