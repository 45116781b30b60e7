"""The core must run headless: nothing outside mdtviewer/ui may import Qt; and the import
contracts of pyproject.toml (layers, Qt only in ui, no cycles) hold, checked by import-linter."""

from __future__ import annotations

import ast
import os
import shutil
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


# ----------------------------------------------------------------------------- import-linter
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    """lint-imports with the project's contracts over the package under *root* (about half a second)."""
    if not LINT_IMPORTS.exists():
        pytest.fail("import-linter is not installed: sh packaging/install-debian.sh --test installs the test extras")
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-logo", "--no-cache", str(root / "pyproject.toml")],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},  # this copy of the package, not another
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_import_contracts_are_kept():
    """The same check .ci/run makes, so a broken contract fails the suite too."""
    res = _lint_imports(PKG.parent)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "Contracts: 4 kept, 0 broken." in res.stdout, res.stdout[-4000:]


def test_import_contracts_catch_each_kind_of_violation(tmp_path):
    """The contracts bite: in a copy of the package, a Qt import in the core or the CLI, sr
    importing pacs, a lower layer importing a higher one, a cycle and an unplaced room are reported."""
    root = tmp_path / "repo"
    shutil.copytree(PKG, root / "mdtviewer", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PKG.parent / "pyproject.toml", root / "pyproject.toml")

    def add(rel: str, line: str) -> None:
        path = root / "mdtviewer" / rel
        path.write_text(path.read_text(encoding="utf-8") + "\n" + line + "\n", encoding="utf-8")

    add("imaging/colour.py", "import PySide6.QtGui")  # Qt in the core
    add("cli/pacs.py", "import PySide6.QtCore")  # Qt in the CLI, not through mdtviewer.ui
    add("sr/codes.py", "import mdtviewer.pacs.nodes")  # sr and pacs are independent
    add("infra/paths.py", "import mdtviewer.dicom.model")  # infra is the lowest layer (and dicom imports infra)
    (root / "mdtviewer" / "extra").mkdir()
    (root / "mdtviewer" / "extra" / "__init__.py").write_text("", encoding="utf-8")  # a room in no layer
    res = _lint_imports(root)
    out = res.stdout
    assert res.returncode != 0, out[-4000:]
    assert "Contracts: 0 kept, 4 broken." in out, out[-4000:]
    for expected in (
        "mdtviewer.imaging.colour -> PySide6",
        "mdtviewer.cli.pacs -> PySide6",
        "mdtviewer.sr.codes -> mdtviewer.pacs.nodes",
        "mdtviewer.infra.paths -> mdtviewer.dicom.model",
        "mdtviewer.extra",
        "No cycles are allowed in mdtviewer.",
    ):
        assert expected in out, f"{expected!r} not reported:\n{out[-4000:]}"
