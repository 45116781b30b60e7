"""Privacy in report text for Chinese, Japanese and Korean names (HAZ-016).

CJK name parts are one or two characters ("王^小东"), and CJK text has no spaces between words, so
the rules that suit Latin names (parts of 3+ letters, whole words only) let them through.  The names come
from pydicom's own character-set sample files (pydicom/data/charset_files, MIT), read in place:
chrX2 ('Wang^XiaoDong=王^小东', GB18030), chrI2 (Korean, ISO 2022 IR 149).
"""

from __future__ import annotations

import pydicom
import pytest
from pydicom.data import get_charset_files

from mdtviewer.ui.reports.sr_html import HIDDEN, SafeText
from mdtviewer.workflows.report_files import identifiers_from_dataset


def _ids(name: str):
    [path] = get_charset_files(name)
    return identifiers_from_dataset(pydicom.dcmread(path))


@pytest.mark.parametrize("charset_file", ["chrX2.dcm", "chrI2.dcm"])
def test_ideographic_name_parts_hidden_inside_cjk_sentences(charset_file):
    ids = _ids(charset_file)
    ideographic = ids.name.split("=")[1]
    surname, given = (p.strip() for p in ideographic.split("^")[:2])
    assert len(surname) == 1  # a one-character surname: the 3-letter rule alone would keep it
    text = f"患者{surname}{given}复查。{surname}先生, {given}; latest scan"
    shown = SafeText(ids.needles(), True)(text)
    assert surname not in shown and given not in shown, shown
    assert HIDDEN in shown and "latest scan" in shown  # Latin words are still matched as whole words only
    assert SafeText(ids.needles(), False)(text) == text  # privacy off: the text as written


def test_latin_parts_keep_whole_word_matching():
    ids = _ids("chrX2.dcm")
    shown = SafeText(ids.needles(), True)("Wangaratta clinic; Wang XiaoDong seen")
    assert shown.startswith("Wangaratta") and "XiaoDong" not in shown


@pytest.mark.parametrize("charset_file", ["chrX2.dcm", "chrI2.dcm"])
def test_descriptions_scrubbed_of_cjk_name_parts(charset_file):
    """The same for the descriptions the browser and overlay show (imaging.masking.scrub_free_text)."""
    from mdtviewer.imaging.masking import SCRUBBED, scrub_free_text

    [path] = get_charset_files(charset_file)
    name = str(pydicom.dcmread(path).PatientName)
    surname, given = (p.strip() for p in name.split("=")[1].split("^")[:2])
    shown = scrub_free_text(f"颈动脉 {surname}{given}复查 / {surname} R ICA", name)
    assert surname not in shown and given not in shown and SCRUBBED in shown, shown
    assert "R ICA" in shown  # a side letter is never taken for an initial
