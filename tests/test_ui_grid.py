"""The viewport grid and the playback controller on their own (the window composes them)."""

from __future__ import annotations

import pytest

from mdtviewer.dicom.index import scan
from mdtviewer.ui.viewer.browser import image_instances
from mdtviewer.ui.viewer.grid import LAYOUTS, ViewportGrid, layout_for_count
from mdtviewer.ui.viewer.playback import MAX_SPEED, MIN_SPEED, PlaybackController
from mdtviewer.ui.viewer.workers import FrameService

pytestmark = pytest.mark.gui

CINES = ["usmf_hp_jpeg_ybr422_34f.dcm", "usmf_sonosite_jpeg_ybr422_30f.dcm"]


@pytest.fixture
def grid(qtbot):
    made: list = []
    service = FrameService(256 << 20)
    g = ViewportGrid(service, setup=made.append)
    g.made = made  # type: ignore[attr-defined]
    qtbot.addWidget(g)
    g.resize(800, 600)
    g.show()
    yield g
    PlaybackController(g).stop_all()
    service.close()


def test_layouts_keep_their_viewports_and_the_current_one_is_framed(qtbot, grid):
    assert LAYOUTS == ((1, 1), (1, 2), (2, 1), (2, 2), (1, 3))
    assert [layout_for_count(n) for n in range(6)] == [(1, 1), (1, 1), (1, 2), (1, 3), (2, 2), (2, 2)]
    with qtbot.waitSignal(grid.layoutChanged) as sig:
        grid.set_layout(2, 2)
    assert sig.args == [2, 2] and grid.shape() == (2, 2)
    four = grid.viewports()
    assert len(four) == 4 and grid.made == four  # each new viewport was set up once, when made
    grid.set_layout(1, 1)
    assert grid.viewports() == four[:1] and grid.all_viewports() == four  # kept, hidden
    assert all(v.isHidden() for v in four[1:]) and not four[0].active  # alone: no frame
    grid.set_layout(1, 2)
    assert grid.viewports() == four[:2] and len(grid.made) == 4  # brought back, not made again
    assert grid.current() is four[0] and four[0].active  # two on screen: the frame says which one keys act on
    with qtbot.waitSignal(grid.currentChanged) as cur:
        four[1].activated.emit(four[1])  # a click in the second viewport
    assert cur.args == [four[1]] and grid.current() is four[1]
    assert four[1].active and not four[0].active
    grid.set_layout(4, 9)  # clamped to 4×4
    assert grid.shape() == (4, 4) and len(grid.viewports()) == 16


def test_maximise_shows_one_viewport_and_restores_the_layout(qtbot, grid):
    grid.set_layout(2, 2)
    vps = grid.viewports()
    vps[2].maximiseToggled.emit(vps[2])  # a double-click
    assert grid.maximised() is vps[2] and grid.current() is vps[2]
    assert [not v.isHidden() for v in vps] == [False, False, True, False]
    assert not vps[2].active  # alone on screen: no frame needed
    grid.toggle_maximise()
    assert grid.maximised() is None and all(not v.isHidden() for v in vps)


def test_drops_on_a_viewport_reach_the_grid(qtbot, grid):
    grid.set_layout(1, 2)
    vp = grid.viewports()[1]
    with qtbot.waitSignal(grid.seriesDropped) as got:
        vp.seriesDropped.emit(vp, {"series": "1.2.3"})
    assert got.args == [vp, {"series": "1.2.3"}]
    with qtbot.waitSignal(grid.pathsDropped) as paths:
        vp.pathsDropped.emit(["/a/b.dcm"])
    assert paths.args == [["/a/b.dcm"]]


def test_playback_plays_steps_and_synchronises_two_cines(qtbot, grid, testdata):
    index = scan([testdata / n for n in CINES], workers=1)
    series = [se for _p, st in index.studies() for se in st.series.values()]
    grid.set_layout(1, 2)
    a, b = grid.viewports()
    for vp, se in zip((a, b), sorted(series, key=lambda s: s.series_instance_uid)):
        vp.set_series(image_instances(se))
    qtbot.waitUntil(lambda: a.is_cine() and b.is_cine() and a.is_settled() and b.is_settled(), timeout=20_000)
    pc = PlaybackController(grid)
    messages: list[str] = []
    pc.message.connect(messages.append)
    assert pc.set_speed(9) == MAX_SPEED and pc.set_speed(0) == MIN_SPEED and a.speed == MIN_SPEED
    assert b.speed == 1.0  # not synchronised: only the current viewport
    pc.set_speed(1)
    pc.play_pause()
    assert a.playing and not b.playing and pc.tick_timer.isActive()
    qtbot.waitUntil(lambda: a.frame_index > 2, timeout=10_000)
    pc.play_pause()
    assert not a.playing and not pc.tick_timer.isActive()
    pc.first()
    assert a.frame_index == 0
    pc.step(5)
    assert a.frame_index == 5
    # synchronised: paused cines follow the leader's normalised position; play starts both
    pc.set_sync(True)
    assert pc.sync and messages[-1] == "Viewports synchronised"
    assert b.position() == pytest.approx(a.position(), abs=1.5 / b.n_frames)
    pc.last()
    assert a.frame_index == a.n_frames - 1 and b.frame_index == b.n_frames - 1
    pc.play_pause()
    assert a.playing and b.playing
    pc.stop_all()
    assert not a.playing and not b.playing and not pc.tick_timer.isActive()
    pc.set_loop(False)
    assert not a.loop and not b.loop
