"""The one place unhandled exceptions end up in the GUI: a dialog with a short message and a
"Copy details" button, while the app keeps running.

:func:`cxrviewer.logsetup.install_excepthooks` routes exceptions from the GUI thread (Qt slots
go through ``sys.excepthook``), from ``QThread``/``QRunnable`` workers (also
``sys.excepthook``, on the worker's thread) and from Python threads (``threading.excepthook``)
to a callback, after logging them (PHI-scrubbed) to the rotating log file. Here that callback
is :meth:`CrashReporter.report`: it may run on any thread, so it only emits a signal; the
connection is queued, so the dialog is always built on the GUI thread, after the failing
slot has returned (widgets must never be created from a worker).

Install it from ``app.run`` (the real app), never at import: pytest-qt installs its own
``sys.excepthook`` per test to fail tests on unhandled Qt exceptions.
"""

from __future__ import annotations

import faulthandler
import platform
from collections.abc import Callable
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

#: Native crash trace (segfault/abort in Qt or a C extension) beside the log file.
NATIVE_LOG_NAME = "native-crash.log"
#: Start a fresh native crash trace file when the old one is bigger than this.
NATIVE_LOG_MAX_BYTES = 1 << 20

#: Shown when more errors arrive while the dialog is open: one dialog, never a cascade
#: (an exception in a paint event repeats on every repaint).
_MORE = "{n} more errors since; details below are the latest."


def environment_text() -> str:
    """A few lines on versions for the details (no paths, no user or host names)."""
    try:
        from importlib.metadata import version

        ours = version("cxrviewer")
    except Exception:  # noqa: BLE001 - a frozen bundle may have no metadata
        ours = "unknown"
    import PySide6

    return (f"cxrviewer {ours}; Python {platform.python_version()}; PySide6 {PySide6.__version__}; "
            f"Qt {QtCore.qVersion()}; {platform.system()} {platform.release()} {platform.machine()}")


class CrashDialog(QtWidgets.QDialog):
    """Short message, scrubbed details (read-only, collapsed), "Copy details" and "Close".

    Non-modal: the app keeps running behind it and the user can go on working.
    """

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("crashDialog")
        self.setWindowTitle("cxrviewer: unexpected error")
        self.count = 0
        self.message_label = QtWidgets.QLabel(self)
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.hint_label = QtWidgets.QLabel(
            "The viewer keeps running; the error was written to the log file. If it happens again, "
            "please send the details (they hold no patient names, IDs or birth dates).", self)
        self.hint_label.setWordWrap(True)
        self.more_label = QtWidgets.QLabel("", self)
        self.more_label.hide()
        self.details_edit = QtWidgets.QPlainTextEdit(self)
        self.details_edit.setReadOnly(True)
        self.details_edit.setLineWrapMode(QtWidgets.QPlainTextEdit.LineWrapMode.NoWrap)
        self.details_edit.setMinimumHeight(160)
        self.details_edit.hide()
        self.show_details_button = QtWidgets.QPushButton("Show details", self)
        self.show_details_button.setCheckable(True)
        self.show_details_button.toggled.connect(self._toggle_details)
        self.copy_button = QtWidgets.QPushButton("Copy details", self)
        self.copy_button.setToolTip("Copy the error report (no patient data) to the clipboard")
        self.copy_button.clicked.connect(self.copy_details)
        self.close_button = QtWidgets.QPushButton("Close", self)
        self.close_button.setDefault(True)
        self.close_button.clicked.connect(self.close)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.show_details_button)
        buttons.addStretch(1)
        buttons.addWidget(self.copy_button)
        buttons.addWidget(self.close_button)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(self.message_label)
        lay.addWidget(self.hint_label)
        lay.addWidget(self.more_label)
        lay.addWidget(self.details_edit, 1)
        lay.addLayout(buttons)
        self.resize(560, 200)
        self.details = ""

    def set_report(self, short: str, details: str, log_file: str | None = None) -> None:
        """Show ``short``; keep ``details`` (already scrubbed) for the details box and the clipboard."""
        self.count += 1
        self.message_label.setText(short)
        self.details = f"{short}\n{environment_text()}\n\n{details.rstrip()}\n"
        if log_file:
            self.hint_label.setToolTip(f"Log file: {log_file}")
        self.details_edit.setPlainText(self.details)
        if self.count > 1:
            self.more_label.setText(_MORE.format(n=self.count - 1))
            self.more_label.show()

    def _toggle_details(self, on: bool) -> None:
        self.details_edit.setVisible(on)
        self.show_details_button.setText("Hide details" if on else "Show details")
        self.adjustSize()

    def copy_details(self) -> None:
        QtGui.QGuiApplication.clipboard().setText(self.details)


class CrashReporter(QtCore.QObject):
    """Receives crash reports from any thread and shows them in one :class:`CrashDialog`.

    Create it on the GUI thread. ``report`` is thread-safe: it only emits ``crashed``, whose
    queued connection runs :meth:`_show` on the GUI thread.
    """

    crashed = QtCore.Signal(str, str)
    #: emitted (GUI thread) with the dialog once it shows a report (tests, automation)
    shown = QtCore.Signal(object)

    def __init__(self, parent: QtCore.QObject | None = None, log_file: str | None = None) -> None:
        super().__init__(parent)
        self.log_file = log_file
        self.dialog: CrashDialog | None = None
        self.reports: list[tuple[str, str]] = []
        self.broken = False
        self.crashed.connect(self._show, QtCore.Qt.ConnectionType.QueuedConnection)

    def report(self, short: str, details: str) -> None:
        """The :func:`~cxrviewer.logsetup.install_excepthooks` callback (any thread)."""
        self.crashed.emit(short, details)

    def _show(self, short: str, details: str) -> None:
        self.reports.append((short, details))
        if self.broken:
            return  # already logged by the excepthook; no dialog loop
        try:
            self._show_dialog(short, details)
        except Exception:  # noqa: BLE001 - a failing dialog must not re-enter itself forever
            self.broken = True
            import logging

            logging.getLogger("cxrviewer").exception("crash dialog failed; errors are only logged from now on")

    def _show_dialog(self, short: str, details: str) -> None:
        dlg = self.dialog
        if dlg is None or not dlg.isVisible():
            app = QtWidgets.QApplication.instance()
            parent = app.activeWindow() if app is not None else None
            if parent is not None and parent.objectName() == "crashDialog":
                parent = parent.parentWidget()
            dlg = self.dialog = CrashDialog(parent)
            dlg.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
            dlg.destroyed.connect(self._forget)
        dlg.set_report(short, details, self.log_file)
        dlg.show()
        dlg.raise_()
        self.shown.emit(dlg)

    def _forget(self, *_args) -> None:
        self.dialog = None


def install_crash_handler(parent: QtCore.QObject | None = None,
                          log_file: str | None = None) -> tuple[CrashReporter, Callable[[], None]]:
    """Route unhandled exceptions (GUI thread, Qt workers, Python threads) to the log and to
    one crash dialog. Call on the GUI thread once the ``QApplication`` exists.

    Returns the reporter and a function that restores the previous hooks.
    """
    from cxrviewer import logsetup

    app = QtWidgets.QApplication.instance()
    if app is None:
        raise RuntimeError("install_crash_handler needs a QApplication")
    reporter = CrashReporter(parent if parent is not None else app,
                             log_file=log_file or str(logsetup.log_path()))
    uninstall = logsetup.install_excepthooks(reporter.report)
    return reporter, uninstall


_native_log = None  # kept open for the life of the process: faulthandler writes to its fd


def enable_native_crash_log(log_dir: str | Path | None = None) -> Path:
    """Write Python stacks of all threads to ``native-crash.log`` in the log dir on a fatal
    native error (segfault, abort), which never reaches the Python excepthooks.

    The trace holds code locations only (file, line, function), never values, so no PHI.
    Not for tests: pytest's own faulthandler writes to stderr.
    """
    global _native_log
    from cxrviewer.paths import user_log_dir

    path = Path(log_dir) / NATIVE_LOG_NAME if log_dir is not None else user_log_dir() / NATIVE_LOG_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    big = path.is_file() and path.stat().st_size > NATIVE_LOG_MAX_BYTES
    fh = open(path, "w" if big else "a", encoding="utf-8")  # noqa: SIM115 - must stay open
    fh.write(f"--- cxrviewer started; {environment_text()}\n")
    fh.flush()
    faulthandler.enable(fh, all_threads=True)
    if _native_log is not None:
        _native_log.close()
    _native_log = fh
    return path
