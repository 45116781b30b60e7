"""The study hierarchy: Patient -> Study -> Series -> Instance.

Plain dataclasses, Qt-free.  Built by :mod:`mdtviewer.dicom.index` from file
headers only (no pixel data is read).  Patient-identifying fields are kept
here for display; they must never be logged: use :meth:`Instance.safe_label`
in logs and messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

#: Instance kinds (what the viewer does with it)
KINDS = ("image", "cine", "sr", "kos", "pdf", "document", "other")


@dataclass
class Instance:
    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    kind: str  # one of KINDS
    study_instance_uid: str = ""
    series_instance_uid: str = ""
    transfer_syntax: str = ""
    modality: str = ""
    instance_number: int | None = None
    number_of_frames: int = 0  # 0 for non-images
    rows: int = 0
    columns: int = 0
    photometric: str = ""
    #: SR/KOS/PDF: document title or MIME type, for the browser
    title: str = ""
    #: a KOS's title code, "SCHEME:VALUE" (e.g. "DCM:113038"; :func:`mdtviewer.dicom.kos.kos_label`): what the
    #: lists name it by, and all they show of its title under privacy (the file's Code Meaning is free text)
    title_code: str = ""
    #: where the header said the file meta should be ignored/recovered, a note
    note: str = ""
    #: a problem found while indexing (the instance is still listed)
    error: str | None = None
    #: offset of the data set when the file has no preamble/meta (raw data set)
    dataset_offset: int = 0
    #: withdrawn by an IHE IOCM rejection note of its own study: the reason (its title's meaning); "" when not.
    #: Set by the index from :attr:`Study.rejected` (the one place that decides); never shown as a current image
    withdrawn: str = ""

    def safe_label(self) -> str:
        """A label without patient identifiers, for logs and messages."""
        return f"{self.path.name} ({self.kind}, {self.sop_instance_uid[-12:]})"


@dataclass
class Series:
    series_instance_uid: str
    modality: str = ""
    series_number: int | None = None
    series_description: str = ""
    instances: list[Instance] = field(default_factory=list)

    @property
    def kinds(self) -> set[str]:
        return {i.kind for i in self.instances}


@dataclass
class Study:
    study_instance_uid: str
    study_date: str = ""
    study_time: str = ""
    study_description: str = ""
    accession_number: str = ""
    institution_name: str = ""
    referring_physician: str = ""
    series: dict[str, Series] = field(default_factory=dict)
    #: SOP Instance UID -> reason, for this study's instances withdrawn by a rejection note of this study
    #: (IHE IOCM; see :func:`mdtviewer.dicom.kos.study_rejections`): not presented as part of the study
    rejected: dict[str, str] = field(default_factory=dict)
    #: the rejection notes applied to this study (``kos.WithdrawalNote``), for "N images withdrawn (reason)"
    withdrawal_notes: list = field(default_factory=list)

    @property
    def modalities(self) -> list[str]:
        return sorted({s.modality for s in self.series.values() if s.modality})

    def instances(self) -> list[Instance]:
        return [i for s in self.series.values() for i in s.instances]

    def withdrawn_summary(self) -> str:
        """"2 images withdrawn (Incorrect Modality Worklist Entry)", one clause per reason; "" when none."""
        rejected = self.rejected
        if not rejected:
            return ""
        counts: dict[tuple[str, str], int] = {}
        for inst in self.instances():
            reason = rejected.get(inst.sop_instance_uid)
            if reason:
                noun = "image" if inst.kind in ("image", "cine") else "document"
                counts[(reason, noun)] = counts.get((reason, noun), 0) + 1
        return "; ".join(
            f"{n} {noun}{'s' if n != 1 else ''} withdrawn ({reason})" for (reason, noun), n in sorted(counts.items())
        )


@dataclass
class Patient:
    """One patient: identified by Patient ID + Issuer of Patient ID, never by name.

    A study without a Patient ID is a patient of its own (``identified`` is
    False): it is never merged with another study, whatever the names say,
    and it has no priors or other imaging."""

    patient_id: str
    patient_name: str = ""
    birth_date: str = ""
    sex: str = ""
    studies: dict[str, Study] = field(default_factory=dict)
    #: Issuer of Patient ID (0010,0021): the same ID from two issuers is two patients
    issuer: str = ""

    @property
    def identified(self) -> bool:
        return bool(self.patient_id.strip())

    @property
    def key(self) -> tuple[str, str] | None:
        """The identity (Patient ID, Issuer), or None for a patient without an ID (equal to nobody)."""
        return (self.patient_id.strip(), self.issuer.strip()) if self.identified else None

    def same_patient(self, other: Patient | None) -> bool:
        """True only for the same object or the same identified (ID, issuer): names never count."""
        if other is None:
            return False
        if other is self:
            return True
        return self.key is not None and self.key == other.key

    def no_id_label(self) -> str:
        """'No patient ID (study 2019-03-01)': how a patient without an ID is named on screen."""
        from mdtviewer.dicom.values import format_date  # one date formatter (old ACR-NEMA 1994.11.05 too)

        dates = sorted(format_date(s.study_date) for s in self.studies.values() if s.study_date)
        return f"No patient ID (study {dates[0] if dates else 'undated'})"


def patient_key(patient_id: str, issuer: str, study_uid: str, fallback: str) -> str:
    """The index key of a patient: ID+issuer when there is an ID; else the study alone (never merged).

    *fallback* (series UID or path) keys an instance that has neither ID nor study UID."""
    pid = patient_id.strip()
    if pid:
        return f"id:{pid}\x00{issuer.strip()}"
    return f"noid:{study_uid or fallback}"


@dataclass
class Problem:
    """A file that could not be used, and the one-line reason."""

    path: Path
    reason: str
    category: str = "error"
