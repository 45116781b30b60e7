"""Ultrasound regions from the corpus, calibrated distance and Doppler read-out."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from mdtviewer.dicom.reader import read_dataset
from mdtviewer.imaging.usregions import (
    MeasurementError,
    doppler_readout,
    measure_distance,
    parse_regions,
    region_at,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_cx50_regions(testdata):
    ds = read_dataset(testdata / "us_philips_cx50_palette_explicit_le.dcm", stop_before_pixels=True)
    regions = parse_regions(ds)
    raw = ds.SequenceOfUltrasoundRegions
    assert len(regions) == 2
    tissue, ecg = regions
    assert (tissue.spatial_format, tissue.data_type, tissue.units_x, tissue.units_y) == (1, 1, "cm", "cm")
    assert (tissue.x0, tissue.y0, tissue.x1, tissue.y1) == (
        raw[0].RegionLocationMinX0, raw[0].RegionLocationMinY0, raw[0].RegionLocationMaxX1, raw[0].RegionLocationMaxY1)
    assert tissue.physical_delta_x == pytest.approx(float(raw[0].PhysicalDeltaX))
    assert (ecg.spatial_format, ecg.data_type, ecg.units_x) == (4, 10, "s")
    assert ecg.data_type_name == "ECG trace"


def test_distance_in_a_2d_region(testdata):
    ds = read_dataset(testdata / "us_siemens_s2000_rgb_explicit_le.dcm", stop_before_pixels=True)
    (r,) = parse_regions(ds)
    cx, cy = (r.x0 + r.x1) // 2, (r.y0 + r.y1) // 2
    d = measure_distance([r], (cx, cy), (cx + 100, cy))
    assert d.mm == pytest.approx(100 * abs(r.physical_delta_x) * 10)
    d = measure_distance([r], (cx, cy), (cx + 30, cy + 40))
    assert d.mm == pytest.approx(10 * ((30 * r.physical_delta_x) ** 2 + (40 * r.physical_delta_y) ** 2) ** 0.5)
    assert d.region is r
    with pytest.raises(MeasurementError, match="outside every calibrated region"):
        measure_distance([r], (cx, cy), (r.x1 + 5, cy))


def test_distance_refused_across_regions_and_without_cm(testdata):
    ds = read_dataset(testdata / "us_philips_cx50_palette_explicit_le.dcm", stop_before_pixels=True)
    tissue, ecg = parse_regions(ds)
    p_t = ((tissue.x0 + tissue.x1) // 2, (tissue.y0 + tissue.y1) // 2)
    p_e = ((ecg.x0 + ecg.x1) // 2, (ecg.y0 + ecg.y1) // 2)
    with pytest.raises(MeasurementError, match="different regions"):
        measure_distance([tissue, ecg], p_t, p_e)
    with pytest.raises(MeasurementError, match="no spatial \\(cm\\) calibration"):
        measure_distance([tissue, ecg], p_e, (p_e[0] + 3, p_e[1]))
    with pytest.raises(MeasurementError, match="no ultrasound calibration regions"):
        measure_distance([], p_t, p_t)
    assert doppler_readout([tissue, ecg], *p_t) is None  # not a spectral region


def _doppler_ds() -> Dataset:
    """A B-mode region above a PW Doppler strip (no such file in the corpus: see SOURCES.md)."""
    bmode = Dataset()
    bmode.RegionLocationMinX0, bmode.RegionLocationMinY0 = 0, 0
    bmode.RegionLocationMaxX1, bmode.RegionLocationMaxY1 = 639, 299
    bmode.RegionSpatialFormat, bmode.RegionDataType, bmode.RegionFlags = 1, 1, 0
    bmode.PhysicalUnitsXDirection = bmode.PhysicalUnitsYDirection = 3
    bmode.PhysicalDeltaX = bmode.PhysicalDeltaY = 0.02
    dop = Dataset()
    dop.RegionLocationMinX0, dop.RegionLocationMinY0 = 0, 300
    dop.RegionLocationMaxX1, dop.RegionLocationMaxY1 = 639, 479
    dop.RegionSpatialFormat, dop.RegionDataType, dop.RegionFlags = 3, 3, 0
    dop.PhysicalUnitsXDirection, dop.PhysicalUnitsYDirection = 4, 7  # s, cm/s
    dop.ReferencePixelX0, dop.ReferencePixelY0 = 0, 120              # baseline 120 px into the strip
    dop.ReferencePixelPhysicalValueX, dop.ReferencePixelPhysicalValueY = 0.0, 0.0
    dop.PhysicalDeltaX, dop.PhysicalDeltaY = 0.005, -0.5              # 5 ms/px; 0.5 cm/s per px, up is +
    ds = Dataset()
    ds.SequenceOfUltrasoundRegions = Sequence([bmode, dop])
    return ds


def test_doppler_readout():
    regions = parse_regions(_doppler_ds())
    # 60 px above the baseline (y = 300 + 120 - 60), 200 px from the strip start
    r = doppler_readout(regions, 200, 360)
    assert r is not None
    assert r.velocity_cm_s == pytest.approx(30.0) and r.time_ms == pytest.approx(1000.0)
    below = doppler_readout(regions, 10, 440)  # 20 px below baseline: reverse flow
    assert below.velocity_cm_s == pytest.approx(-10.0)
    assert doppler_readout(regions, 10, 10) is None  # B-mode region
    assert region_at(regions, 10, 10).spatial_format == 1
    with pytest.raises(MeasurementError, match="different regions"):
        measure_distance(regions, (10, 10), (10, 400))


def test_region_at_prefers_the_smallest_enclosing_region(testdata):
    ds = read_dataset(testdata / "us_aloka_palette16_implicit_le.dcm", stop_before_pixels=True)
    regions = parse_regions(ds)
    assert len(regions) == 3
    for r in regions:
        cx, cy = (r.x0 + r.x1) // 2, (r.y0 + r.y1) // 2
        hit = region_at(regions, cx, cy)
        assert hit.area <= r.area
    assert region_at(regions, -5, -5) is None


def test_missing_bounds_skipped():
    item = Dataset()
    item.RegionSpatialFormat = 1
    ds = Dataset()
    ds.SequenceOfUltrasoundRegions = Sequence([item])
    assert parse_regions(ds) == [] and parse_regions(Dataset()) == []


#: (typed field, DICOM keyword) for every value the typed record carries over from the item
FIELDS = (
    ("spatial_format", "RegionSpatialFormat"), ("data_type", "RegionDataType"), ("flags", "RegionFlags"),
    ("physical_delta_x", "PhysicalDeltaX"), ("physical_delta_y", "PhysicalDeltaY"),
    ("reference_pixel_x0", "ReferencePixelX0"), ("reference_pixel_y0", "ReferencePixelY0"),
    ("ref_physical_x0", "ReferencePixelPhysicalValueX"), ("ref_physical_y0", "ReferencePixelPhysicalValueY"),
)
UNIT_NAMES = {3: "cm", 4: "s", 7: "cm/s", 0: "none", 5: "Hz", 2: "dB"}


def test_every_corpus_region_is_typed_field_by_field(testdata):
    """Bounds, spatial format, data type, units X/Y, physical deltas and reference pixel of every
    region item in the corpus, compared with the raw sequence item (pydicom, not our parser)."""
    import pydicom

    seen = 0
    for path in sorted(testdata.glob("us*.dcm")):
        raw = pydicom.dcmread(path, stop_before_pixels=True).get("SequenceOfUltrasoundRegions") or []
        regions = parse_regions(read_dataset(path, stop_before_pixels=True))
        assert len(regions) == len(raw), path.name
        for r, item in zip(regions, raw):
            assert (r.x0, r.y0, r.x1, r.y1) == (item.RegionLocationMinX0, item.RegionLocationMinY0,
                                                 item.RegionLocationMaxX1, item.RegionLocationMaxY1)
            for attr, kw in FIELDS:
                want = item.get(kw)
                got = getattr(r, attr)
                if want is None:
                    assert got in (0, 0.0), (path.name, attr)
                else:
                    assert isinstance(got, float if "physical" in attr else int), (attr, type(got))
                    assert got == pytest.approx(float(want)), (path.name, attr, got, want)
            assert r.units_x == UNIT_NAMES[item.PhysicalUnitsXDirection]
            assert r.units_y == UNIT_NAMES[item.PhysicalUnitsYDirection]
            seen += 1
    assert seen == 21  # region items in the corpus ultrasound files (SOURCES.md)
    # signed reference pixels (SL) survive: the CX50 ECG strip's lies left of and above its region
    ecg = parse_regions(read_dataset(testdata / "us_philips_cx50_palette_explicit_le.dcm", stop_before_pixels=True))[1]
    assert (ecg.reference_pixel_x0, ecg.reference_pixel_y0) == (-176, -522)
