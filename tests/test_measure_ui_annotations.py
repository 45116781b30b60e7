"""Measurement labels that never overlap, arrow and text annotations, and the save question on a case
switch, in the real window with the mouse and keyboard (issue 15: labels, 15.1 annotations, 15.2 save).

How the images were made
------------------------
* Spectral Doppler: ``tests/test_measurements.make_doppler_image`` -- a pydicom copy of the corpus
  Siemens S2000 image in tmp_path with a PW Doppler region (4 ms and -0.5 cm/s per pixel) and a known
  spectrum drawn in: PSV 100 cm/s, EDV 20 cm/s.  PSV, EDV and RI on one frame: the RI's label belongs
  to the EDV caliper's point, where the EDV label is too -- the case the labels used to collide in.
* Annotations: the corpus HP 34-frame cine, read in place (they are saved with their frame number).
* Measurement SRs: written by the window (Ctrl+S) with our code, checked with DCMTK ``dsrdump`` and
  dicom3tools ``dciodvfy``, read back by a new window and by ``sr show``.

Screenshots go to $MDTVIEWER_SHOTS when it is set.
"""

from __future__ import annotations

import itertools
import math
import os
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit

from mdtviewer.cli.sr import main as sr_main
from mdtviewer.sr.measurement_read import read_measurements
from mdtviewer.ui.viewer import measure
from sr_helpers import dciodvfy_errors, dsrdump
from test_measurements import CYCLE, DT, HP_CINE, PSV, SIEMENS, make_doppler_image, row_of, wave
from ui_steps import at, click, drag, open_and_show

pytestmark = [pytest.mark.gui, pytest.mark.filterwarnings("ignore::UserWarning")]

SHOTS = Path(os.environ["MDTVIEWER_SHOTS"]) if os.environ.get("MDTVIEWER_SHOTS") else None




def no_overlap(rects) -> bool:
    boxes = [(r.x(), r.y(), r.width(), r.height()) for r in rects]
    return not any(measure.rects_overlap(a, b) for a, b in itertools.combinations(boxes, 2))


def test_place_labels_moves_a_colliding_label_to_the_next_free_slot_inside_the_bounds():
    # three labels on one point, a fourth near the right edge, in a small box: none overlaps, all inside
    anchors = [(100.0, 100.0)] * 3 + [(395.0, 20.0)]
    sizes = [(90.0, 20.0), (60.0, 20.0), (70.0, 20.0), (80.0, 20.0)]
    placed = measure.place_labels(anchors, sizes, (0.0, 10.0, 400.0, 200.0))
    assert not any(measure.rects_overlap(a, b) for a, b in itertools.combinations(placed, 2))
    for x, y, w, h in placed:
        assert x >= 0 and x + w <= 400 and y >= 10 and y + h <= 210
    assert placed[0] == (108.0, 76.0, 90.0, 20.0)  # the first stays where it always was
    assert [measure.needs_leader(a, r) for a, r in zip(anchors, placed)][:3] == [False, False, False]
    # a crowd: 24 labels on one point in a 300 x 260 box -- the slots are found, never stacked
    crowd = measure.place_labels([(150.0, 130.0)] * 24, [(80.0, 16.0)] * 24, (0.0, 0.0, 300.0, 260.0))
    assert all(x >= 0 and x + w <= 300 and y >= 0 and y + h <= 260 for x, y, w, h in crowd)
    assert not any(measure.rects_overlap(a, b) for a, b in itertools.combinations(crowd, 2))
    far = [r for r in crowd if measure.needs_leader((150.0, 130.0), r)]
    assert far and all(math.dist(measure.leader_end((150.0, 130.0), r), (150.0, 130.0)) > 12 for r in far)


@pytest.fixture(autouse=True)
def measurer():
    """A reviewer profile: the measurement report names the person who measured (QA2 #4: never the account;
    without a profile nothing is saved)."""
    from sr_helpers import sign_as

    sign_as("Okafor^Ada", role="reporting-scientist")


@pytest.fixture
def win(window):
    window.commands.ask_save = lambda _n: "discard"  # closed after the test: nothing asked
    return window


def test_psv_edv_ri_labels_never_overlap_and_stay_in_the_viewport(qtbot, win, tmp_path):
    path = make_doppler_image(tmp_path)
    win.resize(1100, 700)
    vp = open_and_show(qtbot, win, [path])
    c_peak = CYCLE + int(round(0.08 / DT))
    c_end = 2 * CYCLE - 1
    p_psv, p_edv = (c_peak, row_of(PSV)), (c_end, row_of(wave(c_end * DT)))
    qtbot.keyClick(vp, Qt.Key.Key_P)
    click(qtbot, vp, *p_psv)
    win.action("tools.edv").trigger()
    click(qtbot, vp, *p_edv)
    win.action("tools.ri").trigger()
    click(qtbot, vp, *p_psv)
    click(qtbot, vp, *p_edv)
    assert [m.kind for m in vp.measurements] == ["psv", "edv", "ri"]
    vp.repaint()
    rects = list(vp.label_rects)
    assert len(rects) == 3
    assert no_overlap(rects), [r.getRect() for r in rects]
    top = vp.to_widget(0, min(r.y0 for r in vp.loaded.regions)).y()
    for r in rects:
        assert vp.rect().toRectF().contains(r) and r.top() >= top - 0.5
    # the EDV and RI labels both belong to the EDV caliper: both stay next to it (the RI moved aside)
    edv_at = vp.to_widget(*p_edv)
    for r in rects[1:]:
        ex, ey = measure.leader_end((edv_at.x(), edv_at.y()), r.getRect())
        assert math.dist((ex, ey), (edv_at.x(), edv_at.y())) < 60
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        win.grab().save(str(SHOTS / "doppler_psv_edv_ri_labels.png"))
    # in a narrow viewport too (2x2 layout on a small window)
    win.resize(800, 560)
    qtbot.keyClick(vp, Qt.Key.Key_4)
    qtbot.waitUntil(lambda: vp.width() < 420, timeout=5_000)
    vp.repaint()
    assert len(vp.label_rects) == 3 and no_overlap(vp.label_rects)
    assert all(vp.rect().toRectF().contains(r) for r in vp.label_rects)


def test_arrow_and_text_annotations_undo_save_and_come_back(qtbot, window, tmp_path, capsys):
    from mdtviewer.ui.main_window import MainWindow

    win = window
    win.commands.ask_save = lambda _n: "discard"
    win.resize(1100, 700)
    vp = open_and_show(qtbot, win, [HP_CINE])
    vp.set_frame(3)
    qtbot.waitUntil(lambda: vp.shown_frame() == 3, timeout=10_000)
    qtbot.keyClick(vp, Qt.Key.Key_A, Qt.KeyboardModifier.ShiftModifier)  # arrow tool (Shift+A)
    assert vp.tool == "arrow" and win.measure_mode
    drag(qtbot, vp, (420, 300), (330, 220))
    arrow = vp.measurements[-1]
    assert arrow.kind == "arrow" and arrow.ok and len(arrow.points) == 2 and arrow.frame == 4
    assert math.dist(arrow.points[1], vp.to_image(at(vp, 330, 220))) < 1.0  # the head where the drag ended
    # undo takes it away, a second drag puts it back
    win.action("tools.undo").trigger()
    assert vp.measurements == []
    drag(qtbot, vp, (420, 300), (330, 220))
    qtbot.keyClick(vp, Qt.Key.Key_T, Qt.KeyboardModifier.ShiftModifier)  # text tool (Shift+T)
    assert vp.tool == "text"
    click(qtbot, vp, 200, 120)
    entry = vp.findChild(QLineEdit, measure.TEXT_ENTRY_NAME)
    assert entry is not None and entry.isVisible()
    qtbot.keyClicks(entry, "Plaque ulc")  # typed (QTest types ASCII only), then the accented rest
    entry.insert("érée?")
    qtbot.keyClick(entry, Qt.Key.Key_Return)
    text = vp.measurements[-1]
    assert text.kind == "text" and text.note == "Plaque ulcérée?" and text.text == "Plaque ulcérée?"
    # Esc cancels a text being typed: nothing added
    click(qtbot, vp, 250, 260)
    entry2 = vp.findChild(QLineEdit, measure.TEXT_ENTRY_NAME)
    qtbot.keyClicks(entry2, "nope")
    assert entry2 is not None and entry2 is not entry and entry2.text() == "nope"
    qtbot.keyClick(entry2, Qt.Key.Key_Escape)
    assert [m.kind for m in vp.measurements] == ["arrow", "text"]
    assert vp.findChild(QLineEdit, measure.TEXT_ENTRY_NAME) is None and not entry2.isVisible()
    vp.repaint()
    assert len(vp.label_rects) == 1 and no_overlap(vp.label_rects)
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        win.grab().save(str(SHOTS / "arrow_text_annotation.png"))
    shown = [(m.kind, m.points, m.note) for m in vp.measurements]

    assert len(win.commands.unsaved()) == 2
    with qtbot.waitSignal(win.commands.measurementsSaved, timeout=30_000) as sig:
        win.action("tools.save_measurements").trigger()
    saved = Path(sig.args[0])
    dsrdump(saved)
    assert dciodvfy_errors(saved) == []
    doc = read_measurements(saved)
    assert [(a.kind, a.text, a.frame) for a in doc.annotations] == [("arrow", "", 4), ("text", "Plaque ulcérée?", 4)]
    capsys.readouterr()
    assert sr_main(["show", str(saved)]) == 0
    out = capsys.readouterr().out
    assert '  Text: "Plaque ulcérée?" at (' in out and "  Arrow: at (" in out and "frame 4)" in out
    win.close()

    win2 = MainWindow()
    qtbot.addWidget(win2)
    win2.commands.ask_save = lambda _n: "discard"
    win2.resize(1100, 700)
    win2.show()
    with qtbot.waitSignal(win2.commands.measurementsLoaded, timeout=60_000) as loaded:
        vp2 = open_and_show(qtbot, win2, [HP_CINE])
    assert loaded.args[1] == 2 and vp2.measurements == []  # on frame 4 only
    vp2.set_frame(3)
    qtbot.waitUntil(lambda: vp2.shown_frame() == 3, timeout=10_000)
    back = [(m.kind, m.points, m.note) for m in vp2.measurements]
    assert [b[0] for b in back] == ["arrow", "text"] and back[1][2] == shown[1][2]
    for (_k, a, _n), (_k2, b, _n2) in zip(shown, back):
        assert all(math.dist(p, q) < 1e-3 for p, q in zip(a, b))  # the same points (SCOORD is float32)
    assert not win2.commands.unsaved()


def test_unsaved_measurements_are_asked_about_when_another_study_is_opened(qtbot, win, tmp_path):
    vp = open_and_show(qtbot, win, [SIEMENS])
    win.action("tools.angle").trigger()
    for p in [(300, 150), (200, 150), (300, 250)]:
        click(qtbot, vp, *p)
    asked: list[int] = []
    win.commands.ask_save = lambda n: asked.append(n) or "cancel"
    before = len(win.index.all_instances()) if hasattr(win.index, "all_instances") else None
    win.open_paths([str(HP_CINE)])  # cancelled: nothing opened, the measurement still unsaved
    assert asked == [1] and win.commands.unsaved()
    if before is not None:
        assert len(win.index.all_instances()) == before
    # "save": written before the other study opens
    win.commands.ask_save = lambda n: asked.append(n) or "save"
    with (qtbot.waitSignal(win.commands.measurementsSaved, timeout=30_000) as sig,
          qtbot.waitSignal(win.scanFinished, timeout=60_000)):
        win.open_paths([str(HP_CINE)])
    assert asked == [1, 1] and not win.commands.unsaved()
    assert [m.kind for m in read_measurements(sig.args[0]).measurements] == ["angle"]
    # nothing unsaved: not asked again
    win.open_paths([str(HP_CINE)])
    assert asked == [1, 1]
    qtbot.waitUntil(lambda: win.commands.unsaved() == [], timeout=5_000)


def test_offscreen_the_question_never_blocks_and_keeps_the_measurements(qtbot, window, tmp_path):
    """The headless rule (as at window close): no dialog; unsaved measurements are saved, not lost."""
    win = window
    vp = open_and_show(qtbot, win, [SIEMENS])
    win.action("tools.angle").trigger()
    for p in [(300, 150), (200, 150), (300, 250)]:
        click(qtbot, vp, *p)
    with (qtbot.waitSignal(win.commands.measurementsSaved, timeout=30_000) as sig,
          qtbot.waitSignal(win.scanFinished, timeout=60_000)):
        win.open_paths([str(HP_CINE)])
    assert Path(sig.args[0]).is_file() and not win.commands.unsaved()


def test_unsaved_measurements_are_asked_about_at_the_next_mdt_case(qtbot, win):
    import pydicom

    from mdtviewer.workflows.mdt_session import MDTSession

    files = [SIEMENS, HP_CINE]
    with qtbot.waitSignal(win.scanFinished, timeout=60_000):
        win.open_paths([str(f) for f in files])
    studies = [str(pydicom.dcmread(f, stop_before_pixels=True).StudyInstanceUID) for f in files]
    s = MDTSession()
    for st in studies:
        s.add_case(st)
    p = win.presenter
    p.set_session(s)
    p.start(0)
    vp = win.viewports[0]
    qtbot.waitUntil(lambda: vp.study_uid == studies[0] and vp.shown_frame() is not None, timeout=20_000)
    win.action("tools.angle").trigger()
    for pt in [(300, 150), (200, 150), (300, 250)]:
        click(qtbot, vp, *pt)
    asked: list[int] = []
    win.commands.ask_save = lambda n: asked.append(n) or "cancel"
    p.next_case()  # cancelled: the case stays
    assert asked == [1] and p.index == 0 and win.commands.unsaved()
    win.commands.ask_save = lambda n: asked.append(n) or "save"
    with qtbot.waitSignal(win.commands.measurementsSaved, timeout=30_000) as sig:
        p.next_case()
    assert asked == [1, 1] and p.index == 1 and not win.commands.unsaved()
    assert [m.kind for m in read_measurements(sig.args[0]).measurements] == ["angle"]
    p.previous_case()  # nothing unsaved: not asked
    assert asked == [1, 1] and p.index == 0
    win.commands.ask_save = lambda _n: "discard"
