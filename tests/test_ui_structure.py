"""How the UI is put together, checked on the source: widgets talk through public API, features are wired.

These are the rules the window's split made (issue 16): a feature is imported,
never looked up by name; no widget writes another object's private
attributes; nothing is typed ``window: Any``; no widget redefines
``QWidget.window()``; UI tests read public accessors.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
UI = REPO / "mdtviewer" / "ui"

#: private reads left in UI tests, of modules other rooms own (each a debt, named here so none is added)
TEST_PRIVATE_READS_ALLOWED = {
    ("test_ui_browse.py", "_source"),  # FrameService's decoder cache (ui/viewer/workers.py)
    ("test_ui_browse.py", "_sources"),
    ("test_ui_browse.py", "_read_one"),  # monkeypatched index reader, not a read of state
    ("test_ui_review_use.py", "_read_one"),
    ("test_ui_framecache.py", "_items"),  # imaging.framecache internals
    ("test_ui_window.py", "_icon_for"),  # the browser's private/plain thumbnail (ui/viewer/browser.py)
    ("test_ui_window.py", "_icons"),
    ("test_ui_window.py", "_private_icons"),
}


def _ui_sources() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text(encoding="utf-8"))) for p in sorted(UI.rglob("*.py"))]


def _is_self(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in ("self", "cls")


def test_no_widget_writes_another_objects_private_attributes():
    bad = []
    for path, tree in _ui_sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                targets = [node.target]
            else:
                continue
            for t in targets:
                for tt in [t, *(t.elts if isinstance(t, ast.Tuple) else [])]:
                    if isinstance(tt, ast.Attribute) and tt.attr.startswith("_") and not _is_self(tt.value):
                        bad.append(f"{path.relative_to(REPO)}:{tt.lineno} {ast.unparse(tt)}")
    assert bad == []


def test_nothing_is_typed_window_any_and_no_widget_shadows_qwidget_window():
    bad = []
    for path, tree in _ui_sources():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.arg)
                and node.arg.startswith("window")
                and node.annotation is not None
                and ast.unparse(node.annotation) in ("Any", "typing.Any")
            ):
                bad.append(f"{path.relative_to(REPO)}:{node.lineno} {node.arg}: Any")
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if isinstance(t, ast.Attribute) and _is_self(t.value) and t.attr == "window":
                        bad.append(f"{path.relative_to(REPO)}:{t.lineno} self.window = … shadows QWidget.window()")
    assert bad == []


def test_the_window_imports_its_features_and_looks_nothing_up_by_name():
    tree = ast.parse((UI / "main_window.py").read_text(encoding="utf-8"))
    top_level = {
        alias.name if node.module is None else f"{node.module}.{alias.name}"
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    # screens opened later (issue 12.5: their libraries, pyqtgraph for one, cost start-up time) are named
    # at the top as LazyModule("..."): found at start-up, so a missing one still fails the start loudly
    lazy = {
        node.value.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
        and getattr(node.value.func, "id", "") == "LazyModule" and node.value.args
        and isinstance(node.value.args[0], ast.Constant)
    }
    for feature in (
        "mdtviewer.ui.dialogs.pacs_dialog",
        "mdtviewer.ui.mdt.presenter.Presenter",
        "mdtviewer.ui.review.review_editor.ReviewDock",
        "mdtviewer.ui.reports.report_panel.ReportPanel",
    ):
        assert feature in top_level, feature
    for feature in (
        "mdtviewer.ui.dialogs.export_dialog",
        "mdtviewer.ui.dialogs.template_dialog",
        "mdtviewer.ui.review.logbook_view",
    ):
        assert feature in lazy or feature in top_level, feature
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
    }
    assert "importlib" not in names and "import_module" not in names
    # a broken feature is an error: at start-up, or, for one opened later, an error box with the log
    # file when its menu command is used -- never caught and dropped
    import_errors = {"ImportError", "ModuleNotFoundError"}
    for h in ast.walk(tree):
        if not (isinstance(h, ast.ExceptHandler) and h.type is not None):
            continue
        if import_errors & set(ast.unparse(h.type).strip("()").replace(" ", "").split(",")):
            calls = {getattr(c.func, "id", getattr(c.func, "attr", "")) for c in ast.walk(h) if isinstance(c, ast.Call)}
            assert "show_error" in calls, ast.unparse(h)


def test_ui_tests_read_public_accessors():
    found = set()
    for path in sorted((REPO / "tests").glob("test_ui_*.py")):
        if path.name in ("test_ui_tasks.py", "test_ui_structure.py"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not _is_self(node.value)
                and ast.unparse(node.value) not in ("qtbot", "sys")
            ):
                found.add((path.name, node.attr))
    assert found - TEST_PRIVATE_READS_ALLOWED == set()


def test_no_ui_module_reaches_for_another_modules_private_names():
    bad = []
    for path, tree in _ui_sources():
        imported = {
            (alias.asname or alias.name).split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in node.names
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in imported
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                bad.append(f"{path.relative_to(REPO)}:{node.lineno} {ast.unparse(node)}")
    assert bad == []
