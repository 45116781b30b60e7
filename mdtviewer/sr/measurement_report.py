"""Measurements that last: a TID 1500 Measurement Report, written with highdicom.

Why a TID 1500 document of its own, not measurement groups inside the review SR
-------------------------------------------------------------------------------
* TID 1500 "Imaging Measurement Report" is what other viewers read back as
  measurements (OHIF/dcmjs, 3D Slicer, highdicom's own parser): the values
  stay usable outside mdtviewer.  Groups inside our private-coded review tree
  would be seen by other software only as an unknown document.
* Measurements and a review have different lives: a sonographer's PSV is data,
  a second opinion or a preceptorship outcome is a signed judgement.
  Correcting one caliper must not re-sign (or amend) a review, and a review
  must be possible without measurements.  Each is its own document in the
  same study, and each is amended on its own.
* highdicom builds TID 1500 from typed templates and checks them as it
  builds, so a document that constructs is structurally valid; the tests
  also run DCMTK ``dsrdump`` and ``dciodvfy`` on it.

Tree written::

    CONTAINER Imaging Measurement Report (126000, DCM)          TID 1500
      HAS CONCEPT MOD Language; HAS OBS CONTEXT observer (TID 1002)
      HAS CONCEPT MOD Procedure reported = Ultrasonography (310169008, SCT)
      CONTAINS CONTAINER Imaging Measurements (126010, DCM)
        CONTAINS CONTAINER Measurement Group (125007, DCM)        TID 1501, one per measurement
          HAS OBS CONTEXT Tracking Identifier (TEXT) + Tracking Unique Identifier (UIDREF)
          HAS CONCEPT MOD Finding Site = vessel (SNOMED CT)
            HAS CONCEPT MOD Laterality = Right | Left
          CONTAINS NUM <concept> = value UCUM unit                  TID 300
            INFERRED FROM SCOORD (Source) POINT | POLYLINE | ELLIPSE  on
              SELECTED FROM IMAGE <source image> [frame]
          CONTAINS NUM ... (a traced PI also carries PSV, EDV, TAMAX and RI,
                            each INFERRED FROM its source IMAGE)

SCOORD Graphic Data is in DICOM image coordinates, where the top-left corner
of the top-left pixel is 0.0\\0.0 (PS3.3 C.18.6.1.2): the centre of pixel
(column c, row r) as numpy indexes it is (c + 0.5, r + 0.5).  Areas are
written as closed POLYLINEs (first point repeated last; SCOORD has no
POLYGON), ellipses as the four ends of their axes, an RI as the MULTIPOINT
of its two calipers.  Frame numbers are written for multi-frame images only
(DICOM forbids them on a single-frame image).

Concept codes (checked against PS3.16 as shipped in pydicom's concept
dictionary, CID 12119 Vascular Ultrasound Property, CID 12123 Carotid Ratios,
CID 7470 Linear Measurements, CID 12304 Echo Measured Property):

====================  ===========================================
distance              (121206, DCM, "Distance")
length                (121211, DCM, "Path length")
area                  (42798000, SCT, "Area")
angle                 (1483009, SCT, "Angle")
velocity              (110828, DCM, "Flow Velocity")
psv                   (11726-7, LN, "Peak Systolic Velocity")
edv                   (11653-3, LN, "End Diastolic Velocity")
tamax                 (11692-1, LN, "Time averaged peak velocity")
ri                    (12023-8, LN, "Resistivity Index")
pi                    (12008-9, LN, "Pulsatility Index")
time                  (385673002, SCT, "Interval")
acceleration-time     (20168-1, LN, "Acceleration Time")
ratio                 (33868-1, LN, "ICA/CCA velocity ratio") for ICA PSV / CCA PSV;
                      (33867-3, LN, "Velocity ratio") for other velocity ratios;
                      (118586006, SCT, "Ratio") otherwise
====================  ===========================================

(LOINC's check digits: resistivity index is 12023-8 and pulsatility index
12008-9, not "12023-9" / "12008-0".)  Units are UCUM: mm, mm2, deg, cm/s,
ms and 1.  Vessels are SNOMED CT body structures (:data:`SITES`).

Annotations (arrows and text, issue 15.1) -- our documented choice
--------------------------------------------------------------------
An arrow or a text label is not a measurement, but TID 1500 carries image
regions without values: each annotation is a TID 1410 "Planar ROI
Measurements and Qualitative Evaluations" group in the same Imaging
Measurements container, with no NUM::

    CONTAINS CONTAINER Measurement Group (125007, DCM)          TID 1410, one per annotation
      HAS OBS CONTEXT Tracking Identifier "Annotation N: arrow" | "Annotation N: text" + Tracking UID
      CONTAINS SCOORD Image Region (111030, DCM)  POLYLINE [tail, head] (arrow) | POINT (text anchor)
        SELECTED FROM IMAGE <source image> [frame]
      CONTAINS TEXT Comment (121106, DCM) = the words (always for text, optional for an arrow)

Read back (:mod:`mdtviewer.sr.measurement_read`): a group with an Image
Region and no NUM is an annotation; a two-point POLYLINE is an arrow whose
head is the second point, a POINT a text label.  Other viewers show it as a
region with a comment (highdicom, OHIF: an ROI with a finding text).

Amendments: :func:`build_measurement_report` with *predecessor* writes a new
document naming the old one in the Predecessor Documents Sequence; the old
file is never touched (saving is :mod:`mdtviewer.workflows.measurement_files`).
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from pydicom.dataset import Dataset

from mdtviewer.dicom import values
from mdtviewer.infra.errors import MdtError
from mdtviewer.infra.lazymodule import LazyModule
from mdtviewer.sr import codes
from mdtviewer.sr.reader import MANUFACTURER

if TYPE_CHECKING:
    import highdicom as hd
else:
    hd = LazyModule("highdicom")  # imported on first use: ~0.5 s of start-up otherwise (issue 12.5)

SERIES_NUMBER = 991
CHARSET = "ISO_IR 192"
TITLE = codes.C("126000", "DCM", "Imaging Measurement Report")
PROCEDURE = codes.C("310169008", "SCT", "Ultrasonography")


class MeasurementReportError(MdtError, ValueError):
    """A measurement report cannot be built; ``reason`` says why."""


#: concept of each kind of measurement
CONCEPTS: dict[str, codes.C] = {
    "distance": codes.C("121206", "DCM", "Distance"),
    "length": codes.C("121211", "DCM", "Path length"),
    "area": codes.C("42798000", "SCT", "Area"),
    "angle": codes.C("1483009", "SCT", "Angle"),
    "velocity": codes.C("110828", "DCM", "Flow Velocity"),
    "psv": codes.C("11726-7", "LN", "Peak Systolic Velocity"),
    "edv": codes.C("11653-3", "LN", "End Diastolic Velocity"),
    "tamax": codes.C("11692-1", "LN", "Time averaged peak velocity"),
    "ri": codes.C("12023-8", "LN", "Resistivity Index"),
    "pi": codes.C("12008-9", "LN", "Pulsatility Index"),
    "time": codes.C("385673002", "SCT", "Interval"),
    "acceleration-time": codes.C("20168-1", "LN", "Acceleration Time"),
    "ratio": codes.C("118586006", "SCT", "Ratio"),
}
ICA_CCA_RATIO = codes.C("33868-1", "LN", "ICA/CCA velocity ratio")
VELOCITY_RATIO = codes.C("33867-3", "LN", "Velocity ratio")
#: concept -> kind, for reading back (the ratio concepts all read as 'ratio')
KIND_OF: dict[tuple[str, str], str] = {(c.value, c.scheme): k for k, c in CONCEPTS.items()}
KIND_OF[(ICA_CCA_RATIO.value, ICA_CCA_RATIO.scheme)] = "ratio"
KIND_OF[(VELOCITY_RATIO.value, VELOCITY_RATIO.scheme)] = "ratio"

UCUM = {
    "mm": "millimeter", "mm2": "square millimeter", "deg": "degree", "cm/s": "centimeter per second",
    "ms": "millisecond", "1": "no units",
}

FINDING_SITE = codes.C("363698007", "SCT", "Finding Site")
LATERALITY = codes.C("272741003", "SCT", "Laterality")
SIDES = {"right": codes.C("24028007", "SCT", "Right"), "left": codes.C("7771000", "SCT", "Left")}

#: vessel key -> SNOMED CT body structure (CID 12105-12112 vessels used in vascular ultrasound)
SITES: dict[str, codes.C] = {
    "CCA": codes.C("32062004", "SCT", "Common carotid artery"),
    "BULB": codes.C("21479005", "SCT", "Carotid Bulb"),
    "ICA": codes.C("86117002", "SCT", "Internal carotid artery"),
    "ECA": codes.C("22286001", "SCT", "External carotid artery"),
    "VA": codes.C("85234005", "SCT", "Vertebral artery"),
    "SCA": codes.C("36765005", "SCT", "Subclavian artery"),
    "INNOMINATE": codes.C("12691009", "SCT", "Innominate artery"),
    "CFA": codes.C("181347005", "SCT", "Common Femoral Artery"),
    "PFA": codes.C("31677005", "SCT", "Profunda Femoris Artery"),
    "SFA": codes.C("181349008", "SCT", "Superficial Femoral Artery"),
    "POP": codes.C("43899006", "SCT", "Popliteal artery"),
    "ATA": codes.C("68053000", "SCT", "Anterior tibial artery"),
    "PTA": codes.C("13363002", "SCT", "Posterior tibial artery"),
    "PER": codes.C("8821006", "SCT", "Peroneal artery"),
    "DPA": codes.C("86547008", "SCT", "Dorsalis Pedis Artery"),
}
SITE_OF_CODE: dict[tuple[str, str], str] = {(c.value, c.scheme): k for k, c in SITES.items()}


@dataclass(frozen=True)
class SavedMeasurement:
    """One measurement as it is saved and read back.

    ``points`` are image pixels (column, row), 0-based as numpy indexes the
    frame; ``frame`` is 1-based (None: a single-frame image, or a value not
    drawn on one image, e.g. a ratio).  ``extra`` holds the companion values
    of a traced PI (psv, edv, tamax, ri).  ``images`` lists every source
    image as (SOP Instance UID, frame) -- two for a ratio.
    """

    kind: str
    value: float
    unit: str
    sop_instance_uid: str = ""
    frame: int | None = None
    points: tuple[tuple[float, float], ...] = ()
    graphic: str = ""
    site: str = ""
    side: str = ""
    #: proximal, mid, distal ... (read from vendors' reports; we do not write it)
    segment: str = ""
    extra: dict[str, float] = field(default_factory=dict)
    label: str = ""
    images: tuple[tuple[str, int | None], ...] = ()
    #: the concept as written (read back: as found in the file)
    concept: codes.C | None = None

    @property
    def name(self) -> str:
        c = self.concept or concept_for(self)
        return c.meaning


#: Image Region (TID 1410) and Comment: an annotation's graphic and words
IMAGE_REGION = codes.C("111030", "DCM", "Image Region")
COMMENT = codes.C("121106", "DCM", "Comment")
ANNOTATION_KINDS = ("arrow", "text")


@dataclass(frozen=True)
class SavedAnnotation:
    """An arrow (points: tail, head) or a text label (points: its anchor) on one image and frame."""

    kind: str  # "arrow" | "text"
    points: tuple[tuple[float, float], ...]
    text: str = ""
    sop_instance_uid: str = ""
    frame: int | None = None

    @property
    def graphic(self) -> str:
        return "POLYLINE" if self.kind == "arrow" else "POINT"


def concept_for(m: SavedMeasurement, operands: Sequence[SavedMeasurement] = ()) -> codes.C:
    if m.kind == "ratio":
        if len(operands) == 2 and all(o.kind in ("psv",) for o in operands):
            if (operands[0].site, operands[1].site) == ("ICA", "CCA"):
                return ICA_CCA_RATIO
            return VELOCITY_RATIO
        if len(operands) == 2 and all(o.unit == "cm/s" for o in operands):
            return VELOCITY_RATIO
    try:
        return CONCEPTS[m.kind]
    except KeyError:
        raise MeasurementReportError(f"unknown measurement type {m.kind!r}") from None


def _cc(c: codes.C) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(value=c.value, scheme_designator=c.scheme, meaning=c.meaning)


def _unit(u: str) -> hd.sr.CodedConcept:
    if u not in UCUM:
        raise MeasurementReportError(f"unit {u!r} is not one of {', '.join(UCUM)}")
    return hd.sr.CodedConcept(value=u, scheme_designator="UCUM", meaning=UCUM[u])


def _frames(ds: Dataset, frame: int | None, uid: str) -> list[int] | None:
    if frame is None:
        return None
    n = max(1, values.integer(ds, "NumberOfFrames", 1) or 1)
    if frame < 1 or frame > n:
        raise MeasurementReportError(f"image {uid} has {n} frame(s); frame {frame} does not exist")
    return [frame] if "NumberOfFrames" in ds else None


def _graphic(m: SavedMeasurement) -> tuple[str, np.ndarray] | None:
    if not m.points or not m.graphic:
        return None
    pts = [(x + 0.5, y + 0.5) for x, y in m.points]
    gtype = m.graphic
    if gtype == "POLYGON":
        gtype = "POLYLINE"
        if pts[0] != pts[-1]:
            pts.append(pts[0])
    elif gtype == "POLYLINE" and len(pts) < 2:
        gtype = "POINT"
    if m.kind == "ri" and len(pts) == 2:
        gtype = "MULTIPOINT"
    return gtype, np.array(pts, dtype=float)


def _measurement(m: SavedMeasurement, name: codes.C, value: float, unit: str, by_uid: dict[str, Dataset],
                 with_graphic: bool) -> hd.sr.Measurement:
    if not math.isfinite(value):
        raise MeasurementReportError(f"{name.meaning}: the value is not a finite number")
    coords = None
    images = None
    g = _graphic(m) if with_graphic else None
    if g is not None:
        ds = by_uid[m.sop_instance_uid]
        src = hd.sr.SourceImageForRegion(
            referenced_sop_class_uid=str(ds.SOPClassUID), referenced_sop_instance_uid=m.sop_instance_uid,
            referenced_frame_numbers=_frames(ds, m.frame, m.sop_instance_uid))
        coords = [hd.sr.CoordinatesForMeasurement(graphic_type=g[0], graphic_data=g[1], source_image=src)]
    else:
        images = []
        for uid, frame in (m.images or ((m.sop_instance_uid, m.frame),)):
            ds = by_uid[uid]
            images.append(hd.sr.SourceImageForMeasurement(
                referenced_sop_class_uid=str(ds.SOPClassUID), referenced_sop_instance_uid=uid,
                referenced_frame_numbers=_frames(ds, frame, uid)))
    return hd.sr.Measurement(name=_cc(name), value=float(value), unit=_unit(unit),
                             referenced_coordinates=coords, referenced_images=images or None)


def _group(i: int, m: SavedMeasurement, by_uid: dict[str, Dataset],
           operands: Sequence[SavedMeasurement]) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    sites = None
    if m.site:
        if m.site not in SITES:
            raise MeasurementReportError(f"unknown vessel {m.site!r}; known: {', '.join(SITES)}")
        lat = _cc(SIDES[m.side]) if m.side in SIDES else None
        sites = [hd.sr.FindingSite(anatomic_location=_cc(SITES[m.site]), laterality=lat)]
    elif m.side and m.side not in SIDES:
        raise MeasurementReportError(f"side must be 'left' or 'right', not {m.side!r}")
    main = [_measurement(m, concept_for(m, operands), m.value, m.unit, by_uid, with_graphic=True)]
    for k in ("psv", "edv", "tamax", "ri"):
        if m.kind == "pi" and k in m.extra:
            part = SavedMeasurement(k, m.extra[k], "1" if k == "ri" else "cm/s", m.sop_instance_uid, m.frame)
            main.append(_measurement(part, CONCEPTS[k], part.value, part.unit, by_uid, with_graphic=False))
    label = m.label or f"{i + 1}: {(m.site + ' ') if m.site else ''}{concept_for(m, operands).meaning}"
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=label[:64]),
        finding_sites=sites,
        measurements=main,
    )


def _annotation_group(i: int, a: SavedAnnotation, by_uid: dict[str, Dataset]
                      ) -> hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations:
    if a.kind not in ANNOTATION_KINDS:
        raise MeasurementReportError(f"unknown annotation {a.kind!r}: arrow or text")
    need = 2 if a.kind == "arrow" else 1
    if len(a.points) != need:
        raise MeasurementReportError(f"an {a.kind} annotation has {need} point(s), got {len(a.points)}")
    if a.kind == "text" and not a.text.strip():
        raise MeasurementReportError("a text annotation needs its words")
    if not all(math.isfinite(v) for p in a.points for v in p):
        raise MeasurementReportError("annotation points must be finite numbers")
    ds = by_uid[a.sop_instance_uid]
    src = hd.sr.SourceImageForRegion(
        referenced_sop_class_uid=str(ds.SOPClassUID), referenced_sop_instance_uid=a.sop_instance_uid,
        referenced_frame_numbers=_frames(ds, a.frame, a.sop_instance_uid))
    data = np.array([(x + 0.5, y + 0.5) for x, y in a.points], dtype=float)
    region = hd.sr.ImageRegion(graphic_type=a.graphic, graphic_data=data, source_image=src)
    group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=f"Annotation {i + 1}: {a.kind}"),
        referenced_region=region)
    if a.text.strip():
        group[0].ContentSequence.append(hd.sr.TextContentItem(
            name=_cc(COMMENT), value=" ".join(a.text.split())[:1024],
            relationship_type=hd.sr.RelationshipTypeValues.CONTAINS))
    return group


def _patient_source(evidence: list[Dataset]) -> Dataset:
    src = copy.copy(evidence[0])
    for kw in ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID",
               "StudyDate", "StudyTime", "ReferringPhysicianName"):
        if kw not in src or src.get(kw) is None:
            setattr(src, kw, "")
    return src


def build_measurement_report(
    measurements: Sequence[SavedMeasurement],
    evidence: Iterable[Dataset],
    observer: str,
    *,
    operands: dict[int, tuple[int, int]] | None = None,
    predecessor: Dataset | None = None,
    organization: str = "",
    sop_instance_uid: str | None = None,
    series_instance_uid: str | None = None,
    annotations: Sequence[SavedAnnotation] = (),
) -> Dataset:
    """A Comprehensive SR data set holding *measurements* as a TID 1500 Measurement Report.

    *evidence*: headers of the study's instances; every measured image must be
    among them, and all must be of one study.  *observer*: the person who
    measured (TID 1002).  *operands*: for a ratio at index i, the indexes of
    its two measurements (to choose the ratio's concept).  *predecessor*: the
    report this one amends (named in the Predecessor Documents Sequence).
    *annotations*: arrows and text labels, saved as TID 1410 groups (see the
    module docstring).  Raises :class:`MeasurementReportError` with a one-line reason.
    """
    if not measurements and not annotations:
        raise MeasurementReportError("no measurements to save")
    if not observer or not observer.strip():
        raise MeasurementReportError("a measurement report needs the name of the person who measured")
    by_uid: dict[str, Dataset] = {}
    for ds in evidence:
        uid = values.text(ds, "SOPInstanceUID")
        if uid and all(ds.get(k) for k in ("SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID")):
            by_uid.setdefault(uid, ds)
    used: list[Dataset] = []
    wanted = [uid for m in measurements for uid, _ in (m.images or ((m.sop_instance_uid, m.frame),))]
    wanted += [a.sop_instance_uid for a in annotations]
    for uid in wanted:
        if uid not in by_uid:
            raise MeasurementReportError(f"image {uid} is not among the study's instances given as evidence")
        if by_uid[uid] not in used:
            used.append(by_uid[uid])
    studies = {str(ds.StudyInstanceUID) for ds in used}
    if len(studies) != 1:
        raise MeasurementReportError("the measured images belong to more than one study")
    operands = operands or {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*person name.*", category=UserWarning)
        try:
            groups: list = [_group(i, m, by_uid, [measurements[j] for j in operands.get(i, ())])
                            for i, m in enumerate(measurements)]
            groups += [_annotation_group(i, a, by_uid) for i, a in enumerate(annotations)]
            person = hd.sr.ObserverContext(
                observer_type=_cc(codes.PERSON),
                observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
                    name=observer, organization_name=organization or None))
            report = hd.sr.MeasurementReport(
                observation_context=hd.sr.ObservationContext(observer_person_context=person),
                procedure_reported=_cc(PROCEDURE),
                imaging_measurements=groups,
                title=_cc(TITLE),
            )
            from mdtviewer import __version__

            sr = hd.sr.ComprehensiveSR(
                evidence=[_patient_source(used)] + used[1:],
                content=report[0],
                series_instance_uid=series_instance_uid or hd.UID(),
                series_number=SERIES_NUMBER,
                sop_instance_uid=sop_instance_uid or hd.UID(),
                instance_number=1,
                manufacturer=MANUFACTURER,
                manufacturer_model_name="mdtviewer",
                software_versions=str(__version__),
                series_description="Measurements",
                previous_versions=[predecessor] if predecessor is not None else None,
            )
        except (ValueError, TypeError, AttributeError) as exc:  # highdicom refusing a value: one line
            raise MeasurementReportError(f"cannot build the measurement report: {' '.join(str(exc).split())}") \
                from None
    sr.SpecificCharacterSet = CHARSET
    return sr
