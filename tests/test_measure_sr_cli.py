"""`sr write` / `sr show` for the open measurement items of issue 15: the ellipse type, arrow and text
annotations, and amending a measurement report from JSON (``amends``).

How the files were made
-----------------------
* Ellipse: the corpus Siemens S2000 image read in place (its own 2D region, 0.0238 cm square
  pixels); the expected area is pi * a * b from its raw Physical Delta X/Y read with pydicom.
* Annotations and amendments: the synthetic PW Doppler image of :mod:`test_measurements` (a pydicom
  copy of the Siemens image in tmp_path with a spectral Doppler region and a known spectrum).
* Measurement SRs: written by our code (highdicom) through the real command line entry
  (``mdtviewer.cli.sr.main``), checked with DCMTK ``dsrdump`` and dicom3tools ``dciodvfy``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path

import pydicom
import pytest

from mdtviewer.cli.sr import main as sr_main
from mdtviewer.sr.measurement_read import read_measurements
from sr_helpers import dciodvfy_errors, dsrdump
from test_measurements import CYCLE, DT, PSV, SIEMENS, make_doppler_image, raw_delta, row_of

pytestmark = [pytest.mark.dcmtk, pytest.mark.filterwarnings("ignore::UserWarning")]

AUTHOR = {"name": "Zoë Ångström", "organization": "Vascular Lab"}
C_PEAK = CYCLE + int(round(0.08 / DT))


def _write(tmp_path: Path, capsys, data: dict, study: Path, out: str, js: str = "m.json") -> tuple[int, str, str]:
    p = tmp_path / js
    p.write_text(json.dumps(data), encoding="utf-8")
    capsys.readouterr()
    rc = sr_main(["write", "--review", str(p), "--study", str(study), "--out", str(tmp_path / out)])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _show(capsys, path: Path, *extra: str) -> str:
    capsys.readouterr()
    assert sr_main(["show", str(path), *extra]) == 0
    return capsys.readouterr().out


def _uid(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def test_ellipse_area_from_its_four_axis_ends_within_1_percent_on_a_real_image(tmp_path, capsys):
    uid = _uid(SIEMENS)
    dx, dy = raw_delta(SIEMENS)  # cm per pixel, straight from the file
    straight = [[300, 250], [500, 250], [400, 190], [400, 310]]  # a = 100 px, b = 60 px
    h = 70 / math.sqrt(2)  # tilted by 45 degrees: half-axes 70 and 40 px
    k = 40 / math.sqrt(2)
    tilted = [[400 - h, 250 - h], [400 + h, 250 + h], [400 + k, 250 - k], [400 - k, 250 + k]]
    data = {"author": AUTHOR, "measurements": [
        {"sop_instance_uid": uid, "type": "ellipse", "points": straight},
        {"sop_instance_uid": uid, "type": "ellipse", "points": tilted, "site": "CCA", "side": "left"}]}
    rc, out, err = _write(tmp_path, capsys, data, SIEMENS, "ell.dcm")
    assert rc == 0, err
    written = Path(out.strip())
    dsrdump(written)
    assert dciodvfy_errors(written) == []
    text = _show(capsys, written)
    areas = [float(v) for v in re.findall(r"^  Area: ([0-9.e+]+) mm2", text, re.M)]
    expected = [math.pi * 100 * dx * 60 * dy * 100, math.pi * 70 * dx * 40 * dy * 100]
    assert len(areas) == 2
    for got, want in zip(areas, expected):
        assert got == pytest.approx(want, rel=0.01)
    back = read_measurements(written).measurements
    assert [b.graphic for b in back] == ["ELLIPSE", "ELLIPSE"] and back[1].site == "CCA"
    # major axis first, as DICOM's SCOORD ELLIPSE wants; the points are those given
    assert back[0].points == tuple(tuple(p) for p in straight)
    assert all(math.dist(a, b) < 1e-3 for a, b in zip(back[1].points, tilted))


@pytest.mark.parametrize("points, reason", [
    ([[300, 250], [500, 250]], r"4 ends of its axes"),
    ([[300, 250], [500, 250], [400, 190], [430, 310]], r"perpendicular|mid-points"),
    ([[300, 250], [500, 250], [400, 20], [400, 480]], r"outside every calibrated region"),
])
def test_a_bad_ellipse_is_refused_with_the_reason(tmp_path, capsys, points, reason):
    data = {"author": AUTHOR, "measurements": [{"sop_instance_uid": _uid(SIEMENS), "type": "ellipse",
                                                "points": points}]}
    rc, _out, err = _write(tmp_path, capsys, data, SIEMENS, "bad.dcm")
    assert rc == 1 and re.search(reason, err), err
    assert not (tmp_path / "bad.dcm").exists()


def test_annotations_saved_listed_and_an_amendment_replaces_the_report(tmp_path, capsys):
    folder = tmp_path / "study"
    folder.mkdir()
    uid = _uid(make_doppler_image(folder))
    first_json = {"author": AUTHOR, "measurements": [
        {"sop_instance_uid": uid, "type": "psv", "points": [[C_PEAK, row_of(PSV)]], "site": "ICA", "side": "right"}],
        "annotations": [
            {"sop_instance_uid": uid, "type": "arrow", "points": [[300, 300], [380, 220]], "text": "plaque"},
            {"sop_instance_uid": uid, "type": "text", "points": [[200, 150]], "text": "Sténose ≥ 70 %"}]}
    rc, out, err = _write(tmp_path, capsys, first_json, folder, "first.dcm")
    assert rc == 0, err
    first = Path(out.strip())
    dsrdump(first)
    assert dciodvfy_errors(first) == []
    digest = hashlib.sha256(first.read_bytes()).hexdigest()
    doc = read_measurements(first)
    assert [(a.kind, a.points, a.text) for a in doc.annotations] == [
        ("arrow", ((300.0, 300.0), (380.0, 220.0)), "plaque"), ("text", ((200.0, 150.0),), "Sténose ≥ 70 %")]
    assert [m.kind for m in doc.measurements] == ["psv"]  # an annotation is not a measurement
    shown = _show(capsys, first)
    assert "\nMeasurements:\n" in shown
    assert f'  Arrow: "plaque" at (300, 300) -> (380, 220) (image {uid})' in shown
    assert f'  Text: "Sténose ≥ 70 %" at (200, 150) (image {uid})' in shown

    # the PSV caliper moved 10 rows (5 cm/s) higher; the text is dropped: an amendment of the first
    second_json = {"author": AUTHOR, "amends": "first.dcm", "measurements": [
        {"sop_instance_uid": uid, "type": "psv", "points": [[C_PEAK, row_of(PSV) - 10]], "site": "ICA",
         "side": "right"}],
        "annotations": [first_json["annotations"][0]]}
    rc, out, err = _write(tmp_path, capsys, second_json, folder, "second.dcm", js="m2.json")
    assert rc == 0, err
    second = Path(out.strip())
    dsrdump(second)
    assert dciodvfy_errors(second) == []
    assert hashlib.sha256(first.read_bytes()).hexdigest() == digest  # never altered
    doc2 = read_measurements(second)
    assert doc2.predecessors == [doc.sop_instance_uid] and doc2.amended
    ds2 = pydicom.dcmread(second)
    assert ds2.PredecessorDocumentsSequence[0].StudyInstanceUID == ds2.StudyInstanceUID
    assert doc2.measurements[0].value == pytest.approx(PSV + 5.0)

    shown2 = _show(capsys, second)
    assert "Measurements (amended: replaces 1 earlier report(s)):" in shown2
    assert "Peak Systolic Velocity: 105 cm/s" in shown2 and "Sténose" not in shown2.split("Measurements (")[1]
    # showing the first file shows its latest version only, and says so
    shown1 = _show(capsys, first)
    part = shown1.split("\nMeasurements (amended: this report was replaced by second.dcm; its latest version):\n")
    assert len(part) == 2, shown1
    assert "Peak Systolic Velocity: 105 cm/s" in part[1] and "100 cm/s" not in part[1]
    assert "Sténose" not in part[1]
    # the worksheet too is of the latest version
    assert "105" in _show(capsys, first, "--worksheet")


def test_amends_must_name_a_measurement_report_of_the_same_study(tmp_path, capsys):
    folder = tmp_path / "study"
    folder.mkdir()
    uid = _uid(make_doppler_image(folder))
    (tmp_path / "junk.dcm").write_bytes(b"not dicom")
    m = [{"sop_instance_uid": uid, "type": "psv", "points": [[C_PEAK, row_of(PSV)]]}]
    rc, _o, err = _write(tmp_path, capsys, {"author": AUTHOR, "amends": "junk.dcm", "measurements": m}, folder,
                         "x.dcm")
    assert rc == 1 and "amends: junk.dcm: cannot read" in err and not (tmp_path / "x.dcm").exists()
    rc, _o, err = _write(tmp_path, capsys, {"author": AUTHOR, "measurements": m, "annotations": [
        {"sop_instance_uid": uid, "type": "text", "points": [[10, 10]], "text": "  "}]}, folder, "x.dcm")
    assert rc == 1 and "needs its words" in err
