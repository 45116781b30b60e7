"""Retrieve durability per batch, not per file (issue 12.1), against a real Orthanc and a real SIGKILL.

Files are renamed into place whole and made durable in batches (fsync files, folders, one SQLite
commit): a retrieve killed in the middle of a study leaves no file under a final name that is not
whole, indexes only what was made durable, and the retry fetches exactly what the index lacks (the
renamed-but-uncommitted files are removed first and fetched again)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pydicom
import pytest

from mdtviewer.pacs import localstore
from mdtviewer.pacs.client import PacsClient
from mdtviewer.pacs.localstore import LocalStore
from mdtviewer.pacs.nodes import PacsNode
from orthanc_peer import HOST
from study_copies import big_study

pytestmark = pytest.mark.orthanc




def test_a_retrieve_killed_mid_study_loses_nothing_and_the_retry_fetches_only_the_missing(
    orthanc_peer_factory, testdata, tmp_path, mdt_home
):
    peer = orthanc_peer_factory()
    n = 48  # ~110 MB: more than one batch (BATCH_BYTES) before the kill
    assert n * 2.3e6 > localstore.BATCH_BYTES
    study, pixels = big_study(testdata, tmp_path / "src", n)
    for f in sorted((tmp_path / "src").glob("*.dcm")):
        assert peer.upload(f)
    dest = tmp_path / "store"
    env = dict(os.environ, MDTVIEWER_HOME=str(mdt_home))
    cmd = [sys.executable, "-m", "mdtviewer", "pacs", "get", study, "--host", HOST, "--port", str(peer.dicom_port),
           "--called-aet", peer.aet, "--dest", str(dest)]
    first_batch = int(localstore.BATCH_BYTES // 2.3e6)
    killed = False
    for _attempt in range(5):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if dest.is_dir() and sum(1 for _ in dest.rglob("*.dcm")) >= first_batch + 4:
                os.kill(proc.pid, signal.SIGKILL)  # by PID, in the middle of the study
                break
            time.sleep(0.002)
        proc.wait(timeout=30)
        if proc.returncode == -signal.SIGKILL:
            killed = True
            break
        for p in dest.rglob("*"):  # finished before the kill: start again from nothing
            if p.is_file():
                p.unlink()
    assert killed, "could not kill the retrieve in the middle of the study"
    on_disk = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID): p for p in dest.rglob("*.dcm")}
    assert 0 < len(on_disk) < n
    for p in dest.rglob("*.dcm"):  # nothing under a final name is half-written
        ds = pydicom.dcmread(p)
        assert bytes(ds.PixelData) == pixels[str(ds.SOPInstanceUID)]
    store = LocalStore(dest)
    have = store.present(pixels)
    assert have <= set(on_disk)  # only files on disk are indexed (rows follow the durable files)
    assert len(have) >= first_batch - 1  # at least the first batch was made durable before the kill
    with PacsClient(PacsNode("k", peer.aet, HOST, peer.dicom_port)) as c:
        r = c.retrieve(study, store, method="get")
    assert r.ok, r.message
    assert r.fetched == n - len(have)  # exactly what the index lacked
    assert store.present(pixels) == set(pixels)
    assert len(list(dest.rglob("*.dcm"))) == n and not [p for p in dest.rglob(".*") if p.name.endswith(".part")]
    for p in dest.rglob("*.dcm"):
        ds = pydicom.dcmread(p)
        assert bytes(ds.PixelData) == pixels[str(ds.SOPInstanceUID)]
    store.close()


def test_a_batch_is_durable_before_it_is_read(tmp_path, testdata):
    # rows are committed only by flush(): a reader of the store (another LocalStore on the same folder)
    # sees an instance only after its batch was made durable
    from pydicom.dataset import FileMetaDataset

    src = pydicom.dcmread(testdata / "us_philips_cx50_palette_rle.dcm")
    a = LocalStore(tmp_path / "s")
    b = LocalStore(tmp_path / "s")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = src.SOPClassUID
    meta.MediaStorageSOPInstanceUID = src.SOPInstanceUID
    meta.TransferSyntaxUID = src.file_meta.TransferSyntaxUID
    from pydicom.filebase import DicomBytesIO

    buf = DicomBytesIO()
    buf.is_little_endian, buf.is_implicit_VR = True, False
    pydicom.filewriter.write_dataset(buf, src)  # explicit VR LE, as the body of a C-STORE
    path = a.add_encoded(meta, buf.getvalue(), str(src.StudyInstanceUID), str(src.SeriesInstanceUID))
    assert path.is_file()
    assert b.present(str(src.SOPInstanceUID)) == set()  # renamed, not yet durable: not indexed
    assert a.clean_partials(str(src.StudyInstanceUID)) == 0  # this process's own pending file is kept
    assert a.present(str(src.SOPInstanceUID)) == {str(src.SOPInstanceUID)}  # reading flushes the batch
    assert b.present(str(src.SOPInstanceUID)) == {str(src.SOPInstanceUID)}
    a.close()
    b.close()
