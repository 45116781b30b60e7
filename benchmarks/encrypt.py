"""`export --encrypt` archive step against the `7z` command (issue 12.7 target: <= 1.5x).

The input is the de-identified, masked export of every corpus ultrasound file
(what ``mdtviewer export --deidentify --mask-burned-in --encrypt`` packs),
built once under benchmarks/out/encrypt_src (not committed).  Timed,
interleaved round-robin in this one process tree:

- ``ours``: ``governance.archive.write_archive`` (the 7z command with the
  password on its stdin when 7z is installed; what the app does);
- ``py7zr``: ``write_archive_py7zr`` (the fallback, LZMA2 preset 1 + 7zAES);
- ``7z``: the peer, ``7z a -t7z -m0=LZMA2 -mx=1 -mhe=on -pPASSWORD`` on the
  same files (the same filters; the benchmark password is on its command line).

Prints median seconds, spread (min..max), archive sizes, the ratios against
the 7z command and the load average.  Always exits 0.

Usage: .venv/bin/python benchmarks/encrypt.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
warnings.simplefilter("ignore")

CORPUS = Path(os.environ.get("MDTVIEWER_TESTDATA", REPO.parent / "shared" / "testdata"))
OUT = REPO / "benchmarks" / "out"
PASSWORD = "benchmark password"


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def build_source() -> Path:
    src = OUT / "encrypt_src"
    stamp = OUT / "encrypt_src.complete"
    if stamp.exists():
        return src
    os.environ.setdefault("MDTVIEWER_HOME", tempfile.mkdtemp(prefix="mdtv-bench-"))
    from mdtviewer.governance.export import ExportOptions, export

    files = sorted(p for p in CORPUS.glob("*.dcm") if p.name.startswith(("us_", "usmf_")))
    import shutil

    shutil.rmtree(src, ignore_errors=True)
    export(files, src, ExportOptions(mask_burned_in=True, keep_rect=(0, 0, 299, 199)))
    stamp.write_text("ok\n")
    return src


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    from mdtviewer.governance import archive

    src = build_source()
    files = sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file())
    mb = sum((src / f).stat().st_size for f in files) / 1e6
    exe = archive.seven_zip()
    if not exe:
        print("7z is not installed (Debian p7zip-full): nothing to compare against")
        return 0
    print(f"{len(files)} files, {mb:.1f} MB; load average before: {load()}")
    with tempfile.TemporaryDirectory(prefix="mdtv-enc-") as tmp:
        t = Path(tmp)
        listing = t / "files.txt"
        listing.write_text("".join(f + "\n" for f in files))

        def peer() -> Path:
            out = t / "peer.7z"
            out.unlink(missing_ok=True)
            subprocess.run(
                [exe, "a", "-t7z", "-m0=LZMA2", "-mx=1", "-mhe=on", f"-p{PASSWORD}", "-bso0", "-bsp0",
                 str(out), f"@{listing}"],
                cwd=src, check=True, stdin=subprocess.DEVNULL, capture_output=True,
            )
            return out

        def ours() -> Path:
            return archive.write_archive(src, t / "ours.7z", PASSWORD)

        def py7zr() -> Path:
            return archive.write_archive_py7zr(src, t / "py7zr.7z", PASSWORD)

        runs = [("7z command", peer), ("ours (write_archive)", ours), ("py7zr fallback", py7zr)]
        times: dict[str, list[float]] = {n: [] for n, _ in runs}
        sizes: dict[str, float] = {}
        loads = []
        for _ in range(args.repeat):
            for name, fn in runs:
                t0 = time.perf_counter()
                path = fn()
                times[name].append(time.perf_counter() - t0)
                sizes[name] = path.stat().st_size / 1e6
            loads.append(load())
        # check ours opens with the password (not timed)
        assert archive.list_archive(t / "ours.7z", PASSWORD) == files
    med = {n: statistics.median(v) for n, v in times.items()}
    print(f"\n{'writer':22} {'median s':>9} {'spread':>14} {'MB':>6}  ratio vs 7z (target <= 1.5)")
    for name, _ in runs:
        v = times[name]
        print(f"{name:22} {med[name]:9.2f} {min(v):6.2f}..{max(v):<6.2f} {sizes[name]:6.1f}  "
              f"{med[name] / med['7z command']:.2f}x")
    print(f"\nload average after each round: {' | '.join(loads)}")
    print(f"medians of {args.repeat} interleaved rounds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
