"""The ``sr write`` review JSON: from a JSON description and the reviewed study's files to a saved review SR.

The format is described in :mod:`mdtviewer.cli.sr` (the command parses its
options and calls :func:`write_review_sr`).  Every bad input raises
:class:`~mdtviewer.sr.model.ReviewError` (or a
:class:`~mdtviewer.infra.errors.DicomInputError` for an unreadable file) with
a one-line reason; nothing is written then.

The signer is never taken from the JSON: a review is signed (``verifier``
present) in the name of the reviewer profile of this computer account
(:mod:`mdtviewer.workflows.reviewer_profile`, the one the window signs with),
with its organisation and registration and the time of writing.  The JSON's
``verifier.name``, when given, must be that person (else refused: a JSON cannot
sign in someone else's name); its ``organization`` and ``datetime`` are ignored.
No profile (or an incomplete one): refused, nothing written.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

from mdtviewer.dicom import values
from mdtviewer.dicom.index import scan
from mdtviewer.dicom.reader import read_dataset
from mdtviewer.infra.atomic import atomic_save_dataset
from mdtviewer.infra.errors import DicomInputError
from mdtviewer.sr.model import Review, ReviewError, person_key

TOP_KEYS = {
    "kind", "author", "verifier", "agreement", "agreement_reason", "protocol", "outcome",
    "summary", "images", "trainee", "views", "study_instance_uid",
    "peer_review_score", "mdt_outcome", "reporter", "amends", "graded_report",
    "measurements", "annotations",  # read by write_sr_files (workflows.measurement_files), not the Review
}
IMAGE_KEYS = {"sop_instance_uid", "frames", "quality", "comment"}


def _obj(v, what: str) -> dict:
    if not isinstance(v, dict):
        raise ReviewError(f"'{what}' must be an object")
    return v


def _frames(img: dict, i: int) -> list[int | None]:
    frames = img.get("frames")
    if frames is None:
        return [None]
    if not isinstance(frames, list) or not frames:
        raise ReviewError(f"images[{i}].frames must be a non-empty list of frame numbers (1-based)")
    for f in frames:
        if isinstance(f, bool) or not isinstance(f, int) or f < 1:
            raise ReviewError(f"images[{i}].frames: frame numbers are whole numbers from 1, got {f!r}")
    return list(dict.fromkeys(frames))


def signing_verifier(given: dict, kind: object = None):
    """The signer of a review the JSON asks to sign: this account's reviewer profile, never the JSON's name.

    Raises :class:`ReviewError` (nothing is signed) when there is no complete profile, when *given*
    names someone else, or when the profile's role may not sign a review of *kind* (a preceptorship
    outcome: a trainer only, :func:`mdtviewer.workflows.reviewer_profile.sign_refusal`)."""
    from mdtviewer.workflows import reviewer_profile

    profile = reviewer_profile.load()
    if profile is None:
        raise ReviewError("cannot sign: no reviewer profile on this computer account (set it once with "
                          "`mdtviewer sr profile` or in the window: Review \u203a Reviewer profile\u2026); the signer "
                          "is never taken from the review JSON")
    missing = profile.missing()
    if missing:
        raise ReviewError(f"cannot sign: the reviewer profile of this account lacks {', '.join(missing)} "
                          "(`mdtviewer sr profile`, or Review \u203a Reviewer profile\u2026)")
    bad = reviewer_profile.problem(profile)  # the rules a profile is saved under, for one edited by hand
    if bad is not None:
        raise ReviewError(f"cannot sign: the reviewer profile of this account is not valid: {bad} "
                          "(set it again with `mdtviewer sr profile`, or Review \u203a Reviewer profile\u2026)")
    name = given.get("name")
    if name not in (None, "") and (not isinstance(name, str) or person_key(name) != person_key(profile.name)):
        raise ReviewError(f"cannot sign: the review JSON names {name!r} as verifier but this account's reviewer "
                          f"profile is {profile.name!r}; a review is signed only in the profile's name")
    refusal = profile.refusal(str(kind or ""))
    if refusal:
        raise ReviewError(f"cannot sign: {refusal}")
    return profile.verifier()


def review_from_json(data: object, study_uid_of) -> Review:  # noqa: C901 - one check per field, in order
    """Build and validate the Review described by the `sr write` JSON (see :mod:`mdtviewer.cli.sr`).

    *study_uid_of(sop_uid)* returns the study of a known instance or raises
    :class:`ReviewError` for an unknown one.
    """
    from mdtviewer.sr import model as m
    from mdtviewer.sr.protocols import get_protocol

    d = _obj(data, "review")
    unknown = sorted(set(d) - TOP_KEYS)
    if unknown:
        raise ReviewError(f"unknown key(s) in review JSON: {', '.join(unknown)}")
    if "kind" not in d:
        raise ReviewError("review JSON needs 'kind'")
    if "author" not in d:
        raise ReviewError("review JSON needs 'author' {name, role}")
    a = _obj(d["author"], "author")
    author = m.Person(a.get("name", ""), a.get("role", ""), a.get("organization", "") or "")
    trainee = None
    if d.get("trainee") is not None:
        t = _obj(d["trainee"], "trainee")
        trainee = m.Person(t.get("name", ""), t.get("role", "trainee"), t.get("organization", "") or "")
    elif author.role == "trainee" and d.get("kind") == "preceptorship":
        trainee = author  # a trainee writing their own preceptorship record is the trainee it is about
    verifier = None
    if d.get("verifier") is not None:
        verifier = signing_verifier(_obj(d["verifier"], "verifier"), d.get("kind"))
    no_report = False
    if verifier is not None and d.get("kind") == "second-opinion":
        # a signed second opinion names the report it grades (issue 10.10), or says explicitly that it grades
        # none ("graded_report": null), which the SR then records
        if "graded_report" not in d:
            raise ReviewError("cannot sign: a second opinion names the report it grades: give \"graded_report\": "
                              "the SOP Instance UID of that SR or PDF (a file in --study), or \"graded_report\": "
                              "null to sign recording that no report was graded")
        no_report = _graded(d["graded_report"]) is None

    images = d.get("images") or []
    if not isinstance(images, list):
        raise ReviewError("'images' must be a list")
    ratings, comments, keys = [], [], []
    studies: list[str] = []
    for i, img in enumerate(images):
        img = _obj(img, f"images[{i}]")
        bad = sorted(set(img) - IMAGE_KEYS)
        if bad:
            raise ReviewError(f"unknown key(s) in images[{i}]: {', '.join(bad)}")
        uid = img.get("sop_instance_uid")
        if not isinstance(uid, str) or not uid:
            raise ReviewError(f"images[{i}] needs 'sop_instance_uid'")
        studies.append(study_uid_of(uid))
        quality, comment = img.get("quality"), img.get("comment")
        for frame in _frames(img, i):
            if quality is not None:
                ratings.append(m.ImageRating(uid, frame, quality, ""))
            if comment is not None:
                if not isinstance(comment, str):
                    raise ReviewError(f"images[{i}].comment must be text")
                comments.append(m.ImageComment(uid, frame, comment))
            if quality is None and comment is None:
                keys.append(m.KeyImage(uid, frame))

    views = []
    if d.get("views") is not None:
        if not d.get("protocol"):
            raise ReviewError("'views' need the 'protocol' they belong to")
        proto = get_protocol(d["protocol"])
        given: dict[str, m.ViewCheck] = {}
        if not isinstance(d["views"], list):
            raise ReviewError("'views' must be a list")
        for i, v in enumerate(d["views"]):
            v = _obj(v, f"views[{i}]")
            vid = v.get("view")
            if not isinstance(vid, str):
                raise ReviewError(f"views[{i}]: 'view' must be the text id of a view of protocol {proto.id}")
            if proto.view(vid) is None:
                raise ReviewError(f"views[{i}]: {vid!r} is not a view of protocol {proto.id}")
            present = v.get("present", True) is not False and bool(v.get("sop_instance_uid"))
            if present:
                studies.append(study_uid_of(v["sop_instance_uid"]))
            given[vid] = m.ViewCheck(vid, present, v.get("sop_instance_uid") if present else None,
                                     v.get("frame") if present else None)
        # every required view is recorded (the unnamed ones as missing), optional ones only when given:
        # an optional view not done is not a gap in the trainee's image set (the review editor agrees)
        views = [given.get(pv.id) or m.ViewCheck(pv.id, False) for pv in proto.views
                 if pv.required or pv.id in given]
    elif d.get("protocol"):
        get_protocol(d["protocol"])  # unknown protocol: say so now

    study_uid = d.get("study_instance_uid")
    found = list(dict.fromkeys(studies))
    if len(found) > 1:
        raise ReviewError("the images named belong to more than one study; a review is about one study")
    if found:
        if study_uid and study_uid != found[0]:
            raise ReviewError("study_instance_uid does not match the study of the images named")
        study_uid = found[0]
    if not study_uid:
        study_uid = study_uid_of(None)  # the only study in PATH, or a clear error
    return m.Review(
        kind=d["kind"],
        author=author,
        study_instance_uid=study_uid,
        summary=d.get("summary") or "",
        trainee=trainee,
        agreement=d.get("agreement"),
        agreement_reason=d.get("agreement_reason") or "",
        peer_review_score=d.get("peer_review_score"),
        reporter=d.get("reporter") or "",
        mdt_outcome=d.get("mdt_outcome"),
        protocol=d.get("protocol"),
        views=views,
        image_ratings=ratings,
        outcome=d.get("outcome"),
        comments=comments,
        key_images=keys,
        verifier=verifier,
        graded_report_uid=_graded(d.get("graded_report")),
        no_report_graded=no_report,
    )


class StudyInstances:
    """The reviewed instances in PATH: SOP Instance UID -> header data set."""

    def __init__(self, path: Path):
        # odd headers elsewhere in the folder are not this command's news
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._load(path)

    def _load(self, path: Path) -> None:
        if not path.exists():
            raise ReviewError(f"{path}: no such file or folder")
        self.headers: dict[str, object] = {}
        self.study: dict[str, str] = {}  # SOP Instance UID -> Study Instance UID
        self.paths: dict[str, Path] = {}  # SOP Instance UID -> file (pixels for measurements)
        for f in [Path(i.path) for i in scan([path]).instances()]:
            try:
                ds = read_dataset(f, stop_before_pixels=True)
            except (DicomInputError, OSError):  # a file that cannot be read is not one of the study's instances
                continue
            uid = values.text(ds, "SOPInstanceUID")
            if uid and "StudyInstanceUID" in ds and "SOPClassUID" in ds and uid not in self.headers:
                self.headers[uid] = ds
                self.study[uid] = str(ds.StudyInstanceUID)
                self.paths[uid] = f
        if not self.headers:
            raise ReviewError(f"{path.name}: no DICOM instances found")

    def study_of(self, uid: str | None) -> str:
        if uid is None:
            studies = sorted(set(self.study.values()))
            if len(studies) != 1:
                raise ReviewError(f"the study path holds {len(studies)} studies; name an image or study_instance_uid")
            return studies[0]
        ds = self.headers.get(uid)
        if ds is None:
            raise ReviewError(f"unknown SOP instance UID {uid}: not among the instances in the study path")
        return self.study[uid]

    def evidence_for(self, study_uid: str) -> list:
        return [self.headers[u] for u, st in self.study.items() if st == study_uid]


def _graded(value: object) -> str | None:
    """``graded_report``: the SOP Instance UID of the SR or PDF report a second opinion grades."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ReviewError("graded_report must be the SOP Instance UID of the report graded")
    return value.strip()


def load_review_json(path: str | os.PathLike) -> object:
    """The parsed review JSON file, or ReviewError saying why it cannot be used."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReviewError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReviewError(f"{path}: cannot read ({exc})") from None
    except json.JSONDecodeError as exc:
        where = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
        raise ReviewError(f"{path.name}: not valid JSON ({where})") from None


def write_review_sr(review_json: str | os.PathLike, study: str | os.PathLike, out: str | os.PathLike,
                    *, force: bool = False, instances: StudyInstances | None = None,
                    measurement_reports: list | None = None) -> Path:
    """Write the review described by *review_json* about the study in *study* to *out*; audited.

    Refuses to replace *out* unless *force*; returns the path written.
    """
    from mdtviewer.sr.writer import build_review_sr
    from mdtviewer.workflows.reviews import audit_sr_written, check_signer

    out = Path(out)
    if out.exists() and not force:
        raise ReviewError(f"{out} exists; use --force to replace it")
    if out.exists() and out.is_dir():
        raise ReviewError(f"{out} is a folder; give a file name")
    data = load_review_json(review_json)
    instances = instances or StudyInstances(Path(study))
    review = review_from_json(data, instances.study_of)
    if review.verifier is not None:
        check_signer(review, review.verifier)  # the same rules as the window's Sign off (HAZ-030)
    predecessor = None
    amends = data.get("amends") if isinstance(data, dict) else None
    if amends is not None:
        # the signed review this one amends: a path, relative to the JSON file's folder
        if not isinstance(amends, str) or not amends:
            raise ReviewError("'amends' must be the path of the review SR this one amends")
        pred_path = Path(review_json).parent / amends
        try:
            predecessor = read_dataset(pred_path, stop_before_pixels=True)
        except (DicomInputError, OSError) as exc:
            why = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or type(exc).__name__
            raise ReviewError(f"amends: {Path(amends).name}: cannot read ({why})") from None
        if values.text(predecessor, "StudyInstanceUID") != review.study_instance_uid:
            raise ReviewError("amends: that review is about another study")
        review.predecessor_sop_instance_uid = values.text(predecessor, "SOPInstanceUID")
        review.validate()
    ds = build_review_sr(review, instances.evidence_for(review.study_instance_uid), predecessor=predecessor)
    if review.verifier is not None and measurement_reports:
        from mdtviewer.workflows.worksheet import attach_to_review  # signed: the worksheet of its measurements

        ds = attach_to_review(ds, measurement_reports)
    written = atomic_save_dataset(ds, out)
    audit_sr_written(ds)
    return written


def write_sr_files(review_json: str | os.PathLike, study: str | os.PathLike, out: str | os.PathLike,
                   *, force: bool = False) -> list[Path]:
    """`sr write`: the review SR and, when the JSON has ``measurements``, the measurement report.

    Measurements are computed from the study's files and saved as a TID 1500
    report of their own (see :mod:`mdtviewer.sr.measurement_report` for why):
    to *out* when the JSON describes no review (no ``kind``), else beside the
    review as ``<out stem>_measurements.dcm``.  Everything is computed and
    checked before anything is written; returns the paths written.
    """
    from mdtviewer.workflows import measurement_files as mf

    data = load_review_json(review_json)
    if not isinstance(data, dict) or ("measurements" not in data and "annotations" not in data):
        return [write_review_sr(review_json, study, out, force=force)]
    out = Path(out)
    has_review = "kind" in data
    m_out = out.with_name(out.stem + "_measurements.dcm") if has_review else out
    for target in ([out, m_out] if has_review else [out]):
        if target.exists() and not force:
            raise ReviewError(f"{target} exists; use --force to replace it")
    instances = StudyInstances(Path(study))
    report = mf.report_from_json(data, instances.headers, instances.paths, base=Path(review_json).parent)
    written = [write_review_sr(review_json, study, out, force=force, instances=instances,
                               measurement_reports=[report])] if has_review else []
    written.append(atomic_save_dataset(report, m_out))
    from mdtviewer.workflows.reviews import audit_sr_written

    audit_sr_written(report)
    return written
