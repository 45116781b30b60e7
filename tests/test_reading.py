"""The robust reader on files built from corpus files: raw data sets (also with
'DICM' at offset 128), nesting bombs, big endian with undefined lengths,
declared lengths the file does not back, missing transfer syntax, damage at
every offset (typed errors only, never a hang or a stray exception)."""

from __future__ import annotations

import io
import random
import struct
import threading
import time

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from mdtviewer.dicom.reader import MAX_SEQUENCE_DEPTH, read_dataset, read_info, read_instance
from mdtviewer.infra.errors import DicomInputError, MalformedHeaderError, NotDicomError, TruncatedFileError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _raw_bytes(ds: Dataset, implicit: bool = False) -> bytes:
    """The data set alone: no preamble, no 'DICM', no file meta."""
    bio = pydicom.filebase.DicomBytesIO()
    bio.is_little_endian = True
    bio.is_implicit_VR = implicit
    pydicom.filewriter.write_dataset(bio, ds)
    return bio.getvalue()


def _el(group: int, elem: int, vr: bytes, value: bytes) -> bytes:
    return struct.pack("<HH2sH", group, elem, vr, len(value)) + value


def _sop_head() -> bytes:
    return _el(8, 0x16, b"UI", b"1.2.840.10008.5.1.4.1.1.7\x00") + _el(8, 0x18, b"UI", b"1.2.3.4\x00")


# ------------------------------------------------------------------ raw data sets
def test_raw_dataset_with_DICM_at_offset_128(testdata, tmp_path):
    src = pydicom.dcmread(testdata / "us_ge_logiq700_rgb_explicit_le.dcm")
    del src.file_meta
    src.ImageType = "X"
    raw = _raw_bytes(src)
    value_at = raw.find(b"\x08\x00\x08\x00CS") + 8
    assert 0 < value_at < 120
    pad = 128 - value_at
    src.ImageType = ("A" * pad + "DICM" + "B" * 8)[: pad + 4 + (pad % 2) + 8]
    raw = _raw_bytes(src)
    assert raw[128:132] == b"DICM", "construction failed"
    path = tmp_path / "raw_dicm128.dcm"
    path.write_bytes(raw)

    ds = read_dataset(path)
    info = read_info(ds)
    assert not info.has_preamble and not info.has_file_meta and info.dataset_offset == 0
    assert any("DICM" in n for n in info.notes)
    assert len(ds) == len(src)
    assert ds.SOPInstanceUID == src.SOPInstanceUID and ds.Rows == 240
    assert str(ds.file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.1"
    inst = read_instance(path)
    assert inst.kind == "image" and (inst.rows, inst.columns) == (240, 320)
    # what plain pydicom makes of it: a file meta where there is none
    plain = pydicom.dcmread(path, force=True)
    assert len(plain) != len(src) or plain.get("SOPInstanceUID") != src.SOPInstanceUID
    from mdtviewer.imaging.pixels import FrameSource

    with FrameSource(path, ds) as fs:
        assert fs.frame(0).shape == (240, 320, 3)


@pytest.mark.parametrize("implicit", [False, True])
@pytest.mark.parametrize("stray", [0, 1, 3])
def test_raw_dataset_found_at_its_true_start(testdata, tmp_path, implicit, stray):
    src = pydicom.dcmread(testdata / "us_esaote_ybr422_uncompressed.dcm", stop_before_pixels=True)
    del src.file_meta
    path = tmp_path / "raw.dcm"
    path.write_bytes(b"\x20" * stray + _raw_bytes(src, implicit=implicit))
    ds = read_dataset(path)
    info = read_info(ds)
    assert info.dataset_offset == stray
    assert len(ds) == len(src) and ds.SOPInstanceUID == src.SOPInstanceUID
    assert str(ds.file_meta.TransferSyntaxUID) == ("1.2.840.10008.1.2" if implicit else "1.2.840.10008.1.2.1")
    if stray:
        assert any("recovered" in n and f"byte {stray}" in n for n in info.notes)


def test_file_meta_without_preamble(testdata, tmp_path):
    data = (testdata / "us_ge_logiq700_rgb_explicit_le.dcm").read_bytes()
    path = tmp_path / "nopreamble.dcm"
    path.write_bytes(data[132:])
    ds = read_dataset(path)
    assert read_info(ds).has_file_meta and not read_info(ds).has_preamble
    assert ds.Rows == 240 and "PixelData" in ds


def test_missing_transfer_syntax_inferred_from_jpeg_fragment(testdata, tmp_path):
    ds0 = pydicom.dcmread(testdata / "usmf_sonosite_jpeg_ybr422_30f.dcm")
    del ds0.file_meta.TransferSyntaxUID
    bio = io.BytesIO()
    ds0.save_as(bio, implicit_vr=False, little_endian=True)
    path = tmp_path / "no_ts.dcm"
    path.write_bytes(bio.getvalue())
    ds = read_dataset(path)
    assert str(ds.file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.4.50"
    assert any("inferred" in n and "JPEG" in n for n in read_info(ds).notes)
    from mdtviewer.imaging.pixels import FrameSource

    with FrameSource(path, ds) as fs:
        assert fs.n_frames == 30 and fs.frame(29).shape == (240, 320, 3)


# ------------------------------------------------------------------ nesting
def _nested(depth: int, undefined: bool) -> bytes:
    if undefined:
        open_ = struct.pack("<HH2sHL", 0x0040, 0xA730, b"SQ", 0, 0xFFFFFFFF) + struct.pack("<HHL", 0xFFFE, 0xE000,
                                                                                          0xFFFFFFFF)
        close = struct.pack("<HHL", 0xFFFE, 0xE00D, 0) + struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
        return _sop_head() + open_ * depth + close * depth
    inner = b""
    for _ in range(depth):
        item = struct.pack("<HHL", 0xFFFE, 0xE000, len(inner)) + inner
        inner = struct.pack("<HH2sHL", 0x0040, 0xA730, b"SQ", 0, len(item)) + item
    return _sop_head() + inner


@pytest.mark.parametrize("undefined", [True, False], ids=["undefined-length", "defined-length"])
def test_nesting_depth_limit(tmp_path, undefined):
    ok = tmp_path / "ok.dcm"
    ok.write_bytes(_nested(MAX_SEQUENCE_DEPTH, undefined))
    assert len(read_dataset(ok)) == 3
    for depth in (MAX_SEQUENCE_DEPTH + 1, 5000):
        bomb = tmp_path / f"bomb{depth}.dcm"
        bomb.write_bytes(_nested(depth, undefined))
        errors: list[BaseException] = []

        def go(bomb=bomb, errors=errors) -> None:  # bound now: the thread runs in this iteration
            try:
                read_dataset(bomb)
            except BaseException as exc:  # noqa: BLE001 - collected for the assert
                errors.append(exc)

        t = threading.Thread(target=go)  # the index reads in worker threads: must hold there too
        t.start()
        t.join(60)
        assert not t.is_alive()
        assert len(errors) == 1 and isinstance(errors[0], MalformedHeaderError), errors
        assert str(errors[0]) == "nesting deeper than 64 sequences"


# ------------------------------------------------------------------ big endian
def test_explicit_big_endian_with_undefined_lengths(tmp_path):
    from pydicom.data import get_testdata_file

    ds0 = pydicom.dcmread(get_testdata_file("MR_small_bigendian.dcm"))
    assert ds0.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.2"
    inner = Dataset()
    inner.CodeValue = "2"
    item = Dataset()
    item.CodeValue = "1"
    item.CodeMeaning = "vascular"
    item.ConceptCodeSequence = Sequence([inner])
    ds0.ProcedureCodeSequence = Sequence([item])
    for seq in (ds0.ProcedureCodeSequence, item.ConceptCodeSequence):
        seq.is_undefined_length = True
        for it in seq:
            it.is_undefined_length_sequence_item = True
    path = tmp_path / "be_undefined.dcm"
    ds0.save_as(path)
    assert path.read_bytes().count(b"\xff\xff\xff\xff") >= 2  # undefined lengths really written

    ds = read_dataset(path)
    assert ds.ProcedureCodeSequence[0].CodeMeaning == "vascular"
    assert ds.ProcedureCodeSequence[0].ConceptCodeSequence[0].CodeValue == "2"
    from mdtviewer.imaging.pixels import FrameSource

    with FrameSource(path, ds) as fs:
        assert (fs.frame_raw(0) == ds0.pixel_array).all()


# ------------------------------------------------------------------ lengths and truncation
@pytest.mark.parametrize("with_meta", [True, False])
def test_declared_length_beyond_file_is_truncation_not_allocation(testdata, tmp_path, with_meta):
    # a private OB element declaring 2 GiB inside a small file, before Pixel Data
    bomb = struct.pack("<HH2sHL", 0x0009, 0x1010, b"OB", 0, 0x7FFFFFF0) + b"\0" * 800
    if with_meta:
        data = (testdata / "us_philips_cx50_palette_explicit_le.dcm").read_bytes()
        at = data.find(b"\x10\x00\x10\x00PN")  # Patient's Name: the private group 0009 goes before it
        body = data[:at] + bomb
    else:
        body = _sop_head() + bomb
    path = tmp_path / "bomb.dcm"
    path.write_bytes(body)
    t0 = time.perf_counter()
    for stop in (False, True):
        with pytest.raises(TruncatedFileError) as ei:
            read_dataset(path, stop_before_pixels=stop)
        assert "2,147,483,632" in str(ei.value) and "800" in str(ei.value)
    with pytest.raises(TruncatedFileError) as ei:  # the index skips this element: caught all the same
        read_instance(path)
    assert "(0009,1010)" in str(ei.value) and "2,147,483,632" in str(ei.value)
    assert time.perf_counter() - t0 < 2


def test_stop_before_pixels_says_whether_pixels_follow(testdata):
    ds = read_dataset(testdata / "usmf_hp_jpeg_ybr422_34f.dcm", stop_before_pixels=True)
    assert "PixelData" not in ds and read_info(ds).pixel_data_follows
    ds = read_dataset(testdata / "sr_comprehensive_offis_test.dcm", stop_before_pixels=True)
    assert not read_info(ds).pixel_data_follows


@pytest.mark.parametrize("name", ["us_aloka_palette16_implicit_le.dcm", "sr_comprehensive_offis_test.dcm",
                                  "usmf_acuson_sequoia_jpeg_ybr422_65f_ftv.dcm"])
def test_cut_at_any_offset_gives_typed_errors(testdata, tmp_path, name):
    """Truncate a good file at many offsets: each read either succeeds or raises a
    typed error with a one-line reason -- never another exception, never a hang."""
    data = (testdata / name).read_bytes()
    header_end = min(len(data), 6000)
    cuts = sorted(set(range(0, header_end, 37)) | {len(data) - 1, len(data) - 100, len(data) // 2})
    path = tmp_path / "cut.dcm"
    truncated = 0
    t0 = time.perf_counter()
    for cut in cuts:
        path.write_bytes(data[:cut])
        for stop in (True, False):
            try:
                read_dataset(path, stop_before_pixels=stop)
            except DicomInputError as exc:
                assert "\n" not in str(exc) and str(exc)
                truncated += isinstance(exc, TruncatedFileError)
    assert truncated > len(cuts) // 2  # most cuts are reported as truncated
    assert time.perf_counter() - t0 < 60


def test_cut_inside_compressed_pixel_data(testdata, tmp_path):
    data = (testdata / "usmf_sonosite_jpeg_ybr422_30f.dcm").read_bytes()
    path = tmp_path / "cut_cine.dcm"
    path.write_bytes(data[: int(len(data) * 0.7)])
    with pytest.raises(TruncatedFileError, match="compressed pixel data is cut short"):
        read_dataset(path)
    ds = read_dataset(path, stop_before_pixels=True)  # the header is fine: the index lists it
    assert read_info(ds).pixel_data_follows and read_instance(path).number_of_frames == 30


def test_random_damage_gives_typed_errors(testdata, tmp_path):
    data = bytearray((testdata / "us_philips_cx50_palette_explicit_le.dcm").read_bytes()[:4000])
    rng = random.Random(1234)
    path = tmp_path / "damaged.dcm"
    for _ in range(150):
        buf = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            buf[rng.randrange(128, len(buf))] = rng.randrange(256)
        path.write_bytes(bytes(buf))
        try:
            read_dataset(path)
            read_instance(path)
        except DicomInputError as exc:
            assert "\n" not in str(exc)


@pytest.mark.parametrize("content", [b"", b"hello, this is a README\n" * 20, b"\x89PNG\r\n\x1a\n" + bytes(300),
                                     bytes(2000)], ids=["empty", "text", "png", "zeros"])
def test_non_dicom_is_not_dicom(tmp_path, content):
    path = tmp_path / "file.bin"
    path.write_bytes(content)
    with pytest.raises(NotDicomError):
        read_dataset(path)


def test_missing_file_and_folder_are_typed(tmp_path):
    with pytest.raises(NotDicomError):
        read_dataset(tmp_path / "nope.dcm")
    with pytest.raises(NotDicomError):
        read_dataset(tmp_path)
    import os

    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(NotDicomError, match="not a regular file"):
        read_dataset(tmp_path / "pipe")  # must not block


def test_deflated_dataset_reads(testdata, tmp_path):
    ds0 = pydicom.dcmread(testdata / "sr_comprehensive_offis_test.dcm")
    ds0.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    path = tmp_path / "deflated.dcm"
    ds0.save_as(path)
    ds = read_dataset(path)
    assert ds.SOPInstanceUID == ds0.SOPInstanceUID and len(ds) == len(ds0)


def test_header_read_of_file_with_large_header_beyond_prefix(testdata, tmp_path):
    """A header longer than the in-memory prefix is re-read from the file."""
    from mdtviewer.dicom import reader as reading

    ds0 = pydicom.dcmread(testdata / "us_ge_logiq700_rgb_explicit_le.dcm")
    ds0.add_new(0x00091010, "LO", "PRIVATE")
    ds0.add_new(0x00091011, "OB", b"\x01" * (reading.HEADER_PREFIX + 1000))
    path = tmp_path / "bigheader.dcm"
    ds0.save_as(path)
    inst = read_instance(path)
    assert inst.kind == "image" and inst.rows == 240
    ds = read_dataset(path, stop_before_pixels=True)
    assert read_info(ds).pixel_data_follows and len(ds[0x00091011].value) == reading.HEADER_PREFIX + 1000


def test_reasons_carry_no_patient_identifiers(testdata):
    for name in ("bad_partial_dataset_truncated_gh179b.dcm", "bad_truncated_dataset_rtplan.dcm"):
        plain = pydicom.dcmread(testdata / name, force=True, stop_before_pixels=True)
        with pytest.raises(TruncatedFileError) as ei:
            read_dataset(testdata / name)
        for ident in (str(plain.get("PatientName", "")), str(plain.get("PatientID", ""))):
            if ident:
                assert ident not in str(ei.value)


# ------------------------------------------------------------------ memory
MEMORY_SCRIPT = r"""
import resource, struct, sys, warnings
# Linux overcommits: an untouched 3 GiB malloc would not show in RSS.  Capping the
# address space at 2 GiB turns any allocation from a declared length into a MemoryError
# (plain pydicom fails here on the 3 GiB file).
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
warnings.simplefilter("ignore")
from pathlib import Path
from mdtviewer.infra.errors import DicomInputError
from mdtviewer.dicom.reader import read_dataset, read_instance
from mdtviewer.imaging.pixels import FrameSource
from mdtviewer.imaging.check import check_file
def hwm_kb():
    # VmHWM belongs to this address space (reset at exec); ru_maxrss is not:
    # Linux carries it over from the forking parent (pytest, hundreds of MB).
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
base = hwm_kb()
paths = [Path(p) for p in sys.argv[1:]]
for p in paths:
    for stop in (True, False):
        try:
            read_dataset(p, stop_before_pixels=stop)
        except DicomInputError:
            pass
    try:
        read_instance(p)
    except DicomInputError:
        pass
    try:
        src = FrameSource(p)
        for i in range(src.n_frames):
            src.frame(i)
    except DicomInputError:
        pass
    rec = check_file(str(p), "image")
    assert rec["ok"] is False, rec
print(base, hwm_kb())
"""


def test_allocation_bombs_keep_memory_bounded(testdata, tmp_path):
    """Declared lengths/sizes the files do not back (3 GiB Pixel Data in 100 kB,
    65535 x 65535 with 256 bytes, a 2 GiB private element): nothing allocates from
    them (address space capped at 2 GiB) and peak RSS stays small."""
    import subprocess
    import sys

    from conftest import REPO

    bomb = tmp_path / "private_2gib.dcm"
    data = (testdata / "us_philips_cx50_palette_explicit_le.dcm").read_bytes()
    at = data.find(b"\x10\x00\x10\x00PN")
    bomb.write_bytes(data[:at] + struct.pack("<HH2sHL", 0x0009, 0x1010, b"OB", 0, 0x7FFFFFF0) + bytes(5000))
    files = [testdata / "bad_declared_3gib_pixeldata_truncated.dcm",
             testdata / "bad_rows_cols_65535_tiny_pixeldata.dcm", bomb]
    res = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, *map(str, files)], capture_output=True,
                         text=True, timeout=300, cwd=REPO)
    assert res.returncode == 0, res.stderr[-3000:]
    base_kb, peak_kb = map(int, res.stdout.split())
    assert peak_kb < 300 * 1024, f"peak RSS {peak_kb / 1024:.0f} MB"
    assert peak_kb - base_kb < 100 * 1024, f"grew {(peak_kb - base_kb) / 1024:.0f} MB reading the bombs"


def test_patient_name_character_sets(testdata, tmp_path):
    """Names in ISO 2022 (escape sequences) and UTF-8 are decoded with their character set."""
    from mdtviewer.dicom.reader import read_header

    for charset, name in (("ISO 2022 IR 87", "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎"), ("ISO_IR 192", "Ünal^Zoë")):
        ds0 = pydicom.dcmread(testdata / "us_ge_logiq700_rgb_explicit_le.dcm")
        ds0.SpecificCharacterSet = ["", charset] if "2022" in charset else charset
        ds0.PatientName = name.split("=")[-1] if "2022" in charset else name
        path = tmp_path / "cs.dcm"
        ds0.save_as(path)
        inst, fields = read_header(path)
        assert fields["PatientName"] == str(pydicom.dcmread(path).PatientName)
        assert "\x1b" not in fields["PatientName"]


# ------------------------------------------------------------------ recovery as fo-dicom does (issue 11 item 8)
def make_wrong_private_sequence_length(src, dst, extra: int) -> None:
    """How the test file is made: the corpus file *src* with a private block inserted
    ((0009,0010) creator, (0009,1001) SQ of one defined-length item), then the SQ's defined
    length increased by *extra* bytes, so a parser that trusts it runs on into Patient Name,
    the following elements and (for large *extra*) Pixel Data, and ends on garbage."""
    ds = pydicom.dcmread(src)
    ds.add_new(0x00090010, "LO", "ACME RECOVERY TEST")
    item = Dataset()
    item.add_new(0x00091002, "LO", "private value")
    item.add_new(0x00091003, "US", 7)
    ds.add_new(0x00091001, "SQ", Sequence([item]))
    ds[0x00091001].value.is_undefined_length = False
    item.is_undefined_length_sequence_item = False
    bio = io.BytesIO()
    ds.save_as(bio, enforce_file_format=True)
    data = bytearray(bio.getvalue())
    at = data.find(b"\x09\x00\x01\x10SQ\x00\x00")
    (n,) = struct.unpack_from("<L", data, at + 8)
    struct.pack_into("<L", data, at + 8, n + extra)
    dst.write_bytes(bytes(data))


def make_big_endian_with_little_endian_items(src, dst) -> int:
    """How the test file is made: the corpus file *src* written by pydicom as Explicit VR
    Big Endian with every sequence and item of undefined length, then each item, item
    delimiter and sequence delimiter (tag and length) byte-swapped to little-endian, as
    writers with hard-coded delimiter constants produce.  Returns how many were swapped."""
    ds = pydicom.dcmread(src)
    for elem in ds.iterall():
        if elem.VR == "SQ":
            elem.value.is_undefined_length = True
            for it in elem.value:
                it.is_undefined_length_sequence_item = True
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRBigEndian
    bio = io.BytesIO()
    pydicom.dcmwrite(bio, ds, little_endian=False, implicit_vr=False)
    data = bytearray(bio.getvalue())
    swapped = 0
    for be in (b"\xff\xfe\xe0\x00", b"\xff\xfe\xe0\x0d", b"\xff\xfe\xe0\xdd"):
        i = data.find(be)
        while i >= 0:
            data[i:i + 8] = data[i:i + 2][::-1] + data[i + 2:i + 4][::-1] + data[i + 4:i + 8][::-1]
            swapped += 1
            i = data.find(be, i + 8)
    dst.write_bytes(bytes(data))
    return swapped


@pytest.mark.parametrize("extra", [60, 5_000, 300_000])
def test_a_private_sequence_with_a_wrong_length_is_resynchronised(testdata, tmp_path, extra):
    from mdtviewer.imaging.pixels import FrameSource

    src = testdata / "us_philips_cx50_palette_explicit_le.dcm"
    path = tmp_path / "wrong_sq_length.dcm"
    make_wrong_private_sequence_length(src, path, extra)
    # pydicom alone loses everything after the sequence, Pixel Data included
    assert "PixelData" not in pydicom.dcmread(path, force=True)
    ds = read_dataset(path)
    note = " ".join(read_info(ds).notes)
    assert f"private sequence (0009,1001) declares {40 + extra:,} bytes but its items end after 40" in note
    assert "reading resumed at Patient Name (0010,0010)" in note
    assert ds[0x00091001].value[0][0x00091002].value == "private value"
    orig = pydicom.dcmread(src)
    assert ds.PatientName == orig.PatientName and ds.Rows == orig.Rows
    with FrameSource(path) as fs, FrameSource(src) as ref:
        assert (fs.frame(0) == ref.frame(0)).all()
    inst = read_instance(path)
    assert inst.kind == "image" and "reading resumed" in inst.note and inst.error is None


def test_big_endian_with_little_endian_item_tags_is_read(testdata, tmp_path):
    from mdtviewer.imaging.pixels import FrameSource

    # OB pixel data: pydicom writes OW values unswapped, so an OW file would not be a true big-endian one
    src = testdata / "us_esaote_ybr422_uncompressed.dcm"
    path = tmp_path / "be_le_items.dcm"
    swapped = make_big_endian_with_little_endian_items(src, path)
    assert swapped >= 2
    with pytest.raises(OSError, match="No tag to read"):
        pydicom.dcmread(path)
    ds = read_dataset(path)
    note = f"{swapped} item tag(s) written little-endian in this big-endian file were read swapped"
    assert note in read_info(ds).notes
    orig = pydicom.dcmread(src)
    got = [(r.RegionLocationMaxX1, r.PhysicalDeltaX) for r in ds.SequenceOfUltrasoundRegions]
    assert got == [(r.RegionLocationMaxX1, r.PhysicalDeltaX) for r in orig.SequenceOfUltrasoundRegions]
    with FrameSource(path) as fs, FrameSource(src) as ref:
        assert (fs.frame(0) == ref.frame(0)).all()


# ------------------------------------------------------------------ the same reason on every Python (item 12)
BOMB_SCRIPT = r"""
import sys
from mdtviewer.dicom.reader import read_dataset
from mdtviewer.infra.errors import DicomInputError
for path in sys.argv[1:]:
    try:
        read_dataset(path)
        print("read")
    except DicomInputError as exc:
        print(exc.reason)
"""


def _pythons() -> list[str]:
    """This interpreter and, where pyenv has them, 3.12 and 3.13 (pydicom is pure Python)."""
    import glob
    import sys

    found = [sys.executable]
    for minor in ("3.12", "3.13"):
        found += sorted(glob.glob(f"/root/.pyenv/versions/{minor}.*/bin/python{minor}"))[:1]
    return found


@pytest.mark.parametrize("python", _pythons())
def test_a_5000_deep_bomb_has_one_reason_on_every_python(tmp_path, python):
    """3.12 handles deep recursion differently: the reason is decided from the bytes, so it
    is 'nesting deeper than 64 sequences' there too (was 'file ends inside a sequence')."""
    import os
    import subprocess

    from conftest import REPO

    paths = []
    for undefined in (False, True):
        p = tmp_path / f"bomb5000_{'u' if undefined else 'd'}.dcm"
        p.write_bytes(_nested(5000, undefined))
        paths.append(str(p))
    env = dict(os.environ)
    if not python.startswith(str(REPO)):
        # another interpreter: only pydicom (pure Python) and the package from this tree
        site = tmp_path / "site"
        site.mkdir()
        import pydicom as _p

        pkg = os.path.dirname(_p.__file__)
        os.symlink(pkg, site / "pydicom")
        for d in os.listdir(os.path.dirname(pkg)):
            if d.startswith("pydicom-") and d.endswith(".dist-info"):
                os.symlink(os.path.join(os.path.dirname(pkg), d), site / d)
        os.symlink(REPO / "mdtviewer", site / "mdtviewer")
        env["PYTHONPATH"] = str(site)
    res = subprocess.run([python, "-c", BOMB_SCRIPT, *paths], capture_output=True, text=True, timeout=120,
                         env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.splitlines() == [f"nesting deeper than {MAX_SEQUENCE_DEPTH} sequences"] * 2
