"""The review window driven as a user would (pytest-qt, offscreen), on real corpus files."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
import pytestqt  # noqa: F401  (a test dependency: fail, never skip)
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from mdtviewer.ui.main_window import MainWindow
from mdtviewer.ui.viewer.overlays import format_date, format_person_name
from mdtviewer.ui.viewer.viewport import MIME_SERIES, Viewport

pytestmark = pytest.mark.gui

REPO = Path(__file__).resolve().parent.parent
SONOSITE = "usmf_sonosite_jpeg_ybr422_30f.dcm"  # 30 frames, FrameTime 33.3 ms, 1 region
HP = "usmf_hp_jpeg_ybr422_34f.dcm"  # 34 frames, FrameTime 30 ms
CX50 = "us_philips_cx50_palette_explicit_le.dcm"  # palette still, 2 regions (2D + ECG)
GREY = "us_philips_epiq7c_mono2_jpeg_lossless_sv1.dcm"
NOREGIONS = "us_ge_logiq700_j2k_lossless_ybr_rct.dcm"




def open_and_wait(qtbot, win: MainWindow, paths: list[Path], timeout: int = 60_000) -> None:
    with qtbot.waitSignal(win.scanFinished, timeout=timeout):
        win.open_paths([str(p) for p in paths])


def settled(qtbot, vps: list[Viewport], timeout: int = 20_000) -> None:
    qtbot.waitUntil(lambda: all(v.is_settled() for v in vps), timeout=timeout)


def series_item_for(win: MainWindow, filename: str):
    inst = next(i for i in win.index.instances() if Path(i.path).name == filename)
    it = win.browser.series_item(inst.series_instance_uid)
    assert it is not None, f"{filename} not in the browser"
    return inst, it


def drop_on(widget, mime: QMimeData) -> None:
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    enter = QDragEnterEvent(
        pos.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    drop = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, drop)


def key(win: MainWindow, k, mod=Qt.KeyboardModifier.NoModifier) -> None:
    QTest.keyClick(win, k, mod)
    QApplication.processEvents()


# ---------------------------------------------------------------------------- opening


def test_open_folder_lists_studies_series_and_problems(qtbot, window, testdata):
    open_and_wait(qtbot, window, [testdata])
    idx = window.index
    texts = window.browser.all_texts()
    # every displayable series is in the tree with its frame count; cine/SR/PDF badges shown
    inst, it = series_item_for(window, "usmf_acuson_sequoia_jpeg_ybr422_65f_ftv.dcm")
    assert "65 frames" in it.text(0) and "[CINE]" in it.text(0)
    assert any("[SR]" in t for t in texts) and any("[PDF]" in t for t in texts) and any("[KOS]" in t for t in texts)
    # the first study was put on screen by itself
    settled(qtbot, window.viewports)
    assert window.viewports[0].instance is not None
    # problems: every file the index could not use is listed with its one-line reason
    listed = [window.problems.item(i).text() for i in range(window.problems.count())]
    assert idx.problems, "the corpus has bad files; the index must report some"
    for prob in idx.problems:
        assert any(Path(prob.path).name in line and prob.reason in line for line in listed), prob
    assert any(line.startswith("bad_") and " — " in line and len(line.split(" — ", 1)[1]) > 5 for line in listed)
    assert window.problems_dock.isVisible()
    # duplicate SOP Instance UIDs are listed too, naming the file that is shown instead
    dups = [line for line in listed if "same SOP Instance UID as us_philips_cx50_palette_explicit_le.dcm" in line]
    assert sorted(line.split(" — ")[0] for line in dups) == sorted(Path(d).name for _k, d, _u in idx.duplicates)
    assert len(dups) == 2
    window.set_privacy(True)
    hidden = [window.problems.item(i).text() for i in range(window.problems.count())]
    assert sum("same SOP Instance UID as another file" in line for line in hidden) == 2
    assert not any("cx50" in line for line in hidden)
    window.set_privacy(False)
    # thumbnails come in the background
    qtbot.waitUntil(lambda: window.browser.has_thumbnail(inst.series_instance_uid), timeout=20_000)
    # the folder is now a recent study
    assert os.path.abspath(testdata) in window.recent()  # as opened: absolute, symlinks kept


def test_bad_pixel_file_shows_reason_in_viewport_and_problems(qtbot, window, testdata):
    bad = testdata / "bad_truncated_pixeldata_mr.dcm"
    open_and_wait(qtbot, window, [bad])
    vp = window.viewports[0]
    qtbot.waitUntil(lambda: vp.error is not None, timeout=20_000)
    assert "Cannot show this image" in vp.overlay_text()
    qtbot.waitUntil(lambda: window.problems.count() > 0, timeout=5000)
    line = window.problems.item(0).text()
    assert line.startswith("bad_truncated_pixeldata_mr.dcm — ") and vp.error.split(": ")[-1][:20] in line


def test_drop_files_on_window_opens_them(qtbot, window, testdata):
    md = QMimeData()
    md.setUrls([QUrl.fromLocalFile(str(testdata / SONOSITE))])
    with qtbot.waitSignal(window.scanFinished, timeout=30_000):
        drop_on(window.viewports[0], md)
    assert any(Path(i.path).name == SONOSITE for i in window.index.instances())


# ---------------------------------------------------------------------------- viewports


def test_drag_series_from_browser_to_viewport_and_layouts(qtbot, window, testdata):
    open_and_wait(qtbot, window, [testdata / SONOSITE, testdata / HP, testdata / CX50])
    key(window, Qt.Key.Key_4)  # 2x2
    assert (window.rows, window.cols) == (2, 2) and len(window.viewports) == 4
    inst, item = series_item_for(window, HP)
    md = window.browser.tree.mimeData([item])
    assert md.hasFormat(MIME_SERIES)
    target = window.viewports[3]
    drop_on(target, md)
    settled(qtbot, [target])
    assert target.instance is not None and Path(target.instance.path).name == HP
    assert target.n_frames == 34
    assert window.current_viewport() is target
    # every layout from the menu keys
    for k, (r, c) in zip(
        (Qt.Key.Key_1, Qt.Key.Key_2, Qt.Key.Key_3, Qt.Key.Key_5, Qt.Key.Key_4), ((1, 1), (1, 2), (2, 1), (1, 3), (2, 2))
    ):
        key(window, k)
        assert (window.rows, window.cols) == (r, c)
        assert len([v for v in window.viewports if v.isVisible()]) == r * c
    # the dragged series is still in viewport 4; double-click maximises it and back
    assert Path(window.viewports[3].instance.path).name == HP
    QTest.mouseDClick(target, Qt.MouseButton.LeftButton, pos=QPoint(20, 20))
    assert [v.isVisible() for v in window.viewports] == [False, False, False, True]
    QTest.mouseDClick(target, Qt.MouseButton.LeftButton, pos=QPoint(20, 20))
    assert all(v.isVisible() for v in window.viewports)


def test_zoom_pan_window_level_invert(qtbot, window, testdata):
    open_and_wait(qtbot, window, [testdata / GREY])
    vp = window.viewports[0]
    settled(qtbot, [vp])
    assert not vp.loaded.is_color
    before = vp.displayed_array().copy()
    # left-drag: window/level on a grey image
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, pos=QPoint(100, 100))
    QTest.mouseMove(vp, QPoint(160, 130))
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=QPoint(160, 130))
    assert vp.window_level is not None
    qtbot.waitUntil(vp.shows_window_level, timeout=10_000)
    assert "W " in vp.overlay_text() and (vp.displayed_array() != before).any()
    # invert, reset
    key(window, Qt.Key.Key_I)
    assert vp.invert
    key(window, Qt.Key.Key_R)
    assert vp.window_level is None
    # Ctrl+wheel zooms, F fits, Ctrl+1 is 1:1
    fit_scale = vp.effective_scale()
    QTest.keyClick(window, Qt.Key.Key_Plus)
    assert vp.effective_scale() > fit_scale
    key(window, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert vp.effective_scale() == pytest.approx(1.0)
    key(window, Qt.Key.Key_F)
    assert vp.fit
    # middle-drag pans
    vp.actual_size()
    c0 = vp.center
    QTest.mousePress(vp, Qt.MouseButton.MiddleButton, pos=QPoint(100, 100))
    QTest.mouseMove(vp, QPoint(140, 100))
    QTest.mouseRelease(vp, Qt.MouseButton.MiddleButton, pos=QPoint(140, 100))
    assert vp.center.x() == pytest.approx(c0.x() - 40, abs=1)


# ---------------------------------------------------------------------------- cine


def test_cine_play_pause_step_speed_sync(qtbot, window, testdata):
    open_and_wait(qtbot, window, [testdata / SONOSITE, testdata / HP])
    key(window, Qt.Key.Key_2)  # 1x2: the two cines
    a, b = window.viewports
    window.show_series(series_item_for(window, SONOSITE)[0].series_instance_uid, viewport=a)
    window.show_series(series_item_for(window, HP)[0].series_instance_uid, viewport=b)
    settled(qtbot, [a, b])
    assert a.clock.fps == pytest.approx(30.0, rel=0.01) and b.clock.fps == pytest.approx(1000 / 30, rel=0.01)
    window.set_current_viewport(a)
    # play (Space): frames advance by wall clock
    key(window, Qt.Key.Key_Space)
    assert a.playing and not b.playing
    qtbot.wait(400)
    assert a.stats.shown >= 3 and a.frame_index > 0
    # pause (Space): the frame stays
    key(window, Qt.Key.Key_Space)
    assert not a.playing
    f = a.frame_index
    qtbot.wait(150)
    assert a.frame_index == f
    # step, first, last
    key(window, Qt.Key.Key_Right)
    assert a.frame_index == (f + 1) % 30
    key(window, Qt.Key.Key_Left)
    assert a.frame_index == f
    key(window, Qt.Key.Key_End)
    assert a.frame_index == 29
    key(window, Qt.Key.Key_Home)
    assert a.frame_index == 0
    settled(qtbot, [a])
    assert "Frame 1/30" in a.overlay_text() and "30.0 fps" in a.overlay_text()
    # speed 2x
    window.set_speed(2.0)
    key(window, Qt.Key.Key_Space)
    assert a.play.speed == pytest.approx(2.0)
    key(window, Qt.Key.Key_Space)
    window.set_speed(1.0)
    # sync: both loops follow the leader by normalised position
    b.set_frame(20)
    key(window, Qt.Key.Key_S)
    assert window.sync
    assert abs(b.position() - a.position()) <= 1 / 34 + 1e-9  # b followed a to the start
    key(window, Qt.Key.Key_Space)
    assert a.playing and b.playing
    # the leader's loop is 1000 ms, b's own loop 1020 ms: by default b keeps its own speed (issue 10.7)
    assert b.play.speed == 1.0
    # stretching is the explicit choice: b then lasts as long as the leader
    window.set_sync_stretch(True)
    assert b.play.speed == pytest.approx(b.clock.total_ms / a.clock.total_ms)
    qtbot.wait(700)
    key(window, Qt.Key.Key_Space)
    assert not a.playing and not b.playing
    assert abs(a.position() - b.position()) <= 3 / 30  # in step (a frame or two of paint jitter at most)
    window.set_sync_stretch(False)
    # stepping in sync moves both
    key(window, Qt.Key.Key_Right)
    assert abs(a.position() - b.position()) <= 1 / 30 + 1e-9


def test_frame_cache_stays_within_budget_while_playing(qtbot, testdata):
    budget = 3 * 576 * 456 * 3  # three frames of the 65-frame Acuson cine
    win = MainWindow(cache_bytes=budget)
    qtbot.addWidget(win)
    win.show()
    try:
        open_and_wait(qtbot, win, [testdata / "usmf_acuson_sequoia_jpeg_ybr422_65f_ftv.dcm"])
        vp = win.viewports[0]
        settled(qtbot, [vp])
        win.play()
        qtbot.wait(1200)
        win.stop_all()
        assert vp.stats.shown > 5
        assert win.service.cache.peak_bytes <= budget
        assert win.service.cache.evictions > 0
        # the budget is a setting, applied at once and remembered
        win.set_cache_bytes(256 << 20)
        assert win.service.cache.max_bytes == 256 << 20
        from mdtviewer.infra import settings
        from mdtviewer.ui import tasks

        assert tasks.flush()  # the settings file is written off the UI thread
        assert settings.get_section("viewer")["cache_bytes"] == 256 << 20
        win2 = MainWindow()
        assert win2.service.cache.max_bytes == 256 << 20
        win2.close()
    finally:
        win.close()


# ---------------------------------------------------------------------------- measurement


def _tissue_region(path: Path):
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    regs = [
        r for r in ds.SequenceOfUltrasoundRegions if r.PhysicalUnitsXDirection == 3 and r.PhysicalUnitsYDirection == 3
    ]
    return max(
        regs,
        key=lambda r: (r.RegionLocationMaxX1 - r.RegionLocationMinX0) * (r.RegionLocationMaxY1 - r.RegionLocationMinY0),
    )


@pytest.mark.parametrize("name", [CX50, SONOSITE])
def test_calibrated_distance_with_the_mouse(qtbot, window, testdata, name):
    open_and_wait(qtbot, window, [testdata / name])
    vp = window.viewports[0]
    settled(qtbot, [vp])
    r = _tissue_region(testdata / name)
    dx_cm, dy_cm = float(r.PhysicalDeltaX), float(r.PhysicalDeltaY)
    x0, y0, x1, y1 = r.RegionLocationMinX0, r.RegionLocationMinY0, r.RegionLocationMaxX1, r.RegionLocationMaxY1
    key(window, Qt.Key.Key_M)
    assert vp.measure_mode
    pa = vp.to_widget(x0 + (x1 - x0) * 0.3, y0 + (y1 - y0) * 0.3).toPoint()
    pb = vp.to_widget(x0 + (x1 - x0) * 0.7, y0 + (y1 - y0) * 0.6).toPoint()
    with qtbot.waitSignal(vp.measured, timeout=5000) as sig:
        QTest.mousePress(vp, Qt.MouseButton.LeftButton, pos=pa)
        QTest.mouseMove(vp, pb)
        QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=pb)
    res = sig.args[0]
    assert res.ok and res.calibrated
    (ax, ay), (bx, by) = res.p0, res.p1
    expected_mm = ((bx - ax) ** 2 * dx_cm**2 + (by - ay) ** 2 * dy_cm**2) ** 0.5 * 10
    assert res.mm == pytest.approx(expected_mm, rel=1e-6)
    assert res.mm > 5
    shown = f"{expected_mm / 10:.2f} cm" if expected_mm >= 10 else f"{expected_mm:.1f} mm"
    assert window.statusBar().currentMessage() == f"Distance: {shown}"
    # a line from inside the region to outside every region is refused, and the reason shown
    bad = vp.add_measurement((x0 + 5, y0 + 5), (vp.image_size()[0] - 1, vp.image_size()[1] - 1))
    if not bad.ok:
        assert "Measurement refused:" in window.statusBar().currentMessage()
        assert bad.reason and bad.mm is None


def test_line_across_regions_refused_and_uncalibrated_in_pixels(qtbot, window, testdata):
    open_and_wait(qtbot, window, [testdata / CX50])
    vp = window.viewports[0]
    settled(qtbot, [vp])
    ds = pydicom.dcmread(testdata / CX50, stop_before_pixels=True)
    regs = list(ds.SequenceOfUltrasoundRegions)
    assert len(regs) == 2
    c = [
        ((r.RegionLocationMinX0 + r.RegionLocationMaxX1) / 2, (r.RegionLocationMinY0 + r.RegionLocationMaxY1) / 2)
        for r in regs
    ]
    res = vp.add_measurement(c[0], c[1])
    assert not res.ok and "region" in res.reason
    assert window.statusBar().currentMessage() == f"Measurement refused: {res.reason}"
    # an image with no regions: pixels only, said so
    open_and_wait(qtbot, window, [testdata / NOREGIONS])
    window.show_series(series_item_for(window, NOREGIONS)[0].series_instance_uid)
    settled(qtbot, [vp])
    res = vp.add_measurement((10, 10), (40, 50))
    assert res.ok and not res.calibrated and res.text == "50.0 px (uncalibrated)"
    assert "Scale: uncalibrated (px)" in vp.overlay_text()


# ---------------------------------------------------------------------------- privacy


def _identifiers(win: MainWindow) -> list[str]:
    out: set[str] = set()
    for p in win.index.patients.values():
        for v in (p.patient_name, format_person_name(p.patient_name), p.patient_id):
            if v and len(v.strip()) >= 4:
                out.add(v.strip())
        if p.birth_date:
            out.add(format_date(p.birth_date))
        for st in p.studies.values():
            if st.accession_number and len(st.accession_number) >= 4:
                out.add(st.accession_number)
    return sorted(out)


def _every_text_on_screen(win: MainWindow) -> list[str]:
    """All text a visible widget can show, found generically (not through the window's own
    visible_texts(), so a widget that method forgets is still searched): texts, tool tips,
    titles, and every row, column and tool tip of every item model on screen."""
    from PySide6.QtCore import QModelIndex
    from PySide6.QtWidgets import QAbstractItemView, QComboBox, QPlainTextEdit, QTabBar, QTextEdit, QWidget

    out = [win.windowTitle(), win.statusBar().currentMessage()]
    for w in win.findChildren(QWidget):
        if not w.isVisible():
            continue
        out += [w.toolTip(), w.windowTitle(), w.accessibleName()]
        for attr in ("text", "title", "placeholderText"):
            fn = getattr(w, attr, None)
            if callable(fn):
                try:
                    v = fn()
                except TypeError:
                    continue
                if isinstance(v, str):
                    out.append(v)
        if isinstance(w, (QTextEdit, QPlainTextEdit)):
            out.append(w.toPlainText())
        if isinstance(w, QComboBox):
            out += [w.itemText(i) for i in range(w.count())]
        if isinstance(w, QTabBar):
            out += [w.tabText(i) for i in range(w.count())]
        if isinstance(w, QAbstractItemView) and w.model() is not None:
            m = w.model()
            stack = [QModelIndex()]
            while stack:
                parent = stack.pop()
                try:
                    cols = m.columnCount(parent)
                except TypeError:  # list models keep columnCount private: one column
                    cols = 1
                for r in range(m.rowCount(parent)):
                    for c in range(cols):
                        ix = m.index(r, c, parent)
                        for role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
                            v = m.data(ix, role)
                            if isinstance(v, str):
                                out.append(v)
                    stack.append(m.index(r, 0, parent))
        if isinstance(w, Viewport):
            out.append(w.overlay_text())
    return [t for t in out if t]


def test_privacy_hides_every_identifier_on_screen(qtbot, window, testdata):
    open_and_wait(qtbot, window, [testdata])
    key(window, Qt.Key.Key_4)
    settled(qtbot, window.viewports, timeout=30_000)
    sr = next(i for i in window.index.instances() if Path(i.path).name == "sr_basic_text_offis_reportsi.dcm")
    window.show_instance(sr.sop_instance_uid)
    qtbot.wait(500)
    ids = _identifiers(window)
    assert len(ids) > 10
    before = "\n".join(window.visible_texts())
    assert sum(1 for i in ids if i in before) >= 3, "identifiers must be visible before privacy is switched on"
    assert sum(1 for i in ids if i in "\n".join(_every_text_on_screen(window))) >= 3  # the generic walk sees them too
    key(window, Qt.Key.Key_F9)
    assert window.privacy and window.privacy_action.isChecked()
    qtbot.wait(300)
    QApplication.processEvents()
    texts = window.visible_texts()
    joined = "\n".join(texts)
    leaks = [i for i in ids if re.search(r"(?<![\w])" + re.escape(i) + r"(?![\w])", joined)]
    assert not leaks, f"identifiers still on screen with privacy on: {leaks}"
    everything = "\n".join(_every_text_on_screen(window))
    leaks = [i for i in ids if re.search(r"(?<![\w])" + re.escape(i) + r"(?![\w])", everything)]
    assert not leaks, f"identifiers in tool tips, item models or other widgets with privacy on: {leaks}"
    assert "[hidden]" in window.windowTitle()
    assert all("[hidden]" in v.overlay_text() for v in window.viewports if v.stack)
    # it stays on through layout changes and new series
    key(window, Qt.Key.Key_1)
    assert window.privacy and window.viewports[0].privacy
    # and switches off again
    key(window, Qt.Key.Key_F9)
    assert not window.privacy
    after = "\n".join(window.visible_texts())
    assert any(i in after for i in ids)


def test_privacy_from_start_and_report_panel(qtbot, testdata):
    win = MainWindow(privacy=True)
    qtbot.addWidget(win)
    win.show()
    try:
        assert win.privacy and win.privacy_action.isChecked()
        rp = win.report_panel
        if hasattr(rp, "privacy"):
            assert rp.privacy() is True
        open_and_wait(qtbot, win, [testdata / SONOSITE])
        settled(qtbot, win.viewports)
        ds = pydicom.dcmread(testdata / SONOSITE, stop_before_pixels=True)
        assert str(ds.PatientName) and str(ds.PatientName) not in "\n".join(win.visible_texts())
        # burned-in text outside the ultrasound region is blanked on screen; the region itself is untouched
        vp = win.viewports[0]
        r = ds.SequenceOfUltrasoundRegions[0]
        keep = np.zeros(vp.displayed_array().shape[:2], dtype=bool)
        keep[r.RegionLocationMinY0 : r.RegionLocationMaxY1 + 1, r.RegionLocationMinX0 : r.RegionLocationMaxX1 + 1] = (
            True
        )
        assert (~keep).any()
        assert vp.displayed_array()[~keep].max() == 0 and vp.displayed_array()[keep].max() > 0
        assert "Burned-in text masked" in vp.overlay_text()
        # thumbnails too: the browser shows the masked one while privacy is on
        uid = vp.series_uid
        qtbot.waitUntil(lambda: win.browser.has_thumbnail(uid), timeout=10_000)
        from mdtviewer.ui.viewer.workers import private_thumbnail

        full = vp.displayed_array()
        masked = private_thumbnail(vp.instance.path, np.full_like(full, 200))
        assert masked is not None and masked.min() == 0 and masked.max() == 200
        item_icon = win.browser.series_item(uid).icon(0).pixmap(64, 64).toImage()
        assert item_icon.cacheKey() != 0
        assert win.browser._icon_for(uid) is win.browser._private_icons[uid]
        win.set_privacy(False)
        assert win.browser._icon_for(uid) is win.browser._icons[uid]
        qtbot.waitUntil(lambda: vp.is_settled() and vp.displayed_array()[~keep].max() > 0, timeout=5000)
    finally:
        win.close()


# ---------------------------------------------------------------------------- demo, API, CLI


def test_demo_study_and_report_reference_opens_frame(qtbot, window):
    demo = REPO / "mdtviewer" / "resources" / "demo"
    with qtbot.waitSignal(window.scanFinished, timeout=30_000):
        assert window.open_demo()
    settled(qtbot, window.viewports)
    insts = window.index.instances()
    kinds = sorted(i.kind for i in insts)
    assert kinds == ["cine", "image", "image", "kos", "pdf", "sr"]
    assert sum(f.stat().st_size for f in demo.glob("*.dcm")) < 3_000_000
    assert (demo / "LICENSE").exists() and "MIT" in (demo / "LICENSE").read_text()
    # the demo study has a prior of the same patient, listed as such
    assert len(window.index.patients) == 1 and len(next(iter(window.index.patients.values())).studies) == 2
    assert any("[prior]" in t for t in window.browser.all_texts())
    # KOS-referenced key image is marked in the browser
    qtbot.waitUntil(lambda: any("★KEY" in t for t in window.browser.all_texts()), timeout=10_000)
    # a report's image reference (cine frame 12) opens that frame
    cine = next(i for i in insts if i.kind == "cine")
    window.report_panel.imageReferenceActivated.emit(cine.sop_instance_uid, 12)
    vp = window.current_viewport()
    assert vp.instance.sop_instance_uid == cine.sop_instance_uid
    qtbot.waitUntil(lambda: vp.frame_index == 11 and vp.is_settled(), timeout=10_000)


def test_window_api_and_menus(window):
    names = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert names == ["File", "View", "Cine", "Tools", "Review", "MDT", "Help"]
    assert "F9" in window.privacy_action.shortcut().toString()
    window.set_layout(1, 3)
    assert len(window.viewports) == 3 and window.current_viewport() in window.viewports
    assert window.report_panel is not None and window.index is not None
    assert window.show_instance("1.2.3.4.not.there") is False
    assert window.menu("Cine") is window.cine_menu and window.menu("View") is window.view_menu


def _run_cli(args: list[str], timeout: int = 120) -> subprocess.CompletedProcess:
    env = {**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run(
        [sys.executable, "-m", "mdtviewer", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def test_open_screenshot_cli(tmp_path, testdata):
    from PySide6.QtGui import QImage

    out = tmp_path / "shot.png"
    t0 = time.perf_counter()
    res = _run_cli(
        ["open", str(testdata / HP), str(testdata / CX50), "--layout", "1x2", "--privacy", "--screenshot", str(out)]
    )
    assert res.returncode == 0, res.stderr
    assert time.perf_counter() - t0 < 60
    img = QImage(str(out))
    assert (img.width(), img.height()) == (1600, 900)
    # the viewports are not blank: the image area holds many distinct colours
    sample = {img.pixel(x, y) for x in range(300, 1100, 7) for y in range(150, 750, 7)}
    assert len(sample) > 50
    # nothing displayable: exit 1 and say why
    res = _run_cli(
        ["open", str(testdata / "sr_basic_text_offis_reportsi.dcm"), "--screenshot", str(tmp_path / "no.png")]
    )
    assert res.returncode == 1 and "no displayable image series" in res.stderr
    assert not (tmp_path / "no.png").exists()
    res = _run_cli(["open", str(tmp_path / "missing.dcm")])
    assert res.returncode == 2


def test_opening_a_study_is_audited_once_without_identifiers(qtbot, window, testdata, tmp_path):
    from mdtviewer.infra import audit

    src = testdata / "usmf_sonosite_jpeg_ybr422_30f.dcm"
    ds = pydicom.dcmread(src, stop_before_pixels=True)
    open_and_wait(qtbot, window, [src])
    qtbot.waitUntil(lambda: any(r["event"] == "study-opened" for r in audit.read_records()), timeout=20_000)
    window.show_instance(ds.SOPInstanceUID, 3)  # the same study again: no second record
    opened = [r for r in audit.read_records() if r["event"] == "study-opened"]
    assert [r["study_uid"] for r in opened] == [ds.StudyInstanceUID]
    from mdtviewer.infra import paths

    log = (paths.logs_dir() / "audit.jsonl").read_text(encoding="utf-8")
    for ident in (str(ds.PatientName), str(ds.PatientID)):
        if len(ident) >= 3:
            assert ident not in log


def test_interactive_window_without_display_says_so(monkeypatch, capsys):
    from mdtviewer.ui import app

    monkeypatch.setenv("QT_QPA_PLATFORM", "")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert app.main(["--demo"]) == 1
    assert "no display" in capsys.readouterr().err


def test_open_screenshot_is_audited_as_an_application_run(testdata, tmp_path):
    """`mdtviewer open` is an application start like any other: start and stop are in the trail."""
    import json
    import os

    home = tmp_path / "home"
    env = {**os.environ, "MDTVIEWER_HOME": str(home), "QT_QPA_PLATFORM": "offscreen"}
    shot = tmp_path / "shot.png"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "mdtviewer",
            "open",
            str(testdata / "usmf_sonosite_jpeg_ybr422_30f.dcm"),
            "--screenshot",
            str(shot),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    events = [json.loads(line)["event"] for line in (home / "logs" / "audit.jsonl").read_text().splitlines()]
    assert events[0] == "app-start" and events[-1] == "app-stop"
    assert "study-opened" in events
