"""The Qt layer (PySide6 + pyqtgraph): main window, study browser, canvas, panels, dialogs.

Importing this package imports nothing: each module pulls in Qt itself. What needs no Qt
(export composition, corner text, heatmap colours) lives in :mod:`cxrviewer.render`, so the
headless ``cxrviewer export`` and ``selftest --no-gui`` never import this package.

It does apply :mod:`cxrviewer.ui._refcount_guard` (a PySide6 refcount bug on Python 3.11
that otherwise aborts the process after a few thousand signal emits).
"""

from cxrviewer.ui import _refcount_guard

_refcount_guard.apply()
