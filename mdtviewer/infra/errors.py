"""Typed errors for bad input.  Every message is one line a vascular scientist
can act on, and none contains a patient identifier."""

from __future__ import annotations


class DicomInputError(Exception):
    """Base class: this file (or this frame) cannot be used, and why."""

    #: short machine-readable category, used in JSON output
    category = "error"

    def __init__(self, reason: str):
        reason = " ".join(str(reason).split())  # always one line
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class NotDicomError(DicomInputError):
    """The file is not DICOM at all (skipped quietly when scanning folders)."""

    category = "not-dicom"


class MalformedHeaderError(DicomInputError):
    """The header (file meta or data set) cannot be parsed."""

    category = "malformed"


class TruncatedFileError(DicomInputError):
    """The file ends before its content does (silently half-read by others)."""

    category = "truncated"


class PixelDataError(DicomInputError):
    """Pixel Data is absent, inconsistent with its description, or cut short."""

    category = "pixel-data"


class DecodeError(PixelDataError):
    """The compressed pixel stream could not be decoded."""

    category = "decode"


class UnsupportedError(DicomInputError):
    """Valid DICOM that this viewer cannot display (said plainly)."""

    category = "unsupported"
