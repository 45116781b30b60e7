"""C-STORE of 10,000 files stays within a fixed memory bound (issue 12.2).

``mdtviewer pacs store`` runs as a child process against a real Orthanc with
1,000 and then 10,000 files (copies of one corpus file with new UIDs, 100 a
study, built in the test's temp folder); its peak RSS comes from the kernel
(``wait4`` rusage).  The old code held every header before sending and grew
by ~40 MB a thousand files (120 / 215 / 374 / 516 MB at 1k / 2.5k / 5k / 9k);
streamed, ten times the files must cost no more than a small constant more.
Every file must arrive, and the audit has one record per study.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pydicom
import pytest

from orthanc_peer import HOST, OUR_AET

pytestmark = pytest.mark.orthanc

TEMPLATE = "us_atl_hdi5000_jpeg_baseline_ybr422.dcm"
PER_STUDY = 100


def _uid() -> bytes:
    return ("2.25." + str(uuid.uuid4().int).rjust(39, "1")[:39]).encode()


def build_copies(src: Path, dest: Path, n: int) -> list[str]:
    """*n* copies of *src* with new Study/Series/SOP Instance UIDs, as relative paths under *dest*."""
    ds = pydicom.dcmread(src)
    ph = {k: "2.25." + str(9 * 10**38 + j) for j, k in enumerate(("study", "series", "sop"))}
    ds.StudyInstanceUID, ds.SeriesInstanceUID = ph["study"], ph["series"]
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = ph["sop"]
    tmpl = dest / "template.dcm"
    dest.mkdir(parents=True, exist_ok=True)
    ds.save_as(tmpl, enforce_file_format=True)
    template = tmpl.read_bytes()
    tmpl.unlink()
    names = []
    for i in range(n):
        if i % PER_STUDY == 0:
            study, series = _uid(), _uid()
            (dest / f"{i // PER_STUDY:04d}").mkdir()
        data = template.replace(ph["study"].encode(), study).replace(ph["series"].encode(), series)
        name = f"{i // PER_STUDY:04d}/{i:05d}.dcm"
        (dest / name).write_bytes(data.replace(ph["sop"].encode(), _uid()))
        names.append(name)
    return names


def _store_child(peer, folder: Path, names: list[str], home: Path) -> tuple[int, float, str]:
    """Exit status, peak RSS in MB and stderr of ``mdtviewer pacs store`` on *names*."""
    exe = shutil.which("mdtviewer", path=str(Path(sys.executable).parent))
    assert exe, "the mdtviewer entry point is installed in the venv"
    cmd = [exe, "pacs", "store", *names, "--host", HOST, "--port", str(peer.dicom_port),
           "--called-aet", peer.aet, "--calling-aet", OUR_AET]
    env = dict(os.environ, MDTVIEWER_HOME=str(home))
    log = home.with_suffix(".log")
    # Linux carries a process's peak RSS across fork and exec, so a child forked straight from this
    # (large, late in the suite) pytest process would report pytest's peak.  A small wrapper process
    # starts the store and reports the peak of exactly its one child.
    peak_file = home.with_suffix(".peak")
    wrapper = ("import resource, subprocess, sys; rc = subprocess.call(sys.argv[2:]); "
               "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); "
               "sys.exit(rc)")
    with open(log, "wb") as fh:
        rc = subprocess.call([sys.executable, "-c", wrapper, str(peak_file), *cmd], cwd=folder, env=env,
                             stdout=fh, stderr=subprocess.STDOUT)
    return rc, int(peak_file.read_text()) / 1024, log.read_text(errors="replace")


def test_store_10000_files_in_bounded_memory(orthanc_peer_factory, testdata, tmp_path):
    peer = orthanc_peer_factory()
    small = build_copies(testdata / TEMPLATE, tmp_path / "small", 1000)
    large = build_copies(testdata / TEMPLATE, tmp_path / "large", 10_000)

    rc1, rss1, out1 = _store_child(peer, tmp_path / "small", small, tmp_path / "home1")
    assert rc1 == 0, out1[-2000:]
    assert "stored 1000 of 1000 files" in out1
    rc2, rss2, out2 = _store_child(peer, tmp_path / "large", large, tmp_path / "home2")
    assert rc2 == 0, out2[-2000:]
    assert "stored 10000 of 10000 files" in out2
    assert peer.instance_count() == 11_000

    # ten times the files: a few MB more (paths and results), not ~360 MB more
    assert rss2 < rss1 + 40, f"peak RSS {rss1:.0f} MB for 1,000 files but {rss2:.0f} MB for 10,000"
    assert rss2 < 250, f"peak RSS {rss2:.0f} MB for 10,000 files"

    # one audit record per study, with its own count (no studies x files confusion)
    audit_file = next((tmp_path / "home2").rglob("audit*.jsonl"), None) or next((tmp_path / "home2").rglob("audit*"))
    recs = [json.loads(line) for line in audit_file.read_text().splitlines() if line.strip()]
    stores = [r for r in recs if r.get("event") == "store"]
    assert len(stores) == 10_000 // PER_STUDY
    assert len({r["study_uid"] for r in stores}) == len(stores)
    assert all(r["detail"]["instances"] == PER_STUDY and r["detail"]["failed"] == 0 for r in stores)
    assert all(r["outcome"] == "success" for r in stores)
