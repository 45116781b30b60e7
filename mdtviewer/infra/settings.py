"""User settings: one JSON file under :func:`mdtviewer.infra.paths.settings_file`.

Sections are plain dicts owned by the module that uses them (``"pacs_nodes"``
by :mod:`mdtviewer.pacs.nodes`, ``"viewer"`` by the UI ...).  Saved
atomically, so a crash never leaves half a settings file.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from mdtviewer.infra import paths
from mdtviewer.infra.atomic import atomic_write_text

_lock = threading.Lock()

DEFAULTS: dict[str, Any] = {
    "viewer": {"cache_bytes": 1 << 30, "recent": [], "default_fps": 30.0},
    "pacs_nodes": [],
}


def load() -> dict[str, Any]:
    f = paths.settings_file()
    data: dict[str, Any] = {}
    if f.exists():
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                data = {}
        except (OSError, ValueError):
            data = {}
    out = json.loads(json.dumps(DEFAULTS))
    for k, v in data.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k].update(v)
        else:
            out[k] = v
    return out


def save(data: dict[str, Any]) -> None:
    with _lock:
        atomic_write_text(paths.settings_file(), json.dumps(data, indent=2, sort_keys=True))


def get_section(name: str) -> Any:
    return load().get(name)


def set_section(name: str, value: Any) -> None:
    with _lock:
        data = load()
        data[name] = value
        atomic_write_text(paths.settings_file(), json.dumps(data, indent=2, sort_keys=True))
