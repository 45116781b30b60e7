"""HAZ-001 C7: Tools › Masking template for this scanner… and the viewport's "hidden: may show identifiers"
warning open the same dialog under privacy: the image pixelated, so no burned-in name can be read on the shared
screen (the menu used to refuse while the warning's button opened it).  Real window (pytest-qt), the menu's own
action, the Siemens S2000 of the corpus as a PACS that dropped its regions sends it; OCR (tesseract) reads the
name on the whole frame and nothing in what the dialog shows."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytestqt  # noqa: F401  (a test dependency: fail, never skip)
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QMessageBox

from mdtviewer.imaging import burnedin, masking
from mdtviewer.imaging.templates import ScannerKey, TemplateStore
from mdtviewer.ui.dialogs.template_dialog import pixelate

SIEMENS = "us_siemens_s2000_rgb_explicit_le.dcm"


def _dialogs():
    return [w for w in QApplication.topLevelWidgets() if w.objectName() == "templateDialog" and w.isVisible()]


def _pixels(widget) -> np.ndarray:
    """The widget as the screen shows it (H x W x 3)."""
    img = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    w, h, bpl = img.width(), img.height(), img.bytesPerLine()
    return np.frombuffer(img.constBits(), np.uint8, count=bpl * h).reshape(h, bpl)[:, : w * 3].reshape(h, w, 3).copy()


def _identifier_words(frame, ds):
    words = burnedin.ocr_words(np.ascontiguousarray(frame), scale=2)
    return [w.text for w in burnedin.find_identifier_words(words or [], masking.identifier_tokens(ds))]


def test_tools_menu_opens_the_same_pixelated_dialog_as_the_warning(qtbot, window, testdata, tmp_path, monkeypatch):
    ds = pydicom.dcmread(testdata / SIEMENS)
    del ds.SequenceOfUltrasoundRegions
    path = tmp_path / "siemens_no_regions.dcm"
    ds.save_as(path)
    said: list[str] = []
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: said.append(a[2]))
    masking.clear_plan_cache()
    window.set_privacy(True)  # at the meeting, on the shared screen
    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        window.open_paths([str(path)])
    vp = window.viewports[0]
    qtbot.waitUntil(lambda: bool(vp.stack) and vp.is_settled() and vp.displayed_array() is not None, timeout=30_000)
    vp.grab()
    assert vp.overlay_lines()["c"] == [masking.HIDDEN_MESSAGE] and vp.template_button_shown()

    # the warning's button ...
    qtbot.mouseClick(vp.template_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(_dialogs()) == 1, timeout=5_000)
    (from_warning,) = _dialogs()
    warned = (from_warning.key, from_warning.pixelated(), from_warning.shown_frame().copy())
    from_warning.reject()
    qtbot.waitUntil(lambda: not _dialogs(), timeout=5_000)

    # ... and the Tools menu: the same dialog, for the same scanner, pixelated the same way; no refusal
    window.action("tools.masking_template").trigger()
    qtbot.waitUntil(lambda: len(_dialogs()) == 1, timeout=5_000)
    (dlg,) = _dialogs()
    assert not said, said
    assert dlg.key == warned[0] == ScannerKey("SIEMENS", "S2000", 768, 1024)
    assert dlg.pixelated() and warned[1] and dlg.unpixelate_box.isVisible() and not dlg.unpixelate_box.isChecked()
    shown = dlg.shown_frame()
    assert np.array_equal(shown, warned[2]) and np.array_equal(shown, pixelate(dlg.frame))
    assert "Privacy is on" in dlg.help_label.text()
    if shutil.which("tesseract"):
        assert _identifier_words(dlg.frame, ds), "the measuring stick: OCR reads the name on the whole frame"
        assert _identifier_words(shown, ds) == [], "OCR reads an identifier in the pixelated preview"
        assert _identifier_words(_pixels(dlg), ds) == [], "OCR reads an identifier on the dialog as on screen"

    # saved from the menu's dialog: the image shows masked by the template at once
    dlg.save()
    (t,) = TemplateStore().all()
    assert t.key == ScannerKey("SIEMENS", "S2000", 768, 1024)
    qtbot.waitUntil(lambda: "scanner template" in vp.overlay_text() and vp.is_settled()
                    and vp.displayed_array() is not None and vp.displayed_array().any(), timeout=20_000)
