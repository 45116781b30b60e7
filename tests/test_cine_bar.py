"""The cine toolbar under each viewport (issue 15.6): what a Weasis/Horos/RadiAnt user reaches for.

Real corpus cines in a real grid with the real playback controller (the one clock of imaging.cine):
the ▶/❚❚ convention, the frame slider scrubbing, any plausible frame rate, loop / sweep / once,
Space for the current viewport and Shift+Space for all, hidden for still images, below the image
(never over it), larger in presenter mode.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from mdtviewer.dicom.index import scan
from mdtviewer.imaging.cine import FPS_MAX, CineClock, PlayState, sweep_order
from mdtviewer.ui.viewer.browser import image_instances
from mdtviewer.ui.viewer.cine_bar import PAUSE_SYMBOL, PLAY_SYMBOL
from mdtviewer.ui.viewer.grid import ViewportGrid
from mdtviewer.ui.viewer.playback import PlaybackController
from mdtviewer.ui.viewer.workers import FrameService

pytestmark = pytest.mark.gui

HP = "usmf_hp_jpeg_ybr422_34f.dcm"  # 34 frames, Frame Time 30 ms (33.3 fps)
SONOSITE = "usmf_sonosite_jpeg_ybr422_30f.dcm"  # 30 frames, Frame Time 33.3 ms
STILL = "us_philips_cx50_palette_explicit_le.dcm"  # one frame


@pytest.fixture
def setup(qtbot, testdata):
    """A 1×2 grid: a cine (HP) on the left, a still on the right, and the playback controller."""
    service = FrameService(256 << 20)
    grid = ViewportGrid(service)
    qtbot.addWidget(grid)
    grid.resize(1000, 600)
    grid.show()
    grid.set_layout(1, 2)
    pc = PlaybackController(grid)
    index = scan([testdata / HP, testdata / STILL], workers=1)
    by_name = {Path(i.path).name: i for i in index.instances()}
    series = {se.series_instance_uid: se for _p, st in index.studies() for se in st.series.values()}
    cine_vp, still_vp = grid.viewports()
    cine_vp.set_series(image_instances(series[by_name[HP].series_instance_uid]))
    still_vp.set_series(image_instances(series[by_name[STILL].series_instance_uid]))
    qtbot.waitUntil(lambda: cine_vp.is_cine() and cine_vp.is_settled() and still_vp.is_settled(), timeout=20_000)
    QApplication.processEvents()
    yield grid, pc, cine_vp, still_vp
    pc.stop_all()
    service.close()


def _rect_in(widget, ancestor):
    top_left = widget.mapTo(ancestor, QPoint(0, 0))
    return top_left.y(), top_left.y() + widget.height()


def test_bar_under_the_cine_only_and_never_over_the_image(qtbot, setup):
    grid, _pc, cine_vp, still_vp = setup
    bar, still_bar = grid.cine_bar(cine_vp), grid.cine_bar(still_vp)
    assert bar.isVisible() and not still_bar.isVisible()  # hidden for a single-frame image
    # below the image: the viewport (where the image is painted) ends where the bar begins
    vp_top, vp_bottom = _rect_in(cine_vp, grid)
    bar_top, bar_bottom = _rect_in(bar, grid)
    assert bar_top >= vp_bottom and bar_bottom <= grid.height()
    # the still keeps the whole height of its cell; the cine's image area is shorter by the bar
    assert still_vp.height() >= cine_vp.height() + bar.height()
    assert bar.frame_text() == f"frame 1 / {cine_vp.n_frames}" == "frame 1 / 34"
    # the field starts at the file's own rate (Frame Time 30 ms), and says nothing about "native"
    assert bar.shown_fps() == pytest.approx(33.3, abs=0.05) and not bar.differs_from_native()


def test_play_button_follows_the_media_player_convention(qtbot, setup):
    grid, pc, cine_vp, still_vp = setup
    bar = grid.cine_bar(cine_vp)
    grid.set_current(still_vp)
    assert bar.play_symbol() == PLAY_SYMBOL  # paused: ▶ (what a click does)
    qtbot.mouseClick(bar.play_button(), Qt.MouseButton.LeftButton)
    assert cine_vp.playing and grid.current() is cine_vp and pc.tick_timer.isActive()
    assert bar.play_symbol() == PAUSE_SYMBOL  # playing: ❚❚
    qtbot.waitUntil(lambda: cine_vp.frame_index >= 3, timeout=10_000)
    # while playing the slider and label move too (at most every PLAYING_UPDATE_S, not on every frame)
    qtbot.waitUntil(lambda: bar.slider().value() >= 3 and bar.frame_text() != "frame 1 / 34", timeout=10_000)
    qtbot.mouseClick(bar.play_button(), Qt.MouseButton.LeftButton)
    assert not cine_vp.playing and bar.play_symbol() == PLAY_SYMBOL and not pc.tick_timer.isActive()
    # paused: exactly the frame on screen
    assert bar.frame_text() == f"frame {cine_vp.frame_index + 1} / 34"
    assert bar.slider().value() == cine_vp.frame_index


def test_dragging_the_slider_scrubs_and_pauses(qtbot, setup):
    grid, pc, cine_vp, _still = setup
    bar = grid.cine_bar(cine_vp)
    pc.toggle(cine_vp)
    assert cine_vp.playing
    s = bar.slider()
    s.setSliderDown(True)  # the user holds the handle...
    for k in (5, 12, 20):  # ...and drags it
        s.setSliderPosition(k)
        assert cine_vp.frame_index == k and not cine_vp.playing
        assert bar.frame_text() == f"frame {k + 1} / 34"
    s.setSliderDown(False)
    qtbot.waitUntil(lambda: cine_vp.shown_frame() == 20, timeout=10_000)  # the frame on screen is the one chosen
    assert bar.play_symbol() == PLAY_SYMBOL and not pc.tick_timer.isActive()


def test_any_plausible_frame_rate_and_back_to_native(qtbot, setup):
    grid, pc, cine_vp, _still = setup
    bar = grid.cine_bar(cine_vp)
    native = cine_vp.clock.fps
    field = bar.fps_field()
    field.setFocus()
    field.selectAll()
    QTest.keyClicks(field, "12.5")  # not one of the 0.25-4x steps: 12.5 / 33.3 = 0.375x
    QTest.keyClick(field, Qt.Key.Key_Return)
    assert cine_vp.speed * native == pytest.approx(12.5)
    assert bar.differs_from_native() and "native 33.3" in bar.native_button().text()
    pc.toggle(cine_vp)  # plays at that rate: the play head's media rate is 12.5 frames of 30 ms a second
    assert cine_vp.play is not None and cine_vp.play.speed * native == pytest.approx(12.5)
    assert cine_vp.playing
    # a rate beyond any display is kept within the plausible range
    assert pc.set_fps(10_000, cine_vp) == FPS_MAX and cine_vp.playing  # playing goes on at the new rate
    assert cine_vp.play.speed * native == pytest.approx(FPS_MAX)
    qtbot.mouseClick(bar.native_button(), Qt.MouseButton.LeftButton)
    assert cine_vp.speed == pytest.approx(1.0) and not bar.differs_from_native()
    assert bar.shown_fps() == pytest.approx(native, abs=0.05)


def test_sweep_plays_back_and_forth_and_once_stops_on_the_last_frame(qtbot, setup):
    grid, pc, cine_vp, _still = setup
    bar = grid.cine_bar(cine_vp)
    n = cine_vp.n_frames
    # the clock: one sweep pass is 0..n-1 then n-2..1, each frame for its own duration
    clock = cine_vp.clock
    ps = PlayState(clock, 0.0, 0.0, 1.0, True, sweep=True)
    seq = [ps.frame_at(t / 1000.0) for t in range(0, int(2 * clock.total_ms), 5)]
    order = sweep_order(n)
    assert order == list(range(n)) + list(range(n - 2, 0, -1))
    assert [f for k, f in enumerate(seq) if k == 0 or f != seq[k - 1]][: len(order)] == order
    assert ps.direction(clock.total_ms * 1.5 / 1000.0) == -1 and ps.direction(0.001) == 1
    # in the viewport: choose Sweep in the bar, play fast, and see frames come back down without a jump to 0
    bar.mode_box().activated.emit(bar.mode_box().findData("sweep"))
    assert pc.mode(cine_vp) == "sweep" and cine_vp.sweep and cine_vp.loop
    shown: list[int] = []
    cine_vp.frameChanged.connect(lambda v: shown.append(v.frame_index))
    pc.set_fps(120, cine_vp)
    pc.toggle(cine_vp)
    qtbot.waitUntil(lambda: n - 1 in shown and shown[-1] < n - 6, timeout=15_000)
    pc.toggle(cine_vp)
    top = shown.index(n - 1)
    after = shown[top:]
    assert all(b <= a for a, b in zip(after, after[1:]))  # on the way back: only downwards
    # Once: plays to the last frame and stops there (▶ again)
    bar.mode_box().activated.emit(bar.mode_box().findData("once"))
    assert pc.mode(cine_vp) == "once" and not cine_vp.loop and not cine_vp.sweep
    pc.first()
    pc.toggle(cine_vp)
    qtbot.waitUntil(lambda: not cine_vp.playing, timeout=15_000)
    assert cine_vp.frame_index == n - 1 and bar.play_symbol() == PLAY_SYMBOL


def test_sweep_clock_is_pure_and_keeps_the_file_timing():
    clock = CineClock([10.0, 20.0, 30.0, 40.0])
    ps = PlayState(clock, 0.0, 0.0, 1.0, True, sweep=True)
    # 0 (10 ms), 1 (20), 2 (30), 3 (40), then 2 (30), 1 (20): a pass of 150 ms, then again
    expect = [(0, 0), (10, 1), (30, 2), (60, 3), (100, 2), (130, 1), (150, 0), (160, 1)]
    assert [ps.frame_at(ms / 1000.0) for ms, _f in expect] == [f for _ms, f in expect]
    assert ps.next_change_wall(0.105) == pytest.approx(0.130)
    assert not ps.finished(100.0)  # a sweep never ends by itself
    assert ps.skipped(3, 1) == 1 and ps.skipped(1, 2) == 0


def test_presenter_scale_makes_the_bar_larger(qtbot, setup):
    grid, _pc, cine_vp, _still = setup
    bar = grid.cine_bar(cine_vp)
    px, h = bar.text_pixel_size(), bar.height()
    assert px >= 12
    cine_vp.set_overlay_scale(1.6)  # what presenter mode does
    QApplication.processEvents()
    assert bar.text_pixel_size() >= round(px * 1.5) and bar.height() > h
    bar_top, _ = _rect_in(bar, grid)
    assert bar_top >= _rect_in(cine_vp, grid)[1]  # still below the image
    cine_vp.set_overlay_scale(1.0)
    QApplication.processEvents()
    assert bar.text_pixel_size() == px


def test_space_plays_the_current_viewport_and_shift_space_all(qtbot, window, testdata):
    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        window.open_paths([str(testdata / HP), str(testdata / SONOSITE)])
    window.choose_layout(1, 2)
    a, b = window.viewports[:2]
    for vp, name in ((a, HP), (b, SONOSITE)):  # one cine of each study side by side
        inst = next(i for i in window.index.instances() if Path(i.path).name == name)
        vp.set_series([inst])
    qtbot.waitUntil(lambda: a.is_cine() and b.is_cine() and a.is_settled() and b.is_settled(), timeout=30_000)
    assert window.action("cine.play_all").shortcut().toString() == "Shift+Space"
    window.set_current_viewport(b)
    b.setFocus()
    QTest.keyClick(b, Qt.Key.Key_Space)
    QApplication.processEvents()
    assert b.playing and not a.playing  # Space: the current viewport only
    assert window.grid.cine_bar(b).play_symbol() == PAUSE_SYMBOL
    assert window.grid.cine_bar(a).play_symbol() == PLAY_SYMBOL
    QTest.keyClick(b, Qt.Key.Key_Space, Qt.KeyboardModifier.ShiftModifier)
    QApplication.processEvents()
    assert not a.playing and not b.playing  # Shift+Space while one plays: every viewport pauses
    QTest.keyClick(b, Qt.Key.Key_Space, Qt.KeyboardModifier.ShiftModifier)
    QApplication.processEvents()
    assert a.playing and b.playing  # ...and again: every cine plays
    assert all(window.grid.cine_bar(v).play_symbol() == PAUSE_SYMBOL for v in (a, b))
    QTest.keyClick(b, Qt.Key.Key_Space, Qt.KeyboardModifier.ShiftModifier)
    QApplication.processEvents()
    assert not a.playing and not b.playing


def test_narrow_cells_keep_the_layout_even_and_never_hide_a_sweep(qtbot, setup):
    """1×3 on a small grid: the bar gives way ('n / N', then no mode box, then no rate field) rather than
    widening its column; a sweep still says so when its mode box is gone (a loop running backwards must
    not pass for the acquisition)."""
    grid, pc, cine_vp, still_vp = setup
    grid.set_layout(1, 3)
    grid.resize(700, 500)
    QApplication.processEvents()
    bar = grid.cine_bar(cine_vp)
    widths = [v.width() for v in grid.viewports()]
    assert max(widths) - min(widths) <= 2, widths  # the cine's bar does not make its column wider
    assert bar.compact_level() >= 1 and bar.width() <= cine_vp.width() + 1
    assert bar.play_button().isVisible() and bar.slider().isVisible()
    assert bar.frame_text() == f"{cine_vp.frame_index + 1} / 34"
    pc.set_mode("sweep", cine_vp)
    if bar.compact_level() >= 2:
        assert not bar.mode_box().isVisible() and bar.frame_text().startswith("\u21c4")
    grid.resize(1400, 600)  # room again: everything back, the word 'frame' too
    QApplication.processEvents()
    assert bar.compact_level() == 0 and bar.mode_box().isVisible() and bar.fps_field().isVisible()
    assert bar.mode_box().currentData() == "sweep" and bar.frame_text().startswith("frame ")
    grid.resize(420, 400)  # very narrow: the sweep is still said, in the frame label
    QApplication.processEvents()
    assert bar.compact_level() >= 2 and not bar.mode_box().isVisible()
    assert bar.frame_text().startswith("\u21c4 ")


def test_a_typed_rate_ticks_no_speed_step_and_faster_never_slows_it(qtbot, window, testdata):
    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        window.open_paths([str(testdata / HP)])
    vp = window.current_viewport()
    qtbot.waitUntil(lambda: vp.is_cine() and vp.is_settled(), timeout=30_000)
    native = vp.clock.fps
    assert window.action("cine.speed.1").isChecked()
    window.playback.set_fps(12.5, vp)  # 0.375x: none of the menu's steps
    assert not any(window.action(f"cine.speed.{s:g}").isChecked() for s in (0.25, 0.5, 1, 2, 4))
    window.playback.set_fps(native * 2, vp)  # a step again: ticked again
    assert window.action("cine.speed.2").isChecked()
    window.playback.set_fps(200, vp)  # 6x: beyond the fastest step
    window.action("cine.faster").trigger()  # ]
    assert vp.speed * native == pytest.approx(200)  # not pulled down to 4x
    window.action("cine.slower").trigger()  # [
    assert vp.speed == pytest.approx(200 / native / 2)


def test_bar_follows_what_the_viewport_shows(qtbot, setup):
    grid, _pc, cine_vp, still_vp = setup
    bar, still_bar = grid.cine_bar(cine_vp), grid.cine_bar(still_vp)
    stack = list(cine_vp.stack)
    cine_vp.clear()  # nothing shown: no cine bar
    assert bar.isHidden()
    still_vp.set_series(stack)  # the cine dropped on the viewport that showed a still
    qtbot.waitUntil(lambda: still_vp.is_cine() and still_vp.is_settled(), timeout=20_000)
    assert still_bar.isVisible() and still_bar.frame_text().endswith("/ 34")


def test_cine_menu_loop_off_ends_a_sweep_too(qtbot, setup):
    grid, pc, cine_vp, _still = setup
    bar = grid.cine_bar(cine_vp)
    pc.set_mode("sweep", cine_vp)
    pc.toggle(cine_vp)
    assert cine_vp.play is not None and cine_vp.play.sweeping
    pc.set_loop(False)  # Cine › Loop off (L)
    assert pc.mode(cine_vp) == "once" and bar.mode_box().currentData() == "once"
    assert cine_vp.play is not None and not cine_vp.play.sweeping and not cine_vp.play.loop
    pc.set_loop(True)
    assert pc.mode(cine_vp) == "loop" and bar.mode_box().currentData() == "loop"
