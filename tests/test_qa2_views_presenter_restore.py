"""QA2 #7 / issue 10.3: leaving presenter mode gives back the screen found on entering it.

A 2x2 of four real corpus studies (a cine on a chosen frame, a grey image windowed by the user, a zoomed
image, the current viewport not the first) -> F5 with an MDT session of two other cases (the layout and
images change to the cases) -> F5 again: the same 2x2, the same series, instance and frame in each
viewport, the same current viewport, window/level and zoom as before. Once it came back as 1x1 with the
meeting's last case.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from mdtviewer.workflows.mdt_session import MDTSession

pytestmark = pytest.mark.gui

GRID = (
    "us_siemens_s2000_rgb_explicit_le.dcm",
    "us_philips_epiq7c_mono2_jpeg_lossless_sv1.dcm",  # grey: windowed by the user
    "usmf_hp_jpeg_ybr422_34f.dcm",  # a cine, left on frame 12
    "us_ge_logiq700_rgb_explicit_le.dcm",  # zoomed in
)
CASES = ("usmf_sonosite_jpeg_ybr422_30f.dcm", "usmf_acuson_sequoia_jpeg_ybr422_65f_ftv.dcm")


def _uid(path: Path, kw: str) -> str:
    return str(getattr(pydicom.dcmread(path, stop_before_pixels=True), kw))


def _press(window, k):
    QTest.keyClick(window, k)
    QApplication.processEvents()


def test_leaving_presenter_restores_layout_images_and_view(qtbot, window, testdata, tmp_path):
    files = [testdata / f for f in GRID + CASES]
    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        window.open_paths([str(f) for f in files])
    window.choose_layout(2, 2)
    vps = window.viewports
    series = [_uid(testdata / f, "SeriesInstanceUID") for f in GRID]
    sops = [_uid(testdata / f, "SOPInstanceUID") for f in GRID]
    assert len({_uid(testdata / f, "StudyInstanceUID") for f in GRID}) == 4  # four studies
    for vp, se in zip(vps, series, strict=True):
        assert window.show_series(se, viewport=vp)
    qtbot.waitUntil(lambda: all(v.is_settled() for v in vps), timeout=60_000)
    cine, grey, zoomed = vps[2], vps[1], vps[3]
    cine.set_frame(11)
    qtbot.waitUntil(lambda: cine.shown_frame() == 11, timeout=10_000)
    grey.set_window_level(90.0, 120.0)
    zoomed.zoom_by(2.0)
    zoom_scale = zoomed.scale
    assert not zoomed.fit
    window.set_current_viewport(vps[3])
    before = [(v.series_uid, v.instance.sop_instance_uid, v.frame_index) for v in vps]
    assert before == [
        (series[0], sops[0], 0),
        (series[1], sops[1], 0),
        (series[2], sops[2], 11),
        (series[3], sops[3], 0),
    ]

    p = window.presenter
    s = MDTSession(title="QA2 restore")
    for f in CASES:
        s.add_case(_uid(testdata / f, "StudyInstanceUID"), label=f"case {f[:8]}")
    p.set_session(s)
    case_uids = [c.study_uid for c in s.cases]
    _press(window, Qt.Key.Key_F5)
    assert p.active
    qtbot.waitUntil(
        lambda: p.index == 0 and any(v.study_uid == case_uids[0] for v in window.viewports if v.stack), timeout=20_000
    )
    assert (window.rows, window.cols) != (2, 2)  # the mode really changed the screen: the check can fail
    _press(window, Qt.Key.Key_PageDown)
    qtbot.waitUntil(
        lambda: p.index == 1 and any(v.study_uid == case_uids[1] for v in window.viewports if v.stack), timeout=20_000
    )
    _press(window, Qt.Key.Key_F5)
    assert not p.active and not window.isFullScreen()

    assert (window.rows, window.cols) == (2, 2)
    vps = window.viewports
    assert len(vps) == 4
    qtbot.waitUntil(lambda: all(v.is_settled() for v in vps), timeout=60_000)
    after = [(v.series_uid, v.instance.sop_instance_uid if v.instance else None, v.frame_index) for v in vps]
    assert after == before
    assert vps[2].shown_frame() == 11
    assert window.current_viewport() is vps[3]
    assert vps[1].window_level == (90.0, 120.0) and vps[1].shows_window_level()
    assert not vps[3].fit and vps[3].scale == pytest.approx(zoom_scale)
    assert all(v.study_uid not in case_uids for v in vps)  # no case image left behind
    window.grab().save(str(tmp_path / "after_presenter.png"))


def test_loops_that_played_before_presenting_play_again_after(qtbot, window, testdata):
    """Leaving presenter mode once brought every loop back paused: the loop that was playing plays again,
    the one left paused on a frame stays paused on it."""
    pair = ("usmf_hp_jpeg_ybr422_34f.dcm", "usmf_sonosite_jpeg_ybr422_30f.dcm")
    files = [testdata / f for f in pair + CASES[1:]]
    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        window.open_paths([str(f) for f in files])
    window.choose_layout(1, 2)
    vps = window.viewports
    for vp, f in zip(vps, pair, strict=True):
        assert window.show_series(_uid(testdata / f, "SeriesInstanceUID"), viewport=vp)
    qtbot.waitUntil(lambda: all(v.is_settled() for v in vps), timeout=60_000)
    playing, paused = vps
    paused.set_frame(7)
    window.set_current_viewport(playing)
    window.play([playing], leader=playing)
    assert playing.playing and not paused.playing

    p = window.presenter
    s = MDTSession(title="resume")
    s.add_case(_uid(testdata / CASES[1], "StudyInstanceUID"), label="case 1")
    p.set_session(s)
    _press(window, Qt.Key.Key_F5)
    assert p.active
    qtbot.waitUntil(lambda: any(v.playing for v in window.viewports), timeout=20_000)  # the case autoplays
    _press(window, Qt.Key.Key_F5)
    assert not p.active
    vps = window.viewports
    assert not any(v.playing for v in vps)  # stopped when the mode ended, until the images are back
    qtbot.waitUntil(lambda: vps[0].playing, timeout=20_000)
    assert not vps[1].playing and vps[1].frame_index == 7
    window.stop_all()
