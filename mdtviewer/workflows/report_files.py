"""The report panel's file loading, without Qt: which files of a study are reports, and what each shows.

:func:`load_entries` reads every report among a study's instances (our
reviews, foreign SR and KOS, encapsulated PDF and other documents) plus our
reviews of the study found in the local store, into :class:`ReportEntry`
rows, sorted as the panel lists them (:func:`sort_entries`).  It runs on a
worker and never raises: an unreadable file becomes an entry with an
``error``.  :func:`read_document_bytes` gives an encapsulated document's
bytes.  The patient's identifiers are kept with each entry
(:class:`PatientIdentifiers`) so the panel can hide them under privacy.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mdtviewer.dicom import uids, values
from mdtviewer.dicom.kos import REJECTION_REASONS, kos_label, title_code
from mdtviewer.dicom.model import Instance
from mdtviewer.dicom.uids import KOS as KOS_CLASS
from mdtviewer.infra import paths
from mdtviewer.sr.reader import SRDocument

log = logging.getLogger(__name__)


@dataclass
class PatientIdentifiers:
    """Strings that identify the patient, taken from the SR's header."""

    name: str = ""
    patient_id: str = ""
    birth_date: str = ""
    accession: str = ""
    other: list[str] = field(default_factory=list)
    #: whose report it is, beyond the strings to hide (never used as needles): issuer, study
    issuer: str = ""
    study_uid: str = ""
    study_date: str = ""

    def needles(self) -> list[str]:
        """Every string to hide under privacy, longest first (so a part never leaks)."""
        out: set[str] = set()
        name = self.name.strip()
        if name:
            out.add(name)
            for group in name.split("="):  # alphabetic, ideographic, phonetic: each as written and joined
                gparts = [p.strip() for p in group.split("^") if p.strip()]
                out.update({" ".join(gparts), "".join(gparts)} if _ideographic(group) else {" ".join(gparts)})
            parts = [p for p in re.split(r"[\^=]", name) if p.strip()]
            out.add(" ".join(p.strip() for p in parts))
            out.update(p.strip() for p in parts if _significant(p.strip()))
        for v in (self.patient_id, self.birth_date, self.accession, *self.other):
            v = (v or "").strip()
            if len(v) >= 2:
                out.add(v)
        if len(self.birth_date) == 8 and self.birth_date.isdigit():
            b = self.birth_date
            out.update({f"{b[:4]}-{b[4:6]}-{b[6:]}", f"{b[6:]}/{b[4:6]}/{b[:4]}", f"{b[4:6]}/{b[6:]}/{b[:4]}"})
        return sorted((n for n in out if n), key=len, reverse=True)


def _ideographic(text: str) -> bool:
    """CJK ideographs, kana or Hangul in *text* (U+2E80 on): one or two of them can be a whole name part."""
    return any(ord(c) >= 0x2E80 for c in text)


def _significant(part: str) -> bool:
    """A name part worth hiding on its own: 3+ letters, or any ideographic part (王 of 王^小东 is a surname)."""
    return len(part) >= 3 or (bool(part) and _ideographic(part))


def identifiers_from_dataset(ds: Any) -> PatientIdentifiers:
    def s(keyword: str) -> str:
        try:
            v = ds.get(keyword, "")
        except Exception:  # noqa: BLE001 - a bad value is simply not shown
            return ""
        return "" if v is None else str(v)

    other = []
    for kw in ("OtherPatientIDs", "OtherPatientNames", "PatientBirthName", "PatientMotherBirthName"):
        try:
            v = ds.get(kw)
            if v is None or v == "":
                continue
            vals = list(v) if type(v).__name__ == "MultiValue" or isinstance(v, (list, tuple)) else [v]
            for x in vals:
                x = str(x)
                other.append(x)
                other.extend(p for p in re.split(r"[\^=]", x) if _significant(p.strip()))
        except Exception:  # noqa: BLE001 - a bad value is simply not used
            pass
    return PatientIdentifiers(
        name=s("PatientName"),
        patient_id=s("PatientID"),
        birth_date=s("PatientBirthDate"),
        accession=s("AccessionNumber"),
        other=other,
        issuer=s("IssuerOfPatientID"),
        study_uid=s("StudyInstanceUID"),
        study_date=s("StudyDate"),
    )


def format_datetime(value: Any) -> str:
    """DICOM DT/DA or datetime -> 'YYYY-MM-DD HH:MM' (:func:`mdtviewer.dicom.values.format_datetime`)."""
    return values.format_datetime(value, seconds=False, offset=False)


#: list order of categories
CATEGORY_ORDER = {"review": 0, "sr": 1, "kos": 1, "pdf": 2, "document": 3}
CATEGORY_LABELS = {
    "review": "Review",
    "sr": "Structured report",
    "kos": "Key images",
    "pdf": "PDF report",
    "document": "Document",
}


@dataclass
class ReportEntry:
    """One row of the list: what it is, who wrote it, and what to show."""

    sop_instance_uid: str
    path: Path
    category: str  # review | sr | kos | pdf | document
    title: str = ""
    kind: str = ""  # review kind ('second-opinion', 'preceptorship') or SR class label
    author: str = ""
    status: str = ""
    verified: bool = False
    date: str = ""  # YYYY-MM-DD HH:MM (sortable)
    mime: str = ""
    size: int = 0
    doc: SRDocument | None = None  # for SR/KOS/review
    identifiers: PatientIdentifiers = field(default_factory=PatientIdentifiers)
    error: str | None = None
    #: DICOM date-time digits used for ordering (seconds resolution)
    sort_dt: str = ""
    #: a later document of the study names this one as its predecessor
    superseded: bool = False
    #: withdrawn by a rejection note of its study (IHE IOCM): the reason; such a document is not the current report
    withdrawn: str = ""

    def label(self, standard_only: bool = False) -> str:
        """The list's name for it.  *standard_only* (privacy on): a KOS's title is only PS3.16's meaning of its
        title code, never the file's free text (which may name the patient: HAZ-016)."""
        if self.category == "review":
            kind = self.kind.replace("-", " ").capitalize() or "Review"
            if self.doc is not None and self.doc.predecessors:
                kind += " (amendment)"
            return kind
        if self.category == "kos":
            t = self.doc.title if self.doc is not None else None
            code = title_code(t.value or "", t.scheme or "") if t is not None else ""
            return kos_label(code, (t.meaning or "") if t is not None else self.title, standard_only=standard_only)
        if self.category == "document":
            return f"{self.title or 'Document'} [{self.mime or 'unknown type'}]"
        return self.title or CATEGORY_LABELS.get(self.category, "Report")

    def is_rejection_note(self) -> bool:
        """A KOS whose title is an IHE IOCM rejection (it withdraws images, it flags no key images)."""
        t = self.doc.title if self.doc is not None else None
        return (self.category == "kos" and t is not None and t.value in REJECTION_REASONS
                and (t.scheme or "DCM") == "DCM")


# --------------------------------------------------------------------- worker-side reading (no Qt)


def _str(v: Any) -> str:
    return "" if v is None else str(v)


def _doc_status(doc: SRDocument) -> tuple[str, bool]:
    """Status for the list, and whether the document is verified (signed).

    Our reviews say 'signed' / 'draft'; a foreign SR says what its flags say
    (a foreign PARTIAL report is not necessarily a draft of ours).
    """
    verified = doc.verification_flag.upper() == "VERIFIED"
    if doc.is_review:
        return doc.status or ("signed" if verified else "draft"), verified
    if doc.kind == "kos" or doc.sop_class_uid == KOS_CLASS:
        return "", verified
    return ("verified" if verified else doc.completion_flag.lower()), verified


def _entry_from_sr(doc: SRDocument, path: Path, ids: PatientIdentifiers, sop_class: str) -> ReportEntry:
    status, verified = _doc_status(doc)
    title = (doc.title.meaning or doc.title.value) if doc.title is not None else ""
    authors = [a.replace("^", " ").strip() for a in doc.author_observers if a and a.strip()]
    author = "; ".join(authors)
    if doc.is_review and doc.review_kind == "preceptorship" and len(authors) == 2:
        # our writer puts the trainer first and the trainee (performing) second: the trainee did not write it
        author = f"{authors[0]} (trainee: {authors[1]})"
    if not author and doc.verifiers:
        author = doc.verifiers[0].name.replace("^", " ").strip()
    cls = doc.sop_class_uid or sop_class
    category = "review" if doc.is_review else ("kos" if cls == KOS_CLASS or doc.kind == "kos" else "sr")
    when = (doc.sort_datetime if doc.is_review else "") or doc.content_datetime
    return ReportEntry(
        sop_instance_uid=doc.sop_instance_uid,
        path=Path(path),
        category=category,
        title=title,
        kind=doc.review_kind if doc.is_review else doc.sop_class_name,
        author=author,
        status=status,
        verified=verified,
        date=format_datetime(when),
        sort_dt="".join(ch for ch in when[:14] if ch.isdigit()),
        doc=doc,
        identifiers=ids,
    )


def _read_sr_entry(path: Path, sop_class: str, sop_uid: str) -> ReportEntry:
    from mdtviewer.dicom.reader import read_dataset

    try:
        ds = read_dataset(path)
        ids = identifiers_from_dataset(ds)
        from mdtviewer.sr.reader import read_sr

        doc = read_sr(ds)
        if doc.path is None:
            doc.path = Path(path)
        return _entry_from_sr(doc, path, ids, sop_class)
    except Exception as exc:  # noqa: BLE001 - a bad report is listed with its reason, never fatal
        cat = "kos" if sop_class == KOS_CLASS else "sr"
        return ReportEntry(sop_uid, Path(path), cat, title=Path(path).name,
                           error=_reason(exc, "cannot read this report"))


def _read_document_entry(path: Path, sop_class: str, sop_uid: str, category: str) -> ReportEntry:
    from mdtviewer.dicom.reader import read_dataset

    try:
        ds = read_dataset(path)
        ids = identifiers_from_dataset(ds)
        mime = _str(ds.get("MIMETypeOfEncapsulatedDocument", "")).strip()
        title = _str(ds.get("DocumentTitle", "")).strip()
        if not title:
            seq = ds.get("ConceptNameCodeSequence")
            if seq:
                title = _str(seq[0].get("CodeMeaning", ""))
        size = 0
        if "EncapsulatedDocument" in ds:  # an empty one (value None) is size 0: shown as a document without content
            size = int(ds.get("EncapsulatedDocumentLength") or len(ds.EncapsulatedDocument or b""))
        if mime == "application/pdf":
            category = "pdf"
        date = format_datetime(
            _str(ds.get("ContentDate", "") or ds.get("StudyDate", "")) + _str(ds.get("ContentTime", ""))
        )
        return ReportEntry(
            sop_uid or _str(ds.get("SOPInstanceUID", "")),
            Path(path),
            category,
            title=title or ("PDF report" if category == "pdf" else "Document"),
            mime=mime,
            size=size,
            date=date,
            identifiers=ids,
        )
    except Exception as exc:  # noqa: BLE001 - listed with its reason, never fatal
        return ReportEntry(
            sop_uid, Path(path), category, title=Path(path).name, error=_reason(exc, "cannot read this document")
        )


def _reason(exc: BaseException, what: str) -> str:
    """One line for an entry that cannot be read: an expected error's reason, else a bug notice (logged)."""
    from mdtviewer.infra.errors import MdtError, bug_reason

    if isinstance(exc, MdtError):
        return f"{what}: {exc.reason}"
    if isinstance(exc, OSError):
        return f"{what}: {exc.strerror or type(exc).__name__}"
    log.error("bug while reading a report entry", exc_info=exc)
    return bug_reason(exc, what)


def read_document_bytes(path: Path) -> bytes:
    """The EncapsulatedDocument of *path*, without DICOM's even-length pad byte."""
    from mdtviewer.dicom.reader import read_dataset
    from mdtviewer.infra.errors import MalformedHeaderError

    ds = read_dataset(path)
    if "EncapsulatedDocument" not in ds:
        raise MalformedHeaderError("the file holds no encapsulated document")
    data = bytes(ds.EncapsulatedDocument or b"")
    if not data:
        raise MalformedHeaderError("the encapsulated document is empty")
    declared = ds.get("EncapsulatedDocumentLength")
    if declared and 0 < int(declared) <= len(data):
        return data[: int(declared)]
    if data.endswith(b"\x00"):
        data = data[:-1]
    return data


def _instance_category(inst: Instance) -> str | None:
    if inst.kind in ("sr", "kos"):
        return inst.kind
    if inst.kind in ("pdf", "document"):
        return inst.kind
    kind = uids.classify(inst.sop_class_uid, 0, None, has_pixel_data=False)  # by its SOP class alone
    return kind if kind in ("sr", "kos", "pdf", "document") else None


def load_entries(
    instances: Iterable[Instance], study_uids: Iterable[str], folders: list[Path] | None
) -> list[ReportEntry]:
    """Read every report among *instances*, plus our reviews of *study_uids* in *folders*.

    Runs on a worker thread.  Never raises: unreadable files become entries
    with an ``error``.
    """
    entries: dict[str, ReportEntry] = {}
    seen_paths: set[Path] = set()
    for inst in instances:
        cat = _instance_category(inst)
        if cat is None:
            continue
        if cat in ("sr", "kos"):
            e = _read_sr_entry(inst.path, inst.sop_class_uid, inst.sop_instance_uid)
        else:
            e = _read_document_entry(inst.path, inst.sop_class_uid, inst.sop_instance_uid, cat)
        if inst.withdrawn:  # the index decided (Study.rejected): listed, marked, never the current report
            e.withdrawn = inst.withdrawn
        key = e.sop_instance_uid or str(inst.path)
        entries.setdefault(key, e)
        seen_paths.add(Path(inst.path).resolve())
    study_uids = [u for u in dict.fromkeys(study_uids) if u]
    if study_uids:
        from mdtviewer.workflows.reviews import reviews_for_study  # same room: always there

        for uid in study_uids:
            try:
                docs = reviews_for_study(uid, folders if folders is not None else [paths.store_dir()])
            except Exception as exc:  # noqa: BLE001
                log.warning("reviews lookup failed: %s", exc)
                continue
            for doc in docs:
                sop = doc.sop_instance_uid
                if sop in entries or doc.path is None:
                    continue
                p = Path(doc.path)
                ids = PatientIdentifiers()
                try:
                    from mdtviewer.dicom.reader import read_dataset

                    ids = identifiers_from_dataset(read_dataset(p, stop_before_pixels=True))
                except Exception:  # noqa: BLE001 - identifiers only serve privacy scrubbing
                    pass
                entries[sop] = _entry_from_sr(doc, p, ids, doc.sop_class_uid)
        # rejection notes that are not in the index (fetched from the PACS into the local store): they
        # withdraw documents of their own study here too, as `sr list` reads them
        from mdtviewer.dicom.kos import withdrawn_by_notes

        notes = [e.path for e in entries.values() if e.category == "kos" and not e.error and e.is_rejection_note()]
        for uid in study_uids if notes else ():
            for sop, reason in withdrawn_by_notes(notes, uid).items():
                if sop in entries and not entries[sop].withdrawn:
                    entries[sop].withdrawn = reason
    return sort_entries(list(entries.values()))


def sort_entries(entries: list[ReportEntry]) -> list[ReportEntry]:
    """Reviews first (signed ones first, newest first), then SR/KOS, PDFs, other documents.

    A document that a later one amends is marked superseded and goes after
    the current ones of its group (same-second signatures stay in order).
    """
    replaced: set[str] = set()
    for e in entries:
        if e.doc is not None:
            replaced.update(e.doc.predecessors)
    for e in entries:
        if e.sop_instance_uid in replaced and not e.superseded:
            e.superseded = True
            # "amended" read as "this is the amended one": say it was replaced
            e.status = f"{e.status}, superseded" if e.status else "superseded"
        if e.withdrawn and "WITHDRAWN" not in e.status:
            e.status = f"WITHDRAWN ({e.withdrawn})"

    def key(e: ReportEntry):
        return (
            bool(e.withdrawn),  # a withdrawn document is never listed first (never the one shown by default)
            CATEGORY_ORDER.get(e.category, 9),
            0 if e.verified else 1,
            e.superseded,
            _neg(e.sort_dt or e.date),
            e.title,
        )

    return sorted(entries, key=key)


def _neg(date: str) -> str:
    # newest first inside a group: invert the digits of a sortable date string
    return "".join(chr(0x7F - ord(c)) if c.isdigit() else c for c in (date or "0000"))
