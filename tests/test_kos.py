"""KOS rules in the Qt-free core (mdtviewer.dicom.kos): key images, rejection notes, unreadable documents."""

from __future__ import annotations

import subprocess
import sys

import pydicom

from mdtviewer.dicom.kos import is_rejection_note, key_image_uids, key_image_uids_of, referenced_uids

KOS = "kos_clearcanvas_of_interest.dcm"


def test_references_come_from_the_content_tree_and_the_evidence(testdata):
    ds = pydicom.dcmread(testdata / KOS)
    evidence = {str(r.ReferencedSOPInstanceUID) for st in ds.CurrentRequestedProcedureEvidenceSequence
                for se in st.ReferencedSeriesSequence for r in se.ReferencedSOPSequence}
    assert referenced_uids(ds) == evidence and key_image_uids_of(ds) == evidence
    assert not is_rejection_note(ds)


def test_a_rejection_note_flags_nothing_but_still_lists_its_references(testdata):
    ds = pydicom.dcmread(testdata / KOS)
    ds.ConceptNameCodeSequence[0].CodeValue = "113001"  # Rejected for Quality Reasons
    assert is_rejection_note(ds) and key_image_uids_of(ds) == set() and referenced_uids(ds)
    ds.ConceptNameCodeSequence[0].CodingSchemeDesignator = "99LOCAL"  # not DCM's code: not a rejection
    assert not is_rejection_note(ds)


def test_an_unreadable_kos_flags_nothing(testdata, tmp_path):
    bad = tmp_path / "cut.dcm"
    bad.write_bytes((testdata / KOS).read_bytes()[:300])
    assert key_image_uids([bad, tmp_path / "absent.dcm"]) == set()
    assert key_image_uids([bad, testdata / KOS]) == key_image_uids([testdata / KOS])


def test_the_rules_load_without_qt():
    code = "import sys, mdtviewer.dicom.kos; assert 'PySide6' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60).returncode == 0
