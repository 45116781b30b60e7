"""Encrypted media: AES-256 7z archives (py7zr), readable with 7-Zip.

Portable media must be encrypted.  We write 7z with the 7zAES filter
(AES-256, key from the password by SHA-256 stretching) *and* encrypted
headers, so without the password not even the file names can be listed.
``7z x -pPASSWORD archive.7z`` (7-Zip, p7zip-full) extracts it; so does
:func:`open_archive`, which the viewer uses to open such a disc again.

Writing: the ``7z`` command when it is installed (Debian ``p7zip-full``,
an app dependency in packaging/install-debian.sh), else py7zr.  Measured
side by side on the masked corpus export (92 MB, 19 files; benchmarks/
encrypt.py, interleaved, 2 loaded cores): py7zr with LZMA2 preset 1 spends
its time in single-threaded ``lzma`` plus about 0.4 s per key in py7zr's
pure-Python SHA-256 stretching (done twice: data and headers), 1.0-1.5x the
``7z`` command (median 1.26x; this module through 7z: 0.87x, i.e. the same); faster py7zr
filters (LZMA2 hc3/nice_len 8, Deflate) were no faster or bigger, and Copy+AES leaves the
archive 8x larger.  ``7z`` runs
LZMA2 on both cores and stretches the key in C.  The password never goes
on 7z's command line (visible in ``ps``): 7z is started in a new session
without a controlling terminal and reads it from its stdin (``-p`` with no
value).  If 7z is missing, refuses, or the password has a line break, py7zr
writes the archive instead (same filters, same result for 7-Zip).

The password is never stored or logged: callers pass it in, we hand it to
7z's stdin or py7zr and drop it.  :func:`ask_password` reads it twice from the terminal
without echo; scripts and tests may set ``MDTVIEWER_ARCHIVE_PASSWORD``
instead (anyone who can read the environment of the process can read it:
use it only for automation on a trusted machine).
"""

from __future__ import annotations

import getpass
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

import py7zr

from mdtviewer.infra.atomic import atomic_write
from mdtviewer.infra.errors import MdtError

log = logging.getLogger(__name__)

PASSWORD_ENV = "MDTVIEWER_ARCHIVE_PASSWORD"
#: LZMA2 at preset 1 then AES-256: masked native pixels (mostly black) shrink ~8x in about
#: a tenth of the time of py7zr's default preset (benchmarks/export.py); 7-Zip reads both
FILTERS = [{"id": py7zr.FILTER_LZMA2, "preset": 1}, {"id": py7zr.FILTER_CRYPTO_AES256_SHA256}]
MIN_PASSWORD_LEN = 8


class ArchiveError(MdtError):
    """The archive could not be written or opened (one line, no password in it)."""


class WrongPasswordError(ArchiveError):
    """No password, or the wrong one, for an encrypted archive."""


def check_password(password: str) -> None:
    if not password or len(password) < MIN_PASSWORD_LEN:
        raise ArchiveError(f"the archive password must have at least {MIN_PASSWORD_LEN} characters")


def ask_password(*, confirm: bool = True, env: bool = True) -> str:
    """The archive password: from ``MDTVIEWER_ARCHIVE_PASSWORD`` or typed twice on the TTY."""
    if env:
        pw = os.environ.get(PASSWORD_ENV)
        if pw:
            check_password(pw)
            return pw
    if not sys.stdin or not sys.stdin.isatty():
        raise ArchiveError(f"no terminal to ask for the archive password (set {PASSWORD_ENV} for scripts)")
    pw = getpass.getpass("Archive password: ")
    check_password(pw)
    if confirm:
        again = getpass.getpass("Repeat the password: ")
        if again != pw:
            raise ArchiveError("the two passwords differ")
    return pw


def write_archive(src_dir: str | os.PathLike, archive_path: str | os.PathLike, password: str) -> Path:
    """Pack everything under *src_dir* into an AES-256 7z with encrypted headers.

    Written atomically: a temporary name beside *archive_path*, fsynced and
    renamed when complete.  The ``7z`` command when it is there (see the
    module docstring), else py7zr.
    """
    check_password(password)
    src = Path(src_dir)
    exe = seven_zip()
    if exe and not any(c in password for c in "\r\n\x00"):
        try:
            return _write_with_7z(exe, src, Path(archive_path), password)
        except _SevenZipFailed as exc:
            log.info("7z could not write the archive (%s); writing it with py7zr", exc)
    return write_archive_py7zr(src, archive_path, password)


def write_archive_py7zr(src_dir: str | os.PathLike, archive_path: str | os.PathLike, password: str) -> Path:
    """The py7zr writer (also the fallback of :func:`write_archive`)."""
    check_password(password)
    src = Path(src_dir)

    def pack(fh) -> None:
        with py7zr.SevenZipFile(fh, "w", password=password, header_encryption=True, filters=FILTERS) as z:
            for p in sorted(src.rglob("*")):
                if p.is_file():
                    z.write(p, p.relative_to(src).as_posix())

    return atomic_write(archive_path, pack)


class _SevenZipFailed(MdtError):
    """The 7z command could not write the archive (py7zr then writes it): the reason says why."""


def seven_zip() -> str | None:
    """Path of the ``7z`` command, or None (``MDTVIEWER_NO_7Z=1`` forces py7zr)."""
    if os.environ.get("MDTVIEWER_NO_7Z"):
        return None
    return shutil.which("7z")


def _write_with_7z(exe: str, src: Path, archive_path: Path, password: str) -> Path:
    """``7z a`` with LZMA2 level 1 + 7zAES and encrypted headers; password on stdin only."""
    import subprocess

    files = sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file())
    if any(c in f for f in files for c in "\n\r*?"):
        raise _SevenZipFailed("a file name 7z's list file would misread")  # wildcards, line breaks
    archive_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix="." + archive_path.name + ".", suffix=".part", dir=archive_path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # 7z must create it (it refuses to add to an empty non-archive)
    try:
        with tempfile.TemporaryDirectory(prefix="mdtviewer-7z-") as work:
            listing = Path(work) / "files.txt"
            listing.write_text("".join(f + "\n" for f in files), encoding="utf-8")
            env = {k: v for k, v in os.environ.items() if not k.startswith("LC_")}
            env.update(LC_ALL="C.UTF-8", LANG="C.UTF-8")
            cmd = [
                exe,
                "a",
                "-t7z",
                "-m0=LZMA2",
                "-mx=1",
                "-mhe=on",
                "-p",
                "-y",
                "-bso0",
                "-bsp0",
                "-scsUTF-8",
                str(tmp.resolve()),
                "@" + str(listing),
            ]
            try:
                r = subprocess.run(
                    cmd,
                    cwd=src,
                    input=(password + "\n" + password + "\n").encode("utf-8"),
                    capture_output=True,
                    start_new_session=True,  # no controlling terminal: 7z reads the password from stdin
                    env=env,
                    timeout=3600,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise _SevenZipFailed(type(exc).__name__) from None
            if r.returncode != 0 or not tmp.is_file():
                raise _SevenZipFailed(f"exit status {r.returncode}")
        with open(tmp, "rb") as fh:
            if fh.read(6) != SIGNATURE:
                raise _SevenZipFailed("not a 7z archive")
            os.fsync(fh.fileno())
        os.replace(tmp, archive_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dfd = os.open(archive_path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return archive_path


def list_archive(archive_path: str | os.PathLike, password: str) -> list[str]:
    _check_signature(Path(archive_path))
    try:
        with py7zr.SevenZipFile(Path(archive_path), "r", password=password or None) as z:
            return sorted(z.getnames())
    except Exception as exc:  # noqa: BLE001 - a boundary around py7zr: a wrong key breaks its parser anyhow (_translate)
        raise _translate(exc) from None


def open_archive(archive_path: str | os.PathLike, password: str, dest: str | os.PathLike | None = None) -> Path:
    """Extract an encrypted archive to a new temporary folder (or *dest*) and return it.

    Raises :class:`WrongPasswordError` for a missing or wrong password, and
    :class:`ArchiveError` for a damaged or non-7z file.  The caller indexes the
    returned folder and removes it (:func:`remove_extracted`) when done.
    """
    path = Path(archive_path)
    if not path.is_file():
        raise ArchiveError(f"no such archive: {path.name}")
    _check_signature(path)
    out = Path(dest) if dest is not None else Path(tempfile.mkdtemp(prefix="mdtviewer-archive-"))
    out.mkdir(parents=True, exist_ok=True)
    try:
        with py7zr.SevenZipFile(path, "r", password=password or None) as z:
            z.extractall(path=out)
            # py7zr checks CRCs while extracting; a wrong key on unencrypted headers shows here
    except Exception as exc:  # noqa: BLE001 - a boundary around py7zr: a wrong key breaks its parser anyhow (_translate)
        if dest is None:
            shutil.rmtree(out, ignore_errors=True)
        raise _translate(exc) from None
    for p in out.rglob("*"):  # refuse anything that escaped the folder (defence in depth)
        if not p.resolve().is_relative_to(out.resolve()):
            shutil.rmtree(out, ignore_errors=True)
            raise ArchiveError("archive member points outside the extraction folder")
    return out


def remove_extracted(folder: str | os.PathLike) -> None:
    shutil.rmtree(folder, ignore_errors=True)


SIGNATURE = b"7z\xbc\xaf\x27\x1c"


def _translate(exc: Exception) -> ArchiveError:
    """py7zr's many failure types -> our two errors.

    With encrypted headers a wrong key surfaces as whatever the header parser
    trips over (TypeError, CRC error, LZMA data error ...): the signature was
    checked first, so any failure to read the archive is reported as a wrong
    password or a damaged archive.
    """
    if isinstance(exc, ArchiveError):
        return exc
    log.debug("archive not readable", exc_info=(type(exc), exc, exc.__traceback__))
    if isinstance(exc, py7zr.exceptions.PasswordRequired):
        return WrongPasswordError("the archive is encrypted: a password is needed")
    return WrongPasswordError(f"wrong password, or the archive is damaged ({type(exc).__name__})")


def _check_signature(path: Path) -> None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(6)
    except OSError as exc:
        raise ArchiveError(f"cannot read the archive: {exc.strerror}") from None
    if head != SIGNATURE:
        raise ArchiveError("not a 7z archive")
