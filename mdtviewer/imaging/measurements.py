"""Calibrated measurements on an ultrasound frame, from image-pixel points (Qt-free).

Every value is computed from the Sequence of Ultrasound Regions of the
instance the points were placed on (:mod:`mdtviewer.imaging.usregions`): all
points of one measurement must lie in one region, and that region must carry
the calibration the measurement needs; otherwise :class:`MeasurementError`
(an :class:`~mdtviewer.infra.errors.MdtError`) says why in one line.  No
value is ever taken from anywhere else (a UI, a JSON file): callers give
points, this module gives numbers.

Units are UCUM: ``mm``, ``mm2``, ``deg``, ``cm/s``, ``ms`` and ``1`` for
ratios and indices.

2D (tissue) region, both axes in cm -- physical coordinates are
``(x * PhysicalDeltaX, y * PhysicalDeltaY)``, so non-square pixels are
handled (the HP cine of the corpus has 0.0286 x 0.0229 cm pixels):

* :func:`distance` -- two points, mm
* :func:`length` -- polyline / trace, mm
* :func:`polygon_area` -- polygon or freehand outline (shoelace), mm2
* :func:`ellipse_area` -- axis-aligned ellipse given by two opposite corners of its box, mm2
* :func:`ellipse_axes_area` -- any ellipse given by the four ends of its axes (as DICOM's SCOORD
  ELLIPSE: major axis first), mm2
* :func:`angle` -- three points, the middle one the vertex, deg

Spectral Doppler region (X in s, Y in cm/s):

* :func:`velocity` -- velocity at a point, cm/s, signed: the baseline is
  where the region's calibration gives 0 cm/s (from its reference pixel),
  and the sign comes from the sign of Physical Delta Y, so flow towards the
  transducer is positive as the scanner calibrated it, whichever way up the
  spectrum is drawn.
* :func:`psv` / :func:`edv` -- peak systolic / end diastolic velocity
  calipers (magnitude; EDV is signed relative to the PSV's direction when
  both are known, so diastolic flow reversal gives a negative EDV and RI > 1)
* :func:`resistivity_index` -- RI = (PSV - EDV) / PSV from two calipers
* :func:`time_interval` / :func:`acceleration_time` -- ms between two points
* :func:`trace_envelope` + :func:`spectral_indices` -- the maximum-velocity
  envelope traced automatically between two chosen times (whole cardiac
  cycles, end-diastole to end-diastole), giving PSV (highest envelope
  velocity), EDV (envelope at the end of the span), TAMAX (time average of
  the envelope), PI = (PSV - EDV) / TAMAX and RI = (PSV - EDV) / PSV.

:func:`ratio` divides two measurements of the same unit (ICA/CCA PSV ratio).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mdtviewer.imaging.usregions import MeasurementError, USRegion, region_at

__all__ = [
    "MeasurementError", "Measured", "Envelope", "distance", "length", "polygon_area", "ellipse_area",
    "ellipse_axes_area", "angle",
    "velocity", "psv", "edv", "resistivity_index", "time_interval", "acceleration_time", "trace_envelope",
    "spectral_indices", "ratio", "baseline_row", "measure", "KINDS", "UNITS",
]

Point = tuple[float, float]

#: UCUM unit of each kind of value
UNITS = {
    "distance": "mm", "length": "mm", "area": "mm2", "angle": "deg", "velocity": "cm/s", "psv": "cm/s",
    "edv": "cm/s", "tamax": "cm/s", "ri": "1", "pi": "1", "time": "ms", "acceleration-time": "ms", "ratio": "1",
}
KINDS = tuple(UNITS)


@dataclass(frozen=True)
class Measured:
    """One computed value and how it was made.

    ``points`` are the image pixels (column, row) the value was computed from
    (for a traced PI, the envelope itself); ``graphic`` says how to draw
    them: POINT, POLYLINE (open), POLYGON (closed outline) or ELLIPSE (the
    four ends of its axes: major then minor).  ``extra`` holds the companion
    values a traced PI also yields (psv, edv, tamax, ri).
    """

    kind: str
    value: float
    unit: str
    points: tuple[Point, ...]
    graphic: str
    region: USRegion | None = None
    extra: dict[str, float] = field(default_factory=dict)


def _pts(points: Sequence[Sequence[float]], n_min: int, what: str, n_max: int | None = None) -> list[Point]:
    out: list[Point] = []
    for p in points:
        if len(p) != 2:
            raise MeasurementError(f"{what}: a point is [column, row], got {list(p)!r}")
        x, y = float(p[0]), float(p[1])
        if not (math.isfinite(x) and math.isfinite(y)):
            raise MeasurementError(f"{what}: point coordinates must be finite numbers")
        out.append((x, y))
    if len(out) < n_min or (n_max is not None and len(out) > n_max):
        want = f"{n_min}" if n_max == n_min else (f"{n_min} to {n_max}" if n_max else f"at least {n_min}")
        raise MeasurementError(f"{what} needs {want} points, got {len(out)}")
    return out


def _one_region(regions: Sequence[USRegion], points: list[Point], what: str, need: str) -> USRegion:
    """The one region holding every point, calibrated as *need* ('2D' or 'doppler')."""
    if not regions:
        raise MeasurementError(f"no ultrasound calibration regions in this image: {what} cannot be measured")
    found: USRegion | None = None
    for i, p in enumerate(points):
        r = region_at(list(regions), *p)
        if r is None:
            raise MeasurementError(f"{what}: point {i + 1} ({p[0]:g}, {p[1]:g}) is outside every calibrated region")
        if found is not None and r is not found:
            raise MeasurementError(f"{what}: the points are in different regions ({found.describe()} and "
                                   f"{r.describe()})")
        found = r
    assert found is not None
    if need == "2D" and not found.is_spatial_cm:
        raise MeasurementError(f"{what}: {found.describe()} has no spatial (cm) calibration")
    if need == "doppler" and not found.is_spectral_doppler:
        raise MeasurementError(f"{what}: {found.describe()} is not a calibrated spectral Doppler region")
    if found.note:
        raise MeasurementError(f"{what}: {found.note}")
    return found


def _cm(r: USRegion, p: Point) -> tuple[float, float]:
    return p[0] * r.physical_delta_x, p[1] * r.physical_delta_y


# --- 2D -------------------------------------------------------------------------------------------

def distance(regions: Sequence[USRegion], p0: Sequence[float], p1: Sequence[float]) -> Measured:
    pts = _pts([p0, p1], 2, "distance", 2)
    r = _one_region(regions, pts, "distance", "2D")
    (ax, ay), (bx, by) = _cm(r, pts[0]), _cm(r, pts[1])
    return Measured("distance", math.hypot(bx - ax, by - ay) * 10.0, "mm", tuple(pts), "POLYLINE", r)


def length(regions: Sequence[USRegion], points: Sequence[Sequence[float]]) -> Measured:
    pts = _pts(points, 2, "length")
    r = _one_region(regions, pts, "length", "2D")
    cm = [_cm(r, p) for p in pts]
    total = sum(math.hypot(b[0] - a[0], b[1] - a[1]) for a, b in zip(cm, cm[1:]))
    return Measured("length", total * 10.0, "mm", tuple(pts), "POLYLINE", r)


def polygon_area(regions: Sequence[USRegion], points: Sequence[Sequence[float]]) -> Measured:
    """Area inside a polygon or freehand outline (closed implicitly), by the shoelace formula."""
    pts = _pts(points, 3, "area")
    if pts[0] == pts[-1]:
        pts = pts[:-1]
        if len(pts) < 3:
            raise MeasurementError("area needs at least 3 distinct points")
    r = _one_region(regions, pts, "area", "2D")
    cm = [_cm(r, p) for p in pts]
    s = sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(cm, cm[1:] + cm[:1]))
    return Measured("area", abs(s) / 2.0 * 100.0, "mm2", tuple(pts), "POLYGON", r)


def ellipse_area(regions: Sequence[USRegion], corner0: Sequence[float], corner1: Sequence[float]) -> Measured:
    """Area of the axis-aligned ellipse inscribed in the box with these opposite corners."""
    (x0, y0), (x1, y1) = _pts([corner0, corner1], 2, "ellipse", 2)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    axes = [(x0, cy), (x1, cy), (cx, y0), (cx, y1)]
    r = _one_region(regions, [(x0, y0), (x1, y1)], "ellipse", "2D")
    a = abs(x1 - x0) / 2 * abs(r.physical_delta_x)
    b = abs(y1 - y0) / 2 * abs(r.physical_delta_y)
    if a == 0 or b == 0:
        raise MeasurementError("ellipse: the two corners must differ in both column and row")
    if a < b:  # major axis first (DICOM SCOORD ELLIPSE)
        axes = axes[2:] + axes[:2]
    return Measured("area", math.pi * a * b * 100.0, "mm2", tuple(axes), "ELLIPSE", r)


def ellipse_axes_area(regions: Sequence[USRegion], points: Sequence[Sequence[float]]) -> Measured:
    """Area of the ellipse whose axes end at the four *points* (first axis, then the other), mm2.

    The half-axes are taken to physical space (cm) with the region's own
    scales; their images are conjugate semi-diameters of the physical
    ellipse, so its area is pi * |u x v| exactly, also with non-square pixels
    and a tilted ellipse.  The two axes must cross at their mid-points and be
    perpendicular on the image (within 2 % of their lengths).
    """
    pts = _pts(points, 4, "ellipse", 4)
    r = _one_region(regions, pts, "ellipse", "2D")
    (a0, a1, b0, b1) = pts
    ux, uy = (a1[0] - a0[0]) / 2, (a1[1] - a0[1]) / 2
    vx, vy = (b1[0] - b0[0]) / 2, (b1[1] - b0[1]) / 2
    la, lb = math.hypot(ux, uy), math.hypot(vx, vy)
    if la == 0 or lb == 0:
        raise MeasurementError("ellipse: each axis needs two different end points")
    ca = ((a0[0] + a1[0]) / 2, (a0[1] + a1[1]) / 2)
    cb = ((b0[0] + b1[0]) / 2, (b0[1] + b1[1]) / 2)
    tol = 0.02 * max(la, lb) + 0.5
    if math.hypot(ca[0] - cb[0], ca[1] - cb[1]) > tol:
        raise MeasurementError("ellipse: the two axes must cross at their mid-points (points: axis 1 ends, "
                               "then axis 2 ends)")
    if abs(ux * vx + uy * vy) / (la * lb) > 0.02:
        raise MeasurementError("ellipse: the two axes must be perpendicular")
    dx, dy = abs(r.physical_delta_x), abs(r.physical_delta_y)
    cross = abs((ux * dx) * (vy * dy) - (uy * dy) * (vx * dx))
    ordered = tuple(pts)
    if math.hypot(ux * dx, uy * dy) < math.hypot(vx * dx, vy * dy):  # major axis first (DICOM SCOORD ELLIPSE)
        ordered = (b0, b1, a0, a1)
    return Measured("area", math.pi * cross * 100.0, "mm2", ordered, "ELLIPSE", r)


def angle(regions: Sequence[USRegion], a: Sequence[float], vertex: Sequence[float], b: Sequence[float]) -> Measured:
    """Angle at *vertex* between the rays to *a* and *b*, 0-180 deg, in physical space."""
    pts = _pts([a, vertex, b], 3, "angle", 3)
    r = _one_region(regions, pts, "angle", "2D")
    (ax, ay), (vx, vy), (bx, by) = (_cm(r, p) for p in pts)
    u, v = (ax - vx, ay - vy), (bx - vx, by - vy)
    if math.hypot(*u) == 0 or math.hypot(*v) == 0:
        raise MeasurementError("angle: the vertex must differ from both end points")
    deg = math.degrees(math.atan2(abs(u[0] * v[1] - u[1] * v[0]), u[0] * v[0] + u[1] * v[1]))
    return Measured("angle", deg, "deg", tuple(pts), "POLYLINE", r)


# --- spectral Doppler -----------------------------------------------------------------------------

def baseline_row(r: USRegion) -> float:
    """Image row where the region's calibration gives 0 cm/s (the spectral baseline)."""
    return r.y0 + r.reference_pixel_y0 - r.ref_physical_y0 / r.physical_delta_y


def _v(r: USRegion, p: Point) -> float:
    return r.physical_y(p[1])


def velocity(regions: Sequence[USRegion], p: Sequence[float]) -> Measured:
    """Signed velocity (cm/s) at a point of a spectral Doppler region."""
    pts = _pts([p], 1, "velocity", 1)
    r = _one_region(regions, pts, "velocity", "doppler")
    return Measured("velocity", _v(r, pts[0]), "cm/s", tuple(pts), "POINT", r)


def psv(regions: Sequence[USRegion], p: Sequence[float]) -> Measured:
    """Peak systolic velocity caliper: the magnitude of the velocity at the peak."""
    pts = _pts([p], 1, "PSV", 1)
    r = _one_region(regions, pts, "PSV", "doppler")
    return Measured("psv", abs(_v(r, pts[0])), "cm/s", tuple(pts), "POINT", r)


def edv(regions: Sequence[USRegion], p: Sequence[float], psv_point: Sequence[float] | None = None) -> Measured:
    """End diastolic velocity caliper: magnitude, or signed relative to the PSV's direction when
    *psv_point* (in the same region) is given (reversed diastolic flow is then negative)."""
    pts = _pts([p] if psv_point is None else [p, psv_point], 1, "EDV", 2)
    r = _one_region(regions, pts, "EDV", "doppler")
    v = _v(r, pts[0])
    if psv_point is None:
        return Measured("edv", abs(v), "cm/s", (pts[0],), "POINT", r)
    sign = 1.0 if _v(r, pts[1]) >= 0 else -1.0
    return Measured("edv", v * sign, "cm/s", (pts[0],), "POINT", r)


def resistivity_index(regions: Sequence[USRegion], p_psv: Sequence[float], p_edv: Sequence[float]) -> Measured:
    """RI = (PSV - EDV) / PSV from a PSV and an EDV caliper in the same Doppler region."""
    pts = _pts([p_psv, p_edv], 2, "RI", 2)
    r = _one_region(regions, pts, "RI", "doppler")
    vp = _v(r, pts[0])
    if vp == 0:
        raise MeasurementError("RI: the PSV caliper is on the baseline (0 cm/s)")
    peak, end = abs(vp), _v(r, pts[1]) * (1.0 if vp > 0 else -1.0)
    return Measured("ri", (peak - end) / peak, "1", tuple(pts), "POLYLINE", r, {"psv": peak, "edv": end})


def time_interval(regions: Sequence[USRegion], p0: Sequence[float], p1: Sequence[float],
                  kind: str = "time") -> Measured:
    """Time (ms) between two points of a Doppler region (any two columns)."""
    what = "acceleration time" if kind == "acceleration-time" else "time interval"
    pts = _pts([p0, p1], 2, what, 2)
    r = _one_region(regions, pts, what, "doppler")
    if r.physical_delta_x == 0:
        raise MeasurementError(f"{what}: {r.describe()} has no time calibration")
    dt = (r.physical_x(pts[1][0]) - r.physical_x(pts[0][0])) * 1000.0
    if kind == "acceleration-time" and dt <= 0:
        raise MeasurementError("acceleration time: the peak must come after the start of the upstroke")
    return Measured(kind, abs(dt), "ms", tuple(pts), "POLYLINE", r)


def acceleration_time(regions: Sequence[USRegion], p_start: Sequence[float], p_peak: Sequence[float]) -> Measured:
    """Time from the start of the systolic upstroke to the peak, ms."""
    return time_interval(regions, p_start, p_peak, kind="acceleration-time")


@dataclass(frozen=True)
class Envelope:
    """The maximum-velocity envelope of a spectrum between two columns.

    ``columns`` are image columns, ``rows`` the envelope row in each (float),
    ``velocities`` the signed-to-flow velocity (cm/s, positive in the flow's
    direction) and ``times_s`` the time of each column from the region's X
    calibration.  ``direction`` is +1 for flow above the zero of the
    calibration (positive velocities), -1 for the other side.
    """

    region: USRegion
    columns: np.ndarray
    rows: np.ndarray
    velocities: np.ndarray
    times_s: np.ndarray
    direction: int

    def points(self) -> tuple[Point, ...]:
        return tuple((float(c), float(r)) for c, r in zip(self.columns, self.rows))

    def adjusted(self, column: int, row: float) -> Envelope:
        """The same envelope with the point at *column* moved to *row* (the user corrects the trace)."""
        idx = np.nonzero(self.columns == column)[0]
        if not len(idx):
            raise MeasurementError(f"column {column} is not part of this trace")
        rows = self.rows.astype(float).copy()
        rows[idx[0]] = row
        vel = self.velocities.copy()
        vel[idx[0]] = self.region.physical_y(row) * self.direction
        return Envelope(self.region, self.columns, rows, vel, self.times_s, self.direction)


def _intensity(frame: np.ndarray) -> np.ndarray:
    a = np.asarray(frame)
    if a.ndim == 3:
        a = a.max(axis=2)
    if a.ndim != 2:
        raise MeasurementError("the frame is not a 2D image")
    return a.astype(np.float32)


def trace_envelope(regions: Sequence[USRegion], frame: np.ndarray, p_start: Sequence[float],
                   p_end: Sequence[float], *, threshold: float = 0.35, min_run: int | None = None) -> Envelope:
    """Trace the maximum-velocity envelope between the columns of *p_start* and *p_end*.

    Both points must be in one spectral Doppler region (their rows only pick
    the region).  The side of the baseline with the brighter mean is the flow
    side.  In each column the envelope is the outermost pixel, walking out
    from the baseline, that is brighter than ``background + threshold *
    (bright - background)`` (percentiles 20 and 99 of the flow side), allowing
    gaps of at most *max_gap* pixels (default 2 % of the side's height, at
    least 3) so isolated labels and speckle beyond the spectrum are not taken
    for flow.  A 3-column median removes single-column spikes.
    """
    pts = _pts([p_start, p_end], 2, "envelope trace", 2)
    r = _one_region(regions, pts, "envelope trace", "doppler")
    img = _intensity(frame)
    if img.shape[0] <= r.y1 or img.shape[1] <= r.x1:
        raise MeasurementError("envelope trace: the frame is smaller than its Doppler region")
    c0, c1 = sorted((int(round(pts[0][0])), int(round(pts[1][0]))))
    c0, c1 = max(c0, r.x0 + 1), min(c1, r.x1 - 1)  # the region's border may be a drawn frame
    if c1 - c0 < 3:
        raise MeasurementError("envelope trace: choose a span of at least a few columns (whole cardiac cycles)")
    base = baseline_row(r)
    b = int(round(base))
    top, bottom = r.y0 + 1, r.y1 - 1
    if not top + 2 < b < bottom - 2:
        raise MeasurementError("envelope trace: the baseline is not inside the Doppler region")
    strip = img[:, c0:c1 + 1]
    # the baseline line itself (rows b-1..b+1) is often drawn bright: it is not flow
    above, below = strip[top:b - 1], strip[b + 2:bottom + 1]
    up = float(np.sum(above)) / max(above.shape[0], 1) >= float(np.sum(below)) / max(below.shape[0], 1)
    side = above if up else below
    lo, hi = np.percentile(side, 20), np.percentile(side, 99)
    if hi <= lo:
        raise MeasurementError("envelope trace: no spectrum in the chosen span")
    bright = side > lo + threshold * (hi - lo)
    if not up:
        bright = bright[::-1]  # row 0 = the outermost row of the side, for both sides
    run = max(3, int(0.01 * side.shape[0])) if min_run is None else min_run
    # walking in from the outer edge, the envelope is the first pixel of a run of *run* bright
    # pixels: isolated speckle and thin labels beyond the spectrum are not taken for flow,
    # and a dark spectral window near the baseline does not stop the trace
    n = bright.shape[0]
    csum = np.vstack([np.zeros((1, bright.shape[1]), dtype=np.int32), np.cumsum(bright, axis=0, dtype=np.int32)])
    runs = (csum[run:] - csum[:-run]) == run if n >= run else np.zeros((0, bright.shape[1]), dtype=bool)
    rows_out = np.empty(c1 - c0 + 1, dtype=float)
    for j in range(c1 - c0 + 1):
        hit = np.flatnonzero(runs[:, j])
        if not len(hit):
            rows_out[j] = base  # no flow in this column
        else:
            k = int(hit[0])
            rows_out[j] = (top + k) if up else (bottom - k)
    if len(rows_out) >= 3:
        padded = np.concatenate([rows_out[:1], rows_out, rows_out[-1:]])
        med = np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)
        rows_out = np.where(np.abs(rows_out - med) > 3, med, rows_out)  # a lone spike, not a sharp peak
    cols = np.arange(c0, c1 + 1)
    direction = 1 if (r.physical_y(base - 1.0) > 0) == up else -1
    vel = np.array([r.physical_y(y) for y in rows_out]) * direction
    vel[rows_out == base] = 0.0
    times = np.array([r.physical_x(float(c)) for c in cols])
    return Envelope(r, cols, rows_out, vel, times, direction)


def spectral_indices(env: Envelope) -> Measured:
    """PI of a traced envelope (value), with PSV, EDV, TAMAX and RI in ``extra``.

    PSV: highest envelope velocity; EDV: the envelope at the end of the span
    (mean of its last three columns: the span ends at end-diastole); TAMAX:
    the time average of the envelope over the span; PI = (PSV - EDV) / TAMAX;
    RI = (PSV - EDV) / PSV.
    """
    v = env.velocities
    peak = float(np.max(v))
    if peak <= 0:
        raise MeasurementError("envelope trace: no forward flow found in the chosen span")
    end = float(np.mean(v[-3:]))
    tamax = float(np.mean(v))
    if tamax <= 0:
        raise MeasurementError("envelope trace: the time-averaged maximum velocity is not positive")
    extra = {"psv": peak, "edv": end, "tamax": tamax, "ri": (peak - end) / peak}
    return Measured("pi", (peak - end) / tamax, "1", env.points(), "POLYLINE", env.region, extra)


# --- ratio ----------------------------------------------------------------------------------------

def ratio(numerator: Measured, denominator: Measured) -> Measured:
    """*numerator* / *denominator* (same unit; e.g. ICA PSV / CCA PSV), unit 1."""
    if numerator.unit != denominator.unit:
        raise MeasurementError(f"ratio: cannot divide {numerator.unit} by {denominator.unit}")
    if denominator.value == 0:
        raise MeasurementError("ratio: the second measurement is zero")
    return Measured("ratio", numerator.value / denominator.value, "1", (), "", None,
                    {"numerator": numerator.value, "denominator": denominator.value})


def _count(kind: str, pts: Sequence[Sequence[float]], n: int) -> None:
    if len(pts) != n:
        raise MeasurementError(f"{kind} needs {n} point{'s' if n > 1 else ''}, got {len(pts)}")


def measure(kind: str, regions: Sequence[USRegion], points: Sequence[Sequence[float]],
            frame: Callable[[], np.ndarray] | np.ndarray | None = None) -> Measured:
    """One measurement of *kind* from image-pixel *points* -- the single entry for tools and files.

    Kinds and points: ``distance`` 2; ``length`` 2 or more; ``area`` 3 or more
    (polygon / freehand); ``ellipse`` 2 (opposite corners of its box) or 4 (the ends of
    its axes);
    ``angle`` 3 (vertex in the middle); ``velocity``, ``psv``, ``edv`` 1;
    ``ri`` 2 (PSV caliper, then EDV caliper); ``time``,
    ``acceleration-time`` 2; ``pi`` 2 (start and end of the chosen cycles;
    needs *frame*: the pixels, or a callable returning them, called only
    for ``pi``).  Raises :class:`MeasurementError` with the reason.
    """
    p = list(points)
    if kind == "distance":
        _count(kind, p, 2)
        return distance(regions, p[0], p[1])
    if kind == "length":
        return length(regions, p)
    if kind == "area":
        return polygon_area(regions, p)
    if kind == "ellipse":
        if len(p) == 4:  # the four ends of its axes (sr write JSON, a saved SCOORD ELLIPSE)
            return ellipse_axes_area(regions, p)
        _count(kind, p, 2)
        return ellipse_area(regions, p[0], p[1])
    if kind == "angle":
        _count(kind, p, 3)
        return angle(regions, p[0], p[1], p[2])
    if kind in ("psv", "edv", "velocity"):
        _count(kind, p, 1)
        return {"psv": psv, "edv": edv, "velocity": velocity}[kind](regions, p[0])
    if kind in ("ri", "time", "acceleration-time", "pi"):
        _count(kind, p, 2)
        if kind == "ri":
            return resistivity_index(regions, p[0], p[1])
        if kind == "pi":
            if frame is None:
                raise MeasurementError("pi: the frame's pixels are needed to trace the envelope")
            pixels = frame() if callable(frame) else frame
            return spectral_indices(trace_envelope(regions, pixels, p[0], p[1]))
        return time_interval(regions, p[0], p[1], kind=kind)
    raise MeasurementError(f"unknown measurement {kind!r}")
