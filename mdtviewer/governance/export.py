"""Export studies for teaching, audit and research: ``mdtviewer export``.

    mdtviewer export PATH... --deidentify --dest DIR [--mask-burned-in]
                     [--keep-rect X0,Y0,X1,Y1] [--keep-dates]
                     [--format dicom|png|mp4] [--encrypt]

* ``--deidentify``: PS3.15 Basic Application Level Confidentiality Profile
  (:mod:`mdtviewer.governance.deid`); one UID map and one pseudonym/date offset per
  patient for the whole export, so studies and series still group and
  references still resolve.
* Export *without* de-identification is refused unless ``--identifiable`` is
  given, and then only with ``--encrypt`` (identifiable data leaves only on
  encrypted media; the export is audited like any other).  Teaching export is
  the use case this command is for, so the safe choice is the default.
* ``--mask-burned-in``: Clean Pixel Data (:mod:`mdtviewer.imaging.masking`): pixels
  outside the Sequence of Ultrasound Regions are blanked; files without
  regions need ``--keep-rect`` (applied to every such file of this run; the
  API takes one per series), otherwise that file fails with the reason.
* ``--format``: ``dicom`` (default); ``png`` (one PNG per frame, no metadata);
  ``mp4`` (H.264 cine at the loop's own timing: frame times from Frame Time
  Vector / Frame Time / Cine Rate; an irregular Frame Time Vector gives a
  variable-frame-rate MP4 whose timestamps follow it exactly, to the
  millisecond; single-frame images in an mp4 export are written as PNG).
* ``--encrypt``: everything goes into one AES-256 7z archive with encrypted
  headers in DEST (:mod:`mdtviewer.governance.archive`); the password is typed twice
  on the terminal (never echoed, never stored) or, for scripts, taken from
  ``MDTVIEWER_ARCHIVE_PASSWORD``.  The plain files exist only in a private
  temporary folder while the archive is built.

Output names never contain identifiers: ``study-<hash>/series-<hash>/img-<hash>``
from the new UIDs.  Prints what it wrote (no identifiers).  Exit 0 only when
every input was exported, 1 when any failed, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shutil
import struct
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from mdtviewer.imaging.masking import CleanPixelError, Rect
from mdtviewer.infra.atomic import atomic_save_dataset, atomic_write, atomic_write_bytes

log = logging.getLogger(__name__)

FORMATS = ("dicom", "png", "mp4")
DEFAULT_FPS = 30.0


@dataclass
class ExportOptions:
    deidentify: bool = True
    mask_burned_in: bool = False
    keep_dates: bool = False
    fmt: str = "dicom"
    #: keep-rectangle for files without ultrasound regions (all series)
    keep_rect: Rect | None = None
    #: keep-rectangles per original SeriesInstanceUID (take precedence over keep_rect)
    keep_rects: dict[str, Rect] = field(default_factory=dict)
    #: allow an export that keeps identifiers (teaching exports should never set this)
    identifiable: bool = False


@dataclass
class ExportItem:
    source: Path
    outputs: list[Path] = field(default_factory=list)
    error: str | None = None
    note: str = ""
    study_uid: str = ""  # the original study (for the audit trail, never printed)
    masked_by: str = ""  # 'regions' or 'keep-rect' when masked
    #: an image exported de-identified but unmasked whose pixels may show burned-in text
    #: (Burned In Annotation YES, or absent as on most ultrasound)
    burned_in_risk: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class ExportReport:
    dest: Path
    items: list[ExportItem] = field(default_factory=list)
    archive: Path | None = None
    skipped: int = 0  # non-DICOM files found in folders

    @property
    def n_ok(self) -> int:
        return sum(1 for i in self.items if i.ok)

    @property
    def n_burned_in_risk(self) -> int:
        return sum(1 for i in self.items if i.ok and i.burned_in_risk)

    def burned_in_warning(self) -> str:
        """One line for the user when de-identified images may still show text in their pixels."""
        n = self.n_burned_in_risk
        if not n:
            return ""
        return (f"warning: {n} exported image(s) were not masked and may show the patient's name or the hospital "
                f"burned into the pixels (Burned In Annotation YES or not stated); use --mask-burned-in")

    @property
    def n_failed(self) -> int:
        return sum(1 for i in self.items if not i.ok)

    @property
    def ok(self) -> bool:
        return bool(self.items) and self.n_failed == 0

    def outputs(self) -> list[Path]:
        return [p for i in self.items for p in i.outputs]


# -- inputs -------------------------------------------------------------------
def _looks_dicom(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    if head[128:132] == b"DICM":
        return True
    # raw data sets without preamble: a group 0002/0008 tag at offset 0
    return len(head) >= 8 and head[1] == 0 and head[0] in (0x02, 0x08) and head[2] in range(0, 256)


def dicomdir_files(path: Path) -> list[Path]:
    """The files a DICOMDIR references (those present), in its record order.

    A DICOMDIR is the index of a file-set (CD/DVD/USB media), not an instance:
    exporting it means exporting what it lists.  :class:`MalformedHeaderError`
    when it cannot be read as a file-set.
    """
    import pydicom
    from pydicom.fileset import FileSet

    from mdtviewer.infra.errors import MalformedHeaderError

    try:
        fs = FileSet(pydicom.dcmread(path))
    except Exception as exc:
        raise MalformedHeaderError(f"{path.name}: not a readable DICOMDIR ({type(exc).__name__})") from exc
    out = []
    for inst in fs:
        f = Path(inst.path)
        if f.is_file():
            out.append(f)
    return out


def _is_dicomdir(path: Path) -> bool:
    if path.name.upper() == "DICOMDIR":
        return True
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return False
    return head[128:132] == b"DICM" and b"1.2.840.10008.1.3.10" in head


def collect_inputs(paths: Iterable[str | os.PathLike]) -> tuple[list[Path], int]:
    """Files to export: files as given, folders searched (non-DICOM skipped).

    A DICOMDIR given as a file stands for the files it references; inside a
    folder it is skipped (the folder's files are exported anyway).
    """
    files: list[Path] = []
    skipped = 0
    seen: set[Path] = set()

    def add(f: Path) -> None:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            files.append(f)

    for p in paths:
        p = Path(p)
        if p.is_file() and _is_dicomdir(p):
            try:
                for f in dicomdir_files(p):
                    add(f)
            except Exception:  # noqa: BLE001 - reported as a failed input by export_one
                add(p)
            continue
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if not f.is_file():
                    continue
                if f.name.upper() == "DICOMDIR":
                    continue  # the index of the folder's own files, which are exported
                if not _looks_dicom(f):
                    skipped += 1
                    continue
                add(f)
        else:
            add(p)
    return files, skipped


# -- names --------------------------------------------------------------------
def _h(uid: str) -> str:
    return hashlib.sha256(str(uid).encode()).hexdigest()[:10]


def _out_base(dest: Path, ds, used: set[Path]) -> Path:
    study = _h(ds.get("StudyInstanceUID", "") or "unknown")
    series = _h(ds.get("SeriesInstanceUID", "") or "unknown")
    inst = _h(ds.get("SOPInstanceUID", "") or os.urandom(8).hex())
    base = dest / f"study-{study}" / f"series-{series}" / f"img-{inst}"
    cand, n = base, 2
    while cand in used:  # two inputs with one SOP Instance UID: keep both
        cand = base.with_name(f"{base.name}-{n}")
        n += 1
    used.add(cand)
    return cand


# -- pixels -------------------------------------------------------------------
def png_bytes(frame: np.ndarray) -> bytes:
    """PNG of a uint8 HxW or HxWx3 frame (imagecodecs if present, else a zlib writer)."""
    frame = np.ascontiguousarray(frame, dtype=np.uint8)
    try:
        import imagecodecs

        return bytes(imagecodecs.png_encode(frame))
    except Exception:  # noqa: BLE001 - fall back to the standard library
        pass
    h, w = frame.shape[:2]
    ctype = 2 if frame.ndim == 3 else 0
    raw = b"".join(b"\x00" + frame[y].tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, ctype, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


def frame_starts_ms(ds, n: int) -> tuple[list[float], str]:
    """Start time (ms) of each frame, and where the timing came from.

    Uses :func:`mdtviewer.imaging.cine.frame_times_ms` (per-frame durations); without it, Frame Time
    Vector (increments, first is 0), Frame Time, Cine Rate, Recommended
    Display Frame Rate, then 30 frames/s ('assumed').
    """
    try:
        from mdtviewer.imaging.cine import frame_times_ms  # type: ignore[import-not-found]
    except ImportError:
        frame_times_ms = None
    if frame_times_ms is not None:
        try:
            times, source = frame_times_ms(ds)
        except Exception:  # noqa: BLE001 - fall back to our own reading
            times, source = None, ""
        if times is not None and len(times) == n and n > 0:
            # cine.py gives per-frame display durations: frame i starts when i-1 ends
            return [0.0] + [float(x) for x in np.cumsum([float(t) for t in times[:-1]])], str(source)
    ftv = ds.get("FrameTimeVector")
    if ftv is not None:
        try:
            many = isinstance(ftv, (list, tuple)) or (hasattr(ftv, "__iter__") and not isinstance(ftv, str))
            inc = [float(x) for x in (ftv if many else [ftv])]
        except (TypeError, ValueError):
            inc = []
        if len(inc) == n and all(x >= 0 for x in inc) and sum(inc[1:]) > 0:
            return list(np.cumsum([0.0] + inc[1:])), "FrameTimeVector"
    for kw, conv in (
        ("FrameTime", lambda v: v),
        ("CineRate", lambda v: 1000.0 / v),
        ("RecommendedDisplayFrameRate", lambda v: 1000.0 / v),
    ):
        v = ds.get(kw)
        try:
            v = float(v) if v not in (None, "") else None
        except (TypeError, ValueError):
            v = None
        if v and v > 0:
            dt = conv(v)
            return [i * dt for i in range(n)], kw
    dt = 1000.0 / DEFAULT_FPS
    return [i * dt for i in range(n)], "assumed"


def write_mp4(path: Path, frames: Iterable[np.ndarray], starts_ms: list[float]) -> int:
    """H.264 MP4 with each frame at its own start time (variable rate when irregular)."""
    import av

    n = 0
    tmp_holder: dict[str, Path] = {}

    def _w(fh) -> None:
        nonlocal n
        container = av.open(fh, mode="w", format="mp4")
        stream = None
        tb = Fraction(1, 1000)
        intervals = np.diff(starts_ms) if len(starts_ms) > 1 else [1000.0 / DEFAULT_FPS]
        mean_fps = 1000.0 / float(np.mean(intervals)) if float(np.mean(intervals)) > 0 else DEFAULT_FPS
        last_pts = -1
        for i, fr in enumerate(frames):
            fr = np.asarray(fr)
            if fr.ndim == 2:
                fr = np.repeat(fr[:, :, None], 3, axis=2)
            fr = fr.astype(np.uint8, copy=False)
            h, w = fr.shape[:2]
            if h % 2 or w % 2:  # yuv420p needs even sizes: pad with black
                fr = np.pad(fr, ((0, h % 2), (0, w % 2), (0, 0)))
            if stream is None:
                stream = container.add_stream("libx264", rate=Fraction(mean_fps).limit_denominator(1001))
                stream.width, stream.height = fr.shape[1], fr.shape[0]
                stream.pix_fmt = "yuv420p"
                stream.codec_context.time_base = tb
                stream.options = {"crf": "17", "preset": "veryfast"}
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(fr), format="rgb24")
            pts = round(starts_ms[i]) if i < len(starts_ms) else last_pts + 1
            pts = max(pts, last_pts + 1)
            last_pts = pts
            vf.pts, vf.time_base = pts, tb
            for pkt in stream.encode(vf):
                container.mux(pkt)
            n += 1
        if stream is not None:
            for pkt in stream.encode():
                container.mux(pkt)
        container.close()

    del tmp_holder
    atomic_write(path, _w)
    return n


# -- one file -----------------------------------------------------------------
def _is_image(ds) -> bool:
    return "PixelData" in ds and int(ds.get("Rows", 0) or 0) > 0


def _keep_rect_for(ds, options: ExportOptions) -> Rect | None:
    series = str(ds.get("SeriesInstanceUID", "") or "")
    return options.keep_rects.get(series, options.keep_rect)


def export_one(src: Path, dest: Path, options: ExportOptions, deidentifier, used: set[Path]) -> ExportItem:
    """Export one file; errors become ``item.error`` (one line, no identifiers)."""
    from mdtviewer.infra import logsafe

    item = ExportItem(source=src)
    try:
        ds = _read(src)
    except Exception as exc:  # noqa: BLE001
        item.error = _reason(exc)
        return item
    logsafe.register_dataset(ds)
    item.study_uid = str(ds.get("StudyInstanceUID", "") or "")
    item.burned_in_risk = bool(
        options.deidentify
        and not options.mask_burned_in
        and _is_image(ds)
        and str(ds.get("BurnedInAnnotation", "") or "").strip().upper() != "NO"
    )
    try:
        if options.fmt == "dicom":
            _export_dicom(ds, src, dest, options, deidentifier, used, item)
        else:
            _export_pixels(ds, src, dest, options, deidentifier, used, item)
    except Exception as exc:
        log.debug("export failed for input %s", src.name, exc_info=True)
        for p in item.outputs:
            try:
                p.unlink()
            except OSError:
                pass
        item.outputs = []
        item.error = _reason(exc)
    return item


def _read(src: Path):
    try:
        from mdtviewer.dicom.reader import read_dataset
    except ImportError:  # pragma: no cover - reading.py is part of the core
        import pydicom

        return pydicom.dcmread(src, force=True)
    return read_dataset(src)


def _reason(exc: Exception) -> str:
    from mdtviewer.infra.errors import DicomInputError
    from mdtviewer.infra.logsafe import redact

    if isinstance(exc, (DicomInputError,)):
        return exc.reason
    return redact(" ".join(f"{type(exc).__name__}: {exc}".split()))[:300]


def _export_dicom(ds, src, dest, options, deidentifier, used, item) -> None:
    import pydicom

    from mdtviewer.imaging import masking

    masked = False
    if options.mask_burned_in and _is_image(ds):
        area = masking.clean_dataset_pixels(ds, _keep_rect_for(ds, options))
        item.masked_by = area.source
        masked = True
    if options.deidentify:
        deidentifier.deidentify(ds, pixels_cleaned=masked)
    elif masked:
        ds.BurnedInAnnotation = "NO"
    if "SOPClassUID" not in ds or "SOPInstanceUID" not in ds:
        raise CleanPixelError("not a composite DICOM instance (no SOP Class/Instance UID): not exported")
    meta = ds.file_meta
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "MDTVIEWER"
    if "TransferSyntaxUID" not in meta:
        meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    out = _out_base(dest, ds, used).with_suffix(".dcm")
    if not options.deidentify and not masked:
        atomic_write_bytes(out, Path(src).read_bytes())  # identifiable, unchanged: the original bytes
    else:
        atomic_save_dataset(ds, out)
    item.outputs.append(out)


def _export_pixels(ds, src, dest, options, deidentifier, used, item) -> None:
    from mdtviewer.imaging import masking

    if not _is_image(ds):
        if str(ds.get("SOPClassUID", "")).startswith("1.2.840.10008.5.1.4.1.1.88."):
            _export_report_text(ds, dest, options, deidentifier, used, item)
            return
        raise CleanPixelError(f"not an image: cannot write {options.fmt.upper()}; export it as DICOM")
    keep = None
    if options.mask_burned_in:
        area = masking.keep_area(ds, _keep_rect_for(ds, options))
        item.masked_by = area.source
        keep = masking.keep_mask(int(ds.Rows), int(ds.Columns), area.rects)
    # names from the new UIDs when de-identifying, so no export reveals the originals
    naming = ds
    if options.deidentify:
        import copy

        naming = copy.copy(ds)
        for kw in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
            if kw in ds:
                setattr(naming, kw, deidentifier.new_uid(str(ds.get(kw))))
    base = _out_base(dest, naming, used)
    n = masking.n_frames(ds)

    def frames():
        for f in masking.display_frames(src, ds):
            yield masking.apply_mask(f, keep, 0) if keep is not None else f

    if options.fmt == "mp4" and n > 1:
        starts, source = frame_starts_ms(ds, n)
        out = base.with_suffix(".mp4")
        written = write_mp4(out, frames(), starts)
        item.outputs.append(out)
        item.note = f"{written} frames, timing from {source}"
        return
    for i, f in enumerate(frames()):
        out = base.with_suffix(".png") if n == 1 else base.with_name(f"{base.name}_f{i + 1:04d}.png")
        atomic_write_bytes(out, png_bytes(f))
        item.outputs.append(out)
    if options.fmt == "mp4":
        item.note = "single frame: written as PNG"


def _export_report_text(ds, dest, options, deidentifier, used, item) -> None:
    """An SR or KOS among pictures: the report as readable text (``sr show``), de-identified first,
    so a teaching set of PNG/MP4 keeps its report and references (new UIDs) with it."""
    from mdtviewer.sr.reader import read_sr
    from mdtviewer.sr.render import render_text

    if options.deidentify:
        deidentifier.deidentify(ds)
    text = render_text(read_sr(ds), show_identifiers=not options.deidentify)
    out = _out_base(dest, ds, used).with_suffix(".txt")
    atomic_write_bytes(out, text.encode("utf-8"))
    item.outputs.append(out)
    item.note = "report written as text"


# -- whole export ---------------------------------------------------------------
def export(
    paths: Iterable[str | os.PathLike],
    dest: str | os.PathLike,
    options: ExportOptions | None = None,
    *,
    deidentifier=None,
    progress: Callable[[int, int, ExportItem], None] | None = None,
    audit_detail: dict | None = None,
) -> ExportReport:
    """Export *paths* (files or folders) to *dest*; see the module docstring."""
    from mdtviewer.governance.deid import Deidentifier
    from mdtviewer.infra import audit

    options = options or ExportOptions()
    if options.fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    if not options.deidentify and not options.identifiable:
        raise ValueError("refusing to export identifiable data: de-identify, or say identifiable explicitly")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if deidentifier is None:
        deidentifier = Deidentifier(keep_dates=options.keep_dates)
    files, skipped = collect_inputs(paths)
    report = ExportReport(dest=dest, skipped=skipped)
    used: set[Path] = set()
    for k, f in enumerate(files):
        item = export_one(f, dest, options, deidentifier, used)
        report.items.append(item)
        if progress is not None:
            progress(k + 1, len(files), item)
    # one audit record per original study (plus one for unreadable inputs)
    studies: dict[str, list[ExportItem]] = {}
    for it in report.items:
        studies.setdefault(it.study_uid, []).append(it)
    for uid, its in studies.items():
        failed = sum(1 for i in its if not i.ok)
        detail = {
            "files": len(its),
            "failed": failed,
            "format": options.fmt,
            "deidentified": options.deidentify,
            "masked": options.mask_burned_in,
            "dates": "shifted" if options.keep_dates else "removed",
        }
        detail.update(audit_detail or {})
        audit.record(
            "export",
            study_uid=uid or None,
            outcome="success" if failed == 0 else ("minor-failure" if failed < len(its) else "failure"),
            detail=detail,
        )
    return report


def export_encrypted(
    paths: Iterable[str | os.PathLike],
    dest: str | os.PathLike,
    password: str,
    options: ExportOptions | None = None,
    *,
    archive_name: str | None = None,
    progress=None,
) -> ExportReport:
    """Export into a private temporary folder, then pack it as an AES-256 7z in *dest*."""
    import datetime as _dt

    from mdtviewer.governance import archive

    archive.check_password(password)
    dest = Path(dest)
    stage = Path(tempfile.mkdtemp(prefix="mdtviewer-export-"))
    try:
        report = export(paths, stage, options, progress=progress, audit_detail={"encrypted": True})
        name = (
            archive_name or "mdtviewer-export-" + _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + ".7z"
        )
        if report.n_ok:
            report.archive = archive.write_archive(stage, dest / name, password)
        # paths inside the archive, for printing
        for it in report.items:
            it.outputs = [Path(p).relative_to(stage) for p in it.outputs]
        report.dest = dest
        return report
    finally:
        shutil.rmtree(stage, ignore_errors=True)


# -- command line ---------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mdtviewer export",
        description="Export studies de-identified (PS3.15 Basic Profile) as DICOM, PNG or MP4, optionally into an"
        " AES-256 encrypted 7z archive.",
        epilog="Exit status: 0 every input exported, 1 some input failed, 2 usage error. For --encrypt the password"
        " is asked twice on the terminal, or taken from MDTVIEWER_ARCHIVE_PASSWORD (scripts).",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="DICOM files or folders")
    p.add_argument("--dest", required=True, metavar="DIR", help="output folder (or where the archive goes)")
    p.add_argument(
        "--deidentify", action="store_true", help="apply the PS3.15 Basic Application Level Confidentiality Profile"
    )
    p.add_argument(
        "--identifiable",
        action="store_true",
        help="export WITH patient identifiers (clinical transfer); needs --encrypt",
    )
    p.add_argument("--mask-burned-in", action="store_true", help="blank burned-in text outside the ultrasound regions")
    p.add_argument(
        "--keep-rect",
        metavar="X0,Y0,X1,Y1",
        help="area to keep for images without ultrasound regions (inclusive pixel bounds)",
    )
    p.add_argument(
        "--keep-dates",
        action="store_true",
        help="keep the timeline: shift dates by a per-patient offset instead of removing them",
    )
    p.add_argument("--format", choices=FORMATS, default="dicom")
    p.add_argument("--encrypt", action="store_true", help="write one AES-256 encrypted 7z archive")
    p.add_argument("--archive-name", metavar="NAME", help="archive file name (default mdtviewer-export-<UTC time>.7z)")
    return p


def main(argv: list[str] | None = None) -> int:
    from mdtviewer.infra import logsafe

    logsafe.setup_logging()
    logging.captureWarnings(True)  # pydicom's warnings go to the redacted log, not the terminal
    try:
        return _main(argv)
    finally:
        logging.captureWarnings(False)


def _main(argv: list[str] | None) -> int:
    from mdtviewer.governance import archive
    from mdtviewer.imaging import masking

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) if exc.code in (0, None) else 2

    def usage(msg: str) -> int:
        print(f"mdtviewer export: error: {msg}", file=sys.stderr)
        return 2

    if args.deidentify and args.identifiable:
        return usage("--deidentify and --identifiable exclude each other")
    if not args.deidentify and not args.identifiable:
        return usage(
            "refusing to export identifiable data: add --deidentify (teaching, research)"
            " or, for a clinical transfer, --identifiable --encrypt"
        )
    if args.identifiable and not args.encrypt:
        return usage("an identifiable export must be encrypted: add --encrypt")
    if args.keep_dates and not args.deidentify:
        return usage("--keep-dates only applies with --deidentify")
    keep_rect = None
    if args.keep_rect:
        if not args.mask_burned_in:
            return usage("--keep-rect only applies with --mask-burned-in")
        try:
            keep_rect = masking.parse_rect(args.keep_rect)
        except ValueError as exc:
            return usage(str(exc))
    dest = Path(args.dest)
    if dest.exists() and not dest.is_dir():
        return usage("--dest must be a folder")
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        return usage(f"no such file or folder: {missing[0]}")
    options = ExportOptions(
        deidentify=args.deidentify,
        mask_burned_in=args.mask_burned_in,
        keep_dates=args.keep_dates,
        fmt=args.format,
        keep_rect=keep_rect,
        identifiable=args.identifiable,
    )
    password = None
    if args.encrypt:
        try:
            password = archive.ask_password(confirm=True)
        except archive.ArchiveError as exc:
            return usage(str(exc))

    def progress(k: int, n: int, item: ExportItem) -> None:
        if item.ok:
            return
        print(f"FAILED [{k}/{n}] {item.source.name}: {item.error}")

    try:
        if password is not None:
            report = export_encrypted(
                args.paths, dest, password, options, archive_name=args.archive_name, progress=progress
            )
        else:
            report = export(args.paths, dest, options, progress=progress)
    except archive.ArchiveError as exc:
        print(f"FAILED: {exc}")
        return 1
    finally:
        password = None
    for it in report.items:
        for out in it.outputs:
            where = out if report.archive is not None else out.relative_to(dest) if out.is_absolute() else out
            extra = f" ({it.note})" if it.note else ""
            print(f"wrote {where}{extra}")
    what = ["de-identified" if options.deidentify else "IDENTIFIABLE"]
    if options.mask_burned_in:
        what.append("burned-in text masked")
    if options.keep_dates:
        what.append("dates shifted")
    what.append(options.fmt)
    if report.archive is not None:
        print(f"wrote {report.archive} (AES-256 7z, encrypted headers; {len(report.outputs())} files)")
    if report.skipped:
        print(f"skipped {report.skipped} non-DICOM file(s) in folders")
    if report.burned_in_warning():
        print(report.burned_in_warning())
    print(f"exported {report.n_ok} of {len(report.items)} input(s) ({', '.join(what)}) to {dest}")
    if args.encrypt and report.archive is None:
        return 1
    return 0 if report.ok else 1
