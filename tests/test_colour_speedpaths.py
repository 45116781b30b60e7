"""The fast colour paths (issue 12.7) must show the same colours as pydicom's
reference conversions: YBR_FULL -> RGB (``convert_color_space``) and
PALETTE COLOR -> RGB (``apply_color_lut``, reduced to 8 bits), within one
level, on the corpus RLE files and on a JPEG-LS palette cine built from one.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.pixels import apply_color_lut, convert_color_space, pixel_array

from mdtviewer.imaging.colour import apply_palette, palette_table, ybr_full_array_to_rgb
from mdtviewer.imaging.pixels import FrameSource

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "testdata"


def _reference_palette_rgb(index: np.ndarray, ds) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rgb = np.asarray(apply_color_lut(index, ds))
    if rgb.dtype != np.uint8:
        if int(rgb.max(initial=0)) > 255:
            rgb = rgb >> 8
        rgb = rgb.astype(np.uint8)
    return rgb


def _assert_within_one(ours: np.ndarray, ref: np.ndarray) -> None:
    assert ours.shape == ref.shape
    assert ours.dtype == np.uint8
    diff = np.abs(ours.astype(np.int16) - ref.astype(np.int16))
    assert int(diff.max()) <= 1, f"max difference {int(diff.max())} levels"


def test_rle_ybr_full_matches_pydicom_conversion():
    path = CORPUS / "us_acuson_sequoia_ybr_full_rle.dcm"
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == "YBR_FULL"
    ycc = pixel_array(ds, raw=True)  # the stored YBR samples, no conversion
    ref = convert_color_space(ycc, "YBR_FULL", "RGB").astype(np.uint8)
    with FrameSource(path) as fs:
        ours = fs.frame(0)
    assert ours.flags.c_contiguous
    _assert_within_one(ours, ref)
    # the image has real colour in it (a grey image would not test Cb/Cr)
    assert int(np.abs(ycc[..., 1].astype(int) - 128).max()) > 20
    # and the helper alone, on the same samples
    _assert_within_one(ybr_full_array_to_rgb(np.ascontiguousarray(ycc)), ref)


@pytest.mark.parametrize(
    "name",
    ["usmf_palette_rle_10f.dcm", "us_philips_cx50_palette_rle.dcm", "us_aloka_palette16_implicit_le.dcm"],
)
def test_palette_files_match_apply_color_lut(name):
    path = CORPUS / name
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == "PALETTE COLOR"
    index = pixel_array(ds, raw=True)
    n = int(ds.get("NumberOfFrames", 1) or 1)
    frames = index if n > 1 else index[None]
    with FrameSource(path) as fs:
        for i in sorted({0, n // 2, n - 1}):
            ref = _reference_palette_rgb(frames[i], ds)
            ours = fs.frame(i)
            assert ours.flags.c_contiguous
            _assert_within_one(ours, ref)


def test_palette_paths_agree_for_every_index_value():
    """Every 8-bit index value through the Pillow path and through np.take."""
    ds = pydicom.dcmread(CORPUS / "usmf_palette_rle_10f.dcm", stop_before_pixels=True)
    table = palette_table(ds, 8, 8)
    index = np.arange(256, dtype=np.uint8).reshape(16, 16)
    fast = apply_palette(index, table)
    assert np.array_equal(fast, table[index])
    wide = apply_palette(index.astype(np.uint16), table)
    assert np.array_equal(wide, table[index])


def test_jpegls_palette_cine_matches_apply_color_lut(tmp_path):
    jpeg_ls = pytest.importorskip("jpeg_ls")
    src = CORPUS / "usmf_palette_rle_10f.dcm"
    ds = pydicom.dcmread(src)
    index = pixel_array(ds, raw=True)
    ds.PixelData = encapsulate([jpeg_ls.encode(np.ascontiguousarray(f)).tobytes() for f in index])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.80"
    out = tmp_path / "palette_jpegls.dcm"
    ds.save_as(out, enforce_file_format=True)
    with FrameSource(out) as fs:
        assert fs.transfer_syntax_used == "1.2.840.10008.1.2.4.80"
        for i in (0, len(index) - 1):
            _assert_within_one(fs.frame(i), _reference_palette_rgb(index[i], ds))
