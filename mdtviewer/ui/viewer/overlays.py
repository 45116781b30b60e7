"""What the viewport writes over each image, and how privacy hides identifiers.

The vascular society's guidance asks that every displayed image shows patient
name and ID, date of birth, study date and time, institution/department, series
and frame number, frame rate and scale.  The privacy switch (screen sharing at
an MDT meeting) replaces every patient identifier with a placeholder; the rest
stays, so the image can still be discussed.

The text is built here (no painting), so tests can read exactly what is on screen.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mdtviewer.dicom import values
from mdtviewer.imaging.masking import scrub_free_text

#: shown instead of an identifier while privacy is on
HIDDEN = "[hidden]"


class WarningLine(str):
    """An overlay line drawn in the warning colour: the flag travels with the line (:func:`is_warning`)."""

    __slots__ = ()


#: the presenter's burned-in masking (Ctrl+M), said in the one masking line of the overlay
MDT_MASK = "MDT mask on (Ctrl+M)"
#: the masking line while the presenter masks and how to mask is not known yet
MDT_MASK_ONLY = f"Burned-in text masked; {MDT_MASK}"

#: the side, as the overlay shows it (top right, bold): never abbreviated on a shared screen
SIDE_WORDS = {"R": "RIGHT", "L": "LEFT", "B": "BOTH SIDES"}
#: laterality modifier codes of an anatomic region (SNOMED CT and the older SRT codes) and their meanings
_SIDE_CODES = {"24028007": "R", "G-A100": "R", "7771000": "L", "G-A101": "L", "51440002": "B", "G-A102": "B"}
_SIDE_MEANINGS = {"right": "R", "left": "L", "bilateral": "B", "right and left": "B", "both": "B"}
#: shown when the header names no side but burned-in text (where scanners write "LT CCA") is masked
SIDE_MAYBE_MASKED = "Side: not in header (label may be masked)"


def _s(ds: Any, name: str) -> str:
    return values.one_line(ds, name)  # a broken element reads as empty; never breaks the overlay


def format_person_name(pn: str) -> str:
    """DICOM PN ``FAMILY^GIVEN^MIDDLE^PREFIX^SUFFIX`` as ``FAMILY, Given Middle``."""
    return values.format_person_name(pn)


def format_date(da: str) -> str:
    """``YYYYMMDD`` as ``YYYY-MM-DD`` (unambiguous in every locale); other text as is."""
    return values.format_date(da)


def format_time(tm: str) -> str:
    return values.format_time(tm)


@dataclass
class OverlayInfo:
    """Header fields an overlay needs, read once per instance (off the UI thread)."""

    patient_name: str = ""
    patient_id: str = ""
    birth_date: str = ""
    sex: str = ""
    accession: str = ""
    study_date: str = ""
    study_time: str = ""
    study_description: str = ""
    institution: str = ""
    department: str = ""
    manufacturer: str = ""
    model: str = ""
    modality: str = ""
    series_number: str = ""
    series_description: str = ""
    instance_number: str = ""
    burned_in: str = ""
    #: "R", "L" or "B" from the header ("" when it names none), the attribute it came from, and a second
    #: attribute that names another side ("L (Laterality)"; "" when they agree)
    side: str = ""
    side_source: str = ""
    side_conflict: str = ""
    #: the header was read (False while the image loads, or when its header cannot be read): until then the
    #: overlay says nothing about whose image it is, never "(no ID)"
    header_read: bool = False

    @classmethod
    def from_dataset(cls, ds: Any) -> OverlayInfo:
        return cls(
            header_read=True,
            patient_name=_s(ds, "PatientName"),
            patient_id=_s(ds, "PatientID"),
            birth_date=_s(ds, "PatientBirthDate"),
            sex=_s(ds, "PatientSex"),
            accession=_s(ds, "AccessionNumber"),
            study_date=_s(ds, "StudyDate") or _s(ds, "ContentDate") or _s(ds, "AcquisitionDate"),
            study_time=_s(ds, "StudyTime") or _s(ds, "ContentTime"),
            study_description=_s(ds, "StudyDescription"),
            institution=_s(ds, "InstitutionName"),
            department=_s(ds, "InstitutionalDepartmentName"),
            manufacturer=_s(ds, "Manufacturer"),
            model=_s(ds, "ManufacturerModelName"),
            modality=_s(ds, "Modality"),
            series_number=_s(ds, "SeriesNumber"),
            series_description=_s(ds, "SeriesDescription"),
            instance_number=_s(ds, "InstanceNumber"),
            burned_in=_s(ds, "BurnedInAnnotation"),
            **_side_fields(ds),
        )

    def identifiers(self) -> list[str]:
        """Every value privacy must hide (for tests and for scrubbing free text)."""
        vals = [self.patient_name, format_person_name(self.patient_name), self.patient_id, self.accession]
        vals += [self.birth_date, format_date(self.birth_date)]
        return [v for v in vals if v and v.strip()]


def _side_value(v: Any) -> str:
    t = " ".join(str(v or "").split()).upper()
    return {"R": "R", "L": "L", "B": "B", "RIGHT": "R", "LEFT": "L", "BILATERAL": "B"}.get(t, "")


def _modifier_side(items: Any) -> str:
    """The side a laterality modifier code of an anatomic region / structure item says ("" for none)."""
    for item in items or []:
        mods = _seq(item, "AnatomicRegionModifierSequence") + _seq(item, "PrimaryAnatomicStructureModifierSequence")
        for mod in mods:
            code = " ".join(str(mod.get("CodeValue", "") or "").split())
            meaning = " ".join(str(mod.get("CodeMeaning", "") or "").split()).lower()
            side = _SIDE_CODES.get(code) or _SIDE_MEANINGS.get(meaning)
            if side:
                return side
    return ""


def _seq(ds: Any, kw: str) -> list:
    try:
        return list(ds.get(kw) or [])
    except Exception:  # noqa: BLE001 - a damaged sequence names no side
        return []


def _frame_side(ds: Any) -> str:
    """Frame Laterality (0020,9072): the shared functional groups' value, else the one every frame agrees on."""
    for fg in _seq(ds, "SharedFunctionalGroupsSequence"):
        for fa in _seq(fg, "FrameAnatomySequence"):
            side = _side_value(fa.get("FrameLaterality", ""))
            if side:
                return side
    sides = {_side_value(fa.get("FrameLaterality", "")) for fg in _seq(ds, "PerFrameFunctionalGroupsSequence")
             for fa in _seq(fg, "FrameAnatomySequence")}
    return sides.pop() if len(sides) == 1 else ""


def laterality_candidates(ds: Any) -> list[tuple[str, str]]:
    """Every side the header states, ``(side, where)``, most specific first: Image Laterality (0020,0062),
    Frame Laterality (0020,9072), Laterality (0020,0060, the series), then the laterality modifier of the
    Anatomic Region Sequence (ultrasound) or Primary Anatomic Structure Sequence.  "U" (unpaired) is no side."""
    out = []
    for side, where in (
        (_side_value(_s(ds, "ImageLaterality")), "Image Laterality"),
        (_frame_side(ds), "Frame Laterality"),
        (_side_value(_s(ds, "Laterality")), "Laterality"),
        (_modifier_side(_seq(ds, "AnatomicRegionSequence")), "Anatomic Region"),
        (_modifier_side(_seq(ds, "PrimaryAnatomicStructureSequence")), "Anatomic Structure"),
    ):
        if side:
            out.append((side, where))
    return out


def _side_fields(ds: Any) -> dict[str, str]:
    found = laterality_candidates(ds)
    if not found:
        return {}
    side, where = found[0]
    other = next((f"{s} ({w})" for s, w in found[1:] if s != side), "")
    return {"side": side, "side_source": where, "side_conflict": other}


def side_line(info: OverlayInfo, masked: bool = False) -> str:
    """The overlay's side line: "RIGHT" / "LEFT" / "BOTH SIDES" from the header; "SIDE?" with both values
    when two attributes disagree; when the header names none, nothing (never a guess) -- unless burned-in
    text is masked, where the scanner's own side label may be gone: then it says so."""
    if info.side and info.side_conflict:
        return WarningLine(f"SIDE? {info.side} ({info.side_source}) / {info.side_conflict}")
    if info.side:
        return SIDE_WORDS.get(info.side, info.side)
    return SIDE_MAYBE_MASKED if masked else ""


def is_side_line(text: str) -> bool:
    """A line the viewport draws in bold, in the side colour (the examined side must not be missed)."""
    return text in SIDE_WORDS.values() or text.startswith("SIDE?")


def scrub(info: OverlayInfo, text: str) -> str:
    """Free text (a description, a device name) with the patient's own name parts, ID and birth date hidden
    (:func:`mdtviewer.imaging.masking.scrub_free_text`): privacy hides them in descriptions too (HAZ-016)."""
    return scrub_free_text(text, info.patient_name, info.patient_id, info.birth_date, HIDDEN)


def mask_line(plan_message: str, mdt_mask: bool, warn: bool = False) -> str:
    """The one overlay line that says how burned-in text is masked: the privacy plan's message (privacy mode
    and the presenter's Ctrl+M use the same plan), with the presenter's mask named once.  *warn*: the plan
    hid the image or could not check it (a :class:`WarningLine` line)."""
    if not mdt_mask:
        line = plan_message
    elif not plan_message:
        line = MDT_MASK_ONLY
    else:
        line = f"{plan_message}; {MDT_MASK}"
    return WarningLine(line) if warn and line else line


@dataclass
class FrameStatus:
    """Per-frame facts for the overlay."""

    frame: int = 0  # 0-based
    n_frames: int = 1
    fps: float | None = None
    timing_source: str = ""
    playing: bool = False
    speed: float = 1.0
    scale_text: str = ""
    window: tuple[float, float] | None = None
    zoom: float = 1.0
    stack_pos: int = 0
    stack_len: int = 1


def corner_texts(info: OverlayInfo, st: FrameStatus, privacy: bool, masked: bool = False) -> dict[str, list[str]]:
    """Lines for the four corners: ``tl`` patient, ``tr`` side/study/site, ``bl`` series/frame, ``br`` display.

    *masked*: burned-in text is blanked on screen (privacy or the presenter's mask), so a side the scanner
    wrote into the pixels may be gone.  Under *privacy* free text is scrubbed of the patient's identifiers."""
    free = (lambda t: scrub(info, t)) if privacy else (lambda t: t)
    if privacy:
        name, pid, dob = HIDDEN, HIDDEN, HIDDEN
    else:
        name = format_person_name(info.patient_name) or "(no name)"
        pid = info.patient_id or "(no ID)"
        dob = format_date(info.birth_date) or "—"
    tl = [name, f"ID: {pid}", f"DOB: {dob}" + (f"  Sex: {info.sex}" if info.sex and not privacy else "")]
    if not info.header_read and not privacy:
        # loading (or unreadable): "(no name) / ID: (no ID)" would tell the room the patient has no ID
        tl = []
    if privacy:
        tl.append("PRIVACY ON (F9)")

    when = " ".join(x for x in (format_date(info.study_date), format_time(info.study_time)) if x)
    tr = [f"Study: {when}" if when else "Study date: —"]
    side = side_line(info, masked)
    if side and side != SIDE_MAYBE_MASKED:
        tr.insert(0, side)  # top right, first: the side is what a wrong-side decision turns on
    if info.study_description:
        tr.append(free(info.study_description))
    site = " / ".join(x for x in (info.institution, info.department) if x)
    if privacy and site:
        site = f"Institution: {HIDDEN}"  # an indirect identifier (SVT guidance, PS3.15 E.1-1)
    tr.append(site or "Institution: —")
    dev = " ".join(x for x in (info.manufacturer, info.model) if x)
    if dev:
        tr.append(free(dev))
    if side == SIDE_MAYBE_MASKED:
        tr.append(side)
    if not info.header_read:  # nor "Study date: —", "Side: not in header": not known yet is not absent
        tr = []

    ser = f"Series {info.series_number or '—'}"
    if info.series_description:
        ser += f": {free(info.series_description)}"
    bl = [ser]
    if st.stack_len > 1:
        bl.append(f"Image {st.stack_pos + 1}/{st.stack_len}")
    bl.append(f"Frame {st.frame + 1}/{max(1, st.n_frames)}")
    if st.n_frames > 1:
        if st.fps:
            # the effective rate on screen; the factor and the native rate when they differ
            rate = f"{st.fps * st.speed:.1f} fps"
            if abs(st.speed - 1.0) > 1e-6:
                rate += f" (x{st.speed:.3g} of native {st.fps:.1f})"
            if st.timing_source == "assumed":
                rate += " (assumed)"
            # media-player convention (issue 15.6): the symbol is the action a click or Space would take,
            # ▶ while paused, ❚❚ while playing
            bl.append(rate + ("  ❚❚" if st.playing else "  ▶"))
        else:
            bl.append("Frame rate: —")

    br = [st.scale_text or "Scale: uncalibrated (px)"]
    if st.window is not None:
        br.append(f"W {st.window[1]:.0f}  L {st.window[0]:.0f}")
    br.append(f"Zoom {st.zoom * 100:.0f}%")
    return {"tl": tl, "tr": tr, "bl": bl, "br": br}


# ---------------------------------------------------------------------------- fitting a corner's lines

#: the long lines, as a narrow viewport (2x2, 3x3) shows them: the same facts in fewer words
_SHORT_FORMS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^Burned-in text masked \(detected: (\d+) area\(s\)\)$"), r"Masked: \1 detected area(s)"),
    (re.compile(r"^Burned-in text masked \((.+)\)$"), r"Masked: \1"),
    (re.compile(r"^(\d+) identifier word\(s\) inside the image masked$", re.I), r"Masked: \1 identifier word(s)"),
    (re.compile(r"^text inside the image not checked \(tesseract not installed\)$", re.I),
     "Text in image not checked (no OCR)"),
)


def is_warning(text: str) -> bool:
    """A line drawn in the warning colour: one made a :class:`WarningLine` where it was built (privacy hid the
    image or did not check it, two attributes disagree on the side), never one that merely contains a word:
    a description scrubbed to "[hidden] carotid" is an ordinary line."""
    # "Side: not in header" is information, not a warning: most ultrasound headers name no side, and an orange
    # line on every image would teach the room to ignore orange
    return isinstance(text, WarningLine)


def short_form(text: str) -> str:
    """*text* in fewer words when a narrow viewport cannot show it whole (else *text* itself)."""
    for pat, rep in _SHORT_FORMS:
        if pat.match(text):
            return pat.sub(rep, text)
    return text


#: characters after which a word too wide for its corner may break ("SMITH^JOHN", "CLINIC/DEPT", "R/O")
_BREAK_AFTER = "^,/-_.;:)"
_PIECES = re.compile(r"[^\^,/\-_.;:)]*[\^,/\-_.;:)]|[^\^,/\-_.;:)]+")


def _pieces(word: str, avail: int, width: Callable[[str], int]) -> list[str]:
    """*word* as pieces that each fit *avail* (on an indented continuation line): split after punctuation
    first, else between characters.  A word that fits is one piece."""
    if width("  " + word) <= avail:
        return [word]
    out: list[str] = []
    for part in _PIECES.findall(word):
        while len(part) > 1 and width("  " + part) > avail:
            k = len(part) - 1
            while k > 1 and width("  " + part[:k]) > avail:
                k -= 1
            out.append(part[:k])
            part = part[k:]
        if part:
            out.append(part)
    return out or [word]


def _wrap(text: str, avail: int, width: Callable[[str], int]) -> list[str]:
    """Greedy word wrap; continuation lines indented.  A single word wider than *avail* breaks after its
    punctuation ("[hidden]^[hidden]"), else between characters: nothing is left for the painter to cut."""
    words: list[str] = []
    for w in text.split(" "):
        if w == "/" and words:  # "CLINIC / DEPT": the break goes after the slash
            words[-1] += " /"
        else:
            words.append(w)
    tokens: list[tuple[str, str]] = []  # (text, glue to the text before it)
    for w in words:
        for k, piece in enumerate(_pieces(w, avail, width)):
            tokens.append((piece, " " if k == 0 else ""))
    out: list[str] = []
    cur = ""
    for piece, glue in tokens:
        cand = f"{cur}{glue}{piece}" if cur else piece
        if cur and width(("  " if out else "") + cand) > avail:
            out.append(("  " if out else "") + cur)
            cur = piece
        else:
            cur = cand
    if cur:
        out.append(("  " if out else "") + cur)
    return out


def fit_lines(lines: list[str], avail: int, width: Callable[[str], int]) -> list[tuple[str, bool]]:
    """A corner's lines fitted into *avail* pixels (*width* measures a string): each ``(text, warning)``.

    A line that fits stays as it is.  One that does not is split at its clauses ("; "), a clause that still
    does not fit takes its short form ("Burned-in text masked (US regions)" -> "Masked: US regions"), and
    what is still too wide wraps at word boundaries onto indented continuation lines.  Nothing is cut off
    mid-word (QA 13: "Burned-in text masked (U…" at 2x2); a continuation keeps its line's warning colour.
    """
    out: list[tuple[str, bool]] = []
    # QFontMetrics.horizontalAdvance rounds to whole pixels, the painter's elision does not: a line measured
    # exactly at the room was still cut ("Side: not in header…" at 2x2); keep 2 px in hand
    avail = max(1, avail - 2)
    for line in lines:
        if width(line) <= avail:
            out.append((line, is_warning(line)))
            continue
        warn = is_warning(line)  # the flag is the line's: its clauses and continuations keep it
        for i, clause in enumerate(c.strip() for c in line.split("; ") if c.strip()):
            if i:
                clause = clause[:1].upper() + clause[1:]
            if width(clause) > avail:
                clause = short_form(clause)
            out.extend((piece, warn) for piece in _wrap(clause, avail, width))
    return out
