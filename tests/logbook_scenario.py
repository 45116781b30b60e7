"""A set of reviews written with `mdtviewer sr write` over corpus studies, and the figures they must give.

Shared by tests/test_logbook*.py.  Seven studies, three trainees, two
reporters; two signed reviews amended (each must count once, as its latest
version); drafts, a second-opinion request, every agreement grade and most
RADPEER-style scores.
"""

from __future__ import annotations

import json
from pathlib import Path

import pydicom

from conftest import TESTDATA
from sr_helpers import sign_as

#: study key -> corpus files (read in place; a folder of links where a study needs several files)
STUDIES = {
    "A": ["us_acuson_sequoia_ybr_full_rle.dcm"],  # 20161017
    "B": ["us_ge_logiq700_j2k_lossless_ybr_rct.dcm", "us_ge_logiq700_rgb_explicit_le.dcm"],  # 20040826
    "C": ["us_philips_epiq7c_mono2_jpeg_lossless_sv1.dcm"],  # 20190124
    "D": ["us_siemens_s2000_rgb_explicit_le.dcm"],  # 20200414
    "E": ["usmf_hp_jpeg_ybr422_34f.dcm"],  # 20000223, 34 frames
    "F": ["usmf_sonosite_jpeg_ybr422_30f.dcm"],  # 20160503
    "G": ["us_atl_hdi5000_jpeg_baseline_ybr422.dcm"],  # 20000329
}
TRAINER = {"name": "Tom Trainer", "role": "trainer"}
SIGN = {"name": "Tom Trainer", "organization": "Vascular Lab"}
READER = {"name": "Sam Second", "role": "second-reader"}
SIGN_READER = {"name": "Sam Second", "organization": "Vascular Lab"}
ANN, BOB, LUCJA = "Ann Trainee", "Bob Trainee", "Łucja Nowak"


def uid_of(name: str) -> str:
    return str(pydicom.dcmread(TESTDATA / name, stop_before_pixels=True).SOPInstanceUID)


def identifiers() -> list[str]:
    """Patient names and IDs of the studies reviewed (none may appear in a pseudonymised export)."""
    out = set()
    for files in STUDIES.values():
        ds = pydicom.dcmread(TESTDATA / files[0], stop_before_pixels=True)
        for v in (str(ds.get("PatientName", "")), str(ds.get("PatientID", ""))):
            for part in v.replace("^", " ").split():
                if len(part) >= 3 and part.lower() not in {"echo", "anonymized"}:
                    out.add(part)
    return sorted(out)


def _study_path(tmp: Path, key: str) -> Path:
    files = STUDIES[key]
    if len(files) == 1:
        return TESTDATA / files[0]
    d = tmp / f"study_{key}"
    d.mkdir(exist_ok=True)
    for f in files:
        if not (d / f).exists():
            (d / f).symlink_to(TESTDATA / f)
    return d


def _preceptorship(trainee, protocol, outcome=None, signed=True, views=(), images=()):
    d = {"kind": "preceptorship", "author": TRAINER, "trainee": {"name": trainee}, "protocol": protocol,
         "images": list(images)}
    if outcome:
        d["outcome"] = outcome
    if signed:
        d["verifier"] = SIGN
    if views:
        d["views"] = list(views)
    return d


def _second(agreement=None, score=None, reporter=None, mdt=None, signed=True):
    d = {"kind": "second-opinion", "author": READER}
    for k, v in (("agreement", agreement), ("peer_review_score", score), ("reporter", reporter), ("mdt_outcome", mdt)):
        if v:
            d[k] = v
    if signed:
        d["verifier"] = SIGN_READER
        d["graded_report"] = None  # signed knowingly without naming the graded report (README, sr write)
    return d


def write_reviews(cli_main, tmp: Path, out: Path) -> dict[str, Path]:
    """Write every review of the scenario into *out* with `mdtviewer sr write`; returns name -> file."""
    out.mkdir(parents=True, exist_ok=True)
    a, b1, b2 = uid_of(STUDIES["A"][0]), uid_of(STUDIES["B"][0]), uid_of(STUDIES["B"][1])
    c, d, e = uid_of(STUDIES["C"][0]), uid_of(STUDIES["D"][0]), uid_of(STUDIES["E"][0])
    plan = [
        # name, study, review JSON
        ("p1", "A", _preceptorship(ANN, "carotid-duplex", "competent",
                                   views=[{"view": "R-CCA-BMODE", "sop_instance_uid": a}],
                                   images=[{"sop_instance_uid": a, "quality": "good"}])),
        ("p2", "B", _preceptorship(ANN, "carotid-duplex", "needs-supervision",
                                   views=[{"view": "R-CCA-BMODE", "sop_instance_uid": b1},
                                          {"view": "R-CCA-PW", "sop_instance_uid": b2}],
                                   images=[{"sop_instance_uid": b1, "quality": "adequate"},
                                           {"sop_instance_uid": b2, "quality": "poor"}])),
        ("p3", "C", _preceptorship(ANN, "aaa-surveillance", "competent", signed=False,
                                   images=[{"sop_instance_uid": c, "quality": "good"}])),
        ("p4", "D", _preceptorship(ANN, "carotid-duplex", "competent",
                                   images=[{"sop_instance_uid": d, "quality": "good"}])),
        ("p4b", "D", {**_preceptorship(ANN, "carotid-duplex", "needs-supervision",
                                       images=[{"sop_instance_uid": d, "quality": "poor"}]), "amends": "p4.dcm"}),
        ("p5", "E", _preceptorship(BOB, "lower-limb-arterial", "competent",
                                   images=[{"sop_instance_uid": e, "frames": [1, 2], "quality": "good"}])),
        ("p6", "F", _preceptorship(BOB, "lower-limb-arterial", signed=False)),
        ("p7", "G", _preceptorship(LUCJA, "aaa-surveillance", "competent")),
        ("s1", "A", _second("agree", "1", "Rita Reporter", "report-confirmed")),
        ("s2", "B", _second("minor-discrepancy", "2a", "Rita Reporter")),
        ("s3", "C", _second("major-discrepancy", "3b", "Ravi Reporter", "discrepancy-found")),
        ("s4", "D", _second("major-discrepancy", "2b", "Ravi Reporter")),
        ("s4b", "D", {**_second("minor-discrepancy", "2a", "Ravi Reporter"), "amends": "s4.dcm"}),
        ("s5", "E", _second("agree", None, "Ravi Reporter")),
        ("s6", "F", _second("major-discrepancy", "3a", "Rita Reporter", signed=False)),
        ("s7", "G", _second(signed=False)),
    ]
    files = {}
    for name, study, data in plan:
        js = out / f"{name}.json"
        js.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        target = out / f"{name}.dcm"
        if "verifier" in data:  # signed on the signer's own account: `sr write` signs as its reviewer profile
            sign_as(data["verifier"]["name"], data["verifier"]["organization"])
        rc = cli_main(["sr", "write", "--review", str(js), "--study", str(_study_path(tmp, study)),
                       "--out", str(target)])
        assert rc == 0, name
        files[name] = target
    return files


CAROTID_REQUIRED = ["R-CCA-BMODE", "R-CCA-PW", "R-BIF-COL", "R-ICA-PW", "R-ICA-DIST", "R-ECA-PW", "R-VA-PW",
                    "L-CCA-BMODE", "L-CCA-PW", "L-BIF-COL", "L-ICA-PW", "L-ICA-DIST", "L-ECA-PW", "L-VA-PW"]

#: p1 names R-CCA-BMODE, p2 names R-CCA-BMODE and R-CCA-PW; p4b names no views (none recorded)
ANN_MISSING = {v: 2 for v in CAROTID_REQUIRED if v not in ("R-CCA-BMODE", "R-CCA-PW")} | {"R-CCA-PW": 1}

EXPECTED_LOGBOOK = {
    ANN: {"reviews": 4, "signed": 3,
          "by_protocol": {
              "aaa-surveillance": {"reviews": 1, "signed": 0, "competent": 0, "needs_supervision": 0,
                                   "missing_views": {}},
              "carotid-duplex": {"reviews": 3, "signed": 3, "competent": 1, "needs_supervision": 2,
                                 "missing_views": ANN_MISSING}},
          "quality": {"good": 2, "adequate": 1, "poor": 2}},
    BOB: {"reviews": 2, "signed": 1,
          "by_protocol": {"lower-limb-arterial": {"reviews": 2, "signed": 1, "competent": 1, "needs_supervision": 0,
                                                  "missing_views": {}}},
          # p5 rates one image on frames [1, 2]: one image rated (README "counts images rated")
          "quality": {"good": 1, "adequate": 0, "poor": 0}},
    LUCJA: {"reviews": 1, "signed": 1,
            "by_protocol": {"aaa-surveillance": {"reviews": 1, "signed": 1, "competent": 1, "needs_supervision": 0,
                                                 "missing_views": {}}},
            "quality": {"good": 0, "adequate": 0, "poor": 0}},
}

EXPECTED_AUDIT = {
    "reviews": 5,
    "by_agreement": {"agree": 2, "minor-discrepancy": 2, "major-discrepancy": 1},
    "by_score": {"1": 1, "2a": 2, "2b": 0, "3a": 0, "3b": 1, "unscored": 1},
    "by_reporter": {"Ravi Reporter": (3, 1, 1, 1), "Rita Reporter": (2, 1, 1, 0)},  # reviews, agree, minor, major
}
#: 95 % Wilson interval of 3/5 (discrepancies) and 1/5 (major), to 4 places (Newcombe 1998, method 3)
WILSON_3_OF_5 = (0.2307, 0.8824)
WILSON_1_OF_5 = (0.0362, 0.6245)
