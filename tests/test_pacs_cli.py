"""``mdtviewer pacs ...`` from a shell (subprocess) against a real Orthanc."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pydicom
import pytest

from mdtviewer.cli.pacs import main
from orthanc_peer import HOST, OUR_AET, free_port

pytestmark = pytest.mark.orthanc


def run(*args, home) -> subprocess.CompletedProcess:
    env = dict(os.environ, MDTVIEWER_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "mdtviewer", "pacs", *map(str, args)],
                          capture_output=True, text=True, timeout=120, env=env)


def conn(peer):
    return ["--host", HOST, "--port", peer.dicom_port, "--called-aet", peer.aet]


def test_find_json_and_get_from_a_shell(orthanc, mdt_home, tmp_path):
    r = run("find", *conn(orthanc), "--json", home=mdt_home)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    expected = {s["MainDicomTags"]["StudyInstanceUID"] for s in orthanc.studies()
                if "US" in orthanc.http(f"/series/{s['Series'][0]}")["MainDicomTags"].get("Modality", "")}
    assert {row["study_instance_uid"] for row in rows} == expected
    for row in rows:
        assert set(row) == {
            "study_instance_uid",
            "patient_id",
            "issuer",
            "study_date",
            "study_description",
            "modalities",
            "instances",
        }
        assert "US" in row["modalities"] and row["instances"] >= 1
    big = max(rows, key=lambda row: row["instances"])
    dest = tmp_path / "dest"
    g = run("get", big["study_instance_uid"], *conn(orthanc), "--dest", dest, home=mdt_home)
    assert g.returncode == 0, g.stderr
    assert g.stdout.strip() == f"retrieved {big['instances']} of {big['instances']} instances"
    files = list(dest.rglob("*.dcm"))
    assert len(files) == big["instances"]
    assert {str(pydicom.dcmread(f).StudyInstanceUID) for f in files} == {big["study_instance_uid"]}


def test_find_prints_no_patient_id_unless_asked(orthanc, mdt_home):
    # issue 10.9: querying by patient ID is not asking to see every patient's ID on the terminal
    # (IDs of five characters or more: a short one such as '204' is also part of a date)
    pids = {s["PatientMainDicomTags"].get("PatientID", "") for s in orthanc.studies()}
    pids = {p for p in pids if len(p) >= 5}
    assert "13US1" in pids
    for extra in ([], ["--json"]):
        r = run("find", *conn(orthanc), "--modality", "ANY", *extra, home=mdt_home)
        assert r.returncode == 0, r.stderr
        assert not [p for p in pids if p in r.stdout or p in r.stderr], "a patient ID was printed"
        if extra:
            rows = [json.loads(line) for line in r.stdout.splitlines()]
            assert rows and all(row["patient_id"] is None for row in rows)
    shown = run("find", *conn(orthanc), "--modality", "ANY", "--show-identifiers", home=mdt_home)
    assert shown.returncode == 0 and "13US1" in shown.stdout


def test_find_stops_at_max_results(orthanc, mdt_home):
    r = run("find", *conn(orthanc), "--modality", "ANY", "--max-results", "2", home=mdt_home)
    assert r.returncode == 1 and r.stdout == ""
    assert "more than 2 studies match: narrow the query" in r.stderr


def test_find_filters_from_a_shell(orthanc, mdt_home):
    r = run(
        "find",
        *conn(orthanc),
        "--patient-id",
        "13US1",
        "--date",
        "20040101-20041231",
        "--modality",
        "ANY",
        "--json",
        "--show-identifiers",
        home=mdt_home,
    )
    assert r.returncode == 0, r.stderr
    [row] = [json.loads(line) for line in r.stdout.splitlines()]
    assert row["patient_id"] == "13US1" and row["study_date"].startswith("2004")
    r = run("find", *conn(orthanc), "--patient-id", "13US1", "--date", "20050101-", "--json", home=mdt_home)
    assert r.returncode == 0 and r.stdout == ""


def test_move_from_a_shell(orthanc, mdt_home, tmp_path, move_port, testdata):
    src = testdata / "usmf_hp_jpeg_ybr422_34f.dcm"
    uid = pydicom.dcmread(src, stop_before_pixels=True).StudyInstanceUID
    m = run(
        "move",
        uid,
        *conn(orthanc),
        "--listen-aet",
        OUR_AET,
        "--listen-port",
        move_port,
        "--dest",
        tmp_path,
        home=mdt_home,
    )
    assert m.returncode == 0, m.stderr
    assert m.stdout.strip() == "retrieved 1 of 1 instances"
    [f] = list(tmp_path.rglob("*.dcm"))
    assert pydicom.dcmread(f).PixelData == pydicom.dcmread(src).PixelData


def test_echo_exit_codes(orthanc, mdt_home):
    assert main(["echo", *map(str, conn(orthanc))]) == 0
    port = free_port()
    r = run("echo", "--host", HOST, "--port", port, "--called-aet", "X", home=mdt_home)
    assert r.returncode == 1
    assert f"PACS not reachable at 127.0.0.1:{port} (connection refused" in r.stderr
    r = run("echo", "--host", HOST, home=mdt_home)
    assert r.returncode == 2 and "--port" in r.stderr


def test_get_of_a_missing_study_fails(orthanc, mdt_home, tmp_path):
    r = run("get", "1.2.3.4.5.6", *conn(orthanc), "--dest", tmp_path, home=mdt_home)
    assert r.returncode == 1
    assert r.stdout.strip() == "retrieved 0 of 0 instances"
    assert "no instances" in r.stderr


def test_saved_node_stands_in_and_store_queue(orthanc_peer_factory, mdt_home, testdata, capsys):
    peer = orthanc_peer_factory(start=False)
    assert main(["node", "add", "lab", *map(str, conn(peer))]) == 0
    assert main(["node", "list", "--json"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert json.loads(out[-1])["port"] == peer.dicom_port
    sr = testdata / "sr_comprehensive_offis_test.dcm"
    # PACS down: the file goes to the outbox, exit 1
    assert main(["store", str(sr), "--node", "lab", "--queue"]) == 1
    err = capsys.readouterr().err
    assert "PACS not reachable" in err and "kept in the outbox" in err
    assert main(["outbox", "list"]) == 0
    listing = capsys.readouterr().out
    assert "1 waiting" in listing
    assert "attempts=1" in listing  # the failed send was an attempt (QA 17)
    peer.start()
    assert main(["outbox", "flush"]) == 0
    assert "1 stored, 0 waiting" in capsys.readouterr().out
    assert peer.sop_instance_uids() == {pydicom.dcmread(sr, stop_before_pixels=True).SOPInstanceUID}
    r = run("store", testdata / "us_aloka_palette16_implicit_le.dcm", "--node", "lab", home=mdt_home)
    assert r.returncode == 0 and r.stdout.strip() == "stored 1 of 1 files"
    assert main(["node", "remove", "lab"]) == 0
    assert main(["echo", "--node", "lab"]) == 2


def test_purge_from_a_shell(mdt_home, testdata, tmp_path):
    from mdtviewer.pacs.localstore import LocalStore

    with LocalStore(tmp_path) as store:
        for f in ("us_aloka_palette16_implicit_le.dcm", "usmf_hp_jpeg_ybr422_34f.dcm"):
            store.add_file(testdata / f)
        total = store.total_bytes()
    r = run("purge", "--dest", tmp_path, "--max-gb", (total - 1) / (1 << 30), home=mdt_home)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("purged 1 studies (1 instances")
    with LocalStore(tmp_path) as store:
        assert len(store.studies()) == 1 and store.total_bytes() < total


def test_find_shows_old_dotted_dates_as_iso(orthanc_peer_factory, mdt_home, testdata, tmp_path, capsys):
    """An ACR-NEMA style StudyDate 1994.11.05 is printed 1994-11-05, like every date (QA 18)."""
    peer = orthanc_peer_factory()
    ds = pydicom.dcmread(testdata / "us_aloka_palette16_implicit_le.dcm")
    ds.StudyDate = "1994.11.05"
    ds.StudyInstanceUID = pydicom.uid.generate_uid()
    ds.SeriesInstanceUID = pydicom.uid.generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    f = tmp_path / "dotted.dcm"
    ds.save_as(f)
    assert main(["store", str(f), *map(str, conn(peer))]) == 0
    capsys.readouterr()
    assert main(["find", *map(str, conn(peer)), "--modality", "ANY"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ds.StudyInstanceUID in ln)
    assert line.startswith("1994-11-05 "), line
