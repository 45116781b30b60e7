"""``mdtviewer logbook [--trainee NAME] [--folder DIR ...] [--node NAME] [--from YYYYMMDD] [--to YYYYMMDD]
[--json | --csv FILE | --pdf FILE] [--show-identifiers]``: a trainee's preceptorship logbook.

Argument parsing and printing only; the work is :func:`mdtviewer.workflows.logbook.trainee_logbook`.
``--json`` prints one object per trainee: ``trainee``, ``reviews``, ``signed``,
``by_protocol`` ``{protocol_id: {reviews, signed, competent, needs_supervision,
missing_views: {view_id: count}}}``, ``quality`` ``{good, adequate, poor}`` (and
``unsigned``, ``mdt_outcomes`` of signed reviews, ``by_month``, and ``signed_not_by_trainer`` with
``notes``: a preceptorship signed by someone the SR does not record as a trainer counts as unsigned and
its outcome is not counted).  CSV and PDF exports
number the studies as cases (the same number in every export of this installation:
a keyed hash of the Study Instance UID, see :func:`mdtviewer.workflows.logbook.case_numbers`)
and hold no patient identifier unless ``--show-identifiers``.

Exit status: 0 done, 1 a PACS could not be asked (what is local is still shown), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys


def common_options(p: argparse.ArgumentParser, dates: bool = True, exports: bool = True) -> None:
    p.add_argument("--folder", action="append", default=[], metavar="DIR", help="also look in this folder (repeat)")
    p.add_argument("--node", metavar="NAME", help="fetch review SRs from this saved PACS node first")
    if dates:
        p.add_argument("--from", dest="date_from", metavar="YYYYMMDD", help="studies from this date")
        p.add_argument("--to", dest="date_to", metavar="YYYYMMDD", help="studies up to this date")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON")
    if exports:
        out.add_argument("--csv", metavar="FILE", help="write a CSV export (pseudonymised by default)")
        out.add_argument("--pdf", metavar="FILE", help="write a PDF export (pseudonymised by default)")
        p.add_argument("--show-identifiers", action="store_true",
                       help="put patient names/IDs in the export (default: case numbers only)")


def report_collection(c, err=None) -> int:
    """Say what was looked at on stderr; 1 if a PACS could not be asked."""
    err = err or sys.stderr
    print(f"{len(c.records)} review(s) (latest versions; {c.superseded} amended version(s) left out); "
          f"{c.files_read} file(s) read, {c.files_cached} from the cache"
          + (f"; {c.fetched_from_pacs} fetched from PACS" if c.fetched_from_pacs else ""), file=err)
    for p in c.problems:
        print(f"PACS: {p}", file=err)
    return 1 if c.problems else 0


def run(main_body, argv_parse):
    """Parse, run, map errors to exit codes (usage 2)."""
    from mdtviewer.infra.errors import MdtError

    try:
        args = argv_parse()
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        return main_body(args)
    except MdtError as exc:
        print(f"mdtviewer: {exc.reason}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        raise  # `| head`: the reader has gone; the dispatcher stops quietly (not "Broken pipe", exit 1)
    except OSError as exc:
        print(f"mdtviewer: {exc.filename or ''}: {exc.strerror or type(exc).__name__}", file=sys.stderr)
        return 1


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="mdtviewer logbook", description="A trainee's preceptorship logbook, "
                                "from the review SRs in the local store, folders and a PACS.")
    p.add_argument("--trainee", metavar="NAME", help="only this trainee (name as written in the reviews)")
    common_options(p)

    def body(a) -> int:
        from mdtviewer.workflows import logbook as lb

        rep = lb.trainee_logbook(a.trainee, a.folder, a.node, a.date_from, a.date_to)
        rc = report_collection(rep.collection)
        if a.json:
            print(json.dumps(rep.to_json(), ensure_ascii=False, indent=1))
        elif a.csv:
            print(f"wrote {lb.write_export(lb.logbook_csv(rep.logs, a.show_identifiers), a.csv)}")
        elif a.pdf:
            print(f"wrote {lb.write_export(lb.logbook_pdf(rep.logs, a.show_identifiers), a.pdf)}")
        else:
            if not rep.logs:
                print("no preceptorship reviews found")
            for tl in rep.logs:
                print(f"{tl.trainee}: {tl.reviews} review(s), {tl.signed} signed; quality "
                      + ", ".join(f"{q} {tl.quality.get(q, 0)}" for q in ("good", "adequate", "poor")))
                for pid, pl in sorted(tl.by_protocol.items()):
                    missed = ", ".join(f"{v} x{n}" for v, n in pl.missing_views.most_common(3)) or "none"
                    print(f"  {pid}: {pl.reviews} reviewed, {pl.signed} signed, {pl.competent} competent, "
                          f"{pl.needs_supervision} needs supervision; views missed: {missed}")
                for note in tl.notes():
                    print(f"  note: {note}")
        return rc

    return run(body, lambda: p.parse_args(argv))
