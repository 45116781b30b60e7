"""Key images: a Key Object Selection document naming frames of a study, written, listed and sent.

The viewer's K marks the frame on screen.  :func:`write` builds a KOS
(highdicom ``KeyObjectSelectionDocument``, TID 2010) in the same study, in a
new series, titled "Of Interest" (DCM 113000) or "For Teaching" (DCM
113004), and writes it atomically beside our reviews
(``<store>/reviews/<study>/``, or a folder the caller names), where the
report panel lists it and the browser takes its key-image marks from it.
A frame of a multi-frame image is named by its Referenced Frame Number.
:func:`send` C-STOREs it to a PACS node, else keeps it in the outbox
(:func:`mdtviewer.workflows.reviews.send`); :func:`configured_node` is the
node reviews are sent to (remembered from the review editor).

Nothing here uses Qt: the UI calls :func:`write` and :func:`send` through
``ui.tasks``.
"""

from __future__ import annotations

import copy
import datetime as _dt
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset

from mdtviewer.dicom import values
from mdtviewer.infra.atomic import atomic_save_dataset
from mdtviewer.infra.errors import MdtError

#: document titles offered (DCM, CID 7010): key -> (code value, code meaning)
TITLES: dict[str, tuple[str, str]] = {
    "of-interest": ("113000", "Of Interest"),
    "for-teaching": ("113004", "For Teaching"),
}
MANUFACTURER = "mdtviewer"
SERIES_NUMBER = 998
SERIES_DESCRIPTION = "Key images"


class KeyImageError(MdtError, ValueError):
    """A key-image document cannot be made; ``reason`` says why in one line."""


@dataclass(frozen=True)
class KeyFrame:
    """One key image: the image's header and, for a multi-frame image, the 1-based frame."""

    header: Dataset
    frame: int | None = None


def _patient_source(ds: Dataset) -> Dataset:
    src = copy.copy(ds)
    for kw in ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID",
               "StudyDate", "StudyTime", "ReferringPhysicianName"):
        if kw not in src or src.get(kw) is None:
            setattr(src, kw, "")
    return src


def build(frames: Sequence[KeyFrame], title: str = "of-interest", *, observer: str = "",
          description: str = "") -> Dataset:
    """The KOS data set naming *frames* (all of one study); :class:`KeyImageError` when it cannot be made."""
    import highdicom as hd
    from highdicom.sr import CodedConcept

    if title not in TITLES:
        raise KeyImageError(f"key-image title must be one of {', '.join(TITLES)}, got {title!r}")
    if not frames:
        raise KeyImageError("no image to mark")
    headers: list[Dataset] = []
    for f in frames:
        ds = f.header
        if not all(values.text(ds, k) for k in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID",
                                                   "SeriesInstanceUID")):
            raise KeyImageError("the image has no SOP Class, SOP Instance, Study or Series UID: it cannot be named")
        if "Rows" not in ds or "Columns" not in ds:
            raise KeyImageError("only images can be marked as key images")
        if all(values.text(h, "SOPInstanceUID") != values.text(ds, "SOPInstanceUID") for h in headers):
            headers.append(ds)
    if len({values.text(h, "StudyInstanceUID") for h in headers}) != 1:
        raise KeyImageError("the key images belong to more than one study")
    code, meaning = TITLES[title]
    observer_ctx = None
    name = observer.strip()
    if name and "^" not in name:
        name += "^"  # one component, as DICOM writes a name given whole (PS3.5 6.2.1.2)
    if name:
        observer_ctx = hd.sr.ObserverContext(
            observer_type=hd.sr.CodedConcept("121006", "DCM", "Person"),
            observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(name=name))
    # one content item per frame: highdicom names each image once, so repeat the image for each frame
    refs = [f.header for f in frames]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*person name.*", category=UserWarning)
        try:
            content = hd.ko.KeyObjectSelection(
                document_title=CodedConcept(code, "DCM", meaning),
                referenced_objects=refs,
                observer_person_context=observer_ctx,
                description=description.strip() or None,
            )
            ko = hd.ko.KeyObjectSelectionDocument(
                evidence=[_patient_source(headers[0])] + headers[1:],
                content=content,
                series_instance_uid=hd.UID(),
                series_number=SERIES_NUMBER,
                sop_instance_uid=hd.UID(),
                instance_number=1,
                manufacturer=MANUFACTURER,
            )
        except (ValueError, TypeError, AttributeError) as exc:
            raise KeyImageError(f"cannot build the key-image document: {' '.join(str(exc).split())}") from None
    # frame numbers: the image items follow the observer and description items, in *frames* order
    items = [it for it in ko.ContentSequence if values.text(it, "ValueType") == "IMAGE"]
    for it, f in zip(items, frames):
        if f.frame is not None and "NumberOfFrames" in f.header:
            it.ReferencedSOPSequence[0].ReferencedFrameNumber = int(f.frame)
    ko.SeriesDescription = SERIES_DESCRIPTION
    ko.SpecificCharacterSet = "ISO_IR 192"
    return ko


def _file_name(ds: Dataset) -> str:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"KO_{stamp}_{ds.SOPInstanceUID}.dcm"


def write(frames: Sequence[KeyFrame], title: str = "of-interest", *, observer: str = "", description: str = "",
          folder: str | os.PathLike | None = None) -> Path:
    """Build the KOS and write it atomically (store ``reviews/<study>/`` or *folder*); audited."""
    from mdtviewer.workflows import reviews

    ds = build(frames, title, observer=observer, description=description)
    study = str(ds.StudyInstanceUID)
    target = Path(folder) if folder is not None else reviews.review_dir(study)
    path = atomic_save_dataset(ds, target / _file_name(ds))
    from mdtviewer.infra import audit

    audit.record("kos-written", study_uid=study,
                 detail={"sop_instance_uid": str(ds.SOPInstanceUID), "title": TITLES[title][1],
                         "images": len(frames)})
    return path


def configured_node() -> str | None:
    """The PACS node reviews are sent to (chosen in the review editor), or None to keep files local."""
    from mdtviewer.infra import settings

    try:
        node = (settings.get_section("reviewer") or {}).get("send_to")
    except (OSError, ValueError):
        return None
    return node if isinstance(node, str) and node else None


def send(path: str | os.PathLike, node_name: str) -> str:
    """C-STORE the KOS to *node_name*; kept in the outbox when that fails (one-line message)."""
    from mdtviewer.workflows import reviews

    return reviews.send(path, node_name)


def marked_uids(paths_: Iterable[str | os.PathLike]) -> set[str]:
    """The images the KOS files given flag as key images (rejection notes skipped)."""
    from mdtviewer.dicom.kos import key_image_uids

    return key_image_uids(paths_)
