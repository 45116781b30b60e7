"""DICOM tag browser (issue 15.6): the current instance's data set as a tree, with a filter.

Each row: tag, VR, name, value (truncated); sequences open to their items.
The header is read on a worker (``ui.tasks``), never on the UI thread, and
without the pixel data.  In privacy mode every attribute that PS3.15's Basic
Application Confidentiality Profile removes or replaces (Table E.1-1, the
table :mod:`mdtviewer.governance.deid` applies to exports; UIDs excepted),
every person name and every private attribute shows as ``[hidden]``: the
patient's name, ID, birth date, institution and the like never reach the
screen.  One privacy rule everywhere (QA2 #10): what the image overlay shows
under privacy, the tag browser shows too -- the exam's dates and times
(:data:`SHOWN_UNDER_PRIVACY`), and the study and series descriptions with the
patient's own name parts, ID and birth date scrubbed out
(:func:`mdtviewer.imaging.masking.scrub_free_text`, as the browser and the
overlay do), not blanked whole.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from mdtviewer.imaging.masking import scrub_free_text
from mdtviewer.ui import tasks

HIDDEN = "[hidden]"
#: characters of a value shown in the tree (the tooltip has up to MAX_TIP)
MAX_VALUE = 120
MAX_TIP = 2000
#: sequences deeper than this are not opened (a hostile file may nest thousands deep)
MAX_DEPTH = 16
#: items of one sequence listed at most (the rest summarised)
MAX_ITEMS = 500

#: patient / person attributes hidden even without the PS3.15 table (a fallback, and a floor)
_ALWAYS_HIDDEN = frozenset({
    "PatientName", "PatientID", "IssuerOfPatientID", "OtherPatientIDs", "OtherPatientNames",
    "OtherPatientIDsSequence", "PatientBirthDate", "PatientBirthTime", "PatientBirthName", "PatientMotherBirthName",
    "PatientAddress", "PatientTelephoneNumbers", "PatientAge", "PatientSex", "AccessionNumber",
    "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "ReferringPhysicianName",
    "PerformingPhysicianName", "OperatorsName", "PhysiciansOfRecord", "NameOfPhysiciansReadingStudy",
    "StationName", "DeviceSerialNumber", "MedicalRecordLocator", "PatientComments", "AdditionalPatientHistory",
})

#: the instance's own exam dates and times: shown under privacy, as the overlay shows the study date and time
#: (never the birth date: _ALWAYS_HIDDEN comes first)
SHOWN_UNDER_PRIVACY = frozenset({
    "StudyDate", "StudyTime", "SeriesDate", "SeriesTime", "AcquisitionDate", "AcquisitionTime",
    "AcquisitionDateTime", "ContentDate", "ContentTime",
})
#: free text the overlay shows under privacy, scrubbed of the patient's own identifiers: the same here
SCRUBBED_UNDER_PRIVACY = frozenset({"StudyDescription", "SeriesDescription"})


@dataclass
class TagNode:
    """One attribute (or sequence item) of the tree."""

    tag: str  # "(0010,0010)" or "Item 1"
    vr: str
    name: str
    value: str
    hidden: bool = False
    children: list[TagNode] = field(default_factory=list)
    #: the value as privacy shows it when it is free text scrubbed of the patient's identifiers (None: not so)
    scrubbed: str | None = None

    def shown_value(self, privacy: bool) -> str:
        if privacy and self.hidden:
            return HIDDEN
        v = self.scrubbed if privacy and self.scrubbed is not None else self.value
        return v if len(v) <= MAX_VALUE else v[: MAX_VALUE - 1] + "\u2026"

    def raw_shown(self, privacy: bool) -> bool:
        """True when the stored value itself may be shown (tooltip) and searched: not under privacy when it is
        hidden or scrubbed (a scrubbed-out name is never found by the filter)."""
        return not (privacy and (self.hidden or self.scrubbed is not None))

    def matches(self, needle: str, privacy: bool) -> bool:
        hay = f"{self.tag} {self.vr} {self.name} {self.shown_value(privacy)}".lower()
        if needle in hay or (self.raw_shown(privacy) and needle in self.value.lower()):
            return True
        return any(c.matches(needle, privacy) for c in self.children)


def _profile() -> Any:
    try:
        from mdtviewer.governance.deid import basic_profile_table

        return basic_profile_table()
    except Exception:  # noqa: BLE001 - no table installed: the fixed list still hides the identifiers
        return None


def is_identifying(tag: int, keyword: str, vr: str, table: Any = None) -> bool:
    """Would privacy mode hide this attribute's value?"""
    if keyword in _ALWAYS_HIDDEN or vr == "PN" or (tag >> 16) % 2 == 1:
        return True
    if table is not None:
        action = table.action(tag)
        return action is not None and action != "U"
    return False


def _value_text(elem: Any) -> str:
    vr = str(elem.VR)
    if vr in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
        n = len(elem.value) if isinstance(elem.value, (bytes, bytearray)) else 0
        return f"<{n} bytes>"
    try:
        v = elem.value
    except Exception as exc:  # noqa: BLE001 - a damaged value: say so, keep browsing
        return f"<unreadable: {type(exc).__name__}>"
    if v is None:
        return ""
    if isinstance(v, (bytes, bytearray)):
        return f"<{len(v)} bytes>"
    if isinstance(v, (list, tuple)) or type(v).__name__ == "MultiValue":
        items = list(v)
        text = "\\".join(str(x) for x in items[:64])
        return text + ("\\\u2026" if len(items) > 64 else "")
    return " ".join(str(v).split("\r\n")) if isinstance(v, str) else str(v)


def build_nodes(ds: Any, table: Any = None, depth: int = 0, hidden_above: bool = False,
                scrub: Callable[[str], str] | None = None) -> list[TagNode]:
    """The tree of *ds* (a pydicom Dataset); runs on a worker.  *scrub* hides the patient's own identifiers in
    free text (the instance's own descriptions, at the top level); without it they are hidden whole."""
    out: list[TagNode] = []
    for elem in ds:
        tag = int(elem.tag)
        kw = elem.keyword or ""
        vr = str(elem.VR)
        name = elem.name if kw else ("Private tag" if elem.tag.is_private else "Unknown")
        hidden = hidden_above or is_identifying(tag, kw, vr, table)
        scrubbed: str | None = None
        if depth == 0 and not hidden_above and vr != "PN" and not elem.tag.is_private and kw not in _ALWAYS_HIDDEN:
            # the overlay's rule (one privacy rule everywhere): the exam's dates shown, descriptions scrubbed
            if kw in SHOWN_UNDER_PRIVACY:
                hidden = False
            elif kw in SCRUBBED_UNDER_PRIVACY and scrub is not None:
                hidden = False
                scrubbed = scrub(_value_text(elem))
        label = f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
        if vr == "SQ":
            items = list(elem.value or [])
            node = TagNode(label, vr, name, f"{len(items)} item(s)", False)
            if depth < MAX_DEPTH:
                for i, item in enumerate(items[:MAX_ITEMS], 1):
                    node.children.append(TagNode(f"Item {i}", "", "", "", False,
                                                 build_nodes(item, table, depth + 1, hidden)))
                if len(items) > MAX_ITEMS:
                    node.children.append(TagNode("\u2026", "", f"{len(items) - MAX_ITEMS} more item(s)", ""))
            out.append(node)
            continue
        out.append(TagNode(label, vr, name, _value_text(elem), hidden, scrubbed=scrubbed))
    return out


def read_nodes(path: str | os.PathLike) -> list[TagNode]:
    """Read *path*'s header (no pixel data) and build its tree (worker thread)."""
    from mdtviewer.dicom.reader import read_dataset

    ds = read_dataset(path, stop_before_pixels=True)
    rows: list[TagNode] = []
    meta = getattr(ds, "file_meta", None)
    if meta is not None and len(meta):
        rows.append(TagNode("File meta", "", "File Meta Information", "", False, build_nodes(meta, None)))
    name, pid, dob = (str(ds.get(k, "") or "") for k in ("PatientName", "PatientID", "PatientBirthDate"))
    return rows + build_nodes(ds, _profile(), scrub=lambda text: scrub_free_text(text, name, pid, dob, HIDDEN))


class TagBrowser(QDialog):
    """Tree of one instance's attributes; read in the background; filter box; privacy aware."""

    loaded = Signal()

    def __init__(self, parent: QWidget | None = None, privacy: bool = False):
        super().__init__(parent)
        self.setObjectName("tagBrowser")
        self.setWindowTitle("DICOM tags")
        self.resize(820, 640)
        self._privacy = bool(privacy)
        self._nodes: list[TagNode] = []
        self._gen = 0
        lay = QVBoxLayout(self)
        self.status = QLabel("", self)
        self.status.setObjectName("tagStatus")
        self.filter = QLineEdit(self)
        self.filter.setObjectName("tagFilter")
        self.filter.setPlaceholderText("Filter: tag, name, VR or value")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._apply_filter)
        self.tree = QTreeWidget(self)
        self.tree.setObjectName("tagTree")
        self.tree.setHeaderLabels(["Tag", "VR", "Name", "Value"])
        self.tree.setUniformRowHeights(True)
        self.tree.setColumnWidth(0, 150)
        self.tree.setColumnWidth(1, 40)
        self.tree.setColumnWidth(2, 260)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        lay.addWidget(self.status)
        lay.addWidget(self.filter)
        lay.addWidget(self.tree, 1)
        lay.addWidget(buttons)

    # ----------------------------------------------------------------- loading
    def load(self, path: str | os.PathLike, title: str = "") -> None:
        """Read *path*'s header on a worker and show it (the previous tree stays until then)."""
        self._gen += 1
        gen = self._gen
        self.status.setText("Reading the header\u2026")
        if title:
            self.setWindowTitle(f"DICOM tags \u2014 {title}")
        tasks.run(self, lambda _t: read_nodes(path), name="tag-browser", lane="tag-browser",
                  on_result=lambda nodes: self._on_nodes(gen, nodes),
                  on_error=lambda reason: self._on_error(gen, reason), expected=(OSError, ValueError))

    def _on_nodes(self, gen: int, nodes: object) -> None:
        if gen != self._gen:
            return
        self._nodes = list(nodes)  # type: ignore[call-overload]
        self.status.setText(f"{self._count(self._nodes)} attributes"
                            + (" \u2014 privacy on: identifiers hidden" if self._privacy else ""))
        self._fill()
        self.loaded.emit()

    def _on_error(self, gen: int, reason: str) -> None:
        if gen != self._gen:
            return
        self._nodes = []
        self.tree.clear()
        self.status.setText(f"Header not read: {reason}")
        self.loaded.emit()

    @staticmethod
    def _count(nodes: list[TagNode]) -> int:
        return sum((1 if n.vr or not n.children else 0) + TagBrowser._count(n.children) for n in nodes)

    # ----------------------------------------------------------------- privacy and filter
    def set_privacy(self, on: bool) -> None:
        self._privacy = bool(on)
        self._fill()

    @property
    def privacy(self) -> bool:
        return self._privacy

    def nodes(self) -> list[TagNode]:
        return list(self._nodes)

    def _fill(self) -> None:
        self.tree.clear()

        def add(parent: Any, nodes: list[TagNode]) -> None:
            for n in nodes:
                value = n.shown_value(self._privacy)
                it = QTreeWidgetItem([n.tag, n.vr, n.name, value])
                if n.raw_shown(self._privacy) and len(n.value) > MAX_VALUE:
                    it.setToolTip(3, n.value[:MAX_TIP])
                it.setData(0, Qt.ItemDataRole.UserRole, n)
                parent.addChild(it) if isinstance(parent, QTreeWidgetItem) else parent.addTopLevelItem(it)
                add(it, n.children)

        self.tree.setUpdatesEnabled(False)
        add(self.tree, self._nodes)
        self.tree.setUpdatesEnabled(True)
        self._apply_filter(self.filter.text())

    def _apply_filter(self, text: str) -> None:
        needle = text.strip().lower()

        def walk(it: QTreeWidgetItem | None) -> bool:
            if it is None:
                return False
            node: TagNode = it.data(0, Qt.ItemDataRole.UserRole)
            # the row's own text (a hidden value is searched as "[hidden]", never as itself)
            own = not needle or (
                needle in f"{node.tag} {node.vr} {node.name} {node.shown_value(self._privacy)}".lower()
                or (node.raw_shown(self._privacy) and needle in node.value.lower()))
            any_child = False
            for i in range(it.childCount()):
                any_child = walk(it.child(i)) or any_child
            visible = own or any_child
            it.setHidden(not visible)
            if needle and any_child:
                it.setExpanded(True)
            return visible

        for i in range(self.tree.topLevelItemCount()):
            walk(self.tree.topLevelItem(i))

    def visible_rows(self) -> list[tuple[str, str, str, str]]:
        """(tag, VR, name, value) of every row not filtered out, depth first (tests read this)."""
        out: list[tuple[str, str, str, str]] = []

        def walk(it: QTreeWidgetItem | None) -> None:
            if it is None or it.isHidden():
                return
            out.append((it.text(0), it.text(1), it.text(2), it.text(3)))
            for i in range(it.childCount()):
                walk(it.child(i))

        for i in range(self.tree.topLevelItemCount()):
            walk(self.tree.topLevelItem(i))
        return out
