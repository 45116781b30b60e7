"""Readable text for any SR/KOS: header, status, observers and the whole tree.

Every content item is one line, indented by nesting and numbered by its
position (so by-reference items, "-> 1.2.3", can be followed); codes show
their meaning with (value, scheme), numbers their unit, image references the
SOP class, instance UID and frame numbers.  Patient identifiers are left out
unless asked for.
"""

from __future__ import annotations

import pydicom.uid

from mdtviewer.dicom.values import format_datetime, format_time
from mdtviewer.sr.reader import Code, ContentNode, ImageRef, SRDocument


def _dt(value: str) -> str:
    """DICOM DA/DT as 'YYYY-MM-DD HH:MM:SS [+hh:mm]' (unchanged if odd)."""
    return format_datetime(value)


def _time(value: str) -> str:
    return format_time(value)


def code_text(c: Code | None) -> str:
    if c is None:
        return "(no code)"
    return f"{c.meaning or '(no meaning)'} ({c.value}, {c.scheme})"


def _unit(u: Code | None) -> str:
    if u is None:
        return ""
    if u.scheme.startswith("UCUM") and u.value not in ("1", ""):
        return u.value
    if u.value and u.meaning and u.value != u.meaning and u.value != "1":
        return f"{u.value} ({u.meaning})"
    return u.meaning or u.value


def _num(v: float) -> str:
    return f"{v:.10g}"


def _class_name(uid: str) -> str:
    try:
        name = pydicom.uid.UID(uid).name
    except (ValueError, TypeError, KeyError):
        return uid or "(no SOP class)"
    return name if name and name != uid else (uid or "(no SOP class)")


def image_text(ref: ImageRef | None) -> str:
    if ref is None:
        return "(no reference)"
    s = f"{_class_name(ref.sop_class_uid)} {ref.sop_instance_uid or '(no UID)'}"
    if ref.frames:
        s += (" frame " if len(ref.frames) == 1 else " frames ") + ", ".join(str(f) for f in ref.frames)
    if ref.presentation_state_uid:
        s += f" with presentation state {ref.presentation_state_uid}"
    return s


def node_value(node: ContentNode) -> str:
    vt = node.value_type
    if node.reference is not None:
        return f"-> item {node.reference}"
    if vt == "CODE":
        return code_text(node.code)
    if vt == "NUM":
        if node.numeric is None:
            qual = node.detail if node.detail and node.detail != "no value" else ""
            return f"(no value{': ' + qual if qual else ''})"
        u = _unit(node.unit)
        return f"{_num(node.numeric)}{' ' + u if u else ''}"
    if vt in ("IMAGE",):
        return image_text(node.image)
    if vt in ("COMPOSITE", "WAVEFORM"):
        s = image_text(node.composite)
        return s + (f" ({node.detail})" if node.detail else "")
    if vt in ("SCOORD", "SCOORD3D", "TCOORD"):
        return node.detail or ""
    if vt == "DATE" or vt == "DATETIME":
        return _dt(node.text or "")
    if vt == "TIME":
        return _time(node.text or "")
    if vt == "CONTAINER":
        return ""
    return _escape(node.text) if node.text is not None else ""


def _escape(text: str) -> str:
    """One line per item: control characters shown as \\n, \\r, \\t, \\xNN."""
    out = []
    for ch in text:
        if ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


def _line(node: ContentNode) -> str:
    rel = node.relationship.lower() if node.relationship else ""
    parts = [node.position]
    if rel:
        parts.append(rel)
    parts.append(node.value_type or "BY-REFERENCE")
    head = " ".join(parts)
    name = node.concept.meaning if node.concept and node.concept.meaning else ""
    if node.concept is not None:
        name = f"{name} ({node.concept.value}, {node.concept.scheme})" if node.concept.value else name
    value = node_value(node)
    if node.value_type == "CONTAINER":
        cont = f" [{node.detail.strip()}]" if node.detail else ""
        return f"{head} {name or '(untitled)'}{cont}"
    if name and value:
        return f"{head} {name}: {value}"
    return f"{head} {name or value}".rstrip()


def render_text(doc: SRDocument, show_identifiers: bool = False) -> str:
    lines: list[str] = []
    title = code_text(doc.title) if doc.title else "(untitled)"
    kind = "Key Object Selection" if doc.kind == "kos" else "Structured Report"
    lines.append(f"{kind}: {title}")
    lines.append(f"Document type: {doc.sop_class_name or doc.sop_class_uid}")
    if doc.is_review:
        lines.append(f"Review: {doc.review_kind.replace('-', ' ')} (written by mdtviewer)")
    if doc.kind == "kos":
        lines.append(f"Status: {doc.status}")
    else:
        flags = ", ".join(f for f in (doc.completion_flag, doc.verification_flag, doc.preliminary_flag) if f)
        lines.append(f"Status: {doc.status} ({flags or 'no flags'})")
    if doc.content_datetime:
        lines.append(f"Content date/time: {_dt(doc.content_datetime)}")
    if show_identifiers:
        lines.append(f"Patient: {doc.patient_name or '(none)'} (ID {doc.patient_id or 'none'})")
    if doc.manufacturer:
        lines.append(f"Manufacturer: {doc.manufacturer}")
    if doc.series_description:
        lines.append(f"Series: {doc.series_description}")
    if doc.author_observers:
        lines.append("Observers: " + "; ".join(doc.author_observers))
    for v in doc.verifiers:
        lines.append(f"Verified by: {v.name}, {v.organization}" + (f", {_dt(v.datetime)}" if v.datetime else ""))
    for p in doc.predecessors:
        lines.append(f"Replaces (predecessor): {p}")
    if doc.specific_character_set:
        lines.append(f"Character set: {doc.specific_character_set}")
    refs = doc.image_refs()
    lines.append(f"Image references: {len(refs)}; evidence instances: {len(doc.evidence)}")
    lines.append("")
    for node in doc.root.walk():
        depth = node.position.count(".")
        lines.append("  " * depth + _line(node))
    if not doc.root.children:
        lines.append("  (the report has no content items)")
    return "\n".join(lines) + "\n"


def measurement_lines(measurements) -> list[str]:
    """Measurements (``sr.measurement_read``) as ``NAME: VALUE UNIT`` lines with vessel, image and frame.

    A traced PI's companion values (PSV, EDV, TAMAX, RI) follow it, indented.
    """
    from mdtviewer.sr.measurement_report import CONCEPTS

    out: list[str] = []
    for m in measurements:
        where = " ".join(p for p in (m.side, m.site, m.segment) if p)
        imgs = m.images or ((m.sop_instance_uid, m.frame),)
        shown = "; ".join(f"image {u}" + (f" frame {f}" if f else "") for u, f in imgs if u) or "no image"
        unit = f" {m.unit}" if m.unit else ""  # UCUM, "1" for ratios and indices (NAME: VALUE UNIT)
        out.append(f"{_escape(m.name)}: {m.value:.5g}{unit}" + (f" [{_escape(where)}]" if where else "")
                   + f" ({shown})")
        for k, v in m.extra.items():
            if k in CONCEPTS:
                u = " 1" if k == "ri" else " cm/s"
                out.append(f"    {CONCEPTS[k].meaning}: {v:.5g}{u} (from the traced envelope)")
    return out


def annotation_lines(annotations) -> list[str]:
    """Arrows and text labels (``sr.measurement_read``) as ``Arrow: "words" (image UID frame N)`` lines."""
    out: list[str] = []
    for a in annotations:
        where = f"image {a.sop_instance_uid}" + (f" frame {a.frame}" if a.frame else "")
        pts = " -> ".join(f"({x:.0f}, {y:.0f})" for x, y in a.points)
        words = f' "{_escape(a.text)}"' if a.text else ""
        out.append(f"{'Arrow' if a.kind == 'arrow' else 'Text'}:{words} at {pts} ({where})")
    return out
