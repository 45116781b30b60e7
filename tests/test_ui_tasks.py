"""The one background-work helper (mdtviewer.ui.tasks): delivery on the UI thread, owner-scoped
cancel and join, one error path; and the real window closed while its decoders work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import pytestqt  # noqa: F401  (a test dependency: fail, never skip)
from PySide6.QtCore import QObject
from PySide6.QtWidgets import QWidget

from mdtviewer.infra.errors import DicomInputError, PixelDataError
from mdtviewer.ui import errors as ui_errors
from mdtviewer.ui import tasks

pytestmark = pytest.mark.gui

CINE = "usmf_acuson_sequoia_jpeg_ybr422_65f_ftv.dcm"  # 65 JPEG frames: decoding takes a while


@pytest.fixture
def announced():
    """What reaches the window's hook (tasks.errors), disconnected after the test."""
    got: list[tuple[str, bool]] = []

    def record(message: str, bug: bool) -> None:
        got.append((message, bug))

    tasks.errors.reported.connect(record)
    yield got
    tasks.errors.reported.disconnect(record)


def test_result_and_progress_arrive_on_the_ui_thread(qtbot):
    owner = QWidget()
    qtbot.addWidget(owner)
    seen: dict[str, object] = {"progress": []}

    def job(task: tasks.Task) -> int:
        seen["worker"] = threading.current_thread().name
        for i in range(3):
            task.progress(i)
        return 42

    def on_progress(v: int) -> None:
        assert threading.current_thread() is threading.main_thread()
        seen["progress"].append(v)  # type: ignore[union-attr]

    def on_result(v: int) -> None:
        seen["result_thread"] = threading.current_thread()
        seen["result"] = v

    t = tasks.run(owner, job, name="answer", on_result=on_result, on_progress=on_progress)
    assert t.running()
    qtbot.waitUntil(lambda: "result" in seen, timeout=5_000)
    assert seen["result"] == 42 and seen["result_thread"] is threading.main_thread()
    assert seen["worker"] == "answer" and seen["progress"] == [0, 1, 2]
    assert not t.running() and t.done() and tasks.active(owner) == []


def test_jobs_on_one_lane_run_in_order_on_one_thread(qtbot):
    owner = QObject()
    order: list[tuple[int, str]] = []
    for i in range(5):
        tasks.run(owner, lambda _t, i=i: order.append((i, threading.current_thread().name)), name="w", lane="writer")
    assert tasks.wait(owner, 5)
    assert [i for i, _ in order] == [0, 1, 2, 3, 4] and {n for _, n in order} == {"writer"}


def test_closing_the_owner_cancels_joins_and_delivers_nothing(qtbot):
    owner = QWidget()
    qtbot.addWidget(owner)
    started = threading.Event()
    delivered: list[object] = []
    hooks: list[str] = []

    def job(task: tasks.Task) -> str:
        started.set()
        task.cancel.wait(10)  # a core function waiting on its cancel event (a PACS round trip, a decode loop)
        task.progress("after cancel")
        return "late result"

    t = tasks.run(owner, job, name="slow", on_result=delivered.append, on_progress=delivered.append,
                  on_error=delivered.append, on_cancel=lambda: hooks.append("cancel"))
    tasks.on_shutdown(owner, lambda: hooks.append("closed"))
    assert started.wait(5)
    t0 = time.monotonic()
    assert tasks.shutdown(owner)  # what a window does on close
    assert time.monotonic() - t0 < 2.0, "the job was not told to stop"
    assert t.cancelled() and t.done() and not t.thread.is_alive()
    assert hooks == ["cancel", "closed"]
    qtbot.wait(50)  # anything queued would be delivered now
    assert delivered == []


def test_a_deleted_owner_stops_its_jobs(qtbot):
    owner = QObject()
    started = threading.Event()
    delivered: list[object] = []

    def job(task: tasks.Task) -> str:
        started.set()
        task.cancel.wait(10)
        return "late"

    t = tasks.run(owner, job, name="orphan", on_result=delivered.append)
    assert started.wait(5)
    owner.deleteLater()
    qtbot.waitUntil(t.done, timeout=3_000)
    assert t.cancelled() and not t.thread.is_alive()
    qtbot.wait(50)
    assert delivered == []


def test_an_expected_error_is_its_one_line_reason(qtbot, mdt_home, announced):
    owner = QObject()
    got: list[str] = []

    def job(_t: tasks.Task) -> None:
        raise PixelDataError("Pixel Data is shorter than\n Rows x Columns x frames say")

    tasks.run(owner, job, name="decode", on_error=got.append)
    qtbot.waitUntil(lambda: bool(got), timeout=5_000)
    assert got == ["Pixel Data is shorter than Rows x Columns x frames say"]
    assert announced == []  # shown by the job's own on_error; not a bug: not announced
    # without an on_error the reason goes to the one hook the window shows
    tasks.run(owner, lambda _t: (_ for _ in ()).throw(DicomInputError("not a DICOM file")), name="open")
    qtbot.waitUntil(lambda: bool(announced), timeout=5_000)
    assert announced == [("not a DICOM file", False)]
    log = ui_errors.log_file()
    assert not log.exists() or "Traceback" not in log.read_text()


def test_an_unexpected_error_is_reported_as_a_bug_with_the_log_path(qtbot, mdt_home, announced):
    owner = QObject()
    got: list[str] = []

    def broken_job(_t: tasks.Task) -> None:
        {}["missing key"]  # a programming error

    tasks.run(owner, broken_job, name="broken", on_error=got.append)
    qtbot.waitUntil(lambda: bool(got) and bool(announced), timeout=5_000)
    log = ui_errors.log_file()
    assert str(log).startswith(str(mdt_home))
    assert "KeyError" in got[0] and str(log) in got[0] and "bug" in got[0]
    assert announced == [(got[0], True)]  # bugs always reach the window, even when the job shows its error
    text = log.read_text()
    assert "Traceback" in text and "broken_job" in text and "KeyError" in text


def test_the_window_shows_job_errors_in_its_status_bar(qtbot, window, mdt_home):
    tasks.run(window, lambda _t: (_ for _ in ()).throw(DicomInputError("this file has no image")), name="x")
    qtbot.waitUntil(lambda: window.statusBar().currentMessage() == "this file has no image", timeout=5_000)
    tasks.run(window, lambda _t: 1 / 0, name="y")
    qtbot.waitUntil(lambda: str(ui_errors.log_file()) in window.statusBar().currentMessage(), timeout=5_000)
    assert "ZeroDivisionError" in window.statusBar().currentMessage()


def test_persisted_writes_keep_their_order_and_are_flushed(tmp_path):
    out = tmp_path / "writes.txt"

    def write(n: int) -> None:
        time.sleep(0.01)
        with out.open("a") as f:
            f.write(f"{n}\n")

    for n in range(10):
        tasks.persist(write, n)
    assert tasks.flush(10)
    assert out.read_text().split() == [str(n) for n in range(10)]
    assert not any(t.name == "io" for t in threading.enumerate())  # the writer thread ends when idle


# ----------------------------------------------------------------------------- the real window, in a child
CLOSE_MID_DECODE = textwrap.dedent(
    """
    import json, os, sys, threading, time
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QCoreApplication, QEvent
    from mdtviewer.ui.main_window import MainWindow, app_instance

    path, rounds = sys.argv[1], int(sys.argv[2])
    app = app_instance()

    def pump(cond, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            app.processEvents()
            if cond():
                return True
            time.sleep(0.002)
        return cond()

    out = {"rounds": 0, "pending_at_close": [], "after_close": 0, "threads": []}
    for r in range(rounds):
        win = MainWindow()
        win.resize(1280, 800)
        win.show()
        closed = {"yes": False}
        ready = []

        def on_frame(key, arr, closed=closed, ready=ready):
            ready.append(key)
            if closed["yes"]:
                out["after_close"] += 1
        win.service.frameReady.connect(on_frame)
        win.open_paths([path])
        assert pump(lambda: len(ready) >= 1, 60), "no frame decoded"
        # queue the whole cine, then close while the workers decode it
        key0 = ready[0]
        for i in range(65):
            win.service.request((key0[0], i, "disp"), priority=float(i))
        for i in range(65):
            win.service.request((key0[0], i, "raw"), priority=100.0 + i)
        time.sleep(0.002 * r)  # close at a different point of the decode each round
        out["pending_at_close"].append(win.service.pool.pending())
        closed["yes"] = True
        win.close()
        win.deleteLater()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        for _ in range(20):
            app.processEvents()
            time.sleep(0.005)
        out["rounds"] += 1
    out["threads"] = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    print("RESULT " + json.dumps(out), flush=True)
    """
)


def test_closing_the_window_mid_decode_never_crashes(testdata, tmp_path):
    """A real window opening a corpus cine and closed while its decoders run, twenty times, in a child
    process: a segfault there fails this test instead of killing pytest."""
    script = tmp_path / "close_mid_decode.py"
    script.write_text(CLOSE_MID_DECODE)
    env = dict(os.environ, MDTVIEWER_HOME=str(tmp_path / "home"), QT_QPA_PLATFORM="offscreen")
    repo = Path(__file__).resolve().parent.parent
    env["PYTHONPATH"] = str(repo) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, str(script), str(testdata / CINE), "20"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"child died with {proc.returncode}:\n{proc.stderr[-3000:]}"
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    out = json.loads(line[len("RESULT "):])
    assert out["rounds"] == 20
    assert max(out["pending_at_close"]) > 0, "never closed while decoding: the test proves nothing"
    assert out["after_close"] == 0, "a decoded frame reached a closed window"
    assert out["threads"] == [], f"threads outlived their windows: {out['threads']}"


def test_only_the_helper_starts_threads_in_the_ui():
    """ui/tasks.py is the one place of the UI that makes threads (the others use it)."""
    import re

    ui = Path(tasks.__file__).resolve().parent
    pattern = re.compile(r"threading\.Thread\(|ThreadPoolExecutor\(|ProcessPoolExecutor\(|QThread|QRunnable|"
                         r"concurrent\.futures|_thread\.start_new")
    offenders = [
        f"{p.relative_to(ui)}:{n}"
        for p in sorted(ui.rglob("*.py")) if p.name != "tasks.py" or p.parent != ui
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)
    ]
    assert offenders == []
