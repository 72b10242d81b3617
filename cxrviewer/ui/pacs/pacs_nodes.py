"""The PACS node editor: DIMSE and DICOMweb nodes and our own AE title, saved to the 0600 node file."""

from __future__ import annotations

from dataclasses import replace

from PySide6 import QtCore, QtWidgets

from cxrviewer.core.errors import CxrError
from cxrviewer.net.nodes import DEFAULT_LOCAL_AE, DimseNode, NodeBook, WebNode, check_ae_title


class NodeEditor(QtWidgets.QDialog):
    """Edit the node list; OK saves the file (mode 0600), Cancel leaves it untouched."""

    def __init__(self, book: NodeBook, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("PACS nodes")
        self.resize(720, 420)
        self.book = NodeBook(nodes=dict(book.nodes), local_ae=book.local_ae, path=book.path)
        self.last_name: str | None = None
        self.list = QtWidgets.QListWidget(self)
        add_dimse = QtWidgets.QPushButton("Add PACS (DIMSE)", self)
        add_web = QtWidgets.QPushButton("Add DICOMweb", self)
        remove = QtWidgets.QPushButton("Remove", self)
        left = QtWidgets.QVBoxLayout()
        left.addWidget(self.list, 1)
        for b in (add_dimse, add_web, remove):
            left.addWidget(b)

        self.kind = QtWidgets.QLabel(self)
        self.name = QtWidgets.QLineEdit(self)
        self.host = QtWidgets.QLineEdit(self)
        self.port = QtWidgets.QSpinBox(self)
        self.port.setRange(1, 65535)
        self.port.setValue(104)
        self.called_ae = QtWidgets.QLineEdit(self)
        self.calling_ae = QtWidgets.QLineEdit(self)
        self.calling_ae.setPlaceholderText("our own AE title (below) when empty")
        self.use_move = QtWidgets.QCheckBox("Retrieve with C-MOVE to our storage SCP (PACS without C-GET)", self)
        self.store_port = QtWidgets.QSpinBox(self)
        self.store_port.setRange(1, 65535)
        self.store_port.setValue(11112)
        self.url = QtWidgets.QLineEdit(self)
        self.url.setPlaceholderText("https://pacs.example/dicom-web")
        self.user = QtWidgets.QLineEdit(self)
        self.password = QtWidgets.QLineEdit(self)
        self.password.setEchoMode(QtWidgets.QLineEdit.EchoMode.Password)
        self.token = QtWidgets.QLineEdit(self)
        self.token.setEchoMode(QtWidgets.QLineEdit.EchoMode.Password)
        self.verify = QtWidgets.QCheckBox("Verify TLS certificates", self)
        self.verify.setChecked(True)
        self.ca_bundle = QtWidgets.QLineEdit(self)
        self.ca_bundle.setPlaceholderText("site CA file (optional)")
        self.timeout = QtWidgets.QSpinBox(self)
        self.timeout.setRange(1, 600)
        self.timeout.setValue(30)
        self.timeout.setSuffix(" s")
        self.local_ae = QtWidgets.QLineEdit(self.book.local_ae, self)
        self.form = QtWidgets.QFormLayout()
        self.rows_dimse = [("Host", self.host), ("Port", self.port), ("Called AE title", self.called_ae),
                           ("Calling AE title", self.calling_ae), ("", self.use_move), ("Storage SCP port", self.store_port)]
        self.rows_web = [("Base URL", self.url), ("User (basic auth)", self.user), ("Password", self.password),
                         ("or bearer token", self.token), ("", self.verify), ("CA file", self.ca_bundle)]
        self.form.addRow("Kind", self.kind)
        self.form.addRow("Name", self.name)
        for label, w in self.rows_dimse + self.rows_web:
            self.form.addRow(label, w)
        self.form.addRow("Timeout", self.timeout)
        self.form.addRow("Our AE title", self.local_ae)
        self.apply_button = QtWidgets.QPushButton("Apply", self)
        self.form.addRow("", self.apply_button)
        self.error = QtWidgets.QLabel("", self)
        self.error.setStyleSheet("color: #d9534f;")
        self.error.setWordWrap(True)
        buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Ok | QtWidgets.QDialogButtonBox.StandardButton.Cancel, self)
        right = QtWidgets.QVBoxLayout()
        right.addLayout(self.form)
        right.addWidget(self.error)
        right.addStretch(1)
        right.addWidget(buttons)
        lay = QtWidgets.QHBoxLayout(self)
        lay.addLayout(left, 1)
        lay.addLayout(right, 2)

        add_dimse.clicked.connect(lambda: self.new("dimse"))
        add_web.clicked.connect(lambda: self.new("dicomweb"))
        remove.clicked.connect(self.remove_current)
        self.apply_button.clicked.connect(self.apply)
        self.list.currentTextChanged.connect(self.show_node)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self._kind = "dimse"
        self._editing: str | None = None
        for name in sorted(self.book.nodes):
            self.list.addItem(name)
        if self.list.count():
            self.list.setCurrentRow(0)
        else:
            self.new("dimse")

    def _set_kind(self, kind: str) -> None:
        self._kind = kind
        self.kind.setText("PACS (DIMSE)" if kind == "dimse" else "DICOMweb")
        for rows, on in ((self.rows_dimse, kind == "dimse"), (self.rows_web, kind != "dimse")):
            for _label, w in rows:
                self.form.setRowVisible(w, on)

    def new(self, kind: str) -> None:
        self._editing = None
        self.list.clearSelection()
        self._set_kind(kind)
        for w in (self.name, self.host, self.called_ae, self.calling_ae, self.url, self.user, self.password,
                  self.token, self.ca_bundle):
            w.clear()
        self.use_move.setChecked(False)
        self.verify.setChecked(True)
        self.name.setFocus()

    def show_node(self, name: str) -> None:
        n = self.book.nodes.get(name)
        if n is None:
            return
        self._editing = name
        self.name.setText(n.name)
        self.timeout.setValue(int(n.timeout))
        if isinstance(n, DimseNode):
            self._set_kind("dimse")
            self.host.setText(n.host)
            self.port.setValue(n.port)
            self.called_ae.setText(n.called_ae)
            self.calling_ae.setText("" if n.calling_ae == DEFAULT_LOCAL_AE else n.calling_ae)
            self.use_move.setChecked(n.retrieve == "move")
            self.store_port.setValue(n.store_port)
        else:
            self._set_kind("dicomweb")
            self.url.setText(n.url)
            self.user.setText(n.username)
            self.password.setText(n.password)
            self.token.setText(n.token)
            self.verify.setChecked(n.verify_tls)
            self.ca_bundle.setText(n.ca_bundle)

    def current_node(self):
        """The node the form describes (raises CxrError with the reason)."""
        name = self.name.text().strip()
        if not name:
            raise CxrError(None, "give the node a name")
        if self._kind == "dimse":
            return DimseNode(name, self.host.text().strip(), self.port.value(), self.called_ae.text().strip(),
                             calling_ae=self.calling_ae.text().strip() or DEFAULT_LOCAL_AE,
                             retrieve="move" if self.use_move.isChecked() else "get",
                             store_port=self.store_port.value(), timeout=float(self.timeout.value()))
        return WebNode(name, self.url.text().strip(), username=self.user.text().strip(), password=self.password.text(),
                       token=self.token.text().strip(), verify_tls=self.verify.isChecked(),
                       ca_bundle=self.ca_bundle.text().strip(), timeout=float(self.timeout.value()))

    def apply(self) -> bool:
        try:
            node = self.current_node()
            self.book.local_ae = check_ae_title(self.local_ae.text(), "our own AE title")
        except CxrError as e:
            self.error.setText(str(e))
            return False
        self.error.clear()
        if self._editing and self._editing != node.name:
            self.book.remove(self._editing)
            for it in self.list.findItems(self._editing, QtCore.Qt.MatchFlag.MatchExactly):
                self.list.takeItem(self.list.row(it))
        if node.name not in self.book.nodes:
            self.list.addItem(node.name)
        self.book.put(replace(node))
        self._editing = node.name
        self.last_name = node.name
        return True

    def remove_current(self) -> None:
        it = self.list.currentItem()
        if it is None:
            return
        self.book.remove(it.text())
        self.list.takeItem(self.list.row(it))
        self._editing = None

    def accept(self) -> None:
        # A filled-in form that was not applied yet counts (the reader expects OK to keep it).
        if (self.name.text().strip() or self._editing) and not self.apply():
            return
        try:
            self.book.save()
        except CxrError as e:
            self.error.setText(str(e))
            return
        super().accept()
