"""Header indexing speed: StudyIndex vs a plain pydicom loop.

Target (issue 3, "Speed"): header indexing of a folder at least as fast per
file as a plain ``pydicom.dcmread(stop_before_pixels=True)`` loop, and
parallel across cores.

The corpus (``*.dcm`` plus the DICOMDIR set's files) is repeated ``--copies``
times as symbolic links in a temporary folder (same bytes, page-cached, so
the figures are parsing cost, not disk), then indexed by:

- ``pydicom loop``: ``dcmread(p, stop_before_pixels=True, force=True)`` per file;
- ``StudyIndex serial``: ``add_paths(workers=1)`` (our reader: bounded reads,
  truncation/recovery checks, classification, hierarchy, duplicates);
- ``StudyIndex threads``: our per-file reader in a thread pool (for the
  record: the GIL serialises pure-Python parsing, so threads do not help);
- ``StudyIndex processes``: ``add_paths()`` with the process pool, forced
  whatever the folder size (first call includes the pool's start-up; the
  others reuse it).

Every timing is the best of ``--repeat`` rounds; each round runs every route
once, interleaved, because the machine is shared.  Prints figures, exits 0.

Usage: .venv/bin/python benchmarks/index.py [--copies N] [--repeat N] [--corpus DIR]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def corpus_files(corpus: Path) -> list[Path]:
    files = sorted(corpus.glob("*.dcm"))
    dd = corpus / "dicomdir_pydicom_ct_mr_2patients"
    if dd.is_dir():
        files += sorted(p for p in dd.rglob("*") if p.is_file() and p.name != "DICOMDIR")
    return files


def _cpu_of(pids: list[int]) -> float:
    """User + system CPU seconds of processes *pids* (Linux /proc; 0 elsewhere)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def large(sizes: list[int], repeat: int) -> int:
    """Serial vs the process pool (cold: started by the scan, as a first scan does; warm: reused),
    on folders of distinct files, interleaved rounds; median and spread, load average beside."""
    import statistics

    sys.path.insert(0, str(REPO / "benchmarks"))
    import largefolder

    from mdtviewer.dicom import index as index_mod
    from mdtviewer.dicom.index import StudyIndex

    workers = index_mod.default_workers()
    print(f"cores available: {workers}; pool thresholds: warm {index_mod.POOL_THRESHOLD}, "
          f"cold {index_mod.COLD_POOL_THRESHOLD} files")
    for n in sizes:
        folder = largefolder.build(n, quiet=True)
        StudyIndex().add_paths([folder], workers=1)  # page cache and imports warm
        runs: dict[str, list[float]] = {"serial": [], "pool cold": [], "pool warm": []}
        extra_mb: list[float] = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            StudyIndex().add_paths([folder], workers=1)
            runs["serial"].append(time.perf_counter() - t0)
            index_mod.shutdown_pool()
            t0 = time.perf_counter()
            ix = StudyIndex()
            ix._run = lambda files, w, prog, cancel, on_inst, off, tot, ix=ix: ix._run_pool(  # type: ignore[method-assign]
                files, w, prog, cancel, on_inst)
            ix.add_paths([folder], workers=workers)
            runs["pool cold"].append(time.perf_counter() - t0)
            pids = list(getattr(index_mod._POOL, "_processes", {}) or {})
            extra_mb.append(_rss_mb(pids))
            t0 = time.perf_counter()
            ix = StudyIndex()
            ix._run = lambda files, w, prog, cancel, on_inst, off, tot, ix=ix: ix._run_pool(  # type: ignore[method-assign]
                files, w, prog, cancel, on_inst)
            ix.add_paths([folder], workers=workers)
            runs["pool warm"].append(time.perf_counter() - t0)
        index_mod.shutdown_pool()
        ser = statistics.median(runs["serial"])
        line = [f"{n:>6} files:"]
        for key, ts in runs.items():
            med = statistics.median(ts)
            line.append(f"{key} {med:6.2f} s ({min(ts):.2f}-{max(ts):.2f}, x{ser / med:4.2f})")
        print("  ".join(line) + f"; workers' RSS {statistics.median(extra_mb):.0f} MB; "
              f"load {os.getloadavg()[0]:.2f}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=12)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--corpus", default=os.environ.get("MDTVIEWER_TESTDATA", str(REPO.parent / "shared" / "testdata")))
    ap.add_argument("--large", default="", help="sizes, e.g. 1000,10000,50000: serial vs process pool on folders "
                    "of corpus copies with new UIDs (benchmarks/largefolder.py), median of --repeat rounds")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    logging.getLogger("pydicom").setLevel(logging.ERROR)
    if args.large:
        return large([int(x) for x in args.large.split(",") if x], args.repeat)

    import pydicom

    from mdtviewer.dicom import index as index_mod
    from mdtviewer.dicom.index import StudyIndex, _read_one, default_workers

    src = corpus_files(Path(args.corpus))
    with tempfile.TemporaryDirectory(prefix="mdt-index-bench-") as tmp:
        folder = Path(tmp)
        for c in range(args.copies):
            d = folder / f"copy{c:03d}"
            d.mkdir()
            for i, f in enumerate(src):
                (d / f"{i:03d}_{f.name}").symlink_to(f)
        files = sorted(str(p) for p in folder.rglob("*") if p.is_symlink())
        n = len(files)

        def pydicom_loop() -> None:
            for p in files:
                try:
                    pydicom.dcmread(p, stop_before_pixels=True, force=True)
                except Exception:  # noqa: BLE001 - bad corpus files raise: count them anyway
                    pass

        def ours_serial() -> None:
            StudyIndex().add_paths([folder], workers=1)

        def ours_threads() -> None:
            with ThreadPoolExecutor(default_workers()) as ex:
                list(ex.map(_read_one, files, chunksize=16))

        def ours_pool() -> None:
            StudyIndex().add_paths([folder])

        # the pool path, whatever the folder size (the index itself uses it
        # from POOL_THRESHOLD files with a warm pool, COLD_POOL_THRESHOLD cold)
        index_mod.POOL_THRESHOLD = index_mod.COLD_POOL_THRESHOLD = 1
        ours_serial()  # imports and caches warm
        t0 = time.perf_counter()
        ours_pool()
        t_pool_cold = time.perf_counter() - t0
        # interleaved: the machine is shared, so each round times every route once
        runs: dict[str, list[float]] = {"pydicom": [], "serial": [], "threads": [], "pool": []}
        for _ in range(args.repeat):
            for key, fn in (("pydicom", pydicom_loop), ("serial", ours_serial), ("threads", ours_threads),
                            ("pool", ours_pool)):
                t0 = time.perf_counter()
                fn()
                runs[key].append(time.perf_counter() - t0)
        t_pydicom, t_serial, t_threads, t_pool = (min(runs[k]) for k in ("pydicom", "serial", "threads", "pool"))
        # CPU, which a shared machine does not distort: serial in this process,
        # the pool's in its worker processes (from /proc) plus this process
        c0 = time.process_time()
        ours_serial()
        cpu_serial = time.process_time() - c0
        pids = list(getattr(index_mod._POOL, "_processes", {}) or {})
        w0, c0 = _cpu_of(pids), time.process_time()
        t0 = time.perf_counter()
        ours_pool()
        wall_pool = time.perf_counter() - t0
        cpu_workers, cpu_main = _cpu_of(pids) - w0, time.process_time() - c0
        index_mod.shutdown_pool()

    w = default_workers()
    print(f"files: {n} ({len(src)} corpus files x {args.copies} copies), cores available: {w}")
    rows = [
        ("pydicom dcmread(stop_before_pixels) loop", t_pydicom),
        ("StudyIndex serial (1 worker)", t_serial),
        (f"StudyIndex threads ({w})", t_threads),
        (f"StudyIndex processes ({w}), first call incl. pool start", t_pool_cold),
        (f"StudyIndex processes ({w}), warm pool", t_pool),
    ]
    for label, t in rows:
        print(f"{label:<58} {t * 1000 / n:7.3f} ms/file  {n / t:8.0f} files/s  "
              f"x{t_pydicom / t:5.2f} vs pydicom loop")
    print(f"processes (warm) vs serial: x{t_serial / t_pool:.2f}; best of {args.repeat} interleaved rounds")
    if pids:
        print(f"CPU per file: serial {cpu_serial * 1000 / n:.3f} ms; pool {cpu_workers * 1000 / n:.3f} ms in "
              f"{len(pids)} workers + {cpu_main * 1000 / n:.3f} ms here (that run: {wall_pool * 1000 / n:.3f} ms/file "
              f"wall; with {len(pids)} free cores the wall time approaches worker CPU / {len(pids)})")
    try:
        load = os.getloadavg()[0]
        print(f"load average during the run: {load:.2f} (other work on this machine slows the pool first)")
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
