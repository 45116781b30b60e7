"""Key images from Key Object Selection documents: 'Of Interest' marks them; a rejection KOS does not."""

from __future__ import annotations

import pydicom
import pytest

from mdtviewer.ui.viewer.workers import REJECTION_TITLES, key_image_uids

KOS = "kos_clearcanvas_of_interest.dcm"


def _referenced(ds) -> set[str]:
    return {str(r.ReferencedSOPInstanceUID) for st in ds.CurrentRequestedProcedureEvidenceSequence
            for se in st.ReferencedSeriesSequence for r in se.ReferencedSOPSequence}


def test_of_interest_kos_marks_its_images(testdata):
    ds = pydicom.dcmread(testdata / KOS)
    assert ds.ConceptNameCodeSequence[0].CodeValue == "113000"  # Of Interest
    got = key_image_uids([testdata / KOS])
    assert got and got == _referenced(ds)


@pytest.mark.parametrize("code", sorted(REJECTION_TITLES))
def test_rejection_kos_marks_nothing(testdata, tmp_path, code):
    ds = pydicom.dcmread(testdata / KOS)
    ds.ConceptNameCodeSequence[0].CodeValue = code
    ds.ConceptNameCodeSequence[0].CodeMeaning = "Rejected for Quality Reasons"
    p = tmp_path / "rejected.dcm"
    ds.save_as(p)
    assert key_image_uids([p]) == set()
    # an 'Of Interest' KOS beside it still counts
    assert key_image_uids([p, testdata / KOS]) == _referenced(ds)
