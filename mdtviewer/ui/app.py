"""Entry points of the review window.

``mdtviewer [PATH...] [--demo] [--privacy]`` opens the window (:func:`main`).
``mdtviewer open PATH... [--layout RxC] [--privacy] [--screenshot FILE.png]``
(:func:`main_open`) fills the viewports of a layout with the image series
found in PATHs, in the order given, beside the report panel; with
``--screenshot`` it waits until the frames on screen are decoded and painted,
saves the window as PNG and exits (0, or 1 with the reason when nothing could
be shown).  It works on the offscreen platform (``QT_QPA_PLATFORM=offscreen``).

Every feature of the window is imported when the window is: a part that
cannot be imported (a broken or incomplete installation) stops the start with
the error on stderr and exit status 3, never a window with a menu missing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

    from mdtviewer.ui.main_window import MainWindow

#: how long `open --screenshot` waits for scans and decodes before giving up
SCREENSHOT_TIMEOUT_S = 120.0
#: exit status when a part of the viewer cannot be imported
EXIT_BROKEN_INSTALL = 3


class StartupError(Exception):
    """The window cannot be built: ``reason`` says which part failed and how."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def import_pydicom_lean() -> None:
    """Import pydicom without ``requests`` and ``tqdm`` (~50-90 ms of start-up, issue 12.5).

    pydicom 3.0 imports ``requests`` only for :mod:`pydicom.data.download` (fetching its own test
    files, which the viewer never does), and falls back to urllib without it.  ``requests`` is
    hidden for that one import and visible again afterwards, for whatever needs it (DICOMweb).
    Called once, at start-up, before any other thread runs.
    """
    hide = ("requests", "tqdm")  # tqdm: its download progress bar (~15 ms)
    if "pydicom" in sys.modules or any(name in sys.modules for name in hide):
        return
    for name in hide:
        sys.modules[name] = None  # type: ignore[assignment]  # `import requests` raises ImportError
    try:
        import pydicom  # noqa: F401
    finally:
        for name in hide:
            del sys.modules[name]


def load_window() -> tuple[Any, Any]:
    """``(MainWindow, app_instance)``; :class:`StartupError` when a part of the window fails to import.

    The failure is logged with its traceback (the log file is named in the reason).
    """
    try:
        import_pydicom_lean()
        from mdtviewer.ui.main_window import MainWindow, app_instance
    except ImportError as exc:
        import logging

        from mdtviewer.infra import logsafe

        where = ""
        try:
            where = str(logsafe.setup_logging())
        except OSError:
            pass
        logging.getLogger(__name__).error("start-up failed: a part of the viewer cannot be imported", exc_info=exc)
        name = exc.name or "a module"
        reason = f"cannot start: {name} failed to import ({type(exc).__name__}: {exc})"
        if where:
            reason += f"; details in {where}"
        raise StartupError(reason) from exc
    return MainWindow, app_instance


def _ensure_platform() -> None:
    """Without a display, use the offscreen platform rather than abort."""
    if sys.platform.startswith("linux") and not os.environ.get("QT_QPA_PLATFORM"):
        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
            os.environ["QT_QPA_PLATFORM"] = "offscreen"


def _layout(text: str) -> tuple[int, int]:
    try:
        r, c = text.lower().replace("×", "x").split("x")
        rows, cols = int(r), int(c)
    except ValueError:
        raise argparse.ArgumentTypeError(f"layout must look like 2x2, not {text!r}") from None
    if not (1 <= rows <= 4 and 1 <= cols <= 4):
        raise argparse.ArgumentTypeError("layout rows and columns must be 1-4")
    return rows, cols


def _process_until(app, cond, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        app.processEvents()
        if cond():
            return True
        time.sleep(0.001)  # 1 ms: the moment of the paint is measured (benchmarks/ui_open.py), 5 ms added up to 5 ms
    app.processEvents()
    return bool(cond())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mdtviewer", description="DICOM review viewer for vascular ultrasound.")
    parser.add_argument("paths", nargs="*", help="files, folders or DICOMDIRs to open")
    parser.add_argument("--demo", action="store_true", help="open the bundled demo study")
    parser.add_argument("--privacy", action="store_true", help="start with patient identifiers hidden (F9 toggles)")
    args = parser.parse_args(argv)
    if not _has_display():
        # An interactive window on the offscreen platform would run forever unseen.
        import shlex

        exe = _command()
        again = " ".join([exe, *(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))])
        print(
            "mdtviewer: no display to open the window on (DISPLAY/WAYLAND_DISPLAY not set). "
            f"Run it on a desktop session, or on a virtual screen: xvfb-run -a {again} "
            "(Debian packages xvfb and xauth, which packaging/install-debian.sh installs); "
            f"or take a picture without a screen: {exe} open PATH... --screenshot FILE.png",
            file=sys.stderr,
        )
        return 1
    from mdtviewer.infra import audit, logsafe

    try:
        MainWindow, app_instance = load_window()
    except StartupError as exc:
        print(f"mdtviewer: {exc.reason}", file=sys.stderr)
        return EXIT_BROKEN_INSTALL
    logsafe.setup_logging()
    audit.record("app-start")
    try:
        app = app_instance()
        _quit_on_signals(app)
        win = MainWindow(privacy=args.privacy)
        win.show()
        if args.demo and not win.open_demo():
            print("mdtviewer: the demo study is not installed (mdtviewer/resources/demo)", file=sys.stderr)
        if args.paths:
            missing = [p for p in args.paths if not Path(p).exists()]
            for p in missing:
                print(f"mdtviewer: no such file or folder: {p}", file=sys.stderr)
            win.open_paths([p for p in args.paths if Path(p).exists()])
        return int(app.exec())
    finally:
        audit.record("app-stop")


def _quit_on_signals(app) -> None:
    """Ctrl+C in the terminal or a SIGTERM closes the window the normal way
    (pending writes flushed, app-stop audited) instead of killing the process."""
    import signal

    from PySide6.QtCore import QTimer

    def close_and_quit() -> None:
        app.closeAllWindows()
        app.quit()

    def on_signal(*_args) -> None:
        # Python runs this between any two bytecodes of the UI thread: inside a background job's result
        # callback, a paint, a slot.  Closing there made the window's shutdown wait for the very job whose
        # callback it interrupted (each wait bounded, together over 30 s under load: a SIGTERM test failed
        # once in five suite runs).  The close runs from the event loop itself, at its next turn.
        QTimer.singleShot(0, app, close_and_quit)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    # Python runs signal handlers only when it gets control: tick now and then
    tick = QTimer(app)
    tick.timeout.connect(lambda: None)
    tick.start(200)


def _command() -> str:
    """How to run mdtviewer again from here: the console script of this environment
    (``.venv/bin/mdtviewer`` from the checkout), as a path the shell can run."""
    from shlex import quote

    exe = Path(sys.executable).parent / "mdtviewer"
    if not exe.is_file():
        return f"{quote(sys.executable)} -m mdtviewer"
    try:
        rel = exe.relative_to(Path.cwd())
    except ValueError:
        return quote(str(exe))
    return quote(str(rel) if rel.parts[0] != rel.name else f"./{rel}")


def _has_display() -> bool:
    if os.environ.get("QT_QPA_PLATFORM", "").split(":")[0] not in ("", "xcb", "wayland"):
        return True  # the user chose a platform (offscreen for tests, eglfs, vnc ...)
    if not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _neg(text: str) -> tuple[int, ...]:
    """Sort key that orders date/time strings newest first."""
    return tuple(-ord(ch) for ch in text) + (0,)


def _series_in_order(win: MainWindow, paths: list[str]) -> list:
    """Image series found under each PATH, in the order the PATHs were given."""
    from mdtviewer.ui.viewer.browser import image_instances

    order: list = []
    seen: set[str] = set()
    all_series = [(st, se) for st in win.studies() for se in win.image_series(st)]
    for p in paths:
        root = Path(p).resolve()
        hits = []
        for st, se in all_series:
            if se.series_instance_uid in seen:
                continue
            files = [Path(i.path).resolve() for i in image_instances(se)]
            if any(
                f == root or root in f.parents or (root.name.upper() == "DICOMDIR" and root.parent in f.parents)
                for f in files
            ):
                # newest study first, then series number (as a reader would lay them out)
                key = (
                    _neg(st.study_date + st.study_time),
                    se.series_number is None,
                    se.series_number or 0,
                    min(map(str, files)),
                )
                hits.append((key, se))
        for _k, se in sorted(hits, key=lambda t: t[0]):
            seen.add(se.series_instance_uid)
            order.append(se)
    return order


def _settle_report_panel(app: QApplication, win: MainWindow) -> None:
    """Wait for the report list, show the study's first report, wait until it is rendered."""
    rp = win.report_panel
    state = {"listed": False, "shown": False}
    rp.loaded.connect(lambda: state.__setitem__("listed", True))
    rp.documentShown.connect(lambda _uid: state.__setitem__("shown", True))
    status = rp.status_label
    _process_until(app, lambda: state["listed"] or "Reading" not in status.text(), 10.0)
    entries = rp.entries()
    if entries and rp.current_entry() is None:
        first = next((e for e in entries if e.category in ("sr", "review", "pdf")), entries[0])
        uid = first.sop_instance_uid
        if uid and rp.show_instance(uid):
            _process_until(app, lambda: state["shown"], 10.0)


def _quiet_offscreen_notes() -> None:
    """Drop the offscreen plugin's "does not support propagateSizeHints()" note: it is not a problem of the
    user's files, and scripts read stderr for the reason a screenshot failed."""
    from PySide6.QtCore import qInstallMessageHandler

    def handler(_mode, _ctx, msg: str) -> None:
        if "propagateSizeHints" not in msg:
            print(msg, file=sys.stderr)

    qInstallMessageHandler(handler)


def main_open(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mdtviewer open",
        description="Open PATHs in a layout; optionally save a screenshot of the window and exit.",
    )
    parser.add_argument("paths", nargs="*", help="files, folders or DICOMDIRs, in viewport order")
    parser.add_argument("--demo", action="store_true", help="open the bundled demo study (as PATH would)")
    parser.add_argument(
        "--layout", type=_layout, default=None, help="RxC, e.g. 1x1, 1x2, 2x1, 2x2, 1x3 (default: by count)"
    )
    parser.add_argument("--privacy", action="store_true", help="hide patient identifiers")
    parser.add_argument("--screenshot", metavar="FILE.png", help="save the window as PNG once painted, then exit")
    parser.add_argument("--timeout", type=float, default=SCREENSHOT_TIMEOUT_S, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.demo:
        from mdtviewer.infra import paths as mdt_paths

        demo = mdt_paths.resources_dir() / "demo"
        if not demo.is_dir():
            print(f"mdtviewer open: the demo study is not installed ({demo})", file=sys.stderr)
            return EXIT_BROKEN_INSTALL
        args.paths = [*args.paths, str(demo)]
    if not args.paths:
        parser.error("give at least one PATH, or --demo")
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        print(f"mdtviewer open: no such file or folder: {missing[0]}", file=sys.stderr)
        return 2
    _ensure_platform()
    from mdtviewer.infra import audit

    audit.record("app-start", detail={"mode": "open"})
    try:
        return _open_window(args)
    finally:
        audit.record("app-stop", detail={"mode": "open"})


def _open_window(args: argparse.Namespace) -> int:
    try:
        MainWindow, app_instance = load_window()
    except StartupError as exc:
        print(f"mdtviewer open: {exc.reason}", file=sys.stderr)
        return EXIT_BROKEN_INSTALL
    _quiet_offscreen_notes()
    app = app_instance()
    win = MainWindow(privacy=args.privacy)
    win.autofill = False
    win.resize(1600, 900)
    win.show()
    t0 = time.perf_counter()
    win.open_paths(args.paths)
    if not _process_until(app, lambda: not win.is_scanning(), args.timeout):
        print("mdtviewer open: scanning did not finish in time", file=sys.stderr)
        return 1
    series = _series_in_order(win, args.paths)
    if not series:
        n_probs = win.problems.count()
        print(
            f"mdtviewer open: no displayable image series in the given paths ({n_probs} problem file(s))",
            file=sys.stderr,
        )
        for i in range(min(n_probs, 10)):
            print(f"  {win.problems.item(i).text()}", file=sys.stderr)
        return 1
    rows, cols = args.layout or {1: (1, 1), 2: (1, 2), 3: (1, 3)}.get(len(series), (2, 2))
    win.set_layout(rows, cols)
    for vp in win.viewports:
        vp.clear()
    for vp, se in zip(win.viewports, series):
        win.show_series(se.series_instance_uid, viewport=vp)
    win.set_current_viewport(win.viewports[0])
    win.report_panel.setVisible(True)
    shown = [vp for vp in win.viewports if vp.stack]
    ok = _process_until(app, lambda: all(vp.is_settled() for vp in shown), args.timeout)
    first_paint = time.perf_counter() - t0
    painted_epoch = time.time()  # taken here, when the frames are painted: not after the screenshot's extras
    if args.screenshot:
        _settle_report_panel(app, win)
        _process_until(app, lambda: all(win.browser.has_thumbnail(se.series_instance_uid) for se in series), 5.0)
        _process_until(app, lambda: False, 0.2)
    failed = [vp for vp in shown if vp.error]
    if os.environ.get("MDTVIEWER_BENCH"):
        # for benchmarks/ui_open.py: wall clock when every viewport had its frame painted
        print(f"painted-at-epoch {painted_epoch:.6f}")
        print(f"open-to-paint-seconds {first_paint:.3f}")
    if not args.screenshot:
        return int(app.exec())
    if not ok:
        print("mdtviewer open: frames were not decoded in time", file=sys.stderr)
        return 1
    if len(failed) == len(shown):
        # no viewport took a series at all (shown is empty): say so rather than index an empty list
        reason = failed[0].error if failed else "no series could be laid out in a viewport"
        print(f"mdtviewer open: nothing could be shown: {reason}", file=sys.stderr)
        return 1
    out = Path(args.screenshot)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not win.grab_png(out):
        print(f"mdtviewer open: could not write {out}", file=sys.stderr)
        return 1
    print(f"saved {out} ({len(shown) - len(failed)} viewport(s) painted)")
    win.close()
    return 0
