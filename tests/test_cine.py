"""Cine timing from the corpus headers and the CineClock used to drop late frames."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from mdtviewer.dicom.reader import read_dataset
from mdtviewer.imaging.cine import ASSUMED_FPS, CineClock, frame_times_ms

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


def test_cine_clock_loops_and_drops():
    clock = CineClock([40, 20, 30, 10])  # 100 ms loop
    assert [clock.frame_at(t / 1000) for t in (0, 39, 40, 59, 60, 89, 90, 99, 100, 145)] == \
        [0, 0, 1, 1, 2, 2, 3, 3, 0, 1]
    # a player that woke up late jumps to the due frame
    assert clock.frame_at(0.095) == 3 and clock.frames_dropped(0, 3) == 2
    assert clock.next_change_s(0.0) == pytest.approx(0.040)
    assert clock.next_change_s(0.045) == pytest.approx(0.060)


def test_cine_clock_speed_start_and_rebase():
    clock = CineClock([40, 20, 30, 10], speed=2.0)
    assert clock.frame_at(0.020) == 1  # 40 ms of media after 20 ms wall time
    half = CineClock([40, 20, 30, 10], speed=0.5, start_frame=2)
    assert half.frame_at(0) == 2 and half.frame_at(0.059) == 2 and half.frame_at(0.061) == 3
    fast = clock.rebased(0.020, 1.0)  # keep position (40 ms), now at normal speed
    assert fast.frame_at(0) == 1 and fast.frame_at(0.020) == 2
    once = CineClock([10, 10], loop=False)
    assert once.frame_at(5.0) == 1
    with pytest.raises(ValueError):
        CineClock([])
    with pytest.raises(ValueError):
        CineClock([10], speed=0)
