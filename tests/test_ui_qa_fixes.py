"""QA pass (helper-17, 02:35 UTC) defects in the window, each driven as a user would (pytest-qt, offscreen)
on real corpus files and a real Orthanc: privacy in the PACS dialog (QA 1) and in the export preview (QA 2),
masking on by default in the export dialog (QA 5), the presenter's banner visible (QA 4), a plain SIGNED
line after sign-off (QA 21), the report list's title readable beside the review editor (QA 11)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pydicom
import pytest
import pytestqt  # noqa: F401  (a test dependency: fail, never skip)
from PySide6.QtCore import Qt

from mdtviewer.pacs.nodes import PacsNode, save_nodes
from orthanc_peer import HOST, us_corpus_files

pytestmark = pytest.mark.gui


def _identifiers(paths: list[Path]) -> set[str]:
    """Patient names (and their parts), IDs, birth dates and accession numbers of the files (PS3.15)."""
    out: set[str] = set()
    for p in paths:
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        name = str(ds.get("PatientName", "") or "")
        out.update(part for part in re.split(r"[\^ ]", name) if len(part) >= 4)
        for kw in ("PatientID", "PatientBirthDate", "AccessionNumber"):
            v = str(ds.get(kw, "") or "").strip()
            if len(v) >= 3:
                out.add(v)
    return out


def _tree_texts(tree, columns=(0, 1)) -> str:
    """The patient columns of the results (the description may hold a word such as "Echo" that is also
    part of some corpus patient's name)."""
    rows = []
    for i in range(tree.topLevelItemCount()):
        it = tree.topLevelItem(i)
        rows.append("\t".join(it.text(c) for c in columns))
    return "\n".join(rows)


# -- QA 1: the PACS dialog's results follow privacy ----------------------------------------------------------
@pytest.mark.orthanc
def test_pacs_results_hide_identifiers_with_privacy_live(qtbot, window, orthanc, testdata):
    save_nodes([PacsNode("orthanc", orthanc.aet, HOST, orthanc.dicom_port)])
    idents = _identifiers(us_corpus_files(testdata))
    window.set_privacy(True)  # F9 first, then Ctrl+Shift+P, Search (the QA steps)
    window.pacs_action.trigger()
    dlg = window.pacs_dialog
    try:
        qtbot.waitExposed(dlg)
        dlg.node_combo.setCurrentIndex(dlg.node_combo.findData("orthanc"))
        dlg.modality.setCurrentIndex(dlg.modality.findData(None))
        with qtbot.waitSignal(dlg.queryFinished, timeout=20_000):
            qtbot.mouseClick(dlg.search_button, Qt.MouseButton.LeftButton)
        n = dlg.results.topLevelItemCount()
        assert n >= 5
        text = _tree_texts(dlg.results)
        leaks = sorted(i for i in idents if i in text)
        assert not leaks, f"identifiers listed with privacy on: {leaks}"
        rows = [dlg.results.topLevelItem(i) for i in range(n)]
        assert all(re.fullmatch(r"Patient \d+ \[hidden\]", r.text(0)) for r in rows), [r.text(0) for r in rows]
        assert {r.text(1) for r in rows} == {"[hidden]"}
        # one number per distinct patient
        studies = [r.data(0, Qt.ItemDataRole.UserRole) for r in rows]
        assert len({r.text(0) for r in rows}) == len({(s.patient_id, s.patient_name) for s in studies})
        # privacy off (F9 in the window): the names come back without searching again; on again: hidden again
        window.set_privacy(False)
        qtbot.waitUntil(lambda: any(i in _tree_texts(dlg.results) for i in idents), timeout=3_000)
        window.set_privacy(True)
        qtbot.waitUntil(lambda: not any(i in _tree_texts(dlg.results) for i in idents), timeout=3_000)
        # what was typed in the query's identifier fields is not displayed either
        dlg.patient_id.setText("13US1")
        assert dlg.patient_id.displayText() != "13US1"
    finally:
        dlg.shutdown()


# -- QA 2 and 5: the export dialog ----------------------------------------------------------------------------
REGIONS = "us_siemens_s2000_rgb_explicit_le.dcm"  # burned-in name, ID and hospital above its regions


def _open_export(qtbot, window, testdata):
    from mdtviewer.ui.dialogs.export_dialog import open_dialog

    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        window.open_paths([str(testdata / REGIONS)])
    ds = pydicom.dcmread(testdata / REGIONS)
    dlg = open_dialog(window)
    qtbot.addWidget(dlg)
    dlg.set_selected([ds.StudyInstanceUID])
    return dlg, ds


def test_export_preview_never_unmasked_with_privacy(qtbot, window, testdata):
    from mdtviewer.imaging import masking

    dlg, ds = _open_export(qtbot, window, testdata)
    keep = masking.keep_mask(ds.Rows, ds.Columns, masking.ultrasound_regions(ds))
    raw = next(iter(masking.display_frames(testdata / REGIONS)))
    assert raw[~keep].any()  # the burned-in text is outside the regions: the check can fail
    # privacy off, masking off: the unmasked frame is what would be written, and shown
    with qtbot.waitSignal(dlg.previewUpdated, timeout=15_000):
        dlg.mask_box.setChecked(False)
    assert dlg.preview.arr[~keep].any()
    # F9 in the window with the dialog open: the preview follows, no burned-in text left on screen
    with qtbot.waitSignal(dlg.previewUpdated, timeout=15_000):
        window.set_privacy(True)
    assert dlg.preview.arr is None or not dlg.preview.arr.any()
    assert "privacy" in dlg.preview.message
    # masking on again: the masked frame as export writes it (the image area kept)
    with qtbot.waitSignal(dlg.previewUpdated, timeout=15_000):
        dlg.mask_box.setChecked(True)
    assert not dlg.preview.arr[~keep].any() and dlg.preview.arr[keep].any()
    # a dialog opened with privacy already on, masking off: never the raw pixels
    dlg.close()
    dlg2 = _open_export(qtbot, window, testdata)[0]
    with qtbot.waitSignal(dlg2.previewUpdated, timeout=15_000):
        dlg2.mask_box.setChecked(False)
    assert dlg2.preview.arr is None or not np.asarray(dlg2.preview.arr)[~keep].any()
    dlg2.close()


def test_export_masks_by_default_and_names_the_dialogs_choice(qtbot, window, testdata, tmp_path):
    dlg, ds = _open_export(qtbot, window, testdata)
    assert dlg.mask_box.isChecked() and not dlg.unmasked_box.isChecked()  # the defaults, untouched
    dlg.dest.setText(str(tmp_path / "a"))
    with qtbot.waitSignal(dlg.finished_export, timeout=60_000):
        assert dlg.start_export()
    text = dlg.summary.toPlainText()
    assert dlg.report is not None and dlg.report.ok, text
    assert "Exported 1 of 1" in text and "Masked: 1 image(s) (regions 1)." in text, text
    out = list((tmp_path / "a").rglob("*.dcm"))
    assert len(out) == 1 and pydicom.dcmread(out[0]).BurnedInAnnotation == "NO"
    # masking unticked and no explicit choice: refused, in the dialog's own words (no command-line flag)
    dlg.mask_box.setChecked(False)
    dlg.dest.setText(str(tmp_path / "b"))
    with qtbot.waitSignal(dlg.finished_export, timeout=60_000):
        assert dlg.start_export()
    text = dlg.summary.toPlainText()
    assert "Exported 0 of 1" in text, text
    assert "Write images that may show identifiers unmasked" in text, text
    assert not re.search(r"--[a-z]", text), text
    dlg.close()


# -- QA 4: the presenter's case banner is on screen ---------------------------------------------------------
def test_presenter_banner_is_visible(qtbot, window, testdata):
    from mdtviewer.workflows.mdt_session import MDTSession

    files = [testdata / "us_siemens_s2000_rgb_explicit_le.dcm", testdata / "us_ge_logiq700_rgb_explicit_le.dcm"]
    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        window.open_paths([str(f) for f in files])
    p = window.presenter
    s = MDTSession(title="Vascular MDT")
    for k, f in enumerate(files):
        s.add_case(str(pydicom.dcmread(f, stop_before_pixels=True).StudyInstanceUID), label=f"Case {'AB'[k]}")
    p.set_session(s)
    try:
        assert p.start()
        qtbot.waitUntil(lambda: p.banner.isVisible() and p.banner.width() > 0, timeout=5_000)
        assert p.banner.text().startswith("Case 1 of 2")
        assert p.bar.isVisible() and p.bar.width() > 0
        b = p.banner
        # wide enough for its text (not elided to nothing) and inside the window
        assert b.width() >= b.fontMetrics().horizontalAdvance("Case 1 of 2"), b.width()
        top_left = b.mapTo(window, b.rect().topLeft())
        assert 0 <= top_left.x() < window.width() and 0 <= top_left.y() < window.height()
        # painted: a dark banner with light text
        img = b.grab().toImage()
        assert img.width() == b.width() and img.width() > 0
        colours = [img.pixelColor(x, y) for x in range(0, img.width(), 7) for y in range(0, img.height(), 3)]
        dark = sum(c.lightness() < 40 for c in colours)
        light = sum(c.lightness() > 150 for c in colours)
        assert dark > len(colours) // 2 and light > 0, (dark, light, len(colours))
        # a very long label is elided: the banner never holds the window wider than a small screen
        s.cases[0].label = "a very long case label " * 30
        p.set_banner()
        assert window.minimumSizeHint().width() < 1000, window.minimumSizeHint()
        assert b.text().endswith("…") and b.width() > 0
    finally:
        p.stop()


# -- QA 21: after Sign, the editor says SIGNED by ... at ... before any amend notice ---------------------------
def test_sign_off_says_signed_by_at_before_the_amend_notice(qtbot, window, mdt_home):
    from mdtviewer.workflows import reviewer_profile
    from test_ui_safety_signoff import SIGNER, fill_second_opinion, press_in_next_box

    editor = window.review_editor
    fill_second_opinion(qtbot, window, editor, author="Anybody^Typed")
    reviewer_profile.save(SIGNER)
    line = editor.sign_result
    # Esc in the confirmation: NOT signed, said in the line at the top
    press_in_next_box(Qt.Key.Key_Escape, [])
    assert editor.sign_off() is False
    assert line.isVisible() and line.text().startswith("NOT signed") and "cancelled" in line.text()
    # Return: signed; the top line says who and when, in view, above the amend notice
    press_in_next_box(Qt.Key.Key_Return, [])
    with qtbot.waitSignal(editor.saved, timeout=20_000) as blocker:
        assert editor.sign_off() is not False
    ds = pydicom.dcmread(blocker.args[0])
    vdt = str(ds.VerifyingObserverSequence[0].VerificationDateTime)
    when = f"{vdt[:4]}-{vdt[4:6]}-{vdt[6:8]} {vdt[8:10]}:{vdt[10:12]}:{vdt[12:14]}"
    text = line.text()
    assert text.startswith(f"SIGNED by Okafor^Ada (HCPC CS054321) at {when}"), text
    assert editor.status.text().startswith(f"SIGNED by Okafor^Ada (HCPC CS054321) at {when}")
    assert editor.mode_label.text().startswith("Amending a signed review")
    assert line.isVisible() and line.width() > 0 and line.height() > 0
    top = line.mapTo(editor, line.rect().topLeft()).y()
    mode_top = editor.mode_label.mapTo(editor, editor.mode_label.rect().topLeft()).y()
    assert top < mode_top  # read first
    # a new review: the line was about the last sign-off, it goes
    editor.new_review()
    assert not line.isVisible()


# -- QA 11: the report list's titles stay readable when the review editor opens ------------------------------
def test_report_titles_readable_beside_the_review_editor(qtbot, window):
    from PySide6.QtWidgets import QApplication

    with qtbot.waitSignal(window.scanFinished, timeout=30_000):
        assert window.open_demo()  # the packaged demo study: two reports and a KOS
    panel = window.report_panel
    lst = panel.list
    qtbot.waitUntil(lambda: lst.topLevelItemCount() >= 2, timeout=10_000)
    h = lst.header()
    want = lst.fontMetrics().averageCharWidth() * 20
    window.action("review.editor").trigger()  # Ctrl+Shift+R: the editor dock takes width from the panel
    qtbot.waitUntil(lambda: window.review_dock.isVisible(), timeout=5_000)
    for _ in range(5):
        QApplication.processEvents()
        qtbot.wait(30)
    assert lst.viewport().width() < h.sectionSize(1) + h.sectionSize(2) + h.sectionSize(3) + want  # narrow now
    assert h.sectionSize(0) >= want, (h.sectionSize(0), want)
    # the title is read as written (not "..." or "K..."): its visual rect holds its whole first words
    item = lst.topLevelItem(0)
    first_words = " ".join(item.text(0).split()[:2])
    assert lst.fontMetrics().horizontalAdvance(first_words) < h.sectionSize(0)
    # a narrower width forced on the column (a restored or dragged state) is clamped back
    h.resizeSection(0, 12)
    assert h.sectionSize(0) >= want
    # the editor closed: the title takes the room again
    window.review_dock.hide()
    for _ in range(5):
        QApplication.processEvents()
        qtbot.wait(30)
    assert h.sectionSize(0) >= want


def test_report_graded_text_not_cut_in_the_editor(qtbot, window):
    from PySide6.QtWidgets import QApplication

    with qtbot.waitSignal(window.scanFinished, timeout=30_000):
        assert window.open_demo()
    window.action("review.editor").trigger()
    ed = window.review_editor
    ed.kind.setCurrentIndex(ed.kind.findData("second-opinion"))
    for _ in range(5):
        QApplication.processEvents()
        qtbot.wait(30)
    lab = ed.graded_label
    assert lab.isVisible() and lab.width() > 0
    # as tall as its wrapped lines at its width (it was squeezed to fewer and cut)
    assert lab.height() >= lab.heightForWidth(lab.width()), (lab.height(), lab.heightForWidth(lab.width()))
    row_label = ed.second_box.layout().labelForField(lab)
    assert row_label.width() >= row_label.fontMetrics().horizontalAdvance("Report graded")
