"""Reading values out of a header that may be damaged, and showing DICOM dates and names.

One set of tolerant accessors for every room: each takes a pydicom
``Dataset`` (or anything with ``.get``) and a keyword, and **never raises**
for a bad value: an element pydicom cannot convert (wrong VR, bad bytes, a
number that is not one) counts as absent.  A missing header is not a bug;
it is the normal case for optional attributes.

* :func:`get` the value (or *default*), :func:`text` one string (several
  values joined with ``\\``), :func:`integer` / :func:`number` the first value
  as a number, :func:`numbers` every value, :func:`sequence` the items of a
  sequence, :func:`values` any value as a list.
* :func:`format_date` (DA), :func:`format_time` (TM), :func:`format_datetime`
  (DT, or DA followed by TM) and :func:`format_person_name` (PN) for display:
  ``YYYY-MM-DD`` (unambiguous in every locale), ``HH:MM:SS``,
  ``FAMILY, Given Middle``.  Text that is not in the DICOM form is returned
  as it is (stripped), never guessed at.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import struct
from typing import Any

from pydicom.errors import BytesLengthException
from pydicom.sequence import Sequence

#: what converting a raw header value may raise in pydicom for damaged input
#: (wrong VR, undecodable bytes, a length that does not fit its VR, a bad number);
#: pydicom's BytesLengthException derives from Exception itself, so it is named
BAD_VALUE = (ValueError, TypeError, LookupError, AttributeError, OverflowError, RuntimeError, struct.error,
             BytesLengthException)


def values(value: Any) -> list[Any]:
    """*value* as a list: ``[]`` for None/empty, the items of a multi-valued element, else ``[value]``."""
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return list(value)
    return [value]


def get(ds: Any, keyword: str, default: Any = None) -> Any:
    """``ds.get(keyword)``, or *default* when absent, empty or not convertible."""
    try:
        v = ds.get(keyword, None)
    except BAD_VALUE:
        return default
    return default if v is None else v


def as_text(value: Any) -> str:
    """Any header value as one string: several values joined with ``\\``; bytes as ASCII; NUL and spaces stripped."""
    items = values(value)
    out = []
    if type(value).__name__ in ("Sequence", "Dataset", "FileDataset"):
        return ""  # items where text was expected (a damaged VR made it a sequence): no text
    for v in items:
        if isinstance(v, (bytes, bytearray)):
            v = bytes(v).decode("ascii", "replace")
        try:
            out.append(str(v))
        except BAD_VALUE:
            continue
    return "\\".join(out).strip("\x00 ")


def text(ds: Any, keyword: str, default: str = "") -> str:
    """The value of *keyword* as text (see :func:`as_text`), *default* when absent."""
    return as_text(get(ds, keyword)) or default


def one_line(ds: Any, keyword: str) -> str:
    """:func:`text` with every run of white space (CR, LF, tabs) made one space: safe for one display line."""
    return " ".join(text(ds, keyword).split())


def first_number(value: Any) -> float | None:
    """First value of a possibly multi-valued DS/IS/FD as a finite float, or None."""
    items = values(value)
    if not items:
        return None
    v = items[0]
    if isinstance(v, (bytes, bytearray)):
        v = bytes(v).decode("ascii", "replace")
    try:
        f = float(str(v).strip("\x00 ")) if isinstance(v, str) else float(v)
    except (TypeError, ValueError, OverflowError):
        return None
    return f if math.isfinite(f) else None


def number(ds: Any, keyword: str, default: float | None = None) -> float | None:
    """First value of *keyword* as a finite float, *default* when absent or not a number."""
    f = first_number(get(ds, keyword))
    return default if f is None else f


def integer(ds: Any, keyword: str, default: int | None = None) -> int | None:
    """First value of *keyword* as an int (``'12.0'`` counts), *default* when absent or not a number."""
    f = first_number(get(ds, keyword))
    if f is None:
        return default
    return int(f)


def numbers(ds: Any, keyword: str) -> list[float] | None:
    """Every value of *keyword* as finite floats; None when absent or when any value is not a number."""
    items = values(get(ds, keyword))
    if not items:
        return None
    out: list[float] = []
    for v in items:
        f = first_number(v)
        if f is None:
            return None
        out.append(f)
    return out


def sequence(ds: Any, keyword: str) -> list[Any]:
    """The items of a sequence (``[]`` when absent, empty or not a sequence)."""
    seq = get(ds, keyword)
    if isinstance(seq, (Sequence, list, tuple)):
        return list(seq)
    return []


# --------------------------------------------------------------- formatting
_DA = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
#: the ACR-NEMA 2.0 date form ``YYYY.MM.DD`` (PS3.5 allows it on read for backward compatibility)
_DA_DOTTED = re.compile(r"^(\d{4})\.(\d{2})\.(\d{2})$")
_TM = re.compile(r"^(\d{2})(\d{2})?(\d{2})?(\.\d+)?$")
_DT = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{2})?(\d{2})?(\d{2})?(\.\d+)?([+-]\d{4})?$")


def format_date(da: Any) -> str:
    """DA ``YYYYMMDD``, old ACR-NEMA ``YYYY.MM.DD`` (or a ``date``) as ``YYYY-MM-DD``; other text as it is."""
    if isinstance(da, _dt.date):
        return da.strftime("%Y-%m-%d")
    s = as_text(da)
    m = _DA.match(s) or _DA_DOTTED.match(s)
    return f"{m[1]}-{m[2]}-{m[3]}" if m else s


def format_time(tm: Any, seconds: bool = True) -> str:
    """TM ``HHMMSS.FFFFFF`` (or a ``time``) as ``HH:MM:SS`` (``HH:MM`` without *seconds*); other text as it is."""
    if isinstance(tm, (_dt.time, _dt.datetime)):
        return tm.strftime("%H:%M:%S" if seconds else "%H:%M")
    s = as_text(tm)
    m = _TM.match(s)
    if not m:
        return s
    hh, mi, ss = m[1], m[2] or "00", m[3]
    return f"{hh}:{mi}" + (f":{ss}" if seconds and ss else "")


def format_datetime(value: Any, seconds: bool = True, offset: bool = True) -> str:
    """DT ``YYYYMMDDHHMMSS.FFFFFF+hhmm`` (or a ``datetime``/``date``) as ``YYYY-MM-DD HH:MM:SS +hh:mm``.

    Parts the value leaves out are left out; without *seconds* the time is
    ``HH:MM``; without *offset* the UTC offset is dropped.  Other text is
    returned as it is.
    """
    if isinstance(value, _dt.datetime):
        out = value.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
        if offset and value.utcoffset() is not None:
            z = value.strftime("%z")
            out += f" {z[:3]}:{z[3:5]}"
        return out
    if isinstance(value, _dt.date):
        return value.strftime("%Y-%m-%d")
    s = as_text(value)
    m = _DT.match(s)
    if not m:
        return s
    y, mo, d, hh, mi, ss, _frac, off = m.groups()
    out = f"{y}-{mo}-{d}"
    if hh:
        out += f" {hh}:{mi or '00'}" + (f":{ss}" if ss and seconds else "")
    if off and offset:
        out += f" {off[:3]}:{off[3:]}"
    return out


def format_person_name(pn: Any) -> str:
    """PN ``FAMILY^GIVEN^MIDDLE^PREFIX^SUFFIX`` as ``FAMILY, Given Middle``, followed by the ideographic
    group when the name has one: ``Wang^XiaoDong=王^小东`` reads ``Wang, XiaoDong (王小东)`` (two patients
    "Wang, XiaoDong" are told apart by their characters).  The phonetic group is shown only for a name
    that has nothing else."""
    groups = (as_text(pn).split("=") + ["", ""])[:3]
    alphabetic, ideographic, phonetic = (_name_group(g) for g in groups)
    if not alphabetic:
        return ideographic or phonetic
    if ideographic and ideographic != alphabetic:
        return f"{alphabetic} ({ideographic})"
    return alphabetic


def _name_group(s: str) -> str:
    """One component group: ``FAMILY, Given Middle``; CJK names as written, family name first, no comma:
    ideographs and Hangul without a space (``王小东``, ``山田太郎``, ``홍길동``), kana with one
    (``やまだ たろう``)."""
    parts = [p.strip() for p in s.split("^")]
    family = parts[0] if parts else ""
    names = [p for p in parts[1:3] if p]
    if family and all(_is_cjk(p) for p in [family, *names]):
        kana = any("\u3040" <= c <= "\u30ff" or "\uff66" <= c <= "\uff9f" for c in family + "".join(names))
        return (" " if kana else "").join([family, *names])
    rest = " ".join(names)
    return f"{family}, {rest}" if rest and family else (family or rest)


def _is_cjk(s: str) -> bool:
    """Only CJK ideographs, kana or Hangul (names written without spaces)."""
    return bool(s) and all(
        "\u2e80" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7af" or "\uf900" <= c <= "\ufaff"
        or "\uff66" <= c <= "\uff9f" or "\U00020000" <= c <= "\U0003134f"
        for c in s
    )
