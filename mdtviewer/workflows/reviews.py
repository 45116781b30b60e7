"""Save, sign, amend, send and list review SRs.

Reviews are written atomically to ``<store>/reviews/<study uid>/`` (outside
the retrieved-image cache, so purging the cache never loses a draft), or to a
folder the caller names (e.g. the study's own folder).  Signed documents are
never modified: changing one writes an amendment that names it in the
Predecessor Documents Sequence.  Sending uses the PACS store; if the PACS is
unreachable or refuses, the file is queued in the outbox and retried, so
nothing is lost.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from mdtviewer.dicom import uids, values
from mdtviewer.dicom.reader import read_dataset
from mdtviewer.dicom.walk import walk_files
from mdtviewer.infra import paths
from mdtviewer.infra.atomic import atomic_save_dataset
from mdtviewer.infra.errors import DicomInputError, MdtError, bug_reason
from mdtviewer.sr.model import Review, ReviewError, Verifier, now_dt
from mdtviewer.sr.reader import SRDocument, read_sr
from mdtviewer.sr.writer import build_review_sr

log = logging.getLogger(__name__)

#: files bigger than this are images, not SRs: skipped when listing reviews
_MAX_SR_BYTES = 16 << 20
#: the store's own bookkeeping files, never DICOM
_NOT_DICOM_SUFFIXES = (".part", ".json", ".sqlite", ".sqlite-journal", ".sqlite-wal")


def review_dir(study_instance_uid: str) -> Path:
    """``<store>/reviews/<study>``: a Study UID from a file is never a path (``..``, ``/x``): it is hashed."""
    from mdtviewer.pacs.localstore import path_component

    d = paths.store_dir() / "reviews" / path_component(study_instance_uid)
    d.mkdir(parents=True, exist_ok=True)
    return d


def _file_name(ds) -> str:
    state = "signed" if ds.VerificationFlag == "VERIFIED" else "draft"
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"SR_{stamp}_{state}_{ds.SOPInstanceUID}.dcm"


def _write(ds, folder: str | os.PathLike | None, study_uid: str) -> Path:
    target_dir = Path(folder) if folder is not None else review_dir(study_uid)
    path = atomic_save_dataset(ds, target_dir / _file_name(ds))
    audit_sr_written(ds)
    return path


def audit_sr_written(ds) -> None:
    """Audit trail: an SR was written (or signed), with its study, never the patient."""
    from mdtviewer.infra import audit
    from mdtviewer.workflows.reviewer_profile import os_account

    signed = ds.get("VerificationFlag") == "VERIFIED"
    detail = {"sop_instance_uid": str(ds.SOPInstanceUID), "completion": values.text(ds, "CompletionFlag"),
              "os_account": os_account()}  # the computer account, whatever name the record carries
    if signed:
        vo = ds.VerifyingObserverSequence[0]  # (the signer's name is in the SR; the audit keeps no names)
        codes_ = vo.get("VerifyingObserverIdentificationCodeSequence") or []
        if codes_:
            detail["registration"] = str(codes_[0].get("CodeValue", ""))
    audit.record(
        "sr-signed" if signed else "sr-written",
        study_uid=values.text(ds, "StudyInstanceUID"),
        detail=detail,
    )


def save_draft(review: Review, evidence: Iterable, folder: str | os.PathLike | None = None) -> Path:
    """Write *review* as a draft (PARTIAL / UNVERIFIED); returns the new file.

    A continued draft is saved as a new file (new SOP Instance UID): the
    caller may then remove the old draft (never a signed document).
    """
    if review.verifier is not None:
        raise ReviewError("this review is signed; use sign() or amend(), not save_draft()")
    ds = build_review_sr(review, evidence, predecessor=_predecessor_path(review, folder))
    return _write(ds, folder, review.study_instance_uid)


def sign(review: Review, verifier: Verifier, evidence: Iterable, folder: str | os.PathLike | None = None) -> Path:
    """Write *review* signed by *verifier* (COMPLETE / VERIFIED, date-time now unless given)."""
    if not isinstance(verifier, Verifier):
        raise ReviewError("sign() needs a Verifier(name, organization)")
    check_signer(review, verifier)
    if not verifier.datetime:
        verifier = replace(verifier, datetime=now_dt())
    signed = replace(review, verifier=verifier)  # replace() re-validates: a signed review must be complete
    ds = build_review_sr(signed, evidence, predecessor=_predecessor_path(signed, folder))
    return _write(_with_worksheet(ds, folder), folder, review.study_instance_uid)


def check_signer(review: Review, verifier: Verifier) -> None:
    """A signer whose role is known (the reviewer profile's) may not sign what that role may not sign, and a
    trainee never signs off their own preceptorship, whatever role their profile declares (HAZ-030 C5)."""
    from mdtviewer.workflows.reviewer_profile import self_sign_off, sign_refusal

    refusal = sign_refusal(review.kind, verifier.role) if verifier.role else ""
    if not refusal and review.kind == "preceptorship" and review.trainee is not None:
        refusal = self_sign_off(review.trainee.name, verifier.name)
    if refusal:
        raise ReviewError(f"cannot sign: {refusal}")


def _with_worksheet(ds, folder):
    """A signed review includes the study's vascular worksheet (workflows.worksheet.attach_to_review)."""
    from mdtviewer.workflows.worksheet import attach_to_review, study_reports

    extra = [Path(folder)] if folder is not None else None
    return attach_to_review(ds, study_reports(str(ds.StudyInstanceUID), extra))


def amend(
    old_path: str | os.PathLike, new_review: Review, evidence: Iterable, folder: str | os.PathLike | None = None
) -> Path:
    """Write *new_review* as a new SR that names *old_path* as its predecessor.

    The old file is only read, never altered.  The amendment is signed if
    *new_review* has a verifier (its date-time is set now if empty).
    """
    old_path = Path(old_path)
    old = read_dataset(old_path, stop_before_pixels=True)  # DicomInputError with its reason if unreadable
    if values.text(old, "StudyInstanceUID") != new_review.study_instance_uid:
        raise ReviewError("an amendment must be about the same study as the document it amends")
    if not uids.is_sr_class(values.text(old, "SOPClassUID")):
        raise ReviewError(f"{old_path.name} is not a structured report")
    verifier = new_review.verifier
    if verifier is not None:
        check_signer(new_review, verifier)
    if verifier is not None and not verifier.datetime:
        verifier = replace(verifier, datetime=now_dt())
    amended = replace(new_review, verifier=verifier, predecessor_sop_instance_uid=str(old.SOPInstanceUID))
    ds = build_review_sr(amended, evidence, predecessor=old)
    if verifier is not None:
        ds = _with_worksheet(ds, folder)
    return _write(ds, folder, new_review.study_instance_uid)


def _predecessor_path(review: Review, folder) -> Path | None:
    """A review read back from an amendment still names its predecessor: find that file."""
    uid = review.predecessor_sop_instance_uid
    if not uid:
        return None
    dirs = [Path(folder)] if folder is not None else []
    dirs.append(review_dir(review.study_instance_uid))
    for d in dirs:
        for p in d.glob(f"*{uid}*.dcm"):
            return p
        for p in _candidate_files([d]):
            try:
                ds = read_dataset(p, stop_before_pixels=True)
            except (DicomInputError, OSError):
                continue
            if values.text(ds, "SOPInstanceUID") == uid:
                return p
    raise ReviewError("the document this review amends is not in the local store; use amend() with its file")


def send(path: str | os.PathLike, node_name: str) -> str:
    """C-STORE *path* to the saved PACS node; on failure keep it in the outbox.

    Returns a one-line message for the user: "stored on NODE" or
    "NODE: <reason>; kept locally in outbox, will be retried".
    """
    from mdtviewer.pacs import outbox
    from mdtviewer.pacs.connect import open_client
    from mdtviewer.pacs.nodes import get_node

    path = Path(path)
    if not path.is_file():
        raise ReviewError(f"{path.name}: no such file")
    node = get_node(node_name)  # NodeError (a ValueError) for an unknown node: nothing to queue for
    try:
        with open_client(node) as client:
            result = client.store([path])
    except Exception as exc:  # a boundary: whatever happens, the signed review is not lost (bugs logged)
        if isinstance(exc, (MdtError, OSError)):
            reason = getattr(exc, "reason", None) or " ".join(str(exc).split()) or type(exc).__name__
        else:
            log.exception("bug while sending a review")
            reason = bug_reason(exc, "send")
        outbox.queue(path, node_name, reason)
        return f"{node_name}: {reason}; kept locally in outbox, will be retried"
    if result.ok and result.sent:
        return f"stored on {node_name}"
    reason = result.failed[0][1] if result.failed else (result.message or "not stored")
    outbox.queue(path, node_name, reason)
    return f"{node_name}: {reason}; kept locally in outbox, will be retried"


def _candidate_files(folders: Iterable[str | os.PathLike]) -> list[Path]:
    out: list[Path] = []
    for folder in folders:
        root = Path(folder)
        if root.is_file():
            out.append(root)
            continue
        if not root.is_dir():
            continue
        for name, regular in walk_files(root):
            p = Path(name)
            if not regular or p.name.startswith(".") or p.name.endswith(_NOT_DICOM_SUFFIXES):
                continue
            try:
                if p.stat().st_size <= _MAX_SR_BYTES:
                    out.append(p)
            except OSError:
                continue
    return out


def _study_parts(folders: list, study_uid: str) -> list[Path]:
    """In the local store only the study's own folders can hold its documents:
    look there (retrieved files and our reviews), not through every cached study."""
    store = paths.store_dir().resolve()
    out: list[Path] = []
    for f in folders:
        p = Path(f)
        if p.is_dir() and p.resolve() == store:
            safe = re.sub(r"[^0-9A-Za-z._-]", "_", study_uid.strip())[:120] or "unknown"
            out += [p / safe, p / "reviews" / study_uid]
        else:
            out.append(p)
    return out


def reviews_for_study(study_instance_uid: str, folders: Iterable[str | os.PathLike] | None = None) -> list[SRDocument]:
    """Every SR/KOS of the study found in *folders* (default: the local store),
    newest verified first, then unverified newest first.  Unreadable files are
    skipped (the report panel lists what it can).  A document amended by
    another one in the list has ``superseded_by`` set."""
    folders = list(folders) if folders is not None else [paths.store_dir()]
    docs: dict[str, SRDocument] = {}
    for p in _candidate_files(_study_parts(folders, study_instance_uid)):
        try:
            head = read_dataset(p, stop_before_pixels=True)
        except (DicomInputError, OSError):
            continue  # not DICOM, or damaged: the report panel lists what it can
        if values.text(head, "StudyInstanceUID") != study_instance_uid:
            continue
        if not uids.is_sr_class(values.text(head, "SOPClassUID")):
            continue
        try:
            doc = read_sr(p)
        except DicomInputError:
            continue
        docs.setdefault(doc.sop_instance_uid or str(p), doc)
    for d in docs.values():  # mark amended documents, so a list can say "replaced by a later review"
        for pred in d.predecessors:
            if pred in docs and not docs[pred].superseded_by:
                docs[pred].superseded_by = d.sop_instance_uid
    return sorted(docs.values(), key=lambda d: (d.verification_flag != "VERIFIED", _neg(d.sort_datetime)))


def _neg(dt: str) -> tuple:
    """Sort key putting later DICOM date-times first."""
    digits = "".join(ch for ch in dt[:14] if ch.isdigit()).ljust(14, "0")
    return tuple(-int(c) for c in digits)
