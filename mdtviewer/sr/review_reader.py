"""Reading a review SR written by :mod:`mdtviewer.sr.writer` back into the :class:`~mdtviewer.sr.model.Review` it holds.

The writer turns a Review into an SR; this module is the way back, field by
field (``review_from_sr(build_review_sr(r, ...)) == r``).  Any SR is first
read by the tolerant :func:`mdtviewer.sr.reader.read_sr`; a document that is
not one of our reviews raises :class:`~mdtviewer.sr.model.ReviewError`.
"""

from __future__ import annotations

from mdtviewer.sr import codes
from mdtviewer.sr.model import (
    ImageComment,
    ImageRating,
    KeyImage,
    Person,
    Review,
    ReviewError,
    Verifier,
    ViewCheck,
    person_key,
)
from mdtviewer.sr.reader import ContentNode, SRDocument, read_sr


def _image_of(node: ContentNode) -> tuple[str | None, int | None]:
    for c in node.children:
        if c.image is not None:
            return c.image.sop_instance_uid, (c.image.frames[0] if c.image.frames else None)
    return None, None


def _image_frames_of(node: ContentNode) -> tuple[str | None, list[int | None]]:
    """The image a finding is inferred from, and each frame it names ([None]: the whole image)."""
    for c in node.children:
        if c.image is not None:
            return c.image.sop_instance_uid, [int(f) for f in c.image.frames] if c.image.frames else [None]
    return None, []


def _child_text(node: ContentNode, concept: codes.C) -> str:
    c = node.first(concept)
    return c.text or "" if c is not None else ""


def _persons(root: ContentNode) -> list[Person]:
    """Person observers of the root's observer context, in order."""
    groups: list[dict] = []
    for c in root.children:
        if c.relationship != "HAS OBS CONTEXT":
            continue
        if codes.OBSERVER_TYPE.same(c.concept):
            groups.append({"person": codes.PERSON.same(c.code)})
            continue
        if not groups:
            groups.append({"person": True})
        g = groups[-1]
        if codes.PERSON_NAME.same(c.concept):
            g["name"] = c.text or ""
        elif codes.PERSON_ORG.same(c.concept):
            g["org"] = c.text or ""
        elif codes.ROLE_IN_ORG.same(c.concept):
            g["org_role"] = c.code
        elif codes.ROLE_IN_PROC.same(c.concept):
            g["proc_role"] = c.code
    out = []
    for g in groups:
        if not g.get("person") or not g.get("name"):
            continue
        role = None
        for key, (org_code, _proc) in codes.ROLE_CODES.items():
            if org_code.same(g.get("org_role")):
                role = key
        if role is None:
            raise ReviewError(f"observer {g['name']!r} has no role this viewer knows")
        out.append(Person(g["name"], role, g.get("org", "")))
    return out


def review_from_document(doc: SRDocument) -> Review:
    """The Review an mdtviewer SR holds (ReviewError, a ValueError, if it is not one of ours)."""
    root = doc.root
    type_node = root.first(codes.REVIEW_TYPE)
    kind = codes.lookup(codes.KIND_CODES, type_node.code) if type_node is not None else None
    if kind is None:
        raise ReviewError("not an mdtviewer review (no review type item)")
    persons = _persons(root)
    if not persons:
        raise ReviewError("review has no author in its observer context")
    author = persons[0]
    trainee = next((p for p in persons[1:] if p.role == "trainee"), None)
    if trainee is None and author.role == "trainee" and kind == "preceptorship":
        trainee = author  # a trainee's own record: one observer, its author and its trainee

    protocol = None
    views: list[ViewCheck] = []
    ratings: list[ImageRating] = []
    comments: list[ImageComment] = []
    findings = root.first(codes.FINDINGS)
    if findings is not None:
        for c in findings.children:
            if codes.ACQ_PROTOCOL.same(c.concept):
                protocol = c.text or None
            elif codes.PROTOCOL_VIEWS.same(c.concept):
                for v in c.children:
                    if v.value_type != "CODE" or v.concept is None:
                        continue
                    uid, frame = _image_of(v)
                    present = codes.PRESENT.same(v.code)
                    views.append(
                        ViewCheck(v.concept.value, present, uid if present else None, frame if present else None)
                    )
            elif codes.IMAGE_QUALITY.same(c.concept):
                uid, frames = _image_frames_of(c)
                quality = codes.lookup(codes.QUALITY_CODES, c.code)
                if uid and quality:
                    ratings += [ImageRating(uid, f, quality, _child_text(c, codes.REASON)) for f in frames]
            elif codes.COMMENT.same(c.concept):
                uid, frames = _image_frames_of(c)
                if uid:
                    comments += [ImageComment(uid, f, c.text or "") for f in frames]
    key_images: list[KeyImage] = []
    kin = root.first(codes.KEY_IMAGES)
    if kin is not None:
        for c in kin.children:
            if c.image is not None:
                key_images.append(KeyImage(c.image.sop_instance_uid, c.image.frames[0] if c.image.frames else None))
    agreement = None
    agreement_reason = ""
    outcome = None
    score = mdt_outcome = None
    reporter = ""
    graded = None
    no_report = False
    summary = ""
    concl = root.first(codes.CONCLUSIONS)
    if concl is not None:
        a = concl.first(codes.AGREEMENT)
        if a is not None:
            agreement = codes.lookup(codes.AGREEMENT_CODES, a.code)
            agreement_reason = _child_text(a, codes.REASON)
        o = concl.first(codes.OUTCOME)
        if o is not None:
            outcome = codes.lookup(codes.OUTCOME_CODES, o.code)
        p = concl.first(codes.PEER_SCORE)
        if p is not None:
            score = codes.lookup(codes.PEER_SCORE_CODES, p.code)
        m = concl.first(codes.MDT_OUTCOME)
        if m is not None:
            mdt_outcome = codes.lookup(codes.MDT_OUTCOME_CODES, m.code)
        reporter = _child_text(concl, codes.REPORTER)
        g = concl.first(codes.GRADED_REPORT)
        if g is not None and g.composite is not None:
            graded = g.composite.sop_instance_uid
        no_report = graded is None and concl.first(codes.NO_GRADED_REPORT) is not None and kind == "second-opinion"
        summary = _child_text(concl, codes.SUMMARY)
    verifier = None
    if doc.verification_flag == "VERIFIED" and doc.verifiers:
        first = doc.verifiers[0]
        # the signer's role: that of the last person observer who is the signer (the writer adds the signer,
        # in the role they signed in, after the author and trainee); "" when the signer is not an observer
        key = person_key(first.name)
        role = next((p.role for p in reversed(persons) if person_key(p.name) == key), "")
        verifier = Verifier(first.name, first.organization, first.datetime, role=role)
    return Review(
        kind=kind,
        author=author,
        study_instance_uid=doc.study_instance_uid,
        summary=summary,
        trainee=trainee,
        agreement=agreement,
        agreement_reason=agreement_reason,
        peer_review_score=score,
        reporter=reporter,
        mdt_outcome=mdt_outcome,
        protocol=protocol,
        views=views,
        image_ratings=ratings,
        outcome=outcome,
        comments=comments,
        key_images=key_images,
        verifier=verifier,
        predecessor_sop_instance_uid=doc.predecessors[0] if doc.predecessors else None,
        graded_report_uid=graded,
        no_report_graded=no_report,
    )


def review_from_sr(ds_or_path) -> Review:
    """Round trip: an SR written by :func:`mdtviewer.sr.writer.build_review_sr` -> the same Review, field by field."""
    return review_from_document(read_sr(ds_or_path))
