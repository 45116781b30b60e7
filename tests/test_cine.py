"""Cine timing from the corpus headers, and the one CineClock the player and the export use."""

from __future__ import annotations

import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from mdtviewer.dicom.reader import read_dataset
from mdtviewer.imaging.cine import (
    ASSUMED_FPS,
    CineClock,
    PlayState,
    frame_times_ms,
    playback_durations,
    skipped_between,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _ds(frames: int, **kw) -> Dataset:
    ds = Dataset()
    ds.NumberOfFrames = frames
    for k, v in kw.items():
        setattr(ds, k, v)
    return ds


def test_frame_time_vector_rule_on_corpus(testdata):
    ds = read_dataset(testdata / "usmf_acuson_sequoia_jpeg_ybr422_65f_ftv.dcm", stop_before_pixels=True)
    ftv = [float(v) for v in ds.FrameTimeVector]
    times, source = frame_times_ms(ds)
    assert source == "FrameTimeVector" and len(times) == 65
    # frame i is shown until frame i+1: FTV[i+1]; the loop back to frame 0 takes FTV[0] (non-zero here)
    assert times[:-1] == pytest.approx(ftv[1:])
    assert times[-1] == pytest.approx(ftv[0])
    assert set(round(t) for t in times) == {33, 50, 38}  # irregular 33/50 ms (SOURCES.md), last 38.333


def test_standard_vector_with_leading_zero():
    times, source = frame_times_ms(_ds(4, FrameIncrementPointer=0x00181065, FrameTimeVector=[0, 40, 20, 30]))
    assert source == "FrameTimeVector"
    assert times == [40, 20, 30, 30]  # frame 0 gets FTV[1]; the last repeats FTV[n-1]


def test_vector_without_leading_zero_and_bad_vectors():
    assert frame_times_ms(_ds(3, FrameTimeVector=[40, 20]))[0] == [40, 20, 20]
    # a zero interval (or the wrong count) makes the vector unusable: next source
    times, source = frame_times_ms(_ds(3, FrameIncrementPointer=0x00181065, FrameTimeVector=[0, 0, 20],
                                      CineRate=25))
    assert (times, source) == ([40.0] * 3, "CineRate")
    times, source = frame_times_ms(_ds(3, FrameTimeVector=[0, 20]))
    assert source == "assumed"


def test_order_of_sources():
    full = dict(FrameTime=20, FrameTimeVector=[0, 10, 10], RecommendedDisplayFrameRate=10, CineRate=5)
    assert frame_times_ms(_ds(3, **full))[1] == "FrameTime"
    assert frame_times_ms(_ds(3, FrameIncrementPointer=0x00181065, **full))[1] == "FrameTimeVector"
    assert frame_times_ms(_ds(3, RecommendedDisplayFrameRate=10, CineRate=5)) == ([100.0] * 3,
                                                                                 "RecommendedDisplayFrameRate")
    assert frame_times_ms(_ds(3, CineRate=5)) == ([200.0] * 3, "CineRate")
    assert frame_times_ms(_ds(3)) == ([1000 / ASSUMED_FPS] * 3, "assumed")
    assert frame_times_ms(_ds(1, FrameTime=20)) == (None, "none")
    assert frame_times_ms(Dataset()) == (None, "none")


def test_frame_time_via_pointer_on_corpus(testdata):
    ds = read_dataset(testdata / "usmf_hp_jpeg_ybr422_34f.dcm", stop_before_pixels=True)
    # this file also has Recommended Display Frame Rate and Cine Rate (33): Frame Time wins
    assert float(ds.RecommendedDisplayFrameRate) == 33 and float(ds.CineRate) == 33
    assert frame_times_ms(ds) == ([30.0] * 34, "FrameTime")


def test_cine_clock_loops_and_holds():
    clock = CineClock([40, 20, 30, 10])  # 100 ms loop
    assert clock.starts == [0, 40, 60, 90] and clock.total_ms == 100 and clock.fps == pytest.approx(40.0)
    assert [clock.frame_at(t) for t in (0, 39, 40, 59, 60, 89, 90, 99, 100, 145)] == [0, 0, 1, 1, 2, 2, 3, 3, 0, 1]
    assert clock.frame_at(145, loop=False) == 3 and clock.frame_at(-5, loop=False) == 0
    assert clock.position(2) == pytest.approx(0.6) and clock.frame_start_ms(99) == 90
    with pytest.raises(ValueError):
        CineClock([])


def test_play_head_at_speed_drops_late_frames():
    clock = CineClock([40, 20, 30, 10])
    fast = PlayState(clock, start_wall=5.0, start_media=0.0, speed=2.0)
    assert fast.frame_at(5.025) == 1  # 50 ms of media after 25 ms wall time
    half = PlayState(clock, start_wall=5.0, start_media=clock.frame_start_ms(2), speed=0.5)
    assert half.frame_at(5.0) == 2 and half.frame_at(5.059) == 2 and half.frame_at(5.061) == 3
    # a player that woke up late jumps to the due frame, passing over the ones in between
    normal = PlayState(clock, start_wall=5.0, start_media=0.0)
    assert normal.frame_at(5.095) == 3 and skipped_between(0, 3, 4) == 2
    assert normal.next_change_wall(5.0) == pytest.approx(5.040)
    assert normal.next_change_wall(5.045) == pytest.approx(5.060)


def test_playback_durations_fit_the_frames_the_decoder_found(testdata):
    ds = read_dataset(testdata / "usmf_acuson_sequoia_jpeg_ybr422_65f_ftv.dcm", stop_before_pixels=True)
    times, source = frame_times_ms(ds)
    # the same durations as the header resolution, no second reading of the Frame Time Vector
    assert playback_durations(ds, 65) == (times, "FrameTimeVector")
    # a header that claims more frames than the pixel data holds: cut; fewer: the last repeated
    assert playback_durations(ds, 10) == (times[:10], "FrameTimeVector")
    assert playback_durations(ds, 67)[0] == times + [times[-1]] * 2
    # nothing in the header: the user's assumed rate; one frame: no timing
    assert playback_durations(_ds(3), 3, assumed_fps=20) == ([50.0] * 3, "assumed")
    assert playback_durations(_ds(1), 1, assumed_fps=20) == ([50.0], "none")
    bad = _ds(3)
    bad[0x00181063] = RawDataElement(Tag(0x00181063), "DS", 3, b"bad", 0, False, True)  # Frame Time "bad"
    assert playback_durations(bad, 3) == ([1000 / ASSUMED_FPS] * 3, "assumed")


def test_the_export_uses_the_same_clock(testdata):
    from mdtviewer.governance.export import frame_starts_ms

    ds = read_dataset(testdata / "usmf_acuson_sequoia_jpeg_ybr422_65f_ftv.dcm", stop_before_pixels=True)
    starts, source = frame_starts_ms(ds, 65)
    times, _ = frame_times_ms(ds)
    assert source == "FrameTimeVector" and starts == CineClock(times).starts
    # the header prefers Frame Time over an unpointed vector: the export follows the same order
    ds2 = _ds(3, FrameTime=20, FrameTimeVector=[0, 10, 10])
    assert frame_starts_ms(ds2, 3) == ([0.0, 20.0, 40.0], "FrameTime")
