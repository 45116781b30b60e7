"""Cine timing for the viewports: which frame is due now, by wall clock.

A cine plays at the file's own timing (Frame Time Vector included) by wall
clock: when decoding or painting falls behind, the frames whose time has
passed are DROPPED and the loop keeps its real duration; it never slows down.
Synchronised viewports share one start time and run each at the speed that
makes its loop last as long as the leader's, so loops of different lengths
stay in step by normalised position.

Pure Python (no Qt) so the arithmetic is easy to test; the window drives it
from a precise timer.
"""

from __future__ import annotations

import bisect
import time
from collections import deque
from dataclasses import dataclass, field

#: the refresh interval a frame may be late by and still count as on time (60 Hz)
ON_TIME_MS = 1000.0 / 60.0

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0)

#: how many recent lateness figures PlaybackStats keeps (10 s of four 60 fps loops and more)
LATE_HISTORY = 10_000


def durations_from_times(times: list[float] | None, n_frames: int, default_fps: float = 30.0) -> list[float]:
    """Per-frame display durations (ms) from what :func:`mdtviewer.imaging.cine.frame_times_ms` returned.

    Accepts one duration per frame, or a Frame Time Vector (first value 0: the
    increment *before* each frame), or a single frame time for all frames.
    """
    n = max(1, int(n_frames))
    fallback = 1000.0 / (default_fps or 30.0)
    if not times:
        return [fallback] * n
    t = [float(x) if x and float(x) > 0 else 0.0 for x in times]
    if len(t) == 1:
        return [t[0] or fallback] * n
    if len(t) == n and t[0] == 0.0 and any(x > 0 for x in t[1:]):
        # Frame Time Vector: t[i] is the time from frame i-1 to frame i; frame i
        # stays up for t[i+1]; the last frame gets the mean increment.
        inc = t[1:]
        mean = sum(inc) / len(inc) or fallback
        return [x or mean for x in inc] + [mean]
    if len(t) >= n:
        t = t[:n]
    else:
        t = t + [t[-1]] * (n - len(t))
    mean = (sum(t) / len(t)) or fallback
    return [x or mean for x in t]


class PlaybackClock:
    """Frame start times of one loop, and the frame shown at a media time."""

    def __init__(self, durations_ms: list[float]):
        self.durations = [max(0.001, float(d)) for d in durations_ms] or [1000.0 / 30]
        self.starts: list[float] = []
        acc = 0.0
        for d in self.durations:
            self.starts.append(acc)
            acc += d
        self.total_ms = acc
        self.n = len(self.durations)

    @property
    def fps(self) -> float:
        return 1000.0 * self.n / self.total_ms if self.total_ms else 0.0

    def frame_at(self, media_ms: float, loop: bool = True) -> int:
        if loop:
            media_ms %= self.total_ms
        elif media_ms >= self.total_ms:
            return self.n - 1
        media_ms = max(0.0, media_ms)
        return max(0, bisect.bisect_right(self.starts, media_ms) - 1)

    def position(self, frame: int) -> float:
        """Normalised position (0..1) of the start of *frame* in the loop."""
        return self.starts[max(0, min(self.n - 1, frame))] / self.total_ms


@dataclass
class PlayState:
    """One viewport's play head: media time = start_media + (now - start_wall) * speed."""

    clock: PlaybackClock
    start_wall: float
    start_media: float
    speed: float = 1.0
    loop: bool = True

    def media_at(self, now: float) -> float:
        return self.start_media + (now - self.start_wall) * 1000.0 * self.speed

    def frame_at(self, now: float) -> int:
        return self.clock.frame_at(self.media_at(now), self.loop)

    def finished(self, now: float) -> bool:
        return not self.loop and self.media_at(now) >= self.clock.total_ms

    def next_change_wall(self, now: float) -> float:
        """Wall time at which the next frame becomes due (for a timer that wakes exactly then)."""
        media = self.media_at(now)
        total = self.clock.total_ms
        m = media % total if self.loop else min(media, total)
        i = self.clock.frame_at(m, loop=False)
        nxt = self.clock.starts[i + 1] if i + 1 < self.clock.n else total
        return now + max(0.0, nxt - m) / (1000.0 * self.speed)

    def due_wall(self, frame: int, now: float) -> float:
        """Wall time at which *frame* became (or becomes) due in the loop playing at *now*."""
        media = self.media_at(now)
        total = self.clock.total_ms
        loop_base = (media // total) * total if self.loop else 0.0
        m = loop_base + self.clock.starts[frame]
        if m > media + 1e-6:  # the frame belongs to the previous loop pass
            m -= total
        return self.start_wall + (m - self.start_media) / (1000.0 * self.speed)


@dataclass
class PlaybackStats:
    """On-time / dropped counts while playing (what the benchmark reports)."""

    shown: int = 0
    on_time: int = 0
    dropped: int = 0
    #: lateness of the most recent frames shown (bounded: a loop may play all meeting long)
    late_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATE_HISTORY))

    def record_shown(self, lateness_ms: float) -> None:
        self.shown += 1
        self.late_ms.append(lateness_ms)
        if lateness_ms <= ON_TIME_MS:
            self.on_time += 1

    @property
    def due(self) -> int:
        return self.shown + self.dropped

    def on_time_share(self) -> float:
        return self.on_time / self.due if self.due else 1.0

    def reset(self) -> None:
        self.shown = self.on_time = self.dropped = 0
        self.late_ms.clear()


def skipped_between(prev: int, new: int, n: int) -> int:
    """Frames passed over when the play head jumps forward from *prev* to *new* in a loop of *n*."""
    if n <= 1 or prev < 0:
        return 0
    return max(0, (new - prev) % n - 1)


def now() -> float:
    return time.perf_counter()
