"""The DICOM encoding basics that :mod:`mdtviewer.dicom.reader` and its fast
header walk (:mod:`mdtviewer.dicom.fastheader`) share: the transfer syntaxes a
data set is parsed in, VR tables, the pixel tags, the dictionary VR of a tag,
and :class:`ReadInfo` (how a file was read).  Both import from here, so the
reader can use the fast walk without an import cycle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydicom.datadict import dictionary_VR

from mdtviewer.dicom.uids import DEFLATED_LE, EXPLICIT_BE, EXPLICIT_LE, IMPLICIT_LE  # noqa: F401  (named in uids)

#: Deeper nesting than this is refused (real files use < 10 levels).
MAX_SEQUENCE_DEPTH = 64


_PIXEL_TAGS = {0x7FE00010, 0x7FE00009, 0x7FE00008}
_VALID_VRS = {
    b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"OB",
    b"OD", b"OF", b"OL", b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST", b"SV", b"TM",
    b"UC", b"UI", b"UL", b"UN", b"UR", b"US", b"UT", b"UV",
}
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}
_UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")


@dataclass
class ReadInfo:
    """How a file was read: where its data set starts and what was recovered."""

    dataset_offset: int = 0
    has_preamble: bool = True
    has_file_meta: bool = True
    #: transfer syntax used to parse (from the meta, or inferred)
    transfer_syntax: str = ""
    transfer_syntax_inferred: bool = False
    #: header-only reads: does Pixel Data follow where reading stopped?
    pixel_data_follows: bool = False
    #: one line per recovery ("read as a raw data set from byte 1", ...)
    notes: list[str] = field(default_factory=list)
    file_size: int = 0


_VR_CACHE: dict[int, str] = {}


def _dict_vr(tag: int) -> str:
    vr = _VR_CACHE.get(tag)
    if vr is None:
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            vr = "UN"
        _VR_CACHE[tag] = vr
    return vr
