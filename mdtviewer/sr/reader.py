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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from mdtviewer.infra.errors import DicomInputError, MalformedHeaderError, NotDicomError, UnsupportedError
from mdtviewer.sr import codes
from mdtviewer.sr.model import Verifier

KOS_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.88.59"
#: producer name we write into Manufacturer; with the review-type item it marks our reviews
MANUFACTURER = "mdtviewer"

__all__ = ["Code", "ImageRef", "ContentNode", "SRDocument", "Verifier", "read_sr", "is_sr_dataset"]


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
    value = item.get("CodeValue") or item.get("LongCodeValue") or item.get("URNCodeValue") or ""
    return Code(_s(value), _s(item.get("CodingSchemeDesignator")), _s(item.get("CodeMeaning")))


def _frames(item: Dataset) -> list[int]:
    raw = item.get("ReferencedFrameNumber")
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
    seq = item.get("ReferencedSOPSequence")
    if not seq:
        return None
    ref = seq[0]
    ps = ""
    inner = ref.get("ReferencedSOPSequence")
    if inner:
        ps = _s(inner[0].get("ReferencedSOPInstanceUID"))
    return ImageRef(
        _s(ref.get("ReferencedSOPClassUID")),
        _s(ref.get("ReferencedSOPInstanceUID")),
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


def _fill_value(node: ContentNode, item: Dataset) -> None:
    vt = node.value_type
    if vt == "TEXT":
        node.text = _s(item.get("TextValue"))
    elif vt == "CODE":
        node.code = _code(item.get("ConceptCodeSequence"))
    elif vt == "NUM":
        mv = item.get("MeasuredValueSequence")
        if mv:
            m = mv[0]
            raw = m.get("NumericValue")
            try:
                node.numeric = float(raw[0] if type(raw).__name__ == "MultiValue" else raw)
            except (TypeError, ValueError, IndexError):
                node.numeric = None
            if "FloatingPointValue" in m:
                try:
                    node.numeric = float(m.FloatingPointValue)
                except (TypeError, ValueError):
                    pass
            node.unit = _code(m.get("MeasurementUnitsCodeSequence"))
        qual = _code(item.get("NumericValueQualifierCodeSequence"))
        if qual is not None:
            node.detail = qual.meaning
        elif node.numeric is None:
            node.detail = "no value"
    elif vt == "DATETIME":
        node.text = _s(item.get("DateTime"))
    elif vt == "DATE":
        node.text = _s(item.get("Date"))
    elif vt == "TIME":
        node.text = _s(item.get("Time"))
    elif vt == "UIDREF":
        node.text = _s(item.get("UID"))
    elif vt == "PNAME":
        node.text = _s(item.get("PersonName"))
    elif vt == "IMAGE":
        node.image = _sop_ref(item)
    elif vt == "COMPOSITE":
        node.composite = _sop_ref(item)
    elif vt == "WAVEFORM":
        node.composite = _sop_ref(item)
        seq = item.get("ReferencedSOPSequence")
        chans = seq[0].get("ReferencedWaveformChannels") if seq else None
        node.detail = "channels " + (_s(chans) if chans is not None else "all")
    elif vt in ("SCOORD", "SCOORD3D"):
        gtype = _s(item.get("GraphicType"))
        data = item.get("GraphicData")
        node.detail = f"{gtype} {_points(data) if data is not None else ''}".strip()
        if vt == "SCOORD3D":
            node.detail += f" frame of reference {_s(item.get('ReferencedFrameOfReferenceUID'))}"
    elif vt == "TCOORD":
        rtype = _s(item.get("TemporalRangeType"))
        for kw in ("ReferencedSamplePositions", "ReferencedTimeOffsets", "ReferencedDateTime"):
            if kw in item:
                node.detail = f"{rtype} {kw[10:]}: {_points(item.get(kw))}"
                break
        else:
            node.detail = rtype
    elif vt == "CONTAINER":
        node.detail = _s(item.get("ContinuityOfContent")) or None
        tmpl = item.get("ContentTemplateSequence")
        if tmpl:
            node.detail = (node.detail or "") + f" TID {_s(tmpl[0].get('TemplateIdentifier'))}"
    elif vt:
        node.text = f"(value type {vt} not interpreted)"


def _walk(item: Dataset, position: str, relationship: str, depth: int = 0) -> ContentNode:
    if "ReferencedContentItemIdentifier" in item and "ValueType" not in item:
        ident = item.ReferencedContentItemIdentifier
        ident = ident if type(ident).__name__ == "MultiValue" or isinstance(ident, list) else [ident]
        node = ContentNode(relationship=relationship, value_type="", position=position)
        node.reference = ".".join(str(int(x)) for x in ident)
        return node
    node = ContentNode(
        relationship=relationship,
        value_type=_s(item.get("ValueType")),
        concept=_code(item.get("ConceptNameCodeSequence")),
        position=position,
    )
    try:
        _fill_value(node, item)
    except Exception as exc:  # a foreign item we cannot interpret: keep it, say so
        node.text = f"(unreadable {node.value_type or 'item'}: {type(exc).__name__})"
    if depth > 64:  # a malicious or broken file: stop, but keep what we have
        node.text = (node.text or "") + " (nesting too deep, rest not shown)"
        return node
    for i, child in enumerate(item.get("ContentSequence") or [], 1):
        try:
            node.children.append(_walk(child, f"{position}.{i}", _s(child.get("RelationshipType")), depth + 1))
        except Exception as exc:
            node.children.append(
                ContentNode("", "", text=f"(unreadable item: {type(exc).__name__})", position=f"{position}.{i}")
            )
    return node


def is_sr_dataset(ds: Dataset) -> bool:
    if "ValueType" in ds or "ContentSequence" in ds:
        return True
    return _s(ds.get("SOPClassUID")).startswith("1.2.840.10008.5.1.4.1.1.88.")


def _verifiers(ds: Dataset) -> list[Verifier]:
    out = []
    for v in ds.get("VerifyingObserverSequence") or []:
        name = _s(v.get("VerifyingObserverName")) or "(no name)"
        org = _s(v.get("VerifyingOrganization")) or "(no organisation)"
        dt = _s(v.get("VerificationDateTime"))
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
        for series in study.get("ReferencedSeriesSequence") or []:
            for sop in series.get("ReferencedSOPSequence") or []:
                out.append(
                    ImageRef(
                        _s(sop.get("ReferencedSOPClassUID")), _s(sop.get("ReferencedSOPInstanceUID")), _frames(sop)
                    )
                )
    return out


def _observers(ds: Dataset, root: ContentNode) -> list[str]:
    names: list[str] = []
    for a in ds.get("AuthorObserverSequence") or []:
        n = _s(a.get("PersonName")) or _s(a.get("InstitutionName"))
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
    """The project's robust reader (raw data sets, truncation, bad meta) when present."""
    try:
        from mdtviewer.dicom.reader import read_dataset
    except ImportError:  # pragma: no cover - reading is part of the foundation
        return pydicom.dcmread(path, force=True)
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
        except InvalidDicomError as exc:
            raise NotDicomError(f"{path.name}: not a DICOM file ({exc})") from None
        except (OSError, EOFError) as exc:
            raise MalformedHeaderError(f"{path.name}: cannot be read ({type(exc).__name__}: {exc})") from None
        except Exception as exc:
            raise MalformedHeaderError(f"{path.name}: header cannot be parsed ({type(exc).__name__})") from None
    label = path.name if path else "data set"
    try:
        if not is_sr_dataset(ds):
            raise UnsupportedError(f"{label}: not a structured report or key object selection document")
        root = _walk(ds, "1", "")
    except UnsupportedError:
        raise
    except Exception as exc:
        raise MalformedHeaderError(f"{label}: structured report cannot be parsed ({type(exc).__name__})") from None
    sop_class = _s(ds.get("SOPClassUID"))
    try:
        class_name = pydicom.uid.UID(sop_class).name if sop_class else ""
    except Exception:
        class_name = ""
    review_kind = ""
    type_node = root.first(codes.REVIEW_TYPE)
    if type_node is not None and type_node.code is not None:
        review_kind = codes.lookup(codes.KIND_CODES, type_node.code) or ""
    manufacturer = _s(ds.get("Manufacturer"))
    preds = [r.sop_instance_uid for r in _sop_refs_nested(ds.get("PredecessorDocumentsSequence"))]
    evidence = _sop_refs_nested(ds.get("CurrentRequestedProcedureEvidenceSequence")) + _sop_refs_nested(
        ds.get("PertinentOtherEvidenceSequence")
    )
    return SRDocument(
        path=path,
        sop_class_uid=sop_class,
        sop_instance_uid=_s(ds.get("SOPInstanceUID")),
        study_instance_uid=_s(ds.get("StudyInstanceUID")),
        series_instance_uid=_s(ds.get("SeriesInstanceUID")),
        title=root.concept,
        completion_flag=_s(ds.get("CompletionFlag")),
        verification_flag=_s(ds.get("VerificationFlag")),
        content_datetime=_s(ds.get("ContentDate")) + _s(ds.get("ContentTime")),
        author_observers=_observers(ds, root),
        verifiers=_verifiers(ds),
        predecessors=preds,
        root=root,
        is_review=bool(review_kind) and manufacturer == MANUFACTURER,
        kind="kos" if sop_class == KOS_SOP_CLASS else "sr",
        sop_class_name=class_name if class_name and class_name != sop_class else "",
        manufacturer=manufacturer,
        series_description=_s(ds.get("SeriesDescription")),
        specific_character_set=_s(ds.get("SpecificCharacterSet")),
        preliminary_flag=_s(ds.get("PreliminaryFlag")),
        review_kind=review_kind,
        evidence=evidence,
        patient_name=_s(ds.get("PatientName")),
        patient_id=_s(ds.get("PatientID")),
    )
