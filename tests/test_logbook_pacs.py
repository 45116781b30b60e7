"""The logbook, audit and worklist built from reviews that exist only on a PACS (a real Orthanc)."""

from __future__ import annotations

import json

import pytest

from logbook_scenario import ANN, EXPECTED_AUDIT, EXPECTED_LOGBOOK, write_reviews
from mdtviewer.cli import main as cli_main
from mdtviewer.infra import paths
from mdtviewer.pacs import nodes
from mdtviewer.pacs.nodes import PacsNode
from orthanc_peer import HOST, OUR_AET

pytestmark = pytest.mark.orthanc


def _json(capsys, argv, rc=0):
    capsys.readouterr()
    assert cli_main(argv) == rc
    cap = capsys.readouterr()
    return json.loads(cap.out), cap.err


def test_logbook_audit_worklist_from_orthanc_only(orthanc_peer_factory, tmp_path, capsys):
    peer = orthanc_peer_factory(load=False)
    folder = tmp_path / "written-elsewhere"
    with pytest.MonkeyPatch.context() as mp:  # another workstation wrote them
        mp.setenv("MDTVIEWER_HOME", str(tmp_path / "elsewhere-home"))
        files = write_reviews(cli_main, tmp_path, folder)
    for f in files.values():
        assert peer.upload(f)
    assert peer.instance_count() == len(files)
    node = PacsNode("lab-pacs", peer.aet, HOST, peer.dicom_port, calling_aet=OUR_AET, connect_timeout=3,
                    acse_timeout=5, dimse_timeout=10)
    nodes.add_node(node, replace=True)
    assert not any(paths.store_dir().rglob("*.dcm"))  # nothing local

    out, err = _json(capsys, ["logbook", "--node", "lab-pacs", "--json"])
    assert "16 fetched from PACS" in err and "14 review(s)" in err
    assert {t["trainee"]: {k: t[k] for k in EXPECTED_LOGBOOK[t["trainee"]]} for t in out} == EXPECTED_LOGBOOK
    # images were never fetched: only the 16 SRs are in the store
    assert len(list(paths.store_dir().rglob("*.dcm"))) == 16

    out, err = _json(capsys, ["audit", "discrepancies", "--node", "lab-pacs", "--json"])
    assert "fetched from PACS" not in err  # already here: nothing fetched twice
    for k in ("reviews", "by_agreement", "by_score"):
        assert out[k] == EXPECTED_AUDIT[k]

    out, _ = _json(capsys, ["worklist", "--node", "lab-pacs", "--json"])
    assert (len(out["drafts"]), len(out["amended"]), len(out["second_opinion_requests"])) == (3, 2, 1)


def test_pacs_date_range_fetches_only_that_period(orthanc_peer_factory, tmp_path, capsys):
    peer = orthanc_peer_factory(load=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MDTVIEWER_HOME", str(tmp_path / "elsewhere-home"))
        files = write_reviews(cli_main, tmp_path, tmp_path / "w")
    for f in files.values():
        peer.upload(f)
    nodes.add_node(PacsNode("lab-pacs", peer.aet, HOST, peer.dicom_port, calling_aet=OUR_AET, connect_timeout=3,
                            acse_timeout=5, dimse_timeout=10), replace=True)
    # studies C (20190124) and D (20200414): p3, p4, p4b, s3, s4, s4b
    out, err = _json(capsys, ["logbook", "--node", "lab-pacs", "--from", "20190101", "--to", "20201231", "--json"])
    assert "6 fetched from PACS" in err
    assert [(t["trainee"], t["reviews"], t["signed"]) for t in out] == [(ANN, 2, 1)]


def test_unreachable_pacs_is_one_line_and_exit_1(tmp_path, capsys):
    nodes.add_node(PacsNode("dead", "NOPE", HOST, 9, calling_aet=OUR_AET, connect_timeout=1, acse_timeout=1,
                            dimse_timeout=1), replace=True)
    capsys.readouterr()
    assert cli_main(["logbook", "--node", "dead", "--json"]) == 1
    cap = capsys.readouterr()
    assert json.loads(cap.out) == []
    assert "PACS: dead: " in cap.err and "Traceback" not in cap.err
