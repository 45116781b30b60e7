"""The review model: a second opinion or a preceptorship assessment of one study.

Qt-free, typed, and validated when built (as highdicom validates its content
items): an invalid review raises :class:`ReviewError` (a ``ValueError`` and an
:class:`~mdtviewer.infra.errors.MdtError`) with a one-line reason
the user can act on, so that nothing half-valid ever reaches an SR file.

A *draft* may be incomplete (no agreement yet, no outcome yet); a review with
a ``verifier`` is signed and must be complete (:meth:`Review.validate` with
the stricter rules).  Frame numbers are 1-based, as in DICOM.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from mdtviewer.infra.errors import MdtError

KINDS = ("second-opinion", "preceptorship")
ROLES = ("reporting-scientist", "second-reader", "trainee", "trainer")
AGREEMENTS = ("agree", "minor-discrepancy", "major-discrepancy")
QUALITIES = ("good", "adequate", "poor")
OUTCOMES = ("competent", "needs-supervision")
#: RADPEER-style peer-review score: 1 concur; 2 discrepancy not ordinarily expected to be made;
#: 3 discrepancy that should be made most of the time; a/b unlikely / likely clinically significant
PEER_REVIEW_SCORES = ("1", "2a", "2b", "3a", "3b")
MDT_OUTCOMES = ("report-confirmed", "discrepancy-found", "further-imaging")



class ReviewError(MdtError, ValueError):
    """A review, its SR document or its protocol is not valid (one-line reason)."""

    category = "review"


_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
_DT = re.compile(r"^\d{14}(\.\d{1,6})?([+-]\d{4})?$")


def check_uid(uid: Any, what: str) -> str:
    if not isinstance(uid, str) or len(uid) > 64 or not _UID.match(uid):
        raise ReviewError(f"{what} is not a valid DICOM UID: {uid!r}")
    return uid


def _check_frame(frame: Any, what: str) -> None:
    if frame is None:
        return
    if isinstance(frame, bool) or not isinstance(frame, int) or frame < 1:
        raise ReviewError(f"{what}: frame numbers are whole numbers from 1, got {frame!r}")


def _check_name(name: Any, what: str) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ReviewError(f"{what} needs a name")
    if "\\" in name or len(name) > 64 * 3:
        raise ReviewError(f"{what}: name must not contain a backslash or exceed 192 characters")
    for group in name.split("="):
        if len(group) > 64:
            raise ReviewError(f"{what}: a person name may have at most 64 characters")


def person_key(name: str) -> tuple[str, ...]:
    """A person's name parts, for comparing "Ada Okafor", "Okafor^Ada" and "OKAFOR, ADA"."""
    return tuple(sorted(p for p in re.split(r"[\^=,\s]+", str(name or "").casefold()) if p))


def now_dt() -> str:
    """Current local date-time in DICOM DT form with UTC offset (YYYYMMDDHHMMSS+hhmm)."""
    return _dt.datetime.now().astimezone().strftime("%Y%m%d%H%M%S%z")


@dataclass
class Person:
    name: str
    role: str  # one of ROLES
    organization: str = ""

    def __post_init__(self) -> None:
        _check_name(self.name, "a person")
        if self.role not in ROLES:
            raise ReviewError(f"unknown role {self.role!r}; expected one of {', '.join(ROLES)}")
        if len(self.organization) > 64:
            raise ReviewError("organisation name longer than 64 characters")


@dataclass
class Verifier:
    """Who signed the document, for whom, and when (DICOM DT, e.g. 20261125101500+0000)."""

    name: str
    organization: str
    datetime: str = ""
    #: professional registration of the signer (e.g. "HCPC CS12345", "RCCP 1234"), from the reviewer profile
    registration: str = ""
    #: the signer's role (one of ROLES) from the reviewer profile; written as a person observer of the
    #: document, so that who may sign what (a preceptorship: a trainer) can be checked on reading.
    #: "" when not known (a document whose signer is not among its observers).  Not part of equality: it is
    #: read back from the observers, so the same signature reads equal whether its role was given or found
    role: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        _check_name(self.name, "the person signing")
        if self.role and self.role not in ROLES:
            raise ReviewError(f"unknown signer role {self.role!r}; expected one of {', '.join(ROLES)}")
        if not isinstance(self.registration, str) or len(self.registration) > 64:
            raise ReviewError("a professional registration is text of at most 64 characters")
        if not isinstance(self.organization, str) or not self.organization.strip():
            raise ReviewError("the person signing needs an organisation (Verifying Organization is required)")
        if len(self.organization) > 64:
            raise ReviewError("organisation name longer than 64 characters")
        if self.datetime and not _DT.match(self.datetime):
            raise ReviewError(f"verification date-time must be YYYYMMDDHHMMSS[+hhmm], got {self.datetime!r}")


@dataclass
class ViewCheck:
    """One required view of the protocol: present (and where) or missing."""

    view_id: str
    present: bool
    sop_instance_uid: str | None = None
    frame: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.view_id, str) or not re.match(r"^[A-Za-z0-9_.-]{1,16}$", self.view_id):
            raise ReviewError(f"view id must be 1-16 letters, digits, '-', '_' or '.': {self.view_id!r}")
        if self.present:
            check_uid(self.sop_instance_uid, f"view {self.view_id}: image")
        elif self.sop_instance_uid or self.frame:
            raise ReviewError(f"view {self.view_id} is marked missing but names an image")
        _check_frame(self.frame, f"view {self.view_id}")


@dataclass
class ImageRating:
    sop_instance_uid: str
    frame: int | None
    quality: str  # one of QUALITIES
    reason: str = ""

    def __post_init__(self) -> None:
        check_uid(self.sop_instance_uid, "rated image")
        _check_frame(self.frame, "image rating")
        if self.quality not in QUALITIES:
            raise ReviewError(f"unknown image quality {self.quality!r}; expected one of {', '.join(QUALITIES)}")


@dataclass
class ImageComment:
    sop_instance_uid: str
    frame: int | None
    text: str

    def __post_init__(self) -> None:
        check_uid(self.sop_instance_uid, "commented image")
        _check_frame(self.frame, "comment")
        if not isinstance(self.text, str) or not self.text.strip():
            raise ReviewError("a comment needs some text")


@dataclass
class KeyImage:
    """An image (or frame) referenced by the review without a comment or rating."""

    sop_instance_uid: str
    frame: int | None = None

    def __post_init__(self) -> None:
        check_uid(self.sop_instance_uid, "key image")
        _check_frame(self.frame, "key image")


@dataclass
class Review:
    kind: str  # one of KINDS
    author: Person
    study_instance_uid: str
    summary: str = ""
    trainee: Person | None = None
    # second opinion
    agreement: str | None = None
    agreement_reason: str = ""
    peer_review_score: str | None = None  # one of PEER_REVIEW_SCORES
    #: who wrote the report under review (for the discrepancy audit by reporter)
    reporter: str = ""
    # MDT cases (either kind)
    mdt_outcome: str | None = None  # one of MDT_OUTCOMES
    # preceptorship
    protocol: str | None = None
    views: list[ViewCheck] = field(default_factory=list)
    image_ratings: list[ImageRating] = field(default_factory=list)
    outcome: str | None = None
    # both
    comments: list[ImageComment] = field(default_factory=list)
    key_images: list[KeyImage] = field(default_factory=list)
    verifier: Verifier | None = None
    predecessor_sop_instance_uid: str | None = None
    #: second opinion: the SOP Instance UID of the report it grades (an SR or encapsulated PDF)
    graded_report_uid: str | None = None
    #: second opinion: signed knowingly without naming the report it grades (recorded in the document)
    no_report_graded: bool = False

    def __post_init__(self) -> None:
        self.validate()

    @property
    def signed(self) -> bool:
        return self.verifier is not None

    def validate(self) -> None:
        """Raise ValueError (one line) if the review is inconsistent; stricter once signed."""
        if self.kind not in KINDS:
            raise ReviewError(f"unknown review kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if not isinstance(self.author, Person):
            raise ReviewError("the review needs an author (name and role)")
        check_uid(self.study_instance_uid, "study instance UID")
        if not isinstance(self.summary, str):
            raise ReviewError("summary must be text")
        if self.predecessor_sop_instance_uid is not None:
            check_uid(self.predecessor_sop_instance_uid, "predecessor document")
        self._validate_graded_report()
        if self.agreement is not None and self.agreement not in AGREEMENTS:
            raise ReviewError(f"unknown agreement {self.agreement!r}; expected one of {', '.join(AGREEMENTS)}")
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise ReviewError(f"unknown outcome {self.outcome!r}; expected one of {', '.join(OUTCOMES)}")
        self._validate_peer_review()
        if self.agreement_reason and self.agreement is None:
            raise ReviewError("an agreement reason was given without an agreement")
        if self.kind == "second-opinion":
            if self.outcome or self.protocol or self.views or self.trainee:
                raise ReviewError(
                    "a second opinion has no trainee, protocol, views or outcome (those are preceptorship)"
                )
            if self.author.role == "trainee":
                raise ReviewError("a second opinion cannot be written by a trainee")
        else:
            if self.agreement is not None or self.peer_review_score is not None or self.reporter:
                raise ReviewError(
                    "a preceptorship has an outcome, not an agreement, peer-review score or reporter"
                )
            if self.trainee is not None and self.trainee.role != "trainee":
                raise ReviewError("the trainee's role must be 'trainee'")
            if self.views and not self.protocol:
                raise ReviewError("protocol views were given without the protocol they belong to")
            if self.protocol is not None and (not isinstance(self.protocol, str) or not self.protocol.strip()):
                raise ReviewError("protocol must be the protocol id")
        seen: set[str] = set()
        for v in self.views:
            if v.view_id in seen:
                raise ReviewError(f"view {v.view_id} is listed twice")
            seen.add(v.view_id)
        if self.verifier is not None:
            if not isinstance(self.verifier, Verifier):
                raise ReviewError("verifier must be a Verifier(name, organization, datetime)")
            if self.kind == "second-opinion" and self.agreement is None:
                raise ReviewError("a second opinion cannot be signed without an agreement grade")
            if self.kind == "preceptorship":
                if self.outcome is None:
                    raise ReviewError("a preceptorship cannot be signed without an outcome")
                if self.trainee is None:
                    raise ReviewError("a preceptorship cannot be signed without naming the trainee")

    def _validate_graded_report(self) -> None:
        if self.graded_report_uid is not None:
            check_uid(self.graded_report_uid, "graded report")
            if self.kind != "second-opinion":
                raise ReviewError("only a second opinion grades a report (graded_report)")
        if self.no_report_graded:
            if self.kind != "second-opinion":
                raise ReviewError("only a second opinion grades a report (no report graded)")
            if self.graded_report_uid:
                raise ReviewError("a second opinion names the report it grades or says none was graded, not both")

    def _validate_peer_review(self) -> None:
        score = self.peer_review_score
        if score is not None and score not in PEER_REVIEW_SCORES:
            raise ReviewError(f"unknown peer-review score {score!r}; expected one of {', '.join(PEER_REVIEW_SCORES)}")
        if self.mdt_outcome is not None and self.mdt_outcome not in MDT_OUTCOMES:
            raise ReviewError(f"unknown MDT outcome {self.mdt_outcome!r}; expected one of {', '.join(MDT_OUTCOMES)}")
        if not isinstance(self.reporter, str) or len(self.reporter) > 192:
            raise ReviewError("reporter must be a name of at most 192 characters")
        if score is not None and self.agreement is not None and (score == "1") != (self.agreement == "agree"):
            raise ReviewError(
                f"peer-review score {score} contradicts the agreement {self.agreement!r} "
                "(score 1 is agreement; 2 and 3 are discrepancies)"
            )

    def referenced_uids(self) -> list[str]:
        """Every SOP Instance UID the review points at, in first-mention order."""
        uids: list[str] = [self.graded_report_uid] if self.graded_report_uid else []
        for item in [*self.views, *self.image_ratings, *self.comments, *self.key_images]:
            uid = getattr(item, "sop_instance_uid", None)
            if uid and uid not in uids:
                uids.append(uid)
        return uids

    # plain-dict form (for drafts kept by the UI, JSON, tests)
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Review:
        """Inverse of :meth:`to_dict`; raises ValueError on anything malformed."""
        if not isinstance(d, dict):
            raise ReviewError("a review must be a JSON object")
        try:
            d = dict(d)
            d["author"] = Person(**d["author"])
            if d.get("trainee"):
                d["trainee"] = Person(**d["trainee"])
            if d.get("verifier"):
                d["verifier"] = Verifier(**d["verifier"])
            d["views"] = [ViewCheck(**v) for v in d.get("views") or []]
            d["image_ratings"] = [ImageRating(**v) for v in d.get("image_ratings") or []]
            d["comments"] = [ImageComment(**v) for v in d.get("comments") or []]
            d["key_images"] = [KeyImage(**v) for v in d.get("key_images") or []]
            return cls(**d)
        except (KeyError, TypeError) as exc:
            raise ReviewError(f"malformed review: {exc}") from None
