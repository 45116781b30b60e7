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


def _help(capsys, argv: list[str]) -> str:
    try:
        rc = cli_main(argv)
    except SystemExit as e:  # argparse's own --help
        rc = e.code
    assert rc in (0, None)
    return capsys.readouterr().out


@pytest.mark.parametrize("argv", [["pacs", "--help"], ["sr", "--help"]])
def test_subcommand_help_does_not_send_users_to_source(capsys, argv):
    out = _help(capsys, argv)
    assert ".py" not in out and "docstring" not in out and "module doc" not in out


def test_pacs_help_mentions_dicomweb(capsys):
    out = _help(capsys, ["pacs", "--help"])
    assert "DICOMweb" in out
    for sub in ("find", "get", "store"):
        assert "DICOMweb" in _help(capsys, ["pacs", sub, "--help"]) or sub == "find"


def test_pacs_get_offers_no_move_only_options(capsys):
    out = _help(capsys, ["pacs", "get", "--help"])
    assert "--listen-aet" not in out and "--listen-port" not in out
    move = _help(capsys, ["pacs", "move", "--help"])
    assert re.search(r"--listen-aet AE\s+\(move only\)", move)


@pytest.mark.parametrize("cmd", ["echo", "find", "get", "move", "store"])
def test_every_connection_option_has_a_help_line(capsys, cmd):
    out = _help(capsys, ["pacs", cmd, "--help"])
    section = out.split("connection", 1)[1]
    for opt in ("--node", "--host", "--port", "--called-aet", "--calling-aet", "--tls-cert", "--tls-key",
                "--tls-ca", "--timeout", "--dicomweb", "--user", "--password-env", "--token-env"):
        line = next(ln for ln in section.splitlines() if ln.strip().startswith(opt + " ") or ln.strip() == opt)
        # the option's own line carries text after its metavar, or the next line does
        assert len(line.split()) > 2, (opt, line)


def test_sr_write_help_lists_the_review_keys(capsys):
    out = _help(capsys, ["sr", "write", "--help"])
    for key in ("kind", "author", "verifier", "agreement", "images", "measurements"):
        assert re.search(rf"^\s+{key}\s", out, re.M), key


def test_readme_export_synopsis_matches_export_help(capsys):
    """README's export section is the contract; it names every option `export --help` offers (QA 20)."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    head = next(ln for ln in readme.splitlines() if ln.startswith("### `mdtviewer export"))
    section = readme.split(head, 1)[1].split("\n## ", 1)[0]
    out = _help(capsys, ["export", "--help"])
    options = set(re.findall(r"(--[a-z][a-z-]+)", out)) - {"--help"}
    assert options >= {"--no-mask", "--archive-name", "--patient-copy", "--mask-burned-in", "--keep-rect"}
    for opt in options:
        assert opt in head, f"{opt} missing from the README export synopsis"
        assert opt in section
    assert "masked by default" in section
    assert re.search(r"`--mask-burned-in` is accepted for\s+compatibility", section)
