"""Fast header reads for the study index: the common, well-formed file in one pass.

Why: indexing a folder reads thousands of headers, and pydicom's element
generator (plus our bounded-read wrapper around it) costs about as much as a
plain ``dcmread(stop_before_pixels=True)``.  The index needs ~25 top-level
values; everything else only has to be *skipped correctly*.  Here one
``struct`` walk over the first bytes of the file checks the structure of the
whole header (every element, every nested sequence and item, all lengths
within the file, nesting depth) and keeps the raw bytes of the wanted
elements only; pydicom converts just those.

This path never decides that a file is bad.  It accepts only the plain case
-- preamble, ``DICM``, a file meta whose group length ends exactly where
group 0002 ends, a little-endian non-deflated transfer syntax whose VRs the
bytes confirm, ascending tags, every length inside the file, nesting within
:data:`mdtviewer.dicom.reader.MAX_SEQUENCE_DEPTH` -- and returns ``None`` for
anything else, so :func:`mdtviewer.dicom.reader.read_dataset` (recovery,
truncation reasons, stale meta blocks, raw data sets, big endian, deflate)
handles it exactly as before.  The result is the same data set that
``read_dataset(path, stop_before_pixels=True, specific_tags=...)`` returns,
as a light :class:`HeaderView` (a pydicom data set is built only when a
value needs pydicom's conversion).
"""

from __future__ import annotations

import os
import stat
import struct
from typing import Any

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from mdtviewer.dicom.encoding import (
    _LONG_VRS,
    _PIXEL_TAGS,
    _UID_RE,
    _VALID_VRS,
    DEFLATED_LE,
    EXPLICIT_BE,
    IMPLICIT_LE,
    MAX_SEQUENCE_DEPTH,
    ReadInfo,
    _dict_vr,
)

#: first read; a header that needs more is re-read once with the larger size
FIRST_READ = 32 * 1024
MAX_READ = 256 * 1024

_U32 = struct.Struct("<L")
_HHL = struct.Struct("<HHL")
_EXPL = struct.Struct("<HH2sH")
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_VR_STR = {vr: vr.decode() for vr in _VALID_VRS}


class _Bail(Exception):
    """Not the plain case (or more bytes needed): use the full reader."""


def read_header_fast(path: str | os.PathLike, wanted: frozenset[int]) -> HeaderView | None:
    """The header data set (wanted top-level elements only), or None."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            return None
        size = st.st_size
        if size < 144:
            return None
        with open(path, "rb") as f:
            buf = f.read(min(size, FIRST_READ))
            try:
                return _parse(buf, size, wanted)
            except _Bail as more:
                if not more.args or len(buf) >= size or len(buf) >= MAX_READ:
                    return None
                buf += f.read(min(size, MAX_READ) - len(buf))
            try:
                return _parse(buf, size, wanted)
            except _Bail:
                return None
    except (OSError, struct.error, UnicodeDecodeError):
        return None


def _need_more() -> _Bail:
    return _Bail(True)


def _parse(buf: bytes, size: int, wanted: frozenset[int]) -> HeaderView:
    n = len(buf)
    if buf[128:132] != b"DICM" or buf[132:140] != b"\x02\x00\x00\x00UL\x04\x00":
        raise _Bail()
    meta_end = 144 + _U32.unpack_from(buf, 140)[0]
    if meta_end > n:
        raise _need_more() if meta_end <= size else _Bail()
    meta: dict[int, bytes] = {}
    pos = 132
    unpack_expl = _EXPL.unpack_from
    while pos < meta_end:
        group, elem, vr, length = unpack_expl(buf, pos)
        if group != 2:
            raise _Bail()
        if vr in _LONG_VRS:
            length = _U32.unpack_from(buf, pos + 8)[0]
            vstart = pos + 12
        elif vr in _VALID_VRS:
            vstart = pos + 8
        else:
            raise _Bail()
        end = vstart + length
        if end > meta_end:
            raise _Bail()
        meta[(group << 16) | elem] = buf[vstart:end]
        pos = end
    ts_raw = meta.get(0x00020010)
    if ts_raw is None:
        raise _Bail()
    ts = ts_raw.decode("ascii").strip("\x00 ")
    if not _UID_RE.match(ts) or ts in (DEFLATED_LE, EXPLICIT_BE):
        raise _Bail()
    implicit = ts == IMPLICIT_LE

    raws: dict = {}
    pixels_follow = False
    prev = -1
    pos = meta_end
    while pos != size:
        if pos + 8 > n:
            raise _need_more() if pos + 8 <= size else _Bail()
        if implicit:
            group, elem, length = _HHL.unpack_from(buf, pos)
            vr = None
            vstart = pos + 8
        else:
            group, elem, vr, length = _EXPL.unpack_from(buf, pos)
            if vr in _LONG_VRS:
                if pos + 12 > n:
                    raise _need_more() if pos + 12 <= size else _Bail()
                length = _U32.unpack_from(buf, pos + 8)[0]
                vstart = pos + 12
            elif vr in _VALID_VRS:
                vstart = pos + 8
            else:
                raise _Bail()
        tag = (group << 16) | elem
        if tag in _PIXEL_TAGS:
            pixels_follow = True
            break
        if tag <= prev or group == 0xFFFE or group == 0x0002:
            raise _Bail()  # out of order, stray delimiter, second meta block: the full reader says what
        prev = tag
        is_sq = vr == b"SQ" if vr is not None else (length == _UNDEFINED or _dict_vr(tag) == "SQ")
        if length == _UNDEFINED:
            if not is_sq:
                raise _Bail()  # undefined-length UN/OB outside Pixel Data
            end = _skip_sequence(buf, vstart, -1, implicit, size)
            value_end = end - 8  # without the sequence delimiter
        else:
            end = value_end = vstart + length
            if end > n:
                raise _need_more() if end <= size else _Bail()
            if is_sq:
                _skip_sequence(buf, vstart, end, implicit, size)
        if tag in wanted:
            btag = BaseTag(tag)
            vr_str = _VR_STR[vr] if vr is not None else None
            value = buf[vstart:value_end]
            raws[btag] = RawDataElement(btag, vr_str, len(value), value, vstart, implicit, True, True, False)
        pos = end

    info = ReadInfo(dataset_offset=meta_end, transfer_syntax=ts, pixel_data_follows=pixels_follow, file_size=size)
    return HeaderView(raws, _MetaView(meta, ts), info, implicit)


class _MetaView:
    """The file meta as far as the index asks: ``get(keyword)`` -> text."""

    __slots__ = ("_raw", "_ts")

    _TAGS = {"TransferSyntaxUID": 0x00020010, "MediaStorageSOPClassUID": 0x00020002,
             "MediaStorageSOPInstanceUID": 0x00020003}

    def __init__(self, raw: dict[int, bytes], ts: str):
        self._raw = raw
        self._ts = ts

    def get(self, keyword: str, default: object = None) -> object:
        if keyword == "TransferSyntaxUID":
            return self._ts
        tag = self._TAGS.get(keyword)
        value = self._raw.get(tag) if tag is not None else None
        if value is None:
            return default
        return value.decode("ascii", "replace").strip("\x00 ")


class HeaderView:
    """The wanted header elements, raw, with just the interface that
    :func:`mdtviewer.dicom.reader.instance_from_dataset` and ``_text`` use.

    Plain ASCII values are read from the raw bytes; anything else (a
    character set, a sequence) builds the pydicom data set on first need.
    Building a ``Dataset`` and ``FileMetaDataset`` for every file was a
    third of the cost of a header read.
    """

    __slots__ = ("_dict", "file_meta", "mdt_read_info", "_implicit", "_ds")

    def __init__(self, raws: dict, meta: _MetaView, info: ReadInfo, implicit: bool):
        self._dict = raws
        self.file_meta = meta
        self.mdt_read_info = info
        self._implicit = implicit
        self._ds: Dataset | None = None

    def dataset(self) -> Dataset:
        if self._ds is None:
            ds = Dataset(dict(self._dict))
            ds.set_original_encoding(self._implicit, True, ds._character_set)
            self._ds = ds
        return self._ds

    def __getitem__(self, tag: int) -> object:
        return self.dataset()[tag]

    def get(self, key: Any, default: Any = None) -> Any:  # as Dataset.get (keyword or tag)
        return self.dataset().get(key, default)


def _skip_sequence(buf: bytes, pos: int, seq_end: int, implicit: bool, size: int) -> int:
    """Walk a sequence value from *pos* (``seq_end`` -1: undefined length) and
    return where it ends (after its delimiter).  Iterative, depth-limited;
    anything irregular raises :class:`_Bail`."""
    n = len(buf)
    # frames: [is_item, end (-1 undefined)]; depth = number of sequence frames
    stack: list[tuple[bool, int]] = [(False, seq_end)]
    depth = 1
    while stack:
        is_item, end = stack[-1]
        if end != -1:
            if pos == end:
                stack.pop()
                if not is_item:
                    depth -= 1
                continue
            if pos > end:
                raise _Bail()
        if pos + 8 > n:
            raise _need_more() if pos + 8 <= size else _Bail()
        group, elem, length = _HHL.unpack_from(buf, pos)
        tag = (group << 16) | elem
        if not is_item:
            if tag == _SEQ_END and end == -1:
                pos += 8
                stack.pop()
                depth -= 1
                continue
            if tag != _ITEM:
                raise _Bail()
            pos += 8
            if length == _UNDEFINED:
                stack.append((True, -1))
            else:
                if pos + length > n:
                    raise _need_more() if pos + length <= size else _Bail()
                stack.append((True, pos + length))
            continue
        if tag == _ITEM_END and end == -1:
            pos += 8
            stack.pop()
            continue
        if group == 0xFFFE:
            raise _Bail()
        if implicit:
            vr = None
            vstart = pos + 8
        else:
            _g, _e, vr, length = _EXPL.unpack_from(buf, pos)
            if vr in _LONG_VRS:
                if pos + 12 > n:
                    raise _need_more() if pos + 12 <= size else _Bail()
                length = _U32.unpack_from(buf, pos + 8)[0]
                vstart = pos + 12
            elif vr in _VALID_VRS:
                vstart = pos + 8
            else:
                raise _Bail()
        is_sq = vr == b"SQ" if vr is not None else (length == _UNDEFINED or _dict_vr(tag) == "SQ")
        if length == _UNDEFINED:
            if not is_sq:
                raise _Bail()
            depth += 1
            if depth > MAX_SEQUENCE_DEPTH:
                raise _Bail()
            stack.append((False, -1))
            pos = vstart
            continue
        if vstart + length > n:
            raise _need_more() if vstart + length <= size else _Bail()
        if is_sq:
            depth += 1
            if depth > MAX_SEQUENCE_DEPTH:
                raise _Bail()
            stack.append((False, vstart + length))
            pos = vstart
            continue
        pos = vstart + length
    return pos
