"""The one way the window runs work in the background.

Modelled on napari's ``create_worker`` idea, simpler:

- :func:`run` starts ``fn(task)`` on a worker thread **on behalf of an owner**
  (a QObject/QWidget).  ``task.cancel`` is a :class:`threading.Event` the job
  passes to core functions (``index.add_paths(..., cancel=task.cancel)``);
  ``task.progress(value)`` sends a value to the UI thread.
- Results, progress and errors reach the UI thread through one queued Qt
  signal of a dispatcher that lives as long as the application: no worker
  ever emits on a widget, so a widget being torn down cannot be hit by a
  worker's signal.
- :func:`shutdown` (the owner's close, or its ``destroyed`` signal as a safety
  net) cancels the owner's jobs (and its children's), detaches them (nothing
  they send is delivered any more) and joins their threads with a bounded wait.
- Errors go to one place (:func:`describe_error`, worded by
  :mod:`mdtviewer.ui.errors`): an expected failure (an exception with a
  one-line ``reason``, a :class:`DicomInputError`, or a type the call site
  declares ``expected``) becomes its reason; anything else is a bug: logged
  with its traceback to the log file and shown as a bug naming that file.
  The job's ``on_error`` gets that line; without one, expected errors go to
  :data:`errors`; bugs always do (the main window shows them in its status bar).
- :func:`on_shutdown` registers what else the owner must stop when it closes
  (a PACS client's kept association, a timer, the index's worker processes).
- :func:`persist` runs fire-and-forget writes (settings, audit) in order on an
  application-wide lane; :func:`flush` waits for them (window close, app exit).

Jobs sharing a *lane* within one owner run one after another on one thread
(the thread ends when the lane is empty, so nothing idles between jobs).
"""

from __future__ import annotations

import atexit
import functools
import itertools
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import shiboken6
from PySide6.QtCore import QCoreApplication, QObject, Qt, Signal

import mdtviewer.ui.qtfix  # noqa: F401  (first: PySide6 6.12 None refcount bug, see there)
from mdtviewer.infra.errors import DicomInputError

log = logging.getLogger(__name__)

#: how long closing an owner waits for its jobs to stop (each job is told to cancel first)
JOIN_TIMEOUT_S = 5.0
#: one line of an exception message at most this long in a message to the user
MAX_REASON = 300

_lock = threading.RLock()
_tokens = itertools.count(1)
_PROP = "_mdtTaskScope"


# --------------------------------------------------------------------- errors
class _ErrorHub(QObject):
    """Where errors of background jobs are announced on the UI thread (connect the window's status bar)."""

    #: one-line message, True when it is a bug (reported with the log file's path)
    reported = Signal(str, bool)


#: the hook: ``tasks.errors.reported.connect(show)``
errors = _ErrorHub()


def _one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def is_expected(exc: BaseException, expected: tuple[type[BaseException], ...] = ()) -> bool:
    """An expected failure (bad input, unreachable PACS …) rather than a bug in the viewer."""
    from mdtviewer.ui import errors as ui_errors

    return (ui_errors.reason_of(exc) is not None or isinstance(exc, DicomInputError)
            or (bool(expected) and isinstance(exc, expected)))


def _ensure_log_file() -> None:
    """Bugs must reach the log file even when the app did not set logging up (tests, scripts)."""
    from mdtviewer.infra import logsafe
    from mdtviewer.ui import errors as ui_errors

    want = str(ui_errors.log_file())
    root = logging.getLogger()
    if not any(getattr(h, "baseFilename", None) == want for h in root.handlers):
        logsafe.setup_logging(min(root.getEffectiveLevel(), logging.WARNING))


def describe_error(
    exc: BaseException, expected: tuple[type[BaseException], ...] = (), context: str = ""
) -> tuple[str, bool]:
    """``(one line for the user, is_bug)``, worded by :func:`mdtviewer.ui.errors.describe`.

    A bug is logged there with its traceback, to the log file (set up here if the
    application did not, e.g. in tests).  *context* names the job, in the log only.
    """
    from mdtviewer.ui import errors as ui_errors

    if ui_errors.reason_of(exc) is None:
        if is_expected(exc, expected):  # a declared type without a reason attribute: its message is the reason
            return _one_line(str(exc) or type(exc).__name__), False
        try:
            _ensure_log_file()
        except Exception:  # noqa: BLE001 - no log file: the traceback still goes to the handlers there are
            pass
        if context:
            log.error("background job %r failed:", context)
    rep = ui_errors.describe(exc)
    return (rep.text if rep.is_bug else _one_line(rep.text)), rep.is_bug


class JobFailed(Exception):
    """A job's failure as a value (for code that takes a result or an exception): ``reason`` is the one line."""

    def __init__(self, reason: str, bug: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.bug = bug

    def __str__(self) -> str:
        return self.reason


def report_error(exc: BaseException, expected: tuple[type[BaseException], ...] = (), context: str = "") -> str:
    """Describe *exc* and announce it on :data:`errors` (for failures caught on the UI thread)."""
    message, bug = describe_error(exc, expected, context)
    errors.reported.emit(message, bug)
    return message


# --------------------------------------------------------------------- dispatcher
class _Dispatcher(QObject):
    """Lives on the UI thread for the whole run; workers post ``(task, kind, payload)`` to it."""

    posted = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.posted.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    def _deliver(self, item: Any) -> None:
        task, kind, payload = item
        task._deliver(kind, payload)


_dispatcher = _Dispatcher()


class Task:
    """One background job.  Worker side: ``cancel`` (an Event), :meth:`progress`.  UI side: the rest."""

    def __init__(self, scope: _Scope, fn: Callable[[Task], Any], name: str, lane: str,
                 on_result: Callable[[Any], Any] | None, on_error: Callable[[str], Any] | None,
                 on_progress: Callable[[Any], Any] | None, on_cancel: Callable[[], Any] | None,
                 expected: tuple[type[BaseException], ...]):
        self.name = name
        self.lane = lane
        self.cancel = threading.Event()
        self._scope = scope
        self._fn: Callable[[Task], Any] | None = fn
        self._on_result, self._on_error = on_result, on_error
        self._on_progress, self._on_cancel = on_progress, on_cancel
        self.expected = expected
        self._finished = threading.Event()  # the worker is done with it (ran, failed or skipped)
        self._delivered = False  # UI thread: its result or error was handled (or dropped)
        self._detached = False  # its owner went: nothing it sends is delivered
        self.thread: threading.Thread | None = None
        #: the one-line error once delivered (None: none, or not yet)
        self.error: str | None = None

    # -- worker side -----------------------------------------------------------
    def progress(self, value: Any) -> None:
        """Send *value* to ``on_progress`` on the UI thread (dropped once the owner is gone)."""
        if not self._detached:
            _dispatcher.posted.emit((self, "progress", value))

    def cancelled(self) -> bool:
        return self.cancel.is_set()

    def _execute(self) -> None:
        fn, self._fn = self._fn, None  # nothing of the job is kept once it ran
        try:
            if self._detached or fn is None:
                return
            try:
                result = fn(self)
            except BaseException as exc:  # noqa: BLE001 - every failure goes to the one error path
                message, bug = describe_error(exc, self.expected, self.name)  # a bug is logged even if nobody listens
                if not self._detached:
                    _dispatcher.posted.emit((self, "error", (message, bug)))
                return
            if not self._detached:
                _dispatcher.posted.emit((self, "result", result))
            result = None
        finally:
            self._finished.set()

    # -- UI side ---------------------------------------------------------------
    def running(self) -> bool:
        """True until its result or error was handled on the UI thread (or it stopped after its owner went)."""
        return not self._delivered and not (self._detached and self._finished.is_set())

    def done(self) -> bool:
        """True once the worker finished with it (its result may still be on its way to the UI thread)."""
        return self._finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the worker to finish the job (not for the delivery of its result)."""
        return self._finished.wait(timeout)

    def request_cancel(self) -> None:
        """Ask the job to stop (its result, if any, is still delivered)."""
        if not self.cancel.is_set():
            self.cancel.set()
            if self._on_cancel is not None:
                try:
                    self._on_cancel()
                except Exception as exc:  # noqa: BLE001
                    report_error(exc, context=f"cancelling {self.name}")

    def _detach(self) -> None:
        self._detached = True
        self.request_cancel()

    def _call(self, cb: Callable[[Any], Any], arg: Any) -> None:
        if not self._scope.owner_alive():
            return
        try:
            cb(arg)
        except Exception as exc:  # noqa: BLE001 - a slot's failure is a bug: reported, never raised into Qt
            report_error(exc, context=f"{self.name} (UI side)")

    def _deliver(self, kind: str, payload: Any) -> None:
        if kind == "progress":
            if not self._detached and not self._delivered and self._on_progress is not None:
                self._call(self._on_progress, payload)
            return
        if self._delivered:
            return
        self._delivered = True
        self._scope.forget(self)
        if self._detached:
            return
        if kind == "result":
            if self._on_result is not None:
                self._call(self._on_result, payload)
            return
        message, bug = payload
        self.error = message
        if self._on_error is not None:
            self._call(self._on_error, message)
        if bug or self._on_error is None:
            errors.reported.emit(message, bug)

    def __repr__(self) -> str:
        state = "done" if self.done() else "running"
        return f"<Task {self.name} {state}{' cancelled' if self.cancel.is_set() else ''}>"


# --------------------------------------------------------------------- scopes and lanes
class _Lane:
    """Jobs run one after another on one thread, which ends when none is left."""

    def __init__(self, name: str, thread_name: str):
        self.name = name
        self.thread_name = thread_name
        self.queue: deque[Task] = deque()
        self.thread: threading.Thread | None = None

    def push(self, task: Task) -> None:
        with _lock:
            self.queue.append(task)
            if self.thread is None:
                self.thread = threading.Thread(target=self._serve, name=self.thread_name, daemon=True)
                task.thread = self.thread
                self.thread.start()
            else:
                task.thread = self.thread

    def _serve(self) -> None:
        while True:
            with _lock:
                if not self.queue:
                    self.thread = None
                    return
                task = self.queue.popleft()
            task._execute()

    def idle(self) -> bool:
        with _lock:
            return self.thread is None and not self.queue


class _Scope:
    """The jobs of one owner."""

    def __init__(self, owner: QObject | None, token: int):
        self.token = token
        self.owner_ref = weakref.ref(owner) if owner is not None else None
        self.tasks: list[Task] = []
        self.lanes: dict[str, _Lane] = {}
        #: run after the owner's jobs stopped, each time it is shut down (close connections, stop timers)
        self.closers: list[Callable[[], Any]] = []

    def owner(self) -> QObject | None:
        return self.owner_ref() if self.owner_ref is not None else None

    def owner_alive(self) -> bool:
        if self.owner_ref is None:
            return True
        o = self.owner_ref()
        return o is not None and shiboken6.isValid(o)

    def forget(self, task: Task) -> None:
        with _lock:
            if task in self.tasks:
                self.tasks.remove(task)

    def lane(self, name: str, thread_name: str) -> _Lane:
        with _lock:
            ln = self.lanes.get(name)
            if ln is None:
                ln = self.lanes[name] = _Lane(name, thread_name)
            return ln


_scopes: dict[int, _Scope] = {}
_app_scope = _Scope(None, 0)
_orphans: list[Task] = []  # jobs that did not stop in time when their owner went (kept until they end)
_lane_ids = itertools.count(1)


def _scope_for(owner: QObject | None) -> _Scope:
    if owner is None:
        return _app_scope
    if not shiboken6.isValid(owner):
        raise RuntimeError("the owner of a background job is already deleted")
    token = owner.property(_PROP)
    with _lock:
        scope = _scopes.get(token) if token else None
        if scope is None:
            token = next(_tokens)
            owner.setProperty(_PROP, token)
            scope = _scopes[token] = _Scope(owner, token)
            owner.destroyed.connect(functools.partial(_owner_destroyed, token))
        return scope


def _owner_destroyed(token: int, *_args: Any) -> None:
    with _lock:
        scope = _scopes.pop(token, None)
    if scope is not None:
        _stop([scope], JOIN_TIMEOUT_S, dying=True)


def run(owner: QObject | None, fn: Callable[[Task], Any], *, name: str = "task", lane: str | None = None,
        on_result: Callable[[Any], Any] | None = None, on_error: Callable[[str], Any] | None = None,
        on_progress: Callable[[Any], Any] | None = None, on_cancel: Callable[[], Any] | None = None,
        expected: Iterable[type[BaseException]] = ()) -> Task:
    """Run ``fn(task)`` in the background on behalf of *owner* (call from the UI thread).

    ``on_result(result)``, ``on_progress(value)`` and ``on_error(one_line)`` run on
    the UI thread, only while *owner* lives and has not been shut down.
    ``on_cancel()`` runs on the UI thread when the job is cancelled (to wake a job
    that waits on something other than ``task.cancel``).  *lane*: jobs of this owner
    with the same lane run one after another.  *expected*: exception types whose
    message is a reason for the user, not a bug.
    """
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("tasks.run must be called from the UI thread")
    _hook_quit()
    scope = _scope_for(owner)
    task = Task(scope, fn, name, lane or f"{name}-{next(_lane_ids)}", on_result, on_error, on_progress, on_cancel,
                tuple(expected))
    with _lock:
        scope.tasks.append(task)
    scope.lane(task.lane, lane or name).push(task)
    if not lane:
        with _lock:  # a lane of its own: forget it once its thread is gone
            scope.lanes.pop(task.lane, None)
    return task


def on_shutdown(owner: QObject, fn: Callable[[], Any]) -> None:
    """Call ``fn()`` (UI thread) whenever *owner* is shut down, after its jobs stopped.

    For what the owner started that is not a job: a client's kept association,
    a listener, a timer.
    """
    scope = _scope_for(owner)
    with _lock:
        if fn not in scope.closers:
            scope.closers.append(fn)


def active(owner: QObject | None = None, children: bool = True) -> list[Task]:
    """Jobs of *owner* (and its children) whose result has not been handled yet; all jobs when None."""
    with _lock:
        scopes = [_app_scope, *_scopes.values()] if owner is None else _scopes_under(owner, children)
        return [t for s in scopes for t in s.tasks]


def _scopes_under(owner: QObject, children: bool) -> list[_Scope]:
    out = []
    for s in list(_scopes.values()):
        o = s.owner()
        if o is None or not shiboken6.isValid(o):
            continue
        while o is not None:
            if o is owner:
                out.append(s)
                break
            if not children:
                break
            o = o.parent()
    return out


def shutdown(owner: QObject, timeout: float = JOIN_TIMEOUT_S, children: bool = True) -> bool:
    """Cancel and detach the jobs of *owner* (and of its children), and join their threads.

    Call it when the owner closes, before its widgets go.  Returns False if a job
    did not stop within *timeout* (it is kept, detached, until it ends).
    """
    with _lock:
        scopes = _scopes_under(owner, children)
    return _stop(scopes, timeout)


def _stop(scopes: list[_Scope], timeout: float, dying: bool = False) -> bool:
    with _lock:
        tasks = [t for s in scopes for t in s.tasks]
        for s in scopes:
            s.tasks.clear()
            for ln in s.lanes.values():
                tasks.extend(t for t in ln.queue if t not in tasks)
    for t in tasks:
        t._detach()
    deadline = time.monotonic() + timeout
    ok = True
    for t in tasks:
        if not t._finished.wait(max(0.0, deadline - time.monotonic())):
            ok = False
    threads = {t.thread for t in tasks if t.thread is not None}
    for th in threads:
        th.join(max(0.0, deadline - time.monotonic()))
    for s in scopes:
        for fn in list(s.closers):
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - one failing closer must not keep the others from running
                if not (dying and isinstance(exc, RuntimeError)):  # while dying, its children may be gone already
                    report_error(exc, context="shutting down")
    stuck = [t for t in tasks if not t._finished.is_set()]
    if stuck:
        log.warning("%d background job(s) did not stop within %.1f s: %s", len(stuck), timeout,
                    ", ".join(t.name for t in stuck))
        with _lock:
            _orphans[:] = [t for t in _orphans if not t.done()] + stuck
    return ok and not stuck


def wait(owner: QObject | None, timeout: float = 30.0) -> bool:
    """Wait until the jobs of *owner* (and its children) have finished in their workers (tests, dialogs)."""
    deadline = time.monotonic() + timeout
    for t in active(owner) if owner is not None else list(_app_scope.tasks):
        if not t.wait(max(0.0, deadline - time.monotonic())):
            return False
    return True


# --------------------------------------------------------------------- persistence
_IO_LANE = "io"


def persist(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Task:
    """Write in the background (settings, audit records), after every write asked for before.

    A user action must never wait on the disk or the network (the audit trail
    is fsynced and may go to a syslog server; settings are written atomically).
    Nothing is lost at exit: :func:`flush` runs on window close and at exit.
    A failed write is reported like any other job error.
    """
    return run(None, lambda _t: fn(*args, **kwargs), name="io", lane=_IO_LANE)


def flush(timeout: float = 10.0) -> bool:
    """Wait until every write handed to :func:`persist` so far is done."""
    lane = _app_scope.lanes.get(_IO_LANE)
    if lane is None:
        return True
    deadline = time.monotonic() + timeout
    while not lane.idle():
        th = lane.thread
        if th is not None:
            th.join(max(0.0, min(0.05, deadline - time.monotonic())))
        if time.monotonic() >= deadline:
            return lane.idle()
    return True


def shutdown_all(timeout: float = JOIN_TIMEOUT_S) -> bool:
    """At application exit: stop every owner's jobs, then finish the pending writes."""
    with _lock:
        scopes = list(_scopes.values())
    ok = _stop(scopes, timeout)
    return flush(timeout) and ok


_quit_hooked = False


def _hook_quit() -> None:
    """At the application's quit: every job stopped, every write done (once the app exists)."""
    global _quit_hooked
    if _quit_hooked:
        return
    app = QCoreApplication.instance()
    if app is not None:
        app.aboutToQuit.connect(shutdown_all)
        _quit_hooked = True


def _at_exit(timeout: float = 10.0) -> None:
    """Before the interpreter goes: every job stopped (a window left open, e.g. by a failed
    ``open --screenshot``), pending writes done, and a job that outlived its window (a review
    being written and sent) given the time to finish, not killed mid-write."""
    deadline = time.monotonic() + timeout
    with _lock:
        scopes = list(_scopes.values())
    _stop(scopes, min(JOIN_TIMEOUT_S, timeout), dying=True)  # no worker left emitting while Qt is torn down
    flush(max(0.0, deadline - time.monotonic()))
    for t in list(_orphans):
        t.wait(max(0.0, deadline - time.monotonic()))


atexit.register(_at_exit)
