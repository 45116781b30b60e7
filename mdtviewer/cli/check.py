"""``mdtviewer check PATH... [--json] [--show-identifiers] [--jobs N]``: can every file be used?

Argument parsing and printing only; the work is :func:`mdtviewer.imaging.check.check_paths`.
Prints one line per instance and totals, or with ``--json`` one JSON object
per instance (keys: see :mod:`mdtviewer.imaging.check`) and the totals on stderr.

Exit status: 0 every instance ok, 1 any instance (or unreadable file) not
ok, 2 usage error (no paths, a path that does not exist, a bad option).

No patient identifiers (name, ID, birth date, accession) are printed unless
``--show-identifiers`` is given; then name and ID are added.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mdtviewer check",
        description="Index DICOM files/folders/DICOMDIRs and decode every frame of every instance.",
        epilog="Exit status: 0 every instance ok, 1 any not ok, 2 usage error. Duplicate SOP Instance UIDs "
               "are listed (duplicate_of) but do not fail the check. Patient names/IDs are shown only "
               "with --show-identifiers.")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--json", action="store_true", help="one JSON object per instance")
    p.add_argument("--show-identifiers", action="store_true", help="include patient name and ID")
    p.add_argument("--jobs", type=int, default=0, help="worker processes (default: all cores)")
    return p


def _line(rec: dict[str, Any], show_ids: bool) -> str:
    status = "OK  " if rec["ok"] else "FAIL"
    name = rec["path"]
    kind = rec["kind"] or "-"
    parts = [status, f"{kind:<8}", name]
    if rec["frames"]:
        parts.append(f"{rec['columns']}x{rec['rows']} {rec['photometric']} "
                     f"{rec['frames_decoded']}/{rec['frames']} frames")
        if rec["frame_times_ms"]:
            parts.append(f"timing {rec['timing_source']} {rec['frame_times_ms'][0]:g} ms")
    if rec["us_regions"]:
        parts.append(f"{rec['us_regions']} US region(s)")
    if rec.get("duplicate_of"):
        parts.append(f"DUPLICATE of {Path(rec['duplicate_of']).name}")
    if rec["error"]:
        parts.append(f"-- {rec['error']}")
    elif rec.get("note"):
        parts.append(f"(note: {rec['note']})")
    if show_ids and rec.get("patient_id") is not None:
        parts.append(f"[patient {rec.get('patient_name', '')} / {rec.get('patient_id', '')}]")
    parts.append(f"{rec['decode_seconds']:.2f} s")
    return "  ".join(parts)


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help exits 0, bad usage 2
        return int(exc.code or 0)
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        print(f"mdtviewer check: no such file or folder: {missing[0]}", file=sys.stderr)
        return 2
    from mdtviewer.imaging.check import check_paths

    report = check_paths(args.paths, show_identifiers=args.show_identifiers, jobs=args.jobs)
    out = sys.stdout
    for rec in report.records:
        out.write((json.dumps(rec) if args.json else _line(rec, args.show_identifiers)) + "\n")
    print(report.summary(), file=sys.stderr if args.json else out)
    out.flush()
    return 0 if report.n_bad == 0 else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
