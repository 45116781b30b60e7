"""Tools › Masking template for this scanner…: draw the keep area once per scanner screen layout.

A department sets, once per scanner (Manufacturer + Model + Rows + Columns), the
rectangle where that scanner puts the image; privacy mode, presenter mode and
export then blank everything outside it on images of that scanner that carry
no ultrasound regions (:mod:`mdtviewer.imaging.templates`).

The dialog shows the whole image, burned-in text included.  From the Tools
menu and from the viewport's "hidden: may show identifiers" warning alike it
opens even under privacy (at the meeting, when the image is needed), but then
it shows the image pixelated, in blocks larger than the scanner's letters: the
fan and the strips can be told apart and framed, the name cannot be read; the
user may tick "Show the image unpixelated" when nobody else can see the screen.
It suggests the image area it finds (the regions, or :mod:`mdtviewer.imaging.burnedin`)
and the user drags a better one; "Preview masked" shows the image as it will
be shown.  An image that does not name its scanner cannot get a template (it
would apply to every unnamed scanner of that size).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from mdtviewer.dicom.reader import read_dataset
from mdtviewer.imaging import burnedin, masking
from mdtviewer.imaging.pixels import FrameSource
from mdtviewer.imaging.templates import ScannerKey, Template, TemplateStore
from mdtviewer.infra.errors import MdtError
from mdtviewer.ui.dialogs.export_dialog import PreviewLabel
from mdtviewer.ui.viewer.grid import ViewportGrid
from mdtviewer.ui.viewer.viewport import Viewport

Rect = tuple[int, int, int, int]


def pixel_block(rows: int, cols: int) -> int:
    """The pixelation block for a privacy preview: larger than the scanner's letters (8-16 px on a
    320x240 to 1024x768 screen), small enough that the fan and strips keep their outline."""
    return max(12, min(int(rows), int(cols)) // 32)


def pixelate(frame: np.ndarray, block: int | None = None) -> np.ndarray:
    """*frame* in blocks of *block* pixels, each the mean of the block, brightness stretched (same shape
    and dtype): the layout of the screen stays visible, letters smaller than a block do not."""
    h, w = frame.shape[:2]
    b = int(block or pixel_block(h, w))
    hh, ww = -(-h // b) * b, -(-w // b) * b
    pad = [(0, hh - h), (0, ww - w)] + [(0, 0)] * (frame.ndim - 2)
    big = np.pad(frame.astype(np.float32), pad, mode="edge")
    shape = (hh // b, b, ww // b, b) + frame.shape[2:]
    means = big.reshape(shape).mean(axis=(1, 3))
    # stretched so a dark screen's fan and strips stand out (averaged blocks of a dark image are near black)
    top = float(np.percentile(means, 99)) if means.size else 0.0
    if 0 < top < 255:
        means = means * (255.0 / top)
    out = np.repeat(np.repeat(means, b, axis=0), b, axis=1)[:h, :w]
    return np.ascontiguousarray(np.clip(np.rint(out), 0, 255).astype(frame.dtype))


def suggested_keep(ds: Any, frame: np.ndarray) -> Rect:
    """Where the image probably is: the regions' bounding box, else the area the detector finds, else all."""
    h, w = frame.shape[:2]
    regions = masking.ultrasound_regions(ds)
    if regions:
        x0 = max(0, min(r[0] for r in regions))
        y0 = max(0, min(r[1] for r in regions))
        return (x0, y0, min(w - 1, max(r[2] for r in regions)), min(h - 1, max(r[3] for r in regions)))
    det = burnedin.detect([frame])
    if det.safe and det.content is not None:
        return det.content
    return (0, 0, w - 1, h - 1)


class TemplateDialog(QDialog):
    """Draw and save the keep-rectangle of one scanner layout on one of its images."""

    def __init__(self, path: str | Path, parent: QWidget | None = None, store: TemplateStore | None = None,
                 *, privacy: bool = False):
        super().__init__(parent)
        #: opened while privacy is on (from the viewport's warning): the image is shown pixelated
        self.privacy = bool(privacy)
        self.setObjectName("templateDialog")
        self.setWindowTitle("Masking template for this scanner")
        self.store = store or TemplateStore()
        self.path = Path(path)
        ds = read_dataset(self.path, stop_before_pixels=True)
        self.key = ScannerKey.of(ds)
        self.frame = np.asarray(FrameSource(self.path).frame(0))
        self.existing = self.store.find(self.key)
        if self.existing is not None and self.existing.rects:
            self.keep: Rect = self.existing.rects[0]
        else:
            self.keep = suggested_keep(ds, self.frame)
        self.named = bool(self.key.manufacturer or self.key.model)

        lay = QVBoxLayout(self)
        version = self.key.software_version
        self.scanner_label = QLabel(f"Scanner: {self.key.describe()}"
                                    + (f" (software version {version})" if version else ""))
        self.scanner_label.setObjectName("scannerLabel")
        lay.addWidget(self.scanner_label)
        self.help_label = QLabel(
            "Drag the area that holds the image (the fan or rectangle, Doppler strip, ECG). Everything outside it "
            "is blanked in privacy mode, presenter mode and export, on every image of this scanner layout "
            "that has no ultrasound regions."
            if self.named
            else "This image does not name its scanner (no Manufacturer or Model): a template would apply to "
            "every unnamed scanner of this size, so none can be set."
        )
        if self.privacy and self.named:
            self.help_label.setText(self.help_label.text() + " Privacy is on: the image is pixelated so no "
                                    "burned-in name can be read on the shared screen.")
        self.help_label.setWordWrap(True)
        lay.addWidget(self.help_label)
        self.preview = PreviewLabel(self)
        self.preview.rectDrawn.connect(self.set_keep)
        lay.addWidget(self.preview, 1)
        self.masked_box = QCheckBox("Preview masked")
        self.masked_box.toggled.connect(lambda _on: self._refresh())
        lay.addWidget(self.masked_box)
        self.unpixelate_box = QCheckBox("Show the image unpixelated (nobody else can see this screen)")
        self.unpixelate_box.setObjectName("unpixelate")
        self.unpixelate_box.setVisible(self.privacy)
        self.unpixelate_box.toggled.connect(lambda _on: self._refresh())
        lay.addWidget(self.unpixelate_box)
        self.note = QLineEdit(self.existing.note if self.existing else "")
        self.note.setPlaceholderText("note (e.g. room, preset)")
        lay.addWidget(self.note)
        row = QHBoxLayout()
        self.save_button = QPushButton("Save template")
        self.save_button.setObjectName("saveTemplate")
        self.save_button.setEnabled(self.named)
        self.save_button.clicked.connect(self.save)
        self.remove_button = QPushButton("Remove template")
        self.remove_button.setEnabled(self.existing is not None)
        self.remove_button.clicked.connect(self.remove)
        cancel = QPushButton("Cancel")
        cancel.clicked.connect(self.reject)
        row.addWidget(self.save_button)
        row.addWidget(self.remove_button)
        row.addStretch(1)
        row.addWidget(cancel)
        lay.addLayout(row)
        self.resize(820, 700)
        self._refresh()

    def set_keep(self, rect: Rect) -> None:
        x0, y0, x1, y1 = (int(v) for v in rect)
        self.keep = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        self._refresh()

    def pixelated(self) -> bool:
        """True while the preview is pixelated (opened under privacy, and not unpixelated by the user)."""
        return self.privacy and not self.unpixelate_box.isChecked()

    def shown_frame(self) -> np.ndarray:
        """The frame as the preview shows it (masked outside the keep area when asked; pixelated under privacy)."""
        frame = self.frame
        if self.masked_box.isChecked():
            keep = masking.keep_mask(frame.shape[0], frame.shape[1], [self.keep])
            frame = masking.apply_mask(frame, keep, 0)
        return pixelate(frame) if self.pixelated() else frame

    def _refresh(self) -> None:
        x0, y0, x1, y1 = self.keep
        state = "template saved for this scanner" if self.existing is not None else "no template yet"
        if self.existing is not None and not self.existing.fits_version(self.key.software_version):
            # HAZ-022 C3: set for another software version, so not applied; saving it (checked) confirms it
            state = (f"template set for software version {self.existing.version_text()}; this image is "
                     f"{self.key.software_version or 'of no named version'}: check the area, then save to "
                     "confirm it for this version")
        self.preview.set_frame(self.shown_frame(), f"keep {x0},{y0} - {x1},{y1} ({state})", self.keep)

    def template(self) -> Template:
        return Template(self.key, rects=(self.keep,), note=self.note.text().strip())

    def save(self) -> None:
        if not self.named:
            return
        self.store.save(self.template())
        masking.clear_plan_cache()
        self.accept()

    def remove(self) -> None:
        self.store.remove(self.key)
        masking.clear_plan_cache()
        self.accept()


class TemplateHost(Protocol):
    """What the dialog needs from the window (the main window): privacy, the image on screen, the viewports."""

    privacy: bool

    @property
    def grid(self) -> ViewportGrid: ...

    def current_viewport(self) -> Viewport: ...


def open_for_viewport(window: TemplateHost) -> TemplateDialog | None:
    """Open the dialog on the current viewport's image (the window's Tools menu); None when it cannot.

    Under privacy it opens as from the viewport's warning: the image pixelated (:func:`open_from_warning`), so
    the menu and the warning's button never disagree about whether a template can be set at the meeting."""
    parent = window if isinstance(window, QWidget) else None
    vp = window.current_viewport()
    loaded = vp.loaded
    if loaded is None or loaded.error:
        QMessageBox.information(parent, "Masking template", "Show an image of the scanner first.")
        return None
    return _open_on(window, loaded.key)


def open_from_warning(window: TemplateHost, vp: Viewport) -> TemplateDialog | None:
    """The one click from a viewport's "hidden: may show identifiers — set a template for this scanner"
    warning: the dialog on that viewport's image, for its scanner (Manufacturer + Model + Rows + Columns),
    pixelated while privacy is on.  On saving, every viewport works out its privacy plan again, so the
    image shows masked by the new template at once."""
    loaded = vp.loaded
    if loaded is None or loaded.error:
        return None
    return _open_on(window, loaded.key)


def _open_on(window: TemplateHost, path: str | Path) -> TemplateDialog | None:
    """The dialog on the image at *path*, pixelated while the window's privacy is on (the one way it opens)."""
    parent = window if isinstance(window, QWidget) else None
    try:
        dlg = TemplateDialog(path, parent, privacy=window.privacy)
    except MdtError as exc:
        QMessageBox.warning(parent, "Masking template", exc.reason)
        return None
    dlg.finished.connect(lambda _r: _forget_plans(window))
    dlg.open()
    return dlg


def _forget_plans(window: TemplateHost) -> None:
    """Viewports recompute how they mask (a template changed)."""
    for vp in window.grid.all_viewports():
        vp.forget_privacy_plan()  # the viewport keeps its privacy plan per image: ask again
