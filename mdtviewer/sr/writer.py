"""Build a review as a DICOM Comprehensive SR (TID 2000 pattern); :mod:`mdtviewer.sr.review_reader` reads it back.

Tree written (codes in :mod:`mdtviewer.sr.codes`)::

    CONTAINER "Diagnostic Imaging Report" (LN 18748-4), SEPARATE
      HAS OBS CONTEXT  observer context (TID 1002) of the author, then of the trainee
      CONTAINS CODE    Review type = Second opinion | Preceptorship assessment
      CONTAINS CONTAINER Findings (LN 59776-5)
        CONTAINS TEXT  Acquisition Protocol = protocol id
        CONTAINS CONTAINER Protocol views
          CONTAINS CODE <view> = Present | Absent   -- INFERRED FROM IMAGE (frame)
        CONTAINS CODE  Image Quality = good | adequate | poor
                         INFERRED FROM IMAGE (frame); HAS PROPERTIES TEXT Reason
        CONTAINS TEXT  Comment                     -- INFERRED FROM IMAGE (frame)
      CONTAINS CONTAINER Key Images (LN 55113-5): CONTAINS IMAGE (frame)
      CONTAINS CONTAINER Conclusions (LN 55110-1)
        CONTAINS CODE  Agreement with original report -- HAS PROPERTIES TEXT Reason
        CONTAINS CODE  Peer review score (RADPEER-style 1 | 2a | 2b | 3a | 3b)
        CONTAINS TEXT  Author of the reviewed report
        CONTAINS CODE  MDT outcome
        CONTAINS CODE  Preceptorship outcome
        CONTAINS TEXT  Summary

The document is not declared as TID 2000 (no Content Template Sequence)
because it carries private concepts; it follows TID 2000's structure and
relationship rules.  highdicom does not check relationship constraints, so
the tests run DCMTK ``dsrdump`` and ``dciodvfy`` on what this writes.

Frame numbers are written only for multi-frame instances; "frame 1" of a
single-frame image is the image itself (it reads back as ``None``).

Header: same study as the reviewed images, a new series, patient/study modules
copied from the reviewed study, Specific Character Set ISO_IR 192 (UTF-8),
every referenced instance in the Current Requested Procedure Evidence
Sequence.  Draft: PARTIAL / UNVERIFIED / PRELIMINARY; signed: COMPLETE /
VERIFIED / FINAL with the Verifying Observer Sequence.
"""

from __future__ import annotations

import copy
import datetime as _dt
import os
import re
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from pydicom.dataset import Dataset

from mdtviewer.dicom import values
from mdtviewer.dicom.reader import read_dataset
from mdtviewer.infra.errors import DicomInputError
from mdtviewer.infra.lazymodule import LazyModule
from mdtviewer.sr import codes
from mdtviewer.sr.model import (
    Person,
    Review,
    ReviewError,
    person_key,
)
from mdtviewer.sr.reader import MANUFACTURER

if TYPE_CHECKING:
    import highdicom as hd
else:
    hd = LazyModule("highdicom")  # imported on first use: ~0.5 s of start-up otherwise (issue 12.5)

SERIES_NUMBER = 990
CHARSET = "ISO_IR 192"

#: attributes highdicom reads from the first evidence data set without a default
_PATIENT_STUDY_ATTRS = (
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
)


def _cc(c: codes.C) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(value=c.value, scheme_designator=c.scheme, meaning=c.meaning)


def _as_dataset(item) -> Dataset:
    """Evidence may be a Dataset, an mdtviewer Instance (has .path) or a path."""
    if isinstance(item, Dataset):
        return item
    path = getattr(item, "path", item)
    if isinstance(path, (str, os.PathLike)):
        try:
            return read_dataset(path, stop_before_pixels=True)
        except (DicomInputError, OSError) as exc:
            why = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or type(exc).__name__
            raise ReviewError(f"{Path(path).name}: cannot read evidence header ({why})") from None
    raise ReviewError(f"evidence must be a data set, an Instance or a path, not {type(item).__name__}")


def _frame_count(ds: Dataset) -> int:
    return max(1, values.integer(ds, "NumberOfFrames", 1) or 1)


def _image_item(
    ref_uid: str, frame: int | list[int] | None, by_uid: dict[str, Dataset], name: codes.C, relationship: str
) -> hd.sr.ImageContentItem:
    """An IMAGE item referencing *frame* (one number, several, or None for the whole image)."""
    ds = by_uid.get(ref_uid)
    if ds is None:
        raise ReviewError(f"image {ref_uid} is not among the reviewed study's instances given as evidence")
    frames = [] if frame is None else ([frame] if isinstance(frame, int) else list(frame))
    if frames:
        n = _frame_count(ds)
        for f in frames:
            if f > n:
                raise ReviewError(f"image {ref_uid} has {n} frame(s); frame {f} does not exist")
        if "NumberOfFrames" not in ds:
            # a single-frame image: DICOM forbids Referenced Frame Number here
            # (dciodvfy: "Shall not be present ... not multi-frame"); frame 1 is the image
            frames = []
    return hd.sr.ImageContentItem(
        name=_cc(name),
        referenced_sop_class_uid=str(ds.SOPClassUID),
        referenced_sop_instance_uid=ref_uid,
        referenced_frame_numbers=frames or None,
        relationship_type=relationship,
    )


class _OnAFrame(Protocol):
    @property
    def frame(self) -> int | None: ...


_F = TypeVar("_F", bound=_OnAFrame)


def _same_finding_on_several_frames(
    items: list[_F], key: Callable[[_F], object]
) -> list[tuple[_F, int | list[int] | None]]:
    """Adjacent per-frame items saying the same thing about the same image, as one item
    with all their frames: a comment or rating given for frames 3 and 4 is written
    once, with one IMAGE item referencing both frames, not repeated per frame (the
    reader gives back one per frame, so the review model is unchanged)."""
    out: list[tuple[_F, int | list[int] | None]] = []
    for it in items:
        if out and it.frame is not None:
            prev, frames = out[-1]
            if isinstance(frames, list) and key(prev) == key(it) and it.frame not in frames:
                frames.append(it.frame)
                continue
        out.append((it, [it.frame] if it.frame is not None else None))
    return out


def _text(name: codes.C, value: str, relationship: str) -> hd.sr.TextContentItem:
    return hd.sr.TextContentItem(name=_cc(name), value=value, relationship_type=relationship)


def _code(name: codes.C, value: codes.C, relationship: str) -> hd.sr.CodeContentItem:
    return hd.sr.CodeContentItem(name=_cc(name), value=_cc(value), relationship_type=relationship)


def _container(name: codes.C, children: list, relationship: str | None = "CONTAINS") -> hd.sr.ContainerContentItem:
    item = hd.sr.ContainerContentItem(name=_cc(name), is_content_continuous=False, relationship_type=relationship)
    if children:
        item.ContentSequence = _seq(children)
    return item


def _seq(items: list) -> hd.sr.ContentSequence:
    """Children of a content item (what highdicom would make of the plain list anyway)."""
    return hd.sr.ContentSequence(items)


def _observer(person: Person) -> list:
    org_role, proc_role = codes.ROLE_CODES[person.role]
    attrs = hd.sr.PersonObserverIdentifyingAttributes(
        name=person.name,
        organization_name=person.organization or None,
        role_in_organization=_cc(org_role),
        role_in_procedure=_cc(proc_role),
    )
    return list(hd.sr.ObserverContext(observer_type=_cc(codes.PERSON), observer_identifying_attributes=attrs))


def _same_person(a: Person, b: Person) -> bool:
    return (" ".join(a.name.split()).casefold(), a.role, a.organization.strip().casefold()) == (
        " ".join(b.name.split()).casefold(), b.role, b.organization.strip().casefold())


def _signer_observer(review: Review) -> Person | None:
    """The signer as a person observer, when the review is signed in a known role and no observer
    already is that person in that role (a trainer signing their own record is its author)."""
    v = review.verifier
    if v is None or not v.role:
        return None
    key = person_key(v.name)
    for p in (review.author, review.trainee):
        if p is not None and p.role == v.role and person_key(p.name) == key:
            return None
    return Person(v.name, v.role, v.organization)


def _view_labels(review: Review) -> dict[str, str]:
    if not review.protocol:
        return {}
    from mdtviewer.sr.protocols import get_protocol

    proto = get_protocol(review.protocol)
    labels = {v.id: v.label for v in proto.views}
    for v in review.views:
        if v.view_id not in labels:
            raise ReviewError(f"view {v.view_id} is not part of protocol {review.protocol}")
    return labels


def build_content(review: Review, by_uid: dict[str, Dataset]) -> hd.sr.ContainerContentItem:
    """The content tree of *review* (see module docstring)."""
    children: list = []
    children += _observer(review.author)
    if review.trainee is not None and not _same_person(review.trainee, review.author):
        # a trainee writing their own record is its author and its trainee: one observer (QA 8)
        children += _observer(review.trainee)
    signer = _signer_observer(review)
    if signer is not None:
        # the signer with the role they signed in (reviewer profile), so a reader can check who may sign what
        children += _observer(signer)
    children.append(_code(codes.REVIEW_TYPE, codes.KIND_CODES[review.kind], "CONTAINS"))

    findings: list = []
    if review.protocol:
        findings.append(_text(codes.ACQ_PROTOCOL, review.protocol, "CONTAINS"))
    labels = _view_labels(review)
    if review.views:
        view_items = []
        for v in review.views:
            item = _code(
                codes.view_code(v.view_id, labels.get(v.view_id, v.view_id)),
                codes.PRESENT if v.present else codes.ABSENT,
                "CONTAINS",
            )
            if v.present and v.sop_instance_uid:
                item.ContentSequence = _seq(
                    [_image_item(v.sop_instance_uid, v.frame, by_uid, codes.SOURCE_IMAGE, "INFERRED FROM")]
                )
            view_items.append(item)
        findings.append(_container(codes.PROTOCOL_VIEWS, view_items))
    for r, frames in _same_finding_on_several_frames(
        review.image_ratings, lambda r: (r.sop_instance_uid, r.quality, r.reason)
    ):
        item = _code(codes.IMAGE_QUALITY, codes.QUALITY_CODES[r.quality], "CONTAINS")
        sub: list[hd.sr.ContentItem] = [
            _image_item(r.sop_instance_uid, frames, by_uid, codes.SOURCE_IMAGE, "INFERRED FROM")
        ]
        if r.reason:
            sub.append(_text(codes.REASON, r.reason, "HAS PROPERTIES"))
        item.ContentSequence = _seq(sub)
        findings.append(item)
    for c, frames in _same_finding_on_several_frames(review.comments, lambda c: (c.sop_instance_uid, c.text)):
        note = _text(codes.COMMENT, c.text, "CONTAINS")
        image = _image_item(c.sop_instance_uid, frames, by_uid, codes.SOURCE_IMAGE, "INFERRED FROM")
        note.ContentSequence = _seq([image])
        findings.append(note)
    if findings:
        children.append(_container(codes.FINDINGS, findings))

    if review.key_images:
        children.append(
            _container(
                codes.KEY_IMAGES,
                [
                    _image_item(k.sop_instance_uid, k.frame, by_uid, codes.KEY_IMAGE, "CONTAINS")
                    for k in review.key_images
                ],
            )
        )

    conclusions: list = []
    if review.agreement is not None:
        item = _code(codes.AGREEMENT, codes.AGREEMENT_CODES[review.agreement], "CONTAINS")
        if review.agreement_reason:
            item.ContentSequence = _seq([_text(codes.REASON, review.agreement_reason, "HAS PROPERTIES")])
        conclusions.append(item)
    if review.peer_review_score is not None:
        conclusions.append(_code(codes.PEER_SCORE, codes.PEER_SCORE_CODES[review.peer_review_score], "CONTAINS"))
    if review.graded_report_uid:
        graded = by_uid.get(review.graded_report_uid)
        if graded is None:
            raise ReviewError("the report this second opinion grades is not among the evidence files")
        conclusions.append(
            hd.sr.CompositeContentItem(
                name=_cc(codes.GRADED_REPORT),
                referenced_sop_class_uid=str(graded.SOPClassUID),
                referenced_sop_instance_uid=review.graded_report_uid,
                relationship_type="CONTAINS",
            )
        )
    if review.no_report_graded:
        conclusions.append(_text(codes.NO_GRADED_REPORT, codes.NO_GRADED_REPORT_TEXT, "CONTAINS"))
    if review.reporter:
        conclusions.append(_text(codes.REPORTER, review.reporter, "CONTAINS"))
    if review.mdt_outcome is not None:
        conclusions.append(_code(codes.MDT_OUTCOME, codes.MDT_OUTCOME_CODES[review.mdt_outcome], "CONTAINS"))
    if review.outcome is not None:
        conclusions.append(_code(codes.OUTCOME, codes.OUTCOME_CODES[review.outcome], "CONTAINS"))
    if review.summary:
        conclusions.append(_text(codes.SUMMARY, review.summary, "CONTAINS"))
    if conclusions:
        children.append(_container(codes.CONCLUSIONS, conclusions))

    root = hd.sr.ContainerContentItem(name=_cc(codes.TITLE), is_content_continuous=False)
    root.ContentSequence = _seq(children)
    return root


def _patient_source(evidence: list[Dataset], study_uid: str) -> Dataset:
    # an image of the study first: a report in the evidence (a graded SR or PDF) may come from elsewhere
    evidence = sorted(evidence, key=lambda ds: "Rows" not in ds)
    for ds in evidence:
        if values.text(ds, "StudyInstanceUID") == study_uid:
            src = copy.copy(ds)
            for kw in _PATIENT_STUDY_ATTRS:
                if kw not in src or src.get(kw) is None:
                    setattr(src, kw, "")
            return src
    raise ReviewError("none of the evidence belongs to the reviewed study; give the reviewed study's instances")


def build_review_sr(
    review: Review,
    evidence: Iterable,
    predecessor: Dataset | str | os.PathLike | None = None,
    *,
    sop_instance_uid: str | None = None,
    series_instance_uid: str | None = None,
) -> Dataset:
    """A Comprehensive SR data set for *review*.

    *evidence*: the reviewed study's instances (pydicom Datasets, mdtviewer
    ``Instance`` objects or paths); every image the review references must be
    among them.  *predecessor*: the document this one amends (data set or
    path); required when ``review.predecessor_sop_instance_uid`` is set.
    Raises ValueError with a one-line reason; nothing is written here.
    """
    review.validate()
    ev = [_as_dataset(e) for e in evidence]
    by_uid: dict[str, Dataset] = {}
    for ds in ev:
        uid = values.text(ds, "SOPInstanceUID")
        if not all(ds.get(kw) for kw in ("SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID")):
            continue  # cannot be referenced or listed as evidence
        if uid and uid not in by_uid:
            by_uid[uid] = ds
    src = _patient_source(list(by_uid.values()), review.study_instance_uid)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*person name.*", category=UserWarning)
        try:
            content = build_content(review, by_uid)
        except (TypeError, AttributeError) as exc:  # highdicom refusing a value: keep it one line
            raise ReviewError(f"cannot build the report: {' '.join(str(exc).split())}") from None
    refs = review.referenced_uids()
    used = [src] + [by_uid[u] for u in refs if by_uid[u] is not src and u != str(src.SOPInstanceUID)]

    pred_ds = None
    if predecessor is not None:
        pred_ds = _as_dataset(predecessor)
        if review.predecessor_sop_instance_uid and str(pred_ds.SOPInstanceUID) != review.predecessor_sop_instance_uid:
            raise ReviewError("the predecessor document given is not the one the review names")
    elif review.predecessor_sop_instance_uid:
        raise ReviewError("an amendment needs its predecessor document (file or data set)")

    verifier = review.verifier
    signed = verifier is not None
    kind_label = "second opinion" if review.kind == "second-opinion" else "preceptorship"
    from mdtviewer import __version__

    with warnings.catch_warnings():
        # highdicom warns about single-component person names ("Łukasz Żółć"):
        # people type names that way; DICOM allows it.
        warnings.filterwarnings("ignore", message=".*person name.*", category=UserWarning)
        sr = _comprehensive_sr(
            evidence=used,
            content=content,
            series_instance_uid=series_instance_uid or hd.UID(),
            series_number=SERIES_NUMBER,
            sop_instance_uid=sop_instance_uid or hd.UID(),
            instance_number=1,
            manufacturer=MANUFACTURER,
            manufacturer_model_name="mdtviewer",
            software_versions=str(__version__),
            series_description=f"Review ({kind_label})",
            is_complete=signed,
            is_final=signed,
            is_verified=signed,
            verifying_observer_name=verifier.name if verifier is not None else None,
            verifying_organization=verifier.organization if verifier is not None else None,
            previous_versions=[pred_ds] if pred_ds is not None else None,
            specific_character_set=CHARSET,
            coding_schemes=[
                hd.coding_schemes.CodingSchemeIdentificationItem(
                    designator=codes.PRIVATE_SCHEME,
                    name=codes.PRIVATE_SCHEME_NAME,
                    responsible_organization=codes.PRIVATE_SCHEME_ORG,
                ),
                hd.coding_schemes.CodingSchemeIdentificationItem(
                    designator=codes.VIEW_SCHEME,
                    name=codes.VIEW_SCHEME_NAME[:64],
                    responsible_organization=codes.PRIVATE_SCHEME_ORG,
                ),
            ],
        )
    sr.SpecificCharacterSet = CHARSET  # highdicom may not set it; non-ASCII text needs it
    # one clock reading for the content date-time and, when none is given, the verification date-time
    now = _dt.datetime.now().astimezone().replace(microsecond=0)
    content_at = now
    if verifier is not None:
        verified, content_at = _signing_times(verifier.datetime, now, src, pred_ds)
    _set_content_datetime(sr, content_at)
    if verifier is not None:
        item = sr.VerifyingObserverSequence[0]
        item.VerificationDateTime = verified
        if verifier.registration.strip():
            # who signed, by professional registration (HCPC, RCCP...): a local code of the signer
            reg = Dataset()
            reg.CodeValue = verifier.registration.strip()[:16]
            reg.CodingSchemeDesignator = "99MDTREG"
            reg.CodeMeaning = f"Professional registration {verifier.registration.strip()}"[:64]
            item.VerifyingObserverIdentificationCodeSequence = [reg]
    return sr


def _parse_dt(dt: str) -> _dt.datetime | None:
    """A DICOM DT (YYYYMMDD[HHMMSS[.ffffff]][+hhmm]) as an aware date-time; no offset: this machine's local time."""
    m = re.fullmatch(r"(\d{8}(?:\d{2}){0,3})(\.\d{1,6})?([+-]\d{4})?", (dt or "").strip())
    if m is None:
        return None
    try:
        base = _dt.datetime.strptime(m.group(1).ljust(14, "0"), "%Y%m%d%H%M%S")
        if m.group(2):
            base = base.replace(microsecond=int(m.group(2)[1:].ljust(6, "0")))
        if m.group(3):
            return base.replace(tzinfo=_dt.datetime.strptime(m.group(3), "%z").tzinfo)
    except ValueError:
        return None
    return base.astimezone()


def _signing_times(
    given: str, now: _dt.datetime, study: Dataset, predecessor: Dataset | None
) -> tuple[str, _dt.datetime]:
    """(Verification Date/Time to write, Content Date/Time to write) for a signed document.

    The rule (QA 7, HAZ-009): the verification is never earlier than the content, compared at full precision.
    * no time given: both are the same clock reading, *now* (whole seconds);
    * a time given that is not earlier than *now*: kept as given; the content is *now*;
    * a time given that is earlier than *now* (the signer was asked, and the time taken, before the document
      was built; or a sign-off recorded later): kept as given, and the content date-time is that moment too -
      the content was complete when it was signed.  Refused (ReviewError with the reason) when that moment
      is before the reviewed study's date or before the content of the document it amends: nobody signs a
      review of a study not yet done, nor an amendment of a report not yet written.
    """
    if not given:
        return now.strftime("%Y%m%d%H%M%S%z"), now
    v = _parse_dt(given)
    if v is None or v >= now:
        return given, now
    study_date = values.text(study, "StudyDate")
    if re.fullmatch(r"\d{8}", study_date) and v.astimezone().strftime("%Y%m%d") < study_date:
        raise ReviewError(
            f"verification date-time {given} is before the reviewed study ({study_date}):"
            " give the time the review was signed, or none to sign now"
        )
    if predecessor is not None:
        p = _parse_dt(values.text(predecessor, "ContentDate") + values.text(predecessor, "ContentTime")
                      + values.text(predecessor, "TimezoneOffsetFromUTC"))
        if p is not None and v < p:
            raise ReviewError(
                f"verification date-time {given} is before the content of the document it amends"
                f" ({p.strftime('%Y%m%d%H%M%S%z')}): give a later time, or none to sign now"
            )
    return given, v


def _set_content_datetime(sr: Dataset, at: _dt.datetime) -> None:
    """Content Date/Time (whole seconds) in the form highdicom writes it: local, with the offset if it has one."""
    local = at.astimezone()
    sr.ContentDate = local.strftime("%Y%m%d")
    sr.ContentTime = local.strftime("%H%M%S")
    if "TimezoneOffsetFromUTC" in sr:
        sr.TimezoneOffsetFromUTC = local.strftime("%z")


def _comprehensive_sr(**kw) -> Dataset:
    try:
        return hd.sr.ComprehensiveSR(**kw)
    except (ValueError, TypeError, AttributeError) as exc:
        raise ReviewError(f"cannot build the report: {' '.join(str(exc).split())}") from None
