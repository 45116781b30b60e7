"""Sequence of Ultrasound Regions (0018,6011): calibrated regions of a US image.

An ultrasound frame is a mosaic: a 2D tissue region in cm, a spectral
Doppler strip in seconds x cm/s, an ECG trace, a grey bar.  Each region
carries its own calibration (PS3.3 C.8.5.5.1), and a measurement is only
meaningful inside one region with a spatial (cm) calibration.  The typed
records here are what calibrated distance and Doppler read-out need.

Physical value of pixel column *x* in a region (the reference pixel is given
relative to the region's top-left corner)::

    value_x = ref_physical_x0 + (x - (x0 + reference_pixel_x0)) * physical_delta_x

and likewise for y.  Physical Delta Y of a Doppler strip is usually
negative (velocity grows upwards); the formula keeps the sign.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from mdtviewer.dicom import values
from mdtviewer.infra.errors import MdtError

#: Physical Units X/Y Direction (0018,6024/6026)
UNITS = {
    0: "none", 1: "%", 2: "dB", 3: "cm", 4: "s", 5: "Hz", 6: "dB/s", 7: "cm/s",
    8: "cm2", 9: "cm2/s", 0xA: "cm3", 0xB: "cm3/s", 0xC: "deg",
}
#: Region Spatial Format (0018,6012)
SPATIAL_FORMATS = {0: "none", 1: "2D", 2: "M-mode", 3: "spectral", 4: "waveform", 5: "graphics"}
#: Region Data Type (0018,6014)
DATA_TYPES = {
    0: "none", 1: "tissue", 2: "color flow", 3: "PW spectral Doppler", 4: "CW spectral Doppler",
    5: "Doppler mean trace", 6: "Doppler mode trace", 7: "Doppler max trace", 8: "volume trace",
    9: "d(volume)/dt trace", 0xA: "ECG trace", 0xB: "pulse trace", 0xC: "phonocardiogram trace",
    0xD: "gray bar", 0xE: "color bar", 0xF: "integrated backscatter", 0x10: "area trace",
    0x11: "d(area)/dt", 0x12: "other physiological input",
}


class MeasurementError(MdtError, ValueError):
    """A measurement cannot be made; ``reason`` says why in one line."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class USRegion:
    x0: int
    y0: int
    x1: int
    y1: int
    spatial_format: int = 0
    data_type: int = 0
    flags: int = 0
    units_x: str = "none"
    units_y: str = "none"
    physical_delta_x: float = 0.0
    physical_delta_y: float = 0.0
    reference_pixel_x0: int = 0
    reference_pixel_y0: int = 0
    ref_physical_x0: float = 0.0
    ref_physical_y0: float = 0.0
    transducer_frequency: int | None = None
    pulse_repetition_frequency: int | None = None
    doppler_correction_angle: float | None = None
    steering_angle: float | None = None
    index: int = 0  # position in the sequence
    #: why a calibration in the header was not used ('' when none was refused)
    note: str = ""

    def contains(self, x: float, y: float) -> bool:
        """Inclusive bounds, as in the standard (x1/y1 are the last pixel)."""
        return self.x0 <= x <= self.x1 and self.y0 <= y <= self.y1

    @property
    def area(self) -> int:
        return (self.x1 - self.x0 + 1) * (self.y1 - self.y0 + 1)

    @property
    def spatial_format_name(self) -> str:
        return SPATIAL_FORMATS.get(self.spatial_format, f"format {self.spatial_format}")

    @property
    def data_type_name(self) -> str:
        return DATA_TYPES.get(self.data_type, f"type {self.data_type}")

    @property
    def is_spatial_cm(self) -> bool:
        """Both axes in cm with non-zero deltas: distances can be measured."""
        return (self.units_x == "cm" and self.units_y == "cm"
                and self.physical_delta_x != 0 and self.physical_delta_y != 0)

    @property
    def is_spectral_doppler(self) -> bool:
        return (self.units_x == "s" and self.units_y == "cm/s" and self.physical_delta_y != 0
                and (self.spatial_format == 3 or self.data_type in (3, 4)))

    def physical_x(self, x: float) -> float:
        return self.ref_physical_x0 + (x - (self.x0 + self.reference_pixel_x0)) * self.physical_delta_x

    def physical_y(self, y: float) -> float:
        return self.ref_physical_y0 + (y - (self.y0 + self.reference_pixel_y0)) * self.physical_delta_y

    def describe(self) -> str:
        return (f"region {self.index + 1} ({self.spatial_format_name}, {self.data_type_name}; "
                f"{self.units_x} x {self.units_y})")


@dataclass(frozen=True)
class Distance:
    mm: float
    region: USRegion


@dataclass(frozen=True)
class DopplerReadout:
    velocity_cm_s: float
    time_ms: float
    region: USRegion | None = None


#: a Physical Delta (units per pixel) outside this magnitude is not a calibration (a denormal, 1e300 ...)
MIN_PHYSICAL_DELTA = 1e-9
MAX_PHYSICAL_DELTA = 1e6


def _delta(item: Any, keyword: str, notes: list[str]) -> float:
    """A Physical Delta X/Y; NaN, infinity, a denormal or an absurd magnitude is no calibration (0.0)."""
    raw = values.first_number(values.get(item, keyword)) if values.get(item, keyword) is not None else None
    text = values.text(item, keyword)
    if raw is None:
        if text:
            notes.append(f"{keyword} '{text[:24]}' is not a usable number: region not calibrated")
        return 0.0
    if raw != 0.0 and not MIN_PHYSICAL_DELTA <= abs(raw) <= MAX_PHYSICAL_DELTA:
        notes.append(f"{keyword} {raw:g} is implausible: region not calibrated")
        return 0.0
    return raw


def _num(item: Any, keyword: str, default: Any = None, cast: type = float) -> Any:
    """A region's number (first value; NaN, infinity and unreadable values count as absent)."""
    v = values.number(item, keyword)
    if v is None:
        return default
    return int(v) if cast is int else cast(v)


def parse_regions(ds: Any) -> list[USRegion]:
    """The Sequence of Ultrasound Regions as typed records (empty when absent).

    Items without their four bounds are skipped; they cannot locate a point.
    """
    out: list[USRegion] = []
    for i, item in enumerate(values.sequence(ds, "SequenceOfUltrasoundRegions")):
        bounds = [_num(item, k, None, int) for k in
                  ("RegionLocationMinX0", "RegionLocationMinY0", "RegionLocationMaxX1", "RegionLocationMaxY1")]
        if any(b is None for b in bounds):
            continue
        x0, y0, x1, y1 = bounds
        notes: list[str] = []
        dx, dy = _delta(item, "PhysicalDeltaX", notes), _delta(item, "PhysicalDeltaY", notes)
        out.append(USRegion(
            x0=min(x0, x1), y0=min(y0, y1), x1=max(x0, x1), y1=max(y0, y1),
            spatial_format=_num(item, "RegionSpatialFormat", 0, int),
            data_type=_num(item, "RegionDataType", 0, int),
            flags=_num(item, "RegionFlags", 0, int),
            units_x=UNITS.get(_num(item, "PhysicalUnitsXDirection", 0, int), "unknown"),
            units_y=UNITS.get(_num(item, "PhysicalUnitsYDirection", 0, int), "unknown"),
            physical_delta_x=dx,
            physical_delta_y=dy,
            reference_pixel_x0=_num(item, "ReferencePixelX0", 0, int),
            reference_pixel_y0=_num(item, "ReferencePixelY0", 0, int),
            ref_physical_x0=_num(item, "ReferencePixelPhysicalValueX", 0.0),
            ref_physical_y0=_num(item, "ReferencePixelPhysicalValueY", 0.0),
            transducer_frequency=_num(item, "TransducerFrequency", None, int),
            pulse_repetition_frequency=_num(item, "PulseRepetitionFrequency", None, int),
            doppler_correction_angle=_num(item, "DopplerCorrectionAngle", None),
            steering_angle=_num(item, "SteeringAngle", None),
            index=i,
            note="; ".join(notes),
        ))
    return out


def region_at(regions: list[USRegion], x: float, y: float) -> USRegion | None:
    """The region holding pixel (x, y); the smallest one where regions nest."""
    hits = [r for r in regions if r.contains(x, y)]
    return min(hits, key=lambda r: r.area) if hits else None


def measure_distance(regions: list[USRegion], p0: tuple[float, float], p1: tuple[float, float]) -> Distance:
    """Calibrated distance in mm between two pixels of one spatial region.

    Raises :class:`MeasurementError` when the image has no regions, a point
    lies outside every region, the points are in different regions, or the
    region is not calibrated in cm.
    """
    if not regions:
        raise MeasurementError("no ultrasound calibration regions in this image: distance cannot be measured")
    r0 = region_at(regions, *p0)
    r1 = region_at(regions, *p1)
    if r0 is None or r1 is None:
        which = "start" if r0 is None else "end"
        raise MeasurementError(f"the {which} point is outside every calibrated region")
    if r0 is not r1:
        raise MeasurementError(f"the points are in different regions ({r0.describe()} and {r1.describe()})")
    if not r0.is_spatial_cm:
        raise MeasurementError(f"{r0.describe()} has no spatial (cm) calibration")
    dx = (p1[0] - p0[0]) * r0.physical_delta_x
    dy = (p1[1] - p0[1]) * r0.physical_delta_y
    return Distance(mm=math.hypot(dx, dy) * 10.0, region=r0)


def doppler_readout(regions: list[USRegion], x: float, y: float) -> DopplerReadout | None:
    """Velocity (cm/s) and time (ms) at a pixel of a spectral Doppler region, else None."""
    r = region_at(regions, x, y)
    if r is None or not r.is_spectral_doppler:
        return None
    return DopplerReadout(velocity_cm_s=r.physical_y(y), time_ms=r.physical_x(x) * 1000.0, region=r)
