"""The project as issue 3 asks for it: README quick start of exactly two commands, .ci/run running
the test one, the console script, and the layout (Qt-free core in mdtviewer/, Qt in mdtviewer/ui/)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import tomllib

from conftest import REPO


def _quick_start_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Quick start.*?\n(.*?)(?=^## )", text, re.S | re.M)
    assert section, "README has no '## Quick start' section"
    block = re.search(r"```(?:sh|bash|console)?\n(.*?)```", section.group(1), re.S)
    assert block, "Quick start has no command block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip() and not line.strip().startswith("#")]


def test_quick_start_is_two_commands_install_and_demo_then_install_and_test():
    app, test = _quick_start_commands()  # exactly two
    assert "install-debian.sh" in app and "--demo" in app and "--test" not in app
    assert "install-debian.sh --test" in test and "pytest" in test
    for cmd in (app, test):
        script = re.match(r"sh (\S+\.sh)\b", cmd)
        assert script and (REPO / script.group(1)).is_file(), cmd


def test_ci_runs_the_readme_test_command():
    ci = REPO / ".ci" / "run"
    assert ci.is_file() and os.access(ci, os.X_OK)
    lines = [line.strip() for line in ci.read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert lines[-1] == _quick_start_commands()[1]
    for sh in (ci, REPO / "packaging" / "install-debian.sh"):
        res = subprocess.run(["sh", "-n", str(sh)], capture_output=True, text=True, timeout=30)
        assert res.returncode == 0, res.stderr


def test_console_script_and_layout():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["name"] == "mdtviewer"
    assert meta["project"]["scripts"]["mdtviewer"] == "mdtviewer.cli:main"
    for d in ("mdtviewer", "mdtviewer/ui", "benchmarks", "packaging", "resources", "tests"):
        assert (REPO / d).is_dir(), d
    exe = REPO / ".venv" / "bin" / "mdtviewer"
    res = subprocess.run([str(exe) if exe.exists() else sys.executable, *([] if exe.exists() else ["-m", "mdtviewer"]),
                          "check"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "usage" in res.stderr.lower()
