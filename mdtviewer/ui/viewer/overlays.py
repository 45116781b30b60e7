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


# ---------------------------------------------------------------------------- where the corners go

#: corners at the top and at the bottom of a viewport
TOP_CORNERS = ("tl", "tr")
BOTTOM_CORNERS = ("bl", "br")

#: the per-frame parts of a line, made their widest for the layout: the image must not move while a cine
#: plays ("Frame 9/65" -> "Frame 10/65", ▶ -> ❚❚, a window being dragged)
_STEADY = (
    (re.compile(r"\b(Frame|Image) \d+/(\d+)"), lambda m: f"{m.group(1)} {m.group(2)}/{m.group(2)}"),
    (re.compile(r"  (▶|❚❚)$"), lambda _m: "  ❚❚▶"),
    (re.compile(r"^W -?\d+  L -?\d+$"), lambda _m: "W 88888  L -88888"),
    (re.compile(r"^Zoom \d+%$"), lambda _m: "Zoom 8888%"),
)


def steady_lines(lines: dict[str, list[str]]) -> dict[str, list[str]]:
    """*lines* with every per-frame number at its widest: what the layout is computed from, so that playing,
    stepping or windowing never moves the image (only a change of what the corners say does)."""
    out: dict[str, list[str]] = {}
    for k, v in lines.items():
        rows = []
        for t in v:
            for pat, rep in _STEADY:
                t = pat.sub(rep, t)
            rows.append(t)
        out[k] = rows
    return out


def share(room: int, left: int, right: int) -> tuple[int, int]:
    """Widths for two facing overlay corners: each keeps its text whole when the other leaves room."""
    if left + right <= room:
        return left, right
    half = room // 2
    if left <= half:
        return left, room - left
    if right <= half:
        return room - right, right
    return half, room - half


@dataclass(frozen=True)
class Placement:
    """Where the image goes in a viewport in "fit" mode and how wide each corner's text may be.

    ``image``: ``(x, y, w, h)`` in widget pixels (the image keeps its aspect ratio).  ``avail``: the width each
    corner's lines are fitted to (:func:`fit_lines`).  ``mode``: ``"margins"`` (the text in the room the
    fitted image leaves at its sides or above/below it: the image as large as it fits), ``"sides"`` (the
    image a little narrower to leave side bands), ``"strips"`` (a band above and below the image, each as
    high as its lines), ``"top strip"`` (a band above only: the bottom lines may lie over the image's lower
    corners) or ``"over"`` (the text over the image: no banner to keep clear, and no room without shrinking).
    ``outside``: no text over the image at all."""

    image: tuple[float, float, float, float]
    avail: dict[str, int]
    mode: str
    outside: bool


def _fit(box: tuple[float, float, float, float], iw: int, ih: int, top: bool = False) -> tuple[float, ...]:
    bx, by, bw, bh = box
    s = max(1e-3, min(bw / iw, bh / ih)) if bw > 0 and bh > 0 else 1e-3
    w, h = iw * s, ih * s
    return (bx + (bw - w) / 2.0, by if top else by + (bh - h) / 2.0, w, h)


def place_overlay(view_w: int, view_h: int, img_w: int, img_h: int, lines: dict[str, list[str]],
                  width: Callable[[str], int], line_h: int, *, margin: int = 6,
                  keep_top_clear: bool = True, blank_top_rows: int = 0) -> Placement:
    """Where a fitted image and the four corner texts go so that the text never lies over the scanner's
    burned-in banner (the image's top rows: patient name, hospital, probe, date), and the image is never
    hidden to make room.

    In order of preference, the largest image wins (within 3 %, text wholly outside the image wins):

    1. the room the aspect-fitted image leaves: side margins (a 4:3 image in a 16:9 cell) wide enough for the
       lines (wrapped to the margin), or bands above and below it high enough -- the image as large as it fits;
    2. side bands as wide as the text (the image narrower by the text's width);
    3. a band above the image as high as the top lines and one below as high as the bottom lines;
    4. a band above only (the image shrinks by the top lines' height; the bottom lines, which say nothing the
       scanner wrote, may lie over its lower corners when there is no room below).

    *keep_top_clear* False (no banner known: not ultrasound, no regions): the text may lie over the image
    (as in every viewer) unless room outside it costs nothing.  *blank_top_rows*: the banner's rows are
    blanked on screen (privacy or the presenter's mask): the top lines may lie over them, nothing is hidden
    there, so the band above the image is that much lower.  *width* measures a line as painted, *line_h*
    is a line's height; a block is its lines' widest + 6 px by ``len * line_h + 2`` (see the viewport's
    block painter)."""
    W, H = max(1, int(view_w)), max(1, int(view_h))
    iw, ih = max(1, int(img_w)), max(1, int(img_h))
    gap = 4  # between text and image

    def block(k: str, avail: int) -> tuple[int, int]:
        fitted = fit_lines(lines.get(k, []), avail, width)
        if not fitted:
            return 0, 0
        return max(width(t) for t, _w in fitted) + 6, line_h * len(fitted) + 2

    def natural(k: str) -> int:
        return max((width(t) for t in lines.get(k, [])), default=0) + 6

    room = max(80, W - 2 * margin - 12)
    shared: dict[str, int] = {}
    for a, b in (TOP_CORNERS, BOTTOM_CORNERS):
        shared[a], shared[b] = share(room, natural(a) if lines.get(a) else 0, natural(b) if lines.get(b) else 0)
        for k in (a, b):
            shared[k] = max(shared[k], 40)

    def band_h(corners: tuple[str, str]) -> int:
        hs = [block(k, shared[k])[1] for k in corners]
        return max(hs) + margin + gap if max(hs) > 0 else 0

    full = (0.0, 0.0, float(W), float(H))
    s0 = _fit(full, iw, ih)
    cands: list[tuple[float, int, Placement]] = []  # (image width, preference, placement)

    blank = max(0, min(int(blank_top_rows), ih - 1))

    def band_fit(t: float, b: float, top: bool) -> tuple[float, ...]:
        """The image between a band *t* high above and *b* below, its blanked top rows allowed under the
        band above; at the band's foot (*top*) or centred in what is left."""
        s = min(W / iw, (H - t - b) / (ih - blank), (H - b) / ih)
        s = max(1e-3, s)
        w, h = iw * s, ih * s
        y = max(0.0, t - blank * s)
        if not top:
            y += max(0.0, (H - b) - (y + h)) / 2.0 if blank == 0 else 0.0
        return ((W - w) / 2.0, y, w, h)

    def add(box: tuple[float, float, float, float], avail: dict[str, int], mode: str, pref: int,
            bottom_clear: int | None = None, top: bool = False,
            bands: tuple[float, float] | None = None) -> None:
        img = _fit(box, iw, ih, top=top) if bands is None else band_fit(bands[0], bands[1], top)
        outside = True
        if bottom_clear is not None:  # bottom lines over the image unless the room below holds them
            outside = H - (img[1] + img[3]) >= bottom_clear
        cands.append((img[2], pref + (2 if outside else 0), Placement(img, avail, mode, outside)))

    # 1a. the fitted image's own side margins, the lines wrapped to them
    side = (W - s0[2]) / 2.0 - margin - gap
    if side >= max(60, 7 * line_h):
        av = {k: int(side) for k in ("tl", "tr", "bl", "br")}
        hl = block("tl", av["tl"])[1] + block("bl", av["bl"])[1]
        hr = block("tr", av["tr"])[1] + block("br", av["br"])[1]
        if max(hl, hr) + gap <= H - 2 * margin:
            add(full, av, "margins", 3)
    # 1b/3. bands above and below (the fitted image's own ones when they are high enough: "margins")
    top_h, bottom_h = band_h(TOP_CORNERS), band_h(BOTTOM_CORNERS)
    if top_h + bottom_h < H - 20:
        strip_box = (0.0, float(top_h), float(W), float(H - top_h - bottom_h))
        mode = "margins" if band_fit(top_h, bottom_h, False)[2] >= s0[2] - 0.5 else "strips"
        add(strip_box, dict(shared), mode, 3 if mode == "margins" else 2, bands=(top_h, bottom_h))
    # 2. side bands as wide as the text
    wl = max(natural("tl") if lines.get("tl") else 0, natural("bl") if lines.get("bl") else 0)
    wr = max(natural("tr") if lines.get("tr") else 0, natural("br") if lines.get("br") else 0)
    if wl + wr + 2 * (margin + gap) < W - 20:
        av = {"tl": wl, "bl": wl, "tr": wr, "br": wr}
        hl = block("tl", wl)[1] + block("bl", wl)[1]
        hr = block("tr", wr)[1] + block("br", wr)[1]
        if max(hl, hr) + gap <= H - 2 * margin:
            L = wl + margin + gap if wl > 6 else 0
            R = wr + margin + gap if wr > 6 else 0
            add((float(L), 0.0, float(W - L - R), float(H)), av, "sides", 1)
    # 4. a band above only, the image right under it
    if top_h < H - 20:
        add((0.0, float(top_h), float(W), float(H - top_h)), dict(shared), "top strip", 0,
            bottom_clear=band_h(BOTTOM_CORNERS), top=True, bands=(top_h, 0))
    if not keep_top_clear or not cands:
        # nothing to keep clear: shrink for the text only when it costs nothing
        free = [c for c in cands if c[0] >= s0[2] - 0.5 and c[2].outside]
        if free:
            return max(free, key=lambda c: c[1])[2]
        return Placement(s0, dict(shared), "over", False)
    best = max(c[0] for c in cands)
    near = [c for c in cands if c[0] >= best * 0.97]
    return max(near, key=lambda c: (c[1], c[0]))[2]
