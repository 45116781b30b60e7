"""mdtviewer: a DICOM review viewer for vascular ultrasound.

The package root and every module outside :mod:`mdtviewer.ui` are Qt-free:
they run headless and are tested headless.  Only :mod:`mdtviewer.ui` imports
PySide6 or pyqtgraph.
"""

__version__ = "0.1.0"
