"""UI-thread stalls while the real window scans a large folder (issue 16: none over 100 ms).

The folder: N instances (default 50,000) copied from corpus files with new
Study/Series/SOP Instance UIDs, several hundred studies (see
``benchmarks/largefolder.py`` for how it is made; cached under
``benchmarks/out/``, git-ignored).

The real :class:`~mdtviewer.ui.main_window.MainWindow` (offscreen) opens the
folder as the File menu does, while a 2 ms PreciseTimer heartbeat on the UI
thread records the gap between its ticks: a gap is how long the UI thread
could not answer.  Measured from the open until 2 s after the scan ended
(thumbnails, key images and the first study being shown happen then).

Prints: time to the first study listed, time to scan end, max stall,
number of stalls over 100 ms and over 50 ms, median and p99 tick gap,
load average before and after.  ``--profile`` adds the UI thread's top
functions (cProfile) to find what a stall was.

Usage: .venv/bin/python benchmarks/scan_large.py [--n 50000] [--repeat 1] [--profile]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

TICK_MS = 2
AFTER_S = 2.0


def run_once(folder: Path, profile: bool, thumbs: bool = True) -> dict:
    from PySide6.QtCore import QElapsedTimer, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from mdtviewer.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    win = MainWindow()
    if not thumbs:  # diagnosis: the scan without the series thumbnails being decoded meanwhile
        win.browser.thumbnailWanted.disconnect()
    win.show()
    for _ in range(20):
        app.processEvents()
    gaps: list[tuple[float, float]] = []  # (time since open s, gap ms)
    marks: dict[str, float] = {}
    clock = QElapsedTimer()
    last = [0]

    def tick() -> None:
        now = clock.nsecsElapsed()
        gaps.append((now / 1e9, (now - last[0]) / 1e6))
        last[0] = now

    def rows_inserted(parent, _first, _last) -> None:
        if "first_study" not in marks and parent.isValid() and not parent.parent().isValid():
            marks["first_study"] = clock.nsecsElapsed() / 1e9

    def finished() -> None:
        marks.setdefault("scan_end", clock.nsecsElapsed() / 1e9)
        QTimer.singleShot(int(AFTER_S * 1000), app.quit)

    heart = QTimer()
    heart.setTimerType(Qt.TimerType.PreciseTimer)
    heart.setInterval(TICK_MS)
    heart.timeout.connect(tick)
    win.browser.tree.model().rowsInserted.connect(rows_inserted)
    win.scanFinished.connect(finished)
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    clock.start()
    heart.start()
    win.open_paths([str(folder)])
    app.exec()
    heart.stop()
    if prof is not None:
        import pstats

        prof.disable()
        st = pstats.Stats(prof).sort_stats("cumulative")
        st.print_stats(25)
        st.print_callees("_on_scan_finished|set_current_study|_study_changed")
    studies = sum(len(p.studies) for p in win.index.patients.values())
    n_inst = win.index.generation
    win.stop_all()
    win.close()
    win.deleteLater()
    app.processEvents()
    just = [g for _t, g in gaps[1:]]
    worst = sorted(gaps[1:], key=lambda tg: -tg[1])[:5]
    return {
        "instances": n_inst,
        "studies": studies,
        "first_study": marks.get("first_study", float("nan")),
        "scan_end": marks.get("scan_end", float("nan")),
        "max": max(just),
        "over100": sum(g > 100 for g in just),
        "over50": sum(g > 50 for g in just),
        "median": statistics.median(just),
        "p99": statistics.quantiles(just, n=100)[98],
        "ticks": len(just),
        "worst": worst,
    }


def _trace(limit_ms: float) -> None:
    """Time the window's and the browser's methods on the UI thread; print those over *limit_ms*."""
    import functools
    import inspect
    import threading

    from mdtviewer.ui import main_window
    from mdtviewer.ui.viewer import browser

    ui = threading.main_thread()

    def wrap(cls: type, name: str) -> None:
        fn = getattr(cls, name)

        @functools.wraps(fn)
        def timed(*a, **k):
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                return fn(*a, **k)
            finally:
                ms = (time.perf_counter() - t0) * 1000
                if ms > limit_ms and threading.current_thread() is ui:
                    cpu = (time.thread_time() - c0) * 1000
                    print(f"    [trace] {cls.__name__}.{name}: {ms:.0f} ms ({cpu:.0f} ms CPU)", flush=True)

        setattr(cls, name, timed)

    for cls in (main_window.MainWindow, browser.StudyBrowser):
        for name, val in list(vars(cls).items()):
            if inspect.isfunction(val) and not name.startswith("__"):
                try:
                    wrap(cls, name)
                except (TypeError, AttributeError):
                    pass


def _trace_gc(limit_ms: float) -> None:
    """Print garbage collections longer than *limit_ms* (they hold the interpreter: every thread waits)."""
    import gc
    import threading

    started: dict[int, float] = {}

    def cb(phase: str, info: dict) -> None:
        key = threading.get_ident()
        if phase == "start":
            started[key] = time.perf_counter()
        elif key in started:
            ms = (time.perf_counter() - started.pop(key)) * 1000
            if ms > limit_ms:
                print(
                    f"    [trace] gc generation {info['generation']} in {threading.current_thread().name}: {ms:.0f} ms",
                    flush=True,
                )

    gc.callbacks.append(cb)


def _peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=1, help="scans (one window each), in one process")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--workers", type=int, default=0, help="header-reading processes (default: as the app decides)")
    ap.add_argument("--no-thumbnails", action="store_true", help="diagnosis: no thumbnails decoded during the scan")
    ap.add_argument("--trace", type=float, default=0.0, help="print UI-thread calls longer than this many ms")
    args = ap.parse_args(argv)
    if args.workers:
        from mdtviewer.dicom import index as index_mod

        index_mod.default_workers = lambda: args.workers  # type: ignore[assignment]
    if args.trace:
        _trace(args.trace)
        _trace_gc(args.trace)
    import largefolder

    t0 = time.perf_counter()
    folder = largefolder.build(args.n, quiet=True)
    built = time.perf_counter() - t0
    print(f"folder: {folder} ({args.n} files; ready in {built:.1f} s)")
    for r in range(args.repeat):
        load0 = os.getloadavg()
        res = run_once(folder, args.profile, not args.no_thumbnails)
        load1 = os.getloadavg()
        print(
            f"run {r + 1}: {res['instances']} instances in {res['studies']} studies; "
            f"first study listed {res['first_study']:.2f} s, scan end {res['scan_end']:.2f} s"
        )
        print(
            f"  UI-thread heartbeat ({TICK_MS} ms, {res['ticks']} ticks, scan + {AFTER_S:.0f} s): max stall "
            f"{res['max']:.0f} ms; stalls > 100 ms: {res['over100']}, > 50 ms: {res['over50']}; "
            f"tick gap median {res['median']:.1f} ms, p99 {res['p99']:.1f} ms"
        )
        print("  worst gaps (at s: ms): " + ", ".join(f"{t:.2f}: {g:.0f}" for t, g in res["worst"]))
        print(f"  load average before {load0[0]:.2f}, after {load1[0]:.2f} (1 min); peak RSS {_peak_rss_mb():.0f} MB")
        print(f"  target: no stall over 100 ms -> {'met' if res['over100'] == 0 else 'NOT met'}")
    from mdtviewer.dicom import index as index_mod

    index_mod.shutdown_pool()
    return 0


if __name__ == "__main__":
    sys.exit(main())
