"""One way the UI shows a failure.

An *expected* failure is an exception that carries a one-line ``reason``
(the project's error family: :mod:`mdtviewer.infra.errors`, and any other
exception with a ``reason`` attribute): the user sees that reason, nothing
more.  Anything else is a bug: it is logged with its traceback, and the user
is told so and where the log file is (:func:`mdtviewer.infra.paths.logs_dir`).

Every UI error path goes through :func:`error_text` (for a widget that shows
the text in its own status line) or :func:`show_error` (a message box).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import QMessageBox, QWidget

from mdtviewer.infra.errors import MdtError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErrorReport:
    """What the user is told about one failure."""

    text: str  # one line for an expected error; the bug notice otherwise
    is_bug: bool
    log_file: Path | None = None


def reason_of(exc: BaseException) -> str | None:
    """The one-line reason of an expected error, or None when *exc* is not one.

    Expected: the project's error family (:class:`~mdtviewer.infra.errors.MdtError`), or any
    exception that carries a non-empty ``reason`` string (another library's, or an older class of ours).
    """
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str) and reason.strip():
        return " ".join(reason.split())
    if isinstance(exc, MdtError):  # one of ours raised without a reason: say at least what failed
        return " ".join(str(exc).split()) or type(exc).__name__
    return None


def log_file() -> Path:
    """Where the application log is written (named in every bug report)."""
    from mdtviewer.infra import paths
    from mdtviewer.infra.logsafe import LOG_NAME

    return paths.logs_dir() / LOG_NAME


def ensure_log_file() -> Path:
    """Bugs must reach the log file even when the app did not set logging up (``mdtviewer open``, tests)."""
    from mdtviewer.infra import logsafe

    want = log_file()
    root = logging.getLogger()
    if not any(getattr(h, "baseFilename", None) == str(want) for h in root.handlers):
        logsafe.setup_logging(min(root.getEffectiveLevel(), logging.WARNING))
    return want


def describe(exc: BaseException, context: str = "") -> ErrorReport:
    """The report for *exc*; a bug is logged here, with its traceback, to the log file."""
    reason = reason_of(exc)
    if reason is not None:
        return ErrorReport(f"{context}: {reason}" if context else reason, False)
    try:
        where = ensure_log_file()
    except OSError:  # no log file (read-only home): the traceback still goes to the handlers there are
        where = log_file()
    log.error(
        "bug%s: %s",
        f" ({context})" if context else "",
        type(exc).__name__,
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    head = f"{context}: " if context else ""
    text = f"{head}an unexpected error ({type(exc).__name__}); this is a bug. Details are in the log: {where}"
    return ErrorReport(text, True, where)


def error_text(exc: BaseException, context: str = "") -> str:
    """One line for a status bar or a form's message label (bugs are logged)."""
    return describe(exc, context).text


def show_error(parent: QWidget | None, exc: BaseException, context: str = "", title: str = "mdtviewer") -> QMessageBox:
    """Tell the user about *exc* in a message box (window-modal, not blocking the caller).

    Returns the box (tests read its text); it deletes itself when closed.
    """
    rep = describe(exc, context)
    icon = QMessageBox.Icon.Critical if rep.is_bug else QMessageBox.Icon.Warning
    box = QMessageBox(icon, title, rep.text, QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("errorBox")
    box.setProperty("is_bug", rep.is_bug)
    box.finished.connect(box.deleteLater)
    box.open()
    return box
