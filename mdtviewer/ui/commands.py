"""Viewer commands of issue 15 that the action table names as ``commands.*``: key images (K, Shift+K),
the DICOM tag browser (Ctrl+T), window/level presets for grey images (F6-F8), full screen (F11), and
the measuring tools with undo (Ctrl+Z) and "Save measurements" (Ctrl+S).

Measurements last: every viewport of the window draws into one shared list of marks
(:class:`mdtviewer.ui.viewer.measure.Mark`, each on its image and frame); Save writes them as a TID
1500 measurement SR in the study (``workflows.measurement_files``: an amendment of our last one when
there is one, the first file never altered) and sends it to the review node; showing a study reads
its measurement SRs back in the background and draws them again on their image and frame.  Deleting or
undoing a measurement that our saved report holds makes the study's measurements unsaved: the next save
(or the question before another study, case or the window's close) writes an amendment without it, so the
record never keeps a measurement the user removed (HAZ-026).

They act on the window's current viewport through its public API and run
every file read or write on a worker (``ui.tasks``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from PySide6.QtCore import QObject, Signal

from mdtviewer.ui import tasks
from mdtviewer.ui.viewer.measure import TOOL_HINTS, TOOLS, Mark, mark_from_annotation, mark_from_saved

if TYPE_CHECKING:
    from mdtviewer.ui.main_window import MainWindow

#: why a save without a reviewer profile writes nothing (status bar and measurementsSaveFailed)
NO_OBSERVER = ("set your reviewer profile first (Review \u203a Reviewer profile\u2026): the measurement report "
               "names the person who measured")

def _headless() -> bool:
    """No one to ask (offscreen platform, tests): never a modal dialog."""
    from PySide6.QtGui import QGuiApplication

    return QGuiApplication.platformName() in ("offscreen", "minimal")


class ViewerCommands(QObject):
    """Commands on the current viewport of *window*."""

    keyImageSaved = Signal(str, str)  # path of the KOS, one-line message (sent / kept / local)
    keyImageFailed = Signal(str)
    measurementsSaved = Signal(str, str)  # path of the measurement SR, one-line message
    measurementsSaveFailed = Signal(str)
    measurementsLoaded = Signal(str, int)  # study instance UID, number of measurements drawn again

    def __init__(self, window: MainWindow):
        super().__init__(window)
        self.main_window = window
        self._attached: set[int] = set()  # viewports already wired (by id; forgotten when destroyed)
        self.tag_browser: Any = None
        self.last_key_image: Path | None = None
        #: every measurement of the window (shared by its viewports), on its image and frame
        self.marks: list[Mark] = []
        #: studies whose measurement SRs were read (or are being read)
        self._loaded_studies: set[str] = set()
        #: study -> our latest measurement SR (a new save amends it)
        self.latest_report: dict[str, Path] = {}
        #: study -> measurements read back that are not drawn on an image (kept in an amendment)
        self._undrawn: dict[str, list[Any]] = {}
        #: studies whose latest measurement SR is an amendment (the window says "amended")
        self.amended_studies: set[str] = set()
        #: study -> the marks our saved measurement SR holds: one no longer on screen was removed by the
        #: user, and the study's measurements are unsaved until an amendment without it is written
        self._in_record: dict[str, list[Mark]] = {}
        #: study -> marks read from another party's SR (a scanner's): this viewer never amends those
        self._from_others: dict[str, list[Mark]] = {}
        #: removed marks already told about in the status bar (by id: said once)
        self._told_removed: set[int] = set()
        #: f(count) -> "save" | "discard" | "cancel": asked when unsaved measurements would be lost
        self.ask_save: Callable[[int], str] = self._ask_save_dialog
        #: f() -> the measurer's name once a reviewer profile is set, "" when not: asked before a save when
        #: there is no profile (the report names the person who measured)
        self.ask_profile: Callable[[], str] = self._ask_profile_dialog

    def _say(self, text: str, ms: int = 8000) -> None:
        self.main_window.statusBar().showMessage(text, ms)

    # ----------------------------------------------------------------- key images (15.3)
    def mark_key_image(self, title: str = "of-interest") -> bool:
        """Write a KOS naming the frame on screen (in the background), list it, mark it, send it."""
        from mdtviewer.workflows import key_images

        vp = self.main_window.current_viewport()
        inst = vp.instance if vp is not None else None
        if inst is None or vp.loaded is None or vp.loaded.error:
            self._say("Key image: no image on screen.")
            self.keyImageFailed.emit("no image on screen")
            return False
        frame = vp.frame_index + 1 if vp.n_frames > 1 else None
        path, uid, study = inst.path, inst.sop_instance_uid, inst.study_instance_uid
        # the person marking it, as every record names them: the reviewer profile (not the name remembered
        # for the last review's author); none set: the document names no person observer
        observer = self.observer()

        def job(_task: tasks.Task) -> tuple[str, str]:
            from mdtviewer.dicom.reader import read_dataset

            head = read_dataset(path, stop_before_pixels=True)
            written = key_images.write([key_images.KeyFrame(head, frame)], title, observer=observer)
            node = key_images.configured_node()
            sent = "kept on this computer (no PACS chosen for reviews)"
            if node:
                try:
                    sent = key_images.send(written, node)
                except Exception as exc:  # noqa: BLE001 - the file is safe locally; the reason is shown
                    sent = f"{node}: not sent ({tasks.describe_error(exc)[0]})"
            return str(written), sent

        label = key_images.TITLES[title][1]
        self._say(f"Saving key image ({label})\u2026", 3000)
        tasks.run(self, job, name="key-image", lane="key-image",
                  on_result=lambda r: self._on_key_image(r, uid, study, frame, label),
                  on_error=self._on_key_image_failed, expected=(OSError, ValueError))
        return True

    def _on_key_image(self, result: object, uid: str, study: str, frame: int | None, label: str) -> None:
        written, sent = cast("tuple[str, str]", result)
        self.last_key_image = Path(written)
        w = self.main_window
        w.browser.set_key_uids(set(w.browser.key_uids) | {uid})
        w.report_panel.add_study(study)
        w.report_panel.refresh()
        where = f" frame {frame}" if frame else ""
        msg = f"Key image{where} saved ({label}); {sent}"
        self._say(msg, 10000)
        self.keyImageSaved.emit(written, msg)

    def _on_key_image_failed(self, reason: str) -> None:
        self._say(f"Key image not saved: {reason}", 15000)
        self.keyImageFailed.emit(reason)

    # ----------------------------------------------------------------- tag browser (15.6)
    def open_tag_browser(self) -> Any:
        """Show the DICOM tags of the instance on screen (header read on a worker)."""
        from mdtviewer.ui.dialogs.tag_browser import TagBrowser

        vp = self.main_window.current_viewport()
        inst = vp.instance if vp is not None else None
        if self.tag_browser is None:
            self.tag_browser = TagBrowser(self.main_window, privacy=self.main_window.privacy)
        tb = self.tag_browser
        tb.set_privacy(self.main_window.privacy)
        if inst is None:
            self._say("DICOM tags: no image on screen.")
        else:
            tb.load(inst.path, "" if self.main_window.privacy else Path(inst.path).name)
        tb.show()
        tb.raise_()
        return tb

    def set_privacy(self, on: bool) -> None:
        if self.tag_browser is not None:
            self.tag_browser.set_privacy(on)

    # ----------------------------------------------------------------- window/level presets (15.6)
    def window_preset(self, name: str) -> bool:
        """Apply a grey-image preset to the current viewport: the grid's presets on the image's real range
        (:meth:`mdtviewer.ui.viewer.grid.ViewportGrid.window_preset`), refused with the reason on colour."""
        return bool(self.main_window.grid.window_preset(name))

    # ----------------------------------------------------------------- full screen (15.6)
    def set_full_screen(self, on: bool) -> None:
        """Full screen without an MDT session (F11); the menus stay."""
        w = self.main_window
        if on and not w.isFullScreen():
            self._was_maximised = w.isMaximized()
            w.showFullScreen()
        elif not on and w.isFullScreen():
            w.showMaximized() if getattr(self, "_was_maximised", False) else w.showNormal()
        a = w.action("view.full_screen")
        if a.isChecked() != bool(on):
            a.blockSignals(True)
            a.setChecked(bool(on))
            a.blockSignals(False)

    # ----------------------------------------------------------------- measuring tools (15.1, 15.2)
    def attach_viewport(self, vp: Any) -> None:
        """A viewport of the window draws into the shared marks and shows the study's saved ones."""
        key = id(vp)
        if key in self._attached:
            return
        self._attached.add(key)
        vp.destroyed.connect(lambda *_a: self._attached.discard(key))
        vp.marks = self.marks
        vp.seriesShown.connect(self._on_series_shown)
        vp.marksChanged.connect(self._on_marks_changed)

    def set_tool(self, tool: str) -> None:
        """Measure with *tool* (measure.TOOLS) in every viewport: measure mode on, the hint in the status bar."""
        if tool not in TOOLS:
            raise ValueError(f"unknown measuring tool {tool!r}")
        w = self.main_window
        w.set_measure_mode(True)
        for v in w.grid.all_viewports():
            v.set_tool(tool)
        self._say(f"{TOOL_HINTS[tool]}; outside a calibrated region it is refused with the reason", 10000)

    def measure_key(self, on: bool) -> None:
        """M (Tools › Measure distance), as in Horos/Weasis: the distance tool.  Pressed while another tool is
        active it chooses the distance tool (measuring stays on); only when distance is already the tool does
        it switch measuring off (QA2 #14).  *on*: the action's new checked state."""
        w = self.main_window
        vp = w.current_viewport()
        tool = vp.tool if vp is not None else "distance"
        if on or (w.measure_mode and tool != "distance"):
            self.set_tool("distance")  # measuring on with the distance tool (re-checks the action)
            return
        w.set_measure_mode(False)

    def undo(self) -> bool:
        """Ctrl+Z: the last click of a tool being drawn, else the last measurement of the current viewport."""
        vp = self.main_window.current_viewport()
        if vp is not None and vp.undo():
            return True
        self._say("Nothing to undo in this viewport.", 4000)
        return False

    def unsaved(self) -> list[Mark]:
        """Measurements with a value, and annotations, not yet written to a measurement SR."""
        return [m for m in self.marks if m.to_save and not m.saved and not m.read_only]

    def removed(self, study: str | None = None) -> list[Mark]:
        """Measurements and annotations our saved measurement SR holds that the user deleted or undid (of
        *study*, default every study): the record still has them until an amendment without them is saved."""
        here = {id(m) for m in self.marks}
        studies = [study] if study is not None else list(self._in_record)
        return [m for st in studies for m in self._in_record.get(st, []) if id(m) not in here]

    def unsaved_count(self) -> int:
        """What the save question counts: new measurements, and saved ones removed since."""
        return len(self.unsaved()) + len(self.removed())

    def _on_marks_changed(self, _vp: Any = None) -> None:
        gone = [m for m in self.removed() if id(m) not in self._told_removed]
        here = {id(m) for m in self.marks}
        others = [m for ms in self._from_others.values() for m in ms
                  if id(m) not in here and id(m) not in self._told_removed]
        self._told_removed.update(id(m) for m in gone + others)
        if gone:
            self._say(f"{len(gone)} saved measurement(s) removed: the report still holds them until you save "
                      "(Ctrl+S writes an amendment without them)", 10000)
        elif others:
            self._say(f"{len(others)} measurement(s) of another party's report hidden on screen: that report "
                      "is not changed by this viewer", 10000)

    def observer(self) -> str:
        """Who measured, as the measurement report names them (Person Observer Name): the reviewer profile's
        name, as for sign-off (``workflows.reviewer_profile``); "" when no profile is set.  Never the computer
        account: an account name ("root") is not a person in the patient's record (QA2 #4)."""
        from mdtviewer.workflows import reviewer_profile

        profile = reviewer_profile.load()
        return profile.name.strip() if profile is not None else ""

    def _ask_profile_dialog(self) -> str:
        """No reviewer profile yet: the profile form (Review › Reviewer profile…); the name it saved, or ""
        when cancelled.  Headless (offscreen, tests) nobody can answer: "" (the save is refused, with the
        reason in the status bar), never a modal dialog that blocks."""
        if _headless():
            return ""
        from mdtviewer.ui.review.profile_dialog import ReviewerProfileDialog

        dlg = ReviewerProfileDialog(self.main_window)
        dlg.setWindowTitle("Who is measuring? (reviewer profile)")
        if dlg.exec() != ReviewerProfileDialog.DialogCode.Accepted:
            return ""
        return self.observer()

    def save_measurements(self) -> bool:
        """Write the unsaved measurements of each study as a TID 1500 SR (amending ours), then send it; a
        study whose saved measurements were removed gets an amendment without them."""
        todo = self.unsaved()
        gone = self.removed()
        if not todo and not gone:
            self._say("No new measurements to save.", 5000)
            return False
        studies = list(dict.fromkeys([m.study_instance_uid for m in todo] + [m.study_instance_uid for m in gone]))
        observer = self.observer() or self.ask_profile()
        if not observer:  # nothing written: the report must name the person who measured, not the account
            self._say(f"Measurements not saved: {NO_OBSERVER}", 15000)
            self.measurementsSaveFailed.emit(NO_OBSERVER)
            return False
        started = False
        for study in studies:
            # ours only: another party's measurements and annotations stay in their own SR (read-only here)
            marks = [m for m in self.marks if m.study_instance_uid == study and m.to_save and not m.read_only]
            removed = len(self.removed(study))
            if not marks and not [s for s in self._undrawn.get(study, []) if s.kind != "ratio"]:
                # a measurement report holds at least one item (TID 1500): the earlier one cannot be emptied
                self._say(f"Not saved: every measurement of this study's report was removed, and a measurement "
                          f"report cannot be empty; the saved report still holds {removed}", 15000)
                self.measurementsSaveFailed.emit("a measurement report cannot be emptied")
                continue
            for m in marks:
                m.saved = True  # being saved: not asked about, nor saved twice, meanwhile (undone on failure)
            self._save_study(study, marks, observer, removed)
            started = True
        return started

    def _save_study(self, study: str, marks: list[Mark], observer: str, removed: int = 0) -> None:
        from mdtviewer.workflows import key_images, measurement_files

        old = self.latest_report.get(study)
        undrawn = [s for s in self._undrawn.get(study, []) if s.kind != "ratio"]
        paths: dict[str, str] = {}
        st = self.main_window.study(study)
        for inst in st.instances() if st is not None else []:
            paths[inst.sop_instance_uid] = str(inst.path)
        for m in marks:
            if m.path:
                paths.setdefault(m.sop_instance_uid, m.path)
        items = [(m.sop_instance_uid, m.frame, m.kind, m.value, m.unit, m.points, m.graphic, dict(m.extra),
                  m.source) for m in marks if not m.is_annotation]
        notes = [(m.sop_instance_uid, m.frame, m.kind, m.points, m.note, m.source) for m in marks if m.is_annotation]

        def job(_task: tasks.Task) -> tuple[str, str]:
            from mdtviewer.dicom.reader import read_dataset
            from mdtviewer.sr.measurement_report import SavedAnnotation, SavedMeasurement

            heads: dict[str, Any] = {}

            def head(uid: str) -> Any:
                if uid not in heads:
                    if uid not in paths:
                        raise ValueError(f"the measured image {uid} is not among the study's files")
                    heads[uid] = read_dataset(paths[uid], stop_before_pixels=True)
                return heads[uid]

            saved: list[Any] = []
            for uid, frame, kind, value, unit, points, graphic, extra, source in items:
                if source is not None:  # read back from our last report: kept as it was
                    head(uid)
                    saved.append(source)
                    continue
                ds = head(uid)
                saved.append(SavedMeasurement(
                    kind=kind, value=float(value), unit=unit, sop_instance_uid=uid, frame=frame,
                    points=tuple(points), graphic=graphic, side=measurement_files.side_of_image(ds),
                    extra=extra, images=((uid, frame),)))
            for s in undrawn:
                for uid, _f in s.images:
                    head(uid)
                saved.append(s)
            annotations: list[Any] = []
            for uid, frame, kind, points, note, source in notes:
                head(uid)
                annotations.append(source if source is not None else
                                   SavedAnnotation(kind, tuple(points), note, uid, frame))
            if old is not None and old.exists():
                written = measurement_files.amend(old, saved, heads.values(), observer, annotations=annotations)
            else:
                written = measurement_files.save(saved, heads.values(), observer, annotations=annotations)
            node = key_images.configured_node()
            sent = "kept on this computer (no PACS chosen for reviews)"
            if node:
                try:
                    sent = measurement_files.send(written, node)
                except Exception as exc:  # noqa: BLE001 - the file is safe locally; the reason is shown
                    sent = f"{node}: not sent ({tasks.describe_error(exc)[0]})"
            return str(written), sent

        self._say("Saving measurements\u2026", 3000)
        tasks.run(self, job, name="save-measurements", lane="measurements",
                  on_result=lambda r: self._on_saved(r, study, marks, old, removed),
                  on_error=lambda reason: self._on_save_failed(reason, marks), expected=(OSError, ValueError))

    def _on_saved(self, result: object, study: str, marks: list[Mark], old: Path | None, removed: int = 0) -> None:
        written, sent = cast("tuple[str, str]", result)
        for m in marks:
            m.saved = True
        self.latest_report[study] = Path(written)
        # what the record holds now (a mark removed while this was written is still in it: still unsaved)
        self._in_record[study] = list(marks)
        w = self.main_window
        w.report_panel.add_study(study)
        w.report_panel.refresh()
        what = "amended (the earlier report is kept)" if old is not None else "saved"
        gone = f", {removed} removed" if removed else ""
        msg = f"{len(marks)} measurement(s) {what} in the study{gone}; {sent}"
        self._say(msg, 10000)
        self.measurementsSaved.emit(written, msg)

    def _on_save_failed(self, reason: str, marks: list[Mark] | None = None) -> None:
        for m in marks or []:
            m.saved = False  # still to be saved: asked about again
        self._say(f"Measurements not saved: {reason}", 15000)
        self.measurementsSaveFailed.emit(reason)

    def _ask_save_dialog(self, count: int) -> str:
        from PySide6.QtGui import QGuiApplication
        from PySide6.QtWidgets import QMessageBox

        if QGuiApplication.platformName() in ("offscreen", "minimal"):
            return "save"  # nobody to ask (headless run): keep the measurements rather than lose them

        box = QMessageBox(QMessageBox.Icon.Question, "Unsaved measurements",
                          f"{count} measurement(s) are not saved in the study. Save them now?",
                          QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                          | QMessageBox.StandardButton.Cancel, self.main_window)
        answer = box.exec()
        return {QMessageBox.StandardButton.Save: "save", QMessageBox.StandardButton.Discard: "discard"}.get(
            QMessageBox.StandardButton(answer), "cancel")

    def offer_save(self) -> bool:
        """Before a study is closed or changed: save, discard or cancel unsaved measurements.

        False means the user cancelled (keep the study open).  A save started here runs to its end
        before the window's workers are joined.
        """
        todo = self.unsaved()
        gone = self.removed()
        if not todo and not gone:
            return True
        answer = self.ask_save(len(todo) + len(gone))
        if answer == "cancel":
            return False
        if answer == "save":
            if not self.observer() and not self.ask_profile():
                # no person to name in the report: nothing written; asked interactively, the study stays open
                # so nothing is lost (headless nobody can answer: it closes, the reason in the status bar)
                self._say(f"Measurements not saved: {NO_OBSERVER}", 15000)
                self.measurementsSaveFailed.emit(NO_OBSERVER)
                return _headless()
            self.save_measurements()
            tasks.wait(self, 30.0)  # the file is written before the window's workers are joined
        else:
            for m in todo:
                m.saved = True  # discarded: not asked again
            dropped = {id(m) for m in gone}  # the report keeps them: the user chose not to amend it
            for study, ms in self._in_record.items():
                self._in_record[study] = [m for m in ms if id(m) not in dropped]
        return True

    def _on_series_shown(self, vp: Any) -> None:
        study = vp.study_uid
        if not study or study in self._loaded_studies:
            return
        self._loaded_studies.add(study)
        from mdtviewer.infra import paths as infra_paths

        ours = infra_paths.store_dir() / "reviews" / study
        st = self.main_window.study(study)
        image_paths: dict[str, str] = {}
        files: list[tuple[str, bool]] = []
        for inst in st.instances() if st is not None else []:
            image_paths[inst.sop_instance_uid] = str(inst.path)
            if inst.kind == "sr" and not inst.withdrawn:  # a withdrawn measurement report is not drawn
                files.append((str(inst.path), False))

        withdrawn = dict(st.rejected) if st is not None else {}

        def job(_task: tasks.Task) -> list[tuple[str, bool, Any]]:
            from mdtviewer.workflows.measurement_files import read_study_measurements

            found = dict(files)  # path -> ours: every SR of the study the index holds, and our store's
            if ours.is_dir():
                found.update((str(p), True) for p in sorted(ours.glob("*.dcm")))
            # the current version of each measurement SR (an amendment replaces the one it names), whoever
            # wrote it: what the Measurements tab lists is what is drawn (QA2 #2)
            current = read_study_measurements(list(found), withdrawn=withdrawn)
            by_uid: dict[str, tuple[str, bool, Any]] = {}  # one file reached by two paths is drawn once (ours)
            for p, d in current.documents:
                got = (str(p), found.get(str(p), False), d)
                if d.sop_instance_uid not in by_uid or got[1]:
                    by_uid[d.sop_instance_uid] = got
            return list(by_uid.values())

        tasks.run(self, job, name="read-measurements", lane="measurements",
                  on_result=lambda r: self._on_measurements_read(study, image_paths, r))

    def _on_measurements_read(self, study: str, image_paths: dict[str, str], result: object) -> None:
        docs = cast("list[tuple[str, bool, Any]]", result)
        n = 0
        for path, is_ours, doc in docs:
            if is_ours:
                cur = self.latest_report.get(study)
                if cur is None or Path(path).name > cur.name:  # names carry the time written
                    self.latest_report[study] = Path(path)
            for s in doc.measurements:
                m = mark_from_saved(s, image_paths.get(s.sop_instance_uid, ""), study)
                if m is None:
                    if is_ours:
                        self._undrawn.setdefault(study, []).append(s)
                    continue
                m.source = s if is_ours else None
                m.read_only = not is_ours
                self.marks.append(m)
                (self._in_record if is_ours else self._from_others).setdefault(study, []).append(m)
                n += 1
            # arrows and text of every current measurement SR are drawn: a trainer's annotation made on another
            # workstation shows at the MDT (QA2 #2); another party's stay read-only, in their SR only
            for a in doc.annotations:
                am = mark_from_annotation(a, image_paths.get(a.sop_instance_uid, ""), study)
                if am is None:
                    continue
                if not is_ours:
                    am.source, am.read_only = None, True
                self.marks.append(am)
                (self._in_record if is_ours else self._from_others).setdefault(study, []).append(am)
                n += 1
            if doc.amended:
                self.amended_studies.add(study)
        for v in self.main_window.grid.all_viewports():
            v.update()
        if n:
            latest = " (latest version of an amended report)" if study in self.amended_studies else ""
            self._say(f"{n} saved measurement(s) of this study shown on their images{latest}", 6000)
        self.measurementsLoaded.emit(study, n)


__all__ = ["ViewerCommands"]
