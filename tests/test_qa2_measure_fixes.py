"""QA2 findings 2, 4, 8, 9 and 14 on the measuring tools, in the real window on real corpus files.

- #2: arrows and text written by `sr write` (another workstation, a PACS) are drawn when the study is opened,
  read-only (never copied into our report);
- #4: the measurement report names the reviewer profile, never the computer account; without a profile Ctrl+S
  writes nothing and says why (no modal dialog offscreen);
- #8: a label that could be read as another shape's is tied to its own by a leader line; labels are small
  against a small displayed image;
- #9: a refused caliper leaves nothing drawn, its reason whole (one "PSV") in the status bar;
- #14: M from another tool chooses the distance tool; M on distance switches measuring off.

The image is the corpus's Siemens S2000 B-mode frame (one 2D tissue region from row 60); the measurement SR
of #2 is written by our own command line from the JSON the QA tester used (/tmp/qa2/sr/meas.json).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PySide6.QtCore import Qt

from mdtviewer.cli.sr import main as sr_main
from mdtviewer.sr.measurement_read import read_measurements
from mdtviewer.ui.viewer import measure
from mdtviewer.workflows import reviewer_profile
from sr_helpers import sign_as
from test_measure_ui_annotations import click, drag, open_and_show
from test_measurements import SIEMENS

pytestmark = [pytest.mark.gui, pytest.mark.filterwarnings("ignore::UserWarning")]

MEASURER = "Okafor^Ada"


@pytest.fixture
def win(window):
    window.commands.ask_save = lambda _n: "discard"  # closed after the test: nothing asked
    return window


def siemens_uid() -> str:
    return str(pydicom.dcmread(SIEMENS, stop_before_pixels=True).SOPInstanceUID)


def qa_json(uid: str) -> dict:
    """The QA tester's meas.json: five measurements and an arrow and a text label on the Siemens frame."""
    at = {"sop_instance_uid": uid, "frame": 1}
    return {
        "author": {"name": "Trainer^Tess", "role": "trainer"},
        "measurements": [
            {**at, "type": "distance", "points": [[300, 300], [300, 720]]},
            {**at, "type": "length", "points": [[300, 300], [400, 300], [400, 400]]},
            {**at, "type": "area", "points": [[300, 300], [400, 300], [400, 400], [300, 400]]},
            {**at, "type": "ellipse", "points": [[300, 350], [500, 350], [400, 300], [400, 400]],
             "site": "ICA", "side": "left"},
            {**at, "type": "angle", "points": [[300, 300], [400, 400], [500, 300]]},
        ],
        "annotations": [
            {**at, "type": "arrow", "points": [[200, 200], [300, 300]]},
            {**at, "type": "text", "points": [[250, 250]], "text": "plaque \u00bf \u00e9 \u4e2d"},
        ],
    }


def write_sr(tmp_path: Path, data: dict, name: str = "meas") -> tuple[int, Path]:
    p = tmp_path / f"{name}.json"
    p.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / f"{name}.dcm"
    return sr_main(["write", "--review", str(p), "--study", str(SIEMENS), "--out", str(out)]), out


def observer_names(path: Path) -> list[str]:
    """Every Person Observer Name (121008, DCM) of an SR's content tree."""
    names: list[str] = []

    def walk(items) -> None:
        for it in items:
            code = it.ConceptNameCodeSequence[0].CodeValue if "ConceptNameCodeSequence" in it else ""
            if code == "121008" and "PersonName" in it:
                names.append(str(it.PersonName))
            walk(it.get("ContentSequence", []))

    walk(pydicom.dcmread(path).ContentSequence)
    return names


def repainted(qtbot, vp) -> None:
    vp.repaint()
    qtbot.wait(20)


# ------------------------------------------------------------------------------------------------- QA2 #2
def test_sr_write_annotations_are_drawn_read_only_and_never_copied_into_our_report(qtbot, win, tmp_path):
    uid = siemens_uid()
    rc, sr = write_sr(tmp_path, qa_json(uid))
    assert rc == 0 and sr.is_file()
    with qtbot.waitSignal(win.commands.measurementsLoaded, timeout=60_000) as loaded:
        vp = open_and_show(qtbot, win, [SIEMENS, sr])
    assert loaded.args[1] == 7  # five measurements, an arrow and a text label
    repainted(qtbot, vp)
    drawn = {m.kind: m for m in vp.drawn_marks}
    assert {"arrow", "text", "distance", "length", "area", "angle"} <= set(drawn)
    assert drawn["text"].note == "plaque \u00bf \u00e9 \u4e2d" and drawn["text"].points == ((250.0, 250.0),)
    assert drawn["arrow"].points == ((200.0, 200.0), (300.0, 300.0))
    assert all(m.read_only and m.saved for m in vp.drawn_marks)  # another party's: read-only here
    assert win.commands.unsaved() == []
    assert len(vp.label_rects) == len([m for m in vp.drawn_marks if m.text])  # the text label is written too

    # our own measurement is saved in our report alone: theirs stay in their SR (not copied, not amended)
    sign_as(MEASURER, role="reporting-scientist")
    before = sr.read_bytes()
    win.action("tools.measure").trigger()
    drag(qtbot, vp, (600, 200), (600, 500))
    assert win.commands.unsaved() and win.commands.unsaved()[0].kind == "distance"
    with qtbot.waitSignal(win.commands.measurementsSaved, timeout=30_000) as saved:
        win.action("tools.save_measurements").trigger()
    ours = read_measurements(saved.args[0])
    assert [m.kind for m in ours.measurements] == ["distance"] and ours.annotations == []
    assert sr.read_bytes() == before


# ------------------------------------------------------------------------------------------------- QA2 #4
def test_no_reviewer_profile_no_save_and_never_the_account_name(qtbot, win, tmp_path):
    assert reviewer_profile.load() is None  # a fresh home: no profile set
    vp = open_and_show(qtbot, win, [SIEMENS])
    win.action("tools.measure").trigger()
    drag(qtbot, vp, (300, 300), (300, 600))
    assert len(win.commands.unsaved()) == 1
    with qtbot.waitSignal(win.commands.measurementsSaveFailed, timeout=5_000) as failed:
        vp.setFocus()
        qtbot.keyClick(vp, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert "reviewer profile" in failed.args[0]
    msg = win.statusBar().currentMessage()
    assert msg.startswith("Measurements not saved: set your reviewer profile first") and "\n" not in msg
    assert len(win.commands.unsaved()) == 1  # still to be saved
    from mdtviewer.infra import paths

    assert not list((paths.store_dir() / "reviews").rglob("*.dcm"))  # nothing written

    # on a desktop the save asks for the profile first (the profile form; here the user fills it in) and goes on
    asked: list[int] = []

    def fill_in_profile() -> str:
        asked.append(1)
        sign_as(MEASURER, role="reporting-scientist")
        return win.commands.observer()

    win.commands.ask_profile = fill_in_profile
    with qtbot.waitSignal(win.commands.measurementsSaved, timeout=30_000) as saved:
        qtbot.keyClick(vp, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert asked == [1] and observer_names(Path(saved.args[0])) == [MEASURER]
    assert reviewer_profile.os_account() not in observer_names(Path(saved.args[0]))

    # `sr write` with measurements names the person in the JSON, never the account: without one it is refused
    data = qa_json(siemens_uid())
    del data["author"]
    rc, out = write_sr(tmp_path, data, "anonymous")
    assert rc == 1 and not out.exists()


# ------------------------------------------------------------------------------------------------- QA2 #8
def _on(shape: list[tuple[float, float]], q) -> float:
    return measure.shape_rect_distance(shape, (q.x(), q.y(), 0.0, 0.0))


def test_each_label_is_beside_its_own_shape_or_tied_to_it(qtbot, win):
    """The QA's drawing (e1_measurements.png): a polygon, then an ellipse below its corner."""
    vp = open_and_show(qtbot, win, [SIEMENS])
    win.action("tools.area").trigger()
    for c in [(500, 300), (700, 300), (700, 450)]:
        click(qtbot, vp, *c)
    qtbot.mouseDClick(vp, Qt.MouseButton.LeftButton, pos=vp.to_widget(500, 450).toPoint())
    win.action("tools.ellipse").trigger()
    drag(qtbot, vp, (400, 500), (700, 650))
    win.action("tools.measure").trigger()
    drag(qtbot, vp, (300, 300), (300, 720))
    repainted(qtbot, vp)
    marks = [m for m in vp.drawn_marks if m.text]
    assert [m.kind for m in marks] == ["area", "area", "distance"]
    shapes = [measure.shape_outline(m.graphic, m.kind, [(w.x(), w.y()) for w in (vp.to_widget(*q) for q in m.points)])
              for m in marks]
    assert len(vp.label_rects) == len(marks) == len(vp.label_leaders)
    for i, (r, leader) in enumerate(zip(vp.label_rects, vp.label_leaders)):
        rect = r.getRect()
        own = measure.shape_rect_distance(shapes[i], rect)
        nearest_other = min(measure.shape_rect_distance(s, rect) for j, s in enumerate(shapes) if j != i)
        if leader is None:  # beside its own shape, and clearly nearer it than any other
            assert own <= 12 and own + 4 < nearest_other, (marks[i].text, own, nearest_other)
        else:  # the line starts on its own shape and ends on the label
            assert _on(shapes[i], leader[0]) < 2 and measure.shape_rect_distance([(leader[1].x(), leader[1].y())],
                                                                                  rect) < 1
    # the ellipse's label is tied to the ellipse: its anchor lies on the curve, not at the box's corner
    ell = marks[1]
    assert ell.graphic == "ELLIPSE"
    ax, ay = measure.ellipse_anchor([(w.x(), w.y()) for w in (vp.to_widget(*q) for q in ell.points)])
    assert measure.shape_rect_distance(shapes[1], (ax, ay, 0.0, 0.0)) < 2


def test_labels_shrink_with_a_small_displayed_image(qtbot, win):
    vp = open_and_show(qtbot, win, [SIEMENS])
    win.action("tools.measure").trigger()
    drag(qtbot, vp, (300, 300), (300, 600))
    repainted(qtbot, vp)
    big = vp.label_rects[0].height()
    win.set_layout(1, 3)  # three viewports side by side: the image shown small
    qtbot.waitUntil(lambda: vp.width() < 500, timeout=5_000)
    win.set_report_panel_visible(True)
    repainted(qtbot, vp)
    shown_h = vp.image_size()[1] * vp.effective_scale()
    small = vp.label_rects[0].height()
    assert small < big and small <= shown_h / 20 * 1.4 + 1, (big, small, shown_h)
    assert measure.label_px(800, (200.0, 150.0)) == 9 and measure.label_px(800, (1100.0, 800.0)) == 18


# ------------------------------------------------------------------------------------------------- QA2 #9
def test_a_refused_caliper_leaves_nothing_drawn_and_says_why_once(qtbot, win):
    vp = open_and_show(qtbot, win, [SIEMENS])
    before = vp.grab().toImage()
    qtbot.keyClick(vp, Qt.Key.Key_P)
    assert vp.tool == "psv"
    click(qtbot, vp, 400, 400)  # in the B-mode region: not a spectral Doppler strip
    msg = win.statusBar().currentMessage()
    assert msg == ("Measurement refused: PSV: region 1 (2D, tissue; cm x cm) is not a calibrated spectral Doppler "
                   "region") or (msg.startswith("Measurement refused: PSV: ") and msg.count("PSV") == 1), msg
    assert vp.last_refusal is not None and vp.last_refusal.reason in msg and "PSV" not in vp.last_refusal.text[4:]
    assert vp.measurements == [] and win.commands.unsaved() == []
    repainted(qtbot, vp)
    assert vp.drawn_marks == [] and vp.label_rects == []
    after = vp.grab().toImage()

    def reds(img) -> int:
        from PySide6.QtGui import QImage

        img = img.convertToFormat(QImage.Format.Format_RGB888)
        a = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())
        a = a[:, : img.width() * 3].reshape(img.height(), img.width(), 3)
        return int(((a[..., 0] == 255) & (a[..., 1] == 90) & (a[..., 2] == 90)).sum())

    assert reds(after) == reds(before) == 0  # no refusal painted in red


# ------------------------------------------------------------------------------------------------ QA2 #14
def test_m_chooses_the_distance_tool_from_another_tool(qtbot, win):
    vp = open_and_show(qtbot, win, [SIEMENS])
    vp.setFocus()
    qtbot.keyClick(vp, Qt.Key.Key_T, Qt.KeyboardModifier.ShiftModifier)
    assert vp.tool == "text" and win.measure_mode
    qtbot.keyClick(vp, Qt.Key.Key_M)
    assert vp.tool == "distance" and win.measure_mode and win.action("tools.measure").isChecked()
    assert win.statusBar().currentMessage().startswith("Distance: drag a line")
    qtbot.keyClick(vp, Qt.Key.Key_M)  # M on the distance tool: measuring off
    assert not win.measure_mode and not win.action("tools.measure").isChecked()
    qtbot.keyClick(vp, Qt.Key.Key_M)
    assert win.measure_mode and vp.tool == "distance"
    drag(qtbot, vp, (300, 300), (300, 600))
    m = vp.measurements[-1]
    assert m.kind == "distance" and m.ok and not math.isnan(m.value)


@pytest.mark.orthanc
def test_annotations_retrieved_from_a_pacs_are_drawn(qtbot, win, tmp_path, orthanc_peer_factory):
    """The QA's SR sent to a real Orthanc with its image, retrieved (C-GET, `mdtviewer pacs get`) as another
    workstation's report would be, then opened: its arrow and text are on the image."""
    import os
    import subprocess
    import sys

    from orthanc_peer import HOST

    rc, sr = write_sr(tmp_path, qa_json(siemens_uid()))
    assert rc == 0
    peer = orthanc_peer_factory()
    assert peer.upload(SIEMENS) and peer.upload(sr), peer.rejected
    study = str(pydicom.dcmread(SIEMENS, stop_before_pixels=True).StudyInstanceUID)
    dest = tmp_path / "retrieved"
    got = subprocess.run([sys.executable, "-m", "mdtviewer", "pacs", "get", study, "--host", HOST, "--port",
                          str(peer.dicom_port), "--called-aet", peer.aet, "--dest", str(dest)],
                         capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert got.returncode == 0 and got.stdout.strip() == "retrieved 2 of 2 instances", got.stderr
    with qtbot.waitSignal(win.commands.measurementsLoaded, timeout=60_000) as loaded:
        vp = open_and_show(qtbot, win, [dest])
    assert loaded.args[1] == 7
    repainted(qtbot, vp)
    kinds = [m.kind for m in vp.drawn_marks]
    assert "arrow" in kinds and "text" in kinds and all(m.read_only for m in vp.drawn_marks)
