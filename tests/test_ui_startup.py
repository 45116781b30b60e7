"""A feature that cannot be imported stops the start-up with the error: never a window with a menu missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

#: put first on sys.path of the child: Python imports it at start-up, before mdtviewer
SITECUSTOMIZE = '''
import os
import sys

BROKEN = os.environ["MDTVIEWER_TEST_BREAK"]


class _BreakOneImport:
    """A meta-path finder that fails the import of one module, as a broken installation would."""

    def find_spec(self, name, path=None, target=None):
        if name == BROKEN:
            raise ImportError(f"simulated broken install of {name}", name=name)
        return None


sys.meta_path.insert(0, _BreakOneImport())
'''


def _open_with_broken(tmp_path: Path, module: str) -> subprocess.CompletedProcess:
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    shot = tmp_path / "shot.png"
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHONPATH": os.pathsep.join([str(hook), str(REPO)]),
        "MDTVIEWER_TEST_BREAK": module,
    }
    res = subprocess.run(
        [sys.executable, "-m", "mdtviewer", "open", str(REPO / "mdtviewer" / "resources" / "demo"),
         "--screenshot", str(shot)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    res.shot_written = shot.exists()  # type: ignore[attr-defined]
    return res


@pytest.mark.parametrize(
    "module",
    [
        "mdtviewer.ui.review.review_editor",
        "mdtviewer.ui.mdt.presenter",
        "mdtviewer.ui.dialogs.pacs_dialog",
        "mdtviewer.ui.dialogs.export_dialog",
        "mdtviewer.ui.reports.report_panel",
        "mdtviewer.ui.dialogs.template_dialog",
    ],
)
def test_a_feature_that_fails_to_import_stops_the_start(tmp_path, mdt_home, module):
    res = _open_with_broken(tmp_path, module)
    assert res.returncode == 3, (res.returncode, res.stdout, res.stderr)
    err = res.stderr.strip().splitlines()
    assert err[-1].startswith(f"mdtviewer open: cannot start: {module} failed to import (ImportError: simulated"), err
    assert str(mdt_home / "logs" / "mdtviewer.log") in err[-1]
    assert not res.shot_written and "saved" not in res.stdout  # no window came up without the feature
    log = (mdt_home / "logs" / "mdtviewer.log").read_text(encoding="utf-8")
    assert "start-up failed" in log and "Traceback" in log and module in log


def test_the_same_run_without_the_hook_starts(tmp_path, mdt_home):
    """The control: the hook breaks only the module it names (an unrelated name changes nothing)."""
    res = _open_with_broken(tmp_path, "mdtviewer.ui.no_such_feature")
    assert res.returncode == 0, res.stderr
    assert res.shot_written and "saved" in res.stdout


def test_the_desktop_window_does_not_open_without_a_feature_either(tmp_path, mdt_home):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHONPATH": os.pathsep.join([str(hook), str(REPO)]),
        "MDTVIEWER_TEST_BREAK": "mdtviewer.ui.mdt.presenter",
    }
    res = subprocess.run(
        [sys.executable, "-m", "mdtviewer", str(REPO / "mdtviewer" / "resources" / "demo")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert res.returncode == 3, (res.stdout, res.stderr)
    assert (
        res.stderr.strip()
        .splitlines()[-1]
        .startswith("mdtviewer: cannot start: mdtviewer.ui.mdt.presenter failed to import")
    )


#: builds the window, opens Review > Logbook from its menu action, prints what the user was told
OPEN_LOGBOOK = r"""
import sys
from PySide6.QtWidgets import QMessageBox
from mdtviewer.ui.app import load_window

MainWindow, app_instance = load_window()
app = app_instance()
win = MainWindow()
win.show()
app.processEvents()
win.action("review.logbook").trigger()
app.processEvents()
boxes = [w for w in app.topLevelWidgets() if isinstance(w, QMessageBox) and w.objectName() == "errorBox"]
print("ERRORBOX", boxes[0].text() if boxes else "none")
print("LOGBOOK", "open" if getattr(win, "logbook_window", None) is not None else "none")
win.close()
"""


@pytest.mark.parametrize("broken", ["pyqtgraph", "mdtviewer.no_such_feature"])
def test_a_feature_opened_later_that_fails_to_import_is_an_error_the_user_sees(tmp_path, mdt_home, broken):
    """The logbook (and pyqtgraph under it) is imported when first opened, not at start-up (issue 12.5):
    when that import fails, the menu command shows the error with the log file, never nothing."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHONPATH": os.pathsep.join([str(hook), str(REPO)]),
        "MDTVIEWER_TEST_BREAK": broken,
    }
    res = subprocess.run([sys.executable, "-c", OPEN_LOGBOOK], capture_output=True, text=True, timeout=120,
                         env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = dict(line.split(" ", 1) for line in res.stdout.splitlines() if line.startswith(("ERRORBOX", "LOGBOOK")))
    if broken == "pyqtgraph":
        assert out["LOGBOOK"] == "none"
        assert out["ERRORBOX"].startswith("a part of the viewer cannot be imported: an unexpected error (ImportError)")
        assert str(mdt_home / "logs" / "mdtviewer.log") in out["ERRORBOX"]
        log = (mdt_home / "logs" / "mdtviewer.log").read_text(encoding="utf-8")
        assert "simulated broken install of pyqtgraph" in log
    else:  # the control: nothing broken, the logbook opens and no error is shown
        assert out == {"ERRORBOX": "none", "LOGBOOK": "open"}, res.stderr
