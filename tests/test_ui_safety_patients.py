"""Issue 10.5: every report view says whose report it is; a report of another patient or study than the
images on screen gets a warning bar; viewports of different patients are framed in a colour per patient
and the window says "2 patients on screen".  Real window (pytest-qt), real corpus files.

The matching image is a copy of a corpus still made in tmp_path with pydicom, given the PDF report's
Patient ID, name and Study Instance UID (the same patient and study as the report)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
import pytestqt  # noqa: F401  (a test dependency: fail, never skip)
from pydicom.uid import generate_uid
from PySide6.QtGui import QImage

pytestmark = pytest.mark.gui

PDF = "pdf_encapsulated_orthanc_sample.dcm"
OTHER = "us_esaote_ybr422_uncompressed.dcm"  # another patient (ID 34234dffse34)
WRONG = "This report is for a different patient than the images on screen"


def shots_dir(tmp_path: Path) -> Path:
    d = Path(os.environ.get("MDT_SCREENSHOTS", tmp_path))
    d.mkdir(parents=True, exist_ok=True)
    return d


def same_patient_image(testdata: Path, dst: Path) -> Path:
    rep = pydicom.dcmread(testdata / PDF, stop_before_pixels=True)
    ds = pydicom.dcmread(testdata / OTHER)
    for kw in ("PatientID", "PatientName", "StudyInstanceUID", "StudyDate"):
        setattr(ds, kw, rep.get(kw))
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(dst, enforce_file_format=False)
    return dst


def uid(path: Path, kw: str = "SOPInstanceUID") -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).get(kw))


def shown(window) -> bool:
    rp = window.report_panel
    return rp.current_entry() is not None and rp.stack.currentIndex() == rp.PAGE_PDF


def band_pixels(img: QImage, colour: str) -> int:
    """How many pixels of the viewport grab are the patient colour (the frame)."""
    from PySide6.QtGui import QColor

    c = QColor(colour)
    a = img.convertToFormat(QImage.Format.Format_RGB32)
    arr = np.frombuffer(a.constBits(), np.uint8).reshape(a.height(), a.bytesPerLine())[:, : a.width() * 4]
    px = arr.reshape(a.height(), a.width(), 4)[:, :, :3].astype(int)  # BGRA
    return int((np.abs(px - np.array([c.blue(), c.green(), c.red()])).sum(axis=2) < 30).sum())


def test_report_of_another_patient_warns_and_two_patients_are_marked(qtbot, window, testdata, tmp_path):
    mine = same_patient_image(testdata, tmp_path / "same_patient_as_pdf.dcm")
    files = [testdata / PDF, testdata / OTHER, mine]
    window.report_panel.pacs_lookup_enabled = False
    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        window.open_paths([str(f) for f in files])
    rp = window.report_panel
    # images of patient B on screen, then the PDF of patient A opened from the browser
    assert window.show_series(uid(testdata / OTHER, "SeriesInstanceUID"))
    qtbot.waitUntil(lambda: window.viewports[0].loaded is not None, timeout=20_000)
    assert window.show_instance(uid(testdata / PDF))
    qtbot.waitUntil(lambda: shown(window), timeout=20_000)
    qtbot.waitUntil(lambda: rp.warning_bar.isVisible(), timeout=5_000)
    assert WRONG in rp.warning_bar.text()
    whose = rp.whose_label.text()
    assert "CARDIO" in whose and "ID 3456" in whose and "study 2013-08-12" in whose and rp.whose_label.isVisible()
    window.grab().save(str(shots_dir(tmp_path) / "wrong_patient_warning.png"))

    # the same patient's image instead: no warning, the report still says whose it is
    assert window.show_series(uid(mine, "SeriesInstanceUID"), viewport=window.viewports[0])
    qtbot.waitUntil(lambda: not rp.warning_bar.isVisible(), timeout=5_000)
    assert rp.whose_label.text() == whose
    assert window.patients_on_screen() == 1 and not window.patients_label.isVisible()
    assert window.viewports[0].patient_band() is None

    # two patients side by side: each viewport framed in its colour, the window says so, the report warns
    window.choose_layout(1, 2)
    assert window.show_series(uid(testdata / OTHER, "SeriesInstanceUID"), viewport=window.viewports[1])
    qtbot.waitUntil(lambda: window.patients_on_screen() == 2, timeout=5_000)
    qtbot.waitUntil(lambda: all(v.loaded is not None for v in window.viewports), timeout=20_000)
    assert window.patients_label.isVisible() and window.patients_label.text() == "2 patients on screen"
    assert "2 PATIENTS ON SCREEN" in window.windowTitle()
    bands = [v.patient_band() for v in window.viewports]
    assert all(b is not None for b in bands) and bands[0][0] != bands[1][0]
    assert "2 patients: blue" in window.viewports[0].overlay_lines()["tl"]
    assert "2 patients: orange" in window.viewports[1].overlay_lines()["tl"]
    # the report panel followed the study just shown (no reports): the PDF opened again warns
    assert window.show_instance(uid(testdata / PDF))
    qtbot.waitUntil(lambda: shown(window) and rp.warning_bar.isVisible(), timeout=20_000)
    assert WRONG in rp.warning_bar.text()
    for vp, colour in zip(window.viewports, ("#1e90ff", "#ff8c00")):
        assert band_pixels(vp.grab().toImage(), colour) > 2 * vp.width()  # painted, not only said
    qtbot.waitUntil(lambda: all(v.is_settled() for v in window.viewports)
                    and not rp.status_label.text().startswith("Reading"), timeout=20_000)
    qtbot.wait(200)  # the PDF page paints
    window.grab().save(str(shots_dir(tmp_path) / "two_patients_on_screen.png"))

    # privacy: the report still says whose it is, by the browser's number, with no name or ID
    window.set_privacy(True)
    t = rp.whose_label.text()
    assert t.startswith("Report for: Patient ") and "[hidden]" in t and "CARDIO" not in t and "3456" not in t
    window.set_privacy(False)

    # back to one patient: the marks go at once
    window.viewports[1].clear()
    qtbot.waitUntil(lambda: window.patients_on_screen() == 1, timeout=5_000)
    assert not window.patients_label.isVisible() and window.viewports[0].patient_band() is None
    assert "PATIENTS ON SCREEN" not in window.windowTitle()
