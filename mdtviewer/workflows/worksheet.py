"""Vessel worksheet: vascular measurements by vessel and side, graded by a criteria file.

Input is any list of :class:`~mdtviewer.sr.measurement_report.SavedMeasurement`
-- our TID 1500 reports and vendors' TID 5100 vascular reports read by
:mod:`mdtviewer.sr.measurement_read` alike.  Rows are (vessel, side,
segment) in anatomical order (CCA, bulb, ICA, ECA, vertebral, subclavian ...;
common femoral, profunda, superficial femoral, popliteal, tibial ...), right
then left, with PSV, EDV, RI, PI and ratio columns; every cell keeps the
measurement it came from (image and frame), so a viewer can jump to it.
A traced PI's PSV/EDV fill the row's PSV/EDV when no caliper gave them.

Stenosis categories come from criteria files -- data, like the protocols:
the built-in ``resources/criteria/*.json`` (the SRU 2003 consensus for the
ICA ships: Grant EG et al., Radiology 2003;229:340-346) and a department's
own in ``<data folder>/criteria/`` (same id: theirs replaces ours; new id:
added).  A file names its vessel, its primary parameter and categories with
ranges (``lt``/``le``/``gt``/``ge``) per parameter::

    {"id": "...", "name": "...", "source": "...", "vessel": "ICA", "primary": "psv",
     "additional": ["ratio", "edv"],
     "categories": [{"id": "50-69", "label": "50-69 %", "psv": {"ge": 125, "le": 230},
                     "ratio": {"ge": 2.0, "le": 4.0}, "edv": {"ge": 40, "le": 100}, "image": "..."}, ...]}

Grading a side: the highest PSV of that side's vessel (the stenosis is where
the velocity peaks) picks every category whose primary range holds it;
categories that differ only by what the image shows (normal / <50 %) are
given together; then each additional parameter (ICA/CCA ratio -- measured,
or calculated from that ICA PSV and the same side's CCA PSV -- and the EDV)
is said to agree or to point elsewhere.  Categories without numeric ranges
(near occlusion, occlusion) are decided on the images and are listed, not
graded.  The worksheet never overrides the reader: it shows what the
criteria say of the numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydicom.dataset import Dataset

from mdtviewer.infra import paths
from mdtviewer.infra.errors import MdtError
from mdtviewer.sr import codes
from mdtviewer.sr.measurement_report import ICA_CCA_RATIO, SITES, SavedMeasurement

VESSEL_ORDER = list(SITES)
SIDE_ORDER = ["right", "left", ""]
COLUMNS = ("psv", "edv", "ri", "pi", "ratio")
_OPS = {"lt": lambda v, b: v < b, "le": lambda v, b: v <= b, "gt": lambda v, b: v > b, "ge": lambda v, b: v >= b}


class CriteriaError(MdtError, ValueError):
    """A criteria file cannot be used; ``reason`` names it."""


@dataclass(frozen=True)
class Category:
    id: str
    label: str
    ranges: dict[str, dict[str, float]]
    image: str = ""

    def holds(self, param: str, value: float) -> bool | None:
        """True/False if this category has a range for *param*, else None."""
        rng = self.ranges.get(param)
        if not rng:
            return None
        return all(_OPS[op](value, bound) for op, bound in rng.items())


@dataclass(frozen=True)
class Criteria:
    id: str
    name: str
    source: str
    vessel: str
    primary: str
    additional: tuple[str, ...]
    categories: tuple[Category, ...]
    path: Path | None = None


def _parse(data: object, where: str) -> Criteria:
    if not isinstance(data, dict):
        raise CriteriaError(f"{where}: criteria must be a JSON object")
    for k in ("id", "name", "source", "vessel", "primary", "categories"):
        if not data.get(k):
            raise CriteriaError(f"{where}: '{k}' is missing")
    if not isinstance(data["categories"], list):
        raise CriteriaError(f"{where}: 'categories' must be a list")
    cats = []
    for i, c in enumerate(data["categories"]):
        if not isinstance(c, dict) or not c.get("id") or not c.get("label"):
            raise CriteriaError(f"{where}: categories[{i}] needs 'id' and 'label'")
        ranges: dict[str, dict[str, float]] = {}
        for param in COLUMNS:
            rng = c.get(param)
            if rng is None:
                continue
            if not isinstance(rng, dict) or not rng or any(
                    op not in _OPS or isinstance(b, bool) or not isinstance(b, (int, float)) for op, b in rng.items()):
                raise CriteriaError(f"{where}: categories[{i}].{param} must be like {{\"ge\": 125, \"le\": 230}}")
            ranges[param] = {op: float(b) for op, b in rng.items()}
        cats.append(Category(str(c["id"]), str(c["label"]), ranges, str(c.get("image", ""))))
    primary = str(data["primary"])
    if primary not in COLUMNS:
        raise CriteriaError(f"{where}: 'primary' must be one of {', '.join(COLUMNS)}")
    return Criteria(str(data["id"]), str(data["name"]), str(data["source"]), str(data["vessel"]), primary,
                    tuple(str(a) for a in data.get("additional", []) if a in COLUMNS), tuple(cats))


def criteria_dirs() -> list[Path]:
    """Built-in first, then the department's (later ones replace by id)."""
    return [paths.resources_dir() / "criteria", paths.home() / "criteria"]


def load_criteria(dirs: list[Path] | None = None) -> dict[str, Criteria]:
    out: dict[str, Criteria] = {}
    for d in dirs if dirs is not None else criteria_dirs():
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*.json")):
            try:
                data = json.loads(f.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise CriteriaError(f"{f.name}: cannot read ({type(exc).__name__})") from None
            c = _parse(data, f.name)
            out[c.id] = Criteria(**{**c.__dict__, "path": f})
    return out


@dataclass
class Cell:
    value: float
    unit: str
    source: SavedMeasurement  # image and frame the value came from
    calculated: bool = False


@dataclass
class Row:
    vessel: str
    side: str
    segment: str
    cells: dict[str, Cell] = field(default_factory=dict)
    others: list[SavedMeasurement] = field(default_factory=list)


@dataclass
class Grade:
    side: str
    vessel: str
    criteria: Criteria
    categories: list[Category]
    primary_value: float | None
    notes: list[str]

    @property
    def label(self) -> str:
        if not self.categories:
            return "not graded"
        return " or ".join(c.label for c in self.categories)


@dataclass
class Worksheet:
    rows: list[Row]
    grades: list[Grade]


def _key(m: SavedMeasurement) -> tuple[int, int, str]:
    v = VESSEL_ORDER.index(m.site) if m.site in VESSEL_ORDER else len(VESSEL_ORDER)
    s = SIDE_ORDER.index(m.side) if m.side in SIDE_ORDER else len(SIDE_ORDER)
    return v, s, m.site


def build_worksheet(measurements: list[SavedMeasurement], criteria: list[Criteria] | None = None) -> Worksheet:
    """Rows by vessel and side; a grade per side for each criteria file's vessel (default: all loaded)."""
    rows: dict[tuple[str, str, str], Row] = {}
    # an ICA/CCA ratio is about the ICA even where a report puts it on the section, without a site
    measurements = [replace(m, site="ICA") if not m.site and m.concept is not None and ICA_CCA_RATIO.same(m.concept)
                    else m for m in measurements]
    for m in sorted((m for m in measurements if m.site), key=_key):
        row = rows.setdefault((m.site, m.side, m.segment), Row(m.site, m.side, m.segment))
        if m.kind in COLUMNS and m.kind not in row.cells:
            row.cells[m.kind] = Cell(m.value, m.unit, m)
        else:
            row.others.append(m)
        for k in ("psv", "edv", "ri"):  # a traced PI's companions, when no caliper gave them
            if m.kind == "pi" and k in m.extra and k not in row.cells:
                row.cells[k] = Cell(m.extra[k], "1" if k == "ri" else "cm/s", m)
    crit = criteria if criteria is not None else list(load_criteria().values())
    grades = []
    for c in crit:
        for side in ("right", "left"):
            g = _grade(list(rows.values()), c, side)
            if g is not None:
                grades.append(g)
    return Worksheet(list(rows.values()), grades)


def _best(rows: list[Row], vessel: str, side: str, param: str) -> Cell | None:
    cells = [r.cells[param] for r in rows if r.vessel == vessel and r.side == side and param in r.cells]
    return max(cells, key=lambda c: c.value) if cells else None


def _grade(rows: list[Row], c: Criteria, side: str) -> Grade | None:
    primary = _best(rows, c.vessel, side, c.primary)
    if primary is None:
        return None
    matched = [cat for cat in c.categories if cat.holds(c.primary, primary.value)]
    notes: list[str] = []
    values: dict[str, Cell] = {}
    for param in c.additional:
        cell = _best(rows, c.vessel, side, param)
        if cell is None and param == "ratio" and c.primary == "psv":
            cca = _best(rows, "CCA", side, "psv")
            if cca is not None and cca.value > 0:
                cell = Cell(primary.value / cca.value, "1", primary.source, calculated=True)
        if cell is not None:
            values[param] = cell
    for param, cell in values.items():
        agrees = [cat for cat in matched if cat.holds(param, cell.value)]
        elsewhere = [cat for cat in c.categories if cat.holds(param, cell.value) and cat not in matched]
        shown = f"{param.upper() if param != 'ratio' else 'ICA/CCA ratio'} {cell.value:.3g}" + (
            " (calculated)" if cell.calculated else "")
        if agrees:
            notes.append(f"{shown} agrees")
        elif elsewhere:
            notes.append(f"{shown} suggests {' or '.join(x.label for x in elsewhere)}")
    image_only = [cat.label for cat in c.categories if not cat.ranges]
    if len(matched) > 1 and all(m.image for m in matched):
        notes.append("; ".join(f"{m.label} if {m.image}" for m in matched))
    if image_only:
        notes.append(f"{' / '.join(image_only)}: decided on the images")
    return Grade(side, c.vessel, c, matched, primary.value, notes)


def _fmt(cell: Cell | None) -> str:
    if cell is None:
        return "-"
    return f"{cell.value:.3g}" + ("*" if cell.calculated else "")


def _where(sop_instance_uid: str | None, frame: int | None) -> str:
    if not sop_instance_uid:
        return ""
    return f"image {sop_instance_uid}" + (f" frame {frame}" if frame else "")


def render_worksheet(ws: Worksheet) -> str:
    """A plain-text table: one line per vessel/side, then the grade of each graded side."""
    lines = ["Vessel worksheet", ""]
    if not ws.rows:
        return "Vessel worksheet\n\nno measurements with a vessel (finding site) in this document\n"
    head = f"{'Side':<6} {'Vessel':<12} {'PSV cm/s':>9} {'EDV cm/s':>9} {'RI':>6} {'PI':>6} {'Ratio':>6}  Source"
    lines += [head, "-" * len(head)]
    values_width = len(head) - len("  Source") - 20  # the PSV .. Ratio columns
    for r in ws.rows:
        name = SITES[r.vessel].meaning if r.vessel in SITES else r.vessel
        vessel = r.vessel if r.vessel in SITES else name[:12]
        if r.segment:
            vessel = f"{vessel} {r.segment}"[:12]
        label = f"{(r.side or '-'):<6} {vessel:<12} "
        src = next(iter(r.cells.values()), None)
        if src is not None:  # a row of the table's own columns
            c = {k: _fmt(r.cells.get(k)) for k in COLUMNS}
            lines.append(f"{label}{c['psv']:>9} {c['edv']:>9} {c['ri']:>6} {c['pi']:>6} {c['ratio']:>6}  "
                         f"{_where(src.source.sop_instance_uid, src.source.frame)}".rstrip())
            label = " " * len(label)
        # other values of the vessel (an area, a diameter): on the vessel's own line when the table's columns
        # hold nothing for it (no all-dash row), each in the values' place, its image in the Source column
        for o in r.others:
            unit = "" if o.unit in ("1", "") else f" {o.unit}"
            lines.append(f"{label}{f'{o.name}: {o.value:.4g}{unit}':<{values_width}}  "
                         f"{_where(o.sop_instance_uid, o.frame)}".rstrip())
            label = " " * len(label)
    if ws.grades:
        lines.append("")
        for g in ws.grades:
            lines.append(f"{g.side.capitalize()} {g.vessel} stenosis ({g.criteria.name}): {g.label}"
                         + (f" -- PSV {g.primary_value:.3g} cm/s" if g.primary_value is not None else ""))
            for n in g.notes:
                lines.append(f"    {n}")
        sources = dict.fromkeys(g.criteria.source for g in ws.grades)
        lines.append("")
        lines += [f"Criteria: {s}" for s in sources]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- in a signed review (issue 15)
#: the worksheet's container in a signed review, and its items (private codes of our review SRs: no
#: standard concept says "this review saw these measurements")
WORKSHEET_CONCEPT = codes.C("WORKSHEET", codes.PRIVATE_SCHEME, "Vascular worksheet")
REPORT_REF_CONCEPT = codes.C("MEASREPORT", codes.PRIVATE_SCHEME, "Measurement report")
ROW_CONCEPT = codes.C("WORKSHEETROW", codes.PRIVATE_SCHEME, "Worksheet row")
GRADE_CONCEPT = codes.C("STENOSISCATEGORY", codes.PRIVATE_SCHEME, "Stenosis category")
OTHER_CONCEPT = codes.C("MEASUREMENT", codes.PRIVATE_SCHEME, "Measurement")


def current_reports(datasets: list[Dataset]) -> list[Dataset]:
    """The measurement reports among *datasets* that hold measurements and are not replaced by an
    amendment also given (the latest version of each)."""
    from mdtviewer.sr.measurement_read import read_measurements

    docs = [(ds, read_measurements(ds)) for ds in datasets]
    docs = [(ds, d) for ds, d in docs if d.measurements]
    replaced = {uid for _ds, d in docs for uid in d.predecessors}
    return [ds for ds, d in docs if d.sop_instance_uid not in replaced]


def study_reports(study_instance_uid: str, folders: list[Path] | None = None) -> list[Dataset]:
    """The current measurement reports of a study in its review folder of the store (and *folders*)."""
    import warnings

    from mdtviewer.dicom.reader import read_dataset
    from mdtviewer.pacs.localstore import path_component

    dirs = list(folders or []) + [paths.store_dir() / "reviews" / path_component(study_instance_uid)]
    found: dict[str, Dataset] = {}
    for d in dirs:
        for p in sorted(Path(d).glob("*.dcm")) if Path(d).is_dir() else []:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ds = read_dataset(p, stop_before_pixels=True)
            except (MdtError, OSError):
                continue
            if str(ds.get("StudyInstanceUID", "")) == study_instance_uid and "ContentSequence" in ds:
                found.setdefault(str(ds.get("SOPInstanceUID", "")), ds)
    return current_reports(list(found.values()))


def worksheet_lines(ws: Worksheet) -> tuple[list[str], list[str]]:
    """(rows, grades) of a worksheet as one line each, as a signed review records them."""
    rows: list[str] = []
    names = {"psv": "PSV", "edv": "EDV", "ri": "RI", "pi": "PI", "ratio": "ratio"}
    for r in ws.rows:
        vessel = SITES[r.vessel].meaning if r.vessel in SITES else r.vessel
        head = " ".join(x for x in (r.side, vessel, r.segment) if x)
        cells = [f"{names[k]} {c.value:.3g}{'' if c.unit in ('1', '') else ' ' + c.unit}"
                 + (" (calculated)" if c.calculated else "") for k, c in r.cells.items()]
        cells += [f"{o.name} {o.value:.4g}{'' if o.unit in ('1', '') else ' ' + o.unit}" for o in r.others]
        rows.append(f"{head}: {', '.join(cells)}")
    grades = [f"{g.side.capitalize()} {g.vessel} stenosis ({g.criteria.name}): {g.label}"
              + (f"; PSV {g.primary_value:.3g} cm/s" if g.primary_value is not None else "")
              + (f"; {'; '.join(g.notes)}" if g.notes else "") for g in ws.grades]
    return rows, grades


def attach_to_review(review: Dataset, reports: list[Dataset]) -> Dataset:
    """Add the vascular worksheet of *reports* (the study's current measurement SRs) to a review SR.

    Our documented choice (README, "A signed review includes the worksheet"):
    the review gets a CONTAINER "Vascular worksheet" (99MDTV) that **references**
    each measurement report (COMPOSITE "Measurement report", listed in the
    Pertinent Other Evidence Sequence, so the values stay traceable to their
    SCOORDs, images and frames) and **includes** the worksheet as text: one
    "Worksheet row" per vessel and side (PSV, EDV, RI, PI, ratio), one
    "Stenosis category" per graded side with its criteria, and one
    "Measurement" line for each value without a vessel.  The signed record
    therefore shows what was measured even where the measurement SRs are
    not at hand.  Nothing is added when there are no measurement reports.
    """
    from mdtviewer.sr.measurement_read import read_measurements
    from mdtviewer.sr.render import measurement_lines

    docs = [(ds, read_measurements(ds)) for ds in reports]
    docs = [(ds, d) for ds, d in docs if d.measurements and d.study_instance_uid == str(review.StudyInstanceUID)]
    if not docs:
        return review
    measured = [m for _ds, d in docs for m in d.measurements]
    rows, grades = worksheet_lines(build_worksheet(measured))
    items = []
    for ds, _d in docs:
        ref = _item("COMPOSITE", REPORT_REF_CONCEPT)
        sop = Dataset()
        sop.ReferencedSOPClassUID = ds.SOPClassUID
        sop.ReferencedSOPInstanceUID = ds.SOPInstanceUID
        ref.ReferencedSOPSequence = [sop]
        items.append(ref)
    items += [_text(ROW_CONCEPT, line) for line in rows]
    items += [_text(GRADE_CONCEPT, line) for line in grades]
    items += [_text(OTHER_CONCEPT, line) for line in measurement_lines([m for m in measured if not m.site])]
    box = _item("CONTAINER", WORKSHEET_CONCEPT)
    box.ContinuityOfContent = "SEPARATE"
    box.ContentSequence = items
    from pydicom.sequence import Sequence

    review.ContentSequence = Sequence([*(review.get("ContentSequence") or []), box])
    # the referenced reports are evidence of the review (PS3.3 C.17.2.3)
    evidence = review.get("PertinentOtherEvidenceSequence") or []
    for ds, _d in docs:
        study = next((s for s in evidence if s.StudyInstanceUID == ds.StudyInstanceUID), None)
        if study is None:
            study = Dataset()
            study.StudyInstanceUID = ds.StudyInstanceUID
            study.ReferencedSeriesSequence = []
            evidence.append(study)
        series = next((s for s in study.ReferencedSeriesSequence if s.SeriesInstanceUID == ds.SeriesInstanceUID),
                      None)
        if series is None:
            series = Dataset()
            series.SeriesInstanceUID = ds.SeriesInstanceUID
            series.ReferencedSOPSequence = []
            study.ReferencedSeriesSequence.append(series)
        sop = Dataset()
        sop.ReferencedSOPClassUID = ds.SOPClassUID
        sop.ReferencedSOPInstanceUID = ds.SOPInstanceUID
        series.ReferencedSOPSequence.append(sop)
    review.PertinentOtherEvidenceSequence = evidence
    return review


def read_worksheet_lines(review: Dataset) -> tuple[list[str], list[str]]:
    """(referenced measurement report UIDs, text lines) of the worksheet included in a review SR."""
    refs: list[str] = []
    lines: list[str] = []
    for item in review.get("ContentSequence") or []:
        name = (item.get("ConceptNameCodeSequence") or [None])[0]
        if name is None or name.get("CodeValue") != WORKSHEET_CONCEPT.value:
            continue
        for ch in item.get("ContentSequence") or []:
            if ch.get("ValueType") == "COMPOSITE":
                refs += [str(s.ReferencedSOPInstanceUID) for s in ch.get("ReferencedSOPSequence") or []]
            elif ch.get("ValueType") == "TEXT":
                lines.append(str(ch.get("TextValue", "")))
    return refs, lines


def _item(value_type: str, concept: codes.C) -> Dataset:
    it = Dataset()
    it.RelationshipType = "CONTAINS"
    it.ValueType = value_type
    c = Dataset()
    c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = concept.value, concept.scheme, concept.meaning
    it.ConceptNameCodeSequence = [c]
    return it


def _text(concept: codes.C, text: str) -> Dataset:
    it = _item("TEXT", concept)
    it.TextValue = text
    return it
