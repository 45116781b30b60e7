"""QA finding 22: `mdtviewer check` printed paths whose folders are named by Patient ID (a DICOMDIR file-set)
or by the patient's name and birth date.  Paths are now printed relative to the PATH given, with every part
that spells the file's patient's ID, a name part or the birth date replaced by a placeholder; --show-paths
prints them whole.  Output format, totals and exit codes are otherwise unchanged.
"""

from __future__ import annotations

import json
import shutil

import pydicom

from mdtviewer.cli import check

DICOMDIR_SET = "dicomdir_pydicom_ct_mr_2patients"
CR = f"{DICOMDIR_SET}/77654033/CR1/6154"  # 77654033 is the Patient ID of Doe^Archibald


def _run(capsys, argv):
    rc = check.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_a_folder_named_by_patient_id_is_not_printed_unless_asked(testdata, capsys):
    pid = str(pydicom.dcmread(testdata / CR, stop_before_pixels=True).PatientID)
    assert pid == "77654033"
    rc, out, _err = _run(capsys, ["--jobs", "2", str(testdata)])
    assert rc == 1  # the damaged files of the corpus, as before
    assert pid not in out and str(testdata) not in out
    line = next(x for x in out.splitlines() if x.endswith("s") and "/CR1/6154" in x)
    assert line.split()[:3] == ["OK", "image", f"{DICOMDIR_SET}/<patient-id>/CR1/6154"]
    assert "16x16 MONOCHROME1 1/1 frames" in line
    summary = out.splitlines()[-1]
    assert summary.startswith("70 checked: 59 ok, 11 not ok (3 unreadable)")
    # a file given by name is printed by its name
    rc, out, _err = _run(capsys, [str(testdata / "us_ge_logiq700_rgb_explicit_le.dcm")])
    assert rc == 0 and out.split()[2] == "us_ge_logiq700_rgb_explicit_le.dcm"

    # asked: whole paths (--show-paths), and with --show-identifiers (which prints the ID anyway)
    rc, out, _err = _run(capsys, ["--jobs", "2", "--show-paths", str(testdata / DICOMDIR_SET)])
    assert rc == 0 and str(testdata / CR) in out
    rc, out, _err = _run(capsys, ["--jobs", "2", "--show-identifiers", str(testdata / DICOMDIR_SET)])
    assert rc == 0 and str(testdata / CR) in out and "[patient Doe^Archibald / 77654033]" in out


def test_json_paths_are_shown_the_same_way(testdata, capsys):
    rc, out, err = _run(capsys, ["--json", "--jobs", "2", str(testdata / DICOMDIR_SET)])
    assert rc == 0 and "checked" in err
    recs = [json.loads(x) for x in out.splitlines()]
    assert len(recs) == 31 and "77654033" not in out and "98890234" not in out
    assert f"{DICOMDIR_SET}/<patient-id>/CR1/6154".split("/", 1)[1] in {r["path"] for r in recs}
    rc, out, _err = _run(capsys, ["--json", "--jobs", "2", "--show-paths", str(testdata / DICOMDIR_SET)])
    assert str(testdata / CR) in {json.loads(x)["path"] for x in out.splitlines()}


def test_a_folder_named_after_the_patient_and_birth_date(tmp_path, testdata, capsys):
    """An export folder named 'SMITH_JOHN_1950-03-14' (a patient of the corpus file renamed with pydicom), and
    a damaged file beside it in a folder named by that patient's ID: neither name reaches stdout."""
    ds = pydicom.dcmread(testdata / "us_ge_logiq700_rgb_explicit_le.dcm")
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Smith^John", "RX55012", "19500314"
    folder = tmp_path / "exports" / "SMITH_JOHN_1950-03-14"
    folder.mkdir(parents=True)
    ds.save_as(folder / "carotid_smith.dcm", enforce_file_format=False)
    bad = tmp_path / "exports" / "RX55012"
    bad.mkdir()
    shutil.copyfile(testdata / "bad_truncated_dataset_rtplan.dcm", bad / "plan.dcm")
    rc, out, _err = _run(capsys, ["--jobs", "1", str(tmp_path / "exports")])
    assert rc == 1
    for needle in ("smith", "john", "1950", "rx55012", str(tmp_path).lower()):
        assert needle not in out.lower(), needle
    paths = [x.split()[2] for x in out.splitlines()[:-1]]
    assert "<name>_<name>_<birth-date>/carotid_<name>.dcm" in paths
    assert "<patient-id>/plan.dcm" in paths
    # the same folder through a link: still relative to it, still hidden
    (tmp_path / "link").symlink_to(tmp_path / "exports")
    rc, out, _err = _run(capsys, ["--jobs", "1", str(tmp_path / "link")])
    assert sorted(x.split()[2] for x in out.splitlines()[:-1]) == sorted(paths)
    rc, out, _err = _run(capsys, ["--jobs", "1", "--show-paths", str(tmp_path / "exports")])
    assert str(folder / "carotid_smith.dcm") in out and str(bad / "plan.dcm") in out
