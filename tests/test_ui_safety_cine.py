"""Issue 10.7: synchronised play keeps each loop at its own native speed by default; stretching to the leading
loop's length is a separate declared action; the overlay shows the effective rate and factor; switching
either off restores native timing at once.  Real window (pytest-qt), keys and actions, real corpus cines."""

from __future__ import annotations

import re

import pydicom
import pytest
import pytestqt  # noqa: F401  (a test dependency: fail, never skip)
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from mdtviewer.ui.actions import ACTIONS

pytestmark = pytest.mark.gui

LEADER = "usmf_palette_rle_10f.dcm"  # 10 frames x 76 ms = 760 ms, 13.2 fps
OTHER = "usmf_hp_jpeg_ybr422_34f.dcm"  # 34 frames x 30 ms = 1020 ms, 33.3 fps


def key(win, k):
    QTest.keyClick(win, k)
    QApplication.processEvents()


def rate_line(vp) -> str:
    return next(t for t in vp.overlay_lines()["bl"] if "fps" in t)


def shown_fps(vp) -> float:
    return float(re.match(r"([\d.]+) fps", rate_line(vp)).group(1))


def test_sync_keeps_native_speed_and_stretch_is_explicit_and_said(qtbot, window, testdata):
    assert any(s.id == "cine.sync_stretch" and s.checkable for s in ACTIONS)  # a declared, separate choice
    files = [testdata / LEADER, testdata / OTHER]
    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        window.open_paths([str(f) for f in files])
    window.choose_layout(1, 2)
    a, b = window.viewports
    for vp, f in zip((a, b), files):
        assert window.show_series(str(pydicom.dcmread(f, stop_before_pixels=True).SeriesInstanceUID), viewport=vp)
    qtbot.waitUntil(lambda: a.is_cine() and b.is_cine() and a.is_settled() and b.is_settled(), timeout=20_000)
    assert a.clock.total_ms == pytest.approx(760) and b.clock.total_ms == pytest.approx(1020)
    window.set_current_viewport(a)

    key(window, Qt.Key.Key_S)  # synchronise
    key(window, Qt.Key.Key_Space)  # play: both start together
    assert a.playing and b.playing
    assert a.play.start_wall == b.play.start_wall
    assert a.play.speed == 1.0 and b.play.speed == 1.0  # each at its own native speed
    assert shown_fps(b) == pytest.approx(33.3, abs=0.05) and "x" not in rate_line(b)

    # stretching: explicit, and the overlay tells the truth about it
    window.action("cine.sync_stretch").trigger()
    assert window.action("cine.sync_stretch").isChecked() and window.playback.stretch
    assert a.playing and b.playing
    assert b.play.speed == pytest.approx(1020 / 760)
    assert shown_fps(b) == pytest.approx(1000 / 30 * 1020 / 760, abs=0.06)  # 44.7 fps effective
    assert "x1.34 of native 33.3" in rate_line(b)
    assert a.play.speed == 1.0 and "x" not in rate_line(a)
    # media time follows the factor: the stretched loop ends when the leader's does
    t0 = b.play.start_wall
    assert b.play.media_at(t0 + 0.76) - b.play.start_media == pytest.approx(1020, abs=1e-6)

    # stretch off: native timing at once, without stopping
    window.action("cine.sync_stretch").trigger()
    assert not window.playback.stretch and b.playing and b.play.speed == 1.0
    assert shown_fps(b) == pytest.approx(33.3, abs=0.05) and "x" not in rate_line(b)

    # the case: stretched, then sync switched off -> the stretch does not stay
    window.action("cine.sync_stretch").trigger()
    assert b.play.speed == pytest.approx(1020 / 760)
    key(window, Qt.Key.Key_S)
    assert not window.sync and b.playing and b.play.speed == 1.0
    assert "x" not in rate_line(b)
    window.stop_all()
