"""Logs without patient identifiers.

The application's ordinary log (``logs_dir()/mdtviewer.log``) is for
engineers; it must never hold a patient's name, ID, birth date or accession
number, even when a message is careless.  :class:`RedactingFilter` sits on
the handlers :func:`setup_logging` installs and rewrites every record before
it is written:

* values registered with :func:`register_identifiers` (the reader and the
  exporter register the identifiers of every file they open) are replaced by
  ``[redacted]`` wherever they appear, case-insensitively;
* anything that looks like a DICOM person name (``FAMILY^GIVEN...``: words
  joined by ``^``) is replaced too, registered or not;
* (the handlers' filter only) every file path is cut to its file name: its
  folders become ``[path 1a2b3c4d]`` (a hash keyed per process, so lines of
  one run can be matched up but the folders cannot be guessed back).  Folder
  names often hold a patient's name, birth date or hospital number, and a
  library warning (pydicom's "End of file reached ... found in file /path")
  carries the path before any identifier of that file could be registered.

Filters attached to a handler see the records of every logger that
propagates to it, which is why the filter goes on the handler, not a logger.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import logging.handlers
import os
import re
import threading
from pathlib import Path

from mdtviewer.infra import paths

REDACTED = "[redacted]"
LOG_NAME = "mdtviewer.log"

#: FAMILY^GIVEN^MIDDLE^PREFIX^SUFFIX (any alphabet); at least one caret between word characters
_PN_RE = re.compile(
    r"[^\s\^\\=\"'(),;:\[\]{}<>]*[^\W\d_][^\s\^\\=\"'(),;:\[\]{}<>]*(?:\^[^\s\^\\=\"'(),;:\[\]{}<>]*)+\^*", re.UNICODE
)

#: the folders of an absolute (or ~, ./, ../, X:\\, \\\\server) path, up to its last separator on the line;
#: spaces and apostrophes included (folder names have them), so it may take a little more than the path
_PATH_DIRS_RE = re.compile(
    r"(?:(?<![\w.~:/\\])(?:~|\.{1,2}|[\\/])?|(?<![\w.~])[A-Za-z]:)[\\/](?=[^\s\\/])[^\n\r\"<>|*?]*[\\/]"
)
_PATH_KEY = os.urandom(16)
#: library loggers whose own handlers (their debug helpers add StreamHandlers) also get the filter
LIBRARY_LOGGERS = ("pydicom", "pynetdicom", "highdicom", "py.warnings")

_lock = threading.Lock()
_known: set[str] = set()
_known_re: re.Pattern[str] | None = None
_dirty = False

#: identifiers shorter than this are not redacted as free text (too many false hits: 'M', '12')
MIN_LEN = 3
#: at most this many registered values per process (memory and regex size stay bounded)
MAX_KNOWN = 50_000


def register_identifiers(*values: object) -> None:
    """Remember patient identifiers so that no log line ever shows them.

    Cheap to call for every patient an index meets: the pattern is rebuilt
    lazily, on the next :func:`redact` after a new value was added.
    """
    global _dirty
    with _lock:
        for v in values:
            if len(_known) >= MAX_KNOWN:
                break  # bounded; PN-looking values are still caught by the pattern
            if v is None:
                continue
            s = str(v).strip().strip("^").strip()
            if len(s) < MIN_LEN:
                continue
            for cand in {s, s.replace("^", " ").strip(), *[p for p in s.split("^") if len(p) >= 4]}:
                if cand and cand not in _known:
                    _known.add(cand)
                    _dirty = True


def forget_identifiers() -> None:
    """Drop every registered identifier (a new session; the tests, between tests)."""
    global _known_re, _dirty
    with _lock:
        _known.clear()
        _known_re = None
        _dirty = False


def _known_pattern() -> re.Pattern[str] | None:
    global _known_re, _dirty
    if _dirty:
        with _lock:
            if _dirty:
                alts = sorted(_known, key=len, reverse=True)
                # values with a digit (IDs, dates, accession numbers) also inside words ('case_LEAKID998');
                # names as whole words only: 'NAME' must not eat 'filename', nor 'PATIENT' 'patient_id'
                inside = [a for a in alts if any(c.isdigit() for c in a)]
                whole = [a for a in alts if not any(c.isdigit() for c in a)]
                parts = []
                if inside:
                    parts.append("(?:" + "|".join(re.escape(a) for a in inside) + ")")
                if whole:
                    parts.append(r"(?<!\w)(?:" + "|".join(re.escape(a) for a in whole) + r")(?!\w)")
                _known_re = re.compile("|".join(parts), re.IGNORECASE) if parts else None
                _dirty = False
    return _known_re


def register_dataset(ds) -> None:
    """Register the identifying values of a pydicom Dataset (name, IDs, birth date, accession)."""
    from pydicom.errors import BytesLengthException

    vals: list[str] = []
    for kw in (
        "PatientName",
        "PatientID",
        "OtherPatientIDs",
        "PatientBirthDate",
        "AccessionNumber",
        "IssuerOfPatientID",
        "PatientAddress",
        "OtherPatientNames",
        "PatientMotherBirthName",
    ):
        try:
            v = ds.get(kw, None)
        except (ValueError, TypeError, LookupError, AttributeError, OverflowError, RuntimeError,
                BytesLengthException):
            # a value pydicom cannot convert (see mdtviewer.dicom.values.BAD_VALUE): nothing to register
            continue
        if v is None:
            continue
        if isinstance(v, (list, tuple)) or type(v).__name__ == "MultiValue":
            vals.extend(str(x) for x in v)
        else:
            vals.append(str(v))
    register_identifiers(*vals)


def redact_paths(text: str) -> str:
    """*text* with the folders of every path replaced by ``[path <hash>]`` (the file name stays)."""
    if not text or ("/" not in text and "\\" not in text):
        return text

    def _sub(m: re.Match[str]) -> str:
        digest = hmac.new(_PATH_KEY, m.group(0).encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
        return f"[path {digest[:8]}]/"

    return _PATH_DIRS_RE.sub(_sub, text)


def redact(text: str) -> str:
    """*text* with registered identifiers and person-name-looking values replaced."""
    if not text:
        return text
    pat = _known_pattern()
    if pat is not None:
        text = pat.sub(REDACTED, text)
    return _PN_RE.sub(REDACTED, text)


def redact_log_text(text: str) -> str:
    """What a log handler writes: paths cut to their file name, then :func:`redact`."""
    return redact(redact_paths(text))


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and exception text) through :func:`redact_log_text`.

    Put it on a handler: a handler's filters see the records of every logger
    that reaches it (pydicom, pynetdicom, highdicom, warnings), a logger's
    filters only that logger's own records.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_mdtviewer_redacted", False):
            return True  # a second handler of the same record: already rewritten
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a boundary: a logging filter must never raise, nor leak the args
            msg = str(record.msg)
        record.msg = redact_log_text(msg)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_log_text(record.exc_text)
        record.exc_info = None
        if record.stack_info:
            record.stack_info = redact_log_text(record.stack_info)
        record.pathname = redact_paths(record.pathname or "")
        record._mdtviewer_redacted = True
        return True


def _filter_library_handlers() -> None:
    """A library's own handlers (pydicom.config.debug(), pynetdicom.debug_logger()) get the filter too."""
    for name in LIBRARY_LOGGERS:
        for h in logging.getLogger(name).handlers:
            if isinstance(h, logging.NullHandler):
                continue
            if not any(isinstance(f, RedactingFilter) for f in h.filters):
                h.addFilter(RedactingFilter())


_installed: list[logging.Handler] = []


def setup_logging(level: int = logging.INFO, *, console: bool = False) -> Path:
    """Send the application's logs to ``logs_dir()/mdtviewer.log`` through the redacting filter.

    Idempotent (a second call only changes the level). Returns the log file path.
    """
    path = paths.logs_dir() / LOG_NAME
    root = logging.getLogger()
    with _lock:
        for h in list(_installed):
            if getattr(h, "baseFilename", None) != str(path):
                root.removeHandler(h)
                h.close()
                _installed.remove(h)
        if not any(getattr(h, "baseFilename", None) == str(path) for h in _installed):
            fh = logging.handlers.RotatingFileHandler(path, maxBytes=5 * 1024 * 1024, backupCount=3, encoding="utf-8")
            fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            fh.addFilter(RedactingFilter())
            root.addHandler(fh)
            _installed.append(fh)
        if console and not any(
            isinstance(h, logging.StreamHandler) and not hasattr(h, "baseFilename") for h in _installed
        ):
            sh = logging.StreamHandler()
            sh.addFilter(RedactingFilter())
            root.addHandler(sh)
            _installed.append(sh)
        _filter_library_handlers()
    root.setLevel(level)
    return path
