"""Robustness beyond our corpus: every file pydicom ships for its own tests
(odd transfer syntaxes, character sets, palettes, DICOMDIR variants, raw data
sets, truncated and damaged files, non-DICOM files beside them).

For each file: header read, full read and every frame finish within a few
seconds and raise nothing but :class:`DicomInputError`; where pydicom decodes
the pixels, our frames have its shape and (within a stated tolerance) its
values.  Plus regressions for what running over these files (and damaging
them) found.
"""

from __future__ import annotations

import json
import logging
import py_compile
import struct
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from mdtviewer.dicom.reader import read_dataset, read_header, read_info, read_instance
from mdtviewer.imaging.pixels import FrameSource
from mdtviewer.infra.errors import DecodeError, DicomInputError, NotDicomError, TruncatedFileError

pytestmark = pytest.mark.filterwarnings("ignore")

DATA = Path(pydicom.__file__).parent / "data"
#: files pydicom ships as test data (its code and caches are not test data)
FILES = sorted(
    p for sub in ("test_files", "charset_files", "palettes") for p in (DATA / sub).rglob("*")
    if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".py", ".pyc")
)
NOT_DICOM_SUFFIXES = {".txt", ".md", ".json", ".dump", ".gz", ".icc"}
#: per file: header + full read + every frame (they take milliseconds; a hang is a bug)
TIME_LIMIT_S = 5.0
#: JPEG decoders differ by up to ~13 grey levels (toolchain notes)
JPEG_TOLERANCE = 13
#: YBR -> RGB: Pillow's integer conversion and pydicom's float one round differently
YBR_TOLERANCE = 2


def _rel(p: Path) -> str:
    return str(p.relative_to(DATA))


def _pydicom_pixels(path: Path):
    """(data set, pixel array) from pydicom, or None where pydicom cannot decode."""
    logging.getLogger("pydicom").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(path, force=True)
            return ds, ds.pixel_array
        except Exception:  # noqa: BLE001 - pydicom's failures are not ours to judge here
            return None


def _exercise(path: Path) -> dict:
    """Everything the viewer does with a file; typed errors are recorded, others propagate."""
    out: dict = {"frames": None}
    try:
        inst, _fields = read_header(path)
        out["kind"] = inst.kind
        assert read_instance(path).kind == inst.kind  # the two header routes agree
    except DicomInputError as exc:
        out["header_error"] = exc
        out["kind"] = None
    try:
        ds = read_dataset(path)
    except DicomInputError as exc:
        out["read_error"] = exc
        return out
    if out["kind"] in ("image", "cine"):
        try:
            src = FrameSource(path, ds)
            out["frames"] = [src.frame(i) for i in range(src.n_frames)]
            out["raw"] = [src.frame_raw(i) for i in range(src.n_frames)]
            out["source"] = src
        except DicomInputError as exc:
            out["pixel_error"] = exc
    return out


@pytest.mark.parametrize("path", FILES, ids=_rel)
def test_bundled_file(path: Path):
    result: dict = {}
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.update(_exercise(path))
        except BaseException as exc:  # noqa: BLE001 - re-raised below with the file named
            failure.append(exc)

    t0 = time.perf_counter()
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(30)
    elapsed = time.perf_counter() - t0
    assert not worker.is_alive(), f"{_rel(path)}: still running after 30 s"
    if failure:
        raise AssertionError(f"{_rel(path)}: {type(failure[0]).__name__} escaped") from failure[0]
    assert elapsed < TIME_LIMIT_S, f"{_rel(path)} took {elapsed:.1f} s"
    for key in ("header_error", "read_error", "pixel_error"):
        if key in result:
            reason = str(result[key])
            assert reason and "\n" not in reason and len(reason) < 300

    if path.suffix in NOT_DICOM_SUFFIXES or path.name == "README":
        assert isinstance(result.get("header_error"), NotDicomError), result
        return

    ref = _pydicom_pixels(path)
    if ref is None or result["kind"] not in ("image", "cine"):
        return
    ds, arr = ref
    assert result.get("frames") is not None, f"pydicom decodes {_rel(path)}, we said: {result.get('pixel_error')}"
    src = result["source"]
    frames, raws = result["frames"], result["raw"]
    ref_frames = arr if src.n_frames > 1 else arr[None]
    assert len(frames) == len(ref_frames)
    ts = str(ds.file_meta.get("TransferSyntaxUID", ""))
    tolerance = JPEG_TOLERANCE if ts.startswith("1.2.840.10008.1.2.4.5") else (
        YBR_TOLERANCE if src.photometric.startswith("YBR") else 0)
    for ours, raw, theirs in zip(frames, raws, ref_frames):
        assert ours.dtype == np.uint8 and ours.flags.c_contiguous
        if src.photometric == "PALETTE COLOR":
            assert ours.shape == theirs.shape + (3,)
            continue
        assert ours.shape == theirs.shape
        if src.is_color:
            expected = theirs if theirs.dtype == np.uint8 else theirs >> max(0, int(ds.BitsStored) - 8)
            got = ours
        else:
            from pydicom.pixels import apply_modality_lut

            expected, got = apply_modality_lut(theirs, ds), raw
        diff = np.abs(got.astype(np.float64) - np.asarray(expected, dtype=np.float64)).max()
        if not src.is_color:  # rescaled values: float32 here, float64 in pydicom
            tolerance = max(tolerance, 1e-5 * float(np.abs(expected).max()))
        assert diff <= tolerance, f"{_rel(path)}: differs from pydicom by {diff}"


def test_the_bundled_files_are_there():
    """The test above must not pass by finding nothing (pydicom 3 ships ~200)."""
    assert len(FILES) > 150
    assert sum(1 for p in FILES if p.suffix == ".dcm") > 90


def test_check_cli_over_all_bundled_files(tmp_path):
    """``mdtviewer check --json`` over pydicom's whole data folder: a record per
    instance, every failure typed and worded, no 'unexpected' error."""
    proc = subprocess.run([sys.executable, "-m", "mdtviewer", "check", "--json", str(DATA)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr  # there are damaged files among them
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(records) > 150
    for rec in records:
        assert "unexpected" not in (rec["error"] or ""), rec
        if not rec["ok"]:
            assert rec["error"] and rec["error_category"], rec
    by_name = {Path(r["path"]).name: r for r in records}
    assert by_name["MR_truncated.dcm"]["error_category"] == "truncated"
    assert by_name["JPEG-lossy.dcm"]["ok"]  # pydicom's libjpeg fails it; libjpeg-turbo reads it
    assert by_name["no_meta.dcm"]["ok"] and "stray leading byte" in by_name["no_meta.dcm"]["note"]
    # python byte code beside the data is not DICOM: skipped, never reported as damaged DICOM
    assert not any(r["path"].endswith(".pyc") for r in records)


# ------------------------------------------------------------------ regressions
def test_python_bytecode_is_not_a_raw_dataset(tmp_path):
    """A .pyc starts with bytes that parse as (0000,0000) with length 0, then
    (0D00,0000) ...: it was taken for a raw data set and reported 'truncated'.
    A group length is always 4 bytes: such a chain is not DICOM."""
    src = tmp_path / "mod.py"
    src.write_text("def f():\n    return 42\n" * 50)
    pyc = Path(py_compile.compile(str(src), cfile=str(tmp_path / "mod.pyc")))
    with pytest.raises(NotDicomError):
        read_dataset(pyc)
    from mdtviewer.dicom.index import scan

    ix = scan([tmp_path])
    assert ix.problems == [] and ix.skipped_non_dicom == 2


def test_jpeg_lossy_12_bit_matches_gdcm_reference():
    """pydicom's pylibjpeg cannot decode this JPEG Extended file; the values GDCM
    gives (pydicom's own GDCM test) are what we show."""
    with FrameSource(get_testdata_file("JPEG-lossy.dcm")) as src:
        raw = src.frame_raw(0)
    assert raw.shape == (1024, 256) and raw[420, 140] == 244 and raw[230, 120] == 95


def _rle_file(tmp_path: Path, frame: bytes) -> Path:
    from pydicom.encaps import encapsulate

    ds = pydicom.dcmread(get_testdata_file("MR_small_RLE.dcm"))
    ds.PixelData = encapsulate([frame])
    path = tmp_path / "rle.dcm"
    ds.save_as(path)
    return path


def test_rle_segment_that_overruns_its_frame_is_no_panic(tmp_path):
    """pylibjpeg-rle panics (a Rust PanicException: a BaseException that every
    ``except Exception`` lets through, killing a viewer worker or the check
    command) when a damaged segment expands past the frame."""
    n = 64 * 64
    seg = b"\x81\x07" * (n // 128 + 4)  # runs of 128 bytes: more than the frame holds
    frame = struct.pack("<16L", 2, 64, 64 + len(seg), *([0] * 13)) + seg + seg
    with FrameSource(_rle_file(tmp_path, frame)) as src:
        raw = src.frame_raw(0)  # extra decoded bytes are ignored, as pydicom does
    assert raw.shape == (64, 64) and (raw == 0x0707).all()


@pytest.mark.parametrize("damage, reason", [
    ("short", "decodes to 1,280 of 4,096 bytes"), ("segments", r"3 segment\(s\) but"), ("offsets", "segment offsets"),
])
def test_damaged_rle_frames_are_decode_errors(tmp_path, damage, reason):
    n = 64 * 64
    seg = b"\x81\x00" * (n // 128)  # runs of 128 zeros: exactly one frame's bytes
    if damage == "short":
        seg = (b"\x7f" + bytes(128)) * 10  # 10 literal runs: 1,280 bytes of 4,096
        frame = struct.pack("<16L", 2, 64, 64 + len(seg), *([0] * 13)) + seg + seg
    elif damage == "segments":
        frame = struct.pack("<16L", 3, 64, 64 + len(seg), 64 + 2 * len(seg), *([0] * 12)) + seg * 3
    else:
        frame = struct.pack("<16L", 2, 64 + len(seg), 64, *([0] * 13)) + seg + seg
    with FrameSource(_rle_file(tmp_path, frame)) as src, pytest.raises(DecodeError, match=reason):
        src.frame(0)


def test_damaged_vr_in_file_meta_is_read_with_the_standard_vr(tmp_path):
    """A flipped byte in a file-meta VR used to escape as pydicom's
    NotImplementedError at first use; every group-0002 element has one fixed
    VR, so it is read with that (and said in the note)."""
    data = bytearray(Path(get_testdata_file("CT_small.dcm")).read_bytes())
    at = data.find(b"\x02\x00\x10\x00UI")  # Transfer Syntax UID
    data[at + 4:at + 6] = b"FI"
    path = tmp_path / "badvr.dcm"
    path.write_bytes(bytes(data))
    inst = read_instance(path)
    assert inst.kind == "image" and inst.transfer_syntax == "1.2.840.10008.1.2.1"
    assert "damaged VR" in inst.note and "(0002,0010)" in inst.note
    with FrameSource(path) as src:
        assert src.frame(0).shape == (128, 128)


def test_damaged_segmented_palette_is_a_typed_error(testdata, tmp_path):
    """An unknown segment type in a segmented palette LUT used to escape as
    pydicom's ValueError when the frame source was opened."""
    ds = pydicom.dcmread(testdata / "us_aloka_palette16_implicit_le.dcm")
    lut = bytearray(ds.SegmentedRedPaletteColorLookupTableData)
    lut[0:2] = b"\xff\x00"  # segment type 255
    ds.SegmentedRedPaletteColorLookupTableData = bytes(lut)
    path = tmp_path / "badlut.dcm"
    ds.save_as(path)
    from mdtviewer.infra.errors import PixelDataError

    with pytest.raises(PixelDataError, match="palette colour look-up table in the header is damaged"):
        FrameSource(path)


def test_deflated_stream_cut_short_is_truncated(tmp_path):
    data = Path(get_testdata_file("image_dfl.dcm")).read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[:len(data) - 40])
    with pytest.raises(TruncatedFileError):
        read_dataset(path)
    # the trailing bytes after a complete deflate stream are not data: still fine
    path.write_bytes(data[:len(data) - 3])
    assert read_info(read_dataset(path)).transfer_syntax == "1.2.840.10008.1.2.1.99"


# ------------------------------------------------------------------ palettes
PALETTES = sorted((DATA / "palettes").glob("*.dcm"))
_PALETTE_KEYWORDS = [f"{pre}{c}PaletteColorLookupTable{post}" for c in ("Red", "Green", "Blue")
                     for pre, post in (("", "Descriptor"), ("", "Data"), ("Segmented", "Data"))]


@pytest.mark.parametrize("palette", PALETTES, ids=lambda p: p.name)
def test_well_known_palettes_normal_and_segmented(palette, tmp_path):
    """pydicom's well-known colour palettes (four of them segmented LUTs) put on
    a real 8-bit PALETTE COLOR ultrasound image: the frame we show is the
    palette applied to the stored indices."""
    from pydicom.pixels import apply_color_lut

    ds = pydicom.dcmread(get_testdata_file("examples_palette.dcm"))
    pal = pydicom.dcmread(palette)
    for kw in _PALETTE_KEYWORDS:
        if kw in ds:
            delattr(ds, kw)
        if kw in pal:
            ds[kw] = pal[kw]
    path = tmp_path / "pal.dcm"
    ds.save_as(path)
    expected = apply_color_lut(ds.pixel_array, pal)
    if expected.dtype != np.uint8:
        expected = (expected >> 8) if expected.max() > 255 else expected
    with FrameSource(path) as src:
        got = src.frame(0)
    assert got.shape == ds.pixel_array.shape + (3,)
    assert np.array_equal(got, expected.astype(np.uint8))
    assert len(np.unique(got.reshape(-1, 3), axis=0)) > 16  # a real colour image, not one flat colour


def test_palettes_include_segmented_ones():
    assert sum("SegmentedRedPaletteColorLookupTableData" in pydicom.dcmread(p) for p in PALETTES) >= 4
