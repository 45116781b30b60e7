"""Retrieve speed over DICOMweb and DIMSE from the same Orthanc: our WADO-RS against our C-GET.

Starts one Orthanc (127.0.0.1 only, temp storage) with its DICOMweb plugin (Debian package
``orthanc-dicomweb``) and HTTP basic authentication, loads the US files of the corpus, then
retrieves every study, one retrieve per study as a user would, by:

* ``WADO-RS``  DicomWebClient.retrieve (the study as one multipart answer, each instance as
               stored, uncompressed on the wire, with the QIDO-RS instance list for the counts
               asked beside it) into a fresh LocalStore
* ``C-GET``    PacsClient.retrieve(method="get") into a fresh LocalStore
* ``HTTP only`` the same WADO-RS requests with ``requests`` alone, the answers read and dropped
               (no parsing, no writing): what the server and the wire cost, the floor for WADO-RS
* ``HTTP gzip`` the same, offering ``Accept-Encoding: gzip, deflate`` as ``requests`` does by
               default: Orthanc then deflates each whole multipart answer before its first byte
               (what our client did before it asked for ``identity``)
* ``curl``     the same WADO-RS URLs in one ``curl`` process (keep-alive, no compression asked):
               a client that is not Python, to show what is Orthanc's own time

The two are interleaved --repeat times (fresh destination each time, so machine noise hits both
alike); the table shows the median, the spread (min-max and the interquartile range) and
instances and MB per second.  Target (issue 14): WADO-RS no slower than C-GET.

    .venv/bin/python benchmarks/wado_vs_cget.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from dicomweb_peer import PASSWORD, PASSWORD_ENV, PLUGIN, USER, DicomWebPeer  # noqa: E402
from orthanc_peer import HOST, OUR_AET, free_port, us_corpus_files  # noqa: E402

TESTDATA = Path(os.environ.get("MDTVIEWER_TESTDATA", REPO.parent / "shared" / "testdata"))


def run(kind: str, peer: DicomWebPeer, studies: list[str], work: Path) -> tuple[float, int, int]:
    from mdtviewer.pacs.connect import open_client
    from mdtviewer.pacs.localstore import LocalStore
    from mdtviewer.pacs.nodes import PacsNode

    if kind == "WADO-RS":
        node = PacsNode.dicomweb("bench", peer.dicomweb_url, user=USER, password_env=PASSWORD_ENV)
    else:
        node = PacsNode("bench", peer.aet, HOST, peer.dicom_port)
    dest = Path(tempfile.mkdtemp(dir=work))
    n = 0
    t0 = time.perf_counter()
    with LocalStore(dest) as store, open_client(node) as client:
        for uid in studies:
            r = client.retrieve(uid, store)
            if not r.ok:
                raise RuntimeError(f"{kind} {uid}: {r.message}")
            n += r.fetched
        dt = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in dest.rglob("*.dcm"))
    shutil.rmtree(dest, ignore_errors=True)
    return dt, n, size


def run_http_only(peer: DicomWebPeer, studies: list[str], encoding: str) -> tuple[float, int, int]:
    import requests

    from mdtviewer.pacs.dicomweb import ACCEPT_AS_STORED

    size = 0
    with requests.Session() as s:
        s.auth = (USER, PASSWORD)
        t0 = time.perf_counter()
        for uid in studies:
            r = s.get(
                f"{peer.dicomweb_url}/studies/{uid}",
                headers={"Accept": ACCEPT_AS_STORED, "Accept-Encoding": encoding},
                timeout=60,
            )
            r.raise_for_status()
            size += len(r.content)
        dt = time.perf_counter() - t0
    return dt, 0, size


def run_curl(peer: DicomWebPeer, studies: list[str]) -> tuple[float, int, int]:
    from mdtviewer.pacs.dicomweb import ACCEPT_AS_STORED

    args = ["curl", "-sf", "-u", f"{USER}:{PASSWORD}", "-H", f"Accept: {ACCEPT_AS_STORED}", "-w", "%{size_download}\n"]
    for uid in studies:
        args += ["-o", "/dev/null", f"{peer.dicomweb_url}/studies/{uid}"]
    t0 = time.perf_counter()
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    dt = time.perf_counter() - t0
    return dt, 0, sum(int(x) for x in out.split())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args(argv)
    for need in ("/usr/sbin/Orthanc", PLUGIN):
        if not Path(need).exists():
            print(f"needs {need} (Debian packages orthanc, orthanc-dicomweb)", file=sys.stderr)
            return 2
    import warnings

    warnings.simplefilter("ignore")
    os.environ[PASSWORD_ENV] = PASSWORD
    os.environ["MDTVIEWER_HOME"] = tempfile.mkdtemp(prefix="mdtv-bench-home-")  # audit trail out of the way
    work = Path(tempfile.mkdtemp(prefix="mdtv-bench-"))
    peer = DicomWebPeer(work / "orthanc", modalities={"viewer": (OUR_AET, free_port())})
    peer.start()
    try:
        peer.upload_all(us_corpus_files(TESTDATA))
        studies = [s["MainDicomTags"]["StudyInstanceUID"] for s in peer.studies()]
        version = peer.http("/system")["Version"]
        print(f"Orthanc {version} + DICOMweb plugin on 127.0.0.1, HTTP basic auth: {len(studies)} studies, "
              f"{peer.instance_count()} instances ({len(peer.rejected)} corpus files refused by Orthanc)")
        runs: dict[str, list[float]] = {"WADO-RS": [], "C-GET": [], "HTTP only": [], "HTTP gzip": []}
        if shutil.which("curl"):
            runs["curl"] = []
        counts: dict[str, tuple[int, int]] = {}
        loads = [os.getloadavg()[0]]
        for _ in range(args.repeat):
            for kind in runs:
                if kind.startswith("HTTP") or kind == "curl":
                    if kind == "curl":
                        dt, n, size = run_curl(peer, studies)
                    else:
                        enc = "identity" if kind == "HTTP only" else "gzip, deflate"
                        dt, n, size = run_http_only(peer, studies, enc)
                    n = counts["WADO-RS"][0]
                else:
                    dt, n, size = run(kind, peer, studies, work)
                runs[kind].append(dt)
                counts[kind] = (n, size)
            loads.append(os.getloadavg()[0])
        ref = statistics.median(runs["C-GET"])
        print(f"\n{'method':9} {'inst':>5} {'MB':>6} {'median s':>9} {'min s':>7} {'max s':>7} {'IQR s':>7} "
              f"{'inst/s':>7} {'MB/s':>6} {'vs C-GET':>9}")
        for kind, times in runs.items():
            med = statistics.median(times)
            q = statistics.quantiles(times, n=4) if len(times) >= 2 else [med, med, med]
            n, size = counts[kind]
            print(f"{kind:9} {n:5d} {size / 1e6:6.1f} {med:9.3f} {min(times):7.3f} {max(times):7.3f} "
                  f"{q[2] - q[0]:7.3f} {n / med:7.1f} {size / 1e6 / med:6.1f} {ref / med:8.2f}x")
        print(f"\n(one retrieve per study, each from an empty local store; repeat={args.repeat}, interleaved; "
              f"'vs C-GET' > 1 means faster than C-GET; 1-minute load {min(loads):.1f}-{max(loads):.1f} "
              f"on {os.cpu_count()} cores)")
    finally:
        peer.stop(kill=True)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
