"""Image viewing: viewports, the study browser, overlays, playback and the cine bar under each viewport,
the layout grid (with window/level presets), measurement
tools, and the frame service that decodes through :mod:`mdtviewer.ui.tasks`."""
