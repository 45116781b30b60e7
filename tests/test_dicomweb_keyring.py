"""A DICOMweb node whose password lives in the OS keyring (issue 14.4), against the real Orthanc
DICOMweb fixture with HTTP basic authentication.

The keyring is a real backend of the ``keyring`` library that runs without a desktop session:
``keyrings.alt.file.PlaintextKeyring``, chosen the way a site would choose one, with
``PYTHON_KEYRING_BACKEND``, its file in a temporary ``XDG_DATA_HOME``.  (The Secret Service,
KWallet, the macOS Keychain and the Windows Credential Locker need a desktop session or another
system; the code under test only calls ``keyring.get_password``, the same for every backend.)
The secret is put there by ``keyring.set_password`` in a process of its own, as the ``keyring``
command would; every ``mdtviewer`` command runs in a fresh process, with logging at DEBUG to the
log file and the console, and then the password must appear nowhere: not in the settings, the
logs, the audit trail, stdout or stderr.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys

import pytest

from dicomweb_peer import PASSWORD, USER, dicomweb  # noqa: F401
from mdtviewer.pacs.nodes import KEYRING_SERVICE

pytestmark = pytest.mark.orthanc

GE_STUDY = "1.3.6.1.4.1.5962.1.2.13.20040826185059.5457"
BACKEND = "keyrings.alt.file.PlaintextKeyring"

# the mdtviewer CLI with the application's logging on at DEBUG (file and console), as a debugging user runs it
DRIVER = (
    "import logging, sys\n"
    "from mdtviewer.infra import logsafe\n"
    "logsafe.setup_logging(logging.DEBUG, console=True)\n"
    "from mdtviewer.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


@pytest.fixture
def keyring_env(tmp_path, mdt_home):
    # test extras (pyproject.toml): missing, the test fails rather than skips
    import keyring  # noqa: F401
    import keyrings.alt.file  # noqa: F401

    env = {k: v for k, v in os.environ.items() if not k.startswith("MDTVIEWER_TEST_DICOMWEB")}
    env.update(
        PYTHON_KEYRING_BACKEND=BACKEND,
        XDG_DATA_HOME=str(tmp_path / "xdg-data"),  # the keyring's file, outside the viewer's folders
        MDTVIEWER_HOME=str(mdt_home),
        PYTHONIOENCODING="utf-8",
    )
    return env


def keyring_set(env: dict, user: str, secret: str) -> None:
    code = (
        "import sys, keyring\n"
        "assert type(keyring.get_keyring()).__name__ == 'PlaintextKeyring', keyring.get_keyring()\n"
        "keyring.set_password(sys.argv[1], sys.argv[2], sys.argv[3])\n"
    )
    subprocess.run([sys.executable, "-c", code, KEYRING_SERVICE, user, secret], env=env, check=True, timeout=60)


def mdtviewer(env: dict, *argv) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", DRIVER, *map(str, argv)], env=env, capture_output=True, text=True, timeout=120
    )


def forms(secret: str) -> list[str]:
    """The secret as it could leak: itself, base64 (as this backend keeps it), and the HTTP basic
    credentials it makes."""
    return [secret, base64.b64encode(secret.encode()).decode(), base64.b64encode(f"{USER}:{secret}".encode()).decode()]


def everything_written(home) -> str:
    return "".join(p.read_text("utf-8", "replace") for p in home.rglob("*") if p.is_file() and p.suffix != ".dcm")


def test_password_from_the_os_keyring_reaches_the_server_and_nothing_else(dicomweb, keyring_env, mdt_home, tmp_path):
    env = keyring_env
    keyring_set(env, USER, PASSWORD)
    out = []

    r = mdtviewer(env, "pacs", "node", "add", "web", "--dicomweb", dicomweb.dicomweb_url, "--user", USER, "--keyring")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"saved node 'web': DICOMweb {dicomweb.dicomweb_url} (secret from the OS keyring)"
    out += [r.stdout, r.stderr]

    r = mdtviewer(env, "pacs", "echo", "--node", "web")
    assert r.returncode == 0 and r.stdout.startswith(f"QIDO-RS query to {dicomweb.dicomweb_url} succeeded"), r.stderr
    out += [r.stdout, r.stderr]

    r = mdtviewer(env, "pacs", "find", "--node", "web", "--patient-id", "13US1", "--modality", "ANY", "--json")
    assert r.returncode == 0 and GE_STUDY in r.stdout, r.stderr
    out += [r.stdout, r.stderr]

    dest = tmp_path / "store"
    r = mdtviewer(env, "pacs", "get", GE_STUDY, "--node", "web", "--dest", dest)
    assert (r.returncode, r.stdout) == (0, "retrieved 3 of 3 instances\n"), r.stderr
    out += [r.stdout, r.stderr]
    assert len(list(dest.rglob("*.dcm"))) == 3

    # the node is saved with the keyring's name for the secret, not the secret
    written = everything_written(mdt_home)
    assert "use_keyring" in written and (mdt_home / "logs" / "mdtviewer.log").is_file()
    for secret in forms(PASSWORD):
        assert secret not in written, "the password reached the settings, logs or audit trail"
        assert not any(secret in text for text in out), "the password reached stdout or stderr"
    # what the keyring backend itself keeps lies outside the viewer's folders
    assert not any(p.is_relative_to(mdt_home) for p in (tmp_path / "xdg-data").rglob("*"))


def test_wrong_or_missing_keyring_secret_is_one_clear_line(dicomweb, keyring_env, mdt_home):
    env = keyring_env
    r = mdtviewer(env, "pacs", "node", "add", "web", "--dicomweb", dicomweb.dicomweb_url, "--user", USER, "--keyring")
    assert r.returncode == 0, r.stderr
    # nothing in the keyring for this user yet
    r = mdtviewer(env, "pacs", "find", "--node", "web", "--modality", "ANY")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip().splitlines()[-1] == (
        f"mdtviewer pacs: no secret in the OS keyring for service '{KEYRING_SERVICE}', user '{USER}'"
    )
    # a wrong one: the server's 401, said plainly, and the wrong secret is not echoed either
    wrong = "not-the-password-42"
    keyring_set(env, USER, wrong)
    r = mdtviewer(env, "pacs", "find", "--node", "web", "--modality", "ANY")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1] == (
        f"mdtviewer pacs: the DICOMweb server at {dicomweb.dicomweb_url} refused our credentials (HTTP 401): "
        "check the user and password"
    )
    written = everything_written(mdt_home)
    for secret in forms(wrong):
        assert secret not in r.stdout + r.stderr and secret not in written
