"""The index's one-pass header walk (mdtviewer.dicom.fastheader) gives exactly what
the full reader gives, and hands every irregular file to the full reader
(which words the reason).  Plus the folder walk the index plans with."""

from __future__ import annotations

import dataclasses
import os
import struct
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from mdtviewer.dicom import reader as reading
from mdtviewer.dicom.fastheader import FIRST_READ, MAX_READ, read_header_fast
from mdtviewer.dicom.index import scan
from mdtviewer.infra.errors import DicomInputError, MalformedHeaderError, TruncatedFileError

pytestmark = pytest.mark.filterwarnings("ignore")

PYDICOM_DATA = Path(pydicom.__file__).parent / "data"


def _all_files(testdata: Path) -> list[Path]:
    ours = [p for p in testdata.rglob("*") if p.is_file()]
    theirs = [p for sub in ("test_files", "charset_files", "palettes") for p in (PYDICOM_DATA / sub).rglob("*")
              if p.is_file() and p.suffix not in (".py", ".pyc")]
    return sorted(ours) + sorted(theirs)


def _slow(path: Path):
    ds = reading.read_dataset(path, stop_before_pixels=True, specific_tags=reading.HEADER_TAGS)
    return reading.instance_from_dataset(path, ds), {k: reading._text(ds, k) for k in reading.HIERARCHY_FIELDS}


def test_fast_walk_equals_full_reader_on_every_file(testdata):
    fast = 0
    for path in _all_files(testdata):
        view = read_header_fast(path, reading._HEADER_TAG_SET)
        if view is None:
            continue
        fast += 1
        try:
            expected = _slow(path)
        except DicomInputError as exc:
            # the full reader refuses only what instance building refuses (no SOP Instance UID)
            with pytest.raises(type(exc)):
                reading.instance_from_dataset(path, view)
            continue
        got = (reading.instance_from_dataset(path, view), {k: reading._text(view, k) for k in reading.HIERARCHY_FIELDS})
        assert dataclasses.asdict(got[0]) == dataclasses.asdict(expected[0]), path
        assert got[1] == expected[1], path
        assert reading.read_header(path)[0] == expected[0]
    assert fast > 150  # the fast walk really is the common path


def test_non_ascii_names_and_sequences_go_through_pydicom(testdata):
    """Values that need a character set or a sequence are converted by pydicom
    (lazily), so names in Greek / Japanese / ... come out right."""
    path = PYDICOM_DATA / "charset_files" / "chrGreek.dcm"
    view = read_header_fast(path, reading._HEADER_TAG_SET)
    assert view is not None
    assert reading._text(view, "PatientName") == str(pydicom.dcmread(path).PatientName)
    sr = testdata / "sr_enhanced_tid1500_dcmjs.dcm"
    inst, _ = reading.read_header(sr)
    assert read_header_fast(sr, reading._HEADER_TAG_SET) is not None
    assert inst.kind == "sr" and inst.title == "Imaging Measurement Report"


@pytest.mark.parametrize("name", [
    "bad_second_meta_group_in_dataset.dcm",      # stale second meta block
    "bad_no_preamble_no_file_meta_ct.dcm",       # raw data set
    "bad_truncated_dataset_rtplan.dcm",          # ends inside a sequence
    "bad_partial_dataset_truncated_gh179b.dcm",  # silently half-read by pydicom
    "bad_meta_missing_transfer_syntax.dcm",
])
def test_irregular_files_take_the_full_reader(testdata, name):
    path = testdata / name
    assert read_header_fast(path, reading._HEADER_TAG_SET) is None
    try:
        expected = ("ok", _slow(path)[0])
    except DicomInputError as exc:
        expected = ("error", str(exc))
    try:
        got = ("ok", reading.read_header(path)[0])
    except DicomInputError as exc:
        got = ("error", str(exc))
    assert got == expected


def test_big_endian_and_deflated_take_the_full_reader():
    for name in ("MR_small_bigendian.dcm", "image_dfl.dcm"):
        path = Path(get_testdata_file(name, read=False))
        assert read_header_fast(path, reading._HEADER_TAG_SET) is None
        assert reading.read_header(path)[0].kind == "image"


def _nested(depth: int, undefined: bool) -> bytes:
    """A data set whose Content Sequence nests *depth* levels."""
    inner = b""
    for _ in range(depth):
        if undefined:
            item = struct.pack("<HHL", 0xFFFE, 0xE000, 0xFFFFFFFF) + inner + struct.pack("<HHL", 0xFFFE, 0xE00D, 0)
            inner = (struct.pack("<HH2sHL", 0x0040, 0xA730, b"SQ", 0, 0xFFFFFFFF) + item
                     + struct.pack("<HHL", 0xFFFE, 0xE0DD, 0))
        else:
            item = struct.pack("<HHL", 0xFFFE, 0xE000, len(inner)) + inner
            inner = struct.pack("<HH2sHL", 0x0040, 0xA730, b"SQ", 0, len(item)) + item
    return inner


def _with_meta(body: bytes, ts: str = "1.2.840.10008.1.2.1") -> bytes:
    def el(tag: int, vr: bytes, value: bytes) -> bytes:
        if len(value) % 2:
            value += b"\0"
        if vr in (b"OB",):
            return struct.pack("<HH2sHL", 2, tag, vr, 0, len(value)) + value
        return struct.pack("<HH2sH", 2, tag, vr, len(value)) + value

    elems = (el(1, b"OB", b"\0\1") + el(2, b"UI", b"1.2.840.10008.5.1.4.1.1.88.33")
             + el(3, b"UI", b"1.2.3.4") + el(0x10, b"UI", ts.encode()))
    meta = struct.pack("<HH2sHL", 2, 0, b"UL", 4, len(elems)) + elems
    head = (struct.pack("<HH2sH", 8, 0x16, b"UI", 30) + b"1.2.840.10008.5.1.4.1.1.88.33\0"
            + struct.pack("<HH2sH", 8, 0x18, b"UI", 8) + b"1.2.3.4\0")
    return bytes(128) + b"DICM" + meta + head + body


@pytest.mark.parametrize("undefined", [True, False], ids=["undefined-length", "defined-length"])
def test_nesting_bombs_are_left_to_the_full_reader(tmp_path, undefined):
    ok = tmp_path / "ok.dcm"
    ok.write_bytes(_with_meta(_nested(reading.MAX_SEQUENCE_DEPTH, undefined)))
    assert read_header_fast(ok, reading._HEADER_TAG_SET) is not None
    assert reading.read_header(ok)[0].kind == "sr"
    for depth in (reading.MAX_SEQUENCE_DEPTH + 1, 5000):
        bomb = tmp_path / f"bomb{depth}.dcm"
        bomb.write_bytes(_with_meta(_nested(depth, undefined)))
        assert read_header_fast(bomb, reading._HEADER_TAG_SET) is None  # the walk never recurses
        with pytest.raises(MalformedHeaderError, match="nesting deeper than 64"):
            reading.read_dataset(bomb)
        try:  # a header read skips the sequence it does not need, or refuses it: never a crash
            assert reading.read_header(bomb)[0].kind == "sr"
        except MalformedHeaderError as exc:
            assert str(exc) == "nesting deeper than 64 sequences"


def test_truncation_anywhere_is_never_accepted(testdata, tmp_path):
    """Cut a good file at many offsets: the fast walk accepts a cut only where
    the full reader also reads a complete header (an element boundary)."""
    data = (testdata / "us_philips_cx50_palette_explicit_le.dcm").read_bytes()
    pixel_at = data.find(b"\xe0\x7f\x10\x00")
    path = tmp_path / "cut.dcm"
    for cut in range(140, pixel_at + 4, 7):
        path.write_bytes(data[:cut])
        view = read_header_fast(path, reading._HEADER_TAG_SET)
        if view is None:
            continue
        ds = reading.read_dataset(path, stop_before_pixels=True)  # must not raise either
        assert not reading.read_info(ds).pixel_data_follows and not view.mdt_read_info.pixel_data_follows
    with pytest.raises(TruncatedFileError):
        path.write_bytes(data[:pixel_at + 4 + 50])  # inside Pixel Data's own header/value
        reading.read_dataset(path)


@pytest.mark.parametrize("extra", [FIRST_READ, MAX_READ + 1000], ids=["re-read", "beyond-max"])
def test_headers_longer_than_the_first_read(testdata, tmp_path, extra):
    ds = pydicom.dcmread(testdata / "us_ge_logiq700_rgb_explicit_le.dcm")
    ds.add_new(0x00091010, "LO", "PRIVATE")
    ds.add_new(0x00091011, "OB", b"\x01" * extra)
    path = tmp_path / "big.dcm"
    ds.save_as(path)
    view = read_header_fast(path, reading._HEADER_TAG_SET)
    assert (view is not None) == (extra < MAX_READ)
    inst, _ = reading.read_header(path)
    assert inst.kind == "image" and inst.rows == 240


# ------------------------------------------------------------------ folder walk
def test_folder_walk_survives_symlink_cycles_and_fifos(testdata, tmp_path):
    (tmp_path / "a").mkdir()
    os.symlink(testdata / "us_ge_logiq700_rgb_explicit_le.dcm", tmp_path / "a" / "img.dcm")
    os.symlink(tmp_path, tmp_path / "a" / "loop")  # a folder linking to its parent: never entered
    os.mkfifo(tmp_path / "a" / "pipe")             # would block if opened
    os.symlink(tmp_path / "a" / "pipe", tmp_path / "a" / "pipe-link")
    ix = scan([tmp_path])
    assert [i.path.name for i in ix.instances()] == ["img.dcm"]
    assert ix.skipped_non_dicom == 2 and ix.problems == []


def test_folder_order_is_depth_first_and_sorted(testdata, tmp_path):
    names = ["b/2.dcm", "b/1.dcm", "a/z/9.dcm", "a/0.dcm", "c.dcm"]
    src = testdata / "us_ge_logiq700_rgb_explicit_le.dcm"
    for n in names:
        (tmp_path / n).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(src, tmp_path / n)
    ix = scan([tmp_path])
    order = [str(ix.instances()[0].path.relative_to(tmp_path))] + \
        [str(d[1].relative_to(tmp_path)) for d in ix.duplicates]
    assert order == ["c.dcm", "a/0.dcm", "a/z/9.dcm", "b/1.dcm", "b/2.dcm"]
