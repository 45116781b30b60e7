"""Every UID the project names, in one place: SOP classes, transfer syntaxes, and the codestream sniffer.

SOP classes decide what the viewer does with an instance.

Kinds (see :data:`mdtviewer.dicom.model.KINDS`): ``image`` (one frame), ``cine``
(more than one frame), ``sr`` (any Structured Report storage class),
``kos`` (Key Object Selection), ``pdf`` (encapsulated PDF, also any
instance whose MIME type says PDF), ``document`` (other encapsulated
documents: CDA, STL, OBJ, MTL), ``other`` (presentation states, waveforms,
raw data, DICOMDIR ...).  Any instance that carries Pixel Data is an image
whatever its class says (private classes, RT Dose ...): if it has pixels
the viewer should show them.  An image class whose header is known to have
no Pixel Data is ``other``: there is nothing to show, and the rest of the
header (a private sequence, say) is still usable.
"""

from __future__ import annotations

import struct

# ----------------------------------------------------------------- SOP classes
VERIFICATION = "1.2.840.10008.1.1"
#: the DICOMDIR's own class (a file-set's directory, not an instance)
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
#: SR storage classes (KOS included) share this root
SR_PREFIX = "1.2.840.10008.5.1.4.1.1.88."
KOS = "1.2.840.10008.5.1.4.1.1.88.59"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
ENHANCED_SR = "1.2.840.10008.5.1.4.1.1.88.22"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
ULTRASOUND_IMAGE = "1.2.840.10008.5.1.4.1.1.6.1"
ULTRASOUND_MULTIFRAME_IMAGE = "1.2.840.10008.5.1.4.1.1.3.1"
RETIRED_ULTRASOUND_IMAGE = "1.2.840.10008.5.1.4.1.1.6"
RETIRED_ULTRASOUND_MULTIFRAME_IMAGE = "1.2.840.10008.5.1.4.1.1.3"
ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
#: encapsulated CDA, STL, OBJ, MTL (and future .104.x documents)
DOCUMENT_PREFIX = "1.2.840.10008.5.1.4.1.1.104."

#: Storage classes that are images (pixel data expected).  Prefix match on
#: the class and anything below it (e.g. ``...1.1.7`` covers ``...1.1.7.1-4``).
IMAGE_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.1",      # CR, DX (.1.1.x), mammo, intra-oral
    "1.2.840.10008.5.1.4.1.1.2",      # CT, enhanced/legacy CT
    "1.2.840.10008.5.1.4.1.1.3",      # US multi-frame (retired .3 and .3.1)
    "1.2.840.10008.5.1.4.1.1.4",      # MR
    "1.2.840.10008.5.1.4.1.1.5",      # NM (retired)
    "1.2.840.10008.5.1.4.1.1.6",      # US (retired .6, .6.1, enhanced .6.2, photoacoustic .6.3)
    "1.2.840.10008.5.1.4.1.1.7",      # secondary capture (+ multi-frame .7.1-4)
    "1.2.840.10008.5.1.4.1.1.8",      # stand-alone overlay (retired)
    "1.2.840.10008.5.1.4.1.1.12",     # XA, XRF, 3D XA
    "1.2.840.10008.5.1.4.1.1.13",     # breast tomosynthesis, projection
    "1.2.840.10008.5.1.4.1.1.14",     # IVOCT
    "1.2.840.10008.5.1.4.1.1.20",     # NM
    "1.2.840.10008.5.1.4.1.1.30",     # parametric map
    "1.2.840.10008.5.1.4.1.1.77.1",   # VL endoscopic/microscopic/photographic/video, ophthalmic, WSI
    "1.2.840.10008.5.1.4.1.1.78",     # ophthalmic (some are measurements, those lack Pixel Data)
    "1.2.840.10008.5.1.4.1.1.128",    # PET, legacy PET
    "1.2.840.10008.5.1.4.1.1.130",    # enhanced PET
    "1.2.840.10008.5.1.4.1.1.481.1",  # RT image
    "1.2.840.10008.5.1.4.1.1.481.2",  # RT dose (a dose grid image)
)


def is_sr_class(sop_class_uid: str) -> bool:
    """Any SR storage class, KOS included."""
    return (sop_class_uid or "").strip("\x00 ").startswith(SR_PREFIX)


def is_report_class(sop_class_uid: str) -> bool:
    """SR/KOS or an encapsulated document (PDF, CDA ...): what the report panel lists."""
    uid = (sop_class_uid or "").strip("\x00 ")
    return uid.startswith(SR_PREFIX) or uid.startswith(DOCUMENT_PREFIX)


def _under(uid: str, root: str) -> bool:
    return uid == root or uid.startswith(root + ".")


def is_image_class(sop_class_uid: str) -> bool:
    return any(_under(sop_class_uid, c) for c in IMAGE_CLASSES)


def classify(sop_class_uid: str, number_of_frames: int, mime_type: str | None,
             *, has_pixel_data: bool | None = None) -> str:
    """Return the kind of an instance: image, cine, sr, kos, pdf, document or other.

    *has_pixel_data* (optional): whether the header has Pixel Data; when
    True the instance is an image/cine whatever its class; when None the
    SOP class decides.
    """
    uid = (sop_class_uid or "").strip("\x00 ")
    mime = (mime_type or "").strip().lower()
    if uid == KOS:
        return "kos"
    if uid.startswith(SR_PREFIX):
        return "sr"
    if uid == ENCAPSULATED_PDF or mime == "application/pdf":
        return "pdf"
    if uid.startswith(DOCUMENT_PREFIX):
        return "document"
    if has_pixel_data or (has_pixel_data is None and is_image_class(uid)):
        return "cine" if (number_of_frames or 0) > 1 else "image"
    if mime:
        return "document"
    return "other"


# ----------------------------------------------------------------- transfer syntaxes
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.57"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
JPEG_LS_NEAR = "1.2.840.10008.1.2.4.81"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
J2K = "1.2.840.10008.1.2.4.91"
J2K_MC_LOSSLESS = "1.2.840.10008.1.2.4.92"
J2K_MC = "1.2.840.10008.1.2.4.93"
HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
HTJ2K_RPCL = "1.2.840.10008.1.2.4.202"
HTJ2K = "1.2.840.10008.1.2.4.203"
RLE = "1.2.840.10008.1.2.5"
JPEGXL_LOSSLESS = "1.2.840.10008.1.2.4.110"
JPEGXL_RECOMPRESSION = "1.2.840.10008.1.2.4.111"
JPEGXL = "1.2.840.10008.1.2.4.112"
MPEG2_MPML = "1.2.840.10008.1.2.4.100"
MPEG2_MPHL = "1.2.840.10008.1.2.4.101"
MPEG4_HP41 = "1.2.840.10008.1.2.4.102"
MPEG4_HP41_BD = "1.2.840.10008.1.2.4.103"
HEVC_MAIN = "1.2.840.10008.1.2.4.107"

NATIVE = frozenset({IMPLICIT_LE, EXPLICIT_LE, DEFLATED_LE, EXPLICIT_BE})
JPEG_LOSSY = frozenset({JPEG_BASELINE, JPEG_EXTENDED})
JPEG_LOSSLESS_ALL = frozenset({JPEG_LOSSLESS, JPEG_LOSSLESS_SV1})
JPEG_LS = frozenset({JPEG_LS_LOSSLESS, JPEG_LS_NEAR})
JPEG_2000 = frozenset({J2K_LOSSLESS, J2K, J2K_MC_LOSSLESS, J2K_MC, HTJ2K_LOSSLESS, HTJ2K_RPCL, HTJ2K})
JPEG_XL = frozenset({JPEGXL_LOSSLESS, JPEGXL_RECOMPRESSION, JPEGXL})
ENCAPSULATED = JPEG_LOSSY | JPEG_LOSSLESS_ALL | JPEG_LS | JPEG_2000 | JPEG_XL | {RLE}
#: video syntaxes (MPEG-2/4, HEVC) share this root (JPEG XL's .110-.112 do too: see is_video)
VIDEO_PREFIX = "1.2.840.10008.1.2.4.10"

_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_JXL_CONTAINER = b"\x00\x00\x00\x0cJXL \r\n\x87\n"


def sniff_transfer_syntax(frame: bytes | bytearray | memoryview) -> str | None:
    """The transfer syntax an encapsulated frame's first bytes say it is in, or None.

    For files whose header names the wrong syntax (a native syntax around
    encapsulated Pixel Data, a stale second file-meta group): fo-dicom and
    DCMTK still show them, so we do too.  JPEG is told apart by its
    start-of-frame marker (SOF0 baseline, SOF1/2 extended, SOF3 lossless:
    first-order prediction, i.e. selection value 1, when the scan header
    says so; SOF55 JPEG-LS); a JPEG whose markers cannot be walked is taken
    as baseline.  JPEG 2000 (codestream or JP2), JPEG XL (codestream or
    container) and RLE (segment count 1-15, first offset 64) by signature.
    """
    head = bytes(frame[:12])
    if head[:4] == b"\xff\x4f\xff\x51" or head == _JP2_SIGNATURE:
        return J2K
    if head[:2] == b"\xff\x0a" or head == _JXL_CONTAINER:
        return JPEGXL
    if head[:2] == b"\xff\xd8":
        return _sniff_jpeg(bytes(frame[:65536]))
    if len(frame) >= 64:
        n_segments, first = struct.unpack_from("<LL", bytes(frame[:8]))
        if 1 <= n_segments <= 15 and first == 64:
            return RLE
    return None


def _sniff_jpeg(data: bytes) -> str:
    pos = 2
    process = None
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if marker == 0xC0:
            return JPEG_BASELINE
        if marker in (0xC1, 0xC2):
            return JPEG_EXTENDED
        if marker == 0xF7:
            return JPEG_LS_LOSSLESS
        if marker == 0xC3:
            process = JPEG_LOSSLESS
        elif marker == 0xDA and process == JPEG_LOSSLESS:
            # SOS: Ns, Ns x (Cs, Td/Ta), then Ss = the predictor (selection value)
            ns = data[pos + 4] if pos + 4 < len(data) else 0
            ss_at = pos + 5 + 2 * ns
            if ss_at < len(data) and data[ss_at] == 1:
                return JPEG_LOSSLESS_SV1
            return JPEG_LOSSLESS
        pos += 2 + length
    return process or JPEG_BASELINE


def is_video(ts: str) -> bool:
    return ts.startswith(VIDEO_PREFIX) and ts not in JPEG_XL
