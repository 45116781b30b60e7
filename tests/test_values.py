"""The one set of tolerant header accessors and DICOM date/time/name formatters (mdtviewer.dicom.values)."""

from __future__ import annotations

import datetime as dt

import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from mdtviewer.dicom import values
from mdtviewer.dicom.reader import read_dataset

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _raw(ds: Dataset, tag: int, vr: str, value: bytes) -> None:
    ds[tag] = RawDataElement(Tag(tag), vr, len(value), value, 0, False, True)


def test_accessors_never_raise_on_damaged_values():
    ds = Dataset()
    _raw(ds, 0x00181063, "DS", b"12,5")       # Frame Time with a decimal comma
    _raw(ds, 0x00280008, "IS", b"3.0 ")       # Number of Frames written as a decimal
    _raw(ds, 0x00281050, "DS", b"40\\nan")     # Window Center: second value not a number
    _raw(ds, 0x00100010, "PN", b"DOE^JANE\x00")
    _raw(ds, 0x0008002A, "DT", b"\xff\xfe")   # undecodable bytes
    _raw(ds, 0x00280010, "US", b"abc")        # Rows: 3 bytes for a 2-byte VR (pydicom: BytesLengthException)
    assert values.number(ds, "FrameTime") is None and values.number(ds, "FrameTime", 33.0) == 33.0
    assert values.integer(ds, "NumberOfFrames") == 3
    assert values.integer(ds, "Rows") is None and values.text(ds, "Rows") == ""
    assert values.number(ds, "WindowCenter") == 40.0 and values.numbers(ds, "WindowCenter") is None
    assert values.text(ds, "PatientName") == "DOE^JANE"
    assert isinstance(values.text(ds, "AcquisitionDateTime"), str)
    assert values.text(ds, "PatientID", "none") == "none" and values.get(ds, "PatientID") is None
    assert values.sequence(ds, "ReferencedSeriesSequence") == [] and values.sequence(ds, "PatientName") == []
    # not a Dataset at all: still no exception
    assert values.text(None, "PatientName") == "" and values.number(object(), "FrameTime") is None


def test_multi_values_and_numbers():
    assert values.values(None) == [] and values.values("") == [] and values.values("a") == ["a"]
    assert values.first_number(["7", "8"]) == 7.0 and values.first_number(float("inf")) is None
    assert values.first_number(b"2.5\x00") == 2.5 and values.first_number([]) is None
    ds = Dataset()
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.FrameTimeVector = [0, 33.3, 50]
    assert values.text(ds, "ImageType") == "ORIGINAL\\PRIMARY"
    assert values.numbers(ds, "FrameTimeVector") == [0.0, 33.3, 50.0]


def test_on_a_corpus_header(testdata):
    ds = read_dataset(testdata / "usmf_acuson_sequoia_jpeg_ybr422_65f_ftv.dcm", stop_before_pixels=True)
    assert values.integer(ds, "NumberOfFrames") == 65
    assert len(values.numbers(ds, "FrameTimeVector")) == 65
    assert values.text(ds, "Modality") == "US"


@pytest.mark.parametrize("value, expected", [
    ("20240131", "2024-01-31"), (" 20240131 ", "2024-01-31"), (dt.date(2024, 1, 31), "2024-01-31"),
    ("2024-01-31", "2024-01-31"), ("31/01/2024", "31/01/2024"), ("", ""), (None, ""),
    ("1994.11.05", "1994-11-05"), (" 1994.11.05", "1994-11-05"), ("1994.11", "1994.11"),  # ACR-NEMA dotted (QA 18)
])
def test_format_date(value, expected):
    assert values.format_date(value) == expected


@pytest.mark.parametrize("value, expected", [
    ("1230", "12:30"), ("123045.123", "12:30:45"), ("12", "12:00"), ("noon", "noon"), (dt.time(9, 5, 7), "09:05:07"),
])
def test_format_time(value, expected):
    assert values.format_time(value) == expected


@pytest.mark.parametrize("value, kw, expected", [
    ("20240131123045.5+0100", {}, "2024-01-31 12:30:45 +01:00"),
    ("20240131123045", {"seconds": False}, "2024-01-31 12:30"),
    ("202401311230+0100", {"offset": False}, "2024-01-31 12:30"),
    ("20240131", {}, "2024-01-31"),
    (dt.datetime(2024, 1, 31, 12, 30, 45, tzinfo=dt.timezone(dt.timedelta(hours=1))), {}, "2024-01-31 12:30:45 +01:00"),
    ("yesterday", {}, "yesterday"),
])
def test_format_datetime(value, kw, expected):
    assert values.format_datetime(value, **kw) == expected


def test_format_person_name_and_the_overlay_uses_the_same():
    from mdtviewer.ui.viewer import overlays

    for pn, expected in [("DOE^JANE^Q^DR", "DOE, JANE Q"), ("DOE", "DOE"), ("^JANE", "JANE"),
                         ("YAMADA^TARO=山田^太郎", "YAMADA, TARO (山田太郎)"), ("", "")]:
        assert values.format_person_name(pn) == overlays.format_person_name(pn) == expected
    assert overlays.format_date("20240131") == values.format_date("20240131")


def test_overlay_shows_dotted_study_date_as_iso(testdata):
    """The overlay's study date goes through values.format_date: 1994.11.05 reads 1994-11-05 (QA 18)."""
    import pydicom

    from mdtviewer.ui.viewer import overlays

    ds = pydicom.dcmread(testdata / "us_aloka_palette16_implicit_le.dcm", stop_before_pixels=True)
    ds.StudyDate = "1994.11.05"
    info = overlays.OverlayInfo.from_dataset(ds)
    texts = [t for lines in overlays.corner_texts(info, overlays.FrameStatus(), privacy=False).values() for t in lines]
    assert any("1994-11-05" in t for t in texts), texts
    assert not any("1994.11.05" in t for t in texts)
