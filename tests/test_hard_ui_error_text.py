"""No raw exception text in the window (issue 11 item 5): the viewport's load errors and the report panel.

Files made here from the corpus:

* ``empty_stl.dcm``: an Encapsulated STL instance (1.2.840.10008.5.1.4.1.1.104.3) carrying the patient and
  study of the corpus's ``sr_basic_text_offis_reportsi.dcm``, its Encapsulated Document present but empty;
  the panel said "cannot read this document: object of type 'NoneType' has no len()".
* ``sr_empty_text.dcm``: that SR with every TEXT item's Text Value emptied (zero length).
* ``sr_as_image.dcm``: the same SR asked to open in a viewport (no Pixel Data).
* ``not_dicom_any_more.dcm``: the corpus OFFIS SR cut to its first 300 bytes.

Expected failures show their one-line reason; anything else is a bug notice naming the log (ui/errors.py),
never a library's own "Type: text".
"""

from __future__ import annotations

import re
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset

from mdtviewer.dicom.model import Instance
from mdtviewer.ui.reports.report_panel import ReportPanel
from mdtviewer.ui.viewer.workers import failure_text, load_image

SR = "sr_basic_text_offis_reportsi.dcm"
STL = "1.2.840.10008.5.1.4.1.1.104.3"
#: what a raw Python exception looks like on screen: "TypeError: ...", "object of type 'NoneType' ..."
RAW = re.compile(r"\b[A-Z]\w*(Error|Exception)\b: |NoneType|has no attribute|object of type|Traceback")


def _empty_stl(testdata: Path, out: Path) -> Path:
    src = pydicom.dcmread(testdata / SR)
    ds = Dataset()
    for kw in ("SpecificCharacterSet", "PatientName", "PatientID", "PatientBirthDate", "PatientSex",
               "StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber", "StudyID", "ReferringPhysicianName"):
        if kw in src:
            setattr(ds, kw, src[kw].value)
    ds.SOPClassUID, ds.SOPInstanceUID = STL, pydicom.uid.generate_uid()
    ds.SeriesInstanceUID = pydicom.uid.generate_uid()
    ds.Modality, ds.MIMETypeOfEncapsulatedDocument, ds.DocumentTitle = "M3D", "model/stl", "Empty STL"
    ds.EncapsulatedDocument = None
    ds["EncapsulatedDocument"].VR = "OB"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = STL, ds.SOPInstanceUID
    ds.save_as(out, enforce_file_format=True)
    return out


def _sr_empty_text(testdata: Path, out: Path) -> Path:
    ds = pydicom.dcmread(testdata / SR)

    def walk(d):
        for it in d.get("ContentSequence", []) or []:
            if it.get("ValueType") == "TEXT":
                it.TextValue = None
            walk(it)

    walk(ds)
    ds.save_as(out)
    return out


def _instance(path: Path, kind: str) -> Instance:
    ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    return Instance(path, str(ds.SOPClassUID), str(ds.SOPInstanceUID), kind, str(ds.get("StudyInstanceUID", "")))


def _text(panel: ReportPanel) -> str:
    return panel.browser.toPlainText()


@pytest.fixture
def panel(qtbot):
    p = ReportPanel()
    qtbot.addWidget(p)
    p.resize(520, 700)
    p.show()
    return p


def test_an_empty_stl_gets_a_reason_not_python_text(qtbot, panel, testdata, tmp_path):
    stl = _empty_stl(testdata, tmp_path / "empty_stl.dcm")
    with qtbot.waitSignal(panel.loaded, timeout=15000):
        panel.set_instances([_instance(stl, "document")])
    qtbot.waitUntil(lambda: "encapsulated document is empty" in _text(panel), timeout=15000)
    assert not RAW.search(_text(panel)), _text(panel)


def test_an_sr_with_empty_text_values_is_shown(qtbot, panel, testdata, tmp_path):
    sr = _sr_empty_text(testdata, tmp_path / "sr_empty_text.dcm")
    with qtbot.waitSignal(panel.loaded, timeout=15000):
        panel.set_instances([_instance(sr, "sr")])
    qtbot.waitUntil(lambda: "Report Text" in _text(panel), timeout=15000)
    assert not RAW.search(_text(panel)) and "cannot read" not in _text(panel)


def test_viewport_load_errors_are_reasons(testdata, tmp_path):
    sr = testdata / SR
    cut = tmp_path / "not_dicom_any_more.dcm"
    cut.write_bytes((testdata / "sr_comprehensive_offis_test.dcm").read_bytes()[:300])
    for path in (sr, cut, tmp_path / "gone.dcm"):
        li = load_image(Instance(path, "", "", "image"))
        assert li.error, path.name
        assert not RAW.search(li.error), li.error
        assert "\n" not in li.error
    assert "no Pixel Data" in load_image(Instance(sr, "", "", "image")).error


def test_an_unexpected_failure_is_reported_as_a_bug_with_the_log(testdata, caplog):
    """A real library exception (pydicom refusing a corrupted value of a corpus SR) is a bug notice."""
    ds = pydicom.dcmread(testdata / SR)
    ds["ContentDate"].VR = "FD"
    ds["ContentDate"].value = b"\x01\x02"
    with pytest.raises(Exception) as raised:
        ds.ContentDate + 1.0
    text = failure_text(raised.value, "opening an image")
    assert "this is a bug" in text and "Details are in the log" in text and type(raised.value).__name__ in text
    assert not RAW.search(text.replace(type(raised.value).__name__, "X"))
    assert "Traceback" in caplog.text and "bug (opening an image)" in caplog.text  # the traceback is logged
