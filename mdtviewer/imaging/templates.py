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

A template also records the scanner's Software Versions (0018,1020) of the
image it was drawn on (hazard HAZ-022 C3): a software update can move the
patient's name into the kept area while Manufacturer, Model and matrix stay the
same.  A template is never applied to an image of another software version:
the image is hidden with the reason ("template was set for software version X")
until the department confirms the template for that version (the template
dialog, drawn again or saved unchanged on an image of the new version:
:meth:`TemplateStore.confirm_version`).  A template that records no version
(drawn on an image that names none, or saved before versions were recorded)
applies whatever the image's version: there is nothing to compare.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mdtviewer.infra import settings
from mdtviewer.infra.errors import DicomInputError

SECTION = "masking_templates"

#: (x0, y0, x1, y1), inclusive
Rect = tuple[int, int, int, int]
Point = tuple[int, int]


def _norm(text: object) -> str:
    return " ".join(str(text or "").split()).casefold()


def software_version_of(ds: Any) -> str:
    """The image's Software Versions (0018,1020), several values joined by ``\\``, spacing collapsed
    ("" when absent or unreadable)."""
    try:
        v = ds.get("SoftwareVersions", "")
    except Exception:  # noqa: BLE001 - a damaged header value reads as empty
        return ""
    items = list(v) if isinstance(v, (list, tuple)) or type(v).__name__ == "MultiValue" else [v]
    return "\\".join(" ".join(str(i or "").split()) for i in items if str(i or "").strip())


class TemplateVersionMismatch(DicomInputError):
    """A template exists for the scanner layout but was set for another software version: not applied."""

    category = "template-version"


@dataclass(frozen=True)
class ScannerKey:
    """Which screens a template applies to (text compared case- and spacing-insensitively)."""

    manufacturer: str
    model: str
    rows: int
    columns: int
    #: Software Versions of the image the key was read from (recorded with a template; not part of the match)
    software_version: str = field(default="", compare=False)

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

        return cls(text("Manufacturer"), text("ManufacturerModelName"), num("Rows"), num("Columns"),
                   software_version_of(ds))

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
    #: the scanner software versions the department confirmed this keep area for (default: the key's);
    #: None when none is known (drawn on an image naming none, or saved before versions were recorded)
    software_versions: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not self.software_versions:
            object.__setattr__(self, "software_versions", None)
        if self.software_versions is None and self.key.software_version:
            object.__setattr__(self, "software_versions", (self.key.software_version,))
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
            "software_versions": None if self.software_versions is None else list(self.software_versions),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Template:
        key = ScannerKey(str(d.get("manufacturer", "")), str(d.get("model", "")), int(d["rows"]), int(d["columns"]))
        rects = tuple(tuple(int(v) for v in r) for r in d.get("rects", []) or [])
        polys = tuple(tuple((int(p[0]), int(p[1])) for p in poly) for poly in d.get("polygons", []) or [])
        for r in rects:
            if len(r) != 4:
                raise ValueError("a keep-rectangle has four numbers")
        raw = d.get("software_versions")  # absent: saved before versions were recorded
        versions = tuple(str(v) for v in raw if str(v).strip()) if isinstance(raw, list) else None
        return cls(key, rects, polys, str(d.get("note", "")), str(d.get("created", "")),  # type: ignore[arg-type]
                   versions)

    def fits_version(self, version: str) -> bool:
        """True when the department confirmed this template for images of software *version*."""
        if not self.software_versions:
            return True  # no version known: nothing to compare
        return _norm(version) in {_norm(v) for v in self.software_versions}

    def version_text(self) -> str:
        """The versions it was set for, for messages ("R1.0.D", "R1.0.D or R2", "none named")."""
        if not self.software_versions:
            return "none named"
        return " or ".join(self.software_versions)


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
        """The template for the image's scanner layout, None without one.

        Raises :class:`TemplateVersionMismatch` when the template was set for another software version
        of that scanner: it is not applied (the caller hides the image with the reason)."""
        key = ScannerKey.of(ds)
        template = self.find(key)
        if template is not None and not template.fits_version(key.software_version):
            this = key.software_version or "none named"
            raise TemplateVersionMismatch(
                f"the masking template of {key.describe()} was set for software version {template.version_text()}"
                f"; this image is from software version {this}: confirm the template for this version"
                " (Tools › Masking template for this scanner…)")
        return template

    def save(self, template: Template) -> None:
        """Add *template*, replacing the one for the same scanner layout.

        Saving the same keep area again from an image of another software version confirms it for that
        version too (the versions are merged); a different keep area replaces the template and its versions.
        """
        old = self.find(template.key)
        versions = template.software_versions
        if (old is not None and versions is not None and old.software_versions is not None
                and old.rects == template.rects and old.polygons == template.polygons):
            versions = tuple(dict.fromkeys((*old.software_versions, *versions)))
        template = Template(template.key, template.rects, template.polygons, template.note,
                            template.created or time.strftime("%Y-%m-%dT%H:%M:%S"), versions)
        kept = [t for t in self.all() if not t.key.matches(template.key)]
        self._write([*kept, template])

    def confirm_version(self, key: ScannerKey, version: str) -> Template:
        """The department confirms the template of *key*'s layout for software *version* as it is."""
        old = self.find(key)
        if old is None:
            raise KeyError(key.describe())
        versions = (*(old.software_versions or ()), version)
        self._write([*(t for t in self.all() if not t.key.matches(key)),
                     Template(old.key, old.rects, old.polygons, old.note, old.created, tuple(dict.fromkeys(versions)))])
        found = self.find(key)
        assert found is not None
        return found

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
