"""Vessel worksheet tab of the report panel (issue 15.4) on a real study with a measurement SR.

How the files were made: the study is the synthetic PW Doppler image of
tests/test_measurements.py (a pydicom copy, in tmp_path, of the corpus Siemens
S2000 image with a spectral Doppler region added and a known spectrum drawn);
in this copy the Doppler region's Physical Delta Y is set to -1 cm/s per row
(twice the original scale) so a caliper can reach ICA velocities above
125 cm/s.  The measurement SR is written into the study folder through the
real `mdtviewer sr write` entry from a `measurements` list (values computed
from the image, never given).  The window opens the folder as a user would.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pydicom
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from mdtviewer.cli.sr import main as sr_main
from test_measurements import BASE, make_doppler_image

pytestmark = [pytest.mark.gui, pytest.mark.filterwarnings("ignore::UserWarning")]

SCREENSHOT_DIR = Path("/tmp/mdtviewer-screenshots")


def _row(v: float) -> int:
    return int(round(BASE - v))  # -1 cm/s per row in this copy


@pytest.fixture
def study(tmp_path, capsys) -> tuple[Path, str]:
    folder = tmp_path / "study"
    folder.mkdir()
    img = make_doppler_image(folder)
    ds = pydicom.dcmread(img)
    for r in ds.SequenceOfUltrasoundRegions:
        if r.RegionSpatialFormat == 3:
            r.PhysicalDeltaY = -1.0
    ds.save_as(img)
    uid = str(ds.SOPInstanceUID)
    col = 330
    data = {"author": {"name": "Łukasz Żółć", "organization": "Ærøskøbing Vascular Lab"}, "measurements": [
        {"sop_instance_uid": uid, "type": "psv", "points": [[col, _row(150)]], "site": "ICA", "side": "right"},
        {"sop_instance_uid": uid, "type": "edv", "points": [[col + 200, _row(45)]], "site": "ICA", "side": "right"},
        {"sop_instance_uid": uid, "type": "psv", "points": [[col + 20, _row(60)]], "site": "CCA", "side": "right"},
        {"sop_instance_uid": uid, "type": "psv", "points": [[col + 40, _row(80)]], "site": "ICA", "side": "left"},
    ]}
    js = tmp_path / "m.json"
    js.write_text(json.dumps(data), encoding="utf-8")
    capsys.readouterr()
    out = folder / "measurements.dcm"
    assert sr_main(["write", "--review", str(js), "--study", str(folder), "--out", str(out)]) == 0
    return folder, uid


def test_worksheet_tab_lists_vessels_grades_the_carotids_and_opens_the_image(qtbot, window, study, tmp_path):
    folder, uid = study
    window.report_panel.pacs_lookup_enabled = False
    ws = window.worksheet_view
    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        window.open_paths([str(folder)])
    qtbot.waitUntil(lambda: ws.table.rowCount() == 3, timeout=20_000)
    tabs = window.report_panel.tabs
    assert [tabs.tabText(i) for i in range(tabs.count())] == ["Reports", "Worksheet", "Measurements"]
    tabs.setCurrentWidget(ws)
    rows = [[ws.cell_text(r, c) for c in range(7)] for r in range(3)]
    # anatomical order (CCA before ICA), right before left; values computed from the image's regions
    assert rows == [
        ["Right", "Common carotid artery", "60", "\u2013", "\u2013", "\u2013", "\u2013"],
        ["Right", "Internal carotid artery", "150", "45", "\u2013", "\u2013", "\u2013"],
        ["Left", "Internal carotid artery", "80", "\u2013", "\u2013", "\u2013", "\u2013"],
    ]
    grades = ws.grades.text()
    assert "Right ICA stenosis: 50-69 %" in grades and "ICA/CCA ratio 2.5 (calculated) agrees" in grades
    assert "EDV 45 agrees" in grades
    assert "Left ICA stenosis: Normal or &lt;50 %" in grades
    assert "SRU 2003 consensus" in grades and "Radiology 2003;229:340-346" in grades  # the source named

    # a value opens the image it was measured on
    assert ws.source_of(1, 2) == (uid, 0)
    window.current_viewport().set_series([])  # nothing on screen first
    with qtbot.waitSignal(ws.imageReferenceActivated, timeout=5_000) as sig:
        rect = ws.table.visualItemRect(ws.table.item(1, 2))
        QTest.mouseClick(ws.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert sig.args == [uid, 0]
    qtbot.waitUntil(lambda: window.current_viewport().instance is not None
                    and window.current_viewport().instance.sop_instance_uid == uid, timeout=10_000)

    # looked at: the worksheet as the user sees it
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    ws.resize(520, 560)
    shot = tmp_path / "worksheet.png"
    assert ws.grab().save(str(shot))
    shutil.copy(shot, SCREENSHOT_DIR / "worksheet.png")


def test_a_report_without_vessel_measurements_says_so(qtbot, testdata):
    from mdtviewer.ui.reports.worksheet_view import WorksheetView

    ws = WorksheetView()
    qtbot.addWidget(ws)
    with qtbot.waitSignal(ws.loaded, timeout=20_000):
        ws.set_paths([testdata / "sr_comprehensive_offis_test.dcm", testdata / "sr_enhanced_tid1500_dcmjs.dcm"])
    assert ws.status.text() == "No measurements with a vessel in this study."
    assert ws.table.rowCount() == 0 and ws.grades.text() == ""


def test_a_vendor_tid5100_report_fills_the_worksheet_with_segments_and_grades(qtbot, tmp_path):
    """The vendor report of tests/test_worksheet.py, compiled by DCMTK xml2dsr (not our writer)."""
    from mdtviewer.ui.reports.worksheet_view import WorksheetView
    from test_worksheet import vendor_tid5100

    ws = WorksheetView()
    qtbot.addWidget(ws)
    with qtbot.waitSignal(ws.loaded, timeout=20_000):
        ws.set_paths([vendor_tid5100(tmp_path)])
    rows = {(ws.cell_text(r, 0), ws.cell_text(r, 1)): [ws.cell_text(r, c) for c in range(2, 7)]
            for r in range(ws.table.rowCount())}
    # m/s on the right side shown in cm/s; the segment beside the vessel
    assert rows[("Right", "Internal carotid artery (Proximal)")][:2] == ["250", "70"]
    assert rows[("Right", "Common carotid artery (Distal)")][:2] == ["80", "20"]
    assert rows[("Left", "Internal carotid artery (Proximal)")][:2] == ["150", "45"]
    assert rows[("Left", "Internal carotid artery")][4] == "2.4"  # the section-level ICA/CCA ratio
    grades = ws.grades.text()
    assert "Right ICA stenosis: &gt;=70 % to near occlusion" in grades
    assert "Left ICA stenosis: 50-69 %" in grades and "Criteria: Grant EG" in grades
    ws.resize(520, 560)
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    assert ws.grab().save(str(SCREENSHOT_DIR / "worksheet_vendor.png"))
