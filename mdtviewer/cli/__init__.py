"""Command-line entry point: ``mdtviewer``.

``mdtviewer SUBCOMMAND ...`` dispatches to the module that owns the
subcommand; each exposes ``main(argv) -> int``.  Anything else
(``mdtviewer [PATH...] [--demo] [--privacy]``) starts the review window.

Exit codes: 0 success, 1 the work failed (a bad file, a failed retrieve ...),
2 usage error.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings

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
    if argv and argv[0] in ("-h", "--help") and len(argv) == 1:
        print(__doc__.strip())
        print("\nSubcommands: " + ", ".join(SUBCOMMANDS))
        print("Run 'mdtviewer SUBCOMMAND --help' for its options.")
        return 0
    from mdtviewer.ui import app

    return int(app.main(argv) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
