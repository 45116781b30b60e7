"""Logbook, worklist and discrepancy audit over reviews written with `mdtviewer sr write` (issue 13)."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess

import pytest

from logbook_scenario import (
    ANN,
    BOB,
    EXPECTED_AUDIT,
    EXPECTED_LOGBOOK,
    LUCJA,
    WILSON_1_OF_5,
    WILSON_3_OF_5,
    identifiers,
    write_reviews,
)
from mdtviewer.cli import main as cli_main
from mdtviewer.sr.review_reader import review_from_sr


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """The scenario's reviews, written once (under a home of their own) into a folder."""
    tmp = tmp_path_factory.mktemp("logbook")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MDTVIEWER_HOME", str(tmp / "writer-home"))
        files = write_reviews(cli_main, tmp, tmp / "reviews")
    return tmp / "reviews", files


def _json(capsys, argv, rc=0):
    capsys.readouterr()
    assert cli_main(argv) == rc
    cap = capsys.readouterr()
    return json.loads(cap.out), cap.err


def test_score_outcome_and_amendment_are_in_the_written_srs(scenario):
    _folder, files = scenario
    s3 = review_from_sr(files["s3"])
    assert (s3.agreement, s3.peer_review_score, s3.mdt_outcome, s3.reporter) == (
        "major-discrepancy", "3b", "discrepancy-found", "Ravi Reporter")
    from mdtviewer.sr.reader import read_sr

    s4b = review_from_sr(files["s4b"])
    assert s4b.predecessor_sop_instance_uid == read_sr(files["s4"]).sop_instance_uid
    assert (s4b.agreement, s4b.peer_review_score) == ("minor-discrepancy", "2a")


def test_logbook_json_figures_exactly(scenario, capsys):
    folder, _files = scenario
    out, err = _json(capsys, ["logbook", "--folder", str(folder), "--json"])
    assert [t["trainee"] for t in out] == [ANN, BOB, LUCJA]
    for t in out:
        want = EXPECTED_LOGBOOK[t["trainee"]]
        assert {k: t[k] for k in want} == want, t["trainee"]
    # 16 files written, 2 of them amended: 14 latest versions, the 2 old ones left out
    assert "14 review(s)" in err and "2 amended version(s) left out" in err


def test_logbook_one_trainee_and_dates(scenario, capsys):
    folder, _files = scenario
    out, _ = _json(capsys, ["logbook", "--folder", str(folder), "--trainee", "bob trainee", "--json"])
    assert [t["trainee"] for t in out] == [BOB]
    # Bob's studies: E 20000223, F 20160503
    out, _ = _json(capsys, ["logbook", "--folder", str(folder), "--trainee", BOB, "--from", "20100101", "--json"])
    assert out[0]["reviews"] == 1 and out[0]["signed"] == 0
    out, _ = _json(capsys, ["logbook", "--folder", str(folder), "--from", "20190101", "--to", "20201231", "--json"])
    # C (20190124, Ann's draft aaa) and D (20200414, Ann's amended carotid)
    assert [(t["trainee"], t["reviews"], t["signed"]) for t in out] == [(ANN, 2, 1)]
    assert cli_main(["logbook", "--folder", str(folder), "--from", "2019"]) == 2


def test_audit_json_figures_exactly(scenario, capsys):
    folder, _files = scenario
    out, _ = _json(capsys, ["audit", "discrepancies", "--folder", str(folder), "--json"])
    for k in ("reviews", "by_agreement", "by_score"):
        assert out[k] == EXPECTED_AUDIT[k], k
    assert {name: (g["reviews"], g["agree"], g["minor-discrepancy"], g["major-discrepancy"])
            for name, g in out["by_reporter"].items()} == EXPECTED_AUDIT["by_reporter"]
    assert out["unsigned_excluded"] == 1
    assert out["rates"]["discrepancy"] == {"count": 3, "rate": 0.6, "ci95": list(WILSON_3_OF_5)}
    assert out["rates"]["major"] == {"count": 1, "rate": 0.2, "ci95": list(WILSON_1_OF_5)}
    assert out["by_mdt_outcome"] == {"report-confirmed": 1, "discrepancy-found": 1, "further-imaging": 0}
    assert [(m["reporter"], m["peer_review_score"], m["mdt_outcome"]) for m in out["major_discrepancies"]] == [
        ("Ravi Reporter", "3b", "discrepancy-found")]
    assert "patient_name" not in out["major_discrepancies"][0]
    assert sum(g["reviews"] for g in out["by_period"].values()) == 5
    # protocol of the study from its preceptorship review: A, B carotid; C aaa (draft p3); D carotid (p4b); E arterial
    assert {k: g["reviews"] for k, g in out["by_protocol"].items()} == {
        "aaa-surveillance": 1, "carotid-duplex": 3, "lower-limb-arterial": 1}


def test_worklist_and_last_seen(scenario, capsys, tmp_path):
    folder, files = scenario
    out, _ = _json(capsys, ["worklist", "--folder", str(folder), "--json"])
    by_path = {str(p): n for n, p in files.items()}
    assert sorted(by_path[i["path"]] for i in out["drafts"]) == ["p3", "p6", "s6"]
    assert sorted(by_path[i["path"]] for i in out["amended"]) == ["p4b", "s4b"]
    assert [by_path[i["path"]] for i in out["second_opinion_requests"]] == ["s7"]
    # seen now: the next worklist lists no amendment until a new one is written
    out, _ = _json(capsys, ["worklist", "--folder", str(folder), "--json"])
    assert out["amended"] == [] and len(out["drafts"]) == 3
    more = tmp_path / "more"
    more.mkdir()
    shutil.copy(files["p4b"], more / "p4b.dcm")
    (more / "p4c.json").write_text(json.dumps({
        "kind": "preceptorship", "author": {"name": "Tom Trainer", "role": "trainer"},
        "trainee": {"name": ANN}, "protocol": "carotid-duplex", "outcome": "competent",
        "verifier": {"name": "Tom Trainer", "organization": "Vascular Lab"}, "amends": "p4b.dcm"}))
    from logbook_scenario import STUDIES, TESTDATA
    from sr_helpers import sign_as

    sign_as("Tom Trainer", "Vascular Lab")  # `sr write` signs as this account's reviewer profile
    assert cli_main(["sr", "write", "--review", str(more / "p4c.json"), "--study", str(TESTDATA / STUDIES["D"][0]),
                     "--out", str(more / "p4c.dcm")]) == 0
    out, _ = _json(capsys, ["worklist", "--folder", str(folder), "--folder", str(more), "--json"])
    assert [i["path"] for i in out["amended"]] == [str(more / "p4c.dcm")]
    # and the logbook counts the chain p4 -> p4b -> p4c once, as p4c (competent now)
    lb, _ = _json(capsys, ["logbook", "--folder", str(folder), "--folder", str(more), "--trainee", ANN, "--json"])
    carotid = lb[0]["by_protocol"]["carotid-duplex"]
    assert (lb[0]["reviews"], carotid["competent"], carotid["needs_supervision"]) == (4, 2, 1)


def test_cache_reads_each_file_once(scenario, capsys):
    folder, _files = scenario
    _json(capsys, ["logbook", "--folder", str(folder), "--json"])
    _, err = _json(capsys, ["logbook", "--folder", str(folder), "--json"])
    assert "0 file(s) read" in err
    # a changed file is read again
    p = folder / "p1.json"
    (folder / "extra.dcm").write_bytes(b"not dicom")
    _, err = _json(capsys, ["logbook", "--folder", str(folder), "--json"])
    assert "1 file(s) read" in err
    (folder / "extra.dcm").unlink()
    assert p.exists()


def _pdf_text(path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


def test_exports_are_pseudonymised_by_default(scenario, tmp_path, capsys):
    folder, _files = scenario
    secrets = identifiers()
    assert {"Citizen", "DOE", "JOHN", "MARY"} <= set(secrets)  # the check below looks for real names
    outputs = {}
    for cmd, stem in ((["logbook"], "logbook"), (["audit", "discrepancies"], "audit")):
        for fmt in ("csv", "pdf"):
            target = tmp_path / f"{stem}.{fmt}"
            assert cli_main([*cmd, "--folder", str(folder), f"--{fmt}", str(target)]) == 0
            text = target.read_text(encoding="utf-8") if fmt == "csv" else _pdf_text(target)
            outputs[target.name] = text
            for s in secrets:
                assert not re.search(rf"\b{re.escape(s)}\b", text, re.I), (target.name, s)
            assert "1.2.840" not in text  # no study UIDs either
    rows = list(csv.DictReader(io.StringIO(outputs["logbook.csv"])))
    # seven studies, seven distinct keyed case numbers (tests/test_logbook_case_numbers.py: stable)
    assert len(rows) == 7 and len({r["case"] for r in rows}) == 7
    assert all(re.fullmatch(r"case [0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}", r["case"]) for r in rows)
    assert "Lucja Nowak" in outputs["logbook.pdf"] and rows[0]["case"] in outputs["logbook.pdf"]
    assert "Ravi Reporter" in outputs["audit.pdf"] and "60.0 % (95 % CI 23.1-88.2)" in outputs["audit.pdf"]
    # with --show-identifiers the export names the patients
    target = tmp_path / "named.csv"
    assert cli_main(["logbook", "--folder", str(folder), "--csv", str(target), "--show-identifiers"]) == 0
    assert "Citizen" in target.read_text(encoding="utf-8")
    capsys.readouterr()
    assert cli_main(["logbook", "--folder", str(folder)]) == 0
    printed = capsys.readouterr()
    for s in secrets:
        assert not re.search(rf"\b{re.escape(s)}\b", printed.out + printed.err, re.I), s


def test_pdfs_render(scenario, tmp_path):
    """The exports are valid PDFs poppler renders (the PNGs were looked at when this was written)."""
    folder, _files = scenario
    for cmd in (["logbook"], ["audit", "discrepancies"]):
        pdf = tmp_path / f"{cmd[0]}.pdf"
        assert cli_main([*cmd, "--folder", str(folder), "--pdf", str(pdf)]) == 0
        subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / cmd[0])], check=True)
        pngs = sorted(tmp_path.glob(f"{cmd[0]}-*.png"))
        assert pngs and all(p.stat().st_size > 1000 for p in pngs)
    info = subprocess.run(["pdfinfo", str(tmp_path / "logbook.pdf")], capture_output=True, text=True, check=True)
    assert re.search(r"Pages:\s+3\n", info.stdout), info.stdout  # one page per trainee


def test_usage_errors(capsys, tmp_path):
    assert cli_main(["logbook", "--folder", str(tmp_path / "nope")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert cli_main(["logbook", "--json", "--csv", "x.csv"]) == 2
    assert cli_main(["audit"]) == 2
    out, _ = _json(capsys, ["worklist", "--json"])
    assert out == {"drafts": [], "amended": [], "second_opinion_requests": []}


def test_amending_in_the_review_form_keeps_score_reporter_and_mdt_outcome(scenario):
    """The editor has no control for them yet: an amendment made there must not drop them."""
    from mdtviewer.workflows.review_form import build_review, state_from_review

    _folder, files = scenario
    st = state_from_review(review_from_sr(files["s3"]))
    st.summary = "amended"
    r = build_review(st, None)
    assert (r.peer_review_score, r.reporter, r.mdt_outcome) == ("3b", "Ravi Reporter", "discrepancy-found")


def test_audit_of_no_reviews_has_no_rate(tmp_path, capsys):
    """0 of 0 is not a rate of 0 % (QA 16): null in JSON, "–" in CSV and PDF."""
    from mdtviewer.workflows import logbook as lb

    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli_main(["audit", "discrepancies", "--folder", str(empty), "--json"]) == 0
    j = json.loads(capsys.readouterr().out)
    assert j["reviews"] == 0
    for key in ("discrepancy", "major", "score_1"):
        assert j["rates"][key] == {"count": 0, "rate": None, "ci95": None}
    rows = list(csv.reader(io.StringIO(lb.audit_csv(lb.discrepancy_audit([])))))
    head, first = rows[0], rows[1]
    assert first[:3] == ["all", "all", "0"]
    assert all(first[head.index(c)] == "\u2013" for c in head if "rate" in c or "ci95" in c)
    pdf = lb.audit_pdf(lb.discrepancy_audit([]))
    assert b"Discrepancy rate: 0 of 0, -)" in pdf and b"0.0 %" not in pdf
