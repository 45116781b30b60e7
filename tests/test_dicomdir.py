"""The one DICOMDIR reader keeps to its file-set: no record may make us read a file outside the DICOMDIR's folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pydicom
import pytest

from mdtviewer.dicom.dicomdir import looks_like_dicomdir, read_file_set
from mdtviewer.dicom.index import scan

DDSET = "dicomdir_pydicom_ct_mr_2patients"
HOSTILE = Path("/work/shared/hostile/dicomdir_absolute_path/DICOMDIR_patched")
SECRET_SOURCE = "us_philips_cx50_palette_rle.dcm"

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom on the file IDs we write on purpose


def _file_set(testdata: Path, where: Path) -> Path:
    shutil.copytree(testdata / DDSET, where)
    for p in where.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return where


def _first_file_record(ds) -> pydicom.Dataset:
    return next(r for r in ds.DirectoryRecordSequence if "ReferencedFileID" in r)


def test_the_hostile_dicomdir_cannot_reach_outside(testdata, tmp_path):
    """../shared/hostile/dicomdir_absolute_path: the first File ID is /tmp\\robust\\ddabs\\outside\\secret.dcm."""
    fs = _file_set(testdata, tmp_path / "set")
    shutil.copy(HOSTILE, fs / "DICOMDIR")
    (fs / "DICOMDIR").chmod(0o644)
    target = Path("/tmp/robust/ddabs/outside/secret.dcm")  # where the hostile record points
    made = not target.exists()
    if made:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(testdata / SECRET_SOURCE, target)
    try:
        found, problems = read_file_set(fs / "DICOMDIR")
        assert target.resolve() not in [p.resolve() for p in found]
        assert all(fs.resolve() in p.resolve().parents for p in found) and len(found) == 30
        outside = [p for p in problems if p.category == "outside"]
        assert len(outside) == 1 and "outside its file-set" in outside[0].reason and "\n" not in outside[0].reason
        assert "secret" not in outside[0].reason and str(target.parent) not in outside[0].reason
        ix = scan([fs / "DICOMDIR"])
        assert all("secret" not in str(i.path) for i in ix.instances()) and len(ix.instances()) == 30
        assert any(p.category == "outside" for p in ix.problems)
    finally:
        if made:
            target.unlink(missing_ok=True)
            for d in (target.parent, target.parent.parent, target.parent.parent.parent):
                try:
                    d.rmdir()  # only when empty: someone else's run of repro.sh is left alone
                except OSError:
                    break


@pytest.mark.parametrize("file_id, why", [
    (["{outside}"], "absolute path"),              # an absolute first component, as the hostile file
    (["", "{outside_rel}"], "absolute path"),      # \\tmp\\... : an empty first component
    (["..", "outside", "secret.dcm"], "'..'"),      # climbing out
    (["C:", "outside", "secret.dcm"], "drive letter"),
    (["", "", "server", "share", "secret.dcm"], "absolute path"),  # UNC \\\\server\\share
])
def test_every_escaping_file_id_is_a_problem_with_its_reason(testdata, tmp_path, file_id, why):
    fs = _file_set(testdata, tmp_path / "set")
    (tmp_path / "outside").mkdir()
    secret = tmp_path / "outside" / "secret.dcm"
    shutil.copy(testdata / SECRET_SOURCE, secret)
    ds = pydicom.dcmread(fs / "DICOMDIR")
    parts = [p.format(outside=str(secret), outside_rel=str(secret).lstrip("/")) for p in file_id]
    _first_file_record(ds).ReferencedFileID = parts
    ds.save_as(fs / "DICOMDIR")
    found, problems = read_file_set(fs / "DICOMDIR")
    assert secret not in found and all(fs.resolve() in p.resolve().parents for p in found)
    assert [p.category for p in problems] == ["outside"] and why in problems[0].reason


def test_a_link_out_of_the_file_set_is_not_followed(testdata, tmp_path):
    fs = _file_set(testdata, tmp_path / "set")
    secret = tmp_path / "secret.dcm"
    shutil.copy(testdata / SECRET_SOURCE, secret)
    ds = pydicom.dcmread(fs / "DICOMDIR")
    rec = _first_file_record(ds)
    linked = fs.joinpath(*rec.ReferencedFileID)
    linked.unlink()
    os.symlink(secret, linked)
    found, problems = read_file_set(fs / "DICOMDIR")
    assert linked not in found and len(found) == 30
    assert [p.category for p in problems] == ["outside"] and "link" in problems[0].reason


def test_a_dicomdir_is_recognised_by_name_or_by_its_class(testdata, tmp_path):
    dd = testdata / DDSET / "DICOMDIR"
    renamed = tmp_path / "INDEX"
    shutil.copy(dd, renamed)
    assert looks_like_dicomdir(dd) and looks_like_dicomdir(renamed)
    assert not looks_like_dicomdir(testdata / SECRET_SOURCE)
