"""File → Query/Retrieve… and File → Send to PACS…: the Qt glue over :mod:`cxrviewer.net`.

Every network call runs in a worker thread (:class:`NetJob`) and reports back through queued
signals; the dialogs never block the GUI thread and never touch widgets from the worker. A
retrieved study is opened in the main window's browser. Nothing connects until the reader
presses Test connection, Search, Retrieve or Send.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from cxrviewer.core.errors import CxrError
from cxrviewer.net.common import CancelToken, StudyQuery
from cxrviewer.net.nodes import NodeBook
from cxrviewer.net.store import LocalStore

log = logging.getLogger(__name__)

COLUMNS = [("Patient", "patient_name"), ("Patient ID", "patient_id"), ("Date", "study_date"),
           ("Modality", "modalities"), ("Description", "description"), ("Accession", "accession"),
           ("Images", "n_instances"), ("Study UID", "study_uid")]


class NetJob(QtCore.QObject):
    """Runs ``fn(progress, cancel)`` in a daemon thread.

    Signals
    -------
    progressed(done, total)
    finished(result)
    errored(message)
        One line naming the node and the reason (a :class:`~cxrviewer.core.errors.CxrError`),
        or the exception's text for anything unexpected.
    """

    progressed = QtCore.Signal(int, int)
    finished = QtCore.Signal(object)
    errored = QtCore.Signal(str)

    def __init__(self, fn, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.fn = fn
        self.cancel = CancelToken()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="cxr-net", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            out = self.fn(lambda d, t: self.progressed.emit(int(d), int(t)), self.cancel)
        except CxrError as e:
            self.errored.emit(str(e))
        except Exception as e:  # a bug or a library error: still shown, and logged with its traceback
            log.exception("network job failed")
            self.errored.emit(f"{type(e).__name__}: {e}")
        else:
            self.finished.emit(out)

    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def wait(self, timeout: float = 30.0) -> None:
        if self.thread is not None:
            self.thread.join(timeout)


class _NodePicker(QtWidgets.QWidget):
    """Node combo + Edit nodes… (shared by both dialogs)."""

    changed = QtCore.Signal()

    def __init__(self, book_path: str | os.PathLike | None, parent=None) -> None:
        super().__init__(parent)
        self.book_path = book_path
        self.combo = QtWidgets.QComboBox(self)
        self.combo.setMinimumWidth(280)
        self.edit_button = QtWidgets.QPushButton("Edit nodes…", self)
        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QtWidgets.QLabel("Node:", self))
        lay.addWidget(self.combo, 1)
        lay.addWidget(self.edit_button)
        self.edit_button.clicked.connect(self.edit)
        self.combo.currentIndexChanged.connect(lambda _i: self.changed.emit())
        self.book = NodeBook(path=Path(book_path) if book_path else None)
        self.reload()

    def reload(self, select: str | None = None) -> str:
        """Reload the node file; returns an error line ('' when fine)."""
        keep = select or self.combo.currentText()
        err = ""
        try:
            self.book = NodeBook.load(self.book_path)
        except CxrError as e:
            err = str(e)
        self.combo.blockSignals(True)
        self.combo.clear()
        for name, n in sorted(self.book.nodes.items()):
            self.combo.addItem(name)
            self.combo.setItemData(self.combo.count() - 1, n.describe(), QtCore.Qt.ItemDataRole.ToolTipRole)
        if keep and self.combo.findText(keep) >= 0:
            self.combo.setCurrentIndex(self.combo.findText(keep))
        self.combo.blockSignals(False)
        self.changed.emit()
        return err

    def node(self):
        name = self.combo.currentText()
        return self.book.with_local_ae(self.book.nodes[name]) if name in self.book.nodes else None

    def edit(self) -> None:
        from cxrviewer.ui.pacs.pacs_nodes import NodeEditor

        dlg = NodeEditor(self.book, self)
        if dlg.exec() == QtWidgets.QDialog.DialogCode.Accepted:
            self.reload(dlg.last_name)


class QueryRetrieveDialog(QtWidgets.QDialog):
    """Search a PACS or DICOMweb server and retrieve studies into the local store.

    Signals
    -------
    studyRetrieved(folder)
        A retrieve finished; ``folder`` holds the study's files.
    """

    studyRetrieved = QtCore.Signal(str)

    def __init__(self, parent=None, book_path: str | os.PathLike | None = None, store: LocalStore | None = None):
        super().__init__(parent)
        self.setWindowTitle("Query / Retrieve")
        self.resize(960, 560)
        self.store = store or LocalStore()
        self.job: NetJob | None = None
        self.picker = _NodePicker(book_path, self)
        self.test_button = QtWidgets.QPushButton("Test connection", self)
        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.picker, 1)
        top.addWidget(self.test_button)

        self.patient_name = QtWidgets.QLineEdit(self)
        self.patient_name.setPlaceholderText("e.g. DOE* (wildcards * ?)")
        self.patient_id = QtWidgets.QLineEdit(self)
        self.date_from = QtWidgets.QLineEdit(self)
        self.date_from.setPlaceholderText("YYYYMMDD")
        self.date_to = QtWidgets.QLineEdit(self)
        self.date_to.setPlaceholderText("YYYYMMDD")
        for w in (self.date_from, self.date_to):
            w.setValidator(QtGui.QRegularExpressionValidator(QtCore.QRegularExpression(r"\d{0,8}"), w))
        self.modality = QtWidgets.QComboBox(self)
        self.modality.setEditable(True)
        self.modality.addItems(["", "CR", "DX", "CT", "MR", "SR", "OT"])
        self.accession = QtWidgets.QLineEdit(self)
        self.search_button = QtWidgets.QPushButton("&Search", self)
        self.search_button.setDefault(True)
        form = QtWidgets.QGridLayout()
        form.addWidget(QtWidgets.QLabel("Patient name", self), 0, 0)
        form.addWidget(self.patient_name, 0, 1)
        form.addWidget(QtWidgets.QLabel("Patient ID", self), 0, 2)
        form.addWidget(self.patient_id, 0, 3)
        form.addWidget(QtWidgets.QLabel("Accession", self), 0, 4)
        form.addWidget(self.accession, 0, 5)
        form.addWidget(QtWidgets.QLabel("Study date from", self), 1, 0)
        form.addWidget(self.date_from, 1, 1)
        form.addWidget(QtWidgets.QLabel("to", self), 1, 2)
        form.addWidget(self.date_to, 1, 3)
        form.addWidget(QtWidgets.QLabel("Modality", self), 1, 4)
        form.addWidget(self.modality, 1, 5)
        form.addWidget(self.search_button, 1, 6)

        self.table = QtWidgets.QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels([c for c, _k in COLUMNS])
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSortingEnabled(True)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().hide()

        self.retrieve_button = QtWidgets.QPushButton("&Retrieve", self)
        self.retrieve_button.setToolTip("Fetch the selected studies (only what is not already local) and open them")
        self.progress = QtWidgets.QProgressBar(self)
        self.progress.setFormat("%v / %m images")
        self.progress.hide()
        self.cancel_button = QtWidgets.QPushButton("Cancel", self)
        self.cancel_button.setToolTip("Stop after the image in transfer (complete images stay)")
        self.cancel_button.hide()
        self.status = QtWidgets.QLabel("Choose a node and search.", self)
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QtWidgets.QPushButton("Close", self)
        bottom = QtWidgets.QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.progress)
        bottom.addWidget(self.cancel_button)
        bottom.addWidget(self.retrieve_button)
        bottom.addWidget(close)

        lay = QtWidgets.QVBoxLayout(self)
        lay.addLayout(top)
        lay.addLayout(form)
        lay.addWidget(self.table, 1)
        lay.addLayout(bottom)

        self.test_button.clicked.connect(self.test_connection)
        self.search_button.clicked.connect(self.search)
        self.retrieve_button.clicked.connect(self.retrieve_selected)
        self.cancel_button.clicked.connect(self.cancel)
        self.table.itemDoubleClicked.connect(lambda _it: self.retrieve_selected())
        self.table.itemSelectionChanged.connect(self._update_enabled)
        self.picker.changed.connect(self._update_enabled)
        close.clicked.connect(self.reject)
        self._queue: list[str] = []
        self._update_enabled()

    # ----------------------------------------------------------------- state
    def _busy(self) -> bool:
        return self.job is not None and self.job.running()

    def _update_enabled(self) -> None:
        has_node = self.picker.node() is not None
        busy = self._busy()
        for b in (self.test_button, self.search_button):
            b.setEnabled(has_node and not busy)
        self.retrieve_button.setEnabled(has_node and not busy and bool(self.selected_study_uids()))
        self.picker.setEnabled(not busy)
        if not has_node and not busy:
            self.status.setText("No PACS node yet: press Edit nodes… to add one.")

    def _say(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #d9534f;" if error else "")

    def _run(self, fn, done, progress: bool = False) -> NetJob:
        job = NetJob(fn, self)
        job.finished.connect(done)
        job.errored.connect(self._failed)
        if progress:
            job.progressed.connect(self._progress)
            self.progress.setRange(0, 0)
            self.progress.show()
            self.cancel_button.show()
        self.job = job
        job.start()
        self._update_enabled()
        return job

    def _idle(self) -> None:
        # The job has reported: it is done even if its thread has not quite returned yet.
        self.job = None
        self.progress.hide()
        self.cancel_button.hide()
        self.cancel_button.setEnabled(True)
        self._update_enabled()

    def _failed(self, message: str) -> None:
        self._queue.clear()
        self._say(message, error=True)
        self._idle()

    def _progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, done, 0))
        self.progress.setValue(done)

    # --------------------------------------------------------------- actions
    def test_connection(self) -> NetJob | None:
        from cxrviewer.net import api

        node = self.picker.node()
        if node is None:
            return None
        self._say(f"Testing {node.describe()} …")

        def done(out: dict) -> None:
            self._say(f"{node.describe()}: connection OK ({out['ms']:.0f} ms)")
            self._idle()

        return self._run(lambda _p, _c: api.echo(node), done)

    def query(self) -> StudyQuery:
        """The query the fields describe (raises ValueError for a bad date)."""
        a, b = self.date_from.text().strip(), self.date_to.text().strip()
        date = a if a and a == b else (f"{a}-{b}" if (a or b) else "")
        return StudyQuery(patient_name=self.patient_name.text().strip(), patient_id=self.patient_id.text().strip(),
                          study_date=date, modality=self.modality.currentText().strip(),
                          accession=self.accession.text().strip())

    def search(self) -> NetJob | None:
        from cxrviewer.net import api

        node = self.picker.node()
        if node is None:
            return None
        try:
            q = self.query()
        except ValueError as e:
            self._say(str(e), error=True)
            return None
        self._say(f"Searching {node.describe()} …")
        return self._run(lambda _p, _c: api.find(node, q), self._show_rows)

    def _show_rows(self, rows: list[dict]) -> None:
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            for j, (_title, key) in enumerate(COLUMNS):
                v = r.get(key)
                text = "/".join(v) if isinstance(v, list) else ("" if v is None else str(v))
                if key == "study_date" and len(text) == 8:
                    text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
                it = QtWidgets.QTableWidgetItem(text)
                if key == "n_instances" and isinstance(v, int):
                    it.setData(QtCore.Qt.ItemDataRole.DisplayRole, v)
                it.setData(QtCore.Qt.ItemDataRole.UserRole, r["study_uid"])
                self.table.setItem(i, j, it)
        self.table.setSortingEnabled(True)
        self.table.resizeColumnsToContents()
        if rows:
            self.table.selectRow(0)
        notes = "".join(f"; {n}" for n in getattr(rows, "notes", []))  # what we did about the archive's quirks
        self._say(f"{len(rows)} {'study' if len(rows) == 1 else 'studies'} found on {self.picker.node().describe()}"
                  f"{notes}")
        self._idle()

    def selected_study_uids(self) -> list[str]:
        rows = sorted({ix.row() for ix in self.table.selectionModel().selectedRows()})
        out = []
        for r in rows:
            it = self.table.item(r, 0)
            if it is not None:
                out.append(str(it.data(QtCore.Qt.ItemDataRole.UserRole)))
        return out

    def retrieve_selected(self) -> NetJob | None:
        uids = self.selected_study_uids()
        if not uids or self._busy():
            return None
        self._queue = uids[1:]
        return self.retrieve(uids[0])

    def retrieve(self, study_uid: str) -> NetJob | None:
        from cxrviewer.net import api

        node = self.picker.node()
        if node is None:
            return None
        self._say(f"Retrieving {study_uid} from {node.describe()} …")
        return self._run(lambda p, c: api.retrieve(node, study_uid, self.store, progress=p, cancel=c),
                         self._retrieved, progress=True)

    def _retrieved(self, res) -> None:
        msg = f"{res.fetched} retrieved, {res.already_present} already here"
        if res.failed:
            msg += f", {res.failed} failed"
            if res.failures:
                msg += f" (first: {res.failures[0]['reason']})"
        self._say(f"{msg} ({res.seconds:.1f} s) → {res.folder}", error=bool(res.failed))
        self._idle()
        self.studyRetrieved.emit(res.folder)
        if self._queue:
            self.retrieve(self._queue.pop(0))

    def cancel(self) -> None:
        if self.job is not None and self.job.running():
            self._queue.clear()
            self.job.cancel.cancel()
            self.cancel_button.setEnabled(False)
            self._say("Cancelling after the image in transfer …")

    def reject(self) -> None:
        self.cancel()
        super().reject()


def study_files(window, scope: str) -> list[str]:
    """Paths to send from the main window: ``image`` (on screen), ``series``, ``study`` or ``all``."""
    cur = window.current_path
    res = window.last_scan
    if scope == "image" or res is None:
        return [cur] if cur else []
    for p in res.patients:
        for st in p.studies:
            for se in st.series:
                paths = [i.path for i in se.instances if i.kind == "dicom"]
                if scope == "series" and cur in paths:
                    return paths
                if scope == "study" and cur in [i.path for s2 in st.series for i in s2.instances]:
                    return [i.path for s2 in st.series for i in s2.instances if i.kind == "dicom"]
    if scope == "all":
        return [i.path for i in res.instances() if i.kind == "dicom"]
    return [cur] if cur else []
