"""The local store: the viewer's embedded archive of retrieved instances.

Files live under :func:`mdtviewer.infra.paths.store_dir` as
``<study uid>/<series uid>/<sop instance uid>.dcm`` with an SQLite index
(``index.sqlite``) beside them.  Every file is written atomically (temp file,
fsync, rename) *before* it is indexed, so a crash or a dropped connection
never leaves a half file under a final name, and whatever arrived is kept:
:meth:`LocalStore.has` tells a retry what it can skip.

The PACS is the record, this is a cache: :meth:`LocalStore.purge` removes the
least recently used studies past a size or age limit (whole studies, so the
viewer never sees half a study).
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

from mdtviewer.infra import paths, settings
from mdtviewer.infra.atomic import atomic_save_dataset, atomic_write
from mdtviewer.infra.errors import MalformedHeaderError

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

_SAFE = re.compile(r"[^0-9A-Za-z._-]")


def _safe_name(uid: str) -> str:
    """A file-name-safe form of a UID (real UIDs are digits and dots already)."""
    uid = str(uid).strip().rstrip("\x00") or "unknown"
    name = _SAFE.sub("_", uid)
    return name[:120]


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
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.root / INDEX_NAME, check_same_thread=False, timeout=30)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing ---------------------------------------------------------
    def path_for(self, study_uid: str, series_uid: str, sop_uid: str) -> Path:
        return self.root / _safe_name(study_uid) / _safe_name(series_uid) / (_safe_name(sop_uid) + ".dcm")

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

        atomic_write(target, _w)
        self._index(sop_uid, study_uid, series_uid, str(file_meta.MediaStorageSOPClassUID),
                    str(file_meta.TransferSyntaxUID), target)
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
        atomic_save_dataset(ds, target)
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
                atomic_write(target, lambda fh: shutil.copyfileobj(src, fh, 1 << 20))
        self._index(sop, study, series, cls, str(meta.get("TransferSyntaxUID", "")), target)
        return target

    def _index(self, sop: str, study: str, series: str, cls: str, ts: str, target: Path) -> None:
        now = time.time()
        rel = str(target.relative_to(self.root))
        with self._lock:
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
            for i in range(0, len(uids), 500):
                chunk = uids[i : i + 500]
                marks = ",".join("?" * len(chunk))  # only placeholders go into the text; values are bound
                q = f"SELECT sop_instance_uid, path FROM instances WHERE sop_instance_uid IN ({marks})"  # noqa: S608
                for sop, rel in self._db.execute(q, chunk):
                    if (self.root / rel).is_file():
                        out.add(sop)
        return out

    def study_paths(self, study_uid: str) -> list[Path]:
        """Paths of the study's instances in the store (existing files only), marking the study used."""
        with self._lock:
            rows = self._db.execute(
                "SELECT path FROM instances WHERE study_instance_uid=? ORDER BY series_instance_uid, path", (study_uid,)
            ).fetchall()
            self._db.execute("UPDATE instances SET accessed=? WHERE study_instance_uid=?", (time.time(), study_uid))
            self._db.commit()
        return [p for p in (self.root / r[0] for r in rows) if p.is_file()]

    def sop_uids(self, study_uid: str) -> set[str]:
        with self._lock:
            rows = self._db.execute("SELECT sop_instance_uid FROM instances WHERE study_instance_uid=?", (study_uid,))
            return {r[0] for r in rows}

    def studies(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT DISTINCT study_instance_uid FROM instances ORDER BY 1")]

    def total_bytes(self) -> int:
        with self._lock:
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
        with self._lock:
            rows = self._db.execute("SELECT path FROM instances WHERE study_instance_uid=?", (study,)).fetchall()
            self._db.execute("DELETE FROM instances WHERE study_instance_uid=?", (study,))
            self._db.commit()
        for (rel,) in rows:
            try:
                (self.root / rel).unlink()
            except FileNotFoundError:
                pass
        folder = self.root / _safe_name(study)
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)


def read_encoded_header(encoded: bytes, transfer_syntax: str) -> tuple[str, str]:
    """(study uid, series uid) from an encoded data set, without decoding pixels."""
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
    return str(ds.get("StudyInstanceUID", "") or ""), str(ds.get("SeriesInstanceUID", "") or "")
