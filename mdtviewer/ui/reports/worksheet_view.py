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

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QLabel, QTableWidgetItem, QWidget

from mdtviewer.ui.reports.sr_table import SOURCE_ROLE, SrTableView

log = logging.getLogger(__name__)

COLUMN_TITLES = ("Side", "Vessel", "PSV cm/s", "EDV cm/s", "RI", "PI", "Ratio")
#: where the value columns start; their keys in worksheet rows
VALUE_COLUMNS = ("psv", "edv", "ri", "pi", "ratio")


@dataclass
class WorksheetData:
    """What the worker hands back: the worksheet and how many documents fed it."""

    worksheet: Any
    documents: int
    skipped: list[str]


def load_worksheet(paths: Iterable[str | Path]) -> WorksheetData:
    """Read the measurements of every SR in *paths* and build the worksheet (worker thread)."""
    from mdtviewer.workflows.measurement_files import read_study_measurements
    from mdtviewer.workflows.worksheet import build_worksheet

    study = read_study_measurements(paths)
    measured = [m for _p, doc in study.documents for m in doc.measurements]
    docs = sum(bool(doc.measurements) for _p, doc in study.documents)
    return WorksheetData(build_worksheet(measured), docs, study.skipped)


class WorksheetView(SrTableView):
    """The vessel table and the grades; values link to their image and frame."""

    empty_text = "No measurements with a vessel in this study."
    task_name = "worksheet"

    def __init__(self, parent: QWidget | None = None):
        # the vessel name takes what is left; the numbers are never clipped
        super().__init__(COLUMN_TITLES, "worksheet", "Vessel worksheet", 1,
                         QAbstractItemView.SelectionBehavior.SelectItems, parent)
        self.setObjectName("worksheetView")
        self.data: WorksheetData | None = None
        self.grades = QLabel("", self)
        self.grades.setObjectName("worksheetGrades")
        self.grades.setWordWrap(True)
        self.grades.setTextFormat(Qt.TextFormat.RichText)
        self.grades.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.layout_.addWidget(self.grades, 2)

    @staticmethod
    def load(paths: list) -> WorksheetData:
        return load_worksheet(paths) if paths else WorksheetData(None, 0, [])

    def _failed(self, reason: str) -> None:
        self.grades.setText("")
        self.status.setText(f"Worksheet not built: {reason}")

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

    # ----------------------------------------------------------------- what tests read
    def source_of(self, row: int, col: int) -> tuple[str, int] | None:
        return self.source_at(row, col)

    def cell_text(self, row: int, col: int) -> str:
        it = self.table.item(row, col)
        return it.text() if it is not None else ""
