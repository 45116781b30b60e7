"""Overlay text: what every stored image must show, and what privacy hides."""

from __future__ import annotations

import pydicom

from mdtviewer.ui.viewer.overlays import HIDDEN, FrameStatus, OverlayInfo, corner_texts


def _all(texts: dict[str, list[str]]) -> str:
    return "\n".join(line for lines in texts.values() for line in lines)


def test_overlay_shows_identification_and_privacy_hides_it(testdata):
    ds = pydicom.dcmread(testdata / "us_siemens_s2000_rgb_explicit_le.dcm", stop_before_pixels=True)
    info = OverlayInfo.from_dataset(ds)
    st = FrameStatus(frame=0, n_frames=1)
    shown = _all(corner_texts(info, st, privacy=False))
    institution = str(ds.InstitutionName)
    assert institution and institution in shown
    assert str(ds.PatientID) in shown
    assert "Frame 1/1" in shown
    hidden = _all(corner_texts(info, st, privacy=True))
    for value in info.identifiers() + [institution]:
        assert value not in hidden, value
    assert HIDDEN in hidden and "Frame 1/1" in hidden
