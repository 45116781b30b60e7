"""HAZ-016 C3: the study browser's document rows -- the title of an SR, a Key Object Selection or an encapsulated
PDF, an instance row's error text, and their tooltips -- are free text too: under privacy they are scrubbed of the
patient's own name parts, ID and birth date, as the series descriptions are.  Real corpus files as a site that
types the patient into its report titles sends them; the real window driven through pytest-qt."""

from __future__ import annotations

import pydicom
import pytestqt  # noqa: F401  (a test dependency: fail, never skip)
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag
from pydicom.uid import generate_uid

PDF = "pdf_encapsulated_orthanc_sample.dcm"
SR = "sr_basic_text_offis_reportsi.dcm"
KOS = "kos_clearcanvas_of_interest.dcm"
CINE = "usmf_palette_rle_10f.dcm"
NAME, PID, DOB = "SMITH^JOHN", "H123456", "19470214"
IDENTIFIERS = ("SMITH", "JOHN", PID, "1947-02-14", "14/02/1947")


def _as_site_sends(src, dst, **changes):
    ds = pydicom.dcmread(src)
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = NAME, PID, DOB
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for k, v in changes.items():
        setattr(ds, k, v)
    ds.save_as(dst)
    return ds


def _typed_files(testdata, tmp_path):
    """A PDF, an SR and a KOS whose titles name the patient, and a two-instance cine series, one instance of which
    is unusable with an error that quotes a name (Number of Frames 'JOHN')."""
    paths = []
    pdf = tmp_path / "pdf.dcm"
    _as_site_sends(testdata / PDF, pdf, DocumentTitle="Carotid duplex - SMITH JOHN")
    sr = tmp_path / "sr.dcm"
    ds = pydicom.dcmread(testdata / SR)
    ds.ConceptNameCodeSequence[0].CodeMeaning = f"Lower limb arterial report smith, john {PID}"
    ds.save_as(sr)
    _as_site_sends(sr, sr)
    kos = tmp_path / "kos.dcm"
    ds = pydicom.dcmread(testdata / KOS)
    ds.ConceptNameCodeSequence[0].CodeMeaning = "Key images John Smith 14/02/1947"
    ds.save_as(kos)
    _as_site_sends(kos, kos)
    a, b = tmp_path / "cine_a.dcm", tmp_path / "cine_b.dcm"
    _as_site_sends(testdata / CINE, a, InstanceNumber=1)
    ds = _as_site_sends(testdata / CINE, b, InstanceNumber=2)
    del ds[0x00280008]
    tag = Tag(0x00280008)
    ds[tag] = RawDataElement(tag, "IS", 4, b"JOHN", 0, False, True)  # as a broken scanner writes it
    ds.save_as(b)
    paths += [pdf, sr, kos, a, b]
    return [str(p) for p in paths]


def _leaks(texts: list[str]) -> list[str]:
    low = "\n".join(texts).casefold()
    return [i for i in IDENTIFIERS if i.casefold() in low]


def test_document_titles_errors_and_tooltips_scrubbed_under_privacy(qtbot, window, testdata, tmp_path):
    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        window.open_paths(_typed_files(testdata, tmp_path))
    browser = window.browser
    qtbot.waitUntil(lambda: not browser.pending(), timeout=30_000)
    browser.tree.expandAll()
    before = browser.all_texts()
    # as typed without privacy (the scrub belongs to privacy): the title and the error's quoted value
    assert any("PDF: Carotid duplex - SMITH JOHN" in t for t in before), before
    assert any(f"SR: Lower limb arterial report smith, john {PID}" in t for t in before), before
    assert any("Key images: Key images John Smith 14/02/1947" in t for t in before), before
    assert any("'JOHN', not a number" in t for t in before), before

    window.set_privacy(True)
    shown = browser.all_texts()
    assert not _leaks(shown), [t for t in shown if _leaks([t])]
    # the clinical words stay, in the row and in its tooltip (the whole label for a narrow dock)
    rows = _instance_rows(browser)
    pdf = [r for r in rows if "PDF: Carotid duplex" in r[0]]
    assert pdf and pdf[0][0].endswith("PDF: Carotid duplex - [hidden] [hidden]") and pdf[0][1] == pdf[0][0], pdf
    assert any(r[0].endswith("SR: Lower limb arterial report [hidden], [hidden] [hidden]") for r in rows), rows
    # a KOS's title under privacy: only PS3.16's meaning of its code (DCM 113000), never the file's text (QA3 #5)
    assert any(r[0].endswith("Key images: Of Interest") for r in rows), rows
    assert any("Number of Frames (0028,0008) is '[hidden]', not a number" in r[0] for r in rows), rows

    # privacy off again: the rows as typed (nothing lost, nothing stale)
    window.set_privacy(False)
    assert any("PDF: Carotid duplex - SMITH JOHN" in t for t in browser.all_texts())


def _instance_rows(browser) -> list[tuple[str, str]]:
    """(text, tooltip) of every instance row (the rows below a series)."""
    out = []
    model = browser.model
    for p in range(model.rowCount()):
        pat = model.item(p)
        for s in range(pat.rowCount()):
            study = pat.child(s)
            for r in range(study.rowCount()):
                series = study.child(r)
                for i in range(series.rowCount()):
                    inst = series.child(i)
                    out.append((inst.text(), inst.toolTip()))
    return out
