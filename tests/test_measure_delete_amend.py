"""HAZ-026 C4: a saved measurement the user deletes or undoes is taken out of the record by an amendment.

Before, deleting a measurement read back from (or already written to) our measurement SR counted as nothing
unsaved: Save said "No new measurements to save" and the record kept the measurement the user removed.
Now it makes the study's measurements unsaved; Save (or the question before another study, an MDT case or the
window's close) writes an amendment of that SR (Predecessor Documents Sequence, as ``sr write`` amends) without
it; the first file is never altered; the report panel's list and the viewports show the latest version only.

How the files were made: the image is the corpus HP 34-frame cine (``usmf_hp_jpeg_ybr422_34f.dcm``, a 2D
region calibrated at 0.0286 cm/px), read in place; the distances are dragged with the mouse in the real window
on two frames; every SR is written by the window (Ctrl+S or the save question) with our code and checked with
DCMTK ``dsrdump`` and dicom3tools ``dciodvfy``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from mdtviewer.sr.measurement_read import read_measurements
from sr_helpers import dciodvfy_errors, dsrdump, uid
from test_measurements import HP_CINE, SIEMENS
from ui_steps import drag, open_and_show


@pytest.fixture(autouse=True)
def measurer():
    """A reviewer profile: the measurement report names the person who measured (QA2 #4: never the account;
    without a profile nothing is saved)."""
    from sr_helpers import sign_as

    sign_as("Okafor^Ada", role="reporting-scientist")


pytestmark = [pytest.mark.gui, pytest.mark.filterwarnings("ignore::UserWarning")]

#: two distances inside the calibrated 2D region (image pixels), on frames 3 and 6 (0-based 2 and 5)
D1 = ((100.0, 100.0), (300.0, 200.0))
D2 = ((120.0, 120.0), (320.0, 300.0))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _measure_on(qtbot, win, vp, frame0: int, line) -> None:
    vp.set_frame(frame0)
    qtbot.waitUntil(lambda: vp.shown_frame() == frame0, timeout=10_000)
    win.commands.set_tool("distance")
    drag(qtbot, vp, line[0], line[1])  # image pixels (the helper drags between their widget points)
    assert vp.measurements[-1].kind == "distance" and vp.measurements[-1].ok


def _two_distances_saved(qtbot, win):
    """D1 on frame 3 and D2 on frame 6 of the HP cine, saved: (viewport, path of the first SR)."""
    vp = open_and_show(qtbot, win, [HP_CINE])
    _measure_on(qtbot, win, vp, 2, D1)
    _measure_on(qtbot, win, vp, 5, D2)
    assert len(win.commands.unsaved()) == 2
    with qtbot.waitSignal(win.commands.measurementsSaved, timeout=30_000) as sig:
        win.action("tools.save_measurements").trigger()
    first = Path(sig.args[0])
    doc = read_measurements(first)
    assert sorted((m.kind, m.frame) for m in doc.measurements) == [("distance", 3), ("distance", 6)]
    assert win.commands.unsaved_count() == 0
    return vp, first


def _check_amendment(path: Path, first: Path) -> None:
    dsrdump(path)  # no warnings but DCMTK's UTF-8 note
    assert dciodvfy_errors(path) == []
    doc = read_measurements(path)
    assert doc.predecessors == [uid(first)]  # an amendment of the first report
    assert [(m.kind, m.frame) for m in doc.measurements] == [("distance", 3)]  # without the removed one


def test_an_undone_saved_measurement_is_left_out_of_an_amendment(qtbot, window):
    win = window
    win.commands.ask_save = lambda _n: "discard"
    win.resize(1280, 800)
    vp, first = _two_distances_saved(qtbot, win)
    before = _sha(first)
    lst = win.measurement_list
    qtbot.waitUntil(lambda: lst.row_count() == 2, timeout=20_000)

    win.action("tools.undo").trigger()  # the distance on frame 6, already in the saved report
    assert vp.measurements == []
    assert win.commands.unsaved() == [] and win.commands.unsaved_count() == 1
    assert "removed" in win.statusBar().currentMessage()

    with qtbot.waitSignal(win.commands.measurementsSaved, timeout=30_000) as sig:
        win.action("tools.save_measurements").trigger()
    assert "amended" in sig.args[1] and "1 removed" in sig.args[1]
    amended = Path(sig.args[0])
    assert amended != first and _sha(first) == before  # the first file is never altered
    _check_amendment(amended, first)
    assert win.commands.unsaved_count() == 0
    # the report panel lists the latest version only; the viewport shows what the record now holds
    qtbot.waitUntil(lambda: lst.row_count() == 1 and "amended" in lst.status.text(), timeout=20_000)
    assert lst.row_texts(0)[0] == "Distance" and lst.row_texts(0)[5] == "3"
    vp.set_frame(2)
    qtbot.waitUntil(lambda: vp.shown_frame() == 2, timeout=10_000)
    assert [m.kind for m in vp.measurements] == ["distance"]
    with qtbot.waitSignal(win.commands.measurementsSaved, timeout=1_000, raising=False) as again:
        assert win.commands.save_measurements() is False  # nothing left to save
    assert not again.signal_triggered


def test_a_reopened_measurement_deleted_is_asked_about_and_amended_at_the_next_study(qtbot, window):
    from mdtviewer.ui.main_window import MainWindow

    win = window
    win.commands.ask_save = lambda _n: "discard"
    win.resize(1280, 800)
    _vp, first = _two_distances_saved(qtbot, win)
    before = _sha(first)
    win.close()

    win2 = MainWindow()
    qtbot.addWidget(win2)
    asked: list[int] = []
    win2.commands.ask_save = lambda n: asked.append(n) or "save"
    win2.resize(1280, 800)
    win2.show()
    with qtbot.waitSignal(win2.commands.measurementsLoaded, timeout=60_000) as loaded:
        vp2 = open_and_show(qtbot, win2, [HP_CINE])
    assert loaded.args[1] == 2
    vp2.set_frame(5)
    qtbot.waitUntil(lambda: vp2.shown_frame() == 5 and len(vp2.measurements) == 1, timeout=10_000)
    vp2.setFocus()
    qtbot.keyClick(vp2, Qt.Key.Key_Delete)  # Tools › Clear measurements (Delete): the frame's distance
    assert vp2.measurements == []
    assert win2.commands.unsaved() == [] and win2.commands.unsaved_count() == 1

    # another study: the question counts the removal, and "save" writes the amendment
    with (qtbot.waitSignal(win2.commands.measurementsSaved, timeout=60_000) as sig,
          qtbot.waitSignal(win2.scanFinished, timeout=60_000)):
        win2.open_paths([str(SIEMENS)])
    assert asked == [1]
    amended = Path(sig.args[0])
    assert _sha(first) == before
    _check_amendment(amended, first)
    assert win2.commands.unsaved_count() == 0
    win2.commands.ask_save = lambda n: asked.append(n) or "discard"
    win2.close()
    assert asked == [1]  # nothing unsaved at close

    # reopened: the latest version only, on screen and in the report panel
    win3 = MainWindow()
    qtbot.addWidget(win3)
    win3.commands.ask_save = lambda _n: "discard"
    win3.resize(1280, 800)
    win3.show()
    with qtbot.waitSignal(win3.commands.measurementsLoaded, timeout=60_000) as loaded3:
        vp3 = open_and_show(qtbot, win3, [HP_CINE])
    assert loaded3.args[1] == 1
    vp3.set_frame(5)
    qtbot.waitUntil(lambda: vp3.shown_frame() == 5, timeout=10_000)
    assert vp3.measurements == []
    vp3.set_frame(2)
    qtbot.waitUntil(lambda: vp3.shown_frame() == 2, timeout=10_000)
    assert [m.kind for m in vp3.measurements] == ["distance"]
    lst = win3.measurement_list
    qtbot.waitUntil(lambda: lst.row_count() == 1 and "amended" in lst.status.text(), timeout=20_000)
    win3.close()


def test_removing_every_saved_measurement_is_said_and_still_counts_as_unsaved(qtbot, window):
    """The limit: a TID 1500 report holds at least one measurement, so the last one cannot be amended away;
    the window says so and keeps asking (never a silent 'nothing to save')."""
    win = window
    win.resize(1280, 800)
    vp, first = _two_distances_saved(qtbot, win)
    win.action("tools.undo").trigger()
    vp.set_frame(2)
    qtbot.waitUntil(lambda: vp.shown_frame() == 2, timeout=10_000)
    vp.clear_measurements()
    assert win.commands.unsaved_count() == 2
    with qtbot.waitSignal(win.commands.measurementsSaveFailed, timeout=5_000) as failed:
        assert win.commands.save_measurements() is False
    assert "cannot be emptied" in failed.args[0]
    assert "cannot be empty" in win.statusBar().currentMessage()
    assert win.commands.unsaved_count() == 2
    asked: list[int] = []
    win.commands.ask_save = lambda n: asked.append(n) or "discard"
    assert win.commands.offer_save() and asked == [2]
    assert win.commands.unsaved_count() == 0  # discarded by the user: not asked again
