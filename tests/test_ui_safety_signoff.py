"""Issue 10.10: sign-off you can trust.  Return in the confirmation signs (the default button), Esc
cancels, and the editor says plainly which happened; the signer comes from the reviewer profile set once
(name, role, registration, organisation), not from a name typed into the form; the OS account is in the
audit trail; the verification time is never before the content time; a trainee writing their own
preceptorship is the trainee (`mdtviewer sr write`).  Real window (pytest-qt), real corpus files,
dsrdump/dciodvfy on what was signed."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pydicom
import pytest
import pytestqt  # noqa: F401  (a test dependency: fail, never skip)
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox

from mdtviewer.cli.sr import main as sr_main
from mdtviewer.sr.reader import read_sr
from mdtviewer.sr.review_reader import review_from_sr
from mdtviewer.workflows import reviewer_profile
from sr_helpers import CINE, dciodvfy_errors, dsrdump, uid

pytestmark = pytest.mark.gui

SIGNER = reviewer_profile.ReviewerProfile(
    name="Okafor^Ada", role="second-reader", registration="HCPC CS054321", organization="Northfield Vascular Lab"
)


def press_in_next_box(key, seen: list[str]) -> None:
    """Press *key* in the next modal message box, as a user at the keyboard would."""

    def press() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, press)
            return
        seen.append(box.text())
        QTest.keyClick(box, key)

    QTimer.singleShot(0, press)


def fill_second_opinion(qtbot, window, editor, author: str) -> None:
    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        window.open_paths([str(CINE)])
    window.show_study(str(pydicom.dcmread(CINE, stop_before_pixels=True).StudyInstanceUID))
    qtbot.waitUntil(lambda: window.viewports[0].loaded is not None, timeout=20_000)
    window.review_dock.show()
    editor.new_review() if hasattr(editor, "new_review") else None
    editor.kind.setCurrentIndex(editor.kind.findData("second-opinion"))
    editor.author_name.setText(author)
    editor.author_org.setText("Some Lab")
    editor.agreement.setCurrentIndex(editor.agreement.findData("agree"))
    editor.summary.setPlainText("Agree with the report.")


def test_return_signs_esc_says_not_signed_and_signer_is_the_profile(qtbot, window, mdt_home):
    editor = window.review_editor
    fill_second_opinion(qtbot, window, editor, author="Anybody^Typed")
    reviewer_profile.save(SIGNER)

    # Esc: not signed, and the editor says so plainly; nothing written
    seen: list[str] = []
    press_in_next_box(Qt.Key.Key_Escape, seen)
    assert editor.sign_off() is False
    assert seen and "Okafor^Ada" in seen[0] and "HCPC CS054321" in seen[0]
    assert editor.status.text().startswith("NOT signed") and "cancelled" in editor.status.text()
    assert list(mdt_home.rglob("*.dcm")) == []

    # Return: the default button is Sign
    seen.clear()
    press_in_next_box(Qt.Key.Key_Return, seen)
    with qtbot.waitSignal(editor.saved, timeout=20_000) as blocker:
        assert editor.sign_off() is not False
    path = Path(blocker.args[0])
    assert editor.status.text().startswith("SIGNED by Okafor^Ada (HCPC CS054321)")
    doc = read_sr(path)
    assert doc.verification_flag == "VERIFIED"
    # the signer is the profile's person, not the name typed in the form
    assert [(v.name, v.organization) for v in doc.verifiers] == [("Okafor^Ada", "Northfield Vascular Lab")]
    ds = pydicom.dcmread(path)
    vo = ds.VerifyingObserverSequence[0]
    assert vo.VerifyingObserverIdentificationCodeSequence[0].CodeValue == "HCPC CS054321"
    assert vo.VerificationDateTime[:14] >= f"{ds.ContentDate}{str(ds.ContentTime).split('.')[0]}"
    assert "Verification Flag   : VERIFIED" in dsrdump(path)
    assert dciodvfy_errors(path) == []
    # the audit trail names the computer account beside the signer
    audit_lines = [json.loads(x) for f in mdt_home.rglob("audit*.jsonl") for x in f.read_text().splitlines() if x]
    signed = [r for r in audit_lines if r.get("event") == "sr-signed"]
    assert signed and signed[-1]["detail"]["os_account"] == getpass.getuser()
    assert signed[-1]["detail"]["registration"] == "HCPC CS054321"


def test_first_sign_off_asks_for_the_profile_and_cancel_is_not_signed(qtbot, window, mdt_home):
    from mdtviewer.ui.review.profile_dialog import ReviewerProfileDialog

    editor = window.review_editor
    fill_second_opinion(qtbot, window, editor, author="Okafor^Ada")
    assert reviewer_profile.load() is None
    shown: list[str] = []

    def cancel_profile() -> None:
        dlg = QApplication.activeModalWidget()
        if not isinstance(dlg, ReviewerProfileDialog):
            QTimer.singleShot(20, cancel_profile)
            return
        shown.append(dlg.name.text())
        dlg.reject()

    QTimer.singleShot(0, cancel_profile)
    assert editor.sign_off() is False
    assert shown == ["Okafor^Ada"]  # started from the form's author
    assert editor.status.text().startswith("NOT signed") and "reviewer profile" in editor.status.text()

    # the dialog refuses a profile without a registration (not a trainee) and saves a complete one
    dlg = ReviewerProfileDialog(window, reviewer_profile.ReviewerProfile("Okafor^Ada", "second-reader", "", "Lab"))
    qtbot.addWidget(dlg)
    dlg.accept()
    assert "professional registration" in dlg.problem.text() and reviewer_profile.load() is None
    dlg.registration.setText("RCCP 1234")
    dlg.accept()
    expected = reviewer_profile.ReviewerProfile("Okafor^Ada", "second-reader", "RCCP 1234", "Lab")
    assert reviewer_profile.load() == expected
    from mdtviewer.ui.actions import ACTIONS

    assert any(s.id == "review.profile" for s in ACTIONS)


def test_sr_write_trainee_author_is_the_trainee(capsys, tmp_path):
    c = uid(CINE)
    data = {
        "kind": "preceptorship",
        "author": {"name": "Lee^Ann", "role": "trainee", "organization": "Lab"},
        "verifier": {"name": "Trainer^Tom", "organization": "Lab"},
        "protocol": "aaa-surveillance",
        "outcome": "competent",
        "summary": "Own record of a supervised scan.",
        "images": [{"sop_instance_uid": c, "quality": "good"}],
    }
    j = tmp_path / "r.json"
    j.write_text(json.dumps(data), encoding="utf-8")
    out = tmp_path / "p.dcm"
    from sr_helpers import sign_as

    sign_as("Trainer^Tom", "Lab")  # `sr write` signs as this account's reviewer profile
    rc = sr_main(["write", "--review", str(j), "--study", str(CINE), "--out", str(out)])
    _o, err = capsys.readouterr()
    assert rc == 0, err
    assert "without naming the trainee" not in err
    r = review_from_sr(out)
    assert r.trainee is not None and r.trainee.name == "Lee^Ann" and r.author.name == "Lee^Ann"
    assert pydicom.dcmread(out).VerificationFlag == "VERIFIED"
    assert dciodvfy_errors(out) == []


def test_second_opinion_names_the_report_it_grades(capsys, tmp_path):
    """The graded report (here the corpus PDF, copied with pydicom into the GE study as that study's report)
    is referenced as a COMPOSITE content item and listed in the evidence."""
    from conftest import TESTDATA
    from sr_helpers import GE_FILES, ORG, TRAINER

    study = tmp_path / "study"
    study.mkdir()
    for p in GE_FILES:
        (study / p.name).symlink_to(p)
    ge = pydicom.dcmread(GE_FILES[0], stop_before_pixels=True)
    pdf = pydicom.dcmread(TESTDATA / "pdf_encapsulated_orthanc_sample.dcm")
    for kw in ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
               "StudyTime", "AccessionNumber", "StudyID"):
        if kw in ge:
            setattr(pdf, kw, ge.get(kw))
    for kw in ("PatientIdentityRemoved", "DeidentificationMethod"):
        if kw in pdf:
            delattr(pdf, kw)
    pdf.save_as(study / "report.dcm", enforce_file_format=False)
    pdf_uid = str(pdf.SOPInstanceUID)
    data = {
        "kind": "second-opinion",
        "author": {"name": TRAINER, "role": "second-reader"},
        "verifier": {"name": TRAINER, "organization": ORG},
        "agreement": "agree",
        "graded_report": pdf_uid,
        "summary": "Agree with the report graded.",
        "images": [{"sop_instance_uid": uid(GE_FILES[0]), "quality": "good"}],
    }
    j = tmp_path / "r.json"
    j.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "so.dcm"
    from sr_helpers import sign_as

    sign_as(TRAINER, ORG, role="second-reader")  # `sr write` signs as this account's reviewer profile
    rc = sr_main(["write", "--review", str(j), "--study", str(study), "--out", str(out)])
    _o, err = capsys.readouterr()
    assert rc == 0, err
    r = review_from_sr(out)
    assert r.graded_report_uid == pdf_uid
    ds = pydicom.dcmread(out)
    evidence = {s.ReferencedSOPInstanceUID for st in ds.CurrentRequestedProcedureEvidenceSequence
                for se in st.ReferencedSeriesSequence for s in se.ReferencedSOPSequence}
    assert pdf_uid in evidence
    text = dsrdump(out)
    assert "Report under review" in text and "COMPOSITE" in text
    assert dciodvfy_errors(out) == []
    # a graded report that is not in the study path: a clear error, nothing written
    data["graded_report"] = "1.2.3.4.5.6.7"
    j.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    rc = sr_main(["write", "--review", str(j), "--study", str(study), "--out", str(tmp_path / "bad.dcm")])
    _o, err = capsys.readouterr()
    assert rc != 0 and not (tmp_path / "bad.dcm").exists()


def test_editor_second_opinion_grades_the_report_selected(qtbot, window, tmp_path, mdt_home):
    """In the window: the PDF report of the study selected in the report panel is named as graded."""
    from conftest import TESTDATA
    from sr_helpers import GE_FILES

    ge = pydicom.dcmread(GE_FILES[0], stop_before_pixels=True)
    pdf = pydicom.dcmread(TESTDATA / "pdf_encapsulated_orthanc_sample.dcm")
    for kw in ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate"):
        if kw in ge:
            setattr(pdf, kw, ge.get(kw))
    for kw in ("PatientIdentityRemoved", "DeidentificationMethod"):
        if kw in pdf:
            delattr(pdf, kw)
    pdf.save_as(tmp_path / "report.dcm", enforce_file_format=False)
    window.report_panel.pacs_lookup_enabled = False
    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        window.open_paths([str(p) for p in GE_FILES] + [str(tmp_path / "report.dcm")])
    window.show_study(str(ge.StudyInstanceUID))
    qtbot.waitUntil(lambda: window.viewports[0].loaded is not None, timeout=20_000)
    rp = window.report_panel
    qtbot.waitUntil(lambda: any(e.category == "pdf" for e in rp.entries()), timeout=20_000)
    assert rp.select(str(pdf.SOPInstanceUID))
    assert not rp.warning_bar.isVisible()  # the report is this study's: no wrong-patient warning
    editor = window.review_editor
    window.review_dock.show()
    editor.kind.setCurrentIndex(editor.kind.findData("second-opinion"))
    editor.author_name.setText("Okafor^Ada")
    editor.author_org.setText("Lab")
    editor.agreement.setCurrentIndex(editor.agreement.findData("minor-discrepancy"))
    assert editor.grade_selected_report()
    assert "PDF" in editor.graded_label.text() or "report" in editor.graded_label.text().lower()
    reviewer_profile.save(SIGNER)
    press_in_next_box(Qt.Key.Key_Return, [])
    with qtbot.waitSignal(editor.saved, timeout=20_000) as blocker:
        assert editor.sign_off() is not False
    path = Path(blocker.args[0])
    assert review_from_sr(path).graded_report_uid == str(pdf.SOPInstanceUID)
    assert "Report under review" in dsrdump(path)
    assert dciodvfy_errors(path) == []
