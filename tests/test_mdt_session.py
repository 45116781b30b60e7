"""MDT meeting list: create, order, note, save, reopen; prefetch from a real PACS (Orthanc)."""

from __future__ import annotations

import json
import warnings

import pydicom
import pytest

from mdtviewer.infra import audit
from mdtviewer.workflows.mdt_session import MDTSession, SessionError, prefetch, prefetch_plan

warnings.filterwarnings("ignore", category=UserWarning)

A, B, C = "1.2.826.0.1.3680043.2.1.1", "1.2.826.0.1.3680043.2.1.2", "1.2.826.0.1.3680043.2.1.3"


def test_create_order_note_save_reopen(mdt_home):
    s = MDTSession(title="Vascular MDT", meeting_date="2026-11-25")
    s.add_case(A, note="?CFA stenosis", label="Case 1")
    s.add_case(B, source="main-pacs", label="Case 2")
    s.add_case(C, note="post EVAR surveillance", position=0)
    assert [c.study_uid for c in s.cases] == [C, A, B]
    s.move_down(C)
    assert [c.study_uid for c in s.cases] == [A, C, B]
    s.move_case(B, 0)
    s.move_up(C)
    assert [c.study_uid for c in s.cases] == [B, C, A]
    s.reorder([A, B, C])
    s.set_note(B, "compare with CT angiogram")
    s.set_label(C, "Case 3")
    # the keep-rectangle drawn once per series (for masking burned-in text) is part of the meeting
    s.cases[0].keep_rects["1.2.3.4.5.6"] = [20, 30, 619, 449]
    path = s.save()
    assert path.parent == mdt_home / "mdt" and path.suffix == ".json"
    assert not list(path.parent.glob("*.part"))  # atomic write leaves nothing behind
    back = MDTSession.load(path)
    assert back.title == "Vascular MDT" and back.meeting_date == "2026-11-25"
    assert [(c.study_uid, c.source, c.note, c.label, c.case_id) for c in back.cases] == [
        (c.study_uid, c.source, c.note, c.label, c.case_id) for c in s.cases
    ]
    assert back.cases[0].keep_rects == {"1.2.3.4.5.6": [20, 30, 619, 449]}
    assert back.cases[1].source == "main-pacs" and back.cases[1].is_remote
    assert back.case_at(99).study_uid == C and back.case_at(-1).study_uid == A  # presenter stops at the ends
    # saving again overwrites the same file
    back.remove_case(A)
    assert back.save() == path
    assert [c.study_uid for c in MDTSession.load(path).cases] == [B, C]


def test_bad_input_is_refused(tmp_path):
    s = MDTSession()
    s.add_case(A)
    with pytest.raises(SessionError):
        s.add_case(A)  # twice
    with pytest.raises(SessionError):
        s.add_case("DOE^JOHN")  # not a UID
    with pytest.raises(SessionError):
        s.reorder([A, B])
    with pytest.raises(SessionError):
        s.set_note(B, "x")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SessionError, match="cannot read"):
        MDTSession.load(bad)
    bad.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(SessionError, match="not an mdtviewer"):
        MDTSession.load(bad)
    with pytest.raises(SessionError, match="no such"):
        MDTSession.load(tmp_path / "missing.json")


def test_prefetch_plan_without_network(mdt_home):
    s = MDTSession()
    s.add_case(A)
    s.add_case(B, source="nowhere")
    plan = prefetch_plan(s)
    assert [p.action for p in plan] == ["local", "unknown-node"]
    out = prefetch(s)
    assert [o.ok for o in out] == [True, False]


@pytest.mark.orthanc
def test_prefetch_from_pacs_into_local_store(mdt_home, orthanc, move_port, testdata):
    from mdtviewer.pacs import nodes
    from mdtviewer.pacs.localstore import LocalStore

    nodes.add_node(nodes.PacsNode("mdt-pacs", orthanc.aet, "127.0.0.1", orthanc.dicom_port,
                                  listen_aet="MDTVIEWER", listen_port=move_port))
    study = pydicom.dcmread(testdata / "usmf_sonosite_jpeg_ybr422_30f.dcm", stop_before_pixels=True).StudyInstanceUID
    other = pydicom.dcmread(testdata / "usmf_hp_jpeg_ybr422_34f.dcm", stop_before_pixels=True).StudyInstanceUID
    s = MDTSession(title="prefetch")
    s.add_case(A, note="local case")
    case = s.add_case(study, source="mdt-pacs")
    case.related.append({"study_uid": other, "source": "mdt-pacs"})  # e.g. the patient's earlier imaging
    assert [(p.action, p.study_uid) for p in prefetch_plan(s)] == [("local", A), ("retrieve", study),
                                                                  ("retrieve", other)]
    seen = []
    out = prefetch(s, progress=lambda k, n, case, detail: seen.append((k, n, case.study_uid)))
    assert [(o.ok, o.study_uid) for o in out] == [(True, A), (True, study), (True, other)], [o.message for o in out]
    assert out[1].completed == out[1].total >= 1
    assert LocalStore().study_paths(study) and LocalStore().study_paths(other)
    assert (1, 2, study) in seen and (2, 2, study) in seen
    rec = [r for r in audit.read_records() if r["event"] == "retrieve"]
    assert [(r["study_uid"], r["outcome"]) for r in rec] == [(study, "success"), (other, "success")]
    # a second prefetch finds everything already here
    again = prefetch(s)
    assert again[1].ok and again[1].completed == out[1].completed
