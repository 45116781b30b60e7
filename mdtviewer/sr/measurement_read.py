"""Read measurements back from any SR: our TID 1500 reports and vendors' TID 5100 vascular reports.

A tolerant walk of the content tree with plain pydicom (highdicom's parser
refuses much of what scanners send).  Every NUM item with a value becomes a
:class:`~mdtviewer.sr.measurement_report.SavedMeasurement`:

* the kind comes from its concept (:data:`~mdtviewer.sr.measurement_report.KIND_OF`;
  anything else is kept as kind ``other`` with its concept, so nothing is lost);
* vessel and side come from Finding Site / Laterality concept modifiers on
  the NUM, its measurement group or any enclosing container -- TID 1501
  groups (ours), TID 5104 measurement groups inside TID 5103 sections
  (vendors: laterality is often on the section), and old SNOMED-RT (SRT)
  codes, mapped to SNOMED CT with pydicom's SRT/SCT table;
  a Topographical Modifier (proximal, mid, distal ...) becomes ``segment``;
* the graphic comes from an INFERRED FROM SCOORD child (points converted
  back from DICOM image coordinates to pixel indexes, minus 0.5) and its
  SELECTED FROM IMAGE; without a SCOORD, from INFERRED FROM IMAGE children;
* units are converted to ours where they are plain scalings (m/s and mm/s
  to cm/s, cm to mm, cm2 to mm2, s to ms); any other unit is kept as written;
* in one of our PI groups the companion PSV / EDV / TAMAX / RI values are
  folded into the PI's ``extra``.

Damaged items are skipped with a note; reading never raises for a content
problem (only :class:`~mdtviewer.infra.errors.DicomInputError` for a file
that is not DICOM at all).
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydicom.dataset import Dataset

from mdtviewer.dicom import values
from mdtviewer.dicom.reader import read_dataset
from mdtviewer.sr import codes
from mdtviewer.sr.measurement_report import (
    COMMENT,
    FINDING_SITE,
    IMAGE_REGION,
    KIND_OF,
    LATERALITY,
    SIDES,
    SITE_OF_CODE,
    SavedAnnotation,
    SavedMeasurement,
)


@functools.cache
def _srt_to_sct() -> dict[str, str]:
    """pydicom's SNOMED-RT -> SNOMED CT table (PS3.16 Annex O), read on the first SRT code: importing
    pydicom.sr costs ~0.1 s, paid by the window's start-up otherwise (issue 12.5)."""
    try:  # a private module, so tolerate its absence
        from pydicom.sr._snomed_dict import mapping
    except ImportError:  # pragma: no cover - SRT codes then stay SRT: a vessel shows by its meaning
        return {}
    return dict(mapping.get("SRT", {}))


TOPOGRAPHICAL_MODIFIER = codes.C("106233006", "SCT", "Topographical modifier")
VASCULAR_REPORT = codes.C("125100", "DCM", "Vascular Ultrasound Procedure Report")

#: unit as found -> (our unit, factor)
_CONVERT = {
    "m/s": ("cm/s", 100.0), "mm/s": ("cm/s", 0.1), "cm/s": ("cm/s", 1.0),
    "cm": ("mm", 10.0), "mm": ("mm", 1.0), "cm2": ("mm2", 100.0), "mm2": ("mm2", 1.0),
    "s": ("ms", 1000.0), "ms": ("ms", 1.0), "deg": ("deg", 1.0), "1": ("1", 1.0), "{ratio}": ("1", 1.0),
    "%": ("%", 1.0),
}
_COMPANIONS = ("psv", "edv", "tamax", "ri")


@dataclass
class MeasurementDocument:
    sop_instance_uid: str
    study_instance_uid: str
    title: str
    is_vascular_report: bool
    predecessors: list[str]
    measurements: list[SavedMeasurement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: arrows and text labels (TID 1410 groups with an Image Region and no value)
    annotations: list[SavedAnnotation] = field(default_factory=list)

    @property
    def amended(self) -> bool:
        """This report amends an earlier one (it names it in the Predecessor Documents Sequence)."""
        return bool(self.predecessors)


def _code(item) -> codes.C | None:
    """(value, scheme, meaning) of the first item of a code sequence; SRT codes mapped to SCT."""
    if not item:
        return None
    c = item[0]
    value = values.text(c, "CodeValue") or values.text(c, "LongCodeValue") or values.text(c, "URNCodeValue")
    scheme = values.text(c, "CodingSchemeDesignator")
    meaning = values.text(c, "CodeMeaning")
    if scheme in ("SRT", "SNM3") and value in _srt_to_sct():
        value, scheme = _srt_to_sct()[value], "SCT"
    return codes.C(value, scheme, meaning)


def _concept(item: Dataset) -> codes.C | None:
    return _code(values.get(item, "ConceptNameCodeSequence"))


def _children(item: Dataset) -> list[Dataset]:
    return list(values.sequence(item, "ContentSequence"))


def _rel(item: Dataset) -> str:
    return values.text(item, "RelationshipType")


def _vt(item: Dataset) -> str:
    return values.text(item, "ValueType")


def _site_key(c: codes.C) -> str:
    return SITE_OF_CODE.get((c.value, c.scheme), c.meaning or c.value)


def _side_of(c: codes.C | None) -> str:
    if c is None:
        return ""
    for k, s in SIDES.items():
        if s.same(c):
            return k
    return ""


def _context(item: Dataset, ctx: dict[str, str]) -> dict[str, str]:
    """*ctx* updated with the Finding Site / Laterality / Topographical Modifier modifiers of *item*."""
    out = dict(ctx)
    for ch in _children(item):
        if _rel(ch) != "HAS CONCEPT MOD" or _vt(ch) != "CODE":
            continue
        name, val = _concept(ch), _code(values.get(ch, "ConceptCodeSequence"))
        if name is None or val is None:
            continue
        if FINDING_SITE.same(name):
            out["site"] = _site_key(val)
            out.pop("segment", None)
            for sub in _children(ch):  # laterality / modifier nested under the finding site
                sname, sval = _concept(sub), _code(values.get(sub, "ConceptCodeSequence"))
                if LATERALITY.same(sname) and _side_of(sval):
                    out["side"] = _side_of(sval)
                elif TOPOGRAPHICAL_MODIFIER.same(sname) and sval is not None:
                    out["segment"] = sval.meaning
        elif LATERALITY.same(name) and _side_of(val):
            out["side"] = _side_of(val)
        elif TOPOGRAPHICAL_MODIFIER.same(name):
            out["segment"] = val.meaning
    return out


def _image(item: Dataset) -> tuple[str, int | None] | None:
    ref = values.sequence(item, "ReferencedSOPSequence")
    if not ref:
        return None
    uid = values.text(ref[0], "ReferencedSOPInstanceUID")
    frames = values.get(ref[0], "ReferencedFrameNumber")
    frame = None
    if frames is not None:
        try:
            frame = int(frames[0] if type(frames).__name__ == "MultiValue" else frames)
        except (TypeError, ValueError, IndexError):
            frame = None
    return (uid, frame) if uid else None


def _graphic(num: Dataset) -> tuple[str, tuple[tuple[float, float], ...], list[tuple[str, int | None]]]:
    """(graphic type, points, images) from a NUM's SCOORD / IMAGE children."""
    images: list[tuple[str, int | None]] = []
    for ch in _children(num):
        vt = _vt(ch)
        if vt == "SCOORD":
            gtype = values.text(ch, "GraphicType")
            raw = values.get(ch, "GraphicData")
            try:
                flat = [float(v) for v in raw]
            except (TypeError, ValueError):
                flat = []
            pts = tuple((flat[i] - 0.5, flat[i + 1] - 0.5) for i in range(0, len(flat) - 1, 2))
            for sub in _children(ch):
                img = _image(sub) if _vt(sub) == "IMAGE" else None
                if img:
                    images.append(img)
            if gtype == "POLYLINE" and len(pts) > 3 and pts[0] == pts[-1]:
                gtype, pts = "POLYGON", pts[:-1]
            elif gtype == "MULTIPOINT":
                gtype = "POLYLINE"
            return gtype, pts, images
        if vt == "IMAGE":
            img = _image(ch)
            if img:
                images.append(img)
    return "", (), images


def _num(item: Dataset) -> tuple[float, str] | None:
    mv = values.sequence(item, "MeasuredValueSequence")
    if not mv:
        return None
    v = values.number(mv[0], "FloatingPointValue")
    if v is None:
        v = values.number(mv[0], "NumericValue")
    if v is None or not math.isfinite(v):
        return None
    unit = _code(values.get(mv[0], "MeasurementUnitsCodeSequence"))
    return v, (unit.value if unit else "")


def _walk(item: Dataset, ctx: dict[str, str], out: list[tuple[SavedMeasurement, int]], counter: list[int],
          notes: list[str], depth: int = 0) -> None:
    """NUMs under *item* and its containers; each container's NUMs share a group number."""
    if depth > 64:
        notes.append("content nested too deep: the rest was not read")
        return
    ctx = _context(item, ctx)
    counter[0] += 1
    gid = counter[0]
    for ch in _children(item):
        vt = _vt(ch)
        if vt == "CONTAINER":
            _walk(ch, ctx, out, counter, notes, depth + 1)
        elif vt == "NUM":
            concept = _concept(ch)
            read = _num(ch)
            if read is None or concept is None:
                notes.append(f"{concept.meaning if concept else 'a NUM item'} without a usable value: skipped")
                continue
            value, unit = read
            ours, factor = _CONVERT.get(unit, (unit, 1.0))
            here = _context(ch, ctx)
            gtype, pts, images = _graphic(ch)
            first = images[0] if images else ("", None)
            out.append((SavedMeasurement(
                kind=KIND_OF.get((concept.value, concept.scheme), "other"), value=value * factor, unit=ours,
                sop_instance_uid=first[0], frame=first[1], points=pts, graphic=gtype,
                site=here.get("site", ""), side=here.get("side", ""), segment=here.get("segment", ""),
                images=tuple(images), concept=concept,
            ), gid))


def _fold_pi(found: list[tuple[SavedMeasurement, int]]) -> list[SavedMeasurement]:
    """Our PI groups: the traced PI (with its SCOORD) takes its group's PSV/EDV/TAMAX/RI as extra."""
    out: list[SavedMeasurement] = []
    by_group: dict[int, list[SavedMeasurement]] = {}
    for m, g in found:
        by_group.setdefault(g, []).append(m)
    for m, g in found:
        members = by_group[g]
        pi = next((x for x in members if x.kind == "pi" and x.points), None)
        if pi is not None and m is not pi and m.kind in _COMPANIONS and not m.points:
            continue  # folded into the PI below
        if m is pi:
            extra = {x.kind: x.value for x in members if x is not pi and x.kind in _COMPANIONS and not x.points}
            m = replace(m, extra=extra)
        out.append(m)
    return out


def _annotations(item: Dataset, out: list[SavedAnnotation], depth: int = 0) -> None:
    """Groups with an Image Region SCOORD and no NUM: arrows (2-point POLYLINE) and text (POINT)."""
    if depth > 64:
        return
    kids = _children(item)
    region = next((ch for ch in kids if _vt(ch) == "SCOORD" and IMAGE_REGION.same(_concept(ch))), None)
    if region is not None and not any(_vt(ch) == "NUM" for ch in kids):
        text = next((values.text(ch, "TextValue") for ch in kids
                     if _vt(ch) == "TEXT" and COMMENT.same(_concept(ch))), "")
        label = next((values.text(ch, "TextValue") for ch in kids if _vt(ch) == "TEXT"
                      and _concept(ch) is not None and _concept(ch).value == "112039"), "")  # type: ignore[union-attr]
        gtype = values.text(region, "GraphicType")
        try:
            flat = [float(v) for v in values.get(region, "GraphicData") or ()]
        except (TypeError, ValueError):
            flat = []
        pts = tuple((flat[i] - 0.5, flat[i + 1] - 0.5) for i in range(0, len(flat) - 1, 2))
        img = next((_image(sub) for sub in _children(region) if _vt(sub) == "IMAGE"), None)
        kind = "arrow" if gtype == "POLYLINE" and len(pts) == 2 else ("text" if gtype == "POINT" and pts else "")
        if label.endswith(": text") and pts:
            kind, pts = "text", pts[:1]
        if kind and img and (kind == "arrow" or text):
            out.append(SavedAnnotation(kind, pts, text, img[0], img[1]))
        return
    for ch in kids:
        if _vt(ch) == "CONTAINER":
            _annotations(ch, out, depth + 1)


def read_measurements(source: str | os.PathLike | Dataset) -> MeasurementDocument:
    """Every measurement of an SR file or data set (see the module docstring)."""
    ds = source if isinstance(source, Dataset) else read_dataset(Path(source), stop_before_pixels=True)
    title = _concept(ds)
    found: list[tuple[SavedMeasurement, int]] = []
    notes: list[str] = []
    _walk(ds, {}, found, [0], notes)
    annotations: list[SavedAnnotation] = []
    _annotations(ds, annotations)
    preds = []
    for study in values.sequence(ds, "PredecessorDocumentsSequence"):
        for series in values.sequence(study, "ReferencedSeriesSequence"):
            for sop in values.sequence(series, "ReferencedSOPSequence"):
                uid = values.text(sop, "ReferencedSOPInstanceUID")
                if uid:
                    preds.append(uid)
    return MeasurementDocument(
        sop_instance_uid=values.text(ds, "SOPInstanceUID"),
        study_instance_uid=values.text(ds, "StudyInstanceUID"),
        title=title.meaning if title else "",
        is_vascular_report=bool(title and VASCULAR_REPORT.same(title)),
        predecessors=preds,
        measurements=_fold_pi(found),
        notes=notes,
        annotations=annotations,
    )
