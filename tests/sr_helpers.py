"""Shared helpers for the SR tests: reviews on corpus studies and DCMTK/dicom3tools checks."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pydicom

from conftest import TESTDATA
from mdtviewer.sr.model import ImageComment, ImageRating, KeyImage, Person, Review, Verifier, ViewCheck

#: GE LOGIQ 700 study: three single-frame US instances
GE_FILES = [
    TESTDATA / "us_ge_logiq700_j2k_lossless_ybr_rct.dcm",
    TESTDATA / "us_ge_logiq700_j2k_lossy_ybr_ict.dcm",
    TESTDATA / "us_ge_logiq700_rgb_explicit_le.dcm",
]
#: HP echo cine, 34 frames
CINE = TESTDATA / "usmf_hp_jpeg_ybr422_34f.dcm"

#: DCMTK 3.6.7 prints this for every ISO_IR 192 file (its VR checker has no
#: UTF-8 support), including the corpus's own TID 1500 file; it is about the
#: tool, not the file, and ISO_IR 192 is required.
DCMTK_UTF8_NOTE = "W: The VR checker does not support this Specific Character Set: ISO_IR 192"

TRAINER = "Łukasz Żółć"
ORG = "Ærøskøbing Vascular Lab"


def header(path: Path) -> pydicom.Dataset:
    return pydicom.dcmread(path, stop_before_pixels=True)


def uid(path: Path) -> str:
    return str(header(path).SOPInstanceUID)


def second_opinion(signed: bool = True) -> Review:
    g = [uid(p) for p in GE_FILES]
    return Review(
        kind="second-opinion",
        author=Person(TRAINER, "second-reader", ORG),
        study_instance_uid=str(header(GE_FILES[0]).StudyInstanceUID),
        summary="Agree with the report: 50–69 % ICA stenosis. Ærøskøbing criteria.",
        agreement="minor-discrepancy",
        agreement_reason="Plaque length under-called (Łódź protocol)",
        comments=[
            ImageComment(g[0], None, "Aliasing at the bulb — raise PRF"),
            ImageComment(g[1], None, "Lossy copy: ignore"),
        ],
        image_ratings=[ImageRating(g[0], None, "good", "")],
        key_images=[KeyImage(g[2])],
        verifier=Verifier(TRAINER, ORG, "20261125101500+0000") if signed else None,
    )


def preceptorship(signed: bool = True) -> Review:
    c = uid(CINE)
    return Review(
        kind="preceptorship",
        author=Person(TRAINER, "trainer", ORG),
        trainee=Person("Ærøskøbing^Åse", "trainee"),
        study_instance_uid=str(header(CINE).StudyInstanceUID),
        summary="Systematic scan; spectral angle needs work.",
        protocol="carotid-duplex",
        views=[
            ViewCheck("R-CCA-PW", True, c, 3),
            ViewCheck("R-ICA-PW", True, c, 10),
            ViewCheck("R-ICA-DIST", False),
            ViewCheck("R-VA-PW", True, c, None),
        ],
        image_ratings=[ImageRating(c, 3, "adequate", "angle 64° > 60°"), ImageRating(c, 10, "poor", "")],
        outcome="needs-supervision",
        comments=[
            ImageComment(c, 20, "Colour box too wide — frame rate drops"),
            ImageComment(c, None, "Whole clip: good sweep"),
        ],
        verifier=Verifier(TRAINER, ORG, "20261125111500+0100") if signed else None,
    )


def dsrdump(path: Path) -> str:
    """dsrdump +U8 output; asserts no warning or error (other than the DCMTK UTF-8 note)."""
    # dsrdump shortens long values by bytes, which may cut a UTF-8 character: decode leniently
    r = subprocess.run(
        ["dsrdump", "+U8", str(path)], capture_output=True, timeout=60, text=True, encoding="utf-8", errors="replace"
    )
    assert r.returncode == 0, r.stderr
    problems = [
        line
        for line in (r.stdout + "\n" + r.stderr).splitlines()
        if (line.startswith(("W:", "E:", "F:")) or "Warning" in line or "Error" in line) and line != DCMTK_UTF8_NOTE
    ]
    assert not problems, problems
    return r.stdout


def dciodvfy_errors(path: Path) -> list[str]:
    r = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    out = (r.stdout + "\n" + r.stderr).splitlines()
    assert any("ComprehensiveSR" in line for line in out), out  # it really recognised the IOD
    return [line for line in out if line.startswith("Error")]


def sign_as(name: str, organization: str = ORG, role: str = "trainer", registration: str = "HCPC CS000001") -> None:
    """Set this (test) account's reviewer profile: `sr write` signs a review in the profile's name only."""
    from mdtviewer.workflows import reviewer_profile

    reviewer_profile.save(reviewer_profile.ReviewerProfile(name, role, registration, organization))
