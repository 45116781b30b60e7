"""Vessel worksheet from vendors' TID 5100 vascular reports and from our own measurements; SRU 2003 grading.

How the vendor report was made
------------------------------
The corpus has no vendor vascular SR.  :func:`vendor_tid5100` writes the XML
of a Vascular Ultrasound Procedure Report following PS3.16 TID 5100 the way
scanners send one -- a TID 5103 section per side ("Artery of neck", with the
laterality on the section), TID 5104 measurement groups with a Finding Site
and a Topographical Modifier, velocities in m/s on one side and cm/s on the
other, old SNOMED-RT (SRT) codes as many scanners still use, and the ICA/CCA
ratio as a section-level NUM -- and compiles it with DCMTK ``xml2dsr``: our
writer is not involved, so the reader is not tested only against itself.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mdtviewer.cli.sr import main as sr_main
from mdtviewer.sr.measurement_read import read_measurements
from mdtviewer.sr.measurement_report import SavedMeasurement
from mdtviewer.workflows.worksheet import CriteriaError, build_worksheet, load_criteria, render_worksheet

pytestmark = pytest.mark.dcmtk

STUDY = "1.2.826.0.1.3680043.8.498.15001"
IMAGE = "1.2.826.0.1.3680043.8.498.15002"


def _code(tag: str, value: str, scheme: str, meaning: str) -> str:
    return (f"<{tag}><value>{value}</value><scheme><designator>{scheme}</designator></scheme>"
            f"<meaning>{meaning}</meaning></{tag}>")


def _concept(value: str, scheme: str, meaning: str) -> str:
    return _code("concept", value, scheme, meaning)


def _mod(name: tuple[str, str, str], val: tuple[str, str, str], children: str = "") -> str:
    return (f"<code><relationship>HAS CONCEPT MOD</relationship>{_concept(*name)}"
            f"<value>{val[0]}</value><scheme><designator>{val[1]}</designator></scheme>"
            f"<meaning>{val[2]}</meaning>{children}</code>")


def _num(name: tuple[str, str, str], value: float, unit: str, unit_meaning: str, image: bool = False) -> str:
    ref = ""
    if image:
        ref = (f"<image><relationship>INFERRED FROM</relationship><value>"
               f"<sopclass uid=\"1.2.840.10008.5.1.4.1.1.6.1\">UltrasoundImageStorage</sopclass>"
               f"<instance uid=\"{IMAGE}\"/></value></image>")
    return (f"<num><relationship>CONTAINS</relationship>{_concept(*name)}{ref}<value>{value}</value>"
            f"<unit><value>{unit}</value><scheme><designator>UCUM</designator></scheme>"
            f"<meaning>{unit_meaning}</meaning></unit></num>")


FINDING_SITE = ("G-C0E3", "SRT", "Finding Site")
LATERALITY = ("G-C171", "SRT", "Laterality")
TOPO = ("G-A1F8", "SRT", "Topographical modifier")
PSV = ("11726-7", "LN", "Peak Systolic Velocity")
EDV = ("11653-3", "LN", "End Diastolic Velocity")
RATIO = ("33868-1", "LN", "ICA/CCA velocity ratio")
SITES = {"CCA": ("T-45100", "SRT", "Common carotid artery"), "ICA": ("T-45300", "SRT", "Internal carotid artery"),
         "ECA": ("T-45200", "SRT", "External carotid artery"), "VA": ("T-45700", "SRT", "Vertebral artery")}
SEGMENTS = {"prox": ("G-A118", "SRT", "Proximal"), "dist": ("G-A119", "SRT", "Distal")}


def _group(site: str, segment: str | None, nums: str) -> str:
    mods = _mod(FINDING_SITE, SITES[site])
    if segment:
        mods += _mod(TOPO, SEGMENTS[segment])
    return (f"<container flag=\"SEPARATE\"><relationship>CONTAINS</relationship>"
            f"{_concept('125007', 'DCM', 'Measurement Group')}{mods}{nums}</container>")


def _section(side: tuple[str, str, str], body: str) -> str:
    return (f"<container flag=\"SEPARATE\"><relationship>CONTAINS</relationship>"
            f"{_concept('T-45005', 'SRT', 'Artery of neck')}{_mod(LATERALITY, side)}{body}</container>")


def vendor_tid5100(folder: Path) -> Path:
    """A TID 5100 carotid report compiled by DCMTK xml2dsr (see module docstring)."""
    right = _section(("G-A100", "SRT", "Right"), "".join([
        _group("CCA", "dist", _num(PSV, 0.80, "m/s", "meter per second") + _num(EDV, 0.20, "m/s", "m/s")),
        _group("ICA", "prox", _num(PSV, 2.50, "m/s", "meter per second", image=True)
               + _num(EDV, 0.70, "m/s", "meter per second")),
        _group("ICA", "dist", _num(PSV, 0.90, "m/s", "meter per second")),
        _group("ECA", None, _num(PSV, 1.10, "m/s", "meter per second")),
        _group("VA", None, _num(PSV, 0.45, "m/s", "meter per second")),
    ]))
    left = _section(("G-A101", "SRT", "Left"), "".join([
        _group("CCA", None, _num(PSV, 70, "cm/s", "centimeter per second")),
        _group("ICA", "prox", _num(PSV, 150, "cm/s", "centimeter per second")
               + _num(EDV, 45, "cm/s", "centimeter per second")),
        _num(RATIO, 2.4, "1", "no units"),
    ]))
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<report type="Comprehensive SR">
<sopclass uid="1.2.840.10008.5.1.4.1.1.88.33">ComprehensiveSRStorage</sopclass>
<modality>SR</modality>
<device><manufacturer>Acme Ultrasound</manufacturer><model>Acme 9</model></device>
<patient><id>VENDOR-1</id><name><last>Vendor</last><first>Test</first></name></patient>
<study uid="{STUDY}"><id>1</id></study>
<series uid="{STUDY}.1"><number>1</number></series>
<instance uid="{STUDY}.1.1"><number>1</number></instance>
<evidence type="Current Requested Procedure"><study uid="{STUDY}"><series uid="{STUDY}.2"><value>
<sopclass uid="1.2.840.10008.5.1.4.1.1.6.1">UltrasoundImageStorage</sopclass><instance uid="{IMAGE}"/>
</value></series></study></evidence>
<document><completion flag="COMPLETE"/><verification flag="UNVERIFIED"/>
<content><date>2026-12-01</date><time>10:00:00</time>
<container flag="SEPARATE">{_concept('125100', 'DCM', 'Vascular Ultrasound Procedure Report')}
{right}{left}
</container></content></document></report>
"""
    src = folder / "vendor.xml"
    src.write_text(xml, encoding="utf-8")
    out = folder / "vendor_tid5100.dcm"
    r = subprocess.run(["xml2dsr", str(src), str(out)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return out


def test_vendor_tid5100_is_read_with_sides_vessels_segments_and_units(tmp_path):
    path = vendor_tid5100(tmp_path)
    doc = read_measurements(path)
    assert doc.is_vascular_report and doc.notes == []
    got = [(m.side, m.site, m.segment, m.kind, round(m.value, 6), m.unit) for m in doc.measurements]
    assert got == [
        ("right", "CCA", "Distal", "psv", 80.0, "cm/s"), ("right", "CCA", "Distal", "edv", 20.0, "cm/s"),
        ("right", "ICA", "Proximal", "psv", 250.0, "cm/s"), ("right", "ICA", "Proximal", "edv", 70.0, "cm/s"),
        ("right", "ICA", "Distal", "psv", 90.0, "cm/s"), ("right", "ECA", "", "psv", 110.0, "cm/s"),
        ("right", "VA", "", "psv", 45.0, "cm/s"),
        ("left", "CCA", "", "psv", 70.0, "cm/s"), ("left", "ICA", "Proximal", "psv", 150.0, "cm/s"),
        ("left", "ICA", "Proximal", "edv", 45.0, "cm/s"), ("left", "", "", "ratio", 2.4, "1"),
    ]
    assert doc.measurements[2].sop_instance_uid == IMAGE  # the value links to its image


def test_worksheet_grades_each_carotid_by_the_sru_2003_criteria(tmp_path):
    ws = build_worksheet(read_measurements(vendor_tid5100(tmp_path)).measurements)
    rows = [(r.side, r.vessel, r.segment, r.cells["psv"].value) for r in ws.rows if "psv" in r.cells]
    assert rows[:3] == [("right", "CCA", "Distal", pytest.approx(80.0)), ("left", "CCA", "", 70.0),
                        ("right", "ICA", "Proximal", pytest.approx(250.0))]
    grades = {g.side: g for g in ws.grades}
    right, left = grades["right"], grades["left"]
    assert right.label == ">=70 % to near occlusion" and right.primary_value == pytest.approx(250.0)
    # additional parameters: the calculated ratio 250/80 = 3.1 and EDV 70 point to 50-69 %
    assert any("ICA/CCA ratio 3.12 (calculated) suggests 50-69 %" in n for n in right.notes), right.notes
    assert any("EDV 70 suggests 50-69 %" in n for n in right.notes), right.notes
    assert left.label == "50-69 %" and left.primary_value == 150.0
    assert "ICA/CCA ratio 2.4 agrees" in left.notes  # the report's own ratio (on its section), not calculated
    assert "Near occlusion / Total occlusion: decided on the images" in left.notes
    text = render_worksheet(ws)
    assert "Right ICA stenosis (SRU 2003 consensus: internal carotid artery stenosis): >=70 % to near occlusion" in text
    assert "Left ICA stenosis (SRU 2003 consensus: internal carotid artery stenosis): 50-69 %" in text
    assert "Grant EG" in text and "Radiology 2003;229:340-346" in text


def test_sr_show_worksheet_on_the_vendor_report(tmp_path, capsys):
    path = vendor_tid5100(tmp_path)
    assert sr_main(["show", str(path), "--worksheet"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "Vessel worksheet"
    row = next(line for line in lines if line.startswith("right  ICA Proximal"))
    assert row.split()[3:5] == ["250", "70"] and IMAGE in row
    assert "VENDOR-1" not in out and "Vendor" not in out.replace("Vessel", "")  # no patient identifier
    # plain `sr show` lists them as NAME: VALUE UNIT
    assert sr_main(["show", str(path)]) == 0
    assert "  Peak Systolic Velocity: 250 cm/s [right ICA Proximal] (image " + IMAGE + ")" in capsys.readouterr().out


def test_low_velocities_give_normal_or_under_50_and_a_department_can_add_criteria(tmp_path, mdt_home):
    ms = [SavedMeasurement("psv", 95.0, "cm/s", site="ICA", side="left"),
          SavedMeasurement("psv", 90.0, "cm/s", site="CCA", side="left")]
    (g,) = build_worksheet(ms).grades
    assert g.label == "Normal or <50 %"
    assert any("Normal if no plaque" in n and "<50 % if plaque or intimal thickening visible" in n for n in g.notes)
    # a department's own file in <data folder>/criteria/: same id replaces ours, a new id is added
    own = mdt_home / "criteria"
    own.mkdir(exist_ok=True)
    (own / "local-ica.json").write_text(json.dumps({
        "id": "local-ica", "name": "Local ICA", "source": "Department protocol 2026", "vessel": "ICA",
        "primary": "psv", "additional": [],
        "categories": [{"id": "lo", "label": "low", "psv": {"lt": 100}}, {"id": "hi", "label": "high",
                                                                        "psv": {"ge": 100}}]}))
    loaded = load_criteria()
    assert {"sru-2003-ica", "local-ica"} <= set(loaded)
    labels = {g.criteria.id: g.label for g in build_worksheet(ms).grades}
    assert labels == {"sru-2003-ica": "Normal or <50 %", "local-ica": "low"}
    (own / "broken.json").write_text(json.dumps({"id": "x", "name": "x", "source": "x", "vessel": "ICA",
                                                 "primary": "psv", "categories": [{"id": "a", "label": "a",
                                                                                   "psv": {"above": 3}}]}))
    with pytest.raises(CriteriaError, match=r"broken.json: categories\[0\].psv"):
        load_criteria()


def test_our_own_measurements_fill_the_worksheet_with_links_to_their_frames():
    ms = [SavedMeasurement("pi", 1.8, "1", "1.2.3", 4, ((1, 2), (3, 4)), "POLYLINE", "ICA", "right",
                           extra={"psv": 240.0, "edv": 110.0, "tamax": 80.0, "ri": 0.54}),
          SavedMeasurement("psv", 50.0, "cm/s", "1.2.4", 2, ((5, 6),), "POINT", "CCA", "right")]
    ws = build_worksheet(ms)
    ica = next(r for r in ws.rows if r.vessel == "ICA")
    assert ica.cells["psv"].value == 240.0 and ica.cells["psv"].source.frame == 4
    assert ica.cells["pi"].value == 1.8
    (g,) = [g for g in ws.grades if g.criteria.id == "sru-2003-ica"]
    assert g.label == ">=70 % to near occlusion"
    assert any("ratio 4.8 (calculated) agrees" in n for n in g.notes) and any("EDV 110 agrees" in n for n in g.notes)
    assert "image 1.2.3 frame 4" in render_worksheet(ws)


def test_the_shipped_criteria_file_names_its_source():
    c = load_criteria()["sru-2003-ica"]
    assert c.source.startswith("Grant EG") and c.vessel == "ICA" and c.primary == "psv"
    assert [x.id for x in c.categories] == ["normal", "lt50", "50-69", "ge70", "near-occlusion", "occlusion"]
    assert c.categories[2].ranges == {"psv": {"ge": 125, "le": 230}, "ratio": {"ge": 2.0, "le": 4.0},
                                      "edv": {"ge": 40, "le": 100}}
