"""Cine timing: how long each frame of a multi-frame instance is shown.

Sources, in the order they are trusted:

1. ``FrameIncrementPointer`` (0028,0009) pointing at Frame Time Vector
   (0018,1065) or Frame Time (0018,1063): the header says which one applies.
2. Frame Time (0018,1063): one interval for every frame.
3. Frame Time Vector (0018,1065) without a pointer.
4. Recommended Display Frame Rate (0008,2144), then Cine Rate (0018,0040).
5. Nothing usable: :data:`ASSUMED_FPS` frames per second, reported as
   ``'assumed'`` so the viewer can say the speed is a guess.

Frame Time Vector semantics (PS3.3 C.7.6.5.1.2): value *i* is the time
between frame *i-1* and frame *i*, so value 0 is 0.  Frame *i* is therefore
shown for ``FTV[i+1]`` ms: **frame 0 gets ``FTV[1]``** (the zero is never a
duration).  The last frame has no successor: when the writer put a non-zero
first value (some scanners, e.g. Acuson, do) that is the interval that
closes the loop back to frame 0, otherwise the last frame repeats
``FTV[n-1]``.  A vector of n-1 values (the leading 0 left out) is taken as
the intervals.  Zero, negative or non-numeric intervals make a source
unusable and the next one is tried.

:class:`CineClock` turns these durations into "which frame is due at wall
time *t*" for a player that drops late frames instead of slowing down.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any

#: default playback rate when the header gives none
ASSUMED_FPS = 30.0

FRAME_TIME = 0x00181063
FRAME_TIME_VECTOR = 0x00181065

SOURCES = ("FrameTimeVector", "FrameTime", "RecommendedDisplayFrameRate", "CineRate", "assumed", "none")


def _floats(value: Any) -> list[float] | None:
    if value is None or value == "":
        return None
    items = value if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else [value]
    out: list[float] = []
    for v in items:
        try:
            f = float(str(v).strip())
        except ValueError:
            return None
        if not math.isfinite(f):
            return None
        out.append(f)
    return out or None


def _get(ds: Any, keyword: str) -> Any:
    try:
        return ds.get(keyword)
    except Exception:  # noqa: BLE001 - an undecodable value counts as absent
        return None


def _n_frames(ds: Any) -> int:
    try:
        return max(1, int(float(str(_get(ds, "NumberOfFrames") or 1))))
    except ValueError:
        return 1


def _pointers(ds: Any) -> list[int]:
    fip = _get(ds, "FrameIncrementPointer")
    if fip is None:
        return []
    items = fip if isinstance(fip, (list, tuple)) or type(fip).__name__ == "MultiValue" else [fip]
    out = []
    for t in items:
        try:
            out.append(int(t))
        except (TypeError, ValueError):
            continue
    return out


def _from_vector(values: list[float] | None, n: int) -> list[float] | None:
    if not values:
        return None
    if len(values) == n:
        intervals = values[1:]
        closing = values[0] if values[0] > 0 else None
    elif len(values) == n - 1:
        intervals = values
        closing = None
    else:
        return None
    if n == 1:
        return [values[0]] if values[0] > 0 else None
    if any(v <= 0 for v in intervals):
        return None
    return intervals + [closing if closing is not None else intervals[-1]]


def _from_frame_time(ds: Any, n: int) -> list[float] | None:
    ft = _floats(_get(ds, "FrameTime"))
    if ft and ft[0] > 0:
        return [ft[0]] * n
    return None


def frame_times_ms(ds: Any) -> tuple[list[float] | None, str]:
    """Per-frame display durations in ms and where they came from.

    Returns ``(None, 'none')`` for single-frame instances.  See the module
    docstring for the order of sources and the Frame Time Vector rule.
    """
    n = _n_frames(ds)
    if n <= 1:
        return None, "none"
    for ptr in _pointers(ds):
        if ptr == FRAME_TIME_VECTOR:
            times = _from_vector(_floats(_get(ds, "FrameTimeVector")), n)
            if times:
                return times, "FrameTimeVector"
        elif ptr == FRAME_TIME:
            times = _from_frame_time(ds, n)
            if times:
                return times, "FrameTime"
    times = _from_frame_time(ds, n)
    if times:
        return times, "FrameTime"
    times = _from_vector(_floats(_get(ds, "FrameTimeVector")), n)
    if times:
        return times, "FrameTimeVector"
    for keyword in ("RecommendedDisplayFrameRate", "CineRate"):
        rate = _floats(_get(ds, keyword))
        if rate and rate[0] > 0:
            return [1000.0 / rate[0]] * n, keyword
    return [1000.0 / ASSUMED_FPS] * n, "assumed"


class CineClock:
    """Which frame is due at a wall-clock time, looping, at a speed factor.

    ``clock = CineClock(times_ms, speed=1.0)``; ``clock.frame_at(elapsed_s)``
    gives the frame to show *elapsed_s* seconds after play started (a late
    player simply skips to it).  ``clock.next_change_s(elapsed_s)`` says when
    the frame after it is due, for scheduling a timer.  ``start_frame`` lets
    playback resume from a paused frame; :meth:`rebased` keeps the current
    position when the speed changes mid-play.
    """

    def __init__(self, times_ms: Sequence[float], speed: float = 1.0, start_frame: int = 0, loop: bool = True):
        if not times_ms:
            raise ValueError("no frame times")
        if speed <= 0 or not math.isfinite(speed):
            raise ValueError("speed must be a positive number")
        self.times_ms = [max(float(t), 1e-3) for t in times_ms]
        self.speed = float(speed)
        self.loop = loop
        self._ends: list[float] = []
        acc = 0.0
        for t in self.times_ms:
            acc += t
            self._ends.append(acc)
        self.total_ms = acc
        self.start_frame = min(max(int(start_frame), 0), len(self.times_ms) - 1)
        self._offset_ms = self._ends[self.start_frame] - self.times_ms[self.start_frame]

    @property
    def n_frames(self) -> int:
        return len(self.times_ms)

    def _position_ms(self, elapsed_s: float) -> float:
        pos = self._offset_ms + max(elapsed_s, 0.0) * 1000.0 * self.speed
        if self.loop:
            return pos % self.total_ms
        return min(pos, self.total_ms - 1e-9)

    def frame_at(self, elapsed_s: float) -> int:
        """Index of the frame due *elapsed_s* seconds after play started."""
        pos = self._position_ms(elapsed_s)
        return min(bisect.bisect_right(self._ends, pos), self.n_frames - 1)

    def next_change_s(self, elapsed_s: float) -> float:
        """Seconds (from play start) at which the frame after the current one is due."""
        pos = self._position_ms(elapsed_s)
        i = min(bisect.bisect_right(self._ends, pos), self.n_frames - 1)
        remaining_ms = self._ends[i] - pos
        return max(elapsed_s, 0.0) + remaining_ms / (1000.0 * self.speed)

    def frame_start_ms(self, index: int) -> float:
        """Start of frame *index* within one loop, in media ms."""
        return self._ends[index] - self.times_ms[index]

    def rebased(self, elapsed_s: float, speed: float) -> CineClock:
        """A clock at *speed* that starts (elapsed 0) where this one is at *elapsed_s*."""
        clock = CineClock(self.times_ms, speed=speed, loop=self.loop)
        clock._offset_ms = self._position_ms(elapsed_s)
        return clock

    def frames_dropped(self, shown: int, due: int) -> int:
        """How many frames a player skips going from *shown* to *due* (looping)."""
        return (due - shown - 1) % self.n_frames if due != shown else 0
