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
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from mdtviewer.ui import tasks

COLUMN_TITLES = ("Measurement", "Value", "Unit", "Side / vessel", "Image", "Frame")
SOURCE_ROLE = Qt.ItemDataRole.UserRole + 2


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
    from mdtviewer.infra.errors import MdtError
    from mdtviewer.sr.measurement_read import read_measurements

    out = ListData()
    docs = []
    for p in paths:
        try:
            doc = read_measurements(p)
        except (MdtError, OSError, ValueError) as exc:
            out.skipped.append(getattr(exc, "reason", None) or type(exc).__name__)
            continue
        if doc.measurements or doc.annotations:
            docs.append((Path(p), doc))
    replaced = {uid for _p, d in docs for uid in d.predecessors}
    for p, doc in docs:
        if doc.sop_instance_uid in replaced:
            continue  # an older version: the amendment is listed instead
        out.documents += 1
        out.amended += bool(doc.predecessors)
        for m in doc.measurements:
            where = " ".join(x for x in (m.side, m.site, m.segment) if x)
            uid, frame = (m.images[0] if m.images else (m.sop_instance_uid, m.frame))
            out.rows.append(Row(m.name, _value(m.value, m.unit), "" if m.unit == "1" else m.unit, where, uid,
                                frame, p.name))
            for k, v in m.extra.items():
                if m.kind == "pi" and k in ("psv", "edv", "tamax", "ri"):
                    from mdtviewer.sr.measurement_report import CONCEPTS

                    unit = "" if k == "ri" else "cm/s"
                    out.rows.append(Row(f"  {CONCEPTS[k].meaning} (trace)", _value(v, unit or "1"), unit, where,
                                        uid, frame, p.name))
        for a in doc.annotations:
            label = "Arrow" if a.kind == "arrow" else "Text"
            out.rows.append(Row(label, a.text, "", "", a.sop_instance_uid, a.frame, p.name))
    return out


class MeasurementList(QWidget):
    """The study's saved measurements, one per row; a row links to its image and frame."""

    imageReferenceActivated = Signal(str, int)  # sop_instance_uid, frame (1-based; 0 = none)
    loaded = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("measurementList")
        self._gen = 0
        self.data: ListData | None = None
        self.status = QLabel("No saved measurements in this study.", self)
        self.status.setObjectName("measurementListStatus")
        self.status.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMN_TITLES), self)
        self.table.setObjectName("measurementListTable")
        self.table.setHorizontalHeaderLabels(list(COLUMN_TITLES))
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        h = self.table.horizontalHeader()
        h.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        h.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.cellClicked.connect(lambda r, _c: self.activate(r))
        self.table.cellActivated.connect(lambda r, _c: self.activate(r))
        self.table.setAccessibleName("Saved measurements")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.status)
        lay.addWidget(self.table, 1)

    # ----------------------------------------------------------------- input
    def set_entries(self, entries: Iterable[Any]) -> None:
        """Use the report panel's entries: every SR of the study (older versions are left out)."""
        paths = [Path(e.path) for e in entries
                 if getattr(e, "category", "") in ("sr", "review") and not getattr(e, "superseded", False)
                 and not getattr(e, "error", None) and getattr(e, "path", None)]
        self.set_paths(paths)

    def set_paths(self, paths: Iterable[str | Path]) -> None:
        self._gen += 1
        gen = self._gen
        paths = list(paths)
        if not paths:
            self._show(ListData())
            return
        self.status.setText("Reading measurements\u2026")
        tasks.run(self, lambda _t: load_rows(paths), name="measurement-list", lane="worksheet",
                  on_result=lambda d: self._on_data(gen, d), on_error=lambda r: self._on_error(gen, r),
                  expected=(OSError, ValueError))

    def _on_data(self, gen: int, data: object) -> None:
        if gen == self._gen:
            self._show(data)  # type: ignore[arg-type]

    def _on_error(self, gen: int, reason: str) -> None:
        if gen == self._gen:
            self.table.setRowCount(0)
            self.status.setText(f"Measurements not read: {reason}")
            self.loaded.emit()

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
        it = self.table.item(row, 0)
        src = it.data(SOURCE_ROLE) if it is not None else None
        return (str(src[0]), int(src[1])) if src and src[0] else None

    def activate(self, row: int) -> bool:
        """Go to the image and frame of *row* (what a click does)."""
        src = self.source_of(row)
        if src is None:
            return False
        self.imageReferenceActivated.emit(src[0], src[1])
        return True
