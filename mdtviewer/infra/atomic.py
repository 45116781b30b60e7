"""Atomic file writes: write a temporary file beside the target, fsync, rename.

A crash or a full disk never leaves a half-written file under the final
name, and never touches an existing original until the new one is complete.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | os.PathLike, writer: Callable[[io.BufferedWriter], object]) -> Path:
    """Call ``writer(fileobj)`` on a temp file next to *path*, then rename it over *path*."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            writer(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_save_dataset(ds, path: str | os.PathLike) -> Path:
    """Save a pydicom Dataset as a DICOM file (with preamble and file meta) atomically."""

    def _w(fh):
        ds.save_as(fh, enforce_file_format=True)

    return atomic_write(path, _w)
