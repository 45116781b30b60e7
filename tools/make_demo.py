"""Regenerate the bundled demo study from pydicom's own MIT-licensed test files.

Run with the project's venv:  .venv/bin/python tools/make_demo.py

What it writes (one demo patient, ``DEMO^Vascular``):
- study 1 (2024-01-15, "Carotid duplex (demo)"):
  - series 1: SonoSite ultrasound cine, 30 frames at 30 fps (pydicom ``examples_ybr_color.dcm``)
  - series 2: Philips CX50 palette-colour still with calibrated regions (``examples_palette.dcm``)
  - series 3: Basic Text SR (``reportsi.dcm``, OFFIS) whose image references now point at series 1 and 2
  - series 4: Key Object Selection naming the still as a key image (made here)
  - series 5: an encapsulated PDF report (PDF written here, plain text)
- study 2 (2023-02-10, a prior): GE LOGIQ 700 RGB still (``examples_rgb_color.dcm``)

UIDs are derived deterministically so the files are reproducible.  Only the
identifying header fields are replaced; pixels are untouched (the images keep
the scanners' burned-in test-patient text).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from mdtviewer.infra.minipdf import one_page_pdf

HERE = Path(__file__).resolve().parent.parent / "mdtviewer" / "resources" / "demo"  # the bundled demo
ROOT = "mdtviewer-demo-v1"

PATIENT = {
    "PatientName": "DEMO^Vascular",
    "PatientID": "DEMO-0001",
    "PatientBirthDate": "19500101",
    "PatientSex": "O",
}
SITE = {
    "InstitutionName": "Demo Vascular Lab",
    "InstitutionalDepartmentName": "Vascular Science",
    "ReferringPhysicianName": "DEMO^Referrer",
}
STUDY = {
    "StudyInstanceUID": generate_uid(entropy_srcs=[ROOT, "study1"]),
    "StudyDate": "20240115",
    "StudyTime": "101500",
    "StudyDescription": "Carotid duplex (demo)",
    "AccessionNumber": "DEMO0001",
    "StudyID": "1",
}
PRIOR = {
    "StudyInstanceUID": generate_uid(entropy_srcs=[ROOT, "study0"]),
    "StudyDate": "20230210",
    "StudyTime": "093000",
    "StudyDescription": "Carotid duplex (demo prior)",
    "AccessionNumber": "DEMO0000",
    "StudyID": "0",
}


def uid(*parts: str) -> str:
    return generate_uid(entropy_srcs=[ROOT, *parts])


def _scrub(ds: Dataset) -> None:
    for kw in (
        "OtherPatientIDs",
        "OtherPatientNames",
        "PatientAge",
        "PatientAddress",
        "OperatorsName",
        "PerformingPhysicianName",
        "InstitutionAddress",
        "StationName",
        "DeviceSerialNumber",
    ):
        if kw in ds:
            delattr(ds, kw)


def restamp(ds: Dataset, study: dict, series_no: int, series_desc: str, name: str) -> Dataset:
    _scrub(ds)
    for k, v in {**PATIENT, **SITE, **study}.items():
        setattr(ds, k, v)
    ds.SeriesInstanceUID = uid(study["StudyID"], "series", str(series_no))
    ds.SeriesNumber = series_no
    ds.SeriesDescription = series_desc
    ds.InstanceNumber = 1
    ds.SOPInstanceUID = uid(name)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if "ContentDate" in ds or ds.get("Modality") in ("SR", "KO", "DOC"):
        ds.ContentDate = study["StudyDate"]
        ds.ContentTime = study["StudyTime"]
    return ds


def _meta(sop_class: str, sop_uid: str) -> FileMetaDataset:
    fm = FileMetaDataset()
    fm.MediaStorageSOPClassUID = sop_class
    fm.MediaStorageSOPInstanceUID = sop_uid
    fm.TransferSyntaxUID = ExplicitVRLittleEndian
    return fm


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    c = Dataset()
    c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = value, scheme, meaning
    return c


def _image_ref(ds: Dataset, frame: int | None = None) -> Dataset:
    r = Dataset()
    r.ReferencedSOPClassUID = ds.SOPClassUID
    r.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    if frame is not None:
        r.ReferencedFrameNumber = frame
    return r


def _evidence(images: list[Dataset]) -> Sequence:
    by_series: dict[str, list[Dataset]] = {}
    for im in images:
        by_series.setdefault(im.SeriesInstanceUID, []).append(im)
    st = Dataset()
    st.StudyInstanceUID = images[0].StudyInstanceUID
    st.ReferencedSeriesSequence = Sequence()
    for se_uid, ims in by_series.items():
        se = Dataset()
        se.SeriesInstanceUID = se_uid
        se.ReferencedSOPSequence = Sequence([_image_ref(i) for i in ims])
        st.ReferencedSeriesSequence.append(se)
    return Sequence([st])


def make_sr(cine: Dataset, still: Dataset) -> Dataset:
    ds = pydicom.dcmread(get_testdata_file("reportsi.dcm"))
    restamp(ds, STUDY, 3, "Report (demo)", "sr")
    ds.Modality = "SR"
    refs = iter([(cine, 12), (still, None)])

    ds.ConceptNameCodeSequence[0].CodeMeaning = "Carotid duplex findings (demo)"

    def walk(items) -> None:
        for it in items:
            concept = it.ConceptNameCodeSequence[0].CodeMeaning if "ConceptNameCodeSequence" in it else ""
            if it.get("ValueType") == "TEXT" and concept == "Report Text":
                it.TextValue = "Demo finding: no haemodynamically significant stenosis (illustration only)."
            elif it.get("ValueType") == "TEXT" and "Organization" in concept:
                it.TextValue = "Demo Vascular Lab"
            elif it.get("ValueType") == "PNAME":
                it.PersonName = "DEMO^Scientist"
            if it.get("ValueType") == "IMAGE":
                im, frame = next(refs, (still, None))
                it.ReferencedSOPSequence = Sequence([_image_ref(im, frame)])
            walk(it.get("ContentSequence", []))

    walk(ds.ContentSequence)
    ds.CurrentRequestedProcedureEvidenceSequence = _evidence([cine, still])
    return ds


def make_kos(still: Dataset, cine: Dataset) -> Dataset:
    sop_class = "1.2.840.10008.5.1.4.1.1.88.59"
    ds = Dataset()
    ds.file_meta = _meta(sop_class, "")
    ds.SOPClassUID = sop_class
    ds.Modality = "KO"
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.Manufacturer = "mdtviewer demo"
    restamp(ds, STUDY, 4, "Key images (demo)", "kos")
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    ds.ConceptNameCodeSequence = Sequence([_code("113000", "DCM", "Of Interest")])
    tmpl = Dataset()
    tmpl.MappingResource, tmpl.TemplateIdentifier = "DCMR", "2010"
    ds.ContentTemplateSequence = Sequence([tmpl])
    items = []
    for im, frame in ((still, None), (cine, 12)):
        it = Dataset()
        it.RelationshipType, it.ValueType = "CONTAINS", "IMAGE"
        it.ReferencedSOPSequence = Sequence([_image_ref(im, frame)])
        items.append(it)
    ds.ContentSequence = Sequence(items)
    ds.ReferencedPerformedProcedureStepSequence = Sequence()
    ds.CurrentRequestedProcedureEvidenceSequence = _evidence([still, cine])
    return ds


def minimal_pdf(lines: list[str]) -> bytes:
    """A one-page PDF with Helvetica text (mdtviewer.infra.minipdf: no PDF library needed)."""
    return one_page_pdf(lines)


def make_pdf() -> Dataset:
    sop_class = "1.2.840.10008.5.1.4.1.1.104.1"
    ds = Dataset()
    ds.file_meta = _meta(sop_class, "")
    ds.SOPClassUID = sop_class
    ds.Modality = "DOC"
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.Manufacturer = "mdtviewer demo"
    restamp(ds, STUDY, 5, "PDF report (demo)", "pdf")
    ds.DocumentTitle = "Carotid duplex report (demo)"
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.BurnedInAnnotation = "YES"
    ds.ConversionType = "WSD"
    ds.AcquisitionDateTime = ""
    ds.ConceptNameCodeSequence = Sequence([_code("18748-4", "LN", "Diagnostic Imaging Report")])
    pdf = minimal_pdf(
        [
            "Demo Vascular Lab - Carotid duplex report (DEMO DATA, not a real patient)",
            "",
            "Patient: DEMO^Vascular   ID: DEMO-0001",
            "Right ICA: no plaque seen. PSV within normal limits.",
            "Left ICA: no haemodynamically significant stenosis.",
            "Vertebral arteries: antegrade flow bilaterally.",
            "",
            "Images: pydicom example files (MIT licence), restamped for this demo.",
        ]
    )
    if len(pdf) % 2:
        pdf += b"\n"
    ds.EncapsulatedDocument = pdf
    return ds


def main() -> int:
    cine = restamp(pydicom.dcmread(get_testdata_file("examples_ybr_color.dcm")), STUDY, 1, "Cine (demo)", "cine")
    still = restamp(pydicom.dcmread(get_testdata_file("examples_palette.dcm")), STUDY, 2, "Key still (demo)", "still")
    rgb = pydicom.dcmread(get_testdata_file("examples_rgb_color.dcm"))
    prior = restamp(rgb, PRIOR, 1, "Prior still (demo)", "prior")
    sr = make_sr(cine, still)
    kos = make_kos(still, cine)
    pdf = make_pdf()
    out = {
        "study1_series1_cine.dcm": cine,
        "study1_series2_still.dcm": still,
        "study1_series3_sr.dcm": sr,
        "study1_series4_kos.dcm": kos,
        "study1_series5_pdf.dcm": pdf,
        "study0_prior_still.dcm": prior,
    }
    for name, ds in out.items():
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(HERE / name, enforce_file_format=True)
    total = sum((HERE / n).stat().st_size for n in out)
    print(f"wrote {len(out)} files, {total / 1e6:.2f} MB, to {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
