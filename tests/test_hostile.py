"""Every file of ../shared/hostile (and its two folders, as their repro.sh build them) through
``mdtviewer check``, ``mdtviewer sr show`` and ``mdtviewer open --screenshot``, each in its own
process under ``prlimit --as=3000000000`` (3 GB of address space) and a timeout: exit status 0 or
1, no traceback, no signal, no hang, and a failing file gets exactly one line of reason (issue 11,
"Must show").  Four of these files made the viewer allocate 18-23 GB within seconds.

The kitchen-sink file is run here for crashes only; what de-identification does with it is for
the de-identification tests.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import REPO, TESTDATA

HOSTILE = TESTDATA.parent / "hostile"
HOSTILE_FILES = sorted(HOSTILE.glob("*.dcm"))
MEMORY_CAP = 3_000_000_000
TIMEOUT = 120
#: a Python exception's name followed by a colon: raw library text, not a reason
RAW_EXCEPTION = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception)\b:|'[A-Za-z]+' object has no attribute")

pytestmark = pytest.mark.skipif(not HOSTILE.is_dir(), reason="no ../shared/hostile")


def mdtviewer_cmd(*args: str) -> list[str]:
    return ["prlimit", f"--as={MEMORY_CAP}", sys.executable, "-m", "mdtviewer", *args]


def run_capped(args: list[str], home: Path, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = dict(os.environ, MDTVIEWER_HOME=str(home), QT_QPA_PLATFORM="offscreen")
    try:
        return subprocess.run(mdtviewer_cmd(*args), capture_output=True, text=True, timeout=TIMEOUT, env=env,
                              cwd=cwd)
    except subprocess.TimeoutExpired:
        pytest.fail(f"hang: mdtviewer {' '.join(args)} ran over {TIMEOUT} s")


def assert_clean(res: subprocess.CompletedProcess, command: str, shot: Path | None = None) -> None:
    """rc 0 or 1, no signal, no traceback, one line of reason on failure."""
    what = f"{command}: rc {res.returncode}\nstderr: {res.stderr[-1500:]}\nstdout: {res.stdout[-500:]}"
    assert res.returncode in (0, 1), what  # negative or 128+N: a signal; 2: usage
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout, what
    assert not RAW_EXCEPTION.search(res.stderr + res.stdout), what
    err = [ln for ln in res.stderr.splitlines() if ln.strip()]
    if command == "check":
        fails = [ln for ln in res.stdout.splitlines() if ln.startswith("FAIL")]
        if res.returncode == 1:
            assert fails and all(" -- " in ln for ln in fails), what
        assert not err, what
    elif command == "sr show":
        if res.returncode == 1:
            assert len(err) == 1 and err[0].startswith("mdtviewer sr show: error: "), what
        else:
            assert all(ln.startswith("mdtviewer sr show: note: ") for ln in err), what
    elif command == "open":
        if res.returncode == 1:
            assert err and err[0].startswith("mdtviewer open: "), what
            # the reason, or a header line and one line per problem file
            assert len(err) == 1 or (len(err) == 2 and "problem file" in err[0]), what
        else:
            assert shot is not None and shot.is_file() and shot.stat().st_size > 1000, what


def _three(path: Path, home: Path, tmp: Path) -> list[tuple[str, subprocess.CompletedProcess, Path | None]]:
    shot = tmp / f"{path.stem}.png"
    jobs = [("check", ["check", str(path)], None), ("sr show", ["sr", "show", str(path)], None),
            ("open", ["open", str(path), "--screenshot", str(shot)], shot)]
    return [(name, run_capped(args, home), s) for name, args, s in jobs]


@pytest.fixture(scope="module")
def hostile_runs(tmp_path_factory) -> dict[str, list]:
    """All 3 x N runs, two at a time (each is its own capped process)."""
    tmp = tmp_path_factory.mktemp("hostile")
    home = tmp / "home"
    with ThreadPoolExecutor(2) as pool:
        futures = {p.name: pool.submit(_three, p, home, tmp) for p in HOSTILE_FILES}
        return {name: f.result() for name, f in futures.items()}


def test_the_hostile_set_is_all_here():
    names = {p.name for p in HOSTILE_FILES}
    assert len(names) == 15
    assert {"jpeg_baseline_sof_height0_runaway_memory.dcm", "jpeg_18000x18000_2KB_memory_bomb.dcm",
            "rows_missing_open_segfault.dcm", "sr_subject_context_identifiers_srshow_leak.dcm"} <= names


@pytest.mark.parametrize("name", [p.name for p in HOSTILE_FILES])
def test_hostile_file_is_a_clean_reason_or_opens(hostile_runs, name):
    for command, res, shot in hostile_runs[name]:
        assert_clean(res, command, shot)


# what each file must give (beyond being clean): substring of check's line, of sr show, of open
EXPECTED = {
    "jpeg_baseline_sof_height0_runaway_memory.dcm": ("FAIL", "frame header says height 0", "height 0"),
    "jpeg_lossless_sv1_sof_height0_runaway_memory.dcm": ("FAIL", "frame header says height 0", "height 0"),
    "jpegls_sof_height0_decoder_hang.dcm": ("FAIL", "frame header says height 0", "height 0"),
    "jpeg_18000x18000_2KB_memory_bomb.dcm": ("FAIL", "too large to display", "too large to display"),
    "rows_missing_open_segfault.dcm": ("FAIL", "Rows", "Rows (0028,0010) is missing"),
    "rows_zero.dcm": ("FAIL", "image size 320 x 0 is not valid", "Rows (0028,0010) is '0'"),
    "us_rle_truncated_before_pixeldata_passes_check.dcm": ("FAIL", "image without Pixel Data", None),
    "meta_transfer_syntax_vr_AT_unexpected_error.dcm": ("OK", "damaged VR; read as UI", "saved "),
    "empty_series_uid_open_indexerror.dcm": ("OK", "Series Instance UID (0020,000E) is empty", "saved "),
    "native_65535x65535x100000f_refused_ok.dcm": ("FAIL", "only 100 bytes of pixel data", "only 100 bytes"),
    "jpeg_65535x65535_refused_ok.dcm": ("FAIL", "too large to display", "too large to display"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hostile_file_reason(hostile_runs, name):
    want_check_status, want_check, want_open = EXPECTED[name]
    runs = {command: res for command, res, _shot in hostile_runs[name]}
    line = runs["check"].stdout.splitlines()[0]
    assert line.startswith(want_check_status) and want_check in line, line
    if want_open is not None:
        assert want_open in runs["open"].stderr + runs["open"].stdout, runs["open"].stderr


def test_the_damaged_srs_show_and_check_ok(hostile_runs):
    for name in ("sr_contentdate_vr_FD_srshow_traceback.dcm", "sr_bad_vr_bytes_srshow_traceback.dcm"):
        runs = {command: res for command, res, _shot in hostile_runs[name]}
        assert runs["sr show"].returncode == 0 and "is damaged and was ignored" in runs["sr show"].stderr
        assert runs["check"].returncode == 0


def test_identifiers_in_the_sr_are_not_printed(hostile_runs):
    runs = {command: res for command, res, _shot in hostile_runs["sr_subject_context_identifiers_srshow_leak.dcm"]}
    text = "".join(r.stdout + r.stderr for r in runs.values()).lower()
    for ident in ("leakyson", "harriet", "leakid996", "19510829", "1951-08-29"):
        assert ident not in text


# ------------------------------------------------------------- the two folders, built as their repro.sh do
def test_dicomdir_with_an_absolute_file_id(tmp_path):
    """repro.sh: a DICOMDIR whose first ReferencedFileID is absolute must not load a file outside its set."""
    t = tmp_path / "ddabs"
    (t / "outside").mkdir(parents=True)
    shutil.copytree(TESTDATA / "dicomdir_pydicom_ct_mr_2patients", t / "set")
    for p in (t / "set").rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    shutil.copy(HOSTILE / "dicomdir_absolute_path" / "DICOMDIR_patched", t / "set" / "DICOMDIR")
    shutil.copy(TESTDATA / "us_philips_cx50_palette_rle.dcm", t / "outside" / "secret.dcm")
    home = tmp_path / "home"
    dicomdir = t / "set" / "DICOMDIR"
    for command, args in (("check", ["check", str(dicomdir)]), ("sr show", ["sr", "show", str(dicomdir)]),
                          ("open", ["open", str(dicomdir), "--screenshot", str(tmp_path / "dd.png")])):
        res = run_capped(args, home)
        assert_clean(res, command, tmp_path / "dd.png")
        assert "secret" not in res.stdout + res.stderr


def test_damaged_file_in_a_folder_named_after_the_patient(tmp_path):
    """repro.sh: the folder name's identifiers must not reach the log, whatever is run on it."""
    import pydicom

    folder = tmp_path / "Leakyson Harriet DOB 1951-08-29 MRN LEAKID997"
    folder.mkdir()
    ds = pydicom.dcmread(TESTDATA / "us_atl_hdi5000_jpeg_baseline_ybr422.dcm")
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Leakyson^Harriet", "LEAKID997", "19510829"
    full = tmp_path / "full.dcm"
    ds.save_as(full)
    data = full.read_bytes()
    img = folder / "img.dcm"
    img.write_bytes(data[: len(data) - 3000])  # cut inside the JPEG fragments
    home = tmp_path / "home"
    for command, args in (("check", ["check", str(folder)]), ("sr show", ["sr", "show", str(img)]),
                          ("open", ["open", str(folder), "--screenshot", str(tmp_path / "leak.png")])):
        res = run_capped(args, home)
        assert_clean(res, command, tmp_path / "leak.png")
    # export (QA 3): pydicom's own warning names the file with its folders, before the file's identifiers
    # could be registered; the log handler's filter cuts every path to its file name
    res = run_capped(["export", str(folder), "--deidentify", "--dest", str(tmp_path / "exp")], home)
    assert res.returncode in (0, 1) and "Traceback" not in res.stderr, res.stderr[-1500:]
    log = home / "logs" / "mdtviewer.log"
    text = log.read_text(errors="replace").lower() if log.exists() else ""
    assert "end of file reached before delimiter" in text  # the library's warning was written ...
    assert "/img.dcm" in text and "[path " in text  # ... with its file name, the folders hashed
    idents = ("leakyson", "harriet", "leakid997", "1951-08-29", "19510829", "dob 1951", str(tmp_path).lower())
    for ident in idents:
        assert ident not in text, ident
    for ident in idents[:-1]:  # (the terminal may name the destination folder the user gave)
        assert ident not in (res.stdout + res.stderr).lower(), ident
    # the same rule for Windows and home-relative paths, and a registered ID inside a word
    from mdtviewer.infra import logsafe

    logsafe.register_identifiers("LEAKID997")
    for line in (r"found in file C:\Scans\Leakyson Harriet MRN X1\img.dcm", "in ~/Leakyson Harriet/img.dcm",
                 r"in \\pacs\share\Leakyson Harriet\img.dcm", "case_LEAKID997_2 read"):
        out = logsafe.redact_log_text(line)
        assert "leakyson" not in out.lower() and "leakid997" not in out.lower(), out


# ------------------------------------------------------------- plausibility (issue 11 item 11)
def _us_with(tmp_path: Path, name: str, **changes) -> Path:
    """How the files are made: a corpus US cine/image with some attributes set to hostile values."""
    import pydicom

    ds = pydicom.dcmread(TESTDATA / name)
    for keyword, value in changes.items():
        if keyword.startswith("Region_"):
            setattr(ds.SequenceOfUltrasoundRegions[0], keyword[7:], value)
        else:
            setattr(ds, keyword, value)
    out = tmp_path / f"{name[:-4]}_{'_'.join(changes)}.dcm"
    ds.save_as(out)
    return out


@pytest.mark.parametrize("delta", [float("nan"), float("inf"), 5e-324, 1e300])
def test_an_implausible_physical_delta_is_uncalibrated_with_a_note(tmp_path, delta):
    from mdtviewer.dicom.reader import read_dataset
    from mdtviewer.imaging.usregions import parse_regions

    path = _us_with(tmp_path, "us_philips_cx50_palette_explicit_le.dcm", Region_PhysicalDeltaX=delta)
    regions = parse_regions(read_dataset(path))
    assert regions[0].physical_delta_x == 0.0 and not regions[0].is_spatial_cm
    assert "PhysicalDeltaX" in regions[0].note and "not calibrated" in regions[0].note
    res = run_capped(["check", str(path)], tmp_path / "home")
    assert res.returncode == 0 and "region not calibrated" in res.stdout


@pytest.mark.parametrize("changes, refused", [
    ({"FrameTime": 1e9}, "Frame Time 1e+09 ms"),
    ({"CineRate": 2**31}, "Cine Rate 2.14748e+09 frames/s"),
])
def test_an_implausible_frame_rate_is_refused_and_the_assumed_rate_used(tmp_path, changes, refused):
    from mdtviewer.dicom.reader import read_dataset
    from mdtviewer.imaging.cine import ASSUMED_FPS, frame_times_ms, timing_note

    name = "usmf_philips_cx50_palette_rle_2f_no_frametime.dcm"
    path = _us_with(tmp_path, name, **changes)
    ds = read_dataset(path)
    times, source = frame_times_ms(ds)
    assert source == "assumed" and times == [1000.0 / ASSUMED_FPS] * len(times)
    note = timing_note(ds)
    assert note and refused in note and "30 frames/s assumed" in note
