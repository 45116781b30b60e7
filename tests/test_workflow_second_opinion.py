"""Second opinion via PACS, end to end, as two scientists on two workstations would do it.

Scientist A's cine study is on Orthanc.  Scientist B retrieves it, writes a
second opinion (minor discrepancy, a comment on cine frame 12), signs it and
stores it to the PACS (first into the outbox while the PACS is down).
Scientist A, on a fresh workstation that has the study only from its own
folder, opens the study: the report panel finds B's review on the PACS,
lists it with author, kind, status and date, renders it, and its frame
reference opens frame 12.  B then amends the review; A's panel shows the
amendment and the original marked superseded.

Each workstation is its own MDTVIEWER_HOME (settings, local store, outbox).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pydicom
import PySide6.QtPdf  # noqa: F401  (PySide6_Pdf is a dependency: fail, never skip)
import pytest

from mdtviewer.dicom.model import Instance
from mdtviewer.pacs import nodes, outbox
from mdtviewer.pacs.client import PacsClient
from mdtviewer.pacs.localstore import LocalStore
from mdtviewer.pacs.nodes import PacsNode
from mdtviewer.sr.model import ImageComment, Person, Review, Verifier
from mdtviewer.sr.reader import read_sr
from mdtviewer.ui.reports.report_panel import ReportPanel
from mdtviewer.workflows import report_lookup as pacs_reports
from mdtviewer.workflows import reviews
from orthanc_peer import HOST, OUR_AET
from sr_helpers import CINE, header

pytestmark = [pytest.mark.orthanc, pytest.mark.gui]

B_NAME = "Nowak^Zoë"
B_ORG = "St Ærø Vascular Lab"


def _workstation(monkeypatch, tmp_path: Path, who: str, peer) -> PacsNode:
    home = tmp_path / who
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("MDTVIEWER_HOME", str(home))
    node = PacsNode("dept-pacs", peer.aet, HOST, peer.dicom_port, calling_aet=OUR_AET, connect_timeout=2,
                    acse_timeout=5, dimse_timeout=10)
    nodes.add_node(node, replace=True)
    return node


def _b_review(study_uid: str, cine_uid: str, summary: str) -> Review:
    return Review(
        kind="second-opinion",
        author=Person(B_NAME, "second-reader", B_ORG),
        study_instance_uid=study_uid,
        summary=summary,
        agreement="minor-discrepancy",
        agreement_reason="Peak systolic velocity over-estimated: angle > 60°",
        comments=[ImageComment(cine_uid, 12, "Angle correction cursor not parallel to flow")],
    )


def _cine_instance() -> Instance:
    h = header(CINE)
    return Instance(CINE, str(h.SOPClassUID), str(h.SOPInstanceUID), "cine", str(h.StudyInstanceUID))


def _load(qtbot, panel: ReportPanel, until) -> None:
    qtbot.waitUntil(lambda: not panel.pacs_busy() and until(), timeout=30000)


def test_second_opinion_written_on_b_is_found_on_pacs_by_a_and_amended(qtbot, monkeypatch, tmp_path,
                                                                       orthanc_peer_factory):
    peer = orthanc_peer_factory(load=False)
    assert peer.upload(CINE)  # scientist A's study is on the PACS
    h = header(CINE)
    study_uid, cine_uid = str(h.StudyInstanceUID), str(h.SOPInstanceUID)

    # ---- scientist B: retrieve, write, sign; the PACS is down at first, so the outbox keeps it
    node_b = _workstation(monkeypatch, tmp_path, "b", peer)
    with PacsClient(node_b) as client:
        got = client.retrieve(study_uid, LocalStore())
    assert got.ok, got.message
    review = _b_review(study_uid, cine_uid, "Agree with a 50-69 % ICA stenosis; PSV over-called.")
    signed = reviews.sign(review, Verifier(B_NAME, B_ORG), got.paths)
    signed_uid = read_sr(signed).sop_instance_uid
    peer.stop(kill=True)
    msg = reviews.send(signed, node_b.name)
    assert msg.endswith("kept locally in outbox, will be retried")
    assert [p.path.read_bytes() for p in outbox.pending()] == [signed.read_bytes()]
    peer.start()
    assert [o.ok for o in outbox.flush()] == [True]
    assert signed_uid in peer.sop_instance_uids()
    # B's own panel does not fetch back what B wrote here
    again = pacs_reports.fetch_study_reports(study_uid, [node_b])
    assert again.fetched == [] and again.message == "no further reports on dept-pacs"

    # ---- scientist A: a fresh workstation with the study from its own folder only
    _workstation(monkeypatch, tmp_path, "a", peer)
    assert reviews.reviews_for_study(study_uid) == []  # nothing local: only the PACS has B's review
    panel = ReportPanel()
    qtbot.addWidget(panel)
    panel.resize(600, 800)
    panel.show()
    panel.set_instances([_cine_instance()], study_uid)
    _load(qtbot, panel, lambda: any(e.sop_instance_uid == signed_uid for e in panel.entries()))
    (entry,) = [e for e in panel.entries() if e.sop_instance_uid == signed_uid]
    assert entry.category == "review" and entry.kind == "second-opinion"
    assert entry.status == "signed" and entry.verified
    assert entry.author == "Nowak Zoë"
    assert entry.date[:4].isdigit() and len(entry.date) >= 10
    assert "1 report(s) fetched from dept-pacs" in panel.status_label.text()
    from mdtviewer.infra import audit

    (rec,) = [r for r in audit.read_records() if r["event"] == "retrieve"]
    assert rec["study_uid"] == study_uid and rec["outcome"] == "success"
    assert rec["detail"]["purpose"] == "study reports for the report panel" and rec["detail"]["fetched"] == 1
    # rendered, with the discrepancy and the frame comment, and the frame link opens frame 12
    panel.select(signed_uid)
    qtbot.waitUntil(lambda: "Angle correction cursor" in panel.browser.toPlainText(), timeout=10000)
    text = panel.browser.toPlainText()
    assert "minor" in text.lower() and "Peak systolic velocity over-estimated" in text
    links = [a for a in _anchors(panel.browser) if "12" in a]
    assert links, _anchors(panel.browser)
    with qtbot.waitSignal(panel.imageReferenceActivated, timeout=3000) as blocker:
        panel._on_anchor(_url(links[0]))
    assert blocker.args == [cine_uid, 12]
    # a second look finds nothing new and says so; the study's images were never fetched
    with qtbot.waitSignal(panel.pacsChecked, timeout=30000) as again:
        assert panel.check_pacs(force=True)
    assert again.args[0] == "no further reports on dept-pacs"
    assert LocalStore().sop_uids(study_uid) == {signed_uid}

    # ---- scientist B amends the signed review; both are on the PACS
    _workstation(monkeypatch, tmp_path, "b", peer)
    amended_review = replace(_b_review(study_uid, cine_uid, "Amended: PSV re-measured, 50-69 % stands."),
                             verifier=Verifier(B_NAME, B_ORG))
    amended = reviews.amend(signed, amended_review, got.paths)
    amended_uid = read_sr(amended).sop_instance_uid
    assert reviews.send(amended, node_b.name) == "stored on dept-pacs"
    assert {signed_uid, amended_uid} <= peer.sop_instance_uids()
    assert pydicom.dcmread(amended).PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0] \
        .ReferencedSOPSequence[0].ReferencedSOPInstanceUID == signed_uid

    # ---- scientist A looks again: the amendment first, the original marked amended
    _workstation(monkeypatch, tmp_path, "a", peer)
    assert panel.check_pacs(force=True)
    _load(qtbot, panel, lambda: len(panel.entries()) == 2)
    first, second = panel.entries()
    assert first.sop_instance_uid == amended_uid and not first.superseded
    assert second.sop_instance_uid == signed_uid and second.superseded and second.status == "signed, superseded"
    assert first.label() == "Second opinion (amendment)" and second.label() == "Second opinion"


def _anchors(browser) -> list[str]:
    doc = browser.document()
    out = []
    block = doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            frag = it.fragment()
            if frag.isValid() and frag.charFormat().isAnchor():
                out.append(frag.charFormat().anchorHref())
            it += 1
        block = block.next()
    return out


def _url(href: str):
    from PySide6.QtCore import QUrl

    return QUrl(href)


def test_lookup_with_no_pacs_saved_does_nothing(qtbot):
    assert pacs_reports.lookup_nodes() == []
    assert pacs_reports.fetch_study_reports("1.2.3").message == ""
    panel = ReportPanel()
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.loaded, timeout=15000):
        panel.set_instances([_cine_instance()])
    assert not panel.check_pacs() and not panel.pacs_busy()


def test_lookup_of_a_pacs_that_is_down_says_so_and_keeps_local_reports(orthanc_peer_factory):
    peer = orthanc_peer_factory(load=False, start=False)
    node = PacsNode("down", peer.aet, HOST, peer.dicom_port, calling_aet=OUR_AET, connect_timeout=2)
    found = pacs_reports.fetch_study_reports(str(header(CINE).StudyInstanceUID), [node])
    assert found.fetched == [] and found.nodes_asked == ["down"]
    assert len(found.problems) == 1 and found.problems[0].startswith("down: ")
    assert "refused" in found.problems[0] or "not answer" in found.problems[0] or "running" in found.problems[0], \
        found.problems


def test_lookup_prefers_the_node_reviews_are_sent_to(monkeypatch):
    from mdtviewer.infra import settings

    for name in ("a", "b"):
        nodes.add_node(PacsNode(name, "X", HOST, 104))
    assert [n.name for n in pacs_reports.lookup_nodes()] == ["a", "b"]
    settings.set_section("reviewer", {"send_to": "b"})
    assert [n.name for n in pacs_reports.lookup_nodes()] == ["b"]


def test_lookup_on_a_move_node_uses_c_get_while_the_listening_port_is_taken(orthanc_peer_factory, move_port):
    """The PACS dialog keeps its storage SCP on the node's listening port: the report lookup
    must not need that port (C-GET first), so a C-MOVE node still yields its reports."""
    import socket
    from dataclasses import replace as _replace

    from sr_helpers import preceptorship

    peer = orthanc_peer_factory(load=False)
    node = PacsNode("move-pacs", peer.aet, HOST, peer.dicom_port, calling_aet=OUR_AET, retrieve="move",
                    listen_aet=OUR_AET, listen_port=move_port, connect_timeout=3)
    nodes.add_node(node)
    review = preceptorship()
    path = reviews.sign(_replace(review, verifier=None), review.verifier, [CINE])
    assert reviews.send(path, node.name) == "stored on move-pacs"
    uid = read_sr(path).sop_instance_uid
    path.unlink()  # as if written elsewhere
    with socket.socket() as busy:  # the dialog's SCP holds the port
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind((HOST, move_port))
        busy.listen(1)
        found = pacs_reports.fetch_study_reports(review.study_instance_uid, [node])
    assert [p.stem for p in found.fetched] == [uid] and not found.problems
