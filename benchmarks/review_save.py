"""How long review saving and report display take, and what runs on the UI thread.

Saving (build the SR with highdicom, read evidence headers, atomic write) runs
on the review editor's worker thread; reading the study's reports runs on the
report panel's worker.  On the UI thread remain only the HTML rendering of the
selected report (QTextBrowser.setHtml) and QtPdf's load of a PDF: those are
measured against one 60 Hz frame (16.7 ms) for common documents.

    .venv/bin/python benchmarks/review_save.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TESTDATA = Path(os.environ.get("MDTVIEWER_TESTDATA", ROOT.parent / "shared" / "testdata"))
FRAME_MS = 1000 / 60


def _ms(fn, n: int = 5) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="mdtv-bench-"))
    os.environ["MDTVIEWER_HOME"] = str(tmp / "home")
    import pydicom
    from pydicom.uid import generate_uid

    from mdtviewer.sr import model as m
    from mdtviewer.sr.reader import read_sr
    from mdtviewer.ui.reports import sr_html
    from mdtviewer.workflows import reviews

    cine = TESTDATA / "usmf_hp_jpeg_ybr422_34f.dcm"
    ds = pydicom.dcmread(cine, stop_before_pixels=True)
    uid, study = str(ds.SOPInstanceUID), str(ds.StudyInstanceUID)
    comments = [m.ImageComment(uid, f, f"comment on frame {f}: Łukasz Żółć") for f in range(1, 31)]
    review = m.Review("second-opinion", m.Person("Łukasz Żółć", "second-reader", "Ærøskøbing"), study,
                      summary="summary", agreement="agree", comments=comments)
    print("Review SR writing (runs on the editor's worker thread, not the UI thread)")
    t_draft = _ms(lambda: reviews.save_draft(review, [cine]))
    t_sign = _ms(lambda: reviews.sign(review, m.Verifier("Łukasz Żółć", "Ærøskøbing"), [cine]))
    print(f"  save draft, 30 frame comments: {t_draft:7.1f} ms (median of 5)")
    print(f"  sign off,   30 frame comments: {t_sign:7.1f} ms (median of 5)")

    from PySide6.QtWidgets import QApplication, QTextBrowser

    app = QApplication.instance() or QApplication([])
    browser = QTextBrowser()
    print(f"Report display on the UI thread (budget: one 60 Hz frame = {FRAME_MS:.1f} ms)")
    docs = sorted(TESTDATA.glob("sr_*.dcm")) + sorted(TESTDATA.glob("kos_*.dcm"))
    docs.append(next(reviews.review_dir(study).glob("*.dcm")))
    worst = 0.0
    for p in docs:
        dsx = pydicom.dcmread(p)
        doc = read_sr(dsx)
        ids = sr_html.identifiers_from_dataset(dsx)
        t = _ms(lambda doc=doc, ids=ids: browser.setHtml(sr_html.render_html(doc, identifiers=ids, privacy=True)))
        worst = max(worst, t)
        print(f"  {p.name[:60]:60s} {t:6.2f} ms")
    print(f"  worst corpus/review document: {worst:.2f} ms  -> {'within' if worst < FRAME_MS else 'OVER'} one frame")

    # a large synthetic report (dose-SR-like: 2000 numeric items) to show the scale
    from mdtviewer.sr.reader import Code, ContentNode, SRDocument

    items = [ContentNode("CONTAINS", "NUM", Code("113813", "DCM", "CT Dose Length Product Total"), numeric=float(i),
                         unit=Code("mGy.cm", "UCUM", "mGy.cm")) for i in range(2000)]
    root = ContentNode("", "CONTAINER", Code("113701", "DCM", "X-Ray Radiation Dose Report"), children=items)
    big = SRDocument(
        None,
        "1.2.840.10008.5.1.4.1.1.88.67",
        generate_uid(),
        study,
        generate_uid(),
        root.concept,
        "COMPLETE",
        "UNVERIFIED",
        "20260101120000",
        [],
        [],
        [],
        root,
        False,
        "sr",
    )
    t_html = _ms(lambda: sr_html.render_html(big), 3)
    t_set = _ms(lambda: browser.setHtml(sr_html.render_html(big)), 3)
    print(f"  synthetic 2000-item report: HTML {t_html:.1f} ms, HTML + setHtml {t_set:.1f} ms")

    from PySide6.QtCore import QBuffer, QByteArray, QIODevice
    from PySide6.QtPdf import QPdfDocument

    from mdtviewer.ui.reports.report_panel import read_document_bytes

    data = read_document_bytes(TESTDATA / "pdf_encapsulated_orthanc_sample.dcm")
    pdf = QPdfDocument()

    def load_pdf() -> None:
        pdf.close()
        buf = QBuffer()
        buf.setData(QByteArray(data))
        buf.open(QIODevice.OpenModeFlag.ReadOnly)
        pdf.load(buf)
        assert pdf.pageCount() >= 1

    print(f"  QtPdf load of the corpus PDF ({len(data)} bytes): {_ms(load_pdf):.2f} ms")
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
