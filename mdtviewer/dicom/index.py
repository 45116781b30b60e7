"""The study index: files, folders or a DICOMDIR in, Patient -> Study -> Series -> Instance out.

Headers only (no pixel data).  Each file is read by
:func:`mdtviewer.dicom.reader.read_header`, which finds the true start of raw data
sets and refuses damaged ones with a one-line reason; those reasons land in
:attr:`StudyIndex.problems`, never in an exception that would stop the scan.

* Folders are walked recursively.  A ``DICOMDIR`` (given directly, or found
  in a folder) is used: its directory records name the files
  (:func:`mdtviewer.dicom.dicomdir.read_file_set`: file IDs relative to the
  DICOMDIR, matched case-insensitively as on ISO 9660 media, never outside
  its folder); files it references but that are missing, or that lie
  outside the file-set, become problems.  Files in the
  folder that the DICOMDIR does not reference are still indexed.
* Non-DICOM files are skipped quietly and counted (:attr:`skipped_non_dicom`).
* Duplicate SOP Instance UIDs are not merged: the first file (in scan
  order) is kept in the hierarchy, every later one is listed in
  :attr:`duplicates` as ``(kept, duplicate, uid)``.
* Parallel: large scans use a process pool (pydicom parsing is pure Python,
  so threads do not help: see ``benchmarks/index.py``); small ones run in
  the calling thread, where a pool's start-up would cost more than it saves.
  Workers read batches with :func:`mdtviewer.dicom.reader.read_header` (a
  one-pass walk for well-formed headers) and send back plain tuples.
  The pool uses the ``forkserver`` start method so it is safe to call from a
  worker thread of the Qt application.

The index is thread-safe: ``add_paths`` may run in a worker thread while the
UI reads :meth:`instances`/:meth:`studies` (snapshots taken under a lock) or
walks ``patients`` directly: new patients, studies and series are added
copy-on-write (a new dict replaces the old), so an iteration in progress
never sees a dict change size; series lists are only appended to, and
re-sorted by replacement.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import stat
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the pool (and multiprocessing) is imported by the first scan that uses it, not at start-up
    from concurrent.futures import ProcessPoolExecutor

from mdtviewer.dicom import values
from mdtviewer.dicom.dicomdir import Record, is_dicomdir_name, read_directory, read_file_set
from mdtviewer.dicom.kos import title_code
from mdtviewer.dicom.model import Instance, Patient, Problem, Series, Study, patient_key
from mdtviewer.dicom.uids import MEDIA_STORAGE_DIRECTORY
from mdtviewer.dicom.walk import walk_folders
from mdtviewer.infra import logsafe
from mdtviewer.infra.errors import DicomInputError, NotDicomError, bug_reason

#: below this many files a scan runs in the calling thread.  Measured on this
#: 2-core machine while it was shared (``benchmarks/index.py --large``, median of
#: 3, load average ~7): 1,000 distinct files serial 0.38 s, pool 0.56 s cold /
#: 0.47 s warm (slower); 10,000: 2.85 s vs 2.35 s / 2.74 s; 50,000: 18.3 s vs
#: 15.2 s / 25.1 s (spread 9-38 s).  The pool wins little, and only from about
#: ten thousand files, and costs ~75 MB and a CPU-second to start: below that,
#: serial, warm or cold.
POOL_THRESHOLD = 10_000
COLD_POOL_THRESHOLD = 10_000

ProgressFn = Callable[[int, int], None]

log = logging.getLogger(__name__)


# ----------------------------------------------------------------- worker side
def _quiet() -> None:
    """pydicom warns (stderr) on every oddity it tolerates; we report our own way."""
    warnings.simplefilter("ignore")
    logging.getLogger("pydicom").setLevel(logging.ERROR)


def _start_time(pid: int) -> str | None:
    """The kernel's start time of process *pid* (None: gone or a zombie), so a reused PID is not taken for it."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in (b"Z", b"X") else fields[19].decode()


def _worker_init(owner: int, owner_started: str | None) -> None:
    """Worker start: quiet, low priority, and gone within a second once the process that owns the pool is.

    The workers are children of the fork server, not of the application: a ``kill -9`` of the
    application left them (and through the descriptors they hold, the fork server and the resource
    tracker) running for good.  Each worker watches its owner and exits when it is gone; the fork
    server and the resource tracker then see their last client close and exit too."""
    _quiet()
    try:  # background work: the window that asked for it is served first on a busy machine
        os.nice(10)
    except OSError:
        pass
    if owner_started is None:  # no /proc: nothing to watch with
        return

    def watch() -> None:
        while _start_time(owner) == owner_started:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="mdt-index-owner-watch", daemon=True).start()


def _read_one(path: str) -> tuple[str, Any, Any]:
    """('ok', Instance, fields) | ('not-dicom', reason, None) | ('problem', reason, category)."""
    from mdtviewer.dicom.reader import read_header

    try:
        inst, fields = read_header(path)
    except NotDicomError as exc:
        return ("not-dicom", exc.reason, None)
    except DicomInputError as exc:
        return ("problem", exc.reason, exc.category)
    except MemoryError:
        return ("problem", "not enough memory to read the header", "error")
    except OSError as exc:
        return ("problem", f"cannot be read ({exc.strerror or type(exc).__name__})", "error")
    except Exception as exc:  # noqa: BLE001 - a boundary: one file never stops a scan; a bug is reported as one
        # this may run in a worker process without log handlers: the parent logs the traceback (_merge)
        tb = logsafe.redact("".join(traceback.format_exception(exc)))
        return ("bug", bug_reason(exc, "reading the header"), tb)
    if inst.sop_class_uid == MEDIA_STORAGE_DIRECTORY:
        return ("dicomdir", None, None)
    return ("ok", inst, fields)


#: Instance fields after ``path``, in order: a worker sends these as a plain tuple
_INSTANCE_FIELDS = tuple(f.name for f in dataclasses.fields(Instance) if f.name != "path")


def _read_batch(paths: list[str]) -> list[tuple[str, Any, Any]]:
    """Worker side of the pool: one batch of files, results as compact tuples.

    Plain tuples of strings and ints pickle several times faster than
    Instance dataclasses holding Path objects and dicts, and the parent, which
    merges every result alone, rebuilds them cheaply (:func:`_unpack`)."""
    from mdtviewer.dicom.reader import HIERARCHY_FIELDS

    out: list[tuple[str, Any, Any]] = []
    for path in paths:
        status, a, b = _read_one(path)
        if status == "ok":
            a = tuple(getattr(a, name) for name in _INSTANCE_FIELDS)
            b = tuple(b[k] for k in HIERARCHY_FIELDS)
        out.append((status, a, b))
    return out


def _unpack(path: str, values: tuple, field_values: tuple) -> tuple[Instance, dict[str, str]]:
    from mdtviewer.dicom.reader import HIERARCHY_FIELDS

    return Instance(Path(path), *values), dict(zip(HIERARCHY_FIELDS, field_values))


_POOL: ProcessPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool(workers: int) -> ProcessPoolExecutor:
    """A process pool kept for the life of the program (start-up paid once)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or getattr(_POOL, "_broken", False) or _POOL._max_workers != workers:  # type: ignore[attr-defined]
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            if _POOL is not None:
                _POOL.shutdown(wait=False, cancel_futures=True)
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(
                ["mdtviewer.dicom.index", "mdtviewer.dicom.fastheader", "mdtviewer.dicom.reader", "pydicom"]
            )
            _POOL = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init,
                                        initargs=(os.getpid(), _start_time(os.getpid())))
        return _POOL


def _pool_is_warm(workers: int) -> bool:
    pool = _POOL
    return (
        pool is not None
        and not getattr(pool, "_broken", False)
        and getattr(pool, "_max_workers", None) == workers
        and len(getattr(pool, "_processes", None) or ()) >= workers
    )


def start_pool_in_background(workers: int | None = None) -> threading.Thread:
    """Start the header-reading workers now, in a background thread.

    For an application that will scan folders: the pool's ~0.5 s start-up
    is then paid before the user opens one, and even a first scan of a few
    hundred files is read on every core.  Harmless to call twice."""
    n = workers or default_workers()

    def start() -> None:
        if n <= 1 or _pool_is_warm(n):
            return
        try:
            pool = _pool(n)
            for f in [pool.submit(int) for _ in range(n)]:
                f.result()
        except (OSError, RuntimeError):  # no pool (cannot fork, broken): scans read in the calling thread
            pass

    t = threading.Thread(target=start, name="mdt-index-pool-start", daemon=True)
    t.start()
    return t


def shutdown_pool() -> None:
    """Stop the header-reading worker processes (started by the first large scan)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is not None:
            _POOL.shutdown(wait=True, cancel_futures=True)
            _POOL = None


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


# ----------------------------------------------------------------- DICOMDIR
@dataclass
class _Plan:
    #: regular files to read, as strings (Path objects are built once, per instance)
    files: list[str] = field(default_factory=list)
    #: files named but absent, DICOMDIRs that cannot be read or that point outside their file-set
    problems: list[Problem] = field(default_factory=list)
    not_files: int = 0
    #: normalised absolute paths already planned (the same file spelled twice is read once)
    seen: set[str] = field(default_factory=set)
    #: files listed from their DICOMDIR records, not read: (path, record, ancestor records)
    records: list[tuple[str, Record, tuple]] = field(default_factory=list)


def _key(p: str | os.PathLike) -> str:
    """The same path spelled twice gives one key (symlinks are not resolved)."""
    return os.path.normpath(os.path.abspath(p))


def _plan(paths: Iterable[str | os.PathLike], cancel: threading.Event | None) -> _Plan:
    """Expand files, folders (recursive) and DICOMDIRs into an ordered file list.

    Folders are walked by :func:`mdtviewer.dicom.walk.walk_folders` (the one
    walker); a folder's DICOMDIR is read before its other files.
    """
    plan = _Plan()
    seen = plan.seen

    def add(path: str, key: str, regular: bool | None = None) -> None:
        if key in seen:
            return
        seen.add(key)
        if regular is None:
            try:
                regular = stat.S_ISREG(os.stat(path).st_mode)
            except OSError:
                regular = False  # a dangling link
        if regular:
            plan.files.append(path)
        else:
            plan.not_files += 1  # pipes, sockets, devices: never opened (a pipe would block)

    def use_dicomdir(dd: Path) -> None:
        seen.add(_key(dd))
        try:
            found, problems = read_directory(dd)
        except DicomInputError as exc:
            plan.problems.append(Problem(dd, f"DICOMDIR unreadable: {exc.reason}", exc.category))
            return
        for f, rec, parents in found:
            key = _key(f)
            if key in seen:
                continue
            if _listable(rec):  # listed from the record; the file is read when shown
                seen.add(key)
                plan.records.append((f, rec, parents))
            else:
                add(f, key, True)
        plan.problems.extend(problems)

    def walk(top: str) -> None:
        for folder, files in walk_folders(top, cancel):
            abs_folder = _key(folder)
            for name, _regular in files:
                if is_dicomdir_name(name):
                    use_dicomdir(Path(folder, name))
            for name, regular in files:
                full = os.path.join(folder, name)
                # a FIFO/socket is not is_file(); a symlink to one is caught by the stat in add()
                add(full, os.path.join(abs_folder, name), regular if regular else None)

    for raw in paths:
        p = Path(raw)
        if cancel is not None and cancel.is_set():
            break
        if p.is_dir():
            walk(str(p))
        elif p.is_file() and is_dicomdir_name(p.name):
            use_dicomdir(p)
        elif p.exists():
            add(str(p), _key(p))
        else:
            plan.problems.append(Problem(p, "file not found", "missing"))
    return plan


# ----------------------------------------------------------------- instances listed from DICOMDIR records
#: Instance fields a directory record never carries: read from the file on first use
_LAZY = frozenset({"rows", "columns", "photometric", "dataset_offset", "note", "number_of_frames"})
#: header fields refreshed from the file when it is read (the file is the truth; the record listed it)
_FROM_FILE = ("kind", "number_of_frames", "rows", "columns", "photometric", "title", "title_code", "note",
              "error", "dataset_offset", "transfer_syntax", "sop_class_uid")
_LAZY_LOCK = threading.RLock()
#: the instance kinds whose header says what the exam was (a study's date and description are taken from these)
_IMAGE_KINDS = frozenset({"image", "cine"})
#: classes whose instances may hold more than one frame (the record rarely says how many)
_MULTI_FRAME_CLASSES = frozenset({
    "1.2.840.10008.5.1.4.1.1.3.1", "1.2.840.10008.5.1.4.1.1.3", "1.2.840.10008.5.1.4.1.1.12.1",
    "1.2.840.10008.5.1.4.1.1.12.2", "1.2.840.10008.5.1.4.1.1.7.1", "1.2.840.10008.5.1.4.1.1.7.2",
    "1.2.840.10008.5.1.4.1.1.7.3", "1.2.840.10008.5.1.4.1.1.7.4", "1.2.840.10008.5.1.4.1.1.77.1.1.1",
    "1.2.840.10008.5.1.4.1.1.77.1.4.1", "1.2.840.10008.5.1.4.1.1.6.2",
})
#: directory record types that name one instance of a class the viewer lists
_INSTANCE_RECORDS = frozenset({"IMAGE", "SR DOCUMENT", "KEY OBJECT DOC", "ENCAP DOC", "PRESENTATION", "WAVEFORM",
                               "RAW DATA", "SPECTROSCOPY", "REGISTRATION", "FIDUCIAL", "MEASUREMENT",
                               "PRIVATE", "STEREOMETRIC", "SURFACE", "PLAN", "RT DOSE", "RT STRUCTURE SET",
                               "RT PLAN", "RT TREAT RECORD", "VALUE MAP", "PALETTE"})


class RecordInstance(Instance):
    """An instance listed from its DICOMDIR record: what the record lacks is read from the file on first use.

    The record gives the UIDs, SOP class, transfer syntax, Instance Number (and Number of Frames,
    rows, columns when its writer put them in).  The first read of a field in :attr:`pending`
    (rows, columns, photometric, data set offset, note, and the frame count of a multi-frame
    class whose record does not say it) reads the file's header once and refreshes every
    header-derived field from it; a file that cannot be read then carries its one-line reason in
    :attr:`error`, as a scanned file would.  :attr:`header_read` says whether that happened."""

    def __init__(self, *args: Any, pending: frozenset[str] = frozenset(), **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.__dict__["pending"] = pending

    def __getattribute__(self, name: str) -> Any:
        if name in _LAZY:
            d = object.__getattribute__(self, "__dict__")
            if name in d.get("pending", ()):
                object.__getattribute__(self, "read_header_now")()
        return object.__getattribute__(self, name)

    @property
    def header_read(self) -> bool:
        return not self.__dict__.get("pending")

    def read_header_now(self) -> None:
        """Read the file's header (once) and refresh the fields the record could only guess."""
        from mdtviewer.dicom.reader import read_header

        d = self.__dict__
        with _LAZY_LOCK:
            if not d.get("pending"):
                return
            try:
                inst, _fields = read_header(d["path"])
            except DicomInputError as exc:
                d["error"] = exc.reason
            except OSError as exc:
                d["error"] = f"cannot be read ({exc.strerror or type(exc).__name__})"
            else:
                if inst.sop_instance_uid != d["sop_instance_uid"]:
                    d["note"] = "; ".join(x for x in (inst.note, "the DICOMDIR record names another SOP Instance "
                                                      "UID than the file holds") if x)
                for name in _FROM_FILE:
                    if name == "note" and d.get("note"):
                        continue
                    d[name] = getattr(inst, name)
            d["pending"] = frozenset()

    def __eq__(self, other: object) -> bool:  # the dataclass __eq__ would read every pending field
        if not isinstance(other, Instance):
            return NotImplemented
        return self is other or (self.path == other.path and self.sop_instance_uid == other.sop_instance_uid)

    __hash__ = None  # type: ignore[assignment]  # as Instance


def _listable(rec: Record) -> bool:
    rtype = str(rec.get("DirectoryRecordType", "")).upper()
    return bool(rtype in _INSTANCE_RECORDS and rec.get("ReferencedSOPInstanceUIDInFile")
                and rec.get("ReferencedSOPClassUIDInFile"))


def _int_or_none(v: Any) -> int | None:
    try:
        return int(float(str(v).split("\\")[0])) if v not in (None, "") else None
    except ValueError:
        return None


def _from_record(path: str, rec: Record, parents: tuple, levels: dict[Any, Any]
                 ) -> tuple[RecordInstance, dict[str, str]]:
    """The Instance and hierarchy fields a directory record and its ancestors give, without reading the file."""
    from mdtviewer.dicom.reader import HIERARCHY_FIELDS
    from mdtviewer.dicom.uids import classify

    up = levels.get(id(parents))
    if up is None or up["_parents"] is not parents:
        up = {}
        for r in parents:  # outer levels first, inner ones override
            up.update(r)
        up["_parents"] = parents  # kept alive with the cache, so its id is not reused
        up["_fields"] = {k: str(up.get(k, "")) for k in HIERARCHY_FIELDS}
        levels[id(parents)] = up
    fields = up["_fields"]
    if not rec.keys().isdisjoint(HIERARCHY_FIELDS):  # an instance record that repeats a higher level's key
        fields = {k: str(rec.get(k, up.get(k, ""))) for k in HIERARCHY_FIELDS}
    else:
        fields = dict(fields)
    sop_class = str(rec.get("ReferencedSOPClassUIDInFile", ""))
    frames = _int_or_none(rec.get("NumberOfFrames"))
    pending = set(_LAZY)
    if frames is None:
        if sop_class in _MULTI_FRAME_CLASSES:
            frames_guess = 2  # listed as a cine until its header says otherwise
        else:
            frames_guess = frames = 1
            pending.discard("number_of_frames")
    else:
        frames_guess = frames
        pending.discard("number_of_frames")
    mime = str(rec.get("MIMETypeOfEncapsulatedDocument", "")) or None
    ck = (sop_class, frames_guess, mime)
    kind = levels.get(ck)
    if kind is None:
        kind = levels[ck] = classify(sop_class, frames_guess, mime)
    rows = _int_or_none(rec.get("Rows")) or 0
    cols = _int_or_none(rec.get("Columns")) or 0
    if kind not in ("image", "cine"):
        pending -= {"rows", "columns", "photometric", "number_of_frames"}
        frames = rows = cols = 0
    title = code = ""
    if kind in ("sr", "kos"):
        cn = rec.get("ConceptNameCodeSequence")
        if isinstance(cn, list) and cn:
            title = str(cn[0].get("CodeMeaning", ""))
            if kind == "kos":
                code = title_code(str(cn[0].get("CodeValue", "")), str(cn[0].get("CodingSchemeDesignator", "")))
    elif kind in ("pdf", "document"):
        title = str(rec.get("DocumentTitle", "")) or (mime or "")
    study_uid = str(rec.get("StudyInstanceUID") or up.get("StudyInstanceUID", ""))
    series_uid = str(rec.get("SeriesInstanceUID") or up.get("SeriesInstanceUID", ""))
    inst = RecordInstance(
        Path(path),
        sop_class,
        str(rec.get("ReferencedSOPInstanceUIDInFile", "")),
        kind,
        study_instance_uid=study_uid,
        series_instance_uid=series_uid,
        transfer_syntax=str(rec.get("ReferencedTransferSyntaxUIDInFile", "")),
        modality=str(rec.get("Modality") or up.get("Modality", "")),
        instance_number=_int_or_none(rec.get("InstanceNumber")),
        number_of_frames=frames or 0,
        rows=rows,
        columns=cols,
        photometric=str(rec.get("PhotometricInterpretation", "")),
        title=title,
        title_code=code,
        pending=frozenset(pending),
    )
    return inst, fields


# ----------------------------------------------------------------- the index
class StudyIndex:
    """Patient -> Study -> Series -> Instance, plus what could not be used."""

    def __init__(self) -> None:
        self.patients: dict[str, Patient] = {}
        self.problems: list[Problem] = []
        self.duplicates: list[tuple[Path, Path, str]] = []
        self.skipped_non_dicom: int = 0
        self._by_uid: dict[str, Instance] = {}
        #: duplicate file -> its own Instance (not in the hierarchy)
        self._dup_instances: dict[Path, Instance] = {}
        self._lock = threading.RLock()
        self._unsorted: set[int] = set()
        self._found_dicomdirs: list[Path] = []
        self._touched: list[Series] = []
        #: every instance placed in the hierarchy, in merge order (see :meth:`added_since`)
        self._added: list[tuple[Patient, Study, Series, Instance]] = []
        #: grows each time which instances are withdrawn (IHE IOCM rejection notes) changes: views relabel then
        self.rejection_generation = 0
        #: id(study) -> (study, the instance its date, time and description were taken from): an image's beat
        #: a document's (a rejection note's date is when the note was made), a current image's a withdrawn one's
        self._study_origin: dict[int, tuple[Study, Instance]] = {}

    # -- building
    def add_paths(
        self,
        paths: Iterable[str | os.PathLike] | str | os.PathLike,
        *,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        on_instance: Callable[[Instance], None] | None = None,
        workers: int | None = None,
    ) -> None:
        """Index *paths* (files, folders, DICOMDIRs).  Callbacks run in the calling thread."""
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        start = len(self._added)
        try:
            self._add_paths(paths, progress, cancel, on_instance, workers)
        finally:
            # the rejection notes (IHE IOCM) of every study this call added to, once its files are all placed
            self._apply_rejections(start)

    def _add_paths(
        self,
        paths: Iterable[str | os.PathLike],
        progress: ProgressFn | None,
        cancel: threading.Event | None,
        on_instance: Callable[[Instance], None] | None,
        workers: int | None,
    ) -> None:
        plan = _plan(paths, cancel)
        with self._lock:
            for prob in plan.problems:
                if prob not in self.problems:
                    self.problems.append(prob)
            self.skipped_non_dicom += plan.not_files
        files = plan.files
        total = len(files) + len(plan.records)
        if progress:
            progress(0, total)
        if plan.records:
            levels: dict[Any, Any] = {}  # the ancestors' values per series (records share a tuple), kinds
            try:
                for i, (path, rec, parents) in enumerate(plan.records, 1):
                    if cancel is not None and cancel.is_set():
                        return
                    self._merge(path, ("ok", *_from_record(path, rec, parents, levels)), on_instance)
                    if progress and (i % 256 == 0 or i == len(plan.records)):
                        progress(i, total)
            finally:
                self._sort_touched()
        if not files:
            return
        workers = workers or default_workers()
        try:
            self._run(files, workers, progress, cancel, on_instance, len(plan.records), total)
            # a directory file under another name (found by its SOP class): use its records too
            for _round in range(3):
                found, self._found_dicomdirs = self._found_dicomdirs, []
                extra: list[str] = []
                for dd in found:
                    try:
                        refs, problems = read_file_set(dd)
                    except DicomInputError:
                        continue
                    with self._lock:
                        for prob in problems:
                            if prob not in self.problems:
                                self.problems.append(prob)
                    for ref in refs:
                        key = _key(ref)
                        if key not in plan.seen:
                            plan.seen.add(key)
                            extra.append(str(ref))
                if not extra or (cancel is not None and cancel.is_set()):
                    break
                self._run(extra, workers, progress, cancel, on_instance, total, total + len(extra))
                total += len(extra)
        finally:
            self._sort_touched()
            self._found_dicomdirs = []

    def _run(
        self,
        files: list[str],
        workers: int,
        progress: ProgressFn | None,
        cancel: threading.Event | None,
        on_instance: Callable[[Instance], None] | None,
        offset: int,
        total: int,
    ) -> None:
        prog: ProgressFn | None = None
        if progress:
            prog = lambda done, _n: progress(offset + done, total)  # noqa: E731
        warm = _pool_is_warm(workers)
        threshold = POOL_THRESHOLD if warm else max(POOL_THRESHOLD, COLD_POOL_THRESHOLD)
        if workers <= 1 or len(files) < threshold:
            self._run_serial(files, prog, cancel, on_instance)
        else:
            self._run_pool(files, workers, prog, cancel, on_instance)

    def _run_serial(
        self,
        files: list[str],
        progress: ProgressFn | None,
        cancel: threading.Event | None,
        on_instance: Callable[[Instance], None] | None,
    ) -> None:
        for i, f in enumerate(files, 1):
            if cancel is not None and cancel.is_set():
                return
            self._merge(f, _read_one(f), on_instance)
            if progress:
                progress(i, len(files))

    def _run_pool(
        self,
        files: list[str],
        workers: int,
        progress: ProgressFn | None,
        cancel: threading.Event | None,
        on_instance: Callable[[Instance], None] | None,
    ) -> None:
        """Batches to the worker pool; while the pool is cold, this thread reads.

        Starting the pool takes ~0.5 s (a forkserver importing pydicom;
        creating a worker blocks until then).  That happens in a helper thread
        that mostly waits on the forkserver, while this thread reads and merges
        the first batches itself (so the first studies are listed as soon as
        with a serial read); once every worker is up, the batches left go to
        the pool and this thread only merges.  (It does not keep reading
        alongside a warm pool: the pool's own feeder threads need the GIL, and
        a busy reader here starves them.)  A cold pool therefore never makes a
        scan slower than reading serially.  Results are merged strictly in
        plan order, so which of two files with one SOP Instance UID is kept
        never depends on timing.
        """
        chunk = max(8, min(64, len(files) // (workers * 4) or 1))
        batches = [files[i : i + chunk] for i in range(0, len(files), chunk)]
        n = len(batches)
        futures: list[Future | None] = [None] * n
        results: list[list[tuple[str, Any, Any]] | None] = [None] * n
        ready = threading.Event()
        holder: list[ProcessPoolExecutor] = []

        def warm_up() -> None:
            try:
                pool = _pool(workers)
                for f in [pool.submit(int) for _ in range(workers)]:  # every worker started
                    f.result()
            except (OSError, RuntimeError):  # no pool (cannot fork, broken): this thread reads everything
                return
            holder.append(pool)
            ready.set()

        if _pool_is_warm(workers):
            warm_up()
        else:
            threading.Thread(target=warm_up, name="mdt-index-pool-start", daemon=True).start()
        submitted = False
        merged = done = 0
        back = n - 1
        try:
            while merged < n:
                if cancel is not None and cancel.is_set():
                    break
                if not submitted and ready.is_set():
                    pool = holder[0]
                    try:
                        for i in range(merged, back + 1):
                            futures[i] = pool.submit(_read_batch, batches[i])
                    except (OSError, RuntimeError):  # the pool broke or shut down meanwhile: read the rest here
                        futures[merged : back + 1] = [None] * (back + 1 - merged)
                        ready.clear()
                    submitted = ready.is_set()
                res = results[merged]
                fut = futures[merged]
                if res is None and fut is not None and fut.done():
                    try:
                        res = fut.result()
                    except (OSError, RuntimeError):  # a crashed worker (BrokenProcessPool): read this batch here
                        res = [_read_one(f) for f in batches[merged]]
                if res is not None:
                    for f, r in zip(batches[merged], res):
                        self._merge(f, r, on_instance)
                    results[merged] = None
                    done += len(batches[merged])
                    merged += 1
                    if progress:
                        progress(done, len(files))
                elif fut is None:  # pool not up yet: read the next batch here (merged at once: studies show early)
                    results[merged] = [_read_one(f) for f in batches[merged]]
                else:
                    wait([fut], timeout=0.1)
        finally:
            for fut in futures:
                if fut is not None:
                    fut.cancel()

    def _merge(self, path: str, res: tuple[str, Any, Any], on_instance: Callable[[Instance], None] | None) -> None:
        status, a, b = res
        if status == "not-dicom":
            with self._lock:
                self.skipped_non_dicom += 1
            return
        if status == "ok" and type(a) is tuple:
            a, b = _unpack(path, a, b)
        with self._lock:
            if status == "dicomdir":
                self._found_dicomdirs.append(Path(path))
                return
            if status == "bug":
                log.error("bug reading a header:\n%s", b)
                status, b = "problem", "bug"
            if status == "problem":
                prob = Problem(Path(path), a, b or "error")
                if prob not in self.problems:  # the same folder opened again: one line per bad file
                    self.problems.append(prob)
                return
            inst: Instance = a
            fields: dict[str, str] = b
            kept = self._by_uid.get(inst.sop_instance_uid)
            if kept is not None:
                if _key(kept.path) == _key(inst.path):
                    return  # the same file opened again (a second scan of its folder): not a duplicate
                if any(_key(d) == _key(inst.path) for _k, d, u in self.duplicates if u == inst.sop_instance_uid):
                    return  # this duplicate is listed already
                self.duplicates.append((kept.path, inst.path, inst.sop_instance_uid))
                self._dup_instances[inst.path] = inst
                return
            self._by_uid[inst.sop_instance_uid] = inst
            self._place(inst, fields)
        if on_instance:
            on_instance(inst)

    def _place(self, inst: Instance, f: dict[str, str]) -> None:
        pid = f.get("PatientID", "")
        name = f.get("PatientName", "")
        issuer = f.get("IssuerOfPatientID", "")
        # identity is Patient ID + issuer; without an ID a study is its own patient (names never merge)
        key = patient_key(pid, issuer, inst.study_instance_uid, inst.series_instance_uid or str(inst.path))
        patient = self.patients.get(key)
        if patient is None:
            patient = Patient(
                patient_id=pid,
                patient_name=name,
                birth_date=f.get("PatientBirthDate", ""),
                sex=f.get("PatientSex", ""),
                issuer=issuer,
            )
            self.patients = {**self.patients, key: patient}  # copy-on-write: readers iterate safely
            # from now on no log line may show this patient's identifiers
            logsafe.register_identifiers(pid, name, f.get("PatientBirthDate", ""))
        study_uid = inst.study_instance_uid or f"(no study UID) {key}"
        study = patient.studies.get(study_uid)
        if study is None:
            study = Study(
                study_instance_uid=inst.study_instance_uid,
                study_date=f.get("StudyDate", ""),
                study_time=f.get("StudyTime", ""),
                study_description=f.get("StudyDescription", ""),
                accession_number=f.get("AccessionNumber", ""),
                institution_name=f.get("InstitutionName", ""),
                referring_physician=f.get("ReferringPhysicianName", ""),
            )
            patient.studies = {**patient.studies, study_uid: study}
            self._study_origin[id(study)] = (study, inst)
        elif inst.kind in _IMAGE_KINDS and self._study_origin.get(id(study), (study, inst))[1].kind not in _IMAGE_KINDS:
            # the study was listed from a document (a KOS, an SR): its images say what the exam was, and when
            study.study_date = f.get("StudyDate", "")
            study.study_time = f.get("StudyTime", "")
            study.study_description = f.get("StudyDescription", "")
            self._study_origin[id(study)] = (study, inst)
        series_uid = inst.series_instance_uid or f"(no series UID) {study_uid}"
        series = study.series.get(series_uid)
        if series is None:
            num = f.get("SeriesNumber", "")
            try:
                number = int(float(num)) if num else None
            except ValueError:
                number = None
            series = Series(
                series_instance_uid=inst.series_instance_uid,
                modality=inst.modality,
                series_number=number,
                series_description=f.get("SeriesDescription", ""),
            )
            study.series = {**study.series, series_uid: series}
        series.instances.append(inst)
        self._added.append((patient, study, series, inst))
        self._unsorted.add(id(series))
        self._touched.append(series)

    def _apply_rejections(self, start: int) -> None:
        """Work out which instances the rejection notes withdraw, for each study placed into since *start*.

        Reads only the KOS of those studies (small files, in the caller's thread: the scan job's in the
        window).  Sets ``Study.rejected``/``withdrawal_notes`` (new objects: readers see old or new, whole)
        and each instance's ``withdrawn``; a note that cannot be applied is a problem line."""
        from mdtviewer.dicom import kos
        from mdtviewer.dicom.reader import read_dataset

        with self._lock:
            studies = list({id(st): st for _p, st, _se, _i in self._added[start:]}.values())
            work = [(st, st.instances()) for st in studies]
        changed = False
        for st, insts in work:
            if not any(i.kind == "kos" for i in insts) and not st.rejected:
                continue
            rejected, notes, problems = kos.study_rejections(
                st.study_instance_uid, insts, lambda p: read_dataset(p, stop_before_pixels=True)
            )
            with self._lock:
                for path, reason in problems:
                    prob = Problem(Path(path), reason, "rejection-note")
                    if prob not in self.problems:
                        self.problems.append(prob)
                if rejected != st.rejected:
                    changed = True
                st.rejected = rejected
                st.withdrawal_notes = notes
                for inst in insts:
                    inst.withdrawn = rejected.get(inst.sop_instance_uid, "")
            self._study_fields_from_current(st, insts)
        if changed:
            self.rejection_generation += 1

    def _study_fields_from_current(self, st: Study, insts: list[Instance]) -> None:
        """The study's date, time and description from a current image when they came from one a rejection
        note withdrew (read from its header here, in the caller's thread: one small read, only then)."""
        from mdtviewer.dicom.reader import read_dataset

        origin = self._study_origin.get(id(st))
        if origin is None or not origin[1].withdrawn or origin[1].kind not in _IMAGE_KINDS:
            return
        for inst in insts:
            if inst.kind in _IMAGE_KINDS and not inst.withdrawn and not inst.error:
                try:
                    ds = read_dataset(inst.path, stop_before_pixels=True)
                except (DicomInputError, OSError):
                    continue
                with self._lock:
                    st.study_date = values.text(ds, "StudyDate")
                    st.study_time = values.text(ds, "StudyTime")
                    st.study_description = values.text(ds, "StudyDescription")
                    self._study_origin[id(st)] = (st, inst)
                return

    def _sort_touched(self) -> None:
        with self._lock:
            for series in self._touched:
                if id(series) in self._unsorted:
                    series.instances = sorted(
                        series.instances, key=lambda i: (i.instance_number is None, i.instance_number or 0, str(i.path))
                    )
                    self._unsorted.discard(id(series))
            self._touched.clear()

    # -- reading
    @property
    def generation(self) -> int:
        """How many instances have been placed so far: a view that saw this many has seen everything."""
        return len(self._added)

    def added_since(
        self, cursor: int, limit: int | None = None
    ) -> tuple[int, list[tuple[Patient, Study, Series, Instance]]]:
        """(new cursor, [(patient, study, series, instance), ...]) placed since *cursor*, in merge order.

        For views that grow incrementally while a scan runs: start at 0 and pass back the cursor
        returned; *limit* caps the batch.  Duplicates (not placed) are never listed."""
        with self._lock:
            end = len(self._added) if limit is None else min(len(self._added), cursor + max(0, limit))
            return end, self._added[cursor:end]

    def instances(self) -> list[Instance]:
        with self._lock:
            return [i for _, st in self._studies_unlocked() for i in st.instances()]

    def find_instance(self, sop_instance_uid: str) -> Instance | None:
        with self._lock:
            return self._by_uid.get(sop_instance_uid)

    def duplicate_instance(self, path: str | os.PathLike) -> Instance | None:
        """The header of a duplicate file (listed in :attr:`duplicates`, not in the hierarchy)."""
        with self._lock:
            return self._dup_instances.get(Path(path))

    def studies(self) -> list[tuple[Patient, Study]]:
        """(patient, study) pairs, newest study first."""
        with self._lock:
            return self._studies_unlocked()

    def _studies_unlocked(self) -> list[tuple[Patient, Study]]:
        pairs = [(p, s) for p in self.patients.values() for s in p.studies.values()]
        pairs.sort(key=lambda ps: (ps[1].study_date, ps[1].study_time), reverse=True)
        return pairs

    def series_count(self) -> int:
        with self._lock:
            return sum(len(s.series) for _, s in self._studies_unlocked())


def scan(paths: Iterable[str | os.PathLike] | str | os.PathLike, **kw: Any) -> StudyIndex:
    """Index *paths* and return the :class:`StudyIndex`."""
    index = StudyIndex()
    index.add_paths(paths, **kw)
    return index
