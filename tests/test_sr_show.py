"""`mdtviewer sr show` on every SR/KOS of the corpus: real content, every character set."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import TESTDATA
from mdtviewer.cli.sr import main
from mdtviewer.sr.reader import read_sr

CORPUS_SR = sorted(p.name for p in TESTDATA.glob("*.dcm") if p.name.startswith(("sr_", "kos_")))


def show(capsys, name: str, *extra: str) -> str:
    rc = main(["show", str(TESTDATA / name), *extra])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert err == ""
    return out


def test_every_corpus_sr_and_kos_is_covered():
    assert CORPUS_SR == [
        "kos_clearcanvas_of_interest.dcm",
        "sr_basic_text_offis_reportsi.dcm",
        "sr_basic_text_osirix_annotations.dcm",
        "sr_comprehensive_offis_test.dcm",
        "sr_enhanced_agfa_diagnostic_report.dcm",
        "sr_enhanced_tid1500_dcmjs.dcm",
    ]


def test_kos_six_image_references(capsys):
    out = show(capsys, "kos_clearcanvas_of_interest.dcm")
    assert out.startswith("Key Object Selection: Of Interest (113000, DCM)")
    assert "Image references: 6;" in out
    lines = [ln for ln in out.splitlines() if " contains IMAGE " in ln]
    assert len(lines) == 6
    assert all(
        "Secondary Capture Image Storage 1.3.6.1.4.1.25403.2200303521616.3496.2009091412385" in ln for ln in lines
    )
    assert "with presentation state 1.3.6.1.4.1.25403.2200303521616.3496.20090914011307.1" in lines[0]
    doc = read_sr(TESTDATA / "kos_clearcanvas_of_interest.dcm")
    assert doc.kind == "kos" and len(doc.image_refs()) == 6


def test_basic_text_offis_report(capsys):
    out = show(capsys, "sr_basic_text_offis_reportsi.dcm")
    assert "Structured Report: Document Title (IHE.01, 99_OFFIS_DCMTK)" in out
    assert "Basic Text SR Storage" in out
    assert "Status: draft (PARTIAL, UNVERIFIED)" in out
    assert "Character set: ISO_IR 100" in out
    # nesting: the report text's image reference is one level deeper than the section's text
    assert "\n    1.5.1 contains TEXT Report Text (IHE.09, 99_OFFIS_DCMTK): Enter text\n" in out
    assert "\n      1.5.1.1 inferred from IMAGE Image Reference (IHE.10, 99_OFFIS_DCMTK)" in out
    assert "has obs context PNAME Recording Observer's Name (IHE.04, 99_OFFIS_DCMTK): Enter text" in out
    assert "Observation Context Mode (IHE.02, 99_OFFIS_DCMTK): DIRECT (IHE.03, 99_OFFIS_DCMTK)" in out


def test_basic_text_osirix_annotations(capsys):
    out = show(capsys, "sr_basic_text_osirix_annotations.dcm")
    assert "Structured Report: Annotations (1, 99_OSIRIX)" in out
    assert "Manufacturer: OsiriX" in out
    line = next(ln for ln in out.splitlines() if "1.1 contains TEXT Image Reference" in ln)
    assert "isKeyImage = 1;" in line and "\\n" in line  # multi-line text kept on one line, escaped


def test_comprehensive_offis_by_reference_items_and_all_value_types(capsys):
    out = show(capsys, "sr_comprehensive_offis_test.dcm")
    assert "Structured Report: Diagnosis (1111, TEST)" in out
    assert "Status: signed (COMPLETE, VERIFIED)" in out
    # ISO_IR 100 name decoded (ö), verifiers with organisation and date-time
    assert "Verified by: Riesmeier^Jörg, OFFIS e.V., 2001-02-13 18:47:46" in out
    assert "Verified by: Observer^Verifying, Organisation" in out
    assert "Replaces (predecessor): 1.2.276.0.7230010.3.1.4.2139363186.7819.982086466.1" in out
    # the two by-reference items, with their targets
    assert "1.3.3.1 selected from BY-REFERENCE -> item 1.3.2" in out
    assert "1.5.1.1.1 inferred from BY-REFERENCE -> item 1.2.2.1" in out
    assert "1.2.2 contains NUM Diameter (1234, 99_OFFIS_DCMTK): 3 cm (Length Unit)" in out
    assert "has properties SCOORD SCoord Code (1234, 99_OFFIS_DCMTK): CIRCLE 0, 0, 255, 255" in out
    assert "has properties TCOORD TCoord Code (1234, 99_OFFIS_DCMTK): SEGMENT" in out
    assert "contains COMPOSITE Basic Text SR Storage 9.8.7.6" in out
    assert "contains IMAGE CT Image Storage 1.2.3.4.5.0 frames 5, 2" in out
    assert "has properties WAVEFORM Hemodynamic Waveform Storage 1.2.3.4.5 (channels 5\\3\\2\\0)" in out
    assert "has acq context DATE Date (1234.1, 99_OFFIS_DCMTK): 2000-12-06" in out
    assert 'Inferred Sample Text\\nNew line.\\n\\r&%$§"!()<>{}/;' in out
    doc = read_sr(TESTDATA / "sr_comprehensive_offis_test.dcm")
    assert sum(1 for n in doc.root.walk()) == 29  # 28 content items + the root
    assert [n.reference for n in doc.root.walk() if n.reference] == ["1.3.2", "1.2.2.1"]


def test_enhanced_agfa_empty_root(capsys):
    out = show(capsys, "sr_enhanced_agfa_diagnostic_report.dcm")
    assert out.startswith("Structured Report: Diagnostic Imaging Report (18748-4, LN)")
    assert "Enhanced SR Storage" in out
    assert "1 CONTAINER Diagnostic Imaging Report (18748-4, LN) [SEPARATE]" in out
    assert "(the report has no content items)" in out
    assert read_sr(TESTDATA / "sr_enhanced_agfa_diagnostic_report.dcm").root.children == []


def test_enhanced_tid1500_utf8(capsys):
    out = show(capsys, "sr_enhanced_tid1500_dcmjs.dcm")
    assert "Structured Report: Imaging Measurement Report (126000, DCM)" in out
    assert "Character set: ISO_IR 192" in out
    assert "[SEPARATE TID 1500]" in out
    assert "Language of Content Item and Descendants (121049, DCM): English (en, RFC5646)" in out
    assert "Person Observer Name (121008, DCM): unknown^unknown" in out
    assert "Tracking Identifier (112039, DCM): Cornerstone3DTools@^0.1.0:Bidirectional" in out
    assert "Long Axis (G-A185, SRT): 64.45054379 px" in out
    assert "Short Axis (G-A186, SRT): 42.9670292 px" in out
    assert "inferred from SCOORD POLYLINE 580.719, 1090.84" in out
    assert (
        "selected from IMAGE CT Image Storage 1.3.6.1.4.1.14519.5.2.1.3098.5025.258689768683178195119522016250" in out
    )


def test_identifiers_only_when_asked(capsys):
    out = show(capsys, "kos_clearcanvas_of_interest.dcm")
    assert "TEST^ROI" not in out and "2375892" not in out
    out = show(capsys, "kos_clearcanvas_of_interest.dcm", "--show-identifiers")
    assert "Patient: TEST^ROI^CALCULATIONS^^ (ID 2375892)" in out


def test_show_from_the_shell_prints_utf8_even_in_the_c_locale(tmp_path):
    """A real process: the entry point, and a C locale must not garble 'Jörg'."""
    env = {"PATH": "/usr/bin:/bin", "LANG": "C", "LC_ALL": "C", "MDTVIEWER_HOME": str(tmp_path)}
    r = subprocess.run(
        [sys.executable, "-m", "mdtviewer", "sr", "show", str(TESTDATA / "sr_comprehensive_offis_test.dcm")],
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "Riesmeier^Jörg".encode() in r.stdout


@pytest.mark.parametrize("name", ["us_ge_logiq700_rgb_explicit_le.dcm", "bad_meta_missing_transfer_syntax.dcm"])
def test_show_non_sr_is_a_clear_error(capsys, name):
    rc = main(["show", str(TESTDATA / name)])
    out, err = capsys.readouterr()
    assert rc == 1 and out == ""
    assert err.startswith("mdtviewer sr show: error: ")
    assert len(err.strip().splitlines()) == 1


# ------------------------------------------------------------- hostile SRs (issue 10 item 9, issue 11 item 5)
HOSTILE = TESTDATA.parent / "hostile"
LEAK = HOSTILE / "sr_subject_context_identifiers_srshow_leak.dcm"
#: the patient in LEAK's header (Leakyson^Harriet, LEAKID996, born 1951-08-29), in every form it is written
LEAK_IDENTIFIERS = ("Leakyson", "Harriet", "LEAKID996", "1951-08-29", "19510829")


def test_subject_context_and_the_name_in_text_are_hidden_unless_asked(capsys):
    rc = main(["show", str(LEAK)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    for ident in LEAK_IDENTIFIERS:
        assert ident.lower() not in (out + err).lower(), ident
    # the items are still listed (the reader sees the structure), their values are not
    assert "has obs context PNAME Subject Name (121029, DCM): [hidden]" in out
    assert "has obs context TEXT Subject ID (121030, DCM): [hidden]" in out
    assert "has obs context DATE Subject Birth Date (121031, DCM): [hidden]" in out
    assert "Finding (121071, DCM): Mrs [hidden] [hidden] ([hidden]) has a 50% ICA stenosis." in out
    # the staff context is not the patient's: kept
    assert "Recording Observer's Name (IHE.04, 99_OFFIS_DCMTK): Enter text" in out


def test_show_identifiers_shows_them(capsys):
    rc = main(["show", str(LEAK), "--show-identifiers"])
    out, _err = capsys.readouterr()
    assert rc == 0
    assert "Subject Name (121029, DCM): Leakyson^Harriet" in out
    assert "Mrs Harriet Leakyson (LEAKID996)" in out


def test_redaction_keeps_placeholder_words_of_a_placeholder_name(capsys):
    """'Last Name^First Name' in the header must not hide 'Name' in every concept."""
    out = show(capsys, "sr_basic_text_offis_reportsi.dcm")
    assert "Recording Observer's Name (IHE.04, 99_OFFIS_DCMTK)" in out


@pytest.mark.parametrize("name", ["sr_contentdate_vr_FD_srshow_traceback.dcm", "sr_bad_vr_bytes_srshow_traceback.dcm"])
def test_a_damaged_content_date_is_noted_not_a_traceback(name):
    res = subprocess.run(
        [sys.executable, "-m", "mdtviewer", "sr", "show", str(HOSTILE / name)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    assert "Structured Report: Document Title (IHE.01, 99_OFFIS_DCMTK)" in res.stdout
    notes = res.stderr.strip().splitlines()
    assert notes and all(
        n.startswith("mdtviewer sr show: note: Content ") and n.endswith("is damaged and was ignored") for n in notes
    ), notes
