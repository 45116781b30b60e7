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


US_CINES = [
    "usmf_acuson_sequoia_jpeg_ybr422_65f_ftv.dcm",  # Acuson: banner across the top, identifier words inside
    "usmf_sonosite_jpeg_ybr422_30f.dcm",
    "usmf_hp_jpeg_ybr422_34f.dcm",
    "us_siemens_s2000_rgb_explicit_le.dcm",  # Siemens: name/date/hospital banner at the top
]


@pytest.mark.parametrize("privacy", [True, False], ids=["privacy", "names"])
def test_overlay_lines_whole_at_2x2_on_1600x900(qtbot, window, testdata, privacy):
    """QA 13: at 2x2 on 1600x900 lines were cut ("Burned-in text masked (U…"): now shortened or wrapped."""
    window.resize(1600, 900)
    open_and_wait(qtbot, window, [testdata / f for f in US_CINES])
    window.set_layout(2, 2)
    vps = window.viewports
    assert len(vps) == 4
    for vp, name in zip(vps, US_CINES):
        inst = next(i for i in window.index.instances() if Path(i.path).name == name)
        window.show_series(inst.series_instance_uid, viewport=vp)
    window.set_privacy(privacy)
    qtbot.waitUntil(lambda: all(v.is_settled() and not v.privacy_pending() for v in vps), timeout=30_000)
    for v in vps:
        v.repaint()
    qtbot.waitUntil(lambda: all(v.overlay_painted() for v in vps), timeout=5000)
    for vp, name in zip(vps, US_CINES):
        assert vp.width() < 500, "a 2x2 viewport of a 1600x900 window is narrow: the case QA met"
        wanted = vp.overlay_lines()
        shown = vp.overlay_shown_lines()
        fm = vp.overlay_font_metrics()
        for corner in ("tl", "tr", "bl", "br"):
            for line in shown[corner]:
                assert not line.endswith("…"), (name, corner, line)  # nothing cut off
                assert fm.horizontalAdvance(line) <= vp.overlay_room(corner), (name, corner, line)
            # every word of what the corner says is on screen (whole, in short form, or wrapped)
            words = " ".join(shown[corner]).split()
            for line in wanted[corner]:
                if line.startswith("Burned-in text masked"):
                    continue  # may take its short form: checked below
                for word in line.split():
                    assert word in words, (name, corner, word, shown[corner])
        tl = " ".join(shown["tl"])
        assert "4 patients:" in tl  # the patient colour line, whole
        if privacy:
            masked = [line for line in wanted["tl"] if line.startswith("Burned-in text masked")]
            assert masked, name
            # the source of the mask stays readable: "Masked: US regions" (or the full line)
            src = masked[0].split("(", 1)[1].split(")", 1)[0]
            assert f"Masked: {src}" in shown["tl"] or masked[0] in shown["tl"], (name, shown["tl"])
