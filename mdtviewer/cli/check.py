"""``mdtviewer check PATH... [--json] [--show-identifiers] [--show-paths] [--jobs N]``: can every file be used?

Argument parsing and printing only; the work is :func:`mdtviewer.imaging.check.check_paths`.
Prints one line per instance and totals, or with ``--json`` one JSON object
per instance (keys: see :mod:`mdtviewer.imaging.check`) and the totals on stderr.

Exit status: 0 every instance ok, 1 any instance (or unreadable file) not
ok, 2 usage error (no paths, a path that does not exist, a bad option).

No patient identifiers (name, ID, birth date, accession) are printed unless
``--show-identifiers`` is given; then name and ID are added.  Paths count:
folder and file names often spell them (a DICOMDIR file-set named by Patient
ID, an export folder named after the patient).  So each path is printed
relative to the PATH given that holds it, with every part that spells the
file's patient's ID, a name part or the birth date (or any patient's of the
run, where a part is exactly that) replaced by ``<patient-id>``, ``<name>`` or
``<birth-date>``; the rest of the path stays, enough to find the file.
``--show-paths`` (and ``--show-identifiers``) print the paths whole.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: placeholders for the parts of a path that spell an identifier
PLACEHOLDERS = {"id": "<patient-id>", "name": "<name>", "birth": "<birth-date>"}
#: a token this short is replaced only where it is a whole path part (a 3-letter name inside a word is not it)
_MIN_INSIDE = 4


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mdtviewer check",
        description="Index DICOM files/folders/DICOMDIRs and decode every frame of every instance.",
        epilog="Exit status: 0 every instance ok, 1 any not ok, 2 usage error. Duplicate SOP Instance UIDs "
               "are listed (duplicate_of) but do not fail the check. Patient names/IDs are shown only "
               "with --show-identifiers. Paths are printed relative to the PATH given, with any part that spells "
               "a patient's ID, name or birth date replaced by <patient-id>, <name> or <birth-date>; "
               "--show-paths prints them whole.")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--json", action="store_true", help="one JSON object per instance")
    p.add_argument("--show-identifiers", action="store_true",
                   help="include patient name and ID (and print paths whole)")
    p.add_argument("--show-paths", action="store_true",
                   help="print each path whole, as found (folder and file names may spell patient identifiers)")
    p.add_argument("--jobs", type=int, default=0, help="worker processes (default: all cores)")
    return p


def identifier_tokens(name: str, patient_id: str, birth_date: str) -> list[tuple[str, str]]:
    """(text, kind) a path must not show for a patient: the ID, each name part, the birth date as written."""
    out: list[tuple[str, str]] = []
    pid = " ".join(str(patient_id or "").split())
    if pid:
        out.append((pid, "id"))
    for part in re.split(r"[\^=,\s]+", str(name or "")):
        part = part.strip(".")
        if len(part) >= 2:
            out.append((part, "name"))
    b = str(birth_date or "").strip()
    if re.fullmatch(r"\d{8}", b):
        y, m, d = b[:4], b[4:6], b[6:]
        out += [(t, "birth") for t in (b, f"{y}-{m}-{d}", f"{y}_{m}_{d}", f"{y}.{m}.{d}", f"{d}{m}{y}",
                                       f"{d}-{m}-{y}", f"{d}.{m}.{y}", f"{d}_{m}_{y}")]
    # longest first: "DOE" must not be replaced inside "DOEJOHN" before "DOEJOHN" itself is
    return sorted(dict.fromkeys(out), key=lambda t: len(t[0]), reverse=True)


class PathShower:
    """How ``check`` prints a path: relative to the PATH given that holds it, identifier parts replaced."""

    def __init__(self, roots: Iterable[str], identifiers: dict[str, tuple[str, str, str]]):
        # as given and with links resolved (the index may report either)
        self.roots = sorted({f(r) for r in roots for f in (os.path.abspath, os.path.realpath)}, key=len,
                            reverse=True)
        self.ids = identifiers
        #: every patient's tokens of the run, for parts that are exactly one (an unreadable file's folder)
        self.exact: dict[str, str] = {}
        for name, pid, birth in identifiers.values():
            for text, kind in identifier_tokens(name, pid, birth):
                self.exact.setdefault(text.casefold(), kind)

    def relative(self, path: str) -> str:
        ap = os.path.abspath(path)
        for root in self.roots:
            if ap == root:
                return os.path.basename(ap)  # a file given by name: its name
            if ap.startswith(root.rstrip(os.sep) + os.sep):
                return os.path.relpath(ap, root)
        return os.path.basename(ap)

    def part(self, part: str, tokens: list[tuple[str, str]]) -> str:
        """One path part: a placeholder where it is an identifier (extension kept), else with every
        identifier of the file's patient that it contains replaced."""
        stem, ext = os.path.splitext(part)
        for whole, keep in ((part, ""), (stem, ext)):
            kind = self.exact.get(whole.casefold())
            if kind is not None:
                return PLACEHOLDERS[kind] + keep
        inside = [(t, k) for t, k in tokens if len(t) >= _MIN_INSIDE]
        if not inside:
            return part
        kinds = {t.casefold(): k for t, k in inside}
        pattern = "|".join(re.escape(t) for t, _k in inside)  # longest first (identifier_tokens' order)
        return re.sub(pattern, lambda m: PLACEHOLDERS[kinds.get(m.group(0).casefold(), "name")], part,
                      flags=re.IGNORECASE)

    def show(self, path: str, owner: str | None = None) -> str:
        """*path* as printed; *owner* the record whose patient's identifiers count (default: *path*'s own)."""
        name, pid, birth = self.ids.get(owner or path, ("", "", ""))
        tokens = identifier_tokens(name, pid, birth)
        parts = self.relative(path).split(os.sep)
        return os.sep.join(self.part(p, tokens) for p in parts)


def _shown(rec: dict[str, Any], paths: PathShower | None) -> dict[str, Any]:
    """*rec* with its paths as printed (whole when *paths* is None)."""
    if paths is None:
        return rec
    out = dict(rec)
    out["path"] = paths.show(rec["path"])
    if rec.get("duplicate_of"):
        out["duplicate_of"] = paths.show(rec["duplicate_of"], owner=rec["path"])
    return out


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


def read_report_notes(ds: Any) -> list[str]:
    """An SR/KOS read as ``sr show`` reads it (in a check worker): its notes; its reason raised (one line)."""
    from mdtviewer.sr.reader import read_sr

    return list(read_sr(ds).notes)


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

    report = check_paths(args.paths, show_identifiers=args.show_identifiers, jobs=args.jobs,
                         document_check=read_report_notes)
    whole = args.show_paths or args.show_identifiers
    paths = None if whole else PathShower(args.paths, report.path_identifiers)
    out = sys.stdout
    for rec in report.records:
        rec = _shown(rec, paths)
        out.write((json.dumps(rec) if args.json else _line(rec, args.show_identifiers)) + "\n")
    print(report.summary(), file=sys.stderr if args.json else out)
    out.flush()
    return 0 if report.n_bad == 0 else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
