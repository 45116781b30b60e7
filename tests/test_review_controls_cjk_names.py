"""CJK patient names show their ideographic part too (issue 15.6): two patients "Wang, XiaoDong" who
differ only in their characters (王小東 / 王小东) are told apart wherever names are shown.

Test data: pydicom's own character-set test files, shipped in the installed pydicom wheel
(pydicom/data/charset_files, MIT) and read in place: chrX1 ('Wang^XiaoDong=王^小東', ISO_IR 192),
chrX2 ('Wang^XiaoDong=王^小东', GB18030), chrH31 (Japanese, ISO 2022 IR 87, three groups),
chrI2 (Korean, ISO 2022 IR 149), chrKoreanMulti (Hangul only).  The shared corpus has no file with
an ideographic name (its SOURCES.md lists none).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest

from mdtviewer.dicom import values

CHARSETS = Path(pydicom.__file__).parent / "data" / "charset_files"


@pytest.mark.parametrize("name, expected", [
    ("chrX1.dcm", "Wang, XiaoDong (王小東)"),
    ("chrX2.dcm", "Wang, XiaoDong (王小东)"),
    ("chrH31.dcm", "Yamada, Tarou (山田太郎)"),  # the phonetic group (やまだ^たろう) is not repeated
    ("chrI2.dcm", "Hong, Gildong (洪吉洞)"),
    ("chrKoreanMulti.dcm", "김희중"),
    ("chrJapMulti.dcm", "やまだ たろう"),  # kana: family and given name apart
])
def test_person_name_from_real_files(name, expected):
    pn = pydicom.dcmread(CHARSETS / name, stop_before_pixels=True).PatientName
    assert values.format_person_name(pn) == expected
    assert values.format_person_name(str(pn)) == expected


def test_person_name_groups():
    f = values.format_person_name
    assert f("DOE^JANE^Q^DR") == "DOE, JANE Q"  # unchanged for names without another group
    assert f("=王^小东") == "王小东"  # ideographic only
    assert f("==やまだ^たろう") == "やまだ たろう"  # phonetic only: shown rather than nothing
    assert f("Wang^XiaoDong=Wang^XiaoDong") == "Wang, XiaoDong"  # not said twice
    assert f("Wang^XiaoDong==わん") == "Wang, XiaoDong"
    assert f("") == ""


@pytest.mark.gui
def test_two_wang_xiaodong_told_apart_in_the_window(qtbot, window, tmp_path):
    for name in ("chrX1.dcm", "chrX2.dcm"):
        shutil.copy(CHARSETS / name, tmp_path / name)
    with qtbot.waitSignal(window.scanFinished, timeout=30_000):
        window.open_paths([str(tmp_path)])
    texts = "\n".join(window.browser.all_texts())
    assert "Wang, XiaoDong (王小東)" in texts and "Wang, XiaoDong (王小东)" in texts
    x2 = pydicom.dcmread(tmp_path / "chrX2.dcm", stop_before_pixels=True)
    assert window.show_instance(str(x2.SOPInstanceUID))
    vp = window.current_viewport()
    qtbot.waitUntil(lambda: "Wang, XiaoDong (王小东)" in vp.overlay_text(), timeout=15_000)
    qtbot.waitUntil(lambda: "(王小东)" in window.windowTitle(), timeout=5_000)
    # privacy on: neither the letters nor the characters are shown
    window.set_privacy(True)
    qtbot.waitUntil(lambda: "王" not in vp.overlay_text(), timeout=5_000)
    shown = "\n".join([*window.browser.all_texts(), vp.overlay_text(), window.windowTitle()])
    assert "王" not in shown and "XiaoDong" not in shown
    window.set_privacy(False)
