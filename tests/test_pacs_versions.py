"""Today's PACS versions (issue 11.7) and interrupted retrieves (11.13), against real peers:
Orthanc 1.10 (Debian 12), Orthanc 1.12 (Debian 13, in a cached debootstrap chroot: tests/orthanc112.py)
and DCMTK's dcmqrscp.

Orthanc 1.12 sends the instances of one C-MOVE on one association whose contexts were negotiated for
the first instance; a later instance in another syntax used to be transcoded (RLE arrived decompressed)
or failed (JPEG 2000).  Every instance must arrive exactly as stored, by C-MOVE and C-GET alike.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pydicom
import pytest
from pydicom.uid import generate_uid

from mdtviewer.pacs.client import PacsClient
from mdtviewer.pacs.localstore import LocalStore
from mdtviewer.pacs.nodes import PacsNode
from orthanc112 import orthanc112_factory, trixie  # noqa: F401  (fixtures)
from orthanc_peer import HOST, OUR_AET, free_port
from study_copies import big_study

pytestmark = pytest.mark.orthanc

#: one US SOP class in four transfer syntaxes: JPEG 2000 lossless, RLE, Explicit VR LE, JPEG baseline
MIXED = (
    "us_ge_logiq700_j2k_lossless_ybr_rct.dcm",
    "us_philips_cx50_palette_rle.dcm",
    "us_ge_logiq700_rgb_explicit_le.dcm",
    "us_atl_hdi5000_jpeg_baseline_ybr422.dcm",
)


def mixed_study(testdata, folder, copies: int = 2, seed: int = 11) -> tuple[str, dict[str, tuple[str, bytes]]]:
    """A new study of the MIXED files (*copies* each, shuffled); returns (study uid, {sop: (syntax, pixels)})."""
    folder.mkdir(parents=True, exist_ok=True)
    study = generate_uid()
    names = [n for n in MIXED for _ in range(copies)]
    random.Random(seed).shuffle(names)
    expected = {}
    for i, name in enumerate(names):
        ds = pydicom.dcmread(testdata / name)
        ds.StudyInstanceUID = study
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(folder / f"m{i:02d}.dcm")
        expected[str(ds.SOPInstanceUID)] = (str(ds.file_meta.TransferSyntaxUID), bytes(ds.PixelData))
    return study, expected


def assert_as_stored(paths, expected) -> None:
    got = {}
    for p in paths:
        ds = pydicom.dcmread(p)
        got[str(ds.SOPInstanceUID)] = (str(ds.file_meta.TransferSyntaxUID), bytes(ds.PixelData))
    assert set(got) == set(expected)
    for sop, (ts, pixels) in expected.items():
        assert got[sop][0] == ts, f"arrived as {got[sop][0]}, stored as {ts}"
        assert got[sop][1] == pixels


@pytest.fixture(params=["orthanc-1.10", "orthanc-1.12"])
def versioned_peer(request, orthanc_peer_factory, move_port):
    if request.param == "orthanc-1.12":
        peer = request.getfixturevalue("orthanc112_factory")()
    else:
        peer = orthanc_peer_factory()
    return peer


@pytest.mark.parametrize("method", ["move", "get"])
def test_mixed_syntaxes_arrive_as_stored(versioned_peer, testdata, tmp_path, move_port, method):
    study, expected = mixed_study(testdata, tmp_path / "src")
    for f in sorted((tmp_path / "src").glob("*.dcm")):
        assert versioned_peer.upload(f), versioned_peer.rejected
    node = PacsNode("v", versioned_peer.aet, HOST, versioned_peer.dicom_port, listen_aet=OUR_AET, listen_port=move_port)
    store = LocalStore(tmp_path / "store")
    with PacsClient(node, listen_host=HOST) as c:
        r = c.retrieve(study, store, method=method)
    assert r.ok, r.message
    assert r.message == f"retrieved {len(expected)} of {len(expected)} instances"
    assert_as_stored(r.paths, expected)


def test_orthanc_112_is_really_112(orthanc112_factory):
    peer = orthanc112_factory()
    assert peer.http("/system")["Version"].startswith("1.12.")


@pytest.mark.parametrize("propose", ["-xv", "-xr"])
def test_dcmqrscp_move_arrives_as_stored(dcmqrscp_peer, testdata, tmp_path, monkeypatch, propose):
    # dcmqrscp offers ONE context per class: [its one compressed syntax (-xv J2K lossless, -xr RLE),
    # then the uncompressed ones], and cannot convert between them.  The compressed instance comes
    # first as stored; the uncompressed one, which it cannot compress, on a last round taking
    # uncompressed first.
    import test_pacs_versions as me

    compressed = "us_ge_logiq700_j2k_lossless_ybr_rct.dcm" if propose == "-xv" else "us_philips_cx50_palette_rle.dcm"
    monkeypatch.setattr(me, "MIXED", (compressed, "us_ge_logiq700_rgb_explicit_le.dcm"))
    study, expected = mixed_study(testdata, tmp_path / "src", copies=1)
    port = free_port()
    dcmqrscp_peer.start(sorted((tmp_path / "src").glob("*.dcm")), known={"us": (OUR_AET, port)}, options=(propose,))
    node = PacsNode("d", dcmqrscp_peer.aet, HOST, dcmqrscp_peer.dicom_port, listen_aet=OUR_AET, listen_port=port)
    with PacsClient(node, listen_host=HOST) as c:
        r = c.retrieve(study, LocalStore(tmp_path / "store"), method="move")
    assert r.ok, r.message
    assert_as_stored(r.paths, expected)


# -- 11.13: a retrieve killed mid-file --------------------------------------------------------------


def test_retrieve_killed_mid_file_leaves_nothing_half_written_and_retry_fetches_the_rest(
    orthanc_peer_factory, testdata, tmp_path, mdt_home
):
    peer = orthanc_peer_factory()
    study, pixels = big_study(testdata, tmp_path / "src", 40)
    for f in sorted((tmp_path / "src").glob("*.dcm")):
        assert peer.upload(f)
    dest = tmp_path / "store"
    env = dict(os.environ, MDTVIEWER_HOME=str(mdt_home))
    cmd = [
        sys.executable,
        "-m",
        "mdtviewer",
        "pacs",
        "get",
        study,
        "--host",
        HOST,
        "--port",
        str(peer.dicom_port),
        "--called-aet",
        peer.aet,
        "--dest",
        str(dest),
    ]
    killed_mid_file = False
    for _attempt in range(5):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if dest.is_dir() and any(p.name.endswith(".part") for p in dest.rglob(".*")):
                os.kill(proc.pid, signal.SIGKILL)  # by PID, while a file is being written
                break
            time.sleep(0.001)
        proc.wait(timeout=30)
        parts = [p for p in dest.rglob(".*") if p.name.endswith(".part")]
        if proc.returncode == -signal.SIGKILL and parts:
            killed_mid_file = True
            break
    assert killed_mid_file, "could not catch the retrieve in the middle of a file"
    whole = [p for p in dest.rglob("*.dcm")]
    assert len(whole) < len(pixels)
    for p in whole:  # everything under a final name is complete
        ds = pydicom.dcmread(p)
        assert bytes(ds.PixelData) == pixels[str(ds.SOPInstanceUID)]
    store = LocalStore(dest)
    have = store.present(pixels)
    with PacsClient(PacsNode("k", peer.aet, HOST, peer.dicom_port)) as c:
        r = c.retrieve(study, store, method="get")
    assert r.ok, r.message
    assert r.fetched == len(pixels) - len(have)  # only what was missing
    assert not [p for p in dest.rglob(".*") if p.name.endswith(".part")]  # the stale temp file is gone
    assert len(list(dest.rglob("*.dcm"))) == len(pixels)
    for p in dest.rglob("*.dcm"):
        ds = pydicom.dcmread(p)
        assert bytes(ds.PixelData) == pixels[str(ds.SOPInstanceUID)]


def test_an_ae_title_the_pacs_does_not_allow_is_said_so(versioned_peer):
    # Orthanc accepts the association of an AE it does not know, then aborts it when asked to query:
    # said as such, not "connection lost during the query"
    from mdtviewer.pacs.client import PacsError, StudyQuery

    versioned_peer.stop(kill=True)
    versioned_peer.extra_config.update({"DicomAlwaysAllowFind": False, "DicomAlwaysAllowEcho": False})
    versioned_peer.start()
    n = PacsNode("v", versioned_peer.aet, HOST, versioned_peer.dicom_port, calling_aet="STRANGER")
    with PacsClient(n) as c:
        with pytest.raises(PacsError) as err:
            c.find_studies(StudyQuery())
        echo = c.echo()
    where = f"{HOST}:{versioned_peer.dicom_port}"
    assert str(err.value) == (
        f"the PACS at {where} ended the association in answer to our query (A-ABORT by the "
        "PACS itself): it may not allow our AE title 'STRANGER' to do this"
    )
    assert not echo.ok and "in answer to our C-ECHO (A-ABORT by the PACS itself)" in echo.message
    assert "lost" not in str(err.value)


def test_a_wrong_called_ae_title_is_rejected_and_said_by_whom(versioned_peer):
    from mdtviewer.pacs.client import PacsError, StudyQuery

    n = PacsNode("v", "NOTTHEPACS", HOST, versioned_peer.dicom_port)
    with PacsClient(n) as c, pytest.raises(PacsError) as err:
        c.find_studies(StudyQuery())
    assert str(err.value) == (
        f"association rejected by the PACS at {HOST}:{versioned_peer.dicom_port} (permanent): "
        "called AE title 'NOTTHEPACS' not recognised"
    )


@pytest.mark.parametrize("method", ["move", "get"])
def test_every_corpus_study_arrives_as_stored(versioned_peer, testdata, tmp_path, move_port, method):
    """The whole US corpus (every syntax the corpus has), each study by C-MOVE and C-GET, from
    Orthanc 1.10 and 1.12: each instance in the syntax Orthanc holds it in, with the same pixel bytes."""
    from orthanc_peer import us_corpus_files

    stored: dict[str, tuple[str, bytes]] = {}
    for f in us_corpus_files(testdata):
        if versioned_peer.upload(f):
            ds = pydicom.dcmread(f)
            # three corpus files share one SOP Instance UID: Orthanc keeps the first
            stored.setdefault(str(ds.SOPInstanceUID), (str(ds.file_meta.TransferSyntaxUID), bytes(ds.PixelData)))
    studies = {s["MainDicomTags"]["StudyInstanceUID"] for s in versioned_peer.studies()}
    node = PacsNode("v", versioned_peer.aet, HOST, versioned_peer.dicom_port, listen_aet=OUR_AET, listen_port=move_port)
    store = LocalStore(tmp_path / "store")
    paths = []
    with PacsClient(node, listen_host=HOST) as c:
        for uid in sorted(studies):
            r = c.retrieve(uid, store, method=method)
            assert r.ok, r.message
            paths += r.paths
    assert_as_stored(paths, stored)
