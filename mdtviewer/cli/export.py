"""``mdtviewer export``: argument parsing and printing; the work is :func:`mdtviewer.governance.export.run_export`.

    mdtviewer export PATH... --deidentify --dest DIR [--no-mask]
                     [--keep-rect X0,Y0,X1,Y1] [--keep-dates]
                     [--format dicom|png|mp4] [--encrypt]
    mdtviewer export PATH... --identifiable --encrypt --dest DIR
    mdtviewer export PATH... --patient-copy --dest DIR [--encrypt] [--no-mask] [--keep-rect ...]

What each option means is in :mod:`mdtviewer.governance.export`.  Prints what
it wrote (no identifiers) and a summary of burned-in text: images masked,
written unmasked at the user's request (``--no-mask``), refused (not written:
they may show identifiers), and the inputs not exported for another reason
(unreadable, damaged, not an instance: their reason, no masking advice).
Exit 0 only when every input was exported, 1 when any failed or was refused,
2 for a usage error.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from mdtviewer.governance import archive, export
from mdtviewer.imaging import masking


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mdtviewer export",
        description="Export studies de-identified (PS3.15 Basic Profile) as DICOM, PNG or MP4, optionally into an"
        " AES-256 encrypted 7z archive.",
        epilog="Exit status: 0 every input exported, 1 some input failed, 2 usage error. For --encrypt the password"
        " is asked twice on the terminal, or taken from MDTVIEWER_ARCHIVE_PASSWORD (scripts).",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="DICOM files or folders")
    p.add_argument("--dest", required=True, metavar="DIR", help="output folder (or where the archive goes)")
    p.add_argument(
        "--deidentify", action="store_true", help="apply the PS3.15 Basic Application Level Confidentiality Profile"
    )
    p.add_argument(
        "--identifiable",
        action="store_true",
        help="export WITH patient identifiers (clinical transfer); needs --encrypt",
    )
    p.add_argument(
        "--patient-copy",
        action="store_true",
        help="a copy for the patient: their identity kept, staff identities removed (operators', performing,"
        " referring and reading physicians' names, reviewers, station), burned-in text masked; DICOM plus a"
        " PNG/MP4 of each image; --encrypt optional",
    )
    p.add_argument(
        "--mask-burned-in",
        action="store_true",
        help="blank burned-in text (the default with --deidentify; accepted for compatibility, and masks an"
        " --identifiable export too)",
    )
    p.add_argument(
        "--no-mask",
        action="store_true",
        help="write images that cannot be made safe (no regions, no template, text not found) UNMASKED instead"
        " of refusing them; they say Burned In Annotation YES and the summary lists them",
    )
    p.add_argument(
        "--keep-rect",
        metavar="X0,Y0,X1,Y1",
        help="area to keep for images without ultrasound regions (inclusive pixel bounds); otherwise the"
        " scanner's template, else the text found in the pixels",
    )
    p.add_argument(
        "--keep-dates",
        action="store_true",
        help="keep the timeline: shift dates by a per-patient offset instead of removing them",
    )
    p.add_argument(
        "--include-withdrawn",
        action="store_true",
        help="also export images and documents a rejection note (IHE IOCM) among the inputs withdrew; by"
        " default they are left out and listed",
    )
    p.add_argument("--format", choices=export.FORMATS, default="dicom")
    p.add_argument("--encrypt", action="store_true", help="write one AES-256 encrypted 7z archive")
    p.add_argument("--archive-name", metavar="NAME", help="archive file name (default mdtviewer-export-<UTC time>.7z)")
    return p


def main(argv: list[str] | None = None) -> int:
    from mdtviewer.infra import logsafe

    logsafe.setup_logging()
    logging.captureWarnings(True)  # pydicom's warnings go to the redacted log, not the terminal
    try:
        return _main(argv)
    finally:
        logging.captureWarnings(False)


def _option_problem(args) -> str:
    """Why these options cannot go together ('' when they can)."""
    if args.patient_copy:
        if args.deidentify or args.identifiable:
            return "--patient-copy excludes --deidentify and --identifiable"
        if args.keep_dates or args.format != "dicom":
            return "--patient-copy writes DICOM plus PNG/MP4 with the real dates: no --format or --keep-dates"
        if args.no_mask and args.mask_burned_in:
            return "--no-mask and --mask-burned-in exclude each other"
        return ""
    if args.deidentify and args.identifiable:
        return "--deidentify and --identifiable exclude each other"
    if not args.deidentify and not args.identifiable:
        return (
            "refusing to export identifiable data: add --deidentify (teaching, research)"
            " or, for a clinical transfer, --identifiable --encrypt"
        )
    if args.identifiable and not args.encrypt:
        return "an identifiable export must be encrypted: add --encrypt"
    if args.keep_dates and not args.deidentify:
        return "--keep-dates only applies with --deidentify"
    if args.no_mask and args.mask_burned_in:
        return "--no-mask and --mask-burned-in exclude each other"
    if args.no_mask and not args.deidentify:
        return "--no-mask only applies with --deidentify"
    return ""


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) if exc.code in (0, None) else 2

    def usage(msg: str) -> int:
        print(f"mdtviewer export: error: {msg}", file=sys.stderr)
        return 2

    problem = _option_problem(args)
    if problem:
        return usage(problem)
    masking_on = args.deidentify or args.mask_burned_in or args.patient_copy
    keep_rect = None
    if args.keep_rect:
        if not masking_on:
            return usage("--keep-rect only applies when masking (--deidentify, or --mask-burned-in)")
        try:
            keep_rect = masking.parse_rect(args.keep_rect)
        except ValueError as exc:
            return usage(str(exc))
    dest = Path(args.dest)
    if dest.exists() and not dest.is_dir():
        return usage("--dest must be a folder")
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        return usage(f"no such file or folder: {missing[0]}")
    options = export.ExportOptions(
        deidentify=args.deidentify,
        mask_burned_in=masking_on,
        unmasked_ok=args.no_mask,
        keep_dates=args.keep_dates,
        fmt=args.format,
        keep_rect=keep_rect,
        identifiable=args.identifiable or args.patient_copy,
        patient_copy=args.patient_copy,
        include_withdrawn=args.include_withdrawn,
    )
    password = None
    if args.encrypt:
        try:
            password = archive.ask_password(confirm=True)
        except archive.ArchiveError as exc:
            return usage(str(exc))

    shown = _Shown(args.paths)

    def progress(k: int, n: int, item: export.ExportItem) -> None:
        shown.learn(item)
        if item.ok:
            return
        print(f"FAILED [{k}/{n}] {shown(item)}: {item.error}")

    try:
        report = export.run_export(
            args.paths, dest, options, password=password, archive_name=args.archive_name, progress=progress
        )
    except archive.ArchiveError as exc:
        print(f"FAILED: {exc.reason}")
        return 1
    finally:
        password = None  # drop our reference as soon as we can
    for it in report.items:
        for out in it.outputs:
            where = out if report.archive is not None else out.relative_to(dest) if out.is_absolute() else out
            extra = f" ({it.note})" if it.note else ""
            print(f"wrote {where}{extra}")
    what = ["de-identified" if options.deidentify else
            "PATIENT COPY (patient identity kept, staff identities removed)" if options.patient_copy else
            "IDENTIFIABLE"]
    if options.masking:
        what.append("burned-in text masked" + (" where it could be" if options.unmasked_ok else ""))
    if options.keep_dates:
        what.append("dates shifted")
    what.append(options.fmt)
    if report.archive is not None:
        print(f"wrote {report.archive} (AES-256 7z, encrypted headers; {len(report.outputs())} files)")
    if report.skipped:
        print(f"skipped {report.skipped} non-DICOM file(s) in folders")
    if options.masking:
        _print_masking_summary(report, dest, shown)
    _print_not_exported(report, shown)
    if report.withdrawn:
        print(f"not exported (withdrawn by a rejection note; --include-withdrawn to export them): "
              f"{len(report.withdrawn)} file(s)")
        for src, reason, who in report.withdrawn:
            item = export.ExportItem(source=src, patient=who)
            shown.learn(item)
            print(f"  {shown(item)}: withdrawn ({reason})")
    print(f"exported {report.n_ok} of {len(report.items)} input(s) ({', '.join(what)}) to {dest}")
    if args.encrypt and report.archive is None:
        return 1
    return 0 if report.ok else 1


class _Shown:
    """How export prints an input's path: as ``check`` does (relative to the PATH given, the parts that
    spell a patient's ID, name or birth date replaced), so a folder or file named after the patient
    never reaches the terminal."""

    def __init__(self, roots: list[str]) -> None:
        self.roots = roots
        self.identifiers: dict[str, tuple[str, str, str]] = {}

    def learn(self, item: export.ExportItem) -> None:
        if any(item.patient):
            self.identifiers[str(item.source)] = item.patient

    def __call__(self, item: export.ExportItem) -> str:
        from mdtviewer.cli.check import PathShower

        return PathShower(self.roots, self.identifiers).show(str(item.source))


def _print_masking_summary(report: export.ExportReport, dest: Path, shown: _Shown) -> None:
    """What happened to burned-in text, image by image where it matters (output names only: no identifiers)."""
    masked = report.with_state("masked")
    if masked:
        by: dict[str, int] = {}
        for it in masked:
            by[it.masked_by] = by.get(it.masked_by, 0) + 1
        print(f"masked: {len(masked)} image(s) ({', '.join(f'{k} {v}' for k, v in sorted(by.items()))})")
    not_needed = report.with_state("not-needed")
    if not_needed:
        print(f"not masked, no burned-in text expected (modality): {len(not_needed)} image(s)")
    unmasked = report.with_state("unmasked-at-request")
    if unmasked:
        print(f"written unmasked at your request (--no-mask; Burned In Annotation YES): {len(unmasked)} image(s)")
        for it in unmasked:
            for out in it.outputs:
                where = out if report.archive is not None else out.relative_to(dest) if out.is_absolute() else out
                print(f"  {where}")
        print(report.burned_in_warning())
    refused = report.with_state("refused")
    if refused:
        index = {id(it): k for k, it in enumerate(report.items, 1)}
        print(
            f"refused, not written (may show identifiers; give --keep-rect, set a template for the scanner, or"
            f" --no-mask): {len(refused)} image(s)"
        )
        for it in refused:
            print(f"  [{index[id(it)]}/{len(report.items)}] {shown(it)}: {it.error}")


def _print_not_exported(report: export.ExportReport, shown: _Shown) -> None:
    """Inputs not written for another reason than masking (unreadable, damaged, not an instance), each with
    its own one-line reason and no masking advice: no template or keep rectangle would help (QA2 #12)."""
    failed = report.not_exported()
    if failed:
        index = {id(it): k for k, it in enumerate(report.items, 1)}
        print(f"not exported (unreadable, damaged or not an instance; masking does not apply): {len(failed)} file(s)")
        for it in failed:
            print(f"  [{index[id(it)]}/{len(report.items)}] {shown(it)}: {it.error}")
