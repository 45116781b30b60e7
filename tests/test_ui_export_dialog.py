"""Export dialog: masking preview, keep-rectangle for a series without regions, export on a worker."""

from __future__ import annotations

import pydicom
import pytest
import pytestqt  # noqa: F401  (a test dependency: fail, never skip)

from mdtviewer.governance import archive
from mdtviewer.imaging import masking
from mdtviewer.ui.dialogs.export_dialog import open_dialog
from mdtviewer.ui.main_window import MainWindow

pytestmark = pytest.mark.gui

REGIONS = "us_siemens_s2000_rgb_explicit_le.dcm"
NOREGIONS = "us_ge_logiq700_rgb_explicit_le.dcm"


@pytest.fixture
def window(qtbot, testdata):
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.scanFinished, timeout=60_000):
        win.open_paths([str(testdata / REGIONS), str(testdata / NOREGIONS)])
    yield win
    win.stop_all()
    win.close()


def test_menu_action_opens_dialog(window):
    assert window.export_action.text().replace("&", "").startswith("Export de-identified")
    window.export_action.trigger()
    assert window.export_dialog.isVisible()
    window.export_dialog.close()


def test_preview_masks_and_keep_rect_then_export(qtbot, window, testdata, tmp_path):
    dlg = open_dialog(window)
    ds_r = pydicom.dcmread(testdata / REGIONS, stop_before_pixels=True)
    ds_n = pydicom.dcmread(testdata / NOREGIONS, stop_before_pixels=True)
    dlg.set_selected([ds_r.StudyInstanceUID, ds_n.StudyInstanceUID])
    # masking is on by default; writing unmaskable images unmasked is an explicit choice, off by default
    assert dlg.mask_box.isChecked() and not dlg.unmasked_box.isChecked()
    assert "Burned In Annotation YES" in dlg.unmasked_warning.text()
    with qtbot.waitSignal(dlg.previewUpdated, timeout=15_000):  # decoded on a worker, not the UI thread
        assert dlg.select_series(ds_r.SeriesInstanceUID)
    frame = dlg.preview.arr
    keep = masking.keep_mask(ds_r.Rows, ds_r.Columns, masking.ultrasound_regions(ds_r))
    assert not frame[~keep].any() and frame[keep].any()  # the preview is masked as it will be written
    with qtbot.waitSignal(dlg.previewUpdated, timeout=15_000):
        assert dlg.select_series(ds_n.SeriesInstanceUID)
    # no regions: the text is found in the pixels and masked, as export will do
    assert dlg.preview.message == ""
    found = dlg.preview.arr.reshape(-1, dlg.preview.arr.shape[-1]).any(axis=1).mean()
    assert 0.2 < found < 0.95, found
    with qtbot.waitSignal(dlg.previewUpdated, timeout=15_000):
        dlg.set_keep_rect(ds_n.SeriesInstanceUID, (10, 10, 149, 119))
    assert dlg.preview.message == ""
    assert not dlg.preview.arr[:10].any() and dlg.preview.arr[10:120, 10:150].any()
    # mismatched passwords are refused before anything is written
    dlg.dest.setText(str(tmp_path / "out"))
    dlg.encrypt_box.setChecked(True)
    dlg.pw1.setText("password one")
    dlg.pw2.setText("password two")
    assert not dlg.start_export() and "differ" in dlg.error
    assert dlg.pw1.text() == "" and dlg.pw2.text() == ""  # never kept
    # a matching password: one encrypted archive
    dlg.pw1.setText("password one")
    dlg.pw2.setText("password one")
    with qtbot.waitSignal(dlg.finished_export, timeout=60_000):
        assert dlg.start_export()
    rep = dlg.report
    assert rep is not None and rep.ok and rep.archive is not None
    assert "Exported 2 of 2" in dlg.summary.toPlainText()
    assert "Masked: 2 image(s) (keep-rect 1, regions 1)." in dlg.summary.toPlainText()
    folder = archive.open_archive(rep.archive, "password one")
    try:
        outs = sorted(folder.rglob("*.dcm"))
        assert len(outs) == 2
        for o in outs:
            ds = pydicom.dcmread(o)
            assert ds.PatientIdentityRemoved == "YES" and ds.BurnedInAnnotation == "NO"
            if ds.SOPClassUID == ds_n.SOPClassUID and not masking.ultrasound_regions(ds):
                arr = ds.pixel_array
                assert not arr[:10].any() and arr[10:120, 10:150].any()
    finally:
        archive.remove_extracted(folder)
    dlg.close()


def test_unsafe_image_refused_unless_the_explicit_choice(qtbot, window, testdata, tmp_path):
    """An image that cannot be made safe (a corpus CT whose header says text is burned in; the masking core
    finds no image area) is refused and listed; ticking 'Write images that may show identifiers unmasked'
    writes it with Burned In Annotation YES, listed as written unmasked at your request."""
    src = pydicom.dcmread(testdata / "dicomdir_pydicom_ct_mr_2patients/77654033/CT2/17106")
    src.BurnedInAnnotation = "YES"
    ct = tmp_path / "in" / "ct_with_text.dcm"
    ct.parent.mkdir()
    src.save_as(ct)
    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        window.open_paths([str(ct)])
    ds_r = pydicom.dcmread(testdata / REGIONS, stop_before_pixels=True)
    dlg = open_dialog(window)
    dlg.set_selected([ds_r.StudyInstanceUID, src.StudyInstanceUID])
    dlg.dest.setText(str(tmp_path / "a"))
    with qtbot.waitSignal(dlg.finished_export, timeout=60_000):
        assert dlg.start_export()
    text = dlg.summary.toPlainText()
    assert "Exported 1 of 2" in text and "Masked: 1 image(s) (regions 1)." in text, text
    assert "Refused, not written (may show identifiers): 1 image(s)." in text, text
    assert "refused: hidden: may show identifiers" in text
    assert len(list((tmp_path / "a").rglob("*.dcm"))) == 1
    dlg.unmasked_box.setChecked(True)
    dlg.dest.setText(str(tmp_path / "b"))
    with qtbot.waitSignal(dlg.finished_export, timeout=60_000):
        assert dlg.start_export()
    text = dlg.summary.toPlainText()
    assert "Exported 2 of 2" in text and "Written unmasked at your request (Burned In Annotation YES): 1" in text
    bia = sorted(pydicom.dcmread(p).BurnedInAnnotation for p in (tmp_path / "b").rglob("*.dcm"))
    assert bia == ["NO", "YES"]
    dlg.close()


def test_privacy_hides_study_text(qtbot, window, testdata):
    window.set_privacy(True)
    dlg = open_dialog(window)
    texts = [dlg.studies.item(i).text() for i in range(dlg.studies.count())]
    for f in (REGIONS, NOREGIONS):
        ds = pydicom.dcmread(testdata / f, stop_before_pixels=True)
        for v in (ds.get("StudyDescription", ""), ds.get("StudyDate", "")):
            if v:
                assert not any(str(v) in t for t in texts)
    assert all(t.startswith("Study ") for t in texts)
    assert dlg.studies.count() == 2
    dlg.close()


def test_open_encrypted_archive_in_the_window(qtbot, window, testdata, tmp_path):
    from mdtviewer.governance.export import ExportOptions, export_encrypted
    from mdtviewer.ui.dialogs.export_dialog import open_encrypted_archive

    rep = export_encrypted([testdata / "usmf_sonosite_jpeg_ybr422_30f.dcm"], tmp_path, "archive pass 1",
                           ExportOptions(), archive_name="mdt.7z")
    assert rep.ok
    assert open_encrypted_archive(window, str(tmp_path / "mdt.7z"), "wrong one!") is None
    assert "password" in window.statusBar().currentMessage()
    with qtbot.waitSignal(window.scanFinished, timeout=30_000):
        folder = open_encrypted_archive(window, str(tmp_path / "mdt.7z"), "archive pass 1")
    assert folder is not None
    names = {str(i.path) for i in window.index.instances()}
    assert any(n.startswith(folder) for n in names)
    pn = [str(pt.patient_name) for pt in window.index.patients.values()]
    assert any(n.startswith("MDTV^") for n in pn)  # the de-identified copy
    archive.remove_extracted(folder)


def test_preview_decoded_off_the_ui_thread(qtbot, window, testdata, monkeypatch):
    import threading

    where: list[str] = []
    real_preview, real_frames = masking.preview, masking.display_frames

    def spy_preview(*a, **kw):
        where.append(threading.current_thread().name)
        return real_preview(*a, **kw)

    def spy_frames(*a, **kw):
        where.append(threading.current_thread().name)
        return real_frames(*a, **kw)

    monkeypatch.setattr(masking, "preview", spy_preview)
    monkeypatch.setattr(masking, "display_frames", spy_frames)
    dlg = open_dialog(window)
    ds = pydicom.dcmread(testdata / REGIONS, stop_before_pixels=True)
    dlg.set_selected([ds.StudyInstanceUID])
    dlg.mask_box.setChecked(True)
    with qtbot.waitSignal(dlg.previewUpdated, timeout=15_000):
        assert dlg.select_series(ds.SeriesInstanceUID)
    assert dlg.preview.arr is not None
    assert where and all(name.startswith("export-preview") for name in where), where
    dlg.close()


def test_archive_extracted_off_the_ui_thread(qtbot, window, testdata, tmp_path, monkeypatch):
    import threading

    from mdtviewer.governance.export import ExportOptions, export_encrypted
    from mdtviewer.ui.dialogs.export_dialog import open_encrypted_archive

    rep = export_encrypted([testdata / REGIONS], tmp_path, "pass phrase 2", ExportOptions(deidentify=True),
                           archive_name="t.7z")
    assert rep.ok
    where: list[str] = []
    real = archive.open_archive

    def spy(*a, **kw):
        where.append(threading.current_thread().name)
        return real(*a, **kw)

    monkeypatch.setattr(archive, "open_archive", spy)
    with qtbot.waitSignal(window.scanFinished, timeout=30_000):
        folder = open_encrypted_archive(window, str(tmp_path / "t.7z"), "pass phrase 2")
    assert folder is not None and where == ["archive-open"]
    archive.remove_extracted(folder)
