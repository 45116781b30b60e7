"""The measurements of the study's measurement reports, one per row (issue 15: report panel).

Fed, like the vessel worksheet, with the report panel's entries (our TID 1500
measurement reports and vendors' TID 5100 reports of the study on screen;
superseded versions left out, so an amended report shows its latest version
only and says "amended"), it reads them on a worker (``ui.tasks``) and lists
each measurement: concept, value, unit, image and frame, side and vessel
where known; arrows and text annotations follow.  Clicking (or Return on) a
row emits :attr:`MeasurementList.imageReferenceActivated` with the image and
frame it was measured on; the window opens it as it opens a report's image
reference.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QTableWidgetItem, QWidget

from mdtviewer.ui.reports.sr_table import SOURCE_ROLE, SrTableView

COLUMN_TITLES = ("Measurement", "Value", "Unit", "Side / vessel", "Image", "Frame")


@dataclass
class Row:
    name: str
    value: str
    unit: str
    where: str
    sop_instance_uid: str
    frame: int | None
    report: str = ""


@dataclass
class ListData:
    rows: list[Row] = field(default_factory=list)
    documents: int = 0
    amended: int = 0
    skipped: list[str] = field(default_factory=list)


def _value(v: float, unit: str) -> str:
    if unit in ("1", ""):
        return f"{v:.2f}"
    return f"{v:.1f}" if abs(v) < 1000 else f"{v:.0f}"


def load_rows(paths: Iterable[str | Path]) -> ListData:
    """Every measurement and annotation of the SRs in *paths* (worker thread); an amendment whose
    predecessor is also given replaces it."""
    from mdtviewer.sr.measurement_report import CONCEPTS
    from mdtviewer.workflows.measurement_files import read_study_measurements

    study = read_study_measurements(paths)
    out = ListData(documents=len(study.documents), amended=study.amended, skipped=study.skipped)
    for p, doc in study.documents:
        for m in doc.measurements:
            where = " ".join(x for x in (m.side, m.site, m.segment) if x)
            uid, frame = (m.images[0] if m.images else (m.sop_instance_uid, m.frame))
            out.rows.append(Row(m.name, _value(m.value, m.unit), "" if m.unit == "1" else m.unit, where, uid,
                                frame, p.name))
            for k, v in m.extra.items():
                if m.kind == "pi" and k in ("psv", "edv", "tamax", "ri"):
                    unit = "" if k == "ri" else "cm/s"
                    out.rows.append(Row(f"  {CONCEPTS[k].meaning} (trace)", _value(v, unit or "1"), unit, where,
                                        uid, frame, p.name))
        for a in doc.annotations:
            label = "Arrow" if a.kind == "arrow" else "Text"
            out.rows.append(Row(label, a.text, "", "", a.sop_instance_uid, a.frame, p.name))
    return out


class MeasurementList(SrTableView):
    """The study's saved measurements, one per row; a row links to its image and frame."""

    empty_text = "No saved measurements in this study."
    task_name = "measurement-list"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(COLUMN_TITLES, "measurementList", "Saved measurements", 0,
                         QAbstractItemView.SelectionBehavior.SelectRows, parent)
        self.setObjectName("measurementList")
        self.data: ListData | None = None

    @staticmethod
    def load(paths: list) -> ListData:
        return load_rows(paths)

    # ----------------------------------------------------------------- display
    def _show(self, data: ListData) -> None:
        self.data = data
        self.table.setRowCount(len(data.rows))
        for i, r in enumerate(data.rows):
            cells = (r.name, r.value, r.unit, r.where, r.sop_instance_uid[-12:] if r.sop_instance_uid else "",
                     str(r.frame) if r.frame else "")
            for j, text in enumerate(cells):
                it = QTableWidgetItem(text)
                if j == 0:
                    it.setData(SOURCE_ROLE, (r.sop_instance_uid, r.frame or 0))
                    it.setToolTip(f"{r.report}: image {r.sop_instance_uid}" + (f" frame {r.frame}" if r.frame else ""))
                if j == 1:
                    it.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(i, j, it)
        if not data.rows:
            self.status.setText("No saved measurements in this study.")
        else:
            amended = f"; {data.amended} amended (latest version shown)" if data.amended else ""
            self.status.setText(f"{len(data.rows)} item(s) from {data.documents} report(s){amended}. "
                                "Click one to show its image and frame.")
        self.loaded.emit()

    # ----------------------------------------------------------------- what tests and the window read
    def row_count(self) -> int:
        return self.table.rowCount()

    def row_texts(self, row: int) -> list[str]:
        return [self.table.item(row, j).text() if self.table.item(row, j) else "" for j in range(len(COLUMN_TITLES))]

    def source_of(self, row: int) -> tuple[str, int] | None:
        return self.source_at(row, 0)

    def activate(self, row: int) -> bool:
        """Go to the image and frame of *row* (what a click does)."""
        return self.activate_cell(row, 0)

    def activate_cell(self, row: int, column: int) -> bool:
        return super().activate_cell(row, 0)  # a whole row names one image: any cell of it goes there
