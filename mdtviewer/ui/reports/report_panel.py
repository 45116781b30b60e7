"""The report panel: every report of the study, shown as a readable document.

Lists our reviews (second opinions, preceptorship sign-offs: author, kind,
status, date; verified ones first, newest first), then foreign SRs and KOS,
encapsulated PDFs and any other encapsulated document (with its MIME type).
The selected SR is rendered as HTML (:mod:`mdtviewer.ui.reports.sr_html`) in a
QTextBrowser whose image references are links: clicking one emits
``imageReferenceActivated(sop_instance_uid, frame)`` so the window can open
that image and frame.  PDFs are shown page by page with QtPdf.

Files are read on a worker thread (a study may hold many reports, a PDF may
be large): the UI thread only builds widgets from what the worker returns.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QBuffer, QByteArray, QEvent, QIODevice, QObject, QPointF, Qt, QUrl, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QPainter
from PySide6.QtPdf import QPdfDocument
from PySide6.QtPdfWidgets import QPdfView
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QTextBrowser,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from mdtviewer.dicom.model import Instance
from mdtviewer.infra import paths
from mdtviewer.ui import tasks
from mdtviewer.ui.reports import sr_html
from mdtviewer.workflows.report_files import (
    CATEGORY_LABELS,
    ReportEntry,
    load_entries,
    read_document_bytes,
)

log = logging.getLogger(__name__)

#: text documents up to this size are shown inline
_INLINE_TEXT_LIMIT = 1 << 20


#: the kind a listed report's title starts with (reviews, key images and documents say theirs already)
_LIST_KIND = {"sr": "SR", "pdf": "PDF"}
#: the text of a withdrawn document's row (IHE IOCM), the browser's red for a withdrawn instance
WITHDRAWN_COLOUR = QColor(220, 30, 30)

# --------------------------------------------------------------------- background jobs


class _JobFailed(Exception):
    """A background job's failure, as the one-line message :mod:`mdtviewer.ui.tasks` worded."""


# --------------------------------------------------------------------- widget


#: the report title column is never narrower than this many average characters
TITLE_MIN_CHARS = 20


class _ResizeWatcher(QObject):
    """Calls *fn* after its watched widget is resized."""

    def __init__(self, fn: Callable[[], None], parent: QObject):
        super().__init__(parent)
        self._fn = fn

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:
        if ev.type() == QEvent.Type.Resize:
            self._fn()
        return False


class _ReportHeader(QHeaderView):
    """The report list's header: after any :meth:`restoreState` the panel lays the columns out again
    (a saved state left the title two characters wide, issue 15.6)."""

    def __init__(self, after_restore: Callable[[], None], parent: QWidget):
        super().__init__(Qt.Orientation.Horizontal, parent)
        self._after_restore = after_restore
        self.setSectionsMovable(True)

    def restoreState(self, state: Any) -> bool:
        ok = super().restoreState(state)
        self._after_restore()
        return ok


class ReportPanel(QWidget):
    """The study's reports: a list above, the selected report below."""

    imageReferenceActivated = Signal(str, int)  # sop_instance_uid, frame (1-based; 0 = none given)
    #: the list was (re)filled
    loaded = Signal()
    #: a report is on screen (its SOP Instance UID)
    documentShown = Signal(str)
    #: a look on the PACS for the study's reports ended (one-line outcome, '' when no PACS is set up)
    pacsChecked = Signal(str)
    #: rejection notes (IHE IOCM) among the listed documents that the study's indexed instances do not include
    #: (fetched from the PACS into the local store): their paths, for the window to apply to the images too
    rejectionNotesFound = Signal(list)

    PAGE_BROWSER, PAGE_PDF, PAGE_PDF_HIDDEN = 0, 1, 2

    def __init__(self, parent: QWidget | None = None, *, review_folders: list[Path] | None = None):
        super().__init__(parent)
        self.setObjectName("ReportPanel")
        self._privacy = False
        self._instances: list[Instance] = []
        self._study_uids: list[str] = []
        self._entries: list[ReportEntry] = []
        self._review_folders = review_folders
        self._list_gen = 0
        self._doc_gen = 0
        self._current_uid: str | None = None
        self._pdf_bytes: bytes | None = None
        # reports that exist only on the PACS: looked for once per study, on a worker of their own
        # so a slow or dead PACS never delays the local list
        self._pacs_gen = 0
        self._pacs_checked: set[str] = set()
        self._pacs_message = ""
        self._pacs_busy = False
        #: look on the PACS when a study is shown (the window or a test may turn it off)
        self.pacs_lookup_enabled = True
        #: whose images are on screen (set by the window): [{patient_id, issuer, study_uid, study_date}]
        self.screen_context: Callable[[], list[dict[str, str]]] | None = None
        #: the browser's "Patient N" for a study (shown instead of the name while privacy is on)
        self.patient_number: Callable[[str], int | None] | None = None

        self.list = QTreeWidget(self)
        self.list.setObjectName("reportList")
        self._fitting_title = False
        self.list.setHeader(_ReportHeader(lambda: self._fit_title_column(), self.list))
        self.list.setHeaderLabels(["Report", "Author", "Status", "Date"])
        # the title takes what is left; author, status and date are never clipped
        header = self.list.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2, 3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        # ... but never below TITLE_MIN_CHARS: beside the review editor (a narrow panel) the title was cut to
        # "..." (QA 11); then the title keeps its width and the list scrolls sideways to the other columns
        self._fitting_title = False
        self._title_fitter = _ResizeWatcher(self._fit_title_column, self)
        self.list.viewport().installEventFilter(self._title_fitter)
        header.sectionResized.connect(lambda *_: self._fit_title_column())
        self.list.setRootIsDecorated(False)
        self.list.setUniformRowHeights(True)
        self.list.setAlternatingRowColors(True)
        self.list.currentItemChanged.connect(self._on_current_changed)
        self.list.setAccessibleName("Reports of this study")

        self.browser = QTextBrowser(self)
        self.browser.setObjectName("reportBrowser")
        self.browser.setOpenLinks(False)
        self.browser.setOpenExternalLinks(False)
        self.browser.anchorClicked.connect(self._on_anchor)
        self.browser.setAccessibleName("Report text")

        # QPdfDocument is made on first use: PDFium reserves 32 GiB of address space when it
        # starts, which kills the process (SIGTRAP) under a memory cap (ulimit -v) before any image shows
        self._pdf_document: QPdfDocument | None = None
        self._pdf_buffer: QBuffer | None = None
        self.pdf_view = QPdfView(self)
        self.pdf_view.setObjectName("reportPdfView")
        self.pdf_view.setPageMode(QPdfView.PageMode.MultiPage)
        self.pdf_view.setZoomMode(QPdfView.ZoomMode.FitToWidth)
        self.pdf_page = QSpinBox(self)
        self.pdf_page.setMinimum(1)
        self.pdf_page.setPrefix("Page ")
        self.pdf_page.valueChanged.connect(self._jump_pdf_page)
        self.pdf_pages_label = QLabel(self)
        fit_w = QPushButton("Fit width", self)
        fit_w.clicked.connect(lambda: self.pdf_view.setZoomMode(QPdfView.ZoomMode.FitToWidth))
        fit_p = QPushButton("Fit page", self)
        fit_p.clicked.connect(lambda: self.pdf_view.setZoomMode(QPdfView.ZoomMode.FitInView))
        pdf_box = QWidget(self)
        pl = QVBoxLayout(pdf_box)
        pl.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        bar.addWidget(self.pdf_page)
        bar.addWidget(self.pdf_pages_label)
        bar.addStretch(1)
        bar.addWidget(fit_w)
        bar.addWidget(fit_p)
        pl.addLayout(bar)
        pl.addWidget(self.pdf_view, 1)
        nav = self.pdf_view.pageNavigator()
        nav.currentPageChanged.connect(self._on_pdf_page_changed)

        hidden_box = QWidget(self)
        hl = QVBoxLayout(hidden_box)
        self._pdf_hidden_label = QLabel(
            "Privacy is on: this PDF report is hidden because a PDF may show patient identifiers "
            "that cannot be masked.",
            hidden_box,
        )
        self._pdf_hidden_label.setWordWrap(True)
        show_anyway = QPushButton("Show this PDF anyway", hidden_box)
        show_anyway.clicked.connect(self._reveal_pdf)
        hl.addStretch(1)
        hl.addWidget(self._pdf_hidden_label)
        hl.addWidget(show_anyway, 0, Qt.AlignmentFlag.AlignHCenter)
        hl.addStretch(1)
        self._pdf_revealed = False

        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.browser)
        self.stack.addWidget(pdf_box)
        self.stack.addWidget(hidden_box)
        # every report view says whose report it is, and warns when that is not whose images are on screen
        self.whose_label = QLabel("", self)
        self.whose_label.setObjectName("reportWhose")
        self.whose_label.setWordWrap(True)
        self.whose_label.setStyleSheet("QLabel { font-weight: bold; padding: 2px; }")
        self.warning_bar = QLabel("", self)
        self.warning_bar.setObjectName("reportWrongPatient")
        self.warning_bar.setWordWrap(True)
        self.warning_bar.setStyleSheet(
            "QLabel { background: #b00020; color: white; font-weight: bold; padding: 6px; }")
        self.warning_bar.hide()
        view_box = QWidget(self)
        vl = QVBoxLayout(view_box)
        vl.setContentsMargins(0, 0, 0, 0)
        vl.setSpacing(2)
        vl.addWidget(self.warning_bar)
        vl.addWidget(self.whose_label)
        vl.addWidget(self.stack, 1)

        self.status_label = QLabel("No reports in this study.", self)
        self.status_label.setObjectName("reportStatus")
        self.status_label.setWordWrap(True)
        self.pacs_button = QPushButton("Check PACS", self)
        self.pacs_button.setObjectName("reportCheckPacs")
        self.pacs_button.setToolTip("Look on the PACS for reviews and reports of this study written elsewhere")
        self.pacs_button.clicked.connect(lambda: self.check_pacs(force=True))
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.list)
        split.addWidget(view_box)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 3)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        top = QHBoxLayout()
        top.addWidget(self.status_label, 1)
        top.addWidget(self.pacs_button, 0)
        lay.addLayout(top)
        # the reports, and views of the same study other features add (the vessel worksheet): add_tab()
        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("reportTabs")
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(split, "Reports")
        lay.addWidget(self.tabs, 1)
        self._show_message("Reports", "No report selected.")

    # ----------------------------------------------------------------- public API

    def add_tab(self, widget: QWidget, title: str) -> int:
        """Add a view of the study on screen beside the reports (its own tab)."""
        return self.tabs.addTab(widget, title)

    def set_instances(self, instances: list[Instance], study_instance_uid: str | None = None) -> None:
        """Show the reports among *instances* (any kinds; non-reports are ignored).

        Our reviews of the study found in the local store are added.  The
        study is taken from the instances, or *study_instance_uid* when given
        (a study may have no report yet, only images).
        """
        self._instances = list(instances)
        uids = [study_instance_uid] if study_instance_uid else []
        uids += [i.study_instance_uid for i in self._instances if i.study_instance_uid]
        self._study_uids = list(dict.fromkeys(uids))
        self.refresh()
        if self.pacs_lookup_enabled:
            self.check_pacs(force=False)

    def set_study(self, study_instance_uid: str, instances: list[Instance]) -> None:
        self.set_instances(instances, study_instance_uid)

    def add_study(self, study_instance_uid: str) -> None:
        """Also list our reviews of this study (one just written for a study with no report yet).

        Takes effect at the next :meth:`refresh`.
        """
        if study_instance_uid and study_instance_uid not in self._study_uids:
            self._study_uids.append(study_instance_uid)

    def study_uids(self) -> list[str]:
        """The studies whose reports are listed."""
        return list(self._study_uids)

    def refresh(self) -> None:
        """Re-read the list (after a review was saved); keeps the selected report."""
        self._list_gen += 1
        gen = self._list_gen
        instances = list(self._instances)
        study_uids = list(self._study_uids)
        folders = self._review_folders
        if folders is not None and self._pacs_checked:
            folders = [*folders, paths.store_dir()]  # reports fetched from the PACS land in the local store
        self.status_label.setText("Reading reports\u2026")
        self._start("report-panel", gen, lambda _t: load_entries(instances, study_uids, folders), self._on_entries)

    def check_pacs(self, force: bool = True) -> bool:
        """Look on the PACS for this study's reports that are not local (in the background).

        Runs once per study unless *force*; reports found are fetched into the
        local store and the list is re-read.  Returns False when there is
        nothing to do (no study, already checked, or no PACS node saved).
        """
        study_uids = [u for u in self._study_uids if force or u not in self._pacs_checked]
        if not study_uids:
            return False
        from mdtviewer.workflows import report_lookup as pacs_reports

        nodes = pacs_reports.lookup_nodes()
        if not nodes:
            return False
        self._pacs_checked.update(study_uids)
        self._pacs_gen += 1
        gen = self._pacs_gen
        self._pacs_busy = True
        self.pacs_button.setEnabled(False)
        self._pacs_message = f"Looking for reports on {', '.join(n.name for n in nodes)}\u2026"
        self._update_status()

        def job(task: tasks.Task):  # cancelled when the panel's window closes: a slow PACS must not hold the quit
            found = [pacs_reports.fetch_study_reports(uid, nodes, cancel=task.cancel) for uid in study_uids]
            return [str(len(f.fetched)) for f in found], "; ".join(f.message for f in found if f.message)

        self._start("report-pacs", gen, job, self._on_pacs_lookup)
        return True

    def _start(self, lane: str, gen: int, fn: Callable[[tasks.Task], Any], slot: Callable[[int, object], None]) -> None:
        """Run *fn* on the panel's *lane*; ``slot(gen, result or _JobFailed(reason))`` on the UI thread."""
        tasks.run(self, fn, name=lane, lane=lane, on_result=lambda r: slot(gen, r),
                  on_error=lambda message: slot(gen, _JobFailed(message)), expected=(OSError,))

    def pacs_busy(self) -> bool:
        return self._pacs_busy

    def pacs_message(self) -> str:
        return self._pacs_message

    def _on_pacs_lookup(self, gen: int, result: object) -> None:
        if gen != self._pacs_gen:
            return
        self._pacs_busy = False
        self.pacs_button.setEnabled(True)
        if isinstance(result, Exception):
            self._pacs_message = f"PACS lookup failed: {' '.join(str(result).split())}"
            fetched = 0
        else:
            counts, message = result  # type: ignore[misc]
            fetched = sum(int(c) for c in counts)
            self._pacs_message = message
        if fetched:
            self.refresh()
        else:
            self._update_status()
        self.pacsChecked.emit(self._pacs_message)

    def _update_status(self) -> None:
        n = len(self._entries)
        text = "No reports in this study." if n == 0 else f"{n} report{'s' if n != 1 else ''}"
        if self._pacs_message:
            text += f" \u2014 {self._pacs_message}"
        self.status_label.setText(text)

    def set_privacy(self, on: bool) -> None:
        on = bool(on)
        if on == self._privacy:
            return
        self._privacy = on
        self._pdf_revealed = False
        self._relabel()
        self._show_current()

    def privacy(self) -> bool:
        return self._privacy

    def entries(self) -> list[ReportEntry]:
        return list(self._entries)

    def current_entry(self) -> ReportEntry | None:
        item = self.list.currentItem()
        if item is None:
            return None
        idx = item.data(0, Qt.ItemDataRole.UserRole)
        return self._entries[idx] if isinstance(idx, int) and 0 <= idx < len(self._entries) else None

    def select(self, sop_instance_uid: str) -> bool:
        """Show the report with this SOP Instance UID; False if not listed."""
        for row in range(self.list.topLevelItemCount()):
            item = self.list.topLevelItem(row)
            e = self._entries[item.data(0, Qt.ItemDataRole.UserRole)]
            if e.sop_instance_uid == sop_instance_uid:
                self.list.setCurrentItem(item)
                return True
        return False

    def show_instance(self, sop_instance_uid: str) -> bool:
        """Show this report (the window calls it for a document opened from the browser).

        If the list is still being read, the report is shown as soon as it is listed.
        """
        if self.select(sop_instance_uid):
            self._pending_uid = None
            return True
        self._pending_uid = sop_instance_uid
        return False

    @property
    def pdf_document(self) -> QPdfDocument:
        if self._pdf_document is None:
            self._pdf_document = QPdfDocument(self)
            self.pdf_view.setDocument(self._pdf_document)
        return self._pdf_document

    def html(self) -> str:
        """The HTML of the SR on screen ('' when a PDF or nothing is shown)."""
        return self._html

    def render_pdf_page(self, page: int, width: int = 600) -> QImage:
        """Page *page* (0-based) of the PDF on screen as an image (for checks and thumbnails)."""
        from PySide6.QtCore import QSize

        size = self.pdf_document.pagePointSize(page)
        if size.width() <= 0:
            return QImage()
        h = int(width * size.height() / size.width())
        rendered = self.pdf_document.render(page, QSize(width, h))
        # QtPdf leaves the paper transparent: put it on white as it is shown
        out = QImage(rendered.size(), QImage.Format.Format_RGB32)
        out.fill(Qt.GlobalColor.white)
        painter = QPainter(out)
        painter.drawImage(0, 0, rendered)
        painter.end()
        return out

    def title_min_width(self) -> int:
        return self.list.fontMetrics().averageCharWidth() * TITLE_MIN_CHARS + self.list.indentation()

    def header_state(self) -> bytes:
        """The list header's state (QHeaderView.saveState), e.g. to keep it between sessions."""
        return bytes(self.list.header().saveState().data())

    def restore_header_state(self, state: bytes) -> bool:
        """Restore a saved header state, then lay the columns out as always: author, status and date fit
        their text, the title stretches over the rest and is never below :meth:`title_min_width`, whatever
        widths or modes the state held.  False when Qt could not read *state* (nothing changed then)."""
        return bool(self.list.header().restoreState(QByteArray(bytes(state))))  # then fitted (_ReportHeader)

    def title_width(self) -> int:
        return self.list.header().sectionSize(0)

    def title_stretches(self) -> bool:
        return self.list.header().sectionResizeMode(0) == QHeaderView.ResizeMode.Stretch

    def _fit_title_column(self) -> None:
        """The title takes what author, status and date leave, and at least :func:`title_min_width`."""
        if self._fitting_title:
            return
        self._fitting_title = True
        try:
            h = self.list.header()
            for col in (1, 2, 3):  # a restored state may have made them fixed or interactive
                if h.sectionResizeMode(col) != QHeaderView.ResizeMode.ResizeToContents:
                    h.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
            room = self.list.viewport().width()
            others = sum(h.sectionSize(c) for c in (1, 2, 3) if not h.isSectionHidden(c))
            least = self.title_min_width()
            if h.isSectionHidden(0):
                h.showSection(0)
            if room - others >= least:
                if h.sectionResizeMode(0) != QHeaderView.ResizeMode.Stretch:
                    h.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
            else:
                if h.sectionResizeMode(0) != QHeaderView.ResizeMode.Interactive:
                    h.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
                if h.sectionSize(0) < least:  # also a width restored or dragged narrower: clamped
                    h.resizeSection(0, least)
        finally:
            self._fitting_title = False

    # ----------------------------------------------------------------- slots

    def _on_entries(self, gen: int, result: object) -> None:
        if gen != self._list_gen:
            return  # a newer refresh is under way
        if isinstance(result, Exception):
            self._entries = []
            self.status_label.setText(f"Reports could not be read: {result}")
            self.list.clear()
            self.loaded.emit()
            return
        keep = self._pending_uid or self._current_uid
        self._pending_uid = None
        self._entries = list(result)  # type: ignore[arg-type]
        indexed = {i.sop_instance_uid for i in self._instances}
        notes = [str(e.path) for e in self._entries
                 if e.category == "kos" and not e.error and e.sop_instance_uid not in indexed and e.is_rejection_note()]
        if notes:
            self.rejectionNotesFound.emit(notes)
        self.list.blockSignals(True)
        self.list.clear()
        for i, e in enumerate(self._entries):
            status = (e.error and "unreadable") or e.status
            item = QTreeWidgetItem([self._list_title(e), self._scrub(e, e.author), status, e.date])
            item.setData(0, Qt.ItemDataRole.UserRole, i)
            item.setToolTip(0, self._title_tip(e))
            if e.withdrawn:  # IHE IOCM: red in every column, so it shows with the status column scrolled away
                for c in range(item.columnCount()):
                    item.setForeground(c, QBrush(WITHDRAWN_COLOUR))
            self.list.addTopLevelItem(item)
        for c in range(4):
            self.list.resizeColumnToContents(c)
        self._fit_title_column()
        self.list.blockSignals(False)
        n = len(self._entries)
        self._update_status()
        target = 0
        if keep:
            for i, e in enumerate(self._entries):
                if e.sop_instance_uid == keep:
                    target = i
        if n:
            self.list.setCurrentItem(self.list.topLevelItem(target))
            self._on_current_changed(self.list.currentItem(), None)
        else:
            self._current_uid = None
            self._show_message("Reports", "This study has no reports yet.")
        self.update_context()
        self.loaded.emit()

    def _label(self, e: ReportEntry) -> str:
        """The entry's name as listed: under privacy a KOS is named by PS3.16's meaning of its title code only,
        never by the file's title text (which may hold a name the scrub does not know: HAZ-016)."""
        return e.label(standard_only=self._privacy and not e.error)

    def _shown_label(self, e: ReportEntry) -> str:
        """:meth:`_label` as the list shows it: scrubbed under privacy, except a KOS's, which is then only our
        own words and PS3.16's (scrubbing them would hide "Rejection" from a note of patient "Test^Rejection")."""
        if self._privacy and e.category == "kos" and not e.error:
            return self._label(e)
        return self._scrub(e, self._label(e))

    def _list_title(self, e: ReportEntry) -> str:
        """The title as listed: an SR or PDF starts with its kind, so two reports whose titles differ only
        past the column's width ("Carotid duplex findin\u2026", "Carotid duplex report\u2026") are told apart."""
        title = self._shown_label(e)
        kind = _LIST_KIND.get(e.category)
        return f"{kind}: {title}" if kind and not e.error else title

    def _title_tip(self, e: ReportEntry) -> str:
        """The whole title, its kind, author, status and date (the list may cut the title)."""
        kind = ("Rejection note" if e.is_rejection_note() else CATEGORY_LABELS.get(e.category, "")) + (
            f" ({e.mime})" if e.mime else "")
        lines = [self._shown_label(e), kind]
        lines += [x for x in (self._scrub(e, e.author), e.status, e.date) if x]
        if e.error:
            lines.append(e.error)
        return "\n".join(x for x in lines if x)

    def _scrub(self, e: ReportEntry, text: str) -> str:
        """List text with the patient's identifiers hidden when privacy is on."""
        if not self._privacy or not text:
            return text
        if e.error and text in (e.label(), self._label(e)):  # an unreadable file is known by its name (the patient's?)
            return "Unreadable report"
        import html as _h

        return _h.unescape(sr_html.SafeText(e.identifiers.needles(), True)(text).replace("<br>", " "))

    def _relabel(self) -> None:
        for row in range(self.list.topLevelItemCount()):
            item = self.list.topLevelItem(row)
            e = self._entries[item.data(0, Qt.ItemDataRole.UserRole)]
            item.setText(0, self._list_title(e))
            item.setToolTip(0, self._title_tip(e))
            item.setText(1, self._scrub(e, e.author))

    def _on_current_changed(self, current: QTreeWidgetItem | None, _previous: QTreeWidgetItem | None) -> None:
        e = self.current_entry()
        self._current_uid = e.sop_instance_uid if e else None
        self._pdf_revealed = False
        self._pdf_bytes = None
        if e is not None and e.category in ("pdf", "document") and e.error is None:
            self._doc_gen += 1
            gen = self._doc_gen
            path = e.path
            self._show_message(self._label(e), "Loading\u2026")
            self._start("report-panel", gen, lambda _t: read_document_bytes(path), self._on_document_bytes)
            return
        self._show_current()

    def _on_document_bytes(self, gen: int, result: object) -> None:
        if gen != self._doc_gen:
            return
        e = self.current_entry()
        if e is None:
            return
        if isinstance(result, Exception):
            e.error = f"cannot read this document: {result}"
        else:
            self._pdf_bytes = result  # type: ignore[assignment]
        self._show_current()

    # ----------------------------------------------------------------- whose report

    def whose_text(self, e: ReportEntry | None = None) -> str:
        """'Report for: NAME · ID … · study DATE' (privacy: 'Patient N'), for the entry on screen."""
        e = e if e is not None else self.current_entry()
        if e is None:
            return ""
        ids = e.identifiers
        study_uid = ids.study_uid or (e.doc.study_instance_uid if e.doc is not None else "")
        date = _fmt_date(ids.study_date) or "date unknown"
        if self._privacy:
            n = self.patient_number(study_uid) if self.patient_number is not None and study_uid else None
            who = f"Patient {n} [hidden]" if n else "patient hidden (privacy on)"
            return f"Report for: {who} · study {date}"
        name = " ".join(p for p in ids.name.replace("=", "^").split("^") if p.strip()) or "(no name)"
        pid = f"ID {ids.patient_id}" if ids.patient_id.strip() else "no patient ID"
        if ids.issuer.strip():
            pid += f" ({ids.issuer.strip()})"
        return f"Report for: {name} · {pid} · study {date}"

    def mismatch(self, e: ReportEntry | None = None) -> str:
        """The warning for a report whose patient or study is not the images' on screen ('' when it matches)."""
        e = e if e is not None else self.current_entry()
        if e is None or self.screen_context is None:
            return ""
        try:
            screen = self.screen_context()
        except RuntimeError:
            return ""
        if not screen:
            return ""
        ids = e.identifiers
        r_uid = ids.study_uid or (e.doc.study_instance_uid if e.doc is not None else "")
        r_pid, r_iss = ids.patient_id.strip(), ids.issuer.strip()

        def same(s: dict[str, str]) -> bool:
            if r_uid and s.get("study_uid") == r_uid:
                return True
            s_pid = (s.get("patient_id") or "").strip()
            # identity is ID + issuer; without an ID on either side only the same study is the same patient
            return bool(r_pid and s_pid and r_pid == s_pid and r_iss == (s.get("issuer") or "").strip())

        if not all(same(s) for s in screen):
            return "This report is for a different patient than the images on screen"
        if r_uid and all(s.get("study_uid") != r_uid for s in screen):
            return (f"This report is for a different study ({_fmt_date(ids.study_date) or 'date unknown'}) "
                    "than the images on screen")
        return ""

    def update_context(self) -> None:
        """Re-check whose report is shown against the images on screen (the window calls it when they change)."""
        e = self.current_entry()
        self.whose_label.setText(self.whose_text(e))
        self.whose_label.setVisible(e is not None)
        warn = self.mismatch(e)
        if e is not None and e.withdrawn:  # IHE IOCM: a rejection note withdrew it; said before anything else
            warn = f"WITHDRAWN ({e.withdrawn}): not the current report" + (f"; {warn}" if warn else "")
        self.warning_bar.setText(("⚠ " + warn) if warn else "")
        self.warning_bar.setVisible(bool(warn))

    def _show_current(self) -> None:
        self.update_context()
        e = self.current_entry()
        if e is None:
            self._show_message("Reports", "No report selected.")
            return
        if e.error:
            reason = e.error.replace(e.path.name, "this file") if self._privacy else e.error
            self._html = sr_html.render_error_html(self._shown_label(e), reason)
            self.browser.setHtml(self._html)
            self.stack.setCurrentIndex(self.PAGE_BROWSER)
            self.documentShown.emit(e.sop_instance_uid)
            return
        if e.category == "pdf":
            self._show_pdf(e)
        elif e.category == "document":
            self._show_document(e)
        else:
            self._html = sr_html.render_html(e.doc, identifiers=e.identifiers, privacy=self._privacy,
                                             heading=self._label(e))
            self.browser.setHtml(self._html)
            self.stack.setCurrentIndex(self.PAGE_BROWSER)
        self.documentShown.emit(e.sop_instance_uid)

    def _show_pdf(self, e: ReportEntry) -> None:
        self._html = ""
        if self._pdf_bytes is None:
            self._show_message(self._label(e), "Loading\u2026")
            return
        if self._privacy and not self._pdf_revealed:
            if self._pdf_document is not None:
                self._pdf_document.close()
            self.stack.setCurrentIndex(self.PAGE_PDF_HIDDEN)
            return
        if self._pdf_document is None and _address_space_too_small_for_pdfium():
            self._html = sr_html.render_error_html(
                self._label(e),
                "the PDF cannot be shown under this process's memory limit (ulimit -v): "
                "the PDF renderer needs 32 GiB of address space",
            )
            self.browser.setHtml(self._html)
            self.stack.setCurrentIndex(self.PAGE_BROWSER)
            return
        self.pdf_document.close()
        buf = QBuffer(self)
        buf.setData(QByteArray(self._pdf_bytes))
        buf.open(QIODevice.OpenModeFlag.ReadOnly)
        old = self._pdf_buffer
        self._pdf_buffer = buf
        self.pdf_document.load(buf)
        if old is not None:
            old.deleteLater()
        n = self.pdf_document.pageCount()
        if self.pdf_document.status() == QPdfDocument.Status.Error or n == 0:
            self._html = sr_html.render_error_html(
                self._label(e), f"the PDF cannot be shown ({self.pdf_document.error().name})"
            )
            self.browser.setHtml(self._html)
            self.stack.setCurrentIndex(self.PAGE_BROWSER)
            return
        self.pdf_page.blockSignals(True)
        self.pdf_page.setMaximum(max(1, n))
        self.pdf_page.setValue(1)
        self.pdf_page.blockSignals(False)
        self.pdf_pages_label.setText(f"of {n}  \u2014  {e.title}")
        self.stack.setCurrentIndex(self.PAGE_PDF)

    def _show_document(self, e: ReportEntry) -> None:
        import html as _h

        t = sr_html.SafeText(e.identifiers.needles(), self._privacy)
        parts = [f"<html><body><h1>{t(e.title or 'Document')}</h1>", "<table>"]
        parts.append(f"<tr><td>Type</td><td>{_h.escape(e.mime or 'unknown')}</td></tr>")
        parts.append(f"<tr><td>Size</td><td>{e.size:,} bytes</td></tr>")
        if e.date:
            parts.append(f"<tr><td>Date</td><td>{_h.escape(e.date)}</td></tr>")
        parts.append("</table>")
        data = self._pdf_bytes or b""
        mime = (e.mime or "").lower()
        if (
            data
            and (
                mime.startswith("text/") or mime.endswith("xml") or mime.endswith("+json") or mime == "application/json"
            )
            and len(data) <= _INLINE_TEXT_LIMIT
        ):
            parts.append(f"<hr><pre>{t(data.decode('utf-8', errors='replace'))}</pre>")
        else:
            parts.append("<p><i>This document type cannot be shown here.</i></p>")
        parts.append("</body></html>")
        self._html = "\n".join(parts)
        self.browser.setHtml(self._html)
        self.stack.setCurrentIndex(self.PAGE_BROWSER)

    def _show_message(self, title: str, text: str) -> None:
        self._html = ""
        self.browser.setHtml(sr_html.render_error_html(title, text).replace("color:#a00", "color:#555"))
        self.stack.setCurrentIndex(self.PAGE_BROWSER)

    def _reveal_pdf(self) -> None:
        self._pdf_revealed = True
        e = self.current_entry()
        if e is not None and e.category == "pdf":
            self._show_pdf(e)

    def _jump_pdf_page(self, page_1based: int) -> None:
        if self._pdf_document is not None and self._pdf_document.pageCount() >= page_1based:
            self.pdf_view.pageNavigator().jump(page_1based - 1, QPointF(), 0)

    def _on_pdf_page_changed(self, page: int) -> None:
        self.pdf_page.blockSignals(True)
        self.pdf_page.setValue(page + 1)
        self.pdf_page.blockSignals(False)

    def _on_anchor(self, url: QUrl) -> None:
        parsed = sr_html.parse_image_link(url.toString())
        if parsed is not None:
            self.imageReferenceActivated.emit(parsed[0], parsed[1])

    _html = ""
    _pending_uid: str | None = None


def _fmt_date(da: str) -> str:
    da = (da or "").strip()
    return f"{da[:4]}-{da[4:6]}-{da[6:8]}" if len(da) >= 8 and da[:8].isdigit() else da


def _address_space_too_small_for_pdfium() -> bool:
    """PDFium's allocator reserves 32 GiB of address space and aborts the process when it cannot."""
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        return False
    return soft != resource.RLIM_INFINITY and soft < 40 * 2**30
