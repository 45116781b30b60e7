"""C-STORE of many files: `mdtviewer pacs store` against DCMTK `storescu` (issue 12.2).

Targets: C-STORE of 1,000 files <= 1.5x ``storescu`` with Nagle off
(``TCP_NODELAY=1``, DCMTK at its best), and peak memory flat in the file count.

The files are copies of one corpus ultrasound file with new Study, Series and
SOP Instance UIDs (100 files a study), built once under
benchmarks/out/store_N (not committed; fixed-length UIDs patched into one
template, so building 10,000 takes a second).  A fresh Orthanc (127.0.0.1,
temp storage) receives them.  Each round sends the same N files with
``storescu -xy`` (it proposes JPEG baseline, the files' syntax) and with ``mdtviewer pacs store`` (a child process each,
interleaved); wall time and the child's peak RSS (``wait4`` rusage) are
printed as median and spread, with the load average.

Usage: .venv/bin/python benchmarks/store.py [--files 1000 --files 5000 ...] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from orthanc_peer import HOST, OUR_AET, OrthancPeer, free_port  # noqa: E402

CORPUS = Path(os.environ.get("MDTVIEWER_TESTDATA", REPO.parent / "shared" / "testdata"))
TEMPLATE = "us_atl_hdi5000_jpeg_baseline_ybr422.dcm"
OUT = REPO / "benchmarks" / "out"
PER_STUDY = 100


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def build_copies(src: Path, dest: Path, n: int, per_study: int = PER_STUDY) -> list[Path]:
    """*n* copies of *src* with new UIDs (fixed length, patched into the bytes)."""
    import pydicom

    stamp = dest.with_name(dest.name + ".complete")
    names = [f"{i // per_study:04d}/{i:06d}.dcm" for i in range(n)]
    if stamp.exists():
        return [dest / x for x in names]
    shutil.rmtree(dest, ignore_errors=True)
    ds = pydicom.dcmread(src)
    ph = {k: "2.25." + str(9 * 10**38 + j) for j, k in enumerate(("study", "series", "sop"))}
    ds.StudyInstanceUID, ds.SeriesInstanceUID = ph["study"], ph["series"]
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = ph["sop"]
    tmp = dest.with_suffix(".template")
    ds.save_as(tmp, enforce_file_format=True)
    template = tmp.read_bytes()
    tmp.unlink()
    import uuid

    def uid() -> bytes:
        return ("2.25." + str(uuid.uuid4().int).rjust(39, "1")[:39]).encode()

    study = series = b""
    for i, name in enumerate(names):
        if i % per_study == 0:
            study, series = uid(), uid()
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
        data = template.replace(ph["study"].encode(), study).replace(ph["series"].encode(), series)
        (dest / name).write_bytes(data.replace(ph["sop"].encode(), uid()))
    stamp.write_text("ok\n")
    return [dest / x for x in names]


def run_child(cmd: list[str], env: dict, cwd: Path) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MB) and exit status of one child."""
    with tempfile.TemporaryFile() as errf:  # a file, not a pipe: a child with much to say must not block
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=errf)
        _pid, status, ru = os.wait4(proc.pid, 0)
        dt = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        errf.seek(0)
        err = errf.read().decode(errors="replace")
    if proc.returncode != 0:
        print(f"  {cmd[0]} exit {proc.returncode}: {err.strip()[:300]}")
    return dt, ru.ru_maxrss / 1024, proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, action="append", help="file counts (default 1000 and 5000)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    counts = args.files or [1000, 5000]
    storescu = shutil.which("storescu")
    if not storescu:
        print("needs DCMTK storescu", file=sys.stderr)
        return 0
    with tempfile.TemporaryDirectory(prefix="mdtv-store-") as tmp:
        peer = OrthancPeer(Path(tmp) / "orthanc", modalities={"mdtviewer": (OUR_AET, free_port())})
        peer.start()
        try:
            env = dict(os.environ, TCP_NODELAY="1", MDTVIEWER_HOME=str(Path(tmp) / "home"))
            print(f"Orthanc on {HOST}:{peer.dicom_port}; load average before: {load()}")
            print(f"\n{'files':>6} {'tool':10} {'median s':>9} {'spread':>14} {'ms/file':>8} "
                  f"{'peak MB':>8}   ratio vs storescu (target <= 1.5)")
            for n in counts:
                folder = OUT / f"store_{n}"
                files = build_copies(CORPUS / TEMPLATE, folder, n)
                rel = [str(p.relative_to(folder)) for p in files]
                ours_cmd = [str(Path(sys.executable).parent / "mdtviewer"), "pacs", "store", *rel, "--host", HOST,
                            "--port", str(peer.dicom_port), "--called-aet", peer.aet, "--calling-aet", OUR_AET]
                dcmtk_cmd = [storescu, "-xy", "-aet", OUR_AET, "-aec", peer.aet, "+sd", "+r", "-nh", HOST,
                             str(peer.dicom_port), "."]
                res: dict[str, list[tuple[float, float]]] = {"storescu": [], "ours": []}
                loads = []
                for _ in range(args.repeat):
                    for name, cmd in (("storescu", dcmtk_cmd), ("ours", ours_cmd)):
                        dt, rss, _rc = run_child(cmd, env, folder)
                        res[name].append((dt, rss))
                    loads.append(load())
                med = {k: statistics.median(t for t, _ in v) for k, v in res.items()}
                for name in ("storescu", "ours"):
                    ts = [t for t, _ in res[name]]
                    rss = max(r for _, r in res[name])
                    print(f"{n:6d} {name:10} {med[name]:9.2f} {min(ts):6.2f}..{max(ts):<6.2f} "
                          f"{med[name] / n * 1000:8.2f} {rss:8.0f}   {med[name] / med['storescu']:.2f}x")
                print(f"       load after each round: {' | '.join(loads)}")
            print(f"\nOrthanc holds {peer.instance_count()} instances")
        finally:
            peer.stop(kill=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
