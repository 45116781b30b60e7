"""Viewer commands of issue 15 that the action table names as ``commands.*``: key images (K, Shift+K),
the DICOM tag browser (Ctrl+T), window/level presets for grey images (F6-F8) and full screen (F11).

They act on the window's current viewport through its public API and run
every file read or write on a worker (``ui.tasks``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from PySide6.QtCore import QObject, Signal

from mdtviewer.ui import tasks

if TYPE_CHECKING:
    from mdtviewer.ui.main_window import MainWindow

#: grey-image window/level presets: name -> (label, centre factor, width factor) of the image's own
#: window (the file's Window Center/Width, else the full 8-bit range 0-255, ultrasound's grey depth)
WINDOW_PRESETS: dict[str, tuple[str, float, float]] = {
    "full": ("Full range", 1.0, 1.0),
    "contrast": ("High contrast", 1.0, 0.5),
    "soft": ("Soft (low contrast)", 1.0, 1.5),
}


class ViewerCommands(QObject):
    """Commands on the current viewport of *window*."""

    keyImageSaved = Signal(str, str)  # path of the KOS, one-line message (sent / kept / local)
    keyImageFailed = Signal(str)

    def __init__(self, window: MainWindow):
        super().__init__(window)
        self.window = window
        self.tag_browser: Any = None
        self.last_key_image: Path | None = None

    def _say(self, text: str, ms: int = 8000) -> None:
        self.window.statusBar().showMessage(text, ms)

    # ----------------------------------------------------------------- key images (15.3)
    def mark_key_image(self, title: str = "of-interest") -> bool:
        """Write a KOS naming the frame on screen (in the background), list it, mark it, send it."""
        from mdtviewer.workflows import key_images

        vp = self.window.current_viewport()
        inst = vp.instance if vp is not None else None
        if inst is None or vp.loaded is None or vp.loaded.error:
            self._say("Key image: no image on screen.")
            self.keyImageFailed.emit("no image on screen")
            return False
        frame = vp.frame_index + 1 if vp.n_frames > 1 else None
        path, uid, study = inst.path, inst.sop_instance_uid, inst.study_instance_uid
        observer = ""
        try:
            from mdtviewer.infra import settings

            observer = str((settings.get_section("reviewer") or {}).get("name") or "")
        except (OSError, ValueError):
            pass

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
        w = self.window
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

        vp = self.window.current_viewport()
        inst = vp.instance if vp is not None else None
        if self.tag_browser is None:
            self.tag_browser = TagBrowser(self.window, privacy=self.window.privacy)
        tb = self.tag_browser
        tb.set_privacy(self.window.privacy)
        if inst is None:
            self._say("DICOM tags: no image on screen.")
        else:
            tb.load(inst.path, "" if self.window.privacy else Path(inst.path).name)
        tb.show()
        tb.raise_()
        return tb

    def set_privacy(self, on: bool) -> None:
        if self.tag_browser is not None:
            self.tag_browser.set_privacy(on)

    # ----------------------------------------------------------------- window/level presets (15.6)
    def window_preset(self, name: str) -> bool:
        """Apply a grey-image preset to the current viewport (refused with the reason on colour images)."""
        label, kc, kw = WINDOW_PRESETS[name]
        vp = self.window.current_viewport()
        li = vp.loaded if vp is not None else None
        if li is None or li.error:
            self._say("Window/level: no image on screen.")
            return False
        if li.is_color:
            self._say("Window/level presets apply to grey images; this image is in colour.")
            return False
        c, w = li.default_window or (127.5, 256.0)
        vp.set_window_level(c * kc, w * kw)
        self._say(f"Window/level: {label} (C {c * kc:g} W {w * kw:g})", 4000)
        return True

    # ----------------------------------------------------------------- full screen (15.6)
    def set_full_screen(self, on: bool) -> None:
        """Full screen without an MDT session (F11); the menus stay."""
        w = self.window
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


__all__ = ["WINDOW_PRESETS", "ViewerCommands"]
