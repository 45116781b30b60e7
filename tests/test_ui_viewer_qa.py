"""QA findings on the viewer (QA pass of 5 Dec, items 12-14), driven as a user would on real corpus files."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import pytestqt  # noqa: F401  (a test dependency: fail, never skip)
from PySide6.QtWidgets import QLabel

from mdtviewer.ui.main_window import MainWindow

pytestmark = pytest.mark.gui


def open_and_wait(qtbot, win: MainWindow, paths: list[Path], timeout: int = 60_000) -> None:
    with qtbot.waitSignal(win.scanFinished, timeout=timeout):
        win.open_paths([str(p) for p in paths])


def _status_counts(win: MainWindow) -> list[int]:
    """Every "N problem file(s)" the status bar shows: its message and its permanent labels."""
    bar = win.statusBar()
    texts = [bar.currentMessage()] + [w.text() for w in bar.findChildren(QLabel) if w.isVisible()]
    return [int(m) for t in texts for m in re.findall(r"(\d+) problem file", t)]


def test_problem_count_is_one_number_in_status_bar_and_dock(qtbot, window, testdata):
    """QA 12: the corpus folder gave "8 problem file(s)" in the status bar and "Problems (13)" on the dock.

    Files found undecodable after the scan (thumbnails) join the list later; both places must follow it.
    """
    open_and_wait(qtbot, window, [testdata])
    # wait for the background thumbnails to find the files whose frames cannot be decoded
    last, since, t0 = -1, time.monotonic(), time.monotonic()
    while time.monotonic() - t0 < 40:
        qtbot.wait(200)
        if window.problems.count() != last:
            last, since = window.problems.count(), time.monotonic()
        elif time.monotonic() - since > 3:
            break
    n = window.problems.count()
    # the case QA met: more problems than the index alone found at the end of the scan
    assert n > len(window.index.problems) + len(window.index.duplicates)
    assert window.problems_dock.windowTitle() == f"Problems ({n})"
    counts = _status_counts(window)
    assert counts, "the status bar shows no problem count"
    assert set(counts) == {n}, (counts, n)
    # it stays after the transient scan message is gone, and follows privacy-free rebuilds too
    window.statusBar().clearMessage()
    assert set(_status_counts(window)) == {n}
    window.set_privacy(True)
    window.statusBar().clearMessage()
    assert set(_status_counts(window)) == {n} and window.problems_dock.windowTitle() == f"Problems ({n})"


SONOSITE = "usmf_sonosite_jpeg_ybr422_30f.dcm"  # 30 frames at 30 fps


def test_cine_play_pause_symbol_is_the_action_you_can_take(qtbot, window, testdata):
    """QA 14: ▶ shown while paused, ❚❚ while playing (media-player convention, issue 15.6)."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    open_and_wait(qtbot, window, [testdata / SONOSITE])
    vp = window.viewports[0]
    qtbot.waitUntil(lambda: vp.is_settled() and vp.is_cine(), timeout=20_000)
    window.set_current_viewport(vp)

    def rate_line() -> str:
        return next(line for line in vp.overlay_lines()["bl"] if "fps" in line)

    assert not vp.playing
    assert rate_line().endswith("▶") and "❚❚" not in rate_line()
    QTest.keyClick(window, Qt.Key.Key_Space)  # play
    qtbot.waitUntil(lambda: vp.playing, timeout=2000)
    assert rate_line().endswith("❚❚") and "▶" not in rate_line()
    assert "❚❚" in vp.overlay_text()
    QTest.keyClick(window, Qt.Key.Key_Space)  # pause again
    qtbot.waitUntil(lambda: not vp.playing, timeout=2000)
    assert rate_line().endswith("▶") and "❚❚" not in rate_line()
