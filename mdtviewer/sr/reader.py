"""A tolerant reader for any Structured Report or Key Object Selection document.

highdicom's ``srread`` refuses most SRs found in the wild (Basic Text SR, KOS,
by-reference items, an empty root, dose SRs ...), and a review viewer must
show whatever a PACS hands it.  This walker reads the content tree with plain
pydicom, never raises on an odd item (it becomes a node with a note in
``text``), and keeps every value type: TEXT, CODE, NUM, DATETIME, DATE, TIME,
UIDREF, PNAME, IMAGE, COMPOSITE, WAVEFORM, SCOORD, SCOORD3D, TCOORD, CONTAINER
and by-reference items (``reference`` = the target's position, "1.2.3").

Text is decoded by pydicom from Specific Character Set (nested items inherit
the data set's), so the strings here are correct Python text in every
character set.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from mdtviewer.dicom import values
from mdtviewer.dicom.uids import KOS as KOS_SOP_CLASS
from mdtviewer.dicom.uids import is_sr_class
from mdtviewer.infra.errors import DicomInputError, MalformedHeaderError, NotDicomError, UnsupportedError
from mdtviewer.sr import codes
from mdtviewer.sr.model import Verifier

#: producer name we write into Manufacturer; with the review-type item it marks our reviews
MANUFACTURER = "mdtviewer"

__all__ = ["Code", "ImageRef", "ContentNode", "SRDocument", "Verifier", "read_sr", "is_sr_dataset", "redacted"]


@dataclass
class Code:
    value: str
    scheme: str
    meaning: str

    def __str__(self) -> str:
        return f"{self.meaning} ({self.value}, {self.scheme})"


@dataclass
class ImageRef:
    sop_class_uid: str
    sop_instance_uid: str
    frames: list[int] = field(default_factory=list)  # 1-based; empty = the whole instance
    #: presentation state referenced with the image, if any
    presentation_state_uid: str = ""


@dataclass
class ContentNode:
    relationship: str  # "" for the root
    value_type: str  # "CONTAINER", "TEXT" ...; "" for a by-reference item
    concept: Code | None = None
    text: str | None = None  # TEXT/DATETIME/DATE/TIME/UIDREF/PNAME value; notes for others
    code: Code | None = None
    numeric: float | None = None
    unit: Code | None = None
    image: ImageRef | None = None
    composite: ImageRef | None = None  # COMPOSITE and WAVEFORM targets
    reference: str | None = None  # by-reference item: target position "1.2.3"
    children: list[ContentNode] = field(default_factory=list)
    #: position in the tree, "1" for the root, "1.2.3" ...
    position: str = "1"
    #: SCOORD/SCOORD3D/TCOORD/WAVEFORM summary, CONTAINER continuity, NUM qualifier ...
    detail: str | None = None

    def walk(self) -> Iterator[ContentNode]:
        yield self
        for c in self.children:
            yield from c.walk()

    def find(self, concept: codes.C) -> list[ContentNode]:
        """Direct children whose concept name is *concept*."""
        return [c for c in self.children if concept.same(c.concept)]

    def first(self, concept: codes.C) -> ContentNode | None:
        found = self.find(concept)
        return found[0] if found else None


@dataclass
class SRDocument:
    path: Path | None
    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    title: Code | None
    completion_flag: str
    verification_flag: str
    content_datetime: str  # DICOM form, YYYYMMDDHHMMSS[.f]
    author_observers: list[str]
    verifiers: list[Verifier]
    predecessors: list[str]
    root: ContentNode
    is_review: bool
    kind: str  # 'sr' | 'kos'
    #: extra header facts for display (no patient identifiers)
    sop_class_name: str = ""
    manufacturer: str = ""
    series_description: str = ""
    specific_character_set: str = ""
    preliminary_flag: str = ""
    #: our reviews: 'second-opinion' | 'preceptorship'
    review_kind: str = ""
    #: instances listed in the evidence sequences
    evidence: list[ImageRef] = field(default_factory=list)
    #: SOP Instance UID of a newer document (in the same listing) that amends this one
    superseded_by: str = ""
    #: identifiers, only for display when the user asked (--show-identifiers)
    patient_name: str = ""
    patient_id: str = ""
    patient_birth_date: str = ""
    other_patient_ids: list[str] = field(default_factory=list)
    #: header elements that were damaged and ignored, one line each
    notes: list[str] = field(default_factory=list)

    def image_refs(self) -> list[ImageRef]:
        """Every IMAGE reference in the tree, in document order, duplicates removed."""
        out: list[ImageRef] = []
        seen: set[tuple[str, tuple[int, ...]]] = set()
        for node in self.root.walk():
            if node.image is not None:
                key = (node.image.sop_instance_uid, tuple(node.image.frames))
                if key not in seen:
                    seen.add(key)
                    out.append(node.image)
        return out

    @property
    def status(self) -> str:
        """Short status for lists: 'signed', 'draft', 'complete (unsigned)' ..."""
        if self.kind == "kos":
            return "key images"
        if self.verification_flag == "VERIFIED":
            return "signed" if self.completion_flag == "COMPLETE" else "verified (partial)"
        return "draft" if self.completion_flag != "COMPLETE" else "complete (unsigned)"

    @property
    def sort_datetime(self) -> str:
        """Verification date-time if signed, else content date-time (DICOM form)."""
        dts = [v.datetime for v in self.verifiers if v.datetime]
        return max(dts) if dts else self.content_datetime


def _get(item, keyword: str):
    """A value of a (possibly damaged) item, or None when absent or not readable: a corrupted
    VR or value in one element must not take the whole document down."""
    return values.get(item, keyword)  # never raises (pydicom's BytesLengthException included)


def _s(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


def _code(seq) -> Code | None:
    """First item of a code sequence as a Code (tolerates missing parts and long code values)."""
    if not seq:
        return None
    try:
        item = seq[0]
    except (IndexError, TypeError):
        return None
    value = _get(item, "CodeValue") or _get(item, "LongCodeValue") or _get(item, "URNCodeValue") or ""
    return Code(_s(value), _s(_get(item, "CodingSchemeDesignator")), _s(_get(item, "CodeMeaning")))


def _frames(item: Dataset) -> list[int]:
    raw = _get(item, "ReferencedFrameNumber")
    if raw is None or raw == "":
        return []
    vals = raw if isinstance(raw, (list, tuple)) or type(raw).__name__ == "MultiValue" else [raw]
    out: list[int] = []
    for v in vals:
        try:
            out.append(int(v))
        except (TypeError, ValueError):
            pass
    return out


def _sop_ref(item: Dataset) -> ImageRef | None:
    seq = _get(item, "ReferencedSOPSequence")
    if not seq:
        return None
    ref = seq[0]
    ps = ""
    inner = _get(ref, "ReferencedSOPSequence")
    if inner:
        ps = _s(_get(inner[0], "ReferencedSOPInstanceUID"))
    return ImageRef(
        _s(_get(ref, "ReferencedSOPClassUID")),
        _s(_get(ref, "ReferencedSOPInstanceUID")),
        _frames(ref),
        ps,
    )


def _num(x: str) -> str:
    try:
        f = float(x)
    except ValueError:
        return x
    return f"{f:g}"


def _points(data, limit: int = 4) -> str:
    try:
        vals = [float(v) for v in (data if hasattr(data, "__iter__") else [data])]
    except (TypeError, ValueError):
        return "?"
    shown = ", ".join(_num(str(v)) for v in vals[:limit])
    return shown + (", ..." if len(vals) > limit else "") + f" [{len(vals)} values]"


def _fill_value(node: ContentNode, item: Dataset) -> None:  # noqa: C901 - one branch per SR value type
    vt = node.value_type
    if vt == "TEXT":
        node.text = _s(_get(item, "TextValue"))
    elif vt == "CODE":
        node.code = _code(_get(item, "ConceptCodeSequence"))
    elif vt == "NUM":
        mv = _get(item, "MeasuredValueSequence")
        if mv:
            m = mv[0]
            raw = _get(m, "NumericValue")
            try:
                node.numeric = float(raw[0] if type(raw).__name__ == "MultiValue" else raw)
            except (TypeError, ValueError, IndexError):
                node.numeric = None
            if "FloatingPointValue" in m:
                try:
                    node.numeric = float(_get(m, "FloatingPointValue"))
                except (TypeError, ValueError):
                    pass
            node.unit = _code(_get(m, "MeasurementUnitsCodeSequence"))
        qual = _code(_get(item, "NumericValueQualifierCodeSequence"))
        if qual is not None:
            node.detail = qual.meaning
        elif node.numeric is None:
            node.detail = "no value"
    elif vt == "DATETIME":
        node.text = _s(_get(item, "DateTime"))
    elif vt == "DATE":
        node.text = _s(_get(item, "Date"))
    elif vt == "TIME":
        node.text = _s(_get(item, "Time"))
    elif vt == "UIDREF":
        node.text = _s(_get(item, "UID"))
    elif vt == "PNAME":
        node.text = _s(_get(item, "PersonName"))
    elif vt == "IMAGE":
        node.image = _sop_ref(item)
    elif vt == "COMPOSITE":
        node.composite = _sop_ref(item)
    elif vt == "WAVEFORM":
        node.composite = _sop_ref(item)
        seq = _get(item, "ReferencedSOPSequence")
        chans = _get(seq[0], "ReferencedWaveformChannels") if seq else None
        node.detail = "channels " + (_s(chans) if chans is not None else "all")
    elif vt in ("SCOORD", "SCOORD3D"):
        gtype = _s(_get(item, "GraphicType"))
        data = _get(item, "GraphicData")
        node.detail = f"{gtype} {_points(data) if data is not None else ''}".strip()
        if vt == "SCOORD3D":
            node.detail += f" frame of reference {_s(_get(item, 'ReferencedFrameOfReferenceUID'))}"
    elif vt == "TCOORD":
        rtype = _s(_get(item, "TemporalRangeType"))
        for kw in ("ReferencedSamplePositions", "ReferencedTimeOffsets", "ReferencedDateTime"):
            if kw in item:
                node.detail = f"{rtype} {kw[10:]}: {_points(_get(item, kw))}"
                break
        else:
            node.detail = rtype
    elif vt == "CONTAINER":
        node.detail = _s(_get(item, "ContinuityOfContent")) or None
        tmpl = _get(item, "ContentTemplateSequence")
        if tmpl:
            node.detail = (node.detail or "") + f" TID {_s(_get(tmpl[0], 'TemplateIdentifier'))}"
    elif vt:
        node.text = f"(value type {vt} not interpreted)"


def _walk(item: Dataset, position: str, relationship: str, depth: int = 0) -> ContentNode:
    if "ReferencedContentItemIdentifier" in item and "ValueType" not in item:
        ident = _get(item, "ReferencedContentItemIdentifier")
        ident = ident if type(ident).__name__ == "MultiValue" or isinstance(ident, list) else [ident]
        node = ContentNode(relationship=relationship, value_type="", position=position)
        node.reference = ".".join(str(int(x)) for x in ident)
        return node
    node = ContentNode(
        relationship=relationship,
        value_type=_s(_get(item, "ValueType")),
        concept=_code(_get(item, "ConceptNameCodeSequence")),
        position=position,
    )
    try:
        _fill_value(node, item)
    except Exception:  # noqa: BLE001 - a foreign item we cannot interpret: keep it, say so
        node.text = f"(this {node.value_type or 'item'} is damaged and cannot be shown)"
    if depth > 64:  # a malicious or broken file: stop, but keep what we have
        node.text = (node.text or "") + " (nesting too deep, rest not shown)"
        return node
    for i, child in enumerate(_get(item, "ContentSequence") or [], 1):
        try:
            node.children.append(_walk(child, f"{position}.{i}", _s(_get(child, "RelationshipType")), depth + 1))
        except Exception:  # noqa: BLE001 - a damaged child is shown as damaged; its siblings still are read
            node.children.append(
                ContentNode("", "", text="(this item is damaged and cannot be shown)", position=f"{position}.{i}")
            )
    return node


def is_sr_dataset(ds: Dataset) -> bool:
    if "ValueType" in ds or "ContentSequence" in ds:
        return True
    return is_sr_class(_s(_get(ds, "SOPClassUID")))


def _verifiers(ds: Dataset) -> list[Verifier]:
    out = []
    for v in _get(ds, "VerifyingObserverSequence") or []:
        name = _s(_get(v, "VerifyingObserverName")) or "(no name)"
        org = _s(_get(v, "VerifyingOrganization")) or "(no organisation)"
        dt = _s(_get(v, "VerificationDateTime"))
        try:
            out.append(Verifier(name, org, dt))
        except ValueError:  # foreign value that our model would refuse: keep it readable
            ver = Verifier.__new__(Verifier)
            ver.name, ver.organization, ver.datetime = name, org, dt
            out.append(ver)
    return out


def _sop_refs_nested(seq) -> list[ImageRef]:
    """Hierarchical SOP references (Study -> Series -> SOP), as in evidence/predecessor sequences."""
    out = []
    for study in seq or []:
        for series in _get(study, "ReferencedSeriesSequence") or []:
            for sop in _get(series, "ReferencedSOPSequence") or []:
                out.append(
                    ImageRef(
                        _s(_get(sop, "ReferencedSOPClassUID")), _s(_get(sop, "ReferencedSOPInstanceUID")), _frames(sop)
                    )
                )
    return out


def _observers(ds: Dataset, root: ContentNode) -> list[str]:
    names: list[str] = []
    for a in _get(ds, "AuthorObserverSequence") or []:
        n = _s(_get(a, "PersonName")) or _s(_get(a, "InstitutionName"))
        if n:
            names.append(n)
    # Only TID 1003 Person Observer Name (121008, DCM): other PNAME items in the
    # observer context, e.g. TID 1006 Subject Name (121029), are the patient.
    for c in root.children:
        if (
            c.relationship == "HAS OBS CONTEXT"
            and c.value_type == "PNAME"
            and c.text
            and c.concept is not None
            and c.concept.value == "121008"
        ):
            names.append(c.text)
    return list(dict.fromkeys(names))


def _read_file(path: Path) -> Dataset:
    """The project's robust reader (raw data sets, truncation, bad meta)."""
    from mdtviewer.dicom.reader import read_dataset

    return read_dataset(path)


def read_sr(path_or_dataset: str | os.PathLike | Dataset) -> SRDocument:
    """Read any SR/KOS file or data set.  Raises NotDicomError / UnsupportedError if it is neither."""
    if isinstance(path_or_dataset, Dataset):
        ds, path = (
            path_or_dataset,
            (
                Path(path_or_dataset.filename)
                if getattr(path_or_dataset, "filename", None) and isinstance(path_or_dataset.filename, str)
                else None
            ),
        )
    else:
        path = Path(path_or_dataset)
        try:
            ds = _read_file(path)
        except DicomInputError as exc:
            raise type(exc)(f"{path.name}: {exc.reason}") from None
        except InvalidDicomError:
            raise NotDicomError(f"{path.name}: not a DICOM file") from None
        except OSError as exc:
            raise MalformedHeaderError(
                f"{path.name}: cannot be read ({exc.strerror or 'input/output error'})"
            ) from None
        except Exception:  # noqa: BLE001 - the reader's own reasons are DicomInputError; anything else is damage
            raise MalformedHeaderError(f"{path.name}: the file's header is damaged and cannot be read") from None
    label = path.name if path else "data set"
    try:
        if not is_sr_dataset(ds):
            raise UnsupportedError(f"{label}: not a structured report or key object selection document")
        root = _walk(ds, "1", "")
    except UnsupportedError:
        raise
    except Exception:  # noqa: BLE001 - damage the walker did not foresee: one reason, no internals
        raise MalformedHeaderError(f"{label}: the structured report's content is damaged and cannot be read") from None
    sop_class = _s(_get(ds, "SOPClassUID"))
    try:
        class_name = pydicom.uid.UID(sop_class).name if sop_class else ""
    except Exception:  # noqa: BLE001 - an unknown or malformed SOP Class UID has no name
        class_name = ""
    review_kind = ""
    type_node = root.first(codes.REVIEW_TYPE)
    if type_node is not None and type_node.code is not None:
        review_kind = codes.lookup(codes.KIND_CODES, type_node.code) or ""
    manufacturer = _s(_get(ds, "Manufacturer"))
    preds = [r.sop_instance_uid for r in _sop_refs_nested(_get(ds, "PredecessorDocumentsSequence"))]
    evidence = _sop_refs_nested(_get(ds, "CurrentRequestedProcedureEvidenceSequence")) + _sop_refs_nested(
        _get(ds, "PertinentOtherEvidenceSequence")
    )
    return SRDocument(
        path=path,
        sop_class_uid=sop_class,
        sop_instance_uid=_s(_get(ds, "SOPInstanceUID")),
        study_instance_uid=_s(_get(ds, "StudyInstanceUID")),
        series_instance_uid=_s(_get(ds, "SeriesInstanceUID")),
        title=root.concept,
        completion_flag=_s(_get(ds, "CompletionFlag")),
        verification_flag=_s(_get(ds, "VerificationFlag")),
        content_datetime=_s(_get(ds, "ContentDate")) + _s(_get(ds, "ContentTime")),
        author_observers=_observers(ds, root),
        verifiers=_verifiers(ds),
        predecessors=preds,
        root=root,
        is_review=bool(review_kind) and manufacturer == MANUFACTURER,
        kind="kos" if sop_class == KOS_SOP_CLASS else "sr",
        sop_class_name=class_name if class_name and class_name != sop_class else "",
        manufacturer=manufacturer,
        series_description=_s(_get(ds, "SeriesDescription")),
        specific_character_set=_s(_get(ds, "SpecificCharacterSet")),
        preliminary_flag=_s(_get(ds, "PreliminaryFlag")),
        review_kind=review_kind,
        evidence=evidence,
        patient_name=_s(_get(ds, "PatientName")),
        patient_id=_s(_get(ds, "PatientID")),
        patient_birth_date=_s(_get(ds, "PatientBirthDate")),
        other_patient_ids=[v for v in _s(_get(ds, "OtherPatientIDs")).split("\\") if v],
        notes=_damaged_header(ds) + _damaged_tree(ds),
    )


def _damaged_tree(ds: Dataset) -> list[str]:
    """What ``check`` says of a damaged content tree (loops, missing Value Types ...), one note each:
    shown with the report, so a finding read out of its context is never taken as sound (HAZ-029)."""
    from mdtviewer.imaging.check import sr_tree_problems

    return [f"the structured report's content is damaged: {p}" for p in sr_tree_problems(ds)]


#: header elements read into an SRDocument (a damaged one is ignored, with a note)
_HEADER_KEYWORDS = (
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "CompletionFlag",
    "VerificationFlag",
    "ContentDate",
    "ContentTime",
    "Manufacturer",
    "SeriesDescription",
    "SpecificCharacterSet",
    "PreliminaryFlag",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "AuthorObserverSequence",
    "VerifyingObserverSequence",
    "PredecessorDocumentsSequence",
    "CurrentRequestedProcedureEvidenceSequence",
    "PertinentOtherEvidenceSequence",
)


def _damaged_header(ds: Dataset) -> list[str]:
    notes = []
    for kw in _HEADER_KEYWORDS:
        tag = pydicom.datadict.tag_for_keyword(kw)
        if tag is None or tag not in ds:
            continue
        try:
            ds[tag].value  # noqa: B018 - converting is the test
        except Exception:  # noqa: BLE001 - whatever pydicom raises for a bad VR or value
            label = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", kw).replace("S O P", "SOP")
            notes.append(f"{label} ({tag >> 16:04X},{tag & 0xFFFF:04X}) is damaged and was ignored")
    return notes


# ------------------------------------------------------------ identifiers
#: observation-context concepts whose value identifies the patient (TID 1006/1007 subject context)
_SUBJECT_CONCEPTS = {
    ("121028", "DCM"),  # Subject UID
    ("121029", "DCM"),  # Subject Name
    ("121030", "DCM"),  # Subject ID
    ("121031", "DCM"),  # Subject Birth Date
    ("121036", "DCM"),  # Mother of fetus
}
_SUBJECT_MEANINGS = re.compile(
    r"\b(subject|patient)('s)?\s+(name|id|identifier|uid|birth\s*date)\b|date\s+of\s+birth|birth\s*date|"
    r"\bmrn\b|\bnhs\s+number\b|hospital\s+number",
    re.IGNORECASE,
)
HIDDEN = "[hidden]"
#: words of placeholder patient names ('Last Name^First Name') that are not identifiers
_PLACEHOLDER_WORDS = {
    "name",
    "first",
    "last",
    "given",
    "family",
    "middle",
    "patient",
    "test",
    "anonymous",
    "anonymized",
    "anonymised",
    "unknown",
    "mr",
    "mrs",
    "ms",
    "dr",
    "miss",
}


def _identifier_patterns(doc: SRDocument) -> list[re.Pattern[str]]:
    """Patterns for the header's patient name parts, IDs and birth date as they may be written in text."""
    pats: list[re.Pattern[str]] = []
    components = [c.strip() for c in re.split(r"[\^=]+", doc.patient_name) if c.strip()]
    words = set(components)
    for c in components:  # each word of a multi-word component too, except placeholder words
        words |= {w for w in re.split(r"[\s,]+", c) if len(w) >= 3 and w.lower() not in _PLACEHOLDER_WORDS}
    for w in words:
        if len(w) >= 3:
            pats.append(re.compile(re.escape(w), re.IGNORECASE))
        elif len(w) == 2:
            pats.append(re.compile(rf"\b{re.escape(w)}\b", re.IGNORECASE))
    for ident in [doc.patient_id, *doc.other_patient_ids]:
        ident = ident.strip()
        if len(ident) >= 3:
            pats.append(re.compile(re.escape(ident), re.IGNORECASE))
    m = re.fullmatch(r"(\d{4})(\d{2})(\d{2})", doc.patient_birth_date.strip())
    if m:
        y, mo, d = m.groups()
        sep = r"[-/. ]?"
        pats.append(re.compile(rf"{y}{sep}{mo}{sep}{d}|{d}{sep}{mo}{sep}{y}|{mo}{sep}{d}{sep}{y}"))
        try:
            import calendar

            month = calendar.month_name[int(mo)]
            pats.append(re.compile(rf"\b0?{int(d)}(st|nd|rd|th)?\s+{month[:3]}[a-z]*\.?,?\s+{y}\b", re.IGNORECASE))
            pats.append(re.compile(rf"\b{month[:3]}[a-z]*\.?\s+0?{int(d)}(st|nd|rd|th)?,?\s+{y}\b", re.IGNORECASE))
        except (ValueError, IndexError):
            pass
    return pats


def redacted(doc: SRDocument) -> SRDocument:
    """A copy of *doc* without patient identifiers, for output nobody asked identifiers in.

    Subject-context items (Subject Name, ID, UID, Birth Date ... in TID 1006/1007, or any item
    whose concept names a patient's name, ID or birth date) keep their concept but lose their
    value; the header's patient name parts, IDs and birth date are replaced by ``[hidden]``
    wherever they appear in free text (text and name items, details, observers, notes), in any case.
    """
    import copy

    out = copy.deepcopy(doc)
    pats = _identifier_patterns(doc)

    def scrub(text: str | None) -> str | None:
        if not text:
            return text
        for p in pats:
            text = p.sub(HIDDEN, text)
        return text

    for node in out.root.walk():
        concept = node.concept
        if concept is not None and (
            (concept.value, concept.scheme) in _SUBJECT_CONCEPTS or _SUBJECT_MEANINGS.search(concept.meaning or "")
        ):
            node.text = HIDDEN if node.text or node.value_type in ("PNAME", "TEXT", "DATE", "UIDREF") else node.text
            if node.code is not None:
                node.code = Code("", "", HIDDEN)
            if node.numeric is not None:
                node.numeric, node.unit, node.detail = None, None, HIDDEN
            continue
        # free text only: concept and code meanings come from coding schemes
        node.text = scrub(node.text)
        node.detail = scrub(node.detail)
    out.author_observers = [scrub(n) or "" for n in out.author_observers]
    out.series_description = scrub(out.series_description) or ""
    out.notes = [scrub(n) or "" for n in out.notes]
    out.patient_name = out.patient_id = out.patient_birth_date = ""
    out.other_patient_ids = []
    return out
