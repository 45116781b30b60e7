"""Talking to a DICOMweb archive: QIDO-RS, WADO-RS and STOW-RS (``dicomweb-client``, ``requests``).

:class:`DicomWebClient` does for a DICOMweb node what :class:`~mdtviewer.pacs.client.PacsClient`
does for a DIMSE one, with the same methods, result types, caps and one-line messages, so
callers take either from :func:`mdtviewer.pacs.client.open_client` and need not know the kind.

* **QIDO-RS** (``dicomweb-client``'s searches): the C-FIND filters (patient ID and name with
  ``*``/``?``, a date range, accession, modality, study UID) as query parameters; at most
  ``max_studies`` answers (``limit=max+1`` is asked, more is :class:`TooManyResults`); an answer
  without one valid UID is left out and counted, as for C-FIND.
* **WADO-RS**: a study, whole series or single instances (only those the local store lacks:
  a retrieve cut off half-way is resumed by the next call), asking for each instance as
  stored (``transfer-syntax=*``; a server that refuses that is asked for its default).  The
  multipart answer is read as a stream; a part is stored only once the delimiter after it
  has arrived (a cut part is never kept), atomically and inside the store
  (:meth:`LocalStore.add_encoded`: the bytes as sent, never re-encoded), and only when it
  belongs to the study asked for.
* **STOW-RS**: the files' own bytes, one request per study; the server's answer says which
  instances it stored (``ReferencedSOPSequence``) and which it refused
  (``FailedSOPSequence``, with the reason); the outbox keeps the rest.
* **Credentials**: HTTP basic with the password from the environment variable the node names,
  or a bearer token from one, or the OS keyring (``keyring``, if installed).  The secret lives
  in the session only: never in settings, messages, logs or the audit trail.
* **TLS** is verified (``requests``' CA bundle, or the node's ``tls_ca``).
"""

from __future__ import annotations

import importlib
import io
import logging
import os
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pydicom
import requests
import urllib3
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset, FileMetaDataset

from mdtviewer.infra.errors import MdtError
from mdtviewer.pacs.client import (
    MAX_INSTANCES,
    MAX_SERIES,
    MAX_STUDIES,
    Cancel,
    EchoResult,
    Found,
    InstanceRef,
    PacsError,
    RetrieveProgress,
    RetrieveResult,
    StoreResult,
    StudyQuery,
    TooManyResults,
    _as_int,
    _audit,
    _is_cancelled,
    _safe_get,
    instance_rows,
    retrieve_summary,
    series_rows,
    study_rows,
)
from mdtviewer.pacs.localstore import LocalStore, StoreError, clean_uid
from mdtviewer.pacs.nodes import KEYRING_SERVICE, NodeError, PacsNode
from mdtviewer.pacs.safetext import printable

log = logging.getLogger(__name__)
# dicomweb-client logs URLs with the query's values (patient IDs, names) at INFO
logging.getLogger("dicomweb_client").setLevel(logging.WARNING)
# urllib3 logs every request line, query string (patient ID, name) included, at DEBUG
logging.getLogger("urllib3").setLevel(logging.WARNING)

#: Accept header of a WADO-RS retrieve: every instance as stored
ACCEPT_AS_STORED = 'multipart/related; type="application/dicom"; transfer-syntax=*'
#: ... and for a server that refuses ``*``: its default (Explicit VR Little Endian)
ACCEPT_DEFAULT = 'multipart/related; type="application/dicom"'
#: WADO-RS answers are asked for uncompressed on the wire.  ``requests`` offers ``gzip, deflate`` by
#: default, and Orthanc then deflates the whole multipart answer before sending its first byte: ~25 ms
#: of server CPU per study and as much again to inflate it here, ten times what the transfer costs on a
#: LAN (benchmarks/wado_vs_cget.py), for pixel data that is mostly compressed already.
ACCEPT_ENCODING = "identity"
CHUNK = 1 << 20
#: HTTP connections of one retrieve that asks for several series or instances (a resumed one)
CONNECTIONS = 3
#: parts read ahead while the writer thread stores the one before
WRITE_AHEAD = 2
#: an instance bigger than this in one part is refused (memory stays bounded)
MAX_PART_BYTES = 4 << 30

_STUDY_FIELDS = (
    "PatientBirthDate",
    "StudyTime",
    "StudyDescription",
    "NumberOfStudyRelatedInstances",
    "NumberOfStudyRelatedSeries",
    "ModalitiesInStudy",
    "AccessionNumber",
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
)
_SERIES_FIELDS = ("Modality", "SeriesNumber", "SeriesDescription", "NumberOfSeriesRelatedInstances")


class _Fetch:
    """What a retrieve has fetched so far, and why instances were not kept (*lock*: the requests of
    one retrieve run on up to :data:`CONNECTIONS` threads; a part is kept under it)."""

    def __init__(self) -> None:
        self.fetched = 0
        self.errors: list[str] = []
        self.kept: set[str] = set()
        self.lock = threading.Lock()


class _Writer:
    """Runs *keep* on each part on one thread of its own, at most :data:`WRITE_AHEAD` parts waiting
    (memory stays bounded); the first exception *keep* raises comes out of :meth:`put` or
    :meth:`finish`."""

    def __init__(self, keep: Callable[[bytes], None]):
        self._keep = keep
        self._q: queue.Queue[bytes | None] = queue.Queue(maxsize=WRITE_AHEAD)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="wado-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (part := self._q.get()) is not None:
            if self._error is None:
                try:
                    self._keep(part)
                except BaseException as exc:  # noqa: BLE001 - handed to the reading thread
                    self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, part: bytes) -> None:
        self._raise()
        self._q.put(part)

    def finish(self) -> None:
        self._q.put(None)
        self._thread.join()
        self._raise()


class _Cut(MdtError):
    """The multipart stream ended before the part it was sending."""


def _secret(node: PacsNode) -> tuple[str, str] | None:
    """("basic", password) or ("bearer", token) from the environment or the keyring; None: none set up."""
    if node.token_env:
        tok = os.environ.get(node.token_env)
        if not tok:
            raise PacsError(f"the environment variable {node.token_env} (token for node {node.name!r}) is not set")
        return "bearer", tok
    if node.password_env:
        pw = os.environ.get(node.password_env)
        if pw is None:
            raise PacsError(
                f"the environment variable {node.password_env} (password for node {node.name!r}) is not set"
            )
        return "basic", pw
    if node.use_keyring:
        try:
            keyring = importlib.import_module("keyring")  # optional: not a dependency
        except ImportError:
            raise PacsError("node asks the OS keyring, but the 'keyring' package is not installed") from None
        try:
            got = keyring.get_password(KEYRING_SERVICE, node.user or node.name)
        except Exception as exc:  # noqa: BLE001 - keyring backends raise their own kinds
            raise PacsError(f"the OS keyring could not be read ({type(exc).__name__})") from None
        if not got:
            raise PacsError(
                f"no secret in the OS keyring for service {KEYRING_SERVICE!r}, user {node.user or node.name!r}"
            )
        return ("basic", got) if node.user else ("bearer", got)
    return None


def make_session(node: PacsNode) -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # no proxy or .netrc credentials from the environment behind the site's back
    got = _secret(node)
    if got is not None:
        kind, value = got
        if kind == "basic":
            s.auth = (node.user or "", value)
        else:
            s.headers["Authorization"] = f"Bearer {value}"
    s.verify = node.tls_ca or True
    s.headers["User-Agent"] = "mdtviewer"
    return s


def _http_reason(status: int, node: PacsNode) -> str:
    if status == 401:
        return f"the DICOMweb server at {node.address} refused our credentials (HTTP 401): check the user and password"
    if status == 403:
        return f"the DICOMweb server at {node.address} does not allow this (HTTP 403)"
    if status == 404:
        return f"no such DICOMweb resource at {node.address} (HTTP 404): check the base URL"
    if status == 406:
        return "the DICOMweb server cannot send the media type asked for (HTTP 406)"
    if status == 413:
        return "the DICOMweb server refused a request too large (HTTP 413)"
    if status >= 500:
        return f"the DICOMweb server at {node.address} failed (HTTP {status})"
    return f"the DICOMweb server at {node.address} answered HTTP {status}"


def explain(exc: BaseException, node: PacsNode, op: str) -> str:
    """One line for a requests/dicomweb-client failure (no URL query, no credentials)."""
    if isinstance(exc, PacsError):
        return str(exc)
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return _http_reason(exc.response.status_code, node)
    if isinstance(exc, requests.exceptions.SSLError):
        text = str(exc)
        why = "certificate not trusted" if "CERTIFICATE_VERIFY_FAILED" in text else "TLS handshake failed"
        return f"TLS with the DICOMweb server at {node.address} failed: {why} (set the node's CA bundle)"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"DICOMweb server not reachable at {node.address} (no answer in {node.connect_timeout:g} s)"
    if isinstance(exc, requests.exceptions.ConnectionError) and not isinstance(
        exc, requests.exceptions.ChunkedEncodingError
    ):
        text = str(exc)
        why = "connection refused" if "refused" in text.lower() else "connection failed"
        if "Name or service not known" in text or "getaddrinfo" in text or "NameResolution" in text:
            why = "host name not found"
        return f"DICOMweb server not reachable at {node.address} ({why})"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return f"the DICOMweb server at {node.address} did not answer the {op} in {node.dimse_timeout:g} s"
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, _Cut)):
        return f"the connection to the DICOMweb server was lost during the {op}"
    return f"the {op} failed ({type(exc).__name__})"


def _arriving(r: requests.Response) -> Iterator[bytes]:
    """The body of a streamed answer in the pieces the socket gives, up to :data:`CHUNK` each, as they
    arrive (``read1``).  ``iter_content(CHUNK)`` waits for a whole CHUNK (or the end) before it yields,
    so on a slow link a part that had arrived waited for the megabyte after it: the study did not open
    as its first instance landed.  urllib3's errors are raised as requests' (as ``iter_content`` does)."""
    read1 = getattr(r.raw, "read1", None)  # urllib3 2
    if read1 is None:
        yield from r.iter_content(CHUNK)
        return
    try:
        while chunk := read1(CHUNK, decode_content=True):
            yield chunk
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise requests.exceptions.ReadTimeout(exc) from None
    except urllib3.exceptions.SSLError as exc:
        raise requests.exceptions.SSLError(exc) from None
    except urllib3.exceptions.DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(exc) from None
    except (urllib3.exceptions.ProtocolError, urllib3.exceptions.HTTPError) as exc:
        raise requests.exceptions.ChunkedEncodingError(exc) from None


def _boundary(content_type: str) -> bytes | None:
    m = re.search(r'boundary="?([^";]+)"?', content_type or "", re.IGNORECASE)
    return m.group(1).strip().encode("latin-1") if m else None


def iter_parts(chunks: Iterable[bytes], boundary: bytes, cancel: Cancel = None) -> Iterator[bytes]:
    """The bodies of a ``multipart/related`` stream, each yielded only once the delimiter after it
    has arrived.  :class:`_Cut` when the stream ends inside a part (that part is dropped)."""
    delim = b"--" + boundary
    buf = bytearray()
    it = iter(chunks)
    ended = False

    def more() -> bool:
        nonlocal ended
        if ended:
            return False
        if _is_cancelled(cancel):
            raise PacsError("cancelled")
        for c in it:
            if c:
                buf.extend(c)
                return True
        ended = True
        return False

    # the first delimiter (a preamble before it is ignored)
    while True:
        i = buf.find(delim)
        if i >= 0:
            del buf[: i + len(delim)]
            break
        if not more():
            if not buf.strip():
                return  # an empty answer: no parts
            raise _Cut("the server's answer ended inside a part")
    while True:
        while len(buf) < 2 and more():
            pass
        if buf[:2] == b"--":
            return  # the close delimiter
        # part headers up to the blank line
        while (h := buf.find(b"\r\n\r\n")) < 0:
            if len(buf) > 65536 or not more():
                raise _Cut("the server's answer ended inside a part")
        headers = bytes(buf[:h]).decode("latin-1", "replace")
        del buf[: h + 4]
        m = re.search(r"(?im)^content-length:\s*(\d+)\s*$", headers)
        if m:
            n = int(m.group(1))
            if n > MAX_PART_BYTES:
                raise PacsError(f"the DICOMweb server sent an instance of {n} bytes (over the limit)")
            while len(buf) < n + 2 + len(delim):
                if not more():
                    raise _Cut("the server's answer ended inside a part")
            body = bytes(buf[:n])
            rest = bytes(buf[n : n + 2 + len(delim)])
            if rest != b"\r\n" + delim:
                raise PacsError("the DICOMweb server sent a malformed multipart answer (length and delimiter differ)")
            del buf[: n + 2 + len(delim)]
            yield body
            continue
        end = b"\r\n" + delim
        start = 0
        while (j := buf.find(end, start)) < 0:
            if len(buf) > MAX_PART_BYTES:
                raise PacsError("the DICOMweb server sent an instance over the size limit")
            start = max(0, len(buf) - len(end))
            if not more():
                raise _Cut("the server's answer ended inside a part")
        body = bytes(buf[:j])
        del buf[: j + len(end)]
        yield body


def _split_part10(part: bytes) -> tuple[FileMetaDataset, Dataset, bytes]:
    """(file meta, the header's UIDs, the data set's bytes as sent) of one ``application/dicom`` part."""
    if len(part) < 144 or part[128:132] != b"DICM":
        raise ValueError("not a DICOM Part 10 file")
    ds = pydicom.dcmread(
        io.BytesIO(part),
        stop_before_pixels=True,
        specific_tags=["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"],
    )
    meta = ds.file_meta
    glen = meta.get("FileMetaInformationGroupLength")
    if glen is None:
        raise ValueError("file meta without its group length")
    start = 132 + 12 + int(glen)  # preamble, DICM, the group length element, the rest of group 2
    if part[start : start + 2] == b"\x02\x00":
        raise ValueError("file meta longer than its group length says")
    return meta, ds, part[start:]


class DicomWebClient:
    """Operations on one DICOMweb :class:`PacsNode` (same interface as ``PacsClient``)."""

    def __init__(
        self,
        node: PacsNode,
        *,
        max_studies: int = MAX_STUDIES,
        max_series: int = MAX_SERIES,
        max_instances: int = MAX_INSTANCES,
    ):
        if not node.is_dicomweb:
            raise NodeError(f"node {node.name!r} is not a DICOMweb node")
        self.node = node
        self.max_studies, self.max_series, self.max_instances = max_studies, max_series, max_instances
        self._session: requests.Session | None = None
        self._api: DICOMwebClient | None = None
        self._last_status = 0  # of the last STOW-RS request

    # -- plumbing ----------------------------------------------------------------
    @property
    def _timeout(self) -> tuple[float, float]:
        return (float(self.node.connect_timeout), float(self.node.dimse_timeout))

    def _client(self) -> DICOMwebClient:
        if self._api is None:
            self._session = make_session(self.node)
            self._api = DICOMwebClient(self.node.url or "", session=self._session, timeout=self._timeout)
            self._api.set_http_retry_params(retry=False)  # a failure is said at once; the user retries
        return self._api

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
        self._session = self._api = None

    def __enter__(self) -> DicomWebClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- echo / find ---------------------------------------------------------------
    def echo(self) -> EchoResult:
        """A QIDO-RS study search with ``limit=1`` ("test connection"); never raises."""
        t0 = time.perf_counter()
        try:
            self._client().search_for_studies(limit=1, fields=["StudyInstanceUID"])
        except Exception as exc:  # noqa: BLE001 - echo reports every failure as a result
            return EchoResult(False, explain(exc, self.node, "QIDO-RS query"), time.perf_counter() - t0)
        dt = time.perf_counter() - t0
        return EchoResult(True, f"QIDO-RS query to {self.node.address} succeeded ({dt * 1000:.0f} ms)", dt)

    def _search(self, what: str, limit: int, cancel: Cancel, call: Callable[[], list]) -> list[Dataset]:
        if _is_cancelled(cancel):
            raise PacsError("query cancelled")
        try:
            answers = call()
        except Exception as exc:  # noqa: BLE001 - requests/dicomweb-client raise many kinds
            raise PacsError(explain(exc, self.node, "QIDO-RS query")) from None
        if not isinstance(answers, list):
            raise PacsError("the DICOMweb server sent a malformed QIDO-RS answer (not a list)")
        if len(answers) > limit:
            raise TooManyResults(limit, what)
        if _is_cancelled(cancel):
            raise PacsError("query cancelled")
        out = []
        for a in answers:
            try:
                out.append(Dataset.from_json(a))
            except Exception:  # noqa: BLE001 - a malformed answer from the peer: left out below
                out.append(Dataset())
        return out

    def find_studies(self, query: StudyQuery, cancel: Cancel = None) -> Found:
        """QIDO-RS at study level, the C-FIND filters; :class:`PacsError` on failure."""
        filters: dict[str, str] = {}
        for key, value in (
            ("PatientID", query.patient_id),
            ("IssuerOfPatientID", query.issuer_of_patient_id),
            ("PatientName", query.patient_name),
            ("StudyDate", query.date_range()),
            ("AccessionNumber", query.accession),
            ("StudyInstanceUID", query.study_uid),
        ):
            if value:
                filters[key] = value
        modality = (query.modality or "").upper()
        if modality and modality != "ANY":
            filters["ModalitiesInStudy"] = modality
        keys = [
            k
            for k in ("patient_id", "issuer_of_patient_id", "patient_name", "date_from", "date_to", "accession",
                      "modality", "study_uid")
            if getattr(query, k)
        ]
        try:
            found = self._search(
                "studies",
                self.max_studies,
                cancel,
                lambda: self._client().search_for_studies(
                    search_filters=filters, fields=list(_STUDY_FIELDS), limit=self.max_studies + 1
                ),
            )
        except PacsError as exc:
            _audit("query", ok=False, node=self.node.name, protocol="QIDO-RS", keys=keys, reason=str(exc))
            raise
        out = study_rows(found)
        _audit(
            "query", node=self.node.name, protocol="QIDO-RS", keys=keys, results=len(out), refused=out.refused or None
        )
        if out.refused:
            log.warning("QIDO-RS: %s", out.note())
        out.sort(key=lambda s: (s.study_date, s.study_time), reverse=True)
        return out

    def find_series(self, study_uid: str, cancel: Cancel = None) -> Found:
        found = self._search(
            "series",
            self.max_series,
            cancel,
            lambda: self._client().search_for_series(
                study_instance_uid=study_uid, fields=list(_SERIES_FIELDS), limit=self.max_series + 1
            ),
        )
        return series_rows(found)

    def find_instances(self, study_uid: str, cancel: Cancel = None) -> Found:
        found = self._search(
            "instances",
            self.max_instances,
            cancel,
            lambda: self._client().search_for_instances(
                study_instance_uid=study_uid, fields=["SOPClassUID", "SeriesInstanceUID"], limit=self.max_instances + 1
            ),
        )
        return instance_rows(found)

    # -- retrieve ------------------------------------------------------------------
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
        """WADO-RS of the study's instances missing from *dest_store* (*method* is ignored: there is
        one way).  Never raises for network trouble; audited by the caller (``audit_retrieve``)."""
        store = dest_store if dest_store is not None else LocalStore()
        try:
            store.clean_partials(study_uid)
        except OSError as exc:
            log.warning("could not clean interrupted writes: %s", exc.strerror or exc)
        if select is None and not store.sop_uids(study_uid):
            return self._retrieve_new(study_uid, store, progress, cancel, on_instance)
        try:
            refs = self.find_instances(study_uid, cancel)
        except PacsError as exc:
            return retrieve_summary(store, study_uid, [], 0, 0, str(exc), cancelled=_is_cancelled(cancel))
        if not refs:
            why = f" ({refs.note()})" if refs.refused else ""
            return RetrieveResult(0, 0, 0, 0, f"the PACS has no instances for this study{why}", [])
        all_refs = list(refs)
        if select is not None:
            refs = Found(r for r in refs if select(r))
            if not refs:
                return RetrieveResult(0, 0, 0, 0, "the PACS has no such instances in this study", [])
        have = store.present(r.sop_instance_uid for r in refs)
        missing = [r for r in refs if r.sop_instance_uid not in have]
        total = len(refs)
        if not missing:
            return retrieve_summary(store, study_uid, refs, 0, 0, "")
        wanted = {r.sop_instance_uid for r in missing}
        state = _Fetch()

        def landed(path: Path) -> None:
            state.fetched += 1
            if on_instance is not None:
                on_instance(path)
            if progress is not None:
                done = len(have) + state.fetched
                progress(RetrieveProgress(done, 0, max(total - done, 0), total))

        if progress is not None:
            progress(RetrieveProgress(len(have), 0, len(missing), total))
        err = self._fetch_all(self._retrieve_urls(study_uid, all_refs, refs, missing), study_uid, wanted, store,
                              landed, state, cancel)
        cancelled = _is_cancelled(cancel)
        return retrieve_summary(
            store,
            study_uid,
            refs,
            state.fetched,
            0,
            "cancelled" if cancelled else err or "",
            cancelled=cancelled,
            errors=state.errors,
        )

    def _retrieve_new(self, study_uid: str, store: LocalStore, progress, cancel, on_instance) -> RetrieveResult:
        """A study with nothing in the store yet: the WADO-RS request goes at once, and the QIDO-RS
        list of its instances (for the counts) is asked for beside it, not before it (one round trip
        less per study; every instance the server sends for this study is kept)."""
        box: dict = {}

        def qido() -> None:
            try:
                box["refs"] = self.find_instances(study_uid, cancel)
            except PacsError as exc:
                box["error"] = str(exc)
            except Exception as exc:  # noqa: BLE001 - said as the retrieve's reason, never lost in a thread
                box["error"] = explain(exc, self.node, "QIDO-RS query")

        listing = threading.Thread(target=qido, name="qido-instances", daemon=True)
        listing.start()
        state = _Fetch()

        def landed(path: Path) -> None:
            state.fetched += 1
            if on_instance is not None:
                on_instance(path)
            if progress is not None:
                listing.join()
                total = len(box.get("refs") or ()) or state.fetched
                progress(RetrieveProgress(state.fetched, 0, max(total - state.fetched, 0), total))

        err = self._fetch(f"{self.node.url}/studies/{study_uid}", study_uid, None, store, landed, state, cancel)
        listing.join()
        cancelled = _is_cancelled(cancel)
        if "error" in box:
            return retrieve_summary(store, study_uid, [], state.fetched, 0, box["error"], cancelled=cancelled)
        refs = box["refs"]
        if not refs:
            why = f" ({refs.note()})" if refs.refused else ""
            return RetrieveResult(0, 0, 0, 0, f"the PACS has no instances for this study{why}", [])
        if progress is not None and not state.fetched:
            progress(RetrieveProgress(0, 0, len(refs), len(refs)))
        return retrieve_summary(
            store,
            study_uid,
            refs,
            state.fetched,
            0,
            "cancelled" if cancelled else err or "",
            cancelled=cancelled,
            errors=state.errors,
        )

    def _retrieve_urls(
        self, study_uid: str, all_refs: list[InstanceRef], refs: list[InstanceRef], missing: list[InstanceRef]
    ) -> list[str]:
        """Few requests asking for exactly the missing instances: the study, whole series, single ones."""
        base = f"{self.node.url}/studies/{study_uid}"
        if len(missing) == len(all_refs):
            return [base]
        by_series: dict[str, list[InstanceRef]] = {}
        for r in all_refs:
            by_series.setdefault(r.series_instance_uid, []).append(r)
        miss = {r.sop_instance_uid for r in missing}
        urls = []
        for series, items in by_series.items():
            m = [r.sop_instance_uid for r in items if r.sop_instance_uid in miss]
            if not m:
                continue
            if len(m) == len(items):
                urls.append(f"{base}/series/{series}")
            else:
                urls += [f"{base}/series/{series}/instances/{sop}" for sop in m]
        return urls

    def _fetch_all(self, urls: list[str], study_uid, wanted, store: LocalStore, landed, state, cancel) -> str | None:
        """Every URL fetched, over up to :data:`CONNECTIONS` keep-alive connections of the one session
        when there are several (a resumed retrieve asks per series, or per instance: one round trip
        each).  After a failure no new request starts (as one after the other); the requests under way
        keep what they receive; the first failure is the answer."""
        if len(urls) <= 1:
            return self._fetch(urls[0], study_uid, wanted, store, landed, state, cancel) if urls else None
        self._client()
        errors: list[str | None] = [None] * len(urls)
        todo = iter(enumerate(urls))
        todo_lock = threading.Lock()

        def worker() -> None:
            while True:
                with todo_lock:
                    nxt = None if any(errors) else next(todo, None)
                if nxt is None or _is_cancelled(cancel):
                    return
                i, url = nxt
                errors[i] = self._fetch(url, study_uid, wanted, store, landed, state, cancel)

        from concurrent.futures import ThreadPoolExecutor

        n = min(CONNECTIONS, len(urls))
        # joined when the block ends, and a worker's unexpected exception is raised here (a bare thread's
        # was only printed, and its URLs counted as fetched)
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="wado-rs") as pool:
            for f in [pool.submit(worker) for _ in range(n)]:
                f.result()
        return next((e for e in errors if e), None)

    def _open(self, url: str) -> requests.Response:
        self._client()
        assert self._session is not None
        r = None
        for accept in (ACCEPT_AS_STORED, ACCEPT_DEFAULT):
            r = self._session.get(
                url, headers={"Accept": accept, "Accept-Encoding": ACCEPT_ENCODING}, stream=True, timeout=self._timeout
            )
            if r.status_code in (400, 406) and accept == ACCEPT_AS_STORED:
                r.close()  # the server will not send as stored: its default syntax, then
                log.info("WADO-RS: transfer-syntax=* refused (HTTP %d); asking for the default", r.status_code)
                continue
            break
        assert r is not None
        return r

    def _fetch(self, url, study_uid, wanted, store: LocalStore, landed, state, cancel) -> str | None:
        before = state.fetched
        try:
            r = self._open(url)
        except Exception as exc:  # noqa: BLE001 - requests raises many kinds
            return explain(exc, self.node, "WADO-RS retrieve")
        with r:
            if r.status_code != 200:
                return _http_reason(r.status_code, self.node)
            boundary = _boundary(r.headers.get("Content-Type", ""))
            if boundary is None:
                return "the DICOMweb server did not answer with a multipart message"
            # parts are written (atomically, fsync'ed) on a second thread while the next one streams in
            writer = _Writer(lambda part: self._keep(part, study_uid, wanted, store, landed, state))
            try:
                try:
                    for part in iter_parts(_arriving(r), boundary, cancel):
                        writer.put(part)
                finally:
                    writer.finish()  # every whole part that arrived is kept before we say anything
            except PacsError as exc:
                return str(exc)
            except (_Cut, requests.exceptions.RequestException) as exc:
                why = explain(exc, self.node, "WADO-RS retrieve")
                if isinstance(exc, requests.exceptions.ReadTimeout):
                    return why
                return (
                    f"the connection to the DICOMweb server was lost during the WADO-RS retrieve, "
                    f"after {state.fetched - before} instance(s) arrived"
                )
        return None

    def _keep(self, part: bytes, study_uid: str, wanted: set[str] | None, store: LocalStore, landed, state) -> None:
        """Store one part if it is an instance of *study_uid* asked for (*wanted*; None: any one not yet kept)."""
        with state.lock:  # parts from several connections are kept one at a time
            self._keep_one(part, study_uid, wanted, store, landed, state)

    def _keep_one(self, part: bytes, study_uid: str, wanted: set[str] | None, store: LocalStore, landed, state) -> None:
        try:
            meta, ds, encoded = _split_part10(part)
        except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds for what is not DICOM
            state.errors.append(f"an instance the server sent was not readable ({type(exc).__name__})")
            return
        sop = clean_uid(ds.get("SOPInstanceUID", "") or meta.get("MediaStorageSOPInstanceUID", ""))
        if clean_uid(ds.get("StudyInstanceUID", "")) != study_uid:
            state.errors.append("the server sent an instance of another study (not kept)")
            return
        if (wanted is not None and sop not in wanted) or sop in state.kept:
            return  # not asked for (already here), or sent twice
        if not sop or clean_uid(meta.get("MediaStorageSOPInstanceUID", "")) != sop:
            state.errors.append("the server sent an instance whose file meta and data set disagree (not kept)")
            return
        if wanted is None and len(state.kept) >= self.max_instances:
            raise PacsError(f"the DICOMweb server sent more than {self.max_instances} instances for one study")
        series = clean_uid(ds.get("SeriesInstanceUID", "")) or "noseries"
        try:
            path = store.add_encoded(meta, encoded, study_uid, series)
        except (StoreError, OSError) as exc:
            state.errors.append(f"could not write to the local store ({getattr(exc, 'strerror', None) or exc})")
            return
        state.kept.add(sop)
        landed(path)

    # -- store -----------------------------------------------------------------------
    def store(self, paths: Iterable[str | os.PathLike]) -> StoreResult:
        """STOW-RS the files as they are on disk, one request per study.  Never raises."""
        files = [Path(p) for p in paths]
        res = StoreResult()
        by_study: dict[str, list[tuple[Path, str]]] = {}
        for p in files:
            try:
                ds = pydicom.dcmread(p, stop_before_pixels=True, specific_tags=["StudyInstanceUID", "SOPInstanceUID"])
                if not p.read_bytes()[128:132] == b"DICM":
                    raise ValueError("no DICOM Part 10 header")
                by_study.setdefault(clean_uid(ds.get("StudyInstanceUID", "")), []).append(
                    (p, clean_uid(ds.get("SOPInstanceUID", "")))
                )
            except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds for what is not a DICOM file
                res.failed.append((p, f"not a readable DICOM file ({type(exc).__name__})"))
        for study, items in by_study.items():
            failed = self._stow(study, items, res)
            if len(failed) == len(items) > 1 and self._last_status in (400, 409, 413, 415):
                # the server refused the request as a whole without saying which instance it could
                # not take: one request per file, so one bad file does not keep the others back
                res.failed[:] = [(p, r) for p, r in res.failed if p not in failed]
                failed = {}
                for item in items:
                    failed.update(self._stow(study, [item], res))
            _audit(
                "store",
                study or None,
                ok=not failed,
                node=self.node.name,
                protocol="STOW-RS",
                instances=len(items) - len(failed),
                failed=len(failed),
                reason=next(iter(failed.values()), None),
            )
        n = len(files)
        if res.failed:
            res.message = f"stored {len(res.sent)} of {n} files; {len(res.failed)} failed: {res.failed[0][1]}"
        else:
            res.message = f"stored {len(res.sent)} of {n} files"
        return res

    def _stow(self, study: str, items: list[tuple[Path, str]], res: StoreResult) -> dict[Path, str]:
        boundary = uuid.uuid4().hex
        failed: dict[Path, str] = {}

        def body() -> Iterator[bytes]:
            for p, _sop in items:
                yield (
                    f"--{boundary}\r\nContent-Type: application/dicom\r\nContent-Length: {p.stat().st_size}\r\n\r\n"
                ).encode()
                with open(p, "rb") as fh:
                    while chunk := fh.read(CHUNK):
                        yield chunk
                yield b"\r\n"
            yield f"--{boundary}--\r\n".encode()

        try:
            self._client()
            assert self._session is not None
            r = self._session.post(
                f"{self.node.url}/studies",
                data=body(),
                headers={
                    "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
                    "Accept": "application/dicom+json",
                },
                timeout=self._timeout,
            )
        except Exception as exc:  # noqa: BLE001 - requests raises many kinds; every file is kept
            self._last_status = 0
            why = explain(exc, self.node, "STOW-RS store")
            for p, _ in items:
                failed[p] = why
            res.failed.extend(failed.items())
            return failed
        self._last_status = r.status_code
        answer = None
        try:
            if r.content and "json" in r.headers.get("Content-Type", ""):
                answer = Dataset.from_json(r.json())
        except Exception:  # noqa: BLE001 - a malformed answer: judged by the status alone
            answer = None
        stored: set[str] = set()
        refused: dict[str, str] = {}
        if answer is not None:
            for item in _safe_get(answer, "ReferencedSOPSequence") or []:
                stored.add(clean_uid(_safe_get(item, "ReferencedSOPInstanceUID") or ""))
            for item in _safe_get(answer, "FailedSOPSequence") or []:
                reason = _as_int(_safe_get(item, "FailureReason"))
                refused[clean_uid(_safe_get(item, "ReferencedSOPInstanceUID") or "")] = (
                    f"the DICOMweb server refused it (failure reason 0x{reason:04X})"
                    if reason is not None
                    else "the DICOMweb server refused it"
                )
        for p, sop in items:
            if sop in stored and sop not in refused and r.status_code in (200, 202):
                res.sent.append(p)
            elif sop in refused:
                failed[p] = refused[sop]
            elif r.status_code in (200, 202) and answer is None and len(items) == 1:
                res.sent.append(p)  # a server that answers only with the status
            elif r.status_code in (400, 409, 415):
                failed[p] = f"the DICOMweb server refused it (HTTP {r.status_code}: it may not accept this file)"
            elif r.status_code >= 400:
                failed[p] = _http_reason(r.status_code, self.node)
            else:
                failed[p] = "the DICOMweb server did not confirm it was stored"
        res.failed.extend(failed.items())
        if failed:
            log.info("STOW-RS: %d of %d refused: %s", len(failed), len(items), printable(next(iter(failed.values()))))
        return failed
