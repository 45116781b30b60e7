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

#: shown instead of an identifier while privacy is on
HIDDEN = "[hidden]"


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

    @classmethod
    def from_dataset(cls, ds: Any) -> OverlayInfo:
        return cls(
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
        )

    def identifiers(self) -> list[str]:
        """Every value privacy must hide (for tests and for scrubbing free text)."""
        vals = [self.patient_name, format_person_name(self.patient_name), self.patient_id, self.accession]
        vals += [self.birth_date, format_date(self.birth_date)]
        return [v for v in vals if v and v.strip()]


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


def corner_texts(info: OverlayInfo, st: FrameStatus, privacy: bool) -> dict[str, list[str]]:
    """Lines for the four corners: ``tl`` patient, ``tr`` study/site, ``bl`` series/frame, ``br`` display."""
    if privacy:
        name, pid, dob = HIDDEN, HIDDEN, HIDDEN
    else:
        name = format_person_name(info.patient_name) or "(no name)"
        pid = info.patient_id or "(no ID)"
        dob = format_date(info.birth_date) or "—"
    tl = [name, f"ID: {pid}", f"DOB: {dob}" + (f"  Sex: {info.sex}" if info.sex and not privacy else "")]
    if privacy:
        tl.append("PRIVACY ON (F9)")

    when = " ".join(x for x in (format_date(info.study_date), format_time(info.study_time)) if x)
    tr = [f"Study: {when}" if when else "Study date: —"]
    site = " / ".join(x for x in (info.institution, info.department) if x)
    if privacy and site:
        site = f"Institution: {HIDDEN}"  # an indirect identifier (SVT guidance, PS3.15 E.1-1)
    tr.append(site or "Institution: —")
    dev = " ".join(x for x in (info.manufacturer, info.model) if x)
    if dev:
        tr.append(dev)

    ser = f"Series {info.series_number or '—'}"
    if info.series_description:
        ser += f": {info.series_description}"
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
    (re.compile(r"^Burned-in text masked \(MDT mask on, Ctrl\+M\)$"), "Masked: MDT mask (Ctrl+M)"),
    (re.compile(r"^Burned-in text masked \(detected: (\d+) area\(s\)\)$"), r"Masked: \1 detected area(s)"),
    (re.compile(r"^Burned-in text masked \((.+)\)$"), r"Masked: \1"),
    (re.compile(r"^(\d+) identifier word\(s\) inside the image masked$", re.I), r"Masked: \1 identifier word(s)"),
    (re.compile(r"^text inside the image not checked \(tesseract not installed\)$", re.I),
     "Text in image not checked (no OCR)"),
)


def is_warning(text: str) -> bool:
    """A line drawn in the warning colour: privacy could not mask, or hid, or did not check something."""
    return "NOT masked" in text or "hidden" in text or "not checked" in text


def short_form(text: str) -> str:
    """*text* in fewer words when a narrow viewport cannot show it whole (else *text* itself)."""
    for pat, rep in _SHORT_FORMS:
        if pat.match(text):
            return pat.sub(rep, text)
    return text


def _wrap(text: str, avail: int, width: Callable[[str], int]) -> list[str]:
    """Greedy word wrap; continuation lines indented.  A single word wider than *avail* stays whole
    (the painter elides it: the one case where text is still cut)."""
    words: list[str] = []
    for w in text.split(" "):
        if w == "/" and words:  # "CLINIC / DEPT": the break goes after the slash
            words[-1] += " /"
        else:
            words.append(w)
    out: list[str] = []
    cur = ""
    for w in words:
        cand = f"{cur} {w}" if cur else w
        if cur and width(("  " if out else "") + cand) > avail:
            out.append(("  " if out else "") + cur)
            cur = w
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
    for line in lines:
        if width(line) <= avail:
            out.append((line, is_warning(line)))
            continue
        for i, clause in enumerate(c.strip() for c in line.split("; ") if c.strip()):
            warn = is_warning(clause)
            if i:
                clause = clause[:1].upper() + clause[1:]
            if width(clause) > avail:
                clause = short_form(clause)
            out.extend((piece, warn) for piece in _wrap(clause, avail, width))
    return out
