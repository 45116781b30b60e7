"""Studies made with pydicom from corpus files for the PACS tests: one Patient ID under different issuers
(identity is Patient ID + Issuer of Patient ID: HAZ-027), and a large study of many copies of one image."""

from __future__ import annotations

from pathlib import Path

import pydicom
from pydicom.uid import generate_uid


def issuer_study(src: Path, tmp_path: Path, patient_id: str, issuer: str | None, name: str,
                 date: str) -> tuple[Path, str]:
    """Corpus file *src* made into a study of its own for *patient_id* of *issuer* (None: no Issuer of
    Patient ID at all), named *name*, dated *date*; (its path, its Study Instance UID)."""
    ds = pydicom.dcmread(src)
    ds.PatientID, ds.PatientName, ds.StudyDate = patient_id, name, date
    if issuer is None:
        if "IssuerOfPatientID" in ds:
            del ds.IssuerOfPatientID
    else:
        ds.IssuerOfPatientID = issuer
    ds.StudyInstanceUID, ds.SeriesInstanceUID = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    path = tmp_path / f"{name.split('^')[0]}_{issuer or 'none'}_{date}.dcm"
    ds.save_as(path, enforce_file_format=False)
    return path, str(ds.StudyInstanceUID)


def big_study(testdata: Path, folder: Path, n: int) -> tuple[str, dict[str, bytes]]:
    """*n* copies (2.3 MB each) of the corpus Siemens image as one new study in *folder*; (its Study
    Instance UID, {SOP Instance UID: pixel bytes})."""
    folder.mkdir(parents=True, exist_ok=True)
    study = generate_uid()
    src = pydicom.dcmread(testdata / "us_siemens_s2000_rgb_explicit_le.dcm")
    out = {}
    for i in range(n):
        src.StudyInstanceUID = study
        src.SOPInstanceUID = generate_uid()
        src.file_meta.MediaStorageSOPInstanceUID = src.SOPInstanceUID
        src.InstanceNumber = i + 1
        src.save_as(folder / f"b{i:03d}.dcm")
        out[str(src.SOPInstanceUID)] = bytes(src.PixelData)
    return study, out
