"""Transfer syntaxes and the per-frame decoders behind :mod:`mdtviewer.imaging.pixels`.

Why our own dispatch instead of ``ds.pixel_array``: pydicom decodes a cine
whole and converts YBR to RGB in numpy, which is 5-20x slower than
libjpeg-turbo doing the colour conversion itself, and it holds every frame at
once.  Each function here takes the bytes of ONE frame and returns a numpy
array plus the photometric interpretation of what it returned, so the caller
never converts colour twice.

Qt-free, stateless and thread-safe (the C decoders release the GIL).
"""

from __future__ import annotations

import re
import struct
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

# transfer syntaxes are named once, in dicom.uids; re-exported here for pixels and check (codecs.X)
from mdtviewer.dicom.uids import (  # noqa: F401
    DEFLATED_LE,
    ENCAPSULATED,
    EXPLICIT_BE,
    EXPLICIT_LE,
    HTJ2K,
    HTJ2K_LOSSLESS,
    HTJ2K_RPCL,
    IMPLICIT_LE,
    J2K,
    J2K_LOSSLESS,
    J2K_MC,
    J2K_MC_LOSSLESS,
    JPEG_2000,
    JPEG_BASELINE,
    JPEG_EXTENDED,
    JPEG_LOSSLESS,
    JPEG_LOSSLESS_ALL,
    JPEG_LOSSLESS_SV1,
    JPEG_LOSSY,
    JPEG_LS,
    JPEG_LS_LOSSLESS,
    JPEG_LS_NEAR,
    JPEG_XL,
    JPEGXL,
    JPEGXL_LOSSLESS,
    JPEGXL_RECOMPRESSION,
    NATIVE,
    RLE,
    VIDEO_PREFIX,
    is_video,
    sniff_transfer_syntax,
)
from mdtviewer.infra.errors import DecodeError, UnsupportedError

CODEC_NAMES = {
    **{ts: "JPEG" for ts in JPEG_LOSSY},
    **{ts: "JPEG Lossless" for ts in JPEG_LOSSLESS_ALL},
    **{ts: "JPEG-LS" for ts in JPEG_LS},
    **{ts: "JPEG 2000" for ts in JPEG_2000},
    **{ts: "JPEG XL" for ts in JPEG_XL},
    RLE: "RLE",
}


def codec_name(ts: str) -> str:
    return CODEC_NAMES.get(ts, f"transfer syntax {ts}")


# --- start-of-stream markers ----------------------------------------------
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_JXL_CONTAINER = b"\x00\x00\x00\x0cJXL \r\n\x87\n"


def has_start_marker(ts: str, data: bytes | memoryview) -> bool:
    """Does this frame's first fragment start the way its codec requires?

    Cheap (a few bytes), so it is checked for every frame when a file is
    opened: a JPEG transfer syntax wrapped around raw pixels is caught there
    with a clear reason instead of an opaque decoder message.
    """
    head = bytes(data[:12])
    if ts in JPEG_LOSSY or ts in JPEG_LOSSLESS_ALL or ts in JPEG_LS:
        return head[:2] == b"\xff\xd8"
    if ts in JPEG_2000:
        return head[:4] == b"\xff\x4f\xff\x51" or head == _JP2_SIGNATURE
    if ts in JPEG_XL:
        return head[:2] == b"\xff\x0a" or head == _JXL_CONTAINER
    if ts == RLE:
        if len(head) < 4:
            return False
        n_segments = int.from_bytes(head[:4], "little")
        return 1 <= n_segments <= 15
    return True


def has_end_marker(ts: str, data: bytes | memoryview) -> bool:
    """Does the frame end with its codec's end marker (EOI/EOC)?

    Only used to word the error when decoding fails: a missing end marker
    means the data was cut short.
    """
    if ts in JPEG_LOSSY or ts in JPEG_LOSSLESS_ALL or ts in JPEG_LS or ts in JPEG_2000:
        # the marker, then at most a few bytes of padding or leftovers (some writers leave some)
        return b"\xff\xd9" in bytes(data[-10:])
    return True


# --- what a codestream says about itself ----------------------------------
@dataclass(frozen=True)
class CodestreamHeader:
    """The frame header of a codestream (JPEG SOF, JPEG-LS SOF55, J2K SIZ, JP2 ihdr)."""

    width: int
    height: int
    components: int
    precision: int  # bits per sample (the largest, for J2K)


#: JPEG / JPEG-LS start-of-frame markers (every process, hierarchical included)
_SOF_MARKERS = frozenset((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7))


def codestream_header(ts: str, data: bytes | memoryview) -> CodestreamHeader | None:
    """The frame header of one frame's codestream, or None when it has none where it must be.

    Cheap: JPEG markers are walked by their lengths (the entropy-coded data is
    never scanned).  Not used for RLE (no header) or JPEG XL.
    """
    n = len(data)
    if ts in JPEG_2000:
        head = bytes(data[:4096])
        if head[:4] == b"\xff\x4f\xff\x51":
            if len(head) < 4 + 2 + 38:
                return None
            xsiz, ysiz, xo, yo = struct.unpack_from(">IIII", head, 8)
            (csiz,) = struct.unpack_from(">H", head, 40)
            depth = max((b & 0x7F) + 1 for b in head[42 : 42 + 3 * min(csiz, 16) : 3]) if csiz else 0
            return CodestreamHeader(max(xsiz - xo, 0), max(ysiz - yo, 0), csiz, depth)
        at = head.find(b"ihdr")  # JP2 file format: image header box
        if at >= 4 and len(head) >= at + 15:
            height, width, nc = struct.unpack_from(">IIH", head, at + 4)
            return CodestreamHeader(width, height, nc, (head[at + 14] & 0x7F) + 1)
        return None
    if ts in JPEG_LOSSY or ts in JPEG_LOSSLESS_ALL or ts in JPEG_LS:
        if bytes(data[:2]) != b"\xff\xd8":
            return None
        pos = 2
        while pos + 4 <= n:
            if data[pos] != 0xFF:
                return None
            marker = data[pos + 1]
            if marker == 0xFF or 0xD0 <= marker <= 0xD7 or marker == 0x01:  # fill byte, RSTn, TEM: no length
                pos += 1 if marker == 0xFF else 2
                continue
            if marker in (0xDA, 0xD9):  # start of scan / end of image before any frame header
                return None
            length = int.from_bytes(bytes(data[pos + 2 : pos + 4]), "big")
            if length < 2:
                return None
            if marker in _SOF_MARKERS:
                if pos + 10 > n:
                    return None
                precision = data[pos + 4]
                height, width = struct.unpack_from(">HH", bytes(data[pos + 5 : pos + 9]))
                return CodestreamHeader(width, height, data[pos + 9], precision)
            pos += 2 + length
        return None
    return None


#: decoded frame bytes allowed whatever the compressed size (a 4096 x 4096 RGB frame is 48 MiB)
RATIO_FREE_BYTES = 64 << 20
#: the most decoded bytes one compressed byte can honestly stand for, per codec.  JPEG's
#: smallest 8x8 block is 2 bits (256:1 grey, 512:1 subsampled colour; 1,000 leaves room);
#: lossless JPEG spends at least a bit per sample (16:1); JPEG-LS run mode, JPEG 2000
#: and JPEG XL code flat areas in almost nothing, hence their far larger allowance.
MAX_COMPRESSION_RATIO = {
    **{ts: 1_000 for ts in JPEG_LOSSY},
    **{ts: 64 for ts in JPEG_LOSSLESS_ALL},
    **{ts: 10_000 for ts in JPEG_LS},
    **{ts: 10_000 for ts in JPEG_2000},
    **{ts: 10_000 for ts in JPEG_XL},
    RLE: 64,
}


def check_frame_budget(ts: str, compressed: int, decoded: int) -> str | None:
    """Why *compressed* bytes cannot honestly decode to *decoded* bytes (None: they can)."""
    ratio = MAX_COMPRESSION_RATIO.get(ts)
    if ratio is None or decoded <= RATIO_FREE_BYTES or decoded <= ratio * compressed:
        return None
    return (f"{compressed:,} bytes of {codec_name(ts)} data cannot hold a frame of {decoded:,} bytes "
            f"(more than {ratio:,}:1): the sizes in the file are not genuine")


# --- descriptor passed to decoders ----------------------------------------
@dataclass(frozen=True)
class FrameSpec:
    """What one frame should look like (from the data set, validated)."""

    rows: int
    columns: int
    samples_per_pixel: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    photometric: str
    planar_configuration: int
    transfer_syntax: str


@dataclass
class Decoded:
    """A decoded frame and what its samples mean.

    ``photometric`` is the colour space of ``array`` (e.g. 'RGB' when the
    decoder already converted YBR), which is what prevents double conversion.
    """

    array: np.ndarray
    photometric: str


# --- individual decoders --------------------------------------------------
def decode_jpeg_turbo(data: bytes | memoryview, spec: FrameSpec, packed: bool = False) -> Decoded | None:
    """libjpeg-turbo via simplejpeg: 8-bit baseline/extended, straight to RGB.

    With *packed*, a colour frame comes as HxW uint32 0xFFRRGGBB pixels (photometric ``"RGB32"``, Qt's
    ``Format_RGB32``, which Qt paints without converting it): libjpeg-turbo writes the same R, G, B
    with a fourth byte of 0xFF, as fast as 3-byte RGB (benchmarks/colour.py).
    Returns None when turbo cannot take this stream (12-bit, lossless,
    4 components ...), so the caller can fall back to pydicom.
    """
    import simplejpeg

    if spec.bits_allocated != 8 or spec.samples_per_pixel not in (1, 3):
        return None
    try:
        height, width, colorspace, _sub = simplejpeg.decode_jpeg_header(data)
    except Exception:  # noqa: BLE001 - unknown to turbo: let pydicom try
        return None
    if (height, width) != (spec.rows, spec.columns):
        raise DecodeError(
            f"JPEG frame is {width} x {height} but the header says {spec.columns} x {spec.rows}"
        )
    if spec.samples_per_pixel == 1:
        if colorspace not in ("Gray",):
            return None
        arr = simplejpeg.decode_jpeg(data, colorspace="GRAY", strict=True)
        return Decoded(arr[:, :, 0] if arr.ndim == 3 else arr, "MONOCHROME")
    if colorspace not in ("YCbCr", "RGB"):
        return None
    if colorspace == "YCbCr" and spec.photometric == "RGB" and not jpeg_declares_ycbcr(data):
        # DICOM says the samples are RGB and nothing in the stream (JFIF,
        # Adobe transform=1) says otherwise: turbo would guess YCbCr and
        # convert; pydicom's decoder keeps the samples as they are.
        return None
    # libjpeg-turbo applies the YCbCr->RGB transform the stream declares
    # (JFIF / Adobe marker / component ids), so the output is always RGB.
    if packed:
        # the uint32 0xFFRRGGBB in memory: B, G, R, 0xFF on a little-endian machine, else 0xFF, R, G, B
        quad = simplejpeg.decode_jpeg(data, colorspace="BGRX" if sys.byteorder == "little" else "XRGB",
                                      strict=True)
        return Decoded(np.ascontiguousarray(quad).view(np.uint32).reshape(quad.shape[:2]), "RGB32")
    arr = simplejpeg.decode_jpeg(data, colorspace="RGB", strict=True)
    return Decoded(arr, "RGB")


def jpeg_declares_ycbcr(data: bytes | memoryview) -> bool:
    """True when a JPEG stream itself declares YCbCr (JFIF APP0, or an Adobe
    APP14 marker with transform 1/2) before its first scan."""
    pos, n = 2, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return False
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker == 0xDA:
            return False
        length = int.from_bytes(bytes(data[pos + 2 : pos + 4]), "big")
        if marker == 0xE0 and bytes(data[pos + 4 : pos + 9]) == b"JFIF\x00":
            return True
        if marker == 0xEE and bytes(data[pos + 4 : pos + 9]) == b"Adobe" and length >= 12:
            return data[pos + 15] in (1, 2)
        pos += 2 + length
    return False


def decode_jpeg_imagecodecs(data: bytes | memoryview, spec: FrameSpec) -> Decoded | None:
    """libjpeg-turbo 3 through imagecodecs for grey JPEG Lossless and 12-bit
    JPEG Extended: about 5x pydicom's pylibjpeg-libjpeg here.  Colour
    lossless streams go to pydicom (no colour transform guessing)."""
    import imagecodecs

    if spec.samples_per_pixel != 1 or not imagecodecs.JPEG8.available:
        return None
    try:
        arr = imagecodecs.jpeg8_decode(bytes(data))
    except Exception:  # noqa: BLE001 - let pydicom try (and word the error)
        return None
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2:
        return None
    return Decoded(arr, spec.photometric)


def decode_jpeg_ls(data: bytes | memoryview, spec: FrameSpec) -> Decoded:
    """CharLS via pyjpegls: the fastest JPEG-LS route here."""
    import jpeg_ls

    arr = jpeg_ls.decode(np.frombuffer(data, dtype=np.uint8))
    if spec.samples_per_pixel == 3 and arr.ndim == 3 and arr.shape[0] == 3 and arr.shape[-1] != 3:
        arr = np.moveaxis(arr, 0, -1)
    # JPEG-LS has no colour transform of its own: the samples are what the
    # photometric interpretation says
    return Decoded(arr, spec.photometric)


def decode_rle(data: bytes | memoryview, spec: FrameSpec) -> Decoded:
    """DICOM RLE (PS3.5 Annex G) for one frame; output is planar by definition.

    The 64-byte header is checked here and each segment is PackBits-decoded
    by imagecodecs (C).  Not pylibjpeg-rle: on a damaged segment that expands
    past its frame it panics (a Rust ``PanicException``, which is not an
    ``Exception`` and so escapes every handler); imagecodecs just returns
    what the segment holds, and the length is checked here.  It is also
    faster on 3-sample frames (no interleaving pass).
    """
    import imagecodecs

    n_pixels = spec.rows * spec.columns
    bytes_per_sample = spec.bits_allocated // 8
    if spec.bits_allocated not in (8, 16, 32):
        raise UnsupportedError(f"RLE with Bits Allocated {spec.bits_allocated} is not supported")
    expected_segments = spec.samples_per_pixel * bytes_per_sample
    data = bytes(data)
    if len(data) < 64:
        raise DecodeError(f"RLE frame is only {len(data)} bytes: its 64-byte header is cut short")
    header = np.frombuffer(data, dtype="<u4", count=16)
    n_segments = int(header[0])
    if n_segments != expected_segments:
        raise DecodeError(
            f"RLE frame has {n_segments} segment(s) but {spec.samples_per_pixel} sample(s) of "
            f"{spec.bits_allocated} bits need {expected_segments}"
        )
    offsets = [int(o) for o in header[1 : 1 + n_segments]] + [len(data)]
    if offsets[0] != 64 or any(b < a for a, b in zip(offsets, offsets[1:])):
        raise DecodeError("RLE header is damaged: its segment offsets are out of order or outside the frame")
    planes = np.empty((spec.samples_per_pixel, bytes_per_sample, n_pixels), dtype=np.uint8)
    for k in range(n_segments):
        try:
            seg = imagecodecs.packbits_decode(data[offsets[k] : offsets[k + 1]])
        except Exception as exc:
            raise DecodeError(f"RLE segment {k + 1} could not be decoded: {_short(exc)}") from exc
        if len(seg) < n_pixels:
            raise DecodeError(f"RLE segment {k + 1} decodes to {len(seg):,} of {n_pixels:,} bytes: the data is damaged")
        # segments hold the most significant byte of each sample first
        planes[k // bytes_per_sample, bytes_per_sample - 1 - k % bytes_per_sample] = np.frombuffer(
            seg, dtype=np.uint8, count=n_pixels
        )
    dtype = _int_dtype(spec.bits_allocated, spec.pixel_representation)
    if bytes_per_sample == 1:
        arr: np.ndarray = planes.reshape(spec.samples_per_pixel, n_pixels)
    else:  # little-endian bytes of each sample side by side
        arr = np.ascontiguousarray(planes.transpose(0, 2, 1)).view(dtype).reshape(spec.samples_per_pixel, n_pixels)
    if spec.samples_per_pixel == 1:
        arr = arr.reshape(spec.rows, spec.columns)
    else:
        arr = arr.reshape(spec.samples_per_pixel, spec.rows, spec.columns).transpose(1, 2, 0)
    if bytes_per_sample == 1 and spec.pixel_representation:
        arr = arr.view(np.int8)
    return Decoded(arr, spec.photometric)


def decode_jpegxl(data: bytes | memoryview, spec: FrameSpec) -> Decoded:
    """JPEG XL through imagecodecs (pydicom 3.0 has no decoder for it)."""
    import imagecodecs

    try:
        arr = imagecodecs.jpegxl_decode(bytes(data))
    except Exception as exc:
        raise DecodeError(f"JPEG XL data could not be decoded: {_short(exc)}") from exc
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 3 and arr.shape[-1] == 4:
        arr = arr[:, :, :3]
    # libjxl returns RGB for colour (it undoes XYB / JPEG YCbCr itself)
    return Decoded(arr, "RGB" if arr.ndim == 3 else spec.photometric)


def decode_with_pydicom(data: bytes | memoryview, spec: FrameSpec) -> Decoded:
    """pydicom's plugins (pylibjpeg-libjpeg / -openjpeg) for one frame.

    Used for JPEG Lossless, JPEG 2000 and what turbo declines.  pydicom
    converts YBR to RGB when it can (``as_rgb``) and tells us in the returned
    photometric interpretation, which we keep.
    """
    from pydicom.encaps import encapsulate
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(spec.transfer_syntax)
    except Exception as exc:
        raise UnsupportedError(f"no decoder for transfer syntax {spec.transfer_syntax}") from exc
    if not decoder.is_available:
        raise UnsupportedError(
            f"{codec_name(spec.transfer_syntax)} decoder is not installed (pylibjpeg plugins)"
        )
    opts: dict[str, Any] = dict(
        rows=spec.rows,
        columns=spec.columns,
        samples_per_pixel=spec.samples_per_pixel,
        bits_allocated=spec.bits_allocated,
        bits_stored=spec.bits_stored,
        pixel_representation=spec.pixel_representation,
        photometric_interpretation=spec.photometric,
        number_of_frames=1,
        pixel_keyword="PixelData",
    )
    if spec.samples_per_pixel > 1:
        opts["planar_configuration"] = spec.planar_configuration
    try:
        arr, meta = decoder.as_array(encapsulate([bytes(data)]), **opts)
    except Exception as exc:
        raise DecodeError(
            f"{codec_name(spec.transfer_syntax)} data could not be decoded: {_short(exc)}"
        ) from exc
    return Decoded(arr, str(meta.get("photometric_interpretation", spec.photometric)))


def is_decoder_panic(exc: BaseException) -> bool:
    """A Rust decoder's panic (pyo3 ``PanicException`` derives from
    BaseException, so ``except Exception`` does not see it)."""
    return type(exc).__name__ == "PanicException"


def _int_dtype(bits_allocated: int, pixel_representation: int) -> np.dtype:
    kind = "i" if pixel_representation else "u"
    return np.dtype(f"<{kind}{max(1, bits_allocated // 8)}")


def _short(exc: BaseException) -> str:
    """The telling line of a decoder's message, trimmed (they can be
    paragraphs; pydicom's first line only says that all plugins failed)."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    if not lines:
        return "the decoder gave no reason"
    text = lines[0]
    if text.startswith("Unable to decode as exceptions were raised") and len(lines) > 1:
        text = lines[1].split(": ", 1)[-1]
    # "Unknown error code '-2048' returned from Decode(): Out of free memory" -> what it says
    text = re.sub(r"^(Unknown |libjpeg |openjpeg )?error code '?-?\d+'? returned from \w+\(\):\s*", "", text,
                  flags=re.IGNORECASE)
    if _INTERNAL.search(text):
        return "the decoder failed on it"  # a Python-level fault, not a message about the data
    return text[:200]


#: messages that describe a fault in code rather than the data (never shown as a reason)
_INTERNAL = re.compile(
    r"object (has no attribute|is not|of type)|NoneType|Alias '|\bTraceback\b|"
    r"takes \d+ positional|unexpected keyword|not subscriptable|index out of range|could not broadcast|"
    r"cannot reshape|invalid literal for"
)
