"""The declared action table is what the window has: every command, its menu, its key, its handler."""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtGui import QKeySequence

from mdtviewer.ui import actions as table
from mdtviewer.ui.actions import ACTIONS, MENUS

REPO = Path(__file__).resolve().parent.parent


def _menu_path_of(window, action) -> list[str]:
    """Object names of the menus that hold *action*, outermost first ([] when in no menu)."""
    for name, _title in MENUS:
        top = window.menu(name)
        if action in top.actions():
            return [name]
        for sub in top.actions():
            if sub.menu() is not None and action in sub.menu().actions():
                return [name, sub.menu().objectName()]
    return []


def test_every_declared_action_is_in_the_window_with_its_shortcut_and_menu(window):
    ids = [s.id for s in ACTIONS]
    assert len(ids) == len(set(ids))
    assert [a.menu().objectName() for a in window.menuBar().actions()] == [name for name, _t in MENUS]
    for spec in ACTIONS:
        a = window.action(spec.id)
        want = table.key_sequence(spec.shortcut)
        assert a.shortcut() == want, (spec.id, a.shortcut().toString(), want.toString())
        if spec.text:
            assert a.text() == spec.text, spec.id
        assert a.isCheckable() == (spec.checkable or bool(spec.dock)), spec.id
        where = _menu_path_of(window, a)
        if spec.menu:
            assert where and where[-1] == spec.menu, (spec.id, where)
        else:
            assert where == [] and a in window.actions(), spec.id  # a window-wide key with no menu item
        if spec.name:
            assert a.objectName() == spec.name
        if spec.scope == "viewports":
            assert a in window.grid.actions() and a not in window.actions()
        elif spec.shortcut is not None and not spec.dock:
            assert a in window.actions(), spec.id  # works with the menu bar hidden (presenting)


def test_every_handler_exists_and_no_key_is_declared_twice(window):
    for spec in ACTIONS:
        if spec.dock:
            continue
        assert callable(window.handler(spec)), spec.id
    keys = [table.key_sequence(s.shortcut).toString() for s in ACTIONS if s.shortcut is not None]
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)


def test_actions_run_their_handlers(qtbot, window):
    window.action("view.layout.2x2").trigger()
    assert (window.rows, window.cols) == (2, 2) and window.action("view.layout.2x2").isChecked()
    window.action("view.privacy").trigger()
    assert window.privacy
    window.action("view.privacy").trigger()
    assert not window.privacy
    window.action("cine.speed.2").trigger()
    assert window.current_viewport().speed == 2.0
    window.action("cine.slower").trigger()
    assert window.current_viewport().speed == 1.0 and window.action("cine.speed.1").isChecked()
    window.action("mdt.mask").trigger()
    assert window.presenter.mask_burned_in
    window.presenter.set_mask(False)  # a change made elsewhere shows in the menu
    assert not window.action("mdt.mask").isChecked()
    window.set_sync(True)
    assert window.action("cine.sync").isChecked() and window.sync
    window.action("review.editor").trigger()
    assert window.review_dock.isVisible()


def test_help_and_readme_list_the_declared_keys(qtbot, window):
    rows = window.shortcut_rows()
    with_keys = [s for s in ACTIONS if s.shortcut is not None and table.key_sequence(s.shortcut).toString()]
    assert [k for _m, _t, k in rows] == [
        table.key_sequence(s.shortcut).toString(QKeySequence.SequenceFormat.NativeText) for s in with_keys
    ]
    assert ("Review", "Review editor", "Ctrl+Shift+R") in rows and ("Window", "Leave presenter", "Esc") in rows
    declared = {k for _m, _t, k in rows}
    window.show_keys()
    from PySide6.QtWidgets import QTextBrowser

    shown = window.keys_dialog.findChild(QTextBrowser).toPlainText()
    window.keys_dialog.reject()
    assert all(k in shown for k in declared)
    # every key the README's table names is a declared one (PageDown is Qt's PgDown, ← → are Left/Right)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("| action | keys / mouse |", 1)[1].split("\n\n", 1)[0]
    names = {"PageDown": "PgDown", "PageUp": "PgUp", "←": "Left", "→": "Right", "…": ""}
    for k in re.findall(r"`([^`]+)`", section):
        k = names.get(k, k)
        if not k or k.startswith("--"):
            continue
        assert QKeySequence(k).toString(QKeySequence.SequenceFormat.NativeText) in declared, k
