"""MDT meeting list: the cases to discuss, in order, each with a note.

A case is a study (Study Instance UID) and where it lives: ``"local"`` (the
local store or a folder already opened) or the name of a configured PACS
node (:mod:`mdtviewer.pacs.nodes`).  Sessions are saved as JSON, atomically
(a crash never leaves half a meeting list), under ``home()/mdt/`` by default,
and reopened with :meth:`MDTSession.load`.

The case ``label`` is what the presenter shows on the shared screen: keep it
non-identifying (e.g. "Case 3: left CFA stenosis"); the viewer takes the
patient's details from the images only when privacy is off.

Before the meeting :func:`prefetch` retrieves every PACS case that is not yet
complete in the local store (:func:`prefetch_plan` says which), in the
background of the caller's choosing, reporting progress per case.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mdtviewer.infra import paths
from mdtviewer.infra.atomic import atomic_write_text
from mdtviewer.infra.errors import MdtError

FORMAT = "mdtviewer-mdt-session"
VERSION = 1
LOCAL = "local"
#: how :func:`find_related` marks a related study: the same Patient ID and Issuer of Patient ID ...
FOUND_SAME_PATIENT = "same patient on PACS"
#: ... or the same Patient ID where the case's study or the other study names no issuer (said, never merged)
ISSUER_UNKNOWN = "issuer unknown"
FOUND_ISSUER_UNKNOWN = f"same Patient ID on PACS, {ISSUER_UNKNOWN}"

log = logging.getLogger(__name__)


class SessionError(MdtError, ValueError):
    """A session file cannot be read or a change is not possible (one line)."""


@dataclass
class MDTCase:
    study_uid: str
    source: str = LOCAL  # "local" or a PACS node name
    note: str = ""
    label: str = ""
    #: other studies to show beside it (e.g. the patient's CT), same sources
    related: list[dict[str, str]] = field(default_factory=list)
    #: keep-rectangles (x0, y0, x1, y1, inclusive) per SeriesInstanceUID, for series without
    #: ultrasound regions: drawn once in the presenter, used to mask burned-in text
    keep_rects: dict[str, list[int]] = field(default_factory=dict)
    case_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    #: the study's files when it was added from a local folder: the session reopens from them after a
    #: restart (then the local store, then the PACS); a related entry may carry "files" the same way
    files: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.study_uid = str(self.study_uid).strip()
        if not self.study_uid or not re.fullmatch(r"[0-9.]{1,64}", self.study_uid):
            raise SessionError("a case needs a valid Study Instance UID (digits and dots, at most 64)")
        self.source = str(self.source or LOCAL).strip() or LOCAL

    @property
    def is_remote(self) -> bool:
        return self.source != LOCAL

    def related_note(self) -> str:
        """What the case list says of the other studies found on PACS: how many, and how many match on the
        Patient ID alone ("issuer unknown"): the PACS or a study gave no Issuer of Patient ID."""
        found = [r for r in self.related if r.get("found") in (FOUND_SAME_PATIENT, FOUND_ISSUER_UNKNOWN)]
        if not found:
            return ""
        unknown = sum(1 for r in found if r.get("found") == FOUND_ISSUER_UNKNOWN)
        text = f"{len(found)} other stud{'y' if len(found) == 1 else 'ies'} on PACS"
        if unknown:
            text += f" ({unknown} same Patient ID, {ISSUER_UNKNOWN})" if unknown < len(found) \
                else f" (same Patient ID, {ISSUER_UNKNOWN})"
        return text


@dataclass
class MDTSession:
    title: str = "MDT meeting"
    meeting_date: str = ""  # ISO date, e.g. 2026-11-25
    cases: list[MDTCase] = field(default_factory=list)
    path: Path | None = None

    # -- editing -----------------------------------------------------------
    def add_case(self, study_uid: str, source: str = LOCAL, note: str = "", label: str = "",
                 position: int | None = None) -> MDTCase:
        if any(c.study_uid == str(study_uid).strip() for c in self.cases):
            raise SessionError("this study is already on the list")
        case = MDTCase(study_uid=study_uid, source=source, note=note, label=label)
        if position is None:
            self.cases.append(case)
        else:
            self.cases.insert(max(0, min(int(position), len(self.cases))), case)
        return case

    def index_of(self, key: str | MDTCase) -> int:
        for i, c in enumerate(self.cases):
            if c is key or c.case_id == key or c.study_uid == key:
                return i
        raise SessionError("no such case in this session")

    def remove_case(self, key: str | MDTCase) -> MDTCase:
        return self.cases.pop(self.index_of(key))

    def move_case(self, key: str | MDTCase, new_index: int) -> None:
        case = self.cases.pop(self.index_of(key))
        self.cases.insert(max(0, min(int(new_index), len(self.cases))), case)

    def move_up(self, key: str | MDTCase) -> None:
        i = self.index_of(key)
        self.move_case(key, max(0, i - 1))

    def move_down(self, key: str | MDTCase) -> None:
        i = self.index_of(key)
        self.move_case(key, i + 1)

    def reorder(self, study_uids: list[str]) -> None:
        """Put the cases in the order of *study_uids* (which must name each case once)."""
        if sorted(study_uids) != sorted(c.study_uid for c in self.cases):
            raise SessionError("the new order must list every case exactly once")
        by_uid = {c.study_uid: c for c in self.cases}
        self.cases = [by_uid[u] for u in study_uids]

    def set_note(self, key: str | MDTCase, note: str) -> None:
        self.cases[self.index_of(key)].note = str(note)

    def set_label(self, key: str | MDTCase, label: str) -> None:
        self.cases[self.index_of(key)].label = str(label)

    # -- navigation (presenter) -------------------------------------------
    def case_at(self, index: int) -> MDTCase:
        if not self.cases:
            raise SessionError("the session has no cases")
        return self.cases[max(0, min(int(index), len(self.cases) - 1))]

    # -- persistence -------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "title": self.title,
            "meeting_date": self.meeting_date,
            "saved": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "cases": [asdict(c) for c in self.cases],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MDTSession:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise SessionError("not an mdtviewer MDT session file")
        if int(data.get("version", 0)) > VERSION:
            raise SessionError("this session file was written by a newer mdtviewer")
        cases = []
        for c in data.get("cases", []):
            if not isinstance(c, dict):
                raise SessionError("a case entry is not an object")
            known = {k: c[k] for k in ("study_uid", "source", "note", "label", "related", "keep_rects", "case_id",
                                       "files")
                     if k in c}
            if not isinstance(known.get("files", []), list):
                raise SessionError("a case's files must be a list of paths")
            cases.append(MDTCase(**known))
        return cls(title=str(data.get("title", "")), meeting_date=str(data.get("meeting_date", "")), cases=cases)

    def save(self, path: str | os.PathLike | None = None) -> Path:
        target = Path(path) if path is not None else (self.path or default_path(self.title, self.meeting_date))
        atomic_write_text(target, json.dumps(self.to_json(), indent=2, ensure_ascii=False))
        self.path = target
        return target

    @classmethod
    def load(cls, path: str | os.PathLike) -> MDTSession:
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SessionError(f"no such session file: {p.name}") from None
        except (OSError, ValueError) as exc:
            raise SessionError(f"cannot read the session file: {type(exc).__name__}") from None
        s = cls.from_json(data)
        s.path = p
        return s


def sessions_dir() -> Path:
    d = paths.home() / "mdt"
    d.mkdir(parents=True, exist_ok=True)
    return d


def default_path(title: str, meeting_date: str = "") -> Path:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", f"{meeting_date} {title}".strip()).strip("-").lower() or "mdt"
    return sessions_dir() / f"{slug[:80]}.json"


def list_sessions() -> list[Path]:
    return sorted(sessions_dir().glob("*.json"))


# -- prefetch -----------------------------------------------------------------
@dataclass
class PrefetchItem:
    case: MDTCase
    action: str  # "retrieve", "local" (not on a PACS), "unknown-node"
    reason: str = ""
    #: the study to fetch: the case's own, or one of its related studies
    study_uid: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        self.study_uid = self.study_uid or self.case.study_uid
        self.source = self.source or self.case.source


@dataclass
class PrefetchOutcome:
    case: MDTCase
    ok: bool
    message: str = ""
    completed: int = 0
    total: int = 0
    study_uid: str = ""


def prefetch_plan(session: MDTSession, store=None) -> list[PrefetchItem]:
    """What :func:`prefetch` would do for each case (no network traffic)."""
    from mdtviewer.pacs import nodes as _nodes
    from mdtviewer.pacs.localstore import LocalStore

    out: list[PrefetchItem] = []
    store = store if store is not None else LocalStore()
    known = {n.name for n in _nodes.load_nodes()}
    local_studies = set(store.studies())
    for c in session.cases:
        wanted = [(c.study_uid, c.source)] + [(str(r.get("study_uid", "")), str(r.get("source", LOCAL) or LOCAL))
                                             for r in c.related if r.get("study_uid")]
        for uid, source in wanted:
            if source == LOCAL:
                out.append(PrefetchItem(c, "local", study_uid=uid, source=source))
            elif source not in known:
                out.append(PrefetchItem(c, "unknown-node", "no PACS node of that name is configured", uid, source))
            elif uid in local_studies:
                # present, but maybe partly: retrieve() asks the PACS and fetches only what is missing
                out.append(PrefetchItem(c, "retrieve", "in the local store; checking for missing instances",
                                        uid, source))
            else:
                out.append(PrefetchItem(c, "retrieve", study_uid=uid, source=source))
    return out


#: at most this many of the patient's other studies are added to a case by :func:`find_related`
MAX_RELATED = 3


def find_related(case: MDTCase, client=None) -> list[dict[str, str]]:
    """Add the same patient's other studies on the case's PACS to ``case.related``.

    Two C-FINDs: the case's study (for its Patient ID and Issuer of Patient ID),
    then that patient's studies of any modality, asked with both.  A study
    whose issuer differs from the case's is another patient with the same ID:
    never added (HAZ-027).  Where both name the same issuer a new entry is
    marked ``"found": "same patient on PACS"``; where either names none it is
    marked ``"same Patient ID on PACS, issuer unknown"`` (said in the case list,
    :meth:`MDTCase.related_note`; the presenter lays it beside the case only when
    the local index finds the same Patient ID + issuer).  Studies already named
    are kept.  Returns the entries added.
    Network trouble is logged and adds nothing: the case itself is still
    prefetched.
    """
    if not case.is_remote:
        return []
    from mdtviewer.pacs import nodes as _nodes
    from mdtviewer.pacs.client import StudyQuery
    from mdtviewer.pacs.connect import open_client

    own = client is None
    added: list[dict[str, str]] = []
    try:
        if own:
            client = open_client(_nodes.get_node(case.source))
        found = client.find_studies(StudyQuery(study_uid=case.study_uid, modality=None))
        me = next((f for f in found if f.study_instance_uid == case.study_uid and f.patient_id), None)
        if me is None:
            return []
        pid, issuer = me.patient_id, me.issuer_of_patient_id.strip()
        query = StudyQuery(patient_id=pid, issuer_of_patient_id=issuer or None, modality=None)
        others = []
        for f in client.find_studies(query):
            theirs = f.issuer_of_patient_id.strip()
            if f.study_instance_uid == case.study_uid or f.patient_id != pid:
                continue
            if issuer and theirs and theirs != issuer:
                continue  # the same ID from another issuer is another patient: never a prior
            others.append((f, FOUND_SAME_PATIENT if (issuer and theirs) else FOUND_ISSUER_UNKNOWN))
        others.sort(key=lambda fo: (fo[0].study_date, fo[0].study_time), reverse=True)
        named = {str(r.get("study_uid", "")) for r in case.related}
        for f, how in others[:MAX_RELATED]:
            if f.study_instance_uid in named:
                continue
            entry = {"study_uid": f.study_instance_uid, "source": case.source, "found": how}
            case.related.append(entry)
            added.append(entry)
    except (MdtError, OSError) as exc:  # related imaging is a help: a PACS that fails it stops nothing
        log.warning("related studies not looked up on %s: %s", case.source, getattr(exc, "reason", None) or exc)
    finally:
        if own and client is not None:
            try:
                client.close()
            except (MdtError, OSError):
                pass
    return added


def prefetch(
    session: MDTSession,
    *,
    store=None,
    progress: Callable[[int, int, MDTCase, Any], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    related_from_pacs: bool = True,
) -> list[PrefetchOutcome]:
    """Retrieve every PACS case into the local store, case by case (blocking: run it off the UI thread).

    With *related_from_pacs*, a PACS case first gains the same patient's
    other studies on that PACS (any modality, e.g. a CT prior; the newest
    :data:`MAX_RELATED` of them) as related imaging, fetched with it, so the
    presenter can lay them out beside the case (see :func:`find_related`).

    *progress(done_cases, total_cases, case, detail)* is called after each case
    (detail is the PACS RetrieveResult) and during a retrieve with the
    client's RetrieveProgress.  Each retrieve is audited.
    """
    from mdtviewer.infra import audit

    if related_from_pacs:
        for c in session.cases:
            if cancel is not None and cancel():
                break
            if c.is_remote:
                find_related(c)
    plan = prefetch_plan(session, store)
    todo = [p for p in plan if p.action == "retrieve"]
    outcomes: list[PrefetchOutcome] = []
    for p in plan:
        if p.action in ("local",):
            outcomes.append(PrefetchOutcome(p.case, True, "local", study_uid=p.study_uid))
        elif p.action == "unknown-node":
            outcomes.append(PrefetchOutcome(p.case, False, p.reason, study_uid=p.study_uid))
    if not todo:
        return outcomes
    from mdtviewer.pacs import nodes as _nodes
    from mdtviewer.pacs.connect import open_client
    from mdtviewer.pacs.localstore import LocalStore

    store = store if store is not None else LocalStore()
    clients: dict[str, Any] = {}
    try:
        for k, p in enumerate(todo):
            if cancel is not None and cancel():
                outcomes.append(PrefetchOutcome(p.case, False, "cancelled", study_uid=p.study_uid))
                continue
            client = clients.get(p.source)
            if client is None:
                client = clients[p.source] = open_client(_nodes.get_node(p.source))

            def _prog(rp, _case=p.case, _k=k):
                if progress is not None:
                    progress(_k, len(todo), _case, rp)

            res = client.retrieve(p.study_uid, store, progress=_prog, cancel=cancel)
            ok = bool(res.ok)
            audit.record("retrieve", study_uid=p.study_uid, outcome="success" if ok else "failure",
                         detail={"purpose": "mdt-prefetch", "instances": res.completed, "total": res.total})
            outcomes.append(PrefetchOutcome(p.case, ok, res.message, res.completed, res.total, p.study_uid))
            if progress is not None:
                progress(k + 1, len(todo), p.case, res)
    finally:
        for c in clients.values():
            try:
                c.close()
            except (MdtError, OSError):
                pass
    order = {id(c): i for i, c in enumerate(session.cases)}
    outcomes.sort(key=lambda o: (order.get(id(o.case), 0), o.study_uid != o.case.study_uid))
    return outcomes
