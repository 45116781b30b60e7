"""QA2 #3: the cine bar of each viewport stays usable on a 720p projector and at the smallest window.

Four real corpus cines in a 2x2 of the real window, all playing (Shift+Space), at 1280x720 and 1024x768:
the pause symbol ❚❚ is drawn whole (the button is never narrower than its glyph, which once showed "…"),
and the frame label shows the full "n / N" (once "frame 17 / 6" of 65): the bar drops the word "frame",
the mode box and the rate field first, never the numbers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from mdtviewer.ui.viewer.cine_bar import PAUSE_SYMBOL, PLAY_SYMBOL

pytestmark = pytest.mark.gui

CINES = (
    "usmf_acuson_sequoia_jpeg_ybr422_65f_ftv.dcm",  # 65 frames: "nn / 65"
    "usmf_hp_jpeg_ybr422_34f.dcm",
    "usmf_sonosite_jpeg_ybr422_30f.dcm",
    "usmf_palette_rle_10f.dcm",
)


def _shown_parts(bar):
    parts = [bar.play_button(), bar.slider(), bar.frame_label(), bar.fps_field(), bar.native_button(), bar.mode_box()]
    return [p for p in parts if p.isVisibleTo(bar)]


def _assert_bar_whole(bar, vp):
    button = bar.play_button()
    assert bar.play_symbol() == PAUSE_SYMBOL
    # the button fits either glyph as its own style lays it out (an elided tool button draws "…")
    for symbol in (PLAY_SYMBOL, PAUSE_SYMBOL):
        glyph = button.fontMetrics().horizontalAdvance(symbol)
        assert button.width() >= glyph + 8, (symbol, button.width(), glyph)
    assert button.width() >= button.sizeHint().width()
    label = bar.frame_label()
    text = bar.frame_text()
    assert text.endswith(f"{vp.frame_index + 1} / {vp.n_frames}") or text.endswith(f"/ {vp.n_frames}"), text
    assert f"/ {vp.n_frames}" in text
    # the whole text fits the label as drawn: no number is clipped
    assert label.width() >= label.fontMetrics().horizontalAdvance(text), (label.width(), text)
    # every shown part lies inside the bar and none overlaps another (a squeezed layout overlaps or clips)
    shown = _shown_parts(bar)
    inside = QRect(0, 0, bar.width(), bar.height())
    for p in shown:
        assert inside.contains(p.geometry()), (p.objectName(), p.geometry(), bar.size())
        assert p.width() >= p.minimumWidth()
    for i, p in enumerate(shown):
        for q in shown[i + 1 :]:
            assert not p.geometry().intersects(q.geometry()), (p.objectName(), q.objectName())
    for p in (bar.fps_field(), bar.mode_box()):
        if p.isVisibleTo(bar):
            assert p.width() >= p.sizeHint().width(), p.objectName()


@pytest.mark.parametrize("size", [(1280, 720), (1024, 768)])
def test_cine_bar_whole_in_2x2_playing(qtbot, window, testdata, size, tmp_path):
    window.resize(*size)
    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        window.open_paths([str(testdata / c) for c in CINES])
    window.choose_layout(2, 2)
    vps = window.viewports[:4]
    by_name = {Path(i.path).name: i for i in window.index.instances()}
    for vp, name in zip(vps, CINES, strict=True):
        vp.set_series([by_name[name]])
    qtbot.waitUntil(lambda: all(v.is_cine() and v.is_settled() for v in vps), timeout=60_000)
    QApplication.processEvents()
    assert window.width() == size[0]  # the window really is that small (it allows it)
    vps[0].setFocus()
    QTest.keyClick(vps[0], Qt.Key.Key_Space, Qt.KeyboardModifier.ShiftModifier)  # every viewport plays
    qtbot.waitUntil(lambda: all(v.playing for v in vps), timeout=5_000)
    qtbot.wait(300)
    QApplication.processEvents()
    for vp in vps:
        bar = window.grid.cine_bar(vp)
        _assert_bar_whole(bar, vp)
        # the least needed parts went first: if the rate field is gone, so is the mode box
        if not bar.fps_field().isVisibleTo(bar):
            assert not bar.mode_box().isVisibleTo(bar)
    bar0 = window.grid.cine_bar(vps[0])
    assert bar0.frame_label().width() >= bar0.frame_label().fontMetrics().horizontalAdvance("88 / 65")
    bar0.grab().save(str(tmp_path / f"bar_{size[0]}.png"))
    QTest.keyClick(vps[0], Qt.Key.Key_Space, Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: not any(v.playing for v in vps), timeout=5_000)
    # paused: ▶, and the bar does not change width or drop anything on play/pause
    for vp in vps:
        bar = window.grid.cine_bar(vp)
        assert bar.play_symbol() == PLAY_SYMBOL
        assert bar.play_button().width() >= bar.play_button().sizeHint().width()
