"""Model → Train / Refresh model…: train a model in a separate process and activate it.

The training runs as ``python -m training ... --json-progress`` in a :class:`QProcess`, so the
viewer stays responsive and a crash there (out of memory, a native fault) cannot take the viewer
down. The child prints one JSON object per epoch and one at the end on stdout; anything else it
prints (stdout text, stderr) goes to the log pane. Expected failures are one line on stderr with
exit code 2, which the dialog shows as the reason.

Cancel sends SIGTERM (Windows: a close request) and kills the process after
:data:`KILL_GRACE_MS`. Training writes ``checkpoint.pt`` atomically after every finished epoch,
so a cancelled run keeps the last finished epoch: Start again with the same output folder and
the run continues from there (``--resume``); the epoch that was in progress is lost.

Start is enabled only when the data field names usable data (both classes; checked from file
names and CSV rows, no pixels); a short ``--estimate-only`` child process then shows how long
the run would take on this machine before Start. Cancel is enabled only while a training runs,
Activate only after a run that finished with a model.

At the end the run's ``report.md`` is shown, and Activate installs the run's ``model/`` into the
registry (copied and verified in a background thread) and makes it active; the AI worker is then
asked to load it through the same path as Model → Models… → Activate.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from cxrviewer.ui.train.train_form import CHECKPOINT, TrainFormMixin
from cxrviewer.ui.train.train_support import (  # noqa: F401  (default_run_dir, training_command: re-exported)
    JsonChild,
    Publisher,
    default_run_dir,
    estimate_text,
    training_command,
    training_process,
)
from cxrviewer.ui.train.train_support import num as _num

#: after Cancel, how long the training process gets to exit before it is killed
KILL_GRACE_MS = 5000

TABLE_COLUMNS = ("Fold", "Epoch", "Train loss", "Val loss", "Val acc", "Val AUC", "LR", "s", "Best")


class TrainDialog(TrainFormMixin, QtWidgets.QDialog):
    """Pick data and parameters, run the training in a child process, show it live, activate.

    Parameters
    ----------
    init_model
        Model directory used for "Initialise from: the active model" (``None``: that choice is
        disabled).
    parent
        The main window (the dialog is modeless so the viewer stays usable).

    Signals
    -------
    epochReceived(dict)
        one ``{"event": "epoch", ...}`` object from the training process.
    runFinished(str, dict)
        the process ended: ``"done"`` (with the done event), ``"error"`` (``{"message"}``),
        ``"cancelled"`` or ``"crashed"`` (``{"message", "exit_code"}``).
    published(object)
        the run's model was installed and made the registry's active model (a ``ModelEntry``).
    activateRequested(str)
        emitted after ``published`` with the model's name: connect it to the AI worker's
        activation (``AiIntegration.activate``) so the viewer loads the new model.
    """

    epochReceived = QtCore.Signal(dict)
    runFinished = QtCore.Signal(str, dict)
    published = QtCore.Signal(object)
    activateRequested = QtCore.Signal(str)

    def __init__(self, init_model: str | os.PathLike | None = None,
                 parent: QtWidgets.QWidget | None = None, feedback=None) -> None:
        super().__init__(parent)
        #: ``() -> FeedbackSource | None``: the "Reader feedback" data source (handed in by the shell)
        self.feedback_provider = feedback
        self.setWindowTitle("Train / Refresh model")
        self.setModal(False)
        from cxrviewer.ui.common.screen import fit_to_screen

        fit_to_screen(self, QtCore.QSize(900, 760))  # its buttons stay on a 1280x720 screen
        self.init_model = None if init_model is None else os.fspath(init_model)
        self.process: QtCore.QProcess | None = None
        self.epochs: list[dict] = []
        self.done_event: dict | None = None
        self.status: str = "idle"  # idle, running, done, error, cancelled, crashed
        self.error_message: str | None = None
        self.entry = None  # the published ModelEntry
        self._cancelled = False
        self._out_buf = b""
        self._err_buf = b""
        self._stderr_lines: list[str] = []
        self._publisher: Publisher | None = None
        self.data_ok = False
        self.estimate: dict | None = None
        self.checker = JsonChild("--check-data", "data", self)
        self.checker.result.connect(self._on_data_checked)
        self.checker.failed.connect(lambda msg: self._on_data_checked({"ok": False, "message": msg}))
        self.estimator = JsonChild("--estimate-only", "estimate", self)
        self.estimator.result.connect(self._on_estimate)
        self.estimator.failed.connect(lambda msg: self.estimate_label.setText(f"Estimate unavailable: {msg}"))
        self._check_timer = QtCore.QTimer(self, singleShot=True, interval=300)
        self._check_timer.timeout.connect(self._check_data)
        self._estimate_timer = QtCore.QTimer(self, singleShot=True, interval=1500)
        self._estimate_timer.timeout.connect(self._run_estimate)
        self._kill_timer = QtCore.QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self._kill)
        self._build()

    # ------------------------------------------------------------------ widgets
    def _build(self) -> None:
        lay = QtWidgets.QVBoxLayout(self)
        self._build_form(lay)

        # -- live view: table + plot
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        self.table = QtWidgets.QTableWidget(0, len(TABLE_COLUMNS))
        self.table.setHorizontalHeaderLabels(list(TABLE_COLUMNS))
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        split.addWidget(self.table)
        self.plot = None
        try:
            import pyqtgraph as pg

            self.plot = pg.PlotWidget()
            self.plot.setLabel("bottom", "epoch")
            self.plot.addLegend(offset=(-10, 10))
            self.plot.showGrid(x=True, y=True, alpha=0.3)
            self._curves = {
                "train_loss": self.plot.plot([], [], pen=pg.mkPen("#4ea1ff", width=2), symbol="o", symbolSize=5, name="train loss"),
                "val_loss": self.plot.plot([], [], pen=pg.mkPen("#ffa94e", width=2), symbol="o", symbolSize=5, name="val loss"),
                "val_auc": self.plot.plot([], [], pen=pg.mkPen("#5fd35f", width=2), symbol="t", symbolSize=6, name="val AUC"),
            }
            split.addWidget(self.plot)
        except Exception:  # the plot is a nicety; the table carries the same numbers
            self._curves = {}
        split.setSizes([520, 380])

        self.tabs = QtWidgets.QTabWidget()
        self.tabs.addTab(split, "Progress")
        self.log = QtWidgets.QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.log.setFont(QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont))
        self.tabs.addTab(self.log, "Log")
        self.report = QtWidgets.QTextBrowser()
        self.report.setOpenExternalLinks(True)
        self.tabs.addTab(self.report, "Report")
        lay.addWidget(self.tabs, 1)

        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("epoch %v/%m")
        lay.addWidget(self.progress)
        self.status_label = QtWidgets.QLabel("Choose the data and press Start.")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.status_label)

        bb = QtWidgets.QDialogButtonBox()
        self.start_button = bb.addButton("Start", QtWidgets.QDialogButtonBox.ActionRole)
        self.cancel_button = bb.addButton("Cancel training", QtWidgets.QDialogButtonBox.ActionRole)
        self.activate_button = bb.addButton("Activate", QtWidgets.QDialogButtonBox.ActionRole)
        self.activate_button.setToolTip("Install the trained model in the registry, make it active and load it")
        self.close_button = bb.addButton(QtWidgets.QDialogButtonBox.Close)
        self.start_button.setEnabled(False)  # until the data field names usable data
        self.start_button.setToolTip("Enabled once the data holds Normal and Abnormal images")
        self.start_button.clicked.connect(lambda _=False: self.start())
        self.cancel_button.clicked.connect(lambda _=False: self.cancel())
        self.activate_button.clicked.connect(lambda _=False: self.activate())
        bb.rejected.connect(self.reject)
        self.cancel_button.setEnabled(False)
        self.activate_button.setEnabled(False)
        lay.addWidget(bb)

    # ------------------------------------------------------------------ running
    @property
    def running(self) -> bool:
        return self.process is not None and self.process.state() != QtCore.QProcess.ProcessState.NotRunning

    def start(self) -> bool:
        """Start the training process; False (and the reason shown) when the form is incomplete."""
        if self.running:
            return False
        if self._check_timer.isActive():  # Start right after an edit: check that text first
            self._check_timer.stop()
            self._check_data()
        if self.checker.running:
            self.checker.wait(60_000)
        if not self.data_ok:
            self._set_status(self.data_info.text() or "Choose the training data (a folder or a CSV).", error=True)
            return False
        if self.feedback is not None:  # the readers' calls: exported into the run folder
            err = self.write_feedback_for_run()
            if err:
                self._set_status(err, error=True)
                return False
        try:
            args = self.arguments()
        except ValueError as e:
            self._set_status(str(e), error=True)
            return False
        self._estimate_timer.stop()
        self.estimator.stop()  # its CPU belongs to the training now
        self._reset_run()
        proc = training_process(self, args)
        proc.readyReadStandardOutput.connect(self._read_stdout)
        proc.readyReadStandardError.connect(self._read_stderr)
        proc.finished.connect(self._on_finished)
        proc.errorOccurred.connect(self._on_process_error)
        self.process = proc
        self.status = "running"
        self.log.appendPlainText("$ " + " ".join(shlex.quote(a) for a in [proc.program(), *proc.arguments()]))
        self._set_status("Starting the training process…")
        self._set_running_ui(True)
        self.progress.setRange(0, self.epochs_spin.value())
        self.progress.setValue(0)
        self.tabs.setCurrentIndex(0)
        proc.start()
        return True

    def _reset_run(self) -> None:
        self.epochs.clear()
        self.done_event = None
        self.error_message = None
        self.entry = None
        self._cancelled = False
        self._out_buf = self._err_buf = b""
        self._stderr_lines = []
        self.table.setRowCount(0)
        self.report.clear()
        for c in self._curves.values():
            c.setData([], [])

    def _set_running_ui(self, running: bool) -> None:
        self.form_box.setEnabled(not running)
        self.start_button.setEnabled(not running and self.data_ok)
        self.cancel_button.setEnabled(running)
        if running:
            self.activate_button.setEnabled(False)

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet("color: #ff6b6b;" if error else "")

    def cancel(self) -> None:
        """Stop the training: terminate now, kill after :data:`KILL_GRACE_MS`."""
        if not self.running:
            return
        self._cancelled = True
        self.cancel_button.setEnabled(False)
        self._set_status("Stopping the training process…")
        self.process.terminate()
        self._kill_timer.start(KILL_GRACE_MS)

    def _kill(self) -> None:
        if self.running:
            self.log.appendPlainText("(the process did not stop in time: killed)")
            self.process.kill()

    def shutdown(self, wait_ms: int = 3000) -> None:
        """Stop a running training and wait for it (the viewer is closing)."""
        if self.running:
            self._cancelled = True
            self.process.terminate()
            if not self.process.waitForFinished(wait_ms):
                self.process.kill()
                self.process.waitForFinished(wait_ms)
        if self._publisher is not None:
            self._publisher.wait(30000)
        self.estimator.stop()
        self.checker.stop()

    # ------------------------------------------------------------------ output
    def _read_stdout(self) -> None:
        self._out_buf += bytes(self.process.readAllStandardOutput())
        *lines, self._out_buf = self._out_buf.split(b"\n")
        for raw in lines:
            self._stdout_line(raw.decode("utf-8", "replace").rstrip("\r"))

    def _read_stderr(self) -> None:
        self._err_buf += bytes(self.process.readAllStandardError())
        *lines, self._err_buf = self._err_buf.split(b"\n")
        for raw in lines:
            self._stderr_line(raw.decode("utf-8", "replace"))

    def _stderr_line(self, line: str) -> None:
        line = line.split("\r")[-1].rstrip()  # progress bars redraw with \r (terminals only)
        if not line:
            return
        self._stderr_lines = (self._stderr_lines + [line])[-50:]
        self.log.appendPlainText(line)

    def _stdout_line(self, line: str) -> None:
        if line.startswith("{"):
            try:
                ev = json.loads(line)
            except ValueError:
                ev = None
            if isinstance(ev, dict) and ev.get("event") == "epoch":
                self._on_epoch(ev)
                return
            if isinstance(ev, dict) and ev.get("event") == "estimate":
                self._on_estimate(ev)
                self.log.appendPlainText(estimate_text(ev))
                return
            if isinstance(ev, dict) and ev.get("event") == "done":
                self._on_done_event(ev)
                return
        if line.strip():
            self.log.appendPlainText(line)

    def _on_epoch(self, ev: dict) -> None:
        self.epochs.append(ev)
        r = self.table.rowCount()
        self.table.insertRow(r)
        fold = ev.get("fold")
        vals = ("" if fold is None else str(int(fold) + 1), f"{ev.get('epoch')}/{ev.get('epochs')}",
                _num(ev.get("train_loss")), _num(ev.get("val_loss")), _num(ev.get("val_accuracy"), ".3f"),
                _num(ev.get("val_auc")), _num(ev.get("lr"), ".2e"), _num(ev.get("seconds"), ".1f"),
                "★" if ev.get("best") else "")
        for c, v in enumerate(vals):
            it = QtWidgets.QTableWidgetItem(v)
            it.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(r, c, it)
        self.table.scrollToBottom()
        same_fold = [e for e in self.epochs if e.get("fold") == fold]
        xs = [float(e.get("epoch", i + 1)) for i, e in enumerate(same_fold)]
        for key, curve in self._curves.items():
            pts = [(x, e.get(key)) for x, e in zip(xs, same_fold, strict=True) if isinstance(e.get(key), (int, float))]
            curve.setData([p[0] for p in pts], [p[1] for p in pts])
        total = int(ev.get("epochs") or self.progress.maximum() or 1)
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(min(int(ev.get("epoch") or 0), total))
        self._set_status(f"Epoch {ev.get('epoch')}/{total}{'' if fold is None else f' (fold {int(fold) + 1})'}: "
                         f"train loss {_num(ev.get('train_loss'))}, val loss {_num(ev.get('val_loss'))}, "
                         f"val AUC {_num(ev.get('val_auc'))}")
        self.epochReceived.emit(ev)

    def _on_done_event(self, ev: dict) -> None:
        self.done_event = ev
        self.progress.setValue(self.progress.maximum())  # early stopping ends before the last epoch
        rep = ev.get("report")
        if rep and Path(rep).is_file():
            try:
                text = Path(rep).read_text(encoding="utf-8")
            except OSError as e:
                text = f"(could not read {rep}: {e})"
            # relative image links (roc.png, curves.png) resolve against the run folder
            self.report.document().setBaseUrl(QtCore.QUrl.fromLocalFile(str(Path(rep).parent) + os.sep))
            self.report.setSearchPaths([str(Path(rep).parent)])
            self.report.setMarkdown(text)
            self.tabs.setCurrentWidget(self.report)

    def _on_process_error(self, err: QtCore.QProcess.ProcessError) -> None:
        if err == QtCore.QProcess.ProcessError.FailedToStart:
            msg = f"The training process could not start: {self.process.errorString()}"
            self.error_message = msg
            self.status = "error"
            self.log.appendPlainText(msg)
            self._set_status(msg, error=True)
            self._set_running_ui(False)
            self.runFinished.emit("error", {"message": msg})

    def _on_finished(self, exit_code: int, exit_status: QtCore.QProcess.ExitStatus) -> None:
        self._kill_timer.stop()
        # what is left in the pipes after the last newline
        if self.process is not None:
            self._out_buf += bytes(self.process.readAllStandardOutput())
            self._err_buf += bytes(self.process.readAllStandardError())
        for raw in self._out_buf.split(b"\n"):
            self._stdout_line(raw.decode("utf-8", "replace").rstrip("\r"))
        for raw in self._err_buf.split(b"\n"):
            self._stderr_line(raw.decode("utf-8", "replace"))
        self._out_buf = self._err_buf = b""
        self._set_running_ui(False)
        crashed = exit_status == QtCore.QProcess.ExitStatus.CrashExit
        out = self.out_edit.text().strip()
        if self._cancelled:
            self.status = "cancelled"
            ck = Path(out) / CHECKPOINT
            if ck.is_file():
                n = len(self.epochs)
                msg = (f"Cancelled. {ck} keeps the last finished epoch ({n}); press Start with the same output "
                       "folder to continue from it. The epoch in progress is lost.")
            else:
                msg = "Cancelled before the first epoch finished: nothing was saved. Start begins again."
            self._set_status(msg)
            self.log.appendPlainText(msg)
            self.runFinished.emit("cancelled", {"message": msg, "exit_code": exit_code})
        elif not crashed and exit_code == 0 and self.done_event is not None:
            self.status = "done"
            model_dir = self.done_event.get("model_dir")
            auc = _num(self.done_event.get("auc"))
            if model_dir:
                self._set_status(f"Done: test AUC {auc}, threshold {_num(self.done_event.get('threshold'), '.3f')}. "
                                 "Read the report, then Activate to install and use this model.")
            else:
                self._set_status(f"Done (test AUC {auc}), but this run produced no model directory to activate.")
            self.activate_button.setEnabled(bool(model_dir))
            self._fresh_defaults()
            self.runFinished.emit("done", dict(self.done_event))
        elif not crashed and exit_code == 2:
            errs = [ln for ln in self._stderr_lines if "error:" in ln] or self._stderr_lines
            msg = errs[-1] if errs else "training failed (exit code 2)"
            self.status = "error"
            self.error_message = msg
            self._set_status(msg, error=True)
            self.runFinished.emit("error", {"message": msg, "exit_code": exit_code})
        else:
            tail = self._stderr_lines[-1] if self._stderr_lines else ""
            how = "crashed" if crashed else f"ended with exit code {exit_code}"
            msg = f"The training process {how}{': ' + tail if tail else ''}. The viewer is unaffected; see the Log tab."
            self.status = "crashed"
            self.error_message = msg
            self._set_status(msg, error=True)
            self.tabs.setCurrentWidget(self.log)
            self.runFinished.emit("crashed", {"message": msg, "exit_code": exit_code})

    # ------------------------------------------------------------------ activate
    def activate(self) -> None:
        """Install the run's model into the registry and make it active (in a thread), then
        emit :attr:`published` and :attr:`activateRequested`."""
        if self.done_event is None or not self.done_event.get("model_dir") or self._publisher is not None:
            return
        self.activate_button.setEnabled(False)
        self._set_status("Installing the model (copying and verifying the weights)…")
        pub = Publisher(str(self.done_event["model_dir"]), self)
        pub.published.connect(self._on_published)
        pub.failed.connect(self._on_publish_failed)
        pub.finished.connect(self._publisher_done)
        self._publisher = pub
        pub.start()

    def _publisher_done(self) -> None:
        if self._publisher is not None:
            self._publisher.deleteLater()
        self._publisher = None

    def _on_published(self, entry) -> None:
        self.entry = entry
        self._set_status(f"Installed {entry.name} {entry.version} and made it the active model "
                         f"(roll back: Model → Models…). The viewer is loading it.")
        self.published.emit(entry)
        self.activateRequested.emit(entry.name)

    def _on_publish_failed(self, msg: str) -> None:
        self._set_status(f"Could not install the model: {msg}", error=True)
        self.activate_button.setEnabled(True)

    # ------------------------------------------------------------------ closing
    def reject(self) -> None:
        """Close, Esc and the window's close box (QDialog.closeEvent calls this): while a
        training runs, ask first; the dialog stays open unless the user stops it."""
        if self.running:
            ans = QtWidgets.QMessageBox.question(
                self, "Training is running",
                "Stop the training? The last finished epoch stays in the run folder's checkpoint.")
            if ans != QtWidgets.QMessageBox.StandardButton.Yes:
                return
            self.cancel()
            if self.process is not None and not self.process.waitForFinished(KILL_GRACE_MS):
                self._kill()
                self.process.waitForFinished(KILL_GRACE_MS)
        if self._publisher is not None:
            self._publisher.wait(30000)
        super().reject()


class _QuitGuard(QtCore.QObject):
    """On the main window: closing the viewer while a training runs asks first (the training
    process ends with the viewer; its checkpoint keeps the last finished epoch)."""

    def __init__(self, dialog: TrainDialog, window: QtWidgets.QWidget) -> None:
        super().__init__(dialog)
        self.dialog = dialog
        window.installEventFilter(self)  # installed after the AI's filter: runs before it

    def eventFilter(self, obj, ev) -> bool:  # noqa: N802 - Qt name
        if ev.type() != QtCore.QEvent.Type.Close or not self.dialog.running:
            return False
        ans = QtWidgets.QMessageBox.question(
            obj, "Training is running",
            "A training is running. Quit anyway? The training stops; the last finished epoch stays in "
            "its checkpoint and Start with the same output folder continues it.")
        if ans != QtWidgets.QMessageBox.StandardButton.Yes:
            ev.ignore()
            return True  # the window stays open
        self.dialog.shutdown()
        return False


class TrainOpener:
    """The shell's handle on the Train dialog: Model → Train / Refresh model… calls it with the
    :class:`~cxrviewer.ui.ai.integration.AiIntegration` (``AiIntegration(open_train=opener)``).

    It keeps the one dialog itself (:attr:`dialog`), so the train feature writes nothing onto the
    AI's object: the shell hands the opener to the AI, as it hands the other features to each other.

    Parameters
    ----------
    feedback
        The reader-feedback data source for the dialog's "Reader feedback" button, or ``None``.
    """

    def __init__(self, feedback=None) -> None:
        self.feedback = feedback
        #: the dialog once opened (``None`` before); opening again raises it
        self.dialog: TrainDialog | None = None

    def __call__(self, ai) -> TrainDialog | None:
        """Open (or raise) the training dialog: "the active model" is the one the viewer uses,
        and Activate loads the new model in the AI worker (the Models dialog's path). Without
        torch (the base install) it says in one line which extra to install instead, and
        returns ``None``."""
        from cxrviewer.ml.extras import missing_train_extra

        missing = missing_train_extra("Training")
        if missing:
            QtWidgets.QMessageBox.information(ai.window, "Train / Refresh model", missing)
            return None
        dlg = self.dialog
        if dlg is None:
            dlg = TrainDialog(active_model_dir(ai), ai.window, feedback=self.feedback)
            dlg.activateRequested.connect(ai.activate)
            app = QtWidgets.QApplication.instance()
            if app is not None:
                app.aboutToQuit.connect(dlg.shutdown)
            dlg._quit_guard = _QuitGuard(dlg, ai.window)
            self.dialog = dlg
        if dlg.feedback_provider is not None:
            dlg.refresh_feedback_source()  # the count of labelled images, as of now
        dlg.show()
        dlg.raise_()
        dlg.activateWindow()
        return dlg

    def shutdown(self) -> None:
        """Stop a running training and close the dialog (a no-op before it was opened)."""
        if self.dialog is not None:
            self.dialog.shutdown()
            self.dialog.close()


def active_model_dir(ai) -> str | None:
    """The directory of the model the viewer uses (an explicit model dir, else the loaded
    registry model, else the registry's active one), or None."""
    explicit = getattr(ai, "_model_dir", None)
    if explicit:
        return explicit
    try:
        from cxrviewer.ml.registry import Registry  # card.json files only: no torch

        reg = Registry()
        m = ai.controller.model
        if m is not None:
            return str(reg.get(m.name).path)
        e = reg.active()
        return None if e is None else str(e.path)
    except Exception:  # no readable registry: "the active model" is simply not offered
        return None
