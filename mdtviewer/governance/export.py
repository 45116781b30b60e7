"""Export studies for teaching, audit and research (the library behind ``mdtviewer export``).

The command line (:mod:`mdtviewer.cli.export`) parses its options into
:class:`ExportOptions` and calls :func:`run_export`; the export dialog calls
:func:`export` / :func:`export_encrypted`.

* ``--deidentify``: PS3.15 Basic Application Level Confidentiality Profile
  (:mod:`mdtviewer.governance.deid`); one UID map and one pseudonym/date offset per
  patient for the whole export, so studies and series still group and
  references still resolve.
* Export *without* de-identification is refused unless ``--identifiable`` is
  given, and then only with ``--encrypt`` (identifiable data leaves only on
  encrypted media; the export is audited like any other).  Teaching export is
  the use case this command is for, so the safe choice is the default.
* Burned-in text is masked by default when de-identifying (Clean Pixel Data,
  :mod:`mdtviewer.imaging.masking`): pixels outside the keep area are blanked.
  The keep area is the Sequence of Ultrasound Regions, else ``--keep-rect``
  (every such file of this run; the API takes one per series), else the
  scanner's template, else the image area found in the pixels
  (:func:`mdtviewer.imaging.masking.keep_area_or_detect`, which also blanks
  words of the patient's own identifiers OCR still reads inside it).  An image
  that cannot be made safe is *not written*: its item fails with the reason
  (``refused``), unless the user asked for unmasked images (``--no-mask``,
  :attr:`ExportOptions.unmasked_ok`): then it is written unmasked, its Burned
  In Annotation says YES and the summary lists it.  Modalities whose images
  carry no burned-in text (CT, MR, ... unless Burned In Annotation is YES; the
  same rule as privacy mode) are written unmasked as they are.
  ``--mask-burned-in`` is the default and accepted for compatibility.
  Masked DICOM keeps the transfer syntax's family where it can be re-encoded
  losslessly (native, deflate, RLE, JPEG-LS, JPEG 2000 as its lossless form);
  otherwise it is stored uncompressed and the item's note says so.
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

* Inputs: files as given; folders walked (:mod:`mdtviewer.dicom.walk`),
  non-DICOM files skipped and counted; a DICOMDIR given as a file stands for
  the files it references (:mod:`mdtviewer.dicom.dicomdir`: never a file
  outside its file-set; a missing or escaping reference is a failed input).

Output names never contain identifiers: ``study-<hash>/series-<hash>/img-<hash>``
from the new UIDs.  One input that fails never stops the export: its
:attr:`ExportItem.error` says why in one line (an expected failure's reason,
or a plain "this is a bug" with the details in the log).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mdtviewer.dicom import uids, values
from mdtviewer.dicom.dicomdir import looks_like_dicomdir, read_file_set
from mdtviewer.dicom.model import Problem
from mdtviewer.dicom.reader import read_dataset
from mdtviewer.dicom.walk import walk_files
from mdtviewer.imaging.cine import CineClock, playback_durations
from mdtviewer.imaging.masking import CleanPixelError, Rect
from mdtviewer.infra.atomic import atomic_save_dataset, atomic_write, atomic_write_bytes
from mdtviewer.infra.errors import DicomInputError, MdtError, PixelDataError, bug_reason

log = logging.getLogger(__name__)

FORMATS = ("dicom", "png", "mp4")
DEFAULT_FPS = 30.0


class ExportError(MdtError, ValueError):
    """An export that cannot start as asked (format, identifiable without consent); one line."""

    category = "export"


@dataclass
class ExportOptions:
    deidentify: bool = True
    #: mask burned-in text; None (the default): mask when de-identifying
    mask_burned_in: bool | None = None
    #: write an image that cannot be made safe unmasked (Burned In Annotation YES) instead of refusing it:
    #: only on the user's explicit request (``--no-mask``, the dialog's check box)
    unmasked_ok: bool = False
    #: where there are no regions, keep-rectangle or template, find the text in the pixels
    detect: bool = True
    keep_dates: bool = False
    fmt: str = "dicom"
    #: keep-rectangle for files without ultrasound regions (all series)
    keep_rect: Rect | None = None
    #: keep-rectangles per original SeriesInstanceUID (take precedence over keep_rect)
    keep_rects: dict[str, Rect] = field(default_factory=dict)
    #: allow an export that keeps identifiers (teaching exports should never set this)
    identifiable: bool = False
    #: a copy for the patient: their own identity kept, staff identities removed (names of operators,
    #: physicians, reviewers; station), burned-in text masked as de-identification does; each image as
    #: DICOM plus a viewer-free PNG (still) or MP4 (cine); report documents (they name staff) left out
    patient_copy: bool = False
    #: also export instances a rejection note of their study withdrew (IHE IOCM); by default they are left out
    #: and listed in :attr:`ExportReport.withdrawn` (another patient's images, a withdrawn measurement)
    include_withdrawn: bool = False

    @property
    def masking(self) -> bool:
        """Whether burned-in text is masked in this export."""
        default = self.deidentify or self.patient_copy
        return default if self.mask_burned_in is None else bool(self.mask_burned_in)


@dataclass
class ExportItem:
    source: Path
    outputs: list[Path] = field(default_factory=list)
    error: str | None = None
    note: str = ""
    study_uid: str = ""  # the original study (for the audit trail, never printed)
    #: the input's patient (name, ID, birth date): only to keep them out of the paths the CLI prints
    patient: tuple[str, str, str] = ("", "", "")
    masked_by: str = ""  # 'regions', 'keep-rect', 'template' or 'detected' when masked
    #: what happened to burned-in text: 'masked', 'unmasked-at-request', 'refused',
    #: 'not-needed' (a modality without burned-in text), or '' (no image / not asked / not written for
    #: another reason: unreadable, damaged, not an instance; see :meth:`ExportReport.not_exported`)
    mask_state: str = ""
    #: an image exported de-identified but unmasked whose pixels may show burned-in text
    #: (written unmasked at the user's request, or exported without de-identification)
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
    #: inputs left out because a rejection note among the inputs withdrew them: (source, reason, its patient's
    #: (name, ID, birth date), only to keep them out of printed paths)
    withdrawn: list[tuple[Path, str, tuple[str, str, str]]] = field(default_factory=list)

    @property
    def n_ok(self) -> int:
        return sum(1 for i in self.items if i.ok)

    @property
    def n_burned_in_risk(self) -> int:
        return sum(1 for i in self.items if i.ok and i.burned_in_risk)

    def with_state(self, state: str) -> list[ExportItem]:
        """The items whose burned-in text ended as *state* (see :attr:`ExportItem.mask_state`)."""
        return [i for i in self.items if i.mask_state == state]

    def not_exported(self) -> list[ExportItem]:
        """Inputs not written for a reason that is not masking: unreadable or damaged files, files that are
        not a composite instance, reports asked for as pictures.  Masking advice (a keep rectangle, a
        template) does not apply to them; ``with_state("refused")`` are the images that could not be made
        safe."""
        return [i for i in self.items if not i.ok and i.mask_state != "refused"]

    def burned_in_warning(self) -> str:
        """One line for the user when de-identified images may still show text in their pixels."""
        n = self.n_burned_in_risk
        if not n:
            return ""
        return (
            f"warning: {n} image(s) written unmasked at your request may show the patient's name or the "
            f"hospital burned into the pixels (Burned In Annotation YES)"
        )

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


class Inputs(NamedTuple):
    """What :func:`collect_inputs` found."""

    files: list[Path]
    #: non-DICOM files found in folders (skipped)
    skipped: int
    #: files a DICOMDIR names but that are missing or outside its file-set, unreadable DICOMDIRs
    problems: list[Problem]


def collect_inputs(paths: Iterable[str | os.PathLike]) -> Inputs:
    """Files to export: files as given, folders walked (non-DICOM skipped).

    A DICOMDIR given as a file stands for the files it references (read by
    the one DICOMDIR reader, so never a file outside its file-set); inside a
    folder it is skipped (the folder's files are exported anyway).
    """
    files: list[Path] = []
    problems: list[Problem] = []
    skipped = 0
    seen: set[Path] = set()

    def add(f: Path) -> None:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            files.append(f)

    for p in map(Path, paths):
        if p.is_file() and looks_like_dicomdir(p):
            try:
                found, bad = read_file_set(p)
            except DicomInputError as exc:
                problems.append(Problem(p, f"DICOMDIR unreadable: {exc.reason}", exc.category))
                continue
            for f in found:
                add(f)
            problems.extend(bad)
        elif p.is_dir():
            for name, regular in walk_files(p):
                f = Path(name)
                if not regular or f.name.upper() == "DICOMDIR":
                    continue  # pipes are never opened; a DICOMDIR indexes the folder's own files
                if not _looks_dicom(f):
                    skipped += 1
                    continue
                add(f)
        else:
            add(p)
    return Inputs(files, skipped, problems)


def withdrawn_inputs(files: list[Path]) -> dict[Path, tuple[str, tuple[str, str, str]]]:
    """The inputs a rejection note among *files* withdraws (IHE IOCM): input path -> (reason, (patient name,
    ID, birth date)); the patient only to keep identifiers out of printed paths.

    Indexes the inputs' headers with the viewer's own index, so an export decides exactly as the
    window does (``Study.rejected``); a note that is not among the inputs cannot be known here."""
    from mdtviewer.dicom.index import scan

    if not files:
        return {}
    index = scan(files)
    by_key = {str(f.resolve()): f for f in files}
    out: dict[Path, tuple[str, tuple[str, str, str]]] = {}
    for patient in index.patients.values():
        who = (patient.patient_name, patient.patient_id, patient.birth_date)
        for st in patient.studies.values():
            for inst in st.instances():
                f = by_key.get(str(Path(inst.path).resolve())) if inst.withdrawn else None
                if f is not None:
                    out[f] = (inst.withdrawn, who)
    return out


# -- names --------------------------------------------------------------------
def _h(uid: str) -> str:
    return hashlib.sha256(str(uid).encode()).hexdigest()[:10]


def _out_base(dest: Path, ds, used: set[Path]) -> Path:
    study = _h(values.text(ds, "StudyInstanceUID") or "unknown")
    series = _h(values.text(ds, "SeriesInstanceUID") or "unknown")
    inst = _h(values.text(ds, "SOPInstanceUID") or os.urandom(8).hex())
    base = dest / f"study-{study}" / f"series-{series}" / f"img-{inst}"
    cand, n = base, 2
    while cand in used:  # two inputs with one SOP Instance UID: keep both
        cand = base.with_name(f"{base.name}-{n}")
        n += 1
    used.add(cand)
    return cand


# -- pixels -------------------------------------------------------------------
def png_bytes(frame: np.ndarray) -> bytes:
    """PNG of a uint8 HxW (grey) or HxWx3 (RGB) frame, written by Pillow."""
    from PIL import Image

    frame = np.ascontiguousarray(frame, dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(frame, mode="RGB" if frame.ndim == 3 else "L").save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def frame_starts_ms(ds, n: int) -> tuple[list[float], str]:
    """Start time (ms) of each of *n* frames, and where the timing came from.

    The viewer's own clock (:class:`mdtviewer.imaging.cine.CineClock`) over
    the header's resolved durations (:func:`mdtviewer.imaging.cine.playback_durations`),
    so an exported MP4 plays exactly as the cine does on screen.
    """
    durations, source = playback_durations(ds, n, DEFAULT_FPS)
    return CineClock(durations).starts, source


def write_mp4(path: Path, frames: Iterable[np.ndarray], starts_ms: list[float]) -> int:
    """H.264 MP4 with each frame at its own start time (variable rate when irregular)."""
    import av

    n = 0

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
            pts = int(round(starts_ms[i])) if i < len(starts_ms) else last_pts + 1
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

    atomic_write(path, _w)
    return n


# -- one file -----------------------------------------------------------------
def _is_image(ds) -> bool:
    return "PixelData" in ds and (values.integer(ds, "Rows") or 0) > 0


def _keep_rect_for(ds, options: ExportOptions) -> Rect | None:
    series = values.text(ds, "SeriesInstanceUID")
    return options.keep_rects.get(series, options.keep_rect)


def export_one(src: Path, dest: Path, options: ExportOptions, deidentifier, used: set[Path]) -> ExportItem:
    """Export one file; errors become ``item.error`` (one line, no identifiers)."""
    from mdtviewer.infra import logsafe

    item = ExportItem(source=src)
    try:
        ds = read_dataset(src)
        logsafe.register_dataset(ds)
        item.study_uid = values.text(ds, "StudyInstanceUID")
        item.patient = tuple(values.text(ds, k) for k in ("PatientName", "PatientID", "PatientBirthDate"))  # type: ignore[assignment]
        if options.patient_copy:
            _export_patient_copy(ds, src, dest, options, deidentifier, used, item)
        elif options.fmt == "dicom":
            _export_dicom(ds, src, dest, options, deidentifier, used, item)
        else:
            _export_pixels(ds, src, dest, options, deidentifier, used, item)
    except Exception as exc:  # a boundary: one input never stops the export; bugs are logged (see _reason)
        if not isinstance(exc, (MdtError, OSError)):
            log.exception("bug while exporting one input")
        for p in item.outputs:
            try:
                p.unlink()
            except OSError:
                pass
        item.outputs = []
        item.error = _reason(exc)
        item.burned_in_risk = False
        # nothing written: refused when its pixels could not be made safe, else nothing was masked at all
        item.mask_state = "refused" if isinstance(exc, CleanPixelError) else ""
        item.masked_by = ""
    return item


def _reason(exc: BaseException) -> str:
    """The one line an input's failure shows: an expected error's reason, else a bug notice."""
    if isinstance(exc, MdtError):
        return exc.reason
    if isinstance(exc, OSError):
        return " ".join(f"cannot write or read a file: {exc.strerror or type(exc).__name__}".split())
    return bug_reason(exc, "export")


def _no_text_expected(ds) -> bool:
    """A modality whose images carry no burned-in text (the rule privacy mode uses too)."""
    from mdtviewer.imaging import masking

    modality = values.text(ds, "Modality").strip().upper()
    return (
        modality in masking.NO_TEXT_MODALITIES
        and values.text(ds, "BurnedInAnnotation").strip().upper() != "YES"
        and not masking.ultrasound_regions(ds)
    )


def _keep_area(ds, options: ExportOptions, item: ExportItem):
    """The keep area of an image to be masked, or None when it is written unmasked (no text expected, or
    at the user's request; ``item.mask_state`` says which).  Raises :class:`CleanPixelError` (refused)."""
    from mdtviewer.imaging import masking

    if not options.masking:
        if options.deidentify:
            # de-identifying without masking: every image is one that may show identifiers
            if not options.unmasked_ok:
                raise CleanPixelError(
                    "masking is off: an image that may show identifiers is not written "
                    "unmasked without an explicit request (--no-mask)"
                )
            item.mask_state, item.burned_in_risk = "unmasked-at-request", True
        return None
    if _no_text_expected(ds):
        item.mask_state = "not-needed"
        return None
    try:
        if options.detect:
            area = masking.keep_area_or_detect(ds, _keep_rect_for(ds, options))
        else:
            area = masking.keep_area(ds, _keep_rect_for(ds, options))
    except CleanPixelError as exc:
        damaged = _unreadable_pixels(ds)
        if damaged is not None:  # a damaged file, not a masking matter: no template would help (QA2 #12)
            raise PixelDataError(f"damaged: its pixels cannot be read ({damaged}); not exported") from None
        if not options.unmasked_ok:
            item.mask_state = "refused"
            raise
        item.mask_state, item.burned_in_risk = "unmasked-at-request", True
        item.note = f"written unmasked at your request: {exc.reason}"
        return None
    item.masked_by = area.source
    item.mask_state = "masked"
    return area


def _unreadable_pixels(ds) -> str | None:
    """Why the frames masking looks at cannot be decoded (a damaged file), or None when they can.  Asked only
    when masking failed, to tell a damaged file from an image whose text cannot be told apart."""
    from mdtviewer.imaging import masking
    from mdtviewer.imaging.pixels import FrameSource

    try:
        src = FrameSource("(export)", dataset=ds)
        n = max(1, int(src.n_frames))
        for i in sorted(set(np.linspace(0, n - 1, min(n, masking.SAMPLE_FRAMES)).round().astype(int).tolist())):
            src.frame(i)
    except MdtError as exc:
        return exc.reason
    return None


#: transfer syntaxes whose family can hold masked pixels losslessly, and what they become
def _reencode_target(ts):
    import pydicom.uid as u

    if ts in (u.ImplicitVRLittleEndian, u.ExplicitVRLittleEndian, u.ExplicitVRBigEndian):
        return u.ExplicitVRLittleEndian
    if ts == u.DeflatedExplicitVRLittleEndian:
        return u.DeflatedExplicitVRLittleEndian
    if ts == u.RLELossless:
        return u.RLELossless
    if ts in (u.JPEGLSLossless, u.JPEGLSNearLossless):
        return u.JPEGLSLossless
    if ts in (u.JPEG2000Lossless, u.JPEG2000, u.HTJ2KLossless, u.HTJ2KLosslessRPCL, u.HTJ2K):
        return u.JPEG2000Lossless
    if ts in uids.JPEG_XL:
        # JPEG XL (lossless, JPEG recompression or lossy) -> JPEG XL Lossless, written by libjxl
        # (imagecodecs.jpegxl_encode, the library that decodes it).  Chosen over Explicit VR Little Endian
        # because it keeps the family, as every other family with a lossless form does here: whoever could
        # read the original can read the export, and a cine stays several times smaller than native.  The
        # masked pixels are the decoded ones, stored exactly (each frame is decoded again and compared); a
        # source that was lossy keeps Lossy Image Compression '01' with its ratio and method (they describe
        # the pixels' history, which a lossless re-encoding does not undo).
        return u.UID(uids.JPEGXL_LOSSLESS)
    return None


def _reencode(ds, original_ts) -> str:
    """Store *ds*'s (native, masked) pixels in the original transfer syntax's family where that can hold
    them losslessly; returns a note when the syntax changed (empty when it did not)."""
    import pydicom.uid as u

    original_ts = u.UID(str(original_ts or u.ExplicitVRLittleEndian))
    target = _reencode_target(original_ts)
    if target is None:
        ds.file_meta.TransferSyntaxUID = u.ExplicitVRLittleEndian
        why = (
            "no lossless encoder in its family"
            if not original_ts.is_compressed or "Lossless" in original_ts.name
            else "re-compressing lossily would change the kept pixels"
        )
        return f"stored as Explicit VR Little Endian (was {original_ts.name}: {why})"
    if target in (u.ExplicitVRLittleEndian, u.DeflatedExplicitVRLittleEndian):
        ds.file_meta.TransferSyntaxUID = target
        return (
            ""
            if target == original_ts or original_ts == u.ImplicitVRLittleEndian
            else f"stored as {target.name} (was {original_ts.name})"
        )
    if target == uids.JPEGXL_LOSSLESS:
        return _reencode_jpegxl(ds, original_ts)
    try:
        arr = None
        if target == u.JPEG2000Lossless and str(ds.get("PhotometricInterpretation", "")) == "RGB":
            # lossless colour JPEG 2000 is YBR_RCT (the reversible colour transform), as the US IOD requires
            arr = ds.pixel_array
            ds.PhotometricInterpretation = "YBR_RCT"
        ds.compress(target, arr)
    except Exception as exc:  # noqa: BLE001 - an encoder that refuses these pixels: store them natively
        log.info("re-encoding masked pixels as %s failed: %s", target.name, type(exc).__name__)
        if (
            str(ds.get("PhotometricInterpretation", "")) == "YBR_RCT"
            and "PixelData" in ds
            and not ds.file_meta.TransferSyntaxUID.is_compressed
        ):
            ds.PhotometricInterpretation = "RGB"
        ds.file_meta.TransferSyntaxUID = u.ExplicitVRLittleEndian
        return f"stored as Explicit VR Little Endian (was {original_ts.name}: its encoder refused these pixels)"
    return "" if target == original_ts else f"stored as {target.name} (was {original_ts.name})"


class _JpegXLError(PixelDataError):
    """JPEG XL pixels that cannot be decoded for masking (damaged pixels, as any other), or re-encoded exactly."""

    category = "decode"


def _transfer_syntax(ds) -> str:
    return str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") or "")


def _jpegxl_to_native(ds) -> None:
    """Decode a JPEG XL instance's frames into native Pixel Data (Explicit VR Little Endian), in place.

    pydicom 3.0 has no JPEG XL decoder (masking decodes through it), so the frames are decoded here
    by libjxl, within the same budget the viewer keeps (:func:`mdtviewer.imaging.codecs.check_frame_budget`:
    a frame never decodes to more than its compressed bytes can honestly hold), and must have the size
    the header declares.  Colour comes back as RGB (libjxl undoes XYB / the JPEG's YCbCr itself).
    """
    from pydicom.encaps import generate_frames
    from pydicom.uid import ExplicitVRLittleEndian

    from mdtviewer.imaging import codecs

    ts = _transfer_syntax(ds)
    rows, cols = values.integer(ds, "Rows") or 0, values.integer(ds, "Columns") or 0
    spp = values.integer(ds, "SamplesPerPixel") or 1
    bits = values.integer(ds, "BitsAllocated") or 8
    n = max(values.integer(ds, "NumberOfFrames") or 1, 1)
    if rows <= 0 or cols <= 0 or spp not in (1, 3) or bits not in (8, 16):
        raise _JpegXLError(f"JPEG XL image of {cols}x{rows}, {spp} sample(s), {bits} bits: cannot mask it")
    spec = codecs.FrameSpec(rows, cols, spp, bits, values.integer(ds, "BitsStored") or bits,
                            values.integer(ds, "PixelRepresentation") or 0,
                            values.text(ds, "PhotometricInterpretation"), 0, ts)
    frame_bytes = rows * cols * spp * (bits // 8)
    out = np.empty((n, rows, cols, 3) if spp == 3 else (n, rows, cols), np.uint8 if bits == 8 else np.uint16)
    k = 0
    try:
        for k, data in enumerate(generate_frames(ds.PixelData, number_of_frames=n)):
            if k >= n:
                break
            why = codecs.check_frame_budget(ts, len(data), frame_bytes)
            if why:
                raise _JpegXLError(why)
            arr = codecs.decode_jpegxl(data, spec).array
            if arr.shape != out.shape[1:]:
                raise _JpegXLError(f"JPEG XL frame {k + 1} is {arr.shape}, the header says {out.shape[1:]}")
            out[k] = arr
    except (ValueError, TypeError) as exc:  # pydicom's fragment parser on damaged encapsulation
        raise _JpegXLError(f"JPEG XL Pixel Data cannot be split into frames: {type(exc).__name__}") from None
    if k + 1 < n:
        raise _JpegXLError(f"JPEG XL Pixel Data holds {k + 1} frame(s), the header says {n}")
    if spp == 3:
        ds.PhotometricInterpretation = "RGB"
        ds.PlanarConfiguration = 0
    del ds.PixelData
    ds.PixelData = np.ascontiguousarray(out).astype(out.dtype.newbyteorder("<"), copy=False).tobytes()
    ds["PixelData"].VR = "OW" if bits > 8 else "OB"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian


def _reencode_jpegxl(ds, original_ts) -> str:
    """Encode *ds*'s native (masked) frames as JPEG XL Lossless, each checked to decode to the same
    pixels; on any refusal the pixels stay native (Explicit VR Little Endian) and the note says so."""
    import imagecodecs
    from pydicom.encaps import encapsulate

    bits = values.integer(ds, "BitsAllocated") or 8
    try:
        if values.integer(ds, "PixelRepresentation"):
            raise _JpegXLError("signed pixels")
        frames = ds.pixel_array
        if (values.integer(ds, "NumberOfFrames") or 1) <= 1 and frames.ndim == (3 if frames.shape[-1] == 3 else 2):
            frames = frames[np.newaxis]
        encoded: list[bytes] = []
        for f in frames:
            f = np.ascontiguousarray(f)
            data = imagecodecs.jpegxl_encode(f, lossless=True, bitspersample=bits if bits > 8 else None)
            if not np.array_equal(imagecodecs.jpegxl_decode(data).reshape(f.shape), f):
                raise _JpegXLError("the encoder did not keep the pixels exactly")
            encoded.append(bytes(data))
    except (_JpegXLError, imagecodecs.JpegxlError, ValueError) as exc:
        log.info("re-encoding masked pixels as JPEG XL Lossless failed: %s", type(exc).__name__)
        from pydicom.uid import ExplicitVRLittleEndian

        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        return f"stored as Explicit VR Little Endian (was {_ts_name(original_ts)}: its encoder refused these pixels)"
    del ds.PixelData
    ds.PixelData = encapsulate(encoded, has_bot=True)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = uids.JPEGXL_LOSSLESS
    if str(original_ts) == uids.JPEGXL_LOSSLESS:
        return ""
    return f"stored as JPEG XL Lossless (was {_ts_name(original_ts)})"


def _ts_name(ts) -> str:
    names = {uids.JPEGXL_LOSSLESS: "JPEG XL Lossless", uids.JPEGXL_RECOMPRESSION: "JPEG XL JPEG Recompression",
             uids.JPEGXL: "JPEG XL"}
    return names.get(str(ts), getattr(ts, "name", str(ts)))


def _save_dicom(ds, out: Path) -> None:
    """Save *ds* atomically.  pydicom 3.0 cannot write a JPEG XL transfer syntax (it does not know these
    UIDs are encapsulated): the data set is encoded as Explicit VR Little Endian, as every encapsulated
    syntax is, and the file meta written on its own naming the real syntax."""
    if _transfer_syntax(ds) not in uids.JPEG_XL:
        atomic_save_dataset(ds, out)
        return
    from pydicom.dataset import FileMetaDataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info

    meta = FileMetaDataset()
    for elem in ds.file_meta:
        meta[elem.tag] = elem
    head = DicomBytesIO()
    head.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(head, meta, enforce_standard=True)
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    saved_meta = ds.file_meta
    try:
        ds.file_meta = FileMetaDataset()
        write_dataset(body, ds)
    finally:
        ds.file_meta = saved_meta
    atomic_write_bytes(out, head.getvalue() + body.getvalue())


def _export_dicom(ds, src, dest, options, deidentifier, used, item) -> None:
    import pydicom

    from mdtviewer.imaging import masking

    masked = False
    syntax_note = ""
    if _is_image(ds):
        area = _keep_area(ds, options, item)
        if area is not None:
            original_ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
            if str(original_ts or "") in uids.JPEG_XL:
                _jpegxl_to_native(ds)  # pydicom, which masking decodes through, has no JPEG XL decoder
            masking.clean_dataset_pixels(ds, area=area)
            syntax_note = _reencode(ds, original_ts)
            masked = True
    if options.deidentify:
        deidentifier.deidentify(ds, pixels_cleaned=masked)
    elif masked:
        ds.BurnedInAnnotation = "NO"
    if item.mask_state == "unmasked-at-request":
        ds.BurnedInAnnotation = "YES"  # the header must not suggest the pixels are clean
    if "SOPClassUID" not in ds or "SOPInstanceUID" not in ds:
        raise DicomInputError("not a composite DICOM instance (no SOP Class/Instance UID): not exported")
    meta = ds.file_meta
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "MDTVIEWER"
    if "TransferSyntaxUID" not in meta:
        meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    out = _out_base(dest, ds, used).with_suffix(".dcm")
    if not options.deidentify and not masked and not options.patient_copy:
        atomic_write_bytes(out, Path(src).read_bytes())  # identifiable, unchanged: the original bytes
    else:
        _save_dicom(ds, out)
    item.outputs.append(out)
    if syntax_note:
        item.note = "; ".join(n for n in (item.note, syntax_note) if n)


#: person names a patient copy keeps (the patient's own); every other PN element names staff or others
PATIENT_NAMES = frozenset({"PatientName", "PatientBirthName", "PatientMotherBirthName", "OtherPatientNames",
                           "ResponsiblePerson"})
#: other elements that identify staff or the machine they used (removed wherever they occur)
STAFF_ELEMENTS = frozenset({
    "StationName", "OperatorIdentificationSequence", "PerformingPhysicianIdentificationSequence",
    "ReferringPhysicianIdentificationSequence", "PhysiciansReadingStudyIdentificationSequence",
    "PhysiciansOfRecordIdentificationSequence", "RequestingPhysicianIdentificationSequence",
    "ReferringPhysicianAddress", "ReferringPhysicianTelephoneNumbers", "ContentCreatorIdentificationCodeSequence",
    "VerifyingObserverIdentificationCodeSequence", "PersonIdentificationCodeSequence",
})


def remove_staff_identities(ds) -> int:
    """Remove staff names and identities from *ds* (nested sequences too); returns how many elements went.

    Every person name (PN) other than the patient's own is removed (Operators' Name, Performing,
    Referring, Reading and Requesting Physician's Name, reviewers and verifiers...), with the
    elements in :data:`STAFF_ELEMENTS`."""
    removed = 0
    for elem in list(ds):
        kw = elem.keyword
        if elem.VR == "SQ":
            if kw in STAFF_ELEMENTS:
                del ds[elem.tag]
                removed += 1
                continue
            for item in elem.value or []:
                removed += remove_staff_identities(item)
        elif (elem.VR == "PN" and kw not in PATIENT_NAMES) or kw in STAFF_ELEMENTS:
            del ds[elem.tag]
            removed += 1
    return removed


def _export_patient_copy(ds, src, dest, options, deidentifier, used, item) -> None:
    """DICOM with staff identities removed, plus PNG/MP4 of the same (masked) pixels."""
    if not _is_image(ds):
        raise ExportError("not in a patient copy: report documents name the staff (images only)")
    remove_staff_identities(ds)
    _export_dicom(ds, src, dest, options, deidentifier, used, item)
    base = item.outputs[-1].with_suffix("")
    pixel_ds = read_dataset(src)  # the pixels as stored (the DICOM pass re-encoded its copy)
    keep = None
    area = _keep_area(pixel_ds, options, item)
    if area is not None:
        keep = area.mask(int(pixel_ds.Rows), int(pixel_ds.Columns))
    from mdtviewer.imaging import masking

    n = masking.n_frames(pixel_ds)

    def frames():
        for f in masking.display_frames(src, pixel_ds):
            yield masking.apply_mask(f, keep, 0) if keep is not None else f

    if n > 1:
        starts, _source = frame_starts_ms(pixel_ds, n)
        out = base.with_suffix(".mp4")
        write_mp4(out, frames(), starts)
        item.outputs.append(out)
    else:
        for f in frames():
            out = base.with_suffix(".png")
            atomic_write_bytes(out, png_bytes(f))
            item.outputs.append(out)


def _export_pixels(ds, src, dest, options, deidentifier, used, item) -> None:
    from mdtviewer.imaging import masking

    if not _is_image(ds):
        if uids.is_sr_class(values.text(ds, "SOPClassUID")):
            _export_report_text(ds, dest, options, deidentifier, used, item)
            return
        raise ExportError(f"not an image: cannot write {options.fmt.upper()}; export it as DICOM")
    keep = None
    area = _keep_area(ds, options, item)
    if area is not None:
        keep = area.mask(int(ds.Rows), int(ds.Columns))
    # names from the new UIDs when de-identifying, so no export reveals the originals
    naming = ds
    if options.deidentify:
        import copy

        naming = copy.copy(ds)
        for kw in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
            if kw in ds:
                setattr(naming, kw, deidentifier.new_uid(values.text(ds, kw)))
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
        raise ExportError(f"format must be one of {', '.join(FORMATS)}")
    if options.patient_copy and options.deidentify:
        raise ExportError("a patient copy keeps the patient's identity: it is not de-identified")
    if not options.deidentify and not options.identifiable and not options.patient_copy:
        raise ExportError("refusing to export identifiable data: de-identify, or say identifiable explicitly")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if deidentifier is None:
        deidentifier = Deidentifier(keep_dates=options.keep_dates)
    files, skipped, problems = collect_inputs(paths)
    report = ExportReport(dest=dest, skipped=skipped)
    gone = withdrawn_inputs(files)
    if gone and not options.include_withdrawn:
        report.withdrawn = [(f, *gone[f]) for f in files if f in gone]
        files = [f for f in files if f not in gone]
    total = len(problems) + len(files)
    for k, prob in enumerate(problems):  # a DICOMDIR's missing or refused references are failed inputs
        item = ExportItem(source=prob.path, error=prob.reason)
        report.items.append(item)
        if progress is not None:
            progress(k + 1, total, item)
    used: set[Path] = set()
    for k, f in enumerate(files, len(problems)):
        item = export_one(f, dest, options, deidentifier, used)
        if f in gone:  # exported at the user's request: said on its line
            item.note = f"WITHDRAWN: {gone[f][0]}" + (f"; {item.note}" if item.note else "")
        report.items.append(item)
        if progress is not None:
            progress(k + 1, total, item)
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
            "masked": options.masking,
            "masked_images": sum(1 for i in its if i.mask_state == "masked"),
            "unmasked_at_request": sum(1 for i in its if i.mask_state == "unmasked-at-request"),
            "refused": sum(1 for i in its if i.mask_state == "refused"),
            "dates": "shifted" if options.keep_dates else "removed",
            "patient_copy": options.patient_copy,
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


def run_export(
    paths: Iterable[str | os.PathLike],
    dest: str | os.PathLike,
    options: ExportOptions,
    *,
    password: str | None = None,
    archive_name: str | None = None,
    progress: Callable[[int, int, ExportItem], None] | None = None,
) -> ExportReport:
    """One call for a whole export: into *dest*, or, with a *password*, into one AES-256 7z archive there.

    Raises :class:`ExportError` for options that cannot be honoured (an
    identifiable export must be encrypted) and
    :class:`mdtviewer.governance.archive.ArchiveError` when the archive cannot
    be written; a failing input is reported in its item, never raised.
    """
    if options.identifiable and not options.patient_copy and password is None:
        raise ExportError("an identifiable export must be encrypted")
    if password is not None:
        return export_encrypted(paths, dest, password, options, archive_name=archive_name, progress=progress)
    return export(paths, dest, options, progress=progress)
