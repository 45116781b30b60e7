"""Studies of one Patient ID under different issuers, made with pydicom from corpus files (identity is
Patient ID + Issuer of Patient ID: HAZ-027)."""

from __future__ import annotations

from pathlib import Path

import pydicom


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
