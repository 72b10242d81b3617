"""Logging for the app: one rotating log file in the user log dir, scrubbed of patient data,
and one place where unhandled exceptions (GUI thread and worker threads) end up.

``setup_logging()`` once at start-up; ``install_excepthooks(callback)`` once the UI can show a
dialog (the callback receives a short message and the scrubbed details for "copy details").
Qt-free: the UI connects its dialog through the callback.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from cxrviewer.core import phi

LOG_NAME = "cxrviewer.log"
MAX_BYTES = 2 * 1024 * 1024
BACKUPS = 5
FORMAT = "%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"

_log = logging.getLogger("cxrviewer")

#: ``callback(short_message, details)`` as given to :func:`install_excepthooks`.
CrashCallback = Callable[[str, str], None]


class PhiFilter(logging.Filter):
    """Replace every registered patient identifier (:mod:`cxrviewer.core.phi`) by ``[PHI]``.

    Attached to handlers, so records from every logger (pydicom's included) are scrubbed
    before they are written. The message, its arguments and any traceback text are
    rendered and scrubbed here; the record then carries only the scrubbed text.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not lose the record
            msg = f"{record.msg!r} {record.args!r}"
        record.msg = phi.scrub(msg)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = phi.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = phi.scrub(record.stack_info)
        return True


def _not_file_detail(record: logging.LogRecord) -> bool:
    """Keep pydicom's own log records off the console: they describe what it tolerated in
    one file (pydicom logs each warning it issues), which the log file and that file's entry
    already hold (:mod:`cxrviewer.core.dicom_warnings`)."""
    return not (record.name == "pydicom" or record.name.startswith("pydicom."))


def log_path() -> Path:
    from cxrviewer.paths import user_log_dir

    return user_log_dir() / LOG_NAME


def _remove_handlers() -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_cxrviewer", False):
            root.removeHandler(h)
            h.close()


def teardown_logging() -> None:
    """Undo :func:`setup_logging`: close and remove its handlers, stop capturing warnings."""
    _remove_handlers()
    logging.captureWarnings(False)


def setup_logging(level: int = logging.INFO, *, log_file: str | Path | None = None,
                  stderr_level: int | None = logging.WARNING) -> Path:
    """Send the root logger to a rotating file (and warnings to stderr), scrubbed of PHI.

    Idempotent: calling it again replaces the handlers it installed before.
    Returns the log file's path.
    """
    path = Path(log_file) if log_file is not None else log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_handlers()
    root = logging.getLogger()
    fmt = logging.Formatter(FORMAT)
    fh = logging.handlers.RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS,
                                              encoding="utf-8", delay=True)
    handlers: list[logging.Handler] = [fh]
    if stderr_level is not None:
        sh = logging.StreamHandler(sys.stderr)
        sh.setLevel(stderr_level)
        sh.addFilter(_not_file_detail)
        handlers.append(sh)
    for h in handlers:
        h.setFormatter(fmt)
        h.addFilter(PhiFilter())
        h._cxrviewer = True  # type: ignore[attr-defined]
        root.addHandler(h)
    root.setLevel(min(level, root.level) if root.level else level)
    logging.captureWarnings(True)
    return path


def _describe(exc_type: type[BaseException], exc: BaseException | None, tb: TracebackType | None,
              where: str) -> tuple[str, str]:
    short = phi.scrub(f"{exc_type.__name__}: {exc}" if str(exc) else exc_type.__name__)
    details = phi.scrub("".join(traceback.format_exception(exc_type, exc, tb)))
    return f"Unexpected error ({where}). {short}", details


_installed: dict[str, object] = {}


def install_excepthooks(callback: CrashCallback | None = None) -> Callable[[], None]:
    """Route unhandled exceptions on the main thread (``sys.excepthook``, which Qt slots use)
    and in threads (``threading.excepthook``) to the log and to ``callback``.

    ``callback(short_message, details)`` gets PHI-scrubbed text; a failure inside it is
    logged, never re-raised. KeyboardInterrupt keeps Python's default handling.
    Returns a function that restores the previous hooks.
    """
    prev_sys, prev_thread = sys.excepthook, threading.excepthook

    def report(exc_type, exc, tb, where: str) -> None:
        _log.critical("unhandled exception (%s)", where, exc_info=(exc_type, exc, tb))
        if callback is None:
            return
        try:
            callback(*_describe(exc_type, exc, tb, where))
        except Exception:  # noqa: BLE001 - the crash reporter must not crash
            _log.exception("crash callback failed")

    def sys_hook(exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            prev_sys(exc_type, exc, tb)
            return
        report(exc_type, exc, tb, "main thread")

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread is not None else "a thread"
        report(args.exc_type, args.exc_value, args.exc_traceback, f"thread {name}")

    sys.excepthook = sys_hook
    threading.excepthook = thread_hook
    _installed["hooks"] = (sys_hook, thread_hook)

    def uninstall() -> None:
        if sys.excepthook is sys_hook:
            sys.excepthook = prev_sys
        if threading.excepthook is thread_hook:
            threading.excepthook = prev_thread

    return uninstall
