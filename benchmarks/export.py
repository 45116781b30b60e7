"""Teaching export speed: de-identify (+ mask, MP4, encrypted archive) every corpus ultrasound file.

Target (MDT preparation on a 2-core machine): a typical vascular study of
~20 images and cines exports de-identified and masked in under 10 s, and an
encrypted archive of it adds under 5 s.  Prints seconds and MB/s per mode.

    .venv/bin/python benchmarks/export.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
warnings.filterwarnings("ignore")

TESTDATA = Path(
    os.environ.get("MDTVIEWER_TESTDATA", Path(__file__).resolve().parent.parent.parent / "shared" / "testdata")
)


def main() -> int:
    os.environ.setdefault("MDTVIEWER_HOME", tempfile.mkdtemp(prefix="mdtv-bench-"))
    from mdtviewer.governance.export import ExportOptions, export, export_encrypted

    files = sorted(p for p in TESTDATA.glob("*.dcm") if p.name.startswith(("us_", "usmf_")))
    mb = sum(f.stat().st_size for f in files) / 1e6
    print(f"{len(files)} ultrasound files, {mb:.1f} MB")
    modes = [
        ("DICOM, de-identified", ExportOptions(), None),
        ("DICOM, de-identified + masked", ExportOptions(mask_burned_in=True, keep_rect=(0, 0, 299, 199)), None),
        (
            "MP4/PNG, de-identified + masked",
            ExportOptions(mask_burned_in=True, keep_rect=(0, 0, 299, 199), fmt="mp4"),
            None,
        ),
        ("DICOM masked, AES-256 7z", ExportOptions(mask_burned_in=True, keep_rect=(0, 0, 299, 199)), "benchmark pass"),
    ]
    for name, opts, pw in modes:
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            rep = export_encrypted(files, d, pw, opts) if pw else export(files, d, opts)
            dt = time.perf_counter() - t
        print(f"{name:34s} {dt:6.2f} s  {mb / dt:6.1f} MB/s  ({rep.n_ok}/{len(rep.items)} exported)")
    print("target: < 10 s de-identified + masked, < 5 s more for the archive")
    return 0


if __name__ == "__main__":
    sys.exit(main())
