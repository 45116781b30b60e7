"""QA2 17 (cosmetic), on real files and the real window: `sr show --worksheet` prints no all-dash row and
no stray indented value; the presenter banner does not repeat "Case 1" after "Case 1 of 2"; the demo's two
reports (an SR "Carotid duplex findings" and a PDF "Carotid duplex report") are told apart in the report list
at 1600x900 (the kind first, the whole title in the tooltip).  The logbook PDF title is in test_qa2_logbook.py."""

from __future__ import annotations

import json

import pydicom
import pytest
import pytestqt  # noqa: F401  (a test dependency: fail, never skip)
from PySide6.QtCore import Qt

from conftest import TESTDATA
from mdtviewer.cli import main as cli_main

SIEMENS = TESTDATA / "us_siemens_s2000_rgb_explicit_le.dcm"


def test_worksheet_has_no_all_empty_row_and_other_values_sit_on_their_vessel_line(tmp_path, capsys):
    uid = str(pydicom.dcmread(SIEMENS, stop_before_pixels=True).SOPInstanceUID)
    # the tester's meas.json: the ellipse (an area) is the only value with a vessel and side
    data = {"author": {"name": "Ada Okafor", "role": "reporting-scientist"}, "measurements": [
        {"sop_instance_uid": uid, "frame": 1, "type": "distance", "points": [[300, 300], [300, 720]]},
        {"sop_instance_uid": uid, "frame": 1, "type": "ellipse", "points": [[300, 350], [500, 350], [400, 300],
                                                                              [400, 400]], "site": "ICA",
         "side": "left"}]}
    js = tmp_path / "meas.json"
    js.write_text(json.dumps(data), encoding="utf-8")
    out = tmp_path / "meas.dcm"
    assert cli_main(["sr", "write", "--review", str(js), "--study", str(SIEMENS), "--out", str(out)]) == 0
    capsys.readouterr()
    assert cli_main(["sr", "show", str(out), "--worksheet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("Side"))
    rows = [ln for ln in lines[head + 2:] if ln.strip()]
    assert len(rows) == 1, lines
    (row,) = rows
    assert row.startswith("left   ICA") and "Area: " in row and "mm2" in row
    assert not any(set(ln.split()[2:]) <= {"-"} for ln in rows if ln.startswith(("left", "right")))
    # the area starts where the values' columns do, its image in the Source column
    assert row.index("Area: ") == lines[head].index("PSV cm/s") - 1
    assert row.index(f"image {uid}") == lines[head].index("Source")


@pytest.mark.gui
def test_presenter_banner_does_not_repeat_the_case_number(qtbot, window, testdata):
    from mdtviewer.workflows.mdt_session import MDTSession

    files = [testdata / "us_siemens_s2000_rgb_explicit_le.dcm", testdata / "us_ge_logiq700_rgb_explicit_le.dcm"]
    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        window.open_paths([str(f) for f in files])
    p = window.presenter
    s = MDTSession(title="Vascular MDT")
    for k, f in enumerate(files):  # labelled as a session prepared from folders labels them
        s.add_case(str(pydicom.dcmread(f, stop_before_pixels=True).StudyInstanceUID), label=f"Case {k + 1}")
    p.set_session(s)
    try:
        assert p.start()
        qtbot.waitUntil(lambda: p.banner.text().startswith("Case 1 of 2"), timeout=5_000)
        assert p.banner.toolTip().count("Case 1") == 1, p.banner.toolTip()
        # a real name is still shown; a label numbering another case is not hidden
        s.cases[0].label = "Mr carotid, left ICA"
        p.set_banner()
        assert "Mr carotid, left ICA" in p.banner.toolTip()
        s.cases[0].label = "Case 2"
        p.set_banner()
        assert p.banner.toolTip().startswith("Case 1 of 2  \u00b7  Case 2")
    finally:
        p.stop()


@pytest.mark.gui
def test_demo_reports_are_told_apart_in_the_list_at_1600x900(qtbot, window):
    window.resize(1600, 900)
    with qtbot.waitSignal(window.scanFinished, timeout=30_000):
        assert window.open_demo()
    panel = window.report_panel
    qtbot.waitUntil(lambda: panel.list.topLevelItemCount() >= 2, timeout=10_000)
    qtbot.wait(50)
    fm = panel.list.fontMetrics()
    width = panel.list.header().sectionSize(0) - 2 * fm.horizontalAdvance("\u2026") - 24  # room for the text
    items = [panel.list.topLevelItem(i) for i in range(panel.list.topLevelItemCount())]
    by_tip = {it.toolTip(0).splitlines()[0]: it for it in items}
    sr, pdf = by_tip["Carotid duplex findings (demo)"], by_tip["Carotid duplex report (demo)"]
    shown = [fm.elidedText(it.text(0), Qt.TextElideMode.ElideRight, width) for it in (sr, pdf)]
    assert shown[0] != shown[1], shown  # what the list shows of the two titles differs
    assert sr.text(0).startswith("SR: ") and pdf.text(0).startswith("PDF: ")
    assert "Structured report" in sr.toolTip(0) and "PDF report" in pdf.toolTip(0)
