"""The core must run headless: nothing outside mdtviewer/ui may import Qt."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "mdtviewer"
QT = ("PySide6", "pyqtgraph", "shiboken6")


def core_modules() -> list[str]:
    mods = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG.parent).with_suffix("")
        parts = rel.parts
        if "ui" in parts[1:2]:
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts[-1] == "__main__":
            continue
        mods.append(".".join(parts))
    return sorted(mods)


def test_no_qt_import_statement_in_core():
    offenders = []
    for path in PKG.rglob("*.py"):
        if path.relative_to(PKG).parts[0] == "ui":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for n in names:
                if n.split(".")[0] in QT:
                    offenders.append(f"{path.relative_to(PKG.parent)}:{node.lineno} imports {n}")
    assert not offenders, "\n".join(offenders)


def test_core_imports_with_qt_blocked():
    """Import every core module in a fresh interpreter where Qt cannot load."""
    mods = core_modules()
    assert "mdtviewer.cli" in mods
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {QT!r}:\n"
        "            raise ImportError('Qt blocked in core test: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import importlib\n"
        f"for m in {mods!r}:\n"
        "    importlib.import_module(m)\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {QT!r}]\n"
        "assert not bad, bad\n"
        "print('ok', len(sys.modules))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.startswith("ok")


@pytest.mark.parametrize("mod", ["mdtviewer.ui"])
def test_ui_package_exists(mod):
    assert (PKG / "ui" / "__init__.py").exists()
