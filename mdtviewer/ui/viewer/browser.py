"""Study browser: patient → study → series (→ instances), with thumbnails and badges.

Badges tell at a glance what a series holds: CINE (multi-frame), SR, KEY
(key images named by a Key Object Selection), PDF.  Every study of the same
patient is listed, the one on screen in bold and the others marked as prior
or later, so a previous duplex or a CT angiogram can be pulled in beside it.

Dragging a series (or one instance of it) carries :data:`MIME_SERIES` JSON
``{"series": uid, "study": uid, "instance": uid|null}``; viewports accept it.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QLabel, QStyle, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from mdtviewer.dicom.model import Instance, Patient, Series, Study
from mdtviewer.ui.viewer.overlays import HIDDEN, format_date, format_person_name
from mdtviewer.ui.viewer.viewport import MIME_SERIES

ROLE = Qt.ItemDataRole.UserRole
IMAGE_KINDS = ("image", "cine")
DOC_KINDS = ("sr", "kos", "pdf", "document")
THUMB = 64


def patients_of(index: Any) -> list[Patient]:
    pts = getattr(index, "patients", {}) or {}
    return list(pts.values()) if isinstance(pts, dict) else list(pts)


def image_instances(series: Series) -> list[Instance]:
    """The displayable instances of a series, in instance-number order."""
    imgs = [i for i in series.instances if i.kind in IMAGE_KINDS and not i.error]
    return sorted(imgs, key=lambda i: (i.instance_number is None, i.instance_number or 0, str(i.path)))


def series_badges(series: Series, key_uids: set[str]) -> list[str]:
    kinds = series.kinds
    out = []
    if "cine" in kinds:
        out.append("CINE")
    if "sr" in kinds:
        out.append("SR")
    if "kos" in kinds:
        out.append("KOS")
    if "pdf" in kinds:
        out.append("PDF")
    if "document" in kinds:
        out.append("DOC")
    if any(i.sop_instance_uid in key_uids for i in series.instances):
        out.append("★KEY")
    return out


def _series_sort(s: Series) -> tuple:
    return (s.series_number is None, s.series_number or 0, s.series_instance_uid)


def instance_label(inst: Instance, key_uids: set[str]) -> str:
    if inst.kind == "cine":
        txt = f"Cine {inst.number_of_frames} frames"
    elif inst.kind == "image":
        txt = "Image"
    else:
        txt = {"sr": "SR", "kos": "Key images", "pdf": "PDF", "document": "Document"}.get(inst.kind, inst.kind)
        if inst.title:
            txt += f": {inst.title}"
    if inst.instance_number is not None:
        txt = f"{inst.instance_number}. {txt}"
    if inst.error:
        txt += f"  ⚠ {inst.error}"
    if inst.sop_instance_uid in key_uids:
        txt += "  ★KEY"
    return txt


class SeriesTree(QTreeWidget):
    """The tree; its drag data is what viewports accept."""

    def mimeData(self, items: list[QTreeWidgetItem]) -> QMimeData:
        md = QMimeData()
        for it in items:
            payload = it.data(0, ROLE)
            if isinstance(payload, dict) and payload.get("series"):
                md.setData(MIME_SERIES, json.dumps(payload).encode("utf-8"))
                md.setText(payload.get("series", ""))
                break
        return md

    def mimeTypes(self) -> list[str]:
        return [MIME_SERIES]


class StudyBrowser(QWidget):
    """Patient → study → series tree over a :class:`~mdtviewer.dicom.index.StudyIndex`."""

    seriesActivated = Signal(dict)  # payload (double-click / Enter)
    documentActivated = Signal(str)  # SOP Instance UID of an SR/KOS/PDF
    thumbnailWanted = Signal(str, object)  # series uid, Instance

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("StudyBrowser")
        self.tree = SeriesTree(self)
        self.tree.setObjectName("studyTree")
        self.tree.setHeaderHidden(True)
        self.tree.setIconSize(QPixmap(THUMB, THUMB).size())
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
        self._thumbs_asked: set[str] = set()
        self._thumb_failed: dict[str, str] = {}
        self._series_items: dict[str, QTreeWidgetItem] = {}
        self._index: Any = None
        self._signature: tuple = ()

    # ------------------------------------------------------------ building
    def refresh(self, index: Any, force: bool = False) -> None:
        """Rebuild from *index* (cheap; keeps expansion and selection)."""
        self._index = index
        lock = getattr(index, "_lock", None)
        if lock is not None:
            with lock:
                self._refresh(index, force)
        else:
            self._refresh(index, force)

    def _refresh(self, index: Any, force: bool) -> None:
        try:
            pts = patients_of(index)
            sig = (
                self.privacy,
                self.current_study,
                len(self.key_uids),
                tuple(
                    (p.patient_id, tuple((st.study_instance_uid, sum(len(s.instances) for s in st.series.values())) for st in p.studies.values()))
                    for p in pts
                ),
            )
        except RuntimeError:  # the scan thread changed a dict under us: next refresh will do
            return
        if sig == self._signature and not force:
            return
        self._signature = sig
        expanded, selected = self._state()
        self.tree.setUpdatesEnabled(False)
        self.tree.clear()
        self._series_items.clear()
        for n, p in enumerate(pts, 1):
            self._add_patient(p, n, expanded)
        self.tree.setUpdatesEnabled(True)
        if selected:
            it = self._find(selected)
            if it is not None:
                self.tree.setCurrentItem(it)
        self._update_info(pts)

    def _state(self) -> tuple[set[str], str | None]:
        expanded: set[str] = set()
        root = self.tree.invisibleRootItem()
        stack = [root.child(i) for i in range(root.childCount())]
        while stack:
            it = stack.pop()
            if it.isExpanded():
                expanded.add(str(it.data(0, ROLE + 1)))
            stack.extend(it.child(i) for i in range(it.childCount()))
        cur = self.tree.currentItem()
        return expanded, (str(cur.data(0, ROLE + 1)) if cur is not None else None)

    def _find(self, ident: str) -> QTreeWidgetItem | None:
        root = self.tree.invisibleRootItem()
        stack = [root.child(i) for i in range(root.childCount())]
        while stack:
            it = stack.pop()
            if str(it.data(0, ROLE + 1)) == ident:
                return it
            stack.extend(it.child(i) for i in range(it.childCount()))
        return None

    def patient_label(self, p: Patient, n: int) -> str:
        if self.privacy:
            return f"Patient {n} {HIDDEN}"
        name = format_person_name(p.patient_name) or "(no name)"
        extra = ", ".join(x for x in (f"ID {p.patient_id}" if p.patient_id else "", format_date(p.birth_date), p.sex) if x)
        return f"{name} ({extra})" if extra else name

    def _add_patient(self, p: Patient, n: int, expanded: set[str]) -> None:
        pit = QTreeWidgetItem([self.patient_label(p, n)])
        pit.setToolTip(0, pit.text(0))
        ident = f"patient:{n}:{p.patient_id}"
        pit.setData(0, ROLE + 1, ident)
        self.tree.addTopLevelItem(pit)
        studies = sorted(p.studies.values(), key=lambda s: (s.study_date or "", s.study_time or ""), reverse=True)
        cur = next((s for s in studies if s.study_instance_uid == self.current_study), None)
        for st in studies:
            self._add_study(pit, st, cur, expanded)
        pit.setExpanded(True)

    def study_label(self, st: Study, cur: Study | None) -> str:
        """Date, modality, [prior]/[later] before the description: a narrow dock cuts off the end, not these."""
        parts = [format_date(st.study_date) or "(no date)", "/".join(st.modalities) or "?"]
        if cur is not None and st is not cur:
            if st.study_date and cur.study_date and st.study_date != cur.study_date:
                parts.append("[prior]" if st.study_date < cur.study_date else "[later]")
            else:
                parts.append("[other study]")
        if st.study_description:
            parts.append(st.study_description)
        n_series = len(st.series)
        txt = "  ".join(parts) + f"  ({n_series} series)"
        if not self.privacy and st.accession_number:
            txt += f"  Acc {st.accession_number}"
        return txt

    def _add_study(self, pit: QTreeWidgetItem, st: Study, cur: Study | None, expanded: set[str]) -> None:
        label = self.study_label(st, cur)
        sit = QTreeWidgetItem([label])
        sit.setToolTip(0, label)  # the whole label when the dock is too narrow for it (privacy already applied)
        ident = f"study:{st.study_instance_uid}"
        sit.setData(0, ROLE + 1, ident)
        if st is cur:
            f = QFont()
            f.setBold(True)
            sit.setFont(0, f)
        pit.addChild(sit)
        for se in sorted(st.series.values(), key=_series_sort):
            self._add_series(sit, st, se, expanded)
        sit.setExpanded(ident in expanded or cur is None or st is cur)

    def _add_series(self, sit: QTreeWidgetItem, st: Study, se: Series, expanded: set[str]) -> None:
        imgs = image_instances(se)
        frames = sum(max(1, i.number_of_frames) for i in imgs)
        desc = se.series_description or ("(no description)")
        num = f"#{se.series_number} " if se.series_number is not None else ""
        badges = series_badges(se, self.key_uids)
        txt = f"{num}{se.modality or '?'}  {desc}\n{len(se.instances)} inst"
        if imgs:
            txt += f", {frames} frame{'s' if frames != 1 else ''}"
        if badges:
            txt += "  " + " ".join(f"[{b}]" for b in badges)
        it = QTreeWidgetItem([txt])
        first = se.instances[0] if se.instances else None
        payload = {"series": se.series_instance_uid, "study": st.study_instance_uid, "instance": None}
        it.setData(0, ROLE, payload)
        it.setData(0, ROLE + 1, f"series:{se.series_instance_uid}")
        flags = it.flags() | Qt.ItemFlag.ItemIsDragEnabled
        if not imgs:
            flags &= ~Qt.ItemFlag.ItemIsDragEnabled
        it.setFlags(flags)
        tip = f"{desc} — {', '.join(sorted(se.kinds))}"
        if se.series_instance_uid in self._thumb_failed:
            tip += f"\n⚠ cannot be decoded: {self._thumb_failed[se.series_instance_uid]}"
        it.setToolTip(0, tip)
        sit.addChild(it)
        self._series_items[se.series_instance_uid] = it
        icon = self._icon_for(se.series_instance_uid)
        if icon is not None:
            it.setIcon(0, icon)
        elif imgs and se.series_instance_uid not in self._thumbs_asked:
            self._thumbs_asked.add(se.series_instance_uid)
            self.thumbnailWanted.emit(se.series_instance_uid, imgs[0])
        if len(se.instances) > 1 or (first is not None and first.kind in DOC_KINDS):
            for inst in sorted(se.instances, key=lambda i: (i.instance_number is None, i.instance_number or 0)):
                cit = QTreeWidgetItem([instance_label(inst, self.key_uids)])
                cit.setData(0, ROLE, {"series": se.series_instance_uid, "study": st.study_instance_uid, "instance": inst.sop_instance_uid, "kind": inst.kind})
                cit.setData(0, ROLE + 1, f"inst:{inst.sop_instance_uid}")
                if inst.kind not in IMAGE_KINDS:
                    cit.setFlags(cit.flags() & ~Qt.ItemFlag.ItemIsDragEnabled)
                it.addChild(cit)
            it.setExpanded(f"series:{se.series_instance_uid}" in expanded)

    def _update_info(self, pts: list[Patient]) -> None:
        n_st = sum(len(p.studies) for p in pts)
        n_se = sum(len(s.series) for p in pts for s in p.studies.values())
        txt = f"{len(pts)} patient(s), {n_st} stud{'y' if n_st == 1 else 'ies'}, {n_se} series"
        cur_pt = next((p for p in pts if self.current_study in p.studies), None)
        if cur_pt is not None and len(cur_pt.studies) > 1:
            others = [s for s in cur_pt.studies.values() if s.study_instance_uid != self.current_study]
            txt += "\nOther studies of this patient: " + "; ".join(
                f"{format_date(s.study_date) or '(no date)'} {'/'.join(s.modalities)}" for s in others
            )
        self.info.setText(txt)

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
        return QIcon(QPixmap.fromImage(img).scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))

    def set_thumbnail(self, series_uid: str, result: Any) -> None:
        """*result*: the thumbnail array, or (thumbnail, thumbnail masked outside the US regions | None)."""
        plain, private = result if isinstance(result, tuple) else (result, None)
        self._icons[series_uid] = self._icon(plain)
        self._private_icons[series_uid] = self._icon(private)
        it = self._series_items.get(series_uid)
        if it is not None:
            it.setIcon(0, self._icon_for(series_uid))

    def set_thumbnail_failed(self, series_uid: str, reason: str) -> None:
        """The series' first frame cannot be decoded: a warning tile instead of a thumbnail, the reason as tooltip."""
        self._thumb_failed[series_uid] = reason
        pm = QPixmap(THUMB, THUMB)
        pm.fill(QColor(60, 60, 60))  # a tile the size of a thumbnail, with a small warning sign: not a billboard
        q = QPainter(pm)
        q.drawPixmap((THUMB - 28) // 2, (THUMB - 28) // 2, self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning).pixmap(28, 28))
        q.end()
        icon = QIcon(pm)
        self._icons[series_uid] = self._private_icons[series_uid] = icon
        it = self._series_items.get(series_uid)
        if it is not None:
            it.setIcon(0, icon)
            tip = it.toolTip(0).split("\n⚠")[0]
            it.setToolTip(0, f"{tip}\n⚠ cannot be decoded: {reason}")

    def thumbnail_failed(self, series_uid: str) -> str | None:
        return self._thumb_failed.get(series_uid)

    def _icon_for(self, series_uid: str) -> QIcon | None:
        return (self._private_icons if self.privacy else self._icons).get(series_uid)

    def has_thumbnail(self, series_uid: str) -> bool:
        return series_uid in self._icons

    def set_privacy(self, on: bool) -> None:
        self.privacy = bool(on)
        if self._index is not None:
            self.refresh(self._index, force=True)

    def set_current_study(self, study_uid: str) -> None:
        if study_uid != self.current_study:
            self.current_study = study_uid
            if self._index is not None:
                self.refresh(self._index, force=True)

    def set_key_uids(self, uids: set[str]) -> None:
        self.key_uids = set(uids)
        if self._index is not None:
            self.refresh(self._index, force=True)

    def series_item(self, series_uid: str) -> QTreeWidgetItem | None:
        return self._series_items.get(series_uid)

    def all_texts(self) -> list[str]:
        out = [self.info.text()]
        root = self.tree.invisibleRootItem()
        stack = [root.child(i) for i in range(root.childCount())]
        while stack:
            it = stack.pop()
            out.append(it.text(0))
            out.append(it.toolTip(0))
            stack.extend(it.child(i) for i in range(it.childCount()))
        return out

    def _on_activated(self, item: QTreeWidgetItem, _col: int) -> None:
        payload = item.data(0, ROLE)
        if not isinstance(payload, dict):
            return
        if payload.get("kind") in DOC_KINDS and payload.get("instance"):
            self.documentActivated.emit(payload["instance"])
        else:
            self.seriesActivated.emit(payload)
