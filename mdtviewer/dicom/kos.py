"""Key Object Selection documents: which images a KOS flags as key images, and which it rejects.

A KOS (SOP class :data:`mdtviewer.dicom.uids.KOS`) lists instances by SOP
Instance UID under its content tree and its Current Requested Procedure
Evidence.  Its title (Concept Name, DCM CID 7011) says what the list means:
most titles ("Of Interest", "For Teaching" ...) flag key images, but IHE
IOCM's rejection notes ("Rejected for Quality Reasons", "Rejected for Patient
Safety Reasons", "Incorrect Modality Worklist Entry", "Data Retention Policy
Expired") name images to be withdrawn: marking those as key images would tell
the reader the opposite of what the modality meant, so they are skipped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

from mdtviewer.dicom import values
from mdtviewer.infra.errors import DicomInputError

log = logging.getLogger(__name__)

#: KOS document titles (DCM, CID 7011) that flag images for REJECTION (IHE IOCM), not as key images
REJECTION_TITLES = frozenset({"113001", "113037", "113038", "113039"})

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
        out |= key_image_uids_of(ds)
    return out
