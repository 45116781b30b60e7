"""Retrieve speed: our C-GET and C-MOVE against DCMTK getscu and movescu -> storescp (Nagle off).

Starts a fresh Orthanc (127.0.0.1 only, temp storage).  By default (issue 12.1) it holds ONE
study of 200 instances (``--instances``) made from corpus US files (RLE palette, JPEG baseline,
RLE YBR, a 10-frame RLE cine, in turn; about 38 MB) with new Study/Series/SOP Instance UIDs; with
``--corpus`` it holds the corpus's US files and every study is retrieved, one retrieve per
study as a user would.  Retrieved by:

* ``mdtviewer C-GET``   PacsClient.retrieve(method="get") into a fresh LocalStore
* ``mdtviewer C-MOVE``  PacsClient.retrieve(method="move") to our storage SCP
* ``DCMTK getscu``      ``getscu -od DIR``, with ``TCP_NODELAY=1`` (DCMTK then disables Nagle)
* ``DCMTK movescu``     ``movescu`` into a running ``storescp +xa``, both with ``TCP_NODELAY=1``

Interleaved: every repeat runs all four in turn (fresh destination each time).  Prints per
run the 1-minute load average, then per method the median, spread (min-max), and the ratio of
our median to DCMTK's (target: ours <= 1.5x DCMTK getscu / movescu+storescp wall time).  Our
local store makes each batch durable (fsync of files and folders, one SQLite commit: see
``mdtviewer/pacs/localstore.py``); DCMTK's storescp does not fsync at all.

    .venv/bin/python benchmarks/retrieve.py [--repeat 5] [--instances 200] [--corpus] [--orthanc 1.10|1.12]
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


NAGLE_OFF = {**os.environ, "TCP_NODELAY": "1"}  # DCMTK at its best (toolchain notes)
STUDY_FILES = ("us_philips_cx50_palette_rle.dcm", "us_atl_hdi5000_jpeg_baseline_ybr422.dcm",
               "us_acuson_sequoia_ybr_full_rle.dcm", "usmf_palette_rle_10f.dcm")


def make_study(folder: Path, n: int) -> tuple[str, int]:
    """*n* instances of one new study from corpus files (new UIDs); returns (study uid, bytes)."""
    import pydicom
    from pydicom.uid import generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    study = generate_uid()
    series = [generate_uid() for _ in STUDY_FILES]
    srcs = [pydicom.dcmread(TESTDATA / f) for f in STUDY_FILES]
    total = 0
    for i in range(n):
        ds = srcs[i % len(srcs)]
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series[i % len(srcs)]
        ds.PatientID, ds.PatientName = "BENCH200", "BENCH^STUDY"  # one patient: one study for the PACS
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = i + 1
        p = folder / f"i{i:04d}.dcm"
        ds.save_as(p)
        total += p.stat().st_size
    return study, total


def run_getscu(peer: OrthancPeer, studies: list[str], work: Path) -> tuple[float, int]:
    dest = Path(tempfile.mkdtemp(dir=work))
    t0 = time.perf_counter()
    for uid in studies:
        subprocess.run(["getscu", "-S", "-aet", OUR_AET, "-aec", peer.aet, "-od", str(dest),
                        "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={uid}",
                        HOST, str(peer.dicom_port)], check=False, capture_output=True, timeout=120, env=NAGLE_OFF)
    dt = time.perf_counter() - t0
    n = len([p for p in dest.iterdir() if p.is_file()])
    shutil.rmtree(dest, ignore_errors=True)
    return dt, n


def run_dcmtk(peer: OrthancPeer, studies: list[str], move_port: int, work: Path) -> tuple[float, int]:
    dest = Path(tempfile.mkdtemp(dir=work))
    scp = subprocess.Popen(["storescp", "-aet", OUR_AET, "+xa", "-od", str(dest), str(move_port)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=NAGLE_OFF)
    try:
        wait_port(move_port)
        t0 = time.perf_counter()
        for uid in studies:
            # not check=True: Orthanc 1.12 fails sub-operations storescp accepted uncompressed for a
            # JPEG 2000 instance (it cannot transcode it); the instance count in the table shows it
            subprocess.run(["movescu", "-S", "-aet", OUR_AET, "-aec", peer.aet, "-aem", OUR_AET,
                            "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={uid}",
                            HOST, str(peer.dicom_port)], check=False, capture_output=True, timeout=120,
                           env=NAGLE_OFF)
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
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--instances", type=int, default=200, help="size of the one study (default 200)")
    ap.add_argument("--corpus", action="store_true", help="the corpus's US studies instead of one large study")
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
        if args.corpus:
            peer.upload_all(us_corpus_files(TESTDATA))
        else:
            _uid, size = make_study(work / "study", args.instances)
            peer.upload_all(sorted((work / "study").glob("*.dcm")))
            print(f"one study of {args.instances} instances, {size / 1e6:.1f} MB, from {', '.join(STUDY_FILES)}")
        studies = sorted({s["MainDicomTags"]["StudyInstanceUID"] for s in peer.studies()})
        instances = peer.instance_count()
        version = peer.http("/system")["Version"]
        print(f"Orthanc {version} on 127.0.0.1 with {len(studies)} studies, {instances} instances "
              f"({len(peer.rejected)} corpus files refused by Orthanc: {', '.join(sorted(peer.rejected))})")
        methods = (("mdtviewer C-GET", lambda: run_ours(peer, studies, "get", move_port, work)),
                   ("mdtviewer C-MOVE", lambda: run_ours(peer, studies, "move", move_port, work)),
                   ("DCMTK getscu", lambda: run_getscu(peer, studies, work)),
                   ("DCMTK movescu->storescp", lambda: run_dcmtk(peer, studies, move_port, work)))
        runs: dict[str, list[float]] = {m[0]: [] for m in methods}
        counts: dict[str, int] = {}
        loads: list[float] = []
        for r in range(args.repeat):  # interleaved so machine noise hits all alike
            load = os.getloadavg()[0]
            loads.append(load)
            line = f"run {r + 1}: load {load:4.2f}"
            for label, fn in methods:
                dt, n = fn()
                runs[label].append(dt)
                counts[label] = n
                line += f"  {label} {dt:.3f} s"
            print(line, flush=True)
        get_ref = statistics.median(runs["DCMTK getscu"])
        move_ref = statistics.median(runs["DCMTK movescu->storescp"])
        print(f"\nload average median {statistics.median(loads):.2f} ({min(loads):.2f}-{max(loads):.2f})")
        print(f"{'method':26} {'studies':>7} {'inst':>5} {'median s':>9} {'spread s':>13} {'inst/s':>7} "
              f"{'x DCMTK (same op)':>18}")
        for label, times in runs.items():
            med = statistics.median(times)
            ref = get_ref if "GET" in label or "getscu" in label else move_ref
            print(f"{label:26} {len(studies):7d} {counts[label]:5d} {med:9.3f} {min(times):6.3f}-{max(times):6.3f} "
                  f"{counts[label] / med:7.1f} {med / ref:17.2f}x")
        print(f"\n(repeat={args.repeat}; 'x DCMTK' is our median over DCMTK's for the same operation: "
              "C-GET vs getscu, C-MOVE vs movescu->storescp; target <= 1.5x)")
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
