"""Failures show: an expected error's one-line reason, anything else reported as a bug with the log file."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox

from mdtviewer.infra.errors import DecodeError, MdtError
from mdtviewer.ui.errors import describe, error_text, show_error
from mdtviewer.workflows.review_form import ReviewFormError


class _ForeignExpected(Exception):
    """Not of our family, but it carries a reason: shown like one of ours."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def test_expected_errors_show_their_one_line_reason(qtbot, mdt_home):
    for exc, want in (
        (DecodeError("frame 3: the JPEG stream ends early"), "frame 3: the JPEG stream ends early"),
        (ReviewFormError("enter the author's\n name"), "enter the author's name"),
        (_ForeignExpected("node  'lab'\tis not reachable"), "node 'lab' is not reachable"),
    ):
        rep = describe(exc)
        assert not rep.is_bug and rep.text == want
        assert error_text(exc, "Not saved") == f"Not saved: {want}"
        box = show_error(None, exc, "Not saved")
        assert box.text() == f"Not saved: {want}" and box.icon() == QMessageBox.Icon.Warning
        assert box.property("is_bug") is False
        box.close()
    assert not (mdt_home / "logs" / "mdtviewer.log").exists() or "Traceback" not in (
        mdt_home / "logs" / "mdtviewer.log"
    ).read_text(encoding="utf-8")


def test_anything_else_is_a_bug_logged_with_its_traceback_and_the_log_file_named(qtbot, mdt_home):
    def deep() -> None:
        raise KeyError("series-uid-123")

    try:
        deep()
    except KeyError as exc:
        caught = exc
    box = show_error(None, caught, "Showing the series")
    log = mdt_home / "logs" / "mdtviewer.log"
    assert box.icon() == QMessageBox.Icon.Critical and box.property("is_bug") is True
    assert box.text().startswith("Showing the series: an unexpected error (KeyError); this is a bug.")
    assert str(log) in box.text()
    assert "series-uid-123" not in box.text()  # the message may hold internals or identifiers: log only
    text = log.read_text(encoding="utf-8")
    assert "Traceback" in text and "in deep" in text and "KeyError" in text
    box.close()
    # an error of our family raised without a reason is still expected, never a bug
    rep = describe(MdtError(""))
    assert not rep.is_bug and rep.text == "MdtError"
