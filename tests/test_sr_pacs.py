"""Review SRs and a real PACS (Orthanc): C-STORE, C-FIND, C-GET back; outbox when it is down."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mdtviewer.infra import paths
from mdtviewer.pacs import nodes, outbox
from mdtviewer.pacs.client import PacsClient
from mdtviewer.pacs.localstore import LocalStore
from mdtviewer.pacs.nodes import PacsNode
from mdtviewer.sr.reader import read_sr
from mdtviewer.sr.review_reader import review_from_sr
from mdtviewer.workflows import reviews
from orthanc_peer import HOST, OUR_AET
from sr_helpers import CINE, preceptorship

pytestmark = pytest.mark.orthanc


def _node(peer, name="orthanc-test") -> PacsNode:
    node = PacsNode(name, peer.aet, HOST, peer.dicom_port, calling_aet=OUR_AET, connect_timeout=3, acse_timeout=5,
                    dimse_timeout=10)
    nodes.add_node(node, replace=True)
    return node


def _signed_review_file():
    review = preceptorship()
    return review, reviews.sign(replace(review, verifier=None), review.verifier, [CINE])


def test_store_find_get_round_trip_through_orthanc(orthanc_peer_factory):
    peer = orthanc_peer_factory(load=False)
    assert peer.upload(CINE)  # the reviewed study is on the PACS
    node = _node(peer)
    review, path = _signed_review_file()
    sr_uid = read_sr(path).sop_instance_uid

    msg = reviews.send(path, node.name)
    assert msg == f"stored on {node.name}"
    assert sr_uid in peer.sop_instance_uids()
    assert outbox.pending() == []

    with PacsClient(node) as client:
        found = {r.sop_instance_uid: r for r in client.find_instances(review.study_instance_uid)}
        assert found[sr_uid].sop_class_uid == "1.2.840.10008.5.1.4.1.1.88.33"
        assert "SR" in {s.modality for s in client.find_series(review.study_instance_uid)}
        # another workstation: nothing local, the review comes from the PACS into the local store
        path.unlink()
        assert reviews.reviews_for_study(review.study_instance_uid) == []
        store = LocalStore()
        result = client.retrieve(review.study_instance_uid, store, method="get")
        assert result.ok, result.message
    assert store.has(sr_uid)

    # what the report panel lists after the retrieve: the signed review, read back field by field
    docs = reviews.reviews_for_study(review.study_instance_uid)
    assert [d.sop_instance_uid for d in docs] == [sr_uid]
    assert docs[0].is_review and docs[0].status == "signed"
    assert review_from_sr(docs[0].path) == review  # the verification date-time as given (QA 7) ...
    import datetime as dt_

    import pydicom

    ds = pydicom.dcmread(docs[0].path, stop_before_pixels=True)
    verified = str(ds.VerifyingObserverSequence[0].VerificationDateTime)
    assert verified == review.verifier.datetime  # (20261125111500+0100 in sr_helpers)
    # ... and the content date-time (local time, no offset written) is not later: complete when it was signed
    content = dt_.datetime.strptime(f"{ds.ContentDate}{str(ds.ContentTime)[:6]}", "%Y%m%d%H%M%S").astimezone()
    assert "TimezoneOffsetFromUTC" not in ds and content <= dt_.datetime.strptime(verified, "%Y%m%d%H%M%S%z")
    assert docs[0].path.is_relative_to(paths.store_dir()) and "reviews" not in docs[0].path.parts


def test_pacs_down_keeps_the_sr_in_the_outbox_until_it_is_back(orthanc_peer_factory):
    peer = orthanc_peer_factory(load=False, start=False)  # configured, not running
    node = _node(peer, "down-pacs")
    _review, path = _signed_review_file()
    original = path.read_bytes()

    msg = reviews.send(path, node.name)
    assert msg.startswith("down-pacs: ") and msg.endswith("kept locally in outbox, will be retried")
    waiting = outbox.pending("down-pacs")
    assert len(waiting) == 1 and waiting[0].path.read_bytes() == original
    assert path.read_bytes() == original  # the local copy is untouched too

    peer.start()
    outcomes = outbox.flush("down-pacs")
    assert [o.ok for o in outcomes] == [True], [o.message for o in outcomes]
    assert outbox.pending() == []
    assert read_sr(path).sop_instance_uid in peer.sop_instance_uids()


def test_send_to_unknown_node_is_a_clear_error():
    _review, path = _signed_review_file()
    with pytest.raises(ValueError, match="no PACS node named 'nowhere'"):
        reviews.send(path, "nowhere")


def test_sr_list_node_fetches_reviews_that_are_only_on_the_pacs(orthanc_peer_factory, capsys):
    """`mdtviewer sr list STUDY --node N` on a workstation that never saw the review."""
    from mdtviewer.cli import main as cli_main

    peer = orthanc_peer_factory(load=False)
    node = _node(peer)
    review, path = _signed_review_file()
    assert reviews.send(path, node.name) == f"stored on {node.name}"
    sr_uid = read_sr(path).sop_instance_uid
    path.unlink()  # another workstation: nothing local
    capsys.readouterr()
    assert cli_main(["sr", "list", review.study_instance_uid]) == 0
    assert "no reviews or SR documents found" in capsys.readouterr().out
    assert cli_main(["sr", "list", review.study_instance_uid, "--node", node.name]) == 0
    out = capsys.readouterr().out
    assert f"PACS: 1 report(s) fetched from {node.name}" in out
    assert "signed" in out and "preceptorship" in out and sr_uid in out
    peer.stop(kill=True)
    assert cli_main(["sr", "list", review.study_instance_uid, "--node", node.name]) == 1
    out = capsys.readouterr().out
    assert f"PACS: {node.name}: " in out and sr_uid in out  # said why, and still lists what is local


def test_review_folder_from_a_hostile_study_uid_stays_inside_the_store(tmp_path, monkeypatch):
    """A Study UID read from a file names the review folder: '..' or an absolute path never leaves the store."""
    monkeypatch.setenv("MDTVIEWER_HOME", str(tmp_path / "home"))
    from mdtviewer.infra import paths as _paths
    from mdtviewer.workflows.reviews import review_dir

    store = _paths.store_dir().resolve()
    for uid in ("..", ".", "/tmp/evil", "../../x", "1.2.3"):
        d = review_dir(uid).resolve()
        assert d.parent == store / "reviews", (uid, d)
    assert review_dir("1.2.3").name == "1.2.3"
