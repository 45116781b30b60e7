"""HAZ-017 C2 (issue 10): the examined side, from the header, shown prominently in the overlay (top right,
"RIGHT" / "LEFT" / "BOTH SIDES", bold in its own colour) in normal, privacy and presenter mode: Image
Laterality (0020,0062), Frame Laterality (0020,9072), Laterality (0020,0060), or the laterality modifier of
the Anatomic Region Sequence (ultrasound).  Two attributes that disagree are both shown as a warning; a file
that names no side gets no invented one, only, where burned-in text is masked, a note that the scanner's own
side label may be among what was masked.  Real corpus files, the real window (pytest-qt)."""

from __future__ import annotations

import pydicom
import pytest
import pytestqt  # noqa: F401  (a test dependency: fail, never skip)
from pydicom.dataset import Dataset

from mdtviewer.ui.viewer import overlays
from mdtviewer.workflows.mdt_session import MDTSession

pytestmark = pytest.mark.gui

ALOKA = "us_aloka_palette16_implicit_le.dcm"  # Laterality (0020,0060) = R; US regions
GE = "us_ge_logiq700_rgb_explicit_le.dcm"  # names no side; no regions (masked by detection)
MAMMO = "bad_second_meta_group_in_dataset.dcm"  # Image Laterality R and Laterality R


def _info(ds) -> overlays.OverlayInfo:
    return overlays.OverlayInfo.from_dataset(ds)


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    c = Dataset()
    c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = value, scheme, meaning
    return c


def test_side_from_every_attribute_that_states_it(testdata):
    aloka = pydicom.dcmread(testdata / ALOKA, stop_before_pixels=True)
    assert overlays.laterality_candidates(aloka) == [("R", "Laterality")]
    assert overlays.side_line(_info(aloka)) == "RIGHT"
    mammo = pydicom.dcmread(testdata / MAMMO, stop_before_pixels=True, force=True)
    assert overlays.side_line(_info(mammo)) == "RIGHT"  # Image Laterality and Laterality agree
    assert _info(mammo).side_source == "Image Laterality"

    ge = pydicom.dcmread(testdata / GE, stop_before_pixels=True)
    assert overlays.laterality_candidates(ge) == []
    assert overlays.side_line(_info(ge)) == ""  # nothing invented
    assert overlays.side_line(_info(ge), masked=True) == overlays.SIDE_MAYBE_MASKED

    # an ultrasound that states its side only in the Anatomic Region Sequence (SNOMED CT modifier "Left")
    region = _code("69105007", "SCT", "Carotid artery")
    region.AnatomicRegionModifierSequence = [_code("7771000", "SCT", "Left")]
    ge.AnatomicRegionSequence = [region]
    assert overlays.side_line(_info(ge)) == "LEFT"
    # Frame Laterality of a multi-frame (shared functional groups); Image Laterality "B" reads both sides
    fa = Dataset()
    fa.FrameLaterality = "B"
    fg = Dataset()
    fg.FrameAnatomySequence = [fa]
    ge.SharedFunctionalGroupsSequence = [fg]
    assert overlays.laterality_candidates(ge)[0] == ("B", "Frame Laterality")
    # "U" (unpaired) is no side
    ge.ImageLaterality = "U"
    assert overlays.laterality_candidates(ge)[0] == ("B", "Frame Laterality")
    # two attributes that disagree: both said, as a warning, never one picked silently
    aloka.ImageLaterality = "L"
    line = overlays.side_line(_info(aloka))
    assert line == "SIDE? L (Image Laterality) / R (Laterality)" and overlays.is_warning(line)


def _open(qtbot, window, paths):
    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        window.open_paths([str(p) for p in paths])
    vp = window.viewports[0]
    qtbot.waitUntil(lambda: bool(vp.stack) and vp.is_settled() and vp.displayed_array() is not None, timeout=30_000)
    return vp


def _painted_side(qtbot, vp) -> str:
    qtbot.waitUntil(vp.is_settled, timeout=30_000)
    vp.grab()
    tr = vp.overlay_shown_lines()["tr"]
    return tr[0]


def test_the_overlay_shows_the_side_in_every_mode(qtbot, window, testdata, tmp_path):
    path = testdata / ALOKA
    vp = _open(qtbot, window, [path])
    assert vp.overlay_lines()["tr"][0] == "RIGHT"  # top right, first line
    assert _painted_side(qtbot, vp) == "RIGHT"  # painted whole
    assert overlays.is_side_line("RIGHT")  # drawn bold, in the side colour
    window.set_privacy(True)  # the side is no identifier: privacy keeps it
    assert _painted_side(qtbot, vp) == "RIGHT"
    window.grab().save(str(tmp_path / "side_privacy.png"))
    window.set_privacy(False)

    uid = pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID
    s = MDTSession(title="MDT")
    s.add_case(uid)
    p = window.presenter
    p.set_session(s)
    assert p.start(0)
    vp = window.viewports[0]
    qtbot.waitUntil(lambda: vp.study_uid == uid and vp.is_settled(), timeout=30_000)
    assert _painted_side(qtbot, vp) == "RIGHT"
    p.set_mask(True)
    assert _painted_side(qtbot, vp) == "RIGHT"
    window.grab().save(str(tmp_path / "side_presenter.png"))
    p.set_mask(False)
    p.stop()


def test_no_side_invented_and_a_masked_label_is_said(qtbot, window, testdata):
    vp = _open(qtbot, window, [testdata / GE])
    text = vp.overlay_text()
    assert not any(w in text.split("\n") for w in overlays.SIDE_WORDS.values())
    assert overlays.SIDE_MAYBE_MASKED not in text  # nothing masked: the scanner's own label is on screen
    window.set_privacy(True)  # burned-in text masked: its side label may be among it
    qtbot.waitUntil(lambda: vp.is_settled() and vp.masking_plan() is not None, timeout=30_000)
    lines = vp.overlay_lines()["tr"]
    assert overlays.SIDE_MAYBE_MASKED in lines and not any(t in overlays.SIDE_WORDS.values() for t in lines)
