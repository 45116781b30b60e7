"""C-FIND answers decoded from their raw bytes (issue 12.3) give exactly what pydicom's
per-element decoding gives, on a real Orthanc (Latin-1 answers by default, UTF-8 when asked)."""

from __future__ import annotations

import pytest

from mdtviewer.pacs import client as pacs_client
from mdtviewer.pacs.client import PacsClient, StudyQuery
from mdtviewer.pacs.nodes import PacsNode
from orthanc_peer import HOST, OUR_AET

pytestmark = pytest.mark.orthanc


def _find_both(peer, monkeypatch, query: StudyQuery):
    node = PacsNode("t", peer.aet, HOST, peer.dicom_port, calling_aet=OUR_AET, connect_timeout=3)
    used = []
    real = pacs_client._study_from_raw

    def spy(ds):
        r = real(ds)
        used.append(r is not None)
        return r

    with PacsClient(node) as c:
        monkeypatch.setattr(pacs_client, "_study_from_raw", spy)
        fast = c.find_studies(query)
        monkeypatch.setattr(pacs_client, "_study_from_raw", lambda ds: None)
        slow = c.find_studies(query)
    return fast, slow, used


def test_raw_decoding_equals_pydicom_on_the_corpus(orthanc, monkeypatch):
    fast, slow, used = _find_both(orthanc, monkeypatch, StudyQuery(modality=None))
    assert len(slow) >= 10
    assert used and all(used)  # every answer took the raw path
    assert fast == slow
    assert fast.refused == slow.refused and fast.reasons == slow.reasons
    assert any(s.patient_name for s in fast) and any(s.modalities for s in fast)
    assert any(s.instances for s in fast)


def test_raw_decoding_equals_pydicom_in_utf8(peer_with_utf8_patient, monkeypatch):
    peer, study_uid = peer_with_utf8_patient
    fast, slow, used = _find_both(peer, monkeypatch, StudyQuery(modality=None))
    assert used and all(used)
    assert fast == slow
    (hit,) = [s for s in fast if s.study_instance_uid == study_uid]
    assert hit.patient_name == "Żółć^Łukasz" and hit.study_description == "Tętnice szyjne"


from test_pacs_charset import peer_with_utf8_patient  # noqa: E402,F401  (the UTF-8 Orthanc fixture)
