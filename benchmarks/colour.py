"""Colour decoder paths against their raw codec (issue 12.7 target: >= 0.8x).

For each case, every frame of one opened file is decoded by:

- ``raw``: the codec alone on the ready-made fragments, no colour conversion
  (pylibjpeg-rle ``decode_frame`` for RLE, CharLS via pyjpegls for JPEG-LS);
- ``ours``: ``FrameSource.display_frame(i)``, the path the viewport's decode
  workers use: our decoder *including* the colour conversion to the form
  handed to Qt (YBR_FULL -> RGB888; 8-bit palette -> packed RGB32 0xFFRRGGBB);
- ``rgb``: ``FrameSource.frame(i)``, the 3-byte RGB every other consumer
  (export, thumbnails, masking, checks) reads (for 8-bit palettes this was
  also the viewport's form before the packed RGB32 form).

Then the Qt paint cost of each form, since moving work out of the decoder
into the paint would only hide it: ``QPainter.drawImage`` of the display form
and of the RGB888 form of the same frame onto an offscreen
ARGB32_Premultiplied target (what the raster backing store is), at 1:1 and
scaled x1.6 with smooth transform on (paused) and off (playing); for 8-bit
palettes also of an Indexed8 image of the same frame (indices + colour table:
the form that would keep the decoder at 1 byte a pixel, not used because Qt
converts it at every paint, on the UI thread).

Cases: the corpus RLE YBR_FULL file, the corpus RLE palette cine, and a
JPEG-LS palette cine built here (in a temporary folder, not committed) from
the RLE palette cine's indices, re-encoded losslessly with CharLS.

Runs are interleaved round-robin in this one process (load from other
processes hits all alike); each path keeps its last 16 decoded frames, as the
viewport's frame cache keeps them.  Printed: median ms per frame, spread
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
from collections import deque
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
warnings.simplefilter("ignore")

import numpy as np  # noqa: E402
import pydicom  # noqa: E402
from pydicom.encaps import encapsulate, generate_frames  # noqa: E402

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from mdtviewer.imaging.colour import palette_rgb32, palette_table  # noqa: E402
from mdtviewer.imaging.pixels import FrameSource  # noqa: E402

DEFAULT_CORPUS = Path(os.environ.get("MDTVIEWER_TESTDATA", REPO.parent / "shared" / "testdata"))
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
#: decoded frames each path keeps (like the frame cache) while it is timed
HELD = 16


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
        return [decode_frame(f, n_px, ds.BitsAllocated, "<") for f in frags]

    return ds, frags, raw


def case_jpegls(path: Path):
    import jpeg_ls

    ds = pydicom.dcmread(path)
    frags = fragments(ds)

    def raw():
        return [jpeg_ls.decode(np.frombuffer(f, dtype=np.uint8)) for f in frags]

    return ds, frags, raw


def measure(label: str, path: Path, kind: str, repeat: int) -> dict:
    ds, frags, raw = (case_rle if kind == "rle" else case_jpegls)(path)
    fs = FrameSource(path)
    n = fs.n_frames

    def ours():
        return [fs.display_frame(i) for i in range(n)]

    def rgb():
        return [fs.frame(i) for i in range(n)]

    runs = (("raw", raw), ("ours", ours), ("rgb", rgb))
    # each path keeps its last HELD frames, as the frame cache keeps decoded frames (an output dropped at
    # once gives its pages back to the system and the next one faults them in again: that measured the
    # allocator, up to +1.5 ms a 1-2 MB frame and bimodal from run to run, not the decoder)
    held = {name: deque(fn(), maxlen=HELD) for name, fn in runs}  # warm: palette table, imports
    times: dict[str, list[float]] = {name: [] for name, _ in runs}
    for _ in range(repeat):
        for name, fn in runs:
            t0 = time.perf_counter()
            out = fn()
            times[name].append((time.perf_counter() - t0) / n * 1000)
            held[name].extend(out)
    del held, out
    disp, rgb0 = fs.display_frame(0), fs.frame(0)
    indexed = None
    if fs.photometric == "PALETTE COLOR" and ds.BitsAllocated == 8:  # the Indexed8 alternative, for its paint cost
        table = palette_rgb32(palette_table(ds, ds.BitsStored, ds.BitsAllocated))
        indexed = (np.ascontiguousarray(fs._decode(0).array), [int(v) for v in table])
    fs.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "label": label,
        "size": f"{ds.Columns}x{ds.Rows}x{n}",
        "pi": str(ds.PhotometricInterpretation),
        "med": med,
        "spread": {k: (min(v), max(v)) for k, v in times.items()},
        "ratio": med["raw"] / med["ours"],
        "ratio_rgb": med["raw"] / med["rgb"],
        "disp": disp,
        "rgb0": rgb0,
        "indexed": indexed,
    }


def paint_costs(disp: np.ndarray, rgb: np.ndarray, repeat: int,
                indexed=None) -> list[tuple[str, dict[str, list[float]]]]:
    """ms per drawImage of the display form and of the RGB888 form (and of an Indexed8 image of the
    same frame, when given), interleaved, per target size/mode."""
    from PySide6.QtCore import QRectF
    from PySide6.QtGui import QImage, QPainter

    from mdtviewer.ui.viewer.viewport import to_qimage

    h, w = rgb.shape[:2]
    images = {"display form": to_qimage(disp), "RGB888": to_qimage(rgb)}
    if indexed is not None:
        idx, colours = indexed
        images["Indexed8"] = QImage(idx.data, w, h, idx.strides[0], QImage.Format.Format_Indexed8)
        images["Indexed8"].setColorTable(colours)
    out = []
    for label, scale, smooth in (("1:1", 1.0, False), ("x1.6 smooth", 1.6, True), ("x1.6 fast", 1.6, False)):
        tw, th = int(w * scale), int(h * scale)
        target = QImage(tw, th, QImage.Format.Format_ARGB32_Premultiplied)
        times: dict[str, list[float]] = {k: [] for k in images}
        for _ in range(repeat * 5):
            for name, img in images.items():
                t0 = time.perf_counter()
                p = QPainter(target)
                p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
                p.drawImage(QRectF(0, 0, tw, th), img, QRectF(0, 0, w, h))
                p.end()
                times[name].append((time.perf_counter() - t0) * 1000)
        out.append((label, times))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = ap.parse_args()
    print(f"load average before: {load()}  (2-core machine shared with other work)")
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841  (QPainter needs one)
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
            f"{'ours ms':>7} {'spread':>13} | ratio (>= 0.80) | {'rgb ms':>7} {'spread':>13} | ratio"
        )
        results = []
        for label, path, kind in cases:
            r = measure(label, path, kind, args.repeat)
            results.append(r)
            sp, md = r["spread"], r["med"]
            cells = {k: f"{md[k]:7.3f} {sp[k][0]:6.2f}..{sp[k][1]:<6.2f}" for k in md}
            print(
                f"{r['label']:30} {r['size']:>12} {r['pi']:>14} | {cells['raw']} | {cells['ours']} | "
                f"{r['ratio']:.2f}x{'' if r['ratio'] >= 0.8 else ' (below)':8}  | "
                f"{cells['rgb']} | {r['ratio_rgb']:.2f}x"
            )
        print(f"\nload average: {load()}")
        print("\nQt paint, ms per drawImage of one frame (offscreen raster), median (min..max):")
        print(f"{'case':30} {'form':>14} | {'target':>12} | {'display form':>22} | {'RGB888':>22} | "
              f"{'Indexed8 (not used)':>22}")
        for r in results:
            form = "RGB32 packed" if r["disp"].dtype == np.uint32 else "RGB888"
            for target, times in paint_costs(r["disp"], r["rgb0"], args.repeat, r["indexed"]):
                cells = []
                for name in ("display form", "RGB888", "Indexed8"):
                    v = times.get(name)
                    cells.append(f"{statistics.median(v):6.3f} ({min(v):5.2f}..{max(v):5.2f})" if v else "-")
                print(f"{r['label']:30} {form:>14} | {target:>12} | {cells[0]:>22} | {cells[1]:>22} | {cells[2]:>22}")
    print(f"\nload average after: {load()}")
    print("raw = codec only on the fragments (no colour); ours = FrameSource.display_frame() incl. conversion to")
    print("the form the viewport hands Qt; rgb = FrameSource.frame() (3-byte RGB, every other consumer);")
    print(f"medians of {args.repeat} interleaved runs, ms per frame; spread = min..max")
    return 0


if __name__ == "__main__":
    sys.exit(main())
