"""The project's one error base, and the DICOM input family.

The rule
--------
* An **expected failure** (bad input, a refused peer, a wrong password, a
  session file from a newer version ...) is raised as a subclass of
  :class:`MdtError`.  It carries ``reason``: one line a vascular scientist
  can act on, never a patient identifier and never library internals, and a
  short ``category`` for JSON output.  Every room defines its errors on this
  base (``PacsError``, ``NodeError``, ``ArchiveError``,
  ``DeidentificationError``, ``SessionError``, ``ReviewError``,
  ``ExportError``, ``MeasurementError``, ``DicomInputError`` ...), so one
  ``except MdtError`` catches exactly the failures the program expects.
* Anything else that escapes is a **bug**.  Catch only the exceptions that
  are expected where you are (``OSError`` for a file, ``ValueError`` for a
  parse, a library's own error type); never ``except Exception`` to turn a
  bug into a message.
* A **boundary** (a worker isolating one file of a scan, a batch that must go
  on to the next input) may catch broadly, but must keep the two apart:
  expected errors keep their reason; anything else is logged with its
  traceback (``log.exception``) and, if it must become data, is reported via
  :func:`bug_reason` so that the text says it is a bug.
* The UI shows ``reason`` for an :class:`MdtError` and reports anything else
  as a bug with the log file's path (:mod:`mdtviewer.ui.errors`).
"""

from __future__ import annotations


class MdtError(Exception):
    """Base of every expected failure: ``reason`` is one line for the user."""

    #: short machine-readable category, used in JSON output
    category = "error"

    def __init__(self, reason: object = ""):
        reason = " ".join(str(reason).split())  # always one line
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


def bug_reason(exc: BaseException, what: str = "") -> str:
    """One line for an *unexpected* exception caught at a boundary (logged elsewhere).

    Says plainly that this is a bug, names the exception type, and leaves out
    its message (it may hold library internals or identifiers).
    """
    head = f"{what}: " if what else ""
    return f"{head}unexpected error ({type(exc).__name__}); this is a bug, details are in the log"


class DicomInputError(MdtError):
    """This file (or this frame) cannot be used, and why."""


class NotDicomError(DicomInputError):
    """The file is not DICOM at all (skipped quietly when scanning folders)."""

    category = "not-dicom"


class MalformedHeaderError(DicomInputError):
    """The header (file meta or data set) cannot be parsed."""

    category = "malformed"


class TruncatedFileError(DicomInputError):
    """The file ends before its content does (silently half-read by others)."""

    category = "truncated"


class PixelDataError(DicomInputError):
    """Pixel Data is absent, inconsistent with its description, or cut short."""

    category = "pixel-data"


class DecodeError(PixelDataError):
    """The compressed pixel stream could not be decoded."""

    category = "decode"


class UnsupportedError(DicomInputError):
    """Valid DICOM that this viewer cannot display (said plainly)."""

    category = "unsupported"
