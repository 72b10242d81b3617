"""Crashes in the viewer reach one handler: a dialog on the GUI thread with a short message and
"Copy details", a traceback in the rotating log, no PHI anywhere, and the app keeps running.

The hooks are installed by ``app.run`` (tested through it) or by a fixture, never at import:
pytest-qt's own capture of unhandled Qt exceptions must keep working for every other test.
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

import pytest

pytest.importorskip("pytestqt", reason="pytest-qt is needed for the Qt tests")

from PySide6 import QtCore, QtWidgets  # noqa: E402

from cxrviewer import logsetup  # noqa: E402
from cxrviewer.core import phi  # noqa: E402
from cxrviewer.core.synthetic import chest_like, make_dataset, write_dataset  # noqa: E402

NAME = "Haverbrook^Ottoline^M"
PID = "MRN-4409172"
BIRTH = "19470611"
ACCESSION = "ACC55120"
SECRETS = ("haverbrook", "ottoline", PID.lower(), BIRTH, "1947-06-11", ACCESSION.lower())


def _no_phi(text: str, what: str) -> None:
    low = text.lower()
    for s in SECRETS:
        assert s not in low, f"{s!r} leaked into the {what}:\n{text}"


@pytest.fixture()
def phi_study(tmp_path) -> Path:
    """Two images of a patient with known PHI, in a folder named after the patient (as real
    exports often are)."""
    phi.clear()
    folder = tmp_path / "HAVERBROOK_OTTOLINE"
    folder.mkdir()
    for k in range(2):
        ds = make_dataset(chest_like(48, 40, seed=k), patient_name=NAME, patient_id=PID, instance_number=k + 1,
                          extra={"PatientBirthDate": BIRTH, "AccessionNumber": ACCESSION})
        write_dataset(ds, folder / f"{PID}_{k}.dcm")
    yield folder
    phi.clear()


def _log_text(path: Path) -> str:
    for h in logging.getLogger().handlers:
        h.flush()
    return path.read_text(encoding="utf-8")


@pytest.fixture()
def logfile(tmp_path):
    path = logsetup.setup_logging(logging.INFO, log_file=tmp_path / "log" / "cxrviewer.log", stderr_level=None)
    yield path
    logsetup.teardown_logging()


@pytest.fixture()
def crash_handler(qtbot, logfile):
    """The app's crash handler, installed for one test (pytest-qt's hook comes back after)."""
    from cxrviewer.ui.shell.crash_dialog import install_crash_handler

    before = sys.excepthook
    reporter, uninstall = install_crash_handler(log_file=str(logfile))
    assert sys.excepthook is not before
    yield reporter
    uninstall()
    assert sys.excepthook is before
    if reporter.dialog is not None:
        reporter.dialog.close()
    reporter.deleteLater()


@pytest.fixture()
def window(qtbot):
    from cxrviewer.ui.app import create_window

    w = create_window()
    qtbot.addWidget(w)
    w.resize(900, 600)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.shutdown()
    w.close()


def _open(qtbot, w, path) -> None:
    with qtbot.waitSignals([w.scanFinished, w.imageLoaded], timeout=20000, order="none"):
        w.open_path(path)


def _crash_dialogs() -> list[QtWidgets.QWidget]:
    return [w for w in QtWidgets.QApplication.topLevelWidgets()
            if w.objectName() == "crashDialog" and w.isVisible()]


def test_exception_in_a_slot_shows_one_dialog_logs_it_and_the_app_keeps_running(
        qtbot, window, crash_handler, logfile, phi_study):
    _open(qtbot, window, phi_study)
    img = window.current_image
    assert img is not None and img.header.patient_id == PID

    def bad_slot():
        h = window.current_image.header
        raise RuntimeError(f"overlay failed for {h.patient_name} ({h.patient_id}, born {h.patient_birth_date}) "
                           f"in {window.current_image.path}")

    with qtbot.waitSignal(crash_handler.shown, timeout=5000) as blk:
        QtCore.QTimer.singleShot(0, bad_slot)
    dlg = blk.args[0]
    assert _crash_dialogs() == [dlg]
    assert dlg.thread() is QtWidgets.QApplication.instance().thread()
    short = dlg.message_label.text()
    assert "RuntimeError" in short and "overlay failed" in short and "[PHI]" in short
    _no_phi(short, "dialog message")
    assert "Traceback" in dlg.details and "bad_slot" in dlg.details
    _no_phi(dlg.details, "dialog details")

    dlg.copy_button.click()
    copied = QtWidgets.QApplication.clipboard().text()
    assert copied == dlg.details and "Traceback" in copied
    _no_phi(copied, "clipboard")
    dlg.show_details_button.click()
    assert dlg.details_edit.isVisible() and dlg.details_edit.toPlainText() == dlg.details

    text = _log_text(logfile)
    assert "unhandled exception (main thread)" in text and "Traceback" in text and "RuntimeError" in text
    _no_phi(text, "log")

    dlg.close_button.click()
    qtbot.waitUntil(lambda: not _crash_dialogs(), timeout=3000)
    # still alive and working: the other image loads
    assert window.isVisible()
    first = window.current_image.path
    with qtbot.waitSignal(window.imageLoaded, timeout=10000):
        window.act_next.trigger()
    assert window.current_image.path != first


def test_exceptions_in_worker_threads_reach_the_same_dialog_on_the_gui_thread(
        qtbot, window, crash_handler, logfile, phi_study):
    _open(qtbot, window, phi_study)
    gui_thread = QtWidgets.QApplication.instance().thread()
    where = []
    crash_handler.shown.connect(lambda _d: where.append(QtCore.QThread.currentThread() is gui_thread))

    def python_worker():
        raise KeyError(f"no series for {NAME}")

    class QtWorker(QtCore.QRunnable):
        def run(self):  # a QThreadPool task, like the image and thumbnail loaders
            raise ValueError(f"decode failed for {PID}")

    with qtbot.waitSignal(crash_handler.shown, timeout=5000):
        t = threading.Thread(target=python_worker, name="scan-worker")
        t.start()
        t.join()
    with qtbot.waitSignal(crash_handler.shown, timeout=5000):
        QtCore.QThreadPool.globalInstance().start(QtWorker())
    assert where == [True, True]
    dialogs = _crash_dialogs()
    assert len(dialogs) == 1, "one dialog, not one per error"
    dlg = dialogs[0]
    assert dlg.count == 2 and "1 more errors" in dlg.more_label.text()
    assert "ValueError" in dlg.message_label.text()
    shorts = [s for s, _ in crash_handler.reports]
    assert "thread scan-worker" in shorts[0] and "KeyError" in shorts[0]
    for s, d in crash_handler.reports:
        _no_phi(s + d, "report")
    text = _log_text(logfile)
    assert "unhandled exception (thread scan-worker)" in text and "KeyError" in text and "ValueError" in text
    assert text.count("Traceback") >= 2
    _no_phi(text, "log")
    assert window.isVisible()


def test_a_failing_crash_dialog_is_logged_not_raised(qtbot, crash_handler, logfile, monkeypatch):
    """The reporter must not crash: a failure inside it lands in the log, nothing escapes."""
    monkeypatch.setattr(crash_handler, "crashed", None, raising=False)
    try:
        raise OSError("disk gone")
    except OSError:
        sys.excepthook(*sys.exc_info())
    text = _log_text(logfile)
    assert "OSError: disk gone" in text and "crash callback failed" in text


def test_a_dialog_that_cannot_be_built_stops_showing_but_keeps_logging(qtbot, crash_handler, logfile, monkeypatch):
    from cxrviewer.ui.shell import crash_dialog

    def broken(*_a, **_kw):
        raise RuntimeError("no dialog today")

    monkeypatch.setattr(crash_dialog, "CrashDialog", broken)
    for k in range(3):
        QtCore.QTimer.singleShot(0, lambda k=k: 1 / 0)
    qtbot.waitUntil(lambda: len(crash_handler.reports) == 3, timeout=5000)
    qtbot.wait(50)
    assert crash_handler.broken and len(crash_handler.reports) == 3  # no loop
    text = _log_text(logfile)
    assert text.count("ZeroDivisionError") >= 3 and text.count("crash dialog failed") == 1
    assert not _crash_dialogs()


def test_no_hooks_at_import_and_pytest_qt_capture_still_works(qtbot, window):
    """Building the window installs nothing: pytest-qt still sees unhandled slot exceptions."""
    hook_before = sys.excepthook
    import cxrviewer.ui.app  # noqa: F401
    import cxrviewer.ui.shell.crash_dialog  # noqa: F401

    assert sys.excepthook is hook_before
    assert logsetup._installed.get("hooks") is None or sys.excepthook not in logsetup._installed["hooks"]
    with qtbot.captureExceptions() as caught:
        QtCore.QTimer.singleShot(0, lambda: 1 / 0)
        qtbot.wait(50)
    assert len(caught) == 1 and caught[0][0] is ZeroDivisionError
    assert not _crash_dialogs()


def test_app_run_sets_up_logging_and_the_crash_dialog(qtbot, monkeypatch, tmp_path, phi_study):
    """Through the real entry point: ``app.run`` opens the file, a slot raises with the
    patient's data in the message, the dialog shows, the default log file holds the
    traceback without PHI, and ``run`` returns normally."""
    from cxrviewer.ui import app as app_mod
    from cxrviewer.ui.shell.main_window import MainWindow

    log_dir = tmp_path / "userlogs"
    monkeypatch.setenv("CXRVIEWER_LOG_DIR", str(log_dir))
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored by monkeypatch
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    qapp = app_mod.get_app()
    seen = {}

    def fake_exec(*_a):
        wins = [w for w in QtWidgets.QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        assert len(wins) == 1
        w = seen["window"] = wins[0]
        try:
            qtbot.waitUntil(lambda: w.current_image is not None, timeout=20000)

            def bad():
                raise RuntimeError(f"paint failed for {w.current_image.header.patient_name}")

            QtCore.QTimer.singleShot(0, bad)
            qtbot.waitUntil(lambda: bool(_crash_dialogs()), timeout=5000)
            dlg = _crash_dialogs()[0]
            seen["short"], seen["details"] = dlg.message_label.text(), dlg.details
            dlg.close()
        finally:
            w.shutdown()
            w.close()
        return 0

    monkeypatch.setattr(type(qapp), "exec", fake_exec)
    # the native crash trace is tested in a subprocess: here it would take pytest's faulthandler
    import cxrviewer.ui.shell.crash_dialog as crash_dialog

    native = []
    monkeypatch.setattr(crash_dialog, "enable_native_crash_log", lambda *a: native.append(a))
    try:
        assert app_mod.run(str(phi_study)) == 0
        assert native == [()]
        assert "RuntimeError" in seen["short"] and "[PHI]" in seen["short"]
        _no_phi(seen["short"] + seen["details"], "dialog")
        log_file = log_dir / logsetup.LOG_NAME
        text = _log_text(log_file)
        assert "Traceback" in text and "paint failed for [PHI]" in text
        _no_phi(text, "log")
    finally:
        logsetup.teardown_logging()
        if "window" in seen:
            seen["window"].deleteLater()


def test_native_crash_leaves_a_trace_without_values(tmp_path):
    """A segfault never reaches Python's hooks; ``native-crash.log`` gets the stacks (code
    locations only: a local holding a patient name does not appear)."""
    import subprocess
    import textwrap

    code = textwrap.dedent(f"""
        import faulthandler
        from cxrviewer.ui.shell.crash_dialog import enable_native_crash_log
        enable_native_crash_log({str(tmp_path)!r})

        def show_patient(name):
            faulthandler._sigsegv()

        show_patient({NAME!r})
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    text = (tmp_path / "native-crash.log").read_text(encoding="utf-8")
    assert "cxrviewer started" in text and "Fatal Python error" in text and "show_patient" in text
    _no_phi(text, "native crash log")
