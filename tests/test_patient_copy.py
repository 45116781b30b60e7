"""Issue 10.11: `mdtviewer export --patient-copy`: the patient's identity kept, staff identities removed
(Operators' Name, Performing/Referring/Reading Physician's Name, nested person identification, Station
Name), burned-in text masked, DICOM plus PNG (still) / MP4 (cine), optionally encrypted.  Real corpus
images, copied into tmp_path with pydicom and given staff names; the CLI entry point is run."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from mdtviewer.cli.export import main as export_main

STILL = "us_siemens_s2000_rgb_explicit_le.dcm"
CINE = "usmf_sonosite_jpeg_ybr422_30f.dcm"
STAFF = {"OperatorsName": "Sonographer^Sam", "PerformingPhysicianName": "Perform^Pat",
         "ReferringPhysicianName": "Refer^Rob", "NameOfPhysiciansReadingStudy": "Reader^Rita",
         "StationName": "US-ROOM-3"}


def with_staff(src: Path, dst: Path) -> Path:
    ds = pydicom.dcmread(src)
    for kw, v in STAFF.items():
        setattr(ds, kw, v)
    who = Dataset()
    who.PersonName = "Nested^Nina"  # a staff name inside a sequence
    who.InstitutionName = "Lab"
    ds.OperatorIdentificationSequence = [who]
    dst.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(dst, enforce_file_format=False)
    return dst


@pytest.fixture
def inputs(tmp_path, testdata) -> list[Path]:
    return [with_staff(testdata / STILL, tmp_path / "in" / "still.dcm"),
            with_staff(testdata / CINE, tmp_path / "in" / "cine.dcm")]


def all_person_names(ds) -> set[str]:
    out = set()
    for elem in ds.iterall():
        if elem.VR == "PN" and elem.value:
            out.add(elem.keyword)
    return out


def test_patient_copy_keeps_patient_removes_staff_and_writes_viewer_free_set(inputs, tmp_path, capsys):
    dest = tmp_path / "copy"
    rc = export_main([str(p) for p in inputs] + ["--patient-copy", "--dest", str(dest)])
    out, err = capsys.readouterr()
    assert rc == 0, out + err
    assert "PATIENT COPY" in out
    dcms = sorted(dest.rglob("*.dcm"))
    assert len(dcms) == 2
    assert len(list(dest.rglob("*.png"))) == 1 and len(list(dest.rglob("*.mp4"))) == 1
    for src in inputs:
        s = pydicom.dcmread(src, stop_before_pixels=True)
        got = next(pydicom.dcmread(d) for d in dcms
                   if pydicom.dcmread(d, stop_before_pixels=True).SOPInstanceUID == s.SOPInstanceUID)
        # the patient's own identity is kept, unchanged
        for kw in ("PatientName", "PatientID", "PatientBirthDate", "StudyInstanceUID", "StudyDate"):
            assert str(got.get(kw, "")) == str(s.get(kw, "")), kw
        # no staff identity anywhere, nested ones included
        for kw in STAFF:
            assert kw not in got, kw
        assert "OperatorIdentificationSequence" not in got
        assert all_person_names(got) <= {"PatientName", "PatientBirthName", "PatientMotherBirthName",
                                         "OtherPatientNames", "ResponsiblePerson"}
        raw = Path(next(d for d in dcms if pydicom.dcmread(d, stop_before_pixels=True).SOPInstanceUID
                        == s.SOPInstanceUID)).read_bytes()
        for v in [*STAFF.values(), "Nested^Nina"]:
            assert v.encode() not in raw, v
        assert got.get("BurnedInAnnotation") == "NO"  # masked (operator initials on screen go with the text)
    # the patient's name is not printed (stdout carries output names only)
    name = str(pydicom.dcmread(inputs[0], stop_before_pixels=True).PatientName)
    assert name.split("^")[0] not in out


def test_patient_copy_options_and_encryption(inputs, tmp_path, capsys, monkeypatch, testdata):
    assert export_main([str(inputs[0]), "--patient-copy", "--deidentify", "--dest", str(tmp_path / "x")]) == 2
    assert export_main([str(inputs[0]), "--patient-copy", "--format", "png", "--dest", str(tmp_path / "x")]) == 2
    capsys.readouterr()
    # report documents name staff: not in a patient copy, said plainly (not a burned-in refusal)
    rc = export_main([str(inputs[0]), str(testdata / "sr_comprehensive_offis_test.dcm"), "--patient-copy",
                      "--dest", str(tmp_path / "y")])
    out, _err = capsys.readouterr()
    assert rc == 1 and "report documents name the staff" in out and "refused" not in out
    # optionally encrypted: one AES-256 7z archive, no plain files left in DEST
    monkeypatch.setenv("MDTVIEWER_ARCHIVE_PASSWORD", "correct horse battery staple 42")
    dest = tmp_path / "enc"
    rc = export_main([str(p) for p in inputs] + ["--patient-copy", "--encrypt", "--dest", str(dest)])
    out, err = capsys.readouterr()
    assert rc == 0, out + err
    files = [p for p in dest.rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].suffix == ".7z" and files[0].stat().st_size > 1000
