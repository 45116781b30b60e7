"""HAZ-029 C2: `sr show` and the report panel say a content tree is damaged, as `check` does.

Made with pydicom from the corpus's OFFIS Comprehensive SR (sr_comprehensive_offis_test.dcm): the Value
Type of its first content item deleted (it was shown as "BY-REFERENCE", as if it pointed elsewhere).
"""

from __future__ import annotations

import pydicom

from mdtviewer.cli import main as cli_main
from mdtviewer.sr.reader import read_sr

DAMAGED = "the structured report's content is damaged"


def _damaged(testdata, tmp_path):
    ds = pydicom.dcmread(testdata / "sr_comprehensive_offis_test.dcm")
    del ds.ContentSequence[0].ValueType
    path = tmp_path / "no_value_type.dcm"
    ds.save_as(path)
    return path


def test_sr_show_says_the_tree_is_damaged(testdata, tmp_path, capsys):
    path = _damaged(testdata, tmp_path)
    assert cli_main(["sr", "show", str(path)]) == 0  # still shown: the reader decides, told what is wrong
    err = capsys.readouterr().err
    assert DAMAGED in err and "has no Value Type" in err
    assert not read_sr(testdata / "sr_comprehensive_offis_test.dcm").notes  # the sound original: no note


def test_report_panel_page_warns_before_the_content(testdata, tmp_path):
    from mdtviewer.ui.reports.sr_html import render_html

    page = render_html(read_sr(_damaged(testdata, tmp_path)))
    assert "content is damaged: item 1.1 has no Value Type" in page  # (the apostrophe is HTML-escaped)
    assert page.index("content is damaged") < page.index("<hr>")
