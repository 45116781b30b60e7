"""Work around a reference-counting bug of PySide6 6.12.0 on Python < 3.12.

Measured here (PySide6-Essentials 6.12.0, CPython 3.11): every call of a Qt
method that returns ``void`` (``QPainter.setPen``, ``drawLine``,
``QWidget.update``, ``QLabel.setText``, ``QTimer.setInterval`` ...) gives back
``None`` without taking a new reference, so each call *decrements* None's
reference count.  A window playing four cines makes thousands of such calls a
second; after a few seconds None's count reaches zero and the interpreter
aborts with "Fatal Python error: none_dealloc".

Python 3.12 made None immortal, which hides the bug there.  Here we do the
same by hand: None is never freed by CPython anyway, so giving it a reference
count no program can exhaust (2**60) changes nothing else.  True and False
get the same treatment (a bool-returning call leaks them too: "bool_dealloc"
at exit after a long cine run).  Applied once, on
import of the UI, only on CPython < 3.12.
"""

from __future__ import annotations

import ctypes
import sys

_BIG = 1 << 60
_applied = False


def none_refcount_leaks() -> bool:
    """True if a void Qt call leaks a reference of None (the bug is present)."""
    from PySide6.QtCore import QObject

    o = QObject()
    before = sys.getrefcount(None)
    for _ in range(50):
        o.setObjectName("x")
    return sys.getrefcount(None) < before - 25


def make_none_immortal() -> bool:
    """Give None an inexhaustible reference count on CPython < 3.12; returns True if applied."""
    global _applied
    if _applied:
        return True
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    # PyObject starts with Py_ssize_t ob_refcnt (release builds).  True/False
    # suffer the same way from some bool-returning calls (seen at interpreter exit).
    for singleton in (None, True, False):
        ctypes.c_ssize_t.from_address(id(singleton)).value += _BIG
    _applied = True
    return True


make_none_immortal()
