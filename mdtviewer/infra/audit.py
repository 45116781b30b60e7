"""Audit trail: who did what to which study, when, and whether it worked.

Local trail: one JSON object per line, appended to ``logs_dir()/audit.jsonl``
(opened in append mode, one ``write`` per record under a lock and an
``fcntl`` advisory lock, fsynced: records are never rewritten or reordered).
Each record has ``time`` (UTC, ISO 8601), ``user`` (configured or the OS
user), ``host``, ``pid``, ``event``, ``action`` (what was done, in words),
``study_uid``, ``outcome`` and an optional ``detail`` dict.  It never holds a
patient name or ID: ``detail`` values are passed through
:func:`mdtviewer.infra.logsafe.redact` and only plain scalars are kept.

Optional: each record is also sent as an RFC 5424 syslog message whose MSG is
the DICOM audit message XML of PS3.15 Annex A.5 (IHE ATNA), to the audit
repository configured in settings section ``"audit"``::

    {"user": "jsmith",                       # optional, else the OS user
     "syslog": {"host": "127.0.0.1", "port": 514, "transport": "udp"|"tcp"}}

UDP carries one message per datagram (RFC 5426); TCP uses octet-counting
framing (RFC 6587 / RFC 5425).  Sending is best effort: a failure is noted in
the local trail's next record (``syslog_error``) but never stops the user.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import json
import os
import socket
import threading
from typing import Any
from xml.sax.saxutils import quoteattr

from mdtviewer.infra import paths, settings

AUDIT_FILE = "audit.jsonl"

#: event -> (DCM EventID code, meaning, EventActionCode, EventTypeCode or None, words)
EVENTS: dict[str, tuple[str, str, str, tuple[str, str] | None, str]] = {
    "app-start": ("110100", "Application Activity", "E", ("110120", "Application Start"), "application started"),
    "app-stop": ("110100", "Application Activity", "E", ("110121", "Application Stop"), "application stopped"),
    "login": ("110114", "User Authentication", "E", ("110122", "Login"), "user authenticated"),
    "study-opened": ("110103", "DICOM Instances Accessed", "R", None, "study opened for review"),
    "query": ("110112", "Query", "E", None, "query sent to a PACS"),
    "retrieve": ("110104", "DICOM Instances Transferred", "C", None, "study retrieved from a PACS"),
    "store": ("110104", "DICOM Instances Transferred", "R", None, "instances sent to a PACS"),
    "export": ("110106", "Export", "R", None, "study exported"),
    "import": ("110107", "Import", "C", None, "study imported"),
    "sr-written": ("110103", "DICOM Instances Accessed", "C", None, "structured report written"),
    "sr-signed": ("110103", "DICOM Instances Accessed", "U", None, "structured report signed"),
    "archive-opened": ("110107", "Import", "C", None, "encrypted archive opened"),
    "profile-set": ("110113", "Security Alert", "E", ("110137", "User Security Attributes Changed"),
                    "reviewer profile (signer, role) set"),
}

OUTCOMES = {"success": "0", "minor-failure": "4", "failure": "8", "major-failure": "12"}

_lock = threading.Lock()
_last_syslog_error: str | None = None


def audit_path():
    return paths.logs_dir() / AUDIT_FILE


def current_user() -> str:
    cfg = settings.get_section("audit") or {}
    user = cfg.get("user") if isinstance(cfg, dict) else None
    if user:
        return str(user)
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _safe_detail(detail: dict[str, Any] | None) -> dict[str, Any] | None:
    if not detail:
        return None
    from mdtviewer.infra.logsafe import redact

    out: dict[str, Any] = {}
    for k, v in detail.items():
        if isinstance(v, bool) or v is None or isinstance(v, (int, float)):
            out[str(k)] = v
        elif isinstance(v, (list, tuple)):
            out[str(k)] = [redact(str(x)) for x in v][:50]
        else:
            out[str(k)] = redact(str(v))[:500]
    return out


def record(
    event: str,
    *,
    study_uid: str | None = None,
    outcome: str = "success",
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Append one audit record (and send it to the syslog repository if configured).

    *event* is one of :data:`EVENTS` (others are accepted and logged as given);
    *outcome* one of ``success``, ``minor-failure``, ``failure``, ``major-failure``.
    Returns the record written.
    """
    global _last_syslog_error
    if outcome not in OUTCOMES:
        outcome = "failure" if outcome not in ("ok", "success") else "success"
    info = EVENTS.get(event)
    rec: dict[str, Any] = {
        "time": _utc_now(),
        "user": current_user(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "event": event,
        "action": info[4] if info else event,
        "study_uid": study_uid or None,
        "outcome": outcome,
    }
    d = _safe_detail(detail)
    if d:
        rec["detail"] = d
    if _last_syslog_error:
        rec["syslog_error"] = _last_syslog_error
        _last_syslog_error = None
    line = json.dumps(rec, ensure_ascii=False, sort_keys=False) + "\n"
    path = audit_path()
    with _lock:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            try:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX)
            except (ImportError, OSError):
                pass
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
    _maybe_syslog(rec)
    return rec


def read_records() -> list[dict[str, Any]]:
    """Every record of the local trail, oldest first (skips a torn last line)."""
    path = audit_path()
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


# -- DICOM audit message (PS3.15 A.5) + RFC 5424 ------------------------------
def _code(tag: str, code: str, meaning: str, system: str = "DCM") -> str:
    return f"<{tag} csd-code={quoteattr(code)} codeSystemName={quoteattr(system)} originalText={quoteattr(meaning)}/>"


def audit_message_xml(rec: dict[str, Any]) -> str:
    """The PS3.15 A.5.1 AuditMessage for *rec* (no patient participant: no patient IDs leave)."""
    info = EVENTS.get(rec["event"], ("110100", "Application Activity", "E", None, rec["event"]))
    code, meaning, action, evtype, _words = info
    outcome = OUTCOMES.get(rec.get("outcome", "success"), "8")
    host = rec.get("host", "")
    parts = [
        "<AuditMessage>",
        f"<EventIdentification EventActionCode={quoteattr(action)} EventDateTime={quoteattr(rec['time'])}"
        f" EventOutcomeIndicator={quoteattr(outcome)}>",
        _code("EventID", code, meaning),
    ]
    if evtype:
        parts.append(_code("EventTypeCode", evtype[0], evtype[1]))
    parts.append("</EventIdentification>")
    parts.append(
        f"<ActiveParticipant UserID={quoteattr(str(rec.get('user', '')))}"
        f" AlternativeUserID={quoteattr(str(rec.get('pid', '')))} UserIsRequestor=\"true\""
        f" NetworkAccessPointID={quoteattr(host)} NetworkAccessPointTypeCode=\"1\">"
    )
    role = {"export": ("110153", "Source Role ID"), "retrieve": ("110152", "Destination Role ID")}.get(
        rec["event"], ("110150", "Application")
    )
    parts.append(_code("RoleIDCode", role[0], role[1]))
    parts.append("</ActiveParticipant>")
    parts.append(
        f"<ActiveParticipant UserID={quoteattr('mdtviewer')} AlternativeUserID={quoteattr(str(rec.get('pid', '')))}"
        f" UserIsRequestor=\"false\" NetworkAccessPointID={quoteattr(host)} NetworkAccessPointTypeCode=\"1\">"
    )
    parts.append(_code("RoleIDCode", "110150", "Application"))
    parts.append("</ActiveParticipant>")
    parts.append(f"<AuditSourceIdentification AuditSourceID={quoteattr('mdtviewer@' + host)}>")
    parts.append('<AuditSourceTypeCode csd-code="1" codeSystemName="DCM" originalText="End-user display device"/>')
    parts.append("</AuditSourceIdentification>")
    if rec.get("study_uid"):
        parts.append(
            f"<ParticipantObjectIdentification ParticipantObjectID={quoteattr(rec['study_uid'])}"
            ' ParticipantObjectTypeCode="2" ParticipantObjectTypeCodeRole="3">'
        )
        parts.append(_code("ParticipantObjectIDTypeCode", "110180", "Study Instance UID"))
        parts.append("</ParticipantObjectIdentification>")
    parts.append("</AuditMessage>")
    return "".join(parts)


def syslog_message(rec: dict[str, Any]) -> bytes:
    """RFC 5424 message: <PRI>1 TIMESTAMP HOST APP PROCID MSGID - MSG (facility authpriv)."""
    severity = 5 if rec.get("outcome", "success") == "success" else 4  # notice / warning
    pri = 10 * 8 + severity  # facility 10: security/authorization (authpriv)
    host = (rec.get("host") or "-").replace(" ", "_")[:255]
    header = f"<{pri}>1 {rec['time']} {host} mdtviewer {rec.get('pid', '-')} DICOM+RFC3881 - "
    return header.encode("ascii", "replace") + b"\xef\xbb\xbf" + audit_message_xml(rec).encode("utf-8")


def _maybe_syslog(rec: dict[str, Any]) -> None:
    global _last_syslog_error
    cfg = settings.get_section("audit") or {}
    sl = cfg.get("syslog") if isinstance(cfg, dict) else None
    if not sl or not sl.get("host"):
        return
    try:
        send_syslog(rec, host=str(sl["host"]), port=int(sl.get("port", 514)), transport=str(sl.get("transport", "udp")))
    except OSError as exc:
        _last_syslog_error = f"{type(exc).__name__}: {exc}"[:200]


def send_syslog(rec: dict[str, Any], *, host: str, port: int, transport: str = "udp", timeout: float = 2.0) -> None:
    msg = syslog_message(rec)
    if transport.lower() == "tcp":
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(str(len(msg)).encode("ascii") + b" " + msg)
    else:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(msg, (host, port))
