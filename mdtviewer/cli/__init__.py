"""Command-line entry point: ``mdtviewer``.

``mdtviewer SUBCOMMAND ...`` dispatches to the module that owns the
subcommand; each exposes ``main(argv) -> int``.  Anything else
(``mdtviewer [PATH...] [--demo] [--privacy]``) starts the review window.

Exit codes: 0 success, 1 the work failed (a bad file, a failed retrieve ...),
2 usage error.
"""

from __future__ import annotations

import difflib
import importlib
import os
import re
import sys
import warnings
from pathlib import Path

#: subcommand -> module with ``main(argv: list[str]) -> int``
SUBCOMMANDS = {
    "check": "mdtviewer.cli.check",
    "pacs": "mdtviewer.cli.pacs",
    "sr": "mdtviewer.cli.sr",
    "export": "mdtviewer.cli.export",
    "logbook": "mdtviewer.cli.logbook",
    "audit": "mdtviewer.cli.audit",
    "worklist": "mdtviewer.cli.worklist",
    "open": "mdtviewer.ui.app",
}

#: one line per subcommand for ``mdtviewer --help``
_SUMMARIES = {
    "check": "check files or folders for problems before a meeting",
    "open": "open files in a layout, or save a screenshot of the window",
    "pacs": "query, retrieve and send studies (DIMSE or DICOMweb), queue sends",
    "sr": "write, show and check review reports (DICOM SR)",
    "export": "export de-identified (or identifiable) copies: DICOM, PNG, MP4",
    "logbook": "a trainee's preceptorship logbook from the review reports",
    "audit": "second-opinion discrepancy rates (audit discrepancies)",
    "worklist": "drafts awaiting sign-off, amended reviews, second-opinion requests",
}

USAGE = """\
usage: mdtviewer [PATH...] [--demo] [--privacy]
       mdtviewer SUBCOMMAND [OPTIONS...]
       mdtviewer --version

Without a subcommand, opens the review window on the given files, folders or
DICOMDIRs.
  --demo      open the bundled demo study
  --privacy   start with patient identifiers hidden (F9 toggles)

Subcommands:
{subcommands}

Run 'mdtviewer SUBCOMMAND --help' for its options.
Exit codes: 0 success, 1 the work failed (a bad file, a failed retrieve ...),
2 usage error.
"""

#: a first argument that looks like a (mistyped) subcommand rather than a path
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")


def usage() -> str:
    width = max(map(len, SUBCOMMANDS))
    lines = [f"  {name.ljust(width)}  {_SUMMARIES.get(name, '')}".rstrip() for name in SUBCOMMANDS]
    return USAGE.format(subcommands="\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    # pydicom warns on stderr about values it repairs as it reads (e.g. 'ISO-IR 100'
    # for 'ISO_IR 100'); what matters to the user is said in our own one-line reasons.
    warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\.|$)")
    try:
        return _dispatch(list(sys.argv[1:] if argv is None else argv))
    except BrokenPipeError:
        # `mdtviewer ... | head`: the reader has gone; stop quietly, as Unix tools do
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the interpreter flushes it at exit
        except OSError:
            pass
        return 0


def _dispatch(argv: list[str]) -> int:
    if argv and argv[0] in SUBCOMMANDS:
        module = importlib.import_module(SUBCOMMANDS[argv[0]])
        if argv[0] == "open":
            return int(module.main_open(argv[1:]) or 0)
        return int(module.main(argv[1:]) or 0)
    if argv and argv[0] in ("-V", "--version"):
        from mdtviewer import __version__

        print(f"mdtviewer {__version__}")
        return 0
    if argv and argv[0] in ("-h", "--help"):
        print(usage(), end="")
        return 0
    if argv and _WORD.match(argv[0]) and not Path(argv[0]).exists():
        # `mdtviewer chek FILE`: a mistyped subcommand, not a file to open
        word = argv[0]
        close = difflib.get_close_matches(word, list(SUBCOMMANDS), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        print(
            f"mdtviewer: unknown subcommand '{word}' ({hint}subcommands: {', '.join(SUBCOMMANDS)}); "
            "to open a file, give its path",
            file=sys.stderr,
        )
        return 2
    from mdtviewer.ui import app

    return int(app.main(argv) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
