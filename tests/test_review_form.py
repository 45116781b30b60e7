"""The review form's state and the report panel's file loading, without Qt (workflows/review_form, report_files)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from mdtviewer.dicom.index import scan
from mdtviewer.infra.errors import MdtError
from mdtviewer.sr import model as m
from mdtviewer.sr.protocols import load_protocols
from mdtviewer.sr.review_reader import review_from_sr
from mdtviewer.workflows import report_files
from mdtviewer.workflows.review_form import (
    EditorState,
    ReviewFormError,
    build_review,
    default_role_for,
    evidence_for,
    reference_label,
    remember_reviewer,
    sign_check,
    state_from_review,
    with_remembered_author,
    write_review,
)

REPO = Path(__file__).resolve().parent.parent
CINE, STILL = "usmf_hp_jpeg_ybr422_34f.dcm", "us_philips_epiq7c_mono2_jpeg_lossless_sv1.dcm"


def test_the_form_and_file_loading_import_no_qt():
    code = (
        "import sys\n"
        "import mdtviewer.workflows.review_form, mdtviewer.workflows.report_files\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph', 'mdtviewer.ui')))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def _second_opinion(**kw) -> EditorState:
    base = dict(
        author_name="Reader^Rita",
        author_role="second-reader",
        author_organization="Vasc Lab",
        study_instance_uid="1.2.3",
    )
    return EditorState(**{**base, **kw})


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (_second_opinion(author_name="  "), "enter the author's name"),
        (_second_opinion(study_instance_uid=""), "open an image of the study to review first"),
        (_second_opinion(agreement_reason="PSV under-called"), "choose an agreement grade for the reason given"),
        (_second_opinion(kind="audit"), "unknown review kind 'audit'"),
    ],
)
def test_what_the_form_lacks_is_one_expected_error_with_a_reason(state, reason):
    with pytest.raises(ReviewFormError) as e:
        build_review(state)
    assert e.value.reason == reason
    assert isinstance(e.value, MdtError) and isinstance(e.value, ValueError)


def test_second_opinion_keeps_only_its_own_fields():
    st = _second_opinion(
        agreement="minor-discrepancy",
        agreement_reason=" PSV under-called ",
        summary=" ok ",
        trainee_name="Trainee^Tom",
        outcome="competent",
    )
    st.add_comment("1.2.3.4", 12, "  Aliasing here  ")
    r = build_review(st)
    assert (r.kind, r.agreement, r.agreement_reason, r.summary) == (
        "second-opinion",
        "minor-discrepancy",
        "PSV under-called",
        "ok",
    )
    assert r.trainee is None and r.outcome is None and r.views == []
    assert r.comments == [m.ImageComment("1.2.3.4", 12, "Aliasing here")]


def test_form_operations_comment_rate_tick_and_protocol_switch():
    proto = load_protocols()["carotid-duplex"]
    st = EditorState(
        kind="preceptorship", author_name="Trainer^Tess", author_role="trainer", study_instance_uid="1.2.3"
    )
    with pytest.raises(ReviewFormError, match="Type the comment first"):
        st.add_comment("1.2.3.4", None, "   ")
    st.rate("1.2.3.4", 7, "poor", " gain ")
    st.rate("1.2.3.4", 7, "good")  # the same frame again: replaced, not added
    st.rate("1.2.3.4", 8, "adequate")
    assert [(r.frame, r.quality, r.reason) for r in st.ratings] == [(7, "good", ""), (8, "adequate", "")]
    with pytest.raises(ReviewFormError):
        st.rate("1.2.3.4", 9, "excellent")
    assert st.remove_rating(0) and not st.remove_rating(5) and len(st.ratings) == 1
    st.choose_protocol(proto)
    first = proto.views[0].id
    assert st.tick_view(first, "1.2.3.9", 3) and not st.tick_view("no-such-view", "1.2.3.9")
    assert len(st.missing_views()) == len(proto.required_views) - (1 if proto.views[0].required else 0)
    assert "required view" in st.missing_text() and st.missing_text().split()[0].isdigit()
    st.choose_protocol(proto)  # choosing it again keeps the link already made
    assert st.views[0].sop_instance_uid == "1.2.3.9" and st.views[0].frame == 3
    st.tick_view(first, None)
    assert not st.views[0].present
    st.choose_protocol(None)
    assert st.protocol is None and st.views == [] and st.missing_text().startswith("Choose the protocol")
    assert default_role_for("preceptorship", "second-reader") == "trainer"
    assert default_role_for("second-opinion", "trainer") == "second-reader"
    assert default_role_for("second-opinion", "reporting-scientist") == "reporting-scientist"


def test_a_reference_from_another_study_is_refused_and_the_first_one_fixes_the_study():
    st = EditorState()
    st.check_study("1.2.3")
    assert st.study_instance_uid == "1.2.3"
    with pytest.raises(ReviewFormError, match="another study"):
        st.check_study("9.9.9")
    assert st.study_instance_uid == "1.2.3"


def test_save_states_draft_sign_amend_and_the_next_review():
    st = _second_opinion()
    assert st.is_empty() and st.mode_text().startswith("New review.")
    st.after_save(Path("/r/draft.dcm"), signed=False, sop_instance_uid=None)
    assert st.draft_path == Path("/r/draft.dcm") and "Continuing a saved draft" in st.mode_text()
    assert not st.is_empty()
    st.after_save(Path("/r/signed.dcm"), signed=True, sop_instance_uid="1.2.3.77")
    assert (st.amends_path, st.draft_path, st.predecessor_sop_instance_uid) == (Path("/r/signed.dcm"), None, "1.2.3.77")
    assert st.mode_text().startswith("Amending a signed review")
    st.after_save(Path("/r/amend-draft.dcm"), signed=False, sop_instance_uid=None)
    assert st.amends_path is None and st.predecessor_sop_instance_uid == "1.2.3.77"  # the amendment's own draft
    nxt = st.next_review("4.5.6")
    assert (nxt.author_name, nxt.author_organization, nxt.study_instance_uid) == ("Reader^Rita", "Vasc Lab", "4.5.6")
    assert nxt.comments == [] and nxt.draft_path is None and nxt.predecessor_sop_instance_uid is None


def test_sign_check_names_what_is_missing():
    with pytest.raises(ReviewFormError, match="name and organisation"):
        sign_check(_second_opinion(author_organization=""))
    with pytest.raises(ReviewFormError, match="^Cannot sign yet: choose an agreement grade"):
        sign_check(_second_opinion(agreement_reason="why"))
    with pytest.raises(ReviewFormError, match="^Cannot sign yet: a second opinion cannot be signed without"):
        sign_check(_second_opinion())  # the model's own rule, as the same kind of error
    v = sign_check(_second_opinion(agreement="agree"))
    assert (v.name, v.organization) == ("Reader^Rita", "Vasc Lab")


def test_the_reviewer_is_remembered_between_sessions():
    st = _second_opinion()
    remember_reviewer(st, "lab")
    back = with_remembered_author(EditorState())
    assert (back.author_name, back.author_role, back.author_organization) == (
        "Reader^Rita",
        "second-reader",
        "Vasc Lab",
    )


@pytest.fixture(scope="module")
def study(tmp_path_factory, testdata) -> Path:
    d = tmp_path_factory.mktemp("study")
    uid = generate_uid()
    for name in (CINE, STILL):
        ds = pydicom.dcmread(testdata / name)
        ds.StudyInstanceUID = uid
        ds.save_as(d / name)
    return d


def test_evidence_and_labels_come_from_the_open_studies_and_a_draft_round_trips(study, tmp_path):
    index = scan([study], workers=1)
    cine = next(i for i in index.instances() if i.path.name == CINE)
    st = _second_opinion(study_instance_uid=cine.study_instance_uid)
    st.add_comment(cine.sop_instance_uid, 12, "Aliasing")
    review = build_review(st)
    assert evidence_for(review, index) == [Path(cine.path)]
    label = f"frame 12/34 of US #{cine.instance_number} (…{cine.sop_instance_uid[-10:]})"
    assert reference_label(cine.sop_instance_uid, 12, cine) == label
    assert reference_label("1.2.3.4.5.6.7.8.9.10.11", None, None) == "image of ….8.9.10.11"  # last 10 characters
    with pytest.raises(ReviewFormError, match="not among the open studies"):
        evidence_for(
            build_review(
                _second_opinion(
                    study_instance_uid=cine.study_instance_uid, comments=[m.ImageComment("1.2.999", None, "x")]
                )
            ),
            index,
        )
    with pytest.raises(ReviewFormError, match="no studies are open"):
        evidence_for(review, None)
    # only the study reviewed, nothing referenced: one of its images is the evidence
    bare = build_review(_second_opinion(study_instance_uid=cine.study_instance_uid))
    assert len(evidence_for(bare, index)) == 1
    draft = write_review(review, evidence_for(review, index))
    assert review_from_sr(draft) == review
    # the panel's loader lists it for the study, as a draft of ours
    entries = report_files.load_entries([], [cine.study_instance_uid], None)
    assert [(e.category, e.status, e.path) for e in entries] == [("review", "draft", draft)]
    # a continued draft replaces the previous file only once the new one is written
    st.summary = "second version"
    again = write_review(build_review(st), evidence_for(review, index), replaces_draft=draft)
    assert again.is_file() and not draft.is_file()
    assert state_from_review(review_from_sr(again)).summary == "second version"


def test_report_files_reads_sr_kos_and_pdf_from_the_corpus(testdata):
    names = ["sr_enhanced_tid1500_dcmjs.dcm", "kos_clearcanvas_of_interest.dcm", "pdf_encapsulated_orthanc_sample.dcm"]
    index = scan([testdata / n for n in names], workers=1)
    entries = report_files.load_entries(index.instances(), [], [])
    cats = [e.category for e in entries]
    assert sorted(cats) == ["kos", "pdf", "sr"] and cats.index("pdf") > cats.index("sr")  # SR/KOS before PDF
    assert all(e.error is None for e in entries)
    pdf = next(e for e in entries if e.category == "pdf")
    data = report_files.read_document_bytes(pdf.path)
    assert data.startswith(b"%PDF") and data.rstrip().endswith(b"%%EOF")
    assert len(data) in (pdf.size, pdf.size - 1)  # without DICOM's even-length pad byte
    assert pdf.identifiers.needles()  # kept for privacy scrubbing
    # an unreadable report is an entry with its reason, never an exception
    bad = index.instances()[0]
    broken = report_files._read_sr_entry(Path("/nonexistent/file.dcm"), bad.sop_class_uid, "1.2.3")
    assert broken.error and broken.error.startswith("cannot read this report")
