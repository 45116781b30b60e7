"""Small writes the window makes (settings, audit records) on one background thread.

A user action must never wait on the disk or the network: the audit trail is
fsynced and may also go to a syslog server over TCP, and the settings file is
written atomically (write, fsync, rename).  On a slow or network home folder
either can take long enough to freeze the window, so the UI hands them to this
single thread.  One thread keeps the writes in the order they were asked for.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mdt-io")
        return _pool


def _guarded(fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - a failed write is logged, never raised into Qt
        log.warning("background write failed: %s: %s", type(exc).__name__, exc)
        return None


def submit(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
    """Run ``fn(*args, **kwargs)`` on the I/O thread, after everything submitted before."""
    return _executor().submit(_guarded, fn, args, kwargs)


def flush(timeout: float = 10.0) -> bool:
    """Wait until every write submitted so far is done (at window close, and in tests)."""
    try:
        submit(lambda: None).result(timeout=timeout)
        return True
    except Exception:  # noqa: BLE001 - timed out: the writes go on, the caller carries on
        return False
