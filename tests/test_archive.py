"""Encrypted media: the AES-256 7z archive opens with 7-Zip and the password, and not without it."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import warnings

import pydicom
import pytest

from mdtviewer.cli import main as cli_main
from mdtviewer.governance import archive

warnings.filterwarnings("ignore", category=UserWarning)

PASSWORD = "Tr1cky pass/word!"
FILES = ["us_siemens_s2000_rgb_explicit_le.dcm", "usmf_sonosite_jpeg_ybr422_30f.dcm", "us_philips_cx50_palette_rle.dcm"]
SEVEN_Z = shutil.which("7z")


@pytest.fixture(scope="module")
def encrypted_export(testdata, tmp_path_factory):
    dest = tmp_path_factory.mktemp("media")
    buf = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(buf):
        mp.setenv(archive.PASSWORD_ENV, PASSWORD)
        mp.setenv("MDTVIEWER_HOME", str(tmp_path_factory.mktemp("archome")))
        rc = cli_main(["export", *[str(testdata / f) for f in FILES], "--deidentify", "--mask-burned-in",
                       "--dest", str(dest), "--encrypt", "--archive-name", "teaching.7z"])
    out = buf.getvalue()
    assert rc == 0, out
    return dest / "teaching.7z", dest, out


def test_cli_writes_only_the_archive(encrypted_export):
    arc, dest, out = encrypted_export
    assert sorted(p.name for p in dest.iterdir()) == ["teaching.7z"]  # no plain copy left on the media
    assert "AES-256" in out and "exported 3 of 3" in out
    assert PASSWORD not in out
    data = arc.read_bytes()
    assert data[:6] == archive.SIGNATURE
    # names and contents hidden (encrypted headers).  Searched as strings of 6 bytes or more: a 4-byte one
    # ("DICM", ".dcm") turns up by chance in about one random megabyte in 4,000, so in one run in a few hundred
    for leak in (b"study-", b"DICM\x02\x00", b"ISO_IR", b"1.2.840.10008"):
        assert leak not in data, leak


def test_7z_opens_with_the_password_only(encrypted_export, tmp_path):
    assert SEVEN_Z, "7z (Debian p7zip-full) is installed by packaging/install-debian.sh --test"
    arc, _, _ = encrypted_export
    # without a password (no terminal to ask on): refused, nothing extracted, not even a listing
    r = subprocess.run([SEVEN_Z, "l", str(arc)], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and ".dcm" not in r.stdout
    r = subprocess.run([SEVEN_Z, "x", "-y", f"-o{tmp_path / 'none'}", str(arc)], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert not list((tmp_path / "none").rglob("*.dcm")) if (tmp_path / "none").exists() else True
    # wrong password
    r = subprocess.run([SEVEN_Z, "x", "-y", "-pnot-the-password", f"-o{tmp_path / 'wrong'}", str(arc)],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "Wrong password" in (r.stdout + r.stderr)
    assert not list((tmp_path / "wrong").rglob("*.dcm")) if (tmp_path / "wrong").exists() else True
    # the right one
    r = subprocess.run([SEVEN_Z, "x", "-y", f"-p{PASSWORD}", f"-o{tmp_path / 'ok'}", str(arc)],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    got = sorted((tmp_path / "ok").rglob("*.dcm"))
    assert len(got) == 3
    data = arc.read_bytes()
    for g in got:
        assert g.name.encode() not in data and g.name.encode("utf-16-le") not in data  # the names are encrypted
        ds = pydicom.dcmread(g)
        assert ds.PatientIdentityRemoved == "YES" and ds.BurnedInAnnotation == "NO"
    # 7-Zip's listing with the password shows the de-identified names
    r = subprocess.run([SEVEN_Z, "l", f"-p{PASSWORD}", str(arc)], stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.count(".dcm") == 3
    # and 7-Zip itself says every entry is AES-encrypted (7zAES: AES-256, key from SHA-256 of the password)
    r = subprocess.run([SEVEN_Z, "l", "-slt", f"-p{PASSWORD}", str(arc)], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=60)
    entries = [b for b in r.stdout.split("\n\n") if "Path = " in b and ".dcm" in b]
    assert len(entries) == 3 and all("Encrypted = +" in b and "7zAES" in b for b in entries), r.stdout


def test_open_archive_with_password(encrypted_export):
    arc, _, _ = encrypted_export
    folder = archive.open_archive(arc, PASSWORD)
    try:
        files = sorted(folder.rglob("*.dcm"))
        assert len(files) == 3
        studies = {pydicom.dcmread(f).StudyInstanceUID for f in files}
        assert len(studies) == 3
        try:
            from mdtviewer.dicom.index import scan
        except ImportError:  # index.py not built yet: the folder is still plain DICOM
            scan = None
        if scan is not None:
            idx = scan([folder])
            assert len(idx.studies()) == 3 and len(idx.instances()) == 3
    finally:
        archive.remove_extracted(folder)
    assert not folder.exists()


@pytest.mark.parametrize("pw", ["wrong password!", "", None])
def test_open_archive_wrong_or_missing_password(encrypted_export, pw):
    arc, _, _ = encrypted_export
    with pytest.raises(archive.WrongPasswordError) as ei:
        archive.open_archive(arc, pw)
    assert "password" in str(ei.value)
    assert PASSWORD not in str(ei.value)


def test_open_archive_not_7z(tmp_path):
    f = tmp_path / "x.7z"
    f.write_bytes(b"PK\x03\x04 not a 7z")
    with pytest.raises(archive.ArchiveError, match="not a 7z"):
        archive.open_archive(f, PASSWORD)


def test_short_password_refused(testdata, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(archive.PASSWORD_ENV, "short")
    rc = cli_main(["export", str(testdata / FILES[0]), "--deidentify", "--dest", str(tmp_path), "--encrypt"])
    assert rc == 2
    assert "at least" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_password_typed_twice_on_the_terminal(monkeypatch):
    monkeypatch.delenv(archive.PASSWORD_ENV, raising=False)
    answers = iter(["first password", "other password"])
    monkeypatch.setattr(archive.getpass, "getpass", lambda prompt="": next(answers))
    monkeypatch.setattr(archive.sys, "stdin", type("T", (), {"isatty": staticmethod(lambda: True)})())
    with pytest.raises(archive.ArchiveError, match="differ"):
        archive.ask_password()
    answers = iter(["same password", "same password"])
    assert archive.ask_password() == "same password"


def test_no_terminal_and_no_env_is_a_clear_error(monkeypatch):
    monkeypatch.delenv(archive.PASSWORD_ENV, raising=False)
    monkeypatch.setattr(archive.sys, "stdin", type("T", (), {"isatty": staticmethod(lambda: False)})())
    with pytest.raises(archive.ArchiveError, match=archive.PASSWORD_ENV):
        archive.ask_password()


def test_identifiable_export_only_encrypted(testdata, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(archive.PASSWORD_ENV, PASSWORD)
    rc = cli_main(["export", str(testdata / FILES[0]), "--identifiable", "--encrypt", "--dest", str(tmp_path),
                   "--archive-name", "transfer.7z"])
    out = capsys.readouterr().out
    assert rc == 0 and "IDENTIFIABLE" in out
    folder = archive.open_archive(tmp_path / "transfer.7z", PASSWORD)
    (f,) = list(folder.rglob("*.dcm"))
    assert f.read_bytes() == (testdata / FILES[0]).read_bytes()  # unchanged copy, only inside the archive
    archive.remove_extracted(folder)


@pytest.mark.parametrize("writer", ["7z", "py7zr"])
def test_both_writers_give_7zaes_archives_for_7zip(testdata, tmp_path, monkeypatch, writer):
    """write_archive uses the 7z command when present (password on its stdin, never in its argv)
    and py7zr otherwise: either archive is 7zAES with encrypted headers, opens in 7-Zip and in
    the viewer with a non-ASCII password, and refuses a wrong one."""
    assert SEVEN_Z, "7z (Debian p7zip-full) is installed by packaging/install-debian.sh"
    if writer == "py7zr":
        monkeypatch.setenv("MDTVIEWER_NO_7Z", "1")
    pw = "Sésame ouvre-toi 9"
    src = tmp_path / "src"
    (src / "study-1").mkdir(parents=True)
    for name in FILES[:2]:
        shutil.copyfile(testdata / name, src / "study-1" / name)
    seen: list[list[str]] = []
    real_run = subprocess.run

    def spy(cmd, *a, **kw):
        seen.append([str(c) for c in cmd])
        return real_run(cmd, *a, **kw)

    monkeypatch.setattr(subprocess, "run", spy)
    arc = archive.write_archive(src, tmp_path / "out" / "media.7z", pw)
    monkeypatch.setattr(subprocess, "run", real_run)
    assert arc.read_bytes()[:6] == archive.SIGNATURE
    assert [p.name for p in arc.parent.iterdir()] == ["media.7z"]  # no temporary left beside it
    if writer == "7z":
        assert seen and seen[0][0] == SEVEN_Z and "a" in seen[0]  # the command wrote it
    else:
        assert not seen
    assert all(pw not in " ".join(c) for c in seen)  # never on a command line (ps shows those)
    r = subprocess.run([SEVEN_Z, "l", "-slt", f"-p{pw}", str(arc)], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=60, env={**os.environ, "LC_ALL": "C.UTF-8"})
    assert r.returncode == 0, r.stdout + r.stderr
    blocks = [b for b in r.stdout.split("\n\n") if "Path = study-1/" in b]
    assert len(blocks) == 2 and all("7zAES" in b for b in blocks)
    r = subprocess.run([SEVEN_Z, "l", "-pnot-the-password", str(arc)], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and ".dcm" not in r.stdout
    assert archive.list_archive(arc, pw) == sorted(f"study-1/{n}" for n in FILES[:2])
    with pytest.raises(archive.WrongPasswordError):
        archive.list_archive(arc, "Sesame ouvre-toi 9")
