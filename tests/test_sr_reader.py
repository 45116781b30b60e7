"""The tolerant SR walker on odd content the corpus does not have (built in memory)."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from mdtviewer.infra.errors import DicomInputError
from mdtviewer.sr.reader import read_sr
from mdtviewer.sr.render import render_text


def code(value, scheme, meaning):
    c = Dataset()
    c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = value, scheme, meaning
    return Sequence([c])


def item(rel, vt, name=None, **kw):
    d = Dataset()
    if rel:
        d.RelationshipType = rel
    if vt:
        d.ValueType = vt
    if name:
        d.ConceptNameCodeSequence = code(*name)
    for k, v in kw.items():
        setattr(d, k, v)
    return d


def make_sr(children, charset="ISO_IR 192") -> Dataset:
    ds = item(None, "CONTAINER", ("T1", "99X", "Odd report"), ContinuityOfContent="SEPARATE")
    ds.SpecificCharacterSet = charset
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.33"
    ds.SOPInstanceUID = "1.2.3.4.100"
    ds.StudyInstanceUID = "1.2.3.4"
    ds.ContentSequence = Sequence(children)
    return ds


def test_odd_items_are_kept_and_rendered_not_raised():
    mv_empty = item("CONTAINS", "NUM", ("N1", "99X", "Velocity"), MeasuredValueSequence=Sequence([]))
    q = Dataset()
    q.NumericValue = "125.5"
    q.MeasurementUnitsCodeSequence = code("cm/s", "UCUM", "centimeter per second")
    mv = item("CONTAINS", "NUM", ("N2", "99X", "PSV"), MeasuredValueSequence=Sequence([q]))
    no_name = item("CONTAINS", "TEXT", None, TextValue="no concept name — ünïcødé")
    unknown_vt = item("CONTAINS", "SPECTRUM", ("S", "99X", "Future type"))
    no_rel = item(None, "CODE", ("C", "99X", "Finding"), ConceptCodeSequence=code("X1", "99X", "Thrombus"))
    pname = item("HAS OBS CONTEXT", "PNAME", ("121008", "DCM", "Person Observer Name"), PersonName="Żółć^Łukasz")
    ref = Dataset()
    ref.RelationshipType = "INFERRED FROM"
    ref.ReferencedContentItemIdentifier = [1, 2]
    mv.ContentSequence = Sequence([ref])
    doc = read_sr(make_sr([pname, mv_empty, mv, no_name, unknown_vt, no_rel]))
    nodes = {n.position: n for n in doc.root.walk()}
    assert nodes["1.2"].numeric is None and nodes["1.2"].detail == "no value"
    assert nodes["1.3"].numeric == 125.5 and nodes["1.3"].unit.value == "cm/s"
    assert nodes["1.3.1"].reference == "1.2"
    assert nodes["1.4"].concept is None and nodes["1.4"].text.endswith("ünïcødé")
    assert nodes["1.5"].value_type == "SPECTRUM" and "not interpreted" in nodes["1.5"].text
    assert nodes["1.6"].relationship == "" and nodes["1.6"].code.meaning == "Thrombus"
    assert doc.author_observers == ["Żółć^Łukasz"]
    text = render_text(doc)
    assert "1.2 contains NUM Velocity (N1, 99X): (no value)" in text
    assert "1.3 contains NUM PSV (N2, 99X): 125.5 cm/s" in text
    assert "1.3.1 inferred from BY-REFERENCE -> item 1.2" in text
    assert "no concept name — ünïcødé" in text
    assert "Future type (S, 99X)" in text
    assert not doc.is_review


def test_absurdly_deep_nesting_is_cut_not_crashed():
    leaf = item("CONTAINS", "TEXT", ("T", "99X", "t"), TextValue="deep")
    for _ in range(200):
        parent = item("CONTAINS", "CONTAINER", ("C", "99X", "c"), ContinuityOfContent="SEPARATE")
        parent.ContentSequence = Sequence([leaf])
        leaf = parent
    doc = read_sr(make_sr([leaf]))
    depth = max(n.position.count(".") for n in doc.root.walk())
    assert 60 < depth < 80
    assert any("nesting too deep" in (n.text or "") for n in doc.root.walk())


def test_not_an_sr_raises_typed_error():
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.6.1"
    with pytest.raises(DicomInputError, match="not a structured report"):
        read_sr(ds)


def test_subject_name_in_observer_context_is_not_an_author(testdata):
    """TID 1006 Subject Name (121029) is the patient, not an author (TID 1003 121008)."""
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    from mdtviewer.sr.reader import read_sr

    ds = pydicom.dcmread(testdata / "sr_enhanced_tid1500_dcmjs.dcm")
    assert "unknown^unknown" in read_sr(ds).author_observers
    subject = Dataset()
    subject.RelationshipType = "HAS OBS CONTEXT"
    subject.ValueType = "PNAME"
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "121029", "DCM", "Subject Name"
    subject.ConceptNameCodeSequence = Sequence([code])
    subject.PersonName = "Patient^Secret"
    ds.ContentSequence.insert(0, subject)
    doc = read_sr(ds)
    assert "Patient^Secret" not in doc.author_observers
    assert "unknown^unknown" in doc.author_observers
