"""QA2 #12: the export summary filed a file that is not a composite DICOM instance
(``bad_meta_missing_transfer_syntax.dcm``) under "refused, not written (may show identifiers; give
--keep-rect, set a template for the scanner, or --no-mask)", and told two damaged files (pixels that cannot
be decoded) to "set a template for this scanner".  No template would help them: they are now listed as
not exported with their own one-line reason, and only images that cannot be made safe get masking advice.

Files: corpus files read in place; the image that cannot be made safe is a corpus CT re-saved with
pydicom with Burned In Annotation YES (no regions, no template, no image area found).
"""

from __future__ import annotations

from pathlib import Path

import pydicom

from mdtviewer.cli import main as cli_main
from mdtviewer.governance.export import ExportOptions, export

NOT_INSTANCE = "bad_meta_missing_transfer_syntax.dcm"
DAMAGED = ("bad_jpeg_ts_but_raw_pixels_in_fragment.dcm", "bad_rows_cols_65535_tiny_pixeldata.dcm")
GOOD = "us_siemens_s2000_rgb_explicit_le.dcm"  # masked by its US regions
ADVICE = ("template", "keep-rect", "--no-mask", "may show identifiers")


def _cannot_be_made_safe(testdata: Path, tmp_path: Path) -> Path:
    ds = pydicom.dcmread(testdata / "dicomdir_pydicom_ct_mr_2patients/77654033/CT2/17106")
    ds.BurnedInAnnotation = "YES"
    out = tmp_path / "ct_with_text.dcm"
    ds.save_as(out)
    return out


def _section(out: str, head: str) -> list[str]:
    """The indented lines under the summary line starting with *head*."""
    lines = out.splitlines()
    start = next(i for i, x in enumerate(lines) if x.startswith(head))
    body = []
    for x in lines[start + 1:]:
        if not x.startswith("  "):
            break
        body.append(x)
    return body


def test_damaged_and_non_instances_are_not_given_masking_advice(testdata, tmp_path, capsys):
    refused_src = _cannot_be_made_safe(testdata, tmp_path)
    inputs = [testdata / NOT_INSTANCE, *(testdata / d for d in DAMAGED), testdata / GOOD, refused_src]
    rc = cli_main(["export", *map(str, inputs), "--deidentify", "--dest", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert rc == 1, out
    assert "masked: 1 image(s) (regions 1)" in out
    assert "exported 1 of 5 input(s)" in out

    refused = _section(out, "refused, not written (may show identifiers; give --keep-rect, set a template")
    assert len(refused) == 1 and refused[0].startswith("  [5/5] ct_with_text.dcm: hidden: may show identifiers")

    failed = _section(out, "not exported (unreadable, damaged or not an instance; masking does not apply): 3 file(s)")
    assert len(failed) == 3, out
    by_name = {x.split("] ", 1)[1].split(":", 1)[0]: x for x in failed}
    assert set(by_name) == {NOT_INSTANCE, *DAMAGED}
    assert "not a composite DICOM instance" in by_name[NOT_INSTANCE]
    for name in DAMAGED:
        assert "damaged: its pixels cannot be read" in by_name[name], by_name[name]
    for line in failed:
        for advice in ADVICE:
            assert advice not in line, line
    # the FAILED progress lines carry the same reasons, without the advice either
    for line in (x for x in out.splitlines() if x.startswith("FAILED") and "ct_with_text" not in x):
        assert not any(a in line for a in ADVICE), line


def test_the_report_tells_them_apart(testdata, tmp_path):
    """The library the CLI and the export dialog share: mask_state 'refused' only for the image that cannot
    be made safe; the damaged ones are refused with --no-mask too (their pixels cannot be written)."""
    refused_src = _cannot_be_made_safe(testdata, tmp_path)
    inputs = [testdata / NOT_INSTANCE, *(testdata / d for d in DAMAGED), refused_src]
    rep = export(inputs, tmp_path / "a", ExportOptions(deidentify=True))
    assert [i.source.name for i in rep.with_state("refused")] == ["ct_with_text.dcm"]
    assert sorted(i.source.name for i in rep.not_exported()) == sorted([NOT_INSTANCE, *DAMAGED])
    assert all(i.mask_state == "" and i.error for i in rep.not_exported())

    rep = export(inputs, tmp_path / "b", ExportOptions(deidentify=True, unmasked_ok=True))
    assert [i.source.name for i in rep.with_state("unmasked-at-request")] == ["ct_with_text.dcm"]
    assert sorted(i.source.name for i in rep.not_exported()) == sorted([NOT_INSTANCE, *DAMAGED])
    assert len(list((tmp_path / "b").rglob("*.dcm"))) == 1  # the CT only


def test_paths_printed_by_export_name_no_patient(testdata, tmp_path, capsys):
    """A folder and a file named after the patient (as scanners and sites do) never reach the terminal:
    export prints its inputs as ``check`` does, identifier parts replaced.  Made from the corpus CT above
    (Burned In Annotation YES, so it is refused and printed) re-saved under a made-up patient with pydicom."""
    src = _cannot_be_made_safe(testdata, tmp_path)
    ds = pydicom.dcmread(src)
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Quimby^Harriet", "MRN4471", "19510829"
    folder = tmp_path / "in" / "Quimby Harriet MRN4471"
    folder.mkdir(parents=True)
    ds.save_as(folder / "Quimby_19510829.dcm")
    assert cli_main(["export", str(tmp_path / "in"), "--deidentify", "--dest", str(tmp_path / "out")]) == 1
    out = capsys.readouterr().out
    assert "Quimby_19510829" not in out and "<patient-id>" in out  # the refused file is listed, masked
    for ident in ("Quimby", "Harriet", "MRN4471", "19510829"):
        assert ident not in out, ident
