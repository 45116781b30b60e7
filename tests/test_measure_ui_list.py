"""The report panel lists each saved measurement and goes to its image and frame (issue 15).

How the files were made: the corpus HP 34-frame cine, read in place; the measurement SRs are written
by the window (Ctrl+S: a first report, then an amendment of it) into the test's own store.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from test_measurements import HP_CINE
from ui_steps import click, drag, open_and_show


@pytest.fixture(autouse=True)
def measurer():
    """A reviewer profile: the measurement report names the person who measured (QA2 #4: never the account;
    without a profile nothing is saved)."""
    from sr_helpers import sign_as

    sign_as("Okafor^Ada", role="reporting-scientist")


pytestmark = [pytest.mark.gui, pytest.mark.filterwarnings("ignore::UserWarning")]


def test_saved_measurements_listed_latest_version_only_and_a_click_goes_to_the_frame(qtbot, window):
    win = window
    win.commands.ask_save = lambda _n: "discard"
    win.resize(1280, 800)
    vp = open_and_show(qtbot, win, [HP_CINE])
    vp.set_frame(5)
    qtbot.waitUntil(lambda: vp.shown_frame() == 5, timeout=10_000)
    win.action("tools.angle").trigger()
    for p in [(300, 150), (200, 150), (300, 250)]:
        click(qtbot, vp, *p)
    angle = vp.measurements[-1].value
    lst = win.measurement_list
    with (qtbot.waitSignal(lst.loaded, timeout=30_000),
          qtbot.waitSignal(win.commands.measurementsSaved, timeout=30_000)):
        win.action("tools.save_measurements").trigger()
    qtbot.waitUntil(lambda: lst.row_count() == 1, timeout=20_000)
    name, value, unit, where, image, frame = lst.row_texts(0)
    assert (name, unit, frame) == ("Angle", "deg", "6") and float(value) == pytest.approx(angle, abs=0.05)
    assert image and str(lst.source_of(0)[0]).endswith(image)
    assert "amended" not in lst.status.text()

    # one more on the same frame, and an arrow: saved as an amendment -- the list shows its latest
    # version only (3 rows, not 4) and says it was amended
    win.action("tools.ellipse").trigger()
    drag(qtbot, vp, (150, 100), (350, 220))
    qtbot.keyClick(vp, Qt.Key.Key_A, Qt.KeyboardModifier.ShiftModifier)
    drag(qtbot, vp, (420, 300), (330, 220))
    with qtbot.waitSignal(win.commands.measurementsSaved, timeout=30_000) as sig:
        win.commands.save_measurements()
    assert "amended" in sig.args[1]
    qtbot.waitUntil(lambda: lst.row_count() == 3 and "amended" in lst.status.text(), timeout=20_000)
    assert [lst.row_texts(i)[0] for i in range(3)] == ["Angle", "Area", "Arrow"]
    assert lst.row_texts(1)[2] == "mm2"

    # a click on a row shows its image at its frame
    vp.set_frame(0)
    qtbot.waitUntil(lambda: vp.shown_frame() == 0, timeout=10_000)
    lst.table.cellClicked.emit(1, 0)
    qtbot.waitUntil(lambda: win.current_viewport().shown_frame() == 5, timeout=10_000)
    assert {m.kind for m in win.current_viewport().measurements} == {"angle", "area", "arrow"}


def test_reopened_after_an_amendment_only_the_latest_version_is_drawn(qtbot, window):
    from mdtviewer.ui.main_window import MainWindow

    win = window
    win.commands.ask_save = lambda _n: "discard"
    vp = open_and_show(qtbot, win, [HP_CINE])
    vp.set_frame(2)
    qtbot.waitUntil(lambda: vp.shown_frame() == 2, timeout=10_000)
    win.action("tools.angle").trigger()
    for p in [(300, 150), (200, 150), (300, 250)]:
        click(qtbot, vp, *p)
    with qtbot.waitSignal(win.commands.measurementsSaved, timeout=30_000):
        win.commands.save_measurements()
    qtbot.keyClick(vp, Qt.Key.Key_A, Qt.KeyboardModifier.ShiftModifier)
    drag(qtbot, vp, (420, 300), (330, 220))
    with qtbot.waitSignal(win.commands.measurementsSaved, timeout=30_000) as sig:
        win.commands.save_measurements()
    assert "amended" in sig.args[1]
    win.close()

    win2 = MainWindow()
    qtbot.addWidget(win2)
    win2.commands.ask_save = lambda _n: "discard"
    win2.resize(1280, 800)
    win2.show()
    with qtbot.waitSignal(win2.commands.measurementsLoaded, timeout=60_000) as loaded:
        vp2 = open_and_show(qtbot, win2, [HP_CINE])
    assert loaded.args[1] == 2  # the amendment's angle and arrow; the first report's angle not again
    vp2.set_frame(2)
    qtbot.waitUntil(lambda: vp2.shown_frame() == 2, timeout=10_000)
    assert sorted(m.kind for m in vp2.measurements) == ["angle", "arrow"]
    assert "amended" in win2.statusBar().currentMessage() or "amended" in win2.measurement_list.status.text()
    qtbot.waitUntil(lambda: "amended" in win2.measurement_list.status.text(), timeout=20_000)
    assert win2.measurement_list.row_count() == 2
