"""Qt user interface.  The only package that may import PySide6 or pyqtgraph."""

# PySide6 6.12.0 on CPython < 3.12 leaks a reference of None/True/False on
# every void Qt call, and the interpreter aborts after a few seconds of cine
# playback.  PySide6_Pdf exists only for 6.12, so we cannot pin an older Qt:
# the guard below makes those singletons' counts inexhaustible (see qtfix).
from . import qtfix  # noqa: F401
