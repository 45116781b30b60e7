"""The top-level dispatcher and the user-facing help texts (QA 10, QA 19)."""

from __future__ import annotations

import re

import pytest

from mdtviewer.cli import main as cli_main


def test_mistyped_subcommand_is_a_usage_error_not_a_window(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "a.dcm"
    target.write_bytes(b"")
    assert cli_main(["chek", str(target)]) == 2
    err = capsys.readouterr().err
    assert "unknown subcommand 'chek'" in err
    assert "check" in err  # the close match / the list


def test_unknown_word_lists_the_subcommands(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli_main(["xyzzy"]) == 2
    err = capsys.readouterr().err
    assert "unknown subcommand 'xyzzy'" in err
    for name in ("check", "pacs", "sr", "export", "open"):
        assert name in err


def test_an_existing_path_that_looks_like_a_word_still_opens(tmp_path, monkeypatch):
    """A folder called `studies` in the current directory is a path, not a typo."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "studies").mkdir()
    seen = {}
    import mdtviewer.ui.app as app

    monkeypatch.setattr(app, "main", lambda argv: seen.setdefault("argv", argv) and 0)
    assert cli_main(["studies"]) == 0
    assert seen["argv"] == ["studies"]


def test_top_level_help_is_user_facing(capsys):
    assert cli_main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "``" not in out
    assert "mdtviewer [PATH...] [--demo] [--privacy]" in out
    assert "--demo" in out and "--privacy" in out
    for name in ("check", "open", "pacs", "sr", "export", "logbook", "audit", "worklist"):
        assert re.search(rf"^\s+{name}\s+\S", out, re.M), name
    assert "dispatches" not in out and "module" not in out
