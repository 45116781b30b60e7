"""Orthanc with its DICOMweb plugin (Debian package ``orthanc-dicomweb``) as a real DICOMweb peer.

HTTP basic authentication is on (user ``mdt``, password :data:`PASSWORD`); the password reaches the
code under test only through the environment variable :data:`PASSWORD_ENV`, as a site would set it.
QIDO-RS/WADO-RS/STOW-RS are at ``peer.dicomweb_url`` (``http://127.0.0.1:PORT/dicom-web``).

Fixtures
--------
``dicomweb``          session peer loaded with the corpus US files (read-only for tests)
``dicomweb_factory``  extra peers (``factory(load=False)``), killed at teardown
"""

from __future__ import annotations

import base64
import urllib.request
from pathlib import Path

import pytest

from orthanc_peer import HOST, ORTHANC, OrthancPeer, us_corpus_files

PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
USER = "mdt"
PASSWORD = "s3cret-for-tests"
PASSWORD_ENV = "MDTVIEWER_TEST_DICOMWEB_PASSWORD"


class DicomWebPeer(OrthancPeer):
    """An :class:`OrthancPeer` with the DICOMweb plugin and HTTP basic authentication."""

    @property
    def dicomweb_url(self) -> str:
        return f"http://{HOST}:{self.http_port}/dicom-web"

    def config(self) -> dict:
        cfg = super().config()
        cfg.update(
            {
                "Plugins": [PLUGIN],
                "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
                "AuthenticationEnabled": True,
                "RegisteredUsers": {USER: PASSWORD},
            }
        )
        cfg.update(self.extra_config)
        return cfg

    def http(self, path, data=None, method=None, content_type="application/dicom"):
        import json

        req = urllib.request.Request(f"http://{HOST}:{self.http_port}{path}", data=data, method=method)
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode())
        if data is not None:
            req.add_header("Content-Type", content_type)
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
        return json.loads(body) if body[:1] in (b"{", b"[") else body


def _new(tmp_path_factory, **kw) -> DicomWebPeer:
    for need, pkg in ((ORTHANC, "orthanc"), (PLUGIN, "orthanc-dicomweb")):
        if not Path(need).exists():
            pytest.fail(f"{need} not found: install the Debian package '{pkg}' (packaging/install-debian.sh --test)")
    return DicomWebPeer(tmp_path_factory.mktemp("dicomweb"), **kw)


@pytest.fixture
def dicomweb_env(monkeypatch):
    """The password in the environment, as the node names it."""
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    return PASSWORD_ENV


@pytest.fixture(scope="session")
def dicomweb(tmp_path_factory, testdata):
    peer = _new(tmp_path_factory)
    peer.start()
    peer.upload_all(us_corpus_files(testdata))
    yield peer
    peer.stop(kill=True)


@pytest.fixture
def dicomweb_factory(tmp_path_factory, testdata):
    peers: list[DicomWebPeer] = []

    def make(load: bool = False, **config) -> DicomWebPeer:
        peer = _new(tmp_path_factory, extra_config=config)
        peers.append(peer)
        peer.start()
        if load:
            peer.upload_all(us_corpus_files(testdata))
        return peer

    yield make
    for p in peers:
        p.stop(kill=True)
