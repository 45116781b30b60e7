"""The report panel on the real corpus: SR/KOS rendered with real content, image
references clickable, the PDF rendered, privacy, and non-Latin character sets.

Note: PySide6 6.12 QApplication.processEvents() corrupts None's refcount on
Python 3.11 (a fatal error after ~1000 calls), so these tests wait only with
qtbot's event loops (waitSignal / waitUntil).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import PySide6.QtPdf  # noqa: F401  (PySide6_Pdf is a dependency: fail, never skip)
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QTextCursor
from PySide6.QtWidgets import QPushButton

from mdtviewer.dicom.model import Instance
from mdtviewer.ui.reports import sr_html
from mdtviewer.ui.reports.report_panel import ReportPanel

pytestmark = pytest.mark.gui

COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
US_MF = "1.2.840.10008.5.1.4.1.1.3.1"


def instance_of(path: Path) -> Instance:
    ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    cls = str(ds.SOPClassUID)
    if cls == "1.2.840.10008.5.1.4.1.1.88.59":
        kind = "kos"
    elif cls.startswith("1.2.840.10008.5.1.4.1.1.88."):
        kind = "sr"
    elif cls == "1.2.840.10008.5.1.4.1.1.104.1":
        kind = "pdf"
    else:
        kind = "image"
    return Instance(path, cls, str(ds.SOPInstanceUID), kind, str(ds.get("StudyInstanceUID", "")))


@pytest.fixture
def panel(qtbot):
    p = ReportPanel()
    qtbot.addWidget(p)
    p.resize(520, 800)
    p.show()
    return p


def load(qtbot, panel: ReportPanel, paths: list[Path]) -> None:
    with qtbot.waitSignal(panel.loaded, timeout=15000):
        panel.set_instances([instance_of(p) for p in paths])


def show(qtbot, panel: ReportPanel, sop_uid: str) -> None:
    if panel.current_entry() is not None and panel.current_entry().sop_instance_uid == sop_uid:
        return
    with qtbot.waitSignal(panel.documentShown, timeout=10000):
        assert panel.select(sop_uid)


def visible_text(panel: ReportPanel) -> str:
    return panel.browser.toPlainText()


def anchors(browser) -> list[tuple[str, str, object]]:
    """(href, text, centre point in viewport coordinates) of every link in the browser."""
    doc = browser.document()
    out = []
    block = doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            frag = it.fragment()
            if frag.isValid() and frag.charFormat().isAnchor():
                out.append((frag.charFormat().anchorHref(), frag.text(), frag.position(), frag.length()))
            it += 1
        block = block.next()
    return out


def click_anchor(qtbot, browser, index: int):
    href, text, pos, length = anchors(browser)[index]
    cur = QTextCursor(browser.document())
    cur.setPosition(pos + max(1, length // 2))
    browser.setTextCursor(cur)
    browser.ensureCursorVisible()
    point = browser.cursorRect(cur).center()
    qtbot.mouseClick(browser.viewport(), Qt.MouseButton.LeftButton, pos=point)
    return href


# ---------------------------------------------------------------- corpus SR / KOS

EXPECTED = {
    "sr_comprehensive_offis_test.dcm": [
        "Diagnosis",
        "A mass of",
        "was detected.",
        "Sample Code 1",
        "Diameter: 3 Length Unit",
        "Riesmeier Jörg",
        "OFFIS e.V.",
        "COMPLETE / VERIFIED",
        "CIRCLE",
    ],
    "sr_enhanced_tid1500_dcmjs.dcm": [
        "Imaging Measurement Report",
        "Long Axis: 64.4505 px",
        "Short Axis: 42.967 px",
        "Cornerstone3DTools@^0.1.0:Bidirectional",
        "English",
        "Person Observer Name: unknown unknown",
    ],
    "sr_basic_text_osirix_annotations.dcm": ["Annotations", "Image Reference:", "isKeyImage = 1;", "OsiriX"],
    "sr_enhanced_agfa_diagnostic_report.dcm": ["Diagnostic Imaging Report", "(empty)", "PARTIAL / UNVERIFIED"],
    "sr_basic_text_offis_reportsi.dcm": ["Document Title", "Basic Text SR"],
    "kos_clearcanvas_of_interest.dcm": ["Of Interest", "Key Object Selection"],
}


def test_lists_every_report_of_the_study(qtbot, panel, testdata):
    files = (
        sorted(testdata.glob("sr_*.dcm"))
        + sorted(testdata.glob("kos_*.dcm"))
        + [testdata / "pdf_encapsulated_orthanc_sample.dcm"]
    )
    load(qtbot, panel, files)
    entries = panel.entries()
    assert len(entries) == len(files)
    assert [e.category for e in entries][-1] == "pdf"  # PDFs after structured reports
    kos = [e for e in entries if e.category == "kos"]
    assert len(kos) == 1 and kos[0].label() == "Key images: Of Interest"
    assert {e.title for e in entries} >= {"Diagnosis", "Imaging Measurement Report", "Annotations"}
    assert panel.list.topLevelItemCount() == len(files)
    assert panel.status_label.text() == f"{len(files)} reports"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_report_rendered_with_real_content(qtbot, panel, testdata, name):
    path = testdata / name
    load(qtbot, panel, [path])
    uid = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
    assert panel.current_entry().sop_instance_uid == uid
    text = visible_text(panel)
    for needle in EXPECTED[name]:
        assert needle in text, (needle, text[:2000])
    assert panel.stack.currentIndex() == ReportPanel.PAGE_BROWSER


def test_kos_image_reference_click_emits_uid(qtbot, panel, testdata):
    path = testdata / "kos_clearcanvas_of_interest.dcm"
    load(qtbot, panel, [path])
    ds = pydicom.dcmread(path)
    refs = [
        str(i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID) for i in ds.ContentSequence if i.ValueType == "IMAGE"
    ]
    links = anchors(panel.browser)
    assert len(links) == len(refs) == 6
    with qtbot.waitSignal(panel.imageReferenceActivated, timeout=3000) as blocker:
        click_anchor(qtbot, panel.browser, 3)
    assert blocker.args == [refs[3], 0]  # the KOS names no frame


# ---------------------------------------------------------------- SRs built here


def code(value, scheme, meaning):
    c = Dataset()
    c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = value, scheme, meaning
    return Sequence([c])


def make_sr(
    path: Path,
    *,
    charset: str | list[str] | None,
    patient: str,
    texts: list[str],
    frames_of=None,
    subject_name: str | None = None,
    observer: str = "Smith^Anne",
    sop_class: str = COMPREHENSIVE_SR,
    extra_items: list[Dataset] | None = None,
) -> Dataset:
    """A small SR (Comprehensive unless told) written by pydicom in *charset* (pydicom encodes the text)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if charset:
        ds.SpecificCharacterSet = charset
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "SR"
    ds.PatientName = patient
    ds.PatientID = "PID-778899"
    ds.PatientBirthDate = "19510203"
    ds.ContentDate, ds.ContentTime = "20260102", "101500"
    ds.CompletionFlag, ds.VerificationFlag = "COMPLETE", "UNVERIFIED"
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    ds.ConceptNameCodeSequence = code("18748-4", "LN", "Diagnostic Imaging Report")
    items = []
    obs = Dataset()
    obs.RelationshipType, obs.ValueType = "HAS OBS CONTEXT", "PNAME"
    obs.ConceptNameCodeSequence = code("121008", "DCM", "Person Observer Name")
    obs.PersonName = observer
    items.append(obs)
    if subject_name:
        sub = Dataset()
        sub.RelationshipType, sub.ValueType = "HAS OBS CONTEXT", "PNAME"
        sub.ConceptNameCodeSequence = code("121029", "DCM", "Subject Name")
        sub.PersonName = subject_name
        items.append(sub)
    for t in texts:
        it = Dataset()
        it.RelationshipType, it.ValueType = "CONTAINS", "TEXT"
        it.ConceptNameCodeSequence = code("121106", "DCM", "Comment")
        it.TextValue = t
        items.append(it)
    num = Dataset()
    num.RelationshipType, num.ValueType = "CONTAINS", "NUM"
    num.ConceptNameCodeSequence = code("81827009", "SCT", "Diameter")
    mv = Dataset()
    mv.NumericValue = "5.2"
    mv.MeasurementUnitsCodeSequence = code("mm", "UCUM", "millimeter")
    num.MeasuredValueSequence = Sequence([mv])
    items.append(num)
    if frames_of:
        uid, frames = frames_of
        img = Dataset()
        img.RelationshipType, img.ValueType = "CONTAINS", "IMAGE"
        ref = Dataset()
        ref.ReferencedSOPClassUID = US_MF
        ref.ReferencedSOPInstanceUID = uid
        ref.ReferencedFrameNumber = frames
        img.ReferencedSOPSequence = Sequence([ref])
        items.append(img)
    items.extend(extra_items or [])
    ds.ContentSequence = Sequence(items)
    ds.save_as(path, enforce_file_format=True)
    return ds


def test_frame_reference_click_emits_uid_and_frame(qtbot, panel, tmp_path):
    target = generate_uid()
    make_sr(
        tmp_path / "f.dcm", charset="ISO_IR 192", patient="Doe^Jane", texts=["see frames"], frames_of=(target, [3, 17])
    )
    load(qtbot, panel, [tmp_path / "f.dcm"])
    text = visible_text(panel)
    assert "Diameter: 5.2 mm" in text
    assert "Ultrasound Multi-frame Image" in text and "frame 3, frame 17" in text
    links = anchors(panel.browser)
    assert [lk[1] for lk in links] == ["frame 3", "frame 17"]
    with qtbot.waitSignal(panel.imageReferenceActivated, timeout=3000) as blocker:
        click_anchor(qtbot, panel.browser, 1)
    assert blocker.args == [target, 17]


def _num(name, value, unit_value, unit_meaning):
    num = Dataset()
    num.RelationshipType, num.ValueType = "CONTAINS", "NUM"
    num.ConceptNameCodeSequence = code(*name)
    mv = Dataset()
    mv.NumericValue = value
    mv.MeasurementUnitsCodeSequence = code(unit_value, "UCUM", unit_meaning)
    num.MeasuredValueSequence = Sequence([mv])
    return num


def _scoord3d():
    it = Dataset()
    it.RelationshipType, it.ValueType = "CONTAINS", "SCOORD3D"
    it.ConceptNameCodeSequence = code("111030", "DCM", "Image Region")
    it.GraphicType = "POINT"
    it.GraphicData = [1.5, 2.5, 3.5]
    it.ReferencedFrameOfReferenceUID = "1.2.3.4"
    return it


SR_CLASSES = [
    ("1.2.840.10008.5.1.4.1.1.88.11", "Basic Text SR Storage", [], []),
    (
        "1.2.840.10008.5.1.4.1.1.88.22",
        "Enhanced SR Storage",
        [_num(("8867-4", "LN", "Heart rate"), "72", "/min", "per minute")],
        ["Heart rate: 72 /min"],
    ),
    (
        "1.2.840.10008.5.1.4.1.1.88.34",
        "Comprehensive 3D SR Storage",
        [_scoord3d()],
        ["Image Region: POINT 1.5, 2.5, 3.5"],
    ),
    (
        "1.2.840.10008.5.1.4.1.1.88.67",
        "X-Ray Radiation Dose SR Storage",
        [_num(("113813", "DCM", "CT Dose Length Product Total"), "431.5", "mGy.cm", "mGy.cm")],
        ["CT Dose Length Product Total: 431.5 mGy.cm"],
    ),
]


@pytest.mark.parametrize("sop_class,class_name,extra,expected", SR_CLASSES, ids=[c[1] for c in SR_CLASSES])
def test_every_sr_class_rendered(qtbot, panel, tmp_path, sop_class, class_name, extra, expected):
    make_sr(
        tmp_path / "x.dcm",
        charset="ISO_IR 192",
        patient="Doe^Jane",
        texts=["plain finding"],
        sop_class=sop_class,
        extra_items=extra,
    )
    load(qtbot, panel, [tmp_path / "x.dcm"])
    assert panel.entries()[0].category == "sr"
    text = visible_text(panel)
    assert class_name in text and "Comment: plain finding" in text and "Diameter: 5.2 mm" in text
    for needle in expected:
        assert needle in text


def test_text_is_escaped_not_markup(qtbot, panel, tmp_path):
    evil = '<b>bold?</b> & <a href="sopref:1.2.3?frame=9">fake link</a> <script>x()</script>'
    make_sr(tmp_path / "e.dcm", charset="ISO_IR 192", patient="Doe^Jane", texts=[evil])
    load(qtbot, panel, [tmp_path / "e.dcm"])
    assert evil in visible_text(panel)
    assert anchors(panel.browser) == []  # no link smuggled in by the text


CHARSETS = [
    ("ISO_IR 100", "latin_1", "Ærøskøbing Müller", "Ærøskøbing^Åse"),
    ("ISO_IR 101", "iso8859_2", "Łukasz Żółć: zwężenie tętnicy", "Żółć^Łukasz"),
    ("ISO_IR 144", "iso8859_5", "Стеноз внутренней сонной артерии", "Иванов^Пётр"),
    ("ISO_IR 126", "iso8859_7", "Στένωση καρωτίδας", "Παπαδόπουλος^Γιώργος"),
    (["", "ISO 2022 IR 87"], "iso2022_jp", "頸動脈の狭窄があります", "山田^太郎"),
    (["", "ISO 2022 IR 149"], "euc_kr", "경동맥 협착이 있습니다", "김^민준"),
    ("GB18030", "gb18030", "颈动脉狭窄", "王^小明"),
    ("ISO_IR 192", "utf-8", "Ærøskøbing, Łódź, Αθήνα, Москва, 東京, 서울", "Żółć^Łukasz"),
]


@pytest.mark.parametrize("charset,codec,text,observer", CHARSETS, ids=[c[1] for c in CHARSETS])
def test_character_sets(qtbot, panel, tmp_path, charset, codec, text, observer):
    path = tmp_path / "cs.dcm"
    make_sr(path, charset=charset, patient="Doe^Jane", texts=[text], observer=observer)
    raw = path.read_bytes()
    if codec == "iso2022_jp":  # escape sequences differ in detail; the kanji bytes are JIS X 0208
        assert "狭窄".encode("iso2022_jp")[3:-3] in raw
    elif codec == "euc_kr":  # ISO 2022 IR 149 stores KS X 1001 as EUC-KR bytes after the escape
        assert text.split()[0].encode("euc_kr") in raw
    else:
        assert text.encode(codec) in raw  # really written in that character set, not UTF-8
    load(qtbot, panel, [path])
    shown = visible_text(panel)
    assert text in shown
    assert observer.replace("^", " ") in shown  # observer name decoded too (PN)


# ---------------------------------------------------------------- privacy


def test_privacy_hides_patient_identifiers_keeps_staff(qtbot, panel, tmp_path):
    path = tmp_path / "p.dcm"
    make_sr(
        path,
        charset="ISO_IR 192",
        patient="Kowalski^Zbigniew",
        subject_name="Kowalski^Zbigniew",
        observer="Smith^Anne",
        texts=["Zbigniew Kowalski (PID-778899) attended; latest scan kept."],
    )
    load(qtbot, panel, [path])
    before = visible_text(panel)
    assert "Kowalski" in before and "PID-778899" in before
    panel.set_privacy(True)
    after = visible_text(panel)
    for ident in ("Kowalski", "Zbigniew", "PID-778899", "1951"):
        assert ident not in after, ident
        for row in range(panel.list.topLevelItemCount()):
            for col in range(panel.list.columnCount()):
                assert ident not in panel.list.topLevelItem(row).text(col)
    assert "Smith Anne" in after  # staff stay visible
    assert "latest scan kept" in after  # whole words only
    assert sr_html.HIDDEN in after
    panel.set_privacy(False)
    assert "Kowalski" in visible_text(panel)


def test_privacy_hides_corpus_patient_name(qtbot, panel, testdata):
    load(qtbot, panel, [testdata / "sr_basic_text_osirix_annotations.dcm"])
    assert "Anonymous Male 1960" in visible_text(panel)
    panel.set_privacy(True)
    text = visible_text(panel)
    assert "Anonymous Male 1960" not in text and "ANON0A8A2D1RJ" not in text
    assert "isKeyImage = 1;" in text


# ---------------------------------------------------------------- PDF and other documents


def test_pdf_rendered_page_by_page(qtbot, panel, testdata):
    path = testdata / "pdf_encapsulated_orthanc_sample.dcm"
    load(qtbot, panel, [path])
    qtbot.waitUntil(lambda: panel.stack.currentIndex() == ReportPanel.PAGE_PDF, timeout=10000)
    assert panel.pdf_document.pageCount() >= 1
    img = panel.render_pdf_page(0, 400).convertToFormat(QImage.Format.Format_Grayscale8)
    assert not img.isNull() and img.width() == 400
    ptr = img.constBits()
    arr = np.frombuffer(ptr, dtype=np.uint8, count=img.sizeInBytes()).reshape(img.height(), img.bytesPerLine())[
        :, : img.width()
    ]
    ink = (arr < 200).mean()
    assert (arr > 250).mean() > 0.5  # mostly paper
    assert 0.01 < ink < 0.5, ink  # and real print on it (header box, lines of text)
    assert panel.pdf_pages_label.text().startswith(f"of {panel.pdf_document.pageCount()}")

    # privacy: a PDF cannot be masked, so it is hidden until the user asks
    panel.set_privacy(True)
    assert panel.stack.currentIndex() == ReportPanel.PAGE_PDF_HIDDEN
    show_anyway = next(b for b in panel.findChildren(QPushButton) if b.text() == "Show this PDF anyway")
    qtbot.mouseClick(show_anyway, Qt.MouseButton.LeftButton)
    assert panel.stack.currentIndex() == ReportPanel.PAGE_PDF
    assert panel.pdf_document.pageCount() >= 1


def test_other_encapsulated_document_listed_with_mime_type(qtbot, panel, tmp_path, testdata):
    ds = pydicom.dcmread(testdata / "pdf_encapsulated_orthanc_sample.dcm")
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.104.2"  # Encapsulated CDA
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.MIMETypeOfEncapsulatedDocument = "text/xml"
    ds.DocumentTitle = "Discharge letter"
    body = "<ClinicalDocument>Carotid duplex: 50–69% stenosis</ClinicalDocument>".encode()
    ds.EncapsulatedDocument = body + (b"\x00" if len(body) % 2 else b"")
    ds.EncapsulatedDocumentLength = len(body)
    ds.save_as(tmp_path / "cda.dcm", enforce_file_format=True)
    load(qtbot, panel, [tmp_path / "cda.dcm"])
    e = panel.entries()[0]
    assert e.category == "document" and e.mime == "text/xml"
    assert panel.list.topLevelItem(0).text(0) == "Discharge letter [text/xml]"
    qtbot.waitUntil(lambda: "50–69% stenosis" in visible_text(panel), timeout=5000)
    assert "text/xml" in visible_text(panel)


def test_unreadable_report_listed_with_reason(qtbot, panel, tmp_path, testdata):
    bad = tmp_path / "bad_sr.dcm"
    bad.write_bytes((testdata / "sr_comprehensive_offis_test.dcm").read_bytes()[:700])
    inst = Instance(bad, COMPREHENSIVE_SR, generate_uid(), "sr", "1.2.3")
    with qtbot.waitSignal(panel.loaded, timeout=10000):
        panel.set_instances([inst, instance_of(testdata / "sr_enhanced_tid1500_dcmjs.dcm")])
    assert len(panel.entries()) == 2
    bad_entry = next(e for e in panel.entries() if e.path == bad)
    assert bad_entry.error
    show(qtbot, panel, bad_entry.sop_instance_uid)
    assert "cannot read" in visible_text(panel) and "bad_sr.dcm" in visible_text(panel)
    panel.set_privacy(True)  # file names may name the patient
    assert "bad_sr.dcm" not in visible_text(panel)
    assert all(panel.list.topLevelItem(r).text(0) != "bad_sr.dcm" for r in range(panel.list.topLevelItemCount()))


def test_no_reports(qtbot, panel):
    with qtbot.waitSignal(panel.loaded, timeout=5000):
        panel.set_instances([])
    assert panel.entries() == []
    assert "no reports" in visible_text(panel).lower()


def test_link_round_trip():
    uid = "1.2.826.0.1.3680043.8.498.1"
    assert sr_html.parse_image_link(sr_html.image_link(uid, 12)) == (uid, 12)
    assert sr_html.parse_image_link("http://example.org") is None


def test_panel_closed_while_reading(qtbot, testdata):
    """Closing the window while reports are read must neither crash nor hang."""
    p = ReportPanel()
    p.set_instances([instance_of(f) for f in sorted(testdata.glob("sr_*.dcm"))])
    p.deleteLater()
    qtbot.wait(300)
    p2 = ReportPanel()
    qtbot.addWidget(p2)
    with qtbot.waitSignal(p2.loaded, timeout=10000):
        p2.set_instances([instance_of(testdata / "sr_enhanced_tid1500_dcmjs.dcm")])
    assert len(p2.entries()) == 1


def test_preceptorship_lists_the_trainer_as_author_and_names_the_trainee(qtbot, panel, tmp_path):
    """The trainee performed the scan, the trainer wrote and signed the review: the list says who is who."""
    from dataclasses import replace

    from mdtviewer.workflows import reviews
    from sr_helpers import CINE, preceptorship

    review = preceptorship()
    path = reviews.sign(replace(review, verifier=None), review.verifier, [CINE], folder=tmp_path)
    load(qtbot, panel, [path])
    (entry,) = panel.entries()
    assert entry.category == "review" and entry.kind == "preceptorship"
    assert entry.author == "Łukasz Żółć (trainee: Ærøskøbing Åse)"
    qtbot.waitUntil(lambda: "Trainee" in visible_text(panel), timeout=10000)
    assert "\nAuthor\nŁukasz Żółć\nTrainee\nÆrøskøbing Åse\n" in visible_text(panel)
