"""Helpers of the Train / Refresh model… dialog: the child command, the registry publisher
thread, the data check that gates Start, and the estimate process shown before Start."""

from __future__ import annotations

import datetime as _dt
import json
import sys
from pathlib import Path
from typing import Any

from PySide6 import QtCore

from cxrviewer.core import durations


def _timestamp() -> str:
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def default_run_dir() -> Path:
    """``user_data_dir()/runs/<timestamp>`` (not created here)."""
    from cxrviewer import paths

    return paths.user_data_dir() / "runs" / _timestamp()


def training_command() -> list[str]:
    """Program and leading arguments that start the training CLI in a child process.

    A frozen (PyInstaller) build has no ``-m``: its executable is the ``cxrviewer`` command."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "train"]
    return [sys.executable, "-m", "training"]


def training_process(parent: QtCore.QObject, args: list[str]) -> QtCore.QProcess:
    """A QProcess (not started) running the training command with ``args``, unbuffered UTF-8."""
    prog, *lead = training_command()
    proc = QtCore.QProcess(parent)
    env = QtCore.QProcessEnvironment.systemEnvironment()
    env.insert("PYTHONUNBUFFERED", "1")
    env.insert("PYTHONIOENCODING", "utf-8")
    proc.setProcessEnvironment(env)
    proc.setProgram(prog)
    proc.setArguments([*lead, *args])
    return proc


def num(v: Any, fmt: str = ".4f") -> str:
    """A number for a table cell (metrics may come as ``{"value", "ci95"}``)."""
    if isinstance(v, dict):
        v = v.get("value")
    if isinstance(v, (int, float)):
        return format(v, fmt)
    return "" if v is None else str(v)


def valid_duration(text: str) -> bool:
    """``20m``, ``1h30m``, ``90s`` (the syntax of ``--time-budget``)."""
    try:
        durations.parse_duration(text)
    except ValueError:
        return False
    return True


def estimate_text(ev: dict) -> str:
    """The estimate event of ``--estimate-only --json-progress`` as one sentence."""
    epochs = int(ev.get("epochs") or 0)
    return (f"Estimate: about {durations.fmt_duration(ev.get('epoch_seconds', 0))} per epoch on {ev.get('where', '?')} "
            f"({num(ev.get('images_per_second'), '.1f')} images/s): {epochs} epoch{'s' if epochs != 1 else ''} "
            f"≈ {durations.fmt_duration(ev.get('run_seconds', 0))} in all, reading the data included.")


class Publisher(QtCore.QThread):
    """Copies and verifies a model directory into the registry off the GUI thread
    (verification reads the weights with torch; model.onnx is written for torch-free viewers)."""

    published = QtCore.Signal(object)  # ModelEntry
    failed = QtCore.Signal(str)

    def __init__(self, model_dir: str, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.model_dir = model_dir

    def run(self) -> None:  # noqa: D401 - QThread API
        try:
            from cxrviewer.ml.registry import Registry

            entry = Registry().import_dir(self.model_dir, activate=True, onnx=True)
        except Exception as e:  # any failure is shown in the dialog; the registry is unchanged
            self.failed.emit(str(e) or type(e).__name__)
            return
        self.published.emit(entry)


class JsonChild(QtCore.QObject):
    """Runs the training CLI with ``flag`` (``--check-data``, ``--estimate-only``) and
    ``--json-progress`` in a child process and emits its ``{"event": event, ...}`` line.

    A new :meth:`run` stops the previous one: only the latest form counts. The UI never imports
    the training package (the layering contract): it asks the command, as Start does."""

    result = QtCore.Signal(dict)
    failed = QtCore.Signal(str)

    def __init__(self, flag: str, event: str, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.flag, self.event_name = flag, event
        self.process: QtCore.QProcess | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.state() != QtCore.QProcess.ProcessState.NotRunning

    def run(self, args: list[str]) -> None:
        self.stop()
        proc = training_process(self, [*args, self.flag, *([] if "--json-progress" in args else ["--json-progress"])])
        proc.finished.connect(self._finished)
        self.process = proc
        proc.start()

    def wait(self, ms: int) -> None:
        """Block until the running child ends and its result is delivered (Start pressed while
        the data check runs)."""
        p = self.process
        if p is not None and p.waitForFinished(ms) and p is self.process:
            self._finished(p.exitCode(), p.exitStatus())

    def stop(self) -> None:
        p, self.process = self.process, None
        if p is not None:
            p.finished.disconnect(self._finished)
            if p.state() != QtCore.QProcess.ProcessState.NotRunning:
                p.kill()
                p.waitForFinished(3000)
            p.deleteLater()

    def _finished(self, code: int, _status=None) -> None:
        proc = self.process
        if proc is None:  # delivered already (wait), or stopped
            return
        out = bytes(proc.readAllStandardOutput()).decode("utf-8", "replace")
        err = bytes(proc.readAllStandardError()).decode("utf-8", "replace").strip().splitlines()
        self.process = None
        proc.finished.disconnect(self._finished)
        proc.deleteLater()
        for line in out.splitlines():
            if line.startswith("{"):
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if isinstance(ev, dict) and ev.get("event") == self.event_name:
                    self.result.emit(ev)
                    return
        msg = next((ln for ln in reversed(err) if "error:" in ln), err[-1] if err else f"exit code {code}")
        self.failed.emit(msg)
