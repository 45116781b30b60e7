"""Per-scanner masking templates: where a scanner model puts the image, so the rest can be blanked.

A department sets one template per scanner screen layout, once: a keep area
(rectangles and/or polygons, inclusive pixel coordinates) stored for the
scanner's Manufacturer + Manufacturer's Model Name + Rows + Columns.  Privacy
mode, presenter mode and export all use it (through
:func:`mdtviewer.imaging.masking.keep_region`) for images of that scanner
that carry no Sequence of Ultrasound Regions.

Kept in the user settings (section ``"masking_templates"``, a list of plain
dicts), so it survives restarts and can be copied between machines.  None is
shipped: a template is a department's statement about its own scanners.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mdtviewer.infra import settings

SECTION = "masking_templates"

#: (x0, y0, x1, y1), inclusive
Rect = tuple[int, int, int, int]
Point = tuple[int, int]


def _norm(text: object) -> str:
    return " ".join(str(text or "").split()).casefold()


@dataclass(frozen=True)
class ScannerKey:
    """Which screens a template applies to (text compared case- and spacing-insensitively)."""

    manufacturer: str
    model: str
    rows: int
    columns: int

    @classmethod
    def of(cls, ds: Any) -> ScannerKey:
        def text(kw: str) -> str:
            try:
                v = ds.get(kw, "")
            except Exception:  # noqa: BLE001 - a damaged header value reads as empty
                return ""
            return " ".join(str(v or "").split())

        def num(kw: str) -> int:
            try:
                return int(ds.get(kw, 0) or 0)
            except (TypeError, ValueError):
                return 0

        return cls(text("Manufacturer"), text("ManufacturerModelName"), num("Rows"), num("Columns"))

    def matches(self, other: ScannerKey) -> bool:
        return (
            _norm(self.manufacturer) == _norm(other.manufacturer)
            and _norm(self.model) == _norm(other.model)
            and int(self.rows) == int(other.rows)
            and int(self.columns) == int(other.columns)
        )

    def describe(self) -> str:
        name = " ".join(p for p in (self.manufacturer, self.model) if p) or "unnamed scanner"
        return f"{name} {self.columns}x{self.rows}"


@dataclass(frozen=True)
class Template:
    """A keep area for one scanner screen layout."""

    key: ScannerKey
    rects: tuple[Rect, ...] = ()
    polygons: tuple[tuple[Point, ...], ...] = ()
    note: str = ""
    created: str = field(default="")

    def __post_init__(self) -> None:
        if not self.rects and not self.polygons:
            raise ValueError("a template needs at least one keep-rectangle or polygon")
        for x0, y0, x1, y1 in self.rects:
            if x0 < 0 or y0 < 0 or x1 < x0 or y1 < y0:
                raise ValueError(f"keep-rectangle needs 0 <= X0 <= X1 and 0 <= Y0 <= Y1, got {(x0, y0, x1, y1)}")
        for poly in self.polygons:
            if len(poly) < 3:
                raise ValueError("a keep-polygon needs at least 3 points")

    def to_json(self) -> dict[str, Any]:
        return {
            "manufacturer": self.key.manufacturer,
            "model": self.key.model,
            "rows": int(self.key.rows),
            "columns": int(self.key.columns),
            "rects": [list(r) for r in self.rects],
            "polygons": [[list(p) for p in poly] for poly in self.polygons],
            "note": self.note,
            "created": self.created,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Template:
        key = ScannerKey(str(d.get("manufacturer", "")), str(d.get("model", "")), int(d["rows"]), int(d["columns"]))
        rects = tuple(tuple(int(v) for v in r) for r in d.get("rects", []) or [])
        polys = tuple(tuple((int(p[0]), int(p[1])) for p in poly) for poly in d.get("polygons", []) or [])
        for r in rects:
            if len(r) != 4:
                raise ValueError("a keep-rectangle has four numbers")
        return cls(key, rects, polys, str(d.get("note", "")), str(d.get("created", "")))  # type: ignore[arg-type]


class TemplateStore:
    """The templates in the user settings.  ``generation`` changes on every save (caches key on it)."""

    generation = 0

    def all(self) -> list[Template]:
        out: list[Template] = []
        for d in settings.get_section(SECTION) or []:
            try:
                out.append(Template.from_json(d))
            except (KeyError, TypeError, ValueError):
                continue  # a damaged entry is ignored rather than used half-read
        return out

    def find(self, key: ScannerKey) -> Template | None:
        for t in self.all():
            if t.key.matches(key):
                return t
        return None

    def for_dataset(self, ds: Any) -> Template | None:
        return self.find(ScannerKey.of(ds))

    def save(self, template: Template) -> None:
        """Add *template*, replacing the one for the same scanner layout."""
        if not template.created:
            template = Template(template.key, template.rects, template.polygons, template.note,
                                time.strftime("%Y-%m-%dT%H:%M:%S"))
        kept = [t for t in self.all() if not t.key.matches(template.key)]
        self._write([*kept, template])

    def remove(self, key: ScannerKey) -> bool:
        before = self.all()
        kept = [t for t in before if not t.key.matches(key)]
        if len(kept) == len(before):
            return False
        self._write(kept)
        return True

    def _write(self, templates: Iterable[Template]) -> None:
        settings.set_section(SECTION, [t.to_json() for t in templates])
        TemplateStore.generation += 1


def store() -> TemplateStore:
    return TemplateStore()
