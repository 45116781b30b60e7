"""HAZ-018 C3: a loop playing from frames already decoded never goes on showing a file replaced on disk.

A cine that has played once round is served from the frame cache: it reads no file, so before this control it
kept playing the old pixels after a re-retrieve had written a new file under the same path, until paused or
stepped.  Now the playback timer has each playing viewport check its file in the background at most every
``playback.FILE_CHECK_S`` (0.5 s); a replaced file's cached frames are dropped and the new file plays on.

How the replacements were made (the corpus is read in place; copies go to pytest's tmp_path):
- another corpus cine copied over the playing one: the Acuson 8-frame RGB loop
  (``usmf_acuson_rgb_implicit_le_8f_ftv.dcm``, 320x240) is replaced by the SonoSite 30-frame JPEG loop
  (``usmf_sonosite_jpeg_ybr422_30f.dcm``, 320x240) with ``shutil.copyfile`` over the same path: the frame count
  changes, so play goes on from frame 1 and the overlay says so;
- the same cine with other pixels: the Acuson loop read with pydicom, every pixel inverted (255 - value), written
  to a temporary file and renamed over the playing one with its modification time set back: same size, same
  mtime, same SOP Instance UID, same frame count (the hardest case: only the inode and status-change time
  tell), so play goes on from the same frame.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
import pytestqt  # noqa: F401  (a test dependency: fail, never skip)

from mdtviewer.imaging.pixels import FrameSource
from mdtviewer.ui.viewer.playback import FILE_CHECK_S

ACUSON = "usmf_acuson_rgb_implicit_le_8f_ftv.dcm"  # 320x240 RGB, 8 frames, uncompressed
SONOSITE = "usmf_sonosite_jpeg_ybr422_30f.dcm"  # 320x240, 30 frames, JPEG baseline
#: from the replacement to the new file's pixels on screen: one check period, an open and a decode, with room
#: for a loaded 2-core machine
BOUND_S = 5.0


def _frames(path: Path) -> list[np.ndarray]:
    src = FrameSource(path)
    return [np.ascontiguousarray(src.frame(i)) for i in range(src.n_frames)]


def _play_until_every_frame_is_cached(qtbot, window, study: Path) -> object:
    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        window.open_paths([str(study)])
    vp = window.viewports[0]
    qtbot.waitUntil(lambda: vp.is_cine() and vp.is_settled(), timeout=20_000)
    window.grid.set_current(vp)
    window.playback.play([vp], leader=vp)
    assert vp.playing
    # a whole loop decoded: from now on playing reads no file (the case this control is for)
    qtbot.waitUntil(lambda: all(window.service.get(vp.frame_key(i)) is not None for i in range(vp.n_frames)),
                    timeout=20_000)
    return vp


class _Shown:
    """Every frame the viewport puts on screen: (time, 0-based frame, pixels)."""

    def __init__(self, vp):
        self.vp = vp
        self.items: list[tuple[float, int, np.ndarray]] = []
        self._on(vp)  # the frame on screen now
        vp.frameChanged.connect(self._on)

    def _on(self, _vp) -> None:
        arr, i = self.vp.displayed_array(), self.vp.shown_frame()
        if arr is not None and i is not None:
            self.items.append((time.monotonic(), i, arr.copy()))


def _is_of(arr: np.ndarray, i: int, frames: list[np.ndarray]) -> bool:
    return i < len(frames) and arr.shape == frames[i].shape and np.array_equal(arr, frames[i])


@pytest.mark.gui
def test_a_playing_loop_shows_the_new_file_copied_over_it_from_frame_1(qtbot, tmp_path, testdata, window):
    study = tmp_path / "study"
    study.mkdir()
    f = study / "loop.dcm"
    shutil.copyfile(testdata / ACUSON, f)
    old = _frames(testdata / ACUSON)
    vp = _play_until_every_frame_is_cached(qtbot, window, study)
    old_keys = [vp.frame_key(i) for i in range(vp.n_frames)]
    qtbot.waitUntil(lambda: vp.shown_frame() is not None and _is_of(vp.displayed_array(), vp.shown_frame(), old),
                    timeout=5_000)

    shown = _Shown(vp)
    t0 = time.monotonic()
    shutil.copyfile(testdata / SONOSITE, f)  # a re-retrieve writes another loop under the same path
    new = _frames(f)
    assert len(new) == 30 and len(old) == 8

    qtbot.waitUntil(lambda: vp.playing and vp.n_frames == 30 and vp.shown_frame() is not None
                    and _is_of(vp.displayed_array(), vp.shown_frame(), new), timeout=int(BOUND_S * 1000))
    latency = time.monotonic() - t0
    assert latency < BOUND_S
    assert not vp.error
    # the frame count changed: play went on from frame 1, and the overlay says why
    assert "File replaced on disk (8 \u2192 30 frames): playing the new file from frame 1" in vp.overlay_text()
    assert all(window.service.get(k) is None for k in old_keys)  # the old version's frames are gone

    # it plays on (not paused by the reload) and every frame shown from the first new one on is the new file's
    qtbot.waitUntil(lambda: len({i for _t, i, _a in shown.items}) >= 6, timeout=10_000)
    first_new = next(k for k, (_t, i, a) in enumerate(shown.items) if _is_of(a, i, new))
    after = shown.items[first_new:]
    assert all(_is_of(a, i, new) for _t, i, a in after)
    assert after[0][1] <= 3  # from the start of the new loop (a late first frame may be dropped)
    assert vp.playing


@pytest.mark.gui
def test_a_playing_loop_replaced_with_the_same_size_and_mtime_goes_on_from_the_same_frame(
        qtbot, tmp_path, testdata, window):
    study = tmp_path / "study"
    study.mkdir()
    f = study / "loop.dcm"
    shutil.copyfile(testdata / ACUSON, f)
    old = _frames(testdata / ACUSON)
    vp = _play_until_every_frame_is_cached(qtbot, window, study)
    old_keys = [vp.frame_key(i) for i in range(vp.n_frames)]
    vp.set_loop(True)

    # the same loop with every pixel inverted, renamed over the playing file, its mtime set back
    before = os.stat(f)
    ds = pydicom.dcmread(testdata / ACUSON)
    px = ds.pixel_array
    ds.PixelData = np.ascontiguousarray(255 - px, dtype=np.uint8).tobytes()
    tmp = f.with_suffix(".part")
    ds.save_as(tmp, enforce_file_format=False)
    shown = _Shown(vp)
    t0 = time.monotonic()
    os.replace(tmp, f)
    os.utime(f, ns=(before.st_atime_ns, before.st_mtime_ns))
    after_stat = os.stat(f)
    assert (after_stat.st_size, after_stat.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    new = _frames(f)
    assert len(new) == len(old) == 8
    assert all(not np.array_equal(a, b) for a, b in zip(old, new))

    qtbot.waitUntil(lambda: vp.file_notice != "", timeout=int(BOUND_S * 1000))
    # found within a check period or two of the replacement (the check is one stat in the background)
    detected = time.monotonic() - t0
    assert detected < 2 * FILE_CHECK_S + 1.0
    notice = vp.file_notice
    assert notice.startswith("File replaced on disk: playing the new file on from frame ")
    resumed_from = int(notice.rsplit(" ", 1)[1]) - 1
    assert resumed_from in {i for _t, i, _a in shown.items}  # the frame on screen when the change was found

    qtbot.waitUntil(lambda: vp.playing and vp.shown_frame() is not None
                    and _is_of(vp.displayed_array(), vp.shown_frame(), new), timeout=int(BOUND_S * 1000))
    assert time.monotonic() - t0 < BOUND_S
    assert notice in vp.overlay_text()
    assert all(window.service.get(k) is None for k in old_keys)

    # once the new pixels are on screen, never the old ones again; play goes on round the loop
    first_new = next(k for k, (_t, i, a) in enumerate(shown.items) if _is_of(a, i, new))
    assert shown.items[first_new][1] in {resumed_from, (resumed_from + 1) % 8, (resumed_from + 2) % 8}
    n_before = len(shown.items)
    qtbot.waitUntil(lambda: len(shown.items) >= n_before + 10, timeout=10_000)
    assert all(_is_of(a, i, new) for _t, i, a in shown.items[first_new:])
    assert vp.playing

    # paused, the window shows the same new pixels
    window.playback.stop_all()
    assert not vp.playing and _is_of(vp.displayed_array(), vp.shown_frame(), new)


@pytest.mark.gui
def test_a_loop_paused_while_its_replaced_file_is_opened_again_stays_paused_on_the_new_pixels(
        qtbot, tmp_path, testdata, window):
    study = tmp_path / "study"
    study.mkdir()
    f = study / "loop.dcm"
    shutil.copyfile(testdata / ACUSON, f)
    vp = _play_until_every_frame_is_cached(qtbot, window, study)
    shutil.copyfile(testdata / SONOSITE, f)
    new = _frames(f)
    with qtbot.waitSignal(window.service.imageLoaded, timeout=int(BOUND_S * 1000)):
        vp.reload_changed_file()  # what the background check does once it finds the change
        window.playback.stop_all()  # the user pauses before the new file is open
    qtbot.waitUntil(lambda: vp.shown_frame() is not None and _is_of(vp.displayed_array(), vp.shown_frame(), new),
                    timeout=int(BOUND_S * 1000))
    assert not vp.playing and not window.playback.tick_timer.isActive()
    assert vp.shown_frame() == 0 and "(8 \u2192 30 frames)" in vp.overlay_text()
