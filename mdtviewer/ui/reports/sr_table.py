"""A read-only table of what the study's measurement reports hold, read on a worker.

The measurement list and the vessel worksheet are both fed the report panel's
entries, read the current (not superseded) SR files on a worker
(``ui.tasks``, one lane), show a status line above a read-only table, and emit
:attr:`SrTableView.imageReferenceActivated` when a cell that names an image is
chosen.  This base holds that; a subclass gives its columns, its loader (a
plain function of the paths, run on the worker) and how it shows the result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLabel, QTableWidget, QVBoxLayout, QWidget

from mdtviewer.ui import tasks

#: a cell's (sop_instance_uid, frame) for the image it was measured on
SOURCE_ROLE = Qt.ItemDataRole.UserRole + 2


def current_sr_paths(entries: Iterable[Any]) -> list[Path]:
    """The report panel's entries that are SR files to read: current versions, not withdrawn, readable, on disk."""
    return [Path(e.path) for e in entries
            if getattr(e, "category", "") in ("sr", "review") and not getattr(e, "superseded", False)
            and not getattr(e, "withdrawn", "")  # a rejection note withdrew it (IHE IOCM): not measured
            and not getattr(e, "error", None) and getattr(e, "path", None)]


class SrTableView(QWidget):
    """Status line and read-only table; :meth:`set_paths` reads on a worker and calls :meth:`_show`."""

    imageReferenceActivated = Signal(str, int)  # sop_instance_uid, frame (1-based; 0 = none)
    loaded = Signal()

    #: set by subclasses
    empty_text = ""
    task_name = "sr-table"

    def __init__(self, titles: tuple[str, ...], name: str, accessible: str, stretch: int,
                 selection: QAbstractItemView.SelectionBehavior, parent: QWidget | None = None):
        super().__init__(parent)
        self._gen = 0
        self.status = QLabel(self.empty_text, self)
        self.status.setObjectName(f"{name}Status")
        self.status.setWordWrap(True)
        self.table = QTableWidget(0, len(titles), self)
        self.table.setObjectName(f"{name}Table")
        self.table.setHorizontalHeaderLabels(list(titles))
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(selection)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        h = self.table.horizontalHeader()
        h.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        h.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)  # the name column takes what is left
        h.setStretchLastSection(False)
        self.table.cellClicked.connect(self.activate_cell)
        self.table.cellActivated.connect(self.activate_cell)
        self.table.setAccessibleName(accessible)
        self.layout_ = QVBoxLayout(self)
        self.layout_.setContentsMargins(2, 2, 2, 2)
        self.layout_.addWidget(self.status)
        self.layout_.addWidget(self.table, 3)

    # ----------------------------------------------------------------- input
    def set_entries(self, entries: Iterable[Any]) -> None:
        """Use the report panel's entries: every current (not superseded) SR of the study."""
        self.set_paths(current_sr_paths(entries))

    def set_paths(self, paths: Iterable[str | Path]) -> None:
        """Read these SR files on a worker and show what they hold."""
        self._gen += 1
        gen = self._gen
        paths = list(paths)
        if not paths:
            self._show(self.load([]))
            return
        self.status.setText("Reading measurements\u2026")
        loader: Callable[[list], Any] = self.load
        tasks.run(self, lambda _t: loader(paths), name=self.task_name, lane="worksheet",
                  on_result=lambda d: self._on_data(gen, d), on_error=lambda r: self._on_error(gen, r),
                  expected=(OSError, ValueError))

    def _on_data(self, gen: int, data: object) -> None:
        if gen == self._gen:
            self._show(data)

    def _on_error(self, gen: int, reason: str) -> None:
        if gen == self._gen:
            self.table.setRowCount(0)
            self._failed(reason)
            self.loaded.emit()

    # ----------------------------------------------------------------- for subclasses
    @staticmethod
    def load(paths: list) -> Any:  # pragma: no cover - every subclass gives its own
        raise NotImplementedError

    def _show(self, data: Any) -> None:  # pragma: no cover - every subclass gives its own
        raise NotImplementedError

    def _failed(self, reason: str) -> None:
        self.status.setText(f"Measurements not read: {reason}")

    # ----------------------------------------------------------------- what tests and the window read
    def source_at(self, row: int, column: int) -> tuple[str, int] | None:
        it = self.table.item(row, column)
        src = it.data(SOURCE_ROLE) if it is not None else None
        return (str(src[0]), int(src[1])) if src and src[0] else None

    def activate_cell(self, row: int, column: int) -> bool:
        """Go to the image and frame the cell was measured on (what a click does)."""
        src = self.source_at(row, column)
        if src is None:
            return False
        self.imageReferenceActivated.emit(src[0], src[1])
        return True
