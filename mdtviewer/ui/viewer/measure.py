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
from typing import Any

try:  # the core module (foundation issue); the viewer still works without it
    from mdtviewer.imaging import usregions as _usr
except ImportError:  # pragma: no cover - only while the core is being written
    _usr = None  # type: ignore[assignment]


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


def measure(regions: list[Any], p0: tuple[float, float], p1: tuple[float, float]) -> MeasureResult:
    px = math.hypot(p1[0] - p0[0], p1[1] - p0[1])
    if not regions or _usr is None:
        return MeasureResult(
            p0, p1, True, f"{px:.1f} px (uncalibrated)", "no ultrasound calibration in this image", pixels=px
        )
    try:
        d = _usr.measure_distance(regions, p0, p1)
    except Exception as exc:  # MeasurementError carries the reason; anything else is a refusal too
        reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        return MeasureResult(p0, p1, False, f"not measured: {reason}", reason, pixels=px)
    mm = float(d.mm)
    return MeasureResult(p0, p1, True, format_mm(mm), mm=mm, pixels=px, calibrated=True)


def doppler_text(regions: list[Any], x: float, y: float) -> str:
    """Velocity/time under the cursor inside a spectral Doppler region, else ''."""
    if not regions or _usr is None:
        return ""
    try:
        r = _usr.doppler_readout(regions, x, y)
    except Exception:  # noqa: BLE001
        return ""
    if r is None:
        return ""
    parts = []
    v = getattr(r, "velocity_cm_s", None)
    t = getattr(r, "time_ms", None)
    if v is not None:
        parts.append(f"{v:.1f} cm/s")
    if t is not None:
        parts.append(f"{t:.0f} ms")
    return "Doppler: " + ", ".join(parts) if parts else ""


def scale_text(regions: list[Any]) -> str:
    """'Scale: 0.123 mm/px' for the first 2D tissue region with cm units, else ''."""
    r = tissue_region(regions)
    if r is None:
        return ""
    dx = abs(float(getattr(r, "physical_delta_x", 0) or 0)) * 10.0
    return f"Scale: {dx:.3f} mm/px" if dx else ""


def tissue_region(regions: list[Any]) -> Any:
    cands = [r for r in regions or [] if getattr(r, "is_spatial_cm", False)]
    # the largest calibrated 2D region is the tissue image (small ones are M-mode/ECG strips)
    return max(cands, key=lambda r: getattr(r, "area", 0), default=None)
