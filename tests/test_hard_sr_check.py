"""``mdtviewer check`` walks SR/KOS content trees (issue 11: hostile SR trees).

Each hostile tree is made here from the corpus's OFFIS Comprehensive SR (``sr_comprehensive_offis_test.dcm``)
with pydicom: a by-reference item pointing at its own ancestor (a loop), 5,000 nested containers, a content
item whose Value Type was deleted, an unknown and a misplaced Relationship Type, a UIDREF item whose concept
name was deleted, and a Content Template Sequence of two items, one with a control-character identifier and
one empty.  Each must give one clean line in ``check`` (exit 1, the contract's "not ok"), and every corpus
SR/KOS, the hostile corpus's SRs and the SRs the viewer itself writes must still pass.
"""

from __future__ import annotations

import json

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from mdtviewer.cli import main as cli_main
from mdtviewer.cli.check import read_report_notes
from mdtviewer.imaging.check import check_file, sr_tree_problems

SOURCE = "sr_comprehensive_offis_test.dcm"


def _items(ds):
    out = []

    def walk(d):
        for it in d.get("ContentSequence", []) or []:
            out.append(it)
            walk(it)

    walk(ds)
    return out


def _cycle(ds):
    first = _items(ds)[0]
    ref = Dataset()
    ref.RelationshipType = "CONTAINS"
    ref.ReferencedContentItemIdentifier = [1]
    first.ContentSequence = Sequence(list(first.get("ContentSequence", []) or []) + [ref])


def _deep_bytes(ds, levels: int = 5000) -> bytes:
    """*ds* whose root content is *levels* nested CONTAINERs, encoded by hand (Explicit VR Little Endian,
    undefined lengths): pydicom takes minutes to write such a nesting itself."""
    import struct

    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info

    def elem(group: int, element: int, vr: bytes, value: bytes) -> bytes:
        return struct.pack("<HH", group, element) + vr + struct.pack("<H", len(value)) + value

    item_head = (elem(0x0040, 0xA010, b"CS", b"CONTAINS") + elem(0x0040, 0xA040, b"CS", b"CONTAINER ")
                 + elem(0x0040, 0xA050, b"CS", b"SEPARATE"))
    seq_start = struct.pack("<HH", 0x0040, 0xA730) + b"SQ\0\0" + b"\xff" * 4
    item_start = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    item_end = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
    seq_end = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    leaf = item_start + elem(0x0040, 0xA010, b"CS", b"CONTAINS") + elem(0x0040, 0xA040, b"CS", b"TEXT") + item_end
    content = (seq_start + item_start + item_head) * levels + seq_start + leaf + (seq_end + item_end) * levels + seq_end

    before, after = Dataset(), Dataset()
    for e in ds:
        if e.tag != 0x0040A730:
            (before if e.tag < 0x0040A730 else after).add(e)
    parts = []
    for part in (before, after):
        buf = DicomBytesIO()
        buf.is_little_endian, buf.is_implicit_VR = True, False
        write_dataset(buf, part)
        parts.append(buf.getvalue())
    head = DicomBytesIO()
    head.write(b"\0" * 128 + b"DICM")
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    write_file_meta_info(head, ds.file_meta, enforce_standard=True)
    return head.getvalue() + parts[0] + content + parts[1]


def _no_value_type(ds):
    del _items(ds)[1].ValueType


def _bad_relationship(ds):
    _items(ds)[2].RelationshipType = "XX"


def _selected_from_container(ds):
    _items(ds)[1].RelationshipType = "SELECTED FROM"


def _no_concept(ds):
    item = next(i for i in _items(ds) if i.get("ValueType") == "UIDREF")
    del item.ConceptNameCodeSequence


def _broken_template(ds):
    t = Dataset()
    t.MappingResource = "DCMR"
    t.TemplateIdentifier = "\x1b[31m1500"
    ds.ContentTemplateSequence = Sequence([t, Dataset()])


HOSTILE = {
    "cycle": (_cycle, "item 1.1.1 refers to its own ancestor (a loop by reference)"),
    "deep": (None, "nesting deeper than 64 sequences"),
    "no-value-type": (_no_value_type, "item 1.2 has no Value Type"),
    "bad-relationship": (_bad_relationship, "has an unknown Relationship Type"),
    "selected-from": (_selected_from_container, "item 1.2 is SELECTED FROM a CONTAINER item"),
    "no-concept": (_no_concept, "(UIDREF) has no concept name"),
    "broken-template": (_broken_template, "item 1 has a Content Template Sequence of 2 items"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_sr_tree_gets_one_clean_line_in_check(name, testdata, tmp_path, capsys):
    make, reason = HOSTILE[name]
    ds = pydicom.dcmread(testdata / SOURCE)
    path = tmp_path / f"{name}.dcm"
    if make is None:
        path.write_bytes(_deep_bytes(ds))
    else:
        make(ds)
        ds.save_as(path)
    rec = check_file(str(path), "sr", document_check=read_report_notes)  # what each check worker runs
    assert rec["ok"] is False
    assert reason in rec["error"], rec["error"]
    assert "\n" not in rec["error"] and "\x1b" not in rec["error"]
    assert "fault in the viewer" not in rec["error"]
    if name in ("cycle", "broken-template"):  # the command itself: exit 1, one line, JSON and text alike
        rc = cli_main(["check", "--json", "--jobs", "1", str(path)])
        captured = capsys.readouterr()
        (line,) = captured.out.splitlines()
        assert rc == 1 and json.loads(line)["error"] == rec["error"] and "Traceback" not in captured.err
        rc = cli_main(["check", "--jobs", "1", str(path)])
        out = capsys.readouterr().out
        assert rc == 1 and out.startswith("FAIL  sr") and reason in out and "\x1b" not in out


def test_every_corpus_and_hostile_sr_and_kos_still_passes(testdata):
    files = sorted(testdata.glob("sr_*.dcm")) + sorted(testdata.glob("kos_*.dcm"))
    files += sorted((testdata.parent / "hostile").glob("sr_*.dcm"))
    assert len(files) >= 9
    for f in files:
        assert sr_tree_problems(pydicom.dcmread(f)) == [], f.name
        kind = "kos" if f.name.startswith("kos") else "sr"
        rec = check_file(str(f), kind, document_check=read_report_notes)
        assert rec["ok"], (f.name, rec["error"])


def test_sr_show_notes_appear_in_check(testdata, capsys):
    """check reads SRs as ``sr show`` does: the note it gives for a damaged Content Date is given here too."""
    f = testdata.parent / "hostile" / "sr_contentdate_vr_FD_srshow_traceback.dcm"
    rc = cli_main(["check", "--json", "--jobs", "1", str(f)])
    rec = json.loads(capsys.readouterr().out.splitlines()[0])
    assert rc == 0 and rec["ok"]
    assert "is damaged and was ignored" in (rec["note"] or "")


def test_the_srs_the_viewer_writes_pass(tmp_path):
    from mdtviewer.sr.writer import build_review_sr
    from sr_helpers import GE_FILES, second_opinion

    sr = build_review_sr(second_opinion(), GE_FILES)
    assert sr_tree_problems(sr) == []
