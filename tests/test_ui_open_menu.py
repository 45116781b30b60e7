"""File › Open folder / files / DICOMDIR, through the menu actions (the OS dialog answers with a path)."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytestqt  # noqa: F401  (a test dependency: fail, never skip)
from PySide6.QtWidgets import QFileDialog

from mdtviewer.ui.main_window import MainWindow

pytestmark = pytest.mark.gui

DDSET = "dicomdir_pydicom_ct_mr_2patients"


def _action(win: MainWindow, text: str):
    for a in win.file_menu.actions():
        if a.text().replace("&", "") == text:
            return a
    raise AssertionError(f"File menu has no {text!r}: {[a.text() for a in win.file_menu.actions()]}")




def test_open_folder_files_and_dicomdir_from_the_file_menu(qtbot, window, testdata, monkeypatch):
    asked: list[str] = []

    def folder(*_a, **_k):
        asked.append("folder")
        return str(testdata / DDSET / "98892001")

    def files(*_a, **_k):
        asked.append("files")
        return [str(testdata / "usmf_sonosite_jpeg_ybr422_30f.dcm"), str(testdata / "usmf_hp_jpeg_ybr422_34f.dcm")], ""

    def dicomdir(*_a, **_k):
        asked.append("dicomdir")
        return str(testdata / DDSET / "DICOMDIR"), ""

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(folder))
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(files))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(dicomdir))

    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        _action(window, "Open folder…").trigger()
    assert len(window.index.instances()) == 7  # CT2N (2) + CT5N (5) of patient 98892001
    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        _action(window, "Open files…").trigger()
    names = {Path(i.path).name for i in window.index.instances()}
    assert {"usmf_sonosite_jpeg_ybr422_30f.dcm", "usmf_hp_jpeg_ybr422_34f.dcm"} <= names
    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        _action(window, "Open DICOMDIR…").trigger()
    # the DICOMDIR adds the other 24 files it names; the 7 already open are not duplicates of themselves
    assert len(window.index.instances()) == 31 + 2 and window.index.duplicates == []
    assert asked == ["folder", "files", "dicomdir"]
    # each opening is a recent study, the newest first
    assert window.recent()[:4] == [
        str(testdata / DDSET / "DICOMDIR"),
        str(testdata / "usmf_sonosite_jpeg_ybr422_30f.dcm"),
        str(testdata / "usmf_hp_jpeg_ybr422_34f.dcm"),
        str(testdata / DDSET / "98892001"),
    ]
