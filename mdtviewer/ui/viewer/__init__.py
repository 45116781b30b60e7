"""Image viewing: viewports, the study browser, overlays, playback, the layout grid, measurement
tools, and the frame service that decodes through :mod:`mdtviewer.ui.tasks`."""
