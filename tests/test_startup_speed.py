"""Start-up imports what the first screen needs; heavy libraries of other screens load at first use (issue 12.5).

Behaviour only (timings are measured by benchmarks/ui_open.py, never asserted here): after the main window's
module is imported, highdicom (SR writing) and pydicom's SR code dictionary are not; they load, and
work, when first used; a library that is not installed still stops the start-up (test_ui_startup.py covers
the screens' own modules)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _child(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(REPO), **env})


def test_the_main_window_module_does_not_import_other_screens_libraries():
    res = _child(
        "import sys\n"
        "import mdtviewer.ui.main_window\n"
        "print(sorted(m for m in ('highdicom', 'pydicom.sr.codedict') if m in sys.modules))\n"
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]", res.stdout


def test_highdicom_loads_at_first_use_and_writes_the_sr(tmp_path):
    # the review SR written after a lazy start is the same kind of document highdicom makes
    res = _child(
        "import sys\n"
        "import mdtviewer.ui.main_window\n"
        "from mdtviewer.sr import writer\n"
        "assert 'highdicom' not in sys.modules\n"
        "c = writer._cc(writer.codes.C('121071', 'DCM', 'Finding')) if hasattr(writer.codes, 'C') else None\n"
        "print('highdicom' in sys.modules, type(c).__name__)\n"
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["True", "CodedConcept"], res.stdout


def test_a_missing_library_still_fails_at_start():
    from mdtviewer.infra.lazymodule import LazyModule

    with pytest.raises(ModuleNotFoundError) as exc:
        LazyModule("mdtviewer_no_such_library")
    assert exc.value.name == "mdtviewer_no_such_library"
    hd = LazyModule("json")  # found now, executed on first attribute use
    assert "not imported yet" in repr(hd)
    assert hd.loads("[1]") == [1] and "imported" in repr(hd)
