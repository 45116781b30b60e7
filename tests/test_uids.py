"""classify(): every SR storage class, KOS, PDF (also by MIME), other documents, images/cines."""

from __future__ import annotations

import pytest

from mdtviewer.dicom.uids import classify

SR_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.88.11": "Basic Text SR",
    "1.2.840.10008.5.1.4.1.1.88.22": "Enhanced SR",
    "1.2.840.10008.5.1.4.1.1.88.33": "Comprehensive SR",
    "1.2.840.10008.5.1.4.1.1.88.34": "Comprehensive 3D SR",
    "1.2.840.10008.5.1.4.1.1.88.35": "Extensible SR",
    "1.2.840.10008.5.1.4.1.1.88.40": "Procedure Log",
    "1.2.840.10008.5.1.4.1.1.88.50": "Mammography CAD SR",
    "1.2.840.10008.5.1.4.1.1.88.65": "Chest CAD SR",
    "1.2.840.10008.5.1.4.1.1.88.67": "X-Ray Radiation Dose SR",
    "1.2.840.10008.5.1.4.1.1.88.68": "Radiopharmaceutical Radiation Dose SR",
    "1.2.840.10008.5.1.4.1.1.88.69": "Colon CAD SR",
    "1.2.840.10008.5.1.4.1.1.88.70": "Implantation Plan SR",
    "1.2.840.10008.5.1.4.1.1.88.71": "Acquisition Context SR",
    "1.2.840.10008.5.1.4.1.1.88.72": "Simplified Adult Echo SR",
    "1.2.840.10008.5.1.4.1.1.88.73": "Patient Radiation Dose SR",
    "1.2.840.10008.5.1.4.1.1.88.74": "Planned Imaging Agent Administration SR",
    "1.2.840.10008.5.1.4.1.1.88.75": "Performed Imaging Agent Administration SR",
    "1.2.840.10008.5.1.4.1.1.88.76": "Enhanced X-Ray Radiation Dose SR",
}


@pytest.mark.parametrize("uid", sorted(SR_CLASSES), ids=lambda u: SR_CLASSES[u])
def test_every_sr_class_is_sr(uid):
    assert classify(uid, 0, None) == "sr"


def test_documents():
    assert classify("1.2.840.10008.5.1.4.1.1.88.59", 0, None) == "kos"
    assert classify("1.2.840.10008.5.1.4.1.1.104.1", 0, "application/pdf") == "pdf"
    assert classify("1.2.840.10008.5.1.4.1.1.104.1", 0, None) == "pdf"
    assert classify("1.2.3.4.private", 0, "application/pdf") == "pdf"          # PDF via MIME
    for uid in ("1.2.840.10008.5.1.4.1.1.104.2", "1.2.840.10008.5.1.4.1.1.104.3",
                "1.2.840.10008.5.1.4.1.1.104.4", "1.2.840.10008.5.1.4.1.1.104.5"):  # CDA, STL, OBJ, MTL
        assert classify(uid, 0, "model/stl") == "document"


def test_images_and_cines():
    assert classify("1.2.840.10008.5.1.4.1.1.6.1", 1, None) == "image"
    assert classify("1.2.840.10008.5.1.4.1.1.6", 1, None) == "image"       # retired US
    assert classify("1.2.840.10008.5.1.4.1.1.3", 12, None) == "cine"       # retired US multi-frame
    assert classify("1.2.840.10008.5.1.4.1.1.3.1", 2, None) == "cine"
    assert classify("1.2.840.10008.5.1.4.1.1.3.1", 1, None) == "image"     # a one-frame "multi-frame"
    assert classify("1.2.840.10008.5.1.4.1.1.7", 1, None) == "image"
    assert classify("2.25.12345", 1, None, has_pixel_data=True) == "image"  # any class with Pixel Data
    assert classify("2.25.12345", 40, None, has_pixel_data=True) == "cine"
    assert classify("1.2.840.10008.5.1.4.1.1.6.1", 1, None, has_pixel_data=False) == "other"


def test_other():
    assert classify("1.2.840.10008.5.1.4.1.1.11.1", 0, None) == "other"    # presentation state
    assert classify("1.2.840.10008.5.1.4.1.1.9.1.1", 0, None) == "other"   # ECG waveform
    assert classify("1.2.840.10008.1.3.10", 0, None) == "other"            # DICOMDIR
    assert classify("", 0, None) == "other"
