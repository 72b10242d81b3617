"""Start the viewer: QApplication, dark theme, main window.

Importing this module imports Qt and pyqtgraph only; torch is loaded later by the AI worker,
so the window appears first (target: shown within 2.5 s).
"""

from __future__ import annotations

import os
import sys

from PySide6 import QtCore, QtGui, QtWidgets

import cxrviewer.ui  # noqa: F401 - applies the PySide6 refcount guard before any signal fires

#: Called with the new :class:`~cxrviewer.ui.shell.main_window.MainWindow` before it is shown
#: (other layers, e.g. the AI panel, register themselves here).
WINDOW_HOOKS: list = []


def get_app(argv: list[str] | None = None) -> QtWidgets.QApplication:
    """The one ``QApplication`` (created with the dark theme on first use)."""
    app = QtWidgets.QApplication.instance()
    _no_matplotlib_scan()
    if app is None:
        QtCore.QCoreApplication.setOrganizationName("cxrviewer")
        QtCore.QCoreApplication.setApplicationName("cxrviewer")
        app = QtWidgets.QApplication(list(argv) if argv is not None else [sys.argv[0]])
        from cxrviewer.ui.shell.theme import apply_dark_theme

        apply_dark_theme(app)
        icon = _icon()
        if icon is not None:
            app.setWindowIcon(icon)
    return app  # type: ignore[return-value]


def _no_matplotlib_scan() -> None:
    """pyqtgraph's histogram gradient menu looks for extra matplotlib colormaps when it is
    built, importing ``matplotlib.pyplot`` (~1 s of a 2.5 s startup budget). Skip that scan;
    the menu's matplotlib submenus still load on demand."""
    try:
        from pyqtgraph.widgets import ColorMapMenu

        ColorMapMenu.find_mpl_leftovers = lambda: []
    except (ImportError, AttributeError):  # another pyqtgraph version: nothing to skip
        pass


def _icon() -> QtGui.QIcon | None:
    from cxrviewer.paths import resource

    p = resource("icons", "cxrviewer.png")
    return QtGui.QIcon(str(p)) if p.is_file() else None


def create_window(path: str | os.PathLike | None = None, sample: bool = False):
    """Build (not show) the main window, open ``path`` or the sample study."""
    get_app()
    from cxrviewer.ui.shell.main_window import MainWindow

    w = MainWindow()
    for hook in WINDOW_HOOKS:
        hook(w)
    if sample:
        w.open_sample()
    elif path:
        w.open_path(path)
    return w


def run(path: str | os.PathLike | None = None, sample: bool = False) -> int:
    """Show the window and run the event loop; returns the exit code.

    Logging goes to the rotating, PHI-scrubbed log file; unhandled exceptions (GUI thread and
    workers) are logged and shown in one crash dialog while the app keeps running.
    """
    from cxrviewer.logsetup import setup_logging
    from cxrviewer.ui.shell.crash_dialog import enable_native_crash_log, install_crash_handler

    try:
        log_file: str | None = str(setup_logging())
        enable_native_crash_log()
    except OSError as e:  # an unwritable log dir must not keep the viewer from starting
        sys.stderr.write(f"cxrviewer: no log file ({e})\n")
        log_file = None
    app = get_app()
    install_crash_handler(app, log_file=log_file)
    w = create_window(path, sample)
    w.show()
    if w.ai is not None:
        # the model (and torch) load in the AI worker once the event loop runs: window first
        QtCore.QTimer.singleShot(0, w.ai.start)
    return app.exec()

