"""Reviews and reports of a study that exist only on the PACS.

A second opinion written on another workstation is C-STOREd into the
patient's study on the PACS; the scientist who opens that study from a local
folder (or retrieved it before the review existed) must still see it in the
report panel.  So, for the study on screen, we ask the PACS which SR, KOS and
encapsulated-document instances it holds (one C-FIND at IMAGE level), and
fetch only the ones the local store lacks (they are a few kB each) into the
local store, where :func:`mdtviewer.workflows.reviews.reviews_for_study` and the
report panel find them.  Images are never fetched here: that is the user's
explicit retrieve.

Which PACS: the node the reviewer sends signed reviews to (settings section
``reviewer``, key ``send_to``), else every saved node.  A node that does not
answer costs its connect timeout and is reported, never raised: the panel
still lists the local reports.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

from mdtviewer.dicom.uids import is_report_class
from mdtviewer.infra import settings
from mdtviewer.infra.errors import MdtError, bug_reason
from mdtviewer.pacs.client import InstanceRef, audit_retrieve
from mdtviewer.pacs.connect import open_client
from mdtviewer.pacs.localstore import LocalStore
from mdtviewer.pacs.nodes import PacsNode, load_nodes

log = logging.getLogger(__name__)

#: a lookup for the report panel should not hang on a dead or silent PACS for the node's full timeouts
LOOKUP_CONNECT_TIMEOUT = 5.0
LOOKUP_ACSE_TIMEOUT = 10.0


@dataclass
class ReportLookup:
    """What one look on the PACS found: new local files, and per-node problems (one line each)."""

    fetched: list[Path] = field(default_factory=list)
    #: report instances the PACS holds for the study (new or already here)
    on_pacs: int = 0
    nodes_asked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        if not self.nodes_asked:
            return ""
        where = ", ".join(self.nodes_asked)
        parts = []
        if self.fetched:
            parts.append(f"{len(self.fetched)} report(s) fetched from {where}")
        elif not self.problems:
            parts.append(f"no further reports on {where}")
        parts += self.problems
        return "; ".join(parts)


def lookup_nodes() -> list[PacsNode]:
    """The nodes to ask: the reviewer's 'send signed reviews to' node, else every saved node."""
    try:
        nodes = load_nodes()
    except (MdtError, OSError) as exc:  # unusable node settings: nothing to ask
        log.debug("no PACS nodes: %s", getattr(exc, "reason", None) or type(exc).__name__)
        return []
    saved = settings.get_section("reviewer") or {}
    send_to = saved.get("send_to") if isinstance(saved, dict) else None
    if send_to:
        chosen = [n for n in nodes if n.name == send_to]
        if chosen:
            return chosen
    return nodes


def own_review_uids(study_uid: str) -> set[str]:
    """SOP Instance UIDs of the reviews written on this computer for the study (from their file names:
    ``SR_<stamp>_<state>_<uid>.dcm``, see :mod:`mdtviewer.workflows.reviews`), without reading the files."""
    from mdtviewer.infra import paths

    folder = paths.store_dir() / "reviews" / study_uid
    if not folder.is_dir():
        return set()
    out = set()
    for p in folder.glob("SR_*.dcm"):
        parts = p.stem.split("_", 3)
        if len(parts) == 4:
            out.add(parts[3])
    return out


def fetch_study_reports(study_uid: str, nodes: list[PacsNode] | None = None, store: LocalStore | None = None,
                        cancel: threading.Event | None = None) -> ReportLookup:
    """Fetch the study's SR/KOS/document instances that are on the PACS but not local.

    Never raises for network trouble; every node's problem is one line in
    :attr:`ReportLookup.problems` (without patient identifiers).
    """
    out = ReportLookup()
    if not study_uid:
        return out
    nodes = lookup_nodes() if nodes is None else nodes
    if not nodes:
        return out
    own_store = store is None
    store = store if store is not None else LocalStore()
    mine = own_review_uids(study_uid)  # written here (and maybe sent from here): no need to fetch them back
    try:
        for node in nodes:
            if cancel is not None and cancel.is_set():
                break
            out.nodes_asked.append(node.name)
            quick = replace(node, connect_timeout=min(node.connect_timeout, LOOKUP_CONNECT_TIMEOUT),
                            acse_timeout=min(node.acse_timeout, LOOKUP_ACSE_TIMEOUT))
            before = set(store.sop_uids(study_uid))
            try:
                with open_client(quick) as client:
                    wanted = lambda r: is_report_class(r.sop_class_uid) and r.sop_instance_uid not in mine  # noqa: E731
                    # C-GET first even for a C-MOVE node: a few small documents, and no listening port
                    # to share with the PACS dialog's own storage SCP; the node's C-MOVE if GET fails
                    res = client.retrieve(study_uid, store, cancel=cancel, select=wanted, method="get")
                    if res.total and res.remaining and not res.cancelled and node.retrieve == "move":
                        res = client.retrieve(study_uid, store, cancel=cancel, select=wanted, method="move")
            except Exception as exc:  # a boundary: a lookup never raises; bugs are logged and said to be bugs
                if isinstance(exc, (MdtError, OSError)):
                    why = getattr(exc, "reason", None) or " ".join(str(exc).split()) or type(exc).__name__
                else:
                    log.exception("bug while looking up reports on a PACS")
                    why = bug_reason(exc)
                out.problems.append(f"{node.name}: {why}")
                continue
            out.on_pacs += res.total
            if res.fetched:
                audit_retrieve(node, study_uid, res, purpose="study reports for the report panel")
            new_uids = set(store.sop_uids(study_uid)) - before
            if new_uids:
                # the store names each file by its SOP Instance UID (LocalStore.path_for)
                out.fetched += [p for p in store.study_paths(study_uid) if p.stem in new_uids]
            if (res.total and res.remaining and not res.cancelled) or (
                not res.total
                and res.message
                and "no such instances" not in res.message
                and "no instances" not in res.message
            ):
                out.problems.append(f"{node.name}: {res.message}")
    finally:
        if own_store:
            store.close()
    return out


__all__ = ["InstanceRef", "ReportLookup", "fetch_study_reports", "is_report_class", "lookup_nodes"]
