"""The "Reader call" dock: the reader's current call on the image being read, the buttons
(each the same ``QAction`` as its key), the optional note, per-finding verdicts for a
multi-finding model and the other readers' calls."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

from PySide6 import QtCore, QtGui, QtWidgets

from cxrviewer.feedback import Call, ModelOutput
from cxrviewer.ui.feedback.text import LABEL_COLOUR, LABEL_TEXT, call_line, model_words, when

#: per-finding choices: (text, stored verdict); flagged findings are agreed/disagreed with,
#: the model's other findings can be added as the reader's own
FLAGGED_CHOICES = (("—", None), ("Agree", "agree"), ("Disagree", "disagree"))
OTHER_CHOICES = (("—", None), ("Add (present)", "added"))


class CallPanel(QtWidgets.QWidget):
    """Shows one image's calls; sends intent through its signals and the actions it is given.

    Signals
    -------
    noteEdited(str)
        The reader pressed Enter in (or left) the note field with a changed text.
    verdictChanged(str, object)
        A finding's verdict was chosen (``None``: no verdict).
    readerChangeRequested()
        *Change…* beside the reader's name.
    """

    noteEdited = QtCore.Signal(str)
    verdictChanged = QtCore.Signal(str, object)
    readerChangeRequested = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("readerCallPanel")
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        lay.setSpacing(4)
        top = QtWidgets.QHBoxLayout()
        self.reader_label = QtWidgets.QLabel("")
        self.reader_label.setObjectName("readerName")
        self.reader_button = QtWidgets.QToolButton()
        self.reader_button.setText("Change…")
        self.reader_button.setAutoRaise(True)
        self.reader_button.setToolTip("Who is reading (kept in the settings; calls are kept per reader)")
        self.reader_button.clicked.connect(lambda _=False: self.readerChangeRequested.emit())
        top.addWidget(self.reader_label, 1)
        top.addWidget(self.reader_button)
        lay.addLayout(top)
        self.call_label = QtWidgets.QLabel("")
        self.call_label.setObjectName("readerCall")
        self.call_label.setWordWrap(True)
        self.call_label.setTextFormat(QtCore.Qt.TextFormat.RichText)
        lay.addWidget(self.call_label)
        self.detail_label = QtWidgets.QLabel("")
        self.detail_label.setWordWrap(True)
        self.detail_label.setStyleSheet("color: #b0b0b0;")
        lay.addWidget(self.detail_label)
        self.buttons_box = QtWidgets.QGridLayout()
        self.buttons_box.setSpacing(3)
        lay.addLayout(self.buttons_box)
        self.buttons: dict[str, QtWidgets.QToolButton] = {}
        self.note_edit = QtWidgets.QLineEdit()
        self.note_edit.setObjectName("readerNote")
        self.note_edit.setPlaceholderText("Optional note (Enter keeps it with the call)")
        self.note_edit.setClearButtonEnabled(True)
        self.note_edit.editingFinished.connect(self._note_done)
        self._note_shown = ""
        lay.addWidget(self.note_edit)
        self.findings_table = QtWidgets.QTableWidget(0, 3)
        self.findings_table.setObjectName("readerFindings")
        self.findings_table.setHorizontalHeaderLabels(["Finding", "AI", "Your verdict"])
        self.findings_table.verticalHeader().hide()
        self.findings_table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.findings_table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.NoSelection)
        h = self.findings_table.horizontalHeader()
        h.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Stretch)
        h.setSectionResizeMode(1, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        h.setSectionResizeMode(2, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        self.findings_table.hide()
        lay.addWidget(self.findings_table)
        self.combos: dict[str, QtWidgets.QComboBox] = {}
        self.others_label = QtWidgets.QLabel("")
        self.others_label.setObjectName("otherReaders")
        self.others_label.setWordWrap(True)
        self.others_label.setStyleSheet("color: #b0b0b0;")
        lay.addWidget(self.others_label)
        lay.addStretch(1)
        self.set_call(None, image=False)

    # ------------------------------------------------------------------ building
    def add_button(self, name: str, text: str, action: QtGui.QAction, row: int, col: int) -> QtWidgets.QToolButton:
        """A button that triggers ``action`` (the key and the button are one action)."""
        b = QtWidgets.QToolButton()
        b.setObjectName(f"call_{name}")
        b.setText(text)
        b.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextOnly)
        b.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed)
        b.setToolTip(action.toolTip())
        b.clicked.connect(lambda _=False: action.trigger())
        action.enabledChanged.connect(b.setEnabled)
        b.setEnabled(action.isEnabled())
        self.buttons_box.addWidget(b, row, col)
        self.buttons[name] = b
        return b

    # ------------------------------------------------------------------ showing
    def set_reader(self, reader: str) -> None:
        self.reader_label.setText(f"Reader: <b>{html.escape(reader)}</b>")

    def set_call(self, call: Call | None, image: bool = True, pending: Mapping[str, str] | None = None) -> None:
        """Show the reader's current call (``None``: none yet; ``image=False``: no image)."""
        if not image:
            self.call_label.setText("<i>No image</i>")
            self.detail_label.setText("Open an image to record your call.")
            self._set_note("")
            return
        if call is None:
            self.call_label.setText("<span style='font-size: 15px;'>No call yet</span>")
            hint = "N Normal · B Abnormal"
            self.detail_label.setText(hint + (" — your finding verdicts are kept with it" if pending else ""))
            self._set_note(self.note_edit.text() if self.note_edit.hasFocus() else "")
            return
        colour = LABEL_COLOUR.get(call.label or "", "#ffffff")
        self.call_label.setText(f"<span style='font-size: 15px; font-weight: bold; color: {colour};'>"
                                f"{LABEL_TEXT.get(call.label or '', call.label)}</span>")
        bits = [f"recorded {when(call.recorded_at)}"]
        mw = model_words(call)
        if mw:
            bits.append(mw)
        self.detail_label.setText(" · ".join(bits))
        self._set_note(call.note)

    def _set_note(self, text: str) -> None:
        self._note_shown = text
        if self.note_edit.text() != text:
            self.note_edit.setText(text)

    def _note_done(self) -> None:
        text = self.note_edit.text().strip()
        if text != self._note_shown.strip():
            self._note_shown = text
            self.noteEdited.emit(text)

    def note_text(self) -> str:
        return self.note_edit.text().strip()

    def set_others(self, calls: Sequence[Call]) -> None:
        self.others_label.setText("" if not calls else "Other readers:\n" + "\n".join(call_line(c) for c in calls))

    def set_findings(self, model: ModelOutput | None, verdicts: Mapping[str, str]) -> None:
        """One row per finding of a multi-finding model output (hidden without one)."""
        t = self.findings_table
        names = sorted(model.findings) if model is not None and model.scored else []
        flagged = set(model.flagged) if model is not None else set()
        self.combos = {}
        t.setRowCount(len(names))
        for r, name in enumerate(names):
            it = QtWidgets.QTableWidgetItem(name)
            t.setItem(r, 0, it)
            p = model.findings[name]
            ai = QtWidgets.QTableWidgetItem(f"{p:.2f}" + (" ●" if name in flagged else ""))
            ai.setToolTip("flagged by the model (at or above its operating point)" if name in flagged
                          else "not flagged by the model")
            t.setItem(r, 1, ai)
            combo = QtWidgets.QComboBox()
            combo.setObjectName(f"verdict_{name}")
            combo.setFocusPolicy(QtCore.Qt.FocusPolicy.ClickFocus)  # N/B/Y stay the call keys
            for text, value in (FLAGGED_CHOICES if name in flagged else OTHER_CHOICES):
                combo.addItem(text, value)
            i = combo.findData(verdicts.get(name))
            combo.setCurrentIndex(max(i, 0))
            combo.currentIndexChanged.connect(lambda _i, n=name, c=combo: self.verdictChanged.emit(n, c.currentData()))
            t.setCellWidget(r, 2, combo)
            self.combos[name] = combo
        t.setVisible(bool(names))
        if names:
            t.setFixedHeight(t.horizontalHeader().height() + sum(t.rowHeight(r) for r in range(len(names))) + 4)
