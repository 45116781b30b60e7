"""The logbook window: the same figures as the command line, plots, and a row opening its study and review."""

from __future__ import annotations

import pytest

from logbook_scenario import ANN, BOB, LUCJA, STUDIES, TESTDATA, write_reviews
from mdtviewer.cli import main as cli_main


@pytest.fixture
def reviews_in_study_folder(tmp_path):
    """The scenario's reviews written into a folder that also holds study D's image (as a study folder would)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MDTVIEWER_HOME", str(tmp_path / "writer-home"))
        files = write_reviews(cli_main, tmp_path, tmp_path / "reviews")
    (tmp_path / "reviews" / STUDIES["D"][0]).symlink_to(TESTDATA / STUDIES["D"][0])
    return tmp_path / "reviews", files


def _rows(tree):
    return [[tree.topLevelItem(i).text(c) for c in range(tree.columnCount())] for i in range(tree.topLevelItemCount())]


def test_logbook_window_figures_plots_and_opening_a_row(qtbot, window, reviews_in_study_folder, tmp_path):
    folder, files = reviews_in_study_folder
    assert window.action("review.logbook").shortcut().toString() == "Ctrl+Shift+L"
    window.action("review.logbook").trigger()  # opens with the local store (empty here)
    win = window.logbook_window
    with qtbot.waitSignal(win.loaded, timeout=20000):
        pass
    assert win.table.topLevelItemCount() == 0
    win.folders.append(str(folder))
    with qtbot.waitSignal(win.loaded, timeout=20000):
        win.refresh()
    assert [win.trainee.itemText(i) for i in range(win.trainee.count())] == ["All trainees", ANN, BOB, LUCJA]
    # 7 preceptorship reviews, latest versions (p4 replaced by p4b)
    rows = _rows(win.table)
    assert len(rows) == 7
    assert sorted(r[2] for r in rows) == sorted([ANN] * 4 + [BOB] * 2 + [LUCJA])
    win.trainee.setCurrentText(ANN)
    rows = _rows(win.table)
    assert len(rows) == 4
    d_row = next(r for r in rows if r[1] == "20200414")
    assert d_row[3:6] == ["carotid-duplex", "signed", "needs-supervision"] and d_row[7] == "0/0/1"
    assert all("Citizen" not in " ".join(r) and "DOE" not in " ".join(r) for r in rows)
    plots = win.plot_data()
    # Ann's months: 2004-08 (B), 2016-10 (A), 2019-01 (C), 2020-04 (D)
    assert plots["months"] == {"aaa-surveillance": [0, 0, 1, 0], "carotid-duplex": [1, 1, 0, 1]}
    assert plots["competence"] == {"competent": [0, 1], "needs supervision": [0, 2]}
    assert plots["quality"] == {"good": [0, 1, 1, 0], "adequate": [1, 0, 0, 0], "poor": [1, 0, 0, 1]}

    # worklist and audit tabs show the same figures as the command line
    heads = [win.worklist.topLevelItem(i) for i in range(win.worklist.topLevelItemCount())]
    assert [h.text(0) for h in heads] == ["Awaiting sign-off (3)", "Amended since last seen (2)",
                                          "Second-opinion requests (1)"]
    assert "5 signed second opinion(s) (1 unsigned not counted)" in win.audit_summary.text()
    assert "Discrepancies 3: 60.0 % (23.1–88.2)" in win.audit_summary.text()
    # scores and MDT outcomes of the latest versions (s4 amended to 2a), as `audit discrepancies --json`
    assert "Scores: 1 1, 2a 2, 2b 0, 3a 0, 3b 1, unscored 1" in win.audit_summary.text()
    assert "MDT outcomes: report-confirmed 1, discrepancy-found 1, further-imaging 0" in win.audit_summary.text()
    majors = _rows(win.majors)
    assert majors[0][2:5] == ["Ravi Reporter", "Sam Second", "3b"]
    assert majors[0][0] == next(r[0] for r in _rows(win.table) if r[1] == "20190124")  # the same case number

    # a row opens its study (the folder it was found in) and its review in the editor, ready to amend
    item = next(win.table.topLevelItem(i) for i in range(win.table.topLevelItemCount())
                if win.table.topLevelItem(i).text(1) == "20200414")
    win.table.itemActivated.emit(item, 0)
    qtbot.waitUntil(lambda: not window.is_scanning() and bool(window.index.studies()), timeout=20000)
    assert window.review_dock.isVisible()
    st = window.review_editor.state()
    assert st.amends_path == files["p4b"] and st.kind == "preceptorship"
    # export of the logbook shown (Ann's), pseudonymised
    task = win.export(str(tmp_path / "ann.csv"))
    qtbot.waitUntil(lambda: not task.running(), timeout=10000)
    text = (tmp_path / "ann.csv").read_text(encoding="utf-8")
    assert text.count(ANN) == 4 and "Citizen" not in text and BOB not in text
    # the amendments seen from the window are seen by the command line too
    with qtbot.waitSignal(win.loaded, timeout=20000):
        win.mark_amendments_seen()
    assert win.worklist.topLevelItem(1).text(0) == "Amended since last seen (0)"
    win.tabs.setCurrentIndex(0)
    win.trainee.setCurrentText("All trainees")
    shot = tmp_path / "logbook.png"
    win.grab().save(str(shot))
    assert shot.stat().st_size > 10000
    for i, name in ((1, "worklist"), (2, "audit")):
        win.tabs.setCurrentIndex(i)
        win.grab().save(str(tmp_path / f"logbook_{name}.png"))
    win.close()
