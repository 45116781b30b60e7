"""Measurements from points on the study's files, saved, amended and sent as TID 1500 reports.

:func:`compute` turns measurement requests -- image, frame, type and points
in image pixels, as the `sr write` JSON gives them or a viewport tool will --
into values computed from each file's own US regions (and, for a traced PI,
its pixels): a value is never taken from the request.  :func:`save` and
:func:`amend` write the report with the same store path, file naming and
audit as reviews (:mod:`mdtviewer.workflows.reviews`), and sending goes
through :func:`mdtviewer.workflows.reviews.send` (PACS, else the outbox).
The first file is never altered: an amendment is a new document naming it in
the Predecessor Documents Sequence.

Request keys (the ``measurements`` list of the `sr write` JSON)::

    sop_instance_uid  the image measured (must be in the study given)
    frame             1-based frame number (default 1)
    type              distance | length | area | ellipse | angle | psv | edv | velocity | ri | pi | ratio
                      (also time | acceleration-time: two points in a Doppler strip)
    points            [[column, row], ...] image pixels, 0-based:
                      distance 2; length >= 2; area >= 3 (polygon / freehand outline);
                      ellipse 4 (the ends of its two axes, first axis then second, as a DICOM
                      SCOORD ELLIPSE; saved as an area with its ELLIPSE graphic);
                      angle 3 (the middle one the vertex); psv, edv, velocity 1;
                      ri 2 (the PSV caliper, then the EDV caliper); pi 2 (start and end of the
                      chosen cardiac cycles: the envelope is traced between their columns)
    of                ratio only: [i, j], 0-based indexes of two other measurements (i / j)
    site, side        optional: vessel (CCA, ICA, ECA, VA, CFA, SFA, POP, ... see
                      sr.measurement_report.SITES) and "left" | "right"; without a side the
                      image's Image Laterality / Laterality (R or L) is used when present

``annotations`` (optional list, same JSON): ``{sop_instance_uid, frame, type: arrow | text,
points: [[column, row], ...] (arrow: tail, head; text: its anchor), text}`` -- saved as TID 1410
groups of the same report (see :mod:`mdtviewer.sr.measurement_report`).

``amends`` in a JSON without ``kind`` (measurements only): the path, relative to the JSON file, of
the measurement report this one amends; the new report names it in its Predecessor Documents
Sequence and the old file is never altered (with ``kind``, ``amends`` is the review's, as before).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset

from mdtviewer.dicom import values
from mdtviewer.dicom.reader import read_dataset
from mdtviewer.imaging import measurements as mm
from mdtviewer.imaging.usregions import MeasurementError, parse_regions
from mdtviewer.infra.errors import MdtError
from mdtviewer.sr.measurement_read import MeasurementDocument, read_measurements
from mdtviewer.sr.measurement_report import (
    SIDES,
    SITES,
    SavedAnnotation,
    SavedMeasurement,
    build_measurement_report,
)

TYPES = ("distance", "length", "area", "ellipse", "angle", "psv", "edv", "velocity", "ri", "pi", "ratio", "time",
         "acceleration-time")
KEYS = {"sop_instance_uid", "frame", "type", "points", "of", "site", "side"}


class MeasurementRequestError(MdtError, ValueError):
    """A measurement request cannot be used; ``reason`` names it and says why."""


@dataclass(frozen=True)
class Request:
    sop_instance_uid: str
    frame: int
    type: str
    points: tuple[tuple[float, float], ...] = ()
    of: tuple[int, int] | None = None
    site: str = ""
    side: str = ""


def parse_requests(data: object) -> list[Request]:
    """The ``measurements`` list of the JSON, checked (one-line reason naming the entry)."""
    if not isinstance(data, list):
        raise MeasurementRequestError("'measurements' must be a list")
    out: list[Request] = []
    for i, d in enumerate(data):
        where = f"measurements[{i}]"
        if not isinstance(d, dict):
            raise MeasurementRequestError(f"{where} must be an object")
        bad = sorted(set(d) - KEYS)
        if bad:
            raise MeasurementRequestError(f"unknown key(s) in {where}: {', '.join(bad)}"
                                          + ("; values are computed from the image, never given"
                                             if "value" in bad else ""))
        kind = d.get("type")
        if kind not in TYPES:
            raise MeasurementRequestError(f"{where}.type must be one of {', '.join(TYPES[:11])}, got {kind!r}")
        frame = d.get("frame", 1)
        if isinstance(frame, bool) or not isinstance(frame, int) or frame < 1:
            raise MeasurementRequestError(f"{where}.frame is a frame number from 1, got {frame!r}")
        site, side = d.get("site") or "", d.get("side") or ""
        if site and site not in SITES:
            raise MeasurementRequestError(f"{where}.site {site!r} is not one of {', '.join(SITES)}")
        if side and side not in SIDES:
            raise MeasurementRequestError(f"{where}.side must be 'left' or 'right', got {side!r}")
        if kind == "ratio":
            of = d.get("of")
            if (not isinstance(of, list) or len(of) != 2
                    or not all(isinstance(j, int) and not isinstance(j, bool) for j in of)):
                raise MeasurementRequestError(f"{where}: a ratio needs 'of': [two measurement indexes]")
            for j in of:
                if not 0 <= j < len(data) or j == i:
                    raise MeasurementRequestError(f"{where}.of: {j} is not the index of another measurement")
            out.append(Request("", 1, kind, (), (of[0], of[1]), site, side))
            continue
        uid = d.get("sop_instance_uid")
        if not isinstance(uid, str) or not uid:
            raise MeasurementRequestError(f"{where} needs 'sop_instance_uid'")
        pts = d.get("points")
        if not isinstance(pts, list) or not pts:
            raise MeasurementRequestError(f"{where}.points must be a list of [column, row]")
        try:
            points = tuple((float(p[0]), float(p[1])) for p in pts if len(p) == 2)
        except (TypeError, ValueError, KeyError):
            points = ()
        if len(points) != len(pts):
            raise MeasurementRequestError(f"{where}.points: each point is [column, row] in image pixels")
        if kind == "ellipse" and len(points) != 4:
            raise MeasurementRequestError(f"{where}: an ellipse is given by the 4 ends of its axes "
                                          f"(first axis, then second), got {len(points)} point(s)")
        out.append(Request(uid, frame, kind, points, None, site, side))
    return out


ANNOTATION_KEYS = {"sop_instance_uid", "frame", "type", "points", "text"}


def parse_annotations(data: object) -> list[SavedAnnotation]:
    """The ``annotations`` list of the JSON, checked (one-line reason naming the entry)."""
    if not isinstance(data, list):
        raise MeasurementRequestError("'annotations' must be a list")
    out: list[SavedAnnotation] = []
    for i, d in enumerate(data):
        where = f"annotations[{i}]"
        if not isinstance(d, dict):
            raise MeasurementRequestError(f"{where} must be an object")
        bad = sorted(set(d) - ANNOTATION_KEYS)
        if bad:
            raise MeasurementRequestError(f"unknown key(s) in {where}: {', '.join(bad)}")
        kind = d.get("type")
        if kind not in ("arrow", "text"):
            raise MeasurementRequestError(f"{where}.type must be arrow or text, got {kind!r}")
        uid = d.get("sop_instance_uid")
        if not isinstance(uid, str) or not uid:
            raise MeasurementRequestError(f"{where} needs 'sop_instance_uid'")
        frame = d.get("frame", 1)
        if isinstance(frame, bool) or not isinstance(frame, int) or frame < 1:
            raise MeasurementRequestError(f"{where}.frame is a frame number from 1, got {frame!r}")
        text = d.get("text", "")
        if not isinstance(text, str) or (kind == "text" and not text.strip()):
            raise MeasurementRequestError(f"{where}.text: a text annotation needs its words")
        pts = d.get("points")
        need = 2 if kind == "arrow" else 1
        try:
            points = tuple((float(p[0]), float(p[1])) for p in pts if len(p) == 2)  # type: ignore[union-attr]
        except (TypeError, ValueError, KeyError):
            points = ()
        if not isinstance(pts, list) or len(points) != len(pts) or len(points) != need:
            raise MeasurementRequestError(f"{where}.points: an {kind} has {need} point(s) [column, row]")
        out.append(SavedAnnotation(kind, points, text.strip(), uid, frame))
    return out


def side_of_image(ds: Dataset) -> str:
    lat = (values.text(ds, "ImageLaterality") or values.text(ds, "Laterality")).upper()
    return {"R": "right", "L": "left"}.get(lat, "")


def compute(requests: list[Request], header_of: Callable[[str], Dataset],
            path_of: Callable[[str], str | os.PathLike]) -> tuple[list[SavedMeasurement], dict[int, tuple[int, int]]]:
    """Values for *requests*, each from its own file; returns the measurements and the ratio operands.

    *header_of(uid)* gives an image's header, *path_of(uid)* its file (for
    the pixels of a traced PI).  A refused measurement raises
    :class:`MeasurementRequestError` naming the entry and the reason.
    """
    from mdtviewer.imaging.pixels import FrameSource

    done: dict[int, SavedMeasurement] = {}
    for i, req in enumerate(requests):
        if req.type == "ratio":
            continue
        where = f"measurements[{i}] ({req.type})"
        ds = header_of(req.sop_instance_uid)
        n = max(1, values.integer(ds, "NumberOfFrames", 1) or 1)
        if req.frame > n:
            raise MeasurementRequestError(f"{where}: the image has {n} frame(s); frame {req.frame} does not exist")

        def pixels(uid=req.sop_instance_uid, index=req.frame - 1):
            with FrameSource(path_of(uid)) as src:
                return src.frame(index)

        try:
            r = mm.measure(req.type, parse_regions(ds), req.points, pixels)
        except MdtError as exc:  # MeasurementError, or the frame cannot be decoded
            raise MeasurementRequestError(f"{where}: {exc.reason}") from None
        multi = "NumberOfFrames" in ds
        done[i] = SavedMeasurement(
            kind=r.kind, value=r.value, unit=r.unit, sop_instance_uid=req.sop_instance_uid,
            frame=req.frame if multi else None, points=r.points, graphic=r.graphic,
            site=req.site, side=req.side or side_of_image(ds), extra=dict(r.extra),
            images=((req.sop_instance_uid, req.frame if multi else None),),
        )
    operands: dict[int, tuple[int, int]] = {}
    for i, req in enumerate(requests):
        if req.type != "ratio":
            continue
        a, b = req.of or (0, 0)
        if a not in done or b not in done:
            raise MeasurementRequestError(f"measurements[{i}] (ratio): a ratio is of two measurements, not of a ratio")
        try:
            r = mm.ratio(_as_measured(done[a]), _as_measured(done[b]))
        except MeasurementError as exc:
            raise MeasurementRequestError(f"measurements[{i}] (ratio): {exc.reason}") from None
        done[i] = SavedMeasurement(
            kind="ratio", value=r.value, unit="1", site=req.site or done[a].site,
            side=req.side or done[a].side, extra=dict(r.extra),
            images=tuple(dict.fromkeys(done[a].images + done[b].images)),
            sop_instance_uid=done[a].sop_instance_uid, frame=done[a].frame,
        )
        operands[i] = (a, b)
    return [done[i] for i in range(len(requests))], operands


def _as_measured(s: SavedMeasurement) -> mm.Measured:
    return mm.Measured(s.kind, s.value, s.unit, s.points, s.graphic)


def save(measurements: list[SavedMeasurement], evidence: Iterable[Dataset], observer: str, *,
         operands: dict[int, tuple[int, int]] | None = None, organization: str = "",
         folder: str | os.PathLike | None = None, annotations: Iterable[SavedAnnotation] = ()) -> Path:
    """Write a new measurement report (store: ``<store>/reviews/<study>/``, or *folder*); audited."""
    from mdtviewer.workflows import reviews

    ds = build_measurement_report(measurements, list(evidence), observer, operands=operands,
                                  organization=organization, annotations=list(annotations))
    return reviews._write(ds, folder, str(ds.StudyInstanceUID))


def amend(old_path: str | os.PathLike, measurements: list[SavedMeasurement], evidence: Iterable[Dataset],
          observer: str, *, operands: dict[int, tuple[int, int]] | None = None, organization: str = "",
          folder: str | os.PathLike | None = None, annotations: Iterable[SavedAnnotation] = ()) -> Path:
    """Write *measurements* as a new report that names *old_path* as its predecessor; *old_path* is
    only read."""
    from mdtviewer.workflows import reviews

    old = read_predecessor(old_path)
    ds = build_measurement_report(measurements, list(evidence), observer, operands=operands,
                                  organization=organization, predecessor=old, annotations=list(annotations))
    if str(ds.StudyInstanceUID) != values.text(old, "StudyInstanceUID"):
        raise MeasurementRequestError("an amendment must be about the same study as the report it amends")
    return reviews._write(ds, folder, str(ds.StudyInstanceUID))


def read_predecessor(old_path: str | os.PathLike) -> Dataset:
    """The measurement report an amendment names (read only); refused if it holds nothing of ours."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            old = read_dataset(Path(old_path), stop_before_pixels=True)
    except (MdtError, OSError) as exc:
        why = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or type(exc).__name__
        raise MeasurementRequestError(f"amends: {Path(old_path).name}: cannot read ({why})") from None
    doc = read_measurements(old)
    if not doc.measurements and not doc.annotations:
        raise MeasurementRequestError(f"{Path(old_path).name} holds no measurements to amend")
    return old


def send(path: str | os.PathLike, node_name: str) -> str:
    """C-STORE the report to a saved node; on failure it waits in the outbox (as reviews do)."""
    from mdtviewer.workflows import reviews

    return reviews.send(path, node_name)



def report_from_json(data: dict, headers: dict, paths: dict, base: str | os.PathLike | None = None) -> Dataset:
    """The measurement report of the `sr write` JSON (``author``, ``measurements``, optional
    ``annotations``; without ``kind`` also ``amends``), built, not written.

    *headers* / *paths*: SOP Instance UID -> header / file of the study's
    instances (``workflows.review_json.StudyInstances``); *base*: the JSON
    file's folder (``amends`` is relative to it).
    """
    author = data.get("author")
    name = author.get("name") if isinstance(author, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise MeasurementRequestError("measurements need 'author' {name}: the person who measured")
    assert isinstance(author, dict)  # it gave a name
    org = author.get("organization") or ""
    requests = parse_requests(data.get("measurements", []))
    notes = parse_annotations(data["annotations"]) if "annotations" in data else []
    if not requests and not notes:
        raise MeasurementRequestError("'measurements' is empty")

    def header_of(uid: str) -> Dataset:
        ds = headers.get(uid)
        if ds is None:
            raise MeasurementRequestError(f"unknown SOP instance UID {uid}: not among the instances in the study path")
        return ds

    measured, operands = compute(requests, header_of, lambda uid: paths[uid])
    for i, a in enumerate(notes):
        n = max(1, values.integer(header_of(a.sop_instance_uid), "NumberOfFrames", 1) or 1)
        if (a.frame or 1) > n:
            raise MeasurementRequestError(f"annotations[{i}]: the image has {n} frame(s); frame {a.frame} "
                                          "does not exist")
        if "NumberOfFrames" not in header_of(a.sop_instance_uid):
            notes[i] = SavedAnnotation(a.kind, a.points, a.text, a.sop_instance_uid, None)
    first = measured[0].images[0][0] if measured else notes[0].sop_instance_uid
    study = values.text(header_of(first), "StudyInstanceUID")
    wanted = data.get("study_instance_uid")
    if wanted and wanted != study:
        raise MeasurementRequestError("study_instance_uid does not match the study of the images measured")
    evidence = [ds for ds in headers.values() if values.text(ds, "StudyInstanceUID") == study]
    predecessor = None
    amends = data.get("amends")
    if amends is not None and "kind" not in data:
        if not isinstance(amends, str) or not amends:
            raise MeasurementRequestError("'amends' must be the path of the measurement report this one amends")
        predecessor = read_predecessor(Path(base or ".") / amends)
        if values.text(predecessor, "StudyInstanceUID") != study:
            raise MeasurementRequestError("amends: that measurement report is about another study")
    return build_measurement_report(measured, evidence, name, operands=operands, organization=str(org),
                                    predecessor=predecessor, annotations=notes)


@dataclass
class StudyMeasurements:
    """The measurement documents of a study, current versions only (what the list and worksheet show)."""

    documents: list[tuple[Path, MeasurementDocument]]  # in the order given
    skipped: list[str]  # one-line reasons of the files that could not be read
    amended: int = 0  # how many of *documents* amend an earlier version


def read_study_measurements(
    paths: Iterable[str | os.PathLike], withdrawn: Mapping[str, str] | None = None
) -> StudyMeasurements:
    """Read the measurement SRs in *paths* (a worker thread's job): those with measurements or
    annotations are kept, an amendment replaces the version it names when both are given, and a file
    that cannot be read gives its reason instead of stopping the rest.

    *withdrawn*: the study's ``Study.rejected`` (SOP Instance UID -> reason): a measurement report a
    rejection note withdrew (IHE IOCM) is not current; it is left out and said in ``skipped``."""
    withdrawn = withdrawn or {}
    docs = []
    skipped: list[str] = []
    for p in paths:
        try:
            doc = read_measurements(p)
        except (MdtError, OSError, ValueError) as exc:
            skipped.append(getattr(exc, "reason", None) or type(exc).__name__)
            continue
        if doc.sop_instance_uid in withdrawn:
            skipped.append(f"{Path(p).name}: withdrawn ({withdrawn[doc.sop_instance_uid]})")
            continue
        if doc.measurements or doc.annotations:
            docs.append((Path(p), doc))
    replaced = {uid for _p, d in docs for uid in d.predecessors}
    current = [(p, d) for p, d in docs if d.sop_instance_uid not in replaced]
    return StudyMeasurements(current, skipped, sum(bool(d.predecessors) for _p, d in current))
