"""StudyIndex on the real corpus: DICOMDIR records, folders, duplicates, non-DICOM files,
problems, callbacks, cancel, and the process-pool path."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pydicom
import pytest

from conftest import corpus_files
from mdtviewer.dicom import index as index_mod
from mdtviewer.dicom.dicomdir import read_file_set
from mdtviewer.dicom.index import StudyIndex, scan

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

DDSET = "dicomdir_pydicom_ct_mr_2patients"
#: the three shared files with one SOP Instance UID (SOURCES.md / toolchain notes)
SAME_UID = ("us_philips_cx50_palette_explicit_le.dcm", "us_philips_cx50_palette_rle.dcm",
            "usmf_philips_cx50_palette_rle_2f_no_frametime.dcm")


def _counts(ix: StudyIndex) -> tuple[int, int, int, int]:
    studies = ix.studies()
    return (len(ix.patients), len(studies), sum(len(s.series) for _, s in studies), len(ix.instances()))


def test_dicomdir_set_via_records(testdata):
    dd = testdata / DDSET / "DICOMDIR"
    ix = scan([dd])
    assert _counts(ix) == (2, 6, 13, 31)
    assert ix.problems == [] and ix.duplicates == [] and ix.skipped_non_dicom == 0
    # the files are the ones the records name (extension-less, in subfolders)
    ds = pydicom.dcmread(dd)
    named = {(dd.parent.joinpath(*r.ReferencedFileID)).resolve() for r in ds.DirectoryRecordSequence
             if "ReferencedFileID" in r}
    assert {i.path.resolve() for i in ix.instances()} == named
    assert all(i.kind == "image" for i in ix.instances())


def test_dicomdir_records_used_when_scanning_its_folder(testdata):
    ix = scan([testdata / DDSET])
    assert _counts(ix) == (2, 6, 13, 31)
    assert ix.skipped_non_dicom == 0  # the DICOMDIR itself is not a stray file


def test_dicomdir_missing_and_case_insensitive_file_ids(testdata, tmp_path):
    shutil.copytree(testdata / DDSET, tmp_path / "cd")
    root = tmp_path / "cd"
    for p in root.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    (root / "98892003" / "MR700" / "4678").unlink()                 # referenced, missing
    (root / "77654033" / "CR1" / "6154").rename(root / "77654033" / "CR1" / "6154x")  # not where the record says
    os.rename(root / "77654033" / "CT2", root / "77654033" / "ct2")  # case differs from the file ID
    found, missing = read_file_set(root / "DICOMDIR")
    assert len(found) == 29
    assert {p.path.name for p in missing} == {"4678", "6154"} and {p.category for p in missing} == {"missing"}
    ix = scan([root / "DICOMDIR"])
    assert len(ix.instances()) == 29
    assert sorted(p.path.name for p in ix.problems) == ["4678", "6154"]
    assert all("DICOMDIR" in p.reason for p in ix.problems)
    # scanning the folder also picks up the unreferenced (renamed) file
    ix2 = scan([root])
    assert len(ix2.instances()) == 30


def test_corpus_folder(testdata):
    ix = scan([testdata])
    top = corpus_files()
    # every top-level file ends up somewhere: instance, duplicate or problem
    placed = {i.path.name for i in ix.instances()} | {d[1].name for d in ix.duplicates} | \
        {p.path.name for p in ix.problems}
    assert {p.name for p in top} <= placed
    assert ix.skipped_non_dicom == 1  # SOURCES.md
    # duplicates reported, not merged: first kept, the other two listed
    assert len(ix.duplicates) == 2
    kept = {d[0].name for d in ix.duplicates}
    dups = {d[1].name for d in ix.duplicates}
    assert kept == {SAME_UID[0]} and dups == set(SAME_UID[1:])
    uid = ix.duplicates[0][2]
    assert ix.find_instance(uid).path.name == SAME_UID[0]
    assert ix.duplicate_instance(testdata / SAME_UID[2]).kind == "cine"
    assert sum(1 for i in ix.instances() if i.sop_instance_uid == uid) == 1
    # problems: the three files whose header cannot be used, each with its reason
    probs = {p.path.name: p for p in ix.problems}
    assert set(probs) == {"bad_meta_missing_transfer_syntax.dcm", "bad_partial_dataset_truncated_gh179b.dcm",
                          "bad_truncated_dataset_rtplan.dcm"}
    assert probs["bad_truncated_dataset_rtplan.dcm"].category == "truncated"
    kinds = {i.path.name: i.kind for i in ix.instances()}
    assert kinds["kos_clearcanvas_of_interest.dcm"] == "kos"
    assert kinds["pdf_encapsulated_orthanc_sample.dcm"] == "pdf"
    assert kinds["usmf_hp_jpeg_ybr422_34f.dcm"] == "cine"
    assert kinds["bad_no_preamble_no_file_meta_ct.dcm"] == "image"


def test_non_dicom_skipped_and_counted(testdata, tmp_path):
    (tmp_path / "notes.txt").write_text("clinic list\n")
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(500))
    (tmp_path / "empty").write_bytes(b"")
    os.mkfifo(tmp_path / "pipe")  # opening it would block forever: never opened
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    sub = tmp_path / "sub" / "deeper"
    sub.mkdir(parents=True)
    shutil.copy(testdata / "usmf_hp_jpeg_ybr422_34f.dcm", sub / "cine")
    ix = scan([tmp_path])
    assert ix.skipped_non_dicom == 5
    assert [i.kind for i in ix.instances()] == ["cine"]
    assert ix.problems == []


def test_same_file_given_twice_is_not_a_duplicate(testdata):
    f = testdata / "usmf_hp_jpeg_ybr422_34f.dcm"
    ix = scan([f, f, testdata / DDSET / ".." / f.name])
    assert len(ix.instances()) == 1 and ix.duplicates == []


def test_opening_the_same_folder_again_adds_no_duplicates_or_problems(testdata, tmp_path):
    """The viewer keeps one index: File > Recent on a folder already open must not report every
    file as a duplicate of itself, nor list each bad file twice."""
    ix = StudyIndex()
    ix.add_paths([testdata], workers=1)
    first = (len(ix.instances()), list(ix.duplicates), list(ix.problems))
    assert first[0] > 60 and len(first[1]) == 2 and len(first[2]) >= 3
    ix.add_paths([testdata], workers=1)
    ix.add_paths([testdata / SAME_UID[1], tmp_path / "gone"], workers=1)
    ix.add_paths([tmp_path / "gone"], workers=1)
    assert (len(ix.instances()), ix.duplicates, ix.problems[: len(first[2])]) == first
    assert len(ix.problems) == len(first[2]) + 1  # the missing path, once


def test_missing_path_is_a_problem(tmp_path):
    ix = scan([tmp_path / "gone"])
    assert len(ix.problems) == 1 and ix.problems[0].category == "missing"


def test_callbacks_and_hierarchy(testdata):
    seen: list[str] = []
    prog: list[tuple[int, int]] = []
    ix = StudyIndex()
    ix.add_paths([testdata / DDSET], progress=lambda d, t: prog.append((d, t)),
                 on_instance=lambda inst: seen.append(inst.sop_instance_uid))
    assert len(seen) == 31 and prog[0] == (0, 31) and prog[-1] == (31, 31)
    for patient, study in ix.studies():
        assert study in patient.studies.values()
        for series in study.series.values():
            nums = [i.instance_number for i in series.instances]
            assert nums == sorted(nums)
            assert len({i.modality for i in series.instances}) == 1


def test_cancel_stops_early(testdata):
    cancel = threading.Event()
    ix = StudyIndex()

    def on_instance(_inst):
        if len(ix.instances()) >= 5:
            cancel.set()

    ix.add_paths([testdata / DDSET], cancel=cancel, on_instance=on_instance)
    assert 5 <= len(ix.instances()) < 31


def test_process_pool_path_matches_serial(testdata, tmp_path, monkeypatch):
    """Above POOL_THRESHOLD files the headers are read in worker processes."""
    for c in range(3):
        d = tmp_path / f"copy{c}"
        d.mkdir()
        for f in corpus_files():
            (d / f.name).symlink_to(f)
    monkeypatch.setattr(index_mod, "POOL_THRESHOLD", 10)
    monkeypatch.setattr(index_mod, "COLD_POOL_THRESHOLD", 10)
    prog: list[tuple[int, int]] = []
    pooled = StudyIndex()
    try:
        pooled.add_paths([tmp_path], workers=2, progress=lambda d, t: prog.append((d, t)))
    finally:
        index_mod.shutdown_pool()  # the worker processes and their feeder threads end with the test
    serial = StudyIndex()
    serial.add_paths([tmp_path], workers=1)
    n = len(corpus_files())
    assert prog[-1] == (n * 3, n * 3)
    assert [i.path for i in pooled.instances()] == [i.path for i in serial.instances()]
    assert pooled.duplicates == serial.duplicates
    assert len(pooled.duplicates) == 3 * (n - len(serial.problems) // 3) - len(serial.instances())
    assert [(p.path, p.reason) for p in pooled.problems] == [(p.path, p.reason) for p in serial.problems]


def test_warm_pool_reads_in_workers_and_merges_in_order(testdata, tmp_path, monkeypatch):
    """Cold: this thread reads while the pool starts.  Warm: the workers read
    (the main process reads nothing itself) and the result is the serial one."""
    for c in range(4):
        d = tmp_path / f"copy{c}"
        d.mkdir()
        for f in corpus_files():
            (d / f.name).symlink_to(f)
    monkeypatch.setattr(index_mod, "POOL_THRESHOLD", 10)
    monkeypatch.setattr(index_mod, "COLD_POOL_THRESHOLD", 10)
    serial = StudyIndex()
    serial.add_paths([tmp_path], workers=1)
    StudyIndex().add_paths([tmp_path], workers=2)  # starts the pool (in the background)
    index_mod.start_pool_in_background(2).join(30)  # (or an application starts it early)
    assert index_mod._pool_is_warm(2)
    here: list[str] = []
    real = index_mod._read_one
    monkeypatch.setattr(index_mod, "_read_one", lambda p: (here.append(p), real(p))[1])
    pooled = StudyIndex()
    pooled.add_paths([tmp_path], workers=2)
    assert here == []  # every header was read in a worker process
    assert [i.path for i in pooled.instances()] == [i.path for i in serial.instances()]
    assert [(i.kind, i.number_of_frames, i.note) for i in pooled.instances()] == \
        [(i.kind, i.number_of_frames, i.note) for i in serial.instances()]
    assert pooled.duplicates == serial.duplicates
    assert [(p.path, p.reason) for p in pooled.problems] == [(p.path, p.reason) for p in serial.problems]
    index_mod.shutdown_pool()


def test_thread_safe_reads_while_indexing(testdata, tmp_path):
    """The UI walks the hierarchy (and calls instances()/studies()) while a worker indexes."""
    for c in range(4):
        d = tmp_path / f"c{c}"
        shutil.copytree(testdata / DDSET, d)  # distinct UIDs per copy are not needed: same files, new paths
    ix = StudyIndex()
    errors: list[BaseException] = []
    done = threading.Event()
    walks = 0

    def reader():
        nonlocal walks
        while not done.is_set():
            try:
                ix.instances()
                ix.studies()
                for patient in ix.patients.values():
                    for study in patient.studies.values():
                        for series in study.series.values():
                            for inst in series.instances:
                                assert inst.sop_instance_uid
                walks += 1
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
                return

    t = threading.Thread(target=reader)
    t.start()
    worker = threading.Thread(target=lambda: ix.add_paths([testdata, tmp_path]))
    worker.start()
    worker.join(120)
    done.set()
    t.join(10)
    assert not errors, errors
    assert walks > 0 and len(ix.instances()) > 60 and len(ix.duplicates) == 2 + 4 * 31


@pytest.mark.parametrize("variant", ["DICOMDIR-bigEnd", "DICOMDIR-implicit", "DICOMDIR-nooffset",
                                     "DICOMDIR-nopatient", "DICOMDIR-reordered", "DICOMDIR-empty.dcm"])
def test_dicomdir_variants_found_by_sop_class(variant):
    """pydicom's DICOMDIR variants (big endian, implicit VR, no offsets ...), named other
    than DICOMDIR: recognised by their SOP class, their records used."""
    base = Path(pydicom.__file__).parent / "data" / "test_files" / "dicomdirtests"
    prog: list[tuple[int, int]] = []
    ix = StudyIndex()
    ix.add_paths([base / variant], progress=lambda d, t: prog.append((d, t)))
    expected = (0, 0, 0, 0) if variant.endswith("empty.dcm") else (2, 6, 13, 31)
    assert _counts(ix) == expected
    assert ix.problems == [] and ix.skipped_non_dicom == 0
    if expected[3]:
        assert prog[-1] == (32, 32)  # the directory file, then the 31 files it names


def test_no_process_survives_a_killed_viewer_mid_scan(testdata, tmp_path):
    """`kill -9` of `mdtviewer open FOLDER` while its header-reading pool works: within a few
    seconds no process it started is left (workers, fork server, resource tracker)."""
    import signal
    import subprocess
    import sys
    import time

    import psutil

    folder = tmp_path / "big"
    files = [f for f in corpus_files() if not f.name.startswith("bad_")]
    for c in range(index_mod.COLD_POOL_THRESHOLD // len(files) + 20):  # large enough for the pool, mid-scan
        d = folder / f"copy{c:03d}"
        d.mkdir(parents=True)
        for f in files:
            (d / f.name).symlink_to(f)
    exe = Path(sys.executable).with_name("mdtviewer")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "MDTVIEWER_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen([str(exe), "open", str(folder)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    started: list[psutil.Process] = []
    try:
        app = psutil.Process(proc.pid)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            started = app.children(recursive=True)
            # the fork server, its 2 workers and the resource tracker
            if sum("python" in " ".join(p.cmdline()).lower() for p in started if p.is_running()) >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the viewer exited by itself"
        assert len(started) >= 3, f"no header-reading pool started: {[p.cmdline() for p in started]}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        _gone, alive = psutil.wait_procs(started, timeout=5)
        assert not alive, f"left behind: {[(p.pid, p.cmdline()) for p in alive]}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for p in started:  # a failed run must not leave them either
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass


def test_added_since_lists_each_placed_instance_once_in_merge_order(testdata, tmp_path):
    """What a view that grows with the scan reads: every instance placed, once, with its hierarchy."""
    ix = StudyIndex()
    seen: list = []
    cursor = 0

    def on_instance(_inst) -> None:  # read while the scan runs, as the browser does between its polls
        nonlocal cursor
        cursor, batch = ix.added_since(cursor, limit=3)
        assert len(batch) <= 3
        seen.extend(batch)

    ix.add_paths([testdata], workers=1, on_instance=on_instance)
    cursor, rest = ix.added_since(cursor)
    seen.extend(rest)
    assert cursor == ix.generation == len(seen) == len(ix.instances())
    assert sorted(str(i.path) for *_h, i in seen) == sorted(str(i.path) for i in ix.instances())
    for patient, study, series, inst in seen:
        assert inst in series.instances and series in study.series.values() and study in patient.studies.values()
    dup_paths = {str(d) for _k, d, _u in ix.duplicates}
    assert dup_paths and not dup_paths & {str(i.path) for *_h, i in seen}  # duplicates are not placed
    ix.add_paths([testdata], workers=1)  # the same folder again: nothing new
    assert ix.added_since(cursor) == (cursor, [])
