"""Issue 10.8: an MDT session prepared from a local folder reopens after a restart (from the files it was
added from); Save As / Open; the case banner fits the screen.  Real windows (pytest-qt), corpus files read
in place."""

from __future__ import annotations

import json

import pydicom
import pytest
import pytestqt  # noqa: F401  (a test dependency: fail, never skip)

from mdtviewer.workflows.mdt_session import MDTSession

pytestmark = pytest.mark.gui

CINE = "usmf_sonosite_jpeg_ybr422_30f.dcm"


def test_local_session_reopens_after_restart_and_banner_fits(qtbot, window, testdata, tmp_path):
    from mdtviewer.ui.main_window import MainWindow

    f = testdata / CINE
    uid = str(pydicom.dcmread(f, stop_before_pixels=True).StudyInstanceUID)
    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        window.open_paths([str(f)])
    window.show_study(uid)
    window.action("mdt.new").trigger()
    window.action("mdt.add").trigger()  # MDT › Add current study
    p = window.presenter
    assert [c.study_uid for c in p.session.cases] == [uid]
    p.session.cases[0].note = "long discussion point " * 30  # a note longer than any screen is wide
    saved = p.save_session_as(tmp_path / "chosen" / "thursday.json")  # Save As: a file of the user's choice
    assert saved == tmp_path / "chosen" / "thursday.json" and saved.is_file()
    assert json.loads(saved.read_text())["cases"][0]["files"] == [str(f)]
    window.stop_all()
    window.close()

    # restart: a new window, nothing open, the session opened from its file
    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    try:
        pr = win.presenter
        pr.load_session(saved)
        assert pr.start(0)
        qtbot.waitUntil(lambda: win.viewports[0].study_uid == uid and win.viewports[0].loaded is not None,
                        timeout=30_000)
        assert "not available" not in pr.banner.toolTip()
        # the banner fits the screen: never wider than the window, the whole text in its tooltip
        screen = win.screen().availableGeometry().width()
        qtbot.waitUntil(lambda: pr.banner.text().startswith("Case 1 of 1"), timeout=5_000)
        fm = pr.banner.fontMetrics()
        assert fm.horizontalAdvance(pr.banner.text()) <= win.width() <= max(screen, 1280)
        assert pr.banner.toolTip().startswith("Case 1 of 1") and pr.banner.toolTip().count("long discussion") == 30
        assert win.minimumSizeHint().width() <= screen
        pr.stop()

        # the files moved away: said plainly, not a bare "not available"
        moved = MDTSession(title="moved")
        case = moved.add_case("1.2.826.0.1.3680043.99.1", label="Case A")
        case.files = [str(tmp_path / "gone.dcm")]
        pr.set_session(moved)
        pr.go_to(0)
        assert "files were moved or deleted" in pr.banner.toolTip()
        remote = MDTSession(title="remote")
        remote.add_case("1.2.826.0.1.3680043.99.2", source="pacs1", label="Case B")
        pr.set_session(remote)
        pr.go_to(0)
        assert "prefetch the session from pacs1" in pr.banner.toolTip()
        assert win.action("mdt.save_as") is not None and win.action("mdt.open") is not None
    finally:
        win.stop_all()
        win.close()
