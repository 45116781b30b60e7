"""The cine toolbar under each viewport (issue 15.6): play/pause, frame slider, frame rate, loop mode.

What a Weasis, Horos or RadiAnt user reaches for, laid out below the image
(never over it), one bar per viewport of the grid, hidden for single-frame
images:

* play/pause with the media-player convention: the button shows what a
  click does, ▶ while paused and ❚❚ while playing;
* a frame slider: dragging scrubs (and pauses), the label says "frame n / N";
* a frame-rate field in frames per second: any rate within the plausible
  range (:data:`mdtviewer.imaging.cine.FPS_MIN` ..
  :data:`~mdtviewer.imaging.cine.FPS_MAX`), not only the 0.25-4x steps;
  it starts at the file's own rate, and a "native" button appears (and
  sets it back) whenever the rate differs from the file's;
* the play mode: loop, sweep (back and forth) or once.

The bar only shows the viewport's state and says what the user asked for
through its signals; :class:`mdtviewer.ui.viewer.playback.PlaybackController`
(the one that owns the precise timer) does it.  Its text grows with the
viewport and with presenter mode (the viewport's overlay scale).
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QToolButton,
    QWidget,
)

from mdtviewer.imaging.cine import FPS_MAX, FPS_MIN, PLAY_MODES
from mdtviewer.ui.viewer.viewport import Viewport

PLAY_SYMBOL = "\u25b6"  # ▶: paused, a click plays
PAUSE_SYMBOL = "\u275a\u275a"  # ❚❚: playing, a click pauses
MODE_LABELS = {"loop": "Loop", "sweep": "Sweep \u21c4", "once": "Once"}
#: while playing, the slider and "frame n / N" move at most this often (s): nobody reads 60 numbers a second
PLAYING_UPDATE_S = 0.08
#: the rate field and the file's rate count as equal within this (frames/s): the field shows one decimal
FPS_TOLERANCE = 0.05


def play_mode(vp: Viewport) -> str:
    """The viewport's play mode: one of :data:`mdtviewer.imaging.cine.PLAY_MODES`."""
    if vp.sweep:
        return "sweep"
    return "loop" if vp.loop else "once"


def native_fps(vp: Viewport) -> float | None:
    """The file's own mean frame rate (None for a single frame)."""
    return vp.clock.fps if vp.clock is not None else None


def chosen_fps(vp: Viewport) -> float | None:
    """The rate the viewport plays at when started on its own (file's rate x its speed)."""
    n = native_fps(vp)
    return n * vp.speed if n is not None else None


class CineBar(QWidget):
    """One viewport's cine controls (below its image)."""

    #: the ▶ / ❚❚ button was clicked
    playToggled = Signal()
    #: the slider was dragged or clicked to a frame (0-based)
    frameChosen = Signal(int)
    #: a frame rate was entered (frames/s), or "native" clicked
    fpsChosen = Signal(float)
    #: a play mode was chosen (PLAY_MODES)
    modeChosen = Signal(str)

    def __init__(self, viewport: Viewport, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewport = viewport
        self.setObjectName("cineBar")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setStyleSheet(self._style(12))
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        # never wider than its viewport wants: in a narrow cell the bar gives way (see _fit_width), the layout
        # of the grid does not (a bar that forced its cell wider made the viewports of a layout unequal)
        self.setMinimumWidth(1)
        self._compact = 0
        #: what the bar last showed besides the frame (frames, playing, speed, mode, compactness, clock)
        self._state: tuple | None = None
        self._shown_at = 0.0
        self._updating = False
        self._scale_key: int | None = None

        self._play = QToolButton(self)
        self._play.setObjectName("cinePlayButton")
        self._play.setAutoRaise(True)
        self._play.clicked.connect(self.playToggled)
        self._slider = QSlider(Qt.Orientation.Horizontal, self)
        self._slider.setObjectName("cineFrameSlider")
        self._slider.setMinimumWidth(40)
        self._slider.valueChanged.connect(self._on_slider)
        self._frame = QLabel(self)
        self._frame.setObjectName("cineFrameLabel")
        self._fps = QDoubleSpinBox(self)
        self._fps.setObjectName("cineFpsField")
        self._fps.setDecimals(1)
        self._fps.setRange(FPS_MIN, FPS_MAX)
        self._fps.setSuffix(" fps")
        self._fps.setKeyboardTracking(False)  # typing "15" is not applied as "1" first
        self._fps.setToolTip(f"Frame rate: any value from {FPS_MIN:g} to {FPS_MAX:g} frames/s")
        self._fps.editingFinished.connect(self._on_fps_entered)
        self._native = QToolButton(self)
        self._native.setObjectName("cineNativeButton")
        self._native.setAutoRaise(True)
        self._native.setToolTip("The rate differs from the file's own: click to play at the file's rate")
        self._native.clicked.connect(self._on_native)
        self._mode = QComboBox(self)
        self._mode.setObjectName("cineModeBox")
        for m in PLAY_MODES:
            self._mode.addItem(MODE_LABELS[m], m)
        self._mode.setToolTip("Loop: round and round; Sweep: back and forth; Once: stop on the last frame")
        self._mode.activated.connect(lambda i: self.modeChosen.emit(str(self._mode.itemData(i))))
        # the keys (Space, arrows) stay with the viewport: only the rate field takes the focus, to be typed in
        for w in (self._play, self._slider, self._native, self._mode):
            w.setFocusPolicy(Qt.FocusPolicy.NoFocus)

        lay = self._lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 1, 4, 1)
        lay.setSpacing(6)
        lay.addWidget(self._play)
        lay.addWidget(self._slider, 1)
        lay.addWidget(self._frame)
        lay.addWidget(self._fps)
        lay.addWidget(self._native)
        lay.addWidget(self._mode)

        viewport.frameChanged.connect(lambda _vp: self.refresh())
        viewport.seriesShown.connect(lambda _vp: self.refresh())  # cleared, or another series: hidden until loaded
        viewport.playingChanged.connect(lambda _on: self.refresh())
        viewport.overlayScaleChanged.connect(lambda _s: self.refresh())
        viewport.installEventFilter(self)  # resized with the layout: the text size follows
        self.refresh()

    def eventFilter(self, obj: Any, ev: Any) -> bool:
        if obj is self.viewport and ev.type() == QEvent.Type.Resize and not self.isHidden():
            self._apply_scale()
        return False

    # ------------------------------------------------------------------ what the user sees (tests read these)
    def play_symbol(self) -> str:
        """▶ while paused, ❚❚ while playing."""
        return self._play.text()

    def play_button(self) -> QToolButton:
        return self._play

    def slider(self) -> QSlider:
        return self._slider

    def fps_field(self) -> QDoubleSpinBox:
        return self._fps

    def native_button(self) -> QToolButton:
        return self._native

    def mode_box(self) -> QComboBox:
        return self._mode

    def frame_label(self) -> QLabel:
        return self._frame

    def frame_text(self) -> str:
        """'frame n / N' as shown."""
        return self._frame.text()

    def shown_fps(self) -> float:
        return float(self._fps.value())

    def differs_from_native(self) -> bool:
        """True when the bar says the rate is not the file's own (the "native" button is shown)."""
        return not self._native.isHidden()

    def text_pixel_size(self) -> int:
        """Pixel size of the bar's text as its frame label, rate field and mode box draw it (grows with the
        viewport and in presenter mode)."""
        sizes = {w.font().pixelSize() for w in (self._frame, self._fps, self._mode, self._native)}
        return min(sizes)

    # ------------------------------------------------------------------ refresh from the viewport
    def refresh(self) -> None:
        vp = self.viewport
        cine = vp.is_cine()
        if self.isHidden() == cine:
            self.setVisible(cine)
        if not cine:
            return
        self._apply_scale()
        self._updating = True
        try:
            n = vp.n_frames
            state = (n, vp.playing, vp.speed, play_mode(vp), self._compact, id(vp.clock))
            if state == self._state:
                # playing: only the frame moved (the cheap path, run for every frame shown); at most
                # PLAYING_UPDATE_S apart, so four bars do not take painting time from four cines
                t = time.perf_counter()
                if vp.playing and t - self._shown_at < PLAYING_UPDATE_S:
                    return
                self._shown_at = t
                if not self._slider.isSliderDown():
                    self._slider.setValue(vp.frame_index)
                self._frame.setText(self._frame_text(vp, n))
                return
            if self._slider.maximum() != n - 1:
                self._slider.setRange(0, n - 1)
                self._slider.setPageStep(max(1, n // 10))
            if not self._slider.isSliderDown():
                self._slider.setValue(vp.frame_index)
            playing = vp.playing
            self._play.setText(PAUSE_SYMBOL if playing else PLAY_SYMBOL)
            self._play.setToolTip(
                ("Pause" if playing else "Play") + " this viewport (Space; Shift+Space: every viewport)"
            )
            nat, fps = native_fps(vp), chosen_fps(vp)
            if fps is not None and not self._fps.hasFocus():
                self._fps.setValue(fps)
            differs = nat is not None and fps is not None and abs(fps - nat) > FPS_TOLERANCE
            if nat is not None:
                self._native.setText(f"native {nat:.3g}")
            if self._native.isHidden() == differs:
                self._native.setVisible(differs)
            mode = play_mode(vp)
            k = self._mode.findData(mode)
            if k >= 0 and self._mode.currentIndex() != k:
                self._mode.setCurrentIndex(k)
            # what fits is worked out again whenever the parts may have changed (the native button shown,
            # another number of frames, another text size, another width): never on the cheap path
            self._fit_width(n)
            self._state = (n, vp.playing, vp.speed, mode, self._compact, id(vp.clock))
            # as wide as the widest frame number: a label that changes width each frame would lay the grid
            # out again 30-60 times a second per playing viewport
            w = self._label_width(n, self._compact)
            if self._frame.minimumWidth() != w or self._frame.maximumWidth() != w:
                self._frame.setFixedWidth(w)
            self._frame.setText(self._frame_text(vp, n))
        finally:
            self._updating = False

    def _frame_text(self, vp: Viewport, n: int) -> str:
        text = f"{vp.frame_index + 1} / {n}" if self._compact else f"frame {vp.frame_index + 1} / {n}"
        if self._compact >= 2 and play_mode(vp) == "sweep":
            # the mode box gave way: a loop running backwards must never look like the acquisition
            text = f"\u21c4 {text}"
        return text

    @staticmethod
    def _style(px: int) -> str:
        # the text size is in the style sheet: under a style sheet, a spin box's editor ignores setFont
        return (
            "#cineBar { background: #181818; border-top: 1px solid #333; }"
            f" QLabel, QToolButton, QComboBox, QDoubleSpinBox, QLineEdit {{ font-size: {px}px; }}"
            f" #cinePlayButton {{ font-size: {round(px * 1.25)}px; }}"
            " QLabel, QToolButton { color: #e6e6c8; }"
            " QComboBox, QDoubleSpinBox { color: #e6e6c8; background: #2b2b2b; border: 1px solid #5a5a5a;"
            " border-radius: 2px; padding: 0 3px; }"
            " QComboBox QAbstractItemView { color: #e6e6c8; background: #2b2b2b; }"
        )

    def _label_width(self, n: int, compact: int) -> int:
        """Width of the frame label for the widest frame number of *n* at this compactness (never elided)."""
        digits = "8" * len(str(n))
        text = f"{digits} / {n}" if compact else f"frame {digits} / {n}"
        if compact >= 2:
            text = f"\u21c4 {text}"  # room for the sweep mark, shown when the mode box gave way
        return self._frame.fontMetrics().horizontalAdvance(text) + 6

    def _fit_width(self, n: int) -> None:
        """Narrow cells give way part by part, least needed first: the word 'frame', then the mode box (Cine ›
        Loop still works), then the rate field (Cine › Faster/Slower still work), and only in a cell narrower
        than any layout of the window allows, the slider (the arrow keys still step). The play button (which
        has a fixed width that fits ▶ and ❚❚) and the full 'n / N' always show: a number is never elided."""
        lay = self._lay
        m = lay.contentsMargins()
        sp = lay.spacing()
        avail = self.width() - m.left() - m.right()
        slider = max(self._slider.minimumWidth(), 72)  # a usable length; it takes whatever is left over
        fixed = self._play.minimumWidth() + sp + slider
        fps = self._fps.minimumWidth() + sp
        if not self._native.isHidden():
            fps += max(self._native.minimumSizeHint().width(), self._native.sizeHint().width()) + sp
        mode = self._mode.minimumWidth() + sp
        candidates = (
            (0, fixed + self._label_width(n, 0) + sp + fps + mode),
            (1, fixed + self._label_width(n, 1) + sp + fps + mode),
            (2, fixed + self._label_width(n, 2) + sp + fps),
            (3, fixed + self._label_width(n, 3) + sp),
        )
        compact = 4
        for level, need in candidates:
            if need <= avail:
                compact = level
                break
        self._compact = compact
        for w, shown in ((self._mode, compact < 2), (self._fps, compact < 3), (self._slider, compact < 4)):
            if w.isHidden() == shown:
                w.setVisible(shown)
        if compact >= 3 and not self._native.isHidden():
            self._native.setVisible(False)

    def resizeEvent(self, ev: Any) -> None:
        super().resizeEvent(ev)
        if self.viewport.is_cine():
            self._state = None  # another width: what fits is worked out again
            self.refresh()

    def compact_level(self) -> int:
        """0: everything shown; 1: 'n / N'; 2: no mode box; 3: no rate field; 4: no slider (narrow cells)."""
        return self._compact

    def _apply_scale(self) -> None:
        vp = self.viewport
        # the size of the overlay text (from the viewport's place in the layout): legible on a projector, larger
        # while presenting (not limited by the width rule of the corner texts: the bar's slider gives way)
        base = max(12, min(14, vp.layout_height() // 40 + 8))  # the corner texts' rule (Viewport.overlay_text_px)
        px = max(base, min(32, round(base * vp.overlay_scale)))
        if px == self._scale_key:
            return
        self._scale_key = px
        self._state = None  # another text size: the frame label's width is worked out again
        self.setStyleSheet(self._style(px))
        f = QFont(self.font())
        f.setPixelSize(px)
        self.setFont(f)
        # fixed widths that fit their text at this size: a layout short of room squeezes every part below its
        # size hint (a pause button showed "…", a frame label "17 / 6" of 65): _fit_width drops whole parts
        # instead, so what is shown always has its room
        for part in (self._play, self._fps, self._mode, self._native, self._frame):
            part.ensurePolished()
        shown = self._play.text()
        button = 0
        for symbol in (PLAY_SYMBOL, PAUSE_SYMBOL):  # one width for both: the bar does not jump on play/pause
            self._play.setText(symbol)
            button = max(button, self._play.sizeHint().width(), self._play.minimumSizeHint().width())
        self._play.setText(shown)
        self._play.setFixedWidth(max(button, round(px * 2.2)))
        self._play.setMinimumHeight(round(px * 1.8))
        self._fps.setFixedWidth(max(self._fps.sizeHint().width(), self._fps.minimumSizeHint().width()))
        self._mode.setFixedWidth(max(self._mode.sizeHint().width(), self._mode.minimumSizeHint().width()))
        self._slider.setMinimumWidth(max(40, 3 * px))
        self._slider.setMinimumHeight(round(px * 1.4))
        self.setFixedHeight(round(px * 2.2))

    # ------------------------------------------------------------------ user input
    def _on_slider(self, value: int) -> None:
        if not self._updating:
            self.frameChosen.emit(int(value))

    def _on_fps_entered(self) -> None:
        fps = chosen_fps(self.viewport)
        value = float(self._fps.value())
        if fps is None or round(value, 1) != round(fps, 1):  # the field shows one decimal
            self.fpsChosen.emit(value)
        self.viewport.setFocus()  # Space plays again once the rate is typed

    def _on_native(self) -> None:
        nat = native_fps(self.viewport)
        if nat is not None:
            self.fpsChosen.emit(nat)

    def mousePressEvent(self, ev: Any) -> None:
        self.viewport.activated.emit(self.viewport)  # a click on the bar makes its viewport the current one
        super().mousePressEvent(ev)
