"""The PACS dialog over DICOMweb (pytest-qt, offscreen) against Orthanc's DICOMweb plugin with
HTTP basic authentication: the same dialog, the same steps as over DIMSE (issue 14.4)."""

from __future__ import annotations

import pydicom
import pytest
import pytestqt  # noqa: F401  (a test dependency: fail, never skip)
from PySide6.QtCore import Qt

from dicomweb_peer import PASSWORD_ENV, USER, dicomweb, dicomweb_env, dicomweb_factory  # noqa: F401
from mdtviewer.infra import paths
from mdtviewer.pacs.nodes import PacsNode, save_nodes
from mdtviewer.ui.dialogs import pacs_dialog
from mdtviewer.ui.main_window import MainWindow

pytestmark = [pytest.mark.gui, pytest.mark.orthanc]


@pytest.fixture
def window(qtbot, dicomweb, dicomweb_env):
    save_nodes([PacsNode.dicomweb("web", dicomweb.dicomweb_url, user=USER, password_env=PASSWORD_ENV)])
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


def test_dialog_finds_and_retrieves_over_dicomweb(qtbot, window, dicomweb):
    window.pacs_action.trigger()
    dlg = window.pacs_dialog
    qtbot.waitExposed(dlg)
    assert dlg.node_combo.itemText(0) == f"web  (DICOMweb {dicomweb.dicomweb_url})"
    qtbot.mouseClick(dlg.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dlg.status.text().startswith("✓ QIDO-RS query"), timeout=10_000)
    dlg.patient_id.setText("13US1")
    dlg.modality.setCurrentIndex(dlg.modality.findData(None))
    with qtbot.waitSignal(dlg.queryFinished, timeout=10_000):
        qtbot.mouseClick(dlg.search_button, Qt.MouseButton.LeftButton)
    assert dlg.results.topLevelItemCount() == 1
    item = dlg.results.topLevelItem(0)
    assert item.text(1) == "13US1" and item.text(2) == "2004-08-26" and item.text(4) == "US"
    item.setExpanded(True)
    qtbot.waitUntil(lambda: item.childCount() >= 1, timeout=10_000)
    n = int(item.text(5))
    assert n == 3 and sum(int(item.child(i).text(5)) for i in range(item.childCount())) == n
    dlg.results.setCurrentItem(item)
    with qtbot.waitSignal(dlg.retrieveFinished, timeout=30_000) as sig:
        qtbot.mouseClick(dlg.retrieve_button, Qt.MouseButton.LeftButton)
    result = sig.args[0]
    assert result.ok and result.completed == n, result.message
    assert dlg.progress_label.text() == f"completed {n}, failed 0, remaining 0"
    assert all(p.is_file() and str(p).startswith(str(paths.store_dir())) for p in result.paths)
    uid = item.data(0, pacs_dialog.STUDY_ROLE).study_instance_uid
    assert {pydicom.dcmread(p, stop_before_pixels=True).StudyInstanceUID for p in result.paths} == {uid}
    want = {str(p) for p in result.paths}
    qtbot.waitUntil(lambda: want <= {str(i.path) for i in window.index.instances()}, timeout=30_000)


def test_dialog_says_a_wrong_password(qtbot, window, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    dlg = window.open_pacs_dialog()
    qtbot.waitExposed(dlg)
    with qtbot.waitSignal(dlg.queryFinished, timeout=10_000):
        qtbot.mouseClick(dlg.search_button, Qt.MouseButton.LeftButton)
    assert "refused our credentials (HTTP 401)" in dlg.status.text()
    assert dlg.status.text().startswith("✗") and dlg.search_button.isEnabled()


def test_outbox_stores_on_a_dicomweb_node(qtbot, window, dicomweb_factory, testdata, tmp_path):
    from mdtviewer.pacs import outbox

    peer = dicomweb_factory()
    save_nodes([PacsNode.dicomweb("lab", peer.dicomweb_url, user=USER, password_env=PASSWORD_ENV)])
    sr = tmp_path / "review.dcm"
    sr.write_bytes((testdata / "sr_enhanced_tid1500_dcmjs.dcm").read_bytes())
    outbox.queue(sr, "lab", "PACS not reachable")
    dlg = window.open_pacs_dialog()
    assert dlg.outbox_label.text().startswith("Outbox: 1 file(s) waiting")
    with qtbot.waitSignal(window.outbox_retrier.flushed, timeout=10_000):
        qtbot.mouseClick(dlg.outbox_button, Qt.MouseButton.LeftButton)
    assert outbox.pending() == []
    assert peer.sop_instance_uids() == {pydicom.dcmread(sr).SOPInstanceUID}


def test_node_editor_makes_a_dicomweb_node(qtbot, dicomweb, dicomweb_env):
    dlg = pacs_dialog.NodeEditDialog()
    qtbot.addWidget(dlg)
    dlg.show()
    assert dlg.called_aet.isVisible() and not dlg.url.isVisible()
    dlg.name.setText("web")
    dlg.kind.setCurrentIndex(dlg.kind.findData("dicomweb"))
    assert dlg.url.isVisible() and not dlg.called_aet.isVisible()
    dlg.url.setText(dicomweb.dicomweb_url)
    dlg.user.setText(USER)
    dlg.password_env.setText(PASSWORD_ENV)
    qtbot.mouseClick(dlg.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dlg.test_result.text().startswith("✓ QIDO-RS query"), timeout=10_000)
    node = dlg.node()
    assert (node.kind, node.url, node.user, node.password_env) == (
        "dicomweb",
        dicomweb.dicomweb_url,
        USER,
        PASSWORD_ENV,
    )
    # edited again, it stays a DICOMweb node
    again = pacs_dialog.NodeEditDialog(node=node)
    qtbot.addWidget(again)
    assert again.node() == node
    dlg.user.setText("")
    qtbot.mouseClick(dlg.test_button, Qt.MouseButton.LeftButton)
    assert dlg.test_result.text() == "✗ a password needs a user name (--user)"
