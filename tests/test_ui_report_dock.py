"""The report panel sits beside the viewports in a splitter, can be hidden (F4) and comes back."""

from __future__ import annotations

import pytest
import pytestqt  # noqa: F401  (a test dependency: fail, never skip)
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QSplitter

from mdtviewer.ui.main_window import MainWindow

pytestmark = pytest.mark.gui


def test_report_panel_beside_the_viewports_hides_with_f4(qtbot, testdata):
    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1600, 900)
    win.show()
    qtbot.waitExposed(win)
    try:
        with qtbot.waitSignal(win.scanFinished, timeout=60_000):
            win.open_paths([str(testdata / "usmf_sonosite_jpeg_ybr422_30f.dcm")])
        rp = win.report_panel
        split = rp.parentWidget()
        assert isinstance(split, QSplitter) and split.orientation() == Qt.Orientation.Horizontal
        assert split.indexOf(win.grid) == 0 and split.indexOf(rp) == 1  # images left, report right
        assert rp.isVisible() and rp.width() > 200
        vp = win.viewports[0]
        w_with = vp.width()
        QTest.keyClick(win, Qt.Key.Key_F4)
        QApplication.processEvents()
        assert not rp.isVisible() and not win.report_action.isChecked()
        qtbot.waitUntil(lambda: vp.width() > w_with + 150, timeout=5_000)  # the images take the room
        QTest.keyClick(win, Qt.Key.Key_F4)
        QApplication.processEvents()
        assert rp.isVisible() and win.report_action.isChecked()
        qtbot.waitUntil(lambda: abs(vp.width() - w_with) < 30, timeout=5_000)
        # the user can drag the splitter: the panel is resizable, not fixed
        sizes = split.sizes()
        split.setSizes([sizes[0] - 200, sizes[1] + 200])
        assert split.sizes()[1] > sizes[1] + 100
    finally:
        win.stop_all()
        win.close()


def test_a_new_window_caches_one_gib_by_default(qtbot):
    """The issue's default: 1 GiB of decoded frames, unless settings.json says otherwise."""
    from mdtviewer.ui.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    try:
        assert win.service.cache.max_bytes == 1 << 30
    finally:
        win.close()
