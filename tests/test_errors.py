"""One error base: every expected-failure exception of the project is an MdtError with a one-line reason."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import mdtviewer
from mdtviewer.infra.errors import DicomInputError, MdtError, bug_reason

#: private control-flow exceptions (never leave their module) are not expected failures
PRIVATE = {"_NeedMore", "_Bail", "_Usage"}


def _core_modules():
    for info in pkgutil.walk_packages(mdtviewer.__path__, "mdtviewer."):
        if info.name.startswith("mdtviewer.ui") or info.name.endswith("__main__"):
            continue  # ui imports Qt; its errors are shown, not defined
        yield importlib.import_module(info.name)


def test_every_project_exception_derives_from_the_one_base():
    found = {}
    for mod in _core_modules():
        for name, obj in vars(mod).items():
            if (inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == mod.__name__
                    and name not in PRIVATE):
                found[f"{mod.__name__}.{name}"] = obj
    # the families the issue names are all there, and all share the base
    for must in ("mdtviewer.pacs.client.PacsError", "mdtviewer.pacs.nodes.NodeError",
                 "mdtviewer.governance.archive.ArchiveError", "mdtviewer.governance.deid.DeidentificationError",
                 "mdtviewer.workflows.mdt_session.SessionError", "mdtviewer.sr.model.ReviewError",
                 "mdtviewer.imaging.usregions.MeasurementError", "mdtviewer.infra.errors.DicomInputError"):
        assert must in found, must
    strays = sorted(k for k, cls in found.items() if not issubclass(cls, MdtError))
    assert strays == []


def test_reason_is_one_line_and_str_is_the_reason():
    exc = DicomInputError("line one\n  line two\tand more")
    assert exc.reason == "line one line two and more" == str(exc)
    assert isinstance(exc, MdtError) and exc.category == "error"


def test_value_error_families_still_are_value_errors():
    from mdtviewer.pacs.nodes import NodeError
    from mdtviewer.sr.model import ReviewError
    from mdtviewer.workflows.mdt_session import SessionError

    for cls in (NodeError, ReviewError, SessionError):
        with pytest.raises(ValueError):
            raise cls("x")


def test_a_bug_does_not_look_like_an_expected_failure():
    text = bug_reason(KeyError("PatientName secret"), "reading the header")
    assert "bug" in text and "KeyError" in text and "secret" not in text


def test_a_bug_while_scanning_is_logged_and_reported_as_a_bug(monkeypatch, testdata, caplog):
    """A header reader that breaks (a bug, not a bad file) must not look like a damaged file."""
    import mdtviewer.dicom.reader as reader
    from mdtviewer.dicom.index import scan

    def broken(path):
        raise KeyError("this is our bug")

    monkeypatch.setattr(reader, "read_header", broken)
    with caplog.at_level("ERROR", logger="mdtviewer.dicom.index"):
        ix = scan([testdata / "us_philips_cx50_palette_rle.dcm"], workers=1)
    (prob,) = ix.problems
    assert prob.category == "bug" and "this is a bug" in prob.reason and "KeyError" in prob.reason
    assert "our bug" not in prob.reason  # the message stays in the log
    assert any("Traceback" in r.getMessage() and "KeyError" in r.getMessage() for r in caplog.records)


def test_a_bug_while_exporting_one_input_says_so_and_the_rest_is_exported(monkeypatch, testdata, tmp_path):
    import logging

    from mdtviewer.governance import export as ex

    real = ex._export_dicom
    first = testdata / "us_philips_cx50_palette_rle.dcm"

    def sometimes_broken(ds, src, *a, **kw):
        if src == first:
            raise KeyError("our bug")
        return real(ds, src, *a, **kw)

    monkeypatch.setattr(ex, "_export_dicom", sometimes_broken)
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("mdtviewer.governance.export")
    logger.addHandler(handler)  # whatever the CLI's logging set-up did to propagation in earlier tests
    monkeypatch.setattr(logger, "disabled", False)
    try:
        rep = ex.export([first, testdata / "us_siemens_s2000_rgb_explicit_le.dcm"], tmp_path,
                        ex.ExportOptions(deidentify=True))
        bad, good = rep.items
        assert any(r.exc_info or r.exc_text for r in records)  # (the log's redacting filter keeps only the text)
        records.clear()
        rep = ex.export([testdata / "bad_truncated_dataset_rtplan.dcm"], tmp_path / "b",
                        ex.ExportOptions(deidentify=True))
        assert not rep.items[0].ok and "bug" not in rep.items[0].error
        assert not any(r.exc_info or r.exc_text for r in records)  # expected: its reason, no bug log
    finally:
        logger.removeHandler(handler)
    assert good.ok and not bad.ok and "this is a bug" in bad.error and "our bug" not in bad.error
