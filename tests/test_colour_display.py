"""Palette and colour JPEG frames are handed to the viewport in Qt's packed RGB32 form (issue 12.7): the
colours on screen must be those of ``FrameSource.frame`` to the bit, every consumer that reads pixel values
keeps the RGB array, and privacy must hide burned-in text on a palette image exactly as before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from PySide6.QtCore import QPointF
from PySide6.QtGui import QImage

from mdtviewer.imaging.colour import apply_palette, apply_palette_rgb32, palette_rgb32, palette_table, rgb32_to_rgb
from mdtviewer.imaging.pixels import FrameSource
from tests.ui_steps import open_and_show

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "testdata"
PALETTE_8BIT = [
    "usmf_palette_rle_10f.dcm",
    "us_philips_cx50_palette_rle.dcm",
    "us_philips_cx50_palette_explicit_le.dcm",
    "usmf_philips_cx50_palette_rle_2f_no_frametime.dcm",
]


def _qimage_rgb(img: QImage) -> np.ndarray:
    img = img.convertToFormat(QImage.Format.Format_RGB888)
    h, w = img.height(), img.width()
    buf = np.frombuffer(img.constBits(), dtype=np.uint8, count=img.bytesPerLine() * h)
    return buf.reshape(h, img.bytesPerLine())[:, : w * 3].reshape(h, w, 3).copy()


@pytest.mark.parametrize("name", PALETTE_8BIT)
def test_packed_palette_frames_are_the_rgb_frames_to_the_bit(name):
    with FrameSource(CORPUS / name) as fs:
        assert fs.photometric == "PALETTE COLOR"
        for i in range(fs.n_frames):
            packed = fs.display_frame(i)
            assert packed.dtype == np.uint32 and packed.shape == (fs.rows, fs.columns)
            assert np.all(packed >> 24 == 0xFF)  # RGB32 wants an opaque 0xFF top byte
            rgb = fs.frame(i)
            assert rgb.shape == (fs.rows, fs.columns, 3) and rgb.dtype == np.uint8  # frame() is unchanged
            assert np.array_equal(rgb32_to_rgb(packed), rgb)
        assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 16  # real colour, not a grey ramp


#: colour JPEG (8-bit lossy, YBR_FULL_422 with 4:2:2 and 4:2:0 sampling): libjpeg-turbo writes 0xFFRRGGBB
JPEG_COLOUR = [
    "us_atl_hdi5000_jpeg_baseline_ybr422.dcm",
    "usmf_acuson_sequoia_jpeg_ybr422_65f_ftv.dcm",
    "usmf_hp_jpeg_ybr422_34f.dcm",
    "usmf_sonosite_jpeg_ybr422_30f.dcm",
]


@pytest.mark.parametrize("name", JPEG_COLOUR)
def test_packed_jpeg_frames_are_the_rgb_frames_to_the_bit(name):
    with FrameSource(CORPUS / name) as fs:
        assert fs.is_color and fs.photometric.startswith("YBR_FULL")
        for i in range(fs.n_frames):
            packed = fs.display_frame(i)
            assert packed.dtype == np.uint32 and packed.shape == (fs.rows, fs.columns)
            assert np.all(packed >> 24 == 0xFF)  # the 4th byte libjpeg-turbo writes is opaque
            rgb = fs.frame(i)
            assert rgb.shape == (fs.rows, fs.columns, 3) and rgb.dtype == np.uint8  # frame() is unchanged
            assert np.array_equal(rgb32_to_rgb(packed), rgb)


def test_every_index_value_packs_to_its_table_entry():
    ds = pydicom.dcmread(CORPUS / "us_philips_cx50_palette_rle.dcm", stop_before_pixels=True)
    table = palette_table(ds, 8, 8)
    index = np.arange(256, dtype=np.uint8).reshape(16, 16)
    packed = apply_palette_rgb32(index, palette_rgb32(table))
    expected = (0xFF << 24) | (table[:, 0].astype(np.uint32) << 16) | (table[:, 1].astype(np.uint32) << 8) | table[:, 2]
    assert np.array_equal(packed.reshape(-1), expected)
    assert np.array_equal(rgb32_to_rgb(packed), apply_palette(index, table))


@pytest.mark.parametrize("name", ["us_aloka_palette16_implicit_le.dcm", "us_acuson_sequoia_ybr_full_rle.dcm",
                                  "us_philips_cx50_palette_rle.dcm"])
def test_qt_paints_the_display_form_as_the_rgb_frame(name):
    """What Qt makes of the display form (RGB32 for 8-bit palettes, RGB888 for the rest) is frame()."""
    from mdtviewer.ui.viewer.viewport import to_qimage

    with FrameSource(CORPUS / name) as fs:
        disp = fs.display_frame(0)
        assert _qimage_rgb(to_qimage(disp)).tolist() == fs.frame(0).tolist()
        if name == "us_aloka_palette16_implicit_le.dcm":  # 16-bit indices: the RGB form, as before
            assert disp.shape == (fs.rows, fs.columns, 3)


def _show_one_to_one(vp) -> None:
    """Image pixels at whole widget pixels, scale 1 (so the painted pixels are the frame's, uninterpolated)."""
    vp.actual_size()
    tl = vp.to_widget(0, 0)
    vp.center = QPointF(vp.center.x() + tl.x() % 1, vp.center.y() + tl.y() % 1)
    vp.update()


def _grabbed(vp, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The painted part of the image on *vp* (shown 1:1) and the same part of *rgb*."""
    tl = vp.to_widget(0, 0)
    x0, y0 = int(tl.x()), int(tl.y())
    assert (x0, y0) == (tl.x(), tl.y()) and vp.effective_scale() == 1.0
    shot = _qimage_rgb(vp.grab().toImage())
    h, w = rgb.shape[:2]
    ax, ay = max(0, x0), max(0, y0)
    bx, by = min(shot.shape[1], x0 + w), min(shot.shape[0], y0 + h)
    assert bx - ax > 200 and by - ay > 200  # most of the image is on screen
    return shot[ay:by, ax:bx], rgb[ay - y0:by - y0, ax - x0:bx - x0]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ["us_philips_cx50_palette_rle.dcm", "usmf_hp_jpeg_ybr422_34f.dcm"])
def test_palette_frame_on_screen_is_the_rgb_frame_pixel_for_pixel(qtbot, window, tmp_path, name):
    """A palette and a JPEG cine frame, painted 1:1 from the packed form: every pixel is frame()'s."""
    ds = pydicom.dcmread(CORPUS / name)
    del ds.SequenceOfUltrasoundRegions  # no scale bar over the image: every painted pixel is the frame's
    path = tmp_path / "palette_no_regions.dcm"
    ds.save_as(path)
    vp = open_and_show(qtbot, window, [path])
    vp.set_overlays_visible(False)
    _show_one_to_one(vp)
    qtbot.waitUntil(vp.is_settled, timeout=20_000)
    assert window.service.get(vp.frame_key()).dtype == np.uint32  # the packed path is the one on screen
    with FrameSource(path) as fs:
        rgb = fs.frame(vp.shown_frame())
    assert np.array_equal(vp.displayed_array(), rgb)
    painted, expected = _grabbed(vp, rgb)
    assert np.array_equal(painted, expected)
    vp.set_invert(True)  # inverted: the RGB path, as before
    qtbot.waitUntil(lambda: vp.is_settled() and np.array_equal(vp.displayed_array(), 255 - rgb), timeout=20_000)
    assert np.array_equal(_grabbed(vp, rgb)[0], 255 - expected)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ["us_philips_cx50_palette_rle.dcm", "us_atl_hdi5000_jpeg_baseline_ybr422.dcm"])
def test_privacy_paints_no_pixel_of_the_hidden_area_of_a_palette_frame(qtbot, window, name):
    path = CORPUS / name
    vp = open_and_show(qtbot, window, [path])
    vp.set_overlays_visible(False)
    _show_one_to_one(vp)
    qtbot.waitUntil(vp.is_settled, timeout=20_000)
    assert window.service.get(vp.frame_key()).dtype == np.uint32
    with FrameSource(path) as fs:
        rgb = fs.frame(vp.shown_frame())
    window.set_privacy(True)
    qtbot.waitUntil(lambda: vp.masking_plan() is not None and vp.is_settled(), timeout=60_000)
    plan = vp.masking_plan()
    shown = vp.displayed_array()
    assert shown.shape == rgb.shape and shown.dtype == np.uint8
    painted, expected = _grabbed(vp, rgb)
    if plan.action == "mask":
        assert np.array_equal(shown, plan.apply(rgb))  # exactly the RGB path's masking
        hidden = _grabbed(vp, ~plan.show[..., None].repeat(3, axis=2))[1][..., 0]
        assert hidden.any() and expected[hidden].any()  # there was something to hide on screen
        assert not painted[hidden].any()  # not one hidden pixel painted
        # the rest as it is, but for the scale bar painted over the image (this file has US regions)
        kept = ~hidden & np.all(painted == expected, axis=2)
        assert np.count_nonzero(kept) > 0.99 * np.count_nonzero(~hidden)
    else:
        assert plan.action == "hide"
        assert not painted.any()
    window.set_privacy(False)
    qtbot.waitUntil(lambda: vp.is_settled() and vp.displayed_array() is not None
                    and np.array_equal(vp.displayed_array(), rgb), timeout=20_000)
    assert window.service.get(vp.frame_key()).dtype == np.uint32  # back on the packed path
