"""De-identified, masked DICOM export of a JPEG XL cine (issue 11 item 9).

pydicom 3.0 can neither decode nor write the JPEG XL syntaxes, so masking a JPEG XL cine failed
("NotImplementedError") and so did saving one.  The export now decodes the frames with libjxl, masks
them, and re-encodes them as JPEG XL Lossless (the family kept, see ``_reencode_target``).

The test files are built as tests/test_jpegxl.py builds them: the first frames of the corpus SonoSite
JPEG cine (it has a Sequence of Ultrasound Regions, and its burned-in banner lies outside them), encoded
by imagecodecs (libjxl) losslessly, lossily (distance 1) and as JPEG recompression of the original JPEG
frames, encapsulated with a Basic Offset Table under the JPEG XL transfer syntaxes.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import imagecodecs
import numpy as np
import pydicom
import pytest
from pydicom.encaps import generate_frames

from mdtviewer.cli import main as cli_main
from mdtviewer.dicom import uids
from mdtviewer.governance.export import ExportOptions, export
from mdtviewer.imaging import masking
from mdtviewer.imaging.pixels import FrameSource
from test_jpegxl import JXL, JXL_LOSSLESS, JXL_RECOMPRESSION, write_encapsulated

SOURCE = "usmf_sonosite_jpeg_ybr422_30f.dcm"
N = 4


@pytest.fixture(scope="module")
def cine(testdata):
    ds = pydicom.dcmread(testdata / SOURCE)
    rgb = ds.pixel_array[:N]
    jpeg = list(generate_frames(ds.PixelData, number_of_frames=int(ds.NumberOfFrames)))[:N]
    return ds, rgb, jpeg


def _make(kind: str, cine, tmp_path: Path) -> Path:
    ds, rgb, jpeg = cine
    out = ds.copy()
    if kind == "lossless":
        out.PhotometricInterpretation, out.PlanarConfiguration = "RGB", 0
        path = write_encapsulated(out, [imagecodecs.jpegxl_encode(f, lossless=True) for f in rgb], JXL_LOSSLESS,
                                  tmp_path / "lossless.dcm")
    elif kind == "lossy":
        out.PhotometricInterpretation, out.PlanarConfiguration = "RGB", 0
        path = write_encapsulated(out, [imagecodecs.jpegxl_encode(f, distance=1.0) for f in rgb], JXL,
                                  tmp_path / "lossy.dcm")
    else:  # JPEG recompression keeps the JPEG's YBR_FULL_422
        path = write_encapsulated(out, [imagecodecs.jpegxl_encode_jpeg(f) for f in jpeg], JXL_RECOMPRESSION,
                                  tmp_path / "recompressed.dcm")
    if kind != "lossless":  # the source is lossy: say so, as a conforming writer does
        d = pydicom.dcmread(path)
        d.LossyImageCompression = "01"
        d.LossyImageCompressionRatio = "19"
        d.LossyImageCompressionMethod = "ISO_18181_1" if kind == "lossy" else "ISO_10918_1"
        _rewrite_keeping_pixels(d, path)
    return path


def _rewrite_keeping_pixels(ds: pydicom.Dataset, path: Path) -> None:
    """Save *ds* (its JPEG XL Pixel Data as read) again: the data set as Explicit VR Little Endian and
    the file meta naming its syntax, as write_encapsulated does (pydicom cannot save these syntaxes)."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info

    head = DicomBytesIO()
    head.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(head, ds.file_meta, enforce_standard=True)
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    write_dataset(body, ds)
    path.write_bytes(head.getvalue() + body.getvalue())


def _dciodvfy_errors(path: Path) -> set[str]:
    r = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    out = (r.stdout + "\n" + r.stderr).splitlines()
    assert any("USMultiFrameImage" in line for line in out), out  # it recognised the IOD
    return {line for line in out if line.startswith("Error")}


@pytest.mark.parametrize("kind", ["lossless", "lossy", "recompressed"])
def test_masked_deidentified_jpegxl_cine_is_exported_losslessly_as_jpegxl(kind, cine, tmp_path):
    src = _make(kind, cine, tmp_path)
    original = pydicom.dcmread(src)
    with FrameSource(src) as fs:
        before = [fs.frame(i) for i in range(N)]
    keep = masking.keep_area(original).mask(int(original.Rows), int(original.Columns))
    assert not keep.all() and any(f[~keep].any() for f in before)  # there is something outside to mask

    report = export([src], tmp_path / "out", ExportOptions(deidentify=True))
    item = report.items[0]
    assert item.ok, item.error
    assert item.mask_state == "masked" and item.masked_by == "regions"
    (out,) = item.outputs

    ds = pydicom.dcmread(out)
    assert ds.file_meta.TransferSyntaxUID == uids.JPEGXL_LOSSLESS
    assert ds.BurnedInAnnotation == "NO"
    assert str(ds.PatientName) != str(original.PatientName)
    assert ds.StudyInstanceUID != original.StudyInstanceUID
    assert int(ds.NumberOfFrames) == N and ds.PhotometricInterpretation == "RGB"
    if kind == "lossless":
        assert "LossyImageCompression" not in ds or ds.LossyImageCompression == "00"
    else:  # the pixels' lossy history is kept
        assert (ds.LossyImageCompression, ds.LossyImageCompressionRatio, ds.LossyImageCompressionMethod) == (
            "01", original.LossyImageCompressionRatio, original.LossyImageCompressionMethod)

    with FrameSource(out) as fs:  # our reader opens it
        assert fs.n_frames == N
        after = [fs.frame(i) for i in range(N)]
    for b, a in zip(before, after, strict=True):
        assert not a[~keep].any()  # outside the regions: black
        assert np.array_equal(a[keep], b[keep])  # inside: exactly the decoded pixels

    assert _dciodvfy_errors(out) <= _dciodvfy_errors(src)  # no new errors
    assert cli_main(["check", str(out)]) == 0


def test_cli_export_of_a_jpegxl_cine_with_mask_burned_in(cine, tmp_path, capsys):
    src = _make("lossy", cine, tmp_path)
    rc = cli_main(["export", str(src), "--deidentify", "--mask-burned-in", "--dest", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "exported 1 of 1" in out and "stored as JPEG XL Lossless (was JPEG XL)" in out
    assert "NotImplementedError" not in out


def test_unmasked_jpegxl_is_saved_in_its_own_syntax(cine, tmp_path):
    """An identifiable-but-masked export... and an unmasked de-identified one at the user's request: the
    JPEG XL Pixel Data is written as it was (pydicom alone cannot save these syntaxes)."""
    src = _make("lossless", cine, tmp_path)
    report = export([src], tmp_path / "out", ExportOptions(deidentify=True, mask_burned_in=False, unmasked_ok=True))
    item = report.items[0]
    assert item.ok, item.error
    ds = pydicom.dcmread(item.outputs[0])
    assert ds.file_meta.TransferSyntaxUID == JXL_LOSSLESS and ds.BurnedInAnnotation == "YES"
    assert ds.PixelData == pydicom.dcmread(src).PixelData
