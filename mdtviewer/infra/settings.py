"""User settings: one JSON file under :func:`mdtviewer.infra.paths.settings_file`.

Sections are plain dicts owned by the module that uses them (``"pacs_nodes"``
by :mod:`mdtviewer.pacs.nodes`, ``"viewer"`` by the UI ...).  Saved
atomically, so a crash never leaves half a settings file.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from mdtviewer.infra import paths
from mdtviewer.infra.atomic import atomic_write_text

log = logging.getLogger(__name__)

_lock = threading.Lock()

DEFAULTS: dict[str, Any] = {
    "viewer": {"cache_bytes": 1 << 30, "recent": [], "default_fps": 30.0},
    "pacs_nodes": [],
}


def _read_file(strict: bool) -> dict[str, Any]:
    """The settings file's content; {} when there is none.

    A file that is not a JSON object (damaged by hand or by a disk fault) is never overwritten: it is
    renamed ``settings.json.unreadable-<UTC time>`` (logged with the reason) and the defaults are used,
    so the next save of one section cannot silently drop the others (PACS nodes, reviewer profile).
    A file that cannot be read at all (permissions, I/O error) gives the defaults, and with *strict*
    (before a save) the OSError is raised: nothing is written over a file that could not be read.
    """
    f = paths.settings_file()
    if not f.exists():
        return {}
    try:
        raw = f.read_bytes()
    except OSError as exc:
        if strict:
            raise
        log.warning("settings file unreadable (%s): defaults used", exc.strerror or type(exc).__name__)
        return {}
    try:
        data = json.loads(raw.decode("utf-8"))
        if isinstance(data, dict):
            return data
        why = f"a JSON {type(data).__name__}, not an object"
    except ValueError as exc:  # UnicodeDecodeError too
        why = f"not valid JSON: {str(exc).splitlines()[0][:120]}"
    try:
        kept = _set_aside(f)
    except OSError as exc:
        if strict:
            raise
        log.warning("settings file unreadable (%s) and could not be set aside (%s): defaults used", why,
                    exc.strerror or type(exc).__name__)
        return {}
    log.warning("settings file unreadable (%s): kept as %s, defaults used", why, kept.name)
    _kept.append(kept)
    return {}


#: damaged settings files set aside by this process, for the window to say so (:func:`take_set_aside`)
_kept: list[Path] = []


def take_set_aside() -> list[Path]:
    """The damaged settings files set aside since the last call (the window says so once, in its status bar)."""
    out = list(_kept)
    _kept.clear()
    return out


def _set_aside(f: Path) -> Path:
    """Rename the damaged *f* to a name no other file has (``settings.json.unreadable-<UTC time>[-N]``): a second
    damaged file set aside in the same second must not replace the first (it may hold the only copy of the
    PACS nodes).  A hard link claims the name atomically where the file system has them."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for n in range(1, 1000):
        kept = f.with_name(f"{f.name}.unreadable-{stamp}" + (f"-{n}" if n > 1 else ""))
        try:
            os.link(f, kept)  # fails if the name is taken: never replaces a file set aside before
        except FileExistsError:
            continue
        except OSError:  # no hard links here: the name is checked, then the file renamed
            if kept.exists():
                continue
            os.replace(f, kept)
            return kept
        f.unlink()
        return kept
    raise FileExistsError(f"no free name to set {f.name} aside")


def load(strict: bool = False) -> dict[str, Any]:
    data = _read_file(strict)
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
        data = load(strict=True)  # never write over a file that could not be read
        data[name] = value
        atomic_write_text(paths.settings_file(), json.dumps(data, indent=2, sort_keys=True))
