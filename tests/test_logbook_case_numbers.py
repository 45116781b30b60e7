"""Case numbers in pseudonymised logbook/audit exports are stable (issue 13, "case numbers per export differ").

The same study has the same case number in every export of this installation (CSV, PDF, JSON; logbook
and audit; a second export after more reviews were written), because the number is a keyed hash of the
Study Instance UID with a secret kept in the settings.  Without the secret the number says nothing:
another installation (another secret) numbers the same studies differently.  Reviews are written with
`mdtviewer sr write` over corpus studies (tests/logbook_scenario.py).
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
from pathlib import Path

import pytest

from logbook_scenario import write_reviews
from mdtviewer.cli import main as cli_main
from mdtviewer.infra import paths
from mdtviewer.sr.review_reader import review_from_sr
from mdtviewer.workflows import logbook as lb

CASE = re.compile(r"case ([0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4})")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cases")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MDTVIEWER_HOME", str(tmp / "writer-home"))
        files = write_reviews(cli_main, tmp, tmp / "reviews")
    return tmp / "reviews", files


def _pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


def _logbook_cases(folder: Path, target: Path) -> dict[str, str]:
    """study date + trainee + protocol -> case label, from a logbook CSV export."""
    assert cli_main(["logbook", "--folder", str(folder), "--csv", str(target)]) == 0
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    return {f"{r['study_date']} {r['trainee']} {r['protocol']}": r["case"] for r in rows}


def _uid_cases(folder: Path, target: Path) -> dict[str, str]:
    """Study Instance UID -> case label, from an export with --show-identifiers (the same numbers)."""
    assert cli_main(["logbook", "--folder", str(folder), "--csv", str(target), "--show-identifiers"]) == 0
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    return {r["study_instance_uid"]: r["case"] for r in rows}


def test_same_study_same_case_number_in_every_export(scenario, tmp_path, capsys, mdt_home):
    folder, files = scenario
    first = _uid_cases(folder, tmp_path / "a.csv")
    assert len(first) == 7 and len(set(first.values())) == 7
    assert all(CASE.fullmatch(c) for c in first.values())
    # the key is this installation's, kept in its settings (hex), and not the study UID in disguise
    key = json.loads(paths.settings_file().read_text(encoding="utf-8"))[lb.CASE_KEY_SECTION]["case_key"]
    assert len(bytes.fromhex(key)) == 32
    # again, and again in other formats and the audit: the same numbers for the same studies
    assert _uid_cases(folder, tmp_path / "b.csv") == first
    assert cli_main(["logbook", "--folder", str(folder), "--pdf", str(tmp_path / "l.pdf")]) == 0
    assert set(CASE.findall(_pdf_text(tmp_path / "l.pdf"))) == {c[5:] for c in first.values()}
    capsys.readouterr()
    assert cli_main(["audit", "discrepancies", "--folder", str(folder), "--json", "--show-identifiers"]) == 0
    majors = json.loads(capsys.readouterr().out)["major_discrepancies"]
    assert majors and all(f"case {m['case']}" == first[m["study_instance_uid"]] for m in majors)
    assert cli_main(["audit", "discrepancies", "--folder", str(folder), "--csv", str(tmp_path / "a.csv")]) == 0
    audit_cases = set(re.findall(r"case [0-9A-Z-]{9}", (tmp_path / "a.csv").read_text(encoding="utf-8")))
    assert audit_cases and audit_cases <= set(first.values())
    # a subset of the studies (one trainee): their numbers do not move (ordinal numbering renumbered them)
    assert cli_main(["logbook", "--folder", str(folder), "--trainee", "Bob Trainee", "--csv",
                     str(tmp_path / "bob.csv"), "--show-identifiers"]) == 0
    bob = {r["study_instance_uid"]: r["case"]
           for r in csv.DictReader(io.StringIO((tmp_path / "bob.csv").read_text(encoding="utf-8")))}
    assert bob and len(bob) < len(first) and all(first[u] == c for u, c in bob.items())
    # the window's logbook uses the same numbers
    study = review_from_sr(files["s3"]).study_instance_uid
    assert f"case {lb.case_numbers(lb.collect([folder]).records)[study]}" == first[study]


def test_another_installation_numbers_differently_and_a_broken_settings_file_is_not_overwritten(
        scenario, tmp_path, monkeypatch):
    folder, _files = scenario
    here = _uid_cases(folder, tmp_path / "here.csv")
    section = json.loads(paths.settings_file().read_text(encoding="utf-8"))[lb.CASE_KEY_SECTION]
    monkeypatch.setenv("MDTVIEWER_HOME", str(tmp_path / "other-home"))
    there = _uid_cases(folder, tmp_path / "there.csv")
    assert there.keys() == here.keys() and not set(there.values()) & set(here.values())
    # the department copies the key to this computer: the same numbers as the first
    monkeypatch.setenv("MDTVIEWER_HOME", str(tmp_path / "third-home"))
    from mdtviewer.infra import settings

    settings.set_section(lb.CASE_KEY_SECTION, section)
    assert _uid_cases(folder, tmp_path / "third.csv") == here
    rec = lb.collect([folder]).records
    # an unreadable settings file: no export with made-up numbers, and the file is left as it was
    paths.settings_file().write_text("{not json", encoding="utf-8")
    with pytest.raises(lb.LogbookError, match="settings file unreadable"):
        lb.case_numbers(rec)
    assert cli_main(["logbook", "--folder", str(folder), "--csv", str(tmp_path / "x.csv")]) == 2
    assert paths.settings_file().read_text(encoding="utf-8") == "{not json"
    assert not (tmp_path / "x.csv").exists()


def test_case_label_is_a_keyed_hash():
    uid = "1.2.826.0.1.3680043.8.498.12345"
    a, b = lb.case_label(uid, b"k" * 32), lb.case_label(uid, b"j" * 32)
    assert a == lb.case_label(uid, b"k" * 32) and a != b
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}", a)
    assert lb.case_label(uid, b"k" * 32, 16).startswith(a)  # the long form extends the short one
