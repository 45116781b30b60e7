"""Retrieve speed: our C-GET and C-MOVE against DCMTK movescu -> storescp.

Starts a fresh Orthanc (127.0.0.1 only, temp storage) loaded with the US
files of the corpus, then retrieves every study, one retrieve per study as a
user would, by:

* ``mdtviewer C-GET``   PacsClient.retrieve(method="get") into a fresh LocalStore
* ``mdtviewer C-MOVE``  PacsClient.retrieve(method="move") to our storage SCP
* ``DCMTK movescu``     one ``movescu`` run per study into a running ``storescp``

Each is run --repeat times (fresh destination each time); the table shows the
median.  Target: ours no slower than DCMTK.  Also shows the DIMSE round trip
(C-ECHO on an open association) with and without our socket tuning.

    .venv/bin/python benchmarks/retrieve.py [--repeat 3] [--orthanc 1.10|1.12]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from orthanc_peer import HOST, OUR_AET, OrthancPeer, free_port, us_corpus_files  # noqa: E402

TESTDATA = Path(os.environ.get("MDTVIEWER_TESTDATA", REPO.parent / "shared" / "testdata"))


def wait_port(port: int, timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listening on {port}")


def run_ours(peer: OrthancPeer, studies: list[str], method: str, move_port: int, work: Path) -> tuple[float, int]:
    from mdtviewer.pacs.client import PacsClient
    from mdtviewer.pacs.localstore import LocalStore
    from mdtviewer.pacs.nodes import PacsNode

    dest = Path(tempfile.mkdtemp(dir=work))
    node = PacsNode("bench", peer.aet, HOST, peer.dicom_port, listen_aet=OUR_AET, listen_port=move_port)
    n = 0
    t0 = time.perf_counter()
    with LocalStore(dest) as store, PacsClient(node, listen_host=HOST) as client:
        for uid in studies:
            r = client.retrieve(uid, store, method=method)
            if not r.ok:
                raise RuntimeError(f"{method} {uid}: {r.message}")
            n += r.fetched
        dt = time.perf_counter() - t0  # before close(): stopping our listener is not retrieve time
    shutil.rmtree(dest, ignore_errors=True)
    return dt, n


def run_dcmtk(peer: OrthancPeer, studies: list[str], move_port: int, work: Path) -> tuple[float, int]:
    dest = Path(tempfile.mkdtemp(dir=work))
    scp = subprocess.Popen(["storescp", "-aet", OUR_AET, "+xa", "-od", str(dest), str(move_port)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(move_port)
        t0 = time.perf_counter()
        for uid in studies:
            # not check=True: Orthanc 1.12 fails sub-operations storescp accepted uncompressed for a
            # JPEG 2000 instance (it cannot transcode it); the instance count in the table shows it
            subprocess.run(["movescu", "-S", "-aet", OUR_AET, "-aec", peer.aet, "-aem", OUR_AET,
                            "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={uid}",
                            HOST, str(peer.dicom_port)], check=False, capture_output=True, timeout=120)
        dt = time.perf_counter() - t0
    finally:
        scp.kill()
        scp.wait()
    n = len([p for p in dest.iterdir() if p.is_file()])
    shutil.rmtree(dest, ignore_errors=True)
    return dt, n


def echo_round_trip(peer: OrthancPeer, tuned: bool, n: int = 20) -> float:
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import Verification

    from mdtviewer.pacs.storescp import tune_socket

    ae = AE(OUR_AET)
    ae.add_requested_context(Verification)
    handlers = [(evt.EVT_CONN_OPEN, tune_socket)] if tuned else []
    assoc = ae.associate(HOST, peer.dicom_port, ae_title=peer.aet, evt_handlers=handlers)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        assoc.send_c_echo()
        times.append(time.perf_counter() - t)
    assoc.release()
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--orthanc", choices=("1.10", "1.12"), default="1.10",
                    help="Debian 12's Orthanc, or Debian 13's in the cached chroot of tests/orthanc112.py")
    args = ap.parse_args(argv)
    for tool in ("/usr/sbin/Orthanc", shutil.which("movescu"), shutil.which("storescp")):
        if not tool or not Path(tool).exists():
            print("needs Orthanc and DCMTK (movescu, storescp)", file=sys.stderr)
            return 2
    import warnings

    warnings.simplefilter("ignore")
    work = Path(tempfile.mkdtemp(prefix="mdtv-bench-"))
    move_port = free_port()
    if args.orthanc == "1.12":
        from orthanc112 import ChrootOrthancPeer, trixie_root

        peer: OrthancPeer = ChrootOrthancPeer(trixie_root(), modalities={"viewer": (OUR_AET, move_port)})
    else:
        peer = OrthancPeer(work / "orthanc", modalities={"viewer": (OUR_AET, move_port)})
    peer.start()
    try:
        peer.upload_all(us_corpus_files(TESTDATA))
        studies = [s["MainDicomTags"]["StudyInstanceUID"] for s in peer.studies()]
        instances = peer.instance_count()
        version = peer.http("/system")["Version"]
        print(f"Orthanc {version} on 127.0.0.1 with {len(studies)} studies, {instances} instances "
              f"({len(peer.rejected)} corpus files refused by Orthanc: {', '.join(sorted(peer.rejected))})")
        runs: dict[str, list[float]] = {"mdtviewer C-GET": [], "mdtviewer C-MOVE": [], "DCMTK movescu->storescp": []}
        counts: dict[str, int] = {}
        for _ in range(args.repeat):  # interleaved so machine noise hits all alike
            for label, fn in (("mdtviewer C-GET", lambda: run_ours(peer, studies, "get", move_port, work)),
                              ("mdtviewer C-MOVE", lambda: run_ours(peer, studies, "move", move_port, work)),
                              ("DCMTK movescu->storescp", lambda: run_dcmtk(peer, studies, move_port, work))):
                dt, n = fn()
                runs[label].append(dt)
                counts[label] = n
        ref = statistics.median(runs["DCMTK movescu->storescp"])
        print(f"\n{'method':26} {'studies':>7} {'inst':>5} {'median s':>9} {'min s':>7} {'inst/s':>7} {'vs DCMTK':>9}")
        for label, times in runs.items():
            med = statistics.median(times)
            print(f"{label:26} {len(studies):7d} {counts[label]:5d} {med:9.3f} {min(times):7.3f} "
                  f"{counts[label] / med:7.1f} {ref / med:8.2f}x")
        print(f"\n(one retrieve per study; repeat={args.repeat}; 'vs DCMTK' > 1 means faster than DCMTK)")
        raw = echo_round_trip(peer, tuned=False)
        tuned = echo_round_trip(peer, tuned=True)
        print(f"C-ECHO round trip on an open association: {raw * 1000:.1f} ms untuned, "
              f"{tuned * 1000:.1f} ms with TCP_NODELAY + TCP_QUICKACK")
    finally:
        peer.stop(kill=True)
        if hasattr(peer, "remove"):
            peer.remove()  # its folder inside the chroot
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
