"""How a patient without an ID is named: by the earliest study date, in the one date format."""

from mdtviewer.dicom.model import Patient, Study


def test_no_id_label_uses_the_one_date_formatter():
    p = Patient("", studies={"1.2.3": Study("1.2.3", study_date="1994.11.05"), "1.2.4": Study("1.2.4", "20010203")})
    assert p.no_id_label() == "No patient ID (study 1994-11-05)"  # old ACR-NEMA dotted date, earliest first
    assert Patient("").no_id_label() == "No patient ID (study undated)"
