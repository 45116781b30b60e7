"""What a user does in the window, for the pytest-qt tests: open files and wait for the first frame,
and click or drag on an image at image coordinates (the viewport maps them to the screen)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPoint, Qt


def open_and_show(qtbot, win, paths: list[Path]):
    """Open *paths* as File › Open does; the current viewport once its first frame is on screen."""
    with qtbot.waitSignal(win.scanFinished, timeout=60_000):
        win.open_paths([str(p) for p in paths])
    vp = win.current_viewport()
    qtbot.waitUntil(lambda: vp.loaded is not None and vp.shown_frame() is not None, timeout=20_000)
    return vp


def at(vp, x: float, y: float) -> QPoint:
    """The widget point of image pixel (*x*, *y*)."""
    w = vp.to_widget(x, y)
    return QPoint(round(w.x()), round(w.y()))


def click(qtbot, vp, x: float, y: float) -> None:
    qtbot.mouseClick(vp, Qt.MouseButton.LeftButton, pos=at(vp, x, y))


def drag(qtbot, vp, a: tuple[float, float], b: tuple[float, float]) -> None:
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=at(vp, *a))
    qtbot.mouseMove(vp, at(vp, (a[0] + b[0]) / 2, (a[1] + b[1]) / 2))
    qtbot.mouseMove(vp, at(vp, *b))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=at(vp, *b))
