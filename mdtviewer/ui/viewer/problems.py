"""The Problems list: every file that cannot be used, each with its one-line reason.

Four sources: files the scan could not index (the index's problems and
duplicate SOP Instance UIDs), instances indexed with an error, frames
that failed to decode later (thumbnails, viewports), and the notes of an image
opened in a viewport that shows less than its header claims: a region whose
PhysicalDelta was refused (no scale), a Frame Time or Cine Rate refused (the
assumed rate plays), the same notes ``mdtviewer check`` gives.  A path can hold a
patient's name (folders named after patients): while privacy is on the list
numbers the files instead of naming them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QDockWidget, QListWidget, QListWidgetItem, QWidget

from mdtviewer.dicom.index import StudyIndex
from mdtviewer.dicom.model import Study


class ProblemsList(QListWidget):
    """One line per problem file: name (or "file N" under privacy) — reason; the full path in the tooltip.

    The one source of the problem count: every place that shows it (the dock's title, the status bar)
    follows :attr:`countChanged` rather than counting for itself.
    """

    #: how many problem files are listed, after every :meth:`refresh`
    countChanged = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("problemsList")
        # the reason is the point of the list: wrap it rather than cut it off at the dock's edge
        self.setWordWrap(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTextElideMode(Qt.TextElideMode.ElideNone)
        self._privacy = False
        #: path -> reason, for frames found undecodable after the scan
        self._frame_problems: dict[str, str] = {}
        #: path -> notes of an opened image (values refused, rate assumed)
        self._notes: dict[str, list[str]] = {}
        #: what the last refresh listed from, to list a note that arrives later
        self._last: tuple[StudyIndex, list[Study]] | None = None

    def set_privacy(self, on: bool) -> None:
        """Takes effect at the next :meth:`refresh`."""
        self._privacy = bool(on)

    def add_frame_problem(self, path: str, reason: str) -> bool:
        """Note a frame that cannot be decoded (one line per file); True when the file was not listed yet."""
        if path in self._frame_problems:
            return False
        self._frame_problems[path] = reason
        return True

    def has_frame_problem(self, path: str) -> bool:
        return path in self._frame_problems

    def add_notes(self, path: str, notes: list[str]) -> bool:
        """Note what was refused or assumed in *path*'s header; True when something new was noted."""
        known = self._notes.setdefault(path, [])
        new = [n for n in notes if n and n not in known]
        known.extend(new)
        if not known:
            del self._notes[path]
        return bool(new)

    def notes(self, path: str) -> list[str]:
        return list(self._notes.get(path, []))

    def follow(self, service: Any) -> None:
        """List the notes of every image *service* (a FrameService) opens, as it opens them."""
        service.imageLoaded.connect(self._on_image_loaded)

    def _on_image_loaded(self, _token: object, li: Any) -> None:
        notes = [n for n in getattr(li, "notes", []) or [] if n]
        if not notes or not self.add_notes(str(li.instance.path), notes):
            return
        if self._last is not None:
            self.refresh(*self._last)
        dock = self.parentWidget()
        if isinstance(dock, QDockWidget):
            dock.show()

    def refresh(self, index: StudyIndex, studies: list[Study]) -> int:
        """Rebuild the list from *index* and the noted frame problems; returns how many there are."""
        self._last = (index, studies)
        self.clear()
        probs = [(Path(p.path), p.reason) for p in list(index.problems)]
        for st in studies:
            for inst in st.instances():
                if inst.error:
                    probs.append((Path(inst.path), inst.error))
        probs += [(Path(p), r) for p, r in self._frame_problems.items()]
        probs += [(Path(p), f"note: {n}") for p, ns in self._notes.items() for n in ns]
        # duplicate SOP Instance UIDs: the first file found is shown, the others are named here, never merged
        # silently (the kept file's name may hold a patient's name: not while privacy is on)
        for kept, dup, _uid in list(index.duplicates):
            same_as = "another file" if self._privacy else Path(kept).name
            probs.append((Path(dup), f"same SOP Instance UID as {same_as}: not shown (the first file found is shown)"))
        for n, (path, reason) in enumerate(probs, 1):
            shown = f"file {n}" if self._privacy else path.name
            it = QListWidgetItem(f"{shown} — {reason}")
            it.setToolTip(reason if self._privacy else f"{path}\n{reason}")
            self.addItem(it)
        self.countChanged.emit(len(probs))
        return len(probs)
