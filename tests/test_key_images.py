"""Key images (issue 15.3): a Key Object Selection document written in the study, checked, listed, sent.

How the files were made: the KOS files are written by our code (highdicom's
KeyObjectSelectionDocument) from the headers of corpus images read in place
(GE LOGIQ 700 single frames; the HP 34-frame cine for frame numbers), and
checked by DCMTK (dsrdump) and dicom3tools (dciodvfy), then read back by the
same rules the browser uses for the corpus's ClearCanvas KOS.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pydicom
import pytest

from mdtviewer.dicom.kos import key_image_uids
from mdtviewer.workflows import key_images as ki
from mdtviewer.workflows.reviews import reviews_for_study
from sr_helpers import CINE, DCMTK_UTF8_NOTE, GE_FILES, header

#: DCMTK 3.6.7 prints this for every document naming TID 2010 (it knows the template but does not check its
#: constraints): a note about the tool, printed for the corpus's ClearCanvas KOS too
DCMTK_TEMPLATE_NOTE = "W: Check for template constraints not yet supported"


def dsrdump(path: Path) -> str:
    """dsrdump +U8 output; asserts no warning or error but DCMTK's two notes about itself."""
    r = subprocess.run(["dsrdump", "+U8", str(path)], capture_output=True, timeout=60, text=True,
                       encoding="utf-8", errors="replace")
    assert r.returncode == 0, r.stderr
    problems = [line for line in (r.stdout + "\n" + r.stderr).splitlines()
                if (line.startswith(("W:", "E:", "F:")) or "Warning" in line or "Error" in line)
                and line not in (DCMTK_UTF8_NOTE, DCMTK_TEMPLATE_NOTE)]
    assert not problems, problems
    return r.stdout

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _dciodvfy(path: Path) -> tuple[list[str], list[str]]:
    r = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    out = (r.stdout + "\n" + r.stderr).splitlines()
    return out, [line for line in out if line.startswith("Error")]


@pytest.mark.dcmtk
@pytest.mark.parametrize("title, code, meaning", [("of-interest", "113000", "Of Interest"),
                                                   ("for-teaching", "113004", "For Teaching")])
def test_kos_in_the_same_study_new_series_valid(title, code, meaning):
    heads = [header(p) for p in GE_FILES[:2]]
    path = ki.write([ki.KeyFrame(h) for h in heads], title, observer="Łukasz Żółć", description="Bulb plaque")
    # in our store beside the reviews, named as a KOS
    assert path.parent.name == str(heads[0].StudyInstanceUID) and path.name.startswith("KO_")
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.59"
    assert ds.StudyInstanceUID == heads[0].StudyInstanceUID
    assert ds.SeriesInstanceUID not in {h.SeriesInstanceUID for h in heads}
    assert ds.PatientID == heads[0].PatientID and ds.Modality == "KO"
    title_item = ds.ConceptNameCodeSequence[0]
    assert (title_item.CodeValue, title_item.CodingSchemeDesignator, title_item.CodeMeaning) == (code, "DCM", meaning)
    out = dsrdump(path)  # no warning but DCMTK's UTF-8 note
    assert f'"{meaning}"' in out and "Bulb plaque" in out
    lines, errors = _dciodvfy(path)
    assert any("KeyObjectSelectionDocument" in line for line in lines), lines  # the IOD was recognised
    assert errors == []
    # the browser's rule marks exactly these images; the report panel's lookup lists the file
    assert key_image_uids([path]) == {str(h.SOPInstanceUID) for h in heads}
    docs = reviews_for_study(str(heads[0].StudyInstanceUID))
    assert [d.sop_instance_uid for d in docs] == [str(ds.SOPInstanceUID)]


@pytest.mark.dcmtk
def test_frames_of_a_cine_are_named_by_frame_number(tmp_path):
    h = header(CINE)
    path = ki.write([ki.KeyFrame(h, 7), ki.KeyFrame(h, 12)], "of-interest", folder=tmp_path)
    assert path.parent == tmp_path
    ds = pydicom.dcmread(path)
    items = [it for it in ds.ContentSequence if it.ValueType == "IMAGE"]
    assert [int(it.ReferencedSOPSequence[0].ReferencedFrameNumber) for it in items] == [7, 12]
    assert {it.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for it in items} == {h.SOPInstanceUID}
    _lines, errors = _dciodvfy(path)
    assert errors == []
    out = dsrdump(path)
    assert "(USm image,,7)" in out and "(USm image,,12)" in out


def test_refused_with_a_reason():
    with pytest.raises(ki.KeyImageError, match="title must be one of"):
        ki.write([ki.KeyFrame(header(GE_FILES[0]))], "rejected")
    with pytest.raises(ki.KeyImageError, match="no image"):
        ki.write([], "of-interest")
    sr = pydicom.dcmread(Path(GE_FILES[0]).parent / "sr_comprehensive_offis_test.dcm", stop_before_pixels=True)
    with pytest.raises(ki.KeyImageError, match="only images"):
        ki.build([ki.KeyFrame(sr)])
    other = header(CINE)
    with pytest.raises(ki.KeyImageError, match="more than one study"):
        ki.build([ki.KeyFrame(header(GE_FILES[0])), ki.KeyFrame(other, 1)])


@pytest.mark.orthanc
def test_sent_to_the_review_node_or_kept_in_the_outbox(orthanc_peer_factory):
    from mdtviewer.infra import settings
    from mdtviewer.pacs import nodes, outbox
    from orthanc_peer import HOST, OUR_AET

    path = ki.write([ki.KeyFrame(header(GE_FILES[2]))], "of-interest")
    uid = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
    assert ki.configured_node() is None  # nothing chosen: kept on this computer
    peer = orthanc_peer_factory(load=False, start=False)
    nodes.add_node(nodes.PacsNode("kpacs", peer.aet, HOST, peer.dicom_port, calling_aet=OUR_AET,
                                  connect_timeout=3, acse_timeout=5, dimse_timeout=10), replace=True)
    settings.set_section("reviewer", {"name": "", "send_to": "kpacs"})
    assert ki.configured_node() == "kpacs"
    assert ki.send(path, "kpacs").endswith("kept locally in outbox, will be retried")
    assert len(outbox.pending("kpacs")) == 1
    peer.start()
    assert [o.ok for o in outbox.flush("kpacs")] == [True]
    assert uid in peer.sop_instance_uids()
    assert ki.send(path, "kpacs") == "stored on kpacs"
