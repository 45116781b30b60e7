"""A hostile PACS (tests/hostile_scp.py, a real pynetdicom AE in its own process) against our client.

Issue 11.1 (paths from peer UIDs), 11.6 (floods, control characters, multi-valued UIDs).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

import pydicom
import pytest

from hostile_scp import CONTROL_TEXT, HOST, HostilePeer
from mdtviewer.pacs.client import PacsClient, StudyQuery, TooManyResults
from mdtviewer.pacs.localstore import LocalStore, path_component
from mdtviewer.pacs.nodes import PacsNode
from mdtviewer.pacs.safetext import printable
from orthanc_peer import OUR_AET, free_port


@pytest.fixture
def hostile(tmp_path):
    peers = []

    def start(mode: str, *extra: str) -> HostilePeer:
        p = HostilePeer(tmp_path).start(mode, *extra)
        peers.append(p)
        return p

    yield start
    for p in peers:
        p.stop()


def node(peer, **kw) -> PacsNode:
    return PacsNode("hostile", peer.aet, HOST, peer.port, **kw)


def cli(*args, home) -> subprocess.CompletedProcess:
    env = dict(os.environ, MDTVIEWER_HOME=str(home))
    return subprocess.run(
        [sys.executable, "-m", "mdtviewer", "pacs", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def files_under(folder):
    return sorted(p for p in folder.rglob("*") if p.is_file())


# -- 11.1: a hostile PACS cannot write or delete outside the local store ----------------------------
@pytest.mark.parametrize("study,series", [("..", ".."), (".", "."), ("/tmp/mdt-hostile-abs", "a/../../b")])
def test_get_with_path_uids_stays_inside_the_store_and_purge_only_removes_it(hostile, tmp_path, study, series):
    data = tmp_path / "data"  # the user's data folder: settings, nodes, audit, outbox beside the store
    data.mkdir()
    sentinel = data / "settings.json"
    sentinel.write_text("{}")
    root = data / "store"
    store = LocalStore(root)
    good = store.add_file(pydicom.data.get_testdata_file("CT_small.dcm"))  # another study, to be kept
    keep = str(pydicom.dcmread(good, stop_before_pixels=True).StudyInstanceUID)
    peer = hostile("paths", "--study", study, "--series", series)
    with PacsClient(node(peer)) as c:
        r = c.retrieve(study, store, method="get")
    assert r.ok, r.message
    [p] = r.paths
    assert p.resolve().is_relative_to(root.resolve())
    assert p.relative_to(root).parts[0] == path_component(study) and path_component(study).startswith("x")
    assert str(pydicom.dcmread(p).StudyInstanceUID) == study  # stored as received, found again
    assert not os.path.exists("/tmp/mdt-hostile-abs")
    assert {q for q in files_under(data) if not q.is_relative_to(root)} == {sentinel}
    res = store.purge(max_bytes=0, keep={keep})
    assert res.studies == 1 and res.instances == 1
    assert sentinel.read_text() == "{}" and good.is_file() and root.is_dir()  # the store's parent and the kept study
    assert store.studies() == [keep]
    store.close()


def test_a_study_the_pacs_was_not_asked_for_is_refused(hostile, tmp_path):
    peer = hostile("paths", "--study", "..", "--series", "..")
    store = LocalStore(tmp_path / "store")
    with PacsClient(node(peer)) as c:
        r = c.retrieve("1.2.826.0.1.3680043.8.498.9.5", store, method="get")
    assert not r.ok and r.completed == 0
    assert "instance of another study than the one asked for; refused" in r.message
    assert [p.name for p in files_under(tmp_path / "store") if p.suffix == ".dcm"] == []


def test_move_with_path_uids_stays_inside_the_store(hostile, tmp_path):
    move_port = free_port()
    peer = hostile("paths", "--study", "..", "--series", "..", "--move-port", str(move_port))
    root = tmp_path / "data" / "store"
    store = LocalStore(root)
    with PacsClient(node(peer, listen_aet=OUR_AET, listen_port=move_port, retrieve="move"), listen_host=HOST) as c:
        r = c.retrieve("..", store)
    assert r.ok, r.message
    assert all(p.resolve().is_relative_to(root.resolve()) for p in r.paths)
    assert {p.parent for p in files_under(tmp_path / "data")} <= {q for q in root.rglob("*") if q.is_dir()} | {root}


def test_store_paths_never_follow_a_symlink_out(tmp_path):
    from mdtviewer.pacs.localstore import StoreError

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.dcm").write_bytes(b"keep me")
    root = tmp_path / "store"
    store = LocalStore(root)
    (root / "1.2.3").symlink_to(outside, target_is_directory=True)
    with pytest.raises(StoreError, match="outside the local store"):
        store.path_for("1.2.3", "4.5", "6.7")
    # an index row pointing outside (an older version, a hand edit) is never deleted by purge
    store._db.execute(
        "INSERT INTO instances VALUES ('9.9','1.2.3','4.5','1.2','1.2.840.10008.1.2.1','../outside/precious.dcm',7,0,0)"
    )
    store._db.commit()
    assert store.present(["9.9"]) == set()
    store.purge(max_bytes=0)
    assert (outside / "precious.dcm").read_bytes() == b"keep me" and root.is_dir()


# -- 11.6: floods, control characters, multi-valued UIDs --------------------------------------------
@pytest.mark.parametrize("ignore_cancel", [False, True], ids=["honours-cancel", "ignores-cancel"])
def test_a_flood_of_100000_studies_is_capped_and_stopped(hostile, ignore_cancel):
    peer = hostile("flood", "--count", "100000", *(["--ignore-cancel"] if ignore_cancel else []))
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.monotonic()
    with PacsClient(node(peer)) as c:
        with pytest.raises(TooManyResults, match="more than 5000 studies match: narrow the query"):
            c.find_studies(StudyQuery(modality=None))
        took = time.monotonic() - t0
        # the association is either still usable (the PACS honoured C-CANCEL) or was ended
        if not ignore_cancel:
            assert c._query_assoc is not None and c._query_assoc.is_established
        else:
            assert c._query_assoc is None
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    assert took < 60 and grown_mb < 150, (took, grown_mb)


def test_cap_is_settable(hostile):
    peer = hostile("flood", "--count", "30")
    with PacsClient(node(peer), max_studies=30) as c:
        assert len(c.find_studies(StudyQuery(modality=None))) == 30
    with PacsClient(node(peer), max_studies=29) as c, pytest.raises(TooManyResults, match="more than 29 studies"):
        c.find_studies(StudyQuery(modality=None))


def test_control_characters_are_escaped_in_find_output(hostile, mdt_home):
    peer = hostile("control")
    r = cli("find", "--host", HOST, "--port", peer.port, "--called-aet", peer.aet, "--show-identifiers", home=mdt_home)
    assert r.returncode == 0, r.stderr
    for ch in "\x1b\r\x07\x00\x85\u202e":
        assert ch not in r.stdout and ch not in r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "1 study" and len(lines) == 2  # no injected line
    assert printable(CONTROL_TEXT)[:40] in lines[1] and "ID\\x1b[31mRED" in lines[1]
    assert "1 answer(s) from the PACS left out: 1 with an invalid StudyInstanceUID" in r.stderr
    j = cli("find", "--host", HOST, "--port", peer.port, "--called-aet", peer.aet, "--json", home=mdt_home)
    [row] = [json.loads(line) for line in j.stdout.splitlines()]
    assert "\x1b" not in j.stdout  # JSON escapes every control character; the value is intact (bar padding)
    assert row["study_description"] == CONTROL_TEXT.rstrip("\x00")


def test_multi_valued_and_malformed_uids_are_left_out_not_printed_as_lists(hostile, mdt_home):
    peer = hostile("multi")
    with PacsClient(node(peer)) as c:
        found = c.find_studies(StudyQuery(modality=None))
    assert [s.study_instance_uid for s in found] == ["1.2.826.0.1.3680043.8.498.9.4"]
    assert found[0].modalities == ["US", "SR"]
    assert found.refused == 3
    assert found.reasons == {
        "with several values in StudyInstanceUID": 1,
        "with an invalid StudyInstanceUID": 1,
        "without StudyInstanceUID": 1,
    }
    r = cli("find", "--host", HOST, "--port", peer.port, "--called-aet", peer.aet, home=mdt_home)
    assert r.returncode == 0 and "[" not in r.stdout and "'" not in r.stdout
    assert "3 answer(s) from the PACS left out" in r.stderr


# -- 11.7: say what really happened ------------------------------------------------------------------
@pytest.mark.parametrize("method", ["get", "move"])
def test_partial_retrieve_reports_the_pacs_status_counts_and_comment(hostile, tmp_path, method):
    move_port = free_port()
    study = "1.2.826.0.1.3680043.8.498.9.7"
    peer = hostile(
        "partial",
        "--study",
        study,
        "--series",
        "1.2.826.0.1.3680043.8.498.9.100",
        "--move-port",
        str(move_port),
        "--comment",
        "Cannot transcode \x1b[2Jfrom JPEG 2000",
    )
    n = node(peer, listen_aet=OUR_AET, listen_port=move_port)
    with PacsClient(n, listen_host=HOST) as c:
        r = c.retrieve(study, LocalStore(tmp_path / "store"), method=method)
    assert not r.ok and r.completed == 1 and r.remaining == 1
    op = "C-MOVE" if method == "move" else "C-GET"
    assert "retrieved 1 of 2 instances; 1 did not arrive: the PACS could not send" in r.message, r.message
    assert "(status 0xA702, 1 failed, 1 completed: Cannot transcode \\x1b[2Jfrom JPEG 2000)" in r.message, r.message
    assert "AE title" not in r.message and "register" not in r.message  # nothing blamed on registration
    assert "\x1b" not in r.message and op  # the PACS's text is shown escaped


def test_a_pacs_that_never_answers_is_said_so(tmp_path):
    import socket
    import threading

    listener = socket.create_server((HOST, 0))  # accepts the connection, then says nothing at all
    conns = []
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(listener.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        n = PacsNode("silent", "SILENT", HOST, listener.getsockname()[1], acse_timeout=2, connect_timeout=2)
        with PacsClient(n) as c:
            r = c.echo()
    finally:
        stop.set()
        t.join(timeout=5)
        for s in conns:
            s.close()
        listener.close()
    assert not r.ok
    assert r.message == (
        f"the PACS at {HOST}:{n.port} accepted the connection but did not answer the association "
        "request within 2 s (is it a DICOM port? does it expect TLS?)"
    )
    assert "dropped" not in r.message


# -- a PACS that drops the association instead of answering a C-STORE --------------------------------
def test_store_repeats_a_file_once_when_the_pacs_drops_the_association(hostile, tmp_path):
    """No C-STORE answer (a busy Orthanc did this to 3 of 10,000 files under load) gets one more attempt
    on a new association; a file dropped twice fails with the reason, and the files after it still go.

    The files are copies of a corpus RLE image with new SOP Instance UIDs written by pydicom: ``.1`` is
    dropped once by the hostile SCP (``--mode drop``), ``.2`` every time."""
    from hostile_scp import SOURCE

    peer = hostile("drop")
    ds = pydicom.dcmread(SOURCE)
    paths = []
    for name in ("0", "1", "2", "3"):
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.77." + name
        paths.append(tmp_path / f"{name}.dcm")
        ds.save_as(paths[-1], enforce_file_format=True)
    with PacsClient(node(peer)) as c:
        res = c.store(paths)
    assert res.sent == [paths[0], paths[1], paths[3]]
    [(bad, reason)] = res.failed
    assert bad == paths[2] and "twice" in reason, reason
    assert res.message.startswith("stored 3 of 4 files")
