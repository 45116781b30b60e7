"""PacsClient against a real Orthanc: echo, find, get, move, store, retired and unknown SOP classes, TLS."""

from __future__ import annotations

import fnmatch
import socket
import threading

import pydicom
import pytest

from mdtviewer.pacs.client import PacsClient, PacsError, StudyQuery
from mdtviewer.pacs.localstore import LocalStore
from mdtviewer.pacs.nodes import PacsNode
from orthanc_peer import HOST, ORTHANC_REJECTS, OUR_AET, make_synthetic_study, us_corpus_files

pytestmark = pytest.mark.orthanc

RETIRED_US = "1.2.840.10008.5.1.4.1.1.6"
UNKNOWN_CLASS = "1.2.826.0.1.3680043.8.498.777.1"  # nobody's SOP class (pydicom's UID root)


def node_for(peer, move_port=None, **kw) -> PacsNode:
    return PacsNode("test", peer.aet, HOST, peer.dicom_port, listen_aet=OUR_AET, listen_port=move_port, **kw)


@pytest.fixture(scope="module")
def extra(orthanc, testdata, tmp_path_factory):
    """Two studies added to the session peer: 8 instances in 2 series, and 2 instances of an unknown SOP class."""
    folder = tmp_path_factory.mktemp("synth")
    synth = make_synthetic_study(testdata, folder / "a", 8)
    unknown = make_synthetic_study(testdata, folder / "b", 2, sop_class=UNKNOWN_CLASS, modality="OT",
                                   series=1, patient_id="MDT-OTHER", study_date="20240615")
    for p in synth + unknown:
        assert orthanc.upload(p), orthanc.rejected
    return {"synth": synth, "unknown": unknown}


def study_uid(path) -> str:
    return pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID


def orthanc_study_uids(peer) -> dict[str, int]:
    """StudyInstanceUID -> instance count, straight from Orthanc's REST API."""
    out = {}
    for s in peer.studies():
        out[s["MainDicomTags"]["StudyInstanceUID"]] = sum(
            len(peer.http(f"/series/{se}")["Instances"]) for se in s["Series"])
    return out


@pytest.fixture
def client(orthanc, move_port):
    c = PacsClient(node_for(orthanc, move_port), listen_host=HOST)
    yield c
    c.close()


def test_orthanc_rejects_exactly_the_two_known_files(orthanc, testdata):
    # DCMTK-based Orthanc refuses these two files that pydicom reads: said, not hidden
    assert set(orthanc.rejected) == ORTHANC_REJECTS
    assert len(orthanc.uploaded) == len(us_corpus_files(testdata)) - 2


def test_echo_and_association_reuse(client):
    r = client.echo()
    assert r.ok and "succeeded" in r.message, r.message
    first = client._query_assoc
    assert client.echo().ok
    assert client._query_assoc is first  # one association for repeated calls


def test_find_any_modality_matches_orthanc(client, orthanc, extra):
    expected = orthanc_study_uids(orthanc)
    got = {s.study_instance_uid: s.instances for s in client.find_studies(StudyQuery(modality=None))}
    assert got == expected


def test_find_default_is_us_only(client, extra):
    us = client.find_studies(StudyQuery())
    assert us and all("US" in s.modalities for s in us)
    uids = {s.study_instance_uid for s in us}
    assert study_uid(extra["unknown"][0]) not in uids  # the OT study only shows with ANY
    assert study_uid(extra["synth"][0]) in uids


def test_find_by_patient_id(client, orthanc, testdata):
    pid = "13US1"
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in orthanc.uploaded]
    mine = [ds for ds in headers if ds.get("PatientID") == pid]
    expected = {ds.StudyInstanceUID for ds in mine}
    res = client.find_studies(StudyQuery(patient_id=pid, modality=None))
    assert {s.study_instance_uid for s in res} == expected and len(expected) == 1
    assert res[0].patient_id == pid and res[0].instances == len({ds.SOPInstanceUID for ds in mine}) > 1


def test_find_by_wildcard_name(client, orthanc):
    pattern = "Compressed*"
    expected = {
        study_uid(p)
        for p in orthanc.uploaded
        if fnmatch.fnmatchcase(str(pydicom.dcmread(p, stop_before_pixels=True).get("PatientName", "")), pattern)
    }
    res = client.find_studies(StudyQuery(patient_name=pattern))
    assert expected and {s.study_instance_uid for s in res} == expected
    assert all(s.patient_name.startswith("Compressed") for s in res)


def test_find_by_date_range(client, orthanc, extra):
    lo, hi = "20100101", "20191231"
    expected = set()
    for p in orthanc.uploaded:
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        if lo <= str(ds.get("StudyDate", "")) <= hi:
            expected.add(ds.StudyInstanceUID)
    res = client.find_studies(StudyQuery(date_from=lo, date_to=hi, modality=None))
    assert expected and {s.study_instance_uid for s in res} == expected
    assert all(lo <= s.study_date <= hi for s in res)


def test_find_series(client, extra):
    series = client.find_series(study_uid(extra["synth"][0]))
    assert len(series) == 2 and sorted(s.instances for s in series) == [4, 4]


def test_find_on_dead_node_raises_clear_error(orthanc):
    from orthanc_peer import free_port

    c = PacsClient(PacsNode("x", "ORTHANC", HOST, free_port()))
    with pytest.raises(PacsError, match=r"PACS not reachable at 127\.0\.0\.1:\d+ \(connection refused"):
        c.find_studies(StudyQuery())


@pytest.mark.parametrize("method", ["get", "move"])
def test_retrieve_study_keeps_syntax_and_bytes(client, extra, orthanc, tmp_path, method):
    files = extra["synth"]
    store = LocalStore(tmp_path / method)
    seen, progress = [], []
    r = client.retrieve(study_uid(files[0]), store, method=method, on_instance=seen.append, progress=progress.append)
    assert r.ok, r.message
    assert (r.completed, r.total, r.remaining, r.fetched) == (8, 8, 0, 8)
    assert r.message == "retrieved 8 of 8 instances"
    assert len(seen) == 8 and all(p.is_file() for p in seen)
    assert progress[-1].completed == 8 and progress[-1].remaining == 0
    assert sorted(r.paths) == sorted(seen)
    by_sop = {pydicom.dcmread(p).SOPInstanceUID: p for p in files}
    for p in r.paths:
        got = pydicom.dcmread(p)
        orig = pydicom.dcmread(by_sop[got.SOPInstanceUID])
        assert got.file_meta.TransferSyntaxUID == orig.file_meta.TransferSyntaxUID  # received as stored
        assert got.PixelData == orig.PixelData
    # a second retrieve fetches nothing
    again = client.retrieve(study_uid(files[0]), store, method=method)
    assert again.ok and again.fetched == 0 and "already in the local store" in again.message


def test_retry_fetches_only_missing(client, extra, tmp_path):
    uid = study_uid(extra["synth"][0])
    store = LocalStore(tmp_path)
    r = client.retrieve(uid, store)
    assert r.ok
    lost = r.paths[:3]
    for p in lost:
        p.unlink()
    fetched = []
    r2 = client.retrieve(uid, store, on_instance=fetched.append)
    assert r2.ok and r2.fetched == 3
    assert sorted(fetched) == sorted(lost)


@pytest.mark.parametrize("method", ["get", "move"])
def test_retired_us_sop_class_is_retrieved(client, orthanc, testdata, tmp_path, method):
    src = testdata / "us_retired_sopclass_rgb_planar.dcm"
    store = LocalStore(tmp_path)
    r = client.retrieve(study_uid(src), store, method=method)
    assert r.ok, r.message
    [p] = r.paths
    ds = pydicom.dcmread(p)
    assert ds.SOPClassUID == RETIRED_US
    assert ds.PixelData == pydicom.dcmread(src).PixelData


@pytest.mark.parametrize("method", ["get", "move"])
def test_unknown_sop_class_is_retrieved(client, extra, tmp_path, method):
    store = LocalStore(tmp_path)
    r = client.retrieve(study_uid(extra["unknown"][0]), store, method=method)
    assert r.ok, r.message
    assert r.completed == 2
    assert {pydicom.dcmread(p).SOPClassUID for p in r.paths} == {UNKNOWN_CLASS}


def test_every_corpus_study_retrieved_by_get(client, orthanc, tmp_path):
    store = LocalStore(tmp_path)
    expected = orthanc_study_uids(orthanc)
    for uid, n in expected.items():
        r = client.retrieve(uid, store)
        assert r.ok and r.completed == n, r.message
    assert len(list(tmp_path.rglob("*.dcm"))) == sum(expected.values())


def test_cancel_keeps_what_arrived(client, extra, tmp_path):
    uid = study_uid(extra["synth"][0])
    store = LocalStore(tmp_path)
    cancel = threading.Event()
    arrived = []

    def on_instance(p):
        arrived.append(p)
        if len(arrived) == 2:
            cancel.set()

    r = client.retrieve(uid, store, cancel=cancel, on_instance=on_instance)
    assert r.cancelled and not r.ok and "cancelled" in r.message
    assert 2 <= r.completed < 8 and r.remaining == 8 - r.completed
    assert all(p.is_file() for p in arrived)
    r2 = client.retrieve(uid, store)
    assert r2.ok and r2.fetched == 8 - r.completed


def test_store_sends_file_in_its_own_syntax(orthanc_peer_factory, testdata):
    peer = orthanc_peer_factory()
    files = [
        testdata / "sr_enhanced_tid1500_dcmjs.dcm",
        testdata / "us_ge_logiq700_j2k_lossless_ybr_rct.dcm",
        testdata / "us_retired_sopclass_rgb_planar.dcm",
    ]
    with PacsClient(node_for(peer)) as c:
        res = c.store(files)
    assert res.ok, res.message
    assert res.message == "stored 3 of 3 files"
    assert peer.sop_instance_uids() == {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in files}


def test_tls_echo_find_and_get(orthanc_tls, tls_material, tmp_path, testdata, caplog):
    import logging

    t = tls_material
    node = node_for(orthanc_tls, tls_ca=str(t.ca), tls_cert=str(t.client_cert), tls_key=str(t.client_key))
    caplog.set_level(logging.DEBUG)
    with PacsClient(node) as c:
        r = c.echo()
        assert r.ok, r.message
        [s] = c.find_studies(StudyQuery())
        res = c.retrieve(s.study_instance_uid, LocalStore(tmp_path))
        with c._tls_context().wrap_socket(
            socket.create_connection((HOST, orthanc_tls.dicom_port)), server_hostname=HOST
        ) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")  # what Orthanc and we actually agree on
    assert res.ok, res.message
    # the key is referenced by path and its content never reaches a log
    key_body = "".join(t.client_key.read_text().splitlines()[1:-1])
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "PRIVATE KEY" not in logged and key_body[:40] not in logged.replace("\n", "")
    assert (
        pydicom.dcmread(res.paths[0]).PixelData
        == pydicom.dcmread(testdata / "us_philips_cx50_palette_rle.dcm").PixelData
    )


def test_tls_move_to_our_tls_storage_scp(orthanc_tls, tls_material, tmp_path, testdata, move_port):
    # the PACS connects back to us over TLS too (UseDicomTls for our AE), checking our certificate
    t = tls_material
    node = node_for(orthanc_tls, move_port, tls_ca=str(t.ca), tls_cert=str(t.client_cert), tls_key=str(t.client_key))
    with PacsClient(node, listen_host=HOST) as c:
        [s] = c.find_studies(StudyQuery())
        res = c.retrieve(s.study_instance_uid, LocalStore(tmp_path), method="move")
    assert res.ok, res.message
    assert (
        pydicom.dcmread(res.paths[0]).PixelData
        == pydicom.dcmread(testdata / "us_philips_cx50_palette_rle.dcm").PixelData
    )


def test_kept_association_survives_pacs_idle_timeout(orthanc_peer_factory, testdata, monkeypatch):
    import time

    from mdtviewer.pacs import client as client_mod

    peer = orthanc_peer_factory(DicomScpTimeout=1)  # Orthanc drops idle associations after 1 s
    assert peer.upload(testdata / "us_philips_cx50_palette_rle.dcm")
    with PacsClient(node_for(peer)) as c:
        assert c.echo().ok
        first = c._query_assoc
        time.sleep(1.6)  # the PACS has closed it meanwhile
        assert len(c.find_studies(StudyQuery())) == 1
        assert c.echo().ok
        monkeypatch.setattr(client_mod, "IDLE_REUSE_SECONDS", 0.5)
        time.sleep(0.6)
        assert c.echo().ok and c._query_assoc is not first


def test_find_cancel(client, extra):
    import threading

    cancel = threading.Event()
    cancel.set()
    with pytest.raises(PacsError, match="query cancelled"):
        client.find_studies(StudyQuery(modality=None), cancel=cancel)
    assert client.echo().ok  # the client is usable afterwards


def test_transfers_are_audited_without_identifiers(client, extra, tmp_path, orthanc_peer_factory, testdata):
    import json

    from mdtviewer.infra import audit

    client.find_studies(StudyQuery(patient_id="13US1", patient_name="Compressed*"))
    uid = study_uid(extra["synth"][0])
    from mdtviewer.pacs.client import audit_retrieve

    audit_retrieve(client.node, uid, client.retrieve(uid, LocalStore(tmp_path)), purpose="test")
    peer = orthanc_peer_factory()
    with PacsClient(node_for(peer)) as c:
        assert c.store([testdata / "us_ge_logiq700_j2k_lossless_ybr_rct.dcm"]).ok
    text = audit.audit_path().read_text()
    assert "13US1" not in text and "Compressed" not in text
    recs = [json.loads(line) for line in text.splitlines()]
    q = next(r for r in recs if r["event"] == "query")
    assert q["outcome"] == "success" and q["detail"]["keys"] == ["patient_id", "patient_name", "modality"]
    r = next(r for r in recs if r["event"] == "retrieve")
    assert r["study_uid"] == uid and r["detail"]["fetched"] == 8 and r["detail"]["purpose"] == "test"
    s = next(r for r in recs if r["event"] == "store")
    assert s["outcome"] == "success" and s["detail"]["instances"] == 1


def test_get_of_a_study_with_more_classes_than_contexts_allow(orthanc_peer_factory, testdata, tmp_path):
    # 12 SOP classes x 12 syntaxes > 127 presentation contexts: the retrieve is split over associations
    classes = [
        "1.2.840.10008.5.1.4.1.1.2",
        "1.2.840.10008.5.1.4.1.1.4",
        "1.2.840.10008.5.1.4.1.1.7",
        "1.2.840.10008.5.1.4.1.1.12.1",
        "1.2.840.10008.5.1.4.1.1.12.2",
        "1.2.840.10008.5.1.4.1.1.20",
        "1.2.840.10008.5.1.4.1.1.128",
        "1.2.840.10008.5.1.4.1.1.1",
        "1.2.840.10008.5.1.4.1.1.1.1",
        "1.2.840.10008.5.1.4.1.1.1.2",
        "1.2.840.10008.5.1.4.1.1.6.1",
        "1.2.840.10008.5.1.4.1.1.3.1",
    ]
    files = make_synthetic_study(testdata, tmp_path / "src", len(classes))
    peer = orthanc_peer_factory()
    for f, cls in zip(files, classes):
        ds = pydicom.dcmread(f)
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = cls
        ds.save_as(f, enforce_file_format=True)
        assert peer.upload(f)
    with PacsClient(node_for(peer)) as c:
        r = c.retrieve(study_uid(files[0]), LocalStore(tmp_path / "store"))
    assert r.ok, r.message
    assert sorted(pydicom.dcmread(p).SOPClassUID for p in r.paths) == sorted(classes)


def test_store_sends_the_original_bytes_and_says_why_a_file_is_refused(orthanc_peer_factory, testdata, tmp_path):
    """C-STORE streams each file as it is on disk: the data set the PACS holds is
    byte-identical to the original's; a structurally broken file (stray item tags that
    pydicom reads but cannot re-encode) is offered as it is and the PACS's refusal is
    reported, not an encoder error of ours."""
    from pynetdicom.dsutils import split_dataset

    peer = orthanc_peer_factory()
    good = testdata / "us_philips_epiq7c_mono2_jpeg_lossless_sv1.dcm"
    broken = testdata / "us_philips_iu22_mono2_jpegls_lossless.dcm"
    after = testdata / "us_ge_logiq700_rgb_explicit_le.dcm"  # same SOP class, after the broken one
    with PacsClient(node_for(peer)) as c:
        res = c.store([good, broken, after])
    # Orthanc drops the association on the broken file: the file after it still goes
    assert res.sent == [good, after]
    ((bad_path, reason),) = res.failed
    assert bad_path == broken
    assert "encode" not in reason, reason  # sent as it is, not re-encoded by us
    assert "refused" in reason or "closed the connection" in reason, reason
    uid = pydicom.dcmread(good, stop_before_pixels=True).SOPInstanceUID
    (found,) = peer.http("/tools/lookup", data=uid.encode(), method="POST")
    stored = tmp_path / "stored.dcm"
    stored.write_bytes(peer.http(f"/instances/{found['ID']}/file"))
    _meta, off_orig = split_dataset(good)
    _meta, off_stored = split_dataset(stored)
    assert stored.read_bytes()[off_stored:] == good.read_bytes()[off_orig:]


def test_find_by_accession_and_by_single_character_wildcard(client, orthanc):
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in orthanc.uploaded]
    with_acc = [ds for ds in headers if str(ds.get("AccessionNumber", "") or "").strip()]
    assert with_acc, "the corpus has studies with an accession number"
    acc = str(with_acc[0].AccessionNumber).strip()
    expected = {ds.StudyInstanceUID for ds in headers if str(ds.get("AccessionNumber", "")).strip() == acc}
    res = client.find_studies(StudyQuery(accession=acc, modality=None))
    assert {s.study_instance_uid for s in res} == expected
    assert all(s.accession_number == acc for s in res)
    # '?' stands for exactly one character (DICOM PS3.4 C.2.2.2.4)
    pid = "13US1"
    res = client.find_studies(StudyQuery(patient_id=pid[:-1] + "?", modality=None))
    assert {s.patient_id for s in res} == {pid}
    assert client.find_studies(StudyQuery(patient_id=pid + "?", modality=None)) == []
