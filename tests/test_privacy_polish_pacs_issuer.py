"""HAZ-027 C4: identity is Patient ID + Issuer of Patient ID, so where a PACS answer's ID is shown its issuer is
shown beside it -- in the PACS dialog's result list (hidden under privacy like the ID, and the "Patient N"
numbering tells two issuers' patients apart) and in ``mdtviewer pacs find`` with ``--show-identifiers`` (the
text column "ID (issuer)", the JSON ``issuer`` key; both null/absent without the flag, HAZ-008 C2).

A real Orthanc holds three studies made from corpus ultrasound files (as in tests/test_safety_core_pacs_issuer.py):
two people with the same Patient ID MRN0042 AND the same name from issuers HOSP-A and HOSP-B, and a study of that
ID that names no issuer."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import pytestqt  # noqa: F401  (a test dependency: fail, never skip)
from PySide6.QtCore import Qt

from mdtviewer.pacs import nodes
from mdtviewer.ui.dialogs.pacs_dialog import STUDY_ROLE
from orthanc_peer import HOST
from study_copies import issuer_study

pytestmark = pytest.mark.orthanc

PID, NAME = "MRN0042", "Alpha^Ann"
SECRETS = (PID, "HOSP-A", "HOSP-B", "Alpha", "ALPHA")



def _study(testdata, tmp_path, corpus_name: str, issuer: str | None, date: str) -> tuple:
    return issuer_study(testdata / corpus_name, tmp_path, PID, issuer, NAME, date)


@pytest.fixture
def pacs(orthanc_peer_factory, testdata, tmp_path, move_port):
    made = {
        "HOSP-A": _study(testdata, tmp_path, "us_acuson_sequoia_ybr_full_rle.dcm", "HOSP-A", "20200101"),
        "HOSP-B": _study(testdata, tmp_path, "us_philips_epiq7c_mono2_jpeg_lossless_sv1.dcm", "HOSP-B", "20190101"),
        "": _study(testdata, tmp_path, "usmf_sonosite_jpeg_ybr422_30f.dcm", None, "20180101"),
    }
    peer = orthanc_peer_factory(load=False)
    for path, _uid in made.values():
        assert peer.upload(path)
    nodes.add_node(nodes.PacsNode("mdt-pacs", peer.aet, HOST, peer.dicom_port, listen_aet="MDTVIEWER",
                                  listen_port=move_port, connect_timeout=3))
    return {"peer": peer, "uids": {issuer: uid for issuer, (_p, uid) in made.items()}}


def _find(peer, home, *extra) -> subprocess.CompletedProcess:
    env = dict(os.environ, MDTVIEWER_HOME=str(home))
    conn = ["--host", HOST, "--port", str(peer.dicom_port), "--called-aet", peer.aet]
    return subprocess.run([sys.executable, "-m", "mdtviewer", "pacs", "find", *conn, "--patient-id", PID,
                           "--modality", "ANY", *extra], capture_output=True, text=True, timeout=120, env=env)


def test_pacs_find_shows_the_issuer_only_where_the_id_is_shown(pacs, mdt_home):
    peer, uids = pacs["peer"], pacs["uids"]
    # without --show-identifiers: neither the ID nor its issuer, in text or JSON
    for extra in ((), ("--json",)):
        r = _find(peer, mdt_home, *extra)
        assert r.returncode == 0, r.stderr
        assert not [s for s in SECRETS if s in r.stdout or s in r.stderr], (r.stdout, r.stderr)
    rows = [json.loads(line) for line in _find(peer, mdt_home, "--json").stdout.splitlines()]
    assert len(rows) == 3
    for row in rows:  # the README's keys, issuer among them, always there; null without the flag
        assert set(row) == {"study_instance_uid", "patient_id", "issuer", "study_date", "study_description",
                            "modalities", "instances"}
        assert row["patient_id"] is None and row["issuer"] is None

    # with it: each study's ID with its own issuer ("" where the PACS names none)
    r = _find(peer, mdt_home, "--json", "--show-identifiers")
    assert r.returncode == 0, r.stderr
    got = {row["study_instance_uid"]: (row["patient_id"], row["issuer"])
           for row in map(json.loads, r.stdout.splitlines())}
    assert got == {uids["HOSP-A"]: (PID, "HOSP-A"), uids["HOSP-B"]: (PID, "HOSP-B"), uids[""]: (PID, "")}
    r = _find(peer, mdt_home, "--show-identifiers")
    assert r.returncode == 0, r.stderr
    lines = {uid: next(ln for ln in r.stdout.splitlines() if ln.endswith(uid)) for uid in uids.values()}
    assert f"{PID} (HOSP-A)" in lines[uids["HOSP-A"]] and f"{PID} (HOSP-B)" in lines[uids["HOSP-B"]]
    assert PID in lines[uids[""]] and f"{PID} (" not in lines[uids[""]]  # no issuer: the ID alone


def test_pacs_dialog_shows_the_issuer_and_hides_it_under_privacy(pacs, qtbot, window):
    uids = pacs["uids"]
    window.pacs_action.trigger()
    dlg = window.pacs_dialog
    try:
        qtbot.waitExposed(dlg)
        dlg.node_combo.setCurrentIndex(dlg.node_combo.findData("mdt-pacs"))
        dlg.patient_id.setText(PID)
        dlg.modality.setCurrentIndex(dlg.modality.findData(None))
        with qtbot.waitSignal(dlg.queryFinished, timeout=20_000):
            qtbot.mouseClick(dlg.search_button, Qt.MouseButton.LeftButton)
        items = [dlg.results.topLevelItem(i) for i in range(dlg.results.topLevelItemCount())]
        by_uid = {it.data(0, STUDY_ROLE).study_instance_uid: it for it in items}
        assert set(by_uid) == set(uids.values())
        assert dlg.results.headerItem().text(1) == "Patient ID (issuer)"
        assert by_uid[uids["HOSP-A"]].text(1) == f"{PID} (HOSP-A)"
        assert by_uid[uids["HOSP-B"]].text(1) == f"{PID} (HOSP-B)"
        assert by_uid[uids[""]].text(1) == PID  # no issuer: the ID alone, nothing invented

        window.set_privacy(True)  # the dialog follows the window
        qtbot.waitUntil(lambda: all(it.text(1) == "[hidden]" for it in items), timeout=5_000)
        texts = [it.text(c) for it in items for c in range(dlg.results.columnCount())]
        texts += [it.toolTip(c) for it in items for c in range(dlg.results.columnCount())]
        assert not [s for s in SECRETS if any(s in t for t in texts)], texts
        # the same ID and the same name from two issuers: two patients, numbered apart
        names = {issuer: by_uid[uid].text(0) for issuer, uid in uids.items()}
        assert len(set(names.values())) == 3, names
        assert all(n.startswith("Patient ") and n.endswith("[hidden]") for n in names.values()), names

        window.set_privacy(False)
        qtbot.waitUntil(lambda: by_uid[uids["HOSP-B"]].text(1) == f"{PID} (HOSP-B)", timeout=5_000)
    finally:
        dlg.shutdown()
