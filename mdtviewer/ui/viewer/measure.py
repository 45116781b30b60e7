"""Calibrated measurement and Doppler read-out over the Sequence of Ultrasound Regions.

Distances use the region each end point lies in (a frame can hold a 2D image
and a Doppler strip with different scales); a line that crosses regions or
lies outside every calibrated region is refused with the reason, never
measured with the wrong scale.  Without any calibration the length is given in
pixels and says so.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import QLineEdit, QWidget

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
    # annotations (no value): an arrow dragged from its tail to its head; a text label at a click
    "arrow": ("arrow", "Arrow", "drag"),
    "text": ("text", "Text", "clicks:1"),
}
#: tools that annotate (saved in the measurement SR as TID 1410 regions with words, no value)
ANNOTATION_TOOLS = ("arrow", "text")

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
    "arrow": "Arrow: drag from the tail to the point shown",
    "text": "Text: click where it goes, type, Return (Esc cancels)",
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
    #: an annotation's words (a text label; optional on an arrow)
    note: str = ""
    #: read back from another party's measurement SR (another workstation's, a PACS's, `sr write`): drawn, never
    #: written into our report nor amended by this viewer (their report stays as its author made it)
    read_only: bool = False

    @property
    def is_annotation(self) -> bool:
        return self.kind in ANNOTATION_TOOLS

    @property
    def to_save(self) -> bool:
        """Has something to write to the measurement SR: a value, or an annotation."""
        return self.ok and bool(self.sop_instance_uid) and (self.value is not None or self.is_annotation)

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
        if self.is_annotation:
            return f"{TOOLS[self.kind][1]}: {self.note}" if self.note else f"{TOOLS[self.kind][1]} added"
        if not self.ok:
            return f"Measurement refused: {self.reason}"
        label = TOOLS.get(self.tool, ("", KIND_LABELS.get(self.kind, self.kind), ""))[1]
        return self.text if self.text.startswith(label) else f"{label}: {self.text}"

    def on(self, sop_instance_uid: str, frame: int | None) -> bool:
        return self.sop_instance_uid == sop_instance_uid and (self.frame is None or self.frame == frame)


def annotation_mark(tool: str, points: list[tuple[float, float]], note: str = "", **where: object) -> Mark:
    """An arrow (tail, head) or a text label (anchor) drawn with the mouse: no value, no calibration needed."""
    pts = tuple((float(x), float(y)) for x, y in points)
    note = " ".join(note.split())
    return Mark(tool, tool, pts, True, note, graphic="POLYLINE" if tool == "arrow" else "POINT", note=note,
                **where)  # type: ignore[arg-type]


def mark_from_annotation(a: object, path: str = "", study_instance_uid: str = "") -> Mark | None:
    """An arrow or text label read back from a measurement SR, drawn again (kept as it was when amending)."""
    kind = str(getattr(a, "kind", ""))
    pts = list(getattr(a, "points", ()) or ())
    uid = str(getattr(a, "sop_instance_uid", ""))
    if kind not in ANNOTATION_TOOLS or not pts or not uid:
        return None
    m = annotation_mark(kind, pts, str(getattr(a, "text", "")), sop_instance_uid=uid,
                        frame=getattr(a, "frame", None), path=path, study_instance_uid=study_instance_uid)
    m.saved, m.source = True, a
    return m


def compute_mark(tool: str, regions: list[USRegion], points: list[tuple[float, float]], **where: object) -> Mark:
    """The value of *tool* over image *points* from the core (``imaging.measurements.measure``), or why not."""
    from mdtviewer.imaging import measurements as core

    if tool in ANNOTATION_TOOLS:
        return annotation_mark(tool, points, **where)

    kind, label, _g = TOOLS[tool]
    pts = tuple((float(x), float(y)) for x, y in points)
    # on screen a distance is its value alone (a line needs no name); the others say what they are
    named = tool != "distance"
    try:
        r = core.measure(kind, regions, pts)
    except MeasurementError as exc:
        # the reason goes whole to the status bar (Mark.status); on the image, while the line is dragged, only
        # a short "not measured" (a long reason painted over the image was cut off and said the tool twice)
        text = f"{label} not measured" if named else "not measured"
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


# --------------------------------------------------------------------------- label placement (issue 15, QA)
Rect = tuple[float, float, float, float]  # x, y, width, height (widget pixels)


def _hits(r: Rect, placed: list[Rect], gap: float) -> bool:
    x, y, w, h = r
    return any(x < px + pw + gap and px < x + w + gap and y < py + ph + gap and py < y + h + gap
               for px, py, pw, ph in placed)


def place_labels(anchors: list[tuple[float, float]], sizes: list[tuple[float, float]],
                 bounds: Rect, gap: float = 2.0) -> list[Rect]:
    """Where each measurement label goes: beside its anchor if free, else the next free slot.

    *anchors*: the point each label belongs to (widget pixels); *sizes*:
    (width, height) of each label; *bounds*: (x, y, width, height) the labels
    must stay in (the viewport below the scanner's banner).  Labels are placed
    in order; each tries above-right, above-left, below-right and below-left
    of its anchor, then slots one label height further down and up (right of
    the anchor, then left), then anywhere in the viewport (columns, then a fine grid), and takes the first
    that stays inside *bounds* and overlaps no label already placed.  Only if
    the viewport is full does a label overlap (the last candidate near its
    anchor).  The caller draws a leader line when a label is away from its
    anchor (:func:`needs_leader`).
    """
    bx, by, bw, bh = bounds
    placed: list[Rect] = []

    def clamp(x: float, y: float, w: float, h: float) -> Rect:
        return (min(max(bx, x), max(bx, bx + bw - w)), min(max(by, y), max(by, by + bh - h)), w, h)

    for (ax, ay), (w, h) in zip(anchors, sizes):
        right, left = ax + 8, ax - w - 8
        above, below = ay - h - 4, ay + 4
        cands = [(right, above), (left, above), (right, below), (left, below)]
        step = h + gap
        for k in range(1, 40):
            cands += [(right, above + k * step), (right, above - k * step),
                      (left, above + k * step), (left, above - k * step)]
        # anywhere: columns of the viewport, nearest rows first
        for col in (bx + bw - w, bx, bx + (bw - w) / 2):
            rows = [by + i * step for i in range(int(max(0.0, bh - h) // step) + 1)]
            cands += [(col, y) for y in sorted(rows, key=lambda y: abs(y - ay))]
        choice = None
        for x, y in cands:
            r = clamp(x, y, w, h)
            if not _hits(r, placed, gap):
                choice = r
                break
        if choice is None:  # crowded: every free spot of a fine grid, nearest the anchor first
            xs = [bx + i * 6.0 for i in range(int(max(0.0, bw - w) // 6) + 1)]
            ys = [by + j * 4.0 for j in range(int(max(0.0, bh - h) // 4) + 1)]
            grid = sorted(itertools.product(xs, ys), key=lambda q: (q[0] - ax) ** 2 + (q[1] - ay) ** 2)
            choice = next((r for q in grid if not _hits(r := (q[0], q[1], w, h), placed, gap)), None)
        placed.append(choice if choice is not None else clamp(right, above, w, h))
    return placed


def needs_leader(anchor: tuple[float, float], r: Rect) -> bool:
    """A label moved away from its measurement gets a leader line (more than 12 px from its anchor)."""
    x, y, w, h = r
    dx = max(x - anchor[0], 0.0, anchor[0] - (x + w))
    dy = max(y - anchor[1], 0.0, anchor[1] - (y + h))
    return math.hypot(dx, dy) > 12


def leader_end(anchor: tuple[float, float], r: Rect) -> tuple[float, float]:
    """The point of the label's box nearest its anchor (where the leader line meets the label)."""
    x, y, w, h = r
    return min(max(anchor[0], x), x + w), min(max(anchor[1], y), y + h)


def ellipse_anchor(pts: list[tuple[float, float]]) -> tuple[float, float]:
    """Where an ellipse's label is tied: the point of the drawn ellipse (the box of its axis ends) up and right
    of its centre, on the curve itself -- not the box's corner, which lies outside the ellipse and can sit
    nearer another shape than its own (QA2 #8)."""
    xs, ys = [q[0] for q in pts], [q[1] for q in pts]
    cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
    return cx + (max(xs) - min(xs)) / 2 * math.sqrt(0.5), cy - (max(ys) - min(ys)) / 2 * math.sqrt(0.5)


def shape_outline(graphic: str, kind: str, pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The drawn shape of a measurement as a polyline (widget pixels): what its label must be seen to belong
    to; an ellipse as 36 points on its curve, a polygon closed, a caliper or text its point(s)."""
    pts = [(float(x), float(y)) for x, y in pts]
    if graphic == "ELLIPSE" and len(pts) == 4:
        xs, ys = [q[0] for q in pts], [q[1] for q in pts]
        cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
        a, b = (max(xs) - min(xs)) / 2, (max(ys) - min(ys)) / 2
        return [(cx + a * math.cos(t * math.pi / 18), cy + b * math.sin(t * math.pi / 18)) for t in range(37)]
    if graphic == "POLYGON" and len(pts) > 2 and kind not in ANNOTATION_TOOLS:
        return pts + [pts[0]]
    return pts


def _point_rect_distance(q: tuple[float, float], r: Rect) -> float:
    x, y, w, h = r
    return math.hypot(max(x - q[0], 0.0, q[0] - (x + w)), max(y - q[1], 0.0, q[1] - (y + h)))


def shape_rect_distance(shape: list[tuple[float, float]], r: Rect) -> float:
    """How far a label box is from a drawn shape (its nearest point, along its segments), widget pixels."""
    if not shape:
        return math.inf
    best = min(_point_rect_distance(q, r) for q in shape)
    for (x0, y0), (x1, y1) in zip(shape, shape[1:]):
        n = int(math.hypot(x1 - x0, y1 - y0) // 3)
        for i in range(1, n):
            t = i / n
            best = min(best, _point_rect_distance((x0 + t * (x1 - x0), y0 + t * (y1 - y0)), r))
    return best


def leaders(anchors: list[tuple[float, float]], rects: list[Rect],
            shapes: list[list[tuple[float, float]]] | None = None) -> list[bool]:
    """Which labels get a leader line to their own measurement: every label moved away from its anchor
    (:func:`needs_leader`), and every label that lies as near another measurement's shape as its own (it would
    read as the other's: the ellipse's "Area" beside the polygon's corner, QA2 #8)."""
    shapes = shapes if shapes is not None else [[a] for a in anchors]
    out = []
    for i, (a, r) in enumerate(zip(anchors, rects)):
        if needs_leader(a, r):
            out.append(True)
            continue
        own = min(_point_rect_distance(a, r), shape_rect_distance(shapes[i], r) if i < len(shapes) else math.inf)
        out.append(any(shape_rect_distance(s, r) <= own + 4 for j, s in enumerate(shapes) if j != i and s))
    return out


def label_px(view_height: float, image_on_screen: tuple[float, float], overlay_scale: float = 1.0) -> int:
    """The measurement labels' text size (pixels): grows with the viewport and presenter mode (legible on a
    projector), but never large against the image as displayed -- a narrow viewport showing the image at 28 %
    had full-size labels covering it (QA2 #8): at most 1/20 of the displayed image's height (and 1/26 of its
    width), at least 9 px."""
    base = max(13.0, min(24.0, view_height / 45.0)) * overlay_scale
    w, h = image_on_screen
    cap = min(h / 20.0, w / 26.0) if w > 0 and h > 0 else base
    return int(round(max(9.0, min(base, cap))))


def rects_overlap(a: Rect, b: Rect) -> bool:
    """Two label boxes share area (touching edges do not count)."""
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


# --------------------------------------------------------------------------- text annotations: typed in place
TEXT_ENTRY_NAME = "annotationTextEntry"


class TextEntry(QLineEdit):
    """The one-line editor of a text annotation: Return adds it, Esc cancels (see :func:`open_text_entry`)."""

    def __init__(self, vp: QWidget, point: tuple[float, float]) -> None:
        super().__init__(vp)
        self.setObjectName(TEXT_ENTRY_NAME)
        self.setPlaceholderText("annotation text, Return")
        self.setMaxLength(200)
        self._vp, self._point, self._done = vp, point, False
        self.returnPressed.connect(lambda: self.finish(True))
        self.editingFinished.connect(lambda: self.finish(bool(self.text().strip())))

    def event(self, ev: Any) -> bool:
        # every key typed here is for the text: the window's single-key shortcuts (Return maximises,
        # P is the PSV tool ...) must not take them while the user types
        if ev.type() == QEvent.Type.ShortcutOverride:
            ev.accept()
            return True
        return super().event(ev)

    def keyPressEvent(self, ev: Any) -> None:
        if ev.key() == Qt.Key.Key_Escape:
            self.finish(False)
            return
        super().keyPressEvent(ev)

    def finish(self, commit: bool) -> None:
        if self._done:
            return
        self._done = True
        self.setObjectName("")  # no longer the entry being typed (deleted later)
        words = self.text().strip()
        self.hide()
        self.deleteLater()
        self._vp.setFocus()
        if commit and words:
            self._vp.add_mark("text", [self._point], note=words)  # type: ignore[attr-defined]


def open_text_entry(vp: QWidget, point: tuple[float, float]) -> TextEntry:
    """A one-line editor over the viewport at *point* (image pixels): Return adds the text label there,
    Esc (or leaving it empty) cancels.  Never a modal dialog: nothing blocks, also offscreen."""
    old = vp.findChild(TextEntry, TEXT_ENTRY_NAME)
    if old is not None:
        old.finish(False)
    entry = TextEntry(vp, point)
    w = vp.to_widget(*point)  # type: ignore[attr-defined]
    entry.resize(max(160, vp.width() // 4), entry.sizeHint().height())
    entry.move(int(min(max(0.0, w.x()), max(0, vp.width() - entry.width()))),
               int(min(max(0.0, w.y()), max(0, vp.height() - entry.height()))))
    entry.show()
    entry.setFocus()
    return entry


def draw_arrow(p: Any, tail: Any, head: Any) -> None:
    """An arrow from *tail* to *head* (widget QPointF) with a filled head, as Weasis/Horos draw it."""
    from PySide6.QtGui import QPolygonF

    p.drawLine(tail, head)
    dx, dy = head.x() - tail.x(), head.y() - tail.y()
    n = math.hypot(dx, dy)
    if n < 1:
        return
    ux, uy = dx / n, dy / n
    size = min(16.0, max(8.0, n / 4))
    left = type(head)(head.x() - size * ux + size * 0.45 * uy, head.y() - size * uy - size * 0.45 * ux)
    right = type(head)(head.x() - size * ux - size * 0.45 * uy, head.y() - size * uy + size * 0.45 * ux)
    p.save()
    p.setBrush(p.pen().color())
    p.drawPolygon(QPolygonF([head, left, right]))
    p.restore()
