"""JPEG XL transfer syntaxes (1.2.840.10008.1.2.4.110 / .111 / .112).

The corpus has no JPEG XL file and pydicom 3.0 can neither decode nor write
these syntaxes (``UID(...).is_encapsulated`` raises), so the test builds real
files here: frames of corpus images encoded with imagecodecs (libjxl),
encapsulated with a Basic Offset Table, and written with the file meta
naming the JPEG XL syntax.  PS3.5 8.2.16: JPEG XL Lossless carries
MONOCHROME2 / RGB samples as they are; JPEG XL JPEG Recompression keeps the
original JPEG's YBR_FULL_422 (the decoder reconstructs RGB pixels); JPEG XL
(lossy) declares RGB here.
"""

from __future__ import annotations

import copy
from pathlib import Path

import imagecodecs
import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.pixels import apply_modality_lut

from conftest import TESTDATA
from mdtviewer.imaging.pixels import FrameSource
from mdtviewer.infra.errors import DecodeError, PixelDataError

JXL_LOSSLESS = "1.2.840.10008.1.2.4.110"
JXL_RECOMPRESSION = "1.2.840.10008.1.2.4.111"
JXL = "1.2.840.10008.1.2.4.112"


def test_imagecodecs_has_jpeg_xl():
    """The JPEG XL syntaxes depend on it: a missing codec must fail, not skip."""
    assert imagecodecs.JPEGXL.available


def write_encapsulated(ds: pydicom.Dataset, frames: list[bytes], transfer_syntax: str, path: Path) -> Path:
    """Write ``ds`` with ``frames`` as encapsulated Pixel Data under a
    transfer syntax pydicom does not know how to write: the data set is
    encoded as Explicit VR Little Endian (which every encapsulated syntax
    uses) and the file meta is written separately naming the real syntax."""
    ds = copy.deepcopy(ds)
    ds.NumberOfFrames = len(frames)
    ds.PixelData = encapsulate(frames, has_bot=True)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    for kw in ("LossyImageCompression",):
        if kw in ds:
            del ds[kw]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    head = DicomBytesIO()
    head.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(head, meta, enforce_standard=True)
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    ds.file_meta = FileMetaDataset()
    write_dataset(body, ds)
    path.write_bytes(head.getvalue() + body.getvalue())
    return path


@pytest.fixture(scope="module")
def rgb_cine():
    """First 6 frames of the SonoSite JPEG cine, as pydicom's RGB."""
    ds = pydicom.dcmread(TESTDATA / "usmf_sonosite_jpeg_ybr422_30f.dcm")
    rgb = ds.pixel_array[:6]
    jpeg_frames = list(generate_frames(ds.PixelData, number_of_frames=int(ds.NumberOfFrames)))[:6]
    return ds, rgb, jpeg_frames


def _rgb_dataset(ds: pydicom.Dataset) -> pydicom.Dataset:
    out = copy.deepcopy(ds)
    out.PhotometricInterpretation = "RGB"
    out.PlanarConfiguration = 0
    return out


def test_jpegxl_lossless_rgb_cine_is_exact(rgb_cine, tmp_path):
    ds, rgb, _ = rgb_cine
    frames = [imagecodecs.jpegxl_encode(f, lossless=True) for f in rgb]
    path = write_encapsulated(_rgb_dataset(ds), frames, JXL_LOSSLESS, tmp_path / "jxl_lossless.dcm")
    # the file is a real encapsulated JPEG XL file
    check = pydicom.dcmread(path)
    assert check.file_meta.TransferSyntaxUID == JXL_LOSSLESS and check["PixelData"].is_undefined_length
    fs = FrameSource(path)
    assert (fs.n_frames, fs.rows, fs.columns, fs.transfer_syntax) == (6, 240, 320, JXL_LOSSLESS)
    for k in (5, 0, 3):  # any order: each frame decodes on its own
        np.testing.assert_array_equal(fs.frame(k), rgb[k])


def test_jpegxl_lossy_rgb_cine_is_close(rgb_cine, tmp_path):
    ds, rgb, _ = rgb_cine
    frames = [imagecodecs.jpegxl_encode(f, distance=1.0) for f in rgb]
    path = write_encapsulated(_rgb_dataset(ds), frames, JXL, tmp_path / "jxl_lossy.dcm")
    fs = FrameSource(path)
    for k in range(fs.n_frames):
        got = fs.frame(k)
        assert got.shape == (240, 320, 3) and got.dtype == np.uint8
        diff = np.abs(got.astype(int) - rgb[k].astype(int))
        assert diff.mean() < 3.0, diff.mean()
        # colour survives: per-channel means agree (no swapped/converted channels)
        assert np.abs(got.reshape(-1, 3).mean(0) - rgb[k].reshape(-1, 3).mean(0)).max() < 2.0


def test_jpegxl_jpeg_recompression_matches_the_jpeg(rgb_cine, tmp_path):
    """.111 holds the original JPEG bit-exactly recompressed; the frames
    decode to the JPEG's RGB pixels (photometric stays YBR_FULL_422)."""
    ds, rgb, jpeg_frames = rgb_cine
    frames = [imagecodecs.jpegxl_encode_jpeg(f) for f in jpeg_frames]
    path = write_encapsulated(ds, frames, JXL_RECOMPRESSION, tmp_path / "jxl_recompressed.dcm")
    fs = FrameSource(path)
    assert fs.photometric == "YBR_FULL_422" and fs.is_color
    for k in range(fs.n_frames):
        diff = np.abs(fs.frame(k).astype(int) - rgb[k].astype(int))
        assert diff.max() <= 13 and diff.mean() < 1.0


def test_jpegxl_lossless_16bit_grey_keeps_modality_values(tmp_path):
    """A 16-bit CT frame through JPEG XL lossless: modality values exact."""
    ddir = TESTDATA / "dicomdir_pydicom_ct_mr_2patients"
    src = next(p for p in sorted(ddir.rglob("*")) if p.is_file() and p.name != "DICOMDIR"
               and pydicom.dcmread(p, stop_before_pixels=True).get("Modality") == "CT")
    ds = pydicom.dcmread(src)
    stored = ds.pixel_array
    unsigned = stored.astype(np.uint16)  # JPEG XL codes unsigned samples: two's complement bits
    frame = imagecodecs.jpegxl_encode(unsigned, lossless=True, bitspersample=16)
    path = write_encapsulated(ds, [frame], JXL_LOSSLESS, tmp_path / "jxl_ct.dcm")
    fs = FrameSource(path)
    np.testing.assert_allclose(fs.frame_raw(0), apply_modality_lut(stored, ds), atol=1e-3)
    assert fs.frame(0).shape == stored.shape and fs.default_window is not None


def test_jpegxl_grey_us_frame(tmp_path):
    ds = pydicom.dcmread(TESTDATA / "us_philips_epiq7c_mono2_jpeg_lossless_sv1.dcm")
    grey = ds.pixel_array
    path = write_encapsulated(ds, [imagecodecs.jpegxl_encode(grey, lossless=True)], JXL_LOSSLESS, tmp_path / "g.dcm")
    np.testing.assert_array_equal(FrameSource(path).frame_raw(0), grey)


def test_jpegxl_damaged_frames(rgb_cine, tmp_path):
    ds, rgb, _ = rgb_cine
    frames = [imagecodecs.jpegxl_encode(f, lossless=True) for f in rgb[:3]]
    bad = list(frames)
    bad[1] = bad[1][: len(bad[1]) // 2 // 2 * 2]
    fs = FrameSource(write_encapsulated(_rgb_dataset(ds), bad, JXL_LOSSLESS, tmp_path / "cut.dcm"))
    np.testing.assert_array_equal(fs.frame(0), rgb[0])
    with pytest.raises(DecodeError, match="JPEG XL"):
        fs.frame(1)
    # a fragment that is not JPEG XL at all is refused when the file is opened
    junk = [frames[0], b"\x00" * 1000, frames[2]]
    with pytest.raises(PixelDataError, match="no JPEG XL start marker"):
        FrameSource(write_encapsulated(_rgb_dataset(ds), junk, JXL_LOSSLESS, tmp_path / "junk.dcm"))
