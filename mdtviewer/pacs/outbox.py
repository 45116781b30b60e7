"""The outbox: files waiting to be stored on a PACS node.  Nothing is lost.

When a C-STORE or STOW-RS fails (PACS down, network gone, refused), the file is copied
here (``mdtviewer.infra.paths.outbox_dir()/<id>.dcm`` with an ``<id>.json``
sidecar: node name, original file name, attempts, last error), atomically,
and retried later by :func:`flush` (the UI calls it on a timer, see
:class:`AutoRetry`, and shows :func:`pending`).  An item leaves the outbox
only after the PACS confirmed the store.

Typical use by the SR code::

    result = outbox.send_or_queue([sr_path], node)   # stored, or kept for retry
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from mdtviewer.infra import paths
from mdtviewer.infra.atomic import atomic_write, atomic_write_text
from mdtviewer.pacs.nodes import NodeError, PacsNode, get_node

_lock = threading.RLock()


@dataclass
class OutboxItem:
    id: str
    node_name: str
    original_name: str
    queued_at: float
    attempts: int = 0
    last_error: str = ""
    last_attempt: float = 0.0

    @property
    def path(self) -> Path:
        """The queued copy of the file."""
        return paths.outbox_dir() / f"{self.id}.dcm"

    @property
    def meta_path(self) -> Path:
        return paths.outbox_dir() / f"{self.id}.json"

    def _save(self) -> None:
        atomic_write_text(self.meta_path, json.dumps(asdict(self), indent=1))


@dataclass
class FlushOutcome:
    item: OutboxItem
    ok: bool
    message: str


def queue(path, node_name: str, error: str = "", attempted: bool | None = None) -> OutboxItem:
    """Copy *path* into the outbox for *node_name*; returns the item.

    A file queued with an *error* was queued because a send just failed: that
    attempt is counted (``attempted`` overrides)."""
    src = Path(path)
    data = src.read_bytes()
    now = time.time()
    tried = bool(error) if attempted is None else attempted
    item = OutboxItem(uuid.uuid4().hex, node_name, src.name, now, attempts=int(tried), last_error=error,
                      last_attempt=now if tried else 0.0)
    with _lock:
        atomic_write(item.path, lambda fh: fh.write(data))  # the file first, then its sidecar
        item._save()
    return item


def pending(node_name: str | None = None) -> list[OutboxItem]:
    """Items waiting, oldest first (optionally for one node)."""
    out = []
    for meta in paths.outbox_dir().glob("*.json"):
        try:
            item = OutboxItem(**json.loads(meta.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            continue
        if not item.path.is_file():
            continue
        if node_name is None or item.node_name == node_name:
            out.append(item)
    out.sort(key=lambda i: i.queued_at)
    return out


def _remove(item: OutboxItem) -> None:
    item.path.unlink(missing_ok=True)  # the data first: a stray sidecar is ignored by pending()
    item.meta_path.unlink(missing_ok=True)


def flush(node: PacsNode | str | None = None) -> list[FlushOutcome]:
    """Try to store every pending item (of *node*, or all, resolving saved
    nodes by name).  Sent items leave the outbox; the rest stay, with the
    reason and one more attempt counted."""
    from mdtviewer.pacs.connect import open_client

    with _lock:
        groups: dict[str, tuple[PacsNode | None, list[OutboxItem]]] = {}
        if isinstance(node, PacsNode):
            groups[node.name] = (node, pending(node.name))
        else:
            for item in pending(node if isinstance(node, str) else None):
                groups.setdefault(item.node_name, (None, []))[1].append(item)
        outcomes: list[FlushOutcome] = []
        for name, (n, items) in groups.items():
            if not items:
                continue
            if n is None:
                try:
                    n = get_node(name)
                except NodeError as exc:
                    for it in items:
                        outcomes.append(_failed(it, str(exc)))
                    continue
            with open_client(n) as client:
                res = client.store([it.path for it in items])
            reasons = {p: r for p, r in res.failed}
            for it in items:
                if it.path in reasons:
                    outcomes.append(_failed(it, reasons[it.path]))
                else:
                    _remove(it)
                    outcomes.append(FlushOutcome(it, True, f"stored {it.original_name} on {name}"))
        return outcomes


def _failed(item: OutboxItem, reason: str) -> FlushOutcome:
    item.attempts += 1
    item.last_error = reason
    item.last_attempt = time.time()
    item._save()
    return FlushOutcome(item, False, f"{item.original_name} kept in the outbox: {reason}")


def send_or_queue(paths_, node: PacsNode):
    """Store files on *node* now; whatever fails is queued (nothing lost).

    Returns ``(StoreResult, [OutboxItem queued])``.
    """
    from mdtviewer.pacs.connect import open_client

    with open_client(node) as client:
        res = client.store(paths_)
    queued = [queue(p, node.name, reason, attempted=True) for p, reason in res.failed if Path(p).is_file()]
    return res, queued


class AutoRetry:
    """A background thread flushing the outbox every *interval* seconds.

    ``r = AutoRetry(60).start(); ...; r.stop()``.  *on_result* gets each
    non-empty list of outcomes (called from the thread).
    """

    def __init__(self, interval: float = 60.0, on_result=None):
        self.interval = interval
        self.on_result = on_result
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> AutoRetry:
        self._thread = threading.Thread(target=self._run, name="outbox-retry", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                out = flush() if pending() else []
            except Exception:  # noqa: BLE001 - never let the retry thread die
                out = []
            if out and self.on_result:
                self.on_result(out)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
