"""The Train dialog's data source "Reader feedback (N labelled images)": the calls readers
recorded in this viewer (:func:`cxrviewer.feedback.data_source`), exported as the CSV that
``cxrviewer train --data`` takes as it is.

While the reader sets the run up, a preview export in a temporary folder is what the data
check reads; Start writes the export into the run folder as :data:`FEEDBACK_CSV` (the labels
the run was trained on stay beside its report) and passes that file as ``--data``. A run
folder that is being resumed keeps the labels it started with.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6 import QtCore, QtWidgets

#: the labels file Start writes into the run folder
FEEDBACK_CSV = "feedback_labels.csv"


class FeedbackDataMixin:
    """Part of the Train dialog's form; the dialog sets ``feedback_provider`` (a callable
    returning a :class:`cxrviewer.feedback.FeedbackSource`, or ``None``) before building."""

    feedback_provider: Callable | None = None
    #: the source in use (``None``: the data field names a folder or CSV)
    feedback = None
    #: the CSV ``--data`` points at: the preview, then the run folder's copy
    feedback_csv: Path | None = None

    def refresh_feedback_source(self):
        """The source now (the button's text counts the labelled images); ``None`` without one."""
        src = None
        if self.feedback_provider is not None:
            src = self.feedback_provider()
        self.feedback_button.setText(src.label if src is not None else "Reader feedback (unavailable)")
        self.feedback_button.setEnabled(src is not None and src.images > 0)
        return src

    def use_feedback(self, on: bool = True) -> bool:
        """Train from the readers' calls (``on``), or leave that source (a folder or CSV chosen)."""
        if not on:
            if self.feedback is not None:
                self.feedback, self.feedback_csv = None, None
                self.data_edit.setReadOnly(False)
                self.data_edit.setToolTip("")
                self.data_edit.clear()
            return False
        src = self.refresh_feedback_source()
        if src is None or src.images == 0:
            self._show_data_info("No reader calls yet: record them in the viewer (Reading menu: N, B, Y).", error=True)
            return False
        self._feedback_tmp = QtCore.QTemporaryDir()
        preview = Path(self._feedback_tmp.path()) / FEEDBACK_CSV
        try:
            summary = src.write_csv(preview)
        except Exception as e:  # noqa: BLE001 - FeedbackError / WriteError: one line for the reader
            self._show_data_info(f"Reader feedback: {e}", error=True)
            return False
        self.feedback, self.feedback_csv = src, preview
        self.feedback_summary = summary
        self.data_edit.setReadOnly(True)
        self.data_edit.setText(src.label)  # the data check follows (textChanged)
        self.data_edit.setCursorPosition(0)
        self.data_edit.setToolTip(f"{summary.rows} labels on {summary.images} images from "
                                  + ", ".join(f"{r} ({n})" for r, n in summary.readers.items())
                                  + "; Start writes them into the run folder as " + FEEDBACK_CSV)
        return True

    def write_feedback_for_run(self) -> str | None:
        """At Start: the export into the run folder, which ``--data`` then names. Returns the
        reason when it cannot (shown; the run does not start)."""
        from cxrviewer.ui.train.train_form import CHECKPOINT

        out = Path(self.out_edit.text().strip()).absolute()
        target = out / FEEDBACK_CSV
        if target.exists():
            if (out / CHECKPOINT).is_file():  # a resumed run keeps the labels it started with
                self.feedback_csv = target
                self.log.appendPlainText(f"Reader feedback: resuming with the run's own {target}")
                return None
            ans = QtWidgets.QMessageBox.question(
                self, "Reader feedback", f"{target} exists. Replace it with the readers' current calls?")
            if ans != QtWidgets.QMessageBox.StandardButton.Yes:
                self.feedback_csv = target
                return None
        try:
            out.mkdir(parents=True, exist_ok=True)
            s = self.feedback.write_csv(target)
        except Exception as e:  # noqa: BLE001 - one line, the run does not start
            return f"Reader feedback: {e}"
        self.feedback_csv = target
        who = ", ".join(f"{r} ({n})" for r, n in s.readers.items())
        gone = f"; {s.missing} call(s) left out: their image file is gone" if s.missing else ""
        self.log.appendPlainText(f"Reader feedback: {s.rows} labels on {s.images} images from {who} → {target}{gone}")
        return None
