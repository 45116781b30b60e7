"""QA2 #15: the export dialog's red "burned-in name, ID or hospital stays readable" warning is shown only
while "Write images that may show identifiers unmasked" is ticked (shown unticked, it read as if it applied
to the export about to run). Real window, real corpus files, Ctrl+E."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from mdtviewer.ui.main_window import MainWindow

pytestmark = pytest.mark.gui

FILES = ("us_siemens_s2000_rgb_explicit_le.dcm", "us_ge_logiq700_rgb_explicit_le.dcm")


@pytest.fixture
def win(qtbot, testdata):
    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    qtbot.waitExposed(w)
    with qtbot.waitSignal(w.scanFinished, timeout=60_000):
        w.open_paths([str(testdata / f) for f in FILES])
    yield w
    w.stop_all()
    w.close()


def test_unmasked_warning_only_while_ticked(qtbot, win):
    QTest.keyClick(win, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(
        lambda: getattr(win, "export_dialog", None) is not None and win.export_dialog.isVisible(), timeout=5_000
    )
    dlg = win.export_dialog
    box, warning = dlg.unmasked_box, dlg.unmasked_warning
    assert not box.isChecked()  # the default: images that cannot be masked are not written
    assert not warning.isVisible()
    box.click()
    QApplication.processEvents()
    assert box.isChecked() and warning.isVisible()
    assert "stays readable" in warning.text() and "Burned In Annotation YES" in warning.text()
    assert dlg.options().unmasked_ok
    box.click()
    QApplication.processEvents()
    assert not box.isChecked() and not warning.isVisible() and not dlg.options().unmasked_ok
    dlg.close()
