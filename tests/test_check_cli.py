"""``mdtviewer check``: over the corpus (exit 1, a line per instance), over the good
files (exit 0), --json keys, usage errors (exit 2), and no patient identifiers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from conftest import REPO, corpus_files
from mdtviewer.cli import check

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

KEYS = {"path", "ok", "error", "kind", "sop_class_uid", "transfer_syntax", "photometric", "rows", "columns",
        "frames", "frames_decoded", "frame_times_ms", "timing_source", "us_regions", "decode_seconds"}
DDSET = "dicomdir_pydicom_ct_mr_2patients"


def good_paths(testdata: Path) -> list[str]:
    return [str(p) for p in corpus_files() if not p.name.startswith("bad_")] + [str(testdata / DDSET)]


def _identifiers(testdata: Path) -> set[str]:
    """Patient names and IDs in the corpus (those not also part of a file path)."""
    paths = " ".join(str(p) for p in testdata.rglob("*"))
    out: set[str] = set()
    for p in list(corpus_files()) + [p for p in (testdata / DDSET).rglob("*") if p.is_file()]:
        try:
            ds = pydicom.dcmread(p, force=True, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - unreadable files have no identifiers to leak
            continue
        for kw in ("PatientName", "PatientID"):
            v = str(ds.get(kw, "") or "").strip()
            if len(v) >= 4 and v not in paths and v.lower() not in ("anonymized", "anonymous"):
                out.add(v)
    return out


@pytest.fixture(scope="module")
def corpus_json(testdata) -> list[dict]:
    # whole paths (--show-paths): the records are looked up by file name, which privacy may hide in part
    res = subprocess.run([sys.executable, "-m", "mdtviewer", "check", str(testdata), "--json", "--show-paths"],
                         capture_output=True, text=True, timeout=600, cwd=REPO)
    assert res.returncode == 1, res.stderr[-2000:]
    assert "non-DICOM" in res.stderr
    return [json.loads(line) for line in res.stdout.splitlines()]


def test_corpus_exits_1_with_a_line_per_instance(testdata, capsys):
    rc = check.main([str(testdata), "--show-paths"])  # whole paths (by default folders spelling IDs are hidden)
    out = capsys.readouterr().out.splitlines()
    assert rc == 1
    *lines, summary = out
    # every corpus file and every DICOMDIR-set file has its own line
    expected = {str(p) for p in corpus_files()} | {str(p) for p in (testdata / DDSET).rglob("*")
                                                    if p.is_file() and p.name != "DICOMDIR"}
    listed = {line.split()[2] for line in lines}
    assert listed == expected and len(lines) == len(expected)
    assert "duplicate" in summary and "1 non-DICOM" in summary
    fails = {Path(line.split()[2]).name for line in lines if line.startswith("FAIL")}
    assert {"bad_truncated_dataset_rtplan.dcm", "bad_declared_3gib_pixeldata_truncated.dcm",
            "bad_rows_cols_65535_tiny_pixeldata.dcm"} <= fails
    assert not any(n.startswith(("us_", "usmf_", "sr_", "kos_", "pdf_")) for n in fails)


def test_good_files_exit_0(testdata, capsys):
    rc = check.main(good_paths(testdata))
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "FAIL" not in out and out.count("OK  ") == len(good_paths(testdata)) - 1 + 31


def test_json_records(corpus_json, testdata):
    recs = {Path(r["path"]).name: r for r in corpus_json}
    for r in corpus_json:
        assert set(r) >= KEYS, KEYS - set(r)
        assert isinstance(r["ok"], bool) and (r["error"] is None) == r["ok"]
    cine = recs["usmf_acuson_sequoia_jpeg_ybr422_65f_ftv.dcm"]
    assert cine["ok"] and cine["kind"] == "cine" and cine["frames"] == cine["frames_decoded"] == 65
    assert cine["timing_source"] == "FrameTimeVector" and len(cine["frame_times_ms"]) == 65
    assert cine["us_regions"] == 2 and (cine["rows"], cine["columns"]) == (456, 576)
    assert cine["transfer_syntax"] == "1.2.840.10008.1.2.4.50" and cine["photometric"] == "YBR_FULL_422"
    sr = recs["sr_comprehensive_offis_test.dcm"]
    assert sr["ok"] and sr["kind"] == "sr" and sr["frames"] == 0 and sr["frame_times_ms"] is None
    # unreadable files get a line too
    bad = recs["bad_truncated_dataset_rtplan.dcm"]
    assert bad["ok"] is False and "Beam Sequence" in bad["error"] and bad["kind"] is None
    trunc = recs["bad_truncated_pixeldata_mr.dcm"]
    assert not trunc["ok"] and "8,130 of 8,192" in trunc["error"]
    # a failed decode still reports what the header says the image is (not nulls and zeros)
    assert (trunc["kind"], trunc["rows"], trunc["columns"], trunc["photometric"], trunc["frames"],
            trunc["frames_decoded"], trunc["transfer_syntax"]) == ("image", 64, 64, "MONOCHROME2", 1, 0,
                                                                   "1.2.840.10008.1.2.1")
    bomb = recs["bad_rows_cols_65535_tiny_pixeldata.dcm"]
    assert (bomb["rows"], bomb["columns"], bomb["frames_decoded"]) == (65535, 65535, 0) and not bomb["ok"]
    # exactly the documented keys (README), duplicate_of only on duplicates
    documented = KEYS | {"error_category", "note"}
    for r in corpus_json:
        assert set(r) - {"duplicate_of"} == documented, set(r) ^ documented
    # duplicates: listed, valid, pointing at the file kept
    dups = [r for r in corpus_json if "duplicate_of" in r]
    assert len(dups) == 2 and all(r["ok"] for r in dups)
    assert {Path(r["duplicate_of"]).name for r in dups} == {"us_philips_cx50_palette_explicit_le.dcm"}
    recovered = recs["bad_no_preamble_no_file_meta_ct.dcm"]
    assert recovered["ok"] and "recovered" in recovered["note"]


def test_usage_errors_exit_2(tmp_path, capsys):
    assert check.main([]) == 2
    assert check.main([str(tmp_path / "missing")]) == 2
    assert check.main(["--no-such-option", str(tmp_path)]) == 2
    res = subprocess.run([sys.executable, "-m", "mdtviewer", "check"], capture_output=True, text=True,
                         timeout=120, cwd=REPO)
    assert res.returncode == 2


def test_empty_folder_is_ok(tmp_path, capsys):
    assert check.main([str(tmp_path)]) == 0
    assert "0 checked" in capsys.readouterr().out


def test_no_identifiers_unless_asked(testdata, corpus_json, capsys):
    idents = _identifiers(testdata)
    assert len(idents) > 10  # the corpus does carry names and IDs
    text = json.dumps(corpus_json)
    check.main([str(testdata)])
    text += capsys.readouterr().out
    leaked = sorted(i for i in idents if i in text)
    assert not leaked, leaked
    check.main([str(testdata / "usmf_hp_jpeg_ybr422_34f.dcm"), "--json", "--show-identifiers"])
    rec = json.loads(capsys.readouterr().out.splitlines()[0])
    plain = pydicom.dcmread(testdata / "usmf_hp_jpeg_ybr422_34f.dcm", stop_before_pixels=True)
    assert rec["patient_name"] == str(plain.PatientName) and rec["patient_id"] == plain.PatientID == "HP_EXAMPLE"
    check.main([str(testdata / "usmf_hp_jpeg_ybr422_34f.dcm"), "--show-identifiers"])
    assert "HP_EXAMPLE" in capsys.readouterr().out


def crash_on_marked(path: str, kind: str) -> dict:
    """Stands in for a decoder that segfaults on one file (runs in a worker process)."""
    import os

    if os.path.basename(path) == "crash.dcm":
        os._exit(139)
    return {"ok": True, "path": path}


def test_a_crashing_decoder_is_pinned_on_its_file(tmp_path):
    jobs = [(str(tmp_path / f"file{i}.dcm"), "image") for i in range(6)]
    jobs[3] = (str(tmp_path / "crash.dcm"), "image")
    from mdtviewer.imaging.check import _run_checks

    results = _run_checks(jobs, 2, fn=crash_on_marked)
    assert [r["ok"] for r in results] == [True, True, True, False, True, True]
    assert "crashed" in results[3]["error"]
    assert [r.get("path") for i, r in enumerate(results) if i != 3] == [j[0] for i, j in enumerate(jobs) if i != 3]


def test_output_piped_into_head_ends_quietly(testdata):
    """`mdtviewer check ... | head -1`: no BrokenPipeError traceback."""
    import subprocess
    import sys

    cmd = f"{sys.executable} -m mdtviewer check --json {testdata} | head -1"
    res = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=120)
    assert res.stdout.count("\n") == 1 and res.stdout.startswith("{")
    assert "Traceback" not in res.stderr and "BrokenPipe" not in res.stderr


def pid_then_sleep(path: str, kind: str, sop_class_uid: str = "") -> dict:
    """Stands in for a decoder stuck in C: tells its pid, then never returns (runs in a worker)."""
    import os
    import time

    with open(path, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(600)
    return {"ok": True}


def test_a_worker_dies_with_its_parent(tmp_path):
    """`check` killed (SIGKILL, no clean-up) while a worker decodes: the worker goes too
    (it used to outlive its parent and go on allocating)."""
    import os
    import signal
    import time

    pidfile = tmp_path / "worker.pid"
    code = ("import sys; sys.path.insert(0, 'tests'); import test_check_cli as t; "
            "from mdtviewer.imaging.check import _run_checks; "
            f"_run_checks([({str(pidfile)!r}, 'image')], 1, fn=t.pid_then_sleep)")
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while not (pidfile.exists() and pidfile.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        worker = int(pidfile.read_text())
        os.kill(worker, 0)  # alive while its parent is
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(worker, 0)
            except ProcessLookupError:
                break
            with open(f"/proc/{worker}/stat") as fh:
                state = fh.read().split(") ")[1]
            if state.startswith("Z"):
                break  # a zombie has stopped running: only its exit status is left
            time.sleep(0.1)
        else:
            os.kill(worker, signal.SIGKILL)
            pytest.fail("the check worker outlived its parent")
    finally:
        if parent.poll() is None:
            parent.kill()
