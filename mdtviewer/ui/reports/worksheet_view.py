"""Vessel worksheet view (issue 15.4): the study's vascular measurements by vessel and side, graded.

Fed with the report panel's entries (our TID 1500 measurement reports and
vendors' TID 5100 vascular reports of the study on screen, superseded ones
left out), it reads every measurement on a worker (``ui.tasks``), lays them
out with :func:`mdtviewer.workflows.worksheet.build_worksheet` (rows: side,
vessel, PSV, EDV, RI, PI, ratio) and shows the stenosis category of each
graded carotid with the criteria's name and source.  Clicking a value emits
:attr:`WorksheetView.imageReferenceActivated` with the image and frame it
was measured on; the window opens it the way it opens a report's image
reference.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
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

log = logging.getLogger(__name__)

COLUMN_TITLES = ("Side", "Vessel", "PSV cm/s", "EDV cm/s", "RI", "PI", "Ratio")
#: where the value columns start; their keys in worksheet rows
VALUE_COLUMNS = ("psv", "edv", "ri", "pi", "ratio")
SOURCE_ROLE = Qt.ItemDataRole.UserRole + 1


@dataclass
class WorksheetData:
    """What the worker hands back: the worksheet and how many documents fed it."""

    worksheet: Any
    documents: int
    skipped: list[str]


def load_worksheet(paths: Iterable[str | Path]) -> WorksheetData:
    """Read the measurements of every SR in *paths* and build the worksheet (worker thread)."""
    from mdtviewer.infra.errors import MdtError
    from mdtviewer.sr.measurement_read import read_measurements
    from mdtviewer.workflows.worksheet import build_worksheet

    measured = []
    docs = 0
    skipped: list[str] = []
    for p in paths:
        try:
            doc = read_measurements(p)
        except (MdtError, OSError, ValueError) as exc:
            skipped.append(getattr(exc, "reason", None) or type(exc).__name__)
            continue
        if doc.measurements:
            docs += 1
            measured.extend(doc.measurements)
    return WorksheetData(build_worksheet(measured), docs, skipped)


class WorksheetView(QWidget):
    """The vessel table and the grades; values link to their image and frame."""

    imageReferenceActivated = Signal(str, int)  # sop_instance_uid, frame (1-based; 0 = none)
    loaded = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("worksheetView")
        self._gen = 0
        self.data: WorksheetData | None = None
        self.status = QLabel("No measurements with a vessel in this study.", self)
        self.status.setObjectName("worksheetStatus")
        self.status.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMN_TITLES), self)
        self.table.setObjectName("worksheetTable")
        self.table.setHorizontalHeaderLabels(list(COLUMN_TITLES))
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectItems)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        h = self.table.horizontalHeader()
        h.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # the vessel name takes what is left; the numbers are never clipped
        h.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        h.setStretchLastSection(False)
        self.table.cellClicked.connect(self._on_cell)
        self.table.cellActivated.connect(self._on_cell)
        self.table.setAccessibleName("Vessel worksheet")
        self.grades = QLabel("", self)
        self.grades.setObjectName("worksheetGrades")
        self.grades.setWordWrap(True)
        self.grades.setTextFormat(Qt.TextFormat.RichText)
        self.grades.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.status)
        lay.addWidget(self.table, 3)
        lay.addWidget(self.grades, 2)

    # ----------------------------------------------------------------- input
    def set_entries(self, entries: Iterable[Any]) -> None:
        """Use the report panel's entries: every current (not superseded) SR of the study."""
        paths = [Path(e.path) for e in entries
                 if getattr(e, "category", "") in ("sr", "review") and not getattr(e, "superseded", False)
                 and not getattr(e, "error", None) and getattr(e, "path", None)]
        self.set_paths(paths)

    def set_paths(self, paths: Iterable[str | Path]) -> None:
        """Read these SR files on a worker and show their worksheet."""
        self._gen += 1
        gen = self._gen
        paths = list(paths)
        if not paths:
            self._show(WorksheetData(None, 0, []))
            return
        self.status.setText("Reading measurements\u2026")
        tasks.run(self, lambda _t: load_worksheet(paths), name="worksheet", lane="worksheet",
                  on_result=lambda d: self._on_data(gen, d), on_error=lambda r: self._on_error(gen, r),
                  expected=(OSError, ValueError))

    def _on_data(self, gen: int, data: object) -> None:
        if gen == self._gen:
            self._show(data)  # type: ignore[arg-type]

    def _on_error(self, gen: int, reason: str) -> None:
        if gen != self._gen:
            return
        self.table.setRowCount(0)
        self.grades.setText("")
        self.status.setText(f"Worksheet not built: {reason}")
        self.loaded.emit()

    # ----------------------------------------------------------------- display
    def _show(self, data: WorksheetData) -> None:
        from mdtviewer.sr.measurement_report import SITES

        self.data = data
        ws = data.worksheet
        rows = list(ws.rows) if ws is not None else []
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            vessel = SITES[row.vessel].meaning if row.vessel in SITES else row.vessel
            if row.segment:
                vessel = f"{vessel} ({row.segment})"
            side = QTableWidgetItem((row.side or "-").capitalize())
            name = QTableWidgetItem(vessel)
            name.setToolTip(vessel)
            self.table.setItem(r, 0, side)
            self.table.setItem(r, 1, name)
            for c, key in enumerate(VALUE_COLUMNS, 2):
                cell = row.cells.get(key)
                if cell is None:
                    it = QTableWidgetItem("\u2013")
                    it.setForeground(QBrush(QColor("#888")))
                    it.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                    self.table.setItem(r, c, it)
                    continue
                text = f"{cell.value:.3g}" + ("*" if cell.calculated else "")
                it = QTableWidgetItem(text)
                it.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                src = cell.source
                uid = src.sop_instance_uid or (src.images[0][0] if src.images else "")
                frame = src.frame or (src.images[0][1] if src.images and src.images[0][1] else 0) or 0
                if uid:
                    it.setData(SOURCE_ROLE, (uid, int(frame)))
                    it.setForeground(QBrush(QColor("#0645ad")))
                    f = it.font()
                    f.setUnderline(True)
                    it.setFont(f)
                    it.setToolTip(f"{src.name}: {cell.value:.4g} {cell.unit} \u2014 click to open its image"
                                  + (f", frame {frame}" if frame else ""))
                self.table.setItem(r, c, it)
        if not rows:
            self.status.setText("No measurements with a vessel in this study.")
        else:
            self.status.setText(f"{len(rows)} vessel row(s) from {data.documents} report(s); "
                                "click a value to open its image")
        self.grades.setText(self._grades_html(ws))
        self.loaded.emit()

    @staticmethod
    def _grades_html(ws: Any) -> str:
        if ws is None or not ws.grades:
            return ""
        parts = []
        for g in ws.grades:
            psv = f" \u2014 PSV {g.primary_value:.3g} cm/s" if g.primary_value is not None else ""
            notes = "".join(f"<br>&nbsp;&nbsp;{html.escape(n)}" for n in g.notes)
            parts.append(f"<b>{html.escape(g.side.capitalize())} {html.escape(g.vessel)} stenosis: "
                         f"{html.escape(g.label)}</b>{html.escape(psv)}"
                         f" <i>({html.escape(g.criteria.name)})</i>{notes}")
        sources = dict.fromkeys(g.criteria.source for g in ws.grades)
        parts += [f"<small>Criteria: {html.escape(s)}</small>" for s in sources]
        parts.append("<small>The criteria grade the numbers only; the reader decides on the images.</small>")
        return "<p>" + "</p><p>".join(parts) + "</p>"

    # ----------------------------------------------------------------- links
    def _on_cell(self, row: int, col: int) -> None:
        it = self.table.item(row, col)
        src = it.data(SOURCE_ROLE) if it is not None else None
        if src:
            uid, frame = src
            self.imageReferenceActivated.emit(str(uid), int(frame))

    def source_of(self, row: int, col: int) -> tuple[str, int] | None:
        it = self.table.item(row, col)
        src = it.data(SOURCE_ROLE) if it is not None else None
        return (str(src[0]), int(src[1])) if src else None

    def cell_text(self, row: int, col: int) -> str:
        it = self.table.item(row, col)
        return it.text() if it is not None else ""
