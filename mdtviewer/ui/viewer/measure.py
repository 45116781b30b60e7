"""Calibrated measurement and Doppler read-out over the Sequence of Ultrasound Regions.

Distances use the region each end point lies in (a frame can hold a 2D image
and a Doppler strip with different scales); a line that crosses regions or
lies outside every calibrated region is refused with the reason, never
measured with the wrong scale.  Without any calibration the length is given in
pixels and says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

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


# --------------------------------------------------------------------------- tools (issue 15.1)
#: tool -> (kind given to imaging.measurements.measure, label, how it is drawn with the mouse)
#: gesture: "drag" (press-drag-release: two points), "clicks:N" (N clicks), "open" (clicks, double-click
#: ends: at least 2), "closed" (clicks, double-click closes: at least 3)
TOOLS: dict[str, tuple[str, str, str]] = {
    "distance": ("distance", "Distance", "drag"),
    "length": ("length", "Length", "open"),
    "area": ("area", "Area", "closed"),
    "ellipse": ("ellipse", "Area", "drag"),
    "angle": ("angle", "Angle", "clicks:3"),
    "velocity": ("velocity", "Velocity", "clicks:1"),
    "psv": ("psv", "PSV", "clicks:1"),
    "edv": ("edv", "EDV", "clicks:1"),
    "ri": ("ri", "RI", "clicks:2"),
}

#: what the status bar says when a tool is chosen
TOOL_HINTS: dict[str, str] = {
    "distance": "Distance: drag a line within one calibrated region",
    "length": "Length: click the points of the trace, double-click the last one",
    "area": "Area (polygon): click the corners, double-click to close",
    "ellipse": "Area (ellipse): drag the box of the ellipse",
    "angle": "Angle: click one end, the vertex, then the other end",
    "velocity": "Velocity: click a point in the spectral Doppler strip",
    "psv": "PSV: click the systolic peak in the spectral Doppler strip",
    "edv": "EDV: click the end of diastole in the spectral Doppler strip",
    "ri": "RI: click the systolic peak (PSV), then the end of diastole (EDV)",
}

#: label of each kind of value read back from a file
KIND_LABELS = {"distance": "Distance", "length": "Length", "area": "Area", "angle": "Angle", "velocity": "Velocity",
               "psv": "PSV", "edv": "EDV", "ri": "RI", "pi": "PI", "tamax": "TAMAX", "time": "Time",
               "acceleration-time": "AT", "ratio": "Ratio"}


def format_value(value: float, unit: str) -> str:
    """A value as a sonographer reads it: mm/cm, mm²/cm², degrees, cm/s, an index to 2 places."""
    if unit == "mm":
        return format_mm(value)
    if unit == "mm2":
        return f"{value / 100:.2f} cm²" if value >= 100 else f"{value:.1f} mm²"
    if unit == "deg":
        return f"{value:.1f}°"
    if unit == "cm/s":
        return f"{value:.1f} cm/s"
    if unit == "ms":
        return f"{value:.0f} ms"
    if unit == "1":
        return f"{value:.2f}"
    return f"{value:g} {unit}"


@dataclass
class Mark:
    """One measurement on one image and frame, as drawn (a value from the core, or its refusal)."""

    tool: str
    kind: str  # the value's kind (an ellipse is an 'area')
    points: tuple[tuple[float, float], ...]
    ok: bool
    text: str
    reason: str = ""
    value: float | None = None
    unit: str = ""
    graphic: str = "POLYLINE"
    sop_instance_uid: str = ""
    frame: int | None = None  # 1-based; None: a single-frame image
    path: str = ""  # the file measured (evidence when saving)
    saved: bool = False  # read back from, or written to, a measurement SR
    study_instance_uid: str = ""
    extra: dict = field(default_factory=dict)
    #: the measurement as read back from our last report (kept as it was in an amendment)
    source: object = None

    # what the distance tool's callers read (the tool existed before the others)
    @property
    def p0(self) -> tuple[float, float]:
        return self.points[0]

    @property
    def p1(self) -> tuple[float, float]:
        return self.points[-1]

    @property
    def calibrated(self) -> bool:
        return self.ok and self.value is not None

    @property
    def mm(self) -> float | None:
        return self.value if self.unit == "mm" and self.value is not None else None

    @property
    def status(self) -> str:
        """The status-bar line: 'Distance: 1.23 cm', 'PSV: 100.0 cm/s', or the refusal with its reason."""
        if not self.ok:
            return f"Measurement refused: {self.reason}"
        label = TOOLS.get(self.tool, ("", KIND_LABELS.get(self.kind, self.kind), ""))[1]
        return self.text if self.text.startswith(label) else f"{label}: {self.text}"

    def on(self, sop_instance_uid: str, frame: int | None) -> bool:
        return self.sop_instance_uid == sop_instance_uid and (self.frame is None or self.frame == frame)


def compute_mark(tool: str, regions: list[USRegion], points: list[tuple[float, float]], **where: object) -> Mark:
    """The value of *tool* over image *points* from the core (``imaging.measurements.measure``), or why not."""
    from mdtviewer.imaging import measurements as core

    kind, label, _g = TOOLS[tool]
    pts = tuple((float(x), float(y)) for x, y in points)
    # on screen a distance is its value alone (a line needs no name); the others say what they are
    named = tool != "distance"
    try:
        r = core.measure(kind, regions, pts)
    except MeasurementError as exc:
        text = f"{label} not measured: {exc.reason}" if named else f"not measured: {exc.reason}"
        return Mark(tool, kind, pts, False, text, exc.reason, **where)  # type: ignore[arg-type]
    value = format_value(r.value, r.unit)
    return Mark(tool, r.kind, tuple(r.points) or pts, True, f"{label}: {value}" if named else value,
                value=float(r.value), unit=r.unit, graphic=r.graphic, extra=dict(r.extra), **where)  # type: ignore[arg-type]


def mark_from_saved(s: object, path: str = "", study_instance_uid: str = "") -> Mark | None:
    """A mark drawn again from a measurement read back from an SR (None: it has no graphic on an image)."""
    pts = tuple(getattr(s, "points", ()) or ())
    uid = getattr(s, "sop_instance_uid", "")
    if not pts or not uid:
        return None
    kind = str(getattr(s, "kind", ""))
    graphic = str(getattr(s, "graphic", "") or "POLYLINE")
    tool = "ellipse" if graphic == "ELLIPSE" else (kind if kind in TOOLS else kind)
    label = KIND_LABELS.get(kind, str(getattr(s, "name", kind)))
    value = float(getattr(s, "value", 0.0))
    unit = str(getattr(s, "unit", ""))
    return Mark(tool, kind, pts, True, f"{label}: {format_value(value, unit)}", value=value, unit=unit,
                graphic=graphic, sop_instance_uid=uid, frame=getattr(s, "frame", None), path=path, saved=True,
                study_instance_uid=study_instance_uid, extra=dict(getattr(s, "extra", {}) or {}))
