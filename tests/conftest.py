"""Shared fixtures.

The corpus lives beside the repository in ``../shared/testdata`` (override
with ``MDTVIEWER_TESTDATA``); it is read in place, never copied.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import weakref
from pathlib import Path

# Before anything imports Qt: without a display the whole process would abort.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

REPO = Path(__file__).resolve().parent.parent
TESTDATA = Path(os.environ.get("MDTVIEWER_TESTDATA", REPO.parent / "shared" / "testdata"))


def corpus_files() -> list[Path]:
    """Every top-level corpus file (the DICOMDIR set is a folder of its own)."""
    return sorted(p for p in TESTDATA.glob("*.dcm"))


@pytest.fixture(scope="session")
def testdata() -> Path:
    if not TESTDATA.is_dir():
        pytest.fail(f"test corpus not found at {TESTDATA} (set MDTVIEWER_TESTDATA)")
    return TESTDATA


@pytest.fixture(autouse=True)
def mdt_home(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own settings/store/outbox/log folder."""
    home = tmp_path_factory.mktemp("mdthome")
    monkeypatch.setenv("MDTVIEWER_HOME", str(home))
    # identifiers registered for log redaction are process-wide: none leak between tests
    from mdtviewer.infra import logsafe

    logsafe.forget_identifiers()
    return home


# ----------------------------------------------------------------------------- leak check
#: how long a test's threads get to end after it (joined, not slept): generous for a loaded 2-core machine
LEAK_GRACE_S = 5.0

_qt_started: list[weakref.ref] = []  # QTimers and QThreads started during the current test
_qt_patched = False


def _patch_qt_starts() -> None:
    """Record every QTimer and QThread started from Python (as napari's conftest does)."""
    global _qt_patched
    if _qt_patched or "PySide6.QtCore" not in sys.modules:
        return
    from PySide6.QtCore import QThread, QTimer

    for cls in (QTimer, QThread):
        orig = cls.start

        def start(self, *args, _orig=orig, **kwargs):
            try:
                _qt_started.append(weakref.ref(self))
            except TypeError:
                pass
            return _orig(self, *args, **kwargs)

        cls.start = start
    _qt_patched = True


def _owner_alive(obj) -> bool:
    import shiboken6

    return shiboken6.isValid(obj)


@pytest.fixture(autouse=True)
def no_leaked_threads_or_timers(request):
    """Fail a test that leaves a Python thread, a running QThread or an active QTimer behind.

    Threads that existed before the test (session fixtures such as the Orthanc
    peer) are not counted.  A thread gets LEAK_GRACE_S to end (joined, so a
    quick test pays nothing).  Widgets closed by the test (or by qtbot) are
    deleted first, so a timer owned by a closed window does not count.
    """
    _patch_qt_starts()
    before = set(threading.enumerate())
    _qt_started.clear()
    yield
    _patch_qt_starts()
    if "PySide6.QtCore" in sys.modules:
        from PySide6.QtCore import QCoreApplication, QEvent, QThreadPool

        app = QCoreApplication.instance()
        if app is not None:
            app.processEvents()
            QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
            app.processEvents()
        QThreadPool.globalInstance().waitForDone(int(LEAK_GRACE_S * 1000))
    deadline = time.monotonic() + LEAK_GRACE_S
    leaked = []
    for t in threading.enumerate():
        if t in before or t is threading.current_thread():
            continue
        t.join(max(0.0, deadline - time.monotonic()))
        if t.is_alive():
            leaked.append(t.name)
    problems = []
    if leaked:
        problems.append(f"threads still running: {', '.join(sorted(leaked))}")
    if "PySide6.QtCore" in sys.modules:
        from PySide6.QtCore import QThread, QThreadPool, QTimer

        live = [o for r in _qt_started if (o := r()) is not None and _owner_alive(o)]
        qthreads = [o for o in live if isinstance(o, QThread) and o.isRunning()]
        timers = [o for o in live if isinstance(o, QTimer) and o.isActive()]
        if qthreads:
            problems.append(f"QThreads still running: {qthreads}")
        if timers:
            owners = [type(t.parent()).__name__ if t.parent() is not None else "no parent" for t in timers]
            problems.append(f"active QTimers of live objects: {', '.join(owners)}")
        if QThreadPool.globalInstance().activeThreadCount():
            problems.append("QThreadPool jobs still running")
    _qt_started.clear()
    if problems:
        pytest.fail("left behind by the test: " + "; ".join(problems), pytrace=False)


@pytest.fixture
def window(qtbot):
    """The real review window, shown at 1280x800 on the offscreen platform."""
    from mdtviewer.ui.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.stop_all()
    win.close()


# Orthanc fixtures (real PACS peer) live in tests/orthanc_peer.py.
pytest_plugins = ["orthanc_peer"]
