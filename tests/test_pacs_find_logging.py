"""C-FIND answers are not formatted for pynetdicom's log (issue 12.3: ~45 % of a large C-FIND), so even with
pynetdicom's logger at INFO no patient identifier of an answer reaches the log."""

from __future__ import annotations

import logging

import pydicom
import pytest
from pydicom.uid import generate_uid

from mdtviewer.pacs.client import PacsClient, StudyQuery
from mdtviewer.pacs.nodes import PacsNode
from orthanc_peer import HOST

pytestmark = pytest.mark.orthanc


def test_find_answers_are_not_formatted_into_the_log(orthanc_peer_factory, testdata, tmp_path, caplog):
    peer = orthanc_peer_factory()
    ds = pydicom.dcmread(testdata / "us_atl_hdi5000_jpeg_baseline_ybr422.dcm")
    names = []
    for i in range(3):
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.PatientName, ds.PatientID = f"LOGCHECK^NAME{i}", f"LOGPID{i:04d}"
        names.append((str(ds.PatientName), ds.PatientID))
        p = tmp_path / f"f{i}.dcm"
        ds.save_as(p)
        assert peer.upload(p)
    caplog.set_level(logging.DEBUG, logger="pynetdicom")
    with PacsClient(PacsNode("p", peer.aet, HOST, peer.dicom_port)) as c:
        found = c.find_studies(StudyQuery(patient_name="LOGCHECK*", modality=None))
    assert {s.patient_id for s in found} == {pid for _n, pid in names}  # the answers arrived, decoded
    text = caplog.text
    assert "Find SCP Response" in text or "C-FIND" in text  # pynetdicom did log the exchange
    for _name, pid in names:
        assert "LOGCHECK" not in text and pid not in text
