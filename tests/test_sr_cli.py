"""`mdtviewer sr write`: good JSON writes a valid review SR; bad input writes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pydicom
import pytest

from conftest import TESTDATA
from mdtviewer.cli.sr import main
from mdtviewer.sr.reader import read_sr
from mdtviewer.sr.review_reader import review_from_sr
from sr_helpers import CINE, GE_FILES, ORG, TRAINER, dciodvfy_errors, dsrdump, header, uid


@pytest.fixture(autouse=True)
def reviewer_profile_of_this_account():
    """`sr write` signs as the reviewer profile of the account (never a name from the JSON)."""
    from sr_helpers import sign_as

    sign_as(TRAINER, ORG, role="second-reader")


@pytest.fixture
def study(tmp_path):
    """A folder holding the GE study's three instances (symlinks: the corpus is never copied)."""
    d = tmp_path / "study"
    d.mkdir()
    for p in GE_FILES:
        (d / p.name).symlink_to(p)
    return d


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def write_json(tmp_path, data, name="review.json"):
    p = tmp_path / name
    p.write_text(json.dumps(data, ensure_ascii=False) if not isinstance(data, str) else data, encoding="utf-8")
    return p


def second_opinion_json():
    g = [uid(p) for p in GE_FILES]
    return {
        "kind": "second-opinion",
        "author": {"name": TRAINER, "role": "second-reader"},
        "verifier": {"name": TRAINER, "organization": ORG},
        "graded_report": None,  # signed recording that no report was graded (QA2 13)
        "agreement": "agree",
        "agreement_reason": "Same grading — Ærøskøbing criteria",
        "summary": "Agree.",
        "images": [
            {"sop_instance_uid": g[0], "quality": "good", "comment": "Clear plaque"},
            {"sop_instance_uid": g[1]},
        ],
    }


def test_write_good_json_signed_second_opinion(capsys, tmp_path, study):
    out_file = tmp_path / "out" / "review.dcm"
    rc, out, err = run(capsys, "write", "--review", str(write_json(tmp_path, second_opinion_json())),
                       "--study", str(study), "--out", str(out_file))
    assert (rc, err) == (0, "")
    assert out.strip() == str(out_file)
    ds = pydicom.dcmread(out_file)
    assert ds.StudyInstanceUID == header(GE_FILES[0]).StudyInstanceUID
    assert ds.VerificationFlag == "VERIFIED" and ds.CompletionFlag == "COMPLETE"
    assert str(ds.VerifyingObserverSequence[0].VerifyingObserverName) == TRAINER
    r = review_from_sr(out_file)
    assert (r.kind, r.agreement, r.agreement_reason) == (
        "second-opinion",
        "agree",
        "Same grading — Ærøskøbing criteria",
    )
    assert [(c.sop_instance_uid, c.frame, c.text) for c in r.comments] == [(uid(GE_FILES[0]), None, "Clear plaque")]
    assert [(q.sop_instance_uid, q.quality) for q in r.image_ratings] == [(uid(GE_FILES[0]), "good")]
    assert [k.sop_instance_uid for k in r.key_images] == [uid(GE_FILES[1])]
    dsrdump(out_file)
    assert dciodvfy_errors(out_file) == []


def test_write_preceptorship_draft_with_frames_and_views(capsys, tmp_path):
    c = uid(CINE)
    data = {
        "kind": "preceptorship",
        "author": {"name": "Trainer^Tom", "role": "trainer"},
        "trainee": {"name": "Żółć^Łukasz"},
        "protocol": "aaa-surveillance",
        "views": [{"view": "AO-MAX-TS", "sop_instance_uid": c, "frame": 12}, {"view": "R-CIA", "present": False}],
        "summary": "Draft",
        "images": [{"sop_instance_uid": c, "frames": [2, 5], "quality": "poor", "comment": "Too deep"}],
    }
    out_file = tmp_path / "p.dcm"
    rc, out, err = run(
        capsys, "write", "--review", str(write_json(tmp_path, data)), "--study", str(CINE), "--out", str(out_file)
    )
    assert (rc, err) == (0, ""), err
    ds = pydicom.dcmread(out_file)
    assert (ds.CompletionFlag, ds.VerificationFlag) == ("PARTIAL", "UNVERIFIED")
    r = review_from_sr(out_file)
    assert r.trainee.name == "Żółć^Łukasz"
    assert [(q.frame, q.quality) for q in r.image_ratings] == [(2, "poor"), (5, "poor")]
    assert [(x.frame, x.text) for x in r.comments] == [(2, "Too deep"), (5, "Too deep")]
    views = {v.view_id: v for v in r.views}
    from mdtviewer.sr.protocols import get_protocol

    proto = get_protocol("aaa-surveillance")
    # every required view is recorded (the unnamed ones as missing), optional ones when named
    assert set(views) == {v.id for v in proto.required_views} | {"AO-MAX-TS", "R-CIA"}
    assert (views["AO-MAX-TS"].present, views["AO-MAX-TS"].frame) == (True, 12)
    assert not views["R-CIA"].present and not views["AO-MAX-LS"].present
    # one comment and one rating for frames 2 and 5, each with one IMAGE item naming both frames
    assert sorted({tuple(i.frames) for i in read_sr(out_file).image_refs()}) == [(2, 5), (12,)]
    raw = out_file.read_bytes()
    assert raw.count(b"Too deep") == 1 and raw.count(b"122742") == 1  # (122742, DCM, "Poor image quality")
    dsrdump(out_file)
    assert dciodvfy_errors(out_file) == []


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: "{not json", "not valid JSON"),
        (lambda d: [1, 2], "must be an object"),
        (lambda d: {**d, "images": [{"sop_instance_uid": "1.2.3.4.5.6"}]}, "unknown SOP instance UID 1.2.3.4.5.6"),
        (lambda d: {**d, "kind": "opinion"}, "unknown review kind"),
        (lambda d: {**d, "agreement": "maybe"}, "unknown agreement"),
        (lambda d: {**d, "sumary": "typo"}, "unknown key(s) in review JSON: sumary"),
        (lambda d: {**d, "author": {"name": "X", "role": "boss"}}, "unknown role"),
        (
            lambda d: {**d, "images": [{"sop_instance_uid": d["images"][0]["sop_instance_uid"], "frames": [0]}]},
            "frame numbers are whole numbers from 1",
        ),
        (lambda d: {**d, "verifier": {"name": "X"}}, "signed only in the profile's name"),
        (
            lambda d: {k: v for k, v in d.items() if k != "agreement"} | {"agreement_reason": ""},
            "signed without an agreement",
        ),
        (
            lambda d: {
                **d,
                "kind": "preceptorship",
                "agreement": None,
                "agreement_reason": "",
                "verifier": None,
                "protocol": "no-such-protocol",
            },
            "unknown protocol",
        ),
    ],
)
def test_bad_input_is_a_clear_error_and_writes_nothing(capsys, tmp_path, study, mutate, message):
    data = mutate(second_opinion_json())
    review = write_json(tmp_path, data if isinstance(data, str) else json.dumps(data, ensure_ascii=False))
    out_file = tmp_path / "out.dcm"
    rc, out, err = run(capsys, "write", "--review", str(review), "--study", str(study), "--out", str(out_file))
    assert rc == 1
    assert out == ""
    assert err.startswith("mdtviewer sr write: error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1
    assert not out_file.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name not in ("study", "review.json")] == []


def test_existing_output_needs_force(capsys, tmp_path, study):
    out_file = tmp_path / "keep.dcm"
    out_file.write_bytes(b"precious")
    args = [
        "write",
        "--review",
        str(write_json(tmp_path, second_opinion_json())),
        "--study",
        str(study),
        "--out",
        str(out_file),
    ]
    rc, _out, err = run(capsys, *args)
    assert rc == 1 and "exists" in err and out_file.read_bytes() == b"precious"
    rc, _out, err = run(capsys, *args, "--force")
    assert rc == 0 and pydicom.dcmread(out_file).Modality == "SR"


def test_usage_errors_exit_2(capsys, tmp_path):
    assert run(capsys, "write", "--review", "x.json")[0] == 2
    assert run(capsys)[0] == 2
    assert run(capsys, "frobnicate")[0] == 2
    rc, out, _ = run(capsys, "--help")
    assert rc == 0 and "show" in out and "write" in out


def test_whole_command_line_from_a_shell(tmp_path, study):
    """Through `python -m mdtviewer`, as a user would type it."""
    review = write_json(tmp_path, second_opinion_json())
    out_file = tmp_path / "shell.dcm"
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
            str(study),
            "--out",
            str(out_file),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        # the home whose reviewer profile signs (set by the autouse fixture above)
        env={"PATH": "/usr/bin:/bin", "MDTVIEWER_HOME": os.environ["MDTVIEWER_HOME"], "LANG": "C.UTF-8"},
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(out_file)
    r = subprocess.run(
        [sys.executable, "-m", "mdtviewer", "sr", "show", str(out_file)],
        capture_output=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "MDTVIEWER_HOME": os.environ["MDTVIEWER_HOME"]},
    )
    text = r.stdout.decode("utf-8")
    assert "Review: second opinion (written by mdtviewer)" in text
    assert f"Verified by: {TRAINER}, {ORG}" in text
    assert "Agreement with original report (AGREEMENT, 99MDTV): Agreement with prior findings (122775, DCM)" in text


def test_protocols_and_list(capsys, tmp_path, study):
    rc, out, _ = run(capsys, "protocols")
    assert rc == 0
    for pid in (
        "carotid-duplex",
        "lower-limb-arterial",
        "lower-limb-venous-reflux",
        "aaa-surveillance",
        "upper-limb-avf",
    ):
        assert f"\n{pid}: " in "\n" + out
    from mdtviewer.workflows import reviews

    out_file = tmp_path / "l.dcm"
    assert (
        run(
            capsys,
            "write",
            "--review",
            str(write_json(tmp_path, second_opinion_json())),
            "--study",
            str(study),
            "--out",
            str(out_file),
        )[0]
        == 0
    )
    rc, out, _ = run(capsys, "list", header(GE_FILES[0]).StudyInstanceUID, "--folder", str(tmp_path))
    assert rc == 0 and "signed" in out and "second-opinion" in out and str(out_file) in out
    assert TESTDATA.is_dir() and reviews.reviews_for_study("9.9.9", [tmp_path]) == []


def test_study_path_can_be_the_whole_corpus_folder(capsys, tmp_path):
    """Many studies and damaged files beside the reviewed one: the named image decides the study, quietly."""
    data = second_opinion_json()
    out_file = tmp_path / "corpus.dcm"
    rc, out, err = run(
        capsys, "write", "--review", str(write_json(tmp_path, data)), "--study", str(TESTDATA), "--out", str(out_file)
    )
    assert (rc, err) == (0, "")
    assert pydicom.dcmread(out_file).StudyInstanceUID == header(GE_FILES[0]).StudyInstanceUID
    data["images"] = []
    rc, out, err = run(
        capsys,
        "write",
        "--review",
        str(write_json(tmp_path, data, "n.json")),
        "--study",
        str(TESTDATA),
        "--out",
        str(tmp_path / "none.dcm"),
    )
    assert rc == 1 and "studies; name an image or study_instance_uid" in err
    assert not (tmp_path / "none.dcm").exists()


def test_optional_protocol_views_not_given_are_not_recorded_as_missing(capsys, tmp_path):
    """The carotid protocol's subclavian view is optional: a trainee who did not need it has no gap,
    as in the review editor; the required views not named are recorded as missing."""
    from mdtviewer.sr.protocols import get_protocol

    proto = get_protocol("carotid-duplex")
    optional = [v.id for v in proto.views if not v.required]
    assert optional == ["SUBCL-PW"]
    c = uid(CINE)
    data = {
        "kind": "preceptorship",
        "author": {"name": "Trainer^Tom", "role": "trainer"},
        "trainee": {"name": "Lee^Ann"},
        "protocol": "carotid-duplex",
        "summary": "Draft",
        "views": [{"view": "R-CCA-PW", "sop_instance_uid": c, "frame": 3}],
    }
    out_file = tmp_path / "p.dcm"
    rc, _out, err = run(
        capsys, "write", "--review", str(write_json(tmp_path, data)), "--study", str(CINE), "--out", str(out_file)
    )
    assert rc == 0, err
    views = {v.view_id: v for v in review_from_sr(out_file).views}
    assert "SUBCL-PW" not in views
    assert set(views) == {v.id for v in proto.required_views}
    assert views["R-CCA-PW"].present and not views["L-ICA-PW"].present
    # named, the optional view is recorded
    data["views"].append({"view": "SUBCL-PW", "sop_instance_uid": c, "frame": 30})
    rc, _out, err = run(
        capsys,
        "write",
        "--review",
        str(write_json(tmp_path, data)),
        "--study",
        str(CINE),
        "--out",
        str(out_file),
        "--force",
    )
    assert rc == 0, err
    assert {v.view_id: v for v in review_from_sr(out_file).views}["SUBCL-PW"].frame == 30
