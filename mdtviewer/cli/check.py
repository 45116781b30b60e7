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
relative to the PATH given that holds it, with every token of a part (split
where letters meet digits or punctuation) that spells a patient's ID, birth
date or a name part of four or more letters, of any patient of the run (the
PATIENT records of a DICOMDIR whose files are missing count), replaced by
``<patient-id>``, ``<name>`` or ``<birth-date>``.  Common words and DICOM
terms (:data:`STOP_WORDS`: test, anon, MR1 ...) are never masked as names;
shorter name parts only beside another identifier of the same patient, or as
a whole part for the file's own patient.  The rest of the path stays, enough
to find the file.
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

#: common words and DICOM terms that are never masked as a name part, whoever is called so (a patient
#: "Test^S R" must not turn every "test" of a file name into <name>, nor "CompressedSamples^MR1" every
#: series folder MR1); a name part is looked up here with its trailing digits dropped ("MR1" -> "mr")
STOP_WORDS = frozenset({
    "test", "tests", "testing", "anon", "anonym", "anonymous", "anonymized", "anonymised", "pseudonym", "patient",
    "patients", "name", "names", "first", "last", "firstname", "lastname", "given", "family", "middle", "prefix",
    "suffix", "unknown", "none", "null", "nobody", "study", "studies", "series", "image", "images", "img",
    "dicom", "dcm", "dicomdir", "report", "reports", "data", "export", "exports", "case", "cases", "scan",
    "scans", "exam", "exams", "sample", "samples", "example", "examples", "demo", "phantom", "male", "female",
    "other", "mr", "ct", "us", "cr", "dx", "sr", "nm", "pt", "xa", "rf", "mg", "ot", "ko", "pr", "seg", "rt",
    "io", "px", "es", "dr", "xc", "sm", "mri", "echo", "doppler", "duplex", "cardio", "carotid", "vascular",
    "cine", "loop",
})
#: shortest Patient ID masked inside a path part (a shorter one only where it is the whole part)
_MIN_ID = 3
#: shortest name part masked wherever it is a token (a shorter one only beside that patient's other
#: identifiers, or as the whole part for the file's own patient); single letters never
_MIN_NAME = 4
#: a name part of digits only counts when it is this long (a year or a number is not a name)
_MIN_NAME_DIGITS = 6


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mdtviewer check",
        description="Index DICOM files/folders/DICOMDIRs and decode every frame of every instance.",
        epilog="Exit status: 0 every instance ok, 1 any not ok, 2 usage error. Duplicate SOP Instance UIDs "
               "are listed (duplicate_of) but do not fail the check. Patient names/IDs are shown only "
               "with --show-identifiers. Paths are printed relative to the PATH given, with the tokens that spell "
               "a patient's ID, name or birth date replaced by <patient-id>, <name> or <birth-date> (common "
               "words and DICOM terms such as test or MR1 are not names); "
               "--show-paths prints them whole.")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--json", action="store_true", help="one JSON object per instance")
    p.add_argument("--show-identifiers", action="store_true",
                   help="include patient name and ID (and print paths whole)")
    p.add_argument("--show-paths", action="store_true",
                   help="print each path whole, as found (folder and file names may spell patient identifiers)")
    p.add_argument("--jobs", type=int, default=0, help="worker processes (default: all cores)")
    return p


def _stop(part: str) -> bool:
    p = part.casefold()
    return p in STOP_WORDS or p.rstrip("0123456789") in STOP_WORDS


def identifier_tokens(name: str, patient_id: str, birth_date: str) -> list[tuple[str, str, bool]]:
    """(text, kind, strong) a path must not show for a patient.

    Strong: the Patient ID (3+ characters), the birth date as written (``19500314``, ``1950-03-14``,
    ``14.03.1950`` ...), each name part of 4+ letters that is not a common word or DICOM term
    (:data:`STOP_WORDS`), and two name parts run together (``DoeJohn``, ``JohnDoe``).  Weak: name parts
    of 2-3 letters and a Patient ID of 1-2 characters, masked only where they cannot be a common word by
    chance (see :meth:`PathShower.show`).
    """
    out: list[tuple[str, str, bool]] = []
    pid = " ".join(str(patient_id or "").split())
    if pid:
        out.append((pid, "id", len(pid) >= _MIN_ID))
    parts = [p for p in re.split(r"[\W_]+", str(name or "")) if p]
    words: list[str] = []
    for part in parts:
        if part.isdigit():
            if len(part) >= _MIN_NAME_DIGITS:
                out.append((part, "name", True))
            continue
        if len(part) < 2 or _stop(part):
            continue
        out.append((part, "name", len(part) >= _MIN_NAME))
        words.append(part)
    for a, b in zip(words, words[1:]):
        out += [(a + b, "name", True), (b + a, "name", True)]
    b = str(birth_date or "").strip()
    if re.fullmatch(r"\d{8}", b):
        y, m, d = b[:4], b[4:6], b[6:]
        out += [(t, "birth", True) for t in (b, f"{y}-{m}-{d}", f"{y}_{m}_{d}", f"{y}.{m}.{d}", f"{d}{m}{y}",
                                             f"{d}-{m}-{y}", f"{d}.{m}.{y}", f"{d}_{m}_{y}")]
    return list(dict.fromkeys(out))


def _kind_of(c: str) -> int:
    return 1 if c.isalpha() else 2 if c.isdigit() else 0


def _spans(part: str) -> list[tuple[int, int]]:
    """Every (start, end) of *part* that begins and ends on a token edge: where letters meet digits or
    anything else, so ``offis_test``, ``Doe1`` and ``98890234CT`` split, but ``Testing`` does not."""
    edges = [0] + [i for i in range(1, len(part)) if _kind_of(part[i - 1]) != _kind_of(part[i])] + [len(part)]
    return [(i, j) for n, i in enumerate(edges) for j in edges[n + 1:]
            if _kind_of(part[i]) and _kind_of(part[j - 1])]


class PathShower:
    """How ``check`` prints a path: relative to the PATH given that holds it, identifier parts replaced.

    A path part is split into tokens where letters meet digits or punctuation.  A run of tokens that is a
    strong identifier (:func:`identifier_tokens`) of any patient of the run is replaced; a weak one (a 2-3
    letter name part, a 1-2 character ID) only where the same path names that patient otherwise (one of
    their strong identifiers, or two different weak ones: ``li_wu``), or where it is the whole part
    (extension aside) and that patient is the file's own.
    """

    def __init__(self, roots: Iterable[str], identifiers: dict[str, tuple[str, str, str]],
                 others: Iterable[tuple[str, str, str]] = ()):
        # as given and with links resolved (the index may report either)
        roots = list(roots)
        self.roots = sorted({f(r) for r in roots for f in (os.path.abspath, os.path.realpath)}, key=len,
                            reverse=True)
        # a file given (a DICOMDIR): the files it names are shown relative to its folder
        self.roots += sorted({os.path.dirname(r) for r in self.roots if not os.path.isdir(r)} - set(self.roots),
                             key=len, reverse=True)
        self.ids = identifiers
        #: patient (name, id, birth) -> a number; *others*: patients of the run with no file read
        self.keys: dict[tuple[str, str, str], int] = {}
        for who in [*identifiers.values(), *others]:
            self.keys.setdefault(who, len(self.keys))
        self.strong: dict[str, tuple[str, set[int]]] = {}
        self.weak: dict[str, tuple[str, set[int]]] = {}
        for who, key in self.keys.items():
            for text, kind, strong in identifier_tokens(*who):
                table = self.strong if strong else self.weak
                old_kind, owners = table.setdefault(text.casefold(), (kind, set()))
                if kind == "id" and old_kind != "id":  # an ID that is also a name part prints as an ID
                    table[text.casefold()] = (kind, owners)
                owners.add(key)

    def relative(self, path: str) -> str:
        ap = os.path.abspath(path)
        for root in self.roots:
            if ap == root:
                return os.path.basename(ap)  # a file given by name: its name
            if ap.startswith(root.rstrip(os.sep) + os.sep):
                return os.path.relpath(ap, root)
        return os.path.basename(ap)

    @staticmethod
    def _find(part: str, table: dict[str, tuple[str, set[int]]]) -> list[tuple[int, int, str, set[int]]]:
        """(start, end, kind, owners) of the identifiers of *table* in *part*: longest first, not overlapping."""
        hits = []
        for i, j in _spans(part):
            got = table.get(part[i:j].casefold())
            if got is not None:
                hits.append((i, j, got[0], got[1]))
        hits.sort(key=lambda h: h[0] - h[1])  # longest first: "DoeJohn" before "John"
        taken: list[tuple[int, int, str, set[int]]] = []
        for h in hits:
            if all(h[1] <= t[0] or h[0] >= t[1] for t in taken):
                taken.append(h)
        return taken

    def show(self, path: str, owner: str | None = None) -> str:
        """*path* as printed; *owner* the record whose patient is the file's own (default: *path*'s)."""
        mine = self.keys.get(self.ids.get(owner or path, ("", "", "")))
        parts = self.relative(path).split(os.sep)
        strong = [self._find(p, self.strong) for p in parts]
        weak = [[w for w in self._find(p, self.weak) if all(w[1] <= t[0] or w[0] >= t[1] for t in hits)]
                for p, hits in zip(parts, strong)]
        # a patient the path names: a strong identifier of theirs, or two different short name parts
        named = {k for hits in strong for h in hits for k in h[3]}
        texts: dict[int, set[str]] = {}
        for p, hits in zip(parts, weak):
            for i, j, _kind, owners in hits:
                for k in owners:
                    texts.setdefault(k, set()).add(p[i:j].casefold())
        named |= {k for k, t in texts.items() if len(t) >= 2}
        out = []
        for p, hits, maybe in zip(parts, strong, weak):
            stem = os.path.splitext(p)[0] or p
            for h in maybe:
                whole = (h[0], h[1]) in ((0, len(p)), (0, len(stem)))
                if h[3] & named or (whole and mine in h[3]):
                    hits.append(h)
            for i, j, kind, _owners in sorted(hits, reverse=True):
                p = p[:i] + PLACEHOLDERS[kind] + p[j:]
            out.append(p)
        return os.sep.join(out)


def _shown(rec: dict[str, Any], paths: PathShower | None) -> dict[str, Any]:
    """*rec* with its paths as printed (whole when *paths* is None)."""
    if paths is None:
        return rec
    out = dict(rec)
    out["path"] = paths.show(rec["path"])
    if rec.get("duplicate_of"):
        out["duplicate_of"] = paths.show(rec["duplicate_of"], owner=rec["path"])
    if rec.get("withdrawn_by"):
        out["withdrawn_by"] = paths.show(rec["withdrawn_by"])
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
    if rec.get("withdrawn"):  # IHE IOCM: not part of the study any more, and which note says so
        parts.append(f"WITHDRAWN ({rec['withdrawn']}) by {rec.get('withdrawn_by') or 'a rejection note'}")
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
    paths = None if whole else PathShower(args.paths, report.path_identifiers, report.run_identifiers)
    out = sys.stdout
    for rec in report.records:
        rec = _shown(rec, paths)
        out.write((json.dumps(rec) if args.json else _line(rec, args.show_identifiers)) + "\n")
    print(report.summary(), file=sys.stderr if args.json else out)
    out.flush()
    return 0 if report.n_bad == 0 else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
