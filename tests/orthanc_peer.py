"""Orthanc as a real test PACS (never a mock).

Each peer is ``/usr/sbin/Orthanc CONFIG.json`` with a temporary configuration
on free 127.0.0.1 ports, storage and index in a temp folder, stopped by PID.
Orthanc binds 0.0.0.0 (1.10 has no bind option), so tests only ever send
traffic to 127.0.0.1 and ``RemoteAccessAllowed`` is off.

Fixtures
--------
``orthanc_peer_factory``  make extra peers (``factory(load=True, tls=..., modalities=...)``)
``orthanc``               session peer loaded with the US files of the corpus
``orthanc_tls``           session peer with DICOM TLS on (test CA made with openssl)
``tls_material``          the test CA, server and client certificates (and an untrusted CA)

SIGTERM takes Orthanc about 3.5 s, so read-only peers are SIGKILLed at
teardown (their storage is a temp folder thrown away anyway).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ORTHANC = "/usr/sbin/Orthanc"
HOST = "127.0.0.1"
OUR_AET = "MDTVIEWER"

#: corpus files Orthanc 1.10 (DCMTK 3.6.7) refuses although pydicom reads them
ORTHANC_REJECTS = {
    "us_philips_iu22_mono2_jpegls_lossless.dcm",
    "usmf_acuson_sequoia_jpeg_ybr422_65f_ftv.dcm",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def us_corpus_files(testdata: Path) -> list[Path]:
    """The ultrasound files of the corpus (single-frame and cine)."""
    return sorted(p for p in testdata.glob("*.dcm") if p.name.startswith(("us_", "usmf_")))


@dataclass
class TlsMaterial:
    """Paths of a test PKI made with openssl (CA, server and client pairs)."""

    folder: Path
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    #: a second CA that signed nothing the peers trust
    other_ca: Path
    other_client_cert: Path
    other_client_key: Path


def make_tls_material(folder: Path) -> TlsMaterial:
    folder.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True, timeout=60)

    def ca(name: str) -> None:
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name} test CA",
            "-keyout", f"{name}.key", "-out", f"{name}.crt",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def leaf(name: str, ca_name: str, cn: str) -> None:
        run(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={cn}",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
        )
        (folder / f"{name}.ext").write_text(
            "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
            "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n"
        )
        run(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            f"{ca_name}.crt",
            "-CAkey",
            f"{ca_name}.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            f"{name}.crt",
            "-extfile",
            f"{name}.ext",
        )

    ca("ca")
    ca("other")
    leaf("server", "ca", "127.0.0.1")
    leaf("client", "ca", OUR_AET)
    leaf("otherclient", "other", OUR_AET)
    f = folder
    return TlsMaterial(
        f,
        f / "ca.crt",
        f / "server.crt",
        f / "server.key",
        f / "client.crt",
        f / "client.key",
        f / "other.crt",
        f / "otherclient.crt",
        f / "otherclient.key",
    )


@dataclass
class OrthancPeer:
    """One Orthanc process with its own config, storage and ports."""

    workdir: Path
    aet: str = "ORTHANC"
    dicom_port: int = 0
    http_port: int = 0
    #: DicomModalities entries: {name: (aet, port)} (host is always 127.0.0.1)
    modalities: dict[str, tuple[str, int]] = field(default_factory=dict)
    tls: TlsMaterial | None = None
    proc: subprocess.Popen | None = None
    uploaded: list[Path] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    #: config keys overriding the defaults below
    extra_config: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.dicom_port = self.dicom_port or free_port()
        self.http_port = self.http_port or free_port()

    # -- process ---------------------------------------------------------
    def config(self) -> dict:
        cfg = {
            "Name": "mdtviewer-test",
            "DicomAet": self.aet,
            "DicomPort": self.dicom_port,
            "HttpPort": self.http_port,
            "StorageDirectory": str(self.workdir / "storage"),
            "IndexDirectory": str(self.workdir / "index"),
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomCheckCalledAet": True,
            "UnknownSopClassAccepted": True,
            "SynchronousCMove": True,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowGet": False,
            "DicomAlwaysAllowMove": False,
            "DicomCheckModalityHost": False,
            "StorageCompression": False,
            "Plugins": [],
            "HttpServerEnabled": True,
            "DicomScuTimeout": 10,
            "DicomModalities": {
                name: {
                    "AET": aet,
                    "Host": HOST,
                    "Port": port,
                    "AllowMove": True,
                    "AllowGet": True,
                    "AllowEcho": True,
                    "AllowFind": True,
                    "AllowStore": True,
                    "UseDicomTls": self.tls is not None,
                }
                for name, (aet, port) in self.modalities.items()
            },
        }
        if self.tls:
            cfg.update(
                {
                    "DicomTlsEnabled": True,
                    "DicomTlsCertificate": str(self.tls.server_cert),
                    "DicomTlsPrivateKey": str(self.tls.server_key),
                    "DicomTlsTrustedCertificates": str(self.tls.ca),
                    "DicomTlsRemoteCertificateRequired": True,
                }
            )
        cfg.update(self.extra_config)
        return cfg

    def start(self, timeout: float = 15.0) -> OrthancPeer:
        cfg = self.workdir / "orthanc.json"
        cfg.write_text(json.dumps(self.config(), indent=1))
        with open(self.workdir / "orthanc.log", "ab") as log:
            self.proc = subprocess.Popen(self.command(cfg), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Orthanc exited with {self.proc.returncode}; see {self.workdir}")
            try:
                self.http("/system")
                if self._dicom_listening():
                    return self
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.05)
        self.stop(kill=True)
        raise RuntimeError("Orthanc did not answer in time")

    def command(self, cfg_path: Path) -> list[str]:
        """The command line starting this peer (a chroot peer runs its own Orthanc)."""
        return [ORTHANC, "--logdir=" + str(self.workdir), str(cfg_path)]

    def _dicom_listening(self) -> bool:
        try:
            with socket.create_connection((HOST, self.dicom_port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self, kill: bool = False, grace: float = 5.0) -> None:
        """Stop by PID: SIGKILL at once when *kill*, else SIGTERM then SIGKILL after *grace* s."""
        p = self.proc
        if p is None or p.poll() is not None:
            self.proc = None
            return
        p.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=10)
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 12) -> str:
        """The last lines Orthanc wrote (its stdout/stderr and its own log files)."""
        out = []
        for f in sorted(self.workdir.glob("*.log")) + sorted(self.workdir.glob("Orthanc*")):
            try:
                text = f.read_text(errors="replace").splitlines()
            except OSError:
                continue
            out += [f"[{f.name}] {line}" for line in text[-lines:]]
        return "\n".join(out[-lines:]) or "(no log)"

    def ensure_alive(self) -> str | None:
        """Restart a peer whose process died (same ports and storage); returns why it died, or None."""
        if self.running or self.proc is None:
            return None
        why = f"Orthanc died (exit {self.proc.returncode}): {self.log_tail()}"
        self.proc = None
        self.start()
        return why

    # -- REST (127.0.0.1 only) --------------------------------------------
    def http(
        self, path: str, data: bytes | None = None, method: str | None = None, content_type: str = "application/dicom"
    ):
        req = urllib.request.Request(f"http://{HOST}:{self.http_port}{path}", data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", content_type)
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
        return json.loads(body) if body[:1] in (b"{", b"[") else body

    def upload(self, path: Path) -> bool:
        """POST /instances; False (reason kept in ``rejected``) when Orthanc refuses the file."""
        try:
            self.http("/instances", data=Path(path).read_bytes())
        except urllib.error.HTTPError as exc:
            self.rejected[Path(path).name] = f"HTTP {exc.code}"
            return False
        self.uploaded.append(Path(path))
        return True

    def upload_all(self, paths) -> None:
        for p in paths:
            self.upload(p)

    def instance_count(self) -> int:
        return int(self.http("/statistics")["CountInstances"])

    def sop_instance_uids(self) -> set[str]:
        out = set()
        for iid in self.http("/instances"):
            tags = self.http(f"/instances/{iid}/simplified-tags")
            out.add(tags["SOPInstanceUID"])
        return out

    def studies(self) -> list[dict]:
        return [self.http(f"/studies/{sid}") for sid in self.http("/studies")]


def _new_peer(tmp_path_factory, **kw) -> OrthancPeer:
    if not Path(ORTHANC).exists():
        pytest.fail(f"{ORTHANC} not found: install the Debian package 'orthanc'")
    return OrthancPeer(tmp_path_factory.mktemp("orthanc"), **kw)


@pytest.fixture(scope="session")
def move_port() -> int:
    """The port our C-MOVE storage SCP listens on (known to the session peers)."""
    return free_port()


@pytest.fixture
def orthanc_peer_factory(tmp_path_factory, testdata, move_port):
    """Make and start extra peers; all are killed at teardown.

    ``factory(load=False, modalities=None, tls=None, start=True, **orthanc_config)``:
    *load* uploads the US corpus; *modalities* defaults to our AE at ``move_port``.
    """
    peers: list[OrthancPeer] = []

    def make(
        load: bool = False, modalities=None, tls: TlsMaterial | None = None, start: bool = True, **config
    ) -> OrthancPeer:
        mods = {"mdtviewer": (OUR_AET, move_port)} if modalities is None else modalities
        peer = _new_peer(tmp_path_factory, modalities=mods, tls=tls, extra_config=config)
        peers.append(peer)
        if start:
            peer.start()
            if load:
                peer.upload_all(us_corpus_files(testdata))
        return peer

    yield make
    for p in peers:
        p.stop(kill=True)


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory, testdata, move_port):
    """A running Orthanc loaded with the corpus US files (read-only for tests)."""
    peer = _new_peer(tmp_path_factory, modalities={"mdtviewer": (OUR_AET, move_port)})
    peer.start()
    peer.upload_all(us_corpus_files(testdata))
    yield peer
    peer.stop(kill=True)


@pytest.fixture(autouse=True)
def _session_orthanc_alive(request):
    """Every test using the session Orthanc gets a live one, and a test it dies in fails.

    Before the test a dead peer is restarted (same ports, same storage), so one
    crash never fails the tests after it in a cascade; after the test, a peer that
    died during it fails that test with "Orthanc died: <its last log lines>".
    """
    names = [n for n in ("orthanc", "orthanc_tls") if n in request.fixturenames]
    if not names:
        yield
        return
    peers = [request.getfixturevalue(n) for n in names]
    for p in peers:
        why = p.ensure_alive()
        if why:
            import warnings

            warnings.warn(f"restarted the session Orthanc before {request.node.nodeid}: {why}", stacklevel=1)
    yield
    for p in peers:
        why = p.ensure_alive()
        if why:
            pytest.fail(why, pytrace=False)


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory) -> TlsMaterial:
    if not shutil.which("openssl"):
        pytest.fail("openssl not found")
    return make_tls_material(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def orthanc_tls(tmp_path_factory, testdata, tls_material, move_port):
    """Orthanc with DICOM TLS (server cert from the test CA, client certs required)."""
    peer = _new_peer(tmp_path_factory, modalities={"mdtviewer": (OUR_AET, move_port)}, tls=tls_material)
    peer.start()
    # upload through REST (TLS only guards the DICOM port)
    peer.upload(testdata / "us_philips_cx50_palette_rle.dcm")
    yield peer
    peer.stop(kill=True)


@dataclass
class DcmqrPeer:
    """DCMTK's own Query/Retrieve SCP (``dcmqrscp``): a second real PACS, used
    where Orthanc 1.10 differs from the standard (it answers an unknown C-MOVE
    destination with 0xC000 where the standard and DCMTK say 0xA801)."""

    workdir: Path
    aet: str = "DCMQR"
    dicom_port: int = 0
    proc: subprocess.Popen | None = None

    def start(self, files: list[Path], known: dict[str, tuple[str, int]], options: tuple[str, ...] = ()) -> DcmqrPeer:
        db = self.workdir / "db"
        db.mkdir(parents=True, exist_ok=True)
        self.dicom_port = self.dicom_port or free_port()
        hosts = "\n".join(f"{name} = ({aet}, {HOST}, {port})" for name, (aet, port) in known.items())
        (self.workdir / "dcmqrscp.cfg").write_text(
            f"NetworkTCPPort = {self.dicom_port}\nMaxPDUSize = 16384\nMaxAssociations = 16\n"
            f"HostTable BEGIN\n{hosts}\nHostTable END\nVendorTable BEGIN\nVendorTable END\n"
            f"AETable BEGIN\n{self.aet} {db} RW (200, 1024mb) ANY\nAETable END\n"
        )
        for i, f in enumerate(files):
            dst = db / f"in{i:03d}.dcm"
            shutil.copyfile(f, dst)
            subprocess.run(["dcmqridx", str(db), str(dst)], check=True, capture_output=True, timeout=60)
        with open(self.workdir / "dcmqrscp.log", "ab") as log:
            self.proc = subprocess.Popen(
                ["dcmqrscp", *options, "-c", str(self.workdir / "dcmqrscp.cfg")],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((HOST, self.dicom_port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("dcmqrscp did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def dcmqrscp_peer(tmp_path_factory):
    """Factory: ``start(files, known={name: (aet, port)})`` runs dcmqrscp; killed at teardown."""
    if not shutil.which("dcmqrscp"):
        pytest.fail("dcmqrscp not found: install the Debian package 'dcmtk'")
    peer = DcmqrPeer(tmp_path_factory.mktemp("dcmqr"))
    yield peer
    peer.stop()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


#: small corpus files used to build synthetic studies (different syntaxes)
SYNTH_SOURCES = (
    "us_philips_cx50_palette_rle.dcm",
    "us_atl_hdi5000_jpeg_baseline_ybr422.dcm",
    "us_ge_logiq700_j2k_lossy_ybr_ict.dcm",
    "usmf_philips_cx50_palette_rle_2f_no_frametime.dcm",
)


def make_synthetic_study(
    testdata: Path,
    folder: Path,
    n: int,
    *,
    sop_class: str | None = None,
    modality: str | None = None,
    series: int = 2,
    patient_id: str = "MDT-SYNTH",
    patient_name: str = "SYNTH^TEST",
    study_date: str = "20250102",
) -> list[Path]:
    """Write *n* instances of one new study (fresh UIDs) made from corpus files.

    *sop_class* replaces the SOP Class UID (e.g. one nobody knows), *modality*
    the modality.  Returns the written paths (in *folder*, never the repo).
    """
    import pydicom
    from pydicom.uid import generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    study = generate_uid()
    series_uids = [generate_uid() for _ in range(series)]
    out = []
    for i in range(n):
        ds = pydicom.dcmread(testdata / SYNTH_SOURCES[i % len(SYNTH_SOURCES)])
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series_uids[i % series]
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = i + 1
        ds.PatientID = patient_id
        ds.PatientName = patient_name
        ds.StudyDate = study_date
        ds.StudyDescription = "synthetic test study"
        ds.AccessionNumber = "SYN" + study[-6:]
        if sop_class:
            ds.SOPClassUID = sop_class
            ds.file_meta.MediaStorageSOPClassUID = sop_class
        if modality:
            ds.Modality = modality
        p = folder / f"synth_{study[-8:]}_{i:03d}.dcm"
        ds.save_as(p, enforce_file_format=True)
        out.append(p)
    return out
