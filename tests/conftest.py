"""Shared fixtures.

The corpus lives beside the repository in ``../shared/testdata`` (override
with ``MDTVIEWER_TESTDATA``); it is read in place, never copied.
"""

from __future__ import annotations

import os
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
