"""Every corpus file, its expected outcome: the right kind, frames, shape and timing
for good files; for each malformed file the specific typed failure or the recovery.

The expectations are written out here (from SOURCES.md and the files' headers),
not computed by the code under test.  A corpus file without an entry fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import TESTDATA, corpus_files
from mdtviewer.dicom.reader import read_dataset, read_header, read_info, read_instance
from mdtviewer.imaging.cine import frame_times_ms
from mdtviewer.imaging.usregions import parse_regions
from mdtviewer.infra.errors import (
    DecodeError,
    DicomInputError,
    MalformedHeaderError,
    PixelDataError,
    TruncatedFileError,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


US = "1.2.840.10008.5.1.4.1.1.6.1"
USMF = "1.2.840.10008.5.1.4.1.1.3.1"
ELE = "1.2.840.10008.1.2.1"
ILE = "1.2.840.10008.1.2"
RLE = "1.2.840.10008.1.2.5"
JPEG = "1.2.840.10008.1.2.4.50"


@dataclass
class Expect:
    kind: str | None                     # None: the header cannot be used (see header_error)
    frames: int = 0
    rows: int = 0
    cols: int = 0
    photometric: str = ""
    sop_class: str | None = None
    ts: str | None = None
    timing: str = "none"
    times: tuple[float, ...] = ()        # first few display durations (ms)
    regions: int = 0
    #: header read fails: (error class, words in the reason)
    header_error: tuple[type, tuple[str, ...]] | None = None
    #: full read / FrameSource fails: (error class, words in the reason)
    pixel_error: tuple[type, tuple[str, ...]] | None = None
    #: words that must appear in the recovery notes
    notes: tuple[str, ...] = ()
    #: words that must appear in the Instance note only (classification remarks)
    inst_notes: tuple[str, ...] = ()
    #: number of top-level elements after a full read (recoveries)
    elements: int | None = None
    extra: dict = field(default_factory=dict)


T33 = 33.333
EXPECT: dict[str, Expect] = {
    # ---- good ultrasound images
    "us_acuson_sequoia_ybr_full_rle.dcm": Expect("image", 1, 480, 640, "YBR_FULL", US, RLE, regions=2),
    "us_aloka_palette16_implicit_le.dcm": Expect("image", 1, 480, 640, "PALETTE COLOR", US, ILE, regions=3),
    "us_atl_hdi5000_jpeg_baseline_ybr422.dcm": Expect("image", 1, 480, 640, "YBR_FULL_422", US, JPEG,
                                                      notes=("group length",)),
    "us_esaote_ybr422_uncompressed.dcm": Expect("image", 1, 555, 800, "YBR_FULL_422", US, ELE, regions=1),
    "us_ge_logiq700_j2k_lossless_ybr_rct.dcm": Expect("image", 1, 480, 640, "YBR_RCT", US, "1.2.840.10008.1.2.4.90"),
    "us_ge_logiq700_j2k_lossy_ybr_ict.dcm": Expect("image", 1, 480, 640, "YBR_ICT", US, "1.2.840.10008.1.2.4.91"),
    "us_ge_logiq700_rgb_explicit_le.dcm": Expect("image", 1, 240, 320, "RGB", US, ELE),
    "us_philips_cx50_palette_explicit_le.dcm": Expect("image", 1, 350, 800, "PALETTE COLOR", US, ELE, regions=2),
    "us_philips_cx50_palette_rle.dcm": Expect("image", 1, 600, 800, "PALETTE COLOR", US, RLE, regions=2),
    "us_philips_epiq7c_mono2_jpeg_lossless_sv1.dcm": Expect("image", 1, 768, 1024, "MONOCHROME2", US,
                                                            "1.2.840.10008.1.2.4.70", regions=1),
    "us_philips_iu22_mono2_jpegls_lossless.dcm": Expect("image", 1, 768, 1024, "MONOCHROME2", US,
                                                        "1.2.840.10008.1.2.4.80", notes=("group length",)),
    "us_retired_sopclass_rgb_planar.dcm": Expect("image", 1, 120, 256, "RGB", "1.2.840.10008.5.1.4.1.1.6", ELE),
    "us_siemens_s2000_rgb_explicit_le.dcm": Expect("image", 1, 768, 1024, "RGB", US, ELE, regions=1),
    # ---- cines (Frame Time Vector: frame i shows for FTV[i+1]; see mdtviewer.imaging.cine)
    "usmf_acuson_rgb_implicit_le_8f_ftv.dcm": Expect("cine", 8, 240, 320, "RGB", USMF, ILE, "FrameTimeVector",
                                                     (50.0, T33, 50.0, 50.0, 50.0), regions=2),
    "usmf_acuson_sequoia_jpeg_ybr422_65f_ftv.dcm": Expect("cine", 65, 456, 576, "YBR_FULL_422", USMF, JPEG,
                                                          "FrameTimeVector", (T33, 50.0, T33, T33, T33), regions=2),
    "usmf_hp_jpeg_ybr422_34f.dcm": Expect("cine", 34, 430, 480, "YBR_FULL_422", USMF, JPEG, "FrameTime",
                                          (30.0, 30.0, 30.0), regions=2),
    "usmf_palette_rle_10f.dcm": Expect("cine", 10, 430, 600, "PALETTE COLOR", USMF, RLE, "FrameTime", (76.0,) * 3),
    "usmf_philips_cx50_palette_rle_2f_no_frametime.dcm": Expect("cine", 2, 600, 800, "PALETTE COLOR", USMF, RLE,
                                                                "assumed", (1000 / 30, 1000 / 30), regions=2),
    "usmf_sonosite_jpeg_ybr422_30f.dcm": Expect("cine", 30, 240, 320, "YBR_FULL_422", USMF, JPEG, "FrameTime",
                                                (T33,) * 3, regions=1),
    # ---- documents
    "sr_basic_text_offis_reportsi.dcm": Expect("sr", sop_class="1.2.840.10008.5.1.4.1.1.88.11", ts=ELE),
    "sr_basic_text_osirix_annotations.dcm": Expect("sr", sop_class="1.2.840.10008.5.1.4.1.1.88.11", ts=ELE),
    "sr_comprehensive_offis_test.dcm": Expect("sr", sop_class="1.2.840.10008.5.1.4.1.1.88.33", ts=ELE),
    "sr_enhanced_agfa_diagnostic_report.dcm": Expect("sr", sop_class="1.2.840.10008.5.1.4.1.1.88.22", ts=ELE),
    "sr_enhanced_tid1500_dcmjs.dcm": Expect("sr", sop_class="1.2.840.10008.5.1.4.1.1.88.22", ts=ELE),
    "kos_clearcanvas_of_interest.dcm": Expect("kos", sop_class="1.2.840.10008.5.1.4.1.1.88.59", ts=ELE),
    "pdf_encapsulated_orthanc_sample.dcm": Expect("pdf", sop_class="1.2.840.10008.5.1.4.1.1.104.1", ts=ELE),
    # ---- malformed: the specific failure or the recovery
    "bad_declared_3gib_pixeldata_truncated.dcm": Expect(
        "image", 1, 32768, 32768, "MONOCHROME2", "1.2.840.10008.5.1.4.1.1.4", ELE,
        pixel_error=(TruncatedFileError, ("pixel data ends after 98,080 of 3,221,225,472 bytes",))),
    "bad_invalid_IS_value_rtdose.dcm": Expect(
        "image", 1, 10, 10, "MONOCHROME2", "1.2.840.10008.5.1.4.1.1.481.2", ELE,
        pixel_error=(PixelDataError, ("Number of Frames", "1A")), extra={"instance_error": "1A"}),
    "bad_j2k_fragment_contains_seq_delimiter.dcm": Expect(
        "image", 1, 1024, 256, "MONOCHROME2", "1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.1.2.4.91",
        pixel_error=(DecodeError, ("JPEG 2000", "sequence delimiter"))),
    "bad_jpeg_ts_but_raw_pixels_in_fragment.dcm": Expect(
        "image", 1, 512, 512, "MONOCHROME2", "2.25.215425430857432966361489015284054781485", JPEG,
        pixel_error=(PixelDataError, ("JPEG", "start marker"))),
    "bad_meta_missing_transfer_syntax.dcm": Expect(
        None, ts=ILE, header_error=(MalformedHeaderError, ("no SOP Instance UID",)),
        notes=("transfer syntax missing", "Implicit VR Little Endian"), elements=2),
    "bad_no_preamble_no_file_meta_ct.dcm": Expect(
        "image", 1, 128, 128, "MONOCHROME2", "1.2.840.10008.5.1.4.1.1.2", ELE,
        notes=("recovered", "from byte 1"), elements=258),
    "bad_partial_dataset_truncated_gh179b.dcm": Expect(
        None, header_error=(TruncatedFileError, ("Pixel Padding Value", "1,442 of its 139,296 bytes"))),
    "bad_private_sequence_empty_items_at_end.dcm": Expect(
        "other", sop_class="1.2.840.10008.5.1.4.1.1.2", ts=ELE, elements=8,
        extra={"private_sequence_items": 2, "instance_error": "image without Pixel Data"}),
    "bad_rows_cols_65535_tiny_pixeldata.dcm": Expect(
        "image", 1, 65535, 65535, "MONOCHROME2", "1.2.840.10008.5.1.4.1.1.7", ELE,
        pixel_error=(PixelDataError, ("65,535 x 65,535", "256 bytes"))),
    "bad_second_meta_group_in_dataset.dcm": Expect(
        "image", 1, 2457, 1890, "MONOCHROME2", "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.4.70",
        notes=("stale file-meta", "real file meta wins")),
    "bad_truncated_dataset_rtplan.dcm": Expect(
        None, header_error=(TruncatedFileError, ("Beam Sequence", "711 of its 976 bytes"))),
    "bad_truncated_pixeldata_mr.dcm": Expect(
        "image", 1, 64, 64, "MONOCHROME2", "1.2.840.10008.5.1.4.1.1.4", ELE,
        pixel_error=(TruncatedFileError, ("pixel data ends after 8,130 of 8,192 bytes",))),
    "bad_us_meta_missing_group_length.dcm": Expect(
        "other", sop_class=US, ts=ELE, elements=7, extra={"instance_error": "image without Pixel Data"}),
}

DICOMDIR_SET = TESTDATA / "dicomdir_pydicom_ct_mr_2patients"
#: relative path -> modality (all 16 x 16, explicit VR LE; CR is MONOCHROME1)
DICOMDIR_FILES = {
    **{f"77654033/{p}": "CR" for p in ("CR1/6154", "CR2/6247", "CR3/6278")},
    **{f"77654033/CT2/{n}": "CT" for n in ("17106", "17136", "17166", "17196")},
    **{f"98892001/CT2N/{n}": "CT" for n in ("6293", "6924")},
    **{f"98892001/CT5N/{n}": "CT" for n in ("2062", "2392", "2693", "3023", "3353")},
    **{f"98892003/MR1/{n}": "MR" for n in ("15820", "4919", "5641")},
    **{f"98892003/MR2/{n}": "MR" for n in ("15970", "4950", "4981", "5011", "6273", "6605", "6935")},
    **{f"98892003/MR700/{n}": "MR" for n in ("4467", "4528", "4558", "4588", "4618", "4648", "4678")},
}


def _assert_error(exc: BaseException, expected: tuple[type, tuple[str, ...]]) -> None:
    cls, words = expected
    assert isinstance(exc, cls), f"{type(exc).__name__}: {exc} (expected {cls.__name__})"
    assert "\n" not in str(exc)
    for w in words:
        assert w.lower() in str(exc).lower(), f"{w!r} not in reason {str(exc)!r}"


def test_every_corpus_file_has_an_expectation(testdata):
    names = {p.name for p in corpus_files()}
    assert names, "empty corpus"
    assert names == set(EXPECT), (f"no expectation for {sorted(names - set(EXPECT))}; "
                                  f"stale entries {sorted(set(EXPECT) - names)}")
    on_disk = {str(p.relative_to(DICOMDIR_SET)) for p in DICOMDIR_SET.rglob("*") if p.is_file()
               and p.name != "DICOMDIR"}
    assert on_disk == set(DICOMDIR_FILES)


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_corpus_file(path: Path):
    exp = EXPECT.get(path.name)
    assert exp is not None, f"no expectation for {path.name}: add it to EXPECT"

    # 1. header (what the index sees: read_header, the fast walk for plain files, agrees with read_instance)
    if exp.header_error:
        with pytest.raises(DicomInputError) as ei:
            read_instance(path)
        _assert_error(ei.value, exp.header_error)
        with pytest.raises(exp.header_error[0]):
            read_header(path)
        if exp.kind is None and exp.elements is None:
            return
    else:
        inst = read_instance(path)
        assert read_header(path)[0] == inst
        assert inst.kind == exp.kind
        assert inst.sop_class_uid == exp.sop_class
        assert inst.number_of_frames == exp.frames
        assert (inst.rows, inst.columns) == (exp.rows, exp.cols)
        assert inst.photometric == exp.photometric
        if exp.ts:
            assert inst.transfer_syntax == exp.ts
        for w in exp.notes + exp.inst_notes:
            assert w.lower() in inst.note.lower(), f"{w!r} not in note {inst.note!r}"
        if "instance_error" in exp.extra:
            assert exp.extra["instance_error"] in (inst.error or "")

    # 2. full read (what FrameSource uses)
    if exp.pixel_error and exp.pixel_error[0] is TruncatedFileError:
        with pytest.raises(TruncatedFileError) as ei:
            read_dataset(path)
        _assert_error(ei.value, exp.pixel_error)
        assert ei.value.dataset is not None  # the readable part is still available
        return
    if exp.header_error and exp.kind is None and exp.elements is None:
        return
    ds = read_dataset(path)
    info = read_info(ds)
    if exp.ts:
        assert str(ds.file_meta.TransferSyntaxUID) == exp.ts
    for w in exp.notes:
        assert any(w.lower() in n.lower() for n in info.notes), f"{w!r} not in {info.notes}"
    if exp.elements is not None:
        assert len(ds) == exp.elements
    if "private_sequence_items" in exp.extra:
        seq = ds[0x01F3, 0x1011].value
        assert len(seq) == exp.extra["private_sequence_items"] and all(len(item) == 0 for item in seq)
    if exp.kind is None:
        return

    # 3. timing and regions
    times, source = frame_times_ms(ds)
    assert source == exp.timing
    if exp.frames > 1:
        assert times is not None and len(times) == exp.frames
        assert times[: len(exp.times)] == pytest.approx(list(exp.times), abs=1e-3)
        assert all(t > 0 for t in times)
    else:
        assert times is None
    assert len(parse_regions(ds)) == exp.regions

    # 4. pixels
    if exp.kind not in ("image", "cine"):
        return
    from mdtviewer.imaging.pixels import FrameSource

    if exp.pixel_error:
        with pytest.raises(DicomInputError) as ei:
            src = FrameSource(path, ds)
            for i in range(src.n_frames):
                src.frame(i)
        _assert_error(ei.value, exp.pixel_error)
        return
    src = FrameSource(path, ds)
    try:
        assert src.n_frames == exp.frames
        colour = exp.photometric not in ("MONOCHROME1", "MONOCHROME2")
        want = (exp.rows, exp.cols, 3) if colour else (exp.rows, exp.cols)
        for i in range(src.n_frames):
            arr = src.frame(i)
            assert arr.dtype.name == "uint8" and arr.shape == want, (i, arr.shape)
    finally:
        src.close()


@pytest.mark.parametrize("rel", sorted(DICOMDIR_FILES), ids=lambda r: r.replace("/", "_"))
def test_dicomdir_set_file(rel: str):
    path = DICOMDIR_SET / rel
    inst = read_instance(path)
    modality = DICOMDIR_FILES[rel]
    assert inst.kind == "image" and inst.modality == modality
    assert (inst.rows, inst.columns, inst.number_of_frames) == (16, 16, 1)
    assert inst.photometric == ("MONOCHROME1" if modality == "CR" else "MONOCHROME2")
    assert inst.transfer_syntax == ELE
    from mdtviewer.imaging.pixels import FrameSource

    with FrameSource(path) as src:
        assert src.frame(0).shape == (16, 16)
