"""Our storage side: what we accept from a PACS, and the C-MOVE destination SCP.

Used twice: as the C-STORE handler on a C-GET association (the PACS sends the
instances back on the association we opened) and as our own storage SCP
that a C-MOVE sends to (``listen_aet``/``listen_port`` of the node).

What we accept, and why:

* every storage SOP class pynetdicom knows, plus the retired ultrasound
  classes ``1.2.840.10008.5.1.4.1.1.6`` and ``.3`` (old scanners still send
  them) and any SOP class we have never heard of (a PACS forwards vendor
  objects; we keep them and the viewer shows them as ``other``).
  pynetdicom needs such UIDs registered with its storage service, or it
  aborts the association, so :func:`register_storage_uid` does that;
* each instance in the transfer syntax it is stored in.  Within one proposed
  presentation context pynetdicom (as acceptor) picks the first syntax of
  *its own* list that the peer offers, so compressed syntaxes come first in
  ours.  Orthanc 1.12 (and DCMTK-based senders) propose *separate* contexts
  per SOP class: the first instance's own syntax alone, then the uncompressed
  ones as a fallback; when a later instance is stored in another syntax and
  an uncompressed context was accepted, Orthanc transcodes to it (RLE arrives
  decompressed) or fails (it cannot decode JPEG 2000).  So when a peer offers
  a compressed context for a SOP class, we refuse that class's uncompressed
  contexts on that association (:func:`on_requested`): an instance then
  either arrives as stored or fails, and the C-MOVE is asked again for what
  is missing (a new association, proposing that instance's own syntax);
* only instances of the study asked for (a C-STORE of another study, or whose
  data set names another SOP Instance UID than its request, is refused);
* the bytes are written as received (no decode/re-encode) into the
  :class:`~mdtviewer.pacs.localstore.LocalStore`, atomically.
"""

from __future__ import annotations

import logging
import socket
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass, field

from pydicom.dataset import FileMetaDataset
from pydicom.uid import UID
from pynetdicom import AE, evt, register_uid
from pynetdicom import _config as _pynetdicom_config
from pynetdicom.presentation import PresentationContext
from pynetdicom.service_class import StorageServiceClass
from pynetdicom.sop_class import _STORAGE_CLASSES
from pynetdicom.transport import ThreadedAssociationServer

from mdtviewer.pacs.localstore import LocalStore, clean_uid, read_encoded_uids

log = logging.getLogger(__name__)

#: Transfer syntaxes we accept, compressed first (lossless before lossy
#: within a family), native last.
ACCEPTED_TRANSFER_SYNTAXES: list[str] = [
    "1.2.840.10008.1.2.4.70",   # JPEG Lossless SV1 (common lossless US)
    "1.2.840.10008.1.2.4.57",   # JPEG Lossless
    "1.2.840.10008.1.2.4.50",   # JPEG Baseline (most US cines)
    "1.2.840.10008.1.2.4.51",   # JPEG Extended
    "1.2.840.10008.1.2.4.80",   # JPEG-LS lossless
    "1.2.840.10008.1.2.4.81",   # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.90",   # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.91",   # JPEG 2000
    "1.2.840.10008.1.2.4.201",  # HTJ2K lossless
    "1.2.840.10008.1.2.4.202",  # HTJ2K lossless RPCL
    "1.2.840.10008.1.2.4.203",  # HTJ2K
    "1.2.840.10008.1.2.4.110",  # JPEG XL lossless
    "1.2.840.10008.1.2.4.111",  # JPEG XL JPEG recompression
    "1.2.840.10008.1.2.4.112",  # JPEG XL
    "1.2.840.10008.1.2.5",      # RLE Lossless
    "1.2.840.10008.1.2.4.100",  # MPEG2 MP@ML
    "1.2.840.10008.1.2.4.101",  # MPEG2 MP@HL
    "1.2.840.10008.1.2.4.102",  # MPEG-4 AVC/H.264 HP@4.1
    "1.2.840.10008.1.2.4.103",  # MPEG-4 AVC/H.264 BD
    "1.2.840.10008.1.2.4.107",  # HEVC/H.265 Main
    "1.2.840.10008.1.2.1.99",   # Deflated Explicit VR LE
    "1.2.840.10008.1.2.1",      # Explicit VR Little Endian
    "1.2.840.10008.1.2",        # Implicit VR Little Endian
    "1.2.840.10008.1.2.2",      # Explicit VR Big Endian (retired)
]

#: syntaxes that carry the pixels as they are (deflate only squeezes the data set)
UNCOMPRESSED_SYNTAXES = frozenset({
    "1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99",
})

#: The smaller list offered per SOP class on a C-GET association, where each
#: (class, syntax) pair costs one of only 128 presentation contexts.
GET_TRANSFER_SYNTAXES: list[str] = [
    "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.102", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2",
]

RETIRED_US = {
    "1.2.840.10008.5.1.4.1.1.6": "RetiredUltrasoundImageStorage",
    "1.2.840.10008.5.1.4.1.1.3": "RetiredUltrasoundMultiFrameImageStorage",
}

#: Status codes we answer a C-STORE with
STATUS_OK = 0x0000
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_CANNOT_UNDERSTAND = 0xC000

_reg_lock = threading.Lock()


def register_storage_uid(uid: str) -> None:
    """Make pynetdicom treat *uid* as a storage SOP class (retired, private, unknown)."""
    uid = str(uid)
    if uid in _STORAGE_CLASSES.values():
        return
    with _reg_lock:
        if uid in _STORAGE_CLASSES.values():
            return
        keyword = RETIRED_US.get(uid) or "MdtOtherStorage_" + uid.replace(".", "_").replace("-", "_")
        if not keyword.isidentifier():
            keyword = f"MdtOtherStorage_{abs(hash(uid))}"
        register_uid(uid, keyword, StorageServiceClass)


for _uid in RETIRED_US:
    register_storage_uid(_uid)


def storage_sop_classes() -> list[str]:
    """Every storage SOP class UID we accept without being told (incl. retired US)."""
    uids = list(dict.fromkeys(str(u) for u in _STORAGE_CLASSES.values()))
    for u in RETIRED_US:
        if u not in uids:
            uids.append(u)
    return uids


# -- socket tuning ---------------------------------------------------------
def _quickack_recv(self, nr_bytes: int):
    sock = self.socket
    if sock is not None and _TCP_QUICKACK is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)
        except OSError:
            pass
    return type(self).recv(self, nr_bytes)


_TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


# pynetdicom formats every C-FIND/C-GET/C-MOVE identifier it sends or receives as text for its INFO
# log (``pretty_dataset``), whether or not INFO is logged: profiled, that was ~45 % of a 2,000-study
# C-FIND (issue 12.3).  We never log identifiers (they name patients), so the formatting goes.
_pynetdicom_config.LOG_RESPONSE_IDENTIFIERS = False
_pynetdicom_config.LOG_REQUEST_IDENTIFIERS = False


def tune_socket(event) -> None:
    """EVT_CONN_OPEN handler: TCP_NODELAY, and TCP_QUICKACK before every read.

    Why: Orthanc (DCMTK) writes a PDU header and its body in two writes with
    Nagle on; with our delayed ACK every DIMSE round trip then costs ~44 ms.
    Acking at once brings a C-ECHO on an open association to ~3 ms.
    """
    asock = event.assoc.dul.socket
    if asock is None or asock.socket is None:
        return
    try:
        asock.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass
    if _TCP_QUICKACK is not None:
        asock.recv = types.MethodType(_quickack_recv, asock)


# -- the C-STORE handler ---------------------------------------------------
@dataclass
class ReceiveLog:
    """What a storage handler received (shared between threads, under a lock)."""

    received: list = field(default_factory=list)  # paths
    sop_uids: set = field(default_factory=set)
    errors: list = field(default_factory=list)  # one-line reasons
    refused: int = 0  # instances we answered with a failure
    lock: threading.Lock = field(default_factory=threading.Lock)


def make_store_handler(store: LocalStore, rlog: ReceiveLog,
                       on_instance: Callable | None = None, cancelled: Callable[[], bool] | None = None,
                       expect_study: str | None = None) -> Callable:
    """An EVT_C_STORE handler writing what arrives into *store* as received.

    Once *cancelled()* is true, the association is aborted at the next
    instance (nothing more is written), so a cancel takes effect at once even
    when the PACS streams faster than any polling would notice.  With
    *expect_study*, an instance of any other study is refused.
    """
    expected = clean_uid(expect_study) if expect_study is not None else None

    def refuse(reason: str, status: int = STATUS_CANNOT_UNDERSTAND) -> int:
        with rlog.lock:
            rlog.errors.append(reason)
            rlog.refused += 1
        return status

    def handle_store(event) -> int:
        if cancelled is not None and cancelled():
            try:
                event.assoc.abort()  # non-blocking inside a handler
            except Exception:  # noqa: BLE001 - aborting an association that may already be gone
                pass
            return STATUS_OUT_OF_RESOURCES
        try:
            req = event.request
            cx = event.context
            meta = FileMetaDataset()
            sop_uid = clean_uid(req.AffectedSOPInstanceUID)
            meta.MediaStorageSOPClassUID = UID(clean_uid(req.AffectedSOPClassUID))
            meta.MediaStorageSOPInstanceUID = UID(sop_uid)
            meta.TransferSyntaxUID = UID(str(cx.transfer_syntax))
            meta.ImplementationClassUID = UID("1.2.826.0.1.3680043.8.498.1")
            meta.ImplementationVersionName = "MDTVIEWER"
            meta.SourceApplicationEntityTitle = event.assoc.requestor.ae_title
            encoded = req.DataSet.getvalue()
            study, series, ds_sop = read_encoded_uids(encoded, meta.TransferSyntaxUID)
            if not study:
                return refuse("an instance without Study Instance UID was refused")
            if not sop_uid:
                return refuse("an instance without SOP Instance UID was refused")
            if expected is not None and study != expected:
                return refuse("the PACS sent an instance of another study than the one asked for; refused")
            if ds_sop and ds_sop != sop_uid:
                return refuse("the PACS sent an instance whose data set names another SOP Instance UID "
                              "than its C-STORE request; refused")
            path = store.add_encoded(meta, encoded, study, series or "noseries")
        except OSError as exc:
            log.error("could not store a received instance: %s", exc.strerror or exc)
            return refuse(f"could not write to the local store ({exc.strerror or exc})", STATUS_OUT_OF_RESOURCES)
        except Exception as exc:  # noqa: BLE001 - a bad data set must not kill the association
            log.error("could not read a received instance: %s", type(exc).__name__)
            return refuse(f"an instance could not be read ({type(exc).__name__})")
        with rlog.lock:
            rlog.received.append(path)
            rlog.sop_uids.add(sop_uid)
        if on_instance is not None:
            try:
                on_instance(path)
            except Exception:  # the caller's callback must not fail the store
                log.exception("on_instance callback failed")
        return STATUS_OK

    return handle_store


def on_requested(event, prefer_uncompressed: bool = False) -> None:
    """EVT_REQUESTED handler (acceptor), per association:

    * add contexts for SOP classes we have never heard of, so they are stored
      instead of refused;
    * for a SOP class the peer offers in a compressed syntax we accept, accept
      no uncompressed syntax on this association, so the peer sends each
      instance as stored or not at all, never transcoded (see the module text).
    """
    assoc = event.assoc
    rq = assoc.requestor.primitive.presentation_context_definition_list
    supported = list(assoc.acceptor.supported_contexts)
    known = {str(cx.abstract_syntax) for cx in supported}
    for cx in rq:
        uid = str(cx.abstract_syntax)
        if uid in known:
            continue
        register_storage_uid(uid)
        new = PresentationContext()
        new.abstract_syntax = uid
        offered = [t for t in cx.transfer_syntax if t not in ACCEPTED_TRANSFER_SYNTAXES]
        new.transfer_syntax = ACCEPTED_TRANSFER_SYNTAXES + offered
        supported.append(new)
        known.add(uid)
    if prefer_uncompressed:
        # the last resort of a C-MOVE: the PACS could not convert what it holds to the compressed
        # syntax we chose from a context offering several (DCMTK's dcmqrscp): take it uncompressed
        out = []
        for cx in supported:
            new = PresentationContext()
            new.abstract_syntax = cx.abstract_syntax
            ts = [str(t) for t in cx.transfer_syntax]
            ordered: list[str | bytes | UID] = [t for t in ts if t in UNCOMPRESSED_SYNTAXES]
            ordered += [t for t in ts if t not in UNCOMPRESSED_SYNTAXES]
            new.transfer_syntax = ordered
            out.append(new)
        assoc.acceptor.supported_contexts = out
        return
    compressed_offered = set()
    for cx in rq:
        if any(
            str(t) not in UNCOMPRESSED_SYNTAXES and str(t) in ACCEPTED_TRANSFER_SYNTAXES for t in cx.transfer_syntax
        ):
            compressed_offered.add(str(cx.abstract_syntax))
    out = []
    for cx in supported:
        uid = str(cx.abstract_syntax)
        if uid in compressed_offered and uid != "1.2.840.10008.1.1":
            new = PresentationContext()
            new.abstract_syntax = uid
            new.transfer_syntax = [t for t in cx.transfer_syntax if str(t) not in UNCOMPRESSED_SYNTAXES]
            cx = new
        out.append(cx)
    assoc.acceptor.supported_contexts = out


#: the name this handler had before it also chose syntaxes
accept_unknown_classes = on_requested


class StorageSCP:
    """Our C-MOVE destination: a storage SCP writing into a LocalStore.

    ``with StorageSCP("MDTVIEWER", 11112, store) as scp: ...``; ``scp.log``
    says what arrived.  :meth:`retarget` switches store/log/callback between
    retrieves so one listening server serves many (starting and stopping a
    server costs ~0.5 s).  Binds *host* (default all interfaces, because the
    PACS connects to us).
    """

    def __init__(
        self,
        ae_title: str,
        port: int,
        store: LocalStore,
        *,
        host: str = "",
        on_instance: Callable | None = None,
        extra_sop_classes=(),
        network_timeout: float = 60,
        ssl_context=None,
    ):
        self.ae_title = ae_title
        self.ssl_context = ssl_context
        self.port = int(port)
        self.host = host
        self.store = store
        self.log = ReceiveLog()
        self.on_instance = on_instance
        self._server: ThreadedAssociationServer | None = None
        self._ae = AE(ae_title)
        self._ae.network_timeout = network_timeout
        self._ae.maximum_pdu_size = 0  # no limit: fewer, larger PDUs
        self._ae.require_called_aet = True
        for uid in list(storage_sop_classes()) + [str(u) for u in extra_sop_classes]:
            register_storage_uid(uid)
            self._ae.add_supported_context(uid, ACCEPTED_TRANSFER_SYNTAXES)
        self._ae.add_supported_context("1.2.840.10008.1.1")  # verification

    def retarget(
        self,
        store: LocalStore,
        log: ReceiveLog,
        on_instance: Callable | None = None,
        cancelled: Callable[[], bool] | None = None,
        expect_study: str | None = None,
    ) -> None:
        """Send what arrives from now on to *store*, recorded in *log* (only *expect_study*'s instances)."""
        self.store, self.log, self.on_instance, self.cancelled = store, log, on_instance, cancelled
        self.expect_study = expect_study

    cancelled: Callable[[], bool] | None = None
    expect_study: str | None = None
    #: accept uncompressed syntaxes first (a C-MOVE's last round, see :func:`on_requested`)
    prefer_uncompressed: bool = False

    def _handle(self, event) -> int:
        return make_store_handler(self.store, self.log, self.on_instance, self.cancelled, self.expect_study)(event)

    def start(self) -> StorageSCP:
        handlers: list[evt.EventHandlerType] = [
            (evt.EVT_C_STORE, self._handle),
            (evt.EVT_CONN_OPEN, tune_socket),
            (evt.EVT_REQUESTED, lambda event: on_requested(event, self.prefer_uncompressed)),
        ]
        try:
            self._server = self._ae.start_server(
                (self.host, self.port), block=False, evt_handlers=handlers, ssl_context=self.ssl_context
            )
        except OSError as exc:
            raise OSError(exc.errno, f"cannot listen on port {self.port} for C-MOVE ({exc.strerror})") from exc
        return self

    @property
    def running(self) -> bool:
        return self._server is not None

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def __enter__(self) -> StorageSCP:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
