"""`mdtviewer sr profile`: the reviewer profile set and shown from the command line, as the window sets it.

The real command line in a subprocess (``python -m mdtviewer``) with ``MDTVIEWER_HOME`` pointed at a
folder of the test's own; the settings file and the audit trail read back as files; reviews written by
`sr write` about the corpus GE LOGIQ 700 study (symlinked, never copied) and the HP echo cine, the signer
read back with pydicom and with DCMTK's dsrdump.
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from sr_helpers import CINE, GE_FILES, dsrdump, uid

pytestmark = pytest.mark.dcmtk

ADA = ["--name", "Okafor^Ada", "--organization", "Northfield Vascular Lab",
       "--registration", "HCPC CS054321", "--role", "second-reader"]


@pytest.fixture
def home(tmp_path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


def cli(home: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "MDTVIEWER_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "mdtviewer", *args], capture_output=True, text=True,
                          encoding="utf-8", timeout=120, env=env, cwd=cwd)


def saved_profile(home: Path) -> dict | None:
    f = home / "settings.json"
    return json.loads(f.read_text(encoding="utf-8")).get("reviewer_profile") if f.exists() else None


def profile_records(home: Path) -> list[dict]:
    f = home / "logs" / "audit.jsonl"
    if not f.exists():
        return []
    recs = [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line]
    return [r for r in recs if r["event"] == "profile-set"]


def fields(stdout: str) -> dict[str, str]:
    out = {}
    for line in stdout.splitlines():
        key, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            out[key] = value.strip()
    return out


def test_without_a_profile_show_says_so_in_one_line_and_exits_1(home):
    r = cli(home, "sr", "profile")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "no reviewer profile is set on this computer account" in r.stderr
    assert saved_profile(home) is None


def test_set_show_and_a_partial_update_keep_the_other_fields(home):
    r = cli(home, "sr", "profile", *ADA)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "Reviewer profile saved:"
    assert saved_profile(home) == {"name": "Okafor^Ada", "organization": "Northfield Vascular Lab",
                                   "registration": "HCPC CS054321", "role": "second-reader"}
    shown = cli(home, "sr", "profile")
    assert (shown.returncode, shown.stderr) == (0, "")
    f = fields(shown.stdout)
    assert (f["Name"], f["Organisation"], f["Professional registration"], f["Role"]) == (
        "Okafor^Ada", "Northfield Vascular Lab", "HCPC CS054321", "second-reader")
    assert f["May sign"].startswith("second opinions (a preceptorship: a draft")
    assert f["Computer account"].startswith(getpass.getuser())

    # one field given: the others are kept; the UK spelling of the option is accepted
    r = cli(home, "sr", "profile", "--registration", "RCCP 1234", "--organisation", "Southmoor Vascular Lab")
    assert r.returncode == 0, r.stderr
    assert saved_profile(home) == {"name": "Okafor^Ada", "organization": "Southmoor Vascular Lab",
                                   "registration": "RCCP 1234", "role": "second-reader"}
    # the same values again: nothing written, nothing audited
    r = cli(home, "sr", "profile", "--registration", "RCCP 1234")
    assert r.returncode == 0 and r.stdout.splitlines()[0] == "Reviewer profile unchanged:"

    recs = profile_records(home)
    assert len(recs) == 2
    first, second = (r["detail"] for r in recs)
    assert first == {"via": "command line", "os_account": getpass.getuser(), "role": "second-reader",
                     "previous_role": None, "registration": "HCPC CS054321", "previous_registration": None,
                     "changed": ["name", "organization", "registration", "role"]}
    assert second["changed"] == ["organization", "registration"] and second["previous_registration"] == "HCPC CS054321"
    assert all(r["outcome"] == "success" and r["study_uid"] is None for r in recs)
    assert "Okafor" not in json.dumps(recs)  # the audit trail keeps no names


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--role", "consultant"], "invalid choice: 'consultant'"),
        (["--registration", ""], "still needed: professional registration (give --registration)"),
        (["--name", "Okafor\x1b[2J^Ada"], "the name contains a control or formatting character (Okafor\\x1b[2J^Ada)"),
        (["--name", "Okafor^" + "A" * 70], "a person name may have at most 64 characters"),
        (["--organization", "North\\South Lab"], "the organisation must not contain a backslash"),
        (["--name", "   "], "still needed: name (give --name)"),
    ],
)
def test_invalid_input_exits_2_with_one_line_and_writes_nothing(home, args, says):
    assert cli(home, "sr", "profile", *ADA).returncode == 0
    settings_before = (home / "settings.json").read_bytes()
    audit_before = (home / "logs" / "audit.jsonl").read_bytes()
    r = cli(home, "sr", "profile", *args)
    assert r.returncode == 2 and r.stdout == ""
    reason = r.stderr.strip().splitlines()[-1]
    assert says in reason and reason.startswith("mdtviewer sr profile: error: "), r.stderr
    if "invalid choice" not in says:  # argparse's usage error prints its usage first, as everywhere in the CLI
        assert r.stderr.count("\n") == 1 and reason.startswith("mdtviewer sr profile: error: not saved: ")
    assert (home / "settings.json").read_bytes() == settings_before
    assert (home / "logs" / "audit.jsonl").read_bytes() == audit_before


def test_a_first_profile_needs_every_field(home):
    r = cli(home, "sr", "profile", "--name", "Okafor^Ada")
    assert r.returncode == 2
    assert r.stderr.strip() == ("mdtviewer sr profile: error: not saved: still needed: role, organisation, "
                                "professional registration (give --role, --organization, --registration)")
    assert saved_profile(home) is None and profile_records(home) == []
    # a trainee may have no registration yet
    r = cli(home, "sr", "profile", "--name", "Lee^Ann", "--organization", "Lab", "--role", "trainee")
    assert r.returncode == 0, r.stderr
    assert saved_profile(home) == {"name": "Lee^Ann", "organization": "Lab", "registration": "", "role": "trainee"}


def test_an_incomplete_saved_profile_is_shown_and_exits_1(home):
    """A profile saved before these checks existed (or by hand) lacks a registration: shown, and said."""
    (home / "settings.json").write_text(json.dumps({"reviewer_profile": {
        "name": "Okafor^Ada", "organization": "Lab", "registration": "", "role": "second-reader"}}), encoding="utf-8")
    r = cli(home, "sr", "profile")
    assert r.returncode == 1 and fields(r.stdout)["Name"] == "Okafor^Ada"
    assert r.stderr.strip() == "mdtviewer sr profile: this profile cannot sign: still needed: professional registration"


def _study(tmp_path: Path) -> Path:
    d = tmp_path / "study"
    d.mkdir()
    for p in GE_FILES:
        (d / p.name).symlink_to(p)
    return d


def _write_json(tmp_path: Path, name: str, data: dict) -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return p


def _write_second_opinion(home: Path, tmp_path: Path) -> tuple[subprocess.CompletedProcess, Path]:
    """`sr write` of a signed second opinion on a GE corpus image: the run and the file it was asked to write."""
    review = _write_json(tmp_path, "second.json", {
        "kind": "second-opinion", "author": {"name": "Okafor^Ada", "role": "second-reader"},
        "verifier": {}, "graded_report": None, "agreement": "agree", "summary": "Agree.",
        "images": [{"sop_instance_uid": uid(GE_FILES[0]), "quality": "good"}]})
    out = tmp_path / "second.dcm"
    r = cli(home, "sr", "write", "--review", str(review), "--study", str(_study(tmp_path)), "--out", str(out))
    return r, out


def test_sr_write_signs_as_the_profile_set_on_the_command_line(home, tmp_path):
    assert cli(home, "sr", "profile", *ADA).returncode == 0
    r, out = _write_second_opinion(home, tmp_path)
    assert r.returncode == 0, r.stderr
    ds = pydicom.dcmread(out)
    vo = ds.VerifyingObserverSequence[0]
    assert ds.VerificationFlag == "VERIFIED"
    assert (str(vo.VerifyingObserverName), str(vo.VerifyingOrganization)) == ("Okafor^Ada", "Northfield Vascular Lab")
    assert vo.VerifyingObserverIdentificationCodeSequence[0].CodeValue == "HCPC CS054321"
    dump = dsrdump(out)  # the independent reader sees the same signer
    assert "Verification Flag   : VERIFIED" in dump
    assert "Okafor^Ada" in dump.split("Verifying Observers :", 1)[1].splitlines()[0]


def test_a_preceptorship_is_refused_for_a_non_trainer_profile(home, tmp_path):
    """HAZ-030: a second reader's profile set on the command line cannot sign a trainee's competence; the
    role is declared, so changing it to trainer is possible, and it is in the audit trail."""
    assert cli(home, "sr", "profile", *ADA).returncode == 0
    c = uid(CINE)
    review = _write_json(tmp_path, "prec.json", {
        "kind": "preceptorship", "author": {"name": "Okafor^Ada", "role": "trainer"},
        "trainee": {"name": "Lee^Ann"}, "verifier": {"name": "Okafor^Ada"}, "protocol": "carotid-duplex",
        "outcome": "competent", "summary": "Systematic scan.",
        "views": [{"view": "R-CCA-PW", "sop_instance_uid": c, "frame": 3}],
        "images": [{"sop_instance_uid": c, "frames": [3], "quality": "good"}]})
    out = tmp_path / "prec.dcm"
    argv = ["sr", "write", "--review", str(review), "--study", str(CINE), "--out", str(out)]
    r = cli(home, *argv)
    assert r.returncode == 1 and r.stdout == "" and not out.exists()
    assert r.stderr.count("\n") == 1
    assert "a preceptorship outcome is signed only by a Trainer (preceptor)" in r.stderr
    assert "profile role is Second reader" in r.stderr

    assert cli(home, "sr", "profile", "--role", "trainer").returncode == 0
    r = cli(home, *argv)
    assert r.returncode == 0, r.stderr
    assert str(pydicom.dcmread(out).VerifyingObserverSequence[0].VerifyingObserverName) == "Okafor^Ada"
    change = profile_records(home)[-1]["detail"]
    assert (change["previous_role"], change["role"], change["changed"]) == ("second-reader", "trainer", ["role"])
    assert change["os_account"] == getpass.getuser() and change["via"] == "command line"


@pytest.mark.gui
def test_the_window_sets_the_profile_with_the_same_rules_and_audit_record(qtbot, mdt_home):
    """The profile dialog saves through the same workflow: the same refusal, the same record (via window),
    and what it saved is what `sr profile` shows."""
    from mdtviewer.ui.review.profile_dialog import ReviewerProfileDialog
    from mdtviewer.workflows import reviewer_profile

    dlg = ReviewerProfileDialog(None, reviewer_profile.ReviewerProfile("Okafor\x1b^Ada", "trainer", "HCPC 1", "Lab"))
    qtbot.addWidget(dlg)
    dlg.accept()
    assert dlg.problem.text() == "The name contains a control or formatting character (Okafor\\x1b^Ada)."
    assert reviewer_profile.load() is None and profile_records(mdt_home) == []
    dlg.name.setText("Okafor^Ada")
    dlg.accept()
    assert dlg.result() == ReviewerProfileDialog.DialogCode.Accepted
    rec = profile_records(mdt_home)
    assert len(rec) == 1 and rec[0]["detail"] == {
        "via": "window", "os_account": getpass.getuser(), "role": "trainer", "previous_role": None,
        "registration": "HCPC 1", "previous_registration": None,
        "changed": ["name", "organization", "registration", "role"]}
    shown = cli(mdt_home, "sr", "profile")
    assert shown.returncode == 0
    assert fields(shown.stdout)["Name"] == "Okafor^Ada" and fields(shown.stdout)["Role"] == "trainer"



def test_a_profile_edited_by_hand_with_a_control_character_does_not_sign(home, tmp_path):
    """The rules a profile is saved under also hold when `sr write` signs: a settings file edited by hand
    (an escape sequence in the signer's name) is refused in one line, nothing written."""
    (home / "settings.json").write_text(json.dumps({"reviewer_profile": {
        "name": "Okafor^Ada\x1b[2K", "role": "trainer", "registration": "HCPC CS012345",
        "organization": "Northfield General Hospital"}}), encoding="utf-8")
    r, out = _write_second_opinion(home, tmp_path)
    assert r.returncode == 1 and not out.exists(), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "is not valid" in r.stderr and "control or formatting character" in r.stderr
    assert "\x1b" not in r.stderr


def test_a_reader_that_goes_away_is_not_an_internal_error(home):
    """QA3 11: `sr profile ... | head -2` ended with "internal error (BrokenPipeError); please report it". A pipe
    closed by its reader ends the command quietly, as Unix tools do."""
    env = {**os.environ, "MDTVIEWER_HOME": str(home)}
    cmd = [sys.executable, "-m", "mdtviewer", "sr", "profile", *ADA]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader has gone before the first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert "internal error" not in err and "Traceback" not in err
    assert saved_profile(home)["name"] == "Okafor^Ada"  # the work was done all the same
