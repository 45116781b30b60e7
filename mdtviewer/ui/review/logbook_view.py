"""Review › Logbook, worklist and audit: the records across studies, in a window of their own.

Three tabs over the same records (:mod:`mdtviewer.workflows.logbook`), read
in the background through :mod:`mdtviewer.ui.tasks`:

- **Logbook**: a trainee (or all), their reviews one per row, and three
  pyqtgraph plots: scans per month by protocol, competence by protocol,
  image-quality trend by month;
- **Worklist**: drafts awaiting sign-off, reviews amended since last seen,
  second-opinion requests;
- **Audit**: signed second opinions by agreement and score, rates with 95 %
  Wilson intervals, the major discrepancies.

Double-clicking a row opens that study in the main window (its folder in
the local store, else the folder the review was found in) and the review in
the review editor.  Studies are shown as case numbers; patient names never
appear here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from mdtviewer.sr.model import AGREEMENTS, QUALITIES
from mdtviewer.ui import tasks
from mdtviewer.workflows import logbook as lb

ALL = "All trainees"
_PEN = [(49, 115, 178), (242, 166, 38), (204, 64, 64), (89, 166, 89), (140, 90, 170), (120, 120, 120)]
_PATH_ROLE = Qt.ItemDataRole.UserRole
_STUDY_ROLE = Qt.ItemDataRole.UserRole + 1


def _months(records: list[lb.ReviewRecord]) -> list[str]:
    return sorted({r.month for r in records})


class LogbookWindow(QWidget):
    """The logbook / worklist / audit window; *host* is the main window (it opens studies and reviews)."""

    #: the records were (re)loaded and the tabs filled
    loaded = Signal()
    #: a row was activated: study UID, review SR path
    openRequested = Signal(str, str)

    def __init__(self, host: Any = None, parent: QWidget | None = None, folders: list[str] | None = None):
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("Logbook, worklist and audit")
        self.host = host
        self.folders: list[str] = list(folders or [])
        self.collection: lb.Collection | None = None
        self.logs: list[lb.TraineeLog] = []
        self.cases: dict[str, str] = {}
        self._task: tasks.Task | None = None
        self.current_worklist: lb.Worklist | None = None
        self._build()
        self.openRequested.connect(self._open_in_host)

    # ------------------------------------------------------------------ UI
    def _build(self) -> None:
        top = QHBoxLayout()
        self.trainee = QComboBox()
        self.trainee.addItem(ALL)
        self.trainee.currentTextChanged.connect(lambda _t: self._fill_logbook())
        self.add_folder = QPushButton("Add folder…")
        self.add_folder.clicked.connect(self._choose_folder)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("The logbook (or, on the Audit tab, the audit) as PDF or CSV, studies as "
                                      "case numbers, no patient identifiers")
        self.export_button.clicked.connect(self._choose_export)
        self.status = QLabel("")
        top.addWidget(QLabel("Trainee:"))
        top.addWidget(self.trainee, 1)
        top.addWidget(self.add_folder)
        top.addWidget(self.refresh_button)
        top.addWidget(self.export_button)

        self.tabs = QTabWidget()
        # logbook tab: table above, three plots below
        self.table = QTreeWidget()
        self.table.setHeaderLabels(["case", "study date", "trainee", "protocol", "state", "outcome",
                                    "views missed", "quality (g/a/p)", "trainer"])
        self.table.setRootIsDecorated(False)
        self.table.itemActivated.connect(self._activated)
        pg.setConfigOptions(antialias=True, background="w", foreground="k")
        self.plot_months = pg.PlotWidget(title="Scans per month by protocol")
        self.plot_competence = pg.PlotWidget(title="Competence by protocol (signed)")
        self.plot_quality = pg.PlotWidget(title="Image quality by month")
        for p in (self.plot_months, self.plot_competence, self.plot_quality):
            p.addLegend(offset=(5, 5))
            p.setMinimumHeight(160)
        plots = QWidget()
        pl = QHBoxLayout(plots)
        pl.setContentsMargins(0, 0, 0, 0)
        for p in (self.plot_months, self.plot_competence, self.plot_quality):
            pl.addWidget(p)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(plots)
        split.setSizes([300, 260])
        self.tabs.addTab(split, "Logbook")

        work = QWidget()
        wl_layout = QVBoxLayout(work)
        self.mark_seen_button = QPushButton("Mark amendments as seen")
        self.mark_seen_button.clicked.connect(self.mark_amendments_seen)
        self.worklist = QTreeWidget()
        self.worklist.setHeaderLabels(["", "kind", "case", "study date", "trainee / author", "protocol"])
        self.worklist.itemActivated.connect(self._activated)
        wl_layout.addWidget(self.worklist, 1)
        wl_layout.addWidget(self.mark_seen_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.tabs.addTab(work, "Worklist")

        audit = QWidget()
        al = QVBoxLayout(audit)
        self.audit_summary = QLabel("")
        self.audit_summary.setTextFormat(Qt.TextFormat.PlainText)
        self.audit_summary.setWordWrap(True)
        self.audit_table = QTreeWidget()
        self.audit_table.setHeaderLabels(["group", "reviews", *AGREEMENTS, "discrepancy rate (95 % CI)"])
        self.majors = QTreeWidget()
        self.majors.setHeaderLabels(["major discrepancy", "study date", "reporter", "reviewer", "score",
                                     "MDT outcome"])
        self.majors.setRootIsDecorated(False)
        self.majors.itemActivated.connect(self._activated)
        al.addWidget(self.audit_summary)
        al.addWidget(self.audit_table, 2)
        al.addWidget(self.majors, 1)
        self.tabs.addTab(audit, "Audit")

        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.tabs, 1)
        lay.addWidget(self.status)
        self.resize(1100, 760)

    # ------------------------------------------------------------------ loading
    def _choose_folder(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Folder with review SRs")
        if d:
            self.folders.append(d)
            self.refresh()

    def refresh(self) -> tasks.Task:
        """Gather the records in the background (local store and the added folders)."""
        if self._task is not None and self._task.running():
            self._task.request_cancel()
        folders = list(self.folders)
        self.status.setText("Reading reviews…")
        self.refresh_button.setEnabled(False)

        def job(task: tasks.Task) -> lb.Collection:
            return lb.collect(folders, cancel=task.cancel, progress=task.progress)

        self._task = tasks.run(self, job, name="logbook", on_result=self._on_loaded, on_error=self._on_failed,
                               on_progress=lambda n: self.status.setText(f"Reading reviews… {n} files"),
                               expected=(lb.LogbookError,))
        return self._task

    def is_busy(self) -> bool:
        return self._task is not None and self._task.running()

    def _on_failed(self, reason: str) -> None:
        self.refresh_button.setEnabled(True)
        self.status.setText(f"Could not read the reviews: {reason}")

    def _on_loaded(self, c: lb.Collection) -> None:
        self.refresh_button.setEnabled(True)
        self.collection = c
        try:
            self.cases = lb.case_numbers(c.records)
        except lb.LogbookError as exc:  # no key, no case numbers: the rows say "case ?"
            self.cases = {}
            self.status.setText(f"Case numbers unavailable: {exc.reason}")
        all_logs = lb.logbook(c.records)
        keep = self.trainee.currentText()
        self.trainee.blockSignals(True)
        self.trainee.clear()
        self.trainee.addItems([ALL] + [t.trainee for t in all_logs])
        self.trainee.setCurrentText(keep if keep in [ALL] + [t.trainee for t in all_logs] else ALL)
        self.trainee.blockSignals(False)
        self._fill_logbook()
        self.current_worklist = lb.worklist(c.records)
        self._fill_worklist(self.current_worklist)
        self._fill_audit(lb.discrepancy_audit(c.records))
        self.status.setText(f"{len(c.records)} review(s), latest versions ({c.superseded} amended version(s) "
                            f"left out); {c.files_read} file(s) read, {c.files_cached} from the cache")
        self.loaded.emit()

    # ------------------------------------------------------------------ filling
    def _case(self, r: lb.ReviewRecord) -> str:
        return f"case {self.cases.get(r.study_instance_uid, '?')}"

    def _item(self, parent: Any, cols: list[str], r: lb.ReviewRecord) -> QTreeWidgetItem:
        it = QTreeWidgetItem(parent, cols)
        it.setData(0, _PATH_ROLE, r.path)
        it.setData(0, _STUDY_ROLE, r.study_instance_uid)
        return it

    def _fill_logbook(self) -> None:
        if self.collection is None:
            return
        name = self.trainee.currentText()
        self.logs = lb.logbook(self.collection.records, None if name == ALL else name)
        self.table.clear()
        records = [r for tl in self.logs for r in tl.records]
        for r in records:
            missed = " ".join(sorted(v for v, p in r.views.items() if not p))
            row = self._item(self.table, [self._case(r), r.study_date, r.trainee or lb.NO_TRAINEE,
                                    r.protocol or lb.NO_PROTOCOL, r.state,
                                    r.outcome if r.counts_signed else "", missed,
                                    "/".join(str(r.quality.get(q, 0)) for q in QUALITIES), r.trainer], r)
            row.setToolTip(6, missed)
            if r.signed_not_by_trainer:  # QA2 5: an outcome counts only when a trainer signed it
                row.setToolTip(4, f"Signed by {r.verifier or 'someone'}, not recorded as a trainer or the trainee "
                                  "assessed: "
                                  "counted as unsigned, its outcome not counted (a trainer signs an amendment)")
        for i in range(self.table.columnCount()):
            self.table.resizeColumnToContents(i)
            self.table.setColumnWidth(i, min(self.table.columnWidth(i), 240))  # the views missed: see the tooltip
        self._plot(records)

    def _plot(self, records: list[lb.ReviewRecord]) -> None:
        months = _months(records)
        protocols = sorted({r.protocol or lb.NO_PROTOCOL for r in records})
        self.plot_months.clear()
        xs = list(range(len(months)))
        width = 0.8 / max(1, len(protocols))
        for k, proto in enumerate(protocols):
            ys = [sum(1 for r in records if r.month == m and (r.protocol or lb.NO_PROTOCOL) == proto)
                  for m in months]
            self.plot_months.addItem(pg.BarGraphItem(x=[x - 0.4 + width * (k + 0.5) for x in xs], height=ys,
                                                     width=width, brush=_PEN[k % len(_PEN)], name=proto))
        self.plot_months.getAxis("bottom").setTicks([list(zip(xs, months, strict=True))])
        peak = max([sum(1 for r in records if r.month == m) for m in months] + [1])
        self.plot_months.setYRange(0, peak * 1.6)
        self.plot_competence.clear()
        px = list(range(len(protocols)))
        for k, (outcome, label) in enumerate((("competent", "competent"), ("needs-supervision", "needs supervision"))):
            ys = [sum(1 for r in records if r.counts_signed and r.outcome == outcome
                      and (r.protocol or lb.NO_PROTOCOL) == p) for p in protocols]
            self.plot_competence.addItem(pg.BarGraphItem(x=[x - 0.2 + 0.4 * k for x in px], height=ys, width=0.4,
                                                         brush=_PEN[(3, 2)[k]], name=label))
        self.plot_competence.getAxis("bottom").setTicks([list(zip(px, protocols, strict=True))])
        signed = [r for r in records if r.counts_signed]
        top = max([sum(1 for r in signed if (r.protocol or lb.NO_PROTOCOL) == p) for p in protocols] + [1])
        self.plot_competence.setYRange(0, top * 1.6)
        self.plot_quality.clear()
        for k, q in enumerate(QUALITIES):
            ys = [sum(r.quality.get(q, 0) for r in records if r.month == m) for m in months]
            self.plot_quality.plot(xs, ys, pen=pg.mkPen(_PEN[(3, 1, 2)[k]], width=2), symbol="o",
                                   symbolBrush=_PEN[(3, 1, 2)[k]], name=q)
        self.plot_quality.getAxis("bottom").setTicks([list(zip(xs, months, strict=True))])
        top = max([sum(r.quality.get(q, 0) for r in records if r.month == m) for m in months for q in QUALITIES] + [1])
        self.plot_quality.setYRange(0, top * 1.6)

    def plot_data(self) -> dict[str, dict[str, list[float]]]:
        """What each plot shows, by series name (for tests and the status line)."""
        out: dict[str, dict[str, list[float]]] = {}
        for title, plot in (("months", self.plot_months), ("competence", self.plot_competence),
                            ("quality", self.plot_quality)):
            series: dict[str, list[float]] = {}
            for item in plot.getPlotItem().items:
                if isinstance(item, pg.BarGraphItem):
                    series[item.name()] = [float(v) for v in item.opts["height"]]
                elif isinstance(item, pg.PlotDataItem):
                    series[item.name()] = [float(v) for v in item.yData]
            out[title] = series
        return out

    def _fill_worklist(self, wl: lb.Worklist) -> None:
        self.worklist.clear()
        for label, items in (("Awaiting sign-off", wl.drafts), ("Amended since last seen", wl.amended),
                             ("Second-opinion requests", wl.requests)):
            head = QTreeWidgetItem(self.worklist, [f"{label} ({len(items)})"])
            head.setFirstColumnSpanned(True)
            for r in items:
                self._item(head, ["", r.kind, self._case(r), r.study_date, r.trainee or r.author,
                                  r.protocol or ""], r)
            head.setExpanded(True)
        for i in range(1, self.worklist.columnCount()):
            self.worklist.resizeColumnToContents(i)

    def _fill_audit(self, audit: lb.Audit) -> None:
        j = audit.to_json()

        def pct(r: dict) -> str:
            if r["rate"] is None:  # 0 of 0: no rate
                return lb.NO_RATE
            lo, hi = r["ci95"]
            return f"{100 * r['rate']:.1f} % ({100 * lo:.1f}–{100 * hi:.1f})"

        self.audit_summary.setText(
            f"{j['reviews']} signed second opinion(s) ({j['unsigned_excluded']} unsigned not counted). "
            f"Discrepancies {j['rates']['discrepancy']['count']}: {pct(j['rates']['discrepancy'])}; "
            f"major {j['rates']['major']['count']}: {pct(j['rates']['major'])}. Scores: "
            + ", ".join(f"{k} {v}" for k, v in j["by_score"].items())
            + ". MDT outcomes: " + ", ".join(f"{k} {v}" for k, v in j["by_mdt_outcome"].items()))
        self.audit_table.clear()
        for group, label in (("reporter", "By reporter"), ("protocol", "By protocol"), ("period", "By month")):
            head = QTreeWidgetItem(self.audit_table, [label])
            for key, g in j[f"by_{group}"].items():
                QTreeWidgetItem(head, [key, str(g["reviews"]), *(str(g[a]) for a in AGREEMENTS),
                                       pct(g["discrepancy"])])
            head.setExpanded(True)
        for i in range(self.audit_table.columnCount()):
            self.audit_table.resizeColumnToContents(i)
        self.majors.clear()
        by_uid = {r.sop_instance_uid: r for r in audit.records}
        for m in j["major_discrepancies"]:
            r = by_uid[m["sop_instance_uid"]]
            self._item(self.majors, [self._case(r), m["study_date"], m["reporter"], m["reviewer"],
                                     m["peer_review_score"] or "", m["mdt_outcome"] or ""], r)

    # ------------------------------------------------------------------ worklist and exports
    def mark_amendments_seen(self) -> tasks.Task | None:
        """The amendments listed now count as seen (the command line's worklist agrees); then reload."""
        if self.current_worklist is None:
            return None
        amended = list(self.current_worklist.amended)
        return tasks.run(self, lambda _t: lb.mark_seen(amended), name="worklist-seen",
                         on_result=lambda _r: self.refresh(), on_error=self._on_failed)

    def _choose_export(self) -> None:
        audit = self.tabs.currentIndex() == 2
        path, _flt = QFileDialog.getSaveFileName(self, "Export the audit" if audit else "Export the logbook",
                                                 "audit.pdf" if audit else "logbook.pdf", "PDF (*.pdf);;CSV (*.csv)")
        if path:
            self.export(path, audit=audit)

    def export(self, path: str, audit: bool = False) -> tasks.Task | None:
        """Write the logbook shown (or the audit) to *path*, PDF or CSV by its suffix, pseudonymised."""
        if self.collection is None:
            return None
        records = self.collection.records
        logs = list(self.logs)
        pdf = path.lower().endswith(".pdf")

        def job(_task: tasks.Task) -> Path:
            if audit:
                a = lb.discrepancy_audit(records)
                data: str | bytes = lb.audit_pdf(a) if pdf else lb.audit_csv(a)
            else:
                data = lb.logbook_pdf(logs) if pdf else lb.logbook_csv(logs)
            return lb.write_export(data, path)

        self.status.setText("Exporting…")
        return tasks.run(self, job, name="logbook-export", on_error=self._on_failed,
                         on_result=lambda p: self.status.setText(f"Exported to {p} (case numbers, no identifiers)"))

    # ------------------------------------------------------------------ opening
    def _activated(self, item: QTreeWidgetItem, _col: int = 0) -> None:
        path = item.data(0, _PATH_ROLE)
        if path:
            self.openRequested.emit(str(item.data(0, _STUDY_ROLE)), str(path))

    def _open_in_host(self, study_uid: str, path: str) -> None:
        """The study in the main window (local store folder, else the review's own folder) and the review in
        the review editor (a draft to continue, a signed one to amend)."""
        if self.host is None:
            return
        from mdtviewer.infra import paths
        from mdtviewer.pacs.localstore import path_component

        where = [p for p in (paths.store_dir() / path_component(study_uid),) if p.is_dir()] or [Path(path).parent]
        self.host.open_paths([str(p) for p in where])
        self.host.review_dock.show()
        self.host.review_dock.raise_()
        self.host.review_editor.open_review(path)

    def closeEvent(self, event: Any) -> None:
        tasks.shutdown(self)
        super().closeEvent(event)
