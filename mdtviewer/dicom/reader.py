"""Robust reading of DICOM files: the one place where bytes become a data set.

pydicom is a forgiving parser, which is what a viewer wants, but it is
*silently* forgiving: it returns half a data set for a truncated file, lets
a stale second file-meta block override the real one, reads a raw data set
with one stray leading byte as a single bogus element, and asks the
operating system for whatever length a damaged header declares.  This
module wraps pydicom's element parser so that:

* the real start of the data set is found (standard file, file meta without
  preamble, or a raw data set -- also when ``DICM`` happens to sit at offset
  128 inside one, and when a few stray bytes precede it);
* the file meta is bounded by its group length, so a second group-0002 block
  later in the file cannot override it (fo-dicom #1376);
* a missing transfer syntax is inferred from the data-set bytes (and, for
  encapsulated pixel data, from the first fragment's codec markers);
* every read is capped at the bytes the file really has (no allocation from
  a declared length the file does not back), and any element that the file
  ends inside is reported as :class:`TruncatedFileError` with how far
  reading got;
* nesting of sequences deeper than :data:`MAX_SEQUENCE_DEPTH` is refused.

Recoveries are not silent either: they are listed in :func:`read_info`
``(ds).notes`` and end up in :attr:`mdtviewer.dicom.model.Instance.note`.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import struct
import sys
import zlib
from pathlib import Path
from typing import Any, BinaryIO, cast

import pydicom
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.filereader import read_dataset as _pydicom_read_dataset
from pydicom.tag import BaseTag
from pydicom.uid import UID

from mdtviewer.dicom.encoding import (
    _LONG_VRS,
    _PIXEL_TAGS,
    _UID_RE,
    _VALID_VRS,
    _VR_CACHE,
    DEFLATED_LE,
    EXPLICIT_BE,
    EXPLICIT_LE,
    IMPLICIT_LE,
    MAX_SEQUENCE_DEPTH,
    ReadInfo,
    _dict_vr,
)
from mdtviewer.infra.errors import (
    DicomInputError,
    MalformedHeaderError,
    NotDicomError,
    TruncatedFileError,
)

#: Inflated size limit for Deflated Explicit VR Little Endian data sets.
MAX_INFLATED_BYTES = 1 << 30
#: How far into a raw data set we look for its true start (stray leading bytes).
MAX_RAW_START_SCAN = 64

def read_info(ds: Dataset) -> ReadInfo:
    """The :class:`ReadInfo` that :func:`read_dataset` attached to *ds*."""
    info = getattr(ds, "mdt_read_info", None)
    return info if isinstance(info, ReadInfo) else ReadInfo()


class _NeedMore(Exception):
    """A header read went past the in-memory prefix: read from the file instead."""


class _GuardedFile:
    """A read-only file view that never reads (or allocates) past the real end.

    pydicom calls ``fp.read(length)`` with the length a header declares;
    CPython's buffered ``read(n)`` allocates *n* bytes before reading.  Here
    the request is capped at the bytes that remain, and every request that
    went past the end is recorded so the caller can tell a clean end of file
    from a truncated element.

    *raw* may hold only a prefix of the file (``limit`` bytes, for fast
    header reads from memory); going past it sets :attr:`need_more` and
    raises :class:`_NeedMore` so the read is redone from the file.
    """

    def __init__(self, raw: Any, size: int, name: str = "", limit: int | None = None):
        self._raw = raw
        self._size = size
        self._limit = size if limit is None else limit
        self.name = name
        self.size = size
        self.need_more = False
        #: (position, wanted, got, caller function name)
        self.overreads: list[tuple[int, int, int, str]] = []
        self.tell = raw.tell  # hot path: no wrapper
        if isinstance(raw, io.BytesIO):
            # In memory, read(n) never allocates more than what is there, so
            # reads need no cap, only a check afterwards; seeks past the end
            # show up as a short read there (and are then redone from the file).
            self._raw_read = raw.read
            self.read = self._read_memory  # type: ignore[method-assign]
            self.seek = raw.seek  # type: ignore[method-assign,assignment]

    def _read_memory(self, n: int | None = -1) -> bytes:
        b = self._raw_read(n)
        if n is not None and 0 <= n != len(b):
            pos = self._raw.tell() - len(b)
            if pos + n > self._limit and self._limit < self._size:
                self._more()
            if pos > self._limit:
                self._more()  # a skipped value ran past the end: redo exactly, from the file
            self.overreads.append((pos, n, len(b), sys._getframe(1).f_code.co_name))
        return b

    def _more(self) -> None:
        self.need_more = True
        raise _NeedMore()

    # pydicom uses read/seek/tell only
    def read(self, n: int | None = -1) -> bytes:
        raw = self._raw
        pos = raw.tell()
        remaining = self._limit - pos
        if n is None or n < 0:
            if self._limit < self._size:
                self._more()
            return raw.read(max(remaining, 0))
        if n > remaining:
            if self._limit < self._size:
                self._more()
            got = raw.read(max(remaining, 0))
            self.overreads.append((pos, n, len(got), sys._getframe(1).f_code.co_name))
            return got
        return raw.read(n)

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 0 and offset > self._limit:
            if self._limit < self._size:
                self._more()
            # a skipped value (specific_tags) that the file does not hold
            pos = self._raw.tell()
            self.overreads.append((pos, offset - pos, max(self._size - pos, 0), "seek"))
            return self._raw.seek(self._size)
        return self._raw.seek(offset, whence)

    def close(self) -> None:
        self._raw.close()


#: header reads parse this much of the file from memory (more only if needed)
HEADER_PREFIX = 256 * 1024


# ----------------------------------------------------------------- layout
def _plausible_chain(buf: bytes, start: int, implicit: bool, little: bool, size: int,
                     max_elements: int = 12) -> int:
    """Count consecutive plausible top-level element headers from *start*.

    Plausible: tags ascending, group even (or the odd groups 0x0009..),
    explicit VRs valid, lengths within the file.  Returns the count, or a
    large number when the chain reaches the end of the file cleanly.
    """
    endian = "<" if little else ">"
    hdr = struct.Struct(endian + "HHL") if implicit else struct.Struct(endian + "HH2sH")
    ext = struct.Struct(endian + "L")
    pos = start
    prev = -1
    count = 0
    n = len(buf)
    while count < max_elements:
        if pos == size:
            return max_elements + 1  # ended exactly at end of file
        if pos + 8 > n:
            return count
        if implicit:
            group, elem, length = hdr.unpack_from(buf, pos)
            pos += 8
        else:
            group, elem, vr, length = hdr.unpack_from(buf, pos)
            if vr not in _VALID_VRS:
                return count
            pos += 8
            if vr in _LONG_VRS:
                if pos + 4 > n:
                    return count
                if length != 0:
                    return count
                (length,) = ext.unpack_from(buf, pos)
                pos += 4
        tag = (group << 16) | elem
        if tag <= prev or group == 0xFFFE or (group < 2 and tag != 0):
            return count
        if elem == 0 and length != 4:
            return count  # a group length (gggg,0000) is always one UL: 4 bytes
        if count == 0 and group > 0x0100 and group not in (0x7FE0,):
            return count  # a data set starts with a low group
        prev = tag
        if length == 0xFFFFFFFF:
            return count + (max_elements if count >= 2 else 1)  # cannot skip; accept
        if pos + length > size:
            # cut short (or a bomb) after a plausible start: still DICOM, reported as truncated
            return count + 2 if count >= 2 else count
        pos += length
        count += 1
    return count


def _guess_raw_encoding(buf: bytes, size: int, start_limit: int) -> tuple[int, bool, bool, int] | None:
    """Find (offset, implicit, little_endian, score) of a raw data set start."""
    best: tuple[int, bool, bool, int] | None = None
    for offset in range(0, min(start_limit, max(len(buf) - 8, 0)) + 1):
        for implicit, little in ((False, True), (True, True), (False, False)):
            score = _plausible_chain(buf, offset, implicit, little, size)
            if best is None or score > best[3]:
                best = (offset, implicit, little, score)
        if best is not None and best[3] > 12 and best[0] == offset:
            break  # a full chain from the lowest offset: take it
    if best is None:
        return None
    enough = best[3] >= 4 or (best[3] >= 1 and best[3] > 12)
    return best if enough else None


def _ts_flags(ts: str) -> tuple[bool, bool]:
    """(implicit, little_endian) for a transfer syntax UID."""
    if ts == IMPLICIT_LE:
        return True, True
    if ts == EXPLICIT_BE:
        return False, False
    return False, True


def _ts_for(implicit: bool, little: bool) -> str:
    if implicit:
        return IMPLICIT_LE
    return EXPLICIT_LE if little else EXPLICIT_BE


# ----------------------------------------------------------------- file meta
def _read_meta(fp: _GuardedFile, start: int, size: int, notes: list[str]) -> tuple[FileMetaDataset, int]:
    """Read the file meta at *start*; return it and the data-set offset.

    The group-0002 elements are walked first.  Where (0002,0000) group
    length ends on an element boundary and group-0002 elements that repeat
    earlier ones follow, those belong to a stale second block: they are
    skipped, the real (first) meta wins (fo-dicom #1376).  A group length
    that is simply wrong (not on a boundary) is ignored.
    """
    bad_vr: list[tuple[int, str]] = []
    walk = _walk_group2(fp, start, size, bad_vr)
    if not walk:
        fp.seek(start)
        from pydicom.filereader import _read_file_meta_info

        try:
            meta = _read_file_meta_info(cast(BinaryIO, fp))  # a guarded file reads like one
            for key in list(meta.keys()):
                meta[key]  # convert now: a bad value must fail here, typed, not at first use
        except Exception:  # noqa: BLE001
            raise MalformedHeaderError("the file meta information (group 0002) is damaged and cannot be read") from None
        return meta, fp.tell()
    fixed_vr = dict(bad_vr)
    for tag, vr in bad_vr:
        notes.append(f"file meta element {_tagname(tag)} has a damaged VR; read as {vr}")
    natural_end = walk[-1][2]
    meta_end = natural_end
    first = walk[0]
    if first[0] == 0x00020000 and first[2] - first[1] == 12:
        fp.seek(first[1] + 8)
        (group_len,) = struct.unpack("<L", fp.read(4))
        bound = first[2] + group_len
        ends = {w[2] for w in walk}
        if bound == natural_end:
            pass
        elif bound in ends and bound < natural_end:
            before = {w[0] for w in walk if w[2] <= bound}
            after = [w[0] for w in walk if w[1] >= bound]
            if any(t in before for t in after):
                meta_end = bound
                notes.append("a second, stale file-meta block inside the data set was ignored; "
                             "the real file meta wins")
            else:
                notes.append("file meta group length is too short; the elements after it were kept")
        else:
            notes.append("file meta group length is wrong; ignored")
    fp.seek(start)
    blob = fp.read(meta_end - start)
    raws: dict[BaseTag, DataElement | RawDataElement] = {}
    for tag, estart, eend in walk:
        if eend > meta_end:
            break
        vr = fixed_vr.get(tag) or blob[estart - start + 4:estart - start + 6].decode("ascii")
        hdr = 12 if vr.encode() in _LONG_VRS else 8
        value = blob[estart - start + hdr:eend - start]
        raws[pydicom.tag.BaseTag(tag)] = RawDataElement(pydicom.tag.BaseTag(tag), vr, len(value), value,
                                                        estart + hdr, False, True)
    meta = FileMetaDataset(raws)
    return meta, natural_end


def _walk_group2(fp: _GuardedFile, start: int, size: int,
                 bad_vr: list[tuple[int, str]] | None = None) -> list[tuple[int, int, int]]:
    """(tag, start, end) of the explicit-LE group-0002 elements from *start*.

    Elements whose VR bytes are damaged are walked with their dictionary VR
    and listed in *bad_vr* as (tag, VR used)."""
    if bad_vr is None:
        bad_vr = []
    out: list[tuple[int, int, int]] = []
    pos = start
    while pos + 8 <= size and len(out) < 1000:
        fp.seek(pos)
        hdr = fp.read(8)
        group, elem = struct.unpack_from("<HH", hdr)
        if group != 2:
            break
        vr = hdr[4:6]
        if vr in _LONG_VRS:
            if pos + 12 > size:
                return []
            (length,) = struct.unpack("<L", fp.read(4))
            vstart = pos + 12
        elif vr in _VALID_VRS:
            (length,) = struct.unpack_from("<H", hdr, 6)
            vstart = pos + 8
            want = _dict_vr((group << 16) | elem)
            if want != vr.decode() and want.encode() in _VALID_VRS - _LONG_VRS:
                # a valid but wrong VR (AT for the Transfer Syntax UID ...): every group-0002
                # element has one VR, and the short form is laid out the same: read it with that
                bad_vr.append(((group << 16) | elem, want))
        elif hdr[6:8] != b"\0\0" and _dict_vr((group << 16) | elem).encode() in _VALID_VRS - _LONG_VRS:
            # a damaged VR (a flipped byte) on a short-form element: every
            # group-0002 element has a fixed VR, so read it with that one.
            # (An implicit-VR meta would have 0 here: the high half of its length.)
            (length,) = struct.unpack_from("<H", hdr, 6)
            vstart = pos + 8
            bad_vr.append(((group << 16) | elem, _dict_vr((group << 16) | elem)))
        else:
            return []  # implicit VR meta (non-standard): let pydicom try
        if length == 0xFFFFFFFF or vstart + length > size:
            return []
        out.append(((group << 16) | elem, pos, vstart + length))
        pos = vstart + length
    return out


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    name = type(exc).__name__
    text = f"{name}: {text}" if text else name
    return text[:160]


# ----------------------------------------------------------------- codec sniffing
def _sniff_encapsulated_ts(ds: Dataset) -> str | None:
    """Guess the transfer syntax of encapsulated Pixel Data from its first fragment."""
    elem = ds._dict.get(pydicom.tag.BaseTag(0x7FE00010))
    if elem is None:
        return None
    value = elem.value
    if not isinstance(value, (bytes, bytearray)) or len(value) < 16 or value[:4] != b"\xfe\xff\x00\xe0":
        return None
    (bot_len,) = struct.unpack_from("<L", value, 4)
    p = 8 + bot_len
    if p + 8 > len(value) or value[p:p + 4] != b"\xfe\xff\x00\xe0":
        return None
    from mdtviewer.dicom.uids import sniff_transfer_syntax

    return sniff_transfer_syntax(value[p + 8:p + 8 + 65536])


# ----------------------------------------------------------------- depth check
#: the fewest bytes one nesting level takes (item header 8 + SQ header 8)
_MIN_LEVEL_BYTES = 16


def _elem_vr(tag: int, elem: Any) -> str | None:
    vr = elem.VR
    if vr is not None:
        return str(vr)
    vr = _VR_CACHE.get(tag)
    if vr is None:
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            vr = "UN"
        _VR_CACHE[tag] = vr
    return vr


def _check_depth(ds: Dataset) -> None:
    """Refuse sequences nested deeper than MAX_SEQUENCE_DEPTH (iteratively)."""
    stack: list[tuple[Dataset, int]] = [(ds, 0)]
    while stack:
        item, depth = stack.pop()
        for tag, elem in list(item._dict.items()):
            vr = _elem_vr(tag, elem)
            if vr != "SQ":
                continue
            if depth + 1 > MAX_SEQUENCE_DEPTH:
                raise MalformedHeaderError(f"nesting deeper than {MAX_SEQUENCE_DEPTH} sequences")
            if isinstance(elem, RawDataElement) and isinstance(elem.value, (bytes, bytearray)) and \
                    len(elem.value) < (MAX_SEQUENCE_DEPTH - depth) * _MIN_LEVEL_BYTES:
                continue  # too short to hold the remaining levels: leave it unparsed
            try:
                seq = item[tag].value  # converts a raw SQ one level at a time
            except RecursionError:
                raise MalformedHeaderError(f"nesting deeper than {MAX_SEQUENCE_DEPTH} sequences") from None
            except Exception:  # noqa: BLE001 - an unreadable SQ: leave it raw, not our concern here
                continue
            for child in seq or ():
                if isinstance(child, Dataset):
                    stack.append((child, depth + 1))


def _nesting_exceeds(fp: Any, start: int, size: int, implicit: bool, little: bool,
                     limit: int = MAX_SEQUENCE_DEPTH) -> bool:
    """Does the data set from *start* nest sequences deeper than *limit*?  Walked iteratively.

    Used to word a failed parse: how deep a parser gets before it gives up depends on the
    Python version (3.11 and 3.12+ handle deep recursion differently), so the reason is
    decided from the bytes, the same on every version.  Stops (False) at Pixel Data or at
    anything it cannot walk.
    """
    endian = "<" if little else ">"
    tag_len = struct.Struct(endian + "HHL")
    explicit_hdr = struct.Struct(endian + "HH2sH")
    ulong = struct.Struct(endian + "L")
    stack: list[tuple[str, int | None]] = []  # ('seq'|'item', end offset or None if undefined)
    depth = 0
    pos = start
    steps = 0
    while pos + 8 <= size and steps < 2_000_000:
        steps += 1
        while stack and stack[-1][1] is not None and pos >= stack[-1][1]:
            kind, _end = stack.pop()
            depth -= kind == "seq"
        fp.seek(pos)
        hdr = fp.read(12)
        if len(hdr) < 8:
            return False
        group, elem, length = tag_len.unpack_from(hdr)
        tag = (group << 16) | elem
        if group == 0xFFFE:
            if elem == 0xE000:  # item
                stack.append(("item", None if length == 0xFFFFFFFF else pos + 8 + length))
            elif elem in (0xE00D, 0xE0DD):  # item / sequence delimiter
                want = "item" if elem == 0xE00D else "seq"
                while stack and stack[-1][0] != want:
                    kind, _end = stack.pop()
                    depth -= kind == "seq"
                if not stack:
                    return False
                stack.pop()
                depth -= want == "seq"
            else:
                return False
            pos += 8
            continue
        if tag in _PIXEL_TAGS:
            return False
        if implicit:
            vr = _dict_vr(tag)
            value_at = pos + 8
            is_sq = vr == "SQ" or (length == 0xFFFFFFFF)
        else:
            _g, _e, vrb, length16 = explicit_hdr.unpack_from(hdr)
            if vrb not in _VALID_VRS:
                return False
            if vrb in _LONG_VRS:
                if len(hdr) < 12:
                    return False
                (length,) = ulong.unpack_from(hdr, 8)
                value_at = pos + 12
            else:
                length, value_at = length16, pos + 8
            is_sq = vrb == b"SQ" or (vrb == b"UN" and length == 0xFFFFFFFF)
        if is_sq:
            depth += 1
            if depth > limit:
                return True
            stack.append(("seq", None if length == 0xFFFFFFFF else value_at + length))
            pos = value_at
            continue
        if length == 0xFFFFFFFF:
            return False
        pos = value_at + length
    return False


_ALLOWED_OVERREADS = ("read_undefined_length_value", "_is_implicit_vr")
#: the most bytes read into memory to repair a file's structure
MAX_REPAIR_BYTES = 256 << 20
_LE_ITEM_TAGS = {b"\xfe\xff\x00\xe0": 0xE000, b"\xfe\xff\x0d\xe0": 0xE00D, b"\xfe\xff\xdd\xe0": 0xE0DD}


def _overran(src: Any, src_size: int) -> bool:
    """Did the parse read past the end of the file (other than the clean end of the data set)?"""
    return any(not (got == 0 and pos == src_size and want == 8)
               for pos, want, got, caller in getattr(src, "overreads", []) if caller not in _ALLOWED_OVERREADS)


def _recover_structure(src: Any, start: int, size: int, little: bool, name: str) -> tuple[Any, list[str]] | None:
    """Repair an explicit-VR data set's structure in a copy; None when there is nothing to repair.

    Walks the element headers (iteratively, never the values of non-sequences) and fixes:

    * a sequence with a defined length whose items end earlier, where a plausible element
      follows (its length ran on into the next elements, then Pixel Data, then garbage such
      as a bogus (0000,0000) element): the length is set to where its items end, i.e.
      reading resynchronises on the next plausible tag;
    * item and delimiter tags (FFFE,E000/E00D/E0DD) written little-endian in a big-endian
      data set (pydicom: "No tag to read"): swapped to big-endian.
    """
    if size - start > MAX_REPAIR_BYTES or size - start < 8:
        return None
    src.seek(start)
    buf = bytearray(src.read(size - start))
    n = len(buf)
    endian = "<" if little else ">"
    hdr = struct.Struct(endian + "HH2sH")
    tag_len = struct.Struct(endian + "HHL")
    ulong = struct.Struct(endian + "L")
    notes: list[str] = []
    swapped = 0
    # stack entries: [kind, tag, length field offset, value start, declared end or None]
    stack: list[list[Any]] = []
    pos = 0
    while pos + 8 <= n:
        while stack and stack[-1][4] is not None and pos >= stack[-1][4]:
            if pos > stack[-1][4]:
                return None  # an element runs past its container: not a structure we can repair
            stack.pop()
        head4 = bytes(buf[pos:pos + 4])
        if not little and head4 in _LE_ITEM_TAGS:
            elem = _LE_ITEM_TAGS[head4]
            (length,) = struct.unpack_from("<L", buf, pos + 4)
            tag_len.pack_into(buf, pos, 0xFFFE, elem, length)
            swapped += 1
        group, elem, length = tag_len.unpack_from(buf, pos)
        if group == 0xFFFE:
            if elem == 0xE000:
                if not stack or stack[-1][0] != "seq":
                    return None
                stack.append(["item", 0xFFFEE000, pos + 4, pos + 8, None if length == 0xFFFFFFFF else pos + 8 + length])
            elif elem in (0xE00D, 0xE0DD):
                want = "item" if elem == 0xE00D else "seq"
                while stack and stack[-1][0] != want:
                    stack.pop()
                if not stack:
                    return None
                stack.pop()
            else:
                return None
            pos += 8
            continue
        tag = (group << 16) | elem
        if stack and stack[-1][0] == "seq":
            # an element where the next item should be: the sequence has ended here
            kind, sq_tag, len_at, value_at, end = stack.pop()
            if end is None or pos >= end or _plausible_chain(bytes(buf), pos, False, little, n, 3) < 3:
                return None
            ulong.pack_into(buf, len_at, pos - value_at)
            what = "private sequence" if (sq_tag >> 16) % 2 else "sequence"
            notes.append(f"{what} {_tagname(sq_tag)} declares {end - value_at:,} bytes but its items end after "
                         f"{pos - value_at:,}; reading resumed at {_tagname(tag)}")
            continue
        if not stack and tag in _PIXEL_TAGS:
            break
        _g, _e, vr, length16 = hdr.unpack_from(buf, pos)
        if vr not in _VALID_VRS:
            return None
        if vr in _LONG_VRS:
            if pos + 12 > n:
                return None
            (length,) = ulong.unpack_from(buf, pos + 8)
            len_at, value_at = pos + 8, pos + 12
        else:
            length, len_at, value_at = length16, pos + 6, pos + 8
        if vr == b"SQ":
            stack.append(["seq", tag, len_at, value_at, None if length == 0xFFFFFFFF else value_at + length])
            pos = value_at
            continue
        if length == 0xFFFFFFFF:
            return None  # an undefined-length value inside (UN sequence, pixel data): stop here
        pos = value_at + length
    if not notes and not swapped:
        return None
    if swapped:
        notes.append(f"{swapped:,} item tag(s) written little-endian in this big-endian file were read swapped")
    whole = bytearray(start) + buf  # offsets stay those of the file
    fixed = _GuardedFile(io.BytesIO(bytes(whole)), len(whole), name)
    fixed.size = len(whole)
    return fixed, notes


# ----------------------------------------------------------------- main entry
def _tagname(tag: int) -> str:
    t = pydicom.tag.Tag(tag)
    name = pydicom.datadict.keyword_for_tag(t) if t.group % 2 == 0 else ""
    label = f"({t.group:04X},{t.element:04X})"
    return f"{_human(name)} {label}" if name else label


def _human(keyword: str) -> str:
    return "Pixel Data" if keyword == "PixelData" else re.sub(r"(?<=[a-z])(?=[A-Z])", " ", keyword)


def _find_elem_at(ds: Dataset, value_pos: int) -> tuple[int, Any] | None:
    for tag, elem in ds._dict.items():
        if getattr(elem, "value_tell", None) == value_pos:
            return tag, elem
    return None


def read_dataset(path: str | os.PathLike, *, stop_before_pixels: bool = False,
                 specific_tags: list[int] | None = None) -> FileDataset:
    """Read *path* as DICOM and return the data set (with ``file_meta``).

    Raises :class:`NotDicomError`, :class:`MalformedHeaderError` or
    :class:`TruncatedFileError` with a one-line reason.  Recoveries are
    listed in ``read_info(ds).notes``.  With *stop_before_pixels* reading
    stops at Pixel Data (``read_info(ds).pixel_data_follows`` says whether
    it is there).
    """
    path = Path(path)
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            # a pipe or device would block or never end
            raise NotDicomError("a folder, not a file" if stat.S_ISDIR(st.st_mode) else "not a regular file")
        size = st.st_size
        raw = open(path, "rb")  # noqa: SIM115 - closed below
    except IsADirectoryError:
        raise NotDicomError("a folder, not a file") from None
    except FileNotFoundError:
        raise NotDicomError("file not found") from None
    except OSError as exc:
        raise NotDicomError(f"cannot open file ({exc.strerror or exc})") from None
    try:
        if stop_before_pixels and size > 0:
            prefix = raw.read(min(size, HEADER_PREFIX))
            fp = _GuardedFile(io.BytesIO(prefix), size, str(path), limit=len(prefix))
            try:
                return _read(fp, size, str(path), stop_before_pixels, specific_tags)
            except _NeedMore:
                pass
            except DicomInputError:
                if not fp.need_more:
                    raise
            except Exception:
                if not fp.need_more:
                    raise
            raw.seek(0)
        return _read(_GuardedFile(raw, size, str(path)), size, str(path), stop_before_pixels, specific_tags)
    finally:
        raw.close()


def _read(fp: _GuardedFile, size: int, name: str, stop_before_pixels: bool,  # noqa: C901 - to be split (issue 16)
          specific_tags: list[int] | None = None) -> FileDataset:
    info = ReadInfo(file_size=size)
    notes = info.notes
    if size == 0:
        raise NotDicomError("empty file")
    head = fp.read(min(size, 4096))
    preamble: bytes | None = None
    meta = FileMetaDataset()
    ds_start = 0
    layout = "raw"
    if size >= 132 and head[128:132] == b"DICM" and head[132:134] == b"\x02\x00":
        layout = "standard"
    elif head[:2] == b"\x02\x00" and size >= 8 and (head[4:6] in _VALID_VRS or head[2:4] == b"\x00\x00"):
        layout = "meta-only"
    elif size >= 132 and head[128:132] == b"DICM":
        # 'DICM' but no file meta after it: either a raw data set that happens
        # to hold 'DICM' at 128, or a preamble+DICM without meta.
        fp.seek(0)
        guess = _guess_raw_encoding(fp.read(min(size, 65536)), size, 0)
        layout = "raw" if guess is not None else "dicm-no-meta"

    if layout == "standard":
        preamble = head[:128]
        meta, ds_start = _read_meta(fp, 132, size, notes)
    elif layout == "meta-only":
        info.has_preamble = False
        notes.append("no preamble; file meta read from the start of the file")
        meta, ds_start = _read_meta(fp, 0, size, notes)
    elif layout == "dicm-no-meta":
        preamble = head[:128]
        ds_start = 132
        info.has_file_meta = False
        notes.append("no file meta after 'DICM'")
    else:
        info.has_preamble = False
        info.has_file_meta = False
        fp.seek(0)
        head = fp.read(min(size, 65536))
        guess = _guess_raw_encoding(head, size, MAX_RAW_START_SCAN)
        if guess is None:
            raise NotDicomError("not a DICOM file (no 'DICM' marker and no data set found)")
        ds_start = guess[0]
        if ds_start:
            notes.append(f"recovered: read as a raw data set from byte {ds_start} "
                         f"({ds_start} stray leading byte{'s' if ds_start > 1 else ''} skipped)")
        elif size >= 132 and head[128:132] == b"DICM":
            notes.append("read as a raw data set (the bytes 'DICM' at offset 128 are data, not a file marker)")
        else:
            notes.append("no preamble or file meta: read as a raw data set")
    info.dataset_offset = ds_start

    # ---- transfer syntax
    ts = str(meta.get("TransferSyntaxUID", "") or "").strip("\x00 ")
    if ts and not _UID_RE.match(ts):
        notes.append("transfer syntax UID in the file meta is not a valid UID; inferred from the data")
        ts = ""
    inferred = False
    fp.seek(ds_start)
    probe = fp.read(min(size - ds_start, 65536 if not ts else 4096))
    if not ts:
        guess = _guess_raw_encoding(probe, size - ds_start, 0) if probe else None
        implicit, little = (guess[1], guess[2]) if guess else (True, True)
        ts = _ts_for(implicit, little)
        inferred = True
        if info.has_file_meta:
            notes.append(f"transfer syntax missing from the file meta; inferred {_ts_label(ts)} from the data set")
    implicit, little = _ts_flags(ts)
    src: Any = fp
    if ts == DEFLATED_LE:
        fp.seek(ds_start)
        src = _inflate(fp, size - ds_start, name)
    elif (
        # trust the bytes over a meta that says explicit but is implicit (and vice versa)
        probe and not inferred
        and len(probe) >= 6 and not (0x40 < probe[4] < 0x5B and 0x40 < probe[5] < 0x5B) and not implicit
        and ts == EXPLICIT_LE and _plausible_chain(probe, 0, True, True, size - ds_start) > 3
    ):
        implicit = True
        notes.append("data set is implicit VR although the file meta says explicit; read as implicit")

    stop_when = None
    if stop_before_pixels:
        stop_when = lambda tag, vr, length: tag in _PIXEL_TAGS  # noqa: E731
    src.seek(ds_start if src is fp else 0)
    start_pos = src.tell()
    try:
        try:
            dataset = _pydicom_read_dataset(src, implicit, little, stop_when=stop_when, specific_tags=specific_tags)
            failure: Exception | None = None
        except DicomInputError:
            raise
        except _NeedMore:
            raise
        except Exception as exc:  # noqa: BLE001
            failure = exc
        if not implicit and (failure is not None or _overran(src, size if src is fp else src.size)):
            # fo-dicom reads these; so do we: a sequence whose defined length is wrong, or
            # item tags written little-endian in a big-endian file
            recovered = _recover_structure(src, start_pos, size if src is fp else src.size, little, name)
            if recovered is not None:
                fixed_src, fix_notes = recovered
                fixed_src.seek(start_pos)
                try:
                    again = _pydicom_read_dataset(fixed_src, implicit, little, stop_when=stop_when,
                                                  specific_tags=specific_tags)
                except Exception:  # noqa: BLE001 - the repair did not help: report the first failure
                    again = None
                if again is not None and not _overran(fixed_src, fixed_src.size):
                    dataset, src, failure = again, fixed_src, None
                    notes.extend(fix_notes)
        if failure is not None:
            raise failure
    except DicomInputError:
        raise
    except _NeedMore:
        raise
    except Exception as exc:  # noqa: BLE001 - RecursionError, OSError, struct.error ... worded below
        got = src.tell()
        src_size = size if src is fp else src.size
        if isinstance(exc, RecursionError) or _nesting_exceeds(src, start_pos, src_size, implicit, little):
            raise MalformedHeaderError(f"nesting deeper than {MAX_SEQUENCE_DEPTH} sequences") from None
        if isinstance(exc, (OSError, struct.error, EOFError)):
            raise _truncated(f"file ends inside a sequence (read {got:,} of {size:,} bytes)", None) from None
        raise MalformedHeaderError(f"the data set is damaged and cannot be read (near byte {got:,})") from None

    end_pos = src.tell()
    src_size = size if src is fp else src.size
    if src is not fp:
        size = src_size
    # ---- truncation: an element the file ends inside
    over = [o for o in getattr(src, "overreads", []) if o[3] not in ("read_undefined_length_value", "_is_implicit_vr")]
    for pos, want, got, _caller in over:
        if got == 0 and pos == src_size and want == 8:
            continue  # the clean end of the top-level data set
        hit = _find_elem_at(dataset, pos)
        if hit is None and _caller == "seek":
            tag = _tag_before(src, pos, little)
            if tag is not None:
                hit = (tag, None)
        if hit is not None:
            tag, elem = hit
            what = _tagname(tag)
            if tag == 0x7FE00010:
                msg = f"pixel data ends after {got:,} of {want:,} bytes: the file is cut short"
            elif want > src_size:
                msg = (f"{what} claims more bytes than the whole file ({src_size:,} bytes; {got:,} of its "
                       f"{want:,} bytes present): its length is damaged, or the file is cut short")
            else:
                msg = (f"file ends inside {what}: {got:,} of its {want:,} bytes present "
                       f"(the file is {src_size:,} bytes; read up to byte {pos:,})")
        elif _caller in ("_try_read_encapsulated_pixel_data", "read_item", "generate_fragments"):
            msg = (f"compressed pixel data is cut short: the file ends at byte {src_size:,}, "
                   "inside its fragments (the last frames are missing)")
        else:
            msg = f"file ends inside an element at byte {pos:,} (wanted {want:,} bytes, {got:,} left)"
        partial = _finish(dataset, preamble, meta, implicit, little, name, info, ts, inferred, partial=True)
        raise _truncated(msg, partial)
    if stop_before_pixels and end_pos < src_size:
        src.seek(end_pos)
        nxt = src.read(4)
        if len(nxt) == 4:
            g, e = struct.unpack("<HH" if little else ">HH", nxt)
            info.pixel_data_follows = ((g << 16) | e) in _PIXEL_TAGS
    if end_pos < src_size and not info.pixel_data_follows:
        # pydicom stopped early: an undefined-length value without its delimiter,
        # or a stray item delimiter at top level.
        src.seek(end_pos)
        nxt = src.read(min(8, src_size - end_pos))
        last = _last_tag(dataset)
        if len(nxt) >= 4 and struct.unpack_from("<HH" if little else ">HH", nxt)[:2] == (0xFFFE, 0xE00D):
            notes.append(f"stray item delimiter at byte {end_pos:,}; {src_size - end_pos:,} trailing bytes ignored")
        else:
            after = f" after {_tagname(last)}" if last is not None else ""
            raise _truncated(
                f"file ends inside an undefined-length element{after} (read up to byte {end_pos:,} of {src_size:,})",
                _finish(dataset, preamble, meta, implicit, little, name, info, ts, inferred, partial=True),
            )

    if not getattr(src, "deflate_complete", True):
        raise _truncated(
            f"deflated data set is cut short: the file ends ({size:,} bytes) before its compressed stream does",
            _finish(dataset, preamble, meta, implicit, little, name, info, ts, inferred, partial=True),
        )

    # ---- group 0002 inside the data set: stale meta (the real one wins)
    stale = [t for t in dataset._dict if (t >> 16) == 0x0002]
    if stale:
        for t in stale:
            del dataset._dict[t]
        if not any("stale file-meta" in n for n in notes):
            notes.append("a second, stale file-meta block inside the data set was ignored; the real file meta wins")
    if len(dataset._dict) == 0 and end_pos <= start_pos:
        if info.has_file_meta:
            raise TruncatedFileError(f"file meta but no data set (file ends after {size:,} bytes)")
        raise NotDicomError("no DICOM data set found")
    _check_depth(dataset)
    return _finish(dataset, preamble, meta, implicit, little, name, info, ts, inferred, partial=False)


def _tag_before(fp: Any, value_pos: int, little: bool) -> int | None:
    """The tag of the element whose value starts at *value_pos* (explicit or implicit VR)."""
    if value_pos < 8:
        return None
    here = fp.tell()
    fp.seek(max(value_pos - 12, 0))
    hdr = fp.read(min(12, value_pos))
    fp.seek(here)
    fmt = "<HH" if little else ">HH"
    if len(hdr) == 12 and hdr[4:6] in _LONG_VRS and hdr[6:8] == b"\0\0":
        g, e = struct.unpack_from(fmt, hdr, 0)
    else:
        g, e = struct.unpack_from(fmt, hdr, len(hdr) - 8)
    return (g << 16) | e


def _last_tag(ds: Dataset) -> int | None:
    keys = list(ds._dict.keys())
    return int(keys[-1]) if keys else None


def _ts_label(ts: str) -> str:
    try:
        return f"{UID(ts).name} ({ts})"
    except Exception:  # noqa: BLE001
        return ts


def _truncated(msg: str, partial: Dataset | None) -> TruncatedFileError:
    err = TruncatedFileError(msg)
    #: what could be read, for callers that want to show the complete part
    err.dataset = partial  # type: ignore[attr-defined]
    return err


def _finish(
    dataset: Dataset,
    preamble: bytes | None,
    meta: FileMetaDataset,
    implicit: bool,
    little: bool,
    name: str,
    info: ReadInfo,
    ts: str,
    inferred: bool,
    *,
    partial: bool,
) -> FileDataset:
    if inferred and not partial:
        sniffed = _sniff_encapsulated_ts(dataset)
        if sniffed:
            ts = sniffed
            if info.has_file_meta:
                info.notes[:] = [n for n in info.notes if not n.startswith("transfer syntax missing")]
                info.notes.append(
                    f"transfer syntax missing from the file meta; inferred {_ts_label(ts)} from the pixel data"
                )
    if inferred or "TransferSyntaxUID" not in meta:
        meta.TransferSyntaxUID = UID(ts)
    info.transfer_syntax = ts
    info.transfer_syntax_inferred = inferred
    fds = FileDataset(
        name, dataset, preamble=preamble, file_meta=meta, is_implicit_VR=implicit, is_little_endian=little
    )
    fds.set_original_encoding(implicit, little, dataset._character_set)
    fds.mdt_read_info = info
    return fds


class _Inflated(io.BytesIO):
    size = 0


def _inflate(fp: _GuardedFile, nbytes: int, name: str) -> _GuardedFile:
    d = zlib.decompressobj(-zlib.MAX_WBITS)
    out = bytearray()
    remaining = nbytes
    try:
        while remaining > 0:
            chunk = fp.read(min(remaining, 1 << 20))
            if not chunk:
                break
            remaining -= len(chunk)
            out += d.decompress(chunk, MAX_INFLATED_BYTES + 1 - len(out))
            if len(out) > MAX_INFLATED_BYTES or d.unconsumed_tail:
                raise MalformedHeaderError(
                    f"deflated data set inflates beyond {MAX_INFLATED_BYTES >> 20:,} MB: refused"
                )
        out += d.flush()
    except zlib.error as exc:
        raise MalformedHeaderError(f"deflated data set is corrupt ({exc})") from None
    bio = _Inflated(bytes(out))
    bio.size = len(out)
    g = _GuardedFile(bio, len(out), name)
    g.size = len(out)
    #: False when the file ends before the deflate stream's final block
    g.deflate_complete = d.eof  # type: ignore[attr-defined]
    return g


# ----------------------------------------------------------------- instances
def _text(ds: Dataset, keyword: str) -> str:
    """A header value as text.  ASCII raw values are decoded directly
    (pydicom's conversion machinery is most of the cost of indexing);
    anything else goes through pydicom (character sets, binary VRs)."""
    tag = _KEYWORD_TAGS.get(keyword)
    if tag is None:
        tag = _KEYWORD_TAGS[keyword] = BaseTag(pydicom.datadict.tag_for_keyword(keyword) or -1)
    elem = ds._dict.get(tag)
    if elem is None:
        return ""
    if type(elem) is RawDataElement:
        value = elem.value
        if type(value) is bytes:
            dict_vr = _VR_CACHE.get(tag) or _dict_vr(tag)
            if (
                dict_vr in _TEXT_VRS
                and (elem.VR is None or elem.VR in _TEXT_VRS)
                and value.isascii()
                and b"\x1b" not in value
            ):  # ISO 2022 escapes need the charset
                return value.decode("ascii").strip("\x00 ")
            if dict_vr == "US" and len(value) == 2:
                return str(struct.unpack("<H" if elem.is_little_endian else ">H", value)[0])
    try:
        v = ds[tag].value
    except Exception:  # noqa: BLE001 - an undecodable value is shown as empty
        return ""
    if v is None:
        return ""
    if isinstance(v, (list, tuple)) or type(v).__name__ == "MultiValue":
        v = "\\".join(str(x) for x in v)
    return str(v).strip("\x00 ")


_KEYWORD_TAGS: dict[str, BaseTag] = {}
_TEXT_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "PN", "SH", "TM", "UI", "UC", "LT", "ST"}


def _int(ds: Dataset, keyword: str) -> int | None:
    s = _text(ds, keyword)
    if not s:
        return None
    try:
        return int(float(s.split("\\")[0]))
    except ValueError:
        return None


def instance_from_dataset(path: Path, ds: Dataset):  # -> Instance
    """Build a classified :class:`~mdtviewer.dicom.model.Instance` from a header."""
    from mdtviewer.dicom.model import Instance
    from mdtviewer.dicom.uids import classify

    info = read_info(ds)
    meta = getattr(ds, "file_meta", None) or FileMetaDataset()
    sop_class = _text(ds, "SOPClassUID") or str(meta.get("MediaStorageSOPClassUID", "") or "").strip("\x00 ")
    sop_inst = _text(ds, "SOPInstanceUID") or str(meta.get("MediaStorageSOPInstanceUID", "") or "").strip("\x00 ")
    if not sop_inst:
        raise MalformedHeaderError("no SOP Instance UID (0008,0018): not a storable DICOM instance")
    has_pixels = info.pixel_data_follows or any(t in ds._dict for t in _PIXEL_TAGS)
    error: str | None = None
    frames_text = _text(ds, "NumberOfFrames")
    frames = _int(ds, "NumberOfFrames")
    if frames_text and frames is None:
        error = f"Number of Frames (0028,0008) is {frames_text[:16]!r}, not a number"
    if frames is None or frames < 1:
        frames = 1
    mime = _text(ds, "MIMETypeOfEncapsulatedDocument") or None
    kind = classify(sop_class, frames, mime, has_pixel_data=has_pixels)
    title = code = ""
    if not has_pixels and kind == "other" and sop_class and classify(sop_class, frames, mime) in ("image", "cine"):
        error = error or (f"image without Pixel Data: the file ends after {info.file_size:,} bytes, before its "
                          "pixels (cut short, or written without them)")
    if kind in ("sr", "kos"):
        try:
            cn = ds.get("ConceptNameCodeSequence")
            if cn:
                title = str(cn[0].get("CodeMeaning", "") or "")
                if kind == "kos":  # as kos.title_code spells it (kos reads files through this module)
                    code_value = str(cn[0].get("CodeValue", "") or "")
                    code_scheme = str(cn[0].get("CodingSchemeDesignator", "") or "") or "DCM"
                    code = f"{code_scheme}:{code_value}" if code_value else ""
        except Exception:  # noqa: BLE001
            title = code = ""
    elif kind in ("pdf", "document"):
        title = _text(ds, "DocumentTitle") or (mime or "")
    rows = _int(ds, "Rows") or 0
    cols = _int(ds, "Columns") or 0
    if kind in ("image", "cine") and error is None:
        # refused here, at read time, so no view is ever laid out for a 0-pixel image
        for label, keyword, value in (("Rows", "Rows", rows), ("Columns", "Columns", cols)):
            if value < 1:
                said = _text(ds, keyword)
                error = (f"{label} ({'0028,0010' if label == 'Rows' else '0028,0011'}) is "
                         f"{'missing' if not said else repr(said[:16])}: the image has no size")
                break
    study_uid = _text(ds, "StudyInstanceUID")
    series_uid = _text(ds, "SeriesInstanceUID")
    if not series_uid:
        # a series is found (shown, listed) by its UID: one without gets a stand-in UID derived from
        # what it has, so the UID-less instances of a study with the same number and modality go together
        seed = "\\".join(("series", study_uid, _text(ds, "SeriesNumber"), _text(ds, "Modality")))
        series_uid = "2.25." + str(int(hashlib.sha256(seed.encode()).hexdigest()[:30], 16))
        info.notes.append("Series Instance UID (0020,000E) is empty: shown as a series of its own")
    return Instance(
        path=Path(path),
        sop_class_uid=sop_class,
        sop_instance_uid=sop_inst,
        kind=kind,
        study_instance_uid=study_uid,
        series_instance_uid=series_uid,
        transfer_syntax=str(meta.get("TransferSyntaxUID", "") or info.transfer_syntax),
        modality=_text(ds, "Modality"),
        instance_number=_int(ds, "InstanceNumber"),
        number_of_frames=frames if kind in ("image", "cine") else 0,
        rows=rows if kind in ("image", "cine") else 0,
        columns=cols if kind in ("image", "cine") else 0,
        photometric=_text(ds, "PhotometricInterpretation") if kind in ("image", "cine") else "",
        title=title,
        title_code=code,
        note="; ".join(info.notes),
        error=error,
        dataset_offset=info.dataset_offset,
    )


#: header fields for the Patient/Study/Series levels (kept out of Instance)
HIERARCHY_FIELDS = (
    "PatientID",
    "IssuerOfPatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "StudyDescription",
    "AccessionNumber",
    "InstitutionName",
    "ReferringPhysicianName",
    "SeriesNumber",
    "SeriesDescription",
)


#: the top-level tags an Instance and the hierarchy need (header reads skip the rest)
HEADER_TAGS: list[int] = sorted(
    {
        cast(int, pydicom.datadict.tag_for_keyword(k))  # every keyword below is in the dictionary
        for k in (
            "SOPClassUID",
            "SOPInstanceUID",
            "StudyInstanceUID",
            "SeriesInstanceUID",
            "Modality",
            "InstanceNumber",
            "NumberOfFrames",
            "Rows",
            "Columns",
            "PhotometricInterpretation",
            "MIMETypeOfEncapsulatedDocument",
            "DocumentTitle",
            "ConceptNameCodeSequence",
            "SpecificCharacterSet",
        )
        + HIERARCHY_FIELDS
    }
)


_HEADER_TAG_SET = frozenset(HEADER_TAGS)


def read_header(path: str | os.PathLike):  # -> tuple[Instance, dict[str, str]]
    """Header-only read: the classified Instance plus its hierarchy fields.

    Well-formed files take the one-pass walk of :mod:`mdtviewer.dicom.fastheader`;
    anything it does not accept is read by :func:`read_dataset` (same result,
    with recoveries and reasons)."""
    from mdtviewer.dicom.fastheader import read_header_fast

    ds: Any = read_header_fast(path, _HEADER_TAG_SET)  # a HeaderView reads like a Dataset here
    if ds is None:
        ds = read_dataset(path, stop_before_pixels=True, specific_tags=HEADER_TAGS)
    inst = instance_from_dataset(Path(path), ds)
    fields = {k: _text(ds, k) for k in HIERARCHY_FIELDS}
    return inst, fields


def read_instance(path: str | os.PathLike):  # -> mdtviewer.dicom.model.Instance
    """Read the header of *path* (no pixel data) into a classified Instance."""
    ds = read_dataset(path, stop_before_pixels=True)
    return instance_from_dataset(Path(path), ds)
