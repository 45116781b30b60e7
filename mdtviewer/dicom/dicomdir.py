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
import struct
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


# ----------------------------------------------------------------- the records, read fast
#: what the viewer takes from a directory record (everything else in a record is skipped unread)
RECORD_KEYWORDS = (
    "OffsetOfTheNextDirectoryRecord", "OffsetOfReferencedLowerLevelDirectoryEntity", "RecordInUseFlag",
    "DirectoryRecordType", "ReferencedFileID", "ReferencedSOPClassUIDInFile", "ReferencedSOPInstanceUIDInFile",
    "ReferencedTransferSyntaxUIDInFile", "PatientID", "PatientName", "PatientBirthDate", "PatientSex",
    "StudyInstanceUID", "StudyDate", "StudyTime", "StudyDescription", "AccessionNumber", "InstitutionName",
    "ReferringPhysicianName", "SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription",
    "InstanceNumber", "NumberOfFrames", "Rows", "Columns", "PhotometricInterpretation", "DocumentTitle",
    "MIMETypeOfEncapsulatedDocument", "ConceptNameCodeSequence", "CodeMeaning", "SpecificCharacterSet",
)
_DIR_SEQ = 0x00041220
_FIRST_ROOT = 0x00041200
_LONG_VRS = {b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN", b"UC", b"UR", b"OD", b"OL", b"OV", b"SV", b"UV"}
_UNDEFINED = 0xFFFFFFFF
_MAX_DEPTH = 12
#: a DICOMDIR larger than this is read by pydicom (with its own guards), not into memory at once here
_MAX_FAST = 512 * 1024 * 1024


class _Bail(Exception):
    """Not the plain Explicit VR Little Endian layout the fast walk reads: pydicom reads it instead."""


def _tags() -> dict[int, str]:
    from pydicom.datadict import tag_for_keyword

    return {int(tag_for_keyword(k)): k for k in RECORD_KEYWORDS}  # type: ignore[arg-type]


_TAGS: dict[int, str] = {}


class Record(dict):
    """One directory record: keyword -> value (text, int, or a list of Records for a sequence).

    ``tell`` is the byte offset of its item in the DICOMDIR (what the records' offsets point at)."""

    tell: int = -1


def _walk(buf: bytes, pos: int, end: int | None, out: dict, depth: int, records: list | None, enc: list) -> int:
    """Elements from *pos* to *end* (or to an item delimiter when *end* is None) into *out*; returns the end."""
    from struct import unpack_from

    if depth > _MAX_DEPTH:
        raise _Bail("nested too deep")
    tags = _TAGS
    n = len(buf)
    limit = n if end is None else end
    cur = enc  # a record may name its own character set (0008,0005), before its text in tag order
    while pos < limit:
        if pos + 8 > n:
            raise _Bail("cut short")
        group, elem, vr, length = unpack_from("<HH2sH", buf, pos)  # one call per element: the hot loop
        tag = group << 16 | elem
        if tag == 0xFFFEE00D:  # item delimiter
            if end is not None:
                raise _Bail("stray item delimiter")
            return pos + 8
        if vr in _LONG_VRS:
            (length,) = unpack_from("<I", buf, pos + 8)
            pos += 12
        else:
            if not (65 <= vr[0] <= 90 and 65 <= vr[1] <= 90):
                raise _Bail("not explicit VR")
            pos += 8
        kw = tags.get(tag)
        if vr == b"SQ":
            items: list[Record] = []
            pos = _items(buf, pos, None if length == _UNDEFINED else pos + length, items, depth + 1,
                         tag == _DIR_SEQ and records is not None, cur)
            if tag == _DIR_SEQ and records is not None:
                records.extend(items)
            elif kw is not None:
                out[kw] = items
            continue
        if length == _UNDEFINED or pos + length > n:
            raise _Bail("undefined or overlong value")
        if kw is not None or tag == _FIRST_ROOT:
            raw = buf[pos : pos + length]
            if vr in (b"UL", b"up") or tag == _FIRST_ROOT:
                out[kw or "_first"] = unpack_from("<I", raw)[0] if length >= 4 else 0
            elif vr == b"US":
                out[kw] = unpack_from("<H", raw)[0] if length >= 2 else 0
            else:
                out[kw] = _text(raw, cur)
                if kw == "SpecificCharacterSet" and out[kw]:
                    cur = _encodings(out[kw])
        pos += length
    if end is not None and pos != end:
        raise _Bail("element overruns its container")
    return pos


def _items(buf: bytes, pos: int, end: int | None, items: list, depth: int, top: bool, enc: list) -> int:
    from struct import unpack_from

    n = len(buf)
    while end is None or pos < end:
        if pos + 8 > n:
            raise _Bail("cut short")
        group, elem, length = unpack_from("<HHI", buf, pos)
        tag = group << 16 | elem
        if tag == 0xFFFEE0DD:  # sequence delimiter
            if end is not None:
                raise _Bail("stray sequence delimiter")
            return pos + 8
        if tag != 0xFFFEE000:
            raise _Bail("not an item")
        rec = Record()
        rec.tell = pos
        start = pos + 8
        if length == _UNDEFINED:
            pos = _walk(buf, start, None, rec, depth, None, enc)
        else:
            pos = _walk(buf, start, start + length, rec, depth, None, enc)
        items.append(rec)
    if pos != end:
        raise _Bail("item overruns its sequence")
    return pos


def _encodings(value: str) -> list[str]:
    from pydicom.charset import convert_encodings

    return convert_encodings([v.strip() for v in value.split("\\")] or ["ISO_IR 6"])


def _text(raw: bytes, enc: list) -> str:
    if enc:
        from pydicom.charset import decode_bytes

        try:
            return decode_bytes(raw, enc, set()).strip("\x00 ")
        except Exception:  # noqa: BLE001 - an unknown character set: read as Latin-1, never fail the listing
            pass
    return raw.decode("latin-1").strip("\x00 ")


def _fast_records(path: Path) -> tuple[Record, list[Record]] | None:
    """(top-level values, records) of a plain Explicit VR Little Endian DICOMDIR, or None for pydicom to read."""
    global _TAGS
    if not _TAGS:
        _TAGS = _tags()
    try:
        if path.stat().st_size > _MAX_FAST:
            return None
        buf = path.read_bytes()
    except OSError:
        return None
    if len(buf) < 144 or buf[128:132] != b"DICM":
        return None
    try:
        from struct import unpack_from

        # file meta: group 2, its length given by (0002,0000)
        if buf[132:136] != b"\x02\x00\x00\x00" or buf[136:138] != b"UL":
            return None
        (meta_len,) = unpack_from("<I", buf, 140)
        start = 144 + meta_len
        if b"1.2.840.10008.1.2.1\x00" not in buf[144:start] and not buf[144:start].rstrip(b"\x00 ").endswith(
            b"1.2.840.10008.1.2.1"
        ):
            return None  # another transfer syntax (implicit VR, deflated, big endian): pydicom reads it
        top = Record()
        records: list[Record] = []
        enc: list[str] = []
        # the character set (0008,0005) follows the records in tag order: found first, the records skipped
        pos = start
        head = Record()
        _scan_charset(buf, start, head)
        if head.get("SpecificCharacterSet"):
            enc = _encodings(head["SpecificCharacterSet"])
        _walk(buf, pos, len(buf), top, 0, records, enc)
    except (_Bail, ValueError, LookupError, struct.error, RecursionError):
        return None  # pydicom reads it, with its recoveries and one-line reasons
    return top, records


def _scan_charset(buf: bytes, pos: int, out: dict) -> None:
    """The top level's Specific Character Set (after group 0004 in tag order): sequences skipped by length."""
    from struct import unpack_from

    n = len(buf)
    while pos + 8 <= n:
        group, elem = unpack_from("<HH", buf, pos)
        vr = buf[pos + 4 : pos + 6]
        if vr in _LONG_VRS:
            (length,) = unpack_from("<I", buf, pos + 8)
            pos += 12
        else:
            (length,) = unpack_from("<H", buf, pos + 6)
            pos += 8
        if (group, elem) == (0x0008, 0x0005):
            out["SpecificCharacterSet"] = buf[pos : pos + length].decode("ascii", "replace").strip("\x00 ")
            return
        if group > 0x0008 or length == _UNDEFINED:
            return  # past it, or a sequence of undefined length (rare in a DICOMDIR): ASCII/Latin-1 then
        pos += length


def _pydicom_records(dicomdir: Path) -> tuple[Record, list[Record]]:
    """The same records through pydicom (any transfer syntax, damaged files recovered or refused)."""
    from mdtviewer.dicom.reader import read_dataset

    ds = read_dataset(dicomdir)

    def conv(item) -> Record:
        rec = Record()
        rec.tell = getattr(item, "seq_item_tell", -1)
        for kw in RECORD_KEYWORDS:
            v = values.get(item, kw)
            if v is None:
                continue
            if kw == "ConceptNameCodeSequence":
                rec[kw] = [conv(x) for x in v]
            elif kw in ("OffsetOfTheNextDirectoryRecord", "OffsetOfReferencedLowerLevelDirectoryEntity",
                        "RecordInUseFlag"):
                try:
                    rec[kw] = int(v)
                except (TypeError, ValueError):
                    rec[kw] = 0
            else:
                rec[kw] = "\\".join(values.as_text(x) for x in values.values(v))
        return rec

    top = Record()
    try:
        top["_first"] = int(values.get(ds, "OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity") or 0)
    except (TypeError, ValueError):
        top["_first"] = 0
    return top, [conv(r) for r in values.sequence(ds, "DirectoryRecordSequence")]


def read_records(dicomdir: str | os.PathLike) -> tuple[Record, list[Record]]:
    """(top level, directory records) of a DICOMDIR: a fast byte walk for the usual layout, pydicom otherwise.

    Raises :class:`mdtviewer.infra.errors.DicomInputError` when the DICOMDIR cannot be read."""
    dicomdir = Path(dicomdir)
    got = _fast_records(dicomdir)
    return got if got is not None else _pydicom_records(dicomdir)


def _hierarchy(top: Record, recs: list[Record]) -> list[tuple[Record, tuple]]:
    """Every directory record in use with its ancestors (patient, study, series... records), in sequence order.

    The records are linked by byte offsets (Offset of the Next Directory Record, Offset of
    Referenced Lower-Level Directory Entity); a DICOMDIR whose offsets do not lead to every record
    (a writer that left them 0, a damaged file) is read in sequence order instead, with each record's
    ancestors being the last record seen at each higher level."""
    by_off = {r.tell: r for r in recs if r.tell >= 0}
    first = top.get("_first", 0)
    if first in by_off:
        ancestors: dict[int, tuple] = {}
        stack: list[tuple[int, tuple]] = [(first, ())]
        while stack:
            o, parents = stack.pop()
            while o and o in by_off and o not in ancestors:  # a sibling chain; a loop is cut at the first repeat
                rec = by_off[o]
                ancestors[o] = parents
                low = rec.get("OffsetOfReferencedLowerLevelDirectoryEntity", 0)
                if low:
                    stack.append((low, parents + (rec,)))
                o = rec.get("OffsetOfTheNextDirectoryRecord", 0)
        if len(ancestors) == len(recs):  # every record reached: listed in sequence order with its ancestors
            return [(r, ancestors[r.tell]) for r in recs if r.get("RecordInUseFlag", 0xFFFF) != 0]
    # sequence order: the last record seen at each higher level is an ancestor
    levels = {"PATIENT": 0, "STUDY": 1, "SERIES": 2}
    current: list[Record | None] = [None, None, None]
    out: list[tuple[Record, tuple]] = []
    for rec in recs:
        rtype = str(rec.get("DirectoryRecordType", "")).upper()
        lvl = levels.get(rtype)
        parents = tuple(r for r in (current if lvl is None else current[:lvl]) if r is not None)
        if lvl is not None:
            current[lvl] = rec
            for i in range(lvl + 1, 3):
                current[i] = None
        if rec.get("RecordInUseFlag", 0xFFFF) != 0:
            out.append((rec, parents))
    return out


def read_directory(dicomdir: str | os.PathLike) -> tuple[list[tuple[str, Record, tuple]], list[Problem]]:
    """``[(file, record, ancestors), ...]`` for the files a DICOMDIR names, and problems.

    *file* is a path string; *record* the directory record naming the file (IMAGE, SR
    DOCUMENT...), *ancestors* its PATIENT/STUDY/SERIES records (outermost first; records of one
    series share one tuple), so a viewer can list the file-set from the records alone.  Files
    are confined, matched and checked as :func:`read_file_set` says (that function is this one
    without the records).  The referenced files are never opened here: folders are listed once
    each, and a file is resolved through links only when it is one.
    """
    dicomdir = Path(dicomdir)
    top, recs = read_records(dicomdir)
    base = dicomdir.parent
    try:
        root = base.resolve()
    except OSError:
        root = Path(os.path.abspath(base))
    sbase = str(base)
    found: list[tuple[str, Record, tuple]] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    listing: dict[str, dict[str, tuple[bool, bool]]] = {}
    real: dict[str, bool] = {}
    for rec, parents in _hierarchy(top, recs):
        fid = rec.get("ReferencedFileID")
        if not isinstance(fid, str) or not fid:
            continue
        # a single value may still carry backslashes or slashes (a writer that did not split it)
        parts = [p.strip() for p in fid.split("\\")]
        why = next((w for i, p in enumerate(parts) if (w := _unsafe_component(p, i == 0)) is not None), None)
        parts = [p for p in parts if p not in ("", ".")]
        if why is None and not parts:
            continue
        if why is not None:
            problems.append(Problem(dicomdir, f"a record of this DICOMDIR names a file outside its file-set "
                                              f"({why}); that file is not read", "outside"))
            continue
        path, link = _lookup(sbase, base, parts, listing)
        if path is None:
            problems.append(Problem(base.joinpath(*parts), f"{_FROM} but missing", "missing"))
            continue
        if not (_inside(Path(path), root) if link else _folder_inside(os.path.dirname(path), root, real)):
            problems.append(Problem(dicomdir, "a record of this DICOMDIR names a file that resolves outside its "
                                              "file-set (through a link); that file is not read", "outside"))
            continue
        if path not in seen:
            seen.add(path)
            found.append((path, rec, parents))
    return found, problems


def _lookup(sbase: str, base: Path, parts: list[str], listing: dict) -> tuple[str | None, bool]:
    """(the regular file a File ID names or None, whether it must be resolved): exact names from cached folder
    listings, else matched by case (each file is looked up, never opened)."""
    folder = os.path.join(sbase, *parts[:-1])
    entries = listing.get(folder)
    if entries is None:
        entries = {}
        try:
            with os.scandir(folder) as it:
                for e in it:
                    try:
                        entries[e.name] = (e.is_file(), e.is_symlink())
                    except OSError:
                        entries[e.name] = (False, False)
        except OSError:
            pass
        listing[folder] = entries
    hit = entries.get(parts[-1])
    if hit is not None:
        return (os.path.join(folder, parts[-1]), hit[1]) if hit[0] else (None, False)
    path = _resolve_case_insensitive(base, parts)
    if path is None or not path.is_file():
        return None, False
    return str(path), True  # matched by case: checked in full (links resolved)


def _folder_inside(folder: str, root: Path, real: dict) -> bool:
    """Whether a folder (and so a plain, non-link file in it) lies inside the file-set; cached per folder."""
    hit = real.get(folder)
    if hit is None:
        try:
            r = Path(folder).resolve()
            hit = real[folder] = r == root or root in r.parents
        except OSError:
            hit = real[folder] = False
    return hit


def read_file_set(dicomdir: str | os.PathLike) -> tuple[list[Path], list[Problem]]:
    """Files a DICOMDIR's records name (present, inside its folder, in record order, once each), and problems.

    Problems have category ``missing`` (named but absent) or ``outside``
    (the File ID leaves the file-set: not read).  Raises
    :class:`mdtviewer.infra.errors.DicomInputError` when the DICOMDIR itself
    cannot be read.
    """
    found, problems = read_directory(dicomdir)
    return [Path(p) for p, _r, _a in found], problems
