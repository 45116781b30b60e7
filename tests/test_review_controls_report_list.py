"""The report list's columns (issue 15.6): the title column stretches when the panel is widened and is
never narrower than a readable minimum, whatever header state is restored (a saved state had left it
two characters wide, also after a restart).  On the packaged demo study, through public accessors.
"""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication, QHeaderView, QTreeWidget

from mdtviewer.dicom.index import scan
from mdtviewer.infra import paths
from mdtviewer.ui.reports.report_panel import ReportPanel

pytestmark = pytest.mark.gui


def settle(qtbot, n: int = 5) -> None:
    for _ in range(n):
        QApplication.processEvents()
        qtbot.wait(30)


def collapsed_state() -> bytes:
    """A header state with the title 12 px wide and every column fixed by hand, as a state saved by an
    earlier session could be (made on a plain tree with the panel's four columns)."""
    t = QTreeWidget()
    t.setHeaderLabels(["Report", "Author", "Status", "Date"])
    h = t.header()
    h.setStretchLastSection(False)
    for c in range(4):
        h.setSectionResizeMode(c, QHeaderView.ResizeMode.Interactive)
    for c, w in enumerate((12, 400, 60, 120)):
        h.resizeSection(c, w)
    state = bytes(h.saveState().data())
    t.deleteLater()
    return state


def others(panel: ReportPanel) -> int:
    h = panel.list.header()
    return sum(h.sectionSize(c) for c in (1, 2, 3))


def test_title_column_stretches_and_never_collapses(qtbot, window):
    with qtbot.waitSignal(window.scanFinished, timeout=30_000):
        assert window.open_demo()
    panel = window.report_panel
    qtbot.waitUntil(lambda: panel.list.topLevelItemCount() >= 2, timeout=10_000)
    least = panel.title_min_width()
    # the panel widened: the title takes the room the other columns leave
    window.splitter.setSizes([300, 980])
    settle(qtbot)
    vp = panel.list.viewport().width()
    assert panel.title_stretches() and panel.title_width() == vp - others(panel) > least
    # a collapsed saved state restored (by the panel, or straight through Qt): laid out again at once
    bad = collapsed_state()
    assert panel.restore_header_state(bad)
    assert panel.title_stretches() and panel.title_width() == vp - others(panel)
    assert panel.list.header().sectionResizeMode(1) == QHeaderView.ResizeMode.ResizeToContents
    assert panel.list.header().restoreState(bad)
    assert panel.title_stretches() and panel.title_width() == vp - others(panel)
    # narrow: the title keeps its readable minimum (the list scrolls sideways to the others)
    window.splitter.setSizes([1100, 180])
    settle(qtbot)
    assert panel.list.viewport().width() < others(panel) + least
    assert panel.title_width() >= least
    assert panel.restore_header_state(bad) and panel.title_width() >= least
    # the first words of every title are read whole
    fm = panel.list.fontMetrics()
    for i in range(panel.list.topLevelItemCount()):
        words = " ".join(panel.list.topLevelItem(i).text(0).split()[:2])
        assert fm.horizontalAdvance(words) < panel.title_width(), words
    assert not panel.restore_header_state(b"not a header state") and panel.title_width() >= least


def test_a_restarted_panel_with_a_collapsed_state_reads_its_titles(qtbot):
    """A new panel (the next session) given the collapsed state before its reports load."""
    demo = paths.resources_dir() / "demo"
    index = scan([demo], workers=1)
    panel = ReportPanel(review_folders=[])
    panel.pacs_lookup_enabled = False
    qtbot.addWidget(panel)
    panel.resize(520, 600)
    panel.show()
    qtbot.waitExposed(panel)
    panel.restore_header_state(collapsed_state())
    with qtbot.waitSignal(panel.loaded, timeout=15_000):
        panel.set_instances(index.instances())
    settle(qtbot)
    assert panel.list.topLevelItemCount() >= 2
    assert panel.title_stretches()
    assert panel.title_width() == panel.list.viewport().width() - others(panel) >= panel.title_min_width()
