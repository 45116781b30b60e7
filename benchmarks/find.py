"""C-FIND of 5,000 studies: ours against DCMTK `findscu` (issue 12.3 target: <= 1.5x).

Test data: an Orthanc whose storage lives in benchmarks/out/find_orthanc
(not committed), loaded once with N single-instance studies: copies of one
corpus file with new UIDs (benchmarks/store.py's builder), sent by
``storescu``.  Later runs start that Orthanc on its cached storage.

Timed, interleaved round-robin, each including association set-up:

- ``findscu``: ``findscu -S`` with the same STUDY-level keys, ``TCP_NODELAY=1``
  (DCMTK at its best), output to /dev/null, a child process;
- ``ours``: ``PacsClient.find_studies(StudyQuery())`` on a new client
  (the library path the viewer and ``mdtviewer pacs find`` use), in-process;
- ``pynetdicom``: plain ``send_c_find`` with the same identifier, collecting
  the response data sets (TCP_NODELAY set), in-process.

Prints median seconds, spread (min..max), answers, ratios against findscu,
and the load average.  ``--profile`` adds a cProfile of one of our finds.

Every tool asks the same keys (KEYS: those of ``find_studies``).  ``--baseline DIR``
adds another revision's client, run in a child process and timed there the same way
(DIR holds its ``mdtviewer`` package: ``git archive REV mdtviewer | tar -x -C DIR``).

Usage: .venv/bin/python benchmarks/find.py [--studies 5000] [--repeat 5] [--profile] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))
warnings.simplefilter("ignore")

from store import CORPUS, OUT, TEMPLATE, build_copies, load  # noqa: E402

from orthanc_peer import HOST, OUR_AET, OrthancPeer, free_port  # noqa: E402

#: the keys PacsClient.find_studies(StudyQuery()) sends, so every tool asks Orthanc the same question;
#: IssuerOfPatientID (HAZ-027) is not one of Orthanc 1.10's main DICOM tags: answering it makes Orthanc
#: read every study's stored file, ~3x the time of the same find without it, whoever asks
KEYS = [
    "QueryRetrieveLevel=STUDY", "SpecificCharacterSet=ISO_IR 192", "StudyInstanceUID", "PatientID",
    "IssuerOfPatientID", "PatientName", "PatientBirthDate", "StudyDate", "StudyTime", "StudyDescription",
    "AccessionNumber", "ModalitiesInStudy", "NumberOfStudyRelatedInstances", "NumberOfStudyRelatedSeries",
]


def start_peer(n: int) -> OrthancPeer:
    work = OUT / f"find_orthanc_{n}"
    stamp = work.with_name(work.name + ".complete")
    peer = OrthancPeer(work, modalities={"mdtviewer": (OUR_AET, free_port())},
                       extra_config={"LimitFindResults": 0, "LimitFindInstances": 0})
    peer.start()
    if not stamp.exists():
        files = build_copies(CORPUS / TEMPLATE, OUT / f"find_files_{n}", n, per_study=1)
        print(f"loading {n} studies into Orthanc (once; cached in {work})")
        subprocess.run([shutil.which("storescu") or "storescu", "-xy", "-aet", OUR_AET, "-aec", peer.aet, "+sd", "+r",
                        "-nh", HOST, str(peer.dicom_port), str(files[0].parent.parent)],
                       check=True, env=dict(os.environ, TCP_NODELAY="1"), capture_output=True)
        stamp.write_text("ok\n")
    return peer


def run_findscu(peer: OrthancPeer) -> tuple[float, int]:
    cmd = [shutil.which("findscu") or "findscu", "-S", "-aet", OUR_AET, "-aec", peer.aet]
    for k in KEYS:
        cmd += ["-k", k]
    cmd += [HOST, str(peer.dicom_port)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=dict(os.environ, TCP_NODELAY="1"), stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, check=False)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        print("findscu:", r.stderr.decode(errors="replace")[-300:])
    return dt, -1


def run_ours(peer: OrthancPeer) -> tuple[float, int]:
    from mdtviewer.pacs.client import PacsClient, StudyQuery
    from mdtviewer.pacs.nodes import PacsNode

    node = PacsNode(name="bench", host=HOST, port=peer.dicom_port, called_aet=peer.aet, calling_aet=OUR_AET)
    t0 = time.perf_counter()
    with PacsClient(node, max_studies=1_000_000) as c:
        found = c.find_studies(StudyQuery())
    return time.perf_counter() - t0, len(found)


BASELINE_CHILD = r"""
import logging, sys, time
logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
from mdtviewer.pacs.client import PacsClient, StudyQuery
from mdtviewer.pacs.nodes import PacsNode
node = PacsNode(name="bench", host=sys.argv[1], port=int(sys.argv[2]), called_aet=sys.argv[3], calling_aet=sys.argv[4])
t0 = time.perf_counter()
with PacsClient(node, max_studies=1_000_000) as c:
    found = c.find_studies(StudyQuery())
print(time.perf_counter() - t0, len(found))
"""


def run_baseline(peer: OrthancPeer, checkout: Path) -> tuple[float, int]:
    """`ours` of another revision (``--baseline DIR``), timed inside a child process the same way."""
    r = subprocess.run([sys.executable, "-c", BASELINE_CHILD, HOST, str(peer.dicom_port), peer.aet, OUR_AET],
                       cwd=checkout, env=dict(os.environ, PYTHONPATH=str(checkout)), capture_output=True, text=True,
                       check=True)
    dt, n = r.stdout.split()
    return float(dt), int(n)


def run_pynetdicom(peer: OrthancPeer) -> tuple[float, int]:
    from pydicom.dataset import Dataset
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

    def nodelay(event) -> None:
        event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    t0 = time.perf_counter()
    q = Dataset()
    for k in KEYS:
        name, _, value = k.partition("=")
        setattr(q, name, value)
    ae = AE(ae_title=OUR_AET)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate(HOST, peer.dicom_port, ae_title=peer.aet, evt_handlers=[(evt.EVT_CONN_OPEN, nodelay)])
    out = [ds for st, ds in assoc.send_c_find(q, StudyRootQueryRetrieveInformationModelFind)
           if st and st.Status in (0xFF00, 0xFF01)]
    assoc.release()
    return time.perf_counter() - t0, len(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--baseline", type=Path, metavar="DIR",
                    help="also time another revision's client (a folder holding its mdtviewer package), interleaved")
    args = ap.parse_args()
    import logging

    logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
    peer = start_peer(args.studies)
    try:
        print(f"Orthanc with {len(peer.studies())} studies; load average before: {load()}")
        runs = [("findscu", run_findscu), ("ours", run_ours), ("pynetdicom", run_pynetdicom)]
        if args.baseline:
            base = args.baseline.resolve()
            runs.append(("baseline", lambda p: run_baseline(p, base)))
        for _name, fn in runs:  # warm: imports, Orthanc's caches
            fn(peer)
        times: dict[str, list[float]] = {n: [] for n, _ in runs}
        answers: dict[str, int] = {}
        loads = []
        for _ in range(args.repeat):
            for name, fn in runs:
                dt, count = fn(peer)
                times[name].append(dt)
                answers[name] = count
            loads.append(load())
        med = {n: statistics.median(v) for n, v in times.items()}
        print(f"\n{'tool':12} {'median s':>9} {'spread':>14} {'answers':>8}  ratio vs findscu (target <= 1.5)")
        for name, _ in runs:
            v = times[name]
            count = answers[name]
            print(f"{name:12} {med[name]:9.3f} {min(v):6.3f}..{max(v):<6.3f} {count if count >= 0 else '-':>8}  "
                  f"{med[name] / med['findscu']:.2f}x")
        print(f"\nload average after each round: {' | '.join(loads)}")
        if args.profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.runcall(run_ours, peer)
            pstats.Stats(prof).sort_stats("tottime").print_stats(18)
    finally:
        peer.stop(kill=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
