"""The one DICOMDIR reader: which files a file-set's directory names, confined to the file-set.

A DICOMDIR (PS3.10 media: CD, DVD, USB) is the index of a file-set, not an
instance.  Its directory records name files by *File ID* (Referenced File
ID, up to eight components), relative to the folder that holds the
DICOMDIR.  The viewer's index and the export both expand a DICOMDIR with
:func:`read_file_set`.

* Components are matched case-insensitively when the exact name is absent,
  as on ISO 9660 media read on a case-sensitive file system.
* **Every referenced file must lie inside the DICOMDIR's folder.**  A File ID
  that is absolute (a first component ``/tmp``, an empty first component as
  in ``\\tmp\\x``, a drive ``C:`` or a UNC ``\\\\server``), that climbs with
  ``..``, or that resolves (through a link) to a place outside the folder
  is not read: it becomes a problem with a one-line reason.  A DICOMDIR is
  data from someone else's media; it never chooses which of the user's files
  we open.
* A referenced file that is absent is a problem too ("missing"); a record
  without a File ID (patient, study, series records) is skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

from mdtviewer.dicom import values
from mdtviewer.dicom.model import Problem
from mdtviewer.dicom.uids import MEDIA_STORAGE_DIRECTORY

#: how the one-line reasons start, so a list of problems says where they came from
_FROM = "referenced by the DICOMDIR"


def is_dicomdir_name(name: str) -> bool:
    return name.upper() == "DICOMDIR"


def looks_like_dicomdir(path: str | os.PathLike) -> bool:
    """Named DICOMDIR, or a Part 10 file whose first 512 bytes carry the Media Storage Directory class."""
    path = Path(path)
    if is_dicomdir_name(path.name):
        return True
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return False
    return head[128:132] == b"DICM" and MEDIA_STORAGE_DIRECTORY.encode() in head


def _unsafe_component(part: str, first: bool) -> str | None:
    """Why a File ID component could leave the file-set, or None when it is harmless."""
    if first and part == "":
        return "an absolute path"
    if part == "..":
        return "'..'"
    if "/" in part or "\x00" in part:
        return "an absolute path" if first and part.startswith("/") else "a path separator inside a component"
    if ":" in part:
        return "a drive letter" if first else "a ':' inside a component"
    return None


def _resolve_case_insensitive(base: Path, parts: list[str]) -> Path | None:
    p = base
    for part in parts:
        cand = p / part
        if cand.exists():
            p = cand
            continue
        try:
            lower = part.lower()
            match = next((c for c in p.iterdir() if c.name.lower() == lower), None)
        except OSError:
            return None
        if match is None:
            return None
        p = match
    return p


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
    except (OSError, ValueError):
        return False
    return True


def read_file_set(dicomdir: str | os.PathLike) -> tuple[list[Path], list[Problem]]:
    """Files a DICOMDIR's records name (present, inside its folder, in record order, once each), and problems.

    Problems have category ``missing`` (named but absent) or ``outside``
    (the File ID leaves the file-set: not read).  Raises
    :class:`mdtviewer.infra.errors.DicomInputError` when the DICOMDIR itself
    cannot be read.
    """
    from mdtviewer.dicom.reader import read_dataset

    dicomdir = Path(dicomdir)
    ds = read_dataset(dicomdir)
    base = dicomdir.parent
    try:
        root = base.resolve()
    except OSError:
        root = Path(os.path.abspath(base))
    found: list[Path] = []
    problems: list[Problem] = []
    seen: set[Path] = set()
    for rec in values.sequence(ds, "DirectoryRecordSequence"):
        raw = [values.as_text(v) for v in values.values(values.get(rec, "ReferencedFileID"))]
        if not raw:
            continue
        # a single value may still carry backslashes or slashes (a writer that did not split it)
        parts = [p for comp in raw for p in comp.split("\\")]
        parts = [p.strip() for p in parts]
        why = next((w for i, p in enumerate(parts) if (w := _unsafe_component(p, i == 0)) is not None), None)
        parts = [p for p in parts if p not in ("", ".")]
        if why is None and not parts:
            continue
        if why is not None:
            problems.append(Problem(dicomdir, f"a record of this DICOMDIR names a file outside its file-set "
                                              f"({why}); that file is not read", "outside"))
            continue
        path = _resolve_case_insensitive(base, parts)
        if path is None or not path.is_file():
            problems.append(Problem(base.joinpath(*parts), f"{_FROM} but missing", "missing"))
            continue
        if not _inside(path, root):
            problems.append(Problem(dicomdir, "a record of this DICOMDIR names a file that resolves outside its "
                                              "file-set (through a link); that file is not read", "outside"))
            continue
        if path not in seen:
            seen.add(path)
            found.append(path)
    return found, problems
