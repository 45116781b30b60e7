"""How long the logbook, worklist and discrepancy audit take over 5,000 review SRs in the local store.

Target (issue 13): within a few seconds.  The SRs are made from reviews
written with the SR writer over a corpus study (trainees, protocols, outcomes
and agreement grades varied), each copy with new SOP and Series Instance
UIDs, saved where the viewer keeps its reviews (``<store>/reviews/<study>/``).

Measured: the first look (every file read, the cache filled) once, then the
look that the window and the commands make every time after (stat each file,
read none), several times: median and spread (min-max).

    .venv/bin/python benchmarks/logbook.py [N]
"""

from __future__ import annotations

import copy
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TESTDATA = Path(os.environ.get("MDTVIEWER_TESTDATA", ROOT.parent / "shared" / "testdata"))
TARGET_S = 3.0


def _variants(image):
    import pydicom

    from mdtviewer.sr.model import ImageRating, Person, Review, Verifier, ViewCheck
    from mdtviewer.sr.writer import build_review_sr

    ds = pydicom.dcmread(image, stop_before_pixels=True)
    uid, study = str(ds.SOPInstanceUID), str(ds.StudyInstanceUID)
    trainer = Person("Tom Trainer", "trainer", "Lab")
    out = []
    for t, trainee in enumerate(("Ann Trainee", "Bob Trainee", "Cleo Trainee", "Łucja Nowak")):
        for proto, view in (("carotid-duplex", "R-CCA-BMODE"), ("aaa-surveillance", "AO-MAX-TS")):
            for o, outcome in enumerate(("competent", "needs-supervision")):
                r = Review("preceptorship", trainer, study, trainee=Person(trainee, "trainee"), protocol=proto,
                           views=[ViewCheck(view, True, uid)], outcome=outcome,
                           image_ratings=[ImageRating(uid, None, ("good", "adequate", "poor")[(t + o) % 3])],
                           verifier=Verifier("Tom Trainer", "Lab", "20261201101500+0000") if (t + o) % 4 else None)
                out.append(build_review_sr(r, [image]))
    for agreement, score in (("agree", "1"), ("minor-discrepancy", "2a"), ("major-discrepancy", "3b")):
        r = Review("second-opinion", Person("Sam Second", "second-reader", "Lab"), study, agreement=agreement,
                   peer_review_score=score, reporter="Rita Reporter", verifier=Verifier("Sam Second", "Lab"))
        out.append(build_review_sr(r, [image]))
    return study, out


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    tmp = Path(tempfile.mkdtemp(prefix="mdtv-bench-"))
    os.environ["MDTVIEWER_HOME"] = str(tmp / "home")
    import highdicom as hd

    from mdtviewer.infra import paths
    from mdtviewer.infra.atomic import atomic_save_dataset
    from mdtviewer.workflows import logbook as lb

    study, variants = _variants(TESTDATA / "us_acuson_sequoia_ybr_full_rle.dcm")
    folder = paths.store_dir() / "reviews" / study
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for i in range(n):
        ds = copy.deepcopy(variants[i % len(variants)])
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = hd.UID()
        ds.SeriesInstanceUID = hd.UID()
        atomic_save_dataset(ds, folder / f"SR_bench_{i:05d}_{ds.SOPInstanceUID}.dcm")
    print(f"made {n} review SRs in {time.perf_counter() - t0:.1f} s ({len(variants)} variants)")

    t0 = time.perf_counter()
    c = lb.collect()
    logs = lb.logbook(c.records)
    first = time.perf_counter() - t0
    assert c.files_read == n and len(c.records) == n, (c.files_read, len(c.records))
    print(f"first look (every file read, cache filled): {first:.2f} s")

    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        c = lb.collect()
        logs = lb.logbook(c.records)
        lb.worklist(c.records, seen=set())
        audit = lb.discrepancy_audit(c.records).to_json()
        times.append(time.perf_counter() - t0)
        assert c.files_read == 0 and c.files_cached == n
    med = statistics.median(times)
    print(f"logbook + worklist + audit over {n} SRs, cached: median {med:.2f} s, "
          f"spread {min(times):.2f}-{max(times):.2f} s over {len(times)} runs (target: {TARGET_S:.0f} s)")
    print(f"  {len(logs)} trainees, {sum(t.reviews for t in logs)} preceptorship reviews; "
          f"audit of {audit['reviews']} second opinions")
    cache = paths.home() / lb.CACHE_NAME
    print(f"  cache {cache.stat().st_size / 1e6:.1f} MB")
    return 0 if med <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
