"""Colour decoder paths against their raw codec (issue 12.7 target: >= 0.8x).

For each case, every frame of one opened file is decoded by:

- ``raw``: the codec alone on the ready-made fragments, no colour conversion
  (pylibjpeg-rle ``decode_frame`` for RLE, CharLS via pyjpegls for JPEG-LS);
- ``ours``: ``FrameSource.frame(i)``, i.e. our decoder *including* the colour
  conversion to display RGB (YBR_FULL -> RGB, palette -> RGB).

Cases: the corpus RLE YBR_FULL file, the corpus RLE palette cine, and a
JPEG-LS palette cine built here (in a temporary folder, not committed) from
the RLE palette cine's indices, re-encoded losslessly with CharLS.

Runs are interleaved round-robin in this one process (load from other
processes hits both alike).  Printed: median ms per frame, spread
(min..max over the runs), ratio raw/ours (>= 0.8 is the target) and the
load average before and after.  Always exits 0: it prints figures.

Usage: .venv/bin/python benchmarks/colour.py [--repeat N] [--corpus DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
warnings.simplefilter("ignore")

import numpy as np  # noqa: E402
import pydicom  # noqa: E402
from pydicom.encaps import encapsulate, generate_frames  # noqa: E402

from mdtviewer.imaging.pixels import FrameSource  # noqa: E402

DEFAULT_CORPUS = Path(os.environ.get("MDTVIEWER_TESTDATA", REPO.parent / "shared" / "testdata"))
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def fragments(ds) -> list[bytes]:
    n = int(ds.get("NumberOfFrames", 1) or 1)
    return list(generate_frames(ds.PixelData, number_of_frames=n))


def build_jpegls_palette(src: Path, out: Path) -> Path:
    """The RLE palette cine's index frames, re-encoded as JPEG-LS lossless."""
    import jpeg_ls

    ds = pydicom.dcmread(src)
    fs = FrameSource(src)
    frames = [jpeg_ls.encode(np.ascontiguousarray(fs._decode(i).array)).tobytes() for i in range(fs.n_frames)]
    fs.close()
    ds.PixelData = encapsulate(frames)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = JPEG_LS_LOSSLESS
    ds.save_as(out, enforce_file_format=True)
    return out


def case_rle(path: Path):
    from rle.utils import decode_frame

    ds = pydicom.dcmread(path)
    frags = fragments(ds)
    n_px = ds.Rows * ds.Columns

    def raw():
        for f in frags:
            decode_frame(f, n_px, ds.BitsAllocated, "<")

    return ds, frags, raw


def case_jpegls(path: Path):
    import jpeg_ls

    ds = pydicom.dcmread(path)
    frags = fragments(ds)

    def raw():
        for f in frags:
            jpeg_ls.decode(np.frombuffer(f, dtype=np.uint8))

    return ds, frags, raw


def measure(label: str, path: Path, kind: str, repeat: int) -> dict:
    ds, frags, raw = (case_rle if kind == "rle" else case_jpegls)(path)
    fs = FrameSource(path)
    n = fs.n_frames

    def ours():
        for i in range(n):
            fs.frame(i)

    raw()
    ours()  # warm: palette table, imports
    times: dict[str, list[float]] = {"raw": [], "ours": []}
    for _ in range(repeat):
        for name, fn in (("raw", raw), ("ours", ours)):
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) / n * 1000)
    fs.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "label": label,
        "size": f"{ds.Columns}x{ds.Rows}x{n}",
        "pi": str(ds.PhotometricInterpretation),
        "raw": med["raw"],
        "ours": med["ours"],
        "raw_spread": (min(times["raw"]), max(times["raw"])),
        "ours_spread": (min(times["ours"]), max(times["ours"])),
        "ratio": med["raw"] / med["ours"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = ap.parse_args()
    print(f"load average before: {load()}  (2-core machine shared with other work)")
    with tempfile.TemporaryDirectory(prefix="mdt-colour-") as tmp:
        jls = build_jpegls_palette(args.corpus / "usmf_palette_rle_10f.dcm", Path(tmp) / "palette_jpegls.dcm")
        cases = [
            ("RLE YBR_FULL", args.corpus / "us_acuson_sequoia_ybr_full_rle.dcm", "rle"),
            ("RLE palette cine", args.corpus / "usmf_palette_rle_10f.dcm", "rle"),
            ("RLE palette (CX50)", args.corpus / "us_philips_cx50_palette_rle.dcm", "rle"),
            ("JPEG-LS palette cine (built)", jls, "jpegls"),
        ]
        print(
            f"\n{'case':30} {'size':>12} {'photometric':>14} | {'raw ms':>7} {'spread':>13} | "
            f"{'ours ms':>7} {'spread':>13} | ratio (target >= 0.80)"
        )
        for label, path, kind in cases:
            r = measure(label, path, kind, args.repeat)
            rs, os_ = r["raw_spread"], r["ours_spread"]
            print(
                f"{r['label']:30} {r['size']:>12} {r['pi']:>14} | {r['raw']:7.3f} {rs[0]:6.2f}..{rs[1]:<6.2f} | "
                f"{r['ours']:7.3f} {os_[0]:6.2f}..{os_[1]:<6.2f} | {r['ratio']:.2f}x"
                f"{'' if r['ratio'] >= 0.8 else '  (below target)'}"
            )
    print(f"\nload average after: {load()}")
    print("raw = codec only on the fragments (no colour); ours = FrameSource.frame() incl. conversion to RGB;")
    print(f"medians of {args.repeat} interleaved runs, ms per frame; spread = min..max")
    return 0


if __name__ == "__main__":
    sys.exit(main())
