"""What the viewports need around the core cine clock: speeds, play statistics, the wall clock.

A cine plays at the file's own timing by wall clock: when decoding or
painting falls behind, the frames whose time has passed are DROPPED and the
loop keeps its real duration; it never slows down.  Synchronised viewports
share one start time and run each at the speed that makes its loop last as
long as the leader's, so loops of different lengths stay in step by
normalised position.

The timing itself is not here: the durations come from
:func:`mdtviewer.imaging.cine.playback_durations` (the one reader of Frame
Time Vector, Frame Time and rates), and the clock and play head are
:class:`mdtviewer.imaging.cine.CineClock` and
:class:`~mdtviewer.imaging.cine.PlayState`, which the viewport uses directly.
Pure Python (no Qt); the window drives it from a precise timer.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

#: the refresh interval a frame may be late by and still count as on time (60 Hz)
ON_TIME_MS = 1000.0 / 60.0

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0)

#: how many recent lateness figures PlaybackStats keeps (10 s of four 60 fps loops and more)
LATE_HISTORY = 10_000


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


def now() -> float:
    return time.perf_counter()
