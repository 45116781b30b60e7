"""A real Orthanc 1.12 (Debian 13's ``orthanc`` package) for the PACS tests.

Debian 12 ships Orthanc 1.10; Debian 13 and Ubuntu 24.04 ship 1.12, which
behaves differently on C-MOVE (it picks one accepted presentation context and
transcodes when the instance is stored in another syntax; without its GDCM
plugin it cannot transcode JPEG 2000).  So the tests run against both.

How: ``debootstrap --variant=minbase trixie`` into a cache folder outside the
repo (``/var/cache/mdtviewer-tests/trixie``, or ``$MDTVIEWER_TEST_CACHE/trixie``),
``apt-get install orthanc`` inside it, once: later sessions reuse it (a marker
file holds the installed version).  Each peer then runs as
``chroot ROOT /usr/sbin/Orthanc /srv/mdt-XXXX/orthanc.json`` on free 127.0.0.1
ports (``chroot`` execs Orthanc, so the PID we hold is Orthanc's and it is
stopped by that PID), with its configuration, storage and log in a folder
inside the root that is removed at teardown.

Needs root (debootstrap, chroot) and, the first time only, the network.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from orthanc_peer import OUR_AET, OrthancPeer, us_corpus_files

CACHE = Path(os.environ.get("MDTVIEWER_TEST_CACHE", "/var/cache/mdtviewer-tests"))
SUITE = "trixie"
MIRROR = "http://deb.debian.org/debian"
READY = ".mdtviewer-orthanc-ready"


def trixie_root(log=print) -> Path:
    """The cached Debian 13 root with Orthanc installed; built on first use (about a minute)."""
    root = CACHE / SUITE
    if (root / READY).is_file():
        return root
    if os.geteuid() != 0:
        raise RuntimeError("building the Debian 13 root for Orthanc 1.12 needs root (debootstrap, chroot)")
    if not shutil.which("debootstrap"):
        raise RuntimeError("debootstrap not found: run 'sh packaging/install-debian.sh --test'")
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{SUITE}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time; the others wait and reuse
        if (root / READY).is_file():
            return root
        tmp = CACHE / f"{SUITE}.building"
        if tmp.exists():
            _umount_all(tmp)
            shutil.rmtree(tmp)
        t0 = time.monotonic()
        _run(["debootstrap", "--variant=minbase", SUITE, str(tmp), MIRROR], 900)
        shutil.copyfile("/etc/resolv.conf", tmp / "etc/resolv.conf")
        if Path("/etc/ssl/certs/ca-certificates.crt").is_file():
            (tmp / "etc/ssl/certs").mkdir(parents=True, exist_ok=True)
            shutil.copyfile("/etc/ssl/certs/ca-certificates.crt", tmp / "etc/ssl/certs/ca-certificates.crt")
        # never start services inside the root
        (tmp / "usr/sbin/policy-rc.d").write_text("#!/bin/sh\nexit 101\n")
        (tmp / "usr/sbin/policy-rc.d").chmod(0o755)
        (tmp / "proc").mkdir(exist_ok=True)
        _run(["mount", "-t", "proc", "proc", str(tmp / "proc")], 30)
        try:
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            _run(["chroot", str(tmp), "apt-get", "update", "-qq"], 600, env)
            _run(
                ["chroot", str(tmp), "apt-get", "install", "-y", "-qq", "--no-install-recommends", "orthanc"], 900, env
            )
        finally:
            _umount_all(tmp)
        version = (
            subprocess.run(
                ["chroot", str(tmp), "/usr/sbin/Orthanc", "--version"], capture_output=True, text=True, timeout=60
            )
            .stdout.split("\n")[0]
            .strip()
        )
        (tmp / READY).write_text(version + "\n")
        os.replace(tmp, root)
        log(f"built {root} ({version}) in {time.monotonic() - t0:.0f} s")
    return root


def orthanc_version(root: Path) -> str:
    return (root / READY).read_text().strip()


def _run(cmd: list[str], timeout: float, env=None) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-8:])
        raise RuntimeError(f"{' '.join(cmd[:3])} ... failed ({r.returncode}):\n{tail}")


def _umount_all(root: Path) -> None:
    """Unmount whatever is mounted under *root* (deepest first)."""
    try:
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return
    inside = sorted((m for m in mounts if m == str(root) or m.startswith(str(root) + "/")), key=len, reverse=True)
    for m in inside:
        subprocess.run(["umount", "-l", m], capture_output=True, timeout=30)


class ChrootOrthancPeer(OrthancPeer):
    """An :class:`OrthancPeer` running the Orthanc of a chroot (paths in the config are the chroot's)."""

    def __init__(self, root: Path, **kw):
        self.root = root
        inner = Path("/srv") / f"mdt-{uuid.uuid4().hex[:12]}"
        self.inner = inner
        super().__init__(workdir=root / inner.relative_to("/"), **kw)

    def inner_path(self, p: Path) -> str:
        return "/" + str(Path(p).relative_to(self.root))

    def config(self) -> dict:
        cfg = super().config()
        for key in ("StorageDirectory", "IndexDirectory"):
            cfg[key] = self.inner_path(Path(cfg[key]))
        return cfg

    def command(self, cfg_path: Path) -> list[str]:
        return ["chroot", str(self.root), "/usr/sbin/Orthanc", "--logdir=" + str(self.inner), self.inner_path(cfg_path)]

    def remove(self) -> None:
        self.stop(kill=True)
        shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def trixie():
    """The Debian 13 root (built once, cached outside the repo)."""
    try:
        return trixie_root()
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"cannot build the Orthanc 1.12 chroot: {exc}")


@pytest.fixture
def orthanc112_factory(trixie, testdata, move_port):
    """``factory(load=False, modalities=None, **orthanc_config)``: Orthanc 1.12 peers, killed at teardown."""
    peers: list[ChrootOrthancPeer] = []

    def make(load: bool = False, modalities=None, start: bool = True, **config) -> ChrootOrthancPeer:
        mods = {"mdtviewer": (OUR_AET, move_port)} if modalities is None else modalities
        peer = ChrootOrthancPeer(trixie, modalities=mods, extra_config=config)
        peers.append(peer)
        if start:
            peer.start()
            if load:
                peer.upload_all(us_corpus_files(testdata))
        return peer

    yield make
    for p in peers:
        p.remove()


if __name__ == "__main__":  # build (or show) the cached root: python -m tests.orthanc112
    r = trixie_root()
    print(r, orthanc_version(r))
