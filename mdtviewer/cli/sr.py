"""``mdtviewer sr``: show any SR/KOS as text; write a review SR from JSON; the reviewer profile that signs.

Usage::

    mdtviewer sr show FILE [--show-identifiers] [--worksheet]
    mdtviewer sr write --review REVIEW.json --study PATH --out FILE.dcm [--force]
    mdtviewer sr list STUDY_UID [--folder DIR ...]
    mdtviewer sr protocols
    mdtviewer sr profile [--name NAME] [--organization ORG] [--registration REG]
                         [--role reporting-scientist|second-reader|trainee|trainer]

show       Any SR, KOS or review as readable text: title, status, observers,
           every content item with its nesting, codes with meanings, numbers
           with units, image references (SOP class, instance, frames).
           Patient name/ID only with --show-identifiers.
write      Build a review SR from REVIEW.json about the instances in PATH (a
           file or folder) and write it atomically to FILE.dcm (an existing
           FILE.dcm is only replaced with --force).  Prints the path written.
list       Reviews and other SR/KOS of a study in the local store (or the
           folders given), newest signed first.  No patient identifier: a
           KOS's title is the standard meaning of its code ("rejection note"
           or "key images" in the status column), an SR's title loses the
           file's patient name, ID and birth date.  A STUDY_UID that is not
           digits and dots: exit 2, one line.
protocols  The protocols (minimum image sets) available, with their views.
profile    The reviewer profile of this computer account: the person `write`
           (and the window) signs as.  Without options, prints it: exit 0
           when it is complete (reviews can be signed), 1 when none is set or
           it lacks something.  With options, sets or updates it (options not
           given keep their value; a first profile needs all four, a trainee
           no registration): the same checks as the window's Review ›
           Reviewer profile…, saved atomically, recorded in the audit trail
           (computer account, role and registration before and after).
           Invalid input: exit 2, one line, nothing saved.  The role is
           declared, not checked against a register: only "trainer" may sign
           a preceptorship outcome.

REVIEW.json keys::

    kind              "second-opinion" | "preceptorship"
    author            {"name": ..., "role": "reporting-scientist"|"second-reader"|"trainee"|"trainer",
                       "organization": optional}
    verifier          optional {"name": optional}: present = signed (VERIFIED, COMPLETE) by the reviewer
                      profile of this computer account (`mdtviewer sr profile`; name, organisation,
                      registration; the time of writing), never by a name in the JSON: refused
                      without a complete profile, or when "name" is given and is not the
                      profile's; "organization" and "datetime" are ignored; a preceptorship is
                      signed only by a profile whose role is "trainer" (any other role: refused,
                      exit 1, nothing written)
    agreement         second opinion: "agree" | "minor-discrepancy" | "major-discrepancy"
    agreement_reason  second opinion: text
    graded_report     second opinion: SOP Instance UID of the SR or PDF report it grades (a file in
                      PATH); a signed second opinion needs this key: null signs without a report,
                      recorded in the SR as "No report graded"
    protocol          preceptorship: protocol id (see `mdtviewer sr protocols`)
    outcome           preceptorship: "competent" | "needs-supervision"
    trainee           preceptorship, optional {"name": ..., "organization": optional}
    views             preceptorship, optional: [{"view": VIEW_ID, "sop_instance_uid": ..., "frame": N}
                      or {"view": VIEW_ID, "present": false}]; protocol views not listed are
                      recorded as missing
    summary           text
    images            [{"sop_instance_uid": ..., "frames": [1-based ...] optional,
                        "quality": "good"|"adequate"|"poor" optional, "comment": text optional}]
                      an image with neither quality nor comment is recorded as a key image
    study_instance_uid  optional; needed only if PATH holds several studies and no image is named
    measurements      optional [{"sop_instance_uid": ..., "frame": 1-based, "type": distance|length|area|
                      ellipse|angle|psv|edv|velocity|ri|pi|ratio (also time|acceleration-time),
                      "points": [[column, row], ...] image pixels (ellipse: the 4 ends of its
                      axes, first axis then second, as DICOM's SCOORD ELLIPSE), "of": [i, j] (ratio only),
                      "site": vessel (optional), "side": "left"|"right" (optional)}]; every value is
                      computed from the file's US regions (calibrated ultrasound regions), written
                      as a TID 1500 report: to FILE.dcm without "kind", else to FILE_measurements.dcm
    annotations       optional [{"sop_instance_uid": ..., "frame": 1-based, "type": arrow|text,
                      "points": [[column, row], ...] (arrow: tail, head; text: its anchor),
                      "text": words (required for text)}]; saved in the same TID 1500 report
    amends            without "kind" (measurements only): path, relative to REVIEW.json, of the
                      measurement report this one amends (Predecessor Documents Sequence; the
                      earlier file is never altered); with "kind": the review SR this one amends
    (a signed review with measurements includes their vascular worksheet)

show prints the measurements of any SR (ours, vendors' TID 5100) as NAME: VALUE UNIT with
their image and frame, then arrows and text annotations; of an amended measurement report
only the latest version found in the same folder (headed "amended"); --worksheet prints only
the vessel worksheet with stenosis grades.

Exit status: 0 written/shown, 1 bad input (bad JSON, unknown SOP instance
UID, invalid review, unreadable file; nothing is written), 2 usage error.
profile: 0 a complete profile is set (shown) or was saved, 1 none set or
incomplete (shown) or the settings file could not be written, 2 invalid
input (nothing saved).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from mdtviewer.infra.errors import DicomInputError
from mdtviewer.pacs.safetext import printable


class _Usage(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # exit 2 with a one-line message (argparse default too, but keep it explicit)
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)  # "mdtviewer sr profile: error: ..."
        raise SystemExit(2)


def _utf8_stdout() -> None:
    enc = (getattr(sys.stdout, "encoding", "") or "").lower().replace("-", "")
    if enc != "utf8" and hasattr(sys.stdout, "reconfigure"):
        try:
            sys.stdout.reconfigure(encoding="utf-8")
        except (ValueError, OSError):
            pass


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mdtviewer sr", description="Show SR/KOS documents; write review SRs; set who signs them.",
                epilog="Run 'mdtviewer sr write --help' for the keys of REVIEW.json, 'mdtviewer sr profile --help' "
                       "for who signs. Exit status: 0 written/shown, 1 bad input (nothing is written), 2 usage error.")
    sub = p.add_subparsers(dest="cmd", parser_class=_Parser)
    s = sub.add_parser("show", help="any SR, KOS or review as readable text")
    s.add_argument("file")
    s.add_argument("--show-identifiers", action="store_true", help="also print patient name and ID")
    s.add_argument("--worksheet", action="store_true",
                   help="print only the vessel worksheet (measurements by vessel and side, stenosis category)")
    keys = __doc__.split("REVIEW.json keys::", 1)[1].split("\nshow prints", 1)[0].strip("\n")
    w = sub.add_parser(
        "write",
        help="write a review SR from JSON",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write a review SR from REVIEW.json about the instances in --study.",
        epilog="REVIEW.json keys:\n" + keys,
    )
    w.add_argument("--review", required=True, help="REVIEW.json")
    w.add_argument("--study", required=True, help="file or folder with the reviewed instances")
    w.add_argument("--out", required=True, help="FILE.dcm to write")
    w.add_argument("--force", action="store_true", help="replace FILE.dcm if it exists")
    ls = sub.add_parser("list", help="reviews and SR/KOS of a study")
    ls.add_argument("study_uid")
    ls.add_argument("--folder", action="append", help="folder to search (default: the local store)")
    ls.add_argument(
        "--node",
        help="saved PACS node: first fetch the study's reports that are only there "
        "(SR, KOS, documents; never images) into the local store",
    )
    sub.add_parser("protocols", help="available protocols and their views")
    from mdtviewer.sr.model import ROLES

    pr = sub.add_parser(
        "profile",
        help="show or set the reviewer profile that signs reviews on this account",
        description="The reviewer profile of this computer account: who `sr write` (and the window) signs as. "
        "Without options, print it (exit 1 when none is set or it is incomplete). With options, set or update "
        "it: options not given keep their value; a first profile needs all four (a trainee: no registration). "
        "Saved as the window's Review > Reviewer profile... saves it, and recorded in the audit trail.",
        epilog="Exit status: 0 shown (complete) or saved, 1 none set or incomplete, or not writable, "
        "2 invalid input (nothing saved). The role is declared by you, not checked against a register; "
        "only a trainer may sign a preceptorship outcome.",
    )
    pr.add_argument("--name", help='your name as the signed report shows it, e.g. "Okafor^Ada"')
    pr.add_argument("--organization", "--organisation", dest="organization", metavar="ORG",
                    help="your organisation (the SR's Verifying Organization)")
    pr.add_argument("--registration", metavar="REG",
                    help='professional registration, e.g. "HCPC CS012345" or "RCCP 1234" (trainees may give "")')
    pr.add_argument("--role", choices=ROLES, help="the role you sign in (a preceptorship: trainer only)")
    return p


def _cmd_write(args) -> int:
    from mdtviewer.workflows.review_json import write_sr_files

    for written in write_sr_files(args.review, args.study, args.out, force=args.force):
        print(written)  # the review, then the measurement report when the JSON has measurements
    return 0


def _cmd_show(args) -> int:
    from mdtviewer.sr.reader import read_sr, redacted
    from mdtviewer.sr.render import render_text

    path = Path(args.file)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    doc = read_sr(path)
    if not args.show_identifiers:
        doc = redacted(doc)  # subject-context items and the patient's name/ID/birth date in text
    _utf8_stdout()
    from mdtviewer.sr.measurement_read import read_measurements
    from mdtviewer.sr.render import measurement_lines

    measured = read_measurements(path)
    latest_path, latest = _latest_version(path, measured)
    if args.worksheet:
        from mdtviewer.workflows.worksheet import build_worksheet, render_worksheet

        sys.stdout.write(_safe(render_worksheet(build_worksheet(latest.measurements))))
        return 0
    sys.stdout.write(_safe(render_text(doc, show_identifiers=args.show_identifiers)))
    if latest.measurements or latest.annotations:
        from mdtviewer.sr.render import annotation_lines

        if latest_path != path:
            head = f"Measurements (amended: this report was replaced by {latest_path.name}; its latest version):"
        elif latest.amended:
            head = f"Measurements (amended: replaces {len(latest.predecessors)} earlier report(s)):"
        else:
            head = "Measurements:"
        lines = measurement_lines(latest.measurements) + annotation_lines(latest.annotations)
        sys.stdout.write(_safe(f"\n{head}\n" + "".join(f"  {line}\n" for line in lines)))
    for note in doc.notes:
        print(f"mdtviewer sr show: note: {printable(note)}", file=sys.stderr)
    return 0


def _safe(text: str) -> str:
    """*text* from a file, each line with its control and formatting characters written as visible escapes
    (an ESC in a Content Template Identifier or a text value must not drive the user's terminal)."""
    return "\n".join(printable(line) for line in text.split("\n"))


def _latest_version(path: Path, doc):
    """The latest amendment of a measurement report among the SRs of its folder (itself if none).

    An amendment names the report it replaces in its Predecessor Documents
    Sequence; the chain is followed while a newer document in the same
    folder names the one found so far (at most 2,000 files looked at).
    """
    from mdtviewer.sr.measurement_read import read_measurements

    if not (doc.measurements or doc.annotations) or not doc.sop_instance_uid:
        return path, doc
    others = []
    for i, p in enumerate(sorted(path.parent.glob("*.dcm"))):
        if i >= 2000:
            break
        if p == path:
            continue
        try:
            d = read_measurements(p)
        except (ValueError, DicomInputError, OSError):
            continue
        if d.predecessors and (d.measurements or d.annotations):
            others.append((p, d))
    seen = {doc.sop_instance_uid}
    cur_path, cur = path, doc
    while True:
        nxt = next(((p, d) for p, d in others if cur.sop_instance_uid in d.predecessors
                    and d.sop_instance_uid not in seen), None)
        if nxt is None:
            return cur_path, cur
        cur_path, cur = nxt
        seen.add(cur.sop_instance_uid)


#: a Study Instance UID: digits and dots, at most 64 characters (PS3.5 9.1; a leading zero, which some
#: modalities write, is let through: such a study is still found)
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")


def _cmd_list(args) -> int:
    from mdtviewer.workflows.reviews import reviews_for_study

    if len(args.study_uid) > 64 or not _UID.fullmatch(args.study_uid):
        print(f"mdtviewer sr list: error: {printable(args.study_uid[:70])!s} is not a Study Instance UID "
              "(digits and dots, e.g. 1.2.840.113619.2.55.3)",
              file=sys.stderr)
        return 2
    folders = args.folder
    _utf8_stdout()
    if args.node:
        from mdtviewer.infra import paths
        from mdtviewer.pacs.nodes import get_node
        from mdtviewer.workflows.report_lookup import fetch_study_reports

        found = fetch_study_reports(args.study_uid, [get_node(args.node)])
        print(f"PACS: {found.message}")
        if folders is not None:
            folders = [*folders, str(paths.store_dir())]
        if found.problems:
            _print_docs(reviews_for_study(args.study_uid, folders), args.study_uid)
            return 1  # the PACS could not be asked (or not all came): the list may be incomplete
    docs = reviews_for_study(args.study_uid, folders)
    _print_docs(docs, args.study_uid)
    return 0


def _list_title(d) -> str:
    """A document's title as ``sr list`` prints it, with no patient identifier (``list`` has no option to show
    them): a KOS by PS3.16's meaning of its title code only (the file's Code Meaning is free text); an SR's
    title with the file's own patient name parts, ID and birth date taken out."""
    from mdtviewer.dicom.kos import standard_title, title_code

    if d.title is None:
        return "(untitled)"
    if d.kind == "kos":
        return standard_title(title_code(d.title.value or "", d.title.scheme or "")) or "(title not a CID 7010 code)"
    title = d.title.meaning or d.title.value or "(untitled)"
    if d.path is None:
        return title
    from mdtviewer.dicom.reader import read_dataset
    from mdtviewer.imaging.masking import scrub_free_text
    from mdtviewer.workflows.report_files import identifiers_from_dataset

    try:
        ids = identifiers_from_dataset(read_dataset(d.path, stop_before_pixels=True))
    except (DicomInputError, OSError):
        return "(title not shown: the file's patient is not known)"
    return scrub_free_text(title, ids.name, ids.patient_id, ids.birth_date, "[hidden]")


def _print_docs(docs, study_uid: str = "") -> None:
    from mdtviewer.dicom.kos import is_rejection_code, title_code, withdrawn_by_notes
    from mdtviewer.sr.render import _dt

    # IHE IOCM: a document a rejection note of the study withdrew is listed, marked, never taken as current
    withdrawn = withdrawn_by_notes([d.path for d in docs if d.kind == "kos" and d.path], study_uid)

    if not docs:
        print("no reviews or SR documents found for this study")
    rows = []
    for d in docs:
        kind = d.review_kind or d.kind.upper()
        who = d.verifiers[0].name if d.verifiers else (d.author_observers[0] if d.author_observers else "")
        status = d.status
        if d.kind == "kos":  # named as the browser and the report list name it: by its title code
            code = title_code(d.title.value or "", d.title.scheme or "") if d.title is not None else ""
            status = "rejection note" if is_rejection_code(code) else "key images"
        status += (" (superseded)" if d.superseded_by else "") + (" (amendment)" if d.predecessors else "")
        if d.sop_instance_uid in withdrawn:
            status = f"WITHDRAWN ({withdrawn[d.sop_instance_uid]}) {status}"
        rows.append((_dt(d.sort_datetime), status, kind, _list_title(d), who, d.path))
    width = max((len(r[1]) for r in rows), default=0)  # a WITHDRAWN status is wide: every row's columns align
    kw = max((len(r[2]) for r in rows), default=0)
    for when, status, kind, title, who, path in rows:
        print(_safe(f"{when}  {status:<{max(width, 20)}} {kind:<{max(kw, 15)}} {title}  {who}  {path}"))


def _cmd_protocols(_args) -> int:
    from mdtviewer.sr.protocols import load_protocols

    _utf8_stdout()
    for p in load_protocols().values():
        print(f"{p.id}: {p.name} ({len(p.required_views)} required of {len(p.views)} views)")
        for v in p.views:
            print(f"    {v.id:<16} {'required' if v.required else 'optional':<9} {v.label}")
    return 0


def _print_profile(p) -> None:
    from mdtviewer.workflows.reviewer_profile import FIELD_LABELS, FIELDS, os_account, sign_refusal

    width = max(len(v) for v in FIELD_LABELS.values()) + 2
    for f in FIELDS:
        print(f"{FIELD_LABELS[f].capitalize() + ':':<{width}}{printable(getattr(p, f))}")
    kinds = [k for k in ("second-opinion", "preceptorship") if not sign_refusal(k, p.role)]
    may = " and ".join(k.replace("-", " ") + "s" for k in kinds)
    print(f"{'May sign:':<{width}}{may}" + ("" if "preceptorship" in kinds else
                                                " (a preceptorship: a draft, for a trainer to sign)"))
    print(f"{'Computer account:':<{width}}{printable(os_account())} (recorded with each signature in the audit trail)")


#: the option that sets each field the profile may lack (ReviewerProfile.missing() names)
_OPTION_OF = {"name": "--name", "role": "--role", "organisation": "--organization",
              "professional registration": "--registration"}


def _cmd_profile(args) -> int:
    from mdtviewer.workflows import reviewer_profile as rp

    _utf8_stdout()
    changes = {f: getattr(args, f) for f in rp.FIELDS}
    current = rp.load()
    if all(v is None for v in changes.values()):  # show
        if current is None:
            print("mdtviewer sr profile: no reviewer profile is set on this computer account (set it with "
                  "--name, --organization, --registration and --role)", file=sys.stderr)
            return 1
        _print_profile(current)
        bad = rp.problem(current)
        if bad is not None:
            print(f"mdtviewer sr profile: this profile cannot sign: {bad.reason}", file=sys.stderr)
            return 1
        return 0
    new = rp.updated(current, **changes)
    try:
        saved = rp.set_profile(new, via="command line")
    except rp.ProfileError as exc:
        hint = ", ".join(_OPTION_OF[f] for f in exc.missing if f in _OPTION_OF)
        print(f"mdtviewer sr profile: error: not saved: {exc.reason}" + (f" (give {hint})" if hint else ""),
              file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"mdtviewer sr profile: error: not saved: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    print("Reviewer profile saved:" if saved else "Reviewer profile unchanged:")
    _print_profile(rp.load() or new)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if not args.cmd:
        parser.print_usage(sys.stderr)
        return 2
    try:
        return {"show": _cmd_show, "write": _cmd_write, "list": _cmd_list, "protocols": _cmd_protocols,
                "profile": _cmd_profile}[args.cmd](args)
    except (ValueError, DicomInputError) as exc:
        print(f"mdtviewer sr {args.cmd}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        raise  # `mdtviewer sr ... | head`: the reader has gone; the dispatcher stops quietly, as Unix tools do
    except Exception as exc:  # noqa: BLE001 - a fault of ours: one line that says so, not a traceback
        print(
            f"mdtviewer sr {args.cmd}: internal error ({type(exc).__name__}); please report it "
            "with the file that caused it",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
