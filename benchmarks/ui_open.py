"""Time from `mdtviewer open` to the first frame painted (offscreen), against a bare PySide6 window.

The issue asks for an 87-frame JPEG cine; the corpus's largest JPEG cine is
usmf_acuson_sequoia_jpeg_ybr422_65f_ftv.dcm (576x456, 65 frames, Frame Time
Vector), so that is what is timed.  Each case runs `python -m mdtviewer open
... --screenshot` in a fresh process (imports, Qt start-up, scan, decode and
paint included) and reads back the moment the last viewport was painted
(``painted-at-epoch`` is taken when the frames are painted, before the
screenshot's extras: thumbnails, report panel).  The peer, run interleaved
with every case: a bare PySide6 window (``QApplication`` + ``QWidget``,
process start to its first ``paintEvent``), the least any Qt application can
take here.  A second peer, also interleaved, is the stack's floor
(:data:`FLOOR`): PySide6, numpy, pydicom and simplejpeg imported, frame 1 of
the cine decoded and shown in a bare main window, with none of our code: no
viewer on this stack can paint sooner.  Bytecode is cached (``PYTHONDONTWRITEBYTECODE`` is removed from
the children's environment: an installed app has its ``.pyc``).
Prints per run the 1-minute load average, then per case the median and
spread (min-max) and the ratio of medians against the bare window and the floor.
Targets (issue 12.5): first frame of a cine painted <= 0.35 s from process
start, and <= 2x the bare window.  ``--large`` adds an 87-frame 1016x708
JPEG cine (and four of them in 2x2) made from the corpus frames.
``--baseline DIR`` times another revision in the same runs, interleaved
(DIR holds its ``mdtviewer`` package: ``git archive REV mdtviewer | tar -x -C DIR``),
for before/after figures taken under the same load.
To see where start-up goes: ``python -X importtime -m mdtviewer open FILE --screenshot x.png``.

    .venv/bin/python benchmarks/ui_open.py [--runs N] [--large] [--baseline DIR]
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


BARE = r"""
import time
from PySide6.QtWidgets import QApplication, QWidget

class W(QWidget):
    def paintEvent(self, ev):
        print(f"painted-at-epoch {time.time():.6f}", flush=True)
        QApplication.instance().quit()

app = QApplication([])
w = W()
w.resize(1600, 900)
w.show()
app.exec()
"""


#: The stack's floor: what any viewer built on this stack pays before its first frame, with none of our code.
#: PySide6 + numpy + pydicom (imported as the app does, without requests/tqdm) + simplejpeg, the file read by
#: pydicom, frame 1's fragments decoded by libjpeg-turbo and shown in a 1600x900 QMainWindow.
FLOOR = r"""
import sys, time
for name in ("requests", "tqdm"):
    sys.modules[name] = None
import pydicom
for name in ("requests", "tqdm"):
    del sys.modules[name]
import numpy as np
import simplejpeg
from pydicom.encaps import generate_frames
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow

class L(QLabel):
    def paintEvent(self, ev):
        super().paintEvent(ev)
        print(f"painted-at-epoch {time.time():.6f}", flush=True)
        QApplication.instance().quit()

app = QApplication([])
ds = pydicom.dcmread(sys.argv[1], defer_size=4096)
frag = next(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1) or 1)))
a = simplejpeg.decode_jpeg(frag, colorspace="RGB")
img = QImage(a.data, a.shape[1], a.shape[0], a.strides[0], QImage.Format.Format_RGB888)
w = QMainWindow()
lab = L()
lab.setPixmap(QPixmap.fromImage(img))
w.setCentralWidget(lab)
w.resize(1600, 900)
w.show()
app.exec()
"""


def _env(tmp: str) -> dict[str, str]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "MDTVIEWER_BENCH": "1", "MDTVIEWER_HOME": tmp}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_bare() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        res = subprocess.run([sys.executable, "-c", BARE], capture_output=True, text=True, env=_env(tmp), timeout=120)
        line = next(x for x in res.stdout.splitlines() if x.startswith("painted-at-epoch"))
        return float(line.split()[1]) - t0


def run_floor(file: Path) -> float:
    """Process start -> first frame painted by the stack alone (:data:`FLOOR`)."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        res = subprocess.run(
            [sys.executable, "-c", FLOOR, str(file)], capture_output=True, text=True, env=_env(tmp), timeout=120
        )
        line = next(x for x in res.stdout.splitlines() if x.startswith("painted-at-epoch"))
        return float(line.split()[1]) - t0


def run_once(files: list[str | Path], layout: str, checkout: Path = REPO) -> tuple[float, float]:
    """One `mdtviewer open` of *checkout* (this one, or ``--baseline DIR``: another revision's tree)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = _env(tmp)
        if checkout != REPO:
            env["PYTHONPATH"] = str(checkout)
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
        res = subprocess.run(args, capture_output=True, text=True, env=env, cwd=checkout, timeout=300)
        if res.returncode != 0:
            raise SystemExit(f"mdtviewer open failed: {res.stderr.strip()}")
        vals = dict(
            line.split(" ", 1) for line in res.stdout.splitlines() if line.startswith(("painted-at", "open-to"))
        )
        return float(vals["painted-at-epoch"]) - t0, float(vals["open-to-paint-seconds"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--large", action="store_true", help="add the 87-frame 1016x708 cines made from corpus frames")
    ap.add_argument("--baseline", type=Path, metavar="DIR",
                    help="also time another revision, interleaved: a folder holding its mdtviewer package "
                         "(e.g. git archive REV mdtviewer | tar -x -C DIR)")
    args = ap.parse_args()
    print(f"corpus: {TESTDATA}")
    cases: list[tuple[str, list, str, Path]] = [
        ("1 cine, 65 frames JPEG 576x456", ONE, "1x1", REPO),
        ("2x2, four cines", FOUR, "2x2", REPO),
    ]
    if args.baseline:
        base = args.baseline.resolve()
        cases += [("baseline: 1 cine", ONE, "1x1", base), ("baseline: 2x2", FOUR, "2x2", base)]
    for *_, checkout in cases:
        run_once(ONE, "1x1", checkout)  # warm: bytecode written, files in the page cache (not counted)
    run_bare()
    run_floor(TESTDATA / ONE[0])
    with tempfile.TemporaryDirectory() as big:
        if args.large:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            sys.path.insert(0, str(REPO))
            from cine_playback import make_large_cines

            made = make_large_cines(Path(big), n=4, frames=87)
            cases += [
                ("made: 1 cine, 87 frames JPEG 1016x708", made[:1], "1x1", REPO),
                ("made: 2x2, four 87-frame 1016x708 cines", made, "2x2", REPO),
            ]
        bare: list[float] = []
        floor: list[float] = []
        total: dict[str, list[float]] = {c[0]: [] for c in cases}
        inapp: dict[str, list[float]] = {c[0]: [] for c in cases}
        loads: list[float] = []
        for r in range(args.runs):  # interleaved: bare window, then every case, each run
            load = os.getloadavg()[0]
            loads.append(load)
            b = run_bare()
            bare.append(b)
            f = run_floor(TESTDATA / ONE[0])
            floor.append(f)
            line = f"run {r + 1}: load {load:4.2f}  bare window {b:.3f} s  stack floor {f:.3f} s"
            for label, files, layout, checkout in cases:
                t, i = run_once(files, layout, checkout)
                total[label].append(t)
                inapp[label].append(i)
                line += f"  | {label}: {t:.3f} s"
            print(line, flush=True)

    def fmt(xs: list[float]) -> str:
        return f"median {statistics.median(xs):.3f} s ({min(xs):.3f}-{max(xs):.3f})"

    print(f"\nload average: median {statistics.median(loads):.2f} ({min(loads):.2f}-{max(loads):.2f}); "
          f"{args.runs} interleaved runs")
    print(f"  bare PySide6 window, process start -> painted: {fmt(bare)}")
    print(f"  stack floor (PySide6 + numpy + pydicom + simplejpeg, frame 1 of {ONE[0]} in a bare window): "
          f"{fmt(floor)}, {statistics.median(floor) / statistics.median(bare):.2f}x bare window")
    for label, *_ in cases:
        ratio = statistics.median(total[label]) / statistics.median(bare)
        print(f"  {label}: process start -> frames painted {fmt(total[label])}, {ratio:.2f}x bare window "
              f"(targets <= 0.35 s, <= 2x), "
              f"{statistics.median(total[label]) / statistics.median(floor):.2f}x the stack floor;  "
              f"window open -> painted {fmt(inapp[label])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
