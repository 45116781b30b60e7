"""De-identified export from the review window, with a masking preview.

The window's **File → Export de-identified…** (Ctrl+E) opens it.  The dialog
exports the chosen open studies with :func:`mdtviewer.governance.export.export`
(always de-identified: identifiable exports are a command-line decision,
``mdtviewer export --identifiable --encrypt``), masking burned-in text by
default (regions, keep-rectangle, scanner template, or the text found in the
pixels; an image that cannot be made safe is refused unless the user ticks
"Write images that may show identifiers unmasked"), keeping a shifted
timeline, as DICOM, PNG or MP4, and optionally into an AES-256 7z archive
(password typed twice here, never stored: the fields are cleared as soon as
the export starts).

**File → Open encrypted archive…** opens such an archive again: the password
is asked for, the files are extracted to a private temporary folder (removed
when the application quits) and indexed like any folder.

The preview shows frame 1 of the chosen series exactly as it will be written
(:func:`mdtviewer.imaging.masking.keep_area_or_detect`, as export decides).  On a
series without ultrasound regions the user may drag the area to keep on the
preview; the rectangle is used for that series only.  The export runs on a worker thread;
the dialog shows progress and the summary (no identifiers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from PySide6.QtCore import QEventLoop, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from mdtviewer.governance.export import FORMATS, ExportOptions
from mdtviewer.imaging import masking
from mdtviewer.ui import tasks
from mdtviewer.ui.errors import error_text

if TYPE_CHECKING:
    from pathlib import Path

    from PySide6.QtWidgets import QStatusBar

    from mdtviewer.dicom.model import Series, Study


class ExportHost(Protocol):
    """What the dialog needs from the window it exports from (the main window)."""

    privacy: bool
    extracted_archives: list[Path]

    def studies(self) -> list[Study]: ...

    def current_study(self) -> Study | None: ...

    def image_series(self, study: Study) -> list[Series]: ...

    def open_paths(self, paths: list[str]) -> None: ...

    def statusBar(self) -> QStatusBar: ...

PREVIEW_W, PREVIEW_H = 480, 360
#: the preview's words while privacy is on and masking is off
PRIVACY_UNMASKED = ("Preview hidden while privacy is on: with masking off this image would be written with its"
                    " burned-in text.")
#: what the export core says in command-line words, and the same choice in this dialog
_CLI_WORDS = (
    ("without an explicit request (--no-mask)",
     "unless you tick \u201cWrite images that may show identifiers unmasked\u201d"),
    ("give a keep-rectangle (--keep-rect X0,Y0,X1,Y1)", "drag the area to keep on the preview"),
    ("(--no-mask)", "(\u201cWrite images that may show identifiers unmasked\u201d)"),
    ("--keep-rect X0,Y0,X1,Y1", "a rectangle dragged on the preview"),
)


def dialog_wording(text: str) -> str:
    """A message of the export core with its command-line options named as this dialog's own choices."""
    for cli, ours in _CLI_WORDS:
        text = text.replace(cli, ours)
    return text


class PreviewLabel(QWidget):
    """Shows a frame scaled to fit; a left-drag marks the area to keep (image coordinates)."""

    rectDrawn = Signal(tuple)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMinimumSize(PREVIEW_W, PREVIEW_H)
        self.arr: np.ndarray | None = None
        self._img: QImage | None = None
        self.message = ""
        self.keep: tuple[int, int, int, int] | None = None
        self._drag: tuple[QPointF, QPointF] | None = None

    def set_frame(self, arr: np.ndarray | None, message: str = "", keep=None) -> None:
        self.arr = None if arr is None else np.ascontiguousarray(arr)
        self.message = message
        self.keep = keep
        if self.arr is None:
            self._img = None
        else:
            h, w = self.arr.shape[:2]
            fmt = QImage.Format.Format_Grayscale8 if self.arr.ndim == 2 else QImage.Format.Format_RGB888
            self._img = QImage(self.arr.data, w, h, self.arr.strides[0], fmt)
        self.update()

    def _geom(self) -> tuple[float, float, float]:
        if self.arr is None:
            return 1.0, 0.0, 0.0
        h, w = self.arr.shape[:2]
        s = min(self.width() / w, self.height() / h)
        return s, (self.width() - w * s) / 2, (self.height() - h * s) / 2

    def to_image(self, p: QPointF) -> tuple[int, int]:
        s, ox, oy = self._geom()
        h, w = self.arr.shape[:2] if self.arr is not None else (1, 1)
        x = int(max(0, min(w - 1, (p.x() - ox) / s)))
        y = int(max(0, min(h - 1, (p.y() - oy) / s)))
        return x, y

    def paintEvent(self, ev: Any) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(0, 0, 0))
        if self._img is not None:
            s, ox, oy = self._geom()
            h, w = self.arr.shape[:2]
            p.drawImage(QRectF(ox, oy, w * s, h * s), self._img)
            if self.keep is not None:
                x0, y0, x1, y1 = self.keep
                p.setPen(QPen(QColor(0, 200, 255), 1, Qt.PenStyle.DashLine))
                p.drawRect(QRectF(ox + x0 * s, oy + y0 * s, (x1 - x0 + 1) * s, (y1 - y0 + 1) * s))
        if self._drag is not None:
            p.setPen(QPen(QColor(255, 200, 0), 2))
            p.drawRect(QRectF(self._drag[0], self._drag[1]).normalized())
        if self.message:
            p.setPen(QColor(255, 220, 120))
            p.drawText(self.rect().adjusted(8, 8, -8, -8), Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap,
                       self.message)
        p.end()

    def mousePressEvent(self, ev: Any) -> None:
        if ev.button() == Qt.MouseButton.LeftButton and self.arr is not None:
            self._drag = (ev.position(), ev.position())

    def mouseMoveEvent(self, ev: Any) -> None:
        if self._drag is not None:
            self._drag = (self._drag[0], ev.position())
            self.update()

    def mouseReleaseEvent(self, ev: Any) -> None:
        if self._drag is None:
            return
        a, b = self.to_image(self._drag[0]), self.to_image(ev.position())
        self._drag = None
        x0, x1 = sorted((a[0], b[0]))
        y0, y1 = sorted((a[1], b[1]))
        if x1 > x0 and y1 > y0:
            self.rectDrawn.emit((x0, y0, x1, y1))
        self.update()


class ExportDialog(QDialog):
    """Choose studies and options, preview the masking, export on a worker thread."""

    progressed = Signal(int, int)
    finished_export = Signal(object)
    #: a preview frame is on screen (after a series, mask or keep-rectangle change)
    previewUpdated = Signal()

    def __init__(self, window: ExportHost):
        super().__init__(window)
        self.main_window = window
        self.setWindowTitle("Export de-identified")
        self.setObjectName("exportDialog")
        self.keep_rects: dict[str, tuple[int, int, int, int]] = {}
        self.report = None
        self.error: str | None = None
        self._export_task: tasks.Task | None = None
        # preview frames are decoded (and masked) on a worker (one lane): a J2K or large cine frame
        # takes long enough to stall the UI; only the newest request is shown
        self._preview_gen = 0

        self.studies = QListWidget()
        self.studies.setObjectName("exportStudies")
        self.series_combo = QComboBox()
        self.series_combo.setObjectName("previewSeries")
        self.deid_box = QCheckBox("De-identify (PS3.15 Basic Profile; always on here)")
        self.deid_box.setChecked(True)
        self.deid_box.setEnabled(False)
        self.mask_box = QCheckBox("Mask burned-in text (regions, template, or text found in the pixels)")
        self.mask_box.setChecked(True)
        self.unmasked_box = QCheckBox("Write images that may show identifiers unmasked")
        self.unmasked_box.setObjectName("exportUnmasked")
        self.unmasked_box.setChecked(False)
        self.unmasked_box.setToolTip(
            "Unticked (the default), an image whose burned-in text cannot be masked is not written"
            " (the summary lists it)."
        )
        self.unmasked_warning = QLabel(
            "\u26a0 Images that cannot be masked will be written: their burned-in name, ID or hospital stays"
            " readable (marked Burned In Annotation YES)."
        )
        self.unmasked_warning.setObjectName("exportUnmaskedWarning")
        self.unmasked_warning.setWordWrap(True)
        self.unmasked_warning.setStyleSheet("color: #b00020;")
        # said only while the choice is made (QA2 #15: shown unticked, it read as if it applied already)
        self.unmasked_warning.setVisible(False)
        self.unmasked_box.toggled.connect(self.unmasked_warning.setVisible)
        self.dates_box = QCheckBox("Keep the timeline (shift dates per patient)")
        self.format_combo = QComboBox()
        self.format_combo.addItems(list(FORMATS))
        self.encrypt_box = QCheckBox("Encrypt (AES-256 7z archive)")
        self.pw1 = QLineEdit()
        self.pw2 = QLineEdit()
        for f in (self.pw1, self.pw2):
            f.setEchoMode(QLineEdit.EchoMode.Password)
            f.setEnabled(False)
        self.dest = QLineEdit()
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._choose_dest)
        self.preview = PreviewLabel()
        self.preview.rectDrawn.connect(self._on_rect)
        self.progress = QProgressBar()
        self.progress.hide()
        self.summary = QPlainTextEdit()
        self.summary.setReadOnly(True)
        self.summary.setMaximumHeight(150)
        self.export_button = QPushButton("Export")
        self.export_button.setObjectName("exportButton")
        self.export_button.clicked.connect(lambda _=False: self.start_export())
        close = QPushButton("Close")
        close.clicked.connect(self.reject)

        form = QFormLayout()
        form.addRow(self.deid_box)
        form.addRow(self.mask_box)
        form.addRow(self.unmasked_box)
        form.addRow(self.unmasked_warning)  # right under the choice, the full width: it must be read
        form.addRow(self.dates_box)
        form.addRow("Format", self.format_combo)
        form.addRow(self.encrypt_box)
        form.addRow("Password", self.pw1)
        form.addRow("Repeat password", self.pw2)
        drow = QHBoxLayout()
        drow.addWidget(self.dest)
        drow.addWidget(browse)
        form.addRow("Destination", drow)

        left = QVBoxLayout()
        left.addWidget(QLabel("Studies to export"))
        left.addWidget(self.studies)
        left.addLayout(form)
        right = QVBoxLayout()
        right.addWidget(QLabel("Preview (drag to mark the area to keep where there are no regions)"))
        right.addWidget(self.series_combo)
        right.addWidget(self.preview, 1)
        top = QHBoxLayout()
        top.addLayout(left, 1)
        top.addLayout(right, 2)
        buttons = QHBoxLayout()
        buttons.addWidget(self.progress, 1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(close)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.summary)
        lay.addLayout(buttons)

        self.encrypt_box.toggled.connect(lambda on: [f.setEnabled(on) for f in (self.pw1, self.pw2)])
        self.mask_box.toggled.connect(lambda _on: self.update_preview())
        self.series_combo.currentIndexChanged.connect(lambda _i: self.update_preview())
        self.studies.itemChanged.connect(lambda _it: self._fill_series())
        self.progressed.connect(self._on_progress)
        self.finished_export.connect(self._on_finished)
        self._privacy = bool(window.privacy)
        self._fill_studies()
        self._privacy_timer = QTimer(self)  # F9 in the window while the dialog is open: follow it
        self._privacy_timer.setInterval(200)
        self._privacy_timer.timeout.connect(self._follow_privacy)
        self._privacy_timer.start()

    def _follow_privacy(self) -> None:
        if bool(self.main_window.privacy) != self._privacy:
            self._privacy = bool(self.main_window.privacy)
            keep = self.selected_study_uids()
            current = self.series_combo.currentData()
            self._fill_studies()  # study texts as privacy wants them, and a new preview
            self.set_selected(keep)
            if current:
                self.select_series(current[0])

    # ------------------------------------------------------------------ content
    def _fill_studies(self) -> None:
        self.studies.blockSignals(True)
        self.studies.clear()
        current = self.main_window.current_study()
        for k, st in enumerate(self.main_window.studies(), 1):
            n = len(st.instances())
            if self.main_window.privacy:
                text = f"Study {k} · {', '.join(st.modalities)} · {n} instance(s)"
            else:
                text = (
                    f"{st.study_date or '?'} {st.study_description or ''} · "
                    f"{', '.join(st.modalities)} · {n} instance(s)"
                )
            it = QListWidgetItem(text)
            it.setFlags(it.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            it.setCheckState(Qt.CheckState.Checked if current is None or st is current else Qt.CheckState.Unchecked)
            it.setData(Qt.ItemDataRole.UserRole, st.study_instance_uid)
            self.studies.addItem(it)
        self.studies.blockSignals(False)
        self._fill_series()

    def selected_study_uids(self) -> list[str]:
        out = []
        for i in range(self.studies.count()):
            it = self.studies.item(i)
            if it.checkState() == Qt.CheckState.Checked:
                out.append(it.data(Qt.ItemDataRole.UserRole))
        return out

    def set_selected(self, study_uids: list[str]) -> None:
        for i in range(self.studies.count()):
            it = self.studies.item(i)
            it.setCheckState(
                Qt.CheckState.Checked if it.data(Qt.ItemDataRole.UserRole) in study_uids else Qt.CheckState.Unchecked
            )

    def _selected_studies(self):
        uids = set(self.selected_study_uids())
        return [st for st in self.main_window.studies() if st.study_instance_uid in uids]

    def _fill_series(self) -> None:
        from mdtviewer.ui.viewer.browser import image_instances

        self.series_combo.blockSignals(True)
        self.series_combo.clear()
        for sk, st in enumerate(self._selected_studies(), 1):
            for k, se in enumerate(self.main_window.image_series(st), 1):
                imgs = image_instances(se)
                if imgs:
                    self.series_combo.addItem(
                        f"Study {sk} · series {se.series_number or k} ({se.modality})",
                        (se.series_instance_uid, str(imgs[0].path)),
                    )
        self.series_combo.blockSignals(False)
        self.update_preview()

    def select_series(self, series_uid: str) -> bool:
        for i in range(self.series_combo.count()):
            if self.series_combo.itemData(i)[0] == series_uid:
                self.series_combo.setCurrentIndex(i)
                self.update_preview()
                return True
        return False

    def update_preview(self) -> None:
        """Show the chosen series' first frame as it will be written (masked when asked), in the background."""
        self._preview_gen += 1
        gen = self._preview_gen
        data = self.series_combo.currentData()
        if not data:
            self.preview.set_frame(None, "No image series in the chosen studies.")
            self.previewUpdated.emit()
            return
        series_uid, path = data
        rect = self.keep_rects.get(series_uid)
        mask = self.mask_box.isChecked()
        # privacy on: the preview shows the image as export writes it (masked) or a blank of its size
        # (where the area to keep can still be dragged), never the unmasked burned-in text
        privacy = self._privacy = bool(self.main_window.privacy)

        def job(task: tasks.Task) -> tuple[Any, str, Any]:
            if task.cancelled() or gen != self._preview_gen:
                return None, "", None  # a newer request is queued: not shown anyway
            keep = None
            frame = next(iter(masking.display_frames(path)), None)
            if frame is None:
                return frame, "", keep
            if not mask:
                if privacy:
                    return np.zeros_like(frame), PRIVACY_UNMASKED, keep
                return frame, "", keep
            from mdtviewer.dicom.reader import read_dataset

            try:  # the keep area export will use: regions, this rectangle, a template, or the text found
                area = masking.keep_area_or_detect(read_dataset(path), rect)
            except masking.CleanPixelError as exc:
                why = f"{dialog_wording(error_text(exc))}. Drag on the image to mark the area to keep."
                if privacy:
                    return np.zeros_like(frame), f"{why} (Image hidden: privacy is on.)", None
                return frame, why, None
            frame = masking.apply_mask(frame, area.mask(frame.shape[0], frame.shape[1]), 0)
            return frame, "", rect if area.source == "keep-rect" else None

        # a file that cannot be decoded: its reason (or the bug notice) where the preview would be
        tasks.run(self, job, name="export-preview", lane="export-preview",
                  on_result=lambda r: self._on_preview_ready(gen, *r),
                  on_error=lambda message: self._on_preview_ready(gen, None, f"No preview: {message}", None))

    def _on_preview_ready(self, gen: int, frame: Any, msg: str, keep: Any) -> None:
        if gen != self._preview_gen:
            return  # a newer request is on its way
        if keep is not None:
            self.preview.set_frame(frame, msg, keep=keep)
        else:
            self.preview.set_frame(frame, msg)
        self.previewUpdated.emit()

    def set_keep_rect(self, series_uid: str, rect: tuple[int, int, int, int]) -> None:
        self.keep_rects[series_uid] = tuple(int(v) for v in rect)  # type: ignore[assignment]
        self.update_preview()

    def _on_rect(self, rect: tuple) -> None:
        data = self.series_combo.currentData()
        if data:
            self.set_keep_rect(data[0], rect)

    def _choose_dest(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Export to")
        if d:
            self.dest.setText(d)

    # ------------------------------------------------------------------ export
    def options(self) -> ExportOptions:
        return ExportOptions(
            deidentify=True,
            mask_burned_in=self.mask_box.isChecked(),
            unmasked_ok=self.unmasked_box.isChecked(),
            keep_dates=self.dates_box.isChecked(),
            fmt=self.format_combo.currentText(),
            keep_rects=dict(self.keep_rects),
        )

    def start_export(self) -> bool:
        """Validate and start the export on a worker thread (False with a message when not possible)."""
        self.error = None
        if self._export_task is not None and self._export_task.running():
            return False
        paths = [str(i.path) for st in self._selected_studies() for i in st.instances()]
        dest = self.dest.text().strip()
        password = None
        if not paths:
            return self._fail("Choose at least one study.")
        if not dest:
            return self._fail("Choose a destination folder.")
        if self.encrypt_box.isChecked():
            from mdtviewer.governance import archive

            p1, p2 = self.pw1.text(), self.pw2.text()
            self.pw1.clear()
            self.pw2.clear()
            if p1 != p2:
                return self._fail("The two passwords differ.")
            try:
                archive.check_password(p1)
            except archive.ArchiveError as exc:
                return self._fail(error_text(exc))
            password = p1
        opts = self.options()
        self.export_button.setEnabled(False)
        self.progress.setRange(0, len(paths))
        self.progress.setValue(0)
        self.progress.show()
        self.summary.setPlainText("Exporting…")

        def run(task: tasks.Task, pw: str | None = password) -> Any:
            from mdtviewer.governance.export import export, export_encrypted

            prog = lambda k, n, _item: task.progress((k, n))  # noqa: E731
            if pw is not None:
                return export_encrypted(paths, dest, pw, opts, progress=prog)
            return export(paths, dest, opts, progress=prog)

        password = None
        self._export_task = tasks.run(
            self, run, name="mdt-export", on_progress=lambda kn: self.progressed.emit(*kn),
            on_result=self.finished_export.emit,
            on_error=lambda message: self.finished_export.emit(_ExportFailed(message)), expected=(OSError,),
        )
        return True

    def _fail(self, msg: str) -> bool:
        self.error = msg
        self.summary.setPlainText(msg)
        return False

    def wait(self, timeout: float = 120.0) -> None:
        """Wait for the export job to finish in its worker (its result is delivered by the event loop)."""
        if self._export_task is not None:
            self._export_task.wait(timeout)

    def _on_progress(self, k: int, n: int) -> None:
        self.progress.setRange(0, n)
        self.progress.setValue(k)

    def _on_finished(self, rep: Any) -> None:
        self.export_button.setEnabled(True)
        self.progress.hide()
        if isinstance(rep, Exception):
            self.report = None
            self.error = f"Export failed: {rep}"
            self.summary.setPlainText(self.error)
            return
        self.report = rep
        lines = [f"Exported {rep.n_ok} of {len(rep.items)} file(s)."]
        if rep.archive is not None:
            lines.append(f"Archive: {rep.archive}")
        else:
            lines.append(f"Folder: {rep.dest}")
        lines.extend(export_summary_lines(rep))
        withdrawn = getattr(rep, "withdrawn", [])
        if withdrawn:  # IHE IOCM: left out by default, and said (reasons only: no paths, no identifiers)
            reasons = sorted({reason for _src, reason, _who in withdrawn})
            lines.append(f"Not exported: {len(withdrawn)} file(s) withdrawn by a rejection note "
                         f"({'; '.join(reasons)}).")
        self.summary.setPlainText("\n".join(lines))


def export_summary_lines(rep: Any) -> list[str]:
    """What happened to burned-in text (masked / written unmasked at the user's request / refused) and to any
    other failed file, by file number (no identifiers)."""
    number = {id(it): n for n, it in enumerate(rep.items, 1)}
    lines = []
    masked = rep.with_state("masked")
    if masked:
        by: dict[str, int] = {}
        for it in masked:
            by[it.masked_by] = by.get(it.masked_by, 0) + 1
        lines.append(f"Masked: {len(masked)} image(s) ({', '.join(f'{k} {v}' for k, v in sorted(by.items()))}).")
    unmasked = rep.with_state("unmasked-at-request")
    if unmasked:
        files = ", ".join(str(number[id(it)]) for it in unmasked)
        lines.append(f"Written unmasked at your request (Burned In Annotation YES): {len(unmasked)} image(s):"
                     f" file(s) {files}. They may show the patient's name or the hospital.")
    refused = rep.with_state("refused")
    if refused:
        lines.append(f"Refused, not written (may show identifiers): {len(refused)} image(s).")
        lines.extend(f"File {number[id(it)]} refused: {dialog_wording(str(it.error))}" for it in refused)
    lines.extend(f"File {number[id(it)]} not exported: {dialog_wording(str(it.error))}" for it in rep.items
                 if not it.ok and it.mask_state != "refused")
    return lines


def open_dialog(window: ExportHost) -> ExportDialog:
    dlg = ExportDialog(window)
    dlg.resize(1100, 700)
    dlg.show()
    return dlg


class _ExportFailed(Exception):
    """The export job's failure, as the one-line message :mod:`mdtviewer.ui.tasks` worded."""


def open_encrypted_archive(window: ExportHost, path: str | None = None, password: str | None = None) -> str | None:
    """Open an mdtviewer (or any AES 7z) archive of DICOM files: extract to a private temp folder, index it.

    Asks for the file and the password when not given.  Returns the extraction
    folder, or None (the reason is shown in the status bar).  The folder is
    removed when the application quits.
    """
    from PySide6.QtWidgets import QApplication, QInputDialog

    from mdtviewer.governance import archive
    from mdtviewer.infra import audit

    if path is None:
        path, _ = QFileDialog.getOpenFileName(window, "Open encrypted archive", "", "7z archive (*.7z)")
        if not path:
            return None
    if password is None:
        password, ok = QInputDialog.getText(window, "Encrypted archive", "Password:", QLineEdit.EchoMode.Password)
        if not ok:
            return None
    # decrypting and decompressing a large archive takes seconds: on a worker, while the window
    # keeps painting (a local event loop, not a busy wait); the call still returns the folder
    outcome: dict[str, Any] = {}
    loop = QEventLoop()

    def finish(key: str, value: Any) -> None:
        outcome[key] = value
        loop.quit()

    def work(_task: tasks.Task, pw: str = password) -> Any:
        return archive.open_archive(path, pw)

    window.statusBar().showMessage("Opening the encrypted archive…")
    tasks.run(window, work, name="archive-open", on_result=lambda folder: finish("folder", folder),
              on_error=lambda message: finish("error", message), on_cancel=loop.quit,  # the window closed
              expected=(archive.ArchiveError, OSError))
    password = None
    loop.exec()
    if "folder" not in outcome:
        reason = outcome.get("error") or "the window closed"
        window.statusBar().showMessage(f"Archive not opened: {reason}", 15000)
        audit.record("archive-opened", outcome="failure", detail={"reason": reason})
        return None
    folder = outcome["folder"]
    audit.record("archive-opened", detail={"files": sum(1 for p in folder.rglob("*") if p.is_file())})
    app = QApplication.instance()
    if app is not None:
        app.aboutToQuit.connect(lambda f=folder: archive.remove_extracted(f))
    window.extracted_archives.append(folder)
    window.open_paths([str(folder)])
    return str(folder)
