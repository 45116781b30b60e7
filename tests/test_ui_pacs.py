"""The PACS dialog driven as a user would (pytest-qt, offscreen) against a real Orthanc."""

from __future__ import annotations

import pydicom
import pytest
import pytestqt  # noqa: F401  (a test dependency: fail, never skip)
from PySide6.QtCore import Qt

from mdtviewer.infra import paths
from mdtviewer.pacs.nodes import PacsNode, save_nodes
from mdtviewer.ui.dialogs import pacs_dialog
from mdtviewer.ui.main_window import MainWindow
from orthanc_peer import HOST, free_port

pytestmark = [pytest.mark.gui, pytest.mark.orthanc]


@pytest.fixture
def window(qtbot, orthanc):
    save_nodes([PacsNode("orthanc", orthanc.aet, HOST, orthanc.dicom_port),
                PacsNode("down", "NOBODY", HOST, free_port())])
    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    qtbot.waitExposed(win)
    yield win
    dlg = win.pacs_dialog
    if dlg is not None:
        dlg.shutdown()
    win.stop_all()
    win.close()


def open_pacs(qtbot, win) -> pacs_dialog.PacsDialog:
    assert win.pacs_action.text() == "&PACS…"
    assert win.pacs_action in win.file_menu.actions()
    win.pacs_action.trigger()
    dlg = win.pacs_dialog
    qtbot.waitExposed(dlg)
    return dlg


def test_query_retrieve_and_open_in_viewer(qtbot, window, orthanc):
    dlg = open_pacs(qtbot, window)
    assert dlg.node_combo.count() == 2
    dlg.node_combo.setCurrentIndex(dlg.node_combo.findData("orthanc"))
    # Test connection
    qtbot.mouseClick(dlg.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dlg.status.text().startswith("✓ C-ECHO"), timeout=10_000)
    # query by patient ID, any modality
    dlg.patient_id.setText("13US1")
    dlg.modality.setCurrentIndex(dlg.modality.findData(None))
    with qtbot.waitSignal(dlg.queryFinished, timeout=10_000):
        qtbot.mouseClick(dlg.search_button, Qt.MouseButton.LeftButton)
    assert dlg.results.topLevelItemCount() == 1
    item = dlg.results.topLevelItem(0)
    assert item.text(1) == "13US1" and item.text(2) == "2004-08-26" and item.text(4) == "US"
    # expand: series are fetched in the background
    item.setExpanded(True)
    qtbot.waitUntil(lambda: item.childCount() >= 1, timeout=10_000)
    n = int(item.text(5))
    assert sum(int(item.child(i).text(5)) for i in range(item.childCount())) == n
    # retrieve with progress; the study opens in the viewer
    dlg.results.setCurrentItem(item)
    with qtbot.waitSignal(dlg.retrieveFinished, timeout=30_000) as sig:
        qtbot.mouseClick(dlg.retrieve_button, Qt.MouseButton.LeftButton)
    result = sig.args[0]
    assert result.ok and result.completed == n, result.message
    assert dlg.progress.value() == dlg.progress.maximum() == n
    assert dlg.progress_label.text() == f"completed {n}, failed 0, remaining 0"
    assert all(p.is_file() and str(p).startswith(str(paths.store_dir())) for p in result.paths)
    uid = item.data(0, pacs_dialog.STUDY_ROLE).study_instance_uid
    assert {pydicom.dcmread(p, stop_before_pixels=True).StudyInstanceUID for p in result.paths} == {uid}
    want = {str(p) for p in result.paths}
    qtbot.waitUntil(lambda: want <= {str(i.path) for i in window.index.instances()}, timeout=30_000)


def test_unreachable_node_says_why(qtbot, window):
    dlg = open_pacs(qtbot, window)
    dlg.node_combo.setCurrentIndex(dlg.node_combo.findData("down"))
    with qtbot.waitSignal(dlg.queryFinished, timeout=10_000):
        qtbot.mouseClick(dlg.search_button, Qt.MouseButton.LeftButton)
    assert dlg.status.text().startswith("✗ PACS not reachable at 127.0.0.1:")
    assert dlg.search_button.isEnabled()


def test_node_editor_tests_connection(qtbot, orthanc):
    dlg = pacs_dialog.NodeEditDialog()
    qtbot.addWidget(dlg)
    dlg.name.setText("lab")
    dlg.called_aet.setText(orthanc.aet)
    dlg.host.setText(HOST)
    dlg.port.setValue(orthanc.dicom_port)
    qtbot.mouseClick(dlg.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dlg.test_result.text().startswith("✓"), timeout=10_000)
    node = dlg.node()
    assert (node.name, node.called_aet, node.port, node.retrieve) == ("lab", "ORTHANC", orthanc.dicom_port, "get")
    dlg.called_aet.setText("WRONG")
    qtbot.mouseClick(dlg.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dlg.test_result.text().startswith("✗"), timeout=10_000)
    assert "called AE title 'WRONG' not recognised" in dlg.test_result.text()


def test_the_window_offers_pacs_in_the_file_menu_before_quit(qtbot, window):
    acts = window.file_menu.actions()
    assert acts.index(window.pacs_action) < acts.index(window.action("file.quit"))
    assert window.pacs_action.shortcut().toString() == "Ctrl+Shift+P" and window.pacs_action in window.actions()
    dlg = window.open_pacs_dialog()
    assert dlg is window.pacs_dialog and dlg.isVisible() and window.open_pacs_dialog() is dlg  # one per window
    dlg.close()


def test_outbox_is_retried_in_the_background_and_reported(qtbot, window, orthanc_peer_factory, testdata, tmp_path):
    from mdtviewer.pacs import outbox

    peer = orthanc_peer_factory(start=False)
    save_nodes([PacsNode("lab", peer.aet, HOST, peer.dicom_port)])
    sr = tmp_path / "review.dcm"
    sr.write_bytes((testdata / "sr_enhanced_tid1500_dcmjs.dcm").read_bytes())
    outbox.queue(sr, "lab", "PACS not reachable")
    win = window
    retrier = win.outbox_retrier
    with qtbot.waitSignal(retrier.flushed, timeout=10_000):
        assert retrier.retry_now()
    assert len(outbox.pending()) == 1  # still down: kept
    assert "1 still waiting" in win.statusBar().currentMessage()
    peer.start()
    dlg = win.open_pacs_dialog()  # the dialog shows the outbox and can retry at once
    assert dlg.outbox_label.text().startswith("Outbox: 1 file(s) waiting")
    with qtbot.waitSignal(retrier.flushed, timeout=10_000):
        qtbot.mouseClick(dlg.outbox_button, Qt.MouseButton.LeftButton)
    assert outbox.pending() == []
    qtbot.waitUntil(lambda: dlg.outbox_label.text() == "Outbox: empty", timeout=5_000)
    dlg.shutdown()
    assert win.statusBar().currentMessage().startswith("Outbox: 1 file(s) stored on the PACS")
    assert peer.sop_instance_uids() == {pydicom.dcmread(sr).SOPInstanceUID}


def _find_13us1(qtbot, dlg):
    dlg.node_combo.setCurrentIndex(dlg.node_combo.findData("orthanc"))
    dlg.patient_id.setText("13US1")
    dlg.modality.setCurrentIndex(dlg.modality.findData(None))
    with qtbot.waitSignal(dlg.queryFinished, timeout=10_000):
        qtbot.mouseClick(dlg.search_button, Qt.MouseButton.LeftButton)
    item = dlg.results.topLevelItem(0)
    dlg.results.setCurrentItem(item)
    return item


def test_retrieve_opens_the_first_instance_at_once_and_cancel_keeps_what_arrived(qtbot, window, orthanc):
    """The study is on screen as soon as its first instance lands (not when all have);
    Cancel retrieve stops it, keeps what arrived, and Retrieve again fetches only the rest."""
    opened: list[list[str]] = []
    real_open = window.open_paths

    def spy(paths):
        opened.append(list(paths))
        return real_open(paths)

    window.open_paths = spy
    dlg = open_pacs(qtbot, window)
    item = _find_13us1(qtbot, dlg)
    n = int(item.text(5))
    assert n >= 3
    # cancelled at once: nothing or part of the study arrives, and the dialog says so
    qtbot.mouseClick(dlg.retrieve_button, Qt.MouseButton.LeftButton)
    assert dlg.cancel_retrieve_button.isEnabled()
    qtbot.mouseClick(dlg.cancel_retrieve_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(dlg.retrieve_button.isEnabled, timeout=30_000)
    assert not dlg.cancel_retrieve_button.isEnabled()
    assert "cancel" in dlg.status.text().lower(), dlg.status.text()
    kept = list(paths.store_dir().rglob("*.dcm"))
    assert len(kept) < n
    # again, to the end: only the missing instances are fetched, and the first one is opened on arrival
    opened.clear()
    with qtbot.waitSignal(dlg.retrieveFinished, timeout=30_000) as sig:
        qtbot.mouseClick(dlg.retrieve_button, Qt.MouseButton.LeftButton)
    res = sig.args[0]
    assert res.ok and res.completed == n and res.fetched == n - len(kept), res.message
    assert len(opened) == 2 and len(opened[0]) == 1 and len(opened[1]) == n  # first instance, then the study
    assert opened[0][0] in opened[1]
    assert dlg.progress_label.text() == f"completed {n}, failed 0, remaining 0"


def test_result_table_escapes_control_characters_from_a_hostile_pacs(qtbot, window, tmp_path):
    from hostile_scp import HostilePeer

    peer = HostilePeer(tmp_path).start("control")
    try:
        save_nodes([PacsNode("hostile", peer.aet, HOST, peer.port)])
        dlg = open_pacs(qtbot, window)
        dlg.node_combo.setCurrentIndex(dlg.node_combo.findData("hostile"))
        dlg.modality.setCurrentIndex(dlg.modality.findData(None))
        with qtbot.waitSignal(dlg.queryFinished, timeout=20_000):
            qtbot.mouseClick(dlg.search_button, Qt.MouseButton.LeftButton)
    finally:
        peer.stop()
    assert dlg.results.topLevelItemCount() == 1
    item = dlg.results.topLevelItem(0)
    texts = [item.text(c) for c in range(dlg.results.columnCount())]
    assert not [t for t in texts if any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F or ch == "\u202e" for ch in t)]
    assert "\\x1b[2J" in item.text(3) and "\\r\\n0 studies" in item.text(3)
    assert "1 answer(s) from the PACS left out" in dlg.status.text()
