"""DICOMweb (QIDO-RS, WADO-RS, STOW-RS) against a real Orthanc with its DICOMweb plugin and HTTP
basic authentication, from the command line (issue 14.4/14.5), and the faults: a wrong password,
a server that is down, a WADO-RS multipart cut off or failing half-way (a small proxy in front of
Orthanc), a STOW-RS refusing one instance: each one clear line, nothing lost."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pydicom
import pytest

from dicomweb_peer import PASSWORD, PASSWORD_ENV, USER, dicomweb, dicomweb_env, dicomweb_factory  # noqa: F401
from mdtviewer.cli.pacs import main
from mdtviewer.pacs import outbox
from mdtviewer.pacs.localstore import LocalStore
from orthanc_peer import HOST, ORTHANC_REJECTS, free_port, tls_material  # noqa: F401

pytestmark = pytest.mark.orthanc

#: the corpus's one study of three instances in three transfer syntaxes (GE LOGIQ 700)
GE_STUDY = "1.3.6.1.4.1.5962.1.2.13.20040826185059.5457"
GE_FILES = (
    "us_ge_logiq700_j2k_lossless_ybr_rct.dcm",
    "us_ge_logiq700_j2k_lossy_ybr_ict.dcm",
    "us_ge_logiq700_rgb_explicit_le.dcm",
)


def web(url: str) -> list[str]:
    return ["--dicomweb", url, "--user", USER, "--password-env", PASSWORD_ENV]


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# ----------------------------------------------------------------------------- find, get, store
def test_echo_over_dicomweb_is_a_qido_query(dicomweb, dicomweb_env, capsys):
    rc, out, err = run(capsys, "echo", *web(dicomweb.dicomweb_url))
    assert (rc, err) == (0, "")
    assert out.startswith(f"QIDO-RS query to {dicomweb.dicomweb_url} succeeded")


def test_find_gives_what_c_find_gives(dicomweb, dicomweb_env, capsys):
    rc, out, err = run(capsys, "find", *web(dicomweb.dicomweb_url), "--json", "--modality", "ANY")
    assert (rc, err) == (0, ""), err
    rows = [json.loads(line) for line in out.splitlines()]
    rc2, out2, err2 = run(
        capsys,
        "find",
        "--host",
        HOST,
        "--port",
        dicomweb.dicom_port,
        "--called-aet",
        dicomweb.aet,
        "--json",
        "--modality",
        "ANY",
    )
    assert rc2 == 0, err2
    dimse = [json.loads(line) for line in out2.splitlines()]
    assert len(rows) == len(dimse) == len(dicomweb.studies())
    assert sorted(rows, key=lambda r: r["study_instance_uid"]) == sorted(dimse, key=lambda r: r["study_instance_uid"])
    assert all(r["patient_id"] is None for r in rows)  # no identifier unless asked
    # the filters: a date range and a study UID narrow it as C-FIND does
    rc, out, _ = run(capsys, "find", *web(dicomweb.dicomweb_url), "--json", "--date", "20040826")
    assert rc == 0 and {json.loads(x)["study_instance_uid"] for x in out.splitlines()} == {GE_STUDY}
    # the cap: more than --max-results matches is a clear failure
    rc, out, err = run(capsys, "find", *web(dicomweb.dicomweb_url), "--modality", "ANY", "--max-results", "2")
    assert rc == 1 and one_line(err) == "mdtviewer pacs: more than 2 studies match: narrow the query"


def test_get_keeps_the_stored_transfer_syntax_and_resumes(dicomweb, dicomweb_env, capsys, tmp_path, testdata):
    dest = tmp_path / "store"
    rc, out, err = run(capsys, "get", GE_STUDY, *web(dicomweb.dicomweb_url), "--dest", dest)
    assert (rc, err, out) == (0, "", "retrieved 3 of 3 instances\n")
    with LocalStore(dest) as store:
        got = {pydicom.dcmread(p).SOPInstanceUID: p for p in store.study_paths(GE_STUDY)}
    for name in GE_FILES:
        orig = pydicom.dcmread(testdata / name)
        mine = pydicom.dcmread(got[orig.SOPInstanceUID])
        # as stored: the same transfer syntax and the same pixel data bytes (no transcoding)
        assert mine.file_meta.TransferSyntaxUID == orig.file_meta.TransferSyntaxUID
        assert mine.PixelData == orig.PixelData
    rc, out, err = run(capsys, "get", GE_STUDY, *web(dicomweb.dicomweb_url), "--dest", dest)
    assert rc == 0 and out == "retrieved 3 of 3 instances\n"


def test_store_then_find_it_and_saved_node_keeps_no_secret(dicomweb_factory, dicomweb_env, capsys, testdata, mdt_home):
    peer = dicomweb_factory()
    rc, out, err = run(
        capsys,
        "node",
        "add",
        "web",
        "--dicomweb",
        peer.dicomweb_url + "/",
        "--user",
        USER,
        "--password-env",
        PASSWORD_ENV,
    )
    assert rc == 0, err
    assert out.strip() == f"saved node 'web': DICOMweb {peer.dicomweb_url} (basic, password from ${PASSWORD_ENV})"
    settings_text = "".join(p.read_text() for p in mdt_home.rglob("*.json"))
    assert PASSWORD not in settings_text and PASSWORD_ENV in settings_text
    files = [testdata / n for n in GE_FILES]
    rc, out, err = run(capsys, "store", *files, "--node", "web")
    assert (rc, err, out) == (0, "", "stored 3 of 3 files\n")
    assert peer.instance_count() == 3
    rc, out, err = run(capsys, "find", "--node", "web", "--json")
    assert rc == 0 and [json.loads(x)["study_instance_uid"] for x in out.splitlines()] == [GE_STUDY]
    rc, out, _ = run(capsys, "node", "list")
    assert f"web              DICOMweb         {peer.dicomweb_url}" in out
    # the audit trail has the store and the query, with no secret
    audit = "".join(p.read_text() for p in (mdt_home / "logs").rglob("*") if p.is_file())
    assert "STOW-RS" in audit and "QIDO-RS" in audit and PASSWORD not in audit


def test_cli_usage_errors(capsys):
    rc, _, err = run(capsys, "echo", "--dicomweb", "http://127.0.0.1:1/dicom-web", "--host", HOST)
    assert rc == 2 and "--dicomweb stands instead of --host" in err
    rc, _, err = run(capsys, "echo", "--dicomweb", "ftp://x/y")
    assert rc == 2 and "must be http:// or https://" in err
    rc, _, err = run(capsys, "move", GE_STUDY, "--dicomweb", "http://127.0.0.1:1/dicom-web")
    assert rc == 2 and "a DICOMweb node retrieves with 'get'" in err


# ----------------------------------------------------------------------------- faults
def test_wrong_password_is_one_clear_line(dicomweb, monkeypatch, capsys):
    monkeypatch.setenv(PASSWORD_ENV, "not-the-password")
    for cmd in (["echo"], ["find"], ["get", GE_STUDY]):
        rc, _out, err = run(capsys, *cmd, *web(dicomweb.dicomweb_url))
        assert rc == 1, cmd
        line = one_line(err)
        assert "refused our credentials (HTTP 401)" in line and "not-the-password" not in line
    monkeypatch.delenv(PASSWORD_ENV)
    rc, _out, err = run(capsys, "echo", *web(dicomweb.dicomweb_url))
    assert rc == 1 and one_line(err) == (
        f"mdtviewer pacs: the environment variable {PASSWORD_ENV} (password for node 'command-line') is not set"
    )


def test_server_down_and_the_outbox_keeps_the_file(dicomweb_env, capsys, testdata, mdt_home):
    url = f"http://{HOST}:{free_port()}/dicom-web"
    rc, _out, err = run(capsys, "echo", "--dicomweb", url)
    assert rc == 1 and one_line(err) == f"mdtviewer pacs: DICOMweb server not reachable at {url} (connection refused)"
    run(capsys, "node", "add", "down", "--dicomweb", url, "--user", USER, "--password-env", PASSWORD_ENV)
    f = testdata / GE_FILES[0]
    rc, out, err = run(capsys, "store", f, "--node", "down", "--queue")
    assert rc == 1 and out == "stored 0 of 1 files\n"
    assert f"{f.name}: DICOMweb server not reachable at {url} (connection refused)" in err
    (item,) = outbox.pending("down")
    assert item.path.read_bytes() == f.read_bytes()


class _Proxy:
    """A local HTTP server in front of Orthanc that breaks WADO-RS answers on purpose.

    ``cut_after``: the first WADO-RS answer stops after this many body bytes (the connection is
    closed, as a server that fails while streaming does); ``fail_from``: WADO-RS requests from this
    one on (0-based) are answered HTTP 500.  QIDO-RS passes through untouched.
    """

    def __init__(
        self,
        upstream_port: int,
        cut_after: int | None = None,
        fail_from: int | None = None,
        tls=None,
        bearer: str | None = None,
        delay: float = 0.0,
        pause_after: int | None = None,
        pause: float = 0.0,
    ):
        self.upstream_port, self.cut_after, self.fail_from = upstream_port, cut_after, fail_from
        #: a bearer token this front requires (it then speaks to Orthanc with the basic credentials)
        self.bearer = bearer
        self.wado = 0
        #: each WADO-RS answer waits this long (a distant server), so overlapping requests show
        self.delay = delay
        #: the first WADO-RS answer stops for *pause* seconds once *pause_after* body bytes are sent
        self.pause_after, self.pause = pause_after, pause
        #: WADO-RS requests under way now, the most at once, and the Accept-Encoding each one sent
        self.inflight = self.max_inflight = 0
        self.encodings: list[str | None] = []
        lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *a):
                pass

            def do_GET(self):
                if proxy.bearer is not None and self.headers.get("Authorization") != f"Bearer {proxy.bearer}":
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                is_wado = "multipart/related" in self.headers.get("Accept", "")
                with lock:
                    n = proxy.wado
                    if is_wado:
                        proxy.wado += 1
                        proxy.encodings.append(self.headers.get("Accept-Encoding"))
                        proxy.inflight += 1
                        proxy.max_inflight = max(proxy.max_inflight, proxy.inflight)
                try:
                    self._answer(is_wado, n)
                finally:
                    if is_wado:
                        with lock:
                            proxy.inflight -= 1

            def _answer(self, is_wado, n):
                if is_wado and proxy.delay:
                    time.sleep(proxy.delay)
                if is_wado and proxy.fail_from is not None and n >= proxy.fail_from:
                    body = b"Internal Server Error"
                    self.send_response(500)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                up = http.client.HTTPConnection(HOST, proxy.upstream_port, timeout=30)
                fwd = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "accept")}
                if proxy.bearer is not None:
                    import base64

                    fwd["Authorization"] = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                up.request("GET", self.path, headers=fwd)
                r = up.getresponse()
                self.send_response(r.status)
                self.send_header("Content-Type", r.getheader("Content-Type", ""))
                self.end_headers()
                limit = proxy.cut_after if (is_wado and n == 0 and proxy.cut_after is not None) else None
                sent = 0
                hold = proxy.pause_after if (is_wado and n == 0) else None
                while chunk := r.read(65536):
                    if limit is not None and sent + len(chunk) >= limit:
                        self.wfile.write(chunk[: limit - sent])
                        break
                    if hold is not None and sent + len(chunk) >= hold:
                        self.wfile.write(chunk[: hold - sent])
                        self.wfile.flush()
                        time.sleep(proxy.pause)
                        chunk, sent, hold = chunk[hold - sent :], hold, None
                    self.wfile.write(chunk)
                    sent += len(chunk)
                up.close()

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a handshake our client refused is the point of a test, not noise on its stderr

        self.server = Server((HOST, 0), Handler)
        scheme = "http"
        if tls is not None:  # a TLS front (certificate, key) to the plain-HTTP Orthanc
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://{HOST}:{self.server.server_address[1]}/dicom-web"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_wado_cut_or_failing_half_way_keeps_what_arrived_and_resumes(dicomweb, dicomweb_env, capsys, tmp_path):
    dest = tmp_path / "store"
    # 1. the multipart answer stops inside the second instance: the first is kept, the cut one is not
    proxy = _Proxy(dicomweb.http_port, cut_after=160_000)
    try:
        rc, out, err = run(capsys, "get", GE_STUDY, *web(proxy.url), "--dest", dest)
    finally:
        proxy.close()
    assert rc == 1 and out == "retrieved 1 of 3 instances\n"
    assert one_line(err) == (
        "mdtviewer pacs: retrieved 1 of 3 instances; 2 did not arrive: the connection to the DICOMweb server was "
        "lost during the WADO-RS retrieve, after 1 instance(s) arrived. Retry to fetch only the missing ones"
    )
    files = [p for p in dest.rglob("*") if p.is_file() and p.suffix == ".dcm"]
    assert len(files) == 1 and not list(dest.rglob("*.part"))
    pydicom.dcmread(files[0]).pixel_array  # noqa: B018 - the kept instance is whole
    # 2. the server fails (HTTP 500) half-way through the rest: one more arrives, then a clear line
    proxy = _Proxy(dicomweb.http_port, fail_from=1)
    try:
        rc, out, err = run(capsys, "get", GE_STUDY, *web(proxy.url), "--dest", dest)
        asked = proxy.wado
    finally:
        proxy.close()
    assert asked == 2  # the two missing instances, one request each: nothing fetched twice
    assert rc == 1 and out == "retrieved 2 of 3 instances\n"
    assert one_line(err) == (
        f"mdtviewer pacs: retrieved 2 of 3 instances (1 fetched now, 1 already in the local store); 1 did not "
        f"arrive: the DICOMweb server at {proxy.url} failed (HTTP 500). Retry to fetch only the missing ones"
    )
    # 3. straight to the server: only the last one is fetched
    rc, out, err = run(capsys, "get", GE_STUDY, *web(dicomweb.dicomweb_url), "--dest", dest)
    assert (rc, out, err) == (0, "retrieved 3 of 3 instances\n", "")
    with LocalStore(dest) as store:
        assert len(store.study_paths(GE_STUDY)) == 3


def test_resumed_retrieve_asks_over_several_connections_uncompressed(dicomweb, dicomweb_env, tmp_path):
    """A resumed retrieve asks for each missing series or instance: one round trip each, so they go
    over up to CONNECTIONS keep-alive connections at once; each asks for the answer uncompressed
    (Orthanc deflates a whole multipart answer before its first byte when gzip is offered)."""
    from mdtviewer.pacs.connect import open_client
    from mdtviewer.pacs.dicomweb import CONNECTIONS
    from mdtviewer.pacs.nodes import PacsNode

    dest = tmp_path / "store"
    node = PacsNode.dicomweb("direct", dicomweb.dicomweb_url, user=USER, password_env=PASSWORD_ENV)
    with LocalStore(dest) as store, open_client(node) as client:
        # one instance first (a retrieve of a selection), so the next retrieve is a resumed one
        first = client.retrieve(GE_STUDY, store, select=lambda r: r.sop_instance_uid == min(
            x.sop_instance_uid for x in client.find_instances(GE_STUDY)))
        assert first.ok and first.fetched == 1
    proxy = _Proxy(dicomweb.http_port, delay=0.4)
    landed = []
    try:
        node = PacsNode.dicomweb("slow", proxy.url, user=USER, password_env=PASSWORD_ENV)
        with LocalStore(dest) as store, open_client(node) as client:
            res = client.retrieve(GE_STUDY, store, on_instance=landed.append)
    finally:
        proxy.close()
    assert res.ok and res.message == "retrieved 3 of 3 instances (2 fetched now, 1 already in the local store)"
    assert proxy.wado == 2 and len(landed) == 2  # only the two missing ones, nothing twice
    assert proxy.max_inflight == min(CONNECTIONS, 2)  # asked for side by side, not one after the other
    assert proxy.encodings == ["identity", "identity"]
    with LocalStore(dest) as store:
        assert len(store.study_paths(GE_STUDY)) == 3
        for p in store.study_paths(GE_STUDY):
            pydicom.dcmread(p).pixel_array  # noqa: B018 - each one whole


def test_stow_refused_for_one_instance_keeps_it_in_the_outbox(
    dicomweb_factory, dicomweb_env, capsys, testdata, tmp_path
):
    peer = dicomweb_factory()
    bad = testdata / sorted(ORTHANC_REJECTS)[0]  # Orthanc 1.10 cannot take this file
    # a review SR of the same study: both go in one STOW-RS request
    review = tmp_path / "review.json"
    review.write_text(
        json.dumps(
            {
                "kind": "second-opinion",
                "author": {"name": "Doe^Jane", "role": "second-reader"},
                "agreement": "agree",
                "summary": "Agree with the report",
            }
        )
    )
    sr = tmp_path / "sr.dcm"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "mdtviewer",
            "sr",
            "write",
            "--review",
            str(review),
            "--study",
            str(bad),
            "--out",
            str(sr),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )
    assert r.returncode == 0, r.stderr
    assert pydicom.dcmread(sr).StudyInstanceUID == pydicom.dcmread(bad, stop_before_pixels=True).StudyInstanceUID
    run(capsys, "node", "add", "web", "--dicomweb", peer.dicomweb_url, "--user", USER, "--password-env", PASSWORD_ENV)
    rc, out, err = run(capsys, "store", sr, bad, "--node", "web", "--queue")
    assert rc == 1 and out == "stored 1 of 2 files\n", err
    lines = err.strip().splitlines()
    assert lines == [
        f"mdtviewer pacs: {bad.name}: the DICOMweb server refused it (HTTP 400: it may not accept this file)",
        "mdtviewer pacs: 1 file(s) kept in the outbox; retry with 'mdtviewer pacs outbox flush'",
    ]
    assert peer.instance_count() == 1  # the review is on the PACS
    (item,) = outbox.pending("web")
    assert item.original_name == bad.name and item.path.read_bytes() == bad.read_bytes()
    assert "HTTP 400" in item.last_error


def test_multipart_reader_without_lengths_and_cut_anywhere(testdata):
    """Parts without Content-Length (delimiter search), fed in odd-sized chunks; a stream cut at any
    byte yields only the parts whose closing delimiter arrived."""
    from mdtviewer.pacs.dicomweb import _Cut, iter_parts

    bodies = [(testdata / n).read_bytes() for n in GE_FILES]
    b = b"b0undary-x"
    msg = b"".join(b"--" + b + b"\r\nContent-Type: application/dicom\r\n\r\n" + x + b"\r\n" for x in bodies)
    msg += b"--" + b + b"--\r\n"

    def chunks(data: bytes, size: int):
        return (data[i : i + size] for i in range(0, len(data), size))

    for size in (1000, 4093, 65536, len(msg)):
        assert list(iter_parts(chunks(msg, size), b)) == bodies
    ends = [msg.index(b"\r\n--" + b, msg.index(x)) for x in bodies]
    for cut in (10, ends[0] - 1, ends[0] + 3, ends[1] + 2 + len(b) + 2, len(msg) - 5):
        got = []
        with pytest.raises(_Cut):
            for part in iter_parts(chunks(msg[:cut], 7777), b):
                got.append(part)
        whole = sum(1 for e in ends if e + 2 + 2 + len(b) <= cut)
        assert got == bodies[:whole], cut


def test_https_is_verified_and_a_ca_bundle_can_be_set(dicomweb, dicomweb_env, tls_material, capsys):
    """TLS is verified by default: a server whose certificate the system does not trust is refused
    with a clear line; with the node's CA bundle (--tls-ca) the same server answers.  (Debian 12's
    Orthanc 1.10 crashes on its first HTTPS connection, so a TLS front on loopback stands before it.)"""
    proxy = _Proxy(dicomweb.http_port, tls=(tls_material.server_cert, tls_material.server_key))
    url = proxy.url
    try:
        rc, _out, err = run(capsys, "echo", *web(url))
        assert rc == 1
        assert one_line(err) == (
            f"mdtviewer pacs: TLS with the DICOMweb server at {url} failed: certificate not trusted "
            "(set the node's CA bundle)"
        )
        rc, out, err = run(capsys, "echo", *web(url), "--tls-ca", tls_material.ca)
        assert (rc, err) == (0, "") and out.startswith(f"QIDO-RS query to {url} succeeded")
        rc, _out, err = run(capsys, "echo", *web(url), "--tls-ca", tls_material.other_ca)
        assert rc == 1 and "certificate not trusted" in err
    finally:
        proxy.close()


def test_bearer_token_from_the_environment(dicomweb, monkeypatch, capsys, tmp_path):
    """--token-env: the token is sent as a bearer token (a front that accepts only that token, before
    Orthanc, which knows no tokens); a wrong token is refused with the same clear line."""
    proxy = _Proxy(dicomweb.http_port, bearer="tok-123")
    try:
        monkeypatch.setenv("MDT_TEST_TOKEN", "tok-123")
        rc, out, err = run(capsys, "find", "--dicomweb", proxy.url, "--token-env", "MDT_TEST_TOKEN", "--json")
        assert (rc, err) == (0, "") and GE_STUDY in out
        rc, out, err = run(
            capsys, "get", GE_STUDY, "--dicomweb", proxy.url, "--token-env", "MDT_TEST_TOKEN", "--dest", tmp_path / "s"
        )
        assert (rc, out) == (0, "retrieved 3 of 3 instances\n"), err
        monkeypatch.setenv("MDT_TEST_TOKEN", "wrong")
        rc, _out, err = run(capsys, "echo", "--dicomweb", proxy.url, "--token-env", "MDT_TEST_TOKEN")
        assert rc == 1 and "refused our credentials (HTTP 401)" in one_line(err) and "wrong" not in err
    finally:
        proxy.close()


# ----------------------------------------------------------------------------- workflows over either kind
def test_mdt_prefetch_and_report_lookup_over_dicomweb(dicomweb_factory, dicomweb_env, testdata, tmp_path):
    """The MDT prefetch and the report lookup take a DICOMweb node as they take a DIMSE one."""
    from mdtviewer.infra import audit
    from mdtviewer.pacs import nodes
    from mdtviewer.workflows.mdt_session import MDTSession, prefetch
    from mdtviewer.workflows.report_lookup import fetch_study_reports

    peer = dicomweb_factory()
    sr_file = testdata / "sr_comprehensive_offis_test.dcm"
    for f in (*[testdata / n for n in GE_FILES], sr_file):
        assert peer.upload(f)
    nodes.add_node(nodes.PacsNode.dicomweb("web", peer.dicomweb_url, user=USER, password_env=PASSWORD_ENV))
    s = MDTSession(title="over DICOMweb")
    s.add_case(GE_STUDY, source="web")
    out = prefetch(s)
    assert [(o.ok, o.study_uid) for o in out] == [(True, GE_STUDY)], [o.message for o in out]
    assert out[0].completed == out[0].total == 3
    rec = [r for r in audit.read_records() if r["event"] == "retrieve"]
    assert [(r["study_uid"], r["outcome"]) for r in rec][-1] == (GE_STUDY, "success")
    # a report that exists only on the PACS is fetched by the lookup, and only that
    sr_study = str(pydicom.dcmread(sr_file, stop_before_pixels=True).StudyInstanceUID)
    found = fetch_study_reports(sr_study, nodes=[nodes.get_node("web")], store=LocalStore(tmp_path / "s"))
    assert found.problems == [] and found.on_pacs == 1 and len(found.fetched) == 1, found.message
    assert pydicom.dcmread(found.fetched[0]).SOPInstanceUID == pydicom.dcmread(sr_file).SOPInstanceUID
