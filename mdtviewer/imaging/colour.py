"""Colour and grey-scale display transforms (Qt-free: numpy and Pillow).

Everything that turns decoded samples into what a screen shows lives here,
precomputed as look-up tables where it can be: a cine frame then costs one
``np.take`` instead of a float pipeline per frame.

- YBR_FULL (ITU-R BT.601 full range, PS3.3 C.7.6.3.1.2) -> RGB by Pillow's C
  converter; YBR_FULL_422 native data is up-sampled first.
- PALETTE COLOR: the whole palette is expanded once (pydicom handles
  segmented LUTs) and reduced to 8 bits.  For the viewport, 8-bit palette
  frames are built straight in Qt's 4-byte RGB32 form (:func:`apply_palette_rgb32`).
- Grey: stored value -> Modality LUT / Rescale -> VOI (window or VOI LUT
  Sequence, else the frame's min/max) -> 0..255, inverted for MONOCHROME1,
  as one table over every possible stored value.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from mdtviewer.dicom.values import first_number  # noqa: F401  (re-exported: pixels reads windows with it)


# --- YBR_FULL -> RGB ------------------------------------------------------
def ybr_full_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """8-bit Y, Cb, Cr planes (same shape) -> uint8 HxWx3 RGB, C-contiguous.

    Pillow's C converter (JFIF full-range YCbCr, the same as DICOM YBR_FULL,
    with pydicom's coefficients) is about twice as fast as numpy tables.
    """
    h, w = y.shape
    planes = [
        Image.frombuffer("L", (w, h), np.ascontiguousarray(p, dtype=np.uint8), "raw", "L", 0, 1)
        for p in (y, cb, cr)
    ]
    return np.asarray(Image.merge("YCbCr", planes).convert("RGB"))


def ybr_full_array_to_rgb(arr: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 YBR_FULL -> RGB."""
    return ybr_full_to_rgb(arr[..., 0], arr[..., 1], arr[..., 2])


def ybr_full_422_native_to_rgb(raw: np.ndarray, rows: int, columns: int) -> np.ndarray:
    """Native (uncompressed) YBR_FULL_422: bytes Y1 Y2 Cb Cr per 2 pixels.

    ``raw`` holds rows*columns*2 bytes.  Chroma is repeated horizontally
    (what pydicom and DCMTK do), then converted.
    """
    quads = raw.reshape(rows, columns // 2, 4)
    y = quads[:, :, :2].reshape(rows, columns)
    cb = np.repeat(quads[:, :, 2], 2, axis=1)
    cr = np.repeat(quads[:, :, 3], 2, axis=1)
    return ybr_full_to_rgb(y, cb, cr)


def to_uint8_colour(arr: np.ndarray, bits_stored: int) -> np.ndarray:
    """RGB samples of any depth -> uint8 HxWx3, C-contiguous."""
    if arr.dtype != np.uint8:
        shift = max(0, bits_stored - 8)
        arr = (arr.astype(np.uint32) >> shift).clip(0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


# --- PALETTE COLOR --------------------------------------------------------
_PALETTE_CACHE: dict[bytes, np.ndarray] = {}
_PALETTE_CACHE_MAX = 32


def _palette_key(ds, bits: int) -> bytes:
    """Digest of everything that defines the palette (so the instances of a
    series share one expanded table: a segmented LUT takes ~30 ms)."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    h.update(str(bits).encode())
    for colour in ("Red", "Green", "Blue"):
        for kw in (
            f"{colour}PaletteColorLookupTableDescriptor",
            f"{colour}PaletteColorLookupTableData",
            f"Segmented{colour}PaletteColorLookupTableData",
        ):
            value = ds.get(kw, None)
            h.update(kw.encode())
            h.update(value if isinstance(value, bytes) else repr(value).encode())
    return h.digest()


def palette_table(ds, bits_stored: int, bits_allocated: int) -> np.ndarray:
    """(N, 3) uint8 table for every possible index value (N = 2**bits).

    Built once per palette with pydicom's ``apply_color_lut`` (which reads
    normal and segmented LUTs and clamps below First Mapped Value / above the
    last entry); 16-bit LUT entries are reduced to 8 bits.  Some writers put
    8-bit values in a 16-bit LUT: then no shift is applied.
    """
    import warnings

    from pydicom.pixels import apply_color_lut

    bits = min(16, max(8, bits_allocated))
    key = _palette_key(ds, bits)
    cached = _PALETTE_CACHE.get(key)
    if cached is not None:
        return cached
    index = np.arange(2**bits, dtype=np.uint16 if bits > 8 else np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = np.asarray(apply_color_lut(index, ds))
    if table.dtype != np.uint8:
        if int(table.max(initial=0)) > 255:
            table = table >> 8
        table = table.astype(np.uint8)
    table = np.ascontiguousarray(table.reshape(-1, 3))
    table.flags.writeable = False
    if len(_PALETTE_CACHE) >= _PALETTE_CACHE_MAX:
        _PALETTE_CACHE.pop(next(iter(_PALETTE_CACHE)))
    _PALETTE_CACHE[key] = table
    return table


def apply_palette(index: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Index frame -> uint8 HxWx3 RGB through ``table`` (from :func:`palette_table`).

    8-bit indices with a table of at most 256 entries go through Pillow's C
    'P' -> 'RGB' conversion (about 2x ``np.take`` on this machine,
    benchmarks/colour.py); wider indices take whole 3-byte pixels from a
    ``V3`` view of the table, which beats gathering along an axis of a 2-D
    table.
    """
    idx: np.ndarray[Any, np.dtype[np.unsignedinteger[Any]]] = index.view(np.uint16 if index.itemsize == 2 else np.uint8)
    if idx.dtype == np.uint16 and table.shape[0] <= 256:
        idx = np.minimum(idx, table.shape[0] - 1)
    if idx.dtype == np.uint8 and idx.ndim == 2 and table.shape == (256, 3) and table.dtype == np.uint8:
        h, w = idx.shape
        im = Image.frombuffer("P", (w, h), np.ascontiguousarray(idx), "raw", "P", 0, 1)
        im.putpalette(table.tobytes(), "RGB")
        return np.asarray(im.convert("RGB"))
    if table.ndim == 2 and table.shape[1] == 3 and table.dtype == np.uint8 and table.flags.c_contiguous:
        rgb = np.take(table.view("V3").reshape(-1), idx)
        return rgb.view(np.uint8).reshape(*idx.shape, 3)
    return np.take(table, idx, axis=0)


#: the packed display form: HxW uint32 pixels 0xFFRRGGBB (Qt's ``Format_RGB32``, the raster engine's own
#: pixel format, drawn without a per-paint conversion; native-endian integers, as Qt reads them).


def palette_rgb32(table: np.ndarray) -> np.ndarray:
    """A (N, 3) uint8 table as (N,) uint32 0xFFRRGGBB entries, for :func:`apply_palette_rgb32`."""
    t = table.astype(np.uint32)
    out = np.ascontiguousarray(np.uint32(0xFF000000) | (t[:, 0] << 16) | (t[:, 1] << 8) | t[:, 2])
    out.flags.writeable = False
    return out


def apply_palette_rgb32(index: np.ndarray, table32: np.ndarray) -> np.ndarray:
    """8-bit index frame -> HxW uint32 0xFFRRGGBB (Qt's RGB32) through a 256-entry :func:`palette_rgb32` table.

    One gather of whole 4-byte pixels into one new array: no 4 -> 3 byte compaction as for RGB (Pillow's
    'P' -> 'RGB' works in 4-byte pixels and then packs them to 3), and Qt paints the result without
    converting it first.  The same colours as :func:`apply_palette`, to the bit
    (tests/test_colour_display.py); :func:`rgb32_to_rgb` gives the RGB array back.
    """
    if table32.shape != (256,):
        raise ValueError("packed RGB32 frames need a 256-entry table")
    # an 8-bit index always falls inside 256 entries: "wrap" never wraps, and skips the bounds check (-25 %)
    return np.take(table32, index.view(np.uint8), mode="wrap")


def is_rgb32(arr: np.ndarray) -> bool:
    """True for a packed display frame (HxW uint32 0xFFRRGGBB) from :func:`apply_palette_rgb32`."""
    return arr.ndim == 2 and arr.dtype == np.uint32


def rgb32_to_rgb(arr: np.ndarray) -> np.ndarray:
    """Packed HxW uint32 0xFFRRGGBB -> uint8 HxWx3 RGB, C-contiguous (a new array)."""
    h, w = arr.shape
    octets = np.ascontiguousarray(arr).view(np.uint8).reshape(h, w, 4)
    # the integer's bytes in memory: B, G, R, 0xFF (little-endian) or 0xFF, R, G, B
    return np.ascontiguousarray(octets[:, :, 2::-1] if sys.byteorder == "little" else octets[:, :, 1:])


# --- grey scale -----------------------------------------------------------
@dataclass(frozen=True)
class Window:
    center: float
    width: float
    function: str = "LINEAR"  # LINEAR | LINEAR_EXACT | SIGMOID


def window_to_uint8(values: np.ndarray, window: Window) -> np.ndarray:
    """PS3.3 C.11.2.1.2 VOI windowing of modality values to 0..255 (uint8)."""
    x = values.astype(np.float64, copy=False)
    c, w = float(window.center), float(window.width)
    fn = window.function.upper()
    if fn == "SIGMOID":
        y = 255.0 / (1.0 + np.exp(-4.0 * (x - c) / max(w, 1e-6)))
    elif fn == "LINEAR_EXACT":
        w = max(w, 1e-6)
        y = ((x - c) / w + 0.5) * 255.0
    else:
        w = max(w, 1.0)
        if w == 1.0:
            y = np.where(x < c - 0.5, 0.0, 255.0)
        else:
            y = ((x - (c - 0.5)) / (w - 1.0) + 0.5) * 255.0
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def stored_values(bits_stored: int, signed: bool) -> np.ndarray:
    """Every stored value, ordered by its unsigned low-bits pattern.

    A decoded sample ``s`` (any int dtype, sign-extended or not) maps to
    table index ``s & (2**bits_stored - 1)``: the table built over this
    vector then serves signed and unsigned data alike.
    """
    n = 1 << bits_stored
    v = np.arange(n, dtype=np.int64)
    if signed:
        v = np.where(v >= n // 2, v - n, v)
    return v
