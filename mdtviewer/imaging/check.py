"""Can every file be used?  The library behind ``mdtviewer check`` (:mod:`mdtviewer.cli.check`).

Indexes the paths (files, folders, DICOMDIRs) like the viewer does, then
decodes **every frame** of every image/cine instance through
:class:`mdtviewer.imaging.pixels.FrameSource`, in worker processes (a decoder that
crashes on a malformed stream takes down a worker, not the check: that
instance is reported as failed; a worker dies with its parent).  One record
per instance (files that cannot be read at all get one too, ``ok`` False).  A rejection note that
withdraws nothing (malformed, or referencing only another study) is not ok: its own record's ``error``
says why (``error_category`` "rejection-note").

Record keys: path, ok, error, error_category, kind, sop_class_uid,
transfer_syntax, photometric, rows, columns, frames (0 for non-images),
frames_decoded, frame_times_ms (list or null), timing_source, us_regions
(count), decode_seconds, note (recoveries made while reading),
``duplicate_of`` (path of the file kept) for a duplicate SOP Instance UID, and
``withdrawn`` (the reason) with ``withdrawn_by`` (path of the rejection note)
for an instance an IHE IOCM rejection note of its study withdrew.

Duplicates: a file whose SOP Instance UID was already seen is still decoded
and listed, with ``ok`` from its own decode and ``duplicate_of`` naming the
kept file.  Both files are valid DICOM, so a duplicate on its own does not
make the check fail.  Non-DICOM files are skipped quietly and counted.

An image SOP class without Pixel Data (a file cut before its pixels) is not ok.

Structured reports and key object selections: their content tree is walked
(:func:`sr_tree_problems`: loops by reference, missing or unknown Value Type,
wrong Relationship Type, a content item without the concept name it needs, a
broken Content Template) and a damaged tree is not ok, with one line saying
where.  The caller may also pass a *document_check* (``check`` passes the SR
reader :func:`mdtviewer.sr.reader.read_sr`, which this layer cannot import),
whose reasons and notes are those ``sr show`` gives.
"""
from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

IMAGE_KINDS = ("image", "cine")


def _quiet() -> None:
    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.getLogger("pydicom").setLevel(logging.ERROR)


def _worker_init(parent_pid: int) -> None:
    """A check worker dies with the process that started it.

    A decoder stuck in C (or allocating without end) in an orphaned worker
    would go on using the machine after ``check`` is gone.  On Linux the
    kernel sends SIGKILL when the worker's parent (the forkserver, which
    itself exits with ``check``) dies; everywhere a watch thread also exits
    the worker once *parent_pid* is gone.
    """
    _quiet()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            PR_SET_PDEATHSIG = 1
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while True:
            time.sleep(0.5)
            try:
                os.kill(parent_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                os._exit(1)  # the pid now belongs to another user's process: the parent is gone

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


#: a check of a document's own content, run in the worker on the data set read: it returns notes (recoveries)
#: and raises :class:`mdtviewer.infra.errors.DicomInputError` with a one-line reason when it cannot be used
DocumentCheck = Callable[[Any], list[str]]

SR_KINDS = ("sr", "kos")


#: PS3.3 C.17.3 enumerated values
SR_VALUE_TYPES = frozenset({"TEXT", "NUM", "CODE", "DATETIME", "DATE", "TIME", "UIDREF", "PNAME", "COMPOSITE",
                            "IMAGE", "WAVEFORM", "SCOORD", "SCOORD3D", "TCOORD", "CONTAINER", "TABLE"})
SR_RELATIONSHIPS = frozenset({"CONTAINS", "HAS PROPERTIES", "HAS OBS CONTEXT", "HAS ACQ CONTEXT", "INFERRED FROM",
                              "SELECTED FROM", "HAS CONCEPT MOD"})
#: value types whose Concept Name Code Sequence is required (PS3.3 Table C.17-6, Type 1C); the root needs one too
_NAMED_VALUE_TYPES = frozenset({"TEXT", "NUM", "CODE", "DATETIME", "DATE", "TIME", "UIDREF", "PNAME"})
#: SELECTED FROM goes from a coordinate item to what it is selected from (PS3.3 C.18.10)
_SELECTING = frozenset({"SCOORD", "SCOORD3D", "TCOORD"})
#: a content tree with more items than this is not walked further (the reader's own sequence-depth limit
#: keeps the depth small; this keeps a flat bomb from taking minutes)
MAX_SR_ITEMS = 200_000
#: deeper content is refused (the reader already refuses more than 64 nested sequences: two per level)
MAX_SR_DEPTH = 64
_TEMPLATE_ID = re.compile(r"[0-9A-Za-z_. ]{1,16}")


def sr_tree_problems(ds: Any) -> list[str]:
    """What is wrong with the content tree of SR/KOS data set *ds* (empty: nothing), one phrase each.

    Positions are those ``sr show`` prints (root 1, its children 1.1, 1.2 ...).  Values are never
    quoted (they may hold identifiers or control characters).  Pure pydicom: no import of ``sr``.
    """
    problems: list[str] = []
    seen = 0

    def get(item: Any, kw: str) -> Any:
        try:
            return item.get(kw)
        except Exception:  # noqa: BLE001 - a value pydicom cannot convert is a damaged item
            problems.append(f"an item has an unreadable {kw}")
            return None

    def text(value: Any) -> str:
        # a damaged element may hold anything: a sequence where a code string belongs (the fuzzer's VR
        # CS -> SQ) prints its items, and pydicom raises on an item it cannot convert
        if value is None or isinstance(value, str):
            return (value or "").strip()
        if isinstance(value, (list, tuple)) and value and not isinstance(value[0], (str, int, float)):
            return "<sequence>"
        try:
            return str(value).strip()
        except Exception:  # noqa: BLE001 - an unconvertible value is a damaged item, said by its caller
            return "<unreadable>"

    def has_concept(item: Any) -> bool:
        seq = get(item, "ConceptNameCodeSequence")
        return bool(seq) and bool(text(get(seq[0], "CodeValue") or get(seq[0], "LongCodeValue")
                                       or get(seq[0], "URNCodeValue")))

    def walk(item: Any, pos: str, parent_vt: str, depth: int, root: bool) -> None:
        nonlocal seen
        seen += 1
        if depth > MAX_SR_DEPTH:
            problems.append(f"item {pos} is nested more than {MAX_SR_DEPTH} levels deep")
            return
        if seen > MAX_SR_ITEMS:
            if seen == MAX_SR_ITEMS + 1:
                problems.append(f"more than {MAX_SR_ITEMS:,} content items")
            return
        if not root:
            why = _relationship_problem(text(get(item, "RelationshipType")), parent_vt)
            if why:
                problems.append(f"item {pos} {why}")
        ref = get(item, "ReferencedContentItemIdentifier")
        if ref is not None and "ValueType" not in item and not root:
            target, why = _reference_target(ref, pos)
            if why:
                problems.append(f"item {pos} {why}")
            else:
                targets.append((pos, target))
            positions.add(pos)
            return
        vt = text(get(item, "ValueType"))
        if not vt:
            problems.append(f"item {pos} has no Value Type")
        elif vt not in SR_VALUE_TYPES:
            problems.append(f"item {pos} has an unknown Value Type")
        if (root or vt in _NAMED_VALUE_TYPES) and not has_concept(item):
            problems.append(f"item {pos} ({vt or 'untyped'}) has no concept name")
        if root or vt == "CONTAINER":
            problems.extend(f"item {pos} {why}" for why in _template_problems(get(item, "ContentTemplateSequence")))
        positions.add(pos)
        for i, child in enumerate(get(item, "ContentSequence") or [], 1):
            walk(child, f"{pos}.{i}", vt, depth + 1, False)

    targets: list[tuple[str, str]] = []
    positions: set[str] = set()
    walk(ds, "1", "", 0, True)
    for pos, target in targets:
        if target not in positions:
            problems.append(f"item {pos} refers to item {target}, which does not exist")
    return problems


def _template_problems(seq: Any) -> list[str]:
    if seq is None:
        return []
    out = [f"has a Content Template Sequence of {len(seq)} items (one is allowed)"] if len(seq) != 1 else []
    for t in seq:
        try:
            mapping = str(t.get("MappingResource", "") or "").strip()
            ident = str(t.get("TemplateIdentifier", "") or "").strip()
        except Exception:  # noqa: BLE001 - a value pydicom cannot convert: a damaged template
            out.append("has an unreadable Content Template")
            continue
        if not mapping or not ident:
            out.append("has a Content Template without its mapping resource or identifier")
        elif not _TEMPLATE_ID.fullmatch(ident):
            out.append("has a Content Template whose identifier is not a template number")
    return out


def _relationship_problem(rel: str, parent_vt: str) -> str | None:
    if not rel:
        return "has no Relationship Type"
    if rel not in SR_RELATIONSHIPS:
        return "has an unknown Relationship Type"
    if rel == "SELECTED FROM" and parent_vt not in _SELECTING:
        return f"is SELECTED FROM a {parent_vt or 'untyped'} item (only coordinates are)"
    return None


def _reference_target(ref: Any, pos: str) -> tuple[str, str | None]:
    """The position a by-reference item points at, and what is wrong with it (None: nothing yet)."""
    ids = list(ref) if isinstance(ref, (list, tuple)) or type(ref).__name__ == "MultiValue" else [ref]
    try:
        target = ".".join(str(int(x)) for x in ids)
    except (TypeError, ValueError):
        return "", "refers to an unreadable item number"
    if not target:
        return "", "refers to no item"
    if target == pos or pos.startswith(target + "."):
        return target, f"refers to {'itself' if target == pos else 'its own ancestor'} (a loop by reference)"
    return target, None


def _check_sr_tree(ds: Any) -> None:
    from mdtviewer.infra.errors import MalformedHeaderError

    problems = sr_tree_problems(ds)
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise MalformedHeaderError(f"the structured report's content is damaged: {problems[0]}{more}")


def check_file(path: str, kind: str, sop_class_uid: str = "",
               document_check: DocumentCheck | None = None) -> dict[str, Any]:
    """Read *path* fully and decode every frame; a JSON-ready result record.

    *document_check* (a module-level function: it crosses to the worker) is run on SR/KOS data sets."""
    _quiet()
    from mdtviewer.dicom.reader import read_dataset, read_info
    from mdtviewer.imaging.cine import frame_times_ms, timing_note
    from mdtviewer.imaging.usregions import parse_regions
    from mdtviewer.infra.errors import DicomInputError

    rec: dict[str, Any] = {
        "ok": False, "error": None, "error_category": None, "transfer_syntax": None, "photometric": None,
        "rows": 0, "columns": 0, "frames": 0, "frames_decoded": 0, "frame_times_ms": None,
        "timing_source": "none", "us_regions": 0, "decode_seconds": 0.0,
    }
    t0 = time.perf_counter()
    try:
        ds = read_dataset(path)
        info = read_info(ds)
        rec["transfer_syntax"] = str(ds.file_meta.get("TransferSyntaxUID", "") or "") or None
        regions = parse_regions(ds)
        rec["us_regions"] = len(regions)
        info.notes.extend(r.note for r in regions if r.note)
        if kind not in IMAGE_KINDS:
            _refuse_image_without_pixels(path, ds, sop_class_uid)
        if kind in IMAGE_KINDS:
            from mdtviewer.imaging.pixels import FrameSource

            src = FrameSource(path, ds)
            try:
                rec.update(rows=src.rows, columns=src.columns, photometric=src.photometric,
                           frames=src.n_frames)
                times, source = frame_times_ms(ds)
                refused = timing_note(ds)
                if refused:
                    info.notes.append(refused)
                rec["frame_times_ms"] = [round(t, 3) for t in times] if times else None
                rec["timing_source"] = source
                for i in range(src.n_frames):
                    arr = src.frame(i)
                    if arr.dtype.name != "uint8" or arr.shape[:2] != (src.rows, src.columns):
                        raise DicomInputError(f"frame {i + 1} decoded to {arr.dtype} {arr.shape}, "
                                              f"expected uint8 {src.rows}x{src.columns}")
                    rec["frames_decoded"] = i + 1
                note = getattr(src, "note", None)
                if note:
                    info.notes.append(note)
            finally:
                src.close()
        elif kind in SR_KINDS:
            _check_sr_tree(ds)
            if document_check is not None:
                info.notes.extend(document_check(ds))
        elif kind in ("pdf", "document"):
            doc = ds.get("EncapsulatedDocument")
            if not doc:
                raise DicomInputError("the encapsulated document is empty")
            if kind == "pdf" and not bytes(doc[:1024]).lstrip().startswith(b"%PDF"):
                raise DicomInputError("encapsulated PDF document does not start with %PDF")
        rec["ok"] = True
        rec["note"] = "; ".join(info.notes) or None
    except DicomInputError as exc:
        rec["error"] = exc.reason
        rec["error_category"] = exc.category
        if rec["frames"] > 1 and rec["frames_decoded"] < rec["frames"]:
            reason = re.sub(r"^frame \d+: ", "", exc.reason)
            rec["error"] = f"frame {rec['frames_decoded'] + 1} of {rec['frames']}: {reason}"
    except MemoryError:
        rec["error"], rec["error_category"] = "not enough memory to decode this file", "error"
    except Exception as exc:  # noqa: BLE001 - a check must report, never crash
        rec["error"] = (f"this file could not be checked because of a fault in the viewer "
                        f"({type(exc).__name__}); please report it with the file")
        rec["error_category"] = "error"
    except BaseException as exc:
        from mdtviewer.imaging.codecs import is_decoder_panic

        if not is_decoder_panic(exc):
            raise
        rec["error"] = "the image decoder failed on this file's compressed data (it is damaged)"
        rec["error_category"] = "decode"
    rec["decode_seconds"] = round(time.perf_counter() - t0, 4)
    return rec


def _refuse_image_without_pixels(path: str, ds: Any, sop_class_uid: str) -> None:
    """An image SOP class requires Pixel Data (Type 1): without it the file was cut before its
    pixels, or written wrongly; either way it cannot be shown, so it is not ok."""
    from mdtviewer.dicom.uids import is_image_class
    from mdtviewer.infra.errors import PixelDataError

    uid = sop_class_uid or str(ds.get("SOPClassUID", "") or "")
    if not is_image_class(uid) or any(t in ds for t in (0x7FE00010, 0x7FE00008, 0x7FE00009)):
        return
    size = _size(path)
    raise PixelDataError(f"image without Pixel Data: the file ends after {size:,} bytes, before its pixels "
                         "(cut short, or written without them)")


def _run_checks(jobs: list[tuple[str, ...]], workers: int, fn: Any = None) -> list[dict[str, Any]]:
    """check_file over *jobs* in worker processes, surviving a crashing decoder.

    A decoder that crashes (segfault on a malformed stream) breaks the pool;
    the instances whose results were lost are then re-run one per process,
    so the crash is pinned on its own file and every other file is still checked.
    """
    import multiprocessing

    fn = fn or check_file
    ctx = multiprocessing.get_context("forkserver")
    init, init_args = _worker_init, (os.getpid(),)
    results: dict[int, dict[str, Any]] = {}
    order = sorted(range(len(jobs)), key=lambda i: -_size(jobs[i][0]))  # big files first
    pending: list[int] = []
    if order:
        with ProcessPoolExecutor(max_workers=max(1, min(workers, len(order))), mp_context=ctx,
                                 initializer=init, initargs=init_args) as pool:
            futs = {i: pool.submit(fn, *jobs[i]) for i in order}
            for i, fut in futs.items():
                try:
                    results[i] = fut.result()
                except BrokenProcessPool:
                    pending.append(i)
    for i in pending:
        try:
            with ProcessPoolExecutor(max_workers=1, mp_context=ctx, initializer=init,
                                     initargs=init_args) as one:
                results[i] = one.submit(fn, *jobs[i]).result()
        except BrokenProcessPool:
            results[i] = {"ok": False, "error": "the decoder crashed on this file (worker process died)",
                          "error_category": "decode", "frames": 0, "frames_decoded": 0,
                          "frame_times_ms": None, "timing_source": "none", "us_regions": 0,
                          "decode_seconds": 0.0, "transfer_syntax": None, "photometric": None,
                          "rows": 0, "columns": 0}
    return [results[i] for i in range(len(jobs))]


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _header_fields(inst: Any) -> dict[str, Any]:
    """What the header says of an instance, for records whose full read or decode failed early.

    A script reading ``check --json`` should still learn that a truncated file
    is a 64 x 64 MONOCHROME2 image of 1 frame in Explicit VR Little Endian,
    with ``frames_decoded`` 0, rather than get nulls and zeros.
    """
    if inst is None:
        return {}
    out: dict[str, Any] = {"transfer_syntax": inst.transfer_syntax or None}
    if inst.kind in IMAGE_KINDS:
        out.update(photometric=inst.photometric or None, rows=inst.rows, columns=inst.columns,
                   frames=inst.number_of_frames)
    return out


@dataclass
class CheckReport:
    """What ``check`` found: one record per instance (and per unreadable file), and the totals."""

    records: list[dict[str, Any]] = field(default_factory=list)
    unreadable: int = 0
    #: instances a rejection note of their study withdrew (IHE IOCM; each record's "withdrawn" says why)
    withdrawn: int = 0
    duplicates: int = 0
    non_dicom: int = 0
    #: path -> (patient name, Patient ID, birth date) of each record's patient, never printed: the CLI hides
    #: these where a path spells them (a DICOMDIR file-set's folders are often named by Patient ID)
    path_identifiers: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    #: (patient name, Patient ID, birth date) of every PATIENT record of the run's DICOMDIRs whose files are
    #: missing or refused: patients of the run too, though no file of theirs was read (QA2 #1)
    run_identifiers: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def n_ok(self) -> int:
        return sum(1 for r in self.records if r["ok"])

    @property
    def n_bad(self) -> int:
        return len(self.records) - self.n_ok

    def summary(self) -> str:
        out = (f"{len(self.records)} checked: {self.n_ok} ok, {self.n_bad} not ok "
               f"({self.unreadable} unreadable); {self.duplicates} duplicate SOP Instance UID(s); "
               f"{self.non_dicom} non-DICOM file(s) skipped")
        if self.withdrawn:
            out += f"; {self.withdrawn} instance(s) withdrawn by a rejection note"
        return out


def check_paths(paths: list[str], *, show_identifiers: bool = False, jobs: int = 0,
                document_check: DocumentCheck | None = None) -> CheckReport:
    """Index *paths* (files, folders, DICOMDIRs) and decode every frame of every instance.

    Patient name and ID are added to the records only with *show_identifiers*.  *document_check*: see
    :func:`check_file`.
    """
    _quiet()
    from mdtviewer.dicom.index import StudyIndex, default_workers

    index = StudyIndex()
    index.add_paths(paths)
    workers = jobs if jobs > 0 else default_workers()

    ident: dict[str, tuple[str, str, str]] = {}
    for patient in index.patients.values():
        for study in patient.studies.values():
            for inst in study.instances():
                ident[inst.sop_instance_uid] = (patient.patient_name, patient.patient_id, patient.birth_date)

    # IHE IOCM: which note withdrew which instance (the index decided: Study.rejected / withdrawal_notes)
    withdrawn_by: dict[str, tuple[str, str]] = {}
    for _patient, study in index.studies():
        for note in study.withdrawal_notes:
            for uid in note.withdrawn:
                withdrawn_by.setdefault(uid, (note.reason, str(note.path)))
    entries: list[dict[str, Any]] = []
    for inst in index.instances():
        entries.append({"path": str(inst.path), "kind": inst.kind, "sop_class_uid": inst.sop_class_uid,
                        "_uid": inst.sop_instance_uid, "_note": inst.note, "_error": inst.error,
                        "_header": _header_fields(inst)})
    for kept, dup, uid in index.duplicates:
        dinst = index.duplicate_instance(dup) or index.find_instance(uid)
        entries.append({"path": str(dup), "kind": dinst.kind if dinst else None,
                        "sop_class_uid": dinst.sop_class_uid if dinst else None,
                        "_uid": uid, "duplicate_of": str(kept), "_note": dinst.note if dinst else "",
                        "_error": dinst.error if dinst else None, "_header": _header_fields(dinst)})
    entries.sort(key=lambda e: e["path"])
    jobs_: list[tuple[str, ...]] = [(e["path"], e["kind"] or "other", e["sop_class_uid"] or "") for e in entries]
    if document_check is None:
        results = _run_checks(jobs_, workers)
    else:
        import functools

        results = _run_checks(jobs_, workers, functools.partial(check_file, document_check=document_check))

    records: list[dict[str, Any]] = []
    for e, r in zip(entries, results):
        rec = {"path": e["path"], "ok": r["ok"], "error": r["error"], "error_category": r.get("error_category"),
               "kind": e["kind"], "sop_class_uid": e["sop_class_uid"]}
        for k in ("transfer_syntax", "photometric", "rows", "columns", "frames", "frames_decoded",
                  "frame_times_ms", "timing_source", "us_regions", "decode_seconds"):
            rec[k] = r.get(k)
        for k, v in e["_header"].items():
            if not rec.get(k) and v:
                rec[k] = v  # the decode failed before it learned this: the header still says it
        notes = [n for n in (e["_note"], r.get("note")) if n]
        rec["note"] = "; ".join(dict.fromkeys("; ".join(notes).split("; "))) if notes else None
        if e["_error"] and rec["ok"]:
            rec["note"] = "; ".join(x for x in (rec["note"], e["_error"]) if x)
        if "duplicate_of" in e:
            rec["duplicate_of"] = e["duplicate_of"]
        why = withdrawn_by.get(e["_uid"]) if "duplicate_of" not in e else None
        if why:  # only on withdrawn instances, as duplicate_of on duplicates
            rec["withdrawn"], rec["withdrawn_by"] = why
        if show_identifiers:
            name, pid, _birth = ident.get(e["_uid"], ("", "", ""))
            rec["patient_name"], rec["patient_id"] = name, pid
        records.append(rec)
    by_path = {r["path"]: r for r in records if "duplicate_of" not in r}
    for prob in sorted(index.problems, key=lambda p: str(p.path)):
        own = by_path.get(str(prob.path)) if prob.category == "rejection-note" else None
        if own is not None:  # a note that withdraws nothing: its own line says why, as a damaged SR's does (QA3 #7)
            own["ok"] = False
            own["error"] = "; ".join(x for x in (own["error"], prob.reason) if x)
            own["error_category"] = own["error_category"] or prob.category
            continue
        records.append({"path": str(prob.path), "ok": False, "error": prob.reason, "error_category": prob.category,
                        "kind": None, "sop_class_uid": None, "transfer_syntax": None, "photometric": None,
                        "rows": 0, "columns": 0, "frames": 0, "frames_decoded": 0, "frame_times_ms": None,
                        "timing_source": "none", "us_regions": 0, "decode_seconds": 0.0, "note": None})

    path_ids = {e["path"]: ident[e["_uid"]] for e in entries if e["_uid"] in ident}
    return CheckReport(records, unreadable=sum(1 for p in index.problems if p.category != "rejection-note"),
                       withdrawn=sum(1 for r in records if r.get("withdrawn")), duplicates=len(index.duplicates),
                       non_dicom=index.skipped_non_dicom, path_identifiers=path_ids,
                       run_identifiers=dicomdir_patients(index.problems, paths))


def _dicomdirs_in(folder: str, cache: dict[str, list[str]]) -> list[str]:
    """The DICOMDIRs directly in *folder*: files named DICOMDIR, else Part 10 files of the Media Storage
    Directory class (a DICOMDIR under another name, as the index finds them)."""
    if folder not in cache:
        from mdtviewer.dicom.dicomdir import is_dicomdir_name, looks_like_dicomdir

        try:
            with os.scandir(folder) as it:
                files = [e.path for e in it if e.is_file()]
        except OSError:
            files = []
        named = [f for f in files if is_dicomdir_name(os.path.basename(f))]
        cache[folder] = named or [f for f in files if looks_like_dicomdir(f)]
    return cache[folder]


def dicomdir_patients(problems: list[Any], roots: list[str]) -> list[tuple[str, str, str]]:
    """(name, Patient ID, birth date) of the PATIENT records of the DICOMDIRs behind *problems*.

    A file a DICOMDIR names but that is missing is printed by its File ID, whose folders are often the
    patient's ID (``77654033/CR1/6154``), yet no file of that patient was read: the DICOMDIR's own
    PATIENT records say who the file-set's patients are.  The DICOMDIR of a missing file lies in one of
    its folders, inside the PATH given; a refused record ("outside") names its DICOMDIR itself.
    """
    from mdtviewer.dicom.dicomdir import read_records
    from mdtviewer.infra.errors import MdtError

    tops = []
    for r in roots:
        a = os.path.abspath(r)
        tops.append(a if os.path.isdir(a) else os.path.dirname(a))
    found: list[str] = []
    cache: dict[str, list[str]] = {}
    for prob in problems:
        path = os.path.abspath(str(prob.path))
        if prob.category == "outside":
            found.append(path)
        elif prob.category == "missing" and "DICOMDIR" in str(prob.reason):
            folder = os.path.dirname(path)
            while any(folder == t or folder.startswith(t.rstrip(os.sep) + os.sep) for t in tops):
                found.extend(_dicomdirs_in(folder, cache))
                up = os.path.dirname(folder)
                if up == folder:
                    break
                folder = up
    out: list[tuple[str, str, str]] = []
    for dd in dict.fromkeys(found):
        try:
            _top, recs = read_records(dd)
        except (MdtError, OSError):
            continue  # an unreadable DICOMDIR named no file: nothing of it is printed
        for rec in recs:
            if str(rec.get("DirectoryRecordType", "")).strip().upper() == "PATIENT":
                out.append((str(rec.get("PatientName") or ""), str(rec.get("PatientID") or ""),
                            str(rec.get("PatientBirthDate") or "")))
    return list(dict.fromkeys(out))
