"""``mdtviewer export``: the command line contract, PNG stills and MP4 cines."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest

from mdtviewer.cli import main as cli_main
from mdtviewer.governance.export import ExportOptions, export, frame_starts_ms, png_bytes
from mdtviewer.imaging import masking

warnings.filterwarnings("ignore", category=UserWarning)

REGION_FILES = ["us_siemens_s2000_rgb_explicit_le.dcm", "us_philips_cx50_palette_rle.dcm",
                "usmf_sonosite_jpeg_ybr422_30f.dcm"]
NO_REGION = "us_ge_logiq700_rgb_explicit_le.dcm"


def identifiers(paths) -> set[str]:
    out = set()
    for p in paths:
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        for kw in ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber", "InstitutionName"):
            v = str(ds.get(kw, "") or "").strip().rstrip("^")
            if len(v) >= 4:
                out.add(v)
    return out


def test_cli_exports_and_prints_no_identifiers(testdata, tmp_path, capsys):
    files = [testdata / n for n in REGION_FILES]
    rc = cli_main(["export", *map(str, files), "--deidentify", "--dest", str(tmp_path), "--mask-burned-in"])
    out = capsys.readouterr().out
    assert rc == 0, out
    written = sorted(tmp_path.rglob("*.dcm"))
    assert len(written) == 3
    assert out.count("wrote ") == 3
    for w in written:
        assert str(w.relative_to(tmp_path)) in out
    assert "exported 3 of 3" in out
    for ident in identifiers(files):
        assert ident not in out
        for w in written:
            assert ident not in str(w)
    assert all(pydicom.dcmread(w).BurnedInAnnotation == "NO" for w in written)


def test_cli_exit_1_when_an_input_fails_and_keep_rect_fixes_it(testdata, tmp_path, capsys):
    text_ct = _ct_with_burned_in_text(tmp_path)
    files = [testdata / REGION_FILES[0], text_ct]
    rc = cli_main(["export", *map(str, files), "--deidentify", "--dest", str(tmp_path / "a"), "--mask-burned-in"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "FAILED" in out and text_ct.name in out and "set a template" in out
    assert "exported 1 of 2" in out
    rc = cli_main(
        ["export", *map(str, files), "--deidentify", "--dest", str(tmp_path / "b"), "--keep-rect", "2,2,13,13"]
    )
    assert rc == 0
    outs = sorted((tmp_path / "b").rglob("*.dcm"))
    assert len(outs) == 2
    assert {pydicom.dcmread(p).BurnedInAnnotation for p in outs} == {"NO"}
    # a broken input also makes the run fail (exit 1), without stopping the others
    rc = cli_main(["export", str(testdata / REGION_FILES[0]), str(testdata / "bad_truncated_pixeldata_mr.dcm"),
                   "--deidentify", "--dest", str(tmp_path / "c")])
    assert rc == 1
    assert len(list((tmp_path / "c").rglob("*.dcm"))) == 1


@pytest.mark.parametrize(
    "args, why",
    [
        ([], "refusing to export identifiable data"),
        (["--identifiable"], "must be encrypted"),
        (["--deidentify", "--identifiable"], "exclude"),
        (["--deidentify", "--mask-burned-in", "--keep-rect", "1,2,3"], "X0,Y0,X1,Y1"),
        (["--identifiable", "--encrypt", "--keep-rect", "0,0,10,10"], "only applies when masking"),
        (["--deidentify", "--no-mask", "--mask-burned-in"], "exclude each other"),
        (["--identifiable", "--encrypt", "--no-mask"], "only applies with --deidentify"),
        (["--deidentify", "--format", "gif"], "invalid choice"),
        (["--keep-dates", "--identifiable", "--encrypt"], "only applies with --deidentify"),
    ],
)
def test_cli_usage_errors_exit_2(testdata, tmp_path, capsys, args, why):
    rc = cli_main(["export", str(testdata / REGION_FILES[0]), "--dest", str(tmp_path), *args])
    err = capsys.readouterr().err
    assert rc == 2
    assert why in err
    assert not list(tmp_path.rglob("*.dcm"))


def test_api_refuses_identifiable_export_unless_explicit(testdata, tmp_path):
    with pytest.raises(ValueError):
        export([testdata / REGION_FILES[0]], tmp_path, ExportOptions(deidentify=False))


def test_folder_input_skips_non_dicom(testdata, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    (src / "notes.txt").write_text("not dicom")
    (src / "a.dcm").write_bytes((testdata / REGION_FILES[0]).read_bytes())
    rc = cli_main(["export", str(src), "--deidentify", "--dest", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert rc == 0 and "skipped 1 non-DICOM" in out and "exported 1 of 1" in out


def _png_decode(path: Path) -> np.ndarray:
    import imagecodecs

    return imagecodecs.png_decode(path.read_bytes())


def test_png_stills_masked(testdata, tmp_path):
    src = testdata / "us_siemens_s2000_rgb_explicit_le.dcm"
    rep = export([src], tmp_path, ExportOptions(deidentify=True, mask_burned_in=True, fmt="png"))
    assert rep.ok
    (png,) = rep.items[0].outputs
    assert png.suffix == ".png"
    img = _png_decode(png)
    ds = pydicom.dcmread(src)
    assert img.shape == (ds.Rows, ds.Columns, 3)
    keep = masking.keep_mask(ds.Rows, ds.Columns, masking.ultrasound_regions(ds))
    assert not img[~keep].any()
    orig = ds.pixel_array
    assert np.array_equal(img[keep], orig[keep])  # RGB native: display == stored
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_png_one_per_frame_for_a_cine(testdata, tmp_path):
    src = testdata / "usmf_acuson_rgb_implicit_le_8f_ftv.dcm"
    rep = export([src], tmp_path, ExportOptions(deidentify=True, fmt="png"))
    assert rep.ok and len(rep.items[0].outputs) == 8
    assert all(p.suffix == ".png" for p in rep.items[0].outputs)


def test_png_writer_roundtrips():  # Pillow writes them (no hand-written encoder)
    import imagecodecs

    rng = np.random.default_rng(1)
    for shape in ((7, 5), (6, 9, 3)):
        a = rng.integers(0, 256, shape, dtype=np.uint8)
        assert np.array_equal(imagecodecs.png_decode(png_bytes(a)), a)


def _decode_mp4(path: Path):
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        times = []
        frames = []
        for fr in c.decode(video=0):
            times.append(float(fr.pts * fr.time_base) * 1000.0)
            frames.append(fr.to_ndarray(format="rgb24"))
        return times, frames, s.average_rate, (s.codec_context.width, s.codec_context.height)


def test_mp4_constant_rate_cine(testdata, tmp_path):
    src = testdata / "usmf_hp_jpeg_ybr422_34f.dcm"  # Frame Time 30 ms, 34 frames
    rep = export([src], tmp_path, ExportOptions(deidentify=True, mask_burned_in=True, fmt="mp4"))
    assert rep.ok, rep.items[0].error
    (mp4,) = rep.items[0].outputs
    times, frames, rate, size = _decode_mp4(mp4)
    assert len(frames) == 34
    assert abs(float(rate) - 1000 / 30) < 0.5
    assert np.allclose(np.diff(times), 30, atol=1.01)
    assert size == (480, 430)
    ds = pydicom.dcmread(src)
    keep = masking.keep_mask(ds.Rows, ds.Columns, masking.ultrasound_regions(ds))
    assert frames[5][~keep].max() <= 16  # blank outside the regions (H.264 is lossy: near black)
    assert frames[5][keep].mean() > 5


def test_mp4_irregular_frame_time_vector_keeps_timing(testdata, tmp_path):
    src = testdata / "usmf_acuson_sequoia_jpeg_ybr422_65f_ftv.dcm"
    ds = pydicom.dcmread(src, stop_before_pixels=True)
    expected = np.cumsum([0.0] + [float(x) for x in ds.FrameTimeVector][1:])
    rep = export([src], tmp_path, ExportOptions(deidentify=True, fmt="mp4"))
    assert rep.ok
    times, frames, rate, _ = _decode_mp4(rep.items[0].outputs[0])
    assert len(frames) == 65
    assert np.allclose(np.array(times) - times[0], expected, atol=1.01)  # variable frame rate, ms accuracy
    assert len(set(np.round(np.diff(times)))) > 1
    mean_rate = 1000 * 64 / expected[-1]
    assert abs(float(rate) - mean_rate) / mean_rate < 0.05


def test_mp4_of_a_still_writes_png(testdata, tmp_path):
    rep = export([testdata / REGION_FILES[0]], tmp_path, ExportOptions(deidentify=True, fmt="mp4"))
    assert rep.ok and rep.items[0].outputs[0].suffix == ".png" and "PNG" in rep.items[0].note


def test_frame_timing_sources(testdata):
    ds = pydicom.dcmread(testdata / "usmf_sonosite_jpeg_ybr422_30f.dcm", stop_before_pixels=True)
    t, src = frame_starts_ms(ds, 30)
    assert abs(t[1] - 33.333) < 0.01 and len(t) == 30
    ds = pydicom.dcmread(testdata / "usmf_philips_cx50_palette_rle_2f_no_frametime.dcm", stop_before_pixels=True)
    t, src = frame_starts_ms(ds, 2)
    assert len(t) == 2 and t[1] > 0


def test_dicomdir_given_as_a_file_exports_the_files_it_references(testdata, tmp_path, capsys):
    """A DICOMDIR is the index of a file-set: exporting it means its 31 instances
    (2 patients), each de-identified, not a failed 'instance' of its own."""
    dd = testdata / "dicomdir_pydicom_ct_mr_2patients" / "DICOMDIR"
    originals = [pydicom.dcmread(p, stop_before_pixels=True) for p in
                 sorted(p for p in dd.parent.rglob("*") if p.is_file() and p.name != "DICOMDIR")]
    assert len(originals) == 31
    rc = cli_main(["export", str(dd), "--deidentify", "--dest", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert rc == 0 and "exported 31 of 31" in out, out
    written = sorted((tmp_path / "out").rglob("*.dcm"))
    assert len(written) == 31
    names = {str(o.PatientName) for o in originals} | {str(o.PatientID) for o in originals}
    blob = b"".join(p.read_bytes() for p in written)
    for v in names:
        assert v.encode() not in blob, v
    pseudonyms = {str(pydicom.dcmread(p, stop_before_pixels=True).PatientID) for p in written}
    assert len(pseudonyms) == len({str(o.PatientID) for o in originals}) == 2
    # the same set given as its folder: the index is not counted as a skipped non-DICOM file
    rc = cli_main(["export", str(dd.parent), "--deidentify", "--dest", str(tmp_path / "out2")])
    out = capsys.readouterr().out
    assert rc == 0 and "exported 31 of 31" in out and "skipped" not in out, out


def test_a_dicomdir_pointing_outside_its_file_set_exports_nothing_from_outside(testdata, tmp_path, capsys):
    """../shared/hostile/dicomdir_absolute_path, with a file of our own where its first record points."""
    import shutil

    fs = tmp_path / "set"
    shutil.copytree(testdata / "dicomdir_pydicom_ct_mr_2patients", fs)
    for p in fs.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    ds = pydicom.dcmread(fs / "DICOMDIR")
    secret = tmp_path / "outside" / "secret.dcm"
    secret.parent.mkdir()
    secret.write_bytes((testdata / REGION_FILES[0]).read_bytes())
    rec = next(r for r in ds.DirectoryRecordSequence if "ReferencedFileID" in r)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec.ReferencedFileID = [str(secret)]  # an absolute first component, as the hostile file has
        ds.save_as(fs / "DICOMDIR")
    rc = cli_main(["export", str(fs / "DICOMDIR"), "--deidentify", "--dest", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert rc == 1 and "outside its file-set" in out and "exported 30 of 31" in out, out
    assert "secret" not in out and str(secret.parent) not in out
    written = sorted((tmp_path / "out").rglob("*.dcm"))
    assert len(written) == 30
    # the file-set is CR/CT/MR; the file outside it is ultrasound: none of that was exported
    assert pydicom.dcmread(secret, stop_before_pixels=True).Modality == "US"
    assert {pydicom.dcmread(p, stop_before_pixels=True).Modality for p in written} <= {"CR", "CT", "MR"}


def test_unmasked_deidentified_images_carry_a_burned_in_warning(testdata, tmp_path, capsys):
    """Images are written unmasked only at the user's request (--no-mask), and then the header says
    Burned In Annotation YES and the summary lists them; a masked export has no warning."""
    src = testdata / REGION_FILES[0]
    assert str(pydicom.dcmread(src, stop_before_pixels=True).get("BurnedInAnnotation", "")).upper() != "NO"
    pdf = testdata / "pdf_encapsulated_orthanc_sample.dcm"
    rc = cli_main(["export", str(src), str(pdf), "--deidentify", "--dest", str(tmp_path / "a")])
    out = capsys.readouterr().out
    assert rc == 0 and "warning" not in out and "masked: 1 image(s) (regions 1)" in out, out  # the PDF is no image
    text_ct = _ct_with_burned_in_text(tmp_path)
    rc = cli_main(["export", str(src), str(text_ct), "--deidentify", "--no-mask", "--dest", str(tmp_path / "b")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "written unmasked at your request (--no-mask; Burned In Annotation YES): 1 image(s)" in out, out
    assert "warning: 1 image(s) written unmasked at your request" in out
    assert "masked: 1 image(s) (regions 1)" in out  # --no-mask still masks what can be masked


def test_pictures_export_keeps_reports_as_deidentified_text(testdata, tmp_path, capsys):
    """A study exported as MP4/PNG for teaching keeps its SR/KOS as readable text (de-identified:
    the OsiriX SR has the patient's name and ID in its text), beside the pictures; a PDF cannot
    become pictures and says so."""
    sr = testdata / "sr_basic_text_osirix_annotations.dcm"
    orig = pydicom.dcmread(sr)
    cine = testdata / "usmf_sonosite_jpeg_ybr422_30f.dcm"
    rc = cli_main(["export", str(cine), str(sr), "--deidentify", "--mask-burned-in", "--format", "mp4",
                   "--dest", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert rc == 0 and "exported 2 of 2" in out and "report written as text" in out, out
    (txt,) = (tmp_path / "out").rglob("*.txt")
    text = txt.read_text(encoding="utf-8")
    assert "Annotations" in text and "isKeyImage = 1;" in text
    for v in (str(orig.PatientName), str(orig.PatientID), str(orig.StudyInstanceUID)):
        assert v not in text, v
    rc = cli_main(["export", str(testdata / "pdf_encapsulated_orthanc_sample.dcm"), "--deidentify", "--format", "png",
                   "--dest", str(tmp_path / "out2")])
    assert rc == 1 and "export it as DICOM" in capsys.readouterr().out


# -- masking by default (issue 10 item 4, hazard HAZ-003 C4) --------------------------------------
CT_TEXT_SOURCE = "dicomdir_pydicom_ct_mr_2patients/77654033/CT2/17106"


def _ct_with_burned_in_text(tmp_path: Path) -> Path:
    """A corpus CT whose header says text is burned into its pixels (so it is not exempt as a CT) and in which
    the masking core finds no image area: an image that cannot be made safe."""
    from conftest import TESTDATA

    ds = pydicom.dcmread(TESTDATA / CT_TEXT_SOURCE)
    ds.BurnedInAnnotation = "YES"
    out = tmp_path / "ct_with_text.dcm"
    ds.save_as(out)
    return out


def _codes(ds) -> list[str]:
    return [c.CodeValue for c in ds.DeidentificationMethodCodeSequence]


def test_default_export_masks_a_us_image_with_regions(testdata, tmp_path, capsys):
    """`export --deidentify` with no masking option: outside the US regions every pixel is zero, inside them
    the original pixels (except words of the patient's own identifiers OCR finds there), Burned In Annotation
    NO, Clean Pixel Data (113101) in the De-identification Method Code Sequence."""
    import copy

    src = testdata / "us_siemens_s2000_rgb_explicit_le.dcm"
    rc = cli_main(["export", str(src), "--deidentify", "--dest", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0 and "masked: 1 image(s) (regions 1)" in out, out
    (written,) = tmp_path.rglob("*.dcm")
    o, n = pydicom.dcmread(src), pydicom.dcmread(written)
    regions = masking.ultrasound_regions(o)
    assert regions
    a, b = o.pixel_array, n.pixel_array
    region = masking.keep_mask(o.Rows, o.Columns, regions)
    keep = masking.keep_area_or_detect(copy.deepcopy(o)).mask(o.Rows, o.Columns)
    assert not (keep & ~region).any() and keep.sum() >= 0.97 * region.sum()
    assert not b[~region].any()
    assert np.array_equal(a[keep], b[keep])
    assert a[~region].any()  # there was something to blank
    assert n.BurnedInAnnotation == "NO" and n.PatientIdentityRemoved == "YES"
    assert "113101" in _codes(n)
    assert n.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian


@pytest.mark.parametrize(
    "name, syntax",
    [
        ("us_philips_cx50_palette_rle.dcm", pydicom.uid.RLELossless),
        ("us_philips_iu22_mono2_jpegls_lossless.dcm", pydicom.uid.JPEGLSLossless),
        ("us_ge_logiq700_j2k_lossy_ybr_ict.dcm", pydicom.uid.JPEG2000Lossless),
        ("usmf_hp_jpeg_ybr422_34f.dcm", pydicom.uid.ExplicitVRLittleEndian),
    ],
)
def test_masked_dicom_keeps_its_transfer_syntax_family_or_says_what_it_became(testdata, tmp_path, name, syntax):
    """Masked pixels are re-encoded losslessly in the original's family; lossy JPEG is stored uncompressed
    (re-compressing would change the kept pixels) and the item's note says so. What is written decodes to
    exactly the masked pixels."""
    import copy

    src = testdata / name
    o = pydicom.dcmread(src)
    rep = export([src], tmp_path, ExportOptions())
    assert rep.ok, rep.items[0].error
    it = rep.items[0]
    n = pydicom.dcmread(it.outputs[0])
    assert n.file_meta.TransferSyntaxUID == syntax
    if syntax != o.file_meta.TransferSyntaxUID:
        assert f"stored as {syntax.name}" in it.note, it.note
    else:
        assert "stored as" not in it.note
    if syntax == pydicom.uid.JPEG2000Lossless:
        assert n.PhotometricInterpretation == "YBR_RCT"  # lossless colour JPEG 2000, as the US IOD wants
    expected = copy.deepcopy(o)
    masking.clean_dataset_pixels(expected, area=masking.keep_area_or_detect(copy.deepcopy(o)))
    assert np.array_equal(n.pixel_array, expected.pixel_array)
    assert n.BurnedInAnnotation == "NO" and "113101" in _codes(n)


def test_an_image_that_cannot_be_made_safe_is_refused_unless_no_mask(tmp_path, capsys):
    """No regions, no template, and the masking core finds no image area: nothing is written, the summary
    lists it with the reason and the command exits 1; with --no-mask it is written unmasked, says Burned In
    Annotation YES, has no Clean Pixel Data code, and the summary lists it."""
    src = _ct_with_burned_in_text(tmp_path)
    rc = cli_main(["export", str(src), "--deidentify", "--dest", str(tmp_path / "a")])
    out = capsys.readouterr().out
    assert rc == 1, out
    assert not list((tmp_path / "a").rglob("*.dcm"))
    assert "refused, not written" in out and f"[1/1] {src.name}: hidden: may show identifiers" in out, out
    assert "exported 0 of 1" in out
    for fmt in ("png", "mp4"):  # every format refuses it
        rc = cli_main(["export", str(src), "--deidentify", "--format", fmt, "--dest", str(tmp_path / fmt)])
        assert rc == 1 and not list((tmp_path / fmt).rglob("*.*")), capsys.readouterr().out
    capsys.readouterr()
    rc = cli_main(["export", str(src), "--deidentify", "--no-mask", "--dest", str(tmp_path / "b")])
    out = capsys.readouterr().out
    assert rc == 0, out
    (written,) = (tmp_path / "b").rglob("*.dcm")
    assert "written unmasked at your request" in out and str(written.relative_to(tmp_path / "b")) in out
    n = pydicom.dcmread(written)
    assert n.BurnedInAnnotation == "YES" and n.PatientIdentityRemoved == "YES"
    assert "113101" not in _codes(n)
    assert np.array_equal(n.pixel_array, pydicom.dcmread(src).pixel_array)  # unmasked, as asked


def test_png_export_masks_with_the_detected_area(testdata, tmp_path):
    """PNG of an image without regions or template: masked with the area the masking core finds (not just its
    rectangles: a detected area has none)."""
    import copy

    src = testdata / NO_REGION
    o = pydicom.dcmread(src)
    rep = export([src], tmp_path, ExportOptions(fmt="png"))
    assert rep.ok and rep.items[0].masked_by == "detected", rep.items[0].error
    img = _png_decode(rep.items[0].outputs[0])
    keep = masking.keep_area_or_detect(copy.deepcopy(o)).mask(o.Rows, o.Columns)
    assert 0.2 < keep.mean() < 0.99
    assert not img[~keep].any()
    assert np.array_equal(img[keep], o.pixel_array[keep])


def test_masked_output_has_no_new_dciodvfy_errors(testdata, tmp_path):
    """dicom3tools' dciodvfy finds no error in a default (masked) export that it did not find in the original,
    for every ultrasound file of the corpus."""
    import subprocess

    def errors(p: Path) -> set[str]:
        r = subprocess.run(["dciodvfy", str(p)], capture_output=True, text=True, timeout=60)
        return {line.split(" - ", 1)[-1] for line in (r.stdout + r.stderr).splitlines() if line.startswith("Error")}

    files = sorted(p for p in testdata.glob("*.dcm") if p.name.startswith(("us_", "usmf_")))
    assert len(files) >= 19
    masked = export(files, tmp_path / "m", ExportOptions())
    assert masked.ok
    new = {}
    for m in masked.items:
        assert m.mask_state == "masked"
        extra = errors(m.outputs[0]) - errors(m.source)
        if extra:
            new[m.source.name] = sorted(extra)
    assert not new, new
