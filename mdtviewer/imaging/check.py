"""``mdtviewer check PATH... [--json] [--show-identifiers] [--jobs N]``: can every file be used?

Indexes the paths (files, folders, DICOMDIRs) like the viewer does, then
decodes **every frame** of every image/cine instance through
:class:`mdtviewer.imaging.pixels.FrameSource`, in worker processes (a decoder that
crashes on a malformed stream takes down a worker, not the check: that
instance is reported as failed).  Prints one line per instance and totals,
or with ``--json`` one JSON object per instance (files that cannot be read
at all get one too, with ``ok: false``).

JSON keys: path, ok, error, error_category, kind, sop_class_uid,
transfer_syntax, photometric, rows, columns, frames (0 for non-images),
frames_decoded, frame_times_ms (list or null), timing_source, us_regions
(count), decode_seconds, note (recoveries made while reading), and
``duplicate_of`` (path of the file kept) for a duplicate SOP Instance UID.

Duplicates: a file whose SOP Instance UID was already seen is still decoded
and listed, with ``ok`` from its own decode and ``duplicate_of`` naming the
kept file.  Both files are valid DICOM, so a duplicate on its own does not
make the check fail; the totals line counts duplicates so they are not
missed.  Non-DICOM files are skipped quietly and counted.

Exit status: 0 every instance ok, 1 any instance (or unreadable file) not
ok, 2 usage error (no paths, a path that does not exist, a bad option).

No patient identifiers (name, ID, birth date, accession) are printed unless
``--show-identifiers`` is given; then name and ID are added.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

IMAGE_KINDS = ("image", "cine")


def _quiet() -> None:
    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.getLogger("pydicom").setLevel(logging.ERROR)


def check_file(path: str, kind: str) -> dict[str, Any]:
    """Read *path* fully and decode every frame; a JSON-ready result record."""
    _quiet()
    from mdtviewer.dicom.reader import read_dataset, read_info
    from mdtviewer.imaging.cine import frame_times_ms
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
        rec["us_regions"] = len(parse_regions(ds))
        if kind in IMAGE_KINDS:
            from mdtviewer.imaging.pixels import FrameSource

            src = FrameSource(path, ds)
            try:
                rec.update(rows=src.rows, columns=src.columns, photometric=src.photometric,
                           frames=src.n_frames)
                times, source = frame_times_ms(ds)
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
        if rec["frames"] and rec["frames_decoded"] < rec["frames"]:
            rec["error"] = f"frame {rec['frames_decoded'] + 1} of {rec['frames']}: {exc.reason}"
    except MemoryError:
        rec["error"], rec["error_category"] = "not enough memory to decode", "error"
    except Exception as exc:  # noqa: BLE001 - a check must report, never crash
        rec["error"] = f"unexpected {type(exc).__name__}: {' '.join(str(exc).split())}"[:240]
        rec["error_category"] = "error"
    except BaseException as exc:
        from mdtviewer.imaging.codecs import is_decoder_panic

        if not is_decoder_panic(exc):
            raise
        rec["error"] = f"the decoder failed: {' '.join(str(exc).split())}"[:240]
        rec["error_category"] = "decode"
    rec["decode_seconds"] = round(time.perf_counter() - t0, 4)
    return rec


def _run_checks(jobs: list[tuple[str, str]], workers: int, fn: Any = None) -> list[dict[str, Any]]:
    """check_file over *jobs* in worker processes, surviving a crashing decoder.

    A decoder that crashes (segfault on a malformed stream) breaks the pool;
    the instances whose results were lost are then re-run one per process,
    so the crash is pinned on its own file and every other file is still checked.
    """
    import multiprocessing

    fn = fn or check_file
    ctx = multiprocessing.get_context("forkserver")
    results: dict[int, dict[str, Any]] = {}
    order = sorted(range(len(jobs)), key=lambda i: -_size(jobs[i][0]))  # big files first
    pending: list[int] = []
    if order:
        with ProcessPoolExecutor(max_workers=max(1, min(workers, len(order))), mp_context=ctx,
                                 initializer=_quiet) as pool:
            futs = {i: pool.submit(fn, *jobs[i]) for i in order}
            for i, fut in futs.items():
                try:
                    results[i] = fut.result()
                except BrokenProcessPool:
                    pending.append(i)
    for i in pending:
        try:
            with ProcessPoolExecutor(max_workers=1, mp_context=ctx, initializer=_quiet) as one:
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


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mdtviewer check",
        description="Index DICOM files/folders/DICOMDIRs and decode every frame of every instance.",
        epilog="Exit status: 0 every instance ok, 1 any not ok, 2 usage error. Duplicate SOP Instance UIDs "
               "are listed (duplicate_of) but do not fail the check. Patient names/IDs are shown only "
               "with --show-identifiers.")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--json", action="store_true", help="one JSON object per instance")
    p.add_argument("--show-identifiers", action="store_true", help="include patient name and ID")
    p.add_argument("--jobs", type=int, default=0, help="worker processes (default: all cores)")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help exits 0, bad usage 2
        return int(exc.code or 0)
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        print(f"mdtviewer check: no such file or folder: {missing[0]}", file=sys.stderr)
        return 2
    _quiet()
    from mdtviewer.dicom.index import StudyIndex, default_workers

    index = StudyIndex()
    index.add_paths(args.paths)
    workers = args.jobs if args.jobs > 0 else default_workers()

    ident: dict[str, tuple[str, str]] = {}
    if args.show_identifiers:
        for patient in index.patients.values():
            for study in patient.studies.values():
                for inst in study.instances():
                    ident[inst.sop_instance_uid] = (patient.patient_name, patient.patient_id)

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
    jobs = [(e["path"], e["kind"] or "other") for e in entries]
    results = _run_checks(jobs, workers)

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
        if args.show_identifiers:
            name, pid = ident.get(e["_uid"], ("", ""))
            rec["patient_name"], rec["patient_id"] = name, pid
        records.append(rec)
    for prob in sorted(index.problems, key=lambda p: str(p.path)):
        records.append({"path": str(prob.path), "ok": False, "error": prob.reason, "error_category": prob.category,
                        "kind": None, "sop_class_uid": None, "transfer_syntax": None, "photometric": None,
                        "rows": 0, "columns": 0, "frames": 0, "frames_decoded": 0, "frame_times_ms": None,
                        "timing_source": "none", "us_regions": 0, "decode_seconds": 0.0, "note": None})

    out = sys.stdout
    if args.json:
        for rec in records:
            out.write(json.dumps(rec) + "\n")
    else:
        for rec in records:
            out.write(_line(rec, args.show_identifiers) + "\n")
    n_ok = sum(1 for r in records if r["ok"])
    n_bad = len(records) - n_ok
    summary = (f"{len(records)} checked: {n_ok} ok, {n_bad} not ok "
               f"({len(index.problems)} unreadable); {len(index.duplicates)} duplicate SOP Instance UID(s); "
               f"{index.skipped_non_dicom} non-DICOM file(s) skipped")
    print(summary, file=sys.stderr if args.json else out)
    out.flush()
    return 0 if n_bad == 0 else 1


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


def _line(rec: dict[str, Any], show_ids: bool) -> str:
    status = "OK  " if rec["ok"] else "FAIL"
    name = rec["path"]
    kind = rec["kind"] or "-"
    parts = [status, f"{kind:<8}", name]
    if rec["frames"]:
        parts.append(f"{rec['columns']}x{rec['rows']} {rec['photometric']} "
                     f"{rec['frames_decoded']}/{rec['frames']} frames")
        if rec["frame_times_ms"]:
            parts.append(f"timing {rec['timing_source']} {rec['frame_times_ms'][0]:g} ms")
    if rec["us_regions"]:
        parts.append(f"{rec['us_regions']} US region(s)")
    if rec.get("duplicate_of"):
        parts.append(f"DUPLICATE of {Path(rec['duplicate_of']).name}")
    if rec["error"]:
        parts.append(f"-- {rec['error']}")
    elif rec.get("note"):
        parts.append(f"(note: {rec['note']})")
    if show_ids and rec.get("patient_id") is not None:
        parts.append(f"[patient {rec.get('patient_name', '')} / {rec.get('patient_id', '')}]")
    parts.append(f"{rec['decode_seconds']:.2f} s")
    return "  ".join(parts)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
