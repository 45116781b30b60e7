r"""The local store: the viewer's embedded archive of retrieved instances.

Files live under :func:`mdtviewer.infra.paths.store_dir` as
``<study uid>/<series uid>/<sop instance uid>.dcm`` with an SQLite index
(``index.sqlite``) beside them.  Every file is written whole to a temp file
and renamed to its final name, so a crash or a dropped connection never
leaves a half file under a final name.

Durability is per batch, not per file (issue 12.1: an fsync, a directory
fsync and an SQLite commit per instance were ~40 % of a retrieve).  Instances
received from the network (:meth:`LocalStore.add_encoded`) are renamed into
place at once, and made durable together: every :data:`BATCH_FILES` files or
:data:`BATCH_BYTES` bytes, and whenever the store is read (``present``,
``has``, ``study_paths``...: so a retrieve's result, computed from the
store, is durable before it is reported), each file and each folder of the
batch is fsynced and *then* the batch's index rows are committed in one
SQLite transaction.  An instance is therefore indexed only once its file is
on disk for good, and :meth:`LocalStore.has` tells a retry exactly what it
can skip.  A file under a final name that the index does not list (renamed,
then the process was killed before its batch was committed) is removed by
:meth:`LocalStore.clean_partials` when the next retrieve of its study starts:
it is fetched again (its bytes were never made durable, so they are not
trusted).

The PACS is the record, this is a cache: :meth:`LocalStore.purge` removes the
least recently used studies past a size or age limit (whole studies, so the
viewer never sees half a study).

Peer-supplied values never choose where a file goes (a hostile PACS once
made a Study Instance UID ``..`` write beside the store and the purge remove
the store's parent).  A UID becomes a path component only when it is a real
UID (``^[0-9]+(\.[0-9]+)*$``, at most 64 characters, after the DICOM padding
is stripped); anything else (``..``, ``.``, ``/etc``, 65 characters, letters,
control characters) is mapped to ``x`` + 40 hex digits of its SHA-256, so it
is still stored and found again, under a name that cannot mean anything to
the file system.  Every path is resolved and checked to lie inside the store
before it is written, read or removed, and purge removes only what the index
names inside the store (symlinks are unlinked, never followed).

A write in progress is a hidden ``.<name>.<pid>.<random>.part`` file beside
its target; one left by a killed process is removed by
:meth:`LocalStore.clean_partials` (called when a retrieve starts).
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import re
import shutil
import sqlite3
import tempfile
import threading
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

from mdtviewer.infra import paths, settings
from mdtviewer.infra.errors import MalformedHeaderError

log = logging.getLogger(__name__)

INDEX_NAME = "index.sqlite"
SETTINGS_SECTION = "local_store"
#: defaults for :meth:`LocalStore.purge_to_limits` (settings section "local_store")
DEFAULT_LIMITS = {"max_bytes": 20 << 30, "max_age_days": 90}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    sop_instance_uid TEXT PRIMARY KEY,
    study_instance_uid TEXT NOT NULL,
    series_instance_uid TEXT NOT NULL,
    sop_class_uid TEXT NOT NULL,
    transfer_syntax TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    added REAL NOT NULL,
    accessed REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS instances_study ON instances(study_instance_uid);
"""

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
UID_MAX_LENGTH = 64


def clean_uid(value) -> str:
    """A UID as received, without DICOM's trailing padding (space or NUL)."""
    return "" if value is None else str(value).strip(" \x00")


def is_valid_uid(value) -> bool:
    """True for a UID of the DICOM grammar: digits and single dots, at most 64 characters."""
    return isinstance(value, str) and 0 < len(value) <= UID_MAX_LENGTH and bool(_UID.match(value))


def path_component(uid) -> str:
    """The file-name form of a peer-supplied UID: itself when it is a valid UID,
    else ``x`` + 40 hex digits of its SHA-256 (stable, so a retry finds it again)."""
    u = clean_uid(uid)
    if is_valid_uid(u):
        return u
    return "x" + hashlib.sha256(str(uid).encode("utf-8", "surrogatepass")).hexdigest()[:40]


class StoreError(MalformedHeaderError):
    """A path the store refuses to use (it would lie outside the store)."""


_PART = re.compile(r"^\..+\.(\d+)\.[^.]+\.part$")
_inflight: set[str] = set()  # temp files this process is writing now
_inflight_lock = threading.Lock()
#: files renamed into place by this process whose batch is not committed yet (never cleaned as stale)
_unflushed: set[str] = set()
#: every LocalStore alive, so a pending batch is committed at a normal exit
_open_stores: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for store in list(_open_stores):
        try:
            store.flush()
        except Exception:  # noqa: BLE001 - a closed database: its batch was flushed by close()
            pass


#: a batch is made durable (fsync files + folders, one SQLite commit) at this many files or bytes
BATCH_FILES = 64
BATCH_BYTES = 64 << 20
#: a temp file untouched this long is stale whoever wrote it (s)
STALE_PART_SECONDS = 600.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, not ours
        return True
    return True


def _write_atomic(target: Path, writer, durable: bool = True) -> None:
    """Temp file beside *target* (named with our PID), fsync, rename, fsync the folder.

    A crash or SIGKILL never leaves a half-written file under the final name;
    the temp file it leaves is recognised as stale by :meth:`LocalStore.clean_partials`.
    With *durable* False the two fsyncs are left to the caller's batch (:meth:`LocalStore.flush`).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".part", dir=target.parent)
    with _inflight_lock:
        _inflight.add(tmp)
    try:
        with os.fdopen(fd, "wb") as fh:
            writer(fh)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        if not durable:
            with _inflight_lock:
                _unflushed.add(str(target))
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    finally:
        with _inflight_lock:
            _inflight.discard(tmp)
    if durable:
        _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


@dataclass
class PurgeResult:
    studies: int
    instances: int
    bytes: int


class LocalStore:
    """Files + SQLite index; safe to use from several threads (one lock)."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else paths.store_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        self._rroot = self.root.resolve()
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.root / INDEX_NAME, check_same_thread=False, timeout=30)
        #: index rows of files renamed into place but not yet durable (see :meth:`flush`)
        self._pending: list[tuple] = []
        self._pending_bytes = 0
        _open_stores.add(self)  # a batch left pending is still made durable at exit (or when dropped)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self.flush()
            self._db.close()

    def __del__(self) -> None:
        try:
            if self._pending:
                self.flush()
        except Exception:  # noqa: BLE001 - a store dropped at interpreter exit: nothing more can be done
            pass

    def flush(self) -> int:
        """Make the pending batch durable: fsync its files, then their folders, then commit its rows at once.

        Returns how many instances were committed.  A file that vanished meanwhile is not indexed."""
        with self._lock:
            rows, self._pending, self._pending_bytes = self._pending, [], 0
            if not rows:
                return 0
            kept = []
            folders: set[str] = set()
            for row in rows:
                target = str(self.root / row[5])
                try:
                    fd = os.open(target, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                except OSError:
                    continue
                kept.append(row)
                folders.add(os.path.dirname(target))
            for folder in sorted(folders):
                _fsync_dir(Path(folder))
            try:
                self._db.executemany("INSERT OR REPLACE INTO instances VALUES (?,?,?,?,?,?,?,?,?)", kept)
                self._db.commit()
            finally:
                with _inflight_lock:
                    for row in rows:
                        _unflushed.discard(str(self.root / row[5]))
            return len(kept)

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing ---------------------------------------------------------
    def path_for(self, study_uid: str, series_uid: str, sop_uid: str) -> Path:
        """``<study>/<series>/<sop>.dcm`` inside the store (see :func:`path_component`);
        :class:`StoreError` if it would resolve outside the store (a symlinked folder)."""
        target = (self.root / path_component(study_uid) / path_component(series_uid)
                  / (path_component(sop_uid) + ".dcm"))
        if self._inside(target) is None:
            raise StoreError("refused to write outside the local store (a folder in it links elsewhere)")
        return target

    def _inside(self, p: Path) -> Path | None:
        """*p* with its folder resolved, if that folder lies inside the store (else None).

        The last component is kept as it is, so a symlink there is handled as the
        link itself (unlinked, never followed out of the store)."""
        try:
            parent = p.parent.resolve()
        except (OSError, RuntimeError):
            return None
        if p.name in ("", ".", "..") or not (parent == self._rroot or parent.is_relative_to(self._rroot)):
            return None
        return parent / p.name

    def _file(self, rel: str) -> Path | None:
        """The store file an index row names, or None if it is not a regular file inside the store."""
        p = self._inside(self.root / rel)
        if p is None:
            return None
        try:
            real = p.resolve()
        except (OSError, RuntimeError):
            return None
        if not real.is_relative_to(self._rroot) or not real.is_file():
            return None
        return p

    def add_encoded(self, file_meta: FileMetaDataset, encoded: bytes, study_uid: str, series_uid: str) -> Path:
        """Store an already-encoded data set (as received on the network) without re-encoding it.

        *file_meta* must hold the SOP class/instance UIDs and the transfer
        syntax the bytes are in.
        """
        sop_uid = str(file_meta.MediaStorageSOPInstanceUID)
        target = self.path_for(study_uid, series_uid, sop_uid)
        if "ImplementationClassUID" not in file_meta:
            file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID

        def _w(fh) -> None:
            fh.write(b"\x00" * 128 + b"DICM")
            write_file_meta_info(fh, file_meta, enforce_standard=True)
            fh.write(encoded)

        _write_atomic(target, _w, durable=False)
        now = time.time()
        size = target.stat().st_size
        with self._lock:
            self._pending.append((sop_uid, study_uid, series_uid, str(file_meta.MediaStorageSOPClassUID),
                                  str(file_meta.TransferSyntaxUID), str(target.relative_to(self.root)), size,
                                  now, now))
            self._pending_bytes += size
            if len(self._pending) >= BATCH_FILES or self._pending_bytes >= BATCH_BYTES:
                self.flush()
        return target

    def add_dataset(self, ds: Dataset) -> Path:
        """Store a pydicom data set (file meta made if missing); returns its path."""
        for kw in ("SOPInstanceUID", "SOPClassUID", "StudyInstanceUID"):
            if not ds.get(kw):
                raise MalformedHeaderError(f"cannot store an instance without {kw}")
        meta = getattr(ds, "file_meta", None) or FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        if "TransferSyntaxUID" not in meta:
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
        series = str(ds.get("SeriesInstanceUID", "") or "noseries")
        target = self.path_for(ds.StudyInstanceUID, series, ds.SOPInstanceUID)
        _write_atomic(target, lambda fh: ds.save_as(fh, enforce_file_format=True))
        self._index(str(ds.SOPInstanceUID), str(ds.StudyInstanceUID), series, str(ds.SOPClassUID),
                    str(meta.TransferSyntaxUID), target)
        return target

    def add_file(self, path: str | os.PathLike) -> Path:
        """Copy a DICOM file into the store (bytes unchanged); returns the stored path."""
        path = Path(path)
        try:
            ds = pydicom.dcmread(
                path,
                stop_before_pixels=True,
                specific_tags=["SOPInstanceUID", "SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID"],
            )
        except Exception as exc:  # pydicom raises many kinds
            raise MalformedHeaderError(f"{path.name}: not a readable DICOM file ({type(exc).__name__})") from exc
        meta = ds.file_meta if hasattr(ds, "file_meta") else FileMetaDataset()
        sop = str(ds.get("SOPInstanceUID", "") or meta.get("MediaStorageSOPInstanceUID", ""))
        cls = str(ds.get("SOPClassUID", "") or meta.get("MediaStorageSOPClassUID", ""))
        study = str(ds.get("StudyInstanceUID", ""))
        if not (sop and cls and study):
            raise MalformedHeaderError(f"{path.name}: missing SOP Instance, SOP Class or Study Instance UID")
        series = str(ds.get("SeriesInstanceUID", "") or "noseries")
        target = self.path_for(study, series, sop)
        if target.resolve() != path.resolve():
            with open(path, "rb") as src:
                _write_atomic(target, lambda fh: shutil.copyfileobj(src, fh, 1 << 20))
        self._index(sop, study, series, cls, str(meta.get("TransferSyntaxUID", "")), target)
        return target

    def _index(self, sop: str, study: str, series: str, cls: str, ts: str, target: Path) -> None:
        now = time.time()
        rel = str(target.relative_to(self.root))
        with self._lock:
            self.flush()
            self._db.execute(
                "INSERT OR REPLACE INTO instances VALUES (?,?,?,?,?,?,?,?,?)",
                (sop, study, series, cls, ts, rel, target.stat().st_size, now, now),
            )
            self._db.commit()

    # -- reading ---------------------------------------------------------
    def has(self, sop_uid: str) -> bool:
        """True when this instance is indexed *and* its file is on disk."""
        return bool(self.present(sop_uid))

    def present(self, sop_uids: Iterable[str] | str) -> set[str]:
        """The subset of *sop_uids* that is in the store (file on disk)."""
        uids = [sop_uids] if isinstance(sop_uids, str) else list(sop_uids)
        out: set[str] = set()
        with self._lock:
            self.flush()
            for i in range(0, len(uids), 500):
                chunk = uids[i : i + 500]
                marks = ",".join("?" * len(chunk))  # only placeholders go into the text; values are bound
                q = f"SELECT sop_instance_uid, path FROM instances WHERE sop_instance_uid IN ({marks})"  # noqa: S608
                for sop, rel in self._db.execute(q, chunk):
                    if self._file(rel) is not None:
                        out.add(sop)
        return out

    def study_paths(self, study_uid: str) -> list[Path]:
        """Paths of the study's instances in the store (existing files only), marking the study used."""
        with self._lock:
            self.flush()
            rows = self._db.execute(
                "SELECT path FROM instances WHERE study_instance_uid=? ORDER BY series_instance_uid, path", (study_uid,)
            ).fetchall()
            self._db.execute("UPDATE instances SET accessed=? WHERE study_instance_uid=?", (time.time(), study_uid))
            self._db.commit()
        return [p for p in (self._file(r[0]) for r in rows) if p is not None]

    def sop_uids(self, study_uid: str) -> set[str]:
        with self._lock:
            self.flush()
            rows = self._db.execute("SELECT sop_instance_uid FROM instances WHERE study_instance_uid=?", (study_uid,))
            return {r[0] for r in rows}

    def studies(self) -> list[str]:
        with self._lock:
            self.flush()
            return [r[0] for r in self._db.execute("SELECT DISTINCT study_instance_uid FROM instances ORDER BY 1")]

    def total_bytes(self) -> int:
        with self._lock:
            self.flush()
            return int(self._db.execute("SELECT COALESCE(SUM(size),0) FROM instances").fetchone()[0])

    # -- purge -----------------------------------------------------------
    def purge(
        self, max_bytes: int | None = None, max_age_days: float | None = None, keep: Iterable[str] = ()
    ) -> PurgeResult:
        """Remove whole studies, least recently used first, until the store is
        under *max_bytes*; also remove studies not used for *max_age_days*.
        Studies in *keep* (open in the viewer) are never removed."""
        keep = set(keep)
        with self._lock:
            self.flush()
            rows = self._db.execute(
                "SELECT study_instance_uid, SUM(size), MAX(accessed), COUNT(*) FROM instances "
                "GROUP BY study_instance_uid ORDER BY MAX(accessed) ASC"
            ).fetchall()
        total = sum(r[1] for r in rows)
        now = time.time()
        doomed = []
        for study, size, accessed, count in rows:
            if study in keep:
                continue
            too_old = max_age_days is not None and now - accessed > max_age_days * 86400
            too_big = max_bytes is not None and total > max_bytes
            if too_old or too_big:
                doomed.append((study, size, count))
                total -= size
        res = PurgeResult(0, 0, 0)
        for study, size, count in doomed:
            self._remove_study(study)
            res.studies += 1
            res.instances += count
            res.bytes += size
        return res

    def purge_to_limits(self, keep: Iterable[str] = ()) -> PurgeResult:
        """Purge with the limits saved in settings (section ``local_store``)."""
        limits = dict(DEFAULT_LIMITS)
        limits.update(settings.get_section(SETTINGS_SECTION) or {})
        return self.purge(limits.get("max_bytes"), limits.get("max_age_days"), keep=keep)

    def _remove_study(self, study: str) -> None:
        """Remove one study's files: only those the index names inside the store, then
        its folders once empty.  Nothing outside the store is ever touched."""
        with self._lock:
            rows = self._db.execute("SELECT path FROM instances WHERE study_instance_uid=?", (study,)).fetchall()
            self._db.execute("DELETE FROM instances WHERE study_instance_uid=?", (study,))
            self._db.commit()
        folders: set[Path] = set()
        for (rel,) in rows:
            p = self._inside(self.root / rel)
            if p is None:
                log.warning("purge: an index entry points outside the local store; left alone")
                continue
            try:
                p.unlink()  # a symlink is removed as a link, its target is untouched
            except FileNotFoundError:
                pass
            except IsADirectoryError:
                log.warning("purge: an index entry names a folder; left alone")
                continue
            folders.add(p.parent)
            if p.parent.parent != self._rroot:
                folders.add(p.parent.parent)
        folders.add(self._rroot / path_component(study))
        for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):
            self._remove_empty_folder(folder)

    def _remove_empty_folder(self, folder: Path) -> None:
        """rmdir a folder strictly inside the store once it holds nothing but stale temp files."""
        if folder == self._rroot or not folder.is_relative_to(self._rroot) or folder.is_symlink():
            return
        if not folder.is_dir():
            return
        self._clean_parts_in(folder)
        try:
            folder.rmdir()
        except OSError:
            pass  # not empty: something else lives there

    # -- interrupted writes ------------------------------------------------
    def clean_partials(self, study_uid: str | None = None) -> int:
        """Remove temp files left by a killed writer (in one study's folders, or the whole store).

        A temp file is stale when the process that wrote it is gone, when it is
        older than :data:`STALE_PART_SECONDS`, or when it has no writer PID in
        its name (written by an older version).  Returns how many were removed.
        """
        top = self._rroot / path_component(study_uid) if study_uid is not None else self._rroot
        if top.is_symlink() or not top.is_dir():
            return 0
        n = 0
        with self._lock:
            self.flush()
            if study_uid is not None:
                q = self._db.execute("SELECT path FROM instances WHERE study_instance_uid=?", (study_uid,))
            else:
                q = self._db.execute("SELECT path FROM instances")
            indexed = {os.path.normpath(r[0]) for r in q}
        for dirpath, _dirnames, _files in os.walk(top, followlinks=False):
            n += self._clean_parts_in(Path(dirpath))
            if Path(dirpath) != self._rroot:
                n += self._clean_unindexed_in(Path(dirpath), indexed)
        return n

    def _clean_unindexed_in(self, folder: Path, indexed: set[str]) -> int:
        """Final-named files the index does not list: renamed, then killed before their batch was durable."""
        n = 0
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return 0
        for e in entries:
            if e.name.startswith(".") or not e.name.endswith(".dcm") or not e.is_file(follow_symlinks=False):
                continue
            rel = os.path.relpath(e.path, self._rroot)
            with _inflight_lock:
                if str(self.root / rel) in _unflushed or str(self._rroot / rel) in _unflushed:
                    continue  # this process's own batch, not committed yet
            if rel in indexed or self._indexed_now(rel):
                continue  # (asked again: another store of this process may have committed it since the snapshot)
            try:
                os.unlink(e.path)
                n += 1
            except OSError:
                pass
        return n

    def _indexed_now(self, rel: str) -> bool:
        """True when the index lists *rel* at this moment (not only in an earlier snapshot)."""
        with self._lock:
            row = self._db.execute("SELECT 1 FROM instances WHERE path=? LIMIT 1", (rel,)).fetchone()
        return row is not None

    def _clean_parts_in(self, folder: Path) -> int:
        n = 0
        now = time.time()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return 0
        for e in entries:
            if not (e.name.startswith(".") and e.name.endswith(".part")) or not e.is_file(follow_symlinks=False):
                continue
            with _inflight_lock:
                if e.path in _inflight:
                    continue
            m = _PART.match(e.name)
            try:
                age = now - e.stat(follow_symlinks=False).st_mtime
            except OSError:
                continue
            pid = int(m.group(1)) if m else None
            if pid is not None and pid != os.getpid() and _pid_alive(pid) and age < STALE_PART_SECONDS:
                continue  # another live process is writing it
            if pid == os.getpid() and age < STALE_PART_SECONDS:
                continue
            try:
                os.unlink(e.path)
                n += 1
            except OSError:
                pass
        return n


def read_encoded_header(encoded: bytes, transfer_syntax: str) -> tuple[str, str]:
    """(study uid, series uid) from an encoded data set, without decoding pixels."""
    study, series, _sop = read_encoded_uids(encoded, transfer_syntax)
    return study, series


def read_encoded_uids(encoded: bytes, transfer_syntax: str) -> tuple[str, str, str]:
    """(study, series, SOP instance UID) from an encoded data set, without decoding pixels.

    A multi-valued UID comes back as its values joined by a backslash (as
    encoded), which is never a valid UID.
    """
    from pydicom.filereader import read_dataset
    from pydicom.uid import UID

    ts = UID(transfer_syntax)
    if ts == "1.2.840.10008.1.2.1.99":  # deflated: inflate just enough
        import zlib

        encoded = zlib.decompressobj(-zlib.MAX_WBITS).decompress(encoded)
        implicit, little = False, True
    else:
        implicit = ts == "1.2.840.10008.1.2"
        little = ts != "1.2.840.10008.1.2.2"
    ds = read_dataset(BytesIO(encoded), implicit, little, stop_when=lambda tag, vr, length: tag > 0x0020000E)

    def one(kw: str) -> str:
        v = ds.get(kw, "")
        if v is None:
            return ""
        if not isinstance(v, str) and hasattr(v, "__iter__"):
            return "\\".join(clean_uid(x) for x in v)
        return clean_uid(v)

    return one("StudyInstanceUID"), one("SeriesInstanceUID"), one("SOPInstanceUID")
