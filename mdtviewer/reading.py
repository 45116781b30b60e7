"""Robust header/data-set reading (first version; hardened below in later commits).

Every failure becomes a typed :mod:`mdtviewer.errors` exception with a one-line reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError

from mdtviewer.errors import MalformedHeaderError, NotDicomError, TruncatedFileError


def read_dataset(path: str | os.PathLike, *, stop_before_pixels: bool = False) -> pydicom.Dataset:
    """Read *path* as DICOM; raise a typed error with a one-line reason."""
    path = Path(path)
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=stop_before_pixels, force=True)
    except InvalidDicomError as exc:
        raise NotDicomError(f"not a DICOM file: {exc}") from None
    except EOFError as exc:
        raise TruncatedFileError(f"file ends early: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any parser failure is a malformed header
        raise MalformedHeaderError(f"cannot parse header: {type(exc).__name__}: {exc}") from None
    return ds
