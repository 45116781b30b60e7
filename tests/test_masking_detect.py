"""Burned-in text found in the pixels, masked, or the image hidden (issue 10 item 2; hazard HAZ-001).

Synthetic screens (a speckle fan drawn with numpy, text drawn with Pillow) say exactly where the text
is; the corpus files say the same holds on real scanners' screens.
"""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
from PIL import Image, ImageDraw
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from mdtviewer.imaging import burnedin, masking
from mdtviewer.imaging.pixels import FrameSource

RNG = np.random.default_rng(10)
H, W = 240, 320


def _fan(h: int = H, w: int = W) -> np.ndarray:
    """Bool mask of a sector (phased-array fan) with its apex at the top centre."""
    yy, xx = np.mgrid[0:h, 0:w]
    cx, cy = w / 2, 30
    r = np.hypot(xx - cx, yy - cy)
    ang = np.degrees(np.arctan2(xx - cx, yy - cy))
    return (r > 10) & (r < h - 40) & (np.abs(ang) < 38)


def _screen(frames: int = 1, text: str = "SMITH JOHN 1234567", fill_frame: bool = False) -> tuple[list, np.ndarray]:
    """RGB frames: speckle in the fan (new speckle each frame), static text on black top left."""
    fan = np.ones((H, W), dtype=bool) if fill_frame else _fan()
    ink = Image.new("L", (W, H), 0)
    d = ImageDraw.Draw(ink)
    d.text((6, 4), text, fill=255)
    d.text((6, 16), "CARDIFF VASCULAR UNIT", fill=255)
    d.text((W - 60, H - 14), "12 Mar 1961", fill=255)
    ink_a = np.asarray(ink) > 0
    out = []
    for _ in range(frames):
        g = np.zeros((H, W), dtype=np.uint8)
        g[fan] = RNG.integers(30, 200, size=int(fan.sum()), dtype=np.uint8)
        g[ink_a] = 255
        out.append(np.repeat(g[..., None], 3, axis=2))
    return out, ink_a


def _write_us(path, frames: list[np.ndarray], name: str = "SMITH^JOHN", pid: str = "1234567") -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1" if len(frames) > 1 else "1.2.840.10008.5.1.4.1.1.6.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = "US"
    ds.Manufacturer, ds.ManufacturerModelName = "Test Scanners", "Phantom 1"
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = name, pid, "19610312"
    ds.InstitutionName = "Cardiff Vascular Unit"
    ds.Rows, ds.Columns = frames[0].shape[:2]
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if len(frames) > 1:
        ds.NumberOfFrames = len(frames)
        ds.FrameTime = 33.3
    ds.PixelData = np.stack(frames).tobytes()
    ds.save_as(path, enforce_file_format=True)


def test_static_text_outside_a_moving_fan_is_blanked_and_the_fan_kept():
    frames, ink = _screen(frames=6)
    det = burnedin.detect(frames)
    assert det.safe and det.method == "cine" and det.show is not None
    assert not det.show[ink].any()  # every text pixel blanked
    assert det.show[_fan()].mean() > 0.97  # the image itself is kept
    assert det.blanked  # and it says what it blanked


def test_text_beside_the_fan_of_a_still_is_blanked():
    frames, ink = _screen(frames=1)
    det = burnedin.detect(frames)
    assert det.safe and det.method == "still"
    assert not det.show[ink].any()
    assert det.show[_fan()].mean() > 0.9


def test_an_image_that_fills_the_frame_cannot_be_made_safe():
    frames, _ink = _screen(frames=1, fill_frame=True)
    det = burnedin.detect(frames)
    assert not det.safe and det.show is None and "fills the frame" in det.reason


def test_unmaskable_file_is_hidden_with_the_message(tmp_path):
    path = tmp_path / "full.dcm"
    frames, _ = _screen(frames=1, fill_frame=True)
    _write_us(path, frames)
    plan = masking.privacy_plan(path)
    assert plan.hidden and plan.show is None
    assert plan.message.startswith(masking.HIDDEN_MESSAGE)
    assert not plan.apply(frames[0]).any()
    # export refuses the same file rather than write it unmasked
    with pytest.raises(masking.CleanPixelError, match="hidden: may show identifiers"):
        masking.clean_dataset_pixels(pydicom.dcmread(path), detect=True)


def test_privacy_plan_of_a_synthetic_cine_masks_all_text(tmp_path):
    path = tmp_path / "cine.dcm"
    frames, ink = _screen(frames=8)
    _write_us(path, frames)
    plan = masking.privacy_plan(path)
    assert plan.action == "mask" and plan.source == "detected", plan.message
    shown = plan.apply(FrameSource(path).frame(3))
    assert not shown[ink].any()


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs tesseract")
def test_a_name_typed_inside_the_regions_is_found_by_ocr_and_blanked(testdata):
    """us_acuson_sequoia: the sonographer typed DOE (the patient's surname) inside the 2D region."""
    path = testdata / "us_acuson_sequoia_ybr_full_rle.dcm"
    masking.clear_plan_cache()
    plan = masking.privacy_plan(path)
    assert plan.source == "regions" and plan.ocr == "checked"
    assert len(plan.identifier_boxes) == 1
    x0, y0, x1, y1 = plan.identifier_boxes[0]
    assert 100 <= x0 <= 130 and 360 <= y0 <= 385  # where DOE is on that screen
    frame = FrameSource(path).frame(0)
    assert frame[y0 : y1 + 1, x0 : x1 + 1].max() > 200  # white text there before
    assert not plan.apply(frame)[y0 : y1 + 1, x0 : x1 + 1].any()
    assert "identifier word" in plan.message


def test_every_corpus_ultrasound_image_is_masked_or_hidden(testdata):
    """No ultrasound image of the corpus is shown unmasked under privacy."""
    masking.clear_plan_cache()
    seen = 0
    for path in sorted(testdata.glob("us*.dcm")):
        plan = masking.privacy_plan(path, ocr=False)
        assert plan.action in ("mask", "hide"), (path.name, plan.action, plan.message)
        if plan.action == "mask":
            assert plan.show is not None and not plan.show.all(), path.name
        seen += 1
    assert seen >= 18


def test_no_text_expected_for_ct_and_every_failure_is_hidden(testdata):
    ct = testdata / "bad_no_preamble_no_file_meta_ct.dcm"
    assert masking.privacy_plan(ct).action == "show"
    cut = testdata / "bad_jpeg_ts_but_raw_pixels_in_fragment.dcm"
    plan = masking.privacy_plan(cut)
    assert plan.hidden and "cannot check the pixels" in plan.message


def test_the_plan_follows_the_file_when_it_changes_on_disk(tmp_path, testdata):
    """Stale cache hazard: a file replaced under the same path gets a new plan, not the old one."""
    path = tmp_path / "img.dcm"
    shutil.copy(testdata / "us_ge_logiq700_rgb_explicit_le.dcm", path)
    first = masking.privacy_plan(path, ocr=False)
    frames, _ = _screen(frames=1, fill_frame=True)
    _write_us(path, frames)
    second = masking.privacy_plan(path, ocr=False)
    assert first.action == "mask" and second.hidden


def test_identifier_tokens_and_dates():
    ds = pydicom.Dataset()
    ds.PatientName = "SMITH^JOHN^^DR"
    ds.PatientID = "00/03/29:115116"
    ds.PatientBirthDate = "19610312"
    ds.InstitutionName = "Cardiff Vascular Unit"
    toks = masking.identifier_tokens(ds)
    for t in ("SMITH", "JOHN", "00/03/29:115116", "115116", "12/03/1961", "12 mar 1961", "Cardiff Vascular Unit",
              "Cardiff"):
        assert t in toks, t
    assert "Vascular" not in toks and "Unit" not in toks  # generic words would blank clinical labels
    words = [burnedin.Word("Smith,", (0, 0, 10, 8), 90), burnedin.Word("LT", (20, 0, 30, 8), 90),
             burnedin.Word("CCA", (40, 0, 60, 8), 90)]
    assert [w.text for w in burnedin.find_identifier_words(words, toks)] == ["Smith,"]


def test_the_window_hides_an_unmaskable_image_and_says_why(qtbot, window, tmp_path):
    """In the real window with privacy on: a black viewport with the hidden message, never the text."""
    path = tmp_path / "full.dcm"
    frames, _ = _screen(frames=1, fill_frame=True)
    _write_us(path, frames)
    window.set_privacy(True)
    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        window.open_paths([str(path)])
    vp = window.viewports[0]  # the first series opened is shown at once
    qtbot.waitUntil(lambda: bool(vp.stack) and vp.is_settled() and vp.displayed_array() is not None, timeout=20_000)
    assert not vp.displayed_array().any()
    lines = vp.overlay_lines()
    assert lines["c"] == [masking.HIDDEN_MESSAGE]
    assert any(line.startswith(masking.HIDDEN_MESSAGE) for line in lines["tl"])
    # privacy off: the image is back (the hiding belongs to privacy only)
    window.set_privacy(False)
    qtbot.waitUntil(lambda: vp.displayed_array() is not None and vp.displayed_array().any(), timeout=5_000)
    assert masking.HIDDEN_MESSAGE not in vp.overlay_text()


def test_without_tesseract_the_screen_says_text_inside_the_image_was_not_checked(monkeypatch, testdata):
    monkeypatch.setattr(burnedin, "tesseract_path", lambda: None)
    masking.clear_plan_cache()
    plan = masking.privacy_plan(testdata / "us_acuson_sequoia_ybr_full_rle.dcm")
    assert plan.action == "mask" and plan.ocr == "not installed"
    assert "not checked (tesseract not installed)" in plan.message
    masking.clear_plan_cache()


def test_noise_everywhere_is_refused_quickly():
    """A frame of noise around a small textured area: unsafe, and decided in well under a second."""
    import time

    g = RNG.integers(0, 255, size=(1024, 1024), dtype=np.uint8)
    t0 = time.perf_counter()
    det = burnedin.detect([np.repeat(g[..., None], 3, axis=2)])
    assert not det.safe
    assert time.perf_counter() - t0 < 5.0


def test_a_bug_while_checking_hides_the_image(monkeypatch, testdata, caplog):
    """Fails closed: an unexpected error in the detector hides the image and is logged as a bug."""

    def broken(frames):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(burnedin, "detect", broken)
    masking.clear_plan_cache()
    plan = masking.privacy_plan(testdata / "us_ge_logiq700_rgb_explicit_le.dcm")
    assert plan.hidden and "this is a bug" in plan.message
    assert "privacy plan failed" in caplog.text
    masking.clear_plan_cache()


def test_nothing_unmasked_is_shown_while_the_plan_is_worked_out(qtbot, window, testdata, monkeypatch):
    """Privacy switched on over an image with burned-in text: black, "Checking for burned-in text…" and not
    settled until the plan arrives from its background task; then the masked image."""
    import threading

    import mdtviewer.ui.viewer.viewport as viewport_mod

    path = testdata / "us_ge_logiq700_rgb_explicit_le.dcm"
    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        window.open_paths([str(path)])
    vp = window.viewports[0]
    qtbot.waitUntil(lambda: bool(vp.stack) and vp.is_settled() and vp.displayed_array() is not None, timeout=20_000)
    assert vp.displayed_array()[:40, :120].any()  # the burned-in hospital, privacy off
    release = threading.Event()
    real = viewport_mod.privacy_plan

    def slow_plan(*args, **kwargs):
        release.wait(20)
        return real(*args, **kwargs)

    monkeypatch.setattr(viewport_mod, "privacy_plan", slow_plan)
    masking.clear_plan_cache()
    window.set_privacy(True)
    qtbot.wait(200)
    assert vp.privacy_pending() and not vp.is_settled()
    assert not vp.displayed_array().any()  # black while checking
    assert vp.overlay_lines()["c"] == ["Checking for burned-in text…"]
    release.set()
    qtbot.waitUntil(lambda: vp.is_settled() and vp.displayed_array().any(), timeout=20_000)
    arr = vp.displayed_array()
    assert not arr[:40, :120].any()  # the hospital stays blank once shown
    assert "Burned-in text masked" in vp.overlay_text()
