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
    type              distance | length | area | angle | psv | edv | velocity | ri | pi | ratio
                      (also time | acceleration-time: two points in a Doppler strip)
    points            [[column, row], ...] image pixels, 0-based:
                      distance 2; length >= 2; area >= 3 (polygon / freehand outline);
                      angle 3 (the middle one the vertex); psv, edv, velocity 1;
                      ri 2 (the PSV caliper, then the EDV caliper); pi 2 (start and end of the
                      chosen cardiac cycles: the envelope is traced between their columns)
    of                ratio only: [i, j], 0-based indexes of two other measurements (i / j)
    site, side        optional: vessel (CCA, ICA, ECA, VA, CFA, SFA, POP, ... see
                      sr.measurement_report.SITES) and "left" | "right"; without a side the
                      image's Image Laterality / Laterality (R or L) is used when present
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset

from mdtviewer.dicom import values
from mdtviewer.dicom.reader import read_dataset
from mdtviewer.imaging import measurements as mm
from mdtviewer.imaging.usregions import MeasurementError, parse_regions
from mdtviewer.infra.errors import MdtError
from mdtviewer.sr.measurement_read import read_measurements
from mdtviewer.sr.measurement_report import SIDES, SITES, SavedMeasurement, build_measurement_report

TYPES = ("distance", "length", "area", "angle", "psv", "edv", "velocity", "ri", "pi", "ratio", "time",
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
            raise MeasurementRequestError(f"{where}.type must be one of {', '.join(TYPES[:10])}, got {kind!r}")
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
        out.append(Request(uid, frame, kind, points, None, site, side))
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
         folder: str | os.PathLike | None = None) -> Path:
    """Write a new measurement report (store: ``<store>/reviews/<study>/``, or *folder*); audited."""
    from mdtviewer.workflows import reviews

    ds = build_measurement_report(measurements, list(evidence), observer, operands=operands,
                                  organization=organization)
    return reviews._write(ds, folder, str(ds.StudyInstanceUID))


def amend(old_path: str | os.PathLike, measurements: list[SavedMeasurement], evidence: Iterable[Dataset],
          observer: str, *, operands: dict[int, tuple[int, int]] | None = None, organization: str = "",
          folder: str | os.PathLike | None = None) -> Path:
    """Write *measurements* as a new report that names *old_path* as its predecessor; *old_path* is
    only read."""
    from mdtviewer.workflows import reviews

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        old = read_dataset(Path(old_path), stop_before_pixels=True)
    if not read_measurements(old).measurements:
        raise MeasurementRequestError(f"{Path(old_path).name} holds no measurements to amend")
    ds = build_measurement_report(measurements, list(evidence), observer, operands=operands,
                                  organization=organization, predecessor=old)
    if str(ds.StudyInstanceUID) != values.text(old, "StudyInstanceUID"):
        raise MeasurementRequestError("an amendment must be about the same study as the report it amends")
    return reviews._write(ds, folder, str(ds.StudyInstanceUID))


def send(path: str | os.PathLike, node_name: str) -> str:
    """C-STORE the report to a saved node; on failure it waits in the outbox (as reviews do)."""
    from mdtviewer.workflows import reviews

    return reviews.send(path, node_name)



def report_from_json(data: dict, headers: dict, paths: dict) -> Dataset:
    """The measurement report of the `sr write` JSON (``author`` and ``measurements``), built, not written.

    *headers* / *paths*: SOP Instance UID -> header / file of the study's
    instances (``workflows.review_json.StudyInstances``).
    """
    author = data.get("author")
    name = author.get("name") if isinstance(author, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise MeasurementRequestError("measurements need 'author' {name}: the person who measured")
    assert isinstance(author, dict)  # it gave a name
    org = author.get("organization") or ""
    requests = parse_requests(data.get("measurements"))
    if not requests:
        raise MeasurementRequestError("'measurements' is empty")

    def header_of(uid: str) -> Dataset:
        ds = headers.get(uid)
        if ds is None:
            raise MeasurementRequestError(f"unknown SOP instance UID {uid}: not among the instances in the study path")
        return ds

    measured, operands = compute(requests, header_of, lambda uid: paths[uid])
    study = values.text(header_of(measured[0].images[0][0]), "StudyInstanceUID")
    wanted = data.get("study_instance_uid")
    if wanted and wanted != study:
        raise MeasurementRequestError("study_instance_uid does not match the study of the images measured")
    evidence = [ds for ds in headers.values() if values.text(ds, "StudyInstanceUID") == study]
    return build_measurement_report(measured, evidence, name, operands=operands, organization=str(org))
