"""Measurements saved as a TID 1500 SR, checked by DCMTK and dicom3tools, read back, printed, amended.

How the files were made
-----------------------
* Images: the synthetic PW Doppler image of :mod:`test_measurements`
  (a pydicom copy of the corpus Siemens S2000 image in tmp_path, with a
  spectral Doppler region added and a known spectrum drawn in; its 2D region
  is the scanner's own, shortened) and the corpus HP 34-frame cine, read in
  place (multi-frame: frame numbers are written and read back).
* Measurement SRs: written by our code (highdicom) from `sr write` JSON
  through the real command line entry (``mdtviewer.cli.sr.main``).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pydicom
import pytest

from mdtviewer.cli.sr import main as sr_main
from mdtviewer.imaging import measurements as m
from mdtviewer.sr.measurement_read import read_measurements
from mdtviewer.workflows import measurement_files as mf
from sr_helpers import dciodvfy_errors, dsrdump
from test_measurements import BASE, CYCLE, DT, EDV, HP_CINE, PSV, TAMAX, _frame, make_doppler_image, regions_of, row_of

pytestmark = [pytest.mark.dcmtk, pytest.mark.filterwarnings("ignore::UserWarning")]

AUTHOR = {"name": "Łukasz Żółć", "organization": "Ærøskøbing Vascular Lab"}
C_PEAK = CYCLE + int(round(0.08 / DT))  # the second cycle's systolic peak
C_END = 2 * CYCLE - 1  # its end-diastole


@pytest.fixture
def study(tmp_path) -> tuple[Path, str]:
    folder = tmp_path / "study"
    folder.mkdir()
    path = make_doppler_image(folder)
    return folder, str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def _requests(uid: str) -> list[dict]:
    return [
        {"sop_instance_uid": uid, "frame": 1, "type": "distance", "points": [[300, 100], [600, 380]]},
        {"sop_instance_uid": uid, "frame": 1, "type": "length", "points": [[100, 100], [400, 100], [400, 300]]},
        {"sop_instance_uid": uid, "frame": 1, "type": "area",
         "points": [[200, 150], [400, 150], [400, 250], [200, 250]], "site": "CCA", "side": "right"},
        {"sop_instance_uid": uid, "frame": 1, "type": "angle", "points": [[300, 150], [200, 150], [300, 250]]},
        {"sop_instance_uid": uid, "type": "psv", "points": [[C_PEAK, row_of(PSV)]], "site": "ICA", "side": "right"},
        {"sop_instance_uid": uid, "type": "edv", "points": [[C_END, row_of(EDV)]], "site": "ICA", "side": "right"},
        {"sop_instance_uid": uid, "type": "velocity", "points": [[500, BASE + 40]]},
        {"sop_instance_uid": uid, "type": "ri", "points": [[C_PEAK, row_of(PSV)], [C_END, row_of(EDV)]],
         "site": "ICA", "side": "right"},
        {"sop_instance_uid": uid, "type": "pi", "points": [[CYCLE, 500], [2 * CYCLE, 500]],
         "site": "ICA", "side": "right"},
        {"sop_instance_uid": uid, "type": "psv", "points": [[C_PEAK, row_of(40)]], "site": "CCA", "side": "right"},
        {"type": "ratio", "of": [4, 9], "site": "ICA", "side": "right"},
    ]


def _expected(path: Path) -> list[tuple[str, float, str]]:
    """The same measurements computed directly with imaging.measurements (not through the JSON)."""
    r = regions_of(path)
    psv = m.psv(r, (C_PEAK, row_of(PSV))).value
    cca = m.psv(r, (C_PEAK, row_of(40))).value
    return [
        ("Distance", m.distance(r, (300, 100), (600, 380)).value, "mm"),
        ("Path length", m.length(r, [(100, 100), (400, 100), (400, 300)]).value, "mm"),
        ("Area", m.polygon_area(r, [(200, 150), (400, 150), (400, 250), (200, 250)]).value, "mm2"),
        ("Angle", m.angle(r, (300, 150), (200, 150), (300, 250)).value, "deg"),
        ("Peak Systolic Velocity", psv, "cm/s"),
        ("End Diastolic Velocity", m.edv(r, (C_END, row_of(EDV))).value, "cm/s"),
        ("Flow Velocity", m.velocity(r, (500, BASE + 40)).value, "cm/s"),
        ("Resistivity Index", m.resistivity_index(r, (C_PEAK, row_of(PSV)), (C_END, row_of(EDV))).value, "1"),
        ("Pulsatility Index", m.spectral_indices(m.trace_envelope(r, _frame(path), (CYCLE, 500),
                                                                  (2 * CYCLE, 500))).value, "1"),
        ("Peak Systolic Velocity", cca, "cm/s"),
        ("ICA/CCA velocity ratio", psv / cca, "1"),
    ]


_LINE = re.compile(r"^  (?P<name>[^ :][^:]*): (?P<value>-?[0-9.e+-]+)(?: (?P<unit>\S+))?(?: \[(?P<where>[^\]]*)\])? "
                   r"\((?P<img>[^)]*)\)$")


def _show(capsys, path: Path, *extra: str) -> str:
    capsys.readouterr()
    assert sr_main(["show", str(path), *extra]) == 0
    return capsys.readouterr().out


def _measurement_lines(out: str) -> list[re.Match]:
    part = out.split("\nMeasurements:\n", 1)[1]
    return [mt for line in part.splitlines() if (mt := _LINE.match(line))]


def _write(tmp_path: Path, capsys, data: dict, study_folder: Path, out_name: str = "out.dcm") -> tuple[int, str, str]:
    js = tmp_path / "review.json"
    js.write_text(json.dumps(data), encoding="utf-8")
    capsys.readouterr()
    rc = sr_main(["write", "--review", str(js), "--study", str(study_folder), "--out", str(tmp_path / out_name)])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_sr_write_measurements_valid_and_round_trip_through_sr_show(tmp_path, capsys, study):
    folder, uid = study
    rc, out, err = _write(tmp_path, capsys, {"author": AUTHOR, "measurements": _requests(uid)}, folder)
    assert rc == 0, err
    written = Path(out.strip())
    assert written == tmp_path / "out.dcm"
    dsrdump(written)  # no warning but DCMTK's UTF-8 note
    assert dciodvfy_errors(written) == []
    ds = pydicom.dcmread(written)
    src = pydicom.dcmread(folder / "doppler.dcm", stop_before_pixels=True)
    assert ds.StudyInstanceUID == src.StudyInstanceUID and ds.SeriesInstanceUID != src.SeriesInstanceUID
    assert ds.ContentSequence is not None and ds.ConceptNameCodeSequence[0].CodeValue == "126000"

    lines = _measurement_lines(_show(capsys, written))
    expected = _expected(folder / "doppler.dcm")
    assert len(lines) == len(expected)
    for mt, (name, value, unit) in zip(lines, expected):
        assert mt["name"] == name
        assert float(mt["value"]) == pytest.approx(value, rel=1e-4), name
        assert (mt["unit"] or "") == unit, name
        assert uid in mt["img"]  # each with its image
    # the known spectrum: PSV, EDV, RI, PI within 2 % of the drawn values
    by_name = {mt["name"]: float(mt["value"]) for mt in lines[4:9]}
    assert by_name["Peak Systolic Velocity"] == pytest.approx(PSV, rel=0.02)
    assert by_name["End Diastolic Velocity"] == pytest.approx(EDV, rel=0.02)
    assert by_name["Resistivity Index"] == pytest.approx((PSV - EDV) / PSV, rel=0.02)
    assert by_name["Pulsatility Index"] == pytest.approx((PSV - EDV) / TAMAX, rel=0.02)
    assert lines[4]["where"] == "right ICA"

    # and read back as data: kinds, sites, graphic points on the source image
    back = read_measurements(written).measurements
    assert [b.kind for b in back] == ["distance", "length", "area", "angle", "psv", "edv", "velocity", "ri", "pi",
                                      "psv", "ratio"]
    assert back[2].graphic == "POLYGON" and back[2].points == ((200, 150), (400, 150), (400, 250), (200, 250))
    assert back[4].points == ((C_PEAK, row_of(PSV)),) and back[4].graphic == "POINT"
    assert back[8].extra["psv"] == pytest.approx(PSV, rel=0.02) and len(back[8].points) > 200
    assert back[10].concept.value == "33868-1" and len(back[10].images) == 1

    # another reader of TID 1500 (highdicom's own parser) finds the same groups and values
    import highdicom as hd

    groups = hd.sr.MeasurementReport.from_sequence([ds]).get_image_measurement_groups()
    assert len(groups) == len(expected)
    for g, (name, value, _unit) in zip(groups, expected):
        first = g.get_measurements()[0]
        assert first.name.meaning == name and first.value == pytest.approx(value, rel=1e-9)
    assert [f.value.meaning for f in groups[4].finding_sites] == ["Internal carotid artery"]


def test_frames_of_a_multiframe_cine_are_written_and_read_back(tmp_path, capsys):
    uid = str(pydicom.dcmread(HP_CINE, stop_before_pixels=True).SOPInstanceUID)
    data = {"author": AUTHOR, "measurements": [
        {"sop_instance_uid": uid, "frame": 7, "type": "distance", "points": [[100, 100], [100, 300]]},
        {"sop_instance_uid": uid, "frame": 12, "type": "angle", "points": [[300, 150], [200, 150], [300, 250]]},
    ]}
    rc, out, err = _write(tmp_path, capsys, data, HP_CINE)
    assert rc == 0, err
    path = Path(out.strip())
    dsrdump(path)
    assert dciodvfy_errors(path) == []
    back = read_measurements(path).measurements
    assert [(b.frame, b.kind) for b in back] == [(7, "distance"), (12, "angle")]
    lines = _measurement_lines(_show(capsys, path))
    assert lines[0]["img"] == f"image {uid} frame 7" and lines[1]["img"] == f"image {uid} frame 12"


def test_review_and_measurements_in_one_json_write_two_documents(tmp_path, capsys, study):
    folder, uid = study
    data = {"kind": "second-opinion", "author": {**AUTHOR, "role": "second-reader"}, "agreement": "agree",
            "summary": "Agree.", "images": [{"sop_instance_uid": uid}],
            "measurements": _requests(uid)[4:5]}
    rc, out, err = _write(tmp_path, capsys, data, folder, "review.dcm")
    assert rc == 0, err
    review, report = [Path(p) for p in out.split()]
    assert review == tmp_path / "review.dcm" and report == tmp_path / "review_measurements.dcm"
    assert read_measurements(review).measurements == []
    assert [b.kind for b in read_measurements(report).measurements] == ["psv"]


@pytest.mark.parametrize("entry, reason", [
    ({"type": "psv", "points": [[300, 200]]}, r"measurements\[0\] \(psv\): PSV: .*not a calibrated spectral Doppler"),
    ({"type": "distance", "points": [[300, 200], [300, 10]]}, r"outside every calibrated region"),
    ({"type": "psv", "points": [[C_PEAK, 460]], "value": 250}, r"unknown key\(s\) .*value.*never given"),
    ({"type": "distance", "points": [[300, 200], [310, 200]], "frame": 2}, r"frame 2 does not exist"),
])
def test_refused_with_a_one_line_reason_and_nothing_written(tmp_path, capsys, study, entry, reason):
    folder, uid = study
    rc, out, err = _write(tmp_path, capsys, {"author": AUTHOR, "measurements": [{"sop_instance_uid": uid, **entry}]},
                          folder)
    assert rc == 1 and out == ""
    assert re.search(reason, err), err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out.dcm").exists()


def test_amendment_names_the_first_report_which_is_never_altered(tmp_path, study):
    folder, uid = study
    headers = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID):
               pydicom.dcmread(p, stop_before_pixels=True) for p in folder.glob("*.dcm")}
    paths = {uid: folder / "doppler.dcm"}
    reqs = mf.parse_requests(_requests(uid)[4:6])
    measured, ops = mf.compute(reqs, headers.__getitem__, paths.__getitem__)
    first = mf.save(measured, headers.values(), AUTHOR["name"], folder=tmp_path / "store")
    digest = hashlib.sha256(first.read_bytes()).hexdigest()
    moved = mf.parse_requests([{**_requests(uid)[4], "points": [[C_PEAK, row_of(PSV) - 10]]}, _requests(uid)[5]])
    changed, _ = mf.compute(moved, headers.__getitem__, paths.__getitem__)
    second = mf.amend(first, changed, headers.values(), AUTHOR["name"], folder=tmp_path / "store")
    assert second != first and hashlib.sha256(first.read_bytes()).hexdigest() == digest
    doc = read_measurements(second)
    assert doc.predecessors == [str(pydicom.dcmread(first).SOPInstanceUID)]
    assert doc.measurements[0].value == pytest.approx(PSV + 5.0)  # 10 rows of 0.5 cm/s higher
    dsrdump(second)
    assert dciodvfy_errors(second) == []


@pytest.mark.orthanc
def test_sent_to_a_real_pacs_and_kept_in_the_outbox_while_it_is_down(tmp_path, study, orthanc_peer_factory):
    """The report goes through the reviews' store path: C-STORE to Orthanc, the outbox when it is down."""
    from mdtviewer.pacs import nodes, outbox
    from orthanc_peer import HOST, OUR_AET

    folder, uid = study
    headers = {uid: pydicom.dcmread(folder / "doppler.dcm", stop_before_pixels=True)}
    measured, _ = mf.compute(mf.parse_requests(_requests(uid)[4:5]), headers.__getitem__,
                             {uid: folder / "doppler.dcm"}.__getitem__)
    path = mf.save(measured, headers.values(), AUTHOR["name"])  # the local store, as reviews
    assert uid not in str(path) and str(headers[uid].StudyInstanceUID) in str(path)
    sr_uid = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
    peer = orthanc_peer_factory(load=False, start=False)
    nodes.add_node(nodes.PacsNode("mpacs", peer.aet, HOST, peer.dicom_port, calling_aet=OUR_AET,
                                  connect_timeout=3, acse_timeout=5, dimse_timeout=10), replace=True)
    assert mf.send(path, "mpacs").endswith("kept locally in outbox, will be retried")
    assert len(outbox.pending("mpacs")) == 1
    peer.start()
    assert [o.ok for o in outbox.flush("mpacs")] == [True]
    assert sr_uid in peer.sop_instance_uids()
    assert mf.send(path, "mpacs") == "stored on mpacs"


def test_time_interval_and_acceleration_time_from_the_json(tmp_path, capsys, study):
    folder, uid = study
    data = {"author": AUTHOR, "measurements": [
        {"sop_instance_uid": uid, "type": "time", "points": [[CYCLE, 500], [2 * CYCLE, 500]]},
        {"sop_instance_uid": uid, "type": "acceleration-time", "points": [[CYCLE, BASE - 40], [C_PEAK, row_of(PSV)]]},
    ]}
    rc, out, err = _write(tmp_path, capsys, data, folder)
    assert rc == 0, err
    lines = _measurement_lines(_show(capsys, Path(out.strip())))
    assert [(mt["name"], mt["unit"]) for mt in lines] == [("Interval", "ms"), ("Acceleration Time", "ms")]
    assert float(lines[0]["value"]) == pytest.approx(1000.0, rel=0.01)
    assert float(lines[1]["value"]) == pytest.approx(80.0, rel=0.02)


def test_side_defaults_to_the_image_laterality(tmp_path, capsys, study):
    folder, uid = study
    ds = pydicom.dcmread(folder / "doppler.dcm")
    ds.ImageLaterality = "L"  # set here with pydicom: no corpus US image carries a laterality
    ds.save_as(folder / "doppler.dcm")
    data = {"author": AUTHOR, "measurements": [
        {"sop_instance_uid": uid, "type": "psv", "points": [[C_PEAK, row_of(PSV)]], "site": "ICA"},
        {"sop_instance_uid": uid, "type": "psv", "points": [[C_PEAK, row_of(PSV)]], "site": "ICA", "side": "right"},
    ]}
    rc, out, err = _write(tmp_path, capsys, data, folder)
    assert rc == 0, err
    assert [(b.side, b.site) for b in read_measurements(Path(out.strip())).measurements] == [
        ("left", "ICA"), ("right", "ICA")]
