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

:func:`playback_durations` fits them to the frames a decoder actually
found; :class:`CineClock` (the one clock: the viewer's player and the MP4
export both use it) turns them into frame start times and "which frame is
shown at media time *t*"; :class:`PlayState` maps wall-clock time to media
time at a speed, for a player that drops late frames instead of slowing
down, looping, sweeping back and forth (:data:`PLAY_MODES`) or playing once.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mdtviewer.dicom import values

#: default playback rate when the header gives none
ASSUMED_FPS = 30.0

FRAME_TIME = 0x00181063
FRAME_TIME_VECTOR = 0x00181065


def _fps(fps: float) -> float:
    return fps if fps and fps > 0 and math.isfinite(fps) else ASSUMED_FPS


#: frame intervals outside this range (ms) are not believed: 2,000 frames/s .. one frame a minute
MIN_FRAME_MS = 0.5
MAX_FRAME_MS = 60_000.0


def _plausible(ms: float) -> bool:
    return MIN_FRAME_MS <= ms <= MAX_FRAME_MS


def timing_note(ds: Any) -> str | None:
    """What timing value of *ds* was refused as implausible (and so not used), in one line; else None."""
    if _n_frames(ds) <= 1:
        return None
    refused = []
    ft = values.numbers(ds, "FrameTime")
    if ft and ft[0] > 0 and not _plausible(ft[0]):
        refused.append(f"Frame Time {ft[0]:g} ms")
    vec = values.numbers(ds, "FrameTimeVector")
    if vec and any(v > 0 and not _plausible(v) for v in vec[1:]):
        refused.append("Frame Time Vector (an interval outside 0.5 ms .. 60 s)")
    rates = (("RecommendedDisplayFrameRate", "Recommended Display Frame Rate"), ("CineRate", "Cine Rate"))
    for keyword, label in rates:
        rate = values.numbers(ds, keyword)
        if rate and rate[0] > 0 and not _plausible(1000.0 / rate[0]):
            refused.append(f"{label} {rate[0]:g} frames/s")
    if not refused:
        return None
    _times, source = frame_times_ms(ds)
    used = f"{ASSUMED_FPS:g} frames/s assumed" if source == "assumed" else f"timing from {source}"
    return f"{' and '.join(refused)} not believed (implausible); {used}"


SOURCES = ("FrameTimeVector", "FrameTime", "RecommendedDisplayFrameRate", "CineRate", "assumed", "none")


def _n_frames(ds: Any) -> int:
    return max(1, values.integer(ds, "NumberOfFrames", 1) or 1)


def _pointers(ds: Any) -> list[int]:
    out = []
    for t in values.values(values.get(ds, "FrameIncrementPointer")):
        try:
            out.append(int(t))
        except (TypeError, ValueError):
            continue
    return out


def _from_vector(vec: list[float] | None, n: int) -> list[float] | None:
    if not vec:
        return None
    if len(vec) == n:
        intervals = vec[1:]
        closing = vec[0] if vec[0] > 0 else None
    elif len(vec) == n - 1:
        intervals = vec
        closing = None
    else:
        return None
    if n == 1:
        return [vec[0]] if _plausible(vec[0]) else None
    if any(not _plausible(v) for v in intervals):
        return None
    if closing is not None and not _plausible(closing):
        closing = None
    return intervals + [closing if closing is not None else intervals[-1]]


def _from_frame_time(ds: Any, n: int) -> list[float] | None:
    ft = values.numbers(ds, "FrameTime")
    if ft and _plausible(ft[0]):
        return [ft[0]] * n
    return None


def frame_times_ms(ds: Any, assumed_fps: float = ASSUMED_FPS) -> tuple[list[float] | None, str]:
    """Per-frame display durations in ms and where they came from.

    Returns ``(None, 'none')`` for single-frame instances.  See the module
    docstring for the order of sources and the Frame Time Vector rule.  This
    is the only place a Frame Time Vector is interpreted: everything else
    (the viewer's player, the MP4 export) uses the durations it returns.
    """
    n = _n_frames(ds)
    if n <= 1:
        return None, "none"
    for ptr in _pointers(ds):
        if ptr == FRAME_TIME_VECTOR:
            times = _from_vector(values.numbers(ds, "FrameTimeVector"), n)
            if times:
                return times, "FrameTimeVector"
        elif ptr == FRAME_TIME:
            times = _from_frame_time(ds, n)
            if times:
                return times, "FrameTime"
    times = _from_frame_time(ds, n)
    if times:
        return times, "FrameTime"
    times = _from_vector(values.numbers(ds, "FrameTimeVector"), n)
    if times:
        return times, "FrameTimeVector"
    for keyword in ("RecommendedDisplayFrameRate", "CineRate"):
        rate = values.numbers(ds, keyword)
        if rate and rate[0] > 0 and _plausible(1000.0 / rate[0]):
            return [1000.0 / rate[0]] * n, keyword
    return [1000.0 / _fps(assumed_fps)] * n, "assumed"


def playback_durations(ds: Any, n_frames: int, assumed_fps: float = ASSUMED_FPS) -> tuple[list[float], str]:
    """One display duration (ms) for each of *n_frames* frames, and where the timing came from.

    *n_frames* is the number of frames the pixel data really holds, which a
    damaged header may state differently: the durations of
    :func:`frame_times_ms` are cut to it, or the last one repeated.  With no
    timing in the header (or a single-frame header), every frame gets
    ``1000 / assumed_fps`` ms (source ``'assumed'``); a single frame has
    source ``'none'``.
    """
    n = max(1, int(n_frames))
    if n == 1:
        return [1000.0 / _fps(assumed_fps)], "none"
    times, source = frame_times_ms(ds, assumed_fps)
    if not times:
        return [1000.0 / _fps(assumed_fps)] * n, "assumed"
    if len(times) >= n:
        return list(times[:n]), source
    return list(times) + [times[-1]] * (n - len(times)), source


class CineClock:
    """One loop of a cine: when each frame starts, and which frame is shown at a media time.

    Built from per-frame display durations (:func:`playback_durations`);
    a duration of 0 or less counts as 1 µs so that the loop stays ordered.
    Media time is in ms from the start of frame 0.
    """

    def __init__(self, durations_ms: Sequence[float]):
        if not durations_ms:
            raise ValueError("no frame durations")
        self.durations = [max(1e-3, float(d)) for d in durations_ms]
        self.starts: list[float] = []
        acc = 0.0
        for d in self.durations:
            self.starts.append(acc)
            acc += d
        self.total_ms = acc

    @property
    def n_frames(self) -> int:
        return len(self.durations)

    @property
    def fps(self) -> float:
        """Mean frame rate of the loop."""
        return 1000.0 * self.n_frames / self.total_ms

    def frame_at(self, media_ms: float, loop: bool = True) -> int:
        """The frame shown at *media_ms* (looping, or held on the last frame)."""
        if loop:
            media_ms %= self.total_ms
        elif media_ms >= self.total_ms:
            return self.n_frames - 1
        return max(0, bisect.bisect_right(self.starts, max(0.0, media_ms)) - 1)

    def frame_start_ms(self, frame: int) -> float:
        """Start of *frame* within the loop, in ms."""
        return self.starts[max(0, min(self.n_frames - 1, frame))]

    def position(self, frame: int) -> float:
        """Normalised position (0..1) of the start of *frame* in the loop."""
        return self.frame_start_ms(frame) / self.total_ms


#: how a cine plays: round and round, back and forth (sweep), or once and stop on the last frame
PLAY_MODES = ("loop", "sweep", "once")

#: the frame rates a user may choose (frames/s): the plausible frame intervals of a file
#: (:data:`MIN_FRAME_MS` .. :data:`MAX_FRAME_MS`), capped at 240 frames/s (no display shows more)
FPS_MIN = 1000.0 / MAX_FRAME_MS
FPS_MAX = 240.0


def clamp_fps(fps: float) -> float:
    """*fps* kept within the plausible playback rates (:data:`FPS_MIN` .. :data:`FPS_MAX`)."""
    f = float(fps)
    if not math.isfinite(f) or f <= 0:
        raise ValueError(f"not a frame rate: {fps!r}")
    return max(FPS_MIN, min(FPS_MAX, f))


def sweep_order(n: int) -> list[int]:
    """Frames of one back-and-forth pass: 0 .. n-1, then n-2 .. 1 (each end shown once per turn)."""
    return list(range(n)) + list(range(n - 2, 0, -1))


@dataclass
class PlayState:
    """A play head by wall clock: ``media = start_media + (now - start_wall) * speed``.

    Wall times are in seconds (``time.perf_counter``), media times in ms.  A
    player asks :meth:`frame_at` when it wakes and shows that frame, whatever
    it showed before: late frames are dropped, the loop keeps its duration.
    With *sweep* the loop runs forward then backward (``0 .. n-1 .. 1``, each
    frame for its own duration, the turning frames once): media time then
    runs over that longer pass, whose first half is the forward loop.
    """

    clock: CineClock
    start_wall: float
    start_media: float
    speed: float = 1.0
    loop: bool = True
    sweep: bool = False

    def __post_init__(self) -> None:
        self._order: list[int] | None = None
        self._pass = self.clock
        if self.sweep and self.clock.n_frames > 2:
            self._order = sweep_order(self.clock.n_frames)
            self._pass = CineClock([self.clock.durations[i] for i in self._order])

    @property
    def sweeping(self) -> bool:
        return self._order is not None

    def media_at(self, now: float) -> float:
        return self.start_media + (now - self.start_wall) * 1000.0 * self.speed

    def _slot(self, media: float) -> int:
        return self._pass.frame_at(media, loop=True)

    def frame_at(self, now: float) -> int:
        if self._order is not None:
            return self._order[self._slot(self.media_at(now))]
        return self.clock.frame_at(self.media_at(now), self.loop)

    def direction(self, now: float) -> int:
        """+1 while frames go forward, -1 on the way back of a sweep."""
        if self._order is None:
            return 1
        return 1 if self._slot(self.media_at(now)) < self.clock.n_frames - 1 else -1

    def finished(self, now: float) -> bool:
        return not self.loop and self._order is None and self.media_at(now) >= self.clock.total_ms

    def next_change_wall(self, now: float) -> float:
        """Wall time at which the next frame becomes due (for a timer that wakes exactly then)."""
        media = self.media_at(now)
        clock = self._pass
        total = clock.total_ms
        m = media % total if (self.loop or self._order is not None) else min(media, total)
        i = clock.frame_at(m, loop=False)
        nxt = clock.starts[i + 1] if i + 1 < clock.n_frames else total
        return now + max(0.0, nxt - m) / (1000.0 * self.speed)

    def due_wall(self, frame: int, now: float) -> float:
        """Wall time at which *frame* became (or becomes) due in the loop playing at *now*."""
        media = self.media_at(now)
        if self._order is not None:
            # the slot of the pass on screen now (a sweep shows most frames twice per pass)
            total = self._pass.total_ms
            m = (media // total) * total + self._pass.frame_start_ms(self._slot(media))
            return self.start_wall + (m - self.start_media) / (1000.0 * self.speed)
        total = self.clock.total_ms
        loop_base = (media // total) * total if self.loop else 0.0
        m = loop_base + self.clock.frame_start_ms(frame)
        if m > media + 1e-6:  # the frame belongs to the previous loop pass
            m -= total
        return self.start_wall + (m - self.start_media) / (1000.0 * self.speed)

    def skipped(self, prev: int, new: int) -> int:
        """Frames passed over between two frames shown (forward in a loop; either way in a sweep)."""
        if self._order is not None:
            return 0 if prev < 0 else max(0, abs(new - prev) - 1)
        return skipped_between(prev, new, self.clock.n_frames)


def skipped_between(prev: int, new: int, n: int) -> int:
    """Frames passed over when the play head jumps forward from *prev* to *new* in a loop of *n*."""
    if n <= 1 or prev < 0:
        return 0
    return max(0, (new - prev) % n - 1)
