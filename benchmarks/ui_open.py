"""Time from `mdtviewer open` to the first frame painted (offscreen), one cine and a 2x2 of four cines.

The issue asks for an 87-frame JPEG cine; the corpus's largest JPEG cine is
usmf_acuson_sequoia_jpeg_ybr422_65f_ftv.dcm (576x456, 65 frames, Frame Time
Vector), so that is what is timed.  Each case runs `python -m mdtviewer open
... --screenshot` in a fresh process (imports, Qt start-up, scan, decode and
paint included) and reads back the moment the last viewport was painted.
It also times an 87-frame 1016x708 JPEG cine (and four of them in 2x2) made
in a temp folder from the corpus frames, the size the issue names.

    .venv/bin/python benchmarks/ui_open.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TESTDATA = Path(os.environ.get("MDTVIEWER_TESTDATA", REPO.parent / "shared" / "testdata"))
ONE = ["usmf_acuson_sequoia_jpeg_ybr422_65f_ftv.dcm"]
FOUR = [
    "usmf_acuson_sequoia_jpeg_ybr422_65f_ftv.dcm",
    "usmf_hp_jpeg_ybr422_34f.dcm",
    "usmf_sonosite_jpeg_ybr422_30f.dcm",
    "usmf_palette_rle_10f.dcm",
]


def run_once(files: list[str | Path], layout: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "MDTVIEWER_BENCH": "1", "MDTVIEWER_HOME": tmp}
        args = [
            sys.executable,
            "-m",
            "mdtviewer",
            "open",
            *[str(TESTDATA / f) for f in files],  # absolute paths pass through
            "--layout",
            layout,
            "--screenshot",
            str(Path(tmp) / "shot.png"),
        ]
        t0 = time.time()
        res = subprocess.run(args, capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
        if res.returncode != 0:
            raise SystemExit(f"mdtviewer open failed: {res.stderr.strip()}")
        vals = dict(
            line.split(" ", 1) for line in res.stdout.splitlines() if line.startswith(("painted-at", "open-to"))
        )
        return float(vals["painted-at-epoch"]) - t0, float(vals["open-to-paint-seconds"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument(
        "--corpus-only", action="store_true", help="skip the 87-frame 1016x708 cines made from corpus frames"
    )
    args = ap.parse_args()
    print(f"corpus: {TESTDATA}")
    cases: list[tuple[str, list, str]] = [
        ("corpus: 1 cine, 65 frames JPEG 576x456", ONE, "1x1"),
        ("corpus: 2x2, four cines", FOUR, "2x2"),
    ]
    with tempfile.TemporaryDirectory() as big:
        if not args.corpus_only:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            sys.path.insert(0, str(REPO))
            from cine_playback import make_large_cines

            made = make_large_cines(Path(big), n=4, frames=87)
            cases += [
                ("made: 1 cine, 87 frames JPEG 1016x708", made[:1], "1x1"),
                ("made: 2x2, four 87-frame 1016x708 cines", made, "2x2"),
            ]
        for label, files, layout in cases:
            runs = [run_once(files, layout) for _ in range(args.runs)]
            total = [r[0] for r in runs]
            inapp = [r[1] for r in runs]
            print(
                f"{label}: process start -> frames painted  median {statistics.median(total):.2f} s "
                f"(min {min(total):.2f}, max {max(total):.2f});  "
                f"window open -> painted  median {statistics.median(inapp):.3f} s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
