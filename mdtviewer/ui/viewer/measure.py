"""Calibrated measurement and Doppler read-out over the Sequence of Ultrasound Regions.

Distances use the region each end point lies in (a frame can hold a 2D image
and a Doppler strip with different scales); a line that crosses regions or
lies outside every calibrated region is refused with the reason, never
measured with the wrong scale.  Without any calibration the length is given in
pixels and says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mdtviewer.imaging.usregions import MeasurementError, USRegion, doppler_readout, measure_distance


@dataclass
class MeasureResult:
    p0: tuple[float, float]
    p1: tuple[float, float]
    ok: bool
    text: str  # what is written beside the line
    reason: str = ""  # why a calibrated value was refused
    mm: float | None = None
    pixels: float = 0.0
    calibrated: bool = False


def format_mm(mm: float) -> str:
    return f"{mm / 10:.2f} cm" if mm >= 10 else f"{mm:.1f} mm"


def measure(regions: list[USRegion], p0: tuple[float, float], p1: tuple[float, float]) -> MeasureResult:
    px = math.hypot(p1[0] - p0[0], p1[1] - p0[1])
    if not regions:
        return MeasureResult(
            p0, p1, True, f"{px:.1f} px (uncalibrated)", "no ultrasound calibration in this image", pixels=px
        )
    try:
        d = measure_distance(regions, p0, p1)
    except MeasurementError as exc:  # the line crosses regions or lies outside every calibrated one
        return MeasureResult(p0, p1, False, f"not measured: {exc.reason}", exc.reason, pixels=px)
    mm = float(d.mm)
    return MeasureResult(p0, p1, True, format_mm(mm), mm=mm, pixels=px, calibrated=True)


def doppler_text(regions: list[USRegion], x: float, y: float) -> str:
    """Velocity/time under the cursor inside a spectral Doppler region, else ''."""
    r = doppler_readout(regions, x, y) if regions else None
    if r is None:
        return ""
    return f"Doppler: {r.velocity_cm_s:.1f} cm/s, {r.time_ms:.0f} ms"


def scale_text(regions: list[USRegion]) -> str:
    """'Scale: 0.123 mm/px' for the largest 2D tissue region with cm units, else ''."""
    r = tissue_region(regions)
    if r is None:
        return ""
    dx = abs(float(r.physical_delta_x)) * 10.0
    return f"Scale: {dx:.3f} mm/px" if dx else ""


def tissue_region(regions: list[USRegion]) -> USRegion | None:
    cands = [r for r in regions or [] if r.is_spatial_cm]
    # the largest calibrated 2D region is the tissue image (small ones are M-mode/ECG strips)
    return max(cands, key=lambda r: r.area, default=None)
