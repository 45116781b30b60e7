"""QA2 #1 and #16: how ``mdtviewer check`` masks the identifiers a path spells.

#1: a DICOMDIR whose files are missing printed them by their File IDs, whose folders are the Patient ID
of the DICOMDIR's own PATIENT record (``cd/77654033/CR1/6154``): that patient had no file read, so the
ID was not "an identifier of a patient of the run".  The PATIENT records of the run's DICOMDIRs now count.

#16: over-masking.  ``sr_comprehensive_offis_test.dcm`` (patient ``Test^S R``) printed as
``sr_comprehensive_offis_<name>.dcm`` and the series folder ``MR1`` as ``<name>``, because another corpus
patient is ``CompressedSamples^MR1`` and any part that was exactly a name part of any patient of the run
was masked.  Now a part is split into tokens (where letters meet digits or punctuation); a token is
masked when it is the Patient ID, the birth date, or a name part of 4+ letters that is not a common word
or DICOM term; 2-3 letter name parts only where the path names that patient otherwise.

Files: the corpus in place; the QA2 #1 layout is rebuilt in tmp_path exactly as QA2 says (the DICOMDIR
and one of its three patient folders copied); renamed patients are corpus files re-saved with pydicom.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from mdtviewer.cli import check

DICOMDIR_SET = "dicomdir_pydicom_ct_mr_2patients"
HOSTILE = Path("/work/shared/hostile")


def _run(capsys, argv):
    rc = check.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def _paths(out: str) -> list[str]:
    return [x.split()[2] for x in out.splitlines() if x.startswith(("OK", "FAIL"))]


@pytest.fixture
def dd2(tmp_path, testdata) -> Path:
    """QA2 #1's steps: mkdir -p dd2/cd; cp DICOMDIR cd/; cp -r 98892001 cd/ (77654033's files are missing)."""
    cd = tmp_path / "dd2" / "cd"
    cd.mkdir(parents=True)
    shutil.copyfile(testdata / DICOMDIR_SET / "DICOMDIR", cd / "DICOMDIR")
    shutil.copytree(testdata / DICOMDIR_SET / "98892001", cd / "98892001")
    return tmp_path / "dd2"


def test_missing_files_of_a_dicomdir_do_not_print_its_patients_ids(dd2, capsys):
    ds = pydicom.dcmread(dd2 / "cd" / "DICOMDIR")
    ids = {str(r.PatientID) for r in ds.DirectoryRecordSequence if r.DirectoryRecordType == "PATIENT"}
    assert ids == {"77654033", "98890234"}  # Doe^Archibald, Doe^Peter

    rc, out, _err = _run(capsys, ["--jobs", "1", str(dd2)])
    assert rc == 1
    assert "77654033" not in out and "98890234" not in out and str(dd2) not in out
    paths = _paths(out)
    assert len(paths) == 31
    missing = [x for x in out.splitlines() if "referenced by the DICOMDIR but missing" in x]
    assert len(missing) == 24
    assert sum("cd/<patient-id>/CR1/6154  -- referenced by the DICOMDIR but missing" in x for x in missing) == 1
    assert sum(p.startswith("cd/<patient-id>/") for p in paths) == 7
    # the other folders are not identifiers (98892001/98892003 name studies): still printed, MR1 too
    assert "cd/98892003/MR1/15820" in paths and "cd/98892001/CT2N/6293" in paths

    rc, out, err = _run(capsys, ["--json", "--jobs", "1", str(dd2)])
    assert rc == 1 and "checked" in err and "77654033" not in out
    recs = [json.loads(x) for x in out.splitlines()]
    assert {"cd/<patient-id>/CR1/6154", "cd/98892003/MR1/15820"} <= {r["path"] for r in recs}

    # the DICOMDIR given by name: relative to its folder, still masked
    rc, out, _err = _run(capsys, ["--jobs", "1", str(dd2 / "cd" / "DICOMDIR")])
    assert "77654033" not in out and "<patient-id>/CR1/6154" in _paths(out)

    # asked for: whole paths
    rc, out, _err = _run(capsys, ["--jobs", "1", "--show-paths", str(dd2)])
    assert str(dd2 / "cd" / "77654033" / "CR1" / "6154") in out


@pytest.mark.skipif(not (HOSTILE / "dicomdir_absolute_path").is_dir(), reason="hostile corpus not installed")
def test_hostile_dicomdir_under_another_name(capsys):
    """hostile/dicomdir_absolute_path: DICOMDIR_patched (found by its SOP class, not its name) names the
    corpus file-set's files, none present, and one absolute path (refused)."""
    folder = HOSTILE / "dicomdir_absolute_path"
    rc, out, _err = _run(capsys, ["--jobs", "1", str(folder)])
    assert rc == 1
    assert "77654033" not in out
    paths = _paths(out)
    assert "<patient-id>/CR2/6247" in paths and "98892003/MR1/15820" in paths
    assert any("DICOMDIR_patched  -- a record of this DICOMDIR names a file outside" in x for x in out.splitlines())
    rc, out, _err = _run(capsys, ["--jobs", "1", "--json", str(folder)])
    assert "77654033" not in out and "<patient-id>/CR2/6247" in {json.loads(x)["path"] for x in out.splitlines()}


def test_common_words_and_series_folders_are_not_masked(testdata, capsys):
    """QA2 #16 on the whole corpus: Test^S R's file and the MR1 series folder keep their names; the folder
    named by Doe^Archibald's Patient ID is still masked."""
    sr = pydicom.dcmread(testdata / "sr_comprehensive_offis_test.dcm", stop_before_pixels=True)
    assert str(sr.PatientName) == "Test^S R"
    rc, out, _err = _run(capsys, ["--jobs", "2", str(testdata)])
    assert rc == 1  # the corpus' damaged files
    paths = _paths(out)
    assert "sr_comprehensive_offis_test.dcm" in paths
    assert f"{DICOMDIR_SET}/98892003/MR1/15820" in paths
    assert f"{DICOMDIR_SET}/<patient-id>/CR1/6154" in paths
    assert "<name>" not in out  # no corpus path spells a name
    assert "77654033" not in out


def _save(src: Path, dest: Path, name: str, pid: str, birth: str) -> None:
    ds = pydicom.dcmread(src)
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = name, pid, birth
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()  # not a duplicate
    dest.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(dest, enforce_file_format=False)


def test_token_rule(tmp_path, testdata, capsys):
    """Corpus US file re-saved under invented patients, in folders named after them."""
    src = testdata / "us_ge_logiq700_rgb_explicit_le.dcm"
    top = tmp_path / "exports"
    # 4+ letter name parts, the ID and the birth date, as tokens; the 3-letter surname beside them
    _save(src, top / "LEE_MARGARET_1950-03-14" / "test_margaret2.dcm", "Lee^Margaret", "RX55012", "19500314")
    _save(src, top / "LeeMargaret" / "RX55012CT.dcm", "Lee^Margaret", "RX55012", "19500314")
    # not tokens of the name: a longer word that starts with it, a word before it
    _save(src, top / "Margarethe" / "Testing.dcm", "Lee^Margaret", "RX55012", "19500314")
    # two short name parts together name the patient; one alone (a common 2-letter string) does not,
    # unless it is the whole name of the patient's own file
    _save(src, top / "li_wu" / "scan.dcm", "Wu^Li", "Q7", "")
    _save(src, top / "cases" / "li_5.dcm", "Wu^Li", "Q7", "")
    _save(src, top / "cases" / "li.dcm", "Wu^Li", "Q7", "")
    # the file's own short surname as a whole folder name
    _save(src, top / "Kim" / "a.dcm", "Kim^Jo", "Z9", "")
    # a patient called Test, and one with a series-like name part: common words stay
    _save(src, top / "test_MR1" / "study.dcm", "Test^Study", "", "")
    _save(src, top / "MR1" / "b.dcm", "CompressedSamples^MR1", "4MR1", "")
    rc, out, _err = _run(capsys, ["--jobs", "1", str(top)])
    assert rc == 0
    for needle in ("margaret", "rx55012", "1950", "lee", "li_wu", "kim"):
        assert needle not in out.lower().replace("margarethe", ""), needle
    paths = set(_paths(out))
    assert paths == {
        "<name>_<name>_<birth-date>/test_<name>2.dcm",
        "<name>/<patient-id>CT.dcm",
        "Margarethe/Testing.dcm",
        "<name>_<name>/scan.dcm",
        "cases/li_5.dcm",
        "cases/<name>.dcm",
        "<name>/a.dcm",
        "test_MR1/study.dcm",
        "MR1/b.dcm",
    }, paths


def test_identifier_tokens():
    toks = {(t, k, strong) for t, k, strong in check.identifier_tokens("Lee^Margaret", "RX55012", "19500314")}
    assert {("RX55012", "id", True), ("Margaret", "name", True), ("Lee", "name", False),
            ("LeeMargaret", "name", True), ("MargaretLee", "name", True), ("1950-03-14", "birth", True),
            ("14.03.1950", "birth", True)} <= toks
    assert check.identifier_tokens("Test^S R", "", "") == []
    assert check.identifier_tokens("CompressedSamples^MR1", "", "") == [("CompressedSamples", "name", True)]
