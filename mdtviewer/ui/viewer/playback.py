"""Cine playback across the viewports of a grid: play/pause, step, speed, loop, synchronised play.

One precise single-shot timer is re-armed for the next frame boundary of any
playing viewport (never a fixed-rate timer: a frame due now is shown now and
late frames are dropped by the viewport).  Synchronised play starts every cine
together, from the leader's (the current viewport's) normalised loop position,
each at its own native frame rate; stretching every loop to the leader's
length is a separate, explicit choice (:meth:`PlaybackController.set_stretch`)
and changes speed, which each overlay then shows (effective rate and factor).
Switching either off restores native timing at once.

Each viewport's cine bar (:mod:`.cine_bar`) is wired here: its play button,
frame slider, frame-rate field and play mode (loop, sweep, once) act on its
own viewport, which becomes the current one.  Space plays/pauses the current
viewport (every cine when synchronised), Shift+Space every viewport.

A loop playing from frames already decoded reads no file: every ``FILE_CHECK_S`` the timer asks each playing
viewport to check, in the background, whether its file was replaced on disk (a re-retrieve writes a new file
under the same path); a replaced file's old frames are dropped and the new file plays on (HAZ-018).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QTimer, Signal

from mdtviewer.imaging.cine import PLAY_MODES, clamp_fps
from mdtviewer.ui.viewer.cine_bar import CineBar, play_mode
from mdtviewer.ui.viewer.cine_player import now
from mdtviewer.ui.viewer.grid import ViewportGrid
from mdtviewer.ui.viewer.viewport import Viewport

#: shortest timer interval (ms); the longest wait is 25 times this
TICK_MS = 4
MIN_SPEED, MAX_SPEED = 0.25, 4.0
#: while playing, each viewport's file is checked for a replacement on disk at most this often (seconds)
FILE_CHECK_S = 0.5


class PlaybackController(QObject):
    """Plays the cines of *grid*; the window's Cine menu calls it."""

    #: one line for the status bar
    message = Signal(str)
    #: the speed of the current viewport (after Faster/Slower or a speed choice)
    speedChanged = Signal(float)
    #: synchronised play switched on or off
    syncChanged = Signal(bool)
    #: stretching synchronised loops to the leader's length switched on or off
    stretchChanged = Signal(bool)

    def __init__(self, grid: ViewportGrid, parent: QObject | None = None):
        super().__init__(parent)
        self.grid = grid
        self._sync = False
        self._stretch = False
        self._loop = True
        self.tick_timer = QTimer(self)
        self.tick_timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.tick_timer.setSingleShot(True)
        self.tick_timer.setInterval(TICK_MS)
        self.tick_timer.timeout.connect(self._tick)
        self._file_checked_at = 0.0
        for vp in grid.all_viewports():
            self._attach_bar(vp)
        grid.viewportAdded.connect(self._attach_bar)

    def _attach_bar(self, vp: Viewport) -> None:
        bar: CineBar = self.grid.cine_bar(vp)
        bar.playToggled.connect(lambda: self.toggle(vp))
        bar.frameChosen.connect(lambda i: self.seek(vp, i))
        bar.fpsChosen.connect(lambda fps: self.set_fps(fps, vp))
        bar.modeChosen.connect(lambda mode: self.set_mode(mode, vp))
        # a viewport that reopened a file replaced on disk plays on by itself: the timer must run for it
        vp.playingChanged.connect(lambda on: self._update_timer() if on else None)

    # ------------------------------------------------------------------ state
    @property
    def sync(self) -> bool:
        return self._sync

    @property
    def stretch(self) -> bool:
        return self._stretch

    @property
    def loop(self) -> bool:
        return self._loop

    def _viewports(self) -> list[Viewport]:
        return self.grid.viewports()

    def is_playing(self) -> bool:
        return any(v.playing for v in self._viewports())

    # ------------------------------------------------------------------ play / pause
    def play_pause(self) -> None:
        vp = self.grid.current()
        targets = [v for v in self._viewports() if v.is_cine()] if self._sync else [vp]
        if any(v.playing for v in targets):
            for v in targets:
                v.stop()
        else:
            self.play(targets, leader=vp)
        self._update_timer()

    def play(self, targets: list[Viewport] | None = None, leader: Viewport | None = None) -> None:
        """Start playing *targets* (default: the current viewport, or all cines when synchronised)."""
        leader = leader or self.grid.current()
        if targets is None:
            targets = [v for v in self._viewports() if v.is_cine()] if self._sync else [leader]
        wall = now()
        if self._sync and leader.clock is not None:
            p = leader.position()
            # native speed unless stretching was chosen: a loop never silently plays faster or slower
            loop_ms = leader.clock.total_ms if self._stretch else None
            for v in targets:
                v.set_speed(leader.speed)
                v.start(wall, position=p, loop_ms=loop_ms)
        else:
            for v in targets:
                v.start(wall)
        self._update_timer()

    def toggle(self, vp: Viewport) -> None:
        """The cine bar's ▶/❚❚ of *vp*: it becomes the current viewport and plays or pauses."""
        self.grid.set_current(vp)
        self.play_pause()

    def play_pause_all(self) -> None:
        """Shift+Space: pause every viewport when any plays, else play every cine of the layout."""
        cines = [v for v in self._viewports() if v.is_cine()]
        if any(v.playing for v in self._viewports()):
            for v in self._viewports():
                v.stop()
            self.message.emit("Every viewport paused")
        elif cines:
            leader = self.grid.current() if self.grid.current() in cines else cines[0]
            self.play(cines, leader=leader)
            self.message.emit(f"Playing {len(cines)} viewport{'s' if len(cines) != 1 else ''}")
        self._update_timer()

    def seek(self, vp: Viewport, frame: int) -> None:
        """The frame slider of *vp*: pause it (scrubbing a playing loop would be overridden) and go to *frame*."""
        self.grid.set_current(vp)
        if vp.playing:
            vp.stop()
            self._update_timer()
        vp.set_frame(frame)
        if self._sync:
            self.follow(vp)

    def set_fps(self, fps: float, vp: Viewport | None = None) -> float:
        """Play *vp* (default: the current viewport) at *fps* frames/s, any plausible rate
        (:func:`mdtviewer.imaging.cine.clamp_fps`); returns the rate set (0 for a single frame)."""
        vp = vp or self.grid.current()
        self.grid.set_current(vp)
        if vp.clock is None:
            return 0.0
        fps = clamp_fps(fps)
        native = vp.clock.fps
        self._restart(vp, lambda: vp.set_speed(fps / native))
        self.speedChanged.emit(vp.speed)
        self.message.emit(f"{fps:.3g} frames/s" + ("" if abs(vp.speed - 1.0) < 1e-9 else f" (file: {native:.3g})"))
        return fps

    def set_mode(self, mode: str, vp: Viewport | None = None) -> None:
        """Loop, sweep (back and forth) or once, for *vp* (default: the current viewport)."""
        if mode not in PLAY_MODES:
            raise ValueError(f"unknown play mode {mode!r}")
        vp = vp or self.grid.current()
        self.grid.set_current(vp)

        def apply() -> None:
            vp.sweep = mode == "sweep"
            vp.set_loop(mode != "once")

        self._restart(vp, apply)
        self.message.emit({"loop": "Loop", "sweep": "Sweep: back and forth", "once": "Play once"}[mode])

    def mode(self, vp: Viewport | None = None) -> str:
        return play_mode(vp or self.grid.current())

    def _restart(self, vp: Viewport, change: Callable[[], None]) -> None:
        """Apply *change* to *vp*; a playing loop goes on from where it is with the change."""
        was = vp.playing
        pos = vp.position()
        vp.stop()
        change()
        if was:
            vp.start(now(), position=pos)
        self._update_timer()
        self.grid.cine_bar(vp).refresh()

    def stop_all(self) -> None:
        for v in self.grid.all_viewports():
            v.stop()
        self._update_timer()

    def _update_timer(self) -> None:
        playing = self.is_playing()
        if playing and not self.tick_timer.isActive():
            self.tick_timer.start(0)
        elif not playing and self.tick_timer.isActive():
            self.tick_timer.stop()

    def _tick(self) -> None:
        t = now()
        nxt = None
        if t - self._file_checked_at >= FILE_CHECK_S:
            self._file_checked_at = t
            for v in self._viewports():
                if v.playing:
                    v.check_file_changed()
        for v in self._viewports():
            if v.playing:
                v.tick(t)
                w = v.next_change_wall(t)
                if w is not None:
                    nxt = w if nxt is None else min(nxt, w)
        if nxt is None:
            self.tick_timer.stop()
            return
        wait_ms = math.ceil(max(0.0, nxt - now()) * 1000.0)
        self.tick_timer.start(max(1, min(TICK_MS * 25, wait_ms)))

    # ------------------------------------------------------------------ stepping
    def step(self, delta: int) -> None:
        vp = self.grid.current()
        if vp.playing:
            self.play_pause()
        vp.step(delta)
        if self._sync:
            self.follow(vp)

    def first(self) -> None:
        vp = self.grid.current()
        vp.first()
        if self._sync:
            self.follow(vp)

    def last(self) -> None:
        vp = self.grid.current()
        vp.last()
        if self._sync:
            self.follow(vp)

    def follow(self, leader: Viewport) -> None:
        """Paused cines go to the leader's normalised position."""
        p = leader.position()
        for v in self._viewports():
            if v is not leader and v.is_cine() and not v.playing:
                v.seek_position(p)

    # ------------------------------------------------------------------ speed, loop, sync
    def set_speed(self, s: float) -> float:
        s = max(MIN_SPEED, min(MAX_SPEED, float(s)))
        targets = self._viewports() if self._sync else [self.grid.current()]
        was = [v for v in targets if v.playing]
        for v in targets:
            v.stop()
            v.set_speed(s)
        if was:
            self.play([v for v in targets if v.is_cine()] if self._sync else was, leader=self.grid.current())
        self.speedChanged.emit(s)
        self.message.emit(f"Speed {s:g}×")
        return s

    def faster(self) -> None:
        s = self.grid.current().speed
        if s >= MAX_SPEED:  # a rate typed in the cine bar may lie beyond the steps: ] never slows a loop down
            self.message.emit(f"Already faster than {MAX_SPEED:g}×")
            return
        self.set_speed(min(MAX_SPEED, s * 2))

    def slower(self) -> None:
        s = self.grid.current().speed
        if s <= MIN_SPEED:
            self.message.emit(f"Already slower than {MIN_SPEED:g}×")
            return
        self.set_speed(max(MIN_SPEED, s / 2))

    def set_loop(self, on: bool) -> None:
        """Cine › Loop (L) for every viewport: loop (a sweep stays a sweep), or play once."""
        self._loop = bool(on)
        for v in self.grid.all_viewports():
            if not self._loop and v.sweep:
                self._restart(v, functools.partial(setattr, v, "sweep", False))
            v.set_loop(self._loop)
            self.grid.cine_bar(v).refresh()

    def set_sync(self, on: bool) -> None:
        """Synchronised play: every cine follows the current viewport by normalised loop position."""
        changed = self._sync != bool(on)
        self._sync = bool(on)
        playing = self.is_playing()
        if self._sync:
            leader = self.grid.current()
            if playing:
                for v in self._viewports():
                    v.stop()
                self.play([v for v in self._viewports() if v.is_cine()], leader=leader)
            else:
                self.follow(leader)
        else:
            self._native_again()
        if changed:
            self.syncChanged.emit(self._sync)
        self.message.emit("Viewports synchronised" if self._sync else "Viewports play independently")

    def set_stretch(self, on: bool) -> None:
        """Synchronised loops stretched to the leading loop's length (changes their speed), or native again."""
        changed = self._stretch != bool(on)
        self._stretch = bool(on)
        if self._sync and self.is_playing():
            leader = self.grid.current()
            for v in self._viewports():
                v.stop()
            self.play([v for v in self._viewports() if v.is_cine()], leader=leader)
        elif not self._stretch:
            self._native_again()
        if changed:
            self.stretchChanged.emit(self._stretch)
        self.message.emit(
            "Synchronised loops stretched to the leading loop's length" if self._stretch
            else "Synchronised loops play at their own frame rates"
        )

    def _native_again(self) -> None:
        """Every playing loop whose speed was stretched plays on at its own timing, from where it is, now."""
        wall = now()
        for v in self.grid.all_viewports():
            if v.play is not None and abs(v.play.speed - v.speed) > 1e-9:
                pos = v.position()
                v.stop()
                v.start(wall, position=pos)
        self._update_timer()
