"""`sr show` never passes a file's control characters to the terminal (issue 11.6: escape control
characters in all text output).

Made with pydicom from the corpus SR sr_basic_text_offis_reportsi.dcm: an ESC sequence (clear screen, a
window title) and a CR put into a TEXT value, and into a Content Template Identifier the header shows.
"""

from __future__ import annotations

import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from mdtviewer.cli import main as cli_main

EVIL = "ok\x1b[2J\x1b]0;owned\x07\r0 findings\u202e"


def _first_text(items):
    for it in items:
        if getattr(it, "ValueType", "") == "TEXT":
            return it
        found = _first_text(getattr(it, "ContentSequence", []))
        if found is not None:
            return found
    return None


def test_control_characters_from_the_file_are_shown_escaped(testdata, tmp_path, capsys):
    ds = pydicom.dcmread(testdata / "sr_basic_text_offis_reportsi.dcm")
    ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8, so the bidi override is written as it is
    _first_text(ds.ContentSequence).TextValue = EVIL
    tpl = Dataset()
    tpl.MappingResource, tpl.TemplateIdentifier = "DCMR", "2000" + "\x1b[31m"
    ds.ContentTemplateSequence = Sequence([tpl])
    path = tmp_path / "evil.dcm"
    ds.save_as(path)
    cli_main(["sr", "show", str(path)])
    cap = capsys.readouterr()
    for stream in (cap.out, cap.err):
        assert "\x1b" not in stream and "\r" not in stream and "\x07" not in stream and "\u202e" not in stream
    assert "\\x1b[2J" in cap.out and "0 findings" in cap.out  # shown, visibly escaped
