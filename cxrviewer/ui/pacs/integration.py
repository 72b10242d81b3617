"""PACS in the main window: File → Query/Retrieve… and File → Send to PACS….

A retrieved study opens in the browser. Send takes the image on screen, its series, its study
or every listed image, and, when the DICOM-object layer is installed (``window.dicom``), the AI
result as an SR, the view as an SC and the reading as a GSPS, built at send time into a
temporary folder that is removed afterwards.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile

from PySide6 import QtCore, QtGui, QtWidgets

from cxrviewer.core.errors import CxrError
from cxrviewer.ui.pacs.pacs_dialog import NetJob, QueryRetrieveDialog, _NodePicker, study_files

log = logging.getLogger(__name__)

#: (key for window.dicom.export, checkbox text)
OBJECTS = (("sr", "AI result and measurements as a structured report (SR)"),
           ("sc-view", "the view as on screen as a Secondary Capture (SC)"),
           ("gsps", "window, orientation and measurements as a presentation state (GSPS)"))
SCOPES = (("image", "the image on screen"), ("series", "its series"), ("study", "its study"),
          ("all", "every image listed"), ("none", "no images (objects only)"))


class SendDialog(QtWidgets.QDialog):
    """Send images and our DICOM objects to a node (C-STORE or STOW-RS).

    Signals
    -------
    sent(SendResult)
    """

    sent = QtCore.Signal(object)

    def __init__(self, window, book_path: str | os.PathLike | None = None, export=None) -> None:
        super().__init__(window)
        self.window = window
        #: ``export(kind, path)`` writes a DICOM object of the image on screen (the DICOM
        #: feature's, handed in by the shell; ``None``: this build makes none)
        self.export = export
        self.setWindowTitle("Send to PACS")
        self.resize(560, 360)
        self.job: NetJob | None = None
        self._tmp: str | None = None
        self.picker = _NodePicker(book_path, self)
        self.scope = QtWidgets.QComboBox(self)
        for key, text in SCOPES:
            self.scope.addItem(text, key)
        self.checks: dict[str, QtWidgets.QCheckBox] = {}
        objs = QtWidgets.QGroupBox("Also send, for the image on screen", self)
        ol = QtWidgets.QVBoxLayout(objs)
        for key, text in OBJECTS:
            cb = QtWidgets.QCheckBox(text, objs)
            self.checks[key] = cb
            ol.addWidget(cb)
        objs.setVisible(export is not None)
        self.progress = QtWidgets.QProgressBar(self)
        self.progress.setFormat("%v / %m files")
        self.progress.hide()
        self.status = QtWidgets.QLabel("", self)
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.send_button = QtWidgets.QPushButton("&Send", self)
        self.send_button.setDefault(True)
        self.cancel_button = QtWidgets.QPushButton("Cancel", self)
        self.close_button = QtWidgets.QPushButton("Close", self)
        form = QtWidgets.QFormLayout()
        form.addRow(self.picker)
        form.addRow("Images", self.scope)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.progress, 1)
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.close_button)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(objs)
        lay.addWidget(self.status, 1)
        lay.addLayout(buttons)
        self.cancel_button.hide()
        self.send_button.clicked.connect(self.send)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button.clicked.connect(self.reject)
        self.picker.changed.connect(self._update_enabled)
        self._update_enabled()

    def _update_enabled(self) -> None:
        busy = self.job is not None and self.job.running()
        self.send_button.setEnabled(self.picker.node() is not None and not busy)
        if self.picker.node() is None:
            self.status.setText("No PACS node yet: press Edit nodes… to add one.")

    def _say(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #d9534f;" if error else "")

    def files(self) -> list[str]:
        """The images the scope names (objects are built at send time)."""
        key = self.scope.currentData()
        return [] if key == "none" else study_files(self.window, key)

    def build_objects(self) -> list[str]:
        """Write the checked objects for the image on screen into a temporary folder (raises CxrError)."""
        kinds = [k for k, cb in self.checks.items() if cb.isChecked()]
        if not kinds:
            return []
        if self.export is None:
            raise CxrError(None, "this build cannot make DICOM objects")
        self._tmp = tempfile.mkdtemp(prefix="cxrviewer-send-")
        return [os.fspath(self.export(k, os.path.join(self._tmp, f"{k}.dcm")).path) for k in kinds]

    def send(self) -> NetJob | None:
        from cxrviewer.net import api

        node = self.picker.node()
        if node is None:
            return None
        try:
            paths = self.files() + self.build_objects()
        except CxrError as e:
            self._say(str(e), error=True)
            self._cleanup()
            return None
        if not paths:
            self._say("Nothing to send: open an image, or choose objects to send.", error=True)
            return None
        self._say(f"Sending {len(paths)} file(s) to {node.describe()} …")
        job = NetJob(lambda p, c: api.send(node, paths, progress=p, cancel=c), self)
        job.progressed.connect(lambda d, t: (self.progress.setRange(0, max(t, 1)), self.progress.setValue(d)))
        job.finished.connect(self._sent)
        job.errored.connect(self._failed)
        self.progress.setRange(0, len(paths))
        self.progress.setValue(0)
        self.progress.show()
        self.cancel_button.show()
        self.job = job
        job.start()
        self._update_enabled()
        return job

    def _done(self) -> None:
        self.job = None  # it has reported, even if its thread has not quite returned yet
        self.progress.hide()
        self.cancel_button.hide()
        self._cleanup()
        self._update_enabled()

    def _sent(self, res) -> None:
        text = f"{res.sent} sent to {self.picker.node().describe()}"
        if res.failed:
            p, why = res.failed[0]
            text += f"; {len(res.failed)} not sent (first: {os.path.basename(p)}: {why})"
        self._say(text, error=bool(res.failed))
        self._done()
        self.sent.emit(res)

    def _failed(self, message: str) -> None:
        self._say(message, error=True)
        self._done()

    def cancel(self) -> None:
        if self.job is not None and self.job.running():
            self.job.cancel.cancel()
            self._say("Cancelling after the file in transfer …")

    def _cleanup(self) -> None:
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def reject(self) -> None:
        self.cancel()
        if self.job is not None:
            self.job.wait(5)
        self._cleanup()
        super().reject()


class PacsActions(QtCore.QObject):
    """The File-menu actions; dialogs are created on first use (nothing connects before)."""

    def __init__(self, window, book_path: str | os.PathLike | None = None, export=None) -> None:
        super().__init__(window)
        self.window = window
        self.book_path = book_path
        self.export = export
        self.qr: QueryRetrieveDialog | None = None
        self.send_dialog: SendDialog | None = None
        menu = window.menus["file"]
        anchor = window.act_export
        self.act_qr = self._action("&Query/Retrieve…", "Ctrl+Shift+Q", self.open_query,
                                   "Search a PACS or DICOMweb server and retrieve studies", menu, anchor)
        self.act_send = self._action("Send to &PACS…", "Ctrl+Shift+U", self.open_send,
                                     "Send images, AI results (SR), views (SC) or presentation states to a PACS", menu, anchor)
        menu.insertSeparator(anchor) if anchor is not None else menu.addSeparator()

    def _action(self, text, shortcut, slot, tip, menu, anchor) -> QtGui.QAction:
        a = QtGui.QAction(text, self.window)
        a.setShortcut(QtGui.QKeySequence(shortcut))
        a.setStatusTip(tip)
        a.triggered.connect(lambda _=False: slot())
        menu.insertAction(anchor, a) if anchor is not None else menu.addAction(a)
        self.window.addAction(a)
        self.window.actions_list.append(a)
        return a

    def open_query(self) -> QueryRetrieveDialog:
        if self.qr is None:
            self.qr = QueryRetrieveDialog(self.window, book_path=self.book_path)
            # a retrieved study joins what is open (current and prior side by side), it never
            # replaces the folder
            self.qr.studyRetrieved.connect(self.window.add_path)
        self.qr.show()
        self.qr.raise_()
        return self.qr

    def open_send(self) -> SendDialog:
        if self.send_dialog is None:
            self.send_dialog = SendDialog(self.window, book_path=self.book_path, export=self.export)
        self.send_dialog.picker.reload()
        self.send_dialog.show()
        self.send_dialog.raise_()
        return self.send_dialog

    def shutdown(self) -> None:
        for d in (self.qr, self.send_dialog):
            if d is not None and d.job is not None and d.job.running():
                d.job.cancel.cancel()
                d.job.wait(5)


def install(window, book_path: str | os.PathLike | None = None, export=None) -> PacsActions:
    """Add File → Query/Retrieve… and File → Send to PACS… to a main window; ``export(kind,
    path)`` (the DICOM feature's) makes the objects Send can add."""
    return PacsActions(window, book_path, export)
