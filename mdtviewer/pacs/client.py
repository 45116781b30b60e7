"""Talking to a PACS: C-ECHO, C-FIND, C-GET, C-MOVE and C-STORE (pynetdicom).

One :class:`PacsClient` per node.  Design choices, and why:

* **Clear failures.**  Network calls never raise for the PACS's sake: echo,
  retrieve and store return a result with ``ok``/``message``; finds raise
  :class:`PacsError` whose message is one line a user can act on
  ("PACS not reachable at 127.0.0.1:4242 (connection refused)",
  "association rejected: called AE title 'X' not recognised", "TLS
  handshake ... certificate not trusted ...").  No patient identifier is
  ever put in a message or a log.
* **Speed.**  Sockets get TCP_NODELAY and TCP_QUICKACK (see
  :func:`mdtviewer.pacs.storescp.tune_socket`: ~44 ms -> ~3 ms per DIMSE
  round trip with Orthanc), and the query association is kept open and
  reused between echo/find calls (``close()`` or ``with`` releases it).
* **Nothing lost.**  A retrieve first lists the study's instances (C-FIND,
  IMAGE level), fetches only those the local store lacks, writes each one
  atomically as it lands, and reports ``completed/failed/remaining/total``.
  A retrieve cut off half-way keeps what arrived; the next call fetches only
  the rest.
* **C-GET contexts.**  One presentation context per (SOP class, transfer
  syntax) for the SOP classes actually in the study, so the PACS can send
  each instance as stored (Orthanc 1.10 cannot transcode JPEG 2000).

Threading: a client may be used from one worker thread at a time; cancel
by setting the ``cancel`` event (or callable) from any thread.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import struct
import threading
import time
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import UID

from mdtviewer.infra.errors import MdtError
from mdtviewer.infra.lazymodule import LazyModule
from mdtviewer.pacs.localstore import LocalStore, clean_uid, is_valid_uid
from mdtviewer.pacs.nodes import PacsNode
from mdtviewer.pacs.safetext import printable

if TYPE_CHECKING:
    import pynetdicom
    from pynetdicom import AE

    from mdtviewer.pacs import storescp
else:
    # imported on the first association, not at start-up: pynetdicom costs ~45 ms of the
    # window's start (issue 12.5); both are *found* now, so a broken install still fails at once
    pynetdicom = LazyModule("pynetdicom")
    storescp = LazyModule("mdtviewer.pacs.storescp")

#: Study Root Query/Retrieve models and Verification (PS3.4), as pynetdicom.sop_class names them
FIND_MODEL = UID("1.2.840.10008.5.1.4.1.2.2.1")
MOVE_MODEL = UID("1.2.840.10008.5.1.4.1.2.2.2")
GET_MODEL = UID("1.2.840.10008.5.1.4.1.2.2.3")
Verification = UID("1.2.840.10008.1.1")


log = logging.getLogger(__name__)

MAX_CONTEXTS = 128
#: default caps on C-FIND answers: a PACS (or an attacker posing as one) that
#: answers more is stopped (C-CANCEL, then abort) so memory stays bounded
MAX_STUDIES = 5000
MAX_SERIES = 5000
MAX_INSTANCES = 100_000
#: after a C-CANCEL, how long the PACS has to send its final answer before we abort (s)
CANCEL_GRACE_SECONDS = 2.0
#: C-MOVE rounds: a PACS sends each instance of one association in the syntax the
#: first one was negotiated in; what it could not send comes on the next round
MAX_MOVE_ROUNDS = 6
#: a kept association idle longer than this is replaced before use (s)
IDLE_REUSE_SECONDS = 15.0

# pynetdicom logs whole identifiers (patient names and IDs) at DEBUG/INFO level;
# those must never reach the application's logs.
logging.getLogger("pynetdicom").setLevel(logging.WARNING)

#: A-ASSOCIATE-RJ reasons, by (source, diagnostic), DICOM PS3.8 9.3.4
_REJECT_REASONS = {
    (1, 1): "no reason given",
    (1, 2): "application context not supported",
    (1, 3): "calling AE title {calling!r} not recognised",
    (1, 7): "called AE title {called!r} not recognised",
    (2, 1): "no reason given (ACSE)",
    (2, 2): "protocol version not supported",
    (3, 1): "temporary congestion",
    (3, 2): "local limit exceeded",
}

#: C-MOVE/C-GET failure statuses we explain
_RETRIEVE_STATUS = {
    0xA701: "the PACS is out of resources (cannot calculate number of matches)",
    0xA702: "the PACS is out of resources (cannot perform sub-operations)",
    0xA801: "move destination unknown: the PACS does not know our AE title {dest!r} "
            "(register AE {dest!r} with this computer's address and port {port} on the PACS)",
    0xA900: "the PACS says the request does not match its SOP class (identifier error)",
    0xC000: "the PACS is unable to process the request",
    0x0122: "the PACS does not support this retrieve (SOP class not supported)",
    0x0124: "the PACS refused: not authorised (our AE may not be allowed to retrieve)",
    0xFE00: "cancelled",
    0xB000: "some instances failed or were refused",
}

Cancel = threading.Event | Callable[[], bool] | None


class PacsError(MdtError):
    """A PACS operation failed; ``str()`` is one line for the user."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
        self.message = str(self)


class TooManyResults(PacsError):
    """A C-FIND matched more than the cap; the query was cancelled."""

    def __init__(self, limit: int, what: str = "studies"):
        super().__init__(f"more than {limit} {what} match: narrow the query")
        self.limit = limit


class Found(list):
    """C-FIND results, plus the answers refused as malformed (``refused``, ``reasons``)."""

    def __init__(self, items=(), refused: int = 0, reasons: dict | None = None):
        super().__init__(items)
        self.refused = refused
        #: reason -> count
        self.reasons: dict[str, int] = dict(reasons or {})

    def refuse(self, why: str) -> None:
        """Count one answer left out, and why."""
        self.refused += 1
        self.reasons[why] = self.reasons.get(why, 0) + 1

    def note(self) -> str:
        """One line about refused answers, or ''."""
        if not self.refused:
            return ""
        why = "; ".join(f"{n} {r}" for r, n in self.reasons.items())
        return f"{self.refused} answer(s) from the PACS left out: {why}"


# -- results ---------------------------------------------------------------
@dataclass
class EchoResult:
    ok: bool
    message: str
    seconds: float = 0.0


@dataclass
class StudyQuery:
    """C-FIND keys (Study Root).  Empty/None keys do not filter.

    ``patient_name`` may hold ``*``/``?`` wildcards; dates are ``YYYYMMDD``;
    ``modality`` ``"US"`` by default, ``None`` for any.  ``issuer_of_patient_id``
    (0010,0021) narrows a Patient ID to one issuer (the same ID from another
    issuer is another patient); it is always asked for as a return key.
    """

    patient_id: str | None = None
    issuer_of_patient_id: str | None = None
    patient_name: str | None = None
    date_from: str | None = None
    date_to: str | None = None
    accession: str | None = None
    modality: str | None = "US"
    study_uid: str | None = None

    def date_range(self) -> str:
        a, b = self.date_from or "", self.date_to or ""
        if not a and not b:
            return ""
        if a and a == b:
            return a
        return f"{a}-{b}"


@dataclass
class StudyResult:
    study_instance_uid: str
    patient_id: str = ""
    #: Issuer of Patient ID (0010,0021) as the PACS answered it ("" when it holds none or does not say)
    issuer_of_patient_id: str = ""
    patient_name: str = ""
    patient_birth_date: str = ""
    study_date: str = ""
    study_time: str = ""
    study_description: str = ""
    accession_number: str = ""
    modalities: list[str] = field(default_factory=list)
    instances: int | None = None
    series: int | None = None

    def to_json(self, show_identifiers: bool = True) -> dict:
        """The ``mdtviewer pacs find --json`` object (``patient_id`` and ``issuer`` null unless *show_identifiers*:
        the issuer goes with the ID it qualifies)."""
        return {
            "study_instance_uid": self.study_instance_uid,
            "patient_id": self.patient_id if show_identifiers else None,
            "issuer": self.issuer_of_patient_id if show_identifiers else None,
            "study_date": self.study_date,
            "study_description": self.study_description,
            "modalities": self.modalities,
            "instances": self.instances,
        }


@dataclass
class SeriesResult:
    series_instance_uid: str
    modality: str = ""
    series_number: int | None = None
    series_description: str = ""
    instances: int | None = None


@dataclass
class InstanceRef:
    sop_instance_uid: str
    sop_class_uid: str
    series_instance_uid: str


@dataclass
class RetrieveProgress:
    completed: int
    failed: int
    remaining: int
    total: int


@dataclass
class RetrieveResult:
    """``completed``: instances of the study now in the local store (including
    ones already there); ``remaining``: not (yet) here; ``fetched``: arrived
    in this call; ``paths``: every local file of the study."""

    completed: int
    failed: int
    remaining: int
    total: int
    message: str
    paths: list[Path] = field(default_factory=list)
    fetched: int = 0
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return self.total > 0 and self.remaining == 0 and not self.cancelled


@dataclass
class StoreResult:
    sent: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    message: str = ""

    @property
    def ok(self) -> bool:
        return not self.failed


# -- helpers ---------------------------------------------------------------
def _is_cancelled(cancel: Cancel) -> bool:
    if cancel is None:
        return False
    if hasattr(cancel, "is_set"):
        return bool(cancel.is_set())
    return bool(cancel())


def _as_int(v) -> int | None:
    try:
        return int(v) if v not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _s(ds: Dataset, kw: str) -> str:
    """A text value as received; several values joined by DICOM's own separator, never a Python list."""
    try:
        v = ds.get(kw, "")
    except Exception:  # noqa: BLE001 - a value pydicom cannot decode
        return ""
    if v is None:
        return ""
    if isinstance(v, (list, tuple)) or type(v).__name__ == "MultiValue":
        return "\\".join(str(x) for x in v)
    return str(v)


def _uid(ds: Dataset, kw: str) -> tuple[str, str | None]:
    """(uid, None) for one valid UID, else ("", reason)."""
    try:
        elem = ds[kw] if kw in ds else None
    except Exception:  # noqa: BLE001 - a value pydicom cannot decode
        return "", "with an unreadable UID"
    if elem is None or elem.value in (None, ""):
        return "", f"without {kw}"
    v = elem.value
    if elem.VM > 1 or isinstance(v, (list, tuple)) or type(v).__name__ == "MultiValue":
        return "", f"with several values in {kw}"
    u = clean_uid(v)
    if not is_valid_uid(u):
        return "", f"with an invalid {kw}"
    return u, None


#: STUDY-level answer keys read straight from the raw bytes (tag, VR)
_RAW_STUDY_KEYS = {
    "study_instance_uid": 0x0020000D,
    "patient_id": 0x00100020,
    "issuer_of_patient_id": 0x00100021,
    "patient_name": 0x00100010,
    "patient_birth_date": 0x00100030,
    "study_date": 0x00080020,
    "study_time": 0x00080030,
    "study_description": 0x00081030,
    "accession_number": 0x00080050,
    "modalities": 0x00080061,
    "instances": 0x00201208,
    "series": 0x00201206,
}
#: Specific Character Set -> Python codec, as pydicom maps them (no escape sequences in these)
_RAW_CHARSETS = {"": "latin_1", "ISO_IR 6": "latin_1", "ISO_IR 100": "latin_1", "ISO_IR 192": "utf-8"}


def _study_from_raw(ds: Dataset) -> StudyResult | str | None:
    """A C-FIND STUDY answer decoded from its raw element bytes, without pydicom's
    per-element conversion (issue 12.3: ~0.2 ms an answer, a third of a 5,000-study find).

    Only for the plain case: every wanted element still raw, the answer in
    one character set without code extensions (UTF-8, Latin-1, ASCII).  Returns a :class:`StudyResult`, a
    refusal reason (str) as :func:`_uid` gives, or None: use pydicom.
    """
    from pydicom.dataelem import RawDataElement

    elems = ds._dict
    cs = elems.get(0x00080005)  # type: ignore[call-overload]
    codec: str | None
    if cs is None:
        codec = _RAW_CHARSETS[""]
    elif isinstance(cs, RawDataElement):
        try:
            codec = _RAW_CHARSETS.get(bytes(cs.value or b"").decode("ascii").strip("\x00 "))
        except (UnicodeDecodeError, TypeError):
            return None
    else:
        return None
    if codec is None:  # several or code-extension character sets: pydicom's decoder
        return None
    texts: dict[str, str] = {}
    for name, tag in _RAW_STUDY_KEYS.items():
        elem = elems.get(tag)  # type: ignore[call-overload]
        if elem is None:
            texts[name] = ""
            continue
        if not isinstance(elem, RawDataElement) or elem.VR == "SQ":
            return None
        raw = elem.value
        if not raw:
            texts[name] = ""
            continue
        try:
            text = bytes(raw).decode(codec)
        except (UnicodeDecodeError, TypeError):
            return None
        texts[name] = text.rstrip("\x00 ")
    uid = texts["study_instance_uid"].strip()
    if not uid:
        return "without StudyInstanceUID"
    if "\\" in uid:
        return "with several values in StudyInstanceUID"
    uid = clean_uid(uid)
    if not is_valid_uid(uid):
        return "with an invalid StudyInstanceUID"
    return StudyResult(
        study_instance_uid=uid,
        patient_id=texts["patient_id"],
        issuer_of_patient_id=texts["issuer_of_patient_id"].strip(),
        patient_name=texts["patient_name"],
        patient_birth_date=texts["patient_birth_date"].strip(),
        study_date=texts["study_date"].strip(),
        study_time=texts["study_time"].strip(),
        study_description=texts["study_description"],
        accession_number=texts["accession_number"],
        modalities=[m.strip() for m in texts["modalities"].split("\\") if m.strip()],
        instances=_as_int(texts["instances"].strip()),
        series=_as_int(texts["series"].strip()),
    )


_IMPLICIT_HEAD = struct.Struct("<HHL").unpack_from
_EXPLICIT_HEAD = struct.Struct("<HH2sH").unpack_from
_LENGTH_32 = struct.Struct("<L").unpack_from


def _vr_tables() -> tuple[dict[bytes, str], frozenset[str]]:
    from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, VR

    return {v.value.encode("ascii"): v.value for v in VR}, frozenset(str(v) for v in EXPLICIT_VR_LENGTH_32)


_VR_BY_BYTES, _VR_LENGTH_32 = _vr_tables()


def raw_dataset(data: bytes, implicit_vr: bool) -> Dataset | None:
    """A C-FIND identifier (little endian) as the Dataset of raw elements pydicom's ``read_dataset``
    makes of it, read in one pass over the bytes (issue 12.3: pydicom's reader, one ``read()`` per
    element header, was ~0.1 ms an answer).  None for anything but the plain case -- an undefined
    length (a sequence), an unknown VR, a value cut short: then pydicom reads it.
    """
    from pydicom.charset import convert_encodings, default_encoding
    from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element, empty_value_for_VR
    from pydicom.tag import BaseTag

    elems: dict[BaseTag, DataElement | RawDataElement] = {}
    pos, end = 0, len(data)
    vr: str | None = None
    while pos + 8 <= end:
        if implicit_vr:
            group, elem, length = _IMPLICIT_HEAD(data, pos)
            pos += 8
        else:
            group, elem, vr_bytes, length = _EXPLICIT_HEAD(data, pos)
            pos += 8
            vr = _VR_BY_BYTES.get(vr_bytes)
            if vr is None:
                return None
            if vr in _VR_LENGTH_32:
                if pos + 4 > end:
                    return None
                length = _LENGTH_32(data, pos)[0]
                pos += 4
        tag = BaseTag(group << 16 | elem)
        if tag == 0xFFFEE00D:
            break
        if length == 0xFFFFFFFF or pos + length > end:
            return None
        value: bytes | None = data[pos : pos + length] if length else empty_value_for_VR(vr, raw=True)  # type: ignore[assignment]
        elems[tag] = RawDataElement(tag, vr, length, value, pos, implicit_vr, True)
        pos += length
    ds = Dataset(elems)
    cs = elems.get(BaseTag(0x00080005))
    encoding: str | list[str] = default_encoding
    if isinstance(cs, RawDataElement):
        encoding = convert_encodings(convert_raw_data_element(cs).value)
    ds.set_original_encoding(implicit_vr, True, encoding)
    return ds


class _Pending:
    """The status of a pending C-FIND answer (0xFF00/0xFF01): what :meth:`PacsClient._find` reads of it."""

    __slots__ = ("Status",)

    def __init__(self, code: int) -> None:
        self.Status = code

    def __contains__(self, keyword: str) -> bool:
        return keyword == "Status"


_PENDING = {code: _Pending(code) for code in (0xFF00, 0xFF01)}


def _find_responses(assoc, ident: Dataset, msg_id: int):
    """``assoc.send_c_find(ident)``'s answers as ``(status, identifier)``, read lean (issue 12.3).

    pynetdicom's own generator builds a status Dataset and reads each identifier with pydicom's
    ``read_dataset`` on the thread that also has to let pynetdicom's network thread run: 2x
    ``findscu`` for 5,000 studies.  Here the DIMSE answers are taken from the association's
    queue as pynetdicom's generator takes them (the request is sent by ``send_c_find`` itself),
    pending ones get a shared status and :func:`raw_dataset`; the final answer is built as
    pynetdicom builds it.  Where pynetdicom lacks what this needs, its own generator is used.
    """
    responses = assoc.send_c_find(ident, FIND_MODEL, msg_id=msg_id)  # sent now; the generator is not started
    dimse = getattr(assoc, "dimse", None)
    checkpoint = getattr(assoc, "_reactor_checkpoint", None)
    if dimse is None or checkpoint is None or not hasattr(assoc, "_handle_no_response"):
        yield from responses
        return
    responses.close()
    from pynetdicom.dimse_primitives import C_FIND
    from pynetdicom.dsutils import decode

    syntaxes = {cx.context_id: cx.transfer_syntax[0] for cx in assoc.accepted_contexts if cx.context_id is not None}
    try:
        while True:
            cx_id, rsp = dimse.get_msg(block=True)
            if rsp is None:  # the DIMSE timeout expired, or the association went (see _wake_waiters)
                assoc._handle_no_response()
                yield Dataset(), None
                return
            if not isinstance(rsp, C_FIND) or not rsp.is_valid_response:
                log.error("the PACS sent something else than a C-FIND answer: association aborted")
                assoc.abort()
                yield Dataset(), None
                return
            code = int(rsp.Status or 0)
            pending = _PENDING.get(code)
            if pending is None:
                status = Dataset()
                status.Status = code
                for keyword in rsp.STATUS_OPTIONAL_KEYWORDS:
                    if getattr(rsp, keyword) is not None:
                        setattr(status, keyword, getattr(rsp, keyword))
                yield status, None
                return
            identifier = None
            if rsp.Identifier is not None:
                ts = syntaxes.get(cx_id) if cx_id is not None else None
                data = rsp.Identifier.getvalue()
                if ts is not None and ts.is_little_endian and not ts.is_deflated:
                    identifier = raw_dataset(data, ts.is_implicit_VR)
                if identifier is None and ts is not None:
                    try:
                        identifier = decode(BytesIO(data), ts.is_implicit_VR, ts.is_little_endian, ts.is_deflated)
                    except Exception:  # noqa: BLE001 - as pynetdicom: an answer that cannot be read is dropped
                        log.error("a C-FIND answer could not be decoded (dropped)")
            yield pending, identifier
    finally:
        checkpoint.set()  # pynetdicom's reactor takes its messages again


def _safe_get(ds: Dataset, kw: str):
    try:
        return ds.get(kw)
    except Exception:  # noqa: BLE001 - a malformed value from the peer
        return None


def _split_cs(v) -> list[str]:
    if v is None or v == "":
        return []
    if isinstance(v, (list, tuple)) or type(v).__name__ == "MultiValue":
        return [str(x) for x in v if str(x)]
    return [x for x in str(v).split("\\") if x]


def _audit(event: str, study_uid: str | None = None, ok: bool = True, **detail) -> None:
    """One audit-trail record per PACS transfer (never patient identifiers); never raises."""
    try:
        from mdtviewer.infra import audit

        audit.record(event, study_uid=study_uid, outcome="success" if ok else "failure", detail=detail)
    except Exception:  # the audit trail must not stop clinical work
        log.warning("audit record for %s failed", event, exc_info=True)


def audit_retrieve(node: PacsNode, study_uid: str, res: RetrieveResult, method: str | None = None,
                   purpose: str | None = None) -> None:
    """The audit-trail record of one retrieve (CLI, dialog; the MDT prefetch writes its own)."""
    method = method or ("wado-rs" if node.is_dicomweb else node.retrieve)
    _audit("retrieve", study_uid, ok=res.ok, node=node.name, method=method, fetched=res.fetched,
           completed=res.completed, total=res.total, cancelled=res.cancelled, purpose=purpose,
           reason=None if res.ok else res.message)


def _wake_waiters(event) -> None:
    """On abort or a dropped connection, wake a DIMSE call waiting for an answer.

    pynetdicom would otherwise sit out the whole DIMSE timeout (60 s) after a
    cancel or a PACS that died; an empty message makes it give up at once.
    """
    try:
        event.assoc.dimse.msg_queue.put((None, None))
    except Exception:  # noqa: BLE001 - a notification handler must never fail the association
        pass


def _note_pdu(event) -> None:
    """EVT_PDU_RECV: remember what the peer sent (an A-ABORT's source and reason)."""
    try:
        a = event.assoc
        a._mdt_pdus = getattr(a, "_mdt_pdus", 0) + 1
        pdu = event.pdu
        if type(pdu).__name__ == "A_ABORT_RQ":
            a._mdt_peer_abort = (getattr(pdu, "source", None), getattr(pdu, "reason_diagnostic", None))
    except Exception:  # noqa: BLE001 - a notification handler must never fail the association
        pass


def _peer_pdus(assoc) -> int:
    return int(getattr(assoc, "_mdt_pdus", 0))


_ABORT_SOURCES = {0: "by the PACS itself", 2: "by the PACS's DICOM layer"}
_ABORT_REASONS = {0: "no reason given", 1: "unrecognised PDU", 2: "unexpected PDU", 4: "unrecognised PDU parameter",
                  5: "unexpected PDU parameter", 6: "invalid PDU parameter value"}


def _abort_text(abort) -> str:
    src, reason = abort
    text = f"A-ABORT {_ABORT_SOURCES.get(src, f'source {src}')}"
    if src == 2 and reason in _ABORT_REASONS:
        text += f": {_ABORT_REASONS[reason]}"
    return text


class PacsClient:
    """Operations on one :class:`~mdtviewer.pacs.nodes.PacsNode`."""

    def __init__(self, node: PacsNode, *, listen_host: str = "", max_studies: int = MAX_STUDIES,
                 max_series: int = MAX_SERIES, max_instances: int = MAX_INSTANCES):
        self.node = node
        #: caps on C-FIND answers (:class:`TooManyResults` beyond them)
        self.max_studies, self.max_series, self.max_instances = max_studies, max_series, max_instances
        #: where our C-MOVE storage SCP binds ("" = all interfaces)
        self.listen_host = listen_host
        self._query_assoc = None
        self._query_used = 0.0
        self._scp: storescp.StorageSCP | None = None  # our C-MOVE destination, kept while the client lives
        self._lock = threading.RLock()

    # -- association plumbing --------------------------------------------
    def _ae(self, ae_title: str | None = None) -> AE:
        # A path given to send_c_store is streamed from the file as it is (no decode,
        # no re-encode, one chunk in memory); we only ever pass paths for that.
        cfg = pynetdicom._config
        cfg.STORE_SEND_CHUNKED_DATASET = True
        # no identifier (patient name, ID) in pynetdicom's logs (storescp sets the same when imported)
        cfg.LOG_RESPONSE_IDENTIFIERS = cfg.LOG_REQUEST_IDENTIFIERS = False
        ae = pynetdicom.AE(ae_title or self.node.calling_aet)
        ae.connection_timeout = self.node.connect_timeout
        ae.acse_timeout = self.node.acse_timeout
        ae.dimse_timeout = self.node.dimse_timeout
        ae.network_timeout = max(self.node.dimse_timeout, 30)
        ae.maximum_pdu_size = 0
        return ae

    def _tls_context(self) -> ssl.SSLContext:
        n = self.node
        for label, p in (("CA certificate", n.tls_ca), ("client certificate", n.tls_cert), ("client key", n.tls_key)):
            if p and not Path(p).is_file():
                raise PacsError(f"TLS {label} file not found: {p}")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            if n.tls_ca:
                ctx.load_verify_locations(cafile=n.tls_ca)
            else:
                ctx.load_default_certs()
            if n.tls_cert:
                ctx.load_cert_chain(n.tls_cert, n.tls_key)
        except (ssl.SSLError, OSError) as exc:
            why = getattr(exc, "reason", None) or exc.__class__.__name__
            raise PacsError(f"TLS files could not be loaded ({why})") from exc
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    def _tls_server_context(self) -> ssl.SSLContext:
        """TLS for our C-MOVE storage SCP: our certificate, the PACS must present one signed by our CA."""
        n = self.node
        if not (n.tls_cert and n.tls_key):
            raise PacsError("C-MOVE over TLS needs our certificate and key (the PACS connects to us)")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_cert_chain(n.tls_cert, n.tls_key)
            if n.tls_ca:
                ctx.load_verify_locations(cafile=n.tls_ca)
            else:
                ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
        except (ssl.SSLError, OSError) as exc:
            raise PacsError(
                f"TLS files could not be loaded ({getattr(exc, 'reason', None) or exc.__class__.__name__})"
            ) from exc
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    def _associate(self, ae: AE, handlers=None, ext_neg=None):
        """Open an association or raise :class:`PacsError` with the reason."""
        n = self.node
        tls_args = (self._tls_context(), n.host) if n.uses_tls else None
        evt = pynetdicom.evt
        handlers = [(evt.EVT_CONN_OPEN, storescp.tune_socket), (evt.EVT_ABORTED, _wake_waiters),
                    (evt.EVT_CONN_CLOSE, _wake_waiters), (evt.EVT_PDU_RECV, _note_pdu)] + list(handlers or [])
        for _attempt in (0, 1):
            t0 = time.monotonic()
            assoc = ae.associate(n.host, n.port, ae_title=n.called_aet, ext_neg=ext_neg,
                                 tls_args=tls_args, evt_handlers=handlers)
            if assoc.is_established:
                return assoc
            waited = time.monotonic() - t0
            # A PACS that rejects and closes at once sometimes reaches pynetdicom as a bare
            # close (the A-ASSOCIATE-RJ is lost in the race): ask once more for a clear answer.
            if assoc.is_rejected or not assoc.is_aborted or n.uses_tls or _peer_pdus(assoc) \
                    or waited >= n.acse_timeout * 0.9:
                break
        raise PacsError(self._explain_failure(assoc, waited))

    def _explain_failure(self, assoc, waited: float = 0.0) -> str:
        n = self.node
        if assoc.is_rejected:
            prim = assoc.acceptor.primitive
            src: Any = getattr(prim, "result_source", None)
            diag: Any = getattr(prim, "diagnostic", None)
            result: Any = getattr(prim, "result", None)
            reason = _REJECT_REASONS.get((src, diag), f"source {src}, reason {diag}")
            reason = reason.format(called=n.called_aet, calling=n.calling_aet)
            by = {2: "the PACS's DICOM layer (ACSE)", 3: "the PACS's presentation layer"}.get(src, "the PACS")
            when = {1: "permanent", 2: "transient: try again later"}.get(result, "")
            return f"association rejected by {by} at {n.address}" + (f" ({when})" if when else "") + f": {reason}"
        abort = getattr(assoc, "_mdt_peer_abort", None)
        if abort is not None:
            return (f"the PACS at {n.address} aborted the association request ({_abort_text(abort)}; "
                    f"does it accept our AE title {n.calling_aet!r}? does it expect TLS?)")
        if not n.uses_tls and not _peer_pdus(assoc) and waited >= n.acse_timeout * 0.9:
            return (f"the PACS at {n.address} accepted the connection but did not answer the association "
                    f"request within {n.acse_timeout:g} s (is it a DICOM port? does it expect TLS?)")
        return self._diagnose_connection(aborted=assoc.is_aborted)

    def _diagnose_connection(self, aborted: bool = False) -> str:
        """Why could no association be made?  Ask the network directly."""
        n = self.node
        where = n.address
        try:
            sock = socket.create_connection((n.host, n.port), timeout=n.connect_timeout)
        except ConnectionRefusedError:
            return f"PACS not reachable at {where} (connection refused: nothing listening on that port)"
        except TimeoutError:
            return f"PACS not reachable at {where} (no answer within {n.connect_timeout:g} s)"
        except socket.gaierror:
            return f"PACS not reachable at {where} (host name not found)"
        except OSError as exc:
            return f"PACS not reachable at {where} ({exc.strerror or exc})"
        with sock:
            if n.uses_tls:
                try:
                    ctx = self._tls_context()
                    with ctx.wrap_socket(sock, server_hostname=n.host) as tls:
                        tls.settimeout(n.connect_timeout)
                        # TLS 1.3 checks our certificate after the handshake: a read shows a refusal
                        try:
                            tls.recv(1)
                        except TimeoutError:
                            pass
                except ssl.SSLCertVerificationError as exc:
                    return (
                        f"TLS handshake with {where} failed: the PACS certificate is not trusted "
                        f"({exc.verify_message or exc.reason})"
                    )
                except ssl.SSLError as exc:
                    reason = (exc.reason or str(exc)).lower().replace("_", " ")
                    if "unknown ca" in reason or "bad certificate" in reason or "certificate required" in reason:
                        return f"TLS handshake with {where} failed: the PACS refused our certificate ({reason})"
                    return f"TLS handshake with {where} failed ({reason})"
                except (ConnectionResetError, BrokenPipeError):
                    return f"TLS connection to {where} was reset by the PACS (it may not trust our certificate)"
                except PacsError as exc:
                    return str(exc)
                except OSError as exc:
                    return f"TLS connection to {where} failed ({exc.strerror or exc})"
                return f"the PACS at {where} accepted TLS but ended the association" + (" (aborted)" if aborted else "")
        if aborted:
            return (
                f"the PACS at {where} closed the connection without answering the association request "
                f"(does it expect TLS? does it accept connections from this computer?)"
            )
        return (
            f"the PACS at {where} accepted the connection but did not answer the association request "
            f"within {self.node.acse_timeout:g} s (is it a DICOM port? does it expect TLS?)"
        )

    def _query(self):
        """The reusable association for echo, find and C-MOVE.

        Dropped and made anew after :data:`IDLE_REUSE_SECONDS` without use:
        PACSs close idle associations (Orthanc after 30 s), and a request sent
        into a closing association would fail for no reason the user can fix.
        """
        a = self._query_assoc
        now = time.monotonic()
        if a is not None and a.is_established and now - self._query_used < IDLE_REUSE_SECONDS:
            self._query_used = now
            return a
        if a is not None:
            self._drop_query()
        self._query_used = now
        ae = self._ae()
        ae.add_requested_context(Verification)
        ae.add_requested_context(FIND_MODEL)
        ae.add_requested_context(MOVE_MODEL)  # C-MOVE needs no storage contexts: reuse this association
        self._query_assoc = self._associate(ae)
        return self._query_assoc

    def close(self) -> None:
        """Release the kept query association and stop our C-MOVE listener."""
        with self._lock:
            scp, self._scp = self._scp, None
            if scp is not None:
                scp.stop()
            a, self._query_assoc = self._query_assoc, None
            if a is not None and a.is_established:
                try:
                    a.release()
                except Exception:  # noqa: BLE001 - releasing an association that may already be gone
                    a.abort()

    def __enter__(self) -> PacsClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- echo --------------------------------------------------------------
    def echo(self) -> EchoResult:
        """C-ECHO ("Test connection"); never raises."""
        t0 = time.perf_counter()
        with self._lock:
            try:
                for _attempt in (0, 1):
                    assoc = self._query()
                    status = assoc.send_c_echo()
                    if status and "Status" in status:
                        break
                    self._drop_query()  # stale kept association: try a fresh one once
                else:
                    why = (self._lost(assoc, "C-ECHO") if getattr(assoc, "_mdt_peer_abort", None) is not None
                           else f"no answer to C-ECHO from {self.node.address}")
                    return EchoResult(False, why, time.perf_counter() - t0)
            except PacsError as exc:
                return EchoResult(False, str(exc), time.perf_counter() - t0)
        dt = time.perf_counter() - t0
        if status.Status == 0:
            return EchoResult(
                True, f"C-ECHO to {self.node.called_aet} at {self.node.address} succeeded ({dt * 1000:.0f} ms)", dt
            )
        return EchoResult(False, f"C-ECHO answered with status 0x{status.Status:04X}", dt)

    def _drop_query(self) -> None:
        a, self._query_assoc = self._query_assoc, None
        if a is not None and a.is_established:
            try:
                a.abort()
            except Exception:  # noqa: BLE001 - aborting an association that may already be gone
                pass

    # -- find --------------------------------------------------------------
    def _lost(self, assoc, op: str) -> str:
        """Why an association ended while we waited for the answer to *op*."""
        n = self.node
        abort = getattr(assoc, "_mdt_peer_abort", None) if assoc is not None else None
        if abort is not None:
            return (
                f"the PACS at {n.address} ended the association in answer to our {op} ({_abort_text(abort)}): "
                f"it may not allow our AE title {n.calling_aet!r} to do this"
            )
        return f"the connection to {n.address} was lost during the {op}"

    def _find(
        self, ident: Dataset, cancel: Cancel = None, limit: int | None = None, what: str = "studies"
    ) -> list[Dataset]:
        """C-FIND; at most *limit* answers (beyond: C-CANCEL, then :class:`TooManyResults`)."""
        if "SpecificCharacterSet" not in ident:
            # ask in UTF-8 and so be answered in it: without it the query's own accents cannot be
            # encoded, and Orthanc answers in Latin-1, dropping 'Ż', 'Ł', 'ć' from the names it returns
            ident.SpecificCharacterSet = "ISO_IR 192"
        with self._lock:
            for attempt in (0, 1):
                assoc = self._query()
                out: list[Dataset] = []
                final = None
                final_status = None
                msg_id = (int(time.monotonic() * 1000) % 60000) + 1
                responses = _find_responses(assoc, ident, msg_id)
                for status, ds in responses:
                    if _is_cancelled(cancel):
                        self._drop_query()  # abort: the PACS stops sending
                        raise PacsError("query cancelled")
                    if not status or "Status" not in status:
                        final = None
                        break
                    if status.Status in (0xFF00, 0xFF01):
                        if ds is not None:
                            out.append(ds)
                        if limit is not None and len(out) > limit:
                            out.clear()  # memory stays bounded whatever the PACS sends
                            self._cancel_find(assoc, responses, msg_id)
                            raise TooManyResults(limit, what)
                    else:
                        final = status.Status
                        final_status = status
                if final is None:
                    if attempt == 0 and not out and getattr(assoc, "_mdt_peer_abort", None) is None:
                        self._drop_query()  # the kept association went stale
                        continue
                    self._drop_query()
                    raise PacsError(self._lost(assoc, "query"))
                if final != 0:
                    comment = printable(_s(final_status, "ErrorComment")) if final_status is not None else ""
                    raise PacsError(
                        f"the PACS refused the query (status 0x{final:04X})" + (f": {comment}" if comment else "")
                    )
                return out
        raise PacsError("unreachable")

    def _cancel_find(self, assoc, responses, msg_id: int) -> None:
        """C-CANCEL the running C-FIND; read its last answers briefly, abort if it goes on."""
        try:
            assoc.send_c_cancel(msg_id, query_model=FIND_MODEL)
        except Exception:  # noqa: BLE001 - the association may be gone: end it
            self._drop_query()
            return
        deadline = time.monotonic() + CANCEL_GRACE_SECONDS
        ended = False
        for status, _ds in responses:  # answers already on the wire: read and dropped
            if not status or "Status" not in status:
                break
            if status.Status not in (0xFF00, 0xFF01):
                ended = True
                break
            if time.monotonic() > deadline:
                break
        if not ended:
            self._drop_query()  # the PACS ignored the cancel: end the association

    def find_studies(self, query: StudyQuery, cancel: Cancel = None) -> Found:
        """C-FIND at STUDY level.  Raises :class:`PacsError` on failure.

        At most :attr:`max_studies` answers (:class:`TooManyResults` beyond).
        An answer without exactly one valid Study Instance UID is left out
        (counted in the result's ``refused``/``reasons``): it could be neither
        shown as one study nor retrieved.
        """
        q = Dataset()
        q.QueryRetrieveLevel = "STUDY"
        q.StudyInstanceUID = query.study_uid or ""
        q.PatientID = query.patient_id or ""
        q.IssuerOfPatientID = query.issuer_of_patient_id or ""
        q.PatientName = query.patient_name or ""
        q.PatientBirthDate = ""
        q.StudyDate = query.date_range()
        q.StudyTime = ""
        q.StudyDescription = ""
        q.AccessionNumber = query.accession or ""
        q.ModalitiesInStudy = (query.modality or "") if (query.modality or "").upper() != "ANY" else ""
        q.NumberOfStudyRelatedInstances = ""
        q.NumberOfStudyRelatedSeries = ""
        keys = [
            k
            for k in ("patient_id", "issuer_of_patient_id", "patient_name", "date_from", "date_to", "accession",
                      "modality", "study_uid")
            if getattr(query, k)
        ]
        try:
            found = self._find(q, cancel, self.max_studies, "studies")
        except PacsError as exc:
            _audit("query", ok=False, node=self.node.name, keys=keys, reason=str(exc))
            raise
        # the common answer (UTF-8/ASCII, raw elements) is decoded straight from its bytes; others by pydicom
        out = study_rows(found, lambda ds: fast if (fast := _study_from_raw(ds)) is not None else study_row(ds))
        _audit("query", node=self.node.name, keys=keys, results=len(out), refused=out.refused or None)
        if out.refused:
            log.warning("C-FIND: %s", out.note())
        out.sort(key=lambda s: (s.study_date, s.study_time), reverse=True)
        return out

    def find_series(self, study_uid: str, cancel: Cancel = None) -> Found:
        q = Dataset()
        q.QueryRetrieveLevel = "SERIES"
        q.StudyInstanceUID = study_uid
        q.SeriesInstanceUID = ""
        q.Modality = ""
        q.SeriesNumber = ""
        q.SeriesDescription = ""
        q.NumberOfSeriesRelatedInstances = ""
        return series_rows(self._find(q, cancel, self.max_series, "series"))

    def find_instances(self, study_uid: str, cancel: Cancel = None) -> Found:
        """The study's instances (IMAGE level); answers without one valid SOP Instance
        and Series Instance UID are left out (they could not be asked for)."""
        q = Dataset()
        q.QueryRetrieveLevel = "IMAGE"
        q.StudyInstanceUID = study_uid
        q.SeriesInstanceUID = ""
        q.SOPInstanceUID = ""
        q.SOPClassUID = ""
        return instance_rows(self._find(q, cancel, self.max_instances, "instances"))

    # -- retrieve ------------------------------------------------------------
    def retrieve(
        self,
        study_uid: str,
        dest_store: LocalStore | None = None,
        *,
        method: str | None = None,
        progress: Callable[[RetrieveProgress], None] | None = None,
        cancel: Cancel = None,
        on_instance: Callable[[Path], None] | None = None,
        select: Callable[[InstanceRef], bool] | None = None,
    ) -> RetrieveResult:
        """Fetch a study into *dest_store* by C-GET or C-MOVE (node default).

        Only instances missing from the store are requested.  *select* limits
        the retrieve to the instances it accepts (e.g. only the study's
        reports): the counts and message are then about those alone.  Never raises for
        network trouble: the result says what arrived and why the rest did not.
        *progress* and *on_instance* are called from network threads.

        Unlike queries and stores, a retrieve is audited by the caller, which
        knows its purpose: call :func:`audit_retrieve` with the result.
        """
        method = (method or self.node.retrieve or "get").lower()
        return self._retrieve(study_uid, dest_store, method, progress, cancel, on_instance, select)

    def _retrieve(self, study_uid, dest_store, method, progress, cancel, on_instance, select=None) -> RetrieveResult:
        store = dest_store if dest_store is not None else LocalStore()
        if method not in ("get", "move"):
            raise ValueError(f"retrieve method must be 'get' or 'move', not {method!r}")
        try:
            # what a killed earlier retrieve left half-written goes first (never under a final name)
            store.clean_partials(study_uid)
        except OSError as exc:
            log.warning("could not clean interrupted writes: %s", exc.strerror or exc)
        try:
            refs = self.find_instances(study_uid, cancel)
        except PacsError as exc:
            return self._result(store, study_uid, [], 0, 0, str(exc), cancelled=_is_cancelled(cancel))
        if not refs:
            why = f" ({refs.note()})" if getattr(refs, "refused", 0) else ""
            return RetrieveResult(0, 0, 0, 0, f"the PACS has no instances for this study{why}", [])
        all_refs = refs  # the study's whole layout, so retrieve keys ask for series where they can
        if select is not None:
            refs = Found(r for r in refs if select(r))
            if not refs:
                return RetrieveResult(0, 0, 0, 0, "the PACS has no such instances in this study", [])
        have = store.present(r.sop_instance_uid for r in refs)
        missing = [r for r in refs if r.sop_instance_uid not in have]
        total = len(refs)
        if not missing:
            return self._result(store, study_uid, refs, 0, 0, "")
        rlog = storescp.ReceiveLog()
        counts: dict = {"failed": 0}

        def note(path: Path) -> None:
            if on_instance is not None:
                on_instance(path)
            if progress is not None:
                with rlog.lock:
                    done = len(have) + len(rlog.sop_uids)
                failed = counts["failed"] + counts.get("pending_failed", 0)
                progress(RetrieveProgress(done, failed, max(total - done, 0), total))

        if progress is not None:
            progress(RetrieveProgress(len(have), 0, len(missing), total))
        if method == "get":
            err = self._run_get(study_uid, all_refs, missing, store, rlog, note, counts, cancel)
        else:
            err = self._run_move(study_uid, all_refs, missing, store, rlog, note, counts, cancel)
        return self._result(
            store,
            study_uid,
            refs,
            len(rlog.sop_uids),
            counts["failed"],
            err or "",
            cancelled=_is_cancelled(cancel),
            errors=rlog.errors,
        )

    def _result(
        self,
        store: LocalStore,
        study_uid: str,
        refs: list[InstanceRef],
        fetched: int,
        failed: int,
        error: str,
        cancelled: bool = False,
        errors=(),
    ) -> RetrieveResult:
        return retrieve_summary(store, study_uid, refs, fetched, failed, error, cancelled, errors)

    @staticmethod
    def _retrieve_keys(refs: list[InstanceRef], missing: list[InstanceRef], study_uid: str) -> list[Dataset]:
        """Identifiers asking for exactly the missing instances (few requests)."""

        def ident(level: str, **kw) -> Dataset:
            d = Dataset()
            d.QueryRetrieveLevel = level
            d.StudyInstanceUID = study_uid
            for k, v in kw.items():
                setattr(d, k, v)
            return d

        if len(missing) == len(refs):
            return [ident("STUDY")]
        by_series: dict[str, list[InstanceRef]] = {}
        for r in refs:
            by_series.setdefault(r.series_instance_uid, []).append(r)
        missing_ids = {r.sop_instance_uid for r in missing}
        out = []
        for series, items in by_series.items():
            miss = [r.sop_instance_uid for r in items if r.sop_instance_uid in missing_ids]
            if not miss:
                continue
            if len(miss) == len(items) and series:
                out.append(ident("SERIES", SeriesInstanceUID=series))
            else:
                for sop in miss:  # one per request: multi-valued UID lists are not supported everywhere
                    out.append(ident("IMAGE", SeriesInstanceUID=series, SOPInstanceUID=sop))
        return out

    def _watch_cancel(self, assoc, cancel: Cancel) -> threading.Event:
        """Abort *assoc* as soon as *cancel* is set; returns the event that stops the watch."""
        done = threading.Event()
        if cancel is None:
            return done

        def watch() -> None:
            while not done.is_set():
                if hasattr(cancel, "wait"):
                    cancel.wait(0.05)  # wakes at once when an Event is set
                elif done.wait(0.05):
                    return
                if _is_cancelled(cancel) and not done.is_set():
                    if assoc.is_established:
                        assoc.abort()
                    return

        threading.Thread(target=watch, name="pacs-cancel-watch", daemon=True).start()
        return done

    def _consume(
        self, responses, counts: dict, dest: str = "", op: str = "C-GET", rlog=None, assoc=None
    ) -> str | None:
        """Walk C-GET/C-MOVE responses; return an error message or None.

        What the PACS said is kept in *counts*: ``failed``/``completed``/``warning``
        (its sub-operation counts, added up), ``comment`` (its Error Comment,
        printable) and ``fatal`` (True when retrying the request cannot help: the
        connection is gone, the destination is unknown, the PACS refused outright).
        """
        final = None
        final_status: Any = None
        answered = False
        arrived_before = len(rlog.sop_uids) if rlog is not None else 0
        counts["fatal"] = False
        for status, _ident in responses:
            if not status or "Status" not in status:
                counts["fatal"] = True
                arrived = (len(rlog.sop_uids) - arrived_before) if rlog is not None else 0
                abort = getattr(assoc, "_mdt_peer_abort", None)
                if not answered and not arrived:
                    if abort is not None:
                        return self._lost(assoc, op)
                    return (
                        f"the PACS at {self.node.address} ended the association without answering the {op} "
                        f"(it may not allow our AE title {self.node.calling_aet!r} to retrieve)"
                    )
                how = f" ({_abort_text(abort)})" if abort is not None else ""
                return f"the connection to the PACS was lost during the {op}{how}, after {arrived} instance(s) arrived"
            answered = True
            s = int(status.Status)
            if s in (0xFF00, 0xFF01):
                counts["pending_failed"] = int(_safe_get(status, "NumberOfFailedSuboperations") or 0)
                continue
            counts["pending_failed"] = 0
            final = s
            final_status = status
        if final is None:
            counts["fatal"] = True
            return f"the connection to the PACS was lost during the {op}"
        failed = _as_int(_safe_get(final_status, "NumberOfFailedSuboperations")) or 0
        completed = _as_int(_safe_get(final_status, "NumberOfCompletedSuboperations")) or 0
        warning = _as_int(_safe_get(final_status, "NumberOfWarningSuboperations")) or 0
        counts["failed"] = counts.get("failed", 0) + failed
        counts["completed"] = counts.get("completed", 0) + completed
        counts["warning"] = counts.get("warning", 0) + warning
        comment = printable(" ".join(_s(final_status, "ErrorComment").split()))[:300]
        if comment:
            counts["comment"] = comment
        if final == 0x0000:
            return None
        arrived = (len(rlog.sop_uids) - arrived_before) if rlog is not None else 0
        said = f"status 0x{final:04X}"
        if failed or completed or warning:
            said += f", {failed} failed, {completed} completed"
        said += f": {comment}" if comment else ""
        if final == 0xB000 or ((failed or completed or arrived) and final not in (0xFE00, 0xA801)):
            # some sub-operations failed: the PACS says which and why; the rest came
            return f"the PACS could not send {failed or 'some'} instance(s) ({said})"
        counts["fatal"] = True
        text = _RETRIEVE_STATUS.get(final) or _RETRIEVE_STATUS.get(final & 0xFF00)
        if op == "C-MOVE" and final & 0xF000 == 0xC000 and not comment:
            # Orthanc 1.10 (and others) answer a bare 0xC000, not 0xA801, for an unknown
            # destination; said only when nothing at all was sent and the PACS gave no reason
            text = (
                f"the PACS could not process the C-MOVE and sent nothing; most often it does not know our AE "
                f"title {dest!r} as a move destination (register AE {dest!r} with this computer's address and "
                f"port {{port}} on the PACS)"
            )
        elif op == "C-MOVE" and final & 0xF000 == 0xC000:
            text = "the PACS could not process the C-MOVE"
        text = (text or f"the PACS refused the {op}").format(dest=dest, port=self.node.listen_port)
        return f"{text} ({said})"

    def _run_get(self, study_uid, refs, missing, store, rlog, note, counts, cancel) -> str | None:
        classes = list(dict.fromkeys(r.sop_class_uid for r in missing if r.sop_class_uid))
        # every syntax we accept when the study's classes leave room (a US study has 1-4), else the common ones
        syntaxes = storescp.ACCEPTED_TRANSFER_SYNTAXES
        if len(classes) * len(syntaxes) > MAX_CONTEXTS - 1:
            syntaxes = storescp.GET_TRANSFER_SYNTAXES
        per_class = len(syntaxes)
        room = (MAX_CONTEXTS - 1) // per_class
        groups = [classes[i : i + room] for i in range(0, len(classes), room)] or [[]]
        handler = storescp.make_store_handler(store, rlog, note, lambda: _is_cancelled(cancel), study_uid)
        refused: list[InstanceRef] = []  # of SOP classes the PACS would not send by C-GET
        for group in groups:
            if _is_cancelled(cancel):
                return "cancelled"
            ae = self._ae()
            ae.add_requested_context(GET_MODEL)
            roles = []
            for uid in group:
                storescp.register_storage_uid(uid)
                for ts in syntaxes:
                    ae.add_requested_context(uid, [ts])
                roles.append(pynetdicom.build_role(uid, scp_role=True))
            try:
                assoc = self._associate(ae, handlers=[(pynetdicom.evt.EVT_C_STORE, handler)], ext_neg=roles)
            except PacsError as exc:
                return str(exc)
            # a PACS may decline some classes for C-GET (Orthanc: classes it does not know)
            ok_classes = {str(cx.abstract_syntax) for cx in assoc.accepted_contexts if cx.as_scp}
            mine = [r for r in missing if r.sop_class_uid in group or (not r.sop_class_uid and len(groups) == 1)]
            sendable = [r for r in mine if not r.sop_class_uid or r.sop_class_uid in ok_classes]
            refused += [r for r in mine if r not in sendable]
            if len(groups) == 1 and len(sendable) == len(missing):
                keys = self._retrieve_keys(refs, missing, study_uid)
            else:
                keys = [self._image_key(study_uid, r) for r in sendable]
            stop = self._watch_cancel(assoc, cancel)
            try:
                for key in keys:
                    err = self._consume(assoc.send_c_get(key, GET_MODEL), counts, rlog=rlog, assoc=assoc)
                    if err:
                        return "cancelled" if _is_cancelled(cancel) else err
            finally:
                stop.set()
                if assoc.is_established:
                    assoc.release()
        if refused:
            names = ", ".join(sorted({r.sop_class_uid for r in refused}))
            if self.node.listen_port:
                log.info("C-GET refused for %d instance(s) of %s: falling back to C-MOVE", len(refused), names)
                err = self._run_move(study_uid, refs, refused, store, rlog, note, counts, cancel)
                if err:
                    return f"the PACS would not send SOP class {names} by C-GET, and C-MOVE failed: {err}"
            else:
                return (
                    f"the PACS would not send SOP class {names} by C-GET (no presentation context accepted); "
                    f"retrieve this study by C-MOVE"
                )
        return None

    @staticmethod
    def _image_key(study_uid: str, r: InstanceRef) -> Dataset:
        d = Dataset()
        d.QueryRetrieveLevel = "IMAGE"
        d.StudyInstanceUID = study_uid
        d.SeriesInstanceUID = r.series_instance_uid
        d.SOPInstanceUID = r.sop_instance_uid
        return d

    def _run_move(self, study_uid, refs, missing, store, rlog, note, counts, cancel) -> str | None:
        n = self.node
        dest = n.listen_aet or n.calling_aet
        if not n.listen_port:
            return "C-MOVE needs our listening port (set the node's listen port, and register it on the PACS)"
        classes = {r.sop_class_uid for r in missing if r.sop_class_uid}
        for uid in classes:
            storescp.register_storage_uid(uid)
        scp = self._scp
        if scp is not None and (scp.ae_title != dest or scp.port != n.listen_port):
            scp.stop()
            scp = self._scp = None
        if scp is None:
            try:
                scp = storescp.StorageSCP(
                    dest,
                    n.listen_port,
                    store,
                    host=self.listen_host,
                    extra_sop_classes=classes,
                    network_timeout=max(n.dimse_timeout, 30),
                    ssl_context=self._tls_server_context() if n.uses_tls else None,
                )
                scp.start()
            except PacsError as exc:
                return str(exc)
            except OSError as exc:
                return str(exc.strerror or exc)
            self._scp = scp
        scp.retarget(store, rlog, note, lambda: _is_cancelled(cancel), expect_study=study_uid)
        with self._lock:
            try:
                assoc = self._query()  # the kept association (it carries the C-MOVE context)
            except PacsError as exc:
                return str(exc)
            if not any(str(cx.abstract_syntax) == MOVE_MODEL for cx in assoc.accepted_contexts):
                return "the PACS does not accept C-MOVE (Study Root) from us"
            stop = self._watch_cancel(assoc, cancel)
            pending = list(missing)
            last_err = None
            try:
                # Rounds: a PACS sends the instances of one store association in the syntaxes negotiated
                # for the first ones; what it could not send as stored (we refuse transcoding) is asked
                # for again, on a new association, until everything is here or a round brings nothing.
                for _round in range(MAX_MOVE_ROUNDS):
                    counts["failed"] = 0
                    got = len(rlog.sop_uids)
                    for key in self._retrieve_keys(refs, pending, study_uid):
                        err = self._consume(
                            assoc.send_c_move(key, dest, MOVE_MODEL), counts, dest, "C-MOVE", rlog, assoc
                        )
                        if err:
                            if _is_cancelled(cancel):
                                return "cancelled"
                            last_err = err
                            if counts.get("fatal"):
                                if not assoc.is_established:
                                    self._query_assoc = None
                                return err
                    with rlog.lock:
                        arrived = set(rlog.sop_uids)
                    pending = [r for r in pending if r.sop_instance_uid not in arrived]
                    if not pending:
                        break
                    if len(rlog.sop_uids) == got:
                        if scp.prefer_uncompressed:
                            break
                        # nothing came this round: a PACS that offers one context with several syntaxes
                        # (dcmqrscp) cannot convert what it holds to the compressed one we chose
                        scp.prefer_uncompressed = True
                    log.info("C-MOVE: %d instance(s) still missing, asking again", len(pending))
            finally:
                scp.prefer_uncompressed = False
                stop.set()
                # stragglers after the final response go nowhere harmful
                scp.retarget(store, storescp.ReceiveLog(), None, expect_study=study_uid)
        return last_err if pending else None

    # -- store ---------------------------------------------------------------
    def store(self, paths: Iterable[str | os.PathLike]) -> StoreResult:
        """C-STORE files to the node, each in its own transfer syntax.  Never raises.

        Streamed, so memory does not grow with the number of files (issue
        12.2): a first cheap pass keeps only a small index per file (its
        (SOP class, transfer syntax) pair and its study, as integers) to plan
        the presentation contexts; each file's header is read again just
        before it is sent, and the data set goes from disk in chunks.  Per
        study audit counts are kept as the files go (no studies x files loop).
        """
        files = [Path(p) for p in paths]
        res = StoreResult()
        pair_ids: dict[tuple[str, str], int] = {}
        study_ids: dict[str, int] = {"": 0}
        pair_of = array("i")  # per file: index into pair_ids, -1 when unreadable
        study_of = array("i")  # per file: index into study_ids (0: unknown)
        tally: dict[int, list] = {}  # per study, in first-seen order: [sent, failed, first reason]
        for p in files:
            try:
                cls, ts, study = _store_key(_store_header(p))
            except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds for what is not a DICOM file
                reason = f"not a readable DICOM file ({type(exc).__name__})"
                res.failed.append((p, reason))
                pair_of.append(-1)
                study_of.append(0)
                t = tally.setdefault(0, [0, 0, None])
                t[1] += 1
                t[2] = t[2] or reason
                continue
            pair_of.append(pair_ids.setdefault((cls, ts), len(pair_ids)))
            sid = study_ids.setdefault(study, len(study_ids))
            study_of.append(sid)
            tally.setdefault(sid, [0, 0, None])
        native = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")
        pairs = list(pair_ids)
        chunks = [range(k, min(k + MAX_CONTEXTS, len(pairs))) for k in range(0, len(pairs), MAX_CONTEXTS)]

        def fail(i: int, reason: str) -> None:
            res.failed.append((files[i], reason))
            t = tally[study_of[i]]
            t[1] += 1
            t[2] = t[2] or reason

        for chunk in chunks:
            ae = self._ae()
            for k in chunk:
                cls, ts = pairs[k]
                storescp.register_storage_uid(cls)
                ae.add_requested_context(cls, [ts] + [t for t in native if t != ts and ts in native])
            # A PACS that drops the association on one file (e.g. DCMTK cannot
            # parse it) must not sink the rest of the batch: the remaining files
            # go on a new association, the dropped one first (a second drop on
            # the same file fails it).
            lo, hi = chunk.start, chunk.stop
            pending = array("i", (i for i in range(len(files)) if lo <= pair_of[i] < hi))
            pos = 0
            retried: set[int] = set()
            while pos < len(pending):
                try:
                    assoc = self._associate(ae)
                except PacsError as exc:
                    for i in pending[pos:]:
                        fail(i, str(exc))
                    break
                try:
                    while pos < len(pending):
                        i = pending[pos]
                        pos += 1
                        p = files[i]
                        try:
                            header = _store_header(p)  # read again just before sending: nothing is held
                            status = _send_file(assoc, p, header)
                        except (ValueError, AttributeError, RuntimeError, TypeError, NotImplementedError) as exc:
                            fail(i, f"could not be sent ({' '.join(str(exc).split())[:120]})")
                            continue
                        except Exception as exc:  # noqa: BLE001 - the file changed or vanished since the first pass
                            fail(i, f"not a readable DICOM file ({type(exc).__name__})")
                            continue
                        if not status or "Status" not in status:
                            if i not in retried:
                                # no answer can be a dropped connection as well as a refusal (seen about one
                                # file in 3,000 from a busy Orthanc): a C-STORE of the same instance may be
                                # repeated, so the file gets one more attempt on a new association
                                retried.add(i)
                                pos -= 1
                            else:
                                fail(
                                    i,
                                    f"the PACS at {self.node.address} closed the connection while "
                                    "receiving it, twice (it may not accept this file)",
                                )
                            # no answer: this association is finished even if pynetdicom
                            # has not noticed yet; the files still pending get a new one
                            if assoc.is_established:
                                assoc.abort()
                            break
                        elif status.Status in (0x0000, 0xB000, 0xB007, 0xB006):
                            res.sent.append(p)
                            tally[study_of[i]][0] += 1
                        else:
                            fail(i, f"the PACS refused it (status 0x{status.Status:04X})")
                finally:
                    if assoc.is_established:
                        assoc.release()
        if res.failed:
            res.message = f"stored {len(res.sent)} of {len(files)} files; {len(res.failed)} failed: {res.failed[0][1]}"
        else:
            res.message = f"stored {len(res.sent)} of {len(files)} files"
        uid_of = {v: k for k, v in study_ids.items()}
        for sid, (sent, bad, reason) in tally.items():  # first-seen study order, one record each
            _audit(
                "store",
                uid_of[sid] or None,
                ok=not bad,
                node=self.node.name,
                instances=sent,
                failed=bad,
                reason=reason,
            )
        return res


def retrieve_summary(
    store: LocalStore,
    study_uid: str,
    refs: list[InstanceRef],
    fetched: int,
    failed: int,
    error: str,
    cancelled: bool = False,
    errors=(),
) -> RetrieveResult:
    """The :class:`RetrieveResult` of a retrieve of *refs* (counted in the store), either protocol."""
    total = len(refs)
    here = store.present(r.sop_instance_uid for r in refs) if refs else set()
    completed = len(here)
    remaining = total - completed
    msg = f"retrieved {completed} of {total} instances"
    if fetched and completed != fetched:
        msg += f" ({fetched} fetched now, {completed - fetched} already in the local store)"
    elif not fetched and total and completed == total:
        msg += " (all already in the local store)"
    if cancelled:
        msg += "; cancelled"
    if remaining and not cancelled:
        if error and errors and errors[0] not in error:
            error = f"{error}; {errors[0]}"
        reason = (
            error
            or (errors[0] if errors else "")
            or (f"the PACS reported {failed} failed sub-operation(s)" if failed else "")
            or "the PACS did not send them"
        )
        msg += f"; {remaining} did not arrive: {reason}. Retry to fetch only the missing ones"
    elif error and not total:
        msg = error
    paths = store.study_paths(study_uid) if completed else []
    return RetrieveResult(completed, failed, remaining, total, msg, paths, fetched, cancelled)


_STORE_TAGS = ["SOPClassUID", "StudyInstanceUID"]


def _store_header(path: Path) -> Dataset:
    """File meta + SOP Class and Study UIDs (the values are skipped for all else)."""
    return pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_STORE_TAGS)


def _store_key(ds: Dataset) -> tuple[str, str, str]:
    """(SOP class, transfer syntax, study) of a header from :func:`_store_header`."""
    return str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID), str(ds.get("StudyInstanceUID", "") or "")


def _send_file(assoc, path: Path, header) -> Any:  # pynetdicom's status Dataset
    """C-STORE one file exactly as it is on disk when the association allows it.

    The data set's own bytes are streamed from the file (pynetdicom's chunked
    send): nothing is decoded or re-encoded, so what the PACS receives is the
    original, and memory stays at one chunk whatever the file size.  A file
    without usable file meta, or whose transfer syntax the PACS only accepted
    as another (native) syntax, is read whole and sent through pydicom.
    """
    meta: Any = getattr(header, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    has_meta = meta is not None and all(
        k in meta for k in ("MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID", "TransferSyntaxUID")
    )
    if has_meta:
        cls = str(meta.MediaStorageSOPClassUID)
        accepted = [c.transfer_syntax[0] for c in assoc.accepted_contexts if c.abstract_syntax == cls]
        if ts in accepted:
            return assoc.send_c_store(path)
    return assoc.send_c_store(pydicom.dcmread(path))


def study_row(ds: Dataset) -> StudyResult | str:
    """One STUDY-level answer (C-FIND or QIDO-RS) as a :class:`StudyResult`, or why it is left out
    (it has not exactly one valid Study Instance UID: it could be neither shown nor retrieved)."""
    uid, why = _uid(ds, "StudyInstanceUID")
    if why:
        return why
    return StudyResult(
        study_instance_uid=uid,
        patient_id=_s(ds, "PatientID"),
        issuer_of_patient_id=_s(ds, "IssuerOfPatientID").strip(),
        patient_name=_s(ds, "PatientName"),
        patient_birth_date=_s(ds, "PatientBirthDate"),
        study_date=_s(ds, "StudyDate"),
        study_time=_s(ds, "StudyTime"),
        study_description=_s(ds, "StudyDescription"),
        accession_number=_s(ds, "AccessionNumber"),
        modalities=_split_cs(_safe_get(ds, "ModalitiesInStudy")),
        instances=_as_int(_safe_get(ds, "NumberOfStudyRelatedInstances")),
        series=_as_int(_safe_get(ds, "NumberOfStudyRelatedSeries")),
    )


def study_rows(answers: Iterable[Dataset], read: Callable[[Dataset], StudyResult | str] = study_row) -> Found:
    """STUDY-level answers as :class:`StudyResult` rows; those *read* refuses are counted, with why."""
    out = Found()
    for ds in answers:
        row = read(ds)
        if isinstance(row, str):
            out.refuse(row)
        else:
            out.append(row)
    return out


def series_rows(answers: Iterable[Dataset]) -> Found:
    """SERIES-level answers (C-FIND or QIDO-RS) as :class:`SeriesResult` rows in series order;
    an answer without exactly one valid Series Instance UID is left out, and counted."""
    out = Found()
    for ds in answers:
        uid, why = _uid(ds, "SeriesInstanceUID")
        if why:
            out.refuse(why)
            continue
        out.append(
            SeriesResult(
                uid,
                _s(ds, "Modality"),
                _as_int(_safe_get(ds, "SeriesNumber")),
                _s(ds, "SeriesDescription"),
                _as_int(_safe_get(ds, "NumberOfSeriesRelatedInstances")),
            )
        )
    out.sort(key=lambda s: (s.series_number is None, s.series_number or 0))
    return out


def instance_rows(answers: Iterable[Dataset]) -> Found:
    """IMAGE-level answers as :class:`InstanceRef` (one per SOP Instance UID); answers without one
    valid SOP Instance and Series Instance UID are left out (they could not be asked for)."""
    seen: dict[str, InstanceRef] = {}
    out = Found()
    for ds in answers:
        sop, why = _uid(ds, "SOPInstanceUID")
        series, why2 = _uid(ds, "SeriesInstanceUID")
        if why or why2:
            out.refuse(why or why2 or "")
            continue
        seen[sop] = InstanceRef(sop, clean_uid(_s(ds, "SOPClassUID")), series)
    out.extend(seen.values())
    return out
