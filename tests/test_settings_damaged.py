"""A damaged settings file is never silently overwritten.

It was read as empty, and the next save of any one section (a recent file, the reviewer profile) rewrote
the file with that section alone: the site's PACS nodes and the reviewer profile were gone without a word.
Now a file that is not a JSON object is set aside as ``settings.json.unreadable-<time>`` (logged with the
reason) before the defaults are used, and a file that cannot be read at all is never written over.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from mdtviewer.infra import paths, settings


def _profile_cli(*args: str, home) -> subprocess.CompletedProcess:
    env = {"MDTVIEWER_HOME": str(home), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "mdtviewer", "sr", "profile", *args], capture_output=True,
                          text=True, env=env, timeout=120)


@pytest.mark.parametrize("damage", [b'{"pacs_nodes": [{"ae_title": "PACS"', b"[1, 2]", b"\xff\xfe\x00garbage"])
def test_a_damaged_file_is_set_aside_and_a_save_keeps_it(mdt_home, caplog, damage):
    f = paths.settings_file()
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_bytes(damage)
    with caplog.at_level(logging.WARNING, logger="mdtviewer.infra.settings"):
        assert settings.get_section("viewer")["default_fps"] == 30.0  # the defaults
    (kept,) = f.parent.glob("settings.json.unreadable-*")
    assert kept.read_bytes() == damage  # byte for byte: what the user had can still be recovered
    assert any("kept as settings.json.unreadable-" in r.getMessage() for r in caplog.records)
    settings.set_section("viewer", {"default_fps": 25.0})
    assert json.loads(f.read_text(encoding="utf-8"))["viewer"] == {"default_fps": 25.0}
    assert kept.read_bytes() == damage


def test_the_command_line_keeps_a_damaged_file_too(mdt_home):
    """Through the real CLI: `sr profile --...` on a damaged file saves the profile and keeps the old file."""
    f = paths.settings_file()
    f.parent.mkdir(parents=True, exist_ok=True)
    damaged = b'{"pacs_nodes": [{"name": "Main PACS", "ae_title": "ORTHANC"}], "reviewer_profile": {'
    f.write_bytes(damaged)
    res = _profile_cli("--name", "Okafor^Ada", "--organization", "Northfield General Hospital",
                       "--registration", "HCPC CS012345", "--role", "trainer", home=mdt_home)
    assert res.returncode == 0, res.stderr
    (kept,) = f.parent.glob("settings.json.unreadable-*")
    assert kept.read_bytes() == damaged
    assert "Okafor^Ada" in f.read_text(encoding="utf-8")


def test_a_file_that_cannot_be_read_is_never_written_over(mdt_home):
    f = paths.settings_file()
    f.parent.mkdir(parents=True, exist_ok=True)
    f.mkdir()  # reading it fails with an OSError (as a permission or I/O error would)
    assert settings.get_section("pacs_nodes") == []  # reading: the defaults
    with pytest.raises(OSError):
        settings.set_section("viewer", {"default_fps": 25.0})
    assert f.is_dir() and not list(f.parent.glob("settings.json.unreadable-*"))


def test_two_damaged_files_set_aside_in_the_same_second_are_both_kept(mdt_home, monkeypatch):
    """QA3 2: the name had one-second resolution and the rename replaced a file set aside before."""
    import time

    frozen = time.gmtime()
    monkeypatch.setattr(settings.time, "gmtime", lambda *a: frozen)  # the same second for both, surely
    settings.take_set_aside()  # what earlier tests set aside in this process
    f = paths.settings_file()
    f.parent.mkdir(parents=True, exist_ok=True)
    first, second = b'{"pacs_nodes": [{"name": "Main PACS"', b"[1, 2]"
    f.write_bytes(first)
    settings.get_section("viewer")
    f.write_bytes(second)
    settings.get_section("viewer")
    kept = sorted(f.parent.glob("settings.json.unreadable-*"))
    assert len(kept) == 2 and sorted(k.read_bytes() for k in kept) == sorted([first, second])
    assert [p.name for p in settings.take_set_aside()] == [k.name for k in sorted(kept, key=lambda k: len(k.name))]
    assert settings.take_set_aside() == []  # said once


@pytest.mark.gui
def test_the_window_says_the_settings_file_was_damaged(qtbot, mdt_home):
    """QA3 3: the file was set aside with a line on stderr and in the log only: started from a desktop icon, the
    PACS nodes and reviewer profile were just gone.  The window's status bar now says so until it closes."""
    from mdtviewer.ui.main_window import MainWindow

    settings.take_set_aside()
    f = paths.settings_file()
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_bytes(b'{"pacs_nodes": [{"name": "Main PACS", "ae_title": "ORTHANC"}], "reviewer_profile": {')
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    label = win.settings_label
    assert label.isVisible() and "Settings file damaged" in label.text()
    (kept,) = f.parent.glob("settings.json.unreadable-*")
    assert str(kept) in label.toolTip()
    win.close()
    again = MainWindow()  # the next start, with the settings the user set again: nothing to say
    qtbot.addWidget(again)
    again.show()
    assert not again.settings_label.isVisible()
    again.close()
