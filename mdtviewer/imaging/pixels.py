"""One instance's frames, decoded on demand, one frame at a time.

Why not ``ds.pixel_array``: it decodes a whole cine at once (slow first
frame, all frames in memory), converts YBR to RGB in numpy (the main cost),
and trusts the header's sizes (a 65535 x 65535 header with 256 bytes of
pixels, or a 3 GiB declared length in a 100 kB file, ends in a huge
allocation or an opaque error).  :class:`FrameSource` instead

1. validates the pixel description against the bytes actually present
   before anything is allocated, raising the typed errors of
   :mod:`mdtviewer.infra.errors` with a one-line reason;
2. builds a frame table (offsets of each frame's fragments, from the
   Extended / Basic Offset Table when present) so frame *k* decodes without
   decoding 0..k-1;
3. decodes each frame with the fastest decoder for its transfer syntax
   (:mod:`mdtviewer.imaging.codecs`: libjpeg-turbo straight to RGB, CharLS,
   pylibjpeg-rle, imagecodecs for JPEG XL, pydicom's plugins for the rest;
   native frames are numpy views of the bytes);
4. turns the samples into a display-ready uint8 frame with precomputed
   tables (:mod:`mdtviewer.imaging.colour`); for the viewport,
   :meth:`FrameSource.display_frame` gives 8-bit palette frames in Qt's
   packed RGB32 form instead (same colours, cheaper to build and to paint).

Thread-safe: :meth:`FrameSource.frame` may be called from several worker
threads at once (the decoders release the GIL; shared state is read-only
after construction, lazily built tables are guarded by a lock).
"""

from __future__ import annotations

import os
import struct
import threading
import warnings
from pathlib import Path
from typing import cast

import numpy as np

from mdtviewer.imaging import codecs
from mdtviewer.imaging.codecs import Decoded, FrameSpec, codec_name
from mdtviewer.imaging.colour import (
    Window,
    apply_palette,
    apply_palette_rgb32,
    first_number,
    palette_rgb32,
    palette_table,
    stored_values,
    to_uint8_colour,
    window_to_uint8,
    ybr_full_422_native_to_rgb,
    ybr_full_array_to_rgb,
)
from mdtviewer.infra.errors import (
    DecodeError,
    DicomInputError,
    PixelDataError,
    TruncatedFileError,
    UnsupportedError,
)

__all__ = ["FrameSource", "read_pixel_dataset"]

PIXEL_DATA = 0x7FE00010
FLOAT_PIXEL_DATA = 0x7FE00008
DOUBLE_FLOAT_PIXEL_DATA = 0x7FE00009
EXTENDED_OFFSET_TABLE = 0x7FE00001
EXTENDED_OFFSET_TABLE_LENGTHS = 0x7FE00002
ITEM = 0xFFFEE000
SEQUENCE_DELIMITER = 0xFFFEE0DD

#: frames larger than this (as stored) are refused before any decoder allocates them: a
#: frame is decoded and converted with a few copies alive, and 256 MiB is an 8192 x 8192 RGB frame
#: with room to spare, under a 3 GB memory cap
MAX_FRAME_BYTES = 256 << 20

_MONO = ("MONOCHROME1", "MONOCHROME2")
_COLOUR_PHOTOMETRICS = {
    "RGB",
    "YBR_FULL",
    "YBR_FULL_422",
    "YBR_ICT",
    "YBR_RCT",
    "YBR_PARTIAL_422",
    "YBR_PARTIAL_420",
}
_ATTRIBUTE_NAMES = {
    0x00280002: "Samples per Pixel",
    0x00280004: "Photometric Interpretation",
    0x00280006: "Planar Configuration",
    0x00280008: "Number of Frames",
    0x00280010: "Rows",
    0x00280011: "Columns",
    0x00280100: "Bits Allocated",
    0x00280101: "Bits Stored",
    0x00280103: "Pixel Representation",
}


def read_pixel_dataset(path: str | os.PathLike):
    """Read a whole data set (pixels included) with the project's robust reader."""
    from mdtviewer.dicom.reader import read_dataset

    return read_dataset(path)


class FrameSource:
    """One instance's frames, decoded on demand, one frame at a time.

    Attributes (read-only after construction): ``n_frames``, ``rows``,
    ``columns``, ``samples_per_pixel``, ``photometric`` (as the file says),
    ``transfer_syntax`` (as the file says), ``is_color``, ``frame_nbytes``
    (bytes of one display frame, for cache accounting), ``default_window``
    ((center, width) in modality units for grey images, else None) and
    ``note`` (a recovery that was made, e.g. the codec was recognised from the
    data because the transfer syntax was wrong; else None).
    """

    def __init__(self, path: str | os.PathLike, dataset=None):
        self.path = Path(path)
        self._lock = threading.Lock()
        self.note: str | None = None
        ds = dataset
        if ds is None or ds.get_item(PIXEL_DATA) is None:
            # no data set given, or one read with stop_before_pixels: read it whole
            ds = read_pixel_dataset(path)
        self._ds = ds
        if ds.get_item(PIXEL_DATA) is None:
            if ds.get_item(FLOAT_PIXEL_DATA) is not None or ds.get_item(DOUBLE_FLOAT_PIXEL_DATA) is not None:
                raise UnsupportedError("floating-point pixel data (parametric maps) is not supported")
            raise PixelDataError("this file has no Pixel Data")

        self.transfer_syntax = _transfer_syntax(ds)
        elem = ds.get_item(PIXEL_DATA)
        value = elem.value
        if value is None or len(value) == 0:
            raise PixelDataError("Pixel Data is empty")
        declared = getattr(elem, "length", None)
        self._buf = memoryview(value)
        encapsulated = _looks_encapsulated(elem, value)

        # 1. the file ends inside Pixel Data: say so before trusting anything
        if (
            not encapsulated
            and isinstance(declared, int)
            and declared != 0xFFFFFFFF
            and declared > len(value) + 1
        ):
            raise TruncatedFileError(f"pixel data ends after {len(value):,} of {declared:,} bytes")

        # 2. the pixel description
        self.rows = _int_attr(ds, 0x00280010)
        self.columns = _int_attr(ds, 0x00280011)
        self.samples_per_pixel = _int_attr(ds, 0x00280002, default=1)
        bits_allocated = _int_attr(ds, 0x00280100)
        self._bits_allocated = bits_allocated
        bits_stored = _int_attr(ds, 0x00280101, default=bits_allocated)
        pixel_representation = _int_attr(ds, 0x00280103, default=0)
        planar = _int_attr(ds, 0x00280006, default=0) if self.samples_per_pixel > 1 else 0
        self.n_frames = _int_attr(ds, 0x00280008, default=1)
        photometric = _str_attr(ds, 0x00280004)
        if not photometric:
            photometric = "MONOCHROME2" if self.samples_per_pixel == 1 else "RGB"
            self.note = f"Photometric Interpretation is missing; shown as {photometric}"
        self.photometric = photometric
        _check_description(
            self.rows,
            self.columns,
            self.samples_per_pixel,
            bits_allocated,
            bits_stored,
            pixel_representation,
            planar,
            self.n_frames,
            photometric,
        )
        self.is_color = photometric not in _MONO
        self.frame_nbytes = self.rows * self.columns * (3 if self.is_color else 1)
        # 3. which decoder, and where each frame's bytes are
        ts = self.transfer_syntax
        if codecs.is_video(ts):
            raise UnsupportedError(f"video transfer syntax {ts} (MPEG/HEVC) is not supported")
        if ts in codecs.ENCAPSULATED and not encapsulated:
            raise PixelDataError(
                f"transfer syntax says {codec_name(ts)} but the pixel data is not encapsulated"
            )
        self._decode_ts = ts
        self._big_endian = ts == codecs.EXPLICIT_BE
        if encapsulated:
            self._native = False
            self._frames = self._build_frame_table(ds)
            if ts not in codecs.ENCAPSULATED:
                guess = codecs.sniff_transfer_syntax(self._frame_bytes(0))
                if guess is None:
                    raise PixelDataError(
                        f"pixel data is encapsulated (compressed) but the transfer syntax {ts or '(none)'} "
                        "says uncompressed, and the compression cannot be recognised"
                    )
                self._decode_ts = guess
                self.note = (
                    f"pixel data is {codec_name(guess)} although the transfer syntax says {ts or '(none)'}"
                )
            self._check_frame_cap()
            self._check_encapsulated_frames()
        else:
            self._native = True
            self._frames = []
            self._check_native_length(len(value), bits_allocated, photometric)
            self._check_frame_cap()

        self._spec = FrameSpec(
            rows=self.rows,
            columns=self.columns,
            samples_per_pixel=self.samples_per_pixel,
            bits_allocated=bits_allocated,
            bits_stored=bits_stored,
            pixel_representation=pixel_representation,
            photometric=photometric,
            planar_configuration=planar,
            transfer_syntax=self._decode_ts,
        )
        if self._native and photometric.startswith("YBR_PARTIAL"):
            raise UnsupportedError(f"uncompressed {photometric} pixel data is not supported")
        if self._native and self._big_endian and bits_allocated == 8 and getattr(elem, "VR", "") == "OW":
            # Explicit VR Big Endian OW with 8-bit samples: bytes are swapped in 16-bit words
            n = len(value) // 2 * 2
            swapped = np.frombuffer(value, dtype="<u2", count=n // 2).byteswap().tobytes()
            self._buf = memoryview(swapped)

        # display tables, built on first use
        self._palette: np.ndarray | None = None
        #: the palette as 0xFFRRGGBB entries when display frames are packed RGB32 (see display_frame)
        self._palette32: np.ndarray | None = None
        self._grey: _GreyDisplay | None = None
        try:
            if photometric == "PALETTE COLOR":
                self._palette = palette_table(ds, bits_stored, bits_allocated)
                if bits_allocated == 8 and self._palette.shape == (256, 3):
                    self._palette32 = palette_rgb32(self._palette)
            elif not self.is_color:
                self._grey = _GreyDisplay(ds, self._spec, photometric)
        except DicomInputError:
            raise
        except Exception:  # noqa: BLE001 - a damaged look-up table in the header
            what = "palette colour look-up table" if photometric == "PALETTE COLOR" else "modality LUT / rescale"
            raise PixelDataError(f"the {what} in the header is damaged") from None

    # ------------------------------------------------------------------ API
    @property
    def transfer_syntax_used(self) -> str:
        """The syntax actually decoded (differs from the file's when recovered)."""
        return self._decode_ts

    @property
    def default_window(self) -> tuple[float, float] | None:
        if self._grey is None:
            return None
        self._ensure_grey_ready()
        return self._grey.default_window

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` (0-based) as display-ready uint8, C-contiguous:
        HxW grey or HxWx3 RGB.  A new array each call, independent of the
        file's bytes; it may be read-only (copy before drawing on it).
        Raises DecodeError when this frame cannot be decoded, IndexError when
        ``index`` is outside 0..n_frames-1."""
        decoded = self._decode(index)
        if self._grey is not None:
            self._ensure_grey_ready(decoded if index == 0 else None)
            return self._grey.display(decoded.array)
        return self._colour(decoded)

    def display_frame(self, index: int) -> np.ndarray:
        """Frame ``index`` in the form the viewport paints: :meth:`frame`'s array, except for 8-bit
        PALETTE COLOR and colour JPEG (8-bit lossy, decoded by libjpeg-turbo), given as HxW uint32
        pixels 0xFFRRGGBB (Qt's ``Format_RGB32``; see :func:`mdtviewer.imaging.colour.apply_palette_rgb32`
        and :func:`mdtviewer.imaging.codecs.decode_jpeg_turbo`).  For a palette that form is one gather of
        whole 4-byte pixels (no packing to 3 bytes), for JPEG libjpeg-turbo writes it as fast as RGB, and
        Qt draws it without converting it at each paint (a third to a fifth of RGB888's paint time)
        (benchmarks/colour.py); its colours are :meth:`frame`'s to the bit
        (:func:`mdtviewer.imaging.colour.rgb32_to_rgb` gives that array back).  Everything
        that reads pixel values (masking, export, thumbnails, checks) uses :meth:`frame`."""
        if self._palette32 is not None:
            decoded = self._decode(index)
            if decoded.array.ndim == 2 and decoded.array.dtype.itemsize == 1:
                return apply_palette_rgb32(decoded.array, self._palette32)
            return self._colour(decoded)
        if self.is_color and self._palette is None and self._decode_ts in codecs.JPEG_LOSSY:
            decoded = self._decode(index, packed=True)  # libjpeg-turbo writes 0xFFRRGGBB as fast as RGB
            return decoded.array if decoded.photometric == "RGB32" else self._colour(decoded)
        return self.frame(index)

    def frame_raw(self, index: int) -> np.ndarray:
        """Grey: modality values (Modality LUT / Rescale applied; the stored
        integers when there is no rescale) for window/level in the UI.
        Colour: the same as :meth:`frame`."""
        decoded = self._decode(index)
        if self._grey is not None:
            return self._grey.modality(decoded.array)
        return self._colour(decoded)

    def close(self) -> None:
        """Drop the pixel bytes and data set (frames already returned stay valid)."""
        self._buf = memoryview(b"")
        self._frames = []
        self._ds = None

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"FrameSource({self.path.name!r}, {self.columns}x{self.rows}x{self.n_frames}, "
            f"{self.photometric}, {self.transfer_syntax})"
        )

    # ------------------------------------------------------------ decoding
    def _decode(self, index: int, packed: bool = False) -> Decoded:
        """Frame *index* as its decoder gives it; with *packed*, a colour JPEG comes as packed RGB32
        (:func:`mdtviewer.imaging.codecs.decode_jpeg_turbo`)."""
        if not isinstance(index, (int, np.integer)) or not 0 <= index < self.n_frames:
            raise IndexError(f"frame {index} out of range (this instance has {self.n_frames})")
        if self._native:
            return self._native_frame(int(index))
        data = self._frame_bytes(int(index))
        spec = self._spec
        ts = self._decode_ts
        if index > 0:  # frame 0 was checked when the file was opened
            self._check_frame_size(index, data)
        try:
            decoded = None
            if ts in codecs.JPEG_LOSSY:
                try:
                    decoded = codecs.decode_jpeg_turbo(data, spec, packed=packed)
                except DecodeError:
                    raise
                except Exception as exc:
                    # libjpeg-turbo read this stream's header and then refused its data: it is
                    # damaged, and no fallback decoder gets it (pydicom's libjpeg would fill the
                    # missing part with grey and say nothing, or allocate without bound)
                    raise DecodeError(f"{codec_name(ts)} data is damaged ({codecs._short(exc)})") from exc
                if decoded is None and (self._spec.bits_allocated > 8 or self.samples_per_pixel == 1):
                    decoded = codecs.decode_jpeg_imagecodecs(data, spec)
            elif ts in codecs.JPEG_LOSSLESS_ALL:
                decoded = codecs.decode_jpeg_imagecodecs(data, spec)
            elif ts in codecs.JPEG_LS:
                try:
                    decoded = codecs.decode_jpeg_ls(data, spec)
                except Exception as exc:
                    raise DecodeError(f"{codec_name(ts)} data is damaged ({codecs._short(exc)})") from exc
            elif ts == codecs.RLE:
                decoded = codecs.decode_rle(data, spec)
            elif ts in codecs.JPEG_XL:
                decoded = codecs.decode_jpegxl(data, spec)
            if decoded is None:
                decoded = codecs.decode_with_pydicom(data, spec)
        except DecodeError as exc:
            if not codecs.has_end_marker(ts, data):
                raise DecodeError(
                    f"{codec_name(ts)} data is cut short (frame {index + 1} has no end marker)"
                ) from exc
            raise DecodeError(f"frame {index + 1}: {exc.reason}") from exc
        except DicomInputError:
            raise
        except Exception as exc:
            raise DecodeError(
                f"{codec_name(ts)} frame {index + 1} could not be decoded: {codecs._short(exc)}"
            ) from exc
        except BaseException as exc:
            if not codecs.is_decoder_panic(exc):
                raise
            raise DecodeError(
                f"{codec_name(ts)} frame {index + 1} could not be decoded: the decoder failed ({codecs._short(exc)})"
            ) from None
        arr = decoded.array
        if arr.shape[:2] != (self.rows, self.columns):
            raise DecodeError(
                f"{codec_name(ts)} frame {index + 1} decoded to {arr.shape[1]} x {arr.shape[0]} "
                f"but the header says {self.columns} x {self.rows}"
            )
        return decoded

    def _native_frame(self, index: int) -> Decoded:
        spec = self._spec
        rows, cols, spp, ba = spec.rows, spec.columns, spec.samples_per_pixel, spec.bits_allocated
        if ba == 1:
            n_bits = rows * cols * spp
            first_bit = index * n_bits
            byte0, byte1 = first_bit // 8, (first_bit + n_bits + 7) // 8
            bits = np.unpackbits(np.frombuffer(self._buf[byte0:byte1], dtype=np.uint8), bitorder="little")
            start = first_bit - byte0 * 8
            arr = bits[start : start + n_bits].reshape((rows, cols) if spp == 1 else (rows, cols, spp))
            return Decoded(arr, spec.photometric)
        if spec.photometric == "YBR_FULL_422" and spp == 3 and ba == 8:
            nbytes = rows * cols * 2
            raw = np.frombuffer(self._buf, dtype=np.uint8, count=nbytes, offset=index * nbytes)
            return Decoded(ybr_full_422_native_to_rgb(raw, rows, cols), "RGB")
        kind = "i" if spec.pixel_representation else "u"
        dtype = np.dtype(f"{'>' if self._big_endian else '<'}{kind}{ba // 8}")
        count = rows * cols * spp
        arr = np.frombuffer(self._buf, dtype=dtype, count=count, offset=index * count * dtype.itemsize)
        if spp == 1:
            arr = arr.reshape(rows, cols)
        elif spec.planar_configuration == 1:
            arr = arr.reshape(spp, rows, cols).transpose(1, 2, 0)
        else:
            arr = arr.reshape(rows, cols, spp)
        return Decoded(arr, spec.photometric)

    def _colour(self, decoded: Decoded) -> np.ndarray:
        arr = decoded.array
        pi = str(decoded.photometric)
        if self._palette is not None and arr.ndim == 2:
            return apply_palette(arr, self._palette)
        if arr.ndim == 2:  # a colour photometric but one sample: show as grey RGB
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        if pi in ("YBR_FULL", "YBR_FULL_422"):
            if arr.dtype != np.uint8:
                shift = max(0, self._spec.bits_stored - 8)
                arr = (arr.astype(np.uint32) >> shift).clip(0, 255).astype(np.uint8)
            # planes straight from the decoder's layout (RLE is planar)
            return ybr_full_array_to_rgb(arr)
        # RGB, or YBR_ICT/RCT whose component transform the J2K decoder undid
        out = to_uint8_colour(arr, self._spec.bits_stored)
        if out is arr and self._native:
            # a view of the file's bytes: copy, so a frame kept in a cache
            # does not pin the whole Pixel Data of a closed source
            out = out.copy()
        return out

    def _ensure_grey_ready(self, frame0: Decoded | None = None) -> None:
        grey = self._grey
        if grey is None or grey.ready:
            return
        with self._lock:
            if grey.ready:
                return
            try:
                if grey.needs_minmax:
                    arr = (frame0 or self._decode(0)).array
                    grey.prepare(arr)
                else:
                    grey.prepare(None)
            except DicomInputError:
                raise
            except Exception:  # noqa: BLE001 - a damaged VOI LUT in the header
                raise PixelDataError("the VOI LUT (grey-level table) in the header is damaged") from None

    # ------------------------------------------------- frame table (encaps)
    def _build_frame_table(self, ds) -> list[tuple[tuple[int, int], ...]]:
        codec = codec_name(self.transfer_syntax) if self.transfer_syntax in codecs.ENCAPSULATED else "compressed"
        items = _parse_items(self._buf, codec)
        if not items:
            raise PixelDataError("encapsulated pixel data has no Basic Offset Table item")
        bot_start, bot_len = items[0]
        fragments = items[1:]
        if not fragments:
            raise PixelDataError("encapsulated pixel data holds no fragments (no image data)")
        n = self.n_frames
        first_header = fragments[0][0] - 8
        rel_starts = [s - 8 - first_header for s, _ in fragments]

        offsets: list[int] | None = None
        eot = ds.get_item(EXTENDED_OFFSET_TABLE)
        if eot is not None and eot.value:
            offsets = np.frombuffer(bytes(eot.value), dtype="<u8").tolist()
        elif bot_len >= 4:
            offsets = list(struct.unpack(f"<{bot_len // 4}I", self._buf[bot_start : bot_start + bot_len // 4 * 4]))
        if offsets is not None and len(offsets) == n and offsets[0] == 0:
            index_of = {r: i for i, r in enumerate(rel_starts)}
            if all(o in index_of for o in offsets) and all(a < b for a, b in zip(offsets, offsets[1:])):
                bounds = [index_of[o] for o in offsets] + [len(fragments)]
                return [tuple(fragments[bounds[k] : bounds[k + 1]]) for k in range(n)]
        if len(fragments) == n:
            return [(f,) for f in fragments]
        if n == 1:
            return [tuple(fragments)]
        if len(fragments) < n:
            raise PixelDataError(
                f"Number of Frames is {n} but the pixel data holds only {len(fragments)} fragment(s)"
            )
        # more fragments than frames, no usable offset table: a frame starts
        # at each fragment that begins with its codec's start marker
        starts = [
            i
            for i, (s, ln) in enumerate(fragments)
            if codecs.has_start_marker(self.transfer_syntax, self._buf[s : s + min(ln, 12)])
        ]
        if len(starts) != n or starts[0] != 0:
            raise PixelDataError(f"cannot tell the {n} frames apart: {len(fragments)} fragments and no offset table")
        starts.append(len(fragments))
        return [tuple(fragments[starts[k] : starts[k + 1]]) for k in range(n)]

    def _frame_bytes(self, index: int) -> bytes | memoryview:
        frags = self._frames[index]
        if len(frags) == 1:
            s, ln = frags[0]
            return self._buf[s : s + ln]
        return b"".join(self._buf[s : s + ln] for s, ln in frags)

    def _check_encapsulated_frames(self) -> None:
        ts = self._decode_ts
        name = codec_name(ts)
        raw_size = self.rows * self.columns * self.samples_per_pixel
        for k, frags in enumerate(self._frames):
            s, ln = frags[0]
            if ln == 0:
                raise PixelDataError(f"frame {k + 1} of the {name} pixel data is empty")
            if not codecs.has_start_marker(ts, self._buf[s : s + min(ln, 12)]):
                total = sum(f[1] for f in frags)
                hint = ""
                if total in (raw_size, raw_size + 1, raw_size * 2, raw_size * 2 + 1):
                    hint = f" (its {total:,} bytes are the size of an uncompressed frame)"
                what = "fragment" if self.n_frames == 1 else f"frame {k + 1}"
                raise PixelDataError(f"transfer syntax says {name} but {what} has no {name} start marker{hint}")
        self._check_frame_size(0, self._frame_bytes(0))

    def _check_frame_cap(self) -> None:
        """No frame larger than MAX_FRAME_BYTES as stored is ever decoded."""
        stored_frame_bytes = self.rows * self.columns * self.samples_per_pixel * max(1, self._bits_allocated // 8)
        if stored_frame_bytes > MAX_FRAME_BYTES:
            raise PixelDataError(
                f"{self.columns:,} x {self.rows:,} image is too large to display "
                f"({_size_text(stored_frame_bytes)} per frame; at most {_size_text(MAX_FRAME_BYTES)})"
            )

    def _check_frame_size(self, index: int, data: bytes | memoryview) -> None:
        """The decode budget of one frame, checked before any decoder sees it.

        A decoder allocates from what the codestream's own frame header says
        (and some grow without bound when it says height 0), so the header
        must be there, agree with the DICOM header, and be backed by enough
        compressed bytes; otherwise no decoder (first choice or fallback) runs.
        """
        ts = self._decode_ts
        name = codec_name(ts)
        where = f"frame {index + 1} " if self.n_frames > 1 else ""
        decoded = self.rows * self.columns * self.samples_per_pixel * max(1, self._bits_allocated // 8)
        why = codecs.check_frame_budget(ts, len(data), decoded)
        if why is not None:
            raise DecodeError(f"{name} {where}is damaged: {why}")
        if ts == codecs.RLE:
            # PackBits expands 2 bytes to at most 128: more than 64x is impossible
            if decoded > 64 * len(data) + 64 * 15:
                raise DecodeError(
                    f"RLE data is too short: {len(data):,} bytes cannot hold a {self.columns:,} x {self.rows:,} frame"
                )
            return
        if ts in codecs.JPEG_XL:
            return
        hdr = codecs.codestream_header(ts, data)
        if hdr is None:
            what = "SIZ" if ts in codecs.JPEG_2000 else "start-of-frame"
            raise DecodeError(f"{name} data is damaged: {where}has no {what} header before its image data")
        if hdr.height == 0 and ts not in codecs.JPEG_2000:
            raise DecodeError(
                f"{name} data is damaged: {where}its frame header says height 0 "
                "(the height would come later in a DNL marker, which is not supported)"
            )
        size = (hdr.width, hdr.height)
        if size != (self.columns, self.rows):
            damaged = b"\xfe\xff\xdd\xe0" in bytes(data)
            extra = " (a DICOM sequence delimiter is embedded in it)" if damaged else ""
            if max(size) > 0xFFFF or min(size) < 1:
                # no DICOM image is this size (Rows/Columns are 16-bit): the size field itself is garbage
                said = "an impossible image size"
            else:
                said = f"{size[0]:,} x {size[1]:,}"
            raise DecodeError(
                f"{name} data is damaged{extra}: {where}its codestream says {said} "
                f"but the header says {self.columns:,} x {self.rows:,}"
            )
        if hdr.components not in (1, 3, 4) or (hdr.components == 1) != (self.samples_per_pixel == 1):
            raise DecodeError(
                f"{name} data is damaged: {where}its codestream has {hdr.components} component(s) "
                f"but the header says {self.samples_per_pixel} sample(s) per pixel"
            )
        if not 1 <= hdr.precision <= (32 if ts in codecs.JPEG_2000 else 16):
            raise DecodeError(f"{name} data is damaged: {where}its codestream says {hdr.precision} bits per sample")
        jpeg_family = ts not in codecs.JPEG_2000
        expected = (8 if hdr.precision <= 8 else 16) if jpeg_family else None
        if hdr.precision > self._bits_allocated or (expected is not None and self._bits_allocated != expected):
            raise DecodeError(f"{name} {where}holds {hdr.precision}-bit samples but the header says Bits Allocated "
                              f"{self._bits_allocated}: the header is wrong")

    def _check_native_length(self, present: int, bits_allocated: int, photometric: str) -> None:
        rows, cols, spp, n = self.rows, self.columns, self.samples_per_pixel, self.n_frames
        if bits_allocated == 1:
            needed = (rows * cols * spp * n + 7) // 8
        elif photometric == "YBR_FULL_422" and spp == 3 and bits_allocated == 8:
            if cols % 2:
                raise PixelDataError(f"YBR_FULL_422 image with an odd number of columns ({cols})")
            needed = rows * cols * 2 * n
        else:
            needed = rows * cols * spp * (bits_allocated // 8) * n
        if present < needed:
            frames = f" x {n} frames" if n > 1 else ""
            raise PixelDataError(
                f"{cols:,} x {rows:,}{frames} image but only {present:,} bytes of pixel data ({needed:,} needed)"
            )


class _GreyDisplay:
    """Stored value -> modality value -> VOI -> 0..255 (inverted for MONOCHROME1).

    For up to 16 bits stored this is one table over every stored value, so a
    frame costs a single ``np.take``.  The modality table is built at once;
    the display table on first use (it may need the first frame's min/max).
    """

    def __init__(self, ds, spec: FrameSpec, photometric: str):
        self.spec = spec
        self.invert = photometric == "MONOCHROME1"
        self.bits = spec.bits_stored
        self.signed = bool(spec.pixel_representation)
        self.tabled = self.bits <= 16 and spec.bits_allocated <= 16
        self.mask = (1 << self.bits) - 1
        slope = first_number(_safe_get(ds, "RescaleSlope"))
        intercept = first_number(_safe_get(ds, "RescaleIntercept"))
        self.slope = slope if slope else 1.0
        self.intercept = intercept if intercept is not None else 0.0
        self.modality_lut_ds = None
        seq = _safe_get(ds, "ModalityLUTSequence")
        if seq is not None and len(seq) and self.tabled:
            self.modality_lut_ds = ds
        seq = _safe_get(ds, "VOILUTSequence")
        self.voi_lut_ds = ds if (seq is not None and len(seq)) else None
        self.window: Window | None = None
        center = first_number(_safe_get(ds, "WindowCenter"))
        width = first_number(_safe_get(ds, "WindowWidth"))
        if center is not None and width is not None and width > 0:
            function = str(_safe_get(ds, "VOILUTFunction") or "LINEAR").strip().upper()
            if function not in ("LINEAR", "LINEAR_EXACT", "SIGMOID"):
                function = "LINEAR"
            self.window = Window(center, width, function)
        self.identity_modality = self.modality_lut_ds is None and self.slope == 1.0 and self.intercept == 0.0
        self.needs_minmax = (
            self.window is None
            and self.voi_lut_ds is None
            and not (self.identity_modality and self.bits == 8 and not self.signed)
        )
        self.ready = False
        self.default_window: tuple[float, float] | None = None
        self._display_table: np.ndarray | None = None
        self._window_direct: Window | None = None
        self._modality_table: np.ndarray | None = None
        self._mod_values: np.ndarray | None = None
        if self.tabled:
            values = stored_values(self.bits, self.signed)
            if self.modality_lut_ds is not None:
                from pydicom.pixels import apply_modality_lut

                mod = np.asarray(apply_modality_lut(values, self.modality_lut_ds), dtype=np.float64)
            else:
                mod = values * self.slope + self.intercept
            self._mod_values = mod
            if self.identity_modality:
                if self.bits <= 8 and not self.signed:
                    self._modality_table = values.astype(np.uint8)
                elif self.bits <= 16 and not self.signed:
                    self._modality_table = values.astype(np.uint16)
                else:
                    self._modality_table = values.astype(np.int16 if self.bits <= 16 else np.int32)
            elif np.all(mod == np.round(mod)) and np.abs(mod).max() < 2**31:
                self._modality_table = mod.astype(np.int32)
            else:
                self._modality_table = mod.astype(np.float32)

    def prepare(self, frame0: np.ndarray | None) -> None:
        """Build the display table (called once, under the FrameSource lock)."""
        window = self.window
        if window is None and self.voi_lut_ds is None:
            if frame0 is not None:
                m = self.modality(frame0)
                lo, hi = float(m.min()), float(m.max())
            else:  # 8-bit unsigned, no rescale, no VOI: shown as stored
                lo, hi = 0.0, 255.0
            window = Window((lo + hi + 1.0) / 2.0, max(hi - lo + 1.0, 2.0), "LINEAR")
        if window is not None:
            self.default_window = (float(window.center), float(window.width))
        elif self.voi_lut_ds is not None:
            self.default_window = _voi_lut_window(self.voi_lut_ds)
        if self.tabled:
            mod = self._mod_values
            assert mod is not None, "tabled LUTs have their values"
            if self.voi_lut_ds is not None:
                disp = _voi_lut_to_uint8(mod, self.voi_lut_ds)
            else:
                assert window is not None, "no VOI LUT: a window was chosen above"
                disp = window_to_uint8(mod, window)
            if self.invert:
                disp = 255 - disp
            self._display_table = np.ascontiguousarray(disp, dtype=np.uint8)
        else:
            self._window_direct = window
        self.ready = True

    def _index(self, arr: np.ndarray) -> np.ndarray:
        idx = arr.astype(np.uint8 if self.bits <= 8 else np.uint16, copy=False)
        if self.bits not in (8, 16):
            idx = idx & np.array(self.mask, dtype=idx.dtype)
        return idx

    def modality(self, arr: np.ndarray) -> np.ndarray:
        if self.tabled:
            return np.take(cast(np.ndarray, self._modality_table), self._index(arr))
        if self.identity_modality:
            return arr.astype(np.int64)
        return arr.astype(np.float64) * self.slope + self.intercept

    def display(self, arr: np.ndarray) -> np.ndarray:
        if self.tabled:
            return np.take(cast(np.ndarray, self._display_table), self._index(arr))  # set by prepare()
        mod = self.modality(arr)
        if self.voi_lut_ds is not None:
            disp = _voi_lut_to_uint8(mod, self.voi_lut_ds)
        else:
            disp = window_to_uint8(mod, cast(Window, self._window_direct))  # set by prepare() without a VOI LUT
        return np.ascontiguousarray(255 - disp if self.invert else disp)


# ------------------------------------------------------------- helpers
def _safe_get(ds, keyword: str):
    try:
        return ds.get(keyword, None)
    except Exception:  # noqa: BLE001 - an unparsable optional value is ignored
        return None


def _transfer_syntax(ds) -> str:
    meta = getattr(ds, "file_meta", None)
    ts = ""
    if meta is not None:
        try:
            ts = str(meta.get("TransferSyntaxUID", "") or "").strip().rstrip("\x00")
        except Exception:  # noqa: BLE001
            ts = ""
    if ts:
        return ts
    enc = getattr(ds, "original_encoding", None) or (None, None)
    implicit, little = enc
    if little is False:
        return codecs.EXPLICIT_BE
    if implicit:
        return codecs.IMPLICIT_LE
    return codecs.EXPLICIT_LE


def _looks_encapsulated(elem, value) -> bool:
    undefined = getattr(elem, "is_undefined_length", False) or getattr(elem, "length", None) == 0xFFFFFFFF
    return bool(undefined) and bytes(value[:4]) == b"\xfe\xff\x00\xe0"


def _parse_items(buf: memoryview, codec: str) -> list[tuple[int, int]]:
    """(start, length) of each item of encapsulated Pixel Data, checked
    against the bytes present (a fragment that runs past the end is a
    truncated file)."""
    items: list[tuple[int, int]] = []
    pos, n = 0, len(buf)
    while pos + 8 <= n:
        group, element, length = struct.unpack_from("<HHI", buf, pos)
        tag = (group << 16) | element
        if tag == SEQUENCE_DELIMITER:
            break
        if tag != ITEM:
            raise PixelDataError(
                "encapsulated pixel data is damaged: "
                f"({group:04X},{element:04X}) where item {len(items) + 1} should start"
            )
        if length == 0xFFFFFFFF:
            raise PixelDataError("encapsulated pixel data has a fragment of undefined length")
        start = pos + 8
        if start + length > n:
            what = "offset table" if not items else f"fragment {len(items)}"
            raise TruncatedFileError(f"{codec} data is cut short: {what} ends after {n - start:,} of {length:,} bytes")
        items.append((start, length))
        pos = start + length
    return items


def _int_attr(ds, tag: int, default: int | None = None) -> int:
    name = _ATTRIBUTE_NAMES.get(tag, f"({tag >> 16:04X},{tag & 0xFFFF:04X})")
    raw = ds.get_item(tag)
    if raw is None:
        if default is None:
            raise PixelDataError(f"{name} is missing")
        return default
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = ds[tag].value
    except Exception as exc:
        raise PixelDataError(f"{name} cannot be read (its value is damaged)") from exc
    if (
        value is None
        or value == ""
        or (hasattr(value, "__len__") and not isinstance(value, (str, bytes)) and len(value) == 0)
    ):
        if default is None:
            raise PixelDataError(f"{name} is empty")
        return default
    if not isinstance(value, (str, bytes, int, float)) and hasattr(value, "__len__"):
        values = list(value)
        if len(values) > 1:
            shown = "\\".join(str(v) for v in values[:4])
            raise PixelDataError(f"{name} has {len(values)} values ({shown}) where one number is expected")
        value = values[0]
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    text = str(value).strip().rstrip("\x00").strip()
    try:
        number = float(text)
    except ValueError:
        raise PixelDataError(f"{name} '{text[:20]}' is not a number") from None
    if not number.is_integer():
        raise PixelDataError(f"{name} '{text[:20]}' is not a whole number")
    return int(number)


def _str_attr(ds, tag: int) -> str:
    try:
        value = ds[tag].value if ds.get_item(tag) is not None else ""
    except Exception:  # noqa: BLE001
        return ""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value or "").strip().rstrip("\x00").strip().upper()


def _check_description(rows, cols, spp, ba, bs, pr, planar, n_frames, photometric) -> None:
    if rows < 1 or cols < 1:
        raise PixelDataError(f"image size {cols} x {rows} is not valid")
    if n_frames < 1:
        raise PixelDataError(f"Number of Frames is {n_frames}")
    if ba not in (1, 8, 16, 32):
        raise UnsupportedError(f"Bits Allocated {ba} is not supported (only 1, 8, 16, 32)")
    if not 1 <= bs <= ba:
        raise PixelDataError(f"Bits Stored {bs} does not fit Bits Allocated {ba}")
    if pr not in (0, 1):
        raise PixelDataError(f"Pixel Representation {pr} is not 0 or 1")
    if spp not in (1, 3):
        raise UnsupportedError(f"Samples per Pixel {spp} is not supported (only 1 or 3)")
    if planar not in (0, 1):
        raise PixelDataError(f"Planar Configuration {planar} is not 0 or 1")
    if photometric in _MONO or photometric == "PALETTE COLOR":
        if spp != 1:
            raise PixelDataError(f"{photometric} image with {spp} samples per pixel")
    elif photometric in _COLOUR_PHOTOMETRICS:
        if spp != 3:
            raise PixelDataError(f"{photometric} image with {spp} sample per pixel")
    else:
        raise UnsupportedError(f"Photometric Interpretation '{photometric}' is not supported")


def _size_text(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def _voi_lut_to_uint8(mod: np.ndarray, ds) -> np.ndarray:
    from pydicom.pixels import apply_voi_lut

    item = ds.VOILUTSequence[0]
    descriptor = item.LUTDescriptor
    bits = int(descriptor[2]) if len(descriptor) > 2 else 8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = np.asarray(apply_voi_lut(np.rint(mod).astype(np.int64), ds, index=0, prefer_lut=True), dtype=np.float64)
    top = float(2**bits - 1) if bits else float(out.max() or 1)
    return np.clip(np.rint(out * (255.0 / top)), 0, 255).astype(np.uint8)


def _voi_lut_window(ds) -> tuple[float, float] | None:
    try:
        descriptor = ds.VOILUTSequence[0].LUTDescriptor
        entries = int(descriptor[0]) or 65536
        first = float(descriptor[1])
        return (first + entries / 2.0, float(entries))
    except Exception:  # noqa: BLE001
        return None
