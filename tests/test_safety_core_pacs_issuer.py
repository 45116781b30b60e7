"""HAZ-027: priors on a PACS are matched on Patient ID + Issuer of Patient ID, never on the ID alone.

A real Orthanc holds four studies that share Patient ID MRN0042.  They are made from corpus ultrasound files
with pydicom (new Study/Series/SOP Instance UIDs, the Patient ID, name, issuer and study date replaced; see
``_study``): the case and its prior from issuer HOSP-A, another person's study from issuer HOSP-B, and a study
that names no issuer.  Orthanc answers the issuer per study and matches on it.
"""

from __future__ import annotations

import pytest
import pytestqt  # noqa: F401  (a test dependency: fail, never skip)

from dicomweb_peer import PASSWORD_ENV, USER, dicomweb_env, dicomweb_factory  # noqa: F401  (fixtures)
from mdtviewer.pacs import nodes
from mdtviewer.pacs.client import StudyQuery
from mdtviewer.pacs.connect import open_client
from mdtviewer.workflows.mdt_session import FOUND_ISSUER_UNKNOWN, FOUND_SAME_PATIENT, MDTSession, find_related
from study_copies import issuer_study

pytestmark = pytest.mark.orthanc

PID = "MRN0042"



def _study(testdata, tmp_path, corpus_name: str, issuer: str | None, name: str, date: str) -> tuple:
    return issuer_study(testdata / corpus_name, tmp_path, PID, issuer, name, date)


def _made(testdata, tmp_path) -> dict:
    return {
        "case": _study(testdata, tmp_path, "us_acuson_sequoia_ybr_full_rle.dcm", "HOSP-A", "Alpha^Ann", "20200101"),
        "prior": _study(testdata, tmp_path, "us_siemens_s2000_rgb_explicit_le.dcm", "HOSP-A", "Alpha^Ann", "20190101"),
        "other": _study(testdata, tmp_path, "us_philips_epiq7c_mono2_jpeg_lossless_sv1.dcm", "HOSP-B", "Beta^Bob",
                        "20180101"),
        "noissuer": _study(testdata, tmp_path, "usmf_sonosite_jpeg_ybr422_30f.dcm", None, "Gamma^Gil", "20170101"),
    }


@pytest.fixture
def pacs(orthanc_peer_factory, testdata, tmp_path, move_port):
    made = _made(testdata, tmp_path)
    peer = orthanc_peer_factory(load=False)
    for path, _uid in made.values():
        assert peer.upload(path)
    nodes.add_node(nodes.PacsNode("mdt-pacs", peer.aet, "127.0.0.1", peer.dicom_port, listen_aet="MDTVIEWER",
                                  listen_port=move_port, connect_timeout=3))
    return {k: v[1] for k, v in made.items()}


def test_the_issuer_is_asked_and_answered(pacs):
    with open_client(nodes.get_node("mdt-pacs")) as client:
        every = client.find_studies(StudyQuery(patient_id=PID, modality=None))
        assert {s.study_instance_uid: s.issuer_of_patient_id for s in every} == {
            pacs["case"]: "HOSP-A", pacs["prior"]: "HOSP-A", pacs["other"]: "HOSP-B", pacs["noissuer"]: ""}
        a = client.find_studies(StudyQuery(patient_id=PID, issuer_of_patient_id="HOSP-A", modality=None))
        assert {s.study_instance_uid for s in a} == {pacs["case"], pacs["prior"]}


def test_another_issuers_patient_is_never_a_prior_and_an_unknown_issuer_is_said(pacs, qtbot, window):
    s = MDTSession(title="Vascular MDT")
    case = s.add_case(pacs["case"], source="mdt-pacs", label="Carotid")
    added = find_related(case)
    got = {r["study_uid"]: r["found"] for r in added}
    assert pacs["other"] not in got  # same ID, issuer HOSP-B: another patient
    assert got == {pacs["prior"]: FOUND_SAME_PATIENT}  # Orthanc matched on the issuer: no issuer-less study
    assert case.related_note() == "1 other study on PACS"

    # a case whose own study names no issuer: every study with its ID is "issuer unknown", none silently merged
    blind = s.add_case(pacs["noissuer"], source="mdt-pacs", label="No issuer")
    got = {r["study_uid"]: r["found"] for r in find_related(blind)}
    assert got == {pacs["case"]: FOUND_ISSUER_UNKNOWN, pacs["prior"]: FOUND_ISSUER_UNKNOWN,
                   pacs["other"]: FOUND_ISSUER_UNKNOWN}
    assert blind.related_note() == "3 other studies on PACS (same Patient ID, issuer unknown)"

    # the presenter's case list says it, on the real window
    window.presenter.set_session(s)
    texts = [window.presenter.case_list.item(i).text() for i in range(window.presenter.case_list.count())]
    assert texts[0].endswith("— 1 other study on PACS") and "issuer unknown" not in texts[0]
    assert "3 other studies on PACS (same Patient ID, issuer unknown)" in texts[1]
    assert not any(PID in t or "Alpha" in t or "Beta" in t for t in texts)  # no identifier on the shared screen


class _PacsIgnoringTheIssuerKey:
    """The real client to the real Orthanc, asking as a PACS that ignores Issuer of Patient ID as a matching
    key would answer: the key left out of the query (the answers still carry each study's issuer)."""

    def __init__(self, client):
        self.client = client

    def find_studies(self, query: StudyQuery, cancel=None):
        from dataclasses import replace

        return self.client.find_studies(replace(query, issuer_of_patient_id=None), cancel)


def test_a_pacs_that_ignores_the_issuer_key_still_gives_no_other_patients_prior(pacs):
    case = MDTSession().add_case(pacs["case"], source="mdt-pacs")
    with open_client(nodes.get_node("mdt-pacs")) as client:
        added = find_related(case, client=_PacsIgnoringTheIssuerKey(client))
    got = {r["study_uid"]: r["found"] for r in added}
    assert got == {pacs["prior"]: FOUND_SAME_PATIENT, pacs["noissuer"]: FOUND_ISSUER_UNKNOWN}
    assert case.related_note() == "2 other studies on PACS (1 same Patient ID, issuer unknown)"


def test_qido_rs_asks_for_and_matches_the_issuer(dicomweb_factory, dicomweb_env, testdata, tmp_path):
    """The same over DICOMweb: Orthanc's DICOMweb plugin answers IssuerOfPatientID and filters on it."""
    made = _made(testdata, tmp_path)
    peer = dicomweb_factory()
    for path, _uid in made.values():
        assert peer.upload(path)
    nodes.add_node(nodes.PacsNode.dicomweb("web", peer.dicomweb_url, user=USER, password_env=PASSWORD_ENV))
    uid = {k: v[1] for k, v in made.items()}
    with open_client(nodes.get_node("web")) as client:
        every = client.find_studies(StudyQuery(patient_id=PID, modality=None))
        assert {s.study_instance_uid: s.issuer_of_patient_id for s in every} == {
            uid["case"]: "HOSP-A", uid["prior"]: "HOSP-A", uid["other"]: "HOSP-B", uid["noissuer"]: ""}
        b = client.find_studies(StudyQuery(patient_id=PID, issuer_of_patient_id="HOSP-B", modality=None))
        assert {s.study_instance_uid for s in b} == {uid["other"]}
    case = MDTSession().add_case(uid["case"], source="web")
    assert {r["study_uid"]: r["found"] for r in find_related(case)} == {uid["prior"]: FOUND_SAME_PATIENT}
