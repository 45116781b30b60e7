"""What a PACS user expects of the dialog and the window (issue 15.6), driven as a user would
(pytest-qt, offscreen) against real Orthanc peers:

* a finished retrieve puts the study on screen, over DIMSE (C-GET) and over DICOMweb (WADO-RS),
  even when another study was on screen before; **Open** and a double-click open a study the local
  store already holds, without asking the PACS again;
* the window title of a de-identified study says "Anonymous patient" with its description and
  date, never "Anonymized ()", and nothing identifying in privacy mode;
* a Korean name (Hangul) in the PACS result list is drawn with real glyphs from an installed font
  (the install script's CJK font), not boxes.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pydicom
import pytest
import pytestqt  # noqa: F401  (a test dependency: fail, never skip)
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextLayout

from dicomweb_peer import PASSWORD_ENV, USER, dicomweb, dicomweb_env  # noqa: F401
from mdtviewer.pacs.nodes import PacsNode, save_nodes
from mdtviewer.ui.dialogs import pacs_dialog
from mdtviewer.ui.main_window import MainWindow
from orthanc_peer import HOST, OUR_AET, make_synthetic_study

pytestmark = [pytest.mark.gui, pytest.mark.orthanc]

GE_STUDY = "1.3.6.1.4.1.5962.1.2.13.20040826185059.5457"  # 3 instances, patient ID 13US1
OTHER = "us_esaote_ybr422_uncompressed.dcm"  # another patient's study, on screen before the retrieve
ANONYMIZED = "us_retired_sopclass_rgb_planar.dcm"  # PatientName "Anonymized", no Patient ID
REPO = Path(__file__).resolve().parent.parent


def make_window(qtbot) -> MainWindow:
    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    qtbot.waitExposed(win)
    return win


def close_window(win: MainWindow) -> None:
    if win.pacs_dialog is not None:
        win.pacs_dialog.shutdown()
    win.stop_all()
    win.close()


def open_file(qtbot, win: MainWindow, path: Path) -> str:
    with qtbot.waitSignal(win.scanFinished, timeout=30_000):
        win.open_paths([str(path)])
    uid = str(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID)
    if uid not in on_screen(win):  # the window fills empty viewports by itself; else the user picks it
        win.show_study(uid)
    qtbot.waitUntil(lambda: win.current_study() is not None and win.current_study().study_instance_uid == uid,
                    timeout=10_000)
    return uid


def on_screen(win: MainWindow) -> set[str]:
    """The studies the viewports show."""
    return {vp.study_uid for vp in win.viewports if vp.stack}


def search(qtbot, dlg, patient_id: str) -> None:
    dlg.patient_id.setText(patient_id)
    dlg.modality.setCurrentIndex(dlg.modality.findData(None))
    with qtbot.waitSignal(dlg.queryFinished, timeout=10_000):
        qtbot.mouseClick(dlg.search_button, Qt.MouseButton.LeftButton)


def retrieve_and_see_it_opened(qtbot, win: MainWindow, testdata: Path) -> pacs_dialog.PacsDialog:
    before = open_file(qtbot, win, testdata / OTHER)
    assert on_screen(win) == {before}
    dlg = win.open_pacs_dialog()
    qtbot.waitExposed(dlg)
    search(qtbot, dlg, "13US1")
    item = dlg.results.topLevelItem(0)
    dlg.results.setCurrentItem(item)
    assert dlg.open_button.isEnabled()
    with qtbot.waitSignal(dlg.retrieveFinished, timeout=30_000) as sig:
        qtbot.mouseClick(dlg.retrieve_button, Qt.MouseButton.LeftButton)
    assert sig.args[0].ok and sig.args[0].completed == 3, sig.args[0].message
    # the retrieved study goes on screen (not only into the browser's list), all three instances
    qtbot.waitUntil(lambda: on_screen(win) == {GE_STUDY}, timeout=30_000)
    assert win.current_study().study_instance_uid == GE_STUDY
    qtbot.waitUntil(lambda: sum(len(vp.stack) for vp in win.viewports if vp.stack) == 3, timeout=30_000)
    assert "Opened in the viewer." in dlg.status.text()
    return dlg


def test_finished_c_get_retrieve_opens_the_study(qtbot, orthanc, testdata, mdt_home):
    save_nodes([PacsNode("orthanc", orthanc.aet, HOST, orthanc.dicom_port)])
    win = make_window(qtbot)
    try:
        dlg = retrieve_and_see_it_opened(qtbot, win, testdata)
        # Open: a study the local store holds whole comes back on screen without asking the PACS
        other = next(iter(s for s in win.studies() if s.study_instance_uid != GE_STUDY)).study_instance_uid
        win.show_study(other)
        assert on_screen(win) == {other}
        dlg.results.setCurrentItem(dlg.results.topLevelItem(0))
        dlg.node_combo.clear()  # no PACS to ask at all: Open works from the local store alone
        qtbot.mouseClick(dlg.open_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: on_screen(win) == {GE_STUDY}, timeout=30_000)
        assert dlg.retrieve_button.isEnabled() and not dlg.cancel_retrieve_button.isEnabled()
    finally:
        close_window(win)


def test_finished_wado_rs_retrieve_opens_the_study_and_double_click_opens_it_again(
    qtbot, dicomweb, dicomweb_env, testdata, mdt_home
):
    save_nodes([PacsNode.dicomweb("web", dicomweb.dicomweb_url, user=USER, password_env=PASSWORD_ENV)])
    win = make_window(qtbot)
    try:
        dlg = retrieve_and_see_it_opened(qtbot, win, testdata)
        other = next(iter(s for s in win.studies() if s.study_instance_uid != GE_STUDY)).study_instance_uid
        win.show_study(other)
        # double-click on a study held whole: opened, not retrieved again
        item = dlg.results.topLevelItem(0)
        dlg.results.setCurrentItem(item)
        rect = dlg.results.visualItemRect(item)
        qtbot.mouseClick(dlg.results.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())  # press, as a hand does
        qtbot.mouseDClick(dlg.results.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.waitUntil(lambda: on_screen(win) == {GE_STUDY}, timeout=30_000)
        assert not dlg.status.text().startswith("Retrieving")
        assert dlg.retrieve_button.isEnabled()
    finally:
        close_window(win)


def test_a_retrieve_ending_leaves_another_study_the_user_turned_to_on_screen(
    qtbot, dicomweb, dicomweb_env, testdata, mdt_home
):
    """The first instance puts the study on screen; if the user then turns to another study before the
    retrieve ends, the end of the retrieve does not pull the screen back (another patient's images
    replacing the ones being read)."""
    from test_dicomweb import _Proxy

    # the WADO-RS answer stops for a while inside its second instance (the first one has arrived whole)
    proxy = _Proxy(dicomweb.http_port, pause_after=160_000, pause=4.0)
    save_nodes([PacsNode.dicomweb("slow", proxy.url, user=USER, password_env=PASSWORD_ENV)])
    win = make_window(qtbot)
    try:
        other = open_file(qtbot, win, testdata / OTHER)
        dlg = win.open_pacs_dialog()
        qtbot.waitExposed(dlg)
        search(qtbot, dlg, "13US1")
        dlg.results.setCurrentItem(dlg.results.topLevelItem(0))
        with qtbot.waitSignal(dlg.retrieveFinished, timeout=30_000) as sig:
            qtbot.mouseClick(dlg.retrieve_button, Qt.MouseButton.LeftButton)
            qtbot.waitUntil(lambda: on_screen(win) == {GE_STUDY}, timeout=3_500)  # the first instance, on screen
            win.show_study(other)  # the user turns back to the other patient
        assert sig.args[0].ok and sig.args[0].completed == 3, sig.args[0].message
        qtbot.waitUntil(lambda: not win.is_scanning(), timeout=30_000)
        qtbot.wait(200)
        assert on_screen(win) == {other}
        assert len(win.study(GE_STUDY).instances()) == 3  # indexed, listed in the browser, one click away
    finally:
        close_window(win)
        proxy.close()


def test_open_says_when_the_study_is_not_in_the_local_store(qtbot, orthanc, mdt_home):
    save_nodes([PacsNode("orthanc", orthanc.aet, HOST, orthanc.dicom_port)])
    win = make_window(qtbot)
    try:
        dlg = win.open_pacs_dialog()
        qtbot.waitExposed(dlg)
        search(qtbot, dlg, "13US1")
        dlg.results.setCurrentItem(dlg.results.topLevelItem(0))
        qtbot.mouseClick(dlg.open_button, Qt.MouseButton.LeftButton)
        assert dlg.status.text() == (
            "1 of the selected study is not (wholly) in the local store: Retrieve first (double-click retrieves "
            "and opens)."
        )
        assert on_screen(win) == set()
    finally:
        close_window(win)


# ------------------------------------------------------------------------------------ window title
def test_title_of_a_de_identified_study(qtbot, testdata, mdt_home):
    win = make_window(qtbot)
    try:
        open_file(qtbot, win, testdata / ANONYMIZED)
        title = win.windowTitle()
        assert title == "mdtviewer — Anonymous patient — Echocardiogram — 1994-11-05"
        assert "()" not in title and "Anonymized" not in title
        win.privacy_action.trigger()  # F9: no identifier, and nothing of the study either
        assert win.windowTitle() == "mdtviewer — [hidden] (privacy on, F9)"
        win.privacy_action.trigger()
        # a study with an ID and a real name is unchanged
        open_file(qtbot, win, testdata / "us_ge_logiq700_rgb_explicit_le.dcm")
        assert win.windowTitle() == "mdtviewer — CompressedSamples, US1 (13US1) — 2004-08-26"
    finally:
        close_window(win)


# ------------------------------------------------------------------------------------ Hangul
@pytest.fixture(scope="module")
def korean_peer(tmp_path_factory, testdata, move_port):
    """An Orthanc answering in UTF-8 with a study of a Korean patient: the name of pydicom's
    chrKoreanMulti.dcm (a real ISO 2022 IR 149 file, decoded by pydicom), on a corpus US image."""
    from pydicom.data import get_charset_files

    from orthanc_peer import _new_peer

    name = str(pydicom.dcmread(get_charset_files("chrKoreanMulti.dcm")[0]).PatientName)
    assert re.search("[\uac00-\ud7a3]", name), name  # Hangul syllables
    peer = _new_peer(tmp_path_factory, modalities={"mdtviewer": (OUR_AET, move_port)},
                     extra_config={"DefaultEncoding": "Utf8"})
    peer.start()
    (path,) = make_synthetic_study(testdata, tmp_path_factory.mktemp("ko"), 1, series=1, patient_id="KR-1")
    ds = pydicom.dcmread(path)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = name
    ds.save_as(path, enforce_file_format=True)
    assert peer.upload(path)
    yield peer, name
    peer.stop(kill=True)


def hangul_drawn(text: str, font) -> dict[str, str]:
    """{Hangul character of *text*: the font family Qt draws it with}, as Qt lays *text* out in *font*
    (font fallback included), for each one drawn with a real glyph of that font (not .notdef, the box)."""
    layout = QTextLayout(text, font)
    layout.beginLayout()
    layout.createLine()
    layout.endLayout()
    out = {}
    for run in layout.glyphRuns():
        raw, glyphs = run.rawFont(), set(run.glyphIndexes())
        for ch in text:
            if "\uac00" <= ch <= "\ud7a3" and raw.supportsCharacter(ord(ch)):
                idx = raw.glyphIndexesForString(ch)
                if idx and idx[0] != 0 and idx[0] in glyphs:
                    out[ch] = raw.familyName()
    return out


def test_hangul_in_the_pacs_result_list_has_real_glyphs(qtbot, korean_peer, mdt_home, tmp_path):
    peer, name = korean_peer
    save_nodes([PacsNode("ko", peer.aet, HOST, peer.dicom_port)])
    win = make_window(qtbot)
    try:
        dlg = win.open_pacs_dialog()
        qtbot.waitExposed(dlg)
        search(qtbot, dlg, "KR-1")
        item = dlg.results.topLevelItem(0)
        assert item.text(0) == name  # the whole name, decoded (UTF-8 from the PACS)
        hangul = {ch for ch in name if "\uac00" <= ch <= "\ud7a3"}
        drawn = hangul_drawn(item.text(0), dlg.results.font())
        # every Hangul syllable is drawn from a font that has it (no .notdef box), whichever font Qt falls back to
        assert set(drawn) == hangul, (name, drawn)
        dlg.grab().save(str(tmp_path / "pacs_dialog_korean.png"))  # for a person to look at (see the report)
    finally:
        close_window(win)


def test_the_install_script_installs_the_font_that_draws_hangul(qtbot):
    """The font Qt draws Hangul with comes from a package that packaging/install-debian.sh installs."""
    from PySide6.QtGui import QFontDatabase, QRawFont
    from PySide6.QtWidgets import QApplication

    script = (REPO / "packaging" / "install-debian.sh").read_text()
    app_pkgs = re.search(r'APP_PKGS="([^"]*)"', script, re.S).group(1).split()
    raw = QRawFont.fromFont(QApplication.font(), QFontDatabase.WritingSystem.Korean)
    assert raw.isValid() and raw.familyName() in QFontDatabase.families(QFontDatabase.WritingSystem.Korean)
    assert all(raw.supportsCharacter(c) for c in range(0xAC00, 0xD7A4))  # all 11,172 Hangul syllables
    files = subprocess.run(["fc-list", f":family={raw.familyName()}", "file"], capture_output=True, text=True,
                           check=True).stdout.split()
    files = [f.rstrip(":") for f in files]
    assert files, raw.familyName()
    owners = subprocess.run(["dpkg", "-S", files[0]], capture_output=True, text=True, check=True).stdout
    package = owners.split(":")[0]
    assert package in app_pkgs, f"{raw.familyName()} comes from {package}, which install-debian.sh does not install"
