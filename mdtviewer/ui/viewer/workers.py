"""Background work for the window: folder scans, opening images, decoding frames, thumbnails.

Nothing here runs on the UI thread.  Everything runs as jobs of :mod:`mdtviewer.ui.tasks`:
the scan is one job (:func:`start_scan`), and the decode workers of
:class:`FrameService` are jobs serving the core's
:class:`~mdtviewer.imaging.framecache.DecodePool` queue.  Results reach the UI thread
through the task dispatcher; :meth:`FrameService.close` cancels and joins the
workers, so none of them is left to report into a window being torn down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

import mdtviewer.ui.qtfix  # noqa: F401  (first: PySide6 6.12 None refcount bug, see there)
from mdtviewer.dicom.kos import REJECTION_TITLES, key_image_uids  # noqa: F401  (the KOS rules live in the core)
from mdtviewer.dicom.model import Instance
from mdtviewer.imaging import cine
from mdtviewer.imaging.framecache import DEFAULT_CACHE_BYTES, DecodePool, FileChangedError, FileVersion, FrameCache
from mdtviewer.ui import tasks
from mdtviewer.ui.viewer.overlays import OverlayInfo

log = logging.getLogger(__name__)

#: priorities (lower runs first)
PRIO_OPEN = -10.0
PRIO_NOW = 0.0
PRIO_THUMB = 1000.0


def _open_frame_source(path: Path, dataset: Any = None) -> Any:
    from mdtviewer.imaging.pixels import FrameSource  # core decoder (foundation issue)

    return FrameSource(path, dataset=dataset)


def _read_full(path: Path) -> Any:
    try:
        from mdtviewer.imaging.pixels import read_pixel_dataset
    except ImportError:  # pragma: no cover
        from mdtviewer.dicom.reader import read_dataset as read_pixel_dataset
    return read_pixel_dataset(path)


@dataclass
class LoadedImage:
    """An image instance opened for display: decoder, timing, calibration and overlay facts."""

    instance: Instance
    source: Any = None
    n_frames: int = 1
    rows: int = 0
    columns: int = 0
    is_color: bool = True
    photometric: str = ""
    default_window: tuple[float, float] | None = None
    durations_ms: list[float] = field(default_factory=list)
    timing_source: str = "none"
    regions: list[Any] = field(default_factory=list)
    overlay: OverlayInfo = field(default_factory=OverlayInfo)
    error: str | None = None
    #: what was refused or assumed while reading (an implausible PhysicalDelta: region uncalibrated; an
    #: implausible Frame Time / Cine Rate: the assumed rate used), as ``check`` notes them; one line each
    notes: list[str] = field(default_factory=list)
    #: the file version opened (taken before reading): frames and the privacy plan are keyed on it (HAZ-018)
    version: FileVersion | None = None

    @property
    def key(self) -> str:
        return str(self.instance.path)


def failure_text(exc: BaseException, what: str) -> str:
    """The viewport's one line for a failure: an expected error's reason (the MdtError family), a file
    that cannot be read or memory that ran out said plainly; anything else is a bug, logged with its
    traceback and reported as one by :mod:`mdtviewer.ui.errors` (never the library's raw text)."""
    from mdtviewer.ui import errors as ui_errors

    reason = ui_errors.reason_of(exc)
    if reason is not None:
        return reason
    if isinstance(exc, OSError):
        return f"cannot read the file ({exc.strerror or type(exc).__name__})"
    if isinstance(exc, MemoryError):
        return "not enough memory to open this image"
    return ui_errors.describe(exc, context=what).text


def load_image(inst: Instance, default_fps: float = 30.0) -> LoadedImage:
    """Open *inst* for display (runs in a worker): header, regions, timing and the frame decoder."""
    li = LoadedImage(instance=inst, photometric=inst.photometric, rows=inst.rows, columns=inst.columns)
    try:
        # stamped before reading: a file changed while it is read looks changed afterwards, never the reverse
        li.version = FileVersion.of(inst.path)
        ds = _read_full(inst.path)
        li.overlay = OverlayInfo.from_dataset(ds)
        li.photometric = str(ds.get("PhotometricInterpretation", inst.photometric) or "")
    except Exception as exc:  # noqa: BLE001 - shown in the viewport, never raised into Qt
        li.error = failure_text(exc, "opening an image")
        return li
    try:
        from mdtviewer.imaging import usregions

        li.regions = list(usregions.parse_regions(ds))
        li.notes.extend(dict.fromkeys(r.note for r in li.regions if getattr(r, "note", "")))
    except Exception as exc:  # noqa: BLE001 - no calibration then, said in the overlay
        log.debug("regions unavailable: %s", exc)
    try:
        src = _open_frame_source(inst.path, ds)
    except Exception as exc:  # noqa: BLE001 - shown in the viewport, never raised into Qt
        li.error = failure_text(exc, "preparing an image's frames")
        return li
    li.source = src
    li.n_frames = max(1, int(getattr(src, "n_frames", 1) or 1))
    li.rows = int(getattr(src, "rows", li.rows) or li.rows)
    li.columns = int(getattr(src, "columns", li.columns) or li.columns)
    li.is_color = bool(getattr(src, "is_color", True))
    dw = getattr(src, "default_window", None)
    try:
        if dw is not None:
            c, w = (float(dw[0]), float(dw[1]))
            if w > 0:
                li.default_window = (c, w)
    except Exception:  # noqa: BLE001
        pass
    li.durations_ms, li.timing_source = cine.playback_durations(ds, li.n_frames, default_fps)
    refused = cine.timing_note(ds)
    if refused:
        li.notes.append(refused)
    return li


def window_to_uint8(raw: np.ndarray, center: float, width: float, invert: bool = False) -> np.ndarray:
    """Linear VOI window of modality values to uint8 (grey images)."""
    width = max(1.0, float(width))
    lo = float(center) - width / 2.0
    out = np.clip((raw.astype(np.float32) - lo) * (255.0 / width), 0, 255).astype(np.uint8)
    if invert:
        np.subtract(255, out, out=out)
    return np.ascontiguousarray(out)


def thumbnail(arr: np.ndarray, size: int = 96) -> np.ndarray:
    """Cheap stride downscale to fit *size* px (uint8, C-contiguous)."""
    h, w = arr.shape[:2]
    step = max(1, int(np.ceil(max(h, w) / size)))
    return np.ascontiguousarray(arr[::step, ::step])


def private_thumbnail(path: Path, full: np.ndarray) -> np.ndarray | None:
    """The thumbnail with everything outside the ultrasound regions (or the scanner's masking template)
    blanked (burned-in name/ID).

    None without either."""
    try:
        from mdtviewer.dicom.reader import read_dataset
        from mdtviewer.imaging.masking import keep_region

        area = keep_region(read_dataset(path, stop_before_pixels=True))
        if area is None:
            return None
        mask = area.mask(full.shape[0], full.shape[1]).astype(np.uint8)
    except Exception:  # noqa: BLE001 - no private thumbnail: the browser shows a plain placeholder
        return None
    return thumbnail(full * (mask if full.ndim == 2 else mask[..., None]))


class FrameService(QObject):
    """Decoded frames for every viewport: a byte-bounded cache plus a prioritised decode pool.

    Keys: ``(path, frame_index, "disp"|"raw", FileVersion)``: a file replaced under the same path is a new
    version, decoded afresh from its own decoder; its old frames are dropped (HAZ-018).
    ``frameReady(key)`` fires in the UI thread when a requested frame is in the cache; ``frameFailed(key, reason)``
    when it cannot be decoded; ``imageLoaded(token, LoadedImage)`` after :meth:`open_image`.
    """

    frameReady = Signal(object, object)  # key, array (valid even if the cache already evicted it)
    frameFailed = Signal(object, str)
    imageLoaded = Signal(object, object)
    thumbReady = Signal(object, object)
    #: series uid, file path, one-line reason: the first frame of a series could not be decoded
    thumbFailed = Signal(object, str, str)

    def __init__(self, cache_bytes: int = DEFAULT_CACHE_BYTES, workers: int = 2, parent: QObject | None = None):
        super().__init__(parent)
        self.cache = FrameCache(cache_bytes)
        self.pool = DecodePool(workers=workers, start=False)  # the queue; its workers are our tasks
        #: path -> (decoder, bytes, the FileVersion it decodes)
        self._sources: OrderedDict[str, tuple[Any, int, FileVersion]] = OrderedDict()
        self._lock = threading.Lock()
        self.failed: dict[Hashable, str] = {}
        self.default_fps = 30.0
        self.workers = [
            tasks.run(self, self._serve, name=f"decode-{i}", on_progress=self._deliver,
                      on_cancel=lambda: self.pool.shutdown(wait=False))
            for i in range(max(1, workers))
        ]

    # -- sources -----------------------------------------------------------------
    #: open decoders hold their file's bytes: keep at most this many bytes of files open (LRU)
    max_source_bytes = 512 << 20
    max_sources = 32

    def _remember(self, li: LoadedImage) -> None:
        if li.source is not None and li.version is not None:
            self._forget_other_versions(li.version)
            self._keep_source(li.version, li.source)

    def _forget_other_versions(self, version: FileVersion) -> None:
        """A new version of a file was opened: drop the older versions' decoder and decoded frames."""
        def older(k: Hashable) -> bool:
            v = k[3] if isinstance(k, tuple) and len(k) > 3 else None
            return isinstance(v, FileVersion) and v.path == version.path and v != version

        with self._lock:
            hit = self._sources.get(version.path)
            if hit is not None and hit[2] != version:
                del self._sources[version.path]
        self.cache.discard_where(older)

    def forget_version(self, version: FileVersion) -> int:
        """Drop this version of a file everywhere: its decoder, its decoded frames and the frames that failed
        under it (a viewport found the file replaced on disk while playing from frames already decoded:
        none of them may be shown again, HAZ-018).  Returns how many decoded frames were dropped."""
        def of_version(k: Hashable) -> bool:
            return isinstance(k, tuple) and len(k) > 3 and k[3] == version

        with self._lock:
            hit = self._sources.get(version.path)
            if hit is not None and hit[2] == version:
                del self._sources[version.path]
        for k in [k for k in list(self.failed) if of_version(k)]:  # a snapshot: workers add to it
            self.failed.pop(k, None)
        return self.cache.discard_where(of_version)

    def _keep_source(self, version: FileVersion, src: Any) -> Any:
        path = version.path
        with self._lock:
            old = self._sources.pop(path, None)
            if old is not None and old[2] == version:
                src = old[0]
            self._sources[path] = (src, version.size, version)
            total = sum(sz for _s, sz, _v in self._sources.values())
            while len(self._sources) > 1 and (total > self.max_source_bytes or len(self._sources) > self.max_sources):
                _p, (_src, sz, _v) = self._sources.popitem(last=False)  # dropped, not closed: a worker may use it
                total -= sz
        return src

    def _source(self, file: FileVersion | str, keep: bool = True) -> Any:
        """The decoder of exactly this version of the file (a path: the version on disk now).  A file
        changed since that version is never decoded under the old header: :class:`FileChangedError`
        (the viewport then opens the file again)."""
        version = file if isinstance(file, FileVersion) else FileVersion.of(file)
        with self._lock:
            hit = self._sources.get(version.path)
            if hit is not None and hit[2] == version:
                self._sources.move_to_end(version.path)
                return hit[0]
        if not version.is_current():
            raise FileChangedError(version.path)
        src = _open_frame_source(Path(version.path))
        if not version.is_current():  # replaced while it was being opened
            raise FileChangedError(version.path)
        return self._keep_source(version, src) if keep else src

    def open_sources(self) -> int:
        with self._lock:
            return len(self._sources)

    def open_image(self, token: Hashable, inst: Instance, owner: Hashable = None) -> None:
        """Open *inst* in a worker; ``imageLoaded(token, LoadedImage)`` follows."""

        def job() -> LoadedImage:
            li = load_image(inst, self.default_fps)
            self._remember(li)
            return li

        self.pool.submit(("open", token, str(inst.path)), job, PRIO_OPEN, owner=owner, generation=None)

    # -- frames ------------------------------------------------------------------
    def get(self, key: Hashable) -> np.ndarray | None:
        return self.cache.get(key)

    def request(
        self, key: tuple, priority: float = PRIO_NOW, owner: Hashable = None, generation: int | None = None
    ) -> np.ndarray | None:
        """The frame if cached; otherwise queue its decode and return None."""
        arr = self.cache.get(key)
        if arr is not None:
            return arr
        if key in self.failed:
            return None
        path, idx, mode = key[:3]
        version = key[3] if len(key) > 3 and isinstance(key[3], FileVersion) else None

        def job() -> np.ndarray:
            if version is not None and not version.is_current():
                raise FileChangedError(path)  # one stat a decode: the viewport opens the new file instead
            src = self._source(version if version is not None else path)
            a = src.frame_raw(idx) if mode == "raw" else src.display_frame(idx)  # palette: packed RGB32
            return np.ascontiguousarray(a)

        self.pool.submit(key, job, priority, owner=owner, generation=generation)
        return None

    def new_generation(self, owner: Hashable) -> int:
        return self.pool.new_generation(owner)

    def request_thumbnail(self, series_uid: str, inst: Instance) -> None:
        def job() -> np.ndarray:
            src = self._source(str(inst.path), keep=False)  # thumbnails must not pin every file in memory
            full = np.asarray(src.frame(0))
            return thumbnail(full), private_thumbnail(inst.path, full)

        self.pool.submit(("thumb", series_uid, str(inst.path)), job, PRIO_THUMB)

    def _serve(self, task: tasks.Task) -> None:  # worker thread
        self.pool.serve(task.cancel, on_done=lambda key, result, error: self._done(task, key, result, error))

    def _done(self, task: tasks.Task, key: Hashable, result: Any, error: BaseException | None) -> None:  # worker thread
        if task.cancelled():
            return
        reason = tasks.describe_error(error, context="decoding")[0] if error is not None else ""
        if isinstance(key, tuple) and key and key[0] == "open":
            if error is not None:
                result = LoadedImage(instance=Instance(Path(key[2]), "", "", "other"), error=reason)
            task.progress(("open", key[1], result))
            return
        if isinstance(key, tuple) and key and key[0] == "thumb":
            if error is None and result is not None:
                task.progress(("thumb", key[1], result))
            elif error is not None:
                task.progress(("thumb-failed", key[1], key[2], reason))
            return
        if error is not None:
            self.failed[key] = reason
            task.progress(("failed", key, reason))
            return
        self.cache.put(key, result)
        task.progress(("frame", key, result))

    def _deliver(self, item: tuple) -> None:  # UI thread
        kind = item[0]
        if kind == "frame":
            self.frameReady.emit(item[1], item[2])
        elif kind == "failed":
            self.frameFailed.emit(item[1], item[2])
        elif kind == "open":
            self.imageLoaded.emit(item[1], item[2])
        elif kind == "thumb":
            self.thumbReady.emit(item[1], item[2])
        elif kind == "thumb-failed":
            self.thumbFailed.emit(item[1], item[2], item[3])

    def close(self) -> None:
        """Stop decoding: cancel and join the workers (bounded), so none reports into a closing window."""
        self.pool.shutdown(wait=False)
        tasks.shutdown(self)


def start_scan(owner: QObject, index: Any, paths: list[str], *, progress: Any, found: Any, finished: Any,
               failed: Any) -> tasks.Task:
    """Run ``index.add_paths(paths)`` as a job of *owner*.

    On the UI thread: ``progress(done, total)`` (at most every 50 ms, and at the
    end), ``found(instance)`` for each instance (None: not wanted, e.g. a view
    that polls ``StudyIndex.added_since``: at 50,000 files an event per file
    kept the UI thread busy), ``failed(one_line)`` if the scan broke off, then
    ``finished(task)`` (also after a failure or a cancel: ``task.cancel.is_set()``).
    """

    def job(task: tasks.Task) -> None:
        last = [0.0]

        def on_progress_here(done: int, total: int) -> None:
            now = time.monotonic()
            if done >= total or now - last[0] >= 0.05:
                last[0] = now
                task.progress(("progress", int(done), int(total)))

        index.add_paths(
            list(paths),
            progress=on_progress_here,
            cancel=task.cancel,
            on_instance=(lambda inst: task.progress(("instance", inst))) if found is not None else None,
        )

    def on_progress(item: tuple) -> None:
        if item[0] == "progress":
            progress(item[1], item[2])
        else:
            found(item[1])

    holder: list[tasks.Task] = []

    def on_error(message: str) -> None:
        failed(message)
        finished(holder[0])

    task = tasks.run(owner, job, name="scan", on_progress=on_progress, on_result=lambda _r: finished(holder[0]),
                     on_error=on_error)
    # a large scan starts the index's header-reading processes: they go when the owner closes
    from mdtviewer.dicom import index as index_mod

    tasks.on_shutdown(owner, index_mod.shutdown_pool)
    holder.append(task)
    return task
