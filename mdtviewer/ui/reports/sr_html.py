"""Render an :class:`mdtviewer.sr.reader.SRDocument` as HTML for the report panel.

Kept apart from the widget so the HTML can be checked without Qt.  Every
string from the file goes through :func:`html.escape` (an SR is foreign input:
a TEXT item holding ``<script>`` or a half tag must show as text, not markup).
Image references become ``sopref:`` links that the panel turns into
``imageReferenceActivated(sop_instance_uid, frame)``.

Privacy: patient identifiers (header name/ID/birth date/accession and the
subject items of TID 1006-1007) are replaced by a bullet mark; observer names
(staff) stay, they are not patient identifiers.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, unquote

from mdtviewer.dicom import kos, uids
from mdtviewer.sr.reader import Code, ContentNode, ImageRef, SRDocument
from mdtviewer.workflows.report_files import (  # noqa: F401 - also the panel's names for them
    PatientIdentifiers,
    format_datetime,
    identifiers_from_dataset,
)

#: Link scheme for image references: sopref:<uid>?frame=<n>
LINK_SCHEME = "sopref"
HIDDEN = "\u2022\u2022\u2022"  # what stands in for a hidden identifier

#: concept codes (DCM) whose value identifies the patient (TID 1007 subject context)
_PATIENT_CONCEPTS = {"121029", "121030", "121031", "121032", "121033"}  # name, ID, birth date, sex?, age


class SafeText:
    """Escapes text and, under privacy, hides patient identifiers in it."""

    def __init__(self, needles: Iterable[str], privacy: bool):
        self.privacy = privacy
        self._rx = None
        needles = list(needles)
        if privacy and needles:
            # whole words only: hiding "Test" must not turn "latest" into "la..."; but CJK text has no spaces
            # between words ("患者王小东复查"), so a name part in ideographs, kana or Hangul is hidden wherever it is
            words = [re.escape(n) for n in needles if not any(ord(c) >= 0x2E80 for c in n)]
            cjk = [re.escape(n) for n in needles if any(ord(c) >= 0x2E80 for c in n)]
            alts = ([r"(?<!\w)(?:" + "|".join(words) + r")(?!\w)"] if words else []) + (["|".join(cjk)] if cjk else [])
            self._rx = re.compile("|".join(f"(?:{a})" for a in alts), re.IGNORECASE)

    def __call__(self, value: Any) -> str:
        text = "" if value is None else str(value)
        if self._rx is not None:
            text = self._rx.sub(HIDDEN, text)
        return html.escape(text).replace("\n", "<br>")


def image_link(sop_instance_uid: str, frame: int = 0) -> str:
    return f"{LINK_SCHEME}:{quote(sop_instance_uid, safe='.')}?frame={int(frame)}"


def parse_image_link(url: str) -> tuple[str, int] | None:
    """``sopref:UID?frame=N`` -> (UID, N); None for any other link."""
    if not url.startswith(LINK_SCHEME + ":"):
        return None
    rest = url[len(LINK_SCHEME) + 1 :]
    uid, _, query = rest.partition("?")
    frame = 0
    m = re.search(r"(?:^|&)frame=(\d+)", query)
    if m:
        frame = int(m.group(1))
    uid = unquote(uid)
    if not uid:
        return None
    return uid, frame


def _class_label(sop_class_uid: str) -> str:
    """'Ultrasound Multi-frame Image Storage' -> 'Ultrasound Multi-frame Image'; 'image' if unknown."""
    if not sop_class_uid:
        return "image"
    try:
        from pydicom.uid import UID

        name = UID(sop_class_uid).name
    except Exception:  # noqa: BLE001
        name = ""
    if not name or name == sop_class_uid:
        return "image"
    return name.replace(" Storage", "").replace(" - For Presentation", "")


def _code_str(code: Code | None) -> str:
    if code is None:
        return ""
    return code.meaning or code.value or ""


def _code_full(code: Code | None, t: SafeText) -> str:
    if code is None:
        return ""
    meaning, value, scheme = code.meaning or "", code.value or "", code.scheme or ""
    tag = f' <span style="color:#777">({t(value)}, {t(scheme)})</span>' if value else ""
    return f"{t(meaning or value)}{tag}"


def _unit_str(unit: Code | None) -> str:
    if unit is None:
        return ""
    value, scheme, meaning = unit.value or "", unit.scheme or "", unit.meaning or ""
    if scheme.upper() == "UCUM":
        if value in ("1", ""):
            return "" if meaning.strip().lower() in ("", "1", "no units", "no unit", "unity") else meaning
        if value.startswith("{") and meaning:
            return meaning
        return value
    return meaning or value


def _format_number(v: Any) -> str:
    if v is None or v == "":
        return ""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if f.is_integer() and abs(f) < 1e15:
        return str(int(f))
    return f"{f:.6g}"


def _is_patient_item(node: ContentNode) -> bool:
    c = node.concept
    return c is not None and c.value in _PATIENT_CONCEPTS and c.scheme.upper() == "DCM"


_REL_LABELS = {
    "HAS OBS CONTEXT": "context",
    "HAS ACQ CONTEXT": "acquisition context",
    "HAS CONCEPT MOD": "modifier",
    "HAS PROPERTIES": "property",
    "INFERRED FROM": "inferred from",
    "SELECTED FROM": "selected from",
}


class _Renderer:
    def __init__(self, t: SafeText):
        self.t = t
        self.out: list[str] = []

    def image_refs(self, image: ImageRef) -> str:
        t = self.t
        uid = image.sop_instance_uid or ""
        frames = [int(f) for f in image.frames if str(f).strip()]
        if not uid:
            return "<i>image reference without a SOP Instance UID</i>"
        short = uid if len(uid) <= 28 else "\u2026" + uid[-24:]
        what = _class_label(image.sop_class_uid or "")
        if what:
            short = f"{what} {short}"
        if not frames:
            return f'<a href="{html.escape(image_link(uid, 0))}">{t(short)}</a>'
        links = ", ".join(f'<a href="{html.escape(image_link(uid, f))}">frame {f}</a>' for f in frames)
        return f"{t(short)}: {links}"

    def value_html(self, node: ContentNode) -> str:
        t = self.t
        vt = (node.value_type or "").upper()
        if vt == "TEXT":
            text = node.text or ""
            if "\n" in text:  # keep the layout of multi-line text (indentation, lists)
                return '<span style="white-space:pre-wrap">' + t(text).replace("<br>", "\n") + "</span>"
            return t(text)
        if vt == "CODE":
            return _code_full(node.code, t)
        if vt == "NUM":
            num = node.numeric
            unit = _unit_str(node.unit)
            if num is None:
                return "" if node.detail else t(node.text or "(no value)")
            return f"<b>{t(_format_number(num))}</b>" + (f" {t(unit)}" if unit else "")
        if vt == "IMAGE" and node.image is not None:
            return self.image_refs(node.image)
        if vt == "PNAME":
            name = node.text or ""
            if t.privacy and _is_patient_item(node):
                return HIDDEN
            return t(name.replace("^", " ").strip())
        if vt in ("DATE", "DATETIME", "TIME"):
            raw = node.text or ""
            if t.privacy and _is_patient_item(node):
                return HIDDEN
            return t(format_datetime(raw) if vt != "TIME" else raw)
        if vt == "COMPOSITE" or vt == "WAVEFORM":
            comp = node.composite or node.image
            uid = comp.sop_instance_uid if comp is not None else ""
            txt = node.text or ""
            what = "waveform" if vt == "WAVEFORM" else "object"
            return t(txt or (f"{what} {uid}" if uid else vt.lower()))
        if not vt and node.reference:
            return f"<i>(refers to item {t(node.reference)})</i>"
        txt = node.text
        if t.privacy and _is_patient_item(node):
            return HIDDEN
        return t(txt) if txt not in (None, "") else ""

    def node(self, node: ContentNode, depth: int) -> None:
        t = self.t
        vt = (node.value_type or "").upper()
        concept = _code_str(node.concept)
        children = list(node.children)
        rel = (node.relationship or "").upper()
        if vt == "CONTAINER":
            level = min(2 + depth, 6)
            if depth > 0:
                self.out.append(f"<h{level}>{t(concept or 'Section')}</h{level}>")
            if not children:
                self.out.append('<p style="color:#777"><i>(empty)</i></p>')
            else:
                self.out.append("<div>" if depth == 0 else '<div style="margin-left:12px">')
                for c in children:
                    self.node(c, depth + 1)
                self.out.append("</div>")
            return
        value = self.value_html(node)
        detail = node.detail
        if detail and vt in ("SCOORD", "SCOORD3D", "TCOORD", "WAVEFORM", "NUM"):
            value = (value + " " if value else "") + f'<span style="color:#777">{t(detail)}</span>'
        label = f"<b>{t(concept)}:</b> " if concept else ""
        rel_label = _REL_LABELS.get(rel)
        tag = f'<span style="color:#777">[{rel_label}]</span> ' if rel_label else ""
        if rel in ("HAS OBS CONTEXT", "HAS CONCEPT MOD") and not children:
            # context (observer, language, procedure) matters less than findings: compact and grey
            self.out.append(f'<p style="margin-top:0;margin-bottom:0;color:#555">{tag}{label}{value}</p>')
        else:
            self.out.append(f"<p>{tag}{label}{value}</p>")
        if children:
            self.out.append('<div style="margin-left:16px">')
            for c in children:
                self.node(c, depth + 1)
            self.out.append("</div>")


def _status(doc: SRDocument) -> str:
    comp, ver = doc.completion_flag or "", doc.verification_flag or ""
    return " / ".join(x for x in (comp, ver) if x)


def render_html(
    doc: SRDocument, *, identifiers: PatientIdentifiers | None = None, privacy: bool = False, heading: str = ""
) -> str:
    """The whole document as one HTML page (header block, then the content tree)."""
    ids = identifiers or PatientIdentifiers()
    t = SafeText(ids.needles(), privacy)
    title = _code_str(doc.title) or heading or "Structured report"
    if privacy and doc.sop_class_uid == uids.KOS:
        # a KOS is named by PS3.16's meaning of its title code, never its free text (which may carry a name
        # the scrub does not know: the lists do the same, HAZ-016 C5)
        code = kos.title_code(doc.title.value, doc.title.scheme) if doc.title else ""
        title = kos.kos_label(code, "", standard_only=True)
    out = ["<html><body>", f"<h1>{t(title)}</h1>", '<table cellspacing="0" cellpadding="2">']

    def row(k: str, v: str) -> None:
        if v:
            out.append(f'<tr><td style="color:#555;padding-right:8px">{html.escape(k)}</td><td>{v}</td></tr>')

    if privacy:
        row("Patient", "<i>hidden (privacy on)</i>")
    else:
        pat = t(ids.name.replace("^", " ").strip()) if ids.name else ""
        extra = ", ".join(
            x
            for x in (
                f"ID {t(ids.patient_id)}" if ids.patient_id else "",
                f"born {t(format_datetime(ids.birth_date))}" if ids.birth_date else "",
            )
            if x
        )
        row("Patient", pat + (f" ({extra})" if extra else ""))
    kind = doc.review_kind or ""
    if doc.is_review and kind:
        row("Review", t(kind.replace("-", " ").capitalize()))
    row("Document", t(doc.sop_class_name or ""))
    maker = doc.manufacturer or ""
    if maker and not doc.is_review:
        row("Written by", t(maker))
    row("Status", t(_status(doc)))
    row("Date", t(format_datetime(doc.content_datetime)))
    authors = [a for a in (str(a).replace("^", " ").strip() for a in doc.author_observers) if a]
    if doc.is_review and doc.review_kind == "preceptorship" and len(authors) == 2:
        row("Author", t(authors[0]))  # the trainer; our writer puts the trainee (performing) second
        row("Trainee", t(authors[1]))
    else:
        row("Author", t("; ".join(authors)))
    for v in doc.verifiers:
        name = (v.name or "").replace("^", " ").strip()
        org = v.organization or ""
        when = format_datetime(v.datetime)
        row("Verified by", t(", ".join(x for x in (name, org, when) if x)))
    if doc.predecessors:
        row("Amends" if doc.is_review else "Predecessor", t(", ".join(doc.predecessors)))
    if (doc.preliminary_flag or "").upper() == "PRELIMINARY":
        row("Note", "<b>preliminary</b>")
    out.append("</table>")
    for note in doc.notes:  # a damaged header or content tree: said before the content, in the warning colour
        out.append(f"<p style='color:#a00'><b>\u26a0 {t(note)}</b></p>")
    out.append("<hr>")
    root = doc.root
    r = _Renderer(t)
    if root is None:
        out.append("<p><i>(no content)</i></p>")
    else:
        r.node(root, 0)
    out.extend(r.out)
    out.append("</body></html>")
    return "\n".join(out)


def render_error_html(title: str, reason: str) -> str:
    return f"<html><body><h1>{html.escape(title)}</h1><p style='color:#a00'>{html.escape(reason)}</p></body></html>"
