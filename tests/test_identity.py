"""Issue 10.6: patient identity is Patient ID + Issuer of Patient ID; names never merge; no ID = its own patient.

The corpus copies are made in tmp_path with pydicom (dcmread, set PatientID / IssuerOfPatientID /
PatientName / StudyInstanceUID / StudyDate, save_as): the originals are read in place, never changed.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
import pytestqt  # noqa: F401  (a test dependency: fail, never skip)
from pydicom.uid import generate_uid

from mdtviewer.dicom.index import scan
from mdtviewer.workflows.mdt_session import MDTSession

CINE = "usmf_hp_jpeg_ybr422_34f.dcm"
STILL = "us_esaote_ybr422_uncompressed.dcm"


def copy(src: Path, dst: Path, *, pid: str, name: str, date: str, issuer: str | None = None) -> Path:
    ds = pydicom.dcmread(src)
    ds.PatientID = pid
    ds.PatientName = name
    if issuer is None:
        if "IssuerOfPatientID" in ds:
            del ds.IssuerOfPatientID
    else:
        ds.IssuerOfPatientID = issuer
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    if "file_meta" in dir(ds) and ds.file_meta is not None:
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyDate = date
    dst.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(dst, enforce_file_format=False)
    return dst


def tree_texts(model) -> list[str]:
    out, stack = [], [model.item(r) for r in range(model.rowCount())]
    while stack:
        it = stack.pop()
        out.append(it.text())
        stack.extend(it.child(r) for r in range(it.rowCount()) if it.child(r) is not None)
    return out


@pytest.fixture
def anonymised(tmp_path, testdata) -> list[Path]:
    """The issue's case: a cine and a still with no Patient ID, both 'Anonymized', years apart."""
    return [
        copy(testdata / CINE, tmp_path / "a" / "cine.dcm", pid="", name="Anonymized", date="20190301"),
        copy(testdata / STILL, tmp_path / "b" / "still.dcm", pid="", name="Anonymized", date="20230915"),
    ]


MR = "dicomdir_pydicom_ct_mr_2patients/98892003/MR700/4648"


def test_a_cine_and_an_mr_without_id_or_name_are_not_each_others_prior(tmp_path, testdata):
    files = [
        copy(testdata / CINE, tmp_path / "cine.dcm", pid="", name="", date="20190301"),
        copy(testdata / MR, tmp_path / "mr.dcm", pid="", name="", date="20180101"),
    ]
    idx = scan(files)
    pts = list(idx.patients.values())
    assert len(pts) == 2 and all(not p.identified and len(p.studies) == 1 for p in pts)
    assert not pts[0].same_patient(pts[1])


def test_studies_without_patient_id_are_never_merged(anonymised):
    idx = scan(anonymised)
    pts = list(idx.patients.values())
    assert len(pts) == 2, "two studies without a Patient ID became one patient"
    assert all(not p.identified and len(p.studies) == 1 for p in pts)
    assert not pts[0].same_patient(pts[1]) and pts[0].same_patient(pts[0])
    assert sorted(p.no_id_label() for p in pts) == [
        "No patient ID (study 2019-03-01)",
        "No patient ID (study 2023-09-15)",
    ]


def test_identity_is_id_plus_issuer_never_the_name(tmp_path, testdata):
    files = [
        copy(testdata / CINE, tmp_path / "1.dcm", pid="H123", issuer="TRUST-A", name="Smith^Ann", date="20200101"),
        # same ID and issuer, the name spelt differently: the same patient
        copy(testdata / STILL, tmp_path / "2.dcm", pid="H123", issuer="TRUST-A", name="SMITH^ANNE", date="20210101"),
        # the same ID from another issuer: another patient
        copy(testdata / STILL, tmp_path / "3.dcm", pid="H123", issuer="TRUST-B", name="Smith^Ann", date="20220101"),
        # the same name with no ID: never merged with anybody
        copy(testdata / CINE, tmp_path / "4.dcm", pid="", name="Smith^Ann", date="20230101"),
    ]
    idx = scan(files)
    by_studies = sorted((len(p.studies), p.issuer, p.identified) for p in idx.patients.values())
    assert by_studies == [(1, "", False), (1, "TRUST-B", True), (2, "TRUST-A", True)]


def test_window_lists_no_id_studies_apart_and_presenter_adds_no_other_patient(qtbot, window, anonymised):
    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        window.open_paths([str(f) for f in anonymised])
    uids = [pydicom.dcmread(f, stop_before_pixels=True).StudyInstanceUID for f in anonymised]
    window.show_study(uids[0])
    qtbot.waitUntil(lambda: window.browser.current_study == uids[0], timeout=10_000)
    texts = "\n".join(window.visible_texts() + tree_texts(window.browser.model))
    assert "No patient ID (study 2019-03-01)" in texts and "No patient ID (study 2023-09-15)" in texts
    assert "[prior]" not in texts and "[later]" not in texts and "[other study]" not in texts
    assert len(window.patients()) == 2
    p = window.presenter
    s = MDTSession(title="MDT")
    s.add_case(uids[0], label="Case A")
    p.set_session(s)
    # no other imaging for a patient without an ID, even when the session names one
    st0, st1 = window.study(uids[0]), window.study(uids[1])
    assert p._related_studies(s.cases[0], st0) == []
    s.cases[0].related.append({"study_uid": uids[1], "source": "local"})
    assert p._related_studies(s.cases[0], st0) == []
    # and the menu action refuses to lay the other study beside the case
    s.cases[0].related.clear()
    p.case_list.setCurrentRow(0)
    window.show_study(uids[1])
    qtbot.waitUntil(lambda: window.current_study() is st1, timeout=10_000)
    p.add_current_as_related()
    assert s.cases[0].related == []
    assert "not the same identified patient" in window.statusBar().currentMessage()


def test_presenter_lays_the_same_identified_patients_prior_beside_the_case(qtbot, window, tmp_path, testdata):
    files = [
        copy(testdata / CINE, tmp_path / "1.dcm", pid="H77", issuer="TRUST-A", name="Doe^J", date="20240101"),
        copy(testdata / STILL, tmp_path / "2.dcm", pid="H77", issuer="TRUST-A", name="Doe^J", date="20200101"),
        copy(testdata / STILL, tmp_path / "3.dcm", pid="H77", issuer="TRUST-B", name="Doe^J", date="20210101"),
    ]
    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        window.open_paths([str(f) for f in files])
    uids = [pydicom.dcmread(f, stop_before_pixels=True).StudyInstanceUID for f in files]
    s = MDTSession(title="MDT")
    s.add_case(uids[0], label="Case A")
    window.presenter.set_session(s)
    related = window.presenter._related_studies(s.cases[0], window.study(uids[0]))
    assert [r.study_instance_uid for r in related] == [uids[1]]  # not the other issuer's patient
