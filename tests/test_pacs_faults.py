"""Network faults against a real Orthanc: each ends in a clear message and nothing is lost."""

from __future__ import annotations

import os
import signal

import pydicom
import pytest

from mdtviewer.pacs import outbox
from mdtviewer.pacs.client import PacsClient, PacsError, StudyQuery
from mdtviewer.pacs.localstore import LocalStore
from mdtviewer.pacs.nodes import PacsNode, save_nodes
from orthanc_peer import HOST, OUR_AET, free_port, make_synthetic_study

pytestmark = pytest.mark.orthanc


def node_for(peer, move_port=None, **kw) -> PacsNode:
    return PacsNode("peer", peer.aet, HOST, peer.dicom_port, listen_aet=OUR_AET, listen_port=move_port, **kw)


def study_uid(path) -> str:
    return pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID


def test_pacs_not_running():
    port = free_port()
    c = PacsClient(PacsNode("down", "ORTHANC", HOST, port))
    r = c.echo()
    assert not r.ok
    assert r.message == f"PACS not reachable at 127.0.0.1:{port} (connection refused: nothing listening on that port)"
    res = c.retrieve("1.2.3", LocalStore())
    assert not res.ok and res.message.startswith("PACS not reachable")


def test_wrong_called_aet_is_rejected(orthanc):
    c = PacsClient(PacsNode("x", "NOTORTHANC", HOST, orthanc.dicom_port))
    r = c.echo()
    assert not r.ok
    assert (
        r.message
        == f"association rejected by the PACS at 127.0.0.1:{orthanc.dicom_port} (permanent): "
        "called AE title 'NOTORTHANC' not recognised"
    )
    with pytest.raises(PacsError, match="called AE title 'NOTORTHANC' not recognised"):
        c.find_studies(StudyQuery())


def test_move_to_an_ae_the_pacs_does_not_know(dcmqrscp_peer, testdata, tmp_path):
    # DCMTK's Q/R SCP knows us as a caller but not our storage AE: status 0xA801
    src = testdata / "us_philips_cx50_palette_rle.dcm"
    dcmqrscp_peer.start([src], known={"caller": (OUR_AET, free_port())})
    store = LocalStore(tmp_path)
    node = PacsNode("qr", "DCMQR", HOST, dcmqrscp_peer.dicom_port, listen_aet="MDTSTORE", listen_port=free_port())
    with PacsClient(node, listen_host=HOST) as c:
        r = c.retrieve(study_uid(src), store, method="move")
    assert not r.ok and r.completed == 0 and r.remaining == r.total == 1
    assert "move destination unknown: the PACS does not know our AE title 'MDTSTORE'" in r.message
    assert "(status 0xA801)" in r.message and f"port {node.listen_port}" in r.message
    assert store.studies() == []


def test_move_to_an_ae_orthanc_does_not_know(orthanc_peer_factory, testdata, tmp_path):
    # Orthanc 1.10.1 answers an unknown destination with 0xC000 (not 0xA801): the message still says what to fix
    peer = orthanc_peer_factory()
    src = testdata / "us_philips_cx50_palette_rle.dcm"
    assert peer.upload(src)
    store = LocalStore(tmp_path)
    node = node_for(peer, free_port())
    node.listen_aet = "MDTSTORE"
    with PacsClient(node, listen_host=HOST) as c:
        r = c.retrieve(study_uid(src), store, method="move")
    assert not r.ok and r.completed == 0 and r.remaining == r.total == 1
    assert "does not know our AE title 'MDTSTORE' as a move destination" in r.message and "0xC000" in r.message
    assert store.studies() == []


def test_move_from_an_ae_the_pacs_does_not_allow(orthanc_peer_factory, testdata, tmp_path):
    peer = orthanc_peer_factory(modalities={})  # DicomAlwaysAllowMove false: Orthanc drops the request
    src = testdata / "us_philips_cx50_palette_rle.dcm"
    assert peer.upload(src)
    with PacsClient(node_for(peer, free_port()), listen_host=HOST) as c:
        r = c.retrieve(study_uid(src), LocalStore(tmp_path), method="move")
    assert not r.ok and r.remaining == 1
    # Orthanc accepts the association, then aborts it when asked (A-ABORT from the service user): said so
    assert (
        f"ended the association in answer to our C-MOVE (A-ABORT by the PACS itself): it may not allow our AE "
        f"title '{OUR_AET}' to do this" in r.message
    )


def test_pacs_killed_mid_retrieve_keeps_partial_and_retry_completes(orthanc_peer_factory, testdata, tmp_path):
    peer = orthanc_peer_factory()
    files = make_synthetic_study(testdata, tmp_path / "src", 12)
    for f in files:
        assert peer.upload(f)
    uid = study_uid(files[0])
    store = LocalStore(tmp_path / "store")
    arrived = []

    def kill_after_four(path):
        arrived.append(path)
        if len(arrived) == 4:
            os.kill(peer.proc.pid, signal.SIGKILL)  # the PACS dies between two instances

    with PacsClient(node_for(peer)) as c:
        r = c.retrieve(uid, store, on_instance=kill_after_four)
    assert not r.ok
    assert r.completed == len(arrived) >= 4 and r.remaining == 12 - r.completed
    assert "did not arrive" in r.message and "connection to the PACS was lost during the C-GET" in r.message
    assert all(p.is_file() for p in arrived)  # partial kept, complete files only
    assert not list((tmp_path / "store").rglob("*.part"))
    peer.proc.wait(timeout=10)
    peer.proc = None
    peer.start()  # same storage, same ports: the PACS is back
    fetched = []
    with PacsClient(node_for(peer)) as c:
        r2 = c.retrieve(uid, store, on_instance=fetched.append)
    assert r2.ok, r2.message
    assert r2.fetched == len(fetched) == 12 - r.completed  # only the missing ones
    assert {pydicom.dcmread(p).SOPInstanceUID for p in r2.paths} == {pydicom.dcmread(f).SOPInstanceUID for f in files}


def test_failed_store_is_kept_in_outbox_and_sent_when_pacs_is_back(orthanc_peer_factory, testdata, tmp_path):
    peer = orthanc_peer_factory(start=False)
    node = node_for(peer)
    save_nodes([node])
    sr = tmp_path / "review_sr.dcm"
    sr.write_bytes((testdata / "sr_enhanced_tid1500_dcmjs.dcm").read_bytes())
    res, queued = outbox.send_or_queue([sr], node)
    assert not res.ok and len(queued) == 1
    assert "PACS not reachable" in res.failed[0][1]
    [item] = outbox.pending()
    assert item.node_name == "peer" and "PACS not reachable" in item.last_error
    assert item.path.read_bytes() == sr.read_bytes()
    # still down: a retry keeps it and counts the attempt
    [o] = outbox.flush()
    assert not o.ok and "kept in the outbox" in o.message
    assert outbox.pending()[0].attempts == 2  # the failed send, then this retry
    peer.start()
    [o] = outbox.flush()
    assert o.ok, o.message
    assert outbox.pending() == []
    assert peer.sop_instance_uids() == {pydicom.dcmread(sr).SOPInstanceUID}


def test_tls_server_certificate_not_trusted(orthanc_tls, tls_material):
    t = tls_material
    node = node_for(orthanc_tls, tls_ca=str(t.other_ca), tls_cert=str(t.client_cert), tls_key=str(t.client_key))
    r = PacsClient(node).echo()
    assert not r.ok
    assert r.message.startswith(
        f"TLS handshake with 127.0.0.1:{orthanc_tls.dicom_port} failed: the PACS certificate is not trusted ("
    )
    assert "certificate" in r.message.split("(", 1)[1]  # OpenSSL's own reason follows


def test_tls_our_certificate_not_trusted_by_pacs(orthanc_tls, tls_material):
    t = tls_material
    node = node_for(orthanc_tls, tls_ca=str(t.ca), tls_cert=str(t.other_client_cert), tls_key=str(t.other_client_key))
    r = PacsClient(node).echo()
    assert not r.ok
    assert (
        f"TLS handshake with 127.0.0.1:{orthanc_tls.dicom_port} failed: the PACS refused our certificate" in r.message
    )


def test_tls_without_tls_to_a_tls_port(orthanc_tls):
    node = node_for(orthanc_tls, acse_timeout=2)
    r = PacsClient(node).echo()
    assert not r.ok and r.message.startswith(f"the PACS at 127.0.0.1:{orthanc_tls.dicom_port}")
    assert "does it expect TLS?" in r.message


def test_tls_below_1_2_is_refused_and_said_why(tls_material):
    """DICOM's secure transport profiles ask for TLS 1.2 or newer: our client (and our C-MOVE
    listener) refuse anything older themselves, whatever the system's OpenSSL defaults, and a
    peer that only speaks TLS 1.0/1.1 gets a handshake failure that says so."""
    import socket
    import ssl
    import threading
    import warnings

    t = tls_material
    srv_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv_ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():  # deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        srv_ctx.minimum_version = ssl.TLSVersion.TLSv1
        srv_ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    srv_ctx.load_cert_chain(t.server_cert, t.server_key)
    listener = socket.create_server((HOST, 0))
    port = listener.getsockname()[1]
    listener.settimeout(10)

    def serve() -> None:  # an old PACS: accepts connections, offers TLS 1.1 at most
        for _ in range(4):
            try:
                conn, _addr = listener.accept()
            except OSError:
                return
            with conn:
                try:
                    with srv_ctx.wrap_socket(conn, server_side=True) as tls:
                        tls.recv(1)
                except (ssl.SSLError, OSError):
                    pass

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        node = PacsNode(
            "old",
            "OLDPACS",
            HOST,
            port,
            tls_ca=str(t.ca),
            tls_cert=str(t.client_cert),
            tls_key=str(t.client_key),
            connect_timeout=5,
            acse_timeout=5,
        )
        client = PacsClient(node)
        for ctx in (client._tls_context(), client._tls_server_context()):
            assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
        r = client.echo()
    finally:
        try:
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the old PACS's thread
        except OSError:
            pass
        listener.close()
        server.join(timeout=15)
    assert not server.is_alive()
    assert not r.ok
    assert r.message.startswith(f"TLS handshake with {HOST}:{port} failed"), r.message
    assert "version" in r.message, r.message  # OpenSSL's reason: the protocol version


def test_a_dead_orthanc_is_noticed_and_restarted_with_its_data(orthanc_peer_factory, testdata):
    # issue 11.13: a fixture that does not notice its Orthanc died failed twelve tests in a cascade
    peer = orthanc_peer_factory()
    assert peer.upload(testdata / "us_philips_cx50_palette_rle.dcm")
    assert peer.ensure_alive() is None  # alive: nothing to do
    os.kill(peer.proc.pid, signal.SIGKILL)
    peer.proc.wait(timeout=10)
    why = peer.ensure_alive()
    assert why is not None and why.startswith("Orthanc died (exit -9): ")
    assert "Orthanc has started" in why  # its last log lines
    assert peer.running and peer.instance_count() == 1  # same ports, same storage
    r = PacsClient(PacsNode("x", peer.aet, HOST, peer.dicom_port)).echo()
    assert r.ok, r.message
