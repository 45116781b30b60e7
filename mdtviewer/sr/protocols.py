"""Local scanning protocols (minimum image sets) for preceptorship reviews.

A protocol is a JSON file a department can edit without touching code::

    {"id": "carotid-duplex", "name": "...", "version": "1", "description": "...",
     "views": [{"id": "R-ICA-PW", "label": "Right proximal ICA spectral Doppler", "required": true}, ...]}

Built-in protocols live in ``resources/protocols/``; a department's own files
in ``<MDTVIEWER_HOME>/protocols/`` override a built-in one with the same id
(or add new ones).  View ids become SR code values, so they are limited to 16
characters and should not change once used in a signed review.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from mdtviewer.infra import paths
from mdtviewer.sr.model import ReviewError

_ID = re.compile(r"^[A-Za-z0-9_.-]{1,16}$")


@dataclass(frozen=True)
class ProtocolView:
    id: str
    label: str
    required: bool = True


@dataclass(frozen=True)
class Protocol:
    id: str
    name: str
    views: tuple[ProtocolView, ...]
    version: str = ""
    description: str = ""
    source: Path | None = field(default=None, compare=False)

    def view(self, view_id: str) -> ProtocolView | None:
        return next((v for v in self.views if v.id == view_id), None)

    @property
    def required_views(self) -> list[ProtocolView]:
        return [v for v in self.views if v.required]


def protocol_dirs() -> list[Path]:
    """Folders searched, lowest priority first (later ones override by id)."""
    return [paths.resources_dir() / "protocols", paths.home() / "protocols"]


def parse_protocol(data: object, source: Path | None = None) -> Protocol:
    """Validate a protocol's JSON data; ValueError names the file and the problem."""
    where = f"{source.name}: " if source else ""
    if not isinstance(data, dict):
        raise ReviewError(f"{where}a protocol must be a JSON object")
    pid = data.get("id")
    if not isinstance(pid, str) or not re.match(r"^[A-Za-z0-9_.-]{1,64}$", pid):
        raise ReviewError(f"{where}protocol 'id' must be 1-64 letters, digits, '-', '_' or '.'")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ReviewError(f"{where}protocol 'name' is missing")
    raw_views = data.get("views")
    if not isinstance(raw_views, list) or not raw_views:
        raise ReviewError(f"{where}protocol 'views' must be a non-empty list")
    views: list[ProtocolView] = []
    for i, v in enumerate(raw_views, 1):
        if not isinstance(v, dict):
            raise ReviewError(f"{where}view {i} must be an object")
        vid, label = v.get("id"), v.get("label")
        if not isinstance(vid, str) or not _ID.match(vid):
            raise ReviewError(f"{where}view {i}: 'id' must be 1-16 letters, digits, '-', '_' or '.'")
        if not isinstance(label, str) or not label.strip():
            raise ReviewError(f"{where}view {vid}: 'label' is missing")
        if len(label) > 64:
            raise ReviewError(f"{where}view {vid}: 'label' longer than 64 characters (it becomes a Code Meaning)")
        if any(x.id == vid for x in views):
            raise ReviewError(f"{where}view id {vid} is used twice")
        views.append(ProtocolView(vid, label.strip(), bool(v.get("required", True))))
    return Protocol(
        id=pid,
        name=name.strip(),
        views=tuple(views),
        version=str(data.get("version", "")),
        description=str(data.get("description", "")),
        source=source,
    )


def load_protocol_file(path: str | Path) -> Protocol:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReviewError(f"{path.name}: cannot read protocol ({exc})") from None
    return parse_protocol(data, path)


def load_protocols(dirs: list[Path] | None = None) -> dict[str, Protocol]:
    """Every protocol by id.  A broken department file raises (it should be fixed, not ignored)."""
    out: dict[str, Protocol] = {}
    for d in dirs if dirs is not None else protocol_dirs():
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*.json")):
            p = load_protocol_file(f)
            out[p.id] = p
    return out


def get_protocol(protocol_id: str) -> Protocol:
    protocols = load_protocols()
    try:
        return protocols[protocol_id]
    except KeyError:
        known = ", ".join(sorted(protocols)) or "none"
        raise ReviewError(f"unknown protocol {protocol_id!r} (known: {known})") from None
