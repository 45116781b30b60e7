"""IHE IOCM rejection notes (HAZ on withdrawn images): the rejected instances of a study are not part of it.

Test data: the notes are Key Object Selection files made by DCMTK ``dump2dcm`` from dumps written in
tests/rejection_notes.py (the second image of the study made with DCMTK ``dcmodify`` from a corpus image
copied into tmp_path; the corpus is read in place), validated by dicom3tools ``dciodvfy``.  No file is
made by our own writer.
"""

from __future__ import annotations

import json
import shutil

import pytest

import rejection_notes as rn
from mdtviewer.cli import check as check_cli
from mdtviewer.cli import export as export_cli
from mdtviewer.cli.sr import main as sr_main
from mdtviewer.dicom.index import scan
from mdtviewer.dicom.kos import REJECTION_REASONS, key_image_uids
from mdtviewer.governance import export
from mdtviewer.workflows.measurement_files import read_study_measurements
from mdtviewer.workflows.report_files import load_entries

pytestmark = [pytest.mark.dcmtk, pytest.mark.filterwarnings("ignore::UserWarning")]

IMWL = "Incorrect Modality Worklist Entry"


def _study(index, uid=rn.STUDY_UID):
    found = [st for _p, st in index.studies() if st.study_instance_uid == uid]
    assert len(found) == 1
    return found[0]


def test_dcmtk_made_note_is_a_valid_kos(tmp_path):
    _kept, _second, note = rn.rejected_folder(tmp_path)
    assert rn.dciodvfy(note) == []


@pytest.mark.parametrize("code", sorted(REJECTION_REASONS))
def test_rejection_note_withdraws_its_study_instance_with_the_reason(tmp_path, code):
    # the file's own Code Meaning is free text: the reason shown is PS3.16's meaning of the code
    kept, second, note = rn.rejected_folder(tmp_path, title=(code, "DCM", "some local wording"))
    index = scan(tmp_path, workers=1)
    st = _study(index)
    reason = REJECTION_REASONS[code]
    assert st.rejected == {rn.REJECTED_UID: reason}
    by_path = {i.path.name: i for i in st.instances()}
    assert by_path["second.dcm"].withdrawn == reason
    assert by_path["kept.dcm"].withdrawn == "" and by_path["rejection.dcm"].withdrawn == ""
    assert st.withdrawn_summary() == f"1 image withdrawn ({reason})"
    assert [(n.reason, n.withdrawn) for n in st.withdrawal_notes] == [(reason, [rn.REJECTED_UID])]
    assert not index.problems
    # and it flags no key images (as before)
    assert key_image_uids([note]) == set()


def test_meanings_are_ps3_16s():
    # PS3.16 CID 7010 (checked against pydicom's copy of the DICOM code tables)
    from pydicom.sr._concepts_dict import concepts

    for code, meaning in REJECTION_REASONS.items():
        found = [m for name, codes in concepts["DCM"].items() for c, (m, _cids) in codes.items() if c == code]
        assert found == [meaning], code


def test_key_image_note_still_flags_and_withdraws_nothing(tmp_path):
    rn.make_study(tmp_path)
    note = rn.make_kos(tmp_path, "of_interest", note_uid="2.25.11", title=("113000", "DCM", "Of Interest"))
    assert rn.dciodvfy(note) == []
    index = scan(tmp_path, workers=1)
    st = _study(index)
    assert st.rejected == {} and all(not i.withdrawn for i in st.instances())
    assert key_image_uids([note]) == {rn.REJECTED_UID}


def test_note_of_another_study_hides_nothing(tmp_path):
    rn.make_study(tmp_path)
    # filed in another study (and so of no use here), listing our image under that other study
    rn.make_kos(tmp_path, "elsewhere", note_uid="2.25.12", note_study=rn.OTHER_STUDY_UID,
                evidence_study=rn.OTHER_STUDY_UID)
    index = scan(tmp_path, workers=1)
    assert all(not i.withdrawn for i in index.instances())
    assert all(not st.rejected for _p, st in index.studies())


def test_note_of_another_patient_in_the_same_study_uid_hides_nothing(tmp_path):
    rn.make_study(tmp_path)
    rn.make_kos(tmp_path, "other_patient", note_uid="2.25.13", patient_id="SOMEONE-ELSE")
    index = scan(tmp_path, workers=1)
    assert all(not i.withdrawn for i in index.instances())


def test_note_listing_our_image_under_another_study_is_a_problem_line(tmp_path):
    rn.make_study(tmp_path)
    note = rn.make_kos(tmp_path, "crossed", note_uid="2.25.14", evidence_study=rn.OTHER_STUDY_UID)
    index = scan(tmp_path, workers=1)
    assert all(not i.withdrawn for i in index.instances())
    assert [(p.path, p.reason) for p in index.problems] == [
        (note, "rejection note references only another study's instances: nothing withdrawn")]


@pytest.mark.parametrize("kw, reason", [
    ({"evidence": False}, "rejection note without Current Requested Procedure Evidence: nothing withdrawn"),
    ({"evidence_study": None}, "rejection note evidence without a Study Instance UID: nothing withdrawn"),
    ({"rejected": []}, "rejection note references no instances: nothing withdrawn"),
])
def test_malformed_note_is_a_problem_line_not_a_crash(tmp_path, kw, reason):
    rn.make_study(tmp_path)
    note = rn.make_kos(tmp_path, "bad", note_uid="2.25.15", **kw)
    index = scan(tmp_path, workers=1)
    assert all(not i.withdrawn for i in index.instances())
    probs = [(p.path, p.reason, p.category) for p in index.problems]
    assert probs == [(note, reason, "rejection-note")]


def test_check_says_which_note_withdrew_which_instance(tmp_path, capsys):
    folder = tmp_path / rn.PATIENT_ID  # a folder named by the Patient ID: never printed
    rn.rejected_folder(folder)
    assert check_cli.main([str(folder)]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if "WITHDRAWN" in ln]
    assert len(lines) == 1 and "second.dcm" in lines[0]
    assert f"WITHDRAWN ({IMWL}) by rejection.dcm" in lines[0]
    assert "1 instance(s) withdrawn by a rejection note" in out
    assert rn.PATIENT_ID not in out and "Rejection" not in out
    assert check_cli.main([str(folder), "--json"]) == 0
    recs = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert {r["path"]: r.get("withdrawn") for r in recs} == {"kept.dcm": None, "rejection.dcm": None,
                                                            "second.dcm": IMWL}
    assert {r["path"]: r.get("withdrawn_by") for r in recs}["second.dcm"] == "rejection.dcm"


def test_check_lists_a_malformed_note_as_a_problem(tmp_path, capsys):
    rn.make_study(tmp_path)
    rn.make_kos(tmp_path, "bad", note_uid="2.25.16", evidence=False)
    assert check_cli.main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "bad.dcm  -- rejection note without Current Requested Procedure Evidence: nothing withdrawn" in out
    assert "WITHDRAWN" not in out


def test_check_lists_a_note_of_another_study_once_and_counts_files(tmp_path, capsys):
    """QA3 #7: a note referencing only another study's image was listed twice (OK kos, then FAIL ...) and
    the summary counted 4 files as 5: one line per file, the note FAIL with its reason."""
    rn.make_study(tmp_path)
    rn.make_kos(tmp_path, "foreign_note", note_uid="2.25.4246", evidence_study=rn.OTHER_STUDY_UID)
    assert check_cli.main([str(tmp_path)]) == 1
    out = capsys.readouterr().out.splitlines()
    lines = [ln for ln in out if "foreign_note.dcm" in ln]
    assert len(lines) == 1, out
    assert lines[0].startswith("FAIL  kos ")
    assert "-- rejection note references only another study's instances: nothing withdrawn" in lines[0]
    assert out[-1].startswith("3 checked: 2 ok, 1 not ok (0 unreadable)"), out
    assert check_cli.main([str(tmp_path), "--json"]) == 1
    cap = capsys.readouterr()
    recs = [json.loads(ln) for ln in cap.out.splitlines()]
    assert len(recs) == 3 and len({r["path"] for r in recs}) == 3
    note = next(r for r in recs if r["path"].endswith("foreign_note.dcm"))
    assert (note["ok"], note["kind"], note["error_category"]) == (False, "kos", "rejection-note")
    assert set(note) == set(recs[0]) - {"withdrawn", "withdrawn_by"}  # the documented keys, nothing new
    assert cap.err.startswith("3 checked: 2 ok, 1 not ok")


def test_export_leaves_withdrawn_out_by_default_and_says_so(tmp_path, capsys):
    src = tmp_path / "in"
    rn.rejected_folder(src)
    rep = export.export([src], tmp_path / "out", export.ExportOptions())
    assert [(p.name, r) for p, r, _who in rep.withdrawn] == [("second.dcm", IMWL)]
    assert sorted(i.source.name for i in rep.items) == ["kept.dcm", "rejection.dcm"] and rep.ok
    assert export_cli.main([str(src), "--dest", str(tmp_path / "out2"), "--deidentify"]) == 0
    out = capsys.readouterr().out
    assert "not exported (withdrawn by a rejection note; --include-withdrawn to export them): 1 file(s)" in out
    assert f"  second.dcm: withdrawn ({IMWL})" in out
    assert rn.PATIENT_ID not in out


def test_export_includes_withdrawn_only_when_asked_and_marks_it(tmp_path):
    src = tmp_path / "in"
    rn.rejected_folder(src)
    rep = export.export([src], tmp_path / "out", export.ExportOptions(include_withdrawn=True))
    assert rep.withdrawn == []
    notes = {i.source.name: i.note for i in rep.items}
    assert notes["second.dcm"].startswith(f"WITHDRAWN: {IMWL}") and "WITHDRAWN" not in notes["kept.dcm"]


@pytest.fixture
def withdrawn_sr(tmp_path):
    """The study with the corpus measurement SR filed in it, withdrawn by a 'Rejected for Quality Reasons' note."""
    rn.make_study(tmp_path)
    sr, sr_uid, sr_series = rn.add_sr(tmp_path)
    note = rn.make_kos(tmp_path, "sr_rejection", note_uid="2.25.17",
                       title=("113001", "DCM", "Rejected for Quality Reasons"),
                       series_uid=sr_series, rejected=[sr_uid], ref_class=rn.ENHANCED_SR)
    assert rn.dciodvfy(note) == []
    return tmp_path, sr, sr_uid


def test_withdrawn_sr_is_listed_marked_and_not_current(withdrawn_sr):
    folder, sr, sr_uid = withdrawn_sr
    st = _study(scan(folder, workers=1))
    assert st.rejected == {sr_uid: "Rejected for Quality Reasons"}
    assert st.withdrawn_summary() == "1 document withdrawn (Rejected for Quality Reasons)"
    entries = load_entries(st.instances(), [rn.STUDY_UID], [])
    by_uid = {e.sop_instance_uid: e for e in entries}
    assert by_uid[sr_uid].withdrawn == "Rejected for Quality Reasons"
    assert by_uid[sr_uid].status == "WITHDRAWN (Rejected for Quality Reasons)"
    assert entries[0].sop_instance_uid != sr_uid  # never the report shown first
    note = next(e for e in entries if e.path.name == "sr_rejection.dcm")
    assert note.label() == "Rejection note: Rejected for Quality Reasons"
    # the measurements it holds are not current
    assert read_study_measurements([sr]).documents  # it has measurements ...
    meas = read_study_measurements([sr], withdrawn=st.rejected)
    assert meas.documents == [] and meas.skipped == ["measurements.dcm: withdrawn (Rejected for Quality Reasons)"]


def test_sr_list_marks_withdrawn_documents(withdrawn_sr, capsys):
    folder, _sr, _uid = withdrawn_sr
    assert sr_main(["list", rn.STUDY_UID, "--folder", str(folder)]) == 0
    lines = capsys.readouterr().out.splitlines()
    marked = [ln for ln in lines if "WITHDRAWN" in ln]
    assert len(marked) == 1 and "measurements.dcm" in marked[0]
    assert "WITHDRAWN (Rejected for Quality Reasons)" in marked[0]
    assert any("sr_rejection.dcm" in ln and "WITHDRAWN" not in ln for ln in lines)


def test_sr_list_names_notes_by_their_code_aligned_and_without_identifiers(withdrawn_sr, capsys):
    """QA3 #6: ``sr list`` called a rejection note "key images", printed a title's free text (an identifier
    typed into it reached stdout: ``list`` has no option to show identifiers), and its columns shifted on the
    WITHDRAWN row."""
    import re
    import subprocess

    folder, sr, _uid = withdrawn_sr
    rn.make_kos(folder, "typed", note_uid="2.25.4244", title=("113038", "DCM", f"{IMWL} {rn.PATIENT_ID}"))
    rn.make_kos(folder, "key", note_uid="2.25.4245", title=("113000", "DCM", f"Of Interest for {rn.PATIENT_ID}"))
    subprocess.run(["dcmodify", "-nb", "-m", f"(0040,a043)[0].(0008,0104)=Report {rn.PATIENT_ID}", str(sr)],
                   check=True, capture_output=True)
    assert sr_main(["list", rn.STUDY_UID, "--folder", str(folder)]) == 0
    out = capsys.readouterr().out
    assert rn.PATIENT_ID not in out
    lines = out.splitlines()
    assert len(lines) == 4
    by = {ln.rsplit("/", 1)[-1]: ln for ln in lines}
    assert "rejection note" in by["sr_rejection.dcm"] and "key images" not in by["sr_rejection.dcm"]
    assert "rejection note" in by["typed.dcm"] and f"KOS             {IMWL}  " in by["typed.dcm"]
    assert "key images" in by["key.dcm"] and "KOS             Of Interest  " in by["key.dcm"]
    assert "WITHDRAWN (Rejected for Quality Reasons)" in by["measurements.dcm"]
    assert "Report [hidden]" in by["measurements.dcm"]
    # the kind column (SR / KOS) starts at the same place on every row, the WITHDRAWN one too
    assert len({re.search(r" (SR|KOS) ", ln).start() for ln in lines}) == 1


@pytest.mark.parametrize("word", ["study", "1.2.x", "1" * 65, "1..2"])
def test_sr_list_refuses_what_is_not_a_study_uid(tmp_path, capsys, word):
    """QA3 #6: a word where the synopsis says STUDY_UID said "no reviews found" (exit 0): refused in one line."""
    assert sr_main(["list", word, "--folder", str(tmp_path)]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and len(cap.err.splitlines()) == 1 and "is not a Study Instance UID" in cap.err


def test_a_study_of_withdrawn_images_takes_their_date_not_the_notes(tmp_path):
    """QA3 #10: a study whose only image is withdrawn was listed with the rejection note's date (2020-01-01,
    when the note was made) and no description, because the note was the first file placed: the image's
    header says what the exam was (2010-04-01, ECOTOMOGRAFIA ...)."""
    _kept, _second, _note = rn.rejected_folder(tmp_path)
    _kept.unlink()  # only the withdrawn image and the note
    st = _study(scan([tmp_path]))
    assert set(st.rejected) == {rn.REJECTED_UID}
    assert (st.study_date, st.study_description) == ("20100401", "ECOTOMOGRAFIA CODO IZQUIERDO")


def test_a_study_takes_its_date_from_a_current_image_not_a_withdrawn_one(tmp_path):
    """QA3 #10: the withdrawn image placed first (and wrong: it is the other exam's) does not date the study
    when a current image of it is open."""
    import subprocess

    _kept, second, _note = rn.rejected_folder(tmp_path)
    subprocess.run(["dcmodify", "-nb", "-m", "(0008,0020)=19990909", "-m", "(0008,1030)=WRONG EXAM", str(second)],
                   check=True, capture_output=True)
    second.rename(tmp_path / "a_second.dcm")  # listed before kept.dcm
    index = scan([tmp_path])
    st = _study(index)
    assert rn.REJECTED_UID in st.rejected
    assert (st.study_date, st.study_description) == ("20100401", "ECOTOMOGRAFIA CODO IZQUIERDO")


def test_a_later_scan_adding_the_note_withdraws(tmp_path):
    """The note opened after the images (another folder, same study): the study's images are withdrawn then."""
    kept, second = rn.make_study(tmp_path / "images")
    notes = tmp_path / "notes"
    notes.mkdir()
    rn.make_kos(notes, "rejection", note_uid="2.25.18")
    index = scan(tmp_path / "images", workers=1)
    gen = index.rejection_generation
    assert not any(i.withdrawn for i in index.instances())
    index.add_paths([notes], workers=1)
    assert index.rejection_generation > gen
    assert {i.path.name: i.withdrawn for i in index.instances()}["second.dcm"] == IMWL
    shutil.rmtree(notes)


def test_damaged_rejection_notes_never_crash_the_index(tmp_path):
    """Each element of the DCMTK-made note deleted in turn, or its value replaced by bytes of the wrong kind
    (pydicom edits the DCMTK file; the point is damage, not a valid note): the scan never raises, and an
    instance is withdrawn only with a PS3.16 reason; every problem is one line."""
    import pydicom
    from pydicom.dataelem import RawDataElement

    base = tmp_path / "base"
    _kept, _second, note = rn.rejected_folder(base)
    ds0 = pydicom.dcmread(note)
    paths: list[tuple[int, ...]] = []

    def walk(ds, prefix):
        for elem in ds:
            paths.append((*prefix, int(elem.tag)))
            if elem.VR == "SQ":
                for k, item in enumerate(elem.value):
                    walk(item, (*prefix, int(elem.tag), -1 - k))

    walk(ds0, ())

    def locate(ds, path):
        for step in path[:-1]:
            ds = ds[step].value if step >= 0 else ds[-1 - step]
        return ds

    cases = 0
    for path in paths:
        for how in ("delete", "garbage"):
            if how == "garbage" and path[-1] == 0x00080005:  # pydicom cannot write a garbled character set
                continue
            ds = pydicom.dcmread(note)
            parent = locate(ds, path)
            tag = path[-1]
            if how == "delete":
                del parent[tag]
            else:
                parent[tag] = RawDataElement(pydicom.tag.Tag(tag), "UN", 3, b"\xff\x00\x01", 0, False, True)
            folder = tmp_path / f"c{cases}"
            folder.mkdir()
            for f in base.glob("*.dcm"):
                if f.name != note.name:
                    shutil.copy(f, folder / f.name)
            ds.save_as(folder / note.name, enforce_file_format=False)
            index = scan(folder, workers=1)
            for inst in index.instances():
                assert inst.withdrawn in ("", *REJECTION_REASONS.values())
            for prob in index.problems:
                assert "\n" not in prob.reason and prob.reason
            cases += 1
    assert cases > 60


def test_report_list_applies_a_note_found_only_in_the_store(withdrawn_sr):
    """A rejection note the index never saw (fetched from the PACS into the local store) still marks the
    documents of its study it withdraws in the report list."""
    folder, _sr, sr_uid = withdrawn_sr
    entries = load_entries([], [rn.STUDY_UID], [folder])
    by_uid = {e.sop_instance_uid: e for e in entries}
    assert by_uid[sr_uid].withdrawn == "Rejected for Quality Reasons"
    assert entries[0].sop_instance_uid != sr_uid
