"""Browsing beyond ultrasound: DICOMDIR, priors of other modalities, image stacks, wheel, scan cancel,
Doppler read-out."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pydicom
import pytest
import pytestqt  # noqa: F401  (a test dependency: fail, never skip)
from PySide6.QtCore import QModelIndex, QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from mdtviewer.dicom import index as index_mod
from mdtviewer.ui.main_window import MainWindow
from mdtviewer.ui.viewer.browser import DOC_KINDS, StudyBrowser, image_instances

pytestmark = pytest.mark.gui
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def window(qtbot):
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.stop_all()
    win.close()


def open_and_wait(qtbot, win, paths, timeout=60_000):
    with qtbot.waitSignal(win.scanFinished, timeout=timeout):
        win.open_paths([str(p) for p in paths])


def wheel(widget, steps: int, mods=Qt.KeyboardModifier.NoModifier) -> None:
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    ev = QWheelEvent(
        pos,
        widget.mapToGlobal(pos),
        QPoint(0, 0),
        QPoint(0, 120 * steps),
        Qt.MouseButton.NoButton,
        mods,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, ev)


def test_dicomdir_priors_and_image_stack(qtbot, window, testdata):
    dicomdir = testdata / "dicomdir_pydicom_ct_mr_2patients" / "DICOMDIR"
    open_and_wait(qtbot, window, [dicomdir])
    pts = window.index.patients
    assert len(pts) == 2
    # the patient with MR and CT studies: all listed, the one on screen bold, the others marked
    p = next(p for p in pts.values() if window.browser.current_study in p.studies)
    assert len(p.studies) > 1
    texts = window.browser.all_texts()
    assert sum(any(m in t for m in ("[prior]", "[later]", "[other study]")) for t in texts) >= len(p.studies) - 1
    assert any("CT" in t for t in texts) and any("MR" in t for t in texts)
    # a series of single-frame images is a stack: the wheel steps through the images
    se = next(
        se
        for q in pts.values()
        for st in q.studies.values()
        for se in st.series.values()
        if len(image_instances(se)) >= 5
    )
    vp = window.viewports[0]
    assert window.show_series(se.series_instance_uid, viewport=vp)
    qtbot.waitUntil(vp.is_settled, timeout=10_000)
    n = len(vp.stack)
    assert vp.stack_pos == 0 and f"Image 1/{n}" in vp.overlay_text()
    wheel(vp, -1)  # wheel down: next image
    qtbot.waitUntil(vp.is_settled, timeout=10_000)
    assert vp.stack_pos == 1 and f"Image 2/{n}" in vp.overlay_text()
    wheel(vp, 1)
    assert vp.stack_pos == 0
    qtbot.waitUntil(vp.is_settled, timeout=10_000)
    # Ctrl+wheel zooms instead
    s0 = vp.effective_scale()
    wheel(vp, 1, Qt.KeyboardModifier.ControlModifier)
    assert vp.effective_scale() > s0 and vp.stack_pos == 0
    # right-drag zooms too
    s1 = vp.effective_scale()
    QTest.mousePress(vp, Qt.MouseButton.RightButton, pos=QPoint(50, 80))
    QTest.mouseMove(vp, QPoint(50, 30))
    QTest.mouseRelease(vp, Qt.MouseButton.RightButton, pos=QPoint(50, 30))
    assert vp.effective_scale() > s1
    # grey CT/MR: a window is shown, and double-clicking a series in the browser opens it
    assert "W " in vp.overlay_text()
    other = next(
        s
        for q in pts.values()
        for st in q.studies.values()
        for s in st.series.values()
        if s is not se and image_instances(s)
    )
    item = window.browser.series_item(other.series_instance_uid)
    window.browser.tree.itemActivated.emit(item, 0)
    assert vp.series_uid == other.series_instance_uid


def test_wheel_steps_cine_frames(qtbot, window, testdata):
    open_and_wait(qtbot, window, [testdata / "usmf_hp_jpeg_ybr422_34f.dcm"])
    vp = window.viewports[0]
    qtbot.waitUntil(vp.is_settled, timeout=10_000)
    wheel(vp, -3)
    wheel(vp, -1)
    assert vp.frame_index == 2
    wheel(vp, 1)
    assert vp.frame_index == 1


def test_scan_progress_and_cancel(qtbot, window, testdata):
    window.open_paths([str(testdata)])
    assert window.progress.isVisible() and window.cancel_button.isVisible()
    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        QTest.mouseClick(window.cancel_button, Qt.MouseButton.LeftButton)
    assert not window.progress.isVisible() and not window.cancel_button.isVisible()
    assert not window.is_scanning()
    # the window still works after a cancelled scan
    open_and_wait(qtbot, window, [testdata / "usmf_sonosite_jpeg_ybr422_30f.dcm"])
    assert any(Path(i.path).name == "usmf_sonosite_jpeg_ybr422_30f.dcm" for i in window.index.instances())


def test_doppler_readout_under_the_cursor(qtbot, window, testdata, tmp_path):
    """The corpus has no spectral Doppler image: add a PW Doppler region (cm/s over s) to a real one."""
    ds = pydicom.dcmread(testdata / "us_philips_cx50_palette_explicit_le.dcm")
    rows, cols = int(ds.Rows), int(ds.Columns)
    reg = pydicom.Dataset()
    reg.RegionSpatialFormat = 3  # spectral
    reg.RegionDataType = 3  # PW Doppler
    reg.RegionFlags = 0
    reg.RegionLocationMinX0, reg.RegionLocationMinY0 = 0, rows // 2
    reg.RegionLocationMaxX1, reg.RegionLocationMaxY1 = cols - 1, rows - 1
    reg.PhysicalUnitsXDirection = 4  # seconds
    reg.PhysicalUnitsYDirection = 7  # cm/s
    reg.PhysicalDeltaX = 0.004
    reg.PhysicalDeltaY = -0.5
    reg.ReferencePixelX0 = 0
    reg.ReferencePixelY0 = 60  # baseline 60 rows into the region
    reg.ReferencePixelPhysicalValueX = 0.0
    reg.ReferencePixelPhysicalValueY = 0.0
    ds.SequenceOfUltrasoundRegions = pydicom.Sequence([reg])
    f = tmp_path / "doppler.dcm"
    ds.save_as(f)
    open_and_wait(qtbot, window, [f])
    vp = window.viewports[0]
    qtbot.waitUntil(vp.is_settled, timeout=10_000)
    # 20 rows above the baseline, 100 columns in: +10 cm/s at 400 ms
    x, y = 100, rows // 2 + 60 - 20
    QTest.mouseMove(vp, vp.to_widget(x + 0.5, y + 0.5).toPoint())
    msg = window.statusBar().currentMessage()
    assert msg.startswith("Doppler: "), msg
    v, t = [float(s.split()[0]) for s in msg[len("Doppler: ") :].split(", ")]
    px, py = vp.to_image(QPointF(vp.to_widget(x + 0.5, y + 0.5).toPoint()))
    assert v == pytest.approx((int(py) - (rows // 2 + 60)) * -0.5, abs=0.6)
    assert t == pytest.approx(int(px) * 4.0, abs=5)
    assert v > 5 and t > 300
    # a distance across the Doppler strip is refused: it has no spatial calibration
    res = vp.add_measurement((10, rows // 2 + 10), (200, rows - 10))
    assert not res.ok and res.reason


def test_mdtviewer_demo_starts(tmp_path):
    """`mdtviewer --demo` starts the window on the demo study (offscreen; stopped after a few seconds)."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "MDTVIEWER_HOME": str(tmp_path)}
    code = (
        "import sys; from PySide6.QtCore import QTimer; from PySide6.QtWidgets import QApplication\n"
        "from mdtviewer.ui import app, main_window\n"
        "orig = main_window.MainWindow.open_demo\n"
        "def od(self):\n"
        "    ok = orig(self)\n"
        "    self.scanFinished.connect(lambda: print('studies', len(self.studies()), 'shown',\n"
        "                                            self.viewports[0].instance is not None, flush=True))\n"
        "    self.scanFinished.connect(lambda: QTimer.singleShot(300, QApplication.instance().quit))\n"
        "    return ok\n"
        "main_window.MainWindow.open_demo = od\n"
        "sys.exit(app.main(['--demo', '--privacy']))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env, cwd=REPO)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "studies 2 shown True" in res.stdout


def test_open_decoders_are_bounded(qtbot, testdata):
    """Each open decoder holds its file's bytes: the service keeps only a bounded LRU of them."""
    from mdtviewer.ui.viewer.workers import FrameService

    svc = FrameService(cache_bytes=10 << 20)
    try:
        svc.max_sources = 2
        names = [
            "usmf_hp_jpeg_ybr422_34f.dcm",
            "usmf_sonosite_jpeg_ybr422_30f.dcm",
            "us_philips_cx50_palette_explicit_le.dcm",
        ]
        for n in names:
            svc._source(str(testdata / n))
        assert svc.open_sources() == 2
        assert str(testdata / names[0]) not in svc._sources
        svc.max_sources, svc.max_source_bytes = 32, 1_000_000  # 1 MB of files: only the newest stays
        svc._source(str(testdata / "usmf_acuson_sequoia_jpeg_ybr422_65f_ftv.dcm"))
        assert list(svc._sources) == [str(testdata / "usmf_acuson_sequoia_jpeg_ybr422_65f_ftv.dcm")]
    finally:
        svc.close()


def test_mdtviewer_paths_on_the_command_line_open_them(tmp_path, testdata):
    """`mdtviewer FILE FOLDER` (through the console-script dispatcher) opens both in the window;
    a path that does not exist is named on stderr and the rest still opens."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "MDTVIEWER_HOME": str(tmp_path)}
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "a.dcm").write_bytes((testdata / "usmf_hp_jpeg_ybr422_34f.dcm").read_bytes())
    code = (
        "import sys; from PySide6.QtCore import QTimer; from PySide6.QtWidgets import QApplication\n"
        "from mdtviewer import cli; from mdtviewer.ui import main_window\n"
        "orig = main_window.MainWindow.open_paths\n"
        "def op(self, paths, *a, **k):\n"
        "    self.scanFinished.connect(lambda: print('files', sorted(i.path.name for i in self.index.instances()),\n"
        "        'shown', self.viewports[0].instance is not None, flush=True))\n"
        "    self.scanFinished.connect(lambda: QTimer.singleShot(300, QApplication.instance().quit))\n"
        "    return orig(self, paths, *a, **k)\n"
        "main_window.MainWindow.open_paths = op\n"
        f"sys.exit(cli.main([{str(testdata / 'usmf_sonosite_jpeg_ybr422_30f.dcm')!r}, {str(folder)!r}, "
        f"{str(tmp_path / 'gone.dcm')!r}]))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env, cwd=REPO)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "files ['a.dcm', 'usmf_sonosite_jpeg_ybr422_30f.dcm'] shown True" in res.stdout
    assert "gone.dcm" in res.stderr


def hold_scan(monkeypatch, before: int) -> threading.Event:
    """Hold the scan (in its worker thread) before its *before*-th file until the event is set (30 s at most).

    A test can then look at the tree while the scan is really mid-way, whatever the machine's load."""
    release = threading.Event()
    real, count = index_mod._read_one, iter(range(10**9))

    def held(path):
        if next(count) == before:
            release.wait(30)
        return real(path)

    monkeypatch.setattr(index_mod, "_read_one", held)
    return release


def tree_dump(model, parent=None) -> list:
    """[(label, [children…]), …] in row order."""
    parent = parent if parent is not None else QModelIndex()
    out = []
    for r in range(model.rowCount(parent)):
        idx = model.index(r, 0, parent)
        out.append((idx.data(), tree_dump(model, idx)))
    return out


def _series_order(s):
    return (s.series_number is None, s.series_number or 0, s.series_instance_uid)


def test_scan_inserts_rows_and_never_resets_the_tree(qtbot, window, testdata, monkeypatch):
    """While a real folder scans, rows are inserted (the scan is held mid-way until some are):
    the model is never reset.  The tree at the end is the one a browser builds from the finished
    index at once, with a row for every patient, study, series and listed instance."""
    release = hold_scan(monkeypatch, 25)
    model = window.browser.tree.model()
    seen = {"reset": 0, "inserted_while_scanning": 0}

    def reset() -> None:
        seen["reset"] += 1

    def inserted(*_a) -> None:
        if window.is_scanning():
            seen["inserted_while_scanning"] += 1
            release.set()

    model.modelAboutToBeReset.connect(reset)
    model.modelReset.connect(reset)
    model.rowsInserted.connect(inserted)
    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        window.open_paths([str(testdata)])
    assert release.is_set() and seen["inserted_while_scanning"] > 0, "nothing listed while the scan ran"
    assert seen["reset"] == 0
    # the same tree as one built from the finished index in one go
    fresh = StudyBrowser()
    fresh.set_current_study(window.browser.current_study)
    fresh.set_key_uids(window.browser.key_uids)
    fresh.refresh(window.index)
    while fresh.pending():
        fresh.refresh(window.index)
    got, want = tree_dump(model), tree_dump(fresh.tree.model())
    assert got == want
    # ... and the index's hierarchy: patients in the order found, studies newest first, series by number
    pts = list(window.index.patients.values())
    assert len(got) == len(pts)
    for (_label, studies), p in zip(got, pts):
        assert len(studies) == len(p.studies)
        newest_first = sorted(p.studies.values(), key=lambda st: (st.study_date, st.study_time), reverse=True)
        for (_text, series), st in zip(studies, newest_first):
            assert len(series) == len(st.series)
            for (text, children), se in zip(series, sorted(st.series.values(), key=_series_order)):
                assert f"\n{len(se.instances)} inst" in text
                listed = len(se.instances) > 1 or se.instances[0].kind in DOC_KINDS
                assert len(children) == (len(se.instances) if listed else 0)
    fresh.deleteLater()


def test_second_scan_adds_rows_without_a_reset(qtbot, window, testdata):
    """Opening more files adds their rows; the rows already listed stay (with their patient number)."""
    open_and_wait(qtbot, window, [testdata / "usmf_hp_jpeg_ybr422_34f.dcm"])
    model = window.browser.tree.model()
    resets: list[int] = []
    model.modelAboutToBeReset.connect(lambda: resets.append(1))
    first = tree_dump(model)
    open_and_wait(qtbot, window, [testdata / "dicomdir_pydicom_ct_mr_2patients" / "DICOMDIR"])
    assert not resets
    after = tree_dump(model)
    assert len(after) == len(window.index.patients) == len(first) + 2
    assert after[0][0] == first[0][0]
