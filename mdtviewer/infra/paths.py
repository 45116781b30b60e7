"""Where mdtviewer keeps its settings, local store, outbox and logs.

Everything lives under one home folder so that tests (and users who want a
portable install) can point ``MDTVIEWER_HOME`` somewhere else.  Default:
``$XDG_DATA_HOME/mdtviewer`` (``~/.local/share/mdtviewer``).
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    env = os.environ.get("MDTVIEWER_HOME")
    if env:
        root = Path(env)
    else:
        base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
        root = Path(base) / "mdtviewer"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _sub(name: str) -> Path:
    p = home() / name
    p.mkdir(parents=True, exist_ok=True)
    return p


def settings_file() -> Path:
    """JSON settings (PACS nodes, cache size, recent studies ...)."""
    return home() / "settings.json"


def store_dir() -> Path:
    """The local store: retrieved instances and our own SRs (+ SQLite index)."""
    return _sub("store")


def outbox_dir() -> Path:
    """Files waiting to be sent to a PACS node (retried until stored)."""
    return _sub("outbox")


def logs_dir() -> Path:
    """Application logs and the audit trail (never patient identifiers)."""
    return _sub("logs")


def resources_dir() -> Path:
    """The package's bundled data: ``demo/`` (demo study) and ``protocols/``.

    Read through :mod:`importlib.resources`, so it is found the same way from a
    checkout, an installed wheel or a frozen bundle (all of which keep package
    data as real files; a zip import would need ``as_file`` and is not used).
    A department's own protocols go in ``home()/protocols`` instead.
    """
    from importlib.resources import files

    root = files("mdtviewer") / "resources"
    return Path(str(root))
