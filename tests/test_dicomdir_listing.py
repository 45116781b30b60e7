"""A DICOMDIR is listed from its directory records (issue 12.4): no referenced file is opened to list it;
a file is read when it is shown (its header on first use of what the record lacks, its pixels when opened).

The file-set is written by pydicom's FileSet from corpus files (US images, US cines, an SR), so the
records are another writer's, minimal ones (no Number of Frames, rows or columns in IMAGE records)."""

from __future__ import annotations

import shutil
import sys
import threading
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.fileset import FileSet

from mdtviewer.dicom.dicomdir import read_file_set
from mdtviewer.dicom.index import RecordInstance, StudyIndex
from mdtviewer.dicom.reader import read_header

FILES = (
    "us_philips_cx50_palette_rle.dcm",
    "us_atl_hdi5000_jpeg_baseline_ybr422.dcm",
    "usmf_palette_rle_10f.dcm",
    "usmf_hp_jpeg_ybr422_34f.dcm",
    "sr_comprehensive_offis_test.dcm",
)

_OPENS: list[str] = []
_WATCH: list[str] = []
_HOOKED = threading.Event()


def _hook(event: str, args: tuple) -> None:
    if event == "open" and _WATCH and args and isinstance(args[0], (str, bytes, Path)):
        p = str(args[0] if not isinstance(args[0], bytes) else args[0].decode(errors="replace"))
        if p.startswith(_WATCH[0]):
            _OPENS.append(p)


def _watch(folder: Path) -> None:
    if not _HOOKED.is_set():
        sys.addaudithook(_hook)
        _HOOKED.set()
    _OPENS.clear()
    _WATCH[:] = [str(folder)]


@pytest.fixture(scope="module")
def fileset(tmp_path_factory, testdata) -> Path:
    warnings.simplefilter("ignore")
    out = tmp_path_factory.mktemp("fs")
    fs = FileSet()
    for i, name in enumerate(FILES):
        ds = pydicom.dcmread(testdata / name)
        for kw, v in {"StudyID": "1", "SeriesNumber": str(i + 1), "InstanceNumber": "1", "StudyTime": "120000",
                      "StudyDate": "20200101", "PatientID": "LISTTEST", "CompletionFlag": "COMPLETE",
                      "VerificationFlag": "UNVERIFIED", "ContentDate": "20200101", "ContentTime": "120000"}.items():
            if kw not in ds or ds[kw].value in (None, ""):
                setattr(ds, kw, v)
        fs.add(ds)
    fs.write(out)
    return out / "DICOMDIR"


def test_listing_opens_no_referenced_file(fileset: Path):
    files, problems = read_file_set(fileset)
    assert len(files) == len(FILES) and not problems
    # the truth: every referenced file's own header
    truth = {read_header(f)[0].sop_instance_uid: read_header(f) for f in files}
    _watch(fileset.parent)
    idx = StudyIndex()
    idx.add_paths(fileset)
    opened = [p for p in _OPENS if not p.endswith("DICOMDIR")]
    _WATCH.clear()
    assert opened == [], f"listing a DICOMDIR opened referenced files: {opened}"
    listed = {i.sop_instance_uid: i for i in idx.instances()}
    assert set(listed) == set(truth)
    assert {s.study_instance_uid for _p, s in idx.studies()} == {t[0].study_instance_uid for t in truth.values()}
    for uid, inst in listed.items():
        want, fields = truth[uid]
        assert isinstance(inst, RecordInstance) and not inst.header_read
        assert (inst.sop_class_uid, inst.series_instance_uid, inst.transfer_syntax, inst.kind) == (
            want.sop_class_uid, want.series_instance_uid, want.transfer_syntax, want.kind)
    assert {p.patient_id for p in idx.patients.values()} == {t[1]["PatientID"] for t in truth.values()}


def test_a_field_the_record_lacks_is_read_when_used(fileset: Path):
    idx = StudyIndex()
    idx.add_paths(fileset)
    cine = next(i for i in idx.instances() if i.kind == "cine")
    _watch(fileset.parent)
    frames, rows, cols = cine.number_of_frames, cine.rows, cine.columns  # first use: the header is read, once
    _ = cine.photometric
    opened = list(_OPENS)
    _WATCH.clear()
    want, _f = read_header(cine.path)
    assert (frames, rows, cols, cine.photometric) == (want.number_of_frames, want.rows, want.columns, want.photometric)
    assert frames > 1 and cine.header_read
    assert opened == [str(cine.path)]


def test_a_damaged_file_says_why_when_read(fileset: Path, tmp_path: Path):
    copy = tmp_path / "set"
    shutil.copytree(fileset.parent, copy)
    idx = StudyIndex()
    idx.add_paths(copy / "DICOMDIR")
    inst = next(i for i in idx.instances() if i.kind == "image")
    inst.path.write_bytes(inst.path.read_bytes()[:200])  # cut inside the header
    assert inst.error is None  # listed from the record, not checked yet
    assert inst.rows == 0 and inst.error  # read when used: the reason is there, as for a scanned file


def test_opening_a_series_shows_its_frames(fileset: Path):
    from mdtviewer.ui.viewer.workers import load_image

    idx = StudyIndex()
    idx.add_paths(fileset)
    cine = next(i for i in idx.instances() if i.kind == "cine")
    li = load_image(cine)
    assert li.error is None and li.source is not None
    want, _f = read_header(cine.path)
    assert li.n_frames == want.number_of_frames > 1
    frame = li.source.frame(li.n_frames - 1)
    assert frame.shape[0] == want.rows and frame.shape[1] == want.columns and frame.any()


def test_names_in_records_are_decoded_with_the_records_character_set(tmp_path, testdata):
    ds = pydicom.dcmread(testdata / "us_philips_cx50_palette_rle.dcm")
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName, ds.PatientID, ds.StudyDescription = "Żółć^Łukasz", "CS1", "Tętnice szyjne"
    for kw, v in {"StudyID": "1", "SeriesNumber": "1", "InstanceNumber": "1", "StudyTime": "1200",
                  "StudyDate": "20200101"}.items():
        if kw not in ds or not ds[kw].value:
            setattr(ds, kw, v)
    fs = FileSet()
    fs.add(ds)
    fs.write(tmp_path / "cs")
    idx = StudyIndex()
    idx.add_paths(tmp_path / "cs" / "DICOMDIR")
    (patient,) = idx.patients.values()
    assert patient.patient_name == "Żółć^Łukasz"
    assert isinstance(idx.instances()[0], RecordInstance)
