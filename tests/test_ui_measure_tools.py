"""Measuring tools in the real window, with the mouse (issue 15.1, 15.2, 15.6 undo).

How the images were made
------------------------
* 2D tools: corpus images read in place -- the Siemens S2000 RGB image (one 2D region, square
  0.0238 cm pixels, region from row 60) and the HP 34-frame cine (non-square 0.0286 x 0.0229 cm
  pixels).  Expected values come from the raw Physical Delta X/Y read with pydicom and from
  ``imaging.measurements`` on the intended points; the UI must agree within 1 %.
* Spectral Doppler: ``tests/test_measurements.make_doppler_image`` -- a pydicom copy of the Siemens
  image with a PW Doppler region (4 ms and -0.5 cm/s per pixel, baseline at row 660) and a known
  spectrum drawn in: PSV 100 cm/s, EDV 20 cm/s, RI 0.8.

Waits use qtbot's event loops only.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from mdtviewer.imaging import measurements as core
from test_measurements import (
    CYCLE,
    DT,
    EDV,
    HP_CINE,
    PSV,
    SIEMENS,
    make_doppler_image,
    raw_delta,
    regions_of,
    row_of,
    wave,
)
from ui_steps import at, click, drag, open_and_show

pytestmark = [pytest.mark.gui, pytest.mark.filterwarnings("ignore::UserWarning")]

SHOTS = Path(os.environ.get("MDTVIEWER_SHOTS", "")) if os.environ.get("MDTVIEWER_SHOTS") else None




def close(value: float, expected: float, rel: float) -> bool:
    return abs(value - expected) <= rel * abs(expected)


@pytest.fixture(autouse=True)
def measurer():
    """A reviewer profile: the measurement report names the person who measured (QA2 #4: never the account;
    without a profile nothing is saved)."""
    from sr_helpers import sign_as

    sign_as("Okafor^Ada", role="reporting-scientist")


@pytest.fixture
def win(window):
    window.commands.ask_save = lambda _n: "discard"  # the window is closed after the test: nothing asked
    return window


def test_area_polygon_ellipse_and_angle_drawn_with_the_mouse(qtbot, win):
    vp = open_and_show(qtbot, win, [SIEMENS])
    dx, dy = raw_delta(SIEMENS)
    regs = regions_of(SIEMENS)
    win.action("tools.area").trigger()
    assert win.measure_mode and vp.tool == "area"
    corners = [(200, 200), (400, 200), (400, 300), (200, 300)]
    for c in corners:
        click(qtbot, vp, *c)
    assert vp.measurements == []  # not closed yet: a polygon ends with a double-click
    qtbot.mouseDClick(vp, Qt.MouseButton.LeftButton, pos=at(vp, *corners[-1]))
    (area,) = vp.measurements
    assert area.ok and area.kind == "area" and area.unit == "mm2" and area.graphic == "POLYGON"
    assert close(area.value, 200 * dx * 100 * dy * 100, 0.01)
    assert close(area.value, core.measure("area", regs, corners).value, 0.01)
    assert "cm²" in area.text and win.statusBar().currentMessage() == area.text

    win.action("tools.ellipse").trigger()
    drag(qtbot, vp, (300, 300), (700, 500))
    ell = vp.measurements[-1]
    assert ell.graphic == "ELLIPSE" and ell.kind == "area"
    assert close(ell.value, math.pi * (200 * dx) * (100 * dy) * 100, 0.01)

    win.action("tools.angle").trigger()
    for p in [(600, 200), (400, 200), (600, 400)]:  # 45 deg on square pixels
        click(qtbot, vp, *p)
    ang = vp.measurements[-1]
    assert ang.kind == "angle" and ang.unit == "deg"
    assert close(ang.value, core.measure("angle", regs, [(600, 200), (400, 200), (600, 400)]).value, 0.01)
    assert close(ang.value, 45.0, 0.01) and "°" in ang.text

    win.action("tools.length").trigger()
    trace = [(100, 100), (400, 100), (400, 500)]
    for p in trace:
        click(qtbot, vp, *p)
    qtbot.mouseDClick(vp, Qt.MouseButton.LeftButton, pos=at(vp, *trace[-1]))
    ln = vp.measurements[-1]
    assert ln.kind == "length" and close(ln.value, 10 * (300 * dx + 400 * dy), 0.01)

    # Ctrl+Z removes the last one (through the declared action), then the one before
    assert len(vp.measurements) == 4
    vp.setFocus()
    win.action("tools.undo").trigger()
    assert [m.kind for m in vp.measurements] == ["area", "area", "angle"]
    qtbot.keyClick(vp, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert [m.kind for m in vp.measurements] == ["area", "area"]
    # undo during a polygon takes back its last click, not a finished measurement
    win.action("tools.area").trigger()
    click(qtbot, vp, 250, 250)
    click(qtbot, vp, 300, 250)
    win.commands.undo()
    assert vp.pending_points() == [vp.to_image(at(vp, 250, 250))] and len(vp.measurements) == 2


def test_outside_a_calibrated_region_is_refused_with_the_reason(qtbot, win):
    vp = open_and_show(qtbot, win, [SIEMENS])
    win.action("tools.angle").trigger()
    for p in [(300, 200), (300, 100), (300, 10)]:  # row 10 is in the banner above the region (from row 60)
        click(qtbot, vp, *p)
    m = vp.last_refusal
    assert m is not None and not m.ok and m.value is None
    assert "outside every calibrated region" in m.reason and "\n" not in m.reason
    assert win.statusBar().currentMessage() == f"Measurement refused: {m.reason}"
    assert vp.measurements == []  # the reason is in the status bar; nothing stays drawn (QA2 #9)
    # a PSV caliper on a 2D image: refused, it is not a spectral region
    win.action("tools.psv").trigger()
    click(qtbot, vp, 300, 200)
    assert "not a calibrated spectral Doppler region" in vp.last_refusal.reason and vp.measurements == []
    assert win.commands.unsaved() == []  # refusals are never saved


def test_psv_edv_and_ri_on_a_synthetic_doppler_spectrum(qtbot, win, tmp_path):
    path = make_doppler_image(tmp_path)
    vp = open_and_show(qtbot, win, [path])
    c_peak = CYCLE + int(round(0.08 / DT))
    c_end = 2 * CYCLE - 1
    p_psv, p_edv = (c_peak, row_of(PSV)), (c_end, row_of(wave(c_end * DT)))
    qtbot.keyClick(vp, Qt.Key.Key_P)  # the declared key (window shortcut)
    assert vp.tool == "psv" and win.measure_mode
    click(qtbot, vp, *p_psv)
    psv = vp.measurements[-1]
    assert psv.kind == "psv" and psv.unit == "cm/s" and close(psv.value, PSV, 0.02)
    win.action("tools.edv").trigger()
    click(qtbot, vp, *p_edv)
    edv = vp.measurements[-1]
    assert edv.kind == "edv" and close(edv.value, EDV, 0.02)
    win.action("tools.ri").trigger()
    click(qtbot, vp, *p_psv)
    click(qtbot, vp, *p_edv)
    ri = vp.measurements[-1]
    assert ri.kind == "ri" and ri.unit == "1" and close(ri.value, (PSV - EDV) / PSV, 0.02)
    assert ri.text.startswith("RI: 0.8")
    win.action("tools.area").trigger()
    for p in [(300, 150), (500, 150), (500, 300)]:
        click(qtbot, vp, *p)
    qtbot.mouseDClick(vp, Qt.MouseButton.LeftButton, pos=at(vp, 500, 300))
    qtbot.waitUntil(vp.is_settled, timeout=10_000)
    vp.repaint()
    # every label on screen, on its dark backing, below the burned-in banner (above the first region)
    top = vp.to_widget(0, min(r.y0 for r in vp.loaded.regions)).y()
    assert len(vp.label_rects) == 4
    for r in vp.label_rects:
        assert r.top() >= top and vp.rect().toRectF().contains(r) and r.height() >= 13
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        win.grab().save(str(SHOTS / "doppler_psv_edv_ri_area.png"))


def test_saved_measurements_come_back_on_the_same_image_and_frame(qtbot, window):
    """Save -> close -> reopen: a measurement SR in the study, read back and drawn on its frame of the cine;
    a second save amends it (the first file is never altered)."""
    from mdtviewer.sr.measurement_read import read_measurements
    from mdtviewer.ui.main_window import MainWindow

    win = window
    win.commands.ask_save = lambda _n: "discard"
    vp = open_and_show(qtbot, win, [HP_CINE])
    vp.set_frame(5)
    qtbot.waitUntil(lambda: vp.shown_frame() == 5, timeout=10_000)
    win.action("tools.angle").trigger()
    pts = [(300, 150), (200, 150), (300, 250)]
    for p in pts:
        click(qtbot, vp, *p)
    win.action("tools.ellipse").trigger()
    drag(qtbot, vp, (150, 100), (350, 220))
    made = [(m.kind, m.value, m.graphic) for m in vp.measurements]
    assert [k for k, _v, _g in made] == ["angle", "area"] and all(m.frame == 6 for m in vp.measurements)
    assert len(win.commands.unsaved()) == 2
    with qtbot.waitSignal(win.commands.measurementsSaved, timeout=30_000) as sig:
        win.action("tools.save_measurements").trigger()
    first = Path(sig.args[0])
    first_bytes = first.read_bytes()
    doc = read_measurements(first)
    assert sorted(m.kind for m in doc.measurements) == ["angle", "area"]
    assert {m.frame for m in doc.measurements} == {6} and not win.commands.unsaved()
    assert "kept on this computer" in sig.args[1]
    win.close()  # nothing unsaved: closes without asking

    win2 = MainWindow()
    qtbot.addWidget(win2)
    win2.commands.ask_save = lambda _n: "discard"
    win2.resize(1280, 800)
    win2.show()
    try:
        with qtbot.waitSignal(win2.commands.measurementsLoaded, timeout=60_000) as loaded:
            vp2 = open_and_show(qtbot, win2, [HP_CINE])
        assert loaded.args[1] == 2
        assert vp2.shown_frame() == 0 and vp2.measurements == []  # not drawn on another frame
        vp2.set_frame(5)
        qtbot.waitUntil(lambda: vp2.shown_frame() == 5, timeout=10_000)
        back = [(m.kind, m.value, m.graphic) for m in vp2.measurements]
        assert sorted(k for k, _v, _g in back) == ["angle", "area"]
        for kind, value, graphic in made:
            (b,) = [x for x in back if x[0] == kind]
            assert b[2] == graphic and math.isclose(b[1], value, rel_tol=1e-4)
        # drawn again from the SCOORD points: an angle's three points where they were clicked
        ang = next(m for m in vp2.measurements if m.kind == "angle")
        assert all(math.dist(a, b) < 1.0 for a, b in zip(ang.points, [vp.to_image(at(vp, *p)) for p in pts]))
        # the report panel lists the measurement SR of the study
        qtbot.waitUntil(lambda: any(first.name.endswith(f"{e.sop_instance_uid}.dcm") or
                                    e.sop_instance_uid == doc.sop_instance_uid for e in win2.report_panel.entries()),
                        timeout=20_000)
        # one more, saved: an amendment naming the first, which stays as it was
        win2.action("tools.angle").trigger()
        for p in [(250, 120), (200, 150), (250, 200)]:
            click(qtbot, vp2, *p)
        with qtbot.waitSignal(win2.commands.measurementsSaved, timeout=30_000) as sig2:
            win2.commands.save_measurements()
        second = Path(sig2.args[0])
        assert second != first and first.read_bytes() == first_bytes
        doc2 = read_measurements(second)
        assert doc.sop_instance_uid in doc2.predecessors and len(doc2.measurements) == 3
        assert "amended" in sig2.args[1]
        # unsaved at close: asked; "cancel" keeps the window open
        click(qtbot, vp2, 260, 130)
        click(qtbot, vp2, 200, 150)
        click(qtbot, vp2, 260, 190)
        asked = []
        win2.commands.ask_save = lambda n: asked.append(n) or "cancel"
        assert not win2.close() and asked == [1] and win2.isVisible()
    finally:
        win2.commands.ask_save = lambda _n: "discard"
        win2.stop_all()
        win2.close()
