"""Viewer controls of issue 15.6: window/level presets on the real range of >8-bit images, and F11 full
screen whose tick follows the real window state (also after an MDT session).

Test file with more than 8 bits stored and no window: the corpus has none that decodes (the only one,
bad_j2k_fragment_contains_seq_delimiter.dcm, is damaged), so one is made from the corpus CT
dicomdir_pydicom_ct_mr_2patients/77654033/CT2/17106 (16 bits stored, Rescale Intercept -1024) with
pydicom by deleting Window Center, Window Width and their explanation, written to tmp_path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from PySide6.QtCore import Qt

from mdtviewer.ui.viewer.grid import CT_PRESETS
from mdtviewer.workflows.mdt_session import MDTSession

pytestmark = pytest.mark.gui

CT = "dicomdir_pydicom_ct_mr_2patients/77654033/CT2/17106"
GREY_US = "us_philips_epiq7c_mono2_jpeg_lossless_sv1.dcm"  # 8-bit grey ultrasound, Window 127/254, values 0..255
CINE = "usmf_sonosite_jpeg_ybr422_30f.dcm"


def _without_window(src: Path, dst: Path) -> Path:
    ds = pydicom.dcmread(src)
    for kw in ("WindowCenter", "WindowWidth", "WindowCenterWidthExplanation", "VOILUTFunction"):
        if kw in ds:
            delattr(ds, kw)
    ds.save_as(dst)
    return dst


def _hu(path: Path) -> np.ndarray:
    ds = pydicom.dcmread(path)
    return ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def _open(qtbot, window, path: Path):
    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        window.open_paths([str(path)])
    vp = window.current_viewport()
    qtbot.waitUntil(lambda: vp.loaded is not None and vp.shown_frame() is not None, timeout=20_000)
    return vp


def test_presets_use_the_real_range_of_a_16_bit_image_without_a_window(qtbot, window, testdata, tmp_path):
    path = _without_window(testdata / CT, tmp_path / "ct_no_window.dcm")
    head = pydicom.dcmread(path, stop_before_pixels=True)
    assert int(head.BitsStored) > 8 and "WindowCenter" not in head and "WindowWidth" not in head
    hu = _hu(path)
    lo, hi = float(hu.min()), float(hu.max())  # -981 .. 77 HU: nothing like 0-255
    assert hi - lo > 255
    vp = _open(qtbot, window, path)
    assert not vp.loaded.is_color
    full = ((lo + hi + 1) / 2, hi - lo + 1)
    window.action("view.window.full").trigger()  # F6
    assert vp.window_level == pytest.approx(full)
    qtbot.waitUntil(lambda: vp.shows_window_level() and vp.shown_frame() == 0, timeout=10_000)
    shown = vp.displayed_array()
    # the full range uses the whole grey scale: the darkest value black, the brightest white
    assert int(shown.min()) == 0 and int(shown.max()) >= 254
    assert len(np.unique(shown)) > 100  # not the two-level picture a 0-255 window makes of HU values
    window.action("view.window.contrast").trigger()  # F7: half the range, same centre
    assert vp.window_level == pytest.approx((full[0], full[1] * 0.5))
    window.action("view.window.soft").trigger()  # F8
    assert vp.window_level == pytest.approx((full[0], full[1] * 1.5))
    # CT in Hounsfield units: the angiography window is the real one, and it differs from the range presets
    window.action("view.window.ct_angio").trigger()
    assert vp.window_level == pytest.approx(CT_PRESETS["ct_angio"][1:])
    assert "CT angiography" in window.statusBar().currentMessage()


def test_full_range_is_the_real_range_even_when_the_file_has_a_window(qtbot, window, testdata):
    """The unmodified CT has Window 30/100: 'Full range' is its -981..77 HU range, read on a worker."""
    hu = _hu(testdata / CT)
    lo, hi = float(hu.min()), float(hu.max())
    vp = _open(qtbot, window, testdata / CT)
    assert vp.loaded.default_window == (30.0, 100.0)
    window.action("view.window.full").trigger()
    qtbot.waitUntil(lambda: vp.window_level == pytest.approx(((lo + hi + 1) / 2, hi - lo + 1)), timeout=10_000)


def test_us_presets_and_ct_presets_refused_on_ultrasound(qtbot, window, testdata):
    vp = _open(qtbot, window, testdata / GREY_US)
    ds = pydicom.dcmread(testdata / GREY_US)
    px = ds.pixel_array
    lo, hi = float(px.min()), float(px.max())
    assert int(ds.BitsStored) == 8 and hi <= 255
    window.action("view.window.contrast").trigger()
    # at once from the file's window, then from the real range of the frame read on a worker
    want = ((lo + hi + 1) / 2, (hi - lo + 1) * 0.5)
    assert (lo, hi) == (0.0, 255.0) and want == (128.0, 128.0)
    qtbot.waitUntil(lambda: vp.window_level == pytest.approx(want), timeout=10_000)
    before = vp.window_level
    window.action("view.window.ct_bone").trigger()
    assert vp.window_level == before  # unchanged: HU windows mean nothing on ultrasound
    assert "for CT" in window.statusBar().currentMessage() and "US" in window.statusBar().currentMessage()


def _full(window) -> bool:
    return bool(window.windowState() & Qt.WindowState.WindowFullScreen)


def test_f11_tick_follows_the_window_after_an_mdt_session(qtbot, window, testdata):
    a = window.action("view.full_screen")
    _open(qtbot, window, testdata / CINE)
    # full screen without an MDT session
    assert window.presenter.session is None
    a.trigger()
    qtbot.waitUntil(lambda: _full(window), timeout=5_000)
    assert a.isChecked() and window.menuBar().isVisible()
    a.trigger()
    qtbot.waitUntil(lambda: not _full(window), timeout=5_000)
    assert not a.isChecked()
    # an MDT session: presenting is full screen, and the tick says so
    s = MDTSession(title="MDT")
    s.add_case(window.current_viewport().study_uid, label="Case A")
    window.presenter.set_session(s)
    assert window.presenter.start()
    qtbot.waitUntil(lambda: _full(window), timeout=5_000)
    assert a.isChecked()
    window.presenter.stop()
    qtbot.waitUntil(lambda: not _full(window), timeout=5_000)
    assert not a.isChecked()  # the presenter left full screen: the tick went with it
    # F11 works at once after the session (one press, not two)
    a.trigger()
    qtbot.waitUntil(lambda: _full(window), timeout=5_000)
    assert a.isChecked()
    # F11 while presenting, then leaving: the window was full screen before presenting, so it stays, ticked
    window.presenter.start()
    window.presenter.stop()
    assert _full(window) and a.isChecked()
    a.trigger()
    qtbot.waitUntil(lambda: not _full(window), timeout=5_000)
    assert not a.isChecked()


def test_scale_bar_label_grows_with_the_viewport_and_in_presenter_mode(qtbot, window, testdata):
    """Issue 15.6 (legibility): the scale bar's '1 cm' used the default 9 pt font (about 9 px capitals) in
    every viewport and in presenter mode; it now has the overlay text's size and grows with it."""
    from PySide6.QtGui import QFont, QFontMetrics

    window.resize(1600, 900)
    vp = _open(qtbot, window, testdata / CINE)  # calibrated: one US region, so a scale bar is drawn
    qtbot.waitUntil(vp.is_settled, timeout=20_000)
    vp.grab()
    normal = vp.scale_bar_label_rect
    assert normal is not None
    default_h = QFontMetrics(QFont()).height()  # what the label had before
    assert normal.height() == vp.overlay_font_metrics().height() > default_h
    small_px = vp.overlay_text_px()
    vp.set_overlay_scale(1.6)  # presenter mode
    vp.grab()
    big = vp.scale_bar_label_rect
    assert vp.overlay_text_px() >= round(small_px * 1.4)
    assert big is not None and big.height() >= normal.height() * 1.3 and big.width() > normal.width()
    assert big.right() <= vp.width() and big.top() >= 0  # still inside the viewport
    vp.set_overlay_scale(1.0)
