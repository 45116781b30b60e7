"""Training and peer-review records across studies, built from the review SRs the viewer writes.

Three views of the same records (issue 13):

- the **logbook** of a trainee: every preceptorship review about them, by
  protocol (reviews, signed, competent / needs supervision, the required views
  missed and how often), image-quality ratings over time;
- the **worklist** of a trainer or second reader: drafts awaiting sign-off,
  reviews amended since the worklist was last seen, second-opinion requests
  (an unsigned second opinion with no agreement grade yet: someone asked, no
  one has answered);
- the **discrepancy audit**: signed second opinions by agreement, by
  RADPEER-style score, by reporter, by study description ("protocol") and
  by month, with counts, rates and 95 % Wilson intervals, and every major
  discrepancy with its study.

Where the reviews come from: the local store (``<data folder>/store``, our own
reviews and what was retrieved), folders the user opened, and a PACS (studies
with an SR in the date range, then at instance level only the report
instances, fetched into the local store; images are never fetched).

Reading is done once: each file's few needed facts are kept in
``<data folder>/logbook-cache.json`` under its path, with its size and
modification time, so a second look at 5,000 SRs stats the files and reads
none.  An amended review counts once, as its latest version (a document named
in another's Predecessor Documents Sequence is left out).

Qt-free; the CLI (:mod:`mdtviewer.cli.logbook`, ``audit``, ``worklist``) and
the window call :func:`collect` then one of :func:`logbook`, :func:`worklist`,
:func:`discrepancy_audit`.  Exports (CSV, PDF) are pseudonymised unless
``show_identifiers``: studies are "case 7K3Q-M2XA" (:func:`case_numbers`: a keyed
hash of the Study Instance UID with this installation's secret, so a study keeps
its number from one export to the next), no patient name, ID, accession or UID.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import threading
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mdtviewer.dicom import uids, values
from mdtviewer.dicom.reader import read_dataset
from mdtviewer.dicom.walk import walk_files
from mdtviewer.infra import paths
from mdtviewer.infra.atomic import atomic_write_bytes, atomic_write_text
from mdtviewer.infra.errors import DicomInputError, MdtError, bug_reason
from mdtviewer.sr.model import AGREEMENTS, MDT_OUTCOMES, PEER_REVIEW_SCORES, QUALITIES, ReviewError
from mdtviewer.workflows.reviewer_profile import SIGN_PRECEPTORSHIP_ROLES, self_sign_off

log = logging.getLogger(__name__)

CACHE_NAME = "logbook-cache.json"
SEEN_NAME = "worklist-seen.json"
#: bump when the cached record's fields change: older caches are then ignored
CACHE_VERSION = 2
_MAX_SR_BYTES = 16 << 20
_NOT_DICOM_SUFFIXES = (".part", ".json", ".sqlite", ".sqlite-journal", ".sqlite-wal", ".jsonl", ".log")
NO_PROTOCOL = "(none)"
NO_TRAINEE = "(not named)"
NO_REPORTER = "(not recorded)"


class LogbookError(MdtError):
    """The records could not be gathered (one-line reason)."""

    category = "logbook"


# -- one review, as much as the three views need -------------------------------------------------


@dataclass
class ReviewRecord:
    """The facts of one review SR that the logbook, worklist and audit use."""

    sop_instance_uid: str
    study_instance_uid: str
    path: str
    kind: str  # second-opinion | preceptorship
    signed: bool
    study_date: str = ""  # YYYYMMDD of the reviewed study (the period of the scan)
    content_datetime: str = ""
    verified_datetime: str = ""
    author: str = ""
    author_role: str = ""
    #: who signed (Verifying Observer Name) and the role they signed in, "" when unknown: the role is that of
    #: the person observer who is the signer (a trainer signing is written as one, QA2 5)
    verifier: str = ""
    signer_role: str = ""
    trainee: str = ""
    protocol: str = ""
    views: dict[str, bool] = field(default_factory=dict)  # view id -> present
    quality: dict[str, int] = field(default_factory=dict)  # good/adequate/poor -> images rated
    outcome: str = ""
    agreement: str = ""
    peer_review_score: str = ""
    mdt_outcome: str = ""
    reporter: str = ""
    summary: str = ""
    study_description: str = ""
    predecessors: list[str] = field(default_factory=list)
    # identifiers: only ever shown with show_identifiers
    patient_name: str = ""
    patient_id: str = ""
    accession_number: str = ""

    @property
    def month(self) -> str:
        d = self.study_date or self.content_datetime[:8]
        return f"{d[:4]}-{d[4:6]}" if len(d) >= 6 and d[:6].isdigit() else "unknown"

    @property
    def amended(self) -> bool:
        return bool(self.predecessors)

    @property
    def trainer_signed(self) -> bool:
        """Signed by someone the document records as a trainer (preceptor), who is not the trainee it
        assesses (a trainee's profile can declare the trainer role: HAZ-030 C5)."""
        return (self.signed and self.signer_role in SIGN_PRECEPTORSHIP_ROLES
                and not (self.trainee and self_sign_off(self.trainee, self.verifier)))

    @property
    def counts_signed(self) -> bool:
        """Signed, for the logbook: a preceptorship outcome counts only when a trainer signed it (QA2 5);
        one signed by anyone else (older files) counts as unsigned, with a note."""
        if self.kind == "preceptorship":
            return self.trainer_signed
        return self.signed

    @property
    def signed_not_by_trainer(self) -> bool:
        return self.kind == "preceptorship" and self.signed and not self.trainer_signed

    @property
    def state(self) -> str:
        """'signed', 'draft', or 'not trainer-signed' (a preceptorship signed by someone not recorded as a trainer)."""
        if self.signed_not_by_trainer:
            return "not trainer-signed"
        return "signed" if self.signed else "draft"

    @property
    def trainer(self) -> str:
        """The trainer of a preceptorship record: its signer when a trainer signed it, else its author when the
        author is a trainer; '' otherwise (a trainee's own draft has no trainer yet: QA2 11)."""
        if self.trainer_signed:
            return self.verifier
        if self.author_role in SIGN_PRECEPTORSHIP_ROLES and not self.signed:
            return self.author
        return ""

    @property
    def is_request(self) -> bool:
        """A second opinion asked for and not yet graded (unsigned, no agreement)."""
        return self.kind == "second-opinion" and not self.signed and not self.agreement


def record_from_dataset(ds, path: str) -> ReviewRecord:
    """The record of one of our review SRs (ReviewError if it is not one)."""
    from mdtviewer.sr.reader import read_sr
    from mdtviewer.sr.review_reader import review_from_document

    doc = read_sr(ds)
    if not doc.is_review:
        raise ReviewError("not an mdtviewer review")
    r = review_from_document(doc)
    # images rated, not frames: one image rated on frames [10, 20] is one rating (one per quality given)
    quality = Counter(q for _uid, q in {(x.sop_instance_uid, x.quality) for x in r.image_ratings})
    return ReviewRecord(
        sop_instance_uid=doc.sop_instance_uid,
        study_instance_uid=doc.study_instance_uid,
        path=path,
        kind=r.kind,
        signed=r.signed,
        study_date=values.text(ds, "StudyDate")[:8],
        content_datetime=doc.content_datetime,
        verified_datetime=r.verifier.datetime if r.verifier else "",
        verifier=r.verifier.name if r.verifier else "",
        signer_role=r.verifier.role if r.verifier else "",
        author=r.author.name,
        author_role=r.author.role,
        trainee=r.trainee.name if r.trainee else "",
        protocol=r.protocol or "",
        views={v.view_id: v.present for v in r.views},
        quality={q: quality[q] for q in QUALITIES if quality[q]},
        outcome=r.outcome or "",
        agreement=r.agreement or "",
        peer_review_score=r.peer_review_score or "",
        mdt_outcome=r.mdt_outcome or "",
        reporter=r.reporter,
        summary=r.summary,
        study_description=values.text(ds, "StudyDescription"),
        predecessors=list(doc.predecessors),
        patient_name=doc.patient_name,
        patient_id=doc.patient_id,
        accession_number=values.text(ds, "AccessionNumber"),
    )


# -- the cache -------------------------------------------------------------------------------------


class RecordCache:
    """``path -> [size, mtime_ns, record | None]`` in the data folder (None: not one of our reviews)."""

    def __init__(self, file: Path | None = None):
        self.file = file if file is not None else paths.home() / CACHE_NAME
        self.entries: dict[str, list] = {}
        self.dirty = False
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("version") == CACHE_VERSION and isinstance(data.get("files"), dict):
                self.entries = data["files"]
        except (OSError, ValueError):
            pass  # no cache yet, or a damaged one: everything is read again

    def get(self, path: str, st: os.stat_result) -> tuple[bool, ReviewRecord | None]:
        e = self.entries.get(path)
        if not e or e[0] != st.st_size or e[1] != st.st_mtime_ns:
            return False, None
        if e[2] is None:
            return True, None
        try:
            return True, ReviewRecord(**e[2])
        except TypeError:
            return False, None

    def put(self, path: str, st: os.stat_result, rec: ReviewRecord | None) -> None:
        self.entries[path] = [st.st_size, st.st_mtime_ns, asdict(rec) if rec is not None else None]
        self.dirty = True

    def save(self, seen_paths: set[str] | None = None) -> None:
        if seen_paths is not None:
            # files gone from the folders looked at are dropped from the cache
            for p in [p for p in self.entries if p not in seen_paths and not os.path.exists(p)]:
                del self.entries[p]
                self.dirty = True
        if not self.dirty:
            return
        try:
            atomic_write_text(self.file, json.dumps({"version": CACHE_VERSION, "files": self.entries},
                                                    ensure_ascii=False, separators=(",", ":")))
            os.chmod(self.file, 0o600)  # it holds patient names, like the store beside it
        except OSError as exc:
            log.warning("logbook cache not saved: %s", exc.strerror or type(exc).__name__)
        self.dirty = False


def _read_record(path: str) -> ReviewRecord | None:
    try:
        ds = read_dataset(path, stop_before_pixels=True)
    except (DicomInputError, OSError):
        return None
    if not uids.is_sr_class(values.text(ds, "SOPClassUID")):
        return None
    try:
        return record_from_dataset(ds, path)
    except (MdtError, ValueError):
        return None  # an SR that is not one of our reviews (or a damaged one)


# -- collecting ------------------------------------------------------------------------------------


@dataclass
class Collection:
    """The latest version of every review found, and what could not be looked at."""

    records: list[ReviewRecord] = field(default_factory=list)
    #: documents left out because a later version amends them
    superseded: int = 0
    files_read: int = 0
    files_cached: int = 0
    problems: list[str] = field(default_factory=list)
    fetched_from_pacs: int = 0


def fetch_reviews_from_pacs(node_name: str, date_from: str | None, date_to: str | None,
                            cancel: threading.Event | None = None) -> tuple[int, list[str]]:
    """Fetch the report instances (never images) of studies in the date range from *node_name*
    (studies with an SR series, then the study's instances at IMAGE level, only the SR/KOS/document
    ones requested) into the local store; returns (instances fetched, problems)."""
    from mdtviewer.pacs.client import StudyQuery, audit_retrieve
    from mdtviewer.pacs.connect import open_client
    from mdtviewer.pacs.localstore import LocalStore
    from mdtviewer.pacs.nodes import get_node

    node = get_node(node_name)  # NodeError (an MdtError) names the saved nodes
    fetched = 0
    problems: list[str] = []
    store = LocalStore()
    try:
        with open_client(node) as client:  # DIMSE or DICOMweb, as the node is
            studies = client.find_studies(StudyQuery(date_from=date_from, date_to=date_to, modality="SR"), cancel)
            for st in studies:
                if cancel is not None and cancel.is_set():
                    break
                res = client.retrieve(st.study_instance_uid, store, cancel=cancel,
                                      select=lambda r: uids.is_report_class(r.sop_class_uid), method="get")
                if res.total and res.remaining and not res.cancelled and node.retrieve == "move":
                    res = client.retrieve(st.study_instance_uid, store, cancel=cancel,
                                          select=lambda r: uids.is_report_class(r.sop_class_uid), method="move")
                if res.fetched:
                    audit_retrieve(node, st.study_instance_uid, res, purpose="reviews for the logbook and audit")
                fetched += res.fetched
                if res.total and res.remaining and not res.cancelled:
                    problems.append(f"{node.name}: {res.message}")
    finally:
        store.close()
    return fetched, problems


def _candidates(roots: Iterable[Path], cancel: threading.Event | None) -> Iterable[str]:
    for root in roots:
        root = Path(os.path.abspath(root))  # the cache is keyed by path: the same file from any working folder
        if root.is_file():
            yield str(root)
            continue
        for name, regular in walk_files(root, cancel):
            base = os.path.basename(name)
            if regular and not base.startswith(".") and not base.endswith(_NOT_DICOM_SUFFIXES):
                yield name


def collect(folders: Iterable[str | os.PathLike] = (), node: str | None = None, date_from: str | None = None,
            date_to: str | None = None, *, local_store: bool = True, cancel: threading.Event | None = None,
            progress: Callable[[int], None] | None = None) -> Collection:
    """Every review SR in the local store (when *local_store*), *folders* and (fetched first) on PACS *node*,
    latest versions only, reviewed studies dated within [*date_from*, *date_to*] (YYYYMMDD, inclusive)."""
    for d in (date_from, date_to):
        if d is not None and not (len(d) == 8 and d.isdigit()):
            raise LogbookError(f"dates are YYYYMMDD, got {d!r}")
    out = Collection()
    if node:
        try:
            out.fetched_from_pacs, out.problems = fetch_reviews_from_pacs(node, date_from, date_to, cancel)
        except MdtError as exc:
            out.problems.append(f"{node}: {exc.reason}" if not exc.reason.startswith(node) else exc.reason)
        except OSError as exc:
            out.problems.append(f"{node}: {exc.strerror or type(exc).__name__}")
        except Exception as exc:  # a boundary: the local records are still worth showing
            log.exception("bug while fetching reviews from a PACS")
            out.problems.append(f"{node}: {bug_reason(exc)}")
    roots: list[Path] = []
    if local_store or node:
        roots.append(paths.store_dir())
    for f in folders:
        p = Path(f)
        if not p.exists():
            raise LogbookError(f"{p}: no such file or folder")
        roots.append(p)
    cache = RecordCache()
    found: dict[str, ReviewRecord] = {}
    seen: set[str] = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # odd headers are not this command's news
        for n, path in enumerate(_candidates(roots, cancel)):
            if path in seen:
                continue
            seen.add(path)
            try:
                st = os.stat(path)
            except OSError:
                continue
            if st.st_size > _MAX_SR_BYTES:
                continue
            hit, rec = cache.get(path, st)
            if hit:
                out.files_cached += 1
            else:
                rec = _read_record(path)
                cache.put(path, st, rec)
                out.files_read += 1
            if rec is not None:
                found.setdefault(rec.sop_instance_uid, rec)
            if progress is not None and n % 500 == 0:
                progress(n)
    cache.save(seen)
    replaced = {p for r in found.values() for p in r.predecessors}
    latest = [r for r in found.values() if r.sop_instance_uid not in replaced]
    out.superseded = len(found) - len(latest)
    out.records = sorted(
        (r for r in latest if _in_range(r, date_from, date_to)),
        key=lambda r: (r.study_date, r.content_datetime, r.sop_instance_uid),
    )
    return out


def _in_range(r: ReviewRecord, date_from: str | None, date_to: str | None) -> bool:
    d = r.study_date or r.content_datetime[:8]
    if date_from and (not d or d < date_from):
        return False
    return not (date_to and (not d or d > date_to))


# -- pseudonyms ------------------------------------------------------------------------------------


#: settings section holding this installation's case-number key (hex); copy it to the department's other
#: computers for the same case numbers there
CASE_KEY_SECTION = "pseudonyms"
_CASE_KEY_FIELD = "case_key"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_case_key_lock = threading.Lock()


def case_key() -> bytes:
    """This installation's secret for case numbers (made once, kept in the settings).

    Without it a case number cannot be turned back into a study.  A settings file
    that exists but cannot be read is an error (a new key would renumber every case
    and overwrite the file's other settings).
    """
    from mdtviewer.infra import settings

    with _case_key_lock:
        f = paths.settings_file()
        if f.exists():
            try:
                json.loads(f.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise LogbookError(f"settings file unreadable ({type(exc).__name__}): case numbers need this "
                                   "installation's key kept there") from None
        section = settings.get_section(CASE_KEY_SECTION)
        section = dict(section) if isinstance(section, dict) else {}
        key = section.get(_CASE_KEY_FIELD)
        if not (isinstance(key, str) and len(key) >= 32):
            import secrets

            section[_CASE_KEY_FIELD] = secrets.token_hex(32)
            settings.set_section(CASE_KEY_SECTION, section)
            key = (settings.get_section(CASE_KEY_SECTION) or section)[_CASE_KEY_FIELD]
        try:
            return bytes.fromhex(key)
        except ValueError:
            raise LogbookError(f"the case-number key in the settings ({CASE_KEY_SECTION}) is not hex") from None


def case_label(study_instance_uid: str, key: bytes, chars: int = 8) -> str:
    """The case number of a study: a keyed hash (HMAC-SHA256) of its Study Instance UID, *chars* Crockford
    base32 characters in groups of four ('7K3Q-M2XA'); the same study and key give the same label."""
    import hashlib
    import hmac

    n = int.from_bytes(hmac.new(key, study_instance_uid.encode("utf-8"), hashlib.sha256).digest(), "big")
    digits = "".join(_CROCKFORD[(n >> (251 - 5 * i)) & 31] for i in range(chars))
    return "-".join(digits[i:i + 4] for i in range(0, chars, 4))


def case_numbers(records: Iterable[ReviewRecord], key: bytes | None = None) -> dict[str, str]:
    """Study Instance UID -> case number, the same for a study in every export of this installation
    (a keyed hash with :func:`case_key`), for pseudonymised exports.

    40 bits (8 characters) tell cases apart; two studies of one export whose labels collide
    both get 80 bits (16 characters) instead, so no two studies ever share a number.
    """
    key = case_key() if key is None else key
    uids_ = sorted({r.study_instance_uid for r in records})
    out = {u: case_label(u, key) for u in uids_}
    seen = Counter(out.values())
    for u in uids_:
        if seen[out[u]] > 1:
            out[u] = case_label(u, key, 16)
    return out


def _study_columns(r: ReviewRecord, cases: dict[str, str], show_identifiers: bool) -> list[str]:
    cols = [f"case {cases[r.study_instance_uid]}", r.study_date]
    if show_identifiers:
        cols += [r.patient_name, r.patient_id, r.accession_number, r.study_instance_uid]
    return cols


def _study_header(show_identifiers: bool) -> list[str]:
    return ["case", "study_date"] + (
        ["patient_name", "patient_id", "accession_number", "study_instance_uid"] if show_identifiers else []
    )


# -- logbook ---------------------------------------------------------------------------------------


@dataclass
class ProtocolLog:
    reviews: int = 0
    signed: int = 0
    competent: int = 0
    needs_supervision: int = 0
    missing_views: Counter = field(default_factory=Counter)

    def to_json(self) -> dict:
        return {
            "reviews": self.reviews,
            "signed": self.signed,
            "competent": self.competent,
            "needs_supervision": self.needs_supervision,
            "missing_views": dict(sorted(self.missing_views.items(), key=lambda kv: (-kv[1], kv[0]))),
        }


@dataclass
class TraineeLog:
    trainee: str
    records: list[ReviewRecord] = field(default_factory=list)
    by_protocol: dict[str, ProtocolLog] = field(default_factory=dict)
    quality: Counter = field(default_factory=Counter)

    @property
    def reviews(self) -> int:
        return len(self.records)

    @property
    def signed(self) -> int:
        """Reviews signed by a trainer (one signed by anyone else counts as unsigned: see :meth:`notes`)."""
        return sum(r.counts_signed for r in self.records)

    def notes(self, cases: dict[str, str] | None = None) -> list[str]:
        """What the reader of the figures must know: reviews signed by someone not recorded as a trainer."""
        odd = [r for r in self.records if r.signed_not_by_trainer]
        if not odd:
            return []
        which = ", ".join(f"case {cases[r.study_instance_uid]}" for r in odd) if cases else ""
        return [f"{len(odd)} review(s) signed by someone not recorded as a trainer (or by the trainee they "
                f"assess) are counted as unsigned, "
                f"their outcome not counted{': ' + which if which else ''} (a trainer signs an amendment)"]

    def mdt_outcomes(self) -> dict[str, int]:
        """Signed reviews of cases discussed at the MDT, by the meeting's outcome."""
        c = Counter(r.mdt_outcome for r in self.records if r.counts_signed and r.mdt_outcome)
        return {o: c[o] for o in MDT_OUTCOMES}

    def by_month(self) -> dict[str, dict[str, Any]]:
        """month -> {reviews, signed, by_protocol {id: n}, competent, needs_supervision, good, adequate, poor}."""
        out: dict[str, dict[str, Any]] = {}
        for r in self.records:
            m = out.setdefault(r.month, {"reviews": 0, "signed": 0, "by_protocol": Counter(), "competent": 0,
                                         "needs_supervision": 0, **{q: 0 for q in QUALITIES}})
            m["reviews"] += 1
            m["signed"] += r.counts_signed
            m["by_protocol"][r.protocol or NO_PROTOCOL] += 1
            if r.counts_signed and r.outcome == "competent":
                m["competent"] += 1
            if r.counts_signed and r.outcome == "needs-supervision":
                m["needs_supervision"] += 1
            for q in QUALITIES:
                m[q] += r.quality.get(q, 0)
        for m in out.values():
            m["by_protocol"] = dict(sorted(m["by_protocol"].items()))
        return dict(sorted(out.items()))

    def to_json(self) -> dict:
        return {
            "trainee": self.trainee,
            "reviews": self.reviews,
            "signed": self.signed,
            "unsigned": self.reviews - self.signed,
            "signed_not_by_trainer": sum(r.signed_not_by_trainer for r in self.records),
            "notes": self.notes(),
            "by_protocol": {k: v.to_json() for k, v in sorted(self.by_protocol.items())},
            "quality": {q: self.quality.get(q, 0) for q in QUALITIES},
            "mdt_outcomes": self.mdt_outcomes(),
            "by_month": self.by_month(),
        }


def logbook(records: Iterable[ReviewRecord], trainee: str | None = None) -> list[TraineeLog]:
    """One log per trainee (preceptorship reviews only), by name; *trainee* keeps one (case-insensitive).

    Outcomes count only once signed (a draft's outcome may still change);
    missing views and quality ratings count for every review, signed or not.
    """
    logs: dict[str, TraineeLog] = {}
    want = trainee.strip().casefold() if trainee else None
    for r in records:
        if r.kind != "preceptorship":
            continue
        name = r.trainee or NO_TRAINEE
        if want is not None and name.casefold() != want:
            continue
        tl = logs.setdefault(name, TraineeLog(name))
        tl.records.append(r)
        pl = tl.by_protocol.setdefault(r.protocol or NO_PROTOCOL, ProtocolLog())
        pl.reviews += 1
        pl.signed += r.counts_signed
        if r.counts_signed and r.outcome == "competent":
            pl.competent += 1
        if r.counts_signed and r.outcome == "needs-supervision":
            pl.needs_supervision += 1
        for vid, present in r.views.items():
            if not present:
                pl.missing_views[vid] += 1
        tl.quality.update(r.quality)
    return [logs[k] for k in sorted(logs, key=str.casefold)]


def logbook_csv(logs: list[TraineeLog], show_identifiers: bool = False) -> str:
    """One row per review (pseudonymised: case numbers) for the training portfolio."""
    cases = case_numbers(r for tl in logs for r in tl.records)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["trainee", *_study_header(show_identifiers), "protocol", "state", "outcome", "missing_views",
                "good", "adequate", "poor", "trainer", "mdt_outcome"])
    for tl in logs:
        for r in tl.records:
            w.writerow([tl.trainee, *_study_columns(r, cases, show_identifiers), r.protocol or NO_PROTOCOL,
                        r.state, r.outcome if r.counts_signed else "",
                        " ".join(sorted(v for v, p in r.views.items() if not p)),
                        *(r.quality.get(q, 0) for q in QUALITIES), r.trainer,
                        r.mdt_outcome if r.counts_signed else ""])
    return buf.getvalue()


def logbook_pdf(logs: list[TraineeLog], show_identifiers: bool = False, title: str = "Preceptorship logbook") -> bytes:
    from mdtviewer.infra.minipdf import Chart, text_pdf

    cases = case_numbers(r for tl in logs for r in tl.records)
    pages: list[list] = []
    for tl in logs:
        lines: list = [("h1", f"{title}: {values.format_person_name(tl.trainee)}"),
                       f"{tl.reviews} scans reviewed, {tl.signed} signed, {tl.reviews - tl.signed} awaiting sign-off",
                       "Image quality ratings: " + ", ".join(f"{q} {tl.quality.get(q, 0)}" for q in QUALITIES),
                       "", ("h2", "By protocol")]
        lines.append(("mono", f"{'protocol':<22}{'reviews':>8}{'signed':>8}{'competent':>10}{'needs sup.':>11}"
                              "  views missed most often"))
        for pid, pl in sorted(tl.by_protocol.items()):
            missed = ", ".join(f"{v} x{n}" for v, n in pl.missing_views.most_common(4)) or "-"
            lines.append(("mono", f"{pid[:21]:<22}{pl.reviews:>8}{pl.signed:>8}{pl.competent:>10}"
                                  f"{pl.needs_supervision:>11}  {missed}"))
        months = tl.by_month()
        if months:
            protocols = sorted(tl.by_protocol)
            lines += ["", ("h2", "Scans per month by protocol")]
            lines.append(Chart([(m, *(v["by_protocol"].get(p, 0) for p in protocols)) for m, v in months.items()],
                               legend=tuple(protocols)))
            lines += [("h2", "Competence by protocol (signed: competent / needs supervision)")]
            lines.append(Chart([(p, pl.competent, pl.needs_supervision) for p, pl in sorted(tl.by_protocol.items())],
                               legend=("competent", "needs supervision")))
            lines += [("h2", "Image quality by month (good / adequate / poor)")]
            lines.append(Chart([(m, v["good"], v["adequate"], v["poor"]) for m, v in months.items()],
                               legend=QUALITIES))
        lines += ["", ("h2", "Reviews")]
        head = f"{'case':<15}{'date':<10} {'protocol':<20}{'state':<8}{'outcome':<18}missing"
        if show_identifiers:
            head += "  patient"
        lines.append(("mono", head))
        for r in tl.records:
            row = (f"{'case ' + cases[r.study_instance_uid]:<15}{r.study_date:<10} "
                   f"{(r.protocol or NO_PROTOCOL)[:19]:<20}{r.state.replace('not trainer-signed', 'not tr.'):<8}"
                   f"{(r.outcome if r.counts_signed else '') or '-':<18}"
                   f"{' '.join(sorted(v for v, p in r.views.items() if not p)) or '-'}")
            if show_identifiers:
                row += f"  {r.patient_name} {r.patient_id} {r.accession_number}"
            lines.append(("mono", row))
        notes = tl.notes(cases)
        if notes:
            lines += [""] + [f"Note: {n} ('not tr.' above)." for n in notes]
        lines += ["", "Studies are numbered as cases; no patient identifiers." if not show_identifiers
                  else "CONTAINS PATIENT IDENTIFIERS (exported on request)."]
        pages.append(lines)
    if not pages:
        pages = [[("h1", title), "No preceptorship reviews found."]]
    return text_pdf(pages, title=title)


# -- worklist --------------------------------------------------------------------------------------


@dataclass
class Worklist:
    drafts: list[ReviewRecord] = field(default_factory=list)
    amended: list[ReviewRecord] = field(default_factory=list)
    requests: list[ReviewRecord] = field(default_factory=list)

    def to_json(self, show_identifiers: bool = False) -> dict:
        def item(r: ReviewRecord) -> dict:
            d = {"sop_instance_uid": r.sop_instance_uid, "study_instance_uid": r.study_instance_uid,
                 "path": r.path, "kind": r.kind, "author": r.author, "trainee": r.trainee or None,
                 "protocol": r.protocol or None, "study_date": r.study_date, "signed": r.signed,
                 "amends": r.predecessors[0] if r.predecessors else None}
            if show_identifiers:
                d["patient_name"], d["patient_id"] = r.patient_name, r.patient_id
            return d
        return {"drafts": [item(r) for r in self.drafts], "amended": [item(r) for r in self.amended],
                "second_opinion_requests": [item(r) for r in self.requests]}


def _seen_file() -> Path:
    return paths.home() / SEEN_NAME


def seen_amendments() -> set[str]:
    try:
        data = json.loads(_seen_file().read_text(encoding="utf-8"))
        return set(data.get("amendments") or []) if isinstance(data, dict) else set()
    except (OSError, ValueError):
        return set()


def mark_seen(records: Iterable[ReviewRecord]) -> None:
    """Remember the amendments shown, so the next worklist lists only newer ones."""
    seen = seen_amendments() | {r.sop_instance_uid for r in records if r.amended}
    atomic_write_text(_seen_file(), json.dumps({"amendments": sorted(seen)}))


def worklist(records: Iterable[ReviewRecord], seen: set[str] | None = None) -> Worklist:
    """Drafts awaiting sign-off, amendments not yet seen, second-opinion requests (latest versions)."""
    seen = seen_amendments() if seen is None else seen
    out = Worklist()
    for r in records:
        if r.is_request:
            out.requests.append(r)
        elif not r.signed or r.signed_not_by_trainer:  # the latter awaits a trainer's sign-off (an amendment)
            out.drafts.append(r)
        if r.amended and r.sop_instance_uid not in seen:
            out.amended.append(r)
    return out


# -- discrepancy audit -----------------------------------------------------------------------------


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95 % Wilson score interval of the proportion k/n ((0, 0) for n == 0)."""
    if n <= 0:
        return (0.0, 0.0)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, round(centre - half, 4)), min(1.0, round(centre + half, 4)))


#: what a rate of 0 of 0 reads as in CSV and PDF (JSON: null): there is no rate, not a rate of 0
NO_RATE = "\u2013"


def _rate(k: int, n: int) -> dict:
    """count, rate and 95 % Wilson interval; rate and ci95 are None for 0 of 0 (undefined, not 0 %)."""
    if n <= 0:
        return {"count": k, "rate": None, "ci95": None}
    lo, hi = wilson(k, n)
    return {"count": k, "rate": round(k / n, 4), "ci95": [lo, hi]}


def _rate_cells(r: dict) -> list:
    """rate, ci low, ci high for a CSV row ("\u2013" when undefined)."""
    if r["rate"] is None:
        return [NO_RATE, NO_RATE, NO_RATE]
    return [r["rate"], *r["ci95"]]


def _group(rs: list[ReviewRecord]) -> dict:
    n = len(rs)
    c = Counter(r.agreement for r in rs)
    disc = c["minor-discrepancy"] + c["major-discrepancy"]
    return {"reviews": n, **{a: c[a] for a in AGREEMENTS},
            "discrepancy": _rate(disc, n), "major": _rate(c["major-discrepancy"], n)}


@dataclass
class Audit:
    records: list[ReviewRecord]
    #: second opinions left out because they are not signed yet
    unsigned: int = 0
    #: study -> protocol id, from a preceptorship review of the same study (second opinions name none);
    #: free-text study descriptions are not used: they may identify the patient
    study_protocols: dict[str, str] = field(default_factory=dict)

    def to_json(self, show_identifiers: bool = False) -> dict:
        rs, n = self.records, len(self.records)
        ag = Counter(r.agreement for r in rs)
        sc = Counter(r.peer_review_score or "unscored" for r in rs)
        mdt = Counter(r.mdt_outcome for r in rs if r.mdt_outcome)
        groups: dict[str, dict[str, list[ReviewRecord]]] = {"reporter": defaultdict(list),
                                                             "protocol": defaultdict(list),
                                                             "period": defaultdict(list)}
        for r in rs:
            groups["reporter"][r.reporter or NO_REPORTER].append(r)
            groups["protocol"][self.study_protocols.get(r.study_instance_uid, NO_PROTOCOL)].append(r)
            groups["period"][r.month].append(r)
        cases = case_numbers(rs)
        majors = []
        for r in rs:
            if r.agreement != "major-discrepancy":
                continue
            m = {"case": cases[r.study_instance_uid], "study_date": r.study_date,
                 "study_instance_uid": r.study_instance_uid, "sop_instance_uid": r.sop_instance_uid,
                 "path": r.path, "reporter": r.reporter or NO_REPORTER, "reviewer": r.author,
                 "peer_review_score": r.peer_review_score or None, "mdt_outcome": r.mdt_outcome or None}
            if show_identifiers:
                m["patient_name"], m["patient_id"] = r.patient_name, r.patient_id
            majors.append(m)
        return {
            "reviews": n,
            "unsigned_excluded": self.unsigned,
            "by_agreement": {a: ag[a] for a in AGREEMENTS},
            "by_score": {s: sc[s] for s in (*PEER_REVIEW_SCORES, "unscored")},
            "by_mdt_outcome": {o: mdt[o] for o in MDT_OUTCOMES},
            "rates": {"discrepancy": _rate(ag["minor-discrepancy"] + ag["major-discrepancy"], n),
                      "major": _rate(ag["major-discrepancy"], n),
                      **{f"score_{s}": _rate(sc[s], n) for s in PEER_REVIEW_SCORES}},
            "by_reporter": {k: _group(v) for k, v in sorted(groups["reporter"].items())},
            "by_protocol": {k: _group(v) for k, v in sorted(groups["protocol"].items())},
            "by_period": {k: _group(v) for k, v in sorted(groups["period"].items())},
            "major_discrepancies": majors,
        }


def discrepancy_audit(records: Iterable[ReviewRecord]) -> Audit:
    """Signed second opinions with an agreement grade (a draft may still change its grade)."""
    records = list(records)
    so = [r for r in records if r.kind == "second-opinion" and r.agreement]
    signed = [r for r in so if r.signed]
    protocols = {r.study_instance_uid: r.protocol for r in records if r.kind == "preceptorship" and r.protocol}
    return Audit(signed, unsigned=len(so) - len(signed), study_protocols=protocols)


def audit_csv(audit: Audit, show_identifiers: bool = False) -> str:
    """Summary rows (group, key, reviews, agree, minor, major, rates, intervals), then every major discrepancy."""
    j = audit.to_json(show_identifiers)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["group", "key", "reviews", *AGREEMENTS, "discrepancy_rate", "discrepancy_ci95_low",
                "discrepancy_ci95_high", "major_rate", "major_ci95_low", "major_ci95_high"])

    def row(group: str, key: str, g: dict) -> None:
        w.writerow([group, key, g["reviews"], *(g[a] for a in AGREEMENTS), *_rate_cells(g["discrepancy"]),
                    *_rate_cells(g["major"])])

    row("all", "all", _group(audit.records))
    for group in ("reporter", "protocol", "period"):
        for k, g in j[f"by_{group}"].items():
            row(group, k, g)
    for s, count in j["by_score"].items():
        w.writerow(["score", s, count])
    w.writerow([])
    w.writerow(["major_discrepancy", *_study_header(show_identifiers), "reporter", "reviewer", "peer_review_score",
                "mdt_outcome"])
    cases = case_numbers(audit.records)
    for r in audit.records:
        if r.agreement == "major-discrepancy":
            w.writerow(["major_discrepancy", *_study_columns(r, cases, show_identifiers), r.reporter or NO_REPORTER,
                        r.author, r.peer_review_score, r.mdt_outcome])
    return buf.getvalue()


def audit_pdf(audit: Audit, show_identifiers: bool = False, title: str = "Discrepancy audit") -> bytes:
    from mdtviewer.infra.minipdf import Chart, text_pdf

    j = audit.to_json(show_identifiers)
    n = j["reviews"]

    def pct(r: dict) -> str:
        if r["rate"] is None:
            return NO_RATE
        lo, hi = r["ci95"]
        return f"{100 * r['rate']:.1f} % (95 % CI {100 * lo:.1f}-{100 * hi:.1f})"

    lines: list = [("h1", title), f"{n} signed second opinions ({j['unsigned_excluded']} unsigned not counted)",
                   f"Discrepancy rate: {j['rates']['discrepancy']['count']} of {n}, {pct(j['rates']['discrepancy'])}",
                   f"Major discrepancy rate: {j['rates']['major']['count']} of {n}, {pct(j['rates']['major'])}",
                   "", ("h2", "By agreement"),
                   Chart([(a.replace("-discrepancy", ""), j["by_agreement"][a]) for a in AGREEMENTS]),
                   ("h2", "By peer-review score (RADPEER-style)"), Chart(list(j["by_score"].items())),
                   ("h2", "MDT outcomes: " + ", ".join(f"{k} {v}" for k, v in j["by_mdt_outcome"].items()))]
    for group, label in (("reporter", "By reporter"), ("protocol", "By protocol"), ("period", "By month")):
        lines += ["", ("h2", label),
                  ("mono", f"{label[3:]:<24}{'n':>4}{'agree':>6}{'minor':>6}{'major':>6}  discrepancy rate (95 % CI)")]
        for k, g in j[f"by_{group}"].items():
            lines.append(("mono", f"{k[:23]:<24}{g['reviews']:>4}{g['agree']:>6}{g['minor-discrepancy']:>6}"
                                  f"{g['major-discrepancy']:>6}  {pct(g['discrepancy'])}"))
    lines += ["", ("h2", "Major discrepancies")]
    for m in j["major_discrepancies"]:
        who = f"  {m['patient_name']} {m['patient_id']} {m['study_instance_uid']}" if show_identifiers else ""
        lines.append(("mono", f"case {m['case']:<10} {m['study_date']:<9} reporter {m['reporter'][:20]:<20} "
                              f"score {m['peer_review_score'] or '-':<3} MDT {m['mdt_outcome'] or '-'}{who}"))
    if not j["major_discrepancies"]:
        lines.append("none")
    lines += ["", "Studies are numbered as cases; no patient identifiers." if not show_identifiers
              else "CONTAINS PATIENT IDENTIFIERS (exported on request)."]
    return text_pdf([lines], title=title)


# -- what the commands call ----------------------------------------------------------------------


@dataclass
class LogbookReport:
    collection: Collection
    logs: list[TraineeLog]

    def to_json(self) -> list[dict]:
        return [tl.to_json() for tl in self.logs]


def trainee_logbook(trainee: str | None = None, folders: Iterable[str | os.PathLike] = (), node: str | None = None,
                    date_from: str | None = None, date_to: str | None = None, **kw) -> LogbookReport:
    c = collect(folders, node, date_from, date_to, **kw)
    return LogbookReport(c, logbook(c.records, trainee))


@dataclass
class AuditReport:
    collection: Collection
    audit: Audit


def discrepancies(folders: Iterable[str | os.PathLike] = (), node: str | None = None, date_from: str | None = None,
                  date_to: str | None = None, **kw) -> AuditReport:
    c = collect(folders, node, date_from, date_to, **kw)
    return AuditReport(c, discrepancy_audit(c.records))


@dataclass
class WorklistReport:
    collection: Collection
    worklist: Worklist


def trainer_worklist(folders: Iterable[str | os.PathLike] = (), node: str | None = None, *,
                     mark: bool = True, **kw) -> WorklistReport:
    """The worklist now; with *mark*, its amendments count as seen from now on."""
    c = collect(folders, node, **kw)
    wl = worklist(c.records)
    if mark:
        mark_seen(wl.amended)
    return WorklistReport(c, wl)


def write_export(data: str | bytes, path: str | os.PathLike) -> Path:
    """Write an export atomically (text as UTF-8)."""
    return atomic_write_bytes(path, data.encode("utf-8") if isinstance(data, str) else data)
