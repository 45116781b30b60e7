"""Cine playback keeps wall-clock time: a late UI thread drops frames, it never slows the loop.

The pure arithmetic (durations, play head, due times) is checked first; then a real
viewport is played while the UI thread is blocked, as a slow paint or a busy machine
would block it, and the frame shown afterwards must be the one due by the wall clock.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import pytestqt  # noqa: F401  (a test dependency: fail, never skip)

from mdtviewer.imaging.cine import CineClock, PlayState, skipped_between
from mdtviewer.ui.main_window import MainWindow
from mdtviewer.ui.viewer.cine_player import ON_TIME_MS, PlaybackStats

pytestmark = pytest.mark.gui

SONOSITE = "usmf_sonosite_jpeg_ybr422_30f.dcm"  # 30 frames of 33.3 ms: a 1000 ms loop


def test_the_player_uses_the_core_clock_and_the_resolved_timing(testdata):
    import mdtviewer.ui.viewer.cine_player as player
    from mdtviewer.dicom.model import Instance  # noqa: F401  (the worker's input type)
    from mdtviewer.dicom.reader import read_dataset, read_header
    from mdtviewer.imaging.cine import frame_times_ms
    from mdtviewer.ui.viewer.workers import load_image

    assert not hasattr(player, "PlaybackClock")  # one clock, in the core: no second one in the UI
    path = testdata / "usmf_acuson_sequoia_jpeg_ybr422_65f_ftv.dcm"
    inst, _fields = read_header(path)
    li = load_image(inst)
    times, source = frame_times_ms(read_dataset(path, stop_before_pixels=True))
    # the viewport's durations are exactly the header's resolved ones (Frame Time Vector read once)
    assert li.timing_source == source == "FrameTimeVector" and li.durations_ms == times


def test_play_head_follows_the_wall_clock_at_any_speed():
    clock = CineClock([40.0, 20.0, 30.0, 10.0])  # 100 ms loop
    ps = PlayState(clock, start_wall=10.0, start_media=0.0, speed=1.0)
    assert [ps.frame_at(10.0 + t / 1000) for t in (0, 39, 41, 65, 95, 101, 140)] == [0, 0, 1, 2, 3, 0, 1]
    fast = PlayState(clock, start_wall=10.0, start_media=0.0, speed=4.0)
    assert fast.frame_at(10.0 + 0.012) == 1 and fast.frame_at(10.0 + 0.020) == 2  # 48, 80 ms of media
    slow = PlayState(clock, start_wall=10.0, start_media=0.0, speed=0.25)
    assert slow.frame_at(10.0 + 0.150) == 0 and slow.frame_at(10.0 + 0.170) == 1
    once = PlayState(clock, start_wall=10.0, start_media=0.0, loop=False)
    assert once.frame_at(10.5) == 3 and once.finished(10.5) and not once.finished(10.05)
    # the due time of the frame on screen, and when the next one falls due
    assert ps.due_wall(2, 10.070) == pytest.approx(10.060)
    assert ps.next_change_wall(10.070) == pytest.approx(10.090)
    assert ps.due_wall(3, 10.105) == pytest.approx(10.090)  # from the previous pass of the loop
    # jumping from frame 1 to frame 0 of the next pass passed over frames 2 and 3
    assert skipped_between(1, 0, 4) == 2 and skipped_between(1, 2, 4) == 0 and skipped_between(-1, 3, 4) == 0


def test_stats_count_on_time_and_keep_bounded_history():
    st = PlaybackStats()
    st.record_shown(ON_TIME_MS - 1)
    st.record_shown(ON_TIME_MS + 5)
    st.dropped += 2
    assert (st.shown, st.on_time, st.due) == (2, 1, 4) and st.on_time_share() == 0.25
    for _ in range(100_000):  # an hour-long loop must not grow memory without end
        st.record_shown(1.0)
    assert len(st.late_ms) <= 10_000 and st.shown == 100_002


def test_a_blocked_ui_thread_drops_frames_instead_of_slowing_down(qtbot, testdata):
    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1000, 700)
    win.show()
    qtbot.waitExposed(win)
    try:
        with qtbot.waitSignal(win.scanFinished, timeout=60_000):
            win.open_paths([str(testdata / SONOSITE)])
        vp = win.viewports[0]
        qtbot.waitUntil(lambda: vp.is_settled() and vp.n_frames == 30, timeout=20_000)
        # decode every frame first, so only the blocked UI thread (not decoding) can make frames late
        for i in range(30):
            vp.set_frame(i)
            qtbot.waitUntil(vp.is_settled, timeout=10_000)
        assert all(win.service.get(vp.frame_key(i)) is not None for i in range(30))
        vp.set_frame(0)
        qtbot.waitUntil(vp.is_settled, timeout=10_000)
        vp.stats.reset()
        win.play([vp])
        qtbot.waitUntil(lambda: vp.stats.shown >= 3, timeout=5_000)
        ps = vp.play
        assert ps is not None and ps.speed == 1.0
        before_shown, before_dropped = vp.stats.shown, vp.stats.dropped
        time.sleep(0.45)  # the UI thread is busy: about 13 frames fall due meanwhile
        qtbot.waitUntil(lambda: vp.stats.shown > before_shown, timeout=2_000)
        t = time.perf_counter()
        # the frame on screen is the one the wall clock asks for now, not the next in line
        due = ps.frame_at(t)
        assert min((vp.frame_index - due) % 30, (due - vp.frame_index) % 30) <= 3, (vp.frame_index, due)
        assert vp.stats.dropped - before_dropped >= 9
        # the loop kept its real length: after the stall it is still 1000 ms of media per second
        assert ps.media_at(t) == pytest.approx((t - ps.start_wall) * 1000.0 + ps.start_media)
        win.stop_all()
        assert not vp.playing
    finally:
        win.stop_all()
        win.close()


def test_screenshot_order_follows_the_paths(qtbot, testdata):
    """`mdtviewer open A B` puts A's series in the first viewport and B's in the second; B A swaps them."""
    from mdtviewer.ui.app import _series_in_order

    a, b = testdata / "usmf_hp_jpeg_ybr422_34f.dcm", testdata / "us_philips_cx50_palette_explicit_le.dcm"
    win = MainWindow()
    qtbot.addWidget(win)
    try:
        with qtbot.waitSignal(win.scanFinished, timeout=60_000):
            win.open_paths([str(a), str(b)])

        def names(paths: list[Path]) -> list[str]:
            out = []
            for se in _series_in_order(win, [str(p) for p in paths]):
                out.append({Path(i.path).name for i in win.index.instances()
                            if i.series_instance_uid == se.series_instance_uid}.pop())
            return out

        assert names([a, b]) == [a.name, b.name]
        assert names([b, a]) == [b.name, a.name]
        assert names([testdata / "sr_basic_text_offis_reportsi.dcm"]) == []
    finally:
        win.stop_all()
        win.close()
