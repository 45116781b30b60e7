"""C-FIND identifiers read in one pass (issue 12.3) give the very Dataset pydicom's reader gives."""

from __future__ import annotations

from io import BytesIO

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pynetdicom.dsutils import decode, encode

from mdtviewer.pacs.client import raw_dataset


def _answer(charset: str | None = "ISO_IR 192") -> Dataset:
    ds = Dataset()
    if charset is not None:
        ds.SpecificCharacterSet = charset
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.PatientID = "MDT-0001"
    ds.PatientName = "Żółć^Łukasz" if charset == "ISO_IR 192" else "Smith^John"
    ds.PatientBirthDate = ""
    ds.StudyDate = "20240615"
    ds.ModalitiesInStudy = ["US", "SR"]
    ds.NumberOfStudyRelatedInstances = "12"
    ds.StudyDescription = "Carotid duplex"
    ds.add_new(0x00091001, "LO", "private")
    ds.add_new(0x00091002, "OB", b"\x01\x02")
    ds.add_new(0x00081030, "LO", None)
    return ds


@pytest.mark.parametrize("implicit", [True, False])
@pytest.mark.parametrize("charset", ["ISO_IR 192", "ISO_IR 100", None])
def test_the_same_raw_elements_and_values_as_pydicom(implicit, charset):
    data = encode(_answer(charset), implicit, True)
    ours = raw_dataset(data, implicit)
    theirs = decode(BytesIO(data), implicit, True)
    assert ours is not None
    assert dict(ours._dict) == dict(theirs._dict)  # the same RawDataElement tuples, tag by tag
    assert ours.original_encoding == theirs.original_encoding
    assert ours.original_character_set == theirs.original_character_set
    for elem in theirs:
        assert ours[elem.tag].value == elem.value, elem.tag
    assert str(ours.PatientName) == str(theirs.PatientName)


@pytest.mark.parametrize("implicit", [True, False])
def test_what_it_does_not_read_is_left_to_pydicom(implicit):
    ds = _answer()
    item = Dataset()
    item.CodeValue = "T-45010"
    ds.ProcedureCodeSequence = Sequence([item])
    # a sequence of defined length is one raw element, as pydicom reads it (and reads its items later)
    data = encode(ds, implicit, True)
    ours, theirs = raw_dataset(data, implicit), decode(BytesIO(data), implicit, True)
    assert ours is not None and dict(ours._dict) == dict(theirs._dict)
    assert ours.ProcedureCodeSequence[0].CodeValue == "T-45010"
    ds["ProcedureCodeSequence"].is_undefined_length = True  # items up to a delimiter: pydicom's reader
    data = encode(ds, implicit, True)
    assert raw_dataset(data, implicit) is None
    assert decode(BytesIO(data), implicit, True).ProcedureCodeSequence[0].CodeValue == "T-45010"
    cut = encode(_answer(), implicit, True)[:-1]  # the last value cut short
    assert raw_dataset(cut, implicit) is None
    assert raw_dataset(b"", implicit) is not None and len(raw_dataset(b"", implicit)) == 0
