"""Key Object Selection documents: which images a KOS flags as key images, and which it rejects.

A KOS (SOP class :data:`mdtviewer.dicom.uids.KOS`) lists instances by SOP
Instance UID under its content tree and its Current Requested Procedure
Evidence.  Its title (Concept Name, DCM CID 7011) says what the list means:
most titles ("Of Interest", "For Teaching" ...) flag key images, but IHE
IOCM's rejection notes ("Rejected for Quality Reasons", "Rejected for Patient
Safety Reasons", "Incorrect Modality Worklist Entry", "Data Retention Policy
Expired") name images to be withdrawn: marking those as key images would tell
the reader the opposite of what the modality meant, so they are skipped.

A rejection note withdraws the instances of its OWN study that its Current
Requested Procedure Evidence lists (IHE IOCM): :func:`study_rejections` works
out, for one study, which of its instances are withdrawn and why; the index
stores the answer on the model (``Study.rejected``, ``Instance.withdrawn``) so
every consumer (browser, window, presenter, export, report lookup, CLI) asks
one place.  A note that references another study, or that cannot be read, hides
nothing and becomes a problem line.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mdtviewer.dicom import values
from mdtviewer.infra.errors import DicomInputError

log = logging.getLogger(__name__)

#: KOS document titles (DCM; CID 7010 Key Object Selection Document Title) that flag images for REJECTION
#: (IHE IOCM), not as key images, with their meanings as PS3.16 gives them (the reason shown to the user:
#: the file's own Code Meaning is free text and may be missing or localised)
REJECTION_REASONS = {
    "113001": "Rejected for Quality Reasons",
    "113037": "Rejected for Patient Safety Reasons",
    "113038": "Incorrect Modality Worklist Entry",
    "113039": "Data Retention Policy Expired",
}
REJECTION_TITLES = frozenset(REJECTION_REASONS)

#: the other KOS document titles of CID 7010 (DCM) a key-image note may carry, with PS3.16's meanings: under
#: privacy a KOS is labelled with these, never with the file's own Code Meaning (free text that may name the
#: patient); a code not in this table is labelled "Key images" alone
KEY_OBJECT_TITLES = {
    "113000": "Of Interest",
    "113002": "For Referring Provider",
    "113003": "For Surgery",
    "113004": "For Teaching",
    "113005": "For Conference",
    "113006": "For Therapy",
    "113007": "For Patient",
    "113008": "For Peer Review",
    "113009": "For Research",
    "113010": "Quality Issue",
    "113013": "Best In Set",
    "113018": "For Printing",
    "113020": "For Report Attachment",
    "113021": "For Litigation",
    "113022": "Collection of Presentation States",
    "113030": "Manifest",
    "113031": "Signed Manifest",
    "113032": "Complete Study Content",
    "113033": "Signed Complete Study Content",
    "113034": "Complete Acquisition Content",
    "113035": "Signed Complete Acquisition Content",
    "113036": "Group of Frames for Display",
    "128195": "For Diagnosis",
    "128203": "For Tumor Board",
    "128710": "For Teaching File Export",
    "128711": "For Clinical Trial Export",
    "128713": "For Research Collection Export",
    "128714": "For Publication Export",
    **REJECTION_REASONS,
}

#: what reading a KOS's sequences may raise when pydicom parses a damaged one lazily, on first access
DAMAGED = (OSError, EOFError, RecursionError, *values.BAD_VALUE)

#: a content tree deeper than this is not walked further (a KOS is two levels deep)
MAX_DEPTH = 32


def is_rejection_note(ds: Any) -> bool:
    """Does this KOS's title say its images are rejected (IHE IOCM), rather than key images?"""
    titles = values.sequence(ds, "ConceptNameCodeSequence")
    if not titles:
        return False
    title = titles[0]
    return (values.text(title, "CodeValue") in REJECTION_TITLES
            and values.text(title, "CodingSchemeDesignator", "DCM") == "DCM")


def referenced_uids(ds: Any) -> set[str]:
    """Every SOP Instance UID a KOS references (content tree and evidence), whatever its title."""
    out: set[str] = set()

    def refs(items: Iterable[Any]) -> None:
        for ref in items:
            uid = values.text(ref, "ReferencedSOPInstanceUID")
            if uid:
                out.add(uid)

    def walk(items: list[Any], depth: int) -> None:
        if depth > MAX_DEPTH:
            return
        for it in items:
            refs(values.sequence(it, "ReferencedSOPSequence"))
            walk(values.sequence(it, "ContentSequence"), depth + 1)

    walk(values.sequence(ds, "ContentSequence"), 0)
    for study in values.sequence(ds, "CurrentRequestedProcedureEvidenceSequence"):
        for series in values.sequence(study, "ReferencedSeriesSequence"):
            refs(values.sequence(series, "ReferencedSOPSequence"))
    return out


def key_image_uids_of(ds: Any) -> set[str]:
    """The key images one KOS flags: its references, or none when it is a rejection note."""
    return set() if is_rejection_note(ds) else referenced_uids(ds)


def key_image_uids(kos_paths: Iterable[str | os.PathLike]) -> set[str]:
    """SOP Instance UIDs flagged as key images by the KOS files given (rejection notes skipped).

    A KOS that cannot be read flags nothing (logged, without identifiers);
    reading runs in the caller's thread.
    """
    from mdtviewer.dicom.reader import read_dataset

    out: set[str] = set()
    for p in kos_paths:
        try:
            ds = read_dataset(p)
        except (DicomInputError, OSError) as exc:
            log.info("KOS not used: %s", getattr(exc, "reason", None) or type(exc).__name__)
            continue
        try:
            out |= key_image_uids_of(ds)
        except DAMAGED:  # a damaged sequence found only when read: this KOS flags nothing
            log.info("KOS not used: damaged inside a sequence")
    return out


def title_code(value: str, scheme: str) -> str:
    """A KOS title's code as stored on the model (``Instance.title_code``): "DCM:113038"; "" without a value."""
    return f"{scheme or 'DCM'}:{value}" if value else ""


def standard_title(code: str) -> str:
    """PS3.16's meaning of a KOS title code ("DCM:113038"), or "" when it is not one of CID 7010's in our table."""
    scheme, _, value = code.partition(":")
    return KEY_OBJECT_TITLES.get(value, "") if scheme == "DCM" else ""


def is_rejection_code(code: str) -> bool:
    """Is this KOS title code ("DCM:113038") an IHE IOCM rejection title?"""
    scheme, _, value = code.partition(":")
    return scheme == "DCM" and value in REJECTION_TITLES


def kos_label(code: str, free_text: str, standard_only: bool = False) -> str:
    """How every list names a KOS: "Rejection note: <reason>" or "Key images: <title>".

    *code*: its title code ("DCM:113038"); *free_text*: the file's own Code Meaning.  A rejection note is
    never called "Key images".  With *standard_only* (privacy on, or output that must carry no identifier)
    the title is PS3.16's meaning of the code only, never the file's free text, which may hold the
    patient's name or ID; an unknown code then gives the bare kind."""
    kind = "Rejection note" if is_rejection_code(code) else "Key images"
    title = standard_title(code) if standard_only else (free_text or standard_title(code))
    return f"{kind}: {title}" if title else kind


# ----------------------------------------------------------------- rejection (IHE IOCM)
class RejectionNoteError(DicomInputError):
    """A rejection note that cannot be applied (it hides nothing), and why."""

    category = "rejection-note"


def rejection_reason(ds: Any) -> str:
    """The reason a rejection note gives (the PS3.16 meaning of its title), or "" when *ds* is no rejection note."""
    if not is_rejection_note(ds):
        return ""
    return REJECTION_REASONS[values.text(values.sequence(ds, "ConceptNameCodeSequence")[0], "CodeValue")]


def rejected_in_study(ds: Any, study_uid: str) -> set[str]:
    """The SOP Instance UIDs a rejection note withdraws in *study_uid*: its evidence items for that study.

    Raises :class:`RejectionNoteError` when the note is malformed (no evidence, an evidence item without
    a study UID, a reference without a UID, nothing referenced) or references only other studies: such a
    note withdraws nothing, and the caller lists the reason as a problem."""
    evidence = values.sequence(ds, "CurrentRequestedProcedureEvidenceSequence")
    if not evidence:
        raise RejectionNoteError("rejection note without Current Requested Procedure Evidence: nothing withdrawn")
    out: set[str] = set()
    other = 0
    for item in evidence:
        item_study = values.text(item, "StudyInstanceUID")
        if not item_study:
            raise RejectionNoteError("rejection note evidence without a Study Instance UID: nothing withdrawn")
        for series in values.sequence(item, "ReferencedSeriesSequence"):
            for ref in values.sequence(series, "ReferencedSOPSequence"):
                uid = values.text(ref, "ReferencedSOPInstanceUID")
                if not uid:
                    raise RejectionNoteError("rejection note reference without a SOP Instance UID: nothing withdrawn")
                if item_study == study_uid:
                    out.add(uid)
                else:
                    other += 1
    if not out:
        if other:
            raise RejectionNoteError("rejection note references only another study's instances: nothing withdrawn")
        raise RejectionNoteError("rejection note references no instances: nothing withdrawn")
    out.discard(values.text(ds, "SOPInstanceUID"))  # a note never withdraws itself
    return out


@dataclass
class WithdrawalNote:
    """One rejection note applied to a study: which note, why, and how many of the study's instances it withdraws."""

    note_uid: str
    path: Path
    reason: str
    #: the study's instances it withdraws (SOP Instance UIDs present in the study)
    withdrawn: list[str] = field(default_factory=list)
    #: how many instances it references in this study (some may not be in the files opened)
    referenced: int = 0


def study_rejections(
    study_uid: str,
    instances: Iterable[Any],
    read: Callable[[Path], Any],
) -> tuple[dict[str, str], list[WithdrawalNote], list[tuple[Path, str]]]:
    """(withdrawn uid -> reason, notes applied, [(note path, one-line problem)]) for one study.

    *instances*: the study's instances (model objects with ``kind``, ``path``, ``sop_instance_uid``); only
    the KOS among them are read, with *read(path)*.  Only a note filed in this study (and so of this
    patient: the index keeps each patient's studies apart) withdraws this study's instances, and only
    those its evidence lists under this study's UID.  A note that cannot be read or applied is a problem
    line and withdraws nothing; a rejected instance named by two notes keeps the first note's reason."""
    insts = list(instances)
    present = {i.sop_instance_uid for i in insts}
    rejected: dict[str, str] = {}
    notes: list[WithdrawalNote] = []
    problems: list[tuple[Path, str]] = []
    for inst in insts:
        if inst.kind != "kos":
            continue
        try:
            ds = read(inst.path)
        except (DicomInputError, OSError) as exc:  # it may be a rejection note: say that it was not applied
            why = getattr(exc, "reason", "") or type(exc).__name__
            problems.append((inst.path, f"KOS not read, a rejection note in it would not be applied: {why}"))
            continue
        try:
            reason = rejection_reason(ds)
            if not reason:
                continue
            note_study = values.text(ds, "StudyInstanceUID")
            if note_study and study_uid and note_study != study_uid:
                raise RejectionNoteError("rejection note filed under another study: nothing withdrawn")
            uids = rejected_in_study(ds, study_uid)
        except RejectionNoteError as exc:
            problems.append((inst.path, exc.reason))
            continue
        except DAMAGED:  # a sequence pydicom parses only when asked, found damaged then
            problems.append((inst.path, "KOS damaged inside a sequence: a rejection note in it would not be applied"))
            continue
        here = sorted(uids & present)
        for uid in here:
            rejected.setdefault(uid, reason)
        notes.append(WithdrawalNote(inst.sop_instance_uid, inst.path, reason, here, len(uids)))
    return rejected, notes, problems


def withdrawn_by_notes(paths: Iterable[str | os.PathLike], study_uid: str) -> dict[str, str]:
    """SOP Instance UID -> reason, for what the rejection notes among *paths* (KOS files, others ignored)
    withdraw in *study_uid*: for lists built from files rather than the index (``sr list``).  A note
    that cannot be read or applied withdraws nothing (the index's problem list says why)."""
    from mdtviewer.dicom.reader import read_dataset

    out: dict[str, str] = {}
    for p in paths:
        try:
            ds = read_dataset(p, stop_before_pixels=True)
        except (DicomInputError, OSError):
            continue
        try:
            reason = rejection_reason(ds)
        except DAMAGED:
            continue
        if not reason or (values.text(ds, "StudyInstanceUID") or study_uid) != study_uid:
            continue
        try:
            for uid in rejected_in_study(ds, study_uid):
                out.setdefault(uid, reason)
        except (RejectionNoteError, *DAMAGED):
            continue
    return out
