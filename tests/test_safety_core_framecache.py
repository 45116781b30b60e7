"""HAZ-018 C2: decoded frames are keyed on the file version, so a file replaced on disk never shows old pixels.

The replacement is the hardest case a re-retrieve gives: the same path, the same SOP Instance UID, the same
byte size and the modification time set back to the old one; only the pixels differ.  It is made with
pydicom from two corpus images of the same matrix (320x240 RGB, uncompressed): the GE LOGIQ 700 still keeps
its header and takes the first frame of the Acuson 8-frame cine as its Pixel Data.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import pytestqt  # noqa: F401  (a test dependency: fail, never skip)

from mdtviewer.imaging.framecache import FileVersion
from mdtviewer.imaging.pixels import FrameSource

GE = "us_ge_logiq700_rgb_explicit_le.dcm"  # 320x240 RGB, Explicit VR LE, 1 frame
ACUSON = "usmf_acuson_rgb_implicit_le_8f_ftv.dcm"  # 320x240 RGB, 8 frames


def _replace_keeping_size_and_mtime(target: Path, testdata: Path) -> np.ndarray:
    """Replace *target* (a copy of GE) as an atomic writer would: new bytes, same size, old mtime restored.
    Returns the pixels the new file shows."""
    old = os.stat(target)
    ds = pydicom.dcmread(testdata / GE)
    other = pydicom.dcmread(testdata / ACUSON)
    frame = other.pixel_array[0]
    assert frame.shape == (ds.Rows, ds.Columns, 3)
    ds.PixelData = np.ascontiguousarray(frame, dtype=np.uint8).tobytes()
    tmp = target.with_suffix(".part")
    ds.save_as(tmp, enforce_file_format=False)
    os.replace(tmp, target)
    os.utime(target, ns=(old.st_atime_ns, old.st_mtime_ns))
    new = os.stat(target)
    assert (new.st_size, new.st_mtime_ns) == (old.st_size, old.st_mtime_ns)  # size and mtime cannot tell
    return np.asarray(FrameSource(target).frame(0))


def test_a_file_replaced_with_the_same_size_and_mtime_is_a_new_version(tmp_path, testdata):
    f = tmp_path / "img.dcm"
    shutil.copyfile(testdata / GE, f)
    v1 = FileVersion.of(f)
    assert v1.is_current() and v1.size == os.path.getsize(f)
    before = np.asarray(FrameSource(f).frame(0))
    after = _replace_keeping_size_and_mtime(f, testdata)
    assert not np.array_equal(before, after)
    v2 = FileVersion.of(f)
    assert v2 != v1 and not v1.is_current() and v2.is_current()
    f.unlink()
    assert not v2.is_current()


@pytest.mark.gui
def test_the_window_shows_the_new_pixels_of_a_file_replaced_on_disk(qtbot, tmp_path, testdata, window):
    study = tmp_path / "study"
    study.mkdir()
    f = study / "img.dcm"
    shutil.copyfile(testdata / GE, f)
    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        window.open_paths([str(study)])
    vp = window.viewports[0]
    qtbot.waitUntil(lambda: vp.is_settled() and window.service.get(vp.frame_key()) is not None, timeout=20_000)
    old_pixels = np.asarray(FrameSource(testdata / GE).frame(0))
    assert np.array_equal(window.service.get(vp.frame_key()), old_pixels)
    old_key = vp.frame_key()

    new_pixels = _replace_keeping_size_and_mtime(f, testdata)
    assert not np.array_equal(new_pixels, old_pixels)

    # 1. the series shown again (a click in the browser after a re-retrieve): the new file's pixels
    vp.set_series(list(vp.stack))
    qtbot.waitUntil(lambda: vp.is_settled() and window.service.get(vp.frame_key()) is not None, timeout=20_000)
    assert vp.frame_key() != old_key
    assert np.array_equal(window.service.get(vp.frame_key()), new_pixels)
    assert window.service.get(old_key) is None  # the old version's frames are gone from the cache

    # 2. replaced again while shown: the next decode finds the change and the viewport opens the file again
    shown_key = vp.frame_key()
    newer = np.asarray(FrameSource(testdata / GE).frame(0))
    ds = pydicom.dcmread(testdata / GE)
    tmp = f.with_suffix(".part")
    ds.save_as(tmp, enforce_file_format=False)
    os.replace(tmp, f)
    window.service.cache.clear()  # as if evicted by other viewports' frames
    vp.set_frame(0)
    qtbot.waitUntil(lambda: vp.frame_key() != shown_key and vp.is_settled()
                    and window.service.get(vp.frame_key()) is not None, timeout=20_000)
    assert not vp.error
    assert np.array_equal(window.service.get(vp.frame_key()), newer)


def test_the_privacy_plan_of_a_replaced_file_is_worked_out_again(tmp_path, testdata):
    """Same path, same size, modification time set back: the masking plan is still the new file's own.
    The replacement names another manufacturer (same length, so the same byte size), so the scanner's
    template no longer applies to it."""
    from mdtviewer.imaging import masking
    from mdtviewer.imaging.templates import ScannerKey, Template, TemplateStore

    f = tmp_path / "img.dcm"
    shutil.copyfile(testdata / GE, f)
    TemplateStore().save(Template(ScannerKey.of(pydicom.dcmread(f, stop_before_pixels=True)),
                                  rects=((20, 30, 300, 220),)))
    assert masking.privacy_plan(f).source == "template"
    old = os.stat(f)
    ds = pydicom.dcmread(f)
    assert str(ds.Manufacturer) == "G.E. Medical Systems"
    ds.Manufacturer = "G.E. Medical Systemz"  # another scanner as far as templates go
    tmp = f.with_suffix(".part")
    ds.save_as(tmp, enforce_file_format=False)
    os.replace(tmp, f)
    os.utime(f, ns=(old.st_atime_ns, old.st_mtime_ns))
    assert (os.stat(f).st_size, os.stat(f).st_mtime_ns) == (old.st_size, old.st_mtime_ns)
    assert masking.privacy_plan(f).source != "template"


@pytest.mark.gui
def test_a_still_image_replaced_while_shown_is_reread_on_the_next_redisplay(qtbot, tmp_path, testdata, window):
    """No decode needed (the frame is cached): stepping, a privacy toggle or any redisplay finds the change."""
    study = tmp_path / "study"
    study.mkdir()
    f = study / "img.dcm"
    shutil.copyfile(testdata / GE, f)
    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        window.open_paths([str(study)])
    vp = window.viewports[0]
    qtbot.waitUntil(lambda: vp.is_settled() and window.service.get(vp.frame_key()) is not None, timeout=20_000)
    old_key = vp.frame_key()
    new_pixels = _replace_keeping_size_and_mtime(f, testdata)
    assert window.service.get(old_key) is not None  # the old frame is still cached
    vp.redisplay()
    qtbot.waitUntil(lambda: vp.frame_key() != old_key and vp.is_settled()
                    and window.service.get(vp.frame_key()) is not None, timeout=20_000)
    assert np.array_equal(window.service.get(vp.frame_key()), new_pixels)
    assert np.array_equal(vp.displayed_array(), new_pixels)
