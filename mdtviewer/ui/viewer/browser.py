"""Study browser: patient → study → series (→ instances), with thumbnails and badges.

Badges tell at a glance what a series holds: CINE (multi-frame), SR, KEY
(key images named by a Key Object Selection), PDF.  Every study of the same
patient is listed, the one on screen in bold and the others marked as prior
or later, so a previous duplex or a CT angiogram can be pulled in beside it.

The tree is a :class:`StudyTreeModel` (a Qt item model) fed by the index:
:meth:`StudyBrowser.refresh` takes what the index placed since the last call
(:meth:`~mdtviewer.dicom.index.StudyIndex.added_since`) and inserts rows for
new patients, studies, series and instances where they sort; counts and
badges of the rows that grew are changed in place.  The model is never reset
while a folder scans, and each refresh works for at most
:data:`BUDGET_MS` before it hands the UI thread back (the rest follows in the
next event-loop pass), whatever the size of the folder.

Dragging a series (or one instance of it) carries :data:`MIME_SERIES` JSON
``{"series": uid, "study": uid, "instance": uid|null}``; viewports accept it.
"""

from __future__ import annotations

import bisect
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QMimeData, QModelIndex, QPersistentModelIndex, QPoint, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QIcon, QImage, QPainter, QPixmap, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QAbstractItemView, QLabel, QStyle, QTreeView, QVBoxLayout, QWidget

from mdtviewer.dicom.kos import kos_label
from mdtviewer.dicom.model import Instance, Patient, Series, Study
from mdtviewer.imaging.masking import scrub_free_text
from mdtviewer.ui.viewer.overlays import HIDDEN, format_date, format_person_name
from mdtviewer.ui.viewer.viewport import MIME_SERIES

ROLE = Qt.ItemDataRole.UserRole
IMAGE_KINDS = ("image", "cine")
DOC_KINDS = ("sr", "kos", "pdf", "document")
THUMB = 64
#: longest a refresh may hold the UI thread (ms); what is left is added in the next event-loop pass
BUDGET_MS = 6.0
#: instances taken from the index per look (the budget is checked between batches)
BATCH = 64
#: a tree of at most this many series asks for every thumbnail; a larger one only for the rows on
#: screen and the study on screen (each decode competes with the scan for the interpreter)
EAGER_THUMBS = 48

_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
#: the text of a withdrawn instance's row (IHE IOCM rejection note)
_WITHDRAWN = QColor(220, 30, 30)
_DRAG = Qt.ItemFlag.ItemIsDragEnabled


def patients_of(index: Any) -> list[Patient]:
    pts = getattr(index, "patients", {}) or {}
    return list(pts.values()) if isinstance(pts, dict) else list(pts)


def image_instances(series: Series, include_withdrawn: bool = False) -> list[Instance]:
    """The displayable instances of a series, in instance-number order.

    Instances a rejection note withdrew (IHE IOCM, ``Instance.withdrawn``) are not part of the study and
    are left out; *include_withdrawn* only for an explicit audit view (View › Show withdrawn images)."""
    imgs = [i for i in series.instances
            if i.kind in IMAGE_KINDS and not i.error and (include_withdrawn or not i.withdrawn)]
    return sorted(imgs, key=lambda i: (i.instance_number is None, i.instance_number or 0, str(i.path)))


def series_badges(series: Series, key_uids: set[str]) -> list[str]:
    return _badges(series.kinds, any(i.sop_instance_uid in key_uids for i in series.instances))


def _badges(kinds: set[str] | dict[str, int], key: bool) -> list[str]:
    out = [
        badge
        for kind, badge in (("cine", "CINE"), ("sr", "SR"), ("kos", "KOS"), ("pdf", "PDF"), ("document", "DOC"))
        if kind in kinds
    ]
    if key:
        out.append("★KEY")
    return out


def _series_sort(s: Series) -> tuple:
    return (s.series_number is None, s.series_number or 0, s.series_instance_uid)


def _instance_sort(i: Instance) -> tuple:
    return (i.instance_number is None, i.instance_number or 0, str(i.path))


def _study_sort(s: Study) -> tuple:
    return (s.study_date or "", s.study_time or "")


def _frames(inst: Instance) -> int:
    """The frame count when known without reading the file (0: an instance listed from a DICOMDIR, not read yet)."""
    return 0 if "number_of_frames" in getattr(inst, "pending", ()) else inst.number_of_frames


def instance_label(inst: Instance, key_uids: set[str], free: Callable[[str], str] | None = None,
                   privacy: bool = False) -> str:
    """An instance row's text.  *free*: how free text (a document's title, an error) is shown -- under privacy
    scrubbed of the patient's own identifiers, as the descriptions are (HAZ-016).  A KOS is named by its title
    code (a rejection note is never "Key images"); under *privacy* its title is only PS3.16's meaning of that
    code: the file's own text may hold a name the scrub does not know (the note's patient, not the images')."""
    free = free or (lambda t: t)
    if inst.kind == "cine":
        n = _frames(inst)
        txt = f"Cine {n} frames" if n else "Cine"
    elif inst.kind == "image":
        txt = "Image"
    else:
        txt = {"sr": "SR", "kos": "Key images", "pdf": "PDF", "document": "Document"}.get(inst.kind, inst.kind)
        if inst.kind == "kos":  # IHE IOCM: a rejection note withdraws, it flags no key images
            txt = kos_label(inst.title_code, free(inst.title) if inst.title else "", standard_only=privacy)
        elif inst.title:
            txt += f": {free(inst.title)}"
    if inst.instance_number is not None:
        txt = f"{inst.instance_number}. {txt}"
    if inst.error:
        txt += f"  ⚠ {free(inst.error)}"
    if inst.sop_instance_uid in key_uids and not inst.withdrawn:
        txt += "  ★KEY"
    if inst.withdrawn:
        txt = f"WITHDRAWN ({inst.withdrawn}): {txt}"
    return txt


# ------------------------------------------------------------------ rows
class BrowserItem(QStandardItem):
    """A patient, study or series row.  ``text(0)``/``toolTip(0)``/``icon(0)`` read as on a tree-widget item."""

    def __init__(self, node: Any):
        super().__init__()
        self.node = node
        self.setFlags(_FLAGS)

    def text(self, _column: int = 0) -> str:  # type: ignore[override]
        return super().text()

    def toolTip(self, _column: int = 0) -> str:  # type: ignore[override]
        return super().toolTip()

    def icon(self, _column: int = 0) -> QIcon:  # type: ignore[override]
        return super().icon()

    def childCount(self) -> int:
        return self.rowCount()

    def payload(self) -> dict | None:
        return self.node.payload() if isinstance(self.node, _SeriesNode) else None


class _PatientNode:
    __slots__ = ("patient", "number", "item", "studies")

    def __init__(self, patient: Patient, number: int):
        self.patient, self.number = patient, number
        self.item = BrowserItem(self)
        self.studies: list[_StudyNode] = []


class _StudyNode:
    __slots__ = ("study", "pnode", "item", "series")

    def __init__(self, study: Study, pnode: _PatientNode):
        self.study, self.pnode = study, pnode
        self.item = BrowserItem(self)
        self.series: list[_SeriesNode] = []


class _SeriesNode:
    """A series row and the instances it has been shown so far (in row order)."""

    __slots__ = (
        "series",
        "snode",
        "item",
        "insts",
        "keys",
        "kinds",
        "n_images",
        "frames",
        "n_key",
        "children",
        "thumb_asked",
    )

    def __init__(self, series: Series, snode: _StudyNode):
        self.series, self.snode = series, snode
        self.item = BrowserItem(self)
        self.insts: list[Instance] = []
        self.keys: list[tuple] = []
        self.kinds: dict[str, int] = {}
        self.n_images = self.frames = self.n_key = 0
        self.children = False  # instance rows shown (more than one instance, or a document)
        self.thumb_asked = False

    def payload(self, inst: Instance | None = None) -> dict:
        out: dict[str, Any] = {
            "series": self.series.series_instance_uid,
            "study": self.snode.study.study_instance_uid,
            "instance": inst.sop_instance_uid if inst is not None else None,
        }
        if inst is not None:
            out["kind"] = inst.kind
        return out

    def first_image(self) -> Instance | None:
        return next((i for i in self.insts if i.kind in IMAGE_KINDS and not i.error and not i.withdrawn), None)

    def recount(self, key_uids: set[str]) -> None:
        """Counts from the instances listed (after which of them are withdrawn changed)."""
        imgs = [i for i in self.insts if i.kind in IMAGE_KINDS and not i.error and not i.withdrawn]
        self.n_images = len(imgs)
        self.frames = sum(max(1, _frames(i)) for i in imgs)
        self.n_key = sum(1 for i in self.insts if i.sop_instance_uid in key_uids and not i.withdrawn)


class StudyTreeModel(QStandardItemModel):
    """Patients → studies → series → instances; drag data is what viewports accept."""

    def mimeTypes(self) -> list[str]:
        return [MIME_SERIES]

    def payload(self, index: QModelIndex | QPersistentModelIndex) -> dict | None:
        """What a row stands for: ``{"series", "study", "instance"[, "kind"]}``, or None for patients and studies."""
        if not index.isValid():
            return None
        item = self.itemFromIndex(index)
        if isinstance(item, BrowserItem):
            return item.payload()
        parent = self.itemFromIndex(index.parent())
        node = getattr(parent, "node", None)
        if isinstance(node, _SeriesNode) and 0 <= index.row() < len(node.insts):
            return node.payload(node.insts[index.row()])
        return None

    def mimeData(self, indexes: list[QModelIndex]) -> QMimeData:
        md = QMimeData()
        for idx in indexes:
            payload = self.payload(idx)
            if payload and payload.get("series"):
                md.setData(MIME_SERIES, json.dumps(payload).encode("utf-8"))
                md.setText(payload.get("series", ""))
                break
        return md


class SeriesTree(QTreeView):
    """The tree view.  Also answers the few tree-widget calls other code uses on it
    (``itemActivated``, ``topLevelItem``, ``currentItem``, ``mimeData(items)``)."""

    itemActivated = Signal(object, int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.activated.connect(self._on_activated_index)

    def _on_activated_index(self, index: QModelIndex) -> None:
        item = self.model().itemFromIndex(index)
        if item is not None:
            self.itemActivated.emit(item, 0)

    def topLevelItemCount(self) -> int:
        return self.model().rowCount()

    def topLevelItem(self, row: int) -> QStandardItem | None:
        return self.model().item(row)

    def currentItem(self) -> QStandardItem | None:
        idx = self.currentIndex()
        return self.model().itemFromIndex(idx) if idx.isValid() else None

    def setCurrentItem(self, item: QStandardItem) -> None:
        self.setCurrentIndex(item.index())

    def mimeData(self, items: list[QStandardItem]) -> QMimeData:
        return self.model().mimeData([it.index() for it in items])


class StudyBrowser(QWidget):
    """Patient → study → series tree over a :class:`~mdtviewer.dicom.index.StudyIndex`."""

    seriesActivated = Signal(dict)  # payload (double-click / Enter)
    documentActivated = Signal(str)  # SOP Instance UID of an SR/KOS/PDF
    thumbnailWanted = Signal(str, object)  # series uid, Instance
    #: a refresh left nothing of the index unlisted (emitted after each refresh that did)
    caughtUp = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("StudyBrowser")
        self.model = StudyTreeModel(self)
        self.tree = SeriesTree(self)
        self.tree.setObjectName("studyTree")
        self.tree.setModel(self.model)
        self.tree.setHeaderHidden(True)
        self.tree.setIconSize(QSize(THUMB, THUMB))
        self.tree.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.tree.setDragEnabled(True)
        self.tree.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.itemActivated.connect(self._on_activated)
        self.info = QLabel(self)
        self.info.setObjectName("browserInfo")
        self.info.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.tree, 1)
        lay.addWidget(self.info)
        self.privacy = False
        self.key_uids: set[str] = set()
        self.current_study = ""
        self._icons: dict[str, QIcon] = {}
        self._private_icons: dict[str, QIcon] = {}
        self._thumb_failed: dict[str, str] = {}
        self._index: Any = None
        self._cursor = 0
        self._patients: list[_PatientNode] = []
        self._pnodes: dict[int, _PatientNode] = {}  # id(Patient) ->
        self._snodes: dict[int, _StudyNode] = {}  # id(Study) ->
        self._senodes: dict[int, _SeriesNode] = {}  # id(Series) ->
        self._series_by_uid: dict[str, _SeriesNode] = {}
        self._n_series = 0
        #: the index's rejection_generation last applied (which instances are withdrawn)
        self._rejection_gen = 0
        self._more = QTimer(self)  # the rest of a refresh that ran out of budget
        self._more.setSingleShot(True)
        self._more.setInterval(0)
        self._more.timeout.connect(self._feed)
        self._thumbs = QTimer(self)  # thumbnails for the rows that came into view
        self._thumbs.setSingleShot(True)
        self._thumbs.setInterval(100)
        self._thumbs.timeout.connect(self._request_thumbnails)
        self.tree.verticalScrollBar().valueChanged.connect(lambda _v: self._thumbs.start())
        self.tree.expanded.connect(lambda _i: self._thumbs.start())

    # ------------------------------------------------------------ feeding
    def refresh(self, index: Any, force: bool = False) -> None:
        """Add what *index* placed since the last call (rows inserted, counts changed in place).

        Works at most :data:`BUDGET_MS` now; the rest follows in the next event-loop pass.
        A different index object starts a new tree; *force* relabels every row."""
        if index is not self._index:
            self._reset(index)
        if force:
            self._relabel_all()
        self._feed()

    def pending(self) -> bool:
        """True while the index has instances the tree does not show yet."""
        return self._index is not None and 0 <= self._cursor < _generation(self._index)

    def _reset(self, index: Any) -> None:
        self._more.stop()
        self._index = index
        self._cursor = 0
        self._patients.clear()
        self._pnodes.clear()
        self._snodes.clear()
        self._senodes.clear()
        self._series_by_uid.clear()
        self._n_series = 0
        self._rejection_gen = 0
        if self.model.rowCount():
            self.model.clear()  # another index: not a scan update

    def _feed(self) -> None:
        index = self._index
        if index is None:
            return
        t0 = time.perf_counter()
        grown: dict[int, Any] = {}
        if not hasattr(index, "added_since"):  # any other object with .patients: taken once, as it is
            if self._cursor == 0:
                self._cursor = -1
                self._add(
                    [
                        (p, st, se, i)
                        for p in patients_of(index)
                        for st in p.studies.values()
                        for se in st.series.values()
                        for i in se.instances
                    ],
                    grown,
                )
        else:
            while True:
                self._cursor, batch = index.added_since(self._cursor, BATCH)
                if not batch:
                    break
                self._add(batch, grown)
                if (time.perf_counter() - t0) * 1000 > BUDGET_MS:
                    self._more.start()
                    break
        rej = getattr(index, "rejection_generation", 0)
        if rej != self._rejection_gen:
            self._rejection_gen = rej
            self._apply_withdrawn()
        if grown:
            self._relayout_later()
        for node in grown.values():
            self._label(node)
        if grown:
            self._update_info()
            self._thumbs.start()
        if not self.pending():
            if self._n_series <= EAGER_THUMBS:
                self._request_thumbnails(every=True)
            self.caughtUp.emit()

    def _relayout_later(self) -> None:
        """Before changing labels, fonts or icons: have the view lay the tree out again in the next pass.

        With rows of different heights, a changed row below the ones on screen made the view add up
        the height of every row down to it, at once, on each change (tens of ms per label in a
        tree of thousands of rows); while a layout is pending it only notes the change."""
        self.tree.scheduleDelayedItemsLayout()

    def _add(self, batch: list[tuple[Patient, Study, Series, Instance]], grown: dict[int, Any]) -> None:
        by_series: dict[int, list[Instance]] = {}
        order: list[_SeriesNode] = []
        for patient, study, series, inst in batch:
            senode = self._senodes.get(id(series))
            if senode is None:
                senode = self._new_series(patient, study, series, grown)
            lst = by_series.get(id(series))
            if lst is None:
                lst = by_series[id(series)] = []
                order.append(senode)
            lst.append(inst)
        for senode in order:
            self._add_instances(senode, by_series[id(senode.series)])
            grown[id(senode)] = senode
            grown.setdefault(id(senode.snode), senode.snode)

    def _new_series(self, patient: Patient, study: Study, series: Series, grown: dict[int, Any]) -> _SeriesNode:
        pnode = self._pnodes.get(id(patient))
        if pnode is None:
            pnode = self._pnodes[id(patient)] = _PatientNode(patient, len(self._patients) + 1)
            self._patients.append(pnode)
            self._label(pnode)
            self.model.appendRow(pnode.item)
            self.tree.setExpanded(pnode.item.index(), True)
        snode = self._snodes.get(id(study))
        if snode is None:
            snode = self._snodes[id(study)] = _StudyNode(study, pnode)
            key = _study_sort(study)  # newest first
            row = next((r for r, o in enumerate(pnode.studies) if _study_sort(o.study) < key), len(pnode.studies))
            pnode.studies.insert(row, snode)
            if study.study_instance_uid and study.study_instance_uid == self.current_study:
                f = QFont()
                f.setBold(True)
                snode.item.setFont(f)
            self._label(snode)
            pnode.item.insertRow(row, snode.item)
            if not self.current_study or study.study_instance_uid == self.current_study:
                self.tree.setExpanded(snode.item.index(), True)
            if self.current_study and pnode is self._current_patient():
                for other in pnode.studies:  # [prior]/[later] beside the study on screen
                    grown.setdefault(id(other), other)
        senode = self._senodes[id(series)] = _SeriesNode(series, snode)
        key = _series_sort(series)
        row = next((r for r, o in enumerate(snode.series) if _series_sort(o.series) > key), len(snode.series))
        snode.series.insert(row, senode)
        self._series_by_uid.setdefault(series.series_instance_uid, senode)
        self._n_series += 1
        snode.item.insertRow(row, senode.item)
        return senode

    def _add_instances(self, senode: _SeriesNode, insts: list[Instance]) -> None:
        """New instances of a series: counted, and shown as rows where the series lists its instances."""
        key_uids = self.key_uids
        for inst in insts:
            senode.kinds[inst.kind] = senode.kinds.get(inst.kind, 0) + 1
            if inst.kind in IMAGE_KINDS and not inst.error and not inst.withdrawn:
                senode.n_images += 1
                senode.frames += max(1, _frames(inst))
            if inst.sop_instance_uid in key_uids:
                senode.n_key += 1
        new = sorted(insts, key=_instance_sort)
        keys = [_instance_sort(i) for i in new]
        was_shown = senode.children
        if not senode.keys or keys[0] >= senode.keys[-1]:
            tail = len(senode.insts)
            senode.insts.extend(new)
            senode.keys.extend(keys)
        else:
            tail = -1
            positions = []
            for inst, k in zip(new, keys):
                pos = bisect.bisect_right(senode.keys, k)
                senode.keys.insert(pos, k)
                senode.insts.insert(pos, inst)
                positions.append(pos)
        first = senode.insts[0]
        senode.children = len(senode.insts) > 1 or first.kind in DOC_KINDS
        if not senode.children:
            return
        if not was_shown:  # every instance row at once
            senode.item.appendRows([self._instance_item(senode, i) for i in senode.insts])
        elif tail >= 0:
            senode.item.appendRows([self._instance_item(senode, i) for i in new])
        else:
            for pos, inst in zip(positions, new):
                senode.item.insertRow(pos, self._instance_item(senode, inst))

    def _instance_item(self, senode: _SeriesNode, inst: Instance) -> QStandardItem:
        it = QStandardItem()
        self._label_instance(it, senode, inst)
        it.setFlags(_FLAGS | _DRAG if inst.kind in IMAGE_KINDS and not inst.withdrawn else _FLAGS)
        return it

    def _label_instance(self, item: QStandardItem, senode: _SeriesNode, inst: Instance) -> None:
        """An instance row's text and tooltip (the whole label: a document title is often wider than the dock)."""
        patient = senode.snode.pnode.patient
        text = instance_label(inst, self.key_uids, lambda t: self._free(t, patient), privacy=self.privacy)
        if item.text() != text:
            item.setText(text)
            item.setToolTip(text)
            item.setForeground(QBrush(_WITHDRAWN) if inst.withdrawn else QBrush())
            item.setFlags(_FLAGS | _DRAG if inst.kind in IMAGE_KINDS and not inst.withdrawn else _FLAGS)

    # ------------------------------------------------------------ labels
    def _label(self, node: Any) -> None:
        if isinstance(node, _SeriesNode):
            self._label_series(node)
        elif isinstance(node, _StudyNode):
            cur = self._current_study_of(node.pnode)
            text = self.study_label(node.study, cur)
            if node.item.text() != text:
                node.item.setText(text)
                node.item.setToolTip(text)  # the whole label when the dock is too narrow for it
        else:
            text = self.patient_label(node.patient, node.number)
            if node.item.text() != text:
                node.item.setText(text)
                node.item.setToolTip(text)

    def _free(self, text: str, patient: Patient | None) -> str:
        """A description as shown: under privacy without the patient's own name parts, ID, birth date (HAZ-016)."""
        if not self.privacy or not text:
            return text
        if patient is None:  # whose it is not known here: nothing to tell an identifier from the rest
            return HIDDEN
        return scrub_free_text(text, patient.patient_name, patient.patient_id, patient.birth_date, HIDDEN)

    def _label_series(self, node: _SeriesNode) -> None:
        se = node.series
        desc = self._free(se.series_description, node.snode.pnode.patient) or "(no description)"
        num = f"#{se.series_number} " if se.series_number is not None else ""
        badges = _badges(node.kinds, node.n_key > 0)
        txt = f"{num}{se.modality or '?'}  {desc}\n{len(node.insts)} inst"
        if node.n_images:
            txt += f", {node.frames} frame{'s' if node.frames != 1 else ''}"
        n_out = sum(1 for i in node.insts if i.withdrawn)
        if n_out:
            txt += f", {n_out} withdrawn" if n_out < len(node.insts) else "  [WITHDRAWN]"
        colour = QBrush(_WITHDRAWN) if n_out and n_out == len(node.insts) else QBrush()
        if node.item.foreground() != colour:
            node.item.setForeground(colour)
        if badges:
            txt += "  " + " ".join(f"[{b}]" for b in badges)
        item = node.item
        if item.text() != txt:
            item.setText(txt)
        tip = f"{desc} — {', '.join(sorted(node.kinds))}"
        uid = se.series_instance_uid
        if uid in self._thumb_failed:
            tip += f"\n⚠ cannot be decoded: {self._free(self._thumb_failed[uid], node.snode.pnode.patient)}"
        if item.toolTip() != tip:
            item.setToolTip(tip)
        flags = _FLAGS | _DRAG if node.n_images else _FLAGS
        if item.flags() != flags:
            item.setFlags(flags)
        icon = self._icon_for(uid)
        if icon is not None and item.data(ROLE + 2) != self.privacy:  # which of the two icons the row shows
            item.setIcon(icon)
            item.setData(self.privacy, ROLE + 2)

    def _want_thumbnail(self, node: _SeriesNode) -> None:
        uid = node.series.series_instance_uid
        if node.n_images and not node.thumb_asked and uid not in self._icons:
            node.thumb_asked = True
            first = node.first_image()
            if first is not None:
                self.thumbnailWanted.emit(uid, first)

    def _request_thumbnails(self, every: bool = False) -> None:
        """Ask for the thumbnails of the series rows on screen and of the study on screen (*every*: all)."""
        if every:
            for p in self._patients:
                for st in p.studies:
                    for se in st.series:
                        self._want_thumbnail(se)
            return
        cur = self._current_patient()
        for snode in cur.studies if cur is not None else ():
            if snode.study.study_instance_uid == self.current_study:
                for se in snode.series:
                    self._want_thumbnail(se)
        tree = self.tree
        height = tree.viewport().height()
        idx = tree.indexAt(QPoint(2, 2))
        while idx.isValid() and tree.visualRect(idx).top() < height:
            item = self.model.itemFromIndex(idx)
            if isinstance(item, BrowserItem) and isinstance(item.node, _SeriesNode):
                self._want_thumbnail(item.node)
            idx = tree.indexBelow(idx)

    def _relabel_all(self) -> None:
        self._relayout_later()
        for p in self._patients:
            self._label(p)
            for st in p.studies:
                self._label(st)
                for se in st.series:
                    self._label_series(se)
                    if se.children:  # document titles and errors: scrubbed under privacy, as typed without
                        for row, inst in enumerate(se.insts):
                            child = se.item.child(row)
                            if child is not None:
                                self._label_instance(child, se, inst)
        self._update_info()

    def _apply_withdrawn(self) -> None:
        """Which instances are withdrawn changed (the scan read a rejection note): recount, relabel, and drop a
        thumbnail made from an image now withdrawn (the series asks again for its first image still current)."""
        self._relayout_later()
        for p in self._patients:
            for st in p.studies:
                for se in st.series:
                    se.recount(self.key_uids)
                    first = se.first_image()
                    uid = se.series.series_instance_uid
                    if se.thumb_asked and (first is None or any(i.withdrawn for i in se.insts)):
                        self._icons.pop(uid, None)
                        self._private_icons.pop(uid, None)
                        se.item.setIcon(QIcon())
                        se.item.setData(None, ROLE + 2)
                        se.thumb_asked = False
                    self._label_series(se)
                    if se.children:
                        for row, inst in enumerate(se.insts):
                            child = se.item.child(row)
                            if child is not None:
                                self._label_instance(child, se, inst)
                self._label(st)
        self._update_info()
        self._thumbs.start()

    def _current_patient(self) -> _PatientNode | None:
        if not self.current_study:
            return None
        return next(
            (p for p in self._patients if any(s.study.study_instance_uid == self.current_study for s in p.studies)),
            None,
        )

    def _current_study_of(self, pnode: _PatientNode) -> Study | None:
        if not self.current_study:
            return None
        return next((s.study for s in pnode.studies if s.study.study_instance_uid == self.current_study), None)

    def patient_label(self, p: Patient, n: int) -> str:
        if self.privacy:
            return f"Patient {n} {HIDDEN}"
        name = format_person_name(p.patient_name) or "(no name)"
        if not getattr(p, "identified", True):  # its own patient, never merged: said so first
            return f"{p.no_id_label()} — {name}"
        extra = ", ".join(
            x for x in (f"ID {p.patient_id}" if p.patient_id else "", format_date(p.birth_date), p.sex) if x
        )
        return f"{name} ({extra})" if extra else name

    def study_label(self, st: Study, cur: Study | None) -> str:
        """Date, modality, [prior]/[later] before the description: a narrow dock cuts off the end, not these."""
        node = self._snodes.get(id(st))
        series = [n.series for n in node.series] if node is not None else list(st.series.values())
        parts = [
            format_date(st.study_date) or "(no date)",
            "/".join(sorted({s.modality for s in series if s.modality})) or "?",
        ]
        if cur is not None and st is not cur:
            if st.study_date and cur.study_date and st.study_date != cur.study_date:
                parts.append("[prior]" if st.study_date < cur.study_date else "[later]")
            else:
                parts.append("[other study]")
        if st.study_description:
            parts.append(self._free(st.study_description, node.pnode.patient if node is not None else None))
        txt = "  ".join(parts) + f"  ({len(series)} series)"
        if not self.privacy and st.accession_number:
            txt += f"  Acc {st.accession_number}"
        withdrawn = st.withdrawn_summary() if getattr(st, "rejected", None) else ""
        if withdrawn:  # IHE IOCM: what a rejection note withdrew is not shown, and the study says so
            txt += f"\n{withdrawn}"
        return txt

    def _update_info(self) -> None:
        pts = self._patients
        n_st = sum(len(p.studies) for p in pts)
        txt = f"{len(pts)} patient(s), {n_st} stud{'y' if n_st == 1 else 'ies'}, {self._n_series} series"
        cur_pt = self._current_patient()
        if cur_pt is not None and len(cur_pt.studies) > 1:
            others = [s.study for s in cur_pt.studies if s.study.study_instance_uid != self.current_study]
            txt += "\nOther studies of this patient: " + "; ".join(
                f"{format_date(s.study_date) or '(no date)'} {self._modalities(s)}" for s in others
            )
        if self.info.text() != txt:
            self.info.setText(txt)

    def _modalities(self, st: Study) -> str:
        node = self._snodes.get(id(st))
        return "/".join(sorted({n.series.modality for n in node.series if n.series.modality})) if node else ""

    # ------------------------------------------------------------ thumbnails, state
    @staticmethod
    def _icon(arr: np.ndarray | None) -> QIcon:
        if arr is None:  # privacy without regions: a neutral tile, never the burned-in text
            pm = QPixmap(THUMB, THUMB)
            pm.fill(Qt.GlobalColor.darkGray)
            return QIcon(pm)
        arr = np.ascontiguousarray(arr)
        h, w = arr.shape[:2]
        fmt = QImage.Format.Format_Grayscale8 if arr.ndim == 2 else QImage.Format.Format_RGB888
        img = QImage(arr.data, w, h, arr.strides[0], fmt).copy()
        return QIcon(
            QPixmap.fromImage(img).scaled(
                THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
        )

    def set_thumbnail(self, series_uid: str, result: Any) -> None:
        """*result*: the thumbnail array, or (thumbnail, thumbnail masked outside the US regions | None)."""
        node = self._series_by_uid.get(series_uid)
        if node is not None and not node.thumb_asked:  # asked for an image since withdrawn (rejection note read)
            return
        plain, private = result if isinstance(result, tuple) else (result, None)
        self._icons[series_uid] = self._icon(plain)
        self._private_icons[series_uid] = self._icon(private)
        if node is not None:
            self._relayout_later()
            node.item.setIcon(self._icon_for(series_uid))
            node.item.setData(self.privacy, ROLE + 2)

    def set_thumbnail_failed(self, series_uid: str, reason: str) -> None:
        """The series' first frame cannot be decoded: a warning tile instead of a thumbnail, the reason as tooltip."""
        self._thumb_failed[series_uid] = reason
        pm = QPixmap(THUMB, THUMB)
        pm.fill(QColor(60, 60, 60))  # a tile the size of a thumbnail, with a small warning sign: not a billboard
        q = QPainter(pm)
        q.drawPixmap(
            (THUMB - 28) // 2,
            (THUMB - 28) // 2,
            self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning).pixmap(28, 28),
        )
        q.end()
        icon = QIcon(pm)
        self._icons[series_uid] = self._private_icons[series_uid] = icon
        node = self._series_by_uid.get(series_uid)
        if node is not None:
            self._relayout_later()
            node.item.setIcon(icon)
            node.item.setData(self.privacy, ROLE + 2)
            self._label_series(node)

    def thumbnail_failed(self, series_uid: str) -> str | None:
        return self._thumb_failed.get(series_uid)

    def _icon_for(self, series_uid: str) -> QIcon | None:
        return (self._private_icons if self.privacy else self._icons).get(series_uid)

    def has_thumbnail(self, series_uid: str) -> bool:
        return series_uid in self._icons

    def set_privacy(self, on: bool) -> None:
        if bool(on) != self.privacy:
            self.privacy = bool(on)
            self._relabel_all()

    def set_current_study(self, study_uid: str) -> None:
        if study_uid == self.current_study:
            return
        old = self._current_patient()
        self.current_study = study_uid
        self._relayout_later()
        new = self._current_patient()
        for pnode in {id(p): p for p in (old, new) if p is not None}.values():
            for snode in pnode.studies:
                f = QFont()
                f.setBold(snode.study.study_instance_uid == study_uid)
                snode.item.setFont(f)
                self._label(snode)
                if snode.study.study_instance_uid == study_uid:
                    self.tree.setExpanded(snode.item.index(), True)
        self._update_info()
        self._thumbs.start()  # the study on screen gets its thumbnails in a pass of its own

    def set_key_uids(self, uids: set[str]) -> None:
        uids = set(uids)
        changed = uids ^ self.key_uids
        self.key_uids = uids
        if not changed:
            return
        self._relayout_later()
        for p in self._patients:
            for st in p.studies:
                for se in st.series:
                    if not any(i.sop_instance_uid in changed for i in se.insts):
                        continue
                    se.n_key = sum(1 for i in se.insts if i.sop_instance_uid in uids)
                    self._label_series(se)
                    if se.children:
                        for row, inst in enumerate(se.insts):
                            if inst.sop_instance_uid in changed:
                                child = se.item.child(row)
                                if child is not None:
                                    self._label_instance(child, se, inst)

    def series_item(self, series_uid: str) -> BrowserItem | None:
        node = self._series_by_uid.get(series_uid)
        return node.item if node is not None else None

    def all_texts(self) -> list[str]:
        """Every label and tooltip in the tree, and the summary line below it (for tests and checks)."""
        out = [self.info.text()]
        stack = [self.model.item(r) for r in range(self.model.rowCount())]
        while stack:
            it = stack.pop()
            out.append(it.text())
            out.append(it.toolTip())
            stack.extend(it.child(r) for r in range(it.rowCount()))
        return out

    def _on_activated(self, item: QStandardItem, _col: int = 0) -> None:
        payload = self.model.payload(item.index())
        if not isinstance(payload, dict):
            return
        if payload.get("kind") in DOC_KINDS and payload.get("instance"):
            self.documentActivated.emit(payload["instance"])
        else:
            self.seriesActivated.emit(payload)


def _generation(index: Any) -> int:
    gen = getattr(index, "generation", None)
    return int(gen) if isinstance(gen, int) else 0
