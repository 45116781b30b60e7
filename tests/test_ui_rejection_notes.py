"""The window and IHE IOCM rejection notes: a withdrawn image is never laid out on its own, the study says
what was withdrawn and why, and an explicit audit view shows one under a red WITHDRAWN overlay.

Test data: tests/rejection_notes.py (DCMTK dump2dcm/dcmodify from a corpus image copied into tmp_path).
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

import rejection_notes as rn
from mdtviewer.ui.viewer.browser import image_instances
from ui_steps import open_and_show

pytestmark = [pytest.mark.dcmtk, pytest.mark.filterwarnings("ignore::UserWarning")]

IMWL = "Incorrect Modality Worklist Entry"


def _red_text_pixels(vp, img) -> int:
    """Pixels of the WITHDRAWN line's red in the top-left overlay block."""
    r = vp.overlay_rects()["tl"].toRect()
    return sum(1 for x in range(r.left(), r.right()) for y in range(r.top(), r.bottom())
               if img.pixelColor(x, y).getRgb()[:3] == (255, 70, 70))


def _shown_uids(window) -> set[str]:
    return {i.sop_instance_uid for vp in window.viewports for i in vp.stack}


@pytest.fixture
def opened(qtbot, window, tmp_path):
    rn.rejected_folder(tmp_path)
    vp = open_and_show(qtbot, window, [tmp_path])
    return window, vp


def test_window_hides_the_withdrawn_image_and_says_why(opened, qtbot):
    window, _vp = opened
    # autofill: one image series on screen (the withdrawn one is not a series to lay out)
    assert rn.REJECTED_UID not in _shown_uids(window)
    assert len([vp for vp in window.viewports if vp.stack]) == 1
    st = window.study(rn.STUDY_UID)
    assert [se.series_instance_uid for se in window.image_series(st)] != [] and all(
        se.series_instance_uid != rn.REJECTED_SERIES for se in window.image_series(st))
    texts = window.browser.all_texts()
    assert any(f"1 image withdrawn ({IMWL})" in t for t in texts)  # the study row says it
    assert any("[WITHDRAWN]" in t for t in texts)  # the series row too
    assert any("Rejection note" in t for t in texts)  # the note itself is not called "Key images"
    item = window.browser.series_item(rn.REJECTED_SERIES)
    assert item is not None
    assert not (item.flags() & Qt.ItemFlag.ItemIsDragEnabled)  # nothing to drag onto a viewport
    # asking for it by hand (browser activation, report reference) shows nothing else instead
    assert not window.show_series(rn.REJECTED_SERIES, audit=True)
    assert "withdrawn" in window.statusBar().currentMessage().lower()
    assert not window.show_instance(rn.REJECTED_UID)
    assert rn.REJECTED_UID not in _shown_uids(window)


def test_audit_view_shows_it_with_a_red_withdrawn_overlay(opened, qtbot):
    window, _vp = opened
    window.action("view.show_withdrawn").trigger()
    assert window.show_withdrawn
    # only an explicit request from the browser (audit=True) lays it out, never another caller
    assert not window.show_series(rn.REJECTED_SERIES)
    vp = window.current_viewport()
    # the user activates the withdrawn series' row in the study browser
    window.browser.tree.itemActivated.emit(window.browser.series_item(rn.REJECTED_SERIES), 0)
    qtbot.waitUntil(lambda: vp.loaded is not None and vp.shown_frame() is not None, timeout=20_000)
    assert vp.instance.sop_instance_uid == rn.REJECTED_UID
    assert vp.overlay_lines()["tl"][0] == f"WITHDRAWN: {IMWL}"
    img = vp.grab().toImage()
    c = img.pixelColor(7, img.height() // 2)  # the red frame round the viewport
    assert (c.red(), c.green(), c.blue()) == (230, 0, 0)
    assert _red_text_pixels(vp, img) > 50  # the WITHDRAWN line is painted in red
    # the overlay off: the frame stays
    window.set_overlays(False)
    c = vp.grab().toImage().pixelColor(7, img.height() // 2)
    assert (c.red(), c.green(), c.blue()) == (230, 0, 0)
    window.set_overlays(True)
    # the audit view off: the withdrawn image leaves the screen
    window.action("view.show_withdrawn").trigger()
    assert not window.show_withdrawn
    assert rn.REJECTED_UID not in _shown_uids(window)


def test_current_image_has_no_withdrawn_overlay(opened):
    window, vp = opened
    assert vp.withdrawn_reason() == ""
    assert "WITHDRAWN" not in vp.overlay_text()
    img = vp.grab().toImage()
    c = img.pixelColor(7, vp.height() // 2)
    assert (c.red(), c.green(), c.blue()) != (230, 0, 0)
    assert _red_text_pixels(vp, img) == 0


def test_presenter_case_and_priors_leave_it_out(opened):
    window, _vp = opened
    p = window.presenter
    p.add_current_study()
    case = p.session.cases[-1]
    names = sorted(f.rsplit("/", 1)[-1] for f in case.files)
    assert names == ["kept.dcm", "rejection.dcm"]
    # what the presenter lays out for a case or a prior: the window's image series, without the withdrawn one
    st = window.study(rn.STUDY_UID)
    laid_out = {i.sop_instance_uid for se in window.image_series(st) for i in image_instances(se)}
    assert laid_out and rn.REJECTED_UID not in laid_out


def _withdrawn_sr_listed(qtbot, window, tmp_path):
    """A study with an SR withdrawn by a rejection note (113001, note UID 2.25.19), opened; (report panel, SR UID)
    once the SR is listed."""
    rn.make_study(tmp_path)
    _sr, sr_uid, sr_series = rn.add_sr(tmp_path)
    rn.make_kos(tmp_path, "sr_rejection", note_uid="2.25.19", title=("113001", "DCM", "Rejected for Quality Reasons"),
                series_uid=sr_series, rejected=[sr_uid], ref_class=rn.ENHANCED_SR)
    open_and_show(qtbot, window, [tmp_path])
    panel = window.report_panel
    qtbot.waitUntil(lambda: any(e.sop_instance_uid == sr_uid for e in panel.entries()), timeout=20_000)
    return panel, sr_uid


def test_report_panel_marks_a_withdrawn_sr_and_never_shows_it_first(qtbot, window, tmp_path):
    panel, sr_uid = _withdrawn_sr_listed(qtbot, window, tmp_path)
    assert panel.current_entry().sop_instance_uid != sr_uid  # the rejection note explains; the SR is not current
    assert panel.select(sr_uid)
    assert panel.current_entry().withdrawn == "Rejected for Quality Reasons"
    assert panel.warning_bar.text().startswith("⚠ WITHDRAWN (Rejected for Quality Reasons): not the current report")
    row = next(panel.list.topLevelItem(i) for i in range(panel.list.topLevelItemCount())
               if panel.entries()[panel.list.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole)].sop_instance_uid
               == sr_uid)
    assert row.text(2) == "WITHDRAWN (Rejected for Quality Reasons)"


def test_export_dialog_leaves_the_withdrawn_image_out_and_says_so(qtbot, opened, tmp_path):
    from mdtviewer.ui.dialogs.export_dialog import open_dialog

    window, _vp = opened
    dlg = open_dialog(window)
    dlg.set_selected([rn.STUDY_UID])
    dlg.dest.setText(str(tmp_path / "out"))
    with qtbot.waitSignal(dlg.finished_export, timeout=60_000):
        assert dlg.start_export()
    rep = dlg.report
    assert [p.name for p, _r, _w in rep.withdrawn] == ["second.dcm"]
    assert "second.dcm" not in {i.source.name for i in rep.items}
    assert f"Not exported: 1 file(s) withdrawn by a rejection note ({IMWL})." in dlg.summary.toPlainText()
    dlg.close()


@pytest.mark.orthanc
@pytest.mark.timeout(180)
def test_a_rejection_note_only_on_the_pacs_withdraws_the_local_image(qtbot, window, tmp_path, orthanc_peer_factory):
    """The images come from a local folder (a CD, a download); the rejection note is only on the PACS, where
    the modality sent it.  The report panel's look for the study's documents on the PACS fetches it into the
    local store: the window then takes the image it withdraws off the study, as a note in the folder does
    (it was only marked in the report list, and the wrong patient's image stayed on screen)."""
    from mdtviewer.pacs import nodes
    from mdtviewer.pacs.nodes import PacsNode
    from orthanc_peer import HOST, OUR_AET

    local = tmp_path / "local"
    rn.make_study(local)
    pacs_only = tmp_path / "pacs"
    pacs_only.mkdir()
    note = rn.make_kos(pacs_only, "rejection", note_uid="2.25.16180339887498948482045868343656")
    peer = orthanc_peer_factory(load=False)
    assert peer.upload(note)
    nodes.add_node(PacsNode("dept-pacs", peer.aet, HOST, peer.dicom_port, calling_aet=OUR_AET, connect_timeout=2,
                            acse_timeout=5, dimse_timeout=10), replace=True)

    def second():
        return next(i for i in window.index.instances() if i.sop_instance_uid == rn.REJECTED_UID)

    open_and_show(qtbot, window, [local])
    qtbot.waitUntil(lambda: bool(second().withdrawn), timeout=60_000)  # fetched, indexed, applied
    assert second().withdrawn == IMWL
    qtbot.waitUntil(lambda: not window.is_scanning() and rn.REJECTED_UID not in _shown_uids(window), timeout=20_000)
    assert _shown_uids(window)  # the study's current image is still on screen
    st = next(s for s in window.studies() if s.study_instance_uid == rn.STUDY_UID)
    assert rn.REJECTED_UID in st.rejected
    assert all(i.sop_instance_uid != rn.REJECTED_UID for se in st.series.values() for i in image_instances(se))


def _report_row(panel, uid):
    return next(panel.list.topLevelItem(i) for i in range(panel.list.topLevelItemCount())
                if panel.entries()[panel.list.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole)].sop_instance_uid
                == uid)


def test_privacy_names_a_kos_by_its_title_code_only(qtbot, window, tmp_path):
    """QA3 #5: the note's patient (Test^Rejection) is not the images' patient, so the scrub, which knows the
    images' name, left "Rejection Test" typed into the note's title on screen, and called the note "Key images".
    Under privacy every list shows PS3.16's meaning of the title code, never the file's title text."""
    rn.rejected_folder(tmp_path, title=("113039", "DCM", "Data Retention Policy Expired for Rejection Test"))
    rn.make_kos(tmp_path, "key", note_uid="2.25.4242", title=("113000", "DCM", "Of Interest to Rejection Test"),
                rejected=[rn.REJECTED_UID])
    rn.make_kos(tmp_path, "odd", note_uid="2.25.4243", title=("99X1", "99LOCAL", "Rejection Test teaching"),
                rejected=[rn.REJECTED_UID])
    open_and_show(qtbot, window, [tmp_path])
    panel = window.report_panel
    qtbot.waitUntil(lambda: len(panel.entries()) == 3, timeout=20_000)
    texts = window.browser.all_texts()
    assert any("Rejection note: Data Retention Policy Expired for Rejection Test" in t for t in texts)
    window.set_privacy(True)
    texts = window.browser.all_texts()
    assert not any("Rejection Test" in t or "Key images: Data" in t for t in texts), texts
    assert any(t.endswith("Rejection note: Data Retention Policy Expired") for t in texts), texts
    assert any(t.endswith("Key images: Of Interest") for t in texts), texts
    assert any(t.endswith("1. Key images") for t in texts), texts  # a code not in CID 7010: no title at all
    listed = [panel.list.topLevelItem(i).text(0) for i in range(panel.list.topLevelItemCount())]
    tips = [panel.list.topLevelItem(i).toolTip(0) for i in range(panel.list.topLevelItemCount())]
    assert not any("Rejection Test" in t for t in listed + tips), listed + tips
    assert "Rejection note: Data Retention Policy Expired" in listed
    assert "Key images: Of Interest" in listed and "Key images" in listed
    panel.select("2.25.27182818284590452353602874713527")
    assert "Rejection Test" not in panel.html()
    window.set_privacy(False)
    listed = [panel.list.topLevelItem(i).text(0) for i in range(panel.list.topLevelItemCount())]
    assert "Rejection note: Data Retention Policy Expired for Rejection Test" in listed


def test_a_withdrawn_report_row_is_red_in_every_column(qtbot, window, tmp_path):
    """QA3 #9: the WITHDRAWN status is in the 3rd column, off-screen at the default panel width: the whole row
    is drawn in red so it shows whatever is scrolled into view; a current row is not."""
    panel, sr_uid = _withdrawn_sr_listed(qtbot, window, tmp_path)
    row = _report_row(panel, sr_uid)
    assert [row.foreground(c).color().getRgb()[:3] for c in range(4)] == [(220, 30, 30)] * 4
    note = _report_row(panel, "2.25.19")
    assert all(note.foreground(c).color().getRgb()[:3] != (220, 30, 30) for c in range(4))


def test_report_link_to_a_withdrawn_image_says_it_is_withdrawn(opened, qtbot):
    """QA3 #4: the rejection note's link to the image it withdraws said "not in the open studies": it is open,
    but withdrawn; the status bar says that, why, and how to audit it, and nothing is laid out."""
    import re

    from PySide6.QtCore import QUrl

    window, _vp = opened
    panel = window.report_panel
    qtbot.waitUntil(lambda: len(panel.entries()) == 1, timeout=20_000)
    assert panel.select("2.25.27182818284590452353602874713527")
    links = [h for h in re.findall(r'href="([^"]+)"', panel.html()) if rn.REJECTED_UID in h]
    assert links
    before = _shown_uids(window)
    panel.browser.anchorClicked.emit(QUrl(links[0].replace("&amp;", "&")))  # the user clicks the link
    msg = window.statusBar().currentMessage()
    assert msg == (f"That image is withdrawn ({IMWL}): not shown. View › Show withdrawn images to audit it."), msg
    assert _shown_uids(window) == before and rn.REJECTED_UID not in before
    # an image that is not open at all still says so
    panel.imageReferenceActivated.emit("2.25.999", 0)
    assert window.statusBar().currentMessage() == "The referenced image is not in the open studies."


def test_browser_dates_a_study_of_withdrawn_images_by_its_images(qtbot, window, tmp_path):
    """QA3 #10: the study row of a study whose only image is withdrawn showed the note's date and no
    description; it shows the exam's."""
    kept, _second, _note = rn.rejected_folder(tmp_path)
    kept.unlink()
    window.open_paths([tmp_path])
    qtbot.waitUntil(lambda: not window.is_scanning() and any("[WITHDRAWN]" in t for t in window.browser.all_texts()),
                    timeout=20_000)
    texts = window.browser.all_texts()
    assert any(t.startswith("2010-04-01") and "ECOTOMOGRAFIA" in t for t in texts), texts
    assert not any("2020-01-01" in t for t in texts), texts


def test_privacy_names_a_kos_document_by_its_title_code_in_the_report_view(qtbot, window, tmp_path):
    """The report view's heading of a KOS under privacy is PS3.16's meaning of its title code too: the file's
    title text may name someone the scrub cannot know (here another patient, typed in at the modality)."""
    rn.make_study(tmp_path)
    rn.make_kos(tmp_path, "key", note_uid="2.25.4244", title=("113000", "DCM", "Of Interest: compare SMYTHE^JOAN"),
                rejected=[rn.REJECTED_UID])
    open_and_show(qtbot, window, [tmp_path])
    panel = window.report_panel
    qtbot.waitUntil(lambda: any(e.sop_instance_uid == "2.25.4244" for e in panel.entries()), timeout=20_000)
    assert panel.select("2.25.4244")
    qtbot.waitUntil(lambda: "SMYTHE" in panel.html(), timeout=10_000)  # shown as typed without privacy
    window.set_privacy(True)
    qtbot.waitUntil(lambda: "Key images: Of Interest" in panel.html(), timeout=10_000)
    assert "SMYTHE" not in panel.html() and "JOAN" not in panel.html()
