"""Model menu dialogs: list the installed models, activate one, show a model card.

Listing reads only ``card.json`` files (cheap, GUI thread). Activating verifies the weights
(checksum, architecture: it needs torch), so it runs in the AI worker, which then loads the
model; the dialog only asks for it.
"""

from __future__ import annotations

import json
from typing import Any

from PySide6 import QtCore, QtWidgets

CARD_ORDER = (
    "name", "version", "created", "architecture", "classes", "threshold", "intended_use", "disclaimer",
    "training_data", "metrics", "preprocessing", "head", "weights_dtype", "weights_sha256",
)


def _fmt_metric(v: Any) -> str:
    if isinstance(v, dict):
        val = v.get("value")
        ci = v.get("ci95")
        split = v.get("split")
        s = f"{val:.3f}" if isinstance(val, (int, float)) else str(val)
        if isinstance(ci, (list, tuple)) and len(ci) == 2:
            s += f" (95% CI {ci[0]:.3f}–{ci[1]:.3f})"
        if split:
            s += f" on {split}"
        return s
    return str(v)


def card_html(card: dict) -> str:
    """A readable rendering of a model card (metrics with their intervals and split)."""
    import html

    rows = []
    keys = [k for k in CARD_ORDER if k in card] + sorted(k for k in card if k not in CARD_ORDER)
    for k in keys:
        v = card[k]
        if k == "metrics" and isinstance(v, dict):
            inner = "".join(f"<li><b>{html.escape(str(m))}</b>: {html.escape(_fmt_metric(mv))}</li>" for m, mv in v.items())
            val = f"<ul>{inner}</ul>"
        elif isinstance(v, (dict, list)):
            val = f"<pre>{html.escape(json.dumps(v, indent=2, default=str))}</pre>"
        else:
            val = html.escape(str(v))
        rows.append(f"<tr><td valign='top'><b>{html.escape(k)}</b></td><td>{val}</td></tr>")
    return "<table cellspacing='4'>" + "".join(rows) + "</table>"


class ModelCardDialog(QtWidgets.QDialog):
    """Shows one model card, formatted, with the raw JSON a click away."""

    def __init__(self, card: dict, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Model card — {card.get('name', '?')} {card.get('version', '')}")
        self.resize(640, 560)
        lay = QtWidgets.QVBoxLayout(self)
        tabs = QtWidgets.QTabWidget()
        self.view = QtWidgets.QTextBrowser()
        self.view.setHtml(card_html(card))
        tabs.addTab(self.view, "Card")
        raw = QtWidgets.QPlainTextEdit(json.dumps(card, indent=2, default=str))
        raw.setReadOnly(True)
        tabs.addTab(raw, "JSON")
        lay.addWidget(tabs)
        bb = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.Close)
        bb.rejected.connect(self.reject)
        bb.accepted.connect(self.accept)
        lay.addWidget(bb)


class ModelsDialog(QtWidgets.QDialog):
    """The registry's models; Activate asks the AI worker to verify and load one."""

    activateRequested = QtCore.Signal(str)

    COLUMNS = ("", "Name", "Version", "Source", "Created", "Threshold")

    def __init__(self, registry, active_name: str | None = None, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
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
            ModelCardDialog(e.card, self).exec()
