"""Model menu dialogs: list the installed models, activate one, show a model card.

Listing reads only ``card.json`` files (cheap, GUI thread). Activating verifies the weights
(checksum, architecture: it needs torch), so it runs in the AI worker, which then loads the
model; the dialog only asks for it.
"""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets


class ModelCardDialog(QtWidgets.QDialog):
    """One model card as a readable two-column form in sections (intended use and warnings
    first; then data, splits, metrics with intervals, calibration, OOD gate, localization,
    preprocessing), wrapped text, no raw JSON (:func:`cxrviewer.ml.card_text.card_sections`)."""

    def __init__(self, card: dict, parent: QtWidgets.QWidget | None = None, extra=()) -> None:
        """``extra``: more (title, rows) sections, placed after the validation metrics (the
        readers' agreement with the model on this site)."""
        from cxrviewer.ml.card_text import card_sections

        super().__init__(parent)
        self.setWindowTitle(f"Model card — {card.get('name', '?')} {card.get('version', '')}")
        self.resize(760, 720)
        lay = QtWidgets.QVBoxLayout(self)
        self.scroll = QtWidgets.QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarAlwaysOff)
        body = QtWidgets.QWidget()
        col = QtWidgets.QVBoxLayout(body)
        #: (section title, [(label, text)]) as shown, for tests and screen readers
        self.sections = card_sections(card)
        if extra:
            at = next((i + 1 for i, (t, _) in enumerate(self.sections) if t.startswith("Metrics")), len(self.sections))
            self.sections[at:at] = list(extra)
        self.value_labels: list[QtWidgets.QLabel] = []
        for title, rows in self.sections:
            box = QtWidgets.QGroupBox(title)
            box.setObjectName("cardSection")
            warn = title.startswith("Intended use")
            box.setStyleSheet("QGroupBox { font-weight: bold; %s }" % ("color: #e0b050;" if warn else ""))
            # a grid, not a QFormLayout: wrapped labels there get their height for the wrong width
            grid = QtWidgets.QGridLayout(box)
            grid.setColumnStretch(1, 1)
            grid.setHorizontalSpacing(12)
            grid.setVerticalSpacing(4)
            for r, (label, text) in enumerate(rows):
                key = QtWidgets.QLabel(label)
                key.setStyleSheet("font-weight: bold;")
                key.setAlignment(QtCore.Qt.AlignRight | QtCore.Qt.AlignTop)
                key.setMinimumWidth(150)
                val = QtWidgets.QLabel(text)
                val.setStyleSheet("font-weight: normal;")
                val.setWordWrap(True)
                val.setTextFormat(QtCore.Qt.PlainText)
                val.setAlignment(QtCore.Qt.AlignLeft | QtCore.Qt.AlignTop)
                val.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
                val.setSizePolicy(QtWidgets.QSizePolicy.Expanding, QtWidgets.QSizePolicy.Minimum)
                grid.addWidget(key, r, 0, QtCore.Qt.AlignRight | QtCore.Qt.AlignTop)
                grid.addWidget(val, r, 1, QtCore.Qt.AlignTop)
                self.value_labels.append(val)
            col.addWidget(box)
        col.addStretch(1)
        self.scroll.setWidget(body)
        lay.addWidget(self.scroll)
        bb = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.Close)
        bb.rejected.connect(self.reject)
        bb.accepted.connect(self.accept)
        lay.addWidget(bb)

    def section_titles(self) -> list[str]:
        return [t for t, _ in self.sections]


class ModelsDialog(QtWidgets.QDialog):
    """The registry's models; Activate asks the AI worker to verify and load one."""

    activateRequested = QtCore.Signal(str)

    COLUMNS = ("", "Name", "Version", "Source", "Created", "Threshold")

    def __init__(self, registry, active_name: str | None = None, parent: QtWidgets.QWidget | None = None,
                 agreement=None) -> None:
        super().__init__(parent)
        self.agreement = agreement  # card -> extra card sections (the readers' agreement)
        self.setWindowTitle("Models")
        self.resize(640, 320)
        self.registry = registry
        lay = QtWidgets.QVBoxLayout(self)
        self.table = QtWidgets.QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(list(self.COLUMNS))
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.doubleClicked.connect(lambda *_: self._show_card())
        lay.addWidget(self.table)
        self.note = QtWidgets.QLabel("")
        self.note.setWordWrap(True)
        lay.addWidget(self.note)
        bb = QtWidgets.QDialogButtonBox()
        self.activate_button = bb.addButton("Activate", QtWidgets.QDialogButtonBox.ActionRole)
        self.card_button = bb.addButton("Show card…", QtWidgets.QDialogButtonBox.ActionRole)
        bb.addButton(QtWidgets.QDialogButtonBox.Close)
        bb.rejected.connect(self.reject)
        self.activate_button.clicked.connect(self._activate)
        self.card_button.clicked.connect(self._show_card)
        lay.addWidget(bb)
        self.entries: list = []
        self.refresh(active_name)

    def refresh(self, active_name: str | None = None) -> None:
        try:
            self.entries = list(self.registry.list())
            if active_name is None:
                act = self.registry.active()
                active_name = act.name if act is not None else None
        except Exception as e:  # a broken registry folder must not take the dialog down
            self.entries = []
            self.note.setText(f"Could not read the model registry: {e}")
        self.table.setRowCount(len(self.entries))
        for r, e in enumerate(self.entries):
            vals = ("●" if e.name == active_name else "", e.name, e.version,
                    "bundled" if e.bundled else "user", e.created, str(e.card.get("threshold", "")))
            for c, v in enumerate(vals):
                self.table.setItem(r, c, QtWidgets.QTableWidgetItem(v))
        if self.entries:
            self.table.selectRow(0)
        elif not self.note.text():
            self.note.setText("No model is installed. Import one with `cxrviewer models import DIR`.")
        self.activate_button.setEnabled(bool(self.entries))
        self.card_button.setEnabled(bool(self.entries))

    def selected(self):
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.entries[rows[0].row()]

    def _activate(self) -> None:
        e = self.selected()
        if e is not None:
            self.note.setText(f"Activating {e.name}: verifying and loading in the background…")
            self.activateRequested.emit(e.name)

    def _show_card(self) -> None:
        e = self.selected()
        if e is not None:
            extra = self.agreement(e.card) if self.agreement is not None else ()
            ModelCardDialog(e.card, self, extra=extra).exec()
