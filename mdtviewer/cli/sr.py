"""``mdtviewer sr``: show any SR/KOS as text; write a review SR from JSON.

Usage::

    mdtviewer sr show FILE [--show-identifiers]
    mdtviewer sr write --review REVIEW.json --study PATH --out FILE.dcm [--force]
    mdtviewer sr list STUDY_UID [--folder DIR ...]
    mdtviewer sr protocols

show       Any SR, KOS or review as readable text: title, status, observers,
           every content item with its nesting, codes with meanings, numbers
           with units, image references (SOP class, instance, frames).
           Patient name/ID only with --show-identifiers.
write      Build a review SR from REVIEW.json about the instances in PATH (a
           file or folder) and write it atomically to FILE.dcm (an existing
           FILE.dcm is only replaced with --force).  Prints the path written.
list       Reviews and other SR/KOS of a study in the local store (or the
           folders given), newest signed first.
protocols  The protocols (minimum image sets) available, with their views.

REVIEW.json keys::

    kind              "second-opinion" | "preceptorship"
    author            {"name": ..., "role": "reporting-scientist"|"second-reader"|"trainee"|"trainer",
                       "organization": optional}
    verifier          optional {"name": ..., "organization": ..., "datetime": optional YYYYMMDDHHMMSS}
                      present = signed (VERIFIED, COMPLETE)
    agreement         second opinion: "agree" | "minor-discrepancy" | "major-discrepancy"
    agreement_reason  second opinion: text
    protocol          preceptorship: protocol id (see `mdtviewer sr protocols`)
    outcome           preceptorship: "competent" | "needs-supervision"
    trainee           preceptorship, optional {"name": ..., "organization": optional}
    views             preceptorship, optional: [{"view": VIEW_ID, "sop_instance_uid": ..., "frame": N}
                      or {"view": VIEW_ID, "present": false}]; protocol views not listed are
                      recorded as missing
    summary           text
    images            [{"sop_instance_uid": ..., "frames": [1-based ...] optional,
                        "quality": "good"|"adequate"|"poor" optional, "comment": text optional}]
                      an image with neither quality nor comment is recorded as a key image
    study_instance_uid  optional; needed only if PATH holds several studies and no image is named

Exit status: 0 written/shown, 1 bad input (bad JSON, unknown SOP instance
UID, invalid review, unreadable file; nothing is written), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from mdtviewer.infra.errors import DicomInputError

if TYPE_CHECKING:
    from mdtviewer.sr.model import Review

_TOP_KEYS = {
    "kind", "author", "verifier", "agreement", "agreement_reason", "protocol", "outcome",
    "summary", "images", "trainee", "views", "study_instance_uid",
}
_IMAGE_KEYS = {"sop_instance_uid", "frames", "quality", "comment"}


class _Usage(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # exit 2 with a one-line message (argparse default too, but keep it explicit)
        self.print_usage(sys.stderr)
        print(f"mdtviewer sr: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _utf8_stdout() -> None:
    enc = (getattr(sys.stdout, "encoding", "") or "").lower().replace("-", "")
    if enc != "utf8" and hasattr(sys.stdout, "reconfigure"):
        try:
            sys.stdout.reconfigure(encoding="utf-8")
        except (ValueError, OSError):
            pass


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mdtviewer sr", description="Show SR/KOS documents; write review SRs.",
                epilog="See the module docstring (mdtviewer/cli/sr.py) for REVIEW.json keys.")
    sub = p.add_subparsers(dest="cmd", parser_class=_Parser)
    s = sub.add_parser("show", help="any SR, KOS or review as readable text")
    s.add_argument("file")
    s.add_argument("--show-identifiers", action="store_true", help="also print patient name and ID")
    w = sub.add_parser("write", help="write a review SR from JSON")
    w.add_argument("--review", required=True, help="REVIEW.json")
    w.add_argument("--study", required=True, help="file or folder with the reviewed instances")
    w.add_argument("--out", required=True, help="FILE.dcm to write")
    w.add_argument("--force", action="store_true", help="replace FILE.dcm if it exists")
    ls = sub.add_parser("list", help="reviews and SR/KOS of a study")
    ls.add_argument("study_uid")
    ls.add_argument("--folder", action="append", help="folder to search (default: the local store)")
    ls.add_argument("--node", help="saved PACS node: first fetch the study's reports that are only there "
                                   "(SR, KOS, documents; never images) into the local store")
    sub.add_parser("protocols", help="available protocols and their views")
    return p


# --- JSON -> Review ------------------------------------------------------------


def _obj(v, what: str) -> dict:
    if not isinstance(v, dict):
        raise ValueError(f"'{what}' must be an object")
    return v


def _frames(img: dict, i: int) -> list[int | None]:
    frames = img.get("frames")
    if frames is None:
        return [None]
    if not isinstance(frames, list) or not frames:
        raise ValueError(f"images[{i}].frames must be a non-empty list of frame numbers (1-based)")
    for f in frames:
        if isinstance(f, bool) or not isinstance(f, int) or f < 1:
            raise ValueError(f"images[{i}].frames: frame numbers are whole numbers from 1, got {f!r}")
    return list(dict.fromkeys(frames))


def review_from_json(data: object, study_uid_of) -> Review:
    """Build and validate the Review described by the `sr write` JSON.

    *study_uid_of(sop_uid)* returns the study of a known instance or raises
    ValueError for an unknown one.
    """
    from mdtviewer.sr import model as m
    from mdtviewer.sr.protocols import get_protocol

    d = _obj(data, "review")
    unknown = sorted(set(d) - _TOP_KEYS)
    if unknown:
        raise ValueError(f"unknown key(s) in review JSON: {', '.join(unknown)}")
    if "kind" not in d:
        raise ValueError("review JSON needs 'kind'")
    if "author" not in d:
        raise ValueError("review JSON needs 'author' {name, role}")
    a = _obj(d["author"], "author")
    author = m.Person(a.get("name", ""), a.get("role", ""), a.get("organization", "") or "")
    trainee = None
    if d.get("trainee") is not None:
        t = _obj(d["trainee"], "trainee")
        trainee = m.Person(t.get("name", ""), t.get("role", "trainee"), t.get("organization", "") or "")
    verifier = None
    if d.get("verifier") is not None:
        v = _obj(d["verifier"], "verifier")
        verifier = m.Verifier(v.get("name", ""), v.get("organization", ""), v.get("datetime", "") or "")

    images = d.get("images") or []
    if not isinstance(images, list):
        raise ValueError("'images' must be a list")
    ratings, comments, keys = [], [], []
    studies: list[str] = []
    for i, img in enumerate(images):
        img = _obj(img, f"images[{i}]")
        bad = sorted(set(img) - _IMAGE_KEYS)
        if bad:
            raise ValueError(f"unknown key(s) in images[{i}]: {', '.join(bad)}")
        uid = img.get("sop_instance_uid")
        if not isinstance(uid, str) or not uid:
            raise ValueError(f"images[{i}] needs 'sop_instance_uid'")
        studies.append(study_uid_of(uid))
        quality, comment = img.get("quality"), img.get("comment")
        for frame in _frames(img, i):
            if quality is not None:
                ratings.append(m.ImageRating(uid, frame, quality, ""))
            if comment is not None:
                if not isinstance(comment, str):
                    raise ValueError(f"images[{i}].comment must be text")
                comments.append(m.ImageComment(uid, frame, comment))
            if quality is None and comment is None:
                keys.append(m.KeyImage(uid, frame))

    views = []
    if d.get("views") is not None:
        if not d.get("protocol"):
            raise ValueError("'views' need the 'protocol' they belong to")
        proto = get_protocol(d["protocol"])
        given: dict[str, m.ViewCheck] = {}
        if not isinstance(d["views"], list):
            raise ValueError("'views' must be a list")
        for i, v in enumerate(d["views"]):
            v = _obj(v, f"views[{i}]")
            vid = v.get("view")
            if not isinstance(vid, str):
                raise ValueError(f"views[{i}]: 'view' must be the text id of a view of protocol {proto.id}")
            if proto.view(vid) is None:
                raise ValueError(f"views[{i}]: {vid!r} is not a view of protocol {proto.id}")
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
        raise ValueError("the images named belong to more than one study; a review is about one study")
    if found:
        if study_uid and study_uid != found[0]:
            raise ValueError("study_instance_uid does not match the study of the images named")
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
        protocol=d.get("protocol"),
        views=views,
        image_ratings=ratings,
        outcome=d.get("outcome"),
        comments=comments,
        key_images=keys,
        verifier=verifier,
    )


class _Instances:
    """The reviewed instances in PATH: SOP Instance UID -> header data set."""

    def __init__(self, path: Path):
        # odd headers elsewhere in the folder are not this command's news
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._load(path)

    def _load(self, path: Path) -> None:
        if not path.exists():
            raise ValueError(f"{path}: no such file or folder")
        self.headers: dict[str, object] = {}
        self.study: dict[str, str] = {}  # SOP Instance UID -> Study Instance UID
        files = self._files(path)
        from mdtviewer.dicom.reader import read_dataset

        for f in files:
            try:
                ds = read_dataset(f, stop_before_pixels=True)
            except Exception:  # noqa: BLE001 - a file that cannot be read is not one of the study's instances
                continue
            uid = str(ds.get("SOPInstanceUID", "") or "")
            if uid and "StudyInstanceUID" in ds and "SOPClassUID" in ds and uid not in self.headers:
                self.headers[uid] = ds
                self.study[uid] = str(ds.StudyInstanceUID)
        if not self.headers:
            raise ValueError(f"{path.name}: no DICOM instances found")

    @staticmethod
    def _files(path: Path) -> list[Path]:
        try:  # the study index (DICOMDIR aware) when available
            from mdtviewer.dicom.index import scan

            idx = scan([path])
            files = [Path(i.path) for i in idx.instances()]
            if files:
                return files
        except Exception:  # noqa: BLE001 - the index is a shortcut; the plain walk below lists the files anyway
            pass
        if path.is_file():
            return [path]
        return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))

    def study_of(self, uid: str | None) -> str:
        if uid is None:
            studies = sorted(set(self.study.values()))
            if len(studies) != 1:
                raise ValueError(f"the study path holds {len(studies)} studies; name an image or study_instance_uid")
            return studies[0]
        ds = self.headers.get(uid)
        if ds is None:
            raise ValueError(f"unknown SOP instance UID {uid}: not among the instances in the study path")
        return self.study[uid]

    def evidence_for(self, study_uid: str) -> list:
        return [self.headers[u] for u, st in self.study.items() if st == study_uid]


def _cmd_write(args) -> int:
    from mdtviewer.infra.atomic import atomic_save_dataset
    from mdtviewer.sr.writer import build_review_sr

    out = Path(args.out)
    if out.exists() and not args.force:
        raise ValueError(f"{out} exists; use --force to replace it")
    if out.exists() and out.is_dir():
        raise ValueError(f"{out} is a folder; give a file name")
    try:
        data = json.loads(Path(args.review).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{args.review}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{args.review}: cannot read ({exc})") from None
    except json.JSONDecodeError as exc:
        where = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
        raise ValueError(f"{Path(args.review).name}: not valid JSON ({where})") from None
    instances = _Instances(Path(args.study))
    review = review_from_json(data, instances.study_of)
    ds = build_review_sr(review, instances.evidence_for(review.study_instance_uid))
    written = atomic_save_dataset(ds, out)
    from mdtviewer.workflows.reviews import audit_sr_written

    audit_sr_written(ds)
    print(written)
    return 0


def _cmd_show(args) -> int:
    from mdtviewer.sr.reader import read_sr, redacted
    from mdtviewer.sr.render import render_text

    path = Path(args.file)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    doc = read_sr(path)
    if not args.show_identifiers:
        doc = redacted(doc)  # subject-context items and the patient's name/ID/birth date in text
    _utf8_stdout()
    sys.stdout.write(render_text(doc, show_identifiers=args.show_identifiers))
    for note in doc.notes:
        print(f"mdtviewer sr show: note: {note}", file=sys.stderr)
    return 0


def _cmd_list(args) -> int:
    from mdtviewer.workflows.reviews import reviews_for_study

    folders = args.folder
    _utf8_stdout()
    if args.node:
        from mdtviewer.infra import paths
        from mdtviewer.pacs.nodes import get_node
        from mdtviewer.workflows.report_lookup import fetch_study_reports

        found = fetch_study_reports(args.study_uid, [get_node(args.node)])
        print(f"PACS: {found.message}")
        if folders is not None:
            folders = [*folders, str(paths.store_dir())]
        if found.problems:
            _print_docs(reviews_for_study(args.study_uid, folders))
            return 1  # the PACS could not be asked (or not all came): the list may be incomplete
    docs = reviews_for_study(args.study_uid, folders)
    _print_docs(docs)
    return 0


def _print_docs(docs) -> None:
    from mdtviewer.sr.render import _dt

    if not docs:
        print("no reviews or SR documents found for this study")
    for d in docs:
        title = d.title.meaning if d.title else "(untitled)"
        kind = d.review_kind or d.kind.upper()
        who = d.verifiers[0].name if d.verifiers else (d.author_observers[0] if d.author_observers else "")
        status = d.status + (" (superseded)" if d.superseded_by else "") + (" (amendment)" if d.predecessors else "")
        print(f"{_dt(d.sort_datetime)}  {status:<20} {kind:<15} {title}  {who}  {d.path}")


def _cmd_protocols(_args) -> int:
    from mdtviewer.sr.protocols import load_protocols

    _utf8_stdout()
    for p in load_protocols().values():
        print(f"{p.id}: {p.name} ({len(p.required_views)} required of {len(p.views)} views)")
        for v in p.views:
            print(f"    {v.id:<16} {'required' if v.required else 'optional':<9} {v.label}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if not args.cmd:
        parser.print_usage(sys.stderr)
        return 2
    try:
        return {"show": _cmd_show, "write": _cmd_write, "list": _cmd_list, "protocols": _cmd_protocols}[args.cmd](args)
    except (ValueError, DicomInputError) as exc:
        print(f"mdtviewer sr {args.cmd}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - a fault of ours: one line that says so, not a traceback
        print(f"mdtviewer sr {args.cmd}: internal error ({type(exc).__name__}); please report it "
              "with the file that caused it", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
