"""The Qt layer (PySide6 + pyqtgraph): main window, study browser, canvas, panels, dialogs.

Importing this package imports nothing: each module pulls in Qt itself, and
:mod:`cxrviewer.ui.export` and :mod:`cxrviewer.ui.overlay_text` need no Qt at all, so the
headless ``cxrviewer export`` runs without a display.
"""
