"""Help › Keyboard and mouse and Help › About: the keys come from the action table, never a copy."""

from __future__ import annotations

import html

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QMessageBox, QTextBrowser, QVBoxLayout, QWidget

#: the mouse gestures (keys are listed from :data:`mdtviewer.ui.actions.ACTIONS`)
MOUSE_HELP: tuple[tuple[str, str], ...] = (
    ("Left-drag", "window/level (grey images); draws a line in measure mode (M)"),
    ("Right-drag or Ctrl+wheel", "zoom"),
    ("Middle-drag", "pan"),
    ("Wheel", "next/previous frame (or image of a stack)"),
    ("Double-click", "maximise the viewport / restore the layout"),
    ("Drag a series from Studies", "show it in that viewport"),
    ("Drop files or folders", "open them"),
)


def _table(rows: list[tuple[str, ...]]) -> str:
    # the key or gesture first, in bold: that is what the eye looks for
    cells = "".join(
        "<tr>"
        + "".join(
            "<td style='padding:2px 14px 2px 0'>"
            f"{'<b>' + html.escape(c) + '</b>' if k == 0 else html.escape(c)}</td>"
            for k, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f"<table>{cells}</table>"


def keys_html(shortcut_rows: list[tuple[str, str, str]]) -> str:
    """The Keyboard and mouse page for *shortcut_rows* ((menu, command, keys), as the window lists them)."""
    keys = [(k, f"Layout {t}" if t[:1].isdigit() else t, menu) for menu, t, k in shortcut_rows]
    return (
        "<h3>Mouse</h3>"
        + _table(list(MOUSE_HELP))
        + "<h3>Keys</h3>"
        + _table(keys)
        + "<p>Privacy (F9) hides patient identifiers everywhere on screen until switched off.</p>"
    )


def keys_dialog(parent: QWidget, shortcut_rows: list[tuple[str, str, str]]) -> QDialog:
    """The Keyboard and mouse dialog (not yet shown)."""
    dlg = QDialog(parent)
    dlg.setObjectName("keysDialog")
    dlg.setWindowTitle("Keyboard and mouse")
    text = QTextBrowser(dlg)
    text.setHtml(keys_html(shortcut_rows))
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, dlg)
    buttons.rejected.connect(dlg.reject)
    lay = QVBoxLayout(dlg)
    lay.addWidget(text)
    lay.addWidget(buttons)
    dlg.resize(620, 700)
    return dlg


def show_about(parent: QWidget) -> None:
    from mdtviewer import __version__
    from mdtviewer.infra import paths

    QMessageBox.about(
        parent,
        "About mdtviewer",
        f"<h3>mdtviewer {__version__}</h3>"
        "<p>DICOM review of vascular ultrasound: cines and stills beside the report, reviews and "
        "sign-off saved as DICOM SR in the patient's study.</p>"
        "<p><b>Not for primary diagnosis unless validated locally.</b></p>"
        f"<p>Data folder: {html.escape(str(paths.home()))}<br>"
        "Keyboard and mouse: F1. Licence: MIT.</p>",
    )
