"""Non-ASCII patient names on the PACS: a query by name with accents, and results decoded right."""

from __future__ import annotations

import pydicom
import pytest

from mdtviewer.pacs.client import PacsClient, StudyQuery
from mdtviewer.pacs.nodes import PacsNode
from orthanc_peer import HOST, OUR_AET, make_synthetic_study

pytestmark = pytest.mark.orthanc

NAME = "Żółć^Łukasz"


@pytest.fixture(scope="module")
def peer_with_utf8_patient(tmp_path_factory, testdata, move_port):
    from orthanc_peer import _new_peer

    # a PACS set up for names beyond Latin-1 (Orthanc's default answers in Latin-1 whatever is asked)
    peer = _new_peer(tmp_path_factory, modalities={"mdtviewer": (OUR_AET, move_port)},
                     extra_config={"DefaultEncoding": "Utf8"})
    peer.start()
    paths = make_synthetic_study(testdata, tmp_path_factory.mktemp("utf8"), 1, series=1, patient_id="PL-1")
    ds = pydicom.dcmread(paths[0])
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = NAME
    ds.StudyDescription = "Tętnice szyjne"
    ds.save_as(paths[0], enforce_file_format=True)
    assert peer.upload(paths[0])
    yield peer, str(ds.StudyInstanceUID)
    peer.stop(kill=True)


def test_query_by_accented_name_finds_and_decodes_it(peer_with_utf8_patient):
    peer, study_uid = peer_with_utf8_patient
    node = PacsNode("pl", peer.aet, HOST, peer.dicom_port, calling_aet=OUR_AET, connect_timeout=3)
    with PacsClient(node) as client:
        everyone = client.find_studies(StudyQuery(modality=None))
        (hit,) = [s for s in everyone if s.study_instance_uid == study_uid]
        assert hit.patient_name == NAME and hit.study_description == "Tętnice szyjne"
        by_name = client.find_studies(StudyQuery(patient_name="Żółć*", modality=None))
        assert [s.study_instance_uid for s in by_name] == [study_uid]
        assert client.find_studies(StudyQuery(patient_name="Zolc*", modality=None)) == []


def test_queries_say_they_are_utf8(peer_with_utf8_patient):
    """Every C-FIND identifier names ISO_IR 192, so accents in a query survive and a PACS that
    honours the query's character set answers in UTF-8 (checked on the wire by Orthanc's log)."""
    from pydicom.dataset import Dataset

    peer, study_uid = peer_with_utf8_patient
    node = PacsNode("pl", peer.aet, HOST, peer.dicom_port, calling_aet=OUR_AET, connect_timeout=3)
    q = Dataset()
    q.QueryRetrieveLevel = "STUDY"
    q.StudyInstanceUID = study_uid
    q.PatientName = ""
    with PacsClient(node) as client:
        (ans,) = client._find(q)
    assert q.SpecificCharacterSet == "ISO_IR 192"
    assert str(ans.PatientName) == NAME
