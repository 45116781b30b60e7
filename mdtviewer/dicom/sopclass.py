"""What the viewer does with an instance, decided from its SOP class.

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

SR_PREFIX = "1.2.840.10008.5.1.4.1.1.88."
KOS = "1.2.840.10008.5.1.4.1.1.88.59"
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
