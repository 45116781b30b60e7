"""Review SRs: written with highdicom, valid for DCMTK and dicom3tools, read back field by field."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import fields, replace

import pydicom
import pytest

from conftest import TESTDATA
from mdtviewer.sr.model import Review, Verifier
from mdtviewer.sr.reader import read_sr
from mdtviewer.sr.review_reader import review_from_sr
from mdtviewer.sr.writer import build_review_sr
from mdtviewer.workflows import reviews
from sr_helpers import (
    CINE,
    DCMTK_UTF8_NOTE,
    GE_FILES,
    ORG,
    TRAINER,
    dciodvfy_errors,
    dsrdump,
    header,
    preceptorship,
    second_opinion,
    uid,
)

pytestmark = pytest.mark.dcmtk


def _assert_same(a: Review, b: Review) -> None:
    for f in fields(Review):
        assert getattr(a, f.name) == getattr(b, f.name), f.name
    assert a == b


@pytest.mark.parametrize("make, evidence", [(second_opinion, GE_FILES), (preceptorship, [CINE])])
@pytest.mark.parametrize("signed", [False, True])
def test_round_trip_field_by_field(make, evidence, signed, tmp_path):
    review = make(signed=signed)
    if signed:  # a verification time after the content time is written as given (an earlier one is not)
        review = replace(review, verifier=replace(review.verifier, datetime="20991125101500+0000"))
    path = (reviews.sign(replace(review, verifier=None), review.verifier, evidence, folder=tmp_path)
            if signed else reviews.save_draft(review, evidence, folder=tmp_path))
    back = review_from_sr(path)
    _assert_same(back, review)
    # from the data set as well as the file
    _assert_same(review_from_sr(pydicom.dcmread(path)), review)


def test_header_same_study_new_series_utf8_patient_copied(tmp_path):
    review = second_opinion()
    review = replace(review, verifier=replace(review.verifier, datetime="20991125101500+0000"))  # after content
    src = header(GE_FILES[0])
    path = reviews.sign(replace(review, verifier=None), review.verifier, GE_FILES, folder=tmp_path)
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33"
    assert ds.Modality == "SR"
    assert ds.StudyInstanceUID == src.StudyInstanceUID
    assert ds.SeriesInstanceUID not in {header(p).SeriesInstanceUID for p in GE_FILES}
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    for kw in ("PatientName", "PatientID", "PatientSex", "StudyDate", "StudyID", "AccessionNumber"):
        assert str(ds.get(kw, "")) == str(src.get(kw, "")), kw
    assert ds.CompletionFlag == "COMPLETE" and ds.VerificationFlag == "VERIFIED" and ds.PreliminaryFlag == "FINAL"
    vo = ds.VerifyingObserverSequence[0]
    assert (str(vo.VerifyingObserverName), vo.VerifyingOrganization, vo.VerificationDateTime) == (
        TRAINER, ORG, "20991125101500+0000")
    # every referenced instance is in the evidence sequence, in its own series
    ev = {
        sop.ReferencedSOPInstanceUID: (series.SeriesInstanceUID, sop.ReferencedSOPClassUID)
        for study in ds.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for sop in series.ReferencedSOPSequence
    }
    for p in GE_FILES:
        h = header(p)
        assert ev[h.SOPInstanceUID] == (h.SeriesInstanceUID, h.SOPClassUID)
    # private scheme declared
    assert "99MDTV" in {i.CodingSchemeDesignator for i in ds.CodingSchemeIdentificationSequence}
    # the raw bytes really are UTF-8
    raw = path.read_bytes()
    assert TRAINER.encode("utf-8") in raw and "Ærøskøbing".encode() in raw


def test_draft_flags_and_no_verifier(tmp_path):
    path = reviews.save_draft(preceptorship(signed=False), [CINE], folder=tmp_path)
    ds = pydicom.dcmread(path)
    assert (ds.CompletionFlag, ds.VerificationFlag) == ("PARTIAL", "UNVERIFIED")
    assert "VerifyingObserverSequence" not in ds
    doc = read_sr(path)
    assert doc.is_review and doc.review_kind == "preceptorship" and doc.status == "draft"


def test_image_items_carry_frame_numbers(tmp_path):
    path = reviews.save_draft(preceptorship(signed=False), [CINE], folder=tmp_path)
    frames = sorted({tuple(r.frames) for r in read_sr(path).image_refs()})
    assert frames == [(), (3,), (10,), (20,)]
    assert {r.sop_instance_uid for r in read_sr(path).image_refs()} == {uid(CINE)}


@pytest.mark.parametrize("make, evidence", [(second_opinion, GE_FILES), (preceptorship, [CINE])])
def test_dcmtk_and_dciodvfy_accept_draft_signed_and_amendment(make, evidence, tmp_path):
    draft = reviews.save_draft(make(signed=False), evidence, folder=tmp_path)
    review = make(signed=True)
    signed = reviews.sign(replace(review, verifier=None), review.verifier, evidence, folder=tmp_path)
    amended_review = replace(review, summary=review.summary + " Amended: Ærøskøbing follow-up in 6 months.",
                             verifier=Verifier(TRAINER, ORG))
    amendment = reviews.amend(signed, amended_review, evidence, folder=tmp_path)
    for path in (draft, signed, amendment):
        text = dsrdump(path)
        assert TRAINER in text  # observer name shown correctly in UTF-8
        assert "Ærøskøbing" in text
        assert dciodvfy_errors(path) == [], path.name
    assert "Verification Flag   : UNVERIFIED" in dsrdump(draft)
    assert "Verification Flag   : VERIFIED" in dsrdump(signed)
    assert "Predecessor Docs    : 1" in dsrdump(amendment)


def test_amendment_references_old_and_leaves_it_untouched(tmp_path):
    review = second_opinion()
    old = reviews.sign(replace(review, verifier=None), review.verifier, GE_FILES, folder=tmp_path)
    before = hashlib.sha256(old.read_bytes()).hexdigest()
    new = reviews.amend(old, replace(review, agreement="major-discrepancy", verifier=Verifier(TRAINER, ORG)),
                        GE_FILES, folder=tmp_path)
    assert new != old
    assert hashlib.sha256(old.read_bytes()).hexdigest() == before
    old_ds, new_ds = pydicom.dcmread(old), pydicom.dcmread(new)
    pred = new_ds.PredecessorDocumentsSequence[0]
    assert pred.StudyInstanceUID == old_ds.StudyInstanceUID
    ref = pred.ReferencedSeriesSequence[0]
    assert ref.SeriesInstanceUID == old_ds.SeriesInstanceUID
    assert ref.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == old_ds.SOPInstanceUID
    assert new_ds.SOPInstanceUID != old_ds.SOPInstanceUID
    back = review_from_sr(new)
    assert back.agreement == "major-discrepancy"
    assert back.predecessor_sop_instance_uid == old_ds.SOPInstanceUID
    assert back.verifier.datetime  # signed now
    assert read_sr(new).predecessors == [old_ds.SOPInstanceUID]


def test_unknown_image_or_bad_frame_is_refused_before_anything_is_written(tmp_path):
    review = preceptorship(signed=False)
    with pytest.raises(ValueError, match="34 frame"):
        build_review_sr(replace(review, views=[replace(review.views[0], frame=35)] + review.views[1:]), [CINE])
    with pytest.raises(ValueError, match="none of the evidence belongs to the reviewed study"):
        build_review_sr(review, GE_FILES)  # another study's instances
    with pytest.raises(ValueError, match="not among the reviewed study's instances"):
        build_review_sr(replace(review, comments=[replace(review.comments[0], sop_instance_uid="1.2.3.999")]), [CINE])
    with pytest.raises(ValueError, match="not part of protocol"):
        build_review_sr(replace(review, views=[replace(review.views[0], view_id="NOPE")]), [CINE])
    assert list(tmp_path.iterdir()) == []


def test_signing_an_incomplete_review_is_refused():
    review = preceptorship(signed=False)
    with pytest.raises(ValueError, match="outcome"):
        replace(review, outcome=None, verifier=Verifier(TRAINER, ORG))
    with pytest.raises(ValueError, match="agreement"):
        replace(second_opinion(signed=False), agreement=None, agreement_reason="", verifier=Verifier(TRAINER, ORG))


def test_reviews_for_study_newest_verified_first(tmp_path):
    review = second_opinion()
    draft = reviews.save_draft(replace(review, verifier=None), GE_FILES)
    early = reviews.sign(replace(review, verifier=None), Verifier(TRAINER, ORG, "20260101090000+0000"), GE_FILES)
    second = Verifier("Second^Reader", ORG, "20260301090000+0000")
    late = reviews.amend(early, replace(review, verifier=second), GE_FILES)
    # a foreign SR of another study in the same folder is not listed
    shutil.copy(TESTDATA / "sr_comprehensive_offis_test.dcm", draft.parent / "foreign.dcm")
    docs = reviews.reviews_for_study(review.study_instance_uid, None)
    assert [d.path for d in docs] == [late, early, draft]
    assert all(d.is_review for d in docs)
    assert [d.superseded_by for d in docs] == ["", docs[0].sop_instance_uid, ""]
    assert reviews.reviews_for_study("1.2.3.4", None) == []
    # drafts and signed documents live in the local store's review folder
    assert draft.parent == reviews.review_dir(review.study_instance_uid)


def test_frame_one_of_a_single_frame_image_is_the_image(tmp_path):
    review = second_opinion(signed=False)
    g = uid(GE_FILES[0])
    review = replace(review, comments=[replace(review.comments[0], frame=1)])
    path = reviews.save_draft(review, GE_FILES, folder=tmp_path)
    refs = [r for r in read_sr(path).image_refs() if r.sop_instance_uid == g]
    assert refs and all(r.frames == [] for r in refs)
    assert review_from_sr(path).comments[0].frame is None
    assert dciodvfy_errors(path) == []


def test_the_one_dcmtk_note_is_about_utf8_not_our_files():
    """DCMTK 3.6.7 prints DCMTK_UTF8_NOTE for any ISO_IR 192 file, e.g. the corpus's dcmjs TID 1500 SR;
    it is the only line our files may produce (sr_helpers.dsrdump fails on any other)."""
    import subprocess

    r = subprocess.run(["dsrdump", str(TESTDATA / "sr_enhanced_tid1500_dcmjs.dcm")], capture_output=True, text=True)
    assert DCMTK_UTF8_NOTE in r.stderr.splitlines()


def test_highdicom_reads_our_sr_and_a_draft_can_be_continued(tmp_path):
    import highdicom as hd

    first = reviews.save_draft(preceptorship(signed=False), [CINE], folder=tmp_path)
    sr = hd.sr.srread(first)
    assert type(sr).__name__ == "ComprehensiveSR"
    assert [(study, sop) for study, _series, sop, _cls in sr.get_evidence()] == [
        (str(header(CINE).StudyInstanceUID), uid(CINE))
    ]
    draft = review_from_sr(first)
    continued = replace(draft, summary=draft.summary + " Second session: better angles.", outcome="competent")
    second = reviews.save_draft(continued, [CINE], folder=tmp_path)
    assert second != first and first.exists()
    assert review_from_sr(second) == continued
    assert read_sr(second).status == "draft"


def test_one_finding_on_several_frames_is_written_once_and_reads_back_per_frame(tmp_path):
    """A comment or rating given for frames 3 and 4 is one TEXT/CODE item whose IMAGE names
    both frames (not the same text twice); the model read back is unchanged, in order, and
    findings that are not next to each other are not merged."""
    from mdtviewer.sr.model import ImageComment, ImageRating

    c = uid(CINE)
    review = replace(
        preceptorship(signed=False),
        comments=[
            ImageComment(c, 3, "Ærøskøbing: aliasing"),
            ImageComment(c, 4, "Ærøskøbing: aliasing"),
            ImageComment(c, 4, "Angle > 60°"),
            ImageComment(c, 5, "Ærøskøbing: aliasing"),
        ],
        image_ratings=[
            ImageRating(c, 7, "poor", "too deep"),
            ImageRating(c, 8, "poor", "too deep"),
            ImageRating(c, 9, "good", ""),
        ],
    )
    path = reviews.save_draft(review, [CINE], folder=tmp_path)
    _assert_same(review_from_sr(path), review)
    raw = path.read_bytes()
    assert raw.count("Ærøskøbing: aliasing".encode()) == 2  # frames 3+4 once, frame 5 on its own
    assert raw.count(b"too deep") == 1
    frames = sorted(tuple(i.frames) for i in read_sr(path).image_refs())
    assert (3, 4) in frames and (7, 8) in frames and (5,) in frames
    dsrdump(path)
    assert dciodvfy_errors(path) == []


def _instant(dt: str, offset: str = ""):
    """A DICOM date-time at full precision (independent of the writer's own parsing); no offset: local time."""
    import datetime as dt_

    base, _, frac = dt[:14].ljust(14, "0"), None, ""
    rest = dt[14:]
    if rest.startswith("."):
        frac = rest[1:].split("+")[0].split("-")[0]
        rest = rest[1 + len(frac):]
    offset = rest or offset
    t = dt_.datetime.strptime(base, "%Y%m%d%H%M%S").replace(microsecond=int(frac.ljust(6, "0")) if frac else 0)
    return t.replace(tzinfo=dt_.datetime.strptime(offset, "%z").tzinfo) if offset else t.astimezone()


def _content_instant(ds):
    return _instant(f"{ds.ContentDate}{ds.ContentTime}", str(ds.get("TimezoneOffsetFromUTC", "") or ""))


def test_verification_never_before_content_and_registration_recorded(tmp_path):
    """Issue 10.10, QA 7: the verification date-time is never earlier than the content date-time, compared at
    full precision; a given time is kept as given; one before the reviewed study is refused with its reason."""
    from mdtviewer.sr.model import ReviewError, now_dt

    review = second_opinion(signed=True)
    # signed in the window: the time is taken when the signer confirms, before the document is built
    for verifier in (Verifier(TRAINER, ORG, now_dt(), registration="HCPC CS123456"), Verifier(TRAINER, ORG)):
        path = reviews.sign(replace(review, verifier=None), verifier, GE_FILES, folder=tmp_path)
        ds = header(path)
        item = ds.VerifyingObserverSequence[0]
        assert _instant(str(item.VerificationDateTime)) >= _content_instant(ds), (item.VerificationDateTime,
                                                                                  ds.ContentTime)
        if verifier.datetime:
            assert item.VerificationDateTime == verifier.datetime  # kept as given
        else:  # one clock reading for both
            assert _instant(str(item.VerificationDateTime)) == _content_instant(ds)
    path = reviews.sign(replace(review, verifier=None), Verifier(TRAINER, ORG, now_dt(), registration="HCPC CS123456"),
                        GE_FILES, folder=tmp_path)
    code = header(path).VerifyingObserverSequence[0].VerifyingObserverIdentificationCodeSequence[0]
    assert code.CodeValue == "HCPC CS123456" and "HCPC CS123456" in code.CodeMeaning
    assert "Verification Flag   : VERIFIED" in dsrdump(path)
    assert dciodvfy_errors(path) == []
    # a sign-off recorded later (the GE study is from 2004): kept as given; the content was complete by then
    early = Verifier(TRAINER, ORG, "20200101000000+0000")
    path = reviews.sign(replace(review, verifier=None), early, GE_FILES, folder=tmp_path)
    ds = header(path)
    assert ds.VerifyingObserverSequence[0].VerificationDateTime == "20200101000000+0000"
    assert _content_instant(ds) == _instant("20200101000000+0000")
    assert review_from_sr(path).verifier == early
    # before the study was done: refused, with the reason
    with pytest.raises(ReviewError, match=r"before the reviewed study \(20040826\)"):
        reviews.sign(replace(review, verifier=None), Verifier(TRAINER, ORG, "20030101000000+0000"), GE_FILES,
                     folder=tmp_path)
    # an amendment signed before the content of the report it amends: refused
    with pytest.raises(ReviewError, match="before the content of the document it amends"):
        reviews.amend(path, replace(review, verifier=Verifier(TRAINER, ORG, "20191231000000+0000")), GE_FILES,
                      folder=tmp_path)
    # a later verification time is kept as given
    late = Verifier(TRAINER, ORG, "20990101000000+0000")
    path2 = reviews.sign(replace(review, verifier=None), late, GE_FILES, folder=tmp_path)
    assert header(path2).VerifyingObserverSequence[0].VerificationDateTime == "20990101000000+0000"
    assert _content_instant(header(path2)) <= _instant("20990101000000+0000")


def test_a_trainee_author_is_written_as_one_observer(tmp_path, capsys):
    """QA 8: `sr write` with the trainee as author, a verifier and no trainee key: one observer block."""
    import json

    from mdtviewer.cli import main as cli_main

    sop = str(header(CINE).SOPInstanceUID)
    spec = {"kind": "preceptorship", "author": {"name": "Trainee^Tom", "role": "trainee"},
            "verifier": {"name": "Trainer^Tess", "organization": "QA Vascular Lab"}, "protocol": "carotid-duplex",
            "outcome": "needs-supervision", "summary": "Doppler angle too steep on R ICA.",
            "images": [{"sop_instance_uid": sop, "frames": [10, 20], "quality": "adequate"}]}
    (tmp_path / "r.json").write_text(json.dumps(spec), encoding="utf-8")
    out = tmp_path / "r.dcm"
    from sr_helpers import sign_as

    sign_as("Trainer^Tess", "QA Vascular Lab")  # `sr write` signs as this account's reviewer profile
    assert cli_main(["sr", "write", "--review", str(tmp_path / "r.json"), "--study", str(CINE), "--out", str(out)]) == 0
    ds = pydicom.dcmread(out)
    names = [str(it.PersonName) for it in ds.ContentSequence if it.ConceptNameCodeSequence[0].CodeValue == "121008"]
    # the trainee once (author and trainee); the trainer who signed after it, in the role signed in (QA2 5)
    assert names == ["Trainee^Tom", "Trainer^Tess"]
    types = [it for it in ds.ContentSequence if it.ConceptNameCodeSequence[0].CodeValue == "121005"]
    assert len(types) == 2
    back = review_from_sr(out)
    assert back.author.name == "Trainee^Tom" and back.trainee == back.author  # still the trainee it is about
    assert back.verifier is not None and back.verifier.role == "trainer"
    capsys.readouterr()
    assert cli_main(["sr", "show", str(out), "--show-identifiers"]) == 0
    shown = capsys.readouterr().out
    assert [ln.split(": ", 1)[1] for ln in shown.splitlines() if "Person Observer Name" in ln] == [
        "Trainee^Tom", "Trainer^Tess"]
    assert "Observers: Trainee^Tom; Trainer^Tess\n" in shown
    assert dciodvfy_errors(out) == []
