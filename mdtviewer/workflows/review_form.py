"""The review form's state, without Qt: what the reviewer filled in, what makes it a valid Review.

The review editor (:mod:`mdtviewer.ui.review.review_editor`) shows an
:class:`EditorState` and reads it back; :func:`build_review` turns it into a
validated :class:`mdtviewer.sr.model.Review` (a one-line :class:`ReviewFormError`
says what to fix) and :func:`state_from_review` does the reverse when a draft
is continued or a signed review amended.  The form's list operations
(comment, tick a view, rate a frame, remove) are methods here, so they are
tested without clicking; :func:`write_review` saves a built review (draft,
signed or amendment) and runs on a worker.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from mdtviewer.dicom.model import Instance
from mdtviewer.infra.errors import MdtError
from mdtviewer.sr import model as m
from mdtviewer.sr.protocols import Protocol as ScanProtocol
from mdtviewer.workflows.reviewer_profile import ROLE_LABELS as ROLE_LABELS  # the form's role labels (re-exported)

log = logging.getLogger(__name__)

KIND_LABELS = {"second-opinion": "Second opinion", "preceptorship": "Preceptorship"}
#: the sign-off question for a second opinion that names no graded report (issue 10.10, QA2 13)
NO_REPORT_QUESTION = "No report graded: sign anyway?"
AGREEMENT_LABELS = {
    "agree": "Agree",
    "minor-discrepancy": "Minor discrepancy",
    "major-discrepancy": "Major discrepancy",
}
QUALITY_LABELS = {"good": "Good", "adequate": "Adequate", "poor": "Poor"}
OUTCOME_LABELS = {"competent": "Competent", "needs-supervision": "Needs supervision"}
#: RADPEER-style peer-review score: the short text of the choice, then its meaning spelled out (issue 13)
PEER_SCORE_LABELS = {
    "1": "1 \u2014 Concur",
    "2a": "2a \u2014 Understandable, unlikely significant",
    "2b": "2b \u2014 Understandable, likely significant",
    "3a": "3a \u2014 Should be made, unlikely significant",
    "3b": "3b \u2014 Should be made, likely significant",
}
PEER_SCORE_MEANINGS = {
    "1": "1: concur with the interpretation (agrees with the report).",
    "2a": "2a: discrepancy in interpretation not ordinarily expected to be made (an understandable miss); "
          "unlikely to be clinically significant.",
    "2b": "2b: discrepancy in interpretation not ordinarily expected to be made (an understandable miss); "
          "likely to be clinically significant.",
    "3a": "3a: discrepancy in interpretation that should be made most of the time; "
          "unlikely to be clinically significant.",
    "3b": "3b: discrepancy in interpretation that should be made most of the time; "
          "likely to be clinically significant.",
}
MDT_OUTCOME_LABELS = {
    "report-confirmed": "Report confirmed",
    "discrepancy-found": "Discrepancy found",
    "further-imaging": "Further imaging",
}


class ReviewFormError(MdtError, ValueError):
    """The form cannot become a review yet; ``reason`` says what to fix (one line)."""

    category = "review-form"


class InstanceIndex(Protocol):
    """What the form needs from the open studies (a :class:`mdtviewer.dicom.index.StudyIndex`)."""

    def find_instance(self, sop_instance_uid: str) -> Instance | None: ...


@dataclass
class ViewState:
    """One view of the chosen protocol and the image/frame that shows it (None: not yet found)."""

    view_id: str
    label: str
    required: bool = True
    sop_instance_uid: str | None = None
    frame: int | None = None

    @property
    def present(self) -> bool:
        return bool(self.sop_instance_uid)


@dataclass
class EditorState:
    """Everything the form holds, as plain data."""

    kind: str = "second-opinion"
    author_name: str = ""
    author_role: str = "second-reader"
    author_organization: str = ""
    study_instance_uid: str = ""
    summary: str = ""
    # second opinion
    agreement: str | None = None
    agreement_reason: str = ""
    #: peer review: RADPEER-style score and who wrote the report under review; MDT outcome (either kind)
    peer_review_score: str | None = None
    reporter: str = ""
    mdt_outcome: str | None = None
    #: the report (SR or PDF) this second opinion grades, by SOP Instance UID
    graded_report_uid: str | None = None
    # preceptorship
    trainee_name: str = ""
    protocol: str | None = None
    views: list[ViewState] = field(default_factory=list)
    ratings: list[m.ImageRating] = field(default_factory=list)
    outcome: str | None = None
    # both
    comments: list[m.ImageComment] = field(default_factory=list)
    key_images: list[m.KeyImage] = field(default_factory=list)
    #: the signed review this one amends (its file and SOP Instance UID)
    amends_path: Path | None = None
    predecessor_sop_instance_uid: str | None = None
    #: the draft file being continued (a later save replaces it)
    draft_path: Path | None = None

    # ------------------------------------------------------------------ reading
    def missing_views(self) -> list[ViewState]:
        return [v for v in self.views if v.required and not v.present]

    def is_empty(self) -> bool:
        """Nothing worth keeping yet (a new study on screen may take the form over)."""
        return not (
            self.comments
            or self.ratings
            or any(v.present for v in self.views)
            or self.summary.strip()
            or self.draft_path
            or self.amends_path
        )

    def mode_text(self) -> str:
        """What saving will do, for the line above the form."""
        if self.amends_path:
            text = (
                "Amending a signed review: saving writes a new report that references it; "
                "the signed one is kept unchanged."
            )
        elif self.draft_path:
            text = "Continuing a saved draft."
        else:
            text = "New review."
        if self.study_instance_uid:
            text += f" Study \u2026{self.study_instance_uid[-12:]}."
        return text

    def missing_text(self) -> str:
        """The line under the protocol's views: what is still missing."""
        missing = self.missing_views()
        if not self.protocol:
            return "Choose the protocol the scan followed to check its required views."
        if missing:
            names = [v.label for v in missing]
            shown = ", ".join(names[:3]) + (f" \u2026 and {len(names) - 3} more" if len(names) > 3 else "")
            return f"{len(missing)} required view{'s' if len(missing) != 1 else ''} missing: {shown}"
        return "All required views present."

    # ------------------------------------------------------------------ changing
    def check_study(self, study_instance_uid: str) -> None:
        """An image of *study_instance_uid* is about to be referenced: it must be the study under review.

        The first reference fixes the study when none is set yet.
        """
        if self.study_instance_uid and study_instance_uid and study_instance_uid != self.study_instance_uid:
            raise ReviewFormError("The image on screen belongs to another study than the one under review.")
        if not self.study_instance_uid and study_instance_uid:
            self.study_instance_uid = study_instance_uid

    def add_comment(self, sop_instance_uid: str, frame: int | None, text: str) -> m.ImageComment:
        text = text.strip()
        if not text:
            raise ReviewFormError("Type the comment first.")
        c = m.ImageComment(sop_instance_uid, frame, text)
        self.comments.append(c)
        return c

    def remove_comment(self, row: int) -> bool:
        if 0 <= row < len(self.comments):
            del self.comments[row]
            return True
        return False

    def rate(self, sop_instance_uid: str, frame: int | None, quality: str, reason: str = "") -> m.ImageRating:
        """Rate a frame's image quality; a second rating of the same frame replaces the first."""
        if quality not in m.QUALITIES:
            raise ReviewFormError(f"unknown image quality {quality!r}")
        rating = m.ImageRating(sop_instance_uid, frame, quality, reason.strip())
        self.ratings = [r for r in self.ratings if (r.sop_instance_uid, r.frame) != (sop_instance_uid, frame)] + [
            rating
        ]
        return rating

    def remove_rating(self, row: int) -> bool:
        if 0 <= row < len(self.ratings):
            del self.ratings[row]
            return True
        return False

    def tick_view(self, view_id: str, sop_instance_uid: str | None, frame: int | None = None) -> bool:
        """Link a protocol view to an image and frame (None clears it); False when the view is unknown."""
        for v in self.views:
            if v.view_id == view_id:
                v.sop_instance_uid, v.frame = (sop_instance_uid, frame) if sop_instance_uid else (None, None)
                return True
        return False

    def choose_protocol(self, protocol: ScanProtocol | None, protocol_id: str | None = None) -> None:
        """Switch protocol, keeping the links already made for views of the same id."""
        self.protocol = protocol.id if protocol is not None else protocol_id
        self.views = views_for_protocol(protocol, self.views) if protocol is not None else []

    def next_review(self, study_instance_uid: str = "") -> EditorState:
        """A new, empty form by the same author (for the study on screen, else this one's)."""
        return EditorState(
            kind=self.kind,
            author_name=self.author_name,
            author_role=self.author_role,
            author_organization=self.author_organization,
            study_instance_uid=study_instance_uid or self.study_instance_uid,
        )

    def after_save(self, path: Path, signed: bool, sop_instance_uid: str | None) -> None:
        """The review was written to *path*: a signed one is closed (later changes amend it)."""
        if signed:
            self.amends_path = Path(path)
            self.draft_path = None
            self.predecessor_sop_instance_uid = sop_instance_uid
        else:
            if self.amends_path is not None:
                # the amendment is now a draft of its own; keep its predecessor link
                self.amends_path = None
            self.draft_path = Path(path)


def score_conflict(agreement: str | None, score: str | None) -> str:
    """Why *score* and *agreement* contradict each other ('' when they do not): score 1 is agreement."""
    if not score or not agreement or (score == "1") == (agreement == "agree"):
        return ""
    if score == "1":
        return "Score 1 means the report is agreed with: choose Agree, or a score of 2 or 3."
    return f"Score {score} is a discrepancy: choose Minor or Major discrepancy, or score 1."


def reporter_candidates(author_observers: list[str] | None, verifier_names: list[str] | None,
                        listed_author: str = "") -> list[str]:
    """Who wrote the graded report, as far as it says: its authors, then its verifiers (DICOM PN carets
    as spaces), then the author the report list shows; each name once, in that order."""
    out: list[str] = []
    for raw in [*(author_observers or []), *(verifier_names or []), *listed_author.split(";")]:
        name = " ".join(str(raw or "").replace("^", " ").split())
        if name and name.casefold() not in {o.casefold() for o in out}:
            out.append(name[:192])
    return out


def default_role_for(kind: str, role: str) -> str:
    """The author's role when the review kind changes (a trainer signs preceptorships, a second reader opinions)."""
    if kind == "preceptorship" and role in ("second-reader", "trainee"):
        return "trainer"
    if kind == "second-opinion" and role == "trainer":
        return "second-reader"
    return role


def views_for_protocol(protocol: ScanProtocol, previous: list[ViewState] | None = None) -> list[ViewState]:
    """The protocol's views, keeping the links already made for the same view ids."""
    old = {v.view_id: v for v in previous or []}
    out = []
    for pv in protocol.views:
        o = old.get(pv.id)
        out.append(ViewState(pv.id, pv.label, pv.required, o.sop_instance_uid if o else None, o.frame if o else None))
    return out


def build_review(state: EditorState, verifier: m.Verifier | None = None) -> m.Review:
    """The review the form describes; :class:`ReviewFormError` (one line) says what to fix.

    Fields of the other kind are dropped (a second opinion keeps no protocol).
    Required views without an image are recorded as missing; optional ones
    without an image are left out.  The model's own checks
    (:class:`mdtviewer.sr.model.ReviewError`) come out as a ReviewFormError too.
    """
    try:
        return _build_review(state, verifier)
    except m.ReviewError as exc:
        raise ReviewFormError(exc.reason) from None


def _build_review(state: EditorState, verifier: m.Verifier | None) -> m.Review:
    name = state.author_name.strip()
    if not name:
        raise ReviewFormError("enter the author's name")
    author = m.Person(name, state.author_role, state.author_organization.strip())
    common: dict[str, Any] = dict(
        kind=state.kind,
        author=author,
        study_instance_uid=state.study_instance_uid,
        summary=state.summary.strip(),
        comments=list(state.comments),
        key_images=list(state.key_images),
        verifier=verifier,
        predecessor_sop_instance_uid=state.predecessor_sop_instance_uid,
    )
    if not state.study_instance_uid:
        raise ReviewFormError("open an image of the study to review first")
    if state.kind == "second-opinion":
        reason = state.agreement_reason.strip()
        if reason and not state.agreement:
            raise ReviewFormError("choose an agreement grade for the reason given")
        conflict = score_conflict(state.agreement, state.peer_review_score)
        if conflict:
            raise ReviewFormError(conflict)
        return m.Review(**common, agreement=state.agreement or None, agreement_reason=reason,
                        peer_review_score=state.peer_review_score or None,
                        reporter=" ".join(state.reporter.split()),
                        mdt_outcome=state.mdt_outcome or None, graded_report_uid=state.graded_report_uid or None)
    if state.kind != "preceptorship":
        raise ReviewFormError(f"unknown review kind {state.kind!r}")
    views = []
    if state.protocol:
        for v in state.views:
            if v.present:
                views.append(m.ViewCheck(v.view_id, True, v.sop_instance_uid, v.frame))
            elif v.required:
                views.append(m.ViewCheck(v.view_id, False))
    trainee = m.Person(state.trainee_name.strip(), "trainee") if state.trainee_name.strip() else None
    if trainee is None and author.role == "trainee":
        trainee = author  # a trainee writing their own preceptorship record is the trainee
    return m.Review(
        **common,
        trainee=trainee,
        protocol=state.protocol or None,
        views=views,
        image_ratings=list(state.ratings),
        outcome=state.outcome or None,
        mdt_outcome=state.mdt_outcome or None,
    )


def sign_check(state: EditorState) -> m.Verifier:
    """The verifier for signing the form now; :class:`ReviewFormError` when it cannot be signed yet."""
    name = state.author_name.strip()
    org = state.author_organization.strip()
    if not name or not org:
        raise ReviewFormError("To sign, enter your name and organisation (they go on the record as the verifier).")
    verifier = m.Verifier(name, org, m.now_dt())
    try:
        build_review(state, verifier)
    except ReviewFormError as exc:
        raise ReviewFormError(f"Cannot sign yet: {exc.reason}") from None
    return verifier


def state_from_review(review: m.Review, protocols: dict[str, ScanProtocol] | None = None) -> EditorState:
    """The form for an existing review (draft to continue, signed review to amend)."""
    st = EditorState(
        kind=review.kind,
        author_name=review.author.name,
        author_role=review.author.role,
        author_organization=review.author.organization,
        study_instance_uid=review.study_instance_uid,
        summary=review.summary,
        agreement=review.agreement,
        agreement_reason=review.agreement_reason,
        peer_review_score=review.peer_review_score,
        reporter=review.reporter,
        mdt_outcome=review.mdt_outcome,
        trainee_name=review.trainee.name if review.trainee else "",
        protocol=review.protocol,
        ratings=list(review.image_ratings),
        outcome=review.outcome,
        comments=list(review.comments),
        key_images=list(review.key_images),
        predecessor_sop_instance_uid=review.predecessor_sop_instance_uid,
        graded_report_uid=review.graded_report_uid,
    )
    proto = (protocols or {}).get(review.protocol or "")
    checks = {v.view_id: v for v in review.views}
    if proto is not None:
        st.views = views_for_protocol(proto)
    else:  # protocol file gone: keep what the review recorded
        st.views = [ViewState(v.view_id, v.view_id, True) for v in review.views]
    for v in st.views:
        c = checks.get(v.view_id)
        if c is not None and c.present:
            v.sop_instance_uid, v.frame = c.sop_instance_uid, c.frame
    return st


# --------------------------------------------------------------------- the images a review needs


class StudiesIndex(InstanceIndex, Protocol):
    def studies(self) -> list[tuple[Any, Any]]: ...


def study_instance(index: StudiesIndex, study_instance_uid: str) -> Instance | None:
    """One instance of the study (an image if there is one), from a StudyIndex."""
    best = None
    for _patient, study in index.studies():
        if study.study_instance_uid != study_instance_uid:
            continue
        for inst in study.instances():
            if inst.error:
                continue
            if inst.kind in ("image", "cine"):
                return inst
            best = best or inst
    return best


def evidence_for(review: m.Review, index: StudiesIndex | None) -> list[Path]:
    """Files of every image the review references, plus one instance of the
    reviewed study (the SR takes the patient and study modules from it)."""
    if index is None:
        raise ReviewFormError("no studies are open")
    out: list[Path] = []
    in_study = False
    for uid in review.referenced_uids():
        inst = index.find_instance(uid)
        if inst is None:
            raise ReviewFormError(
                f"the referenced image \u2026{uid[-12:]} is not among the open studies; open it first"
            )
        out.append(Path(inst.path))
        in_study = in_study or inst.study_instance_uid == review.study_instance_uid
    if not in_study:
        inst = study_instance(index, review.study_instance_uid)
        if inst is None:
            raise ReviewFormError("the reviewed study is not open; open it first")
        out.append(Path(inst.path))
    return out


def frame_text(frame: int | None) -> str:
    return f"frame {frame}" if frame else "image"


def reference_label(uid: str | None, frame: int | None, inst: Instance | None) -> str:
    """'frame 7/34 of US #1 (…151815.1.1)': enough to recognise the image, no identifiers."""
    tail = f"\u2026{uid[-10:]}" if uid else "?"
    if inst is None:
        return f"{frame_text(frame)} of {tail}"
    n = int(inst.number_of_frames or 0)
    what = f"frame {frame}/{n}" if frame and n > 1 else "image"
    num = f" #{inst.instance_number}" if inst.instance_number is not None else ""
    return f"{what} of {inst.modality or 'image'}{num} ({tail})"


# --------------------------------------------------------------------- the reviewer remembered on this computer


def remembered_reviewer() -> dict[str, Any]:
    """Who wrote the last review here (name, role, organisation, send_to), {} when nobody yet."""
    from mdtviewer.infra import settings

    try:
        saved = settings.get_section("reviewer") or {}
    except (OSError, ValueError) as exc:  # settings are a convenience: a broken file is not a reason to stop
        log.warning("reviewer settings unreadable: %s", exc)
        return {}
    return saved if isinstance(saved, dict) else {}


def with_remembered_author(st: EditorState) -> EditorState:
    """*st* with the last reviewer's name, role and organisation (most reviews are by the same person)."""
    saved = remembered_reviewer()
    if saved:
        st.author_name = str(saved.get("name", "") or "")
        if saved.get("role") in m.ROLES:
            st.author_role = saved["role"]
        st.author_organization = str(saved.get("organization", "") or "")
    return st


def remember_reviewer(st: EditorState, send_to: str | None) -> None:
    from mdtviewer.infra import settings

    try:
        settings.set_section(
            "reviewer",
            {
                "name": st.author_name.strip(),
                "role": st.author_role,
                "organization": st.author_organization.strip(),
                "send_to": send_to,
            },
        )
    except OSError as exc:
        log.warning("could not remember the reviewer: %s", exc)


# --------------------------------------------------------------------- writing (worker thread)


def write_review(
    review: m.Review,
    evidence: list[Path],
    *,
    sign: m.Verifier | None = None,
    amends: Path | None = None,
    replaces_draft: Path | None = None,
) -> Path:
    """Write the review SR (draft, signed, or amendment); returns the new file.

    Runs on a worker thread.  A continued draft replaces the previous draft
    file only after the new one is safely written (drafts are not records
    yet; signed reviews are never touched).
    """
    from mdtviewer.workflows import reviews as api

    if amends is not None:
        if sign is not None:
            review = replace(review, verifier=sign)
        path = Path(api.amend(amends, review, evidence))
    elif sign is not None:
        path = Path(api.sign(replace(review, verifier=None) if review.verifier else review, sign, evidence))
    else:
        path = Path(api.save_draft(review, evidence))
    if replaces_draft is not None and Path(replaces_draft).resolve() != path.resolve():
        discard_draft(Path(replaces_draft))
    return path


def discard_draft(path: Path) -> None:
    """Remove a superseded draft, but only if it really is an unsigned draft."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["VerificationFlag"])
        if str(ds.get("VerificationFlag", "")).upper() == "UNVERIFIED":
            path.unlink()
    except (OSError, ValueError, pydicom.errors.InvalidDicomError) as exc:  # a leftover draft is harmless
        log.warning("could not remove superseded draft: %s", exc)


def sop_instance_uid_of(path: Path) -> str | None:
    """The SOP Instance UID of a review file just written (None when it cannot be read back)."""
    import pydicom

    try:
        return str(pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"]).SOPInstanceUID)
    except (OSError, ValueError, AttributeError, pydicom.errors.InvalidDicomError):
        return None
