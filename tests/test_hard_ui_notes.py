"""The window says why a scale is missing or a rate assumed (issue 11 item 11): the notes ``check`` gives for
implausible US region deltas and cine timing are listed in the Problems dock when the image is opened.

Files made here from the corpus: the Siemens S2000 still with its first region's PhysicalDeltaX set to NaN,
and the SonoSite cine with Frame Time 1e9 ms and Cine Rate 2**31 (its own timing removed).
"""

from __future__ import annotations

import math
from pathlib import Path

import pydicom
import pytest

from mdtviewer.dicom.index import StudyIndex
from mdtviewer.dicom.model import Instance
from mdtviewer.imaging.check import check_file
from mdtviewer.ui.viewer.problems import ProblemsList
from mdtviewer.ui.viewer.workers import FrameService, load_image

pytestmark = pytest.mark.gui

STILL = "us_siemens_s2000_rgb_explicit_le.dcm"
CINE = "usmf_sonosite_jpeg_ybr422_30f.dcm"


def _nan_delta(testdata: Path, out: Path) -> Path:
    ds = pydicom.dcmread(testdata / STILL)
    ds.SequenceOfUltrasoundRegions[0].PhysicalDeltaX = math.nan
    ds.save_as(out)
    return out


def _bad_timing(testdata: Path, out: Path) -> Path:
    ds = pydicom.dcmread(testdata / CINE)
    for kw in ("FrameTimeVector", "RecommendedDisplayFrameRate"):
        if kw in ds:
            delattr(ds, kw)
    ds.FrameTime = "1000000000"
    ds.CineRate = 2**31 - 1
    ds.save_as(out)
    return out


def _instance(path: Path, kind: str) -> Instance:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return Instance(path, str(ds.SOPClassUID), str(ds.SOPInstanceUID), kind, str(ds.StudyInstanceUID))


@pytest.fixture
def files(testdata, tmp_path):
    return {"delta": _nan_delta(testdata, tmp_path / "nan_delta.dcm"),
            "timing": _bad_timing(testdata, tmp_path / "bad_timing.dcm")}


def test_the_notes_check_gives_are_listed_when_the_image_opens(qtbot, files):
    service = FrameService(64 << 20)
    problems = ProblemsList()
    qtbot.addWidget(problems)
    problems.follow(service)
    problems.refresh(StudyIndex(), [])
    try:
        for name, kind in (("delta", "image"), ("timing", "cine")):
            path = files[name]
            want = check_file(str(path), kind)["note"]  # what check says of this file
            assert want, name
            with qtbot.waitSignal(problems.countChanged, timeout=20_000):
                service.open_image(("t", name), _instance(path, kind))
            assert "; ".join(problems.notes(str(path))) == want  # the same words as check
            rows = [problems.item(i).text() for i in range(problems.count())]
            assert all(f"{path.name} — note: {n}" in rows for n in problems.notes(str(path))), rows
        rows = "\n".join(problems.item(i).text() for i in range(problems.count()))
        assert "PhysicalDeltaX 'nan' is not a usable number: region not calibrated" in rows
        assert "Frame Time 1e+09 ms" in rows and "Cine Rate" in rows and "30 frames/s assumed" in rows
        assert problems.notes(str(files["timing"]))
    finally:
        service.close()


def test_the_window_lists_them(window, qtbot, files):
    li = load_image(_instance(files["timing"], "cine"))
    assert li.timing_source == "assumed" and li.notes
    window.problems.refresh(StudyIndex(), [])
    with qtbot.waitSignal(window.problems.countChanged, timeout=5000):
        window.service.imageLoaded.emit(("t", 1), li)
    assert window.problems_dock.isVisible()
    assert any("not believed (implausible)" in window.problems.item(i).text()
               for i in range(window.problems.count()))


def test_a_plausible_image_adds_no_note(qtbot, testdata):
    li = load_image(_instance(testdata / CINE, "cine"))
    assert li.notes == [] and li.error is None
