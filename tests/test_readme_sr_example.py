"""The README's complete `sr write` example runs exactly as written (so it cannot rot).

The JSON block, the `sr profile` command that sets the trainer profile and the `sr write` command are
taken from README.md as they stand and run through the real command line in a subprocess, with
``MDTVIEWER_HOME`` in the test's own folder, against the demo study shipped in the package (the README's
`--study mdtviewer/resources/demo`, resolved from the repository root).  The written SR is read back with
pydicom and DCMTK's dsrdump.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from sr_helpers import dsrdump

pytestmark = pytest.mark.dcmtk

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def _sr_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("### `mdtviewer sr …`")
    return text[start:text.index("\n### ", start + 1)]


def _blocks(lang: str, text: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```$", text, re.M | re.S)


def _example_json() -> str:
    after = _sr_section().split("**A complete example.**", 1)[1]
    return _blocks("json", after)[0]


def _commands(block: str) -> list[list[str]]:
    """The block's commands as argv lists (continuation lines joined, comments dropped)."""
    return [shlex.split(line, comments=True) for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def _mdtviewer(argv: list[str], home: Path, cwd: Path) -> subprocess.CompletedProcess:
    assert argv[0] == ".venv/bin/mdtviewer", argv  # the README's style: run from the checkout
    # -P: the working folder (which holds mdtviewer/resources/demo, as a checkout does) is not put on sys.path,
    # as it is not for the installed `mdtviewer` script
    return subprocess.run([sys.executable, "-P", "-m", "mdtviewer", *argv[1:]], capture_output=True, text=True,
                          encoding="utf-8", timeout=120, cwd=cwd, env={**os.environ, "MDTVIEWER_HOME": str(home)})


@pytest.fixture
def example(tmp_path):
    """(home, work folder, the README's `sr profile --role` command, its `sr write` command); the work folder
    holds preceptorship.json as printed and the demo study at the README's relative path."""
    home = tmp_path / "home"
    work = tmp_path / "work"
    (work / "mdtviewer" / "resources").mkdir(parents=True)
    (work / "mdtviewer" / "resources" / "demo").symlink_to(ROOT / "mdtviewer" / "resources" / "demo")
    (work / "preceptorship.json").write_text(_example_json(), encoding="utf-8")
    blocks = _blocks("sh", _sr_section())
    profile_cmd = next(c for b in blocks for c in _commands(b) if c[1:3] == ["sr", "profile"] and "--role" in c)
    write_cmd = next(c for b in blocks for c in _commands(b) if c[1:3] == ["sr", "write"])
    return home, work, profile_cmd, write_cmd


def test_the_readme_review_json_example_is_written_and_signed(example):
    home, work, profile_cmd, write_cmd = example
    data = json.loads(_example_json())  # valid JSON as printed
    assert data["kind"] == "preceptorship" and "verifier" in data and data["measurements"]
    assert profile_cmd[profile_cmd.index("--role") + 1] == "trainer"

    r = _mdtviewer(profile_cmd, home, work)
    assert r.returncode == 0, r.stderr
    r = _mdtviewer(write_cmd, home, work)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["review.dcm", "review_measurements.dcm"]  # as the README says it prints

    review = work / "review.dcm"
    ds = pydicom.dcmread(review)
    assert (ds.CompletionFlag, ds.VerificationFlag) == ("COMPLETE", "VERIFIED")
    name = profile_cmd[profile_cmd.index("--name") + 1]
    assert str(ds.VerifyingObserverSequence[0].VerifyingObserverName) == name == data["author"]["name"]
    dump = dsrdump(review)
    assert name in dump.split("Verifying Observers :", 1)[1].splitlines()[0]
    assert '"Trainer (preceptor)"' in dump and "Lee^Ann" in dump
    # what the README says `sr show` shows
    shown = _mdtviewer([".venv/bin/mdtviewer", "sr", "show", "review.dcm"], home, work)
    assert shown.returncode == 0, shown.stderr
    assert "Status: signed (COMPLETE, VERIFIED, FINAL)" in shown.stdout
    assert "right Common carotid artery: Distance 7.869 mm" in shown.stdout
    assert "Needs supervision" in shown.stdout
    dsrdump(work / "review_measurements.dcm")


def test_the_readme_example_is_refused_for_a_second_reader(example):
    """As the README says: with a second-reader profile the same example is not signed, nothing written."""
    home, work, profile_cmd, write_cmd = example
    second_reader = [*profile_cmd]
    second_reader[second_reader.index("--role") + 1] = "second-reader"
    assert _mdtviewer(second_reader, home, work).returncode == 0
    r = _mdtviewer(write_cmd, home, work)
    assert r.returncode == 1 and "signed only by a Trainer (preceptor)" in r.stderr
    assert not (work / "review.dcm").exists() and not (work / "review_measurements.dcm").exists()
