"""Decoded-frame cache bounded in bytes, a prefetch plan, and a prioritised decode pool.

Why here (Qt-free): the review window plays up to four cines at once on a
2-core machine.  Decoding must run off the UI thread and ahead of the play
head, and the decoded frames (up to ~2 MB each) must never grow past the
user's memory budget (setting ``viewer.cache_bytes``, default 1 GiB).  All of
that is plain logic, so it lives in the core and is tested headless; the UI
only turns the "frame ready" callback into a Qt signal.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mdtviewer.infra.errors import MdtError

log = logging.getLogger(__name__)

#: default budget for decoded frames (1 GiB), matches settings DEFAULTS
DEFAULT_CACHE_BYTES = 1 << 30


@dataclass(frozen=True)
class FileVersion:
    """One version of a file on disk: its path and what the file system says of its content.

    Decoded frames, and the decoders holding a file's bytes, are keyed on this, never on the
    path alone: a file replaced under the same path (a re-retrieve, a corrected study, an
    export written again) is a new version, so its old frames are never shown for it
    (hazard HAZ-018).  Size and modification time (ns) change with any ordinary rewrite;
    the inode (where the file system has one: 0 otherwise) changes when a file is replaced
    by a rename, as atomic writers and the local store do; the status-change time (ns)
    changes on every write or rename and cannot be set back by a program, so a copy made
    with its old size and modification time restored is still a new version.
    """

    path: str
    size: int
    mtime_ns: int
    inode: int = 0
    ctime_ns: int = 0

    @classmethod
    def of(cls, path: str | os.PathLike[str]) -> FileVersion:
        """The version of *path* now (OSError when it cannot be stat'ed)."""
        st = os.stat(path)
        return cls(os.fspath(path), int(st.st_size), int(st.st_mtime_ns), int(getattr(st, "st_ino", 0) or 0),
                   int(st.st_ctime_ns))

    def is_current(self) -> bool:
        """True while the file on disk is still this version (False once changed, replaced or removed)."""
        try:
            return FileVersion.of(self.path) == self
        except OSError:
            return False


class FileChangedError(MdtError):
    """A file changed on disk after it was opened: its frames are not decoded from the new bytes under the
    old header (the image is opened again instead)."""

    category = "changed"

    def __init__(self, path: str):
        super().__init__(f"{os.path.basename(path)} changed on disk since it was opened: open it again "
                         "(its old frames are not shown for the new file)")


class FrameCache:
    """Least-recently-used map ``key -> numpy array`` whose total ``nbytes`` never exceeds ``max_bytes``.

    Thread-safe: decode workers put, the UI thread gets.  An array larger than
    the whole budget is not stored at all (the caller still gets to show it).
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES):
        if max_bytes < 0:
            raise ValueError("cache budget must be >= 0 bytes")
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._nbytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        #: the largest total ever held (for tests and benchmarks)
        self.peak_bytes = 0

    @property
    def nbytes(self) -> int:
        return self._nbytes

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def get(self, key: Hashable) -> np.ndarray | None:
        with self._lock:
            arr = self._items.get(key)
            if arr is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return arr

    def peek(self, key: Hashable) -> np.ndarray | None:
        """Like :meth:`get` but without touching recency or counters."""
        with self._lock:
            return self._items.get(key)

    def put(self, key: Hashable, arr: np.ndarray) -> bool:
        """Store *arr*; evict least recently used entries first.  Returns False if it cannot fit."""
        size = int(arr.nbytes)
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._nbytes -= int(old.nbytes)
            if size > self.max_bytes:
                return False
            while self._items and self._nbytes + size > self.max_bytes:
                _, ev = self._items.popitem(last=False)
                self._nbytes -= int(ev.nbytes)
                self.evictions += 1
            self._items[key] = arr
            self._nbytes += size
            self.peak_bytes = max(self.peak_bytes, self._nbytes)
            return True

    def set_max_bytes(self, max_bytes: int) -> None:
        with self._lock:
            self.max_bytes = int(max_bytes)
            while self._items and self._nbytes > self.max_bytes:
                _, ev = self._items.popitem(last=False)
                self._nbytes -= int(ev.nbytes)
                self.evictions += 1

    def discard_where(self, pred: Callable[[Hashable], bool]) -> int:
        """Drop every entry whose key matches *pred* (e.g. a closed file)."""
        with self._lock:
            gone = [k for k in self._items if pred(k)]
            for k in gone:
                self._nbytes -= int(self._items.pop(k).nbytes)
            return len(gone)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._nbytes = 0


def prefetch_plan(
    current: int, n_frames: int, ahead: int, *, loop: bool = True, direction: int = 1
) -> list[int]:
    """Frame indices to have decoded next, nearest first: *current* then up to *ahead* following frames.

    With *loop* the plan wraps past the last frame to the first (a playing
    loop needs frame 0 right after the last one); without it, it stops at the end.
    """
    if n_frames <= 0:
        return []
    current = max(0, min(n_frames - 1, current))
    step = -1 if direction < 0 else 1
    out = [current]
    seen = {current}
    i = current
    for _ in range(max(0, ahead)):
        i += step
        if i >= n_frames or i < 0:
            if not loop:
                break
            i %= n_frames
        if i in seen:
            break
        seen.add(i)
        out.append(i)
    return out


def cache_budget_frames(max_bytes: int, frame_nbytes: int, viewports: int = 1) -> int:
    """How many frames of this size each of *viewports* may prefetch without the cache thrashing."""
    if frame_nbytes <= 0:
        return 0
    per = max_bytes // max(1, viewports) // frame_nbytes
    return int(max(1, per - 1))


@dataclass(order=True)
class _Job:
    priority: float
    seq: int
    key: Hashable = field(compare=False)
    fn: Callable[[], Any] = field(compare=False)
    generation: int = field(compare=False, default=0)
    owner: Hashable = field(compare=False, default=None)


class DecodePool:
    """A few worker threads running decode jobs in priority order (lowest first).

    Jobs are deduplicated by *key* (a frame already queued or being decoded is
    not queued twice).  Each job belongs to an *owner* (a viewport) with a
    generation number: when the owner moves on (seek, new series) its older
    prefetch jobs are skipped, so stale work never delays the frame on screen.
    ``on_done(key, result, error)`` runs in the worker thread.
    """

    def __init__(self, workers: int = 2, on_done: Callable[[Hashable, Any, BaseException | None], None] | None = None,
                 *, start: bool = True):
        self._heap: list[_Job] = []
        self._queued: dict[Hashable, _Job] = {}
        self._running: set[Hashable] = set()
        self._gens: dict[Hashable, int] = {}
        self._cv = threading.Condition()
        self._seq = itertools.count()
        self._stop = False
        self.on_done = on_done
        #: with ``start=False`` the caller runs :meth:`serve` on threads of its own (the UI's task helper)
        self._threads = [
            threading.Thread(target=self._run, name=f"mdt-decode-{i}", daemon=True) for i in range(max(1, workers))
        ] if start else []
        for t in self._threads:
            t.start()

    def new_generation(self, owner: Hashable) -> int:
        with self._cv:
            g = self._gens.get(owner, 0) + 1
            self._gens[owner] = g
            return g

    def submit(
        self,
        key: Hashable,
        fn: Callable[[], Any],
        priority: float = 0.0,
        owner: Hashable = None,
        generation: int | None = None,
    ) -> bool:
        """Queue *fn*; returns False if the same key is already queued or running (its priority may be raised)."""
        with self._cv:
            if self._stop:
                return False
            gen = self._gens.get(owner, 0) if generation is None else generation
            if key in self._running:
                return False
            old = self._queued.get(key)
            if old is not None:
                if priority < old.priority or old.generation != gen:
                    old.fn = None  # type: ignore[assignment]  # tombstone; re-queue below
                else:
                    return False
            job = _Job(priority, next(self._seq), key, fn, gen, owner)
            self._queued[key] = job
            heapq.heappush(self._heap, job)
            self._cv.notify()
            return True

    def pending(self) -> int:
        with self._cv:
            return len(self._queued) + len(self._running)

    def _run(self) -> None:
        self.serve()

    def serve(self, cancel: threading.Event | None = None,
              on_done: Callable[[Hashable, Any, BaseException | None], None] | None = None) -> None:
        """Run jobs until :meth:`shutdown` (or *cancel* is set and the pool is woken by :meth:`shutdown`).

        *on_done* (default: the pool's) is called in this thread after each job."""
        while True:
            with self._cv:
                while not self._stop and not self._heap and not (cancel is not None and cancel.is_set()):
                    self._cv.wait()
                if self._stop or (cancel is not None and cancel.is_set()):
                    return
                job = heapq.heappop(self._heap)
                if job.fn is None or self._queued.get(job.key) is not job:
                    continue
                del self._queued[job.key]
                if job.owner is not None and job.generation < self._gens.get(job.owner, 0) and job.priority > 0:
                    continue  # stale prefetch for an owner that moved on
                self._running.add(job.key)
            result, error = None, None
            try:
                result = job.fn()
            except BaseException as exc:  # noqa: BLE001 - reported to the caller, never kills the worker
                error = exc
            with self._cv:
                self._running.discard(job.key)
            cb = on_done or self.on_done
            if cb is not None:
                try:
                    cb(job.key, result, error)
                except Exception:  # a boundary: a callback's bug must not kill the worker; it is logged as one
                    log.exception("bug in a decode-pool callback")

    def shutdown(self, wait: bool = True) -> None:
        with self._cv:
            self._stop = True
            self._heap.clear()
            self._queued.clear()
            self._cv.notify_all()
        if wait:
            for t in self._threads:
                t.join(timeout=5)
