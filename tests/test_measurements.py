"""Calibrated measurements (imaging.measurements) on real corpus images and a synthetic spectrum.

How the test images were made
-----------------------------
* 2D tools: real corpus images read in place -- the Siemens S2000 RGB image
  (one 2D region, square 0.0238 cm pixels) and the HP 34-frame cine (2D
  region with NON-square pixels, 0.0286 x 0.0229 cm).  The expected values
  are computed here from the raw Physical Delta X/Y read with pydicom, not
  through the code under test.
* Spectral Doppler: the corpus has no spectral image, so
  :func:`make_doppler_image` copies the Siemens image into tmp_path with
  pydicom, keeps its 2D region (shortened to rows 60-399), adds a PW
  spectral Doppler region (RegionSpatialFormat 3, RegionDataType 3,
  PhysicalUnitsX 4 = s, PhysicalUnitsY 7 = cm/s, 4 ms and -0.5 cm/s per
  pixel, reference pixel = the baseline, 0 cm/s) over rows 420-763, and
  draws a known spectrum into the pixels: a filled waveform through
  (0 s, 20), (0.08 s, 100), (0.30 s, 40), (0.40 s, 45), (1.0 s, 20 cm/s),
  repeated every second, with speckle, a spectral window near the baseline,
  a bright baseline line and a 2-pixel label above the spectrum.  So
  PSV = 100 cm/s, EDV = 20 cm/s, TAMAX = 43.95 cm/s (the integral of the
  piecewise-linear waveform), RI = 0.8 and PI = 80 / 43.95 = 1.820 exactly.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from conftest import TESTDATA
from mdtviewer.dicom.reader import read_dataset
from mdtviewer.imaging import measurements as m
from mdtviewer.imaging.pixels import FrameSource
from mdtviewer.imaging.usregions import MeasurementError, parse_regions
from mdtviewer.infra.errors import MdtError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SIEMENS = TESTDATA / "us_siemens_s2000_rgb_explicit_le.dcm"
HP_CINE = TESTDATA / "usmf_hp_jpeg_ybr422_34f.dcm"

# the synthetic spectrum (see module docstring)
WAVE = [(0.0, 20.0), (0.08, 100.0), (0.30, 40.0), (0.40, 45.0), (1.0, 20.0)]
PSV, EDV = 100.0, 20.0
TAMAX = sum((t1 - t0) * (v0 + v1) / 2 for (t0, v0), (t1, v1) in zip(WAVE, WAVE[1:]))  # 43.95
DT, DV = 0.004, -0.5  # s per column, cm/s per row
DOP_Y0, DOP_Y1, BASE_REL = 420, 763, 240  # region rows; baseline 240 rows into it
BASE = DOP_Y0 + BASE_REL  # image row of 0 cm/s
CYCLE = int(round(1.0 / DT))  # 250 columns


def wave(t: float) -> float:
    t = t % 1.0
    for (t0, v0), (t1, v1) in zip(WAVE, WAVE[1:]):
        if t0 <= t <= t1:
            return v0 + (v1 - v0) * (t - t0) / (t1 - t0)
    return WAVE[-1][1]


def row_of(v: float) -> int:
    return int(round(BASE + v / DV))


def make_doppler_image(folder: Path, reverse: bool = False) -> Path:
    """A copy of the Siemens S2000 image with a PW Doppler region and a known spectrum (see docstring).

    *reverse*: the flow is drawn below the baseline and Physical Delta Y is
    +0.5 (the scanner's "invert"): velocities are still positive in the flow
    direction."""
    ds = pydicom.dcmread(SIEMENS)
    px = ds.pixel_array.copy()  # RGB, uncompressed in the corpus file
    tissue = ds.SequenceOfUltrasoundRegions[0]
    tissue.RegionLocationMaxY1 = 399
    dop = Dataset()
    dop.RegionLocationMinX0, dop.RegionLocationMinY0 = 0, DOP_Y0
    dop.RegionLocationMaxX1, dop.RegionLocationMaxY1 = 1007, DOP_Y1
    dop.RegionSpatialFormat, dop.RegionDataType, dop.RegionFlags = 3, 3, 0
    dop.PhysicalUnitsXDirection, dop.PhysicalUnitsYDirection = 4, 7
    dop.ReferencePixelX0 = 0
    base_rel = BASE_REL if not reverse else (DOP_Y1 - DOP_Y0) - BASE_REL
    dop.ReferencePixelY0 = base_rel
    dop.ReferencePixelPhysicalValueX, dop.ReferencePixelPhysicalValueY = 0.0, 0.0
    dop.PhysicalDeltaX, dop.PhysicalDeltaY = DT, (DV if not reverse else -DV)
    ds.SequenceOfUltrasoundRegions.append(dop)

    rng = np.random.default_rng(15)
    h = DOP_Y1 - DOP_Y0 + 1
    strip = rng.integers(0, 35, size=(h, 1008)).astype(np.uint8)  # background speckle
    base = BASE_REL
    for c in range(1, 1007):
        v = wave(c * DT)
        top = int(round(base + v / DV))  # row inside the strip
        col = rng.integers(150, 256, size=base - 1 - top).astype(np.uint8)
        if (c * DT) % 1.0 < 0.3:  # spectral window: dark band just above the baseline in systole
            col[-12:] = 30
        strip[top:base - 1, c] = col
    strip[base - 1:base + 2, :] = 200  # the baseline line
    strip[20:22, 300:310] = 255  # a thin label above the spectrum: not flow
    if reverse:
        strip = strip[::-1]
    px[DOP_Y0:DOP_Y1 + 1, 0:1008, :] = strip[:, :, None]
    ds.PixelData = px.tobytes()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    out = folder / ("doppler_reverse.dcm" if reverse else "doppler.dcm")
    ds.save_as(out, enforce_file_format=True)
    return out


def regions_of(path: Path):
    return parse_regions(read_dataset(path, stop_before_pixels=True))


def raw_delta(path: Path, index: int = 0) -> tuple[float, float]:
    item = pydicom.dcmread(path, stop_before_pixels=True).SequenceOfUltrasoundRegions[index]
    return abs(float(item.PhysicalDeltaX)), abs(float(item.PhysicalDeltaY))


def close(value: float, expected: float, rel: float) -> bool:
    return abs(value - expected) <= rel * abs(expected)


# --- 2D tools on real images: within 1 % -----------------------------------------------------------

def test_distance_and_length_on_the_siemens_image():
    regs = regions_of(SIEMENS)
    dx, dy = raw_delta(SIEMENS)
    d = m.distance(regs, (300, 200), (600, 600))
    assert (d.unit, d.graphic) == ("mm", "POLYLINE")
    assert close(d.value, 10 * math.hypot(300 * dx, 400 * dy), 0.01)
    assert close(d.value, 10 * 500 * dx, 0.01)  # 3-4-5: 500 px of 0.0238 cm = 118.9 mm
    path = [(100, 100), (400, 100), (400, 500), (100, 500)]
    L = m.length(regs, path)
    assert close(L.value, 10 * (300 * dx + 400 * dy + 300 * dx), 0.01)


def test_polygon_freehand_and_ellipse_area_on_the_siemens_image():
    regs = regions_of(SIEMENS)
    dx, dy = raw_delta(SIEMENS)
    rect = m.polygon_area(regs, [(200, 200), (400, 200), (400, 300), (200, 300)])
    assert rect.unit == "mm2" and rect.graphic == "POLYGON"
    assert close(rect.value, 200 * dx * 100 * dy * 100, 0.01)
    # freehand: a 720-point circle of radius 150 px, area pi r^2 within 1 %
    circle = [(500 + 150 * math.cos(a), 400 + 150 * math.sin(a)) for a in np.linspace(0, 2 * math.pi, 720)]
    free = m.polygon_area(regs, circle)
    assert close(free.value, math.pi * (150 * dx) * (150 * dy) * 100, 0.01)
    ell = m.ellipse_area(regs, (300, 300), (700, 500))
    assert ell.graphic == "ELLIPSE" and len(ell.points) == 4
    assert close(ell.value, math.pi * (200 * dx) * (100 * dy) * 100, 0.01)
    assert ell.points[0] == (300, 400.0) and ell.points[1] == (700, 400.0)  # major axis first


def test_angle_and_distance_on_non_square_pixels_of_the_hp_cine():
    regs = regions_of(HP_CINE)
    dx, dy = raw_delta(HP_CINE)
    assert not math.isclose(dx, dy)  # the point of this image
    a = m.angle(regs, (300, 150), (200, 150), (300, 250))  # 100 px right, 100 px right + 100 px down
    assert a.unit == "deg"
    assert close(a.value, math.degrees(math.atan2(100 * dy, 100 * dx)), 0.01)
    assert not close(a.value, 45.0, 0.01)  # pixels are not square: not 45 deg
    right = m.angle(regs, (300, 150), (200, 150), (200, 300))
    assert close(right.value, 90.0, 0.01)
    d = m.distance(regs, (100, 100), (100, 300))
    assert close(d.value, 200 * dy * 10, 0.01)


def test_refused_outside_a_calibrated_region_with_one_line_reason():
    regs = regions_of(SIEMENS)
    with pytest.raises(MeasurementError, match="outside every calibrated region") as e:
        m.distance(regs, (300, 200), (300, 10))  # row 10 is above the region (starts at 60)
    assert isinstance(e.value, MdtError) and "\n" not in e.value.reason
    with pytest.raises(MeasurementError, match="no ultrasound calibration regions"):
        m.distance(regions_of(TESTDATA / "us_ge_logiq700_rgb_explicit_le.dcm"), (1, 1), (5, 5))
    with pytest.raises(MeasurementError, match="not a calibrated spectral Doppler region"):
        m.psv(regs, (300, 200))
    with pytest.raises(MeasurementError, match="vertex must differ"):
        m.angle(regs, (300, 200), (300, 200), (400, 300))
    with pytest.raises(MeasurementError, match="needs at least 3 points"):
        m.polygon_area(regs, [(300, 200), (400, 300)])


# --- spectral Doppler on the synthetic spectrum: within 2 % ---------------------------------------

@pytest.fixture
def doppler(tmp_path) -> Path:
    return make_doppler_image(tmp_path)


def test_velocity_calipers_ri_and_times(doppler):
    regs = regions_of(doppler)
    c_peak = CYCLE + int(round(0.08 / DT))  # column of the second cycle's peak
    c_end = 2 * CYCLE - 1
    p_psv, p_edv = (c_peak, row_of(PSV)), (c_end, row_of(wave(c_end * DT)))
    assert close(m.psv(regs, p_psv).value, PSV, 0.02)
    assert close(m.edv(regs, p_edv).value, EDV, 0.02)
    v = m.velocity(regs, (500, BASE + 40))  # below the baseline: away from the transducer
    assert v.value == pytest.approx(-20.0) and v.unit == "cm/s"
    ri = m.resistivity_index(regs, p_psv, p_edv)
    assert close(ri.value, (PSV - EDV) / PSV, 0.02) and ri.unit == "1"
    # reversed diastolic flow: EDV negative relative to the PSV, RI above 1
    rev = m.resistivity_index(regs, p_psv, (c_end, BASE + 20))
    assert rev.extra["edv"] == pytest.approx(-10.0) and rev.value == pytest.approx(1.1)
    t = m.time_interval(regs, (CYCLE, 500), (2 * CYCLE, 500))
    assert close(t.value, 1000.0, 0.01) and t.unit == "ms"
    at = m.acceleration_time(regs, (CYCLE, BASE - 40), p_psv)
    assert close(at.value, 80.0, 0.02)
    with pytest.raises(MeasurementError, match="after the start"):
        m.acceleration_time(regs, p_psv, (CYCLE, BASE - 40))


def _frame(path: Path) -> np.ndarray:
    with FrameSource(path) as src:
        return src.frame(0)


@pytest.mark.parametrize("cycles", [1, 3])
def test_traced_envelope_gives_psv_edv_tamax_pi_ri(doppler, cycles):
    regs = regions_of(doppler)
    env = m.trace_envelope(regs, _frame(doppler), (CYCLE, 500), (CYCLE * (1 + cycles), 500))
    res = m.spectral_indices(env)
    assert close(res.extra["psv"], PSV, 0.02), res.extra
    assert close(res.extra["edv"], EDV, 0.02), res.extra
    assert close(res.extra["tamax"], TAMAX, 0.02), res.extra
    assert close(res.value, (PSV - EDV) / TAMAX, 0.02), res.value
    assert close(res.extra["ri"], (PSV - EDV) / PSV, 0.02)
    assert res.graphic == "POLYLINE" and len(res.points) >= CYCLE * cycles - 2
    # the trace follows the drawn envelope column by column (label and speckle ignored)
    for c, r in list(zip(env.columns, env.rows))[::25]:
        assert abs(r - row_of(wave(c * DT))) <= 2


def test_envelope_of_an_inverted_spectrum(tmp_path):
    path = make_doppler_image(tmp_path, reverse=True)
    regs = regions_of(path)
    res = m.spectral_indices(m.trace_envelope(regs, _frame(path), (CYCLE, 500), (2 * CYCLE, 500)))
    assert close(res.extra["psv"], PSV, 0.02) and close(res.value, (PSV - EDV) / TAMAX, 0.02)


def test_trace_adjusted_by_the_user_and_refusals(doppler):
    regs = regions_of(doppler)
    env = m.trace_envelope(regs, _frame(doppler), (CYCLE, 500), (2 * CYCLE, 500))
    c = int(env.columns[100])
    moved = env.adjusted(c, BASE - 260)  # drag one point up to 130 cm/s
    assert m.spectral_indices(moved).extra["psv"] == pytest.approx(130.0)
    with pytest.raises(MeasurementError, match="not a calibrated spectral Doppler region"):
        m.trace_envelope(regs, _frame(doppler), (100, 200), (300, 200))  # in the 2D region
    with pytest.raises(MeasurementError, match="different regions"):
        m.trace_envelope(regs, _frame(doppler), (100, 200), (300, 500))


def test_ratio():
    a = m.Measured("psv", 250.0, "cm/s", (), "POINT")
    b = m.Measured("psv", 80.0, "cm/s", (), "POINT")
    r = m.ratio(a, b)
    assert r.value == pytest.approx(3.125) and r.unit == "1"
    with pytest.raises(MeasurementError, match="cannot divide"):
        m.ratio(a, m.Measured("distance", 3.0, "mm", (), "POLYLINE"))


def test_measure_is_one_entry_for_every_tool(doppler):
    regs = regions_of(doppler)
    dx, dy = raw_delta(doppler)
    assert close(m.measure("ellipse", regs, [(300, 100), (700, 300)]).value, math.pi * 200 * dx * 100 * dy * 100, 0.01)
    assert m.measure("distance", regs, [(300, 100), (300, 300)]).value == pytest.approx(200 * dy * 10)
    calls = []
    pi = m.measure("pi", regs, [(CYCLE, 500), (2 * CYCLE, 500)], lambda: calls.append(1) or _frame(doppler))
    assert close(pi.value, (PSV - EDV) / TAMAX, 0.02) and calls == [1]
    assert m.measure("psv", regs, [(CYCLE, BASE - 100)], lambda: calls.append(2)).value == pytest.approx(50.0)
    assert calls == [1]  # pixels are read only for a traced PI
    with pytest.raises(MeasurementError, match="distance needs 2 points, got 3"):
        m.measure("distance", regs, [(1, 100), (2, 100), (3, 100)])
    with pytest.raises(MeasurementError, match="unknown measurement 'volume'"):
        m.measure("volume", regs, [(1, 100)])
