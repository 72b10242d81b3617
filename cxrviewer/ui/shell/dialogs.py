"""Dialogs and panels: DICOM tag browser, keyboard shortcuts, About, export options, the
unreadable-files panel."""

from __future__ import annotations

import os
import sys

from PySide6 import QtCore, QtGui, QtWidgets

from cxrviewer.core.types import FileError

# ---------------------------------------------------------------- tag browser


def dataset_rows(ds, depth: int = 0) -> list[tuple[str, str, str, str, int]]:
    """``(tag, keyword/name, VR, value, depth)`` for every element, sequences expanded.

    Pixel data and other long binary values are summarised, never dumped.
    """
    rows: list[tuple[str, str, str, str, int]] = []
    for elem in ds:
        tag = f"({elem.tag.group:04X},{elem.tag.element:04X})"
        name = elem.keyword or elem.name
        vr = str(elem.VR)
        if vr == "SQ":
            rows.append((tag, name, vr, f"{len(elem.value)} item(s)", depth))
            for i, item in enumerate(elem.value):
                rows.append(("", f"Item {i + 1}", "", "", depth + 1))
                rows.extend(dataset_rows(item, depth + 2))
            continue
        if vr in ("OB", "OW", "OF", "OD", "OL", "OV", "UN") or elem.tag == 0x7FE00010:
            try:
                n = len(elem.value) if elem.value is not None else 0
            except TypeError:
                n = 0
            val = f"<{n} bytes>"
        else:
            try:
                val = str(elem.value)
            except Exception:  # noqa: BLE001 - a malformed value still gets a row
                val = "<unreadable>"
            if len(val) > 200:
                val = val[:200] + "…"
        rows.append((tag, name, vr, val, depth))
    return rows


class TagBrowser(QtWidgets.QDialog):
    """Read-only DICOM header view with a filter box (matches tag, keyword or value)."""

    def __init__(self, path: str, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"DICOM tags — {os.path.basename(path)}")
        self.resize(820, 640)
        self.filter = QtWidgets.QLineEdit(self)
        self.filter.setPlaceholderText("Filter by tag, keyword or value (e.g. 0028, Window, MONOCHROME)")
        self.filter.setClearButtonEnabled(True)
        self.table = QtWidgets.QTreeWidget(self)
        self.table.setHeaderLabels(["Tag", "Keyword", "VR", "Value"])
        self.table.setRootIsDecorated(False)
        self.table.setAlternatingRowColors(True)
        self.table.setUniformRowHeights(True)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(self.filter)
        lay.addWidget(self.table)
        bb = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close, self)
        bb.rejected.connect(self.reject)
        lay.addWidget(bb)
        self.rows: list[tuple[str, str, str, str, int]] = []
        try:
            from cxrviewer.core.dicom_io import read_dataset

            ds = read_dataset(path, stop_before_pixels=True)
            if getattr(ds, "file_meta", None) is not None and len(ds.file_meta):
                self.rows.extend(dataset_rows(ds.file_meta))
            self.rows.extend(dataset_rows(ds))
        except Exception as e:  # noqa: BLE001 - shown in the dialog
            self.rows = [("", "error", "", str(e), 0)]
        for tag, name, vr, val, depth in self.rows:
            it = QtWidgets.QTreeWidgetItem(["  " * depth + tag, "  " * depth + name, vr, val])
            it.setToolTip(3, val)
            self.table.addTopLevelItem(it)
        for c in range(3):
            self.table.resizeColumnToContents(c)
        self.filter.textChanged.connect(self.apply_filter)

    def apply_filter(self, text: str) -> int:
        """Hide rows not matching ``text`` (case-insensitive); returns the visible count."""
        t = text.strip().lower().replace("(", "").replace(")", "")
        n = 0
        for i in range(self.table.topLevelItemCount()):
            it = self.table.topLevelItem(i)
            hay = " ".join(it.text(c) for c in range(4)).lower().replace("(", "").replace(")", "")
            show = not t or t in hay
            it.setHidden(not show)
            n += show
        return n


# ------------------------------------------------------------- shortcuts/about

MOUSE_HELP = [
    ("Left drag", "the selected tool (toolbar): Window/Level (default), Pan, Zoom, Ruler, Probe"),
    ("Right drag", "Window/Level, always: drag right = wider window, left = narrower; "
                   "drag down = higher level (center), up = lower level"),
    ("Middle drag", "Pan"),
    ("Wheel", "Zoom about the pointer"),
    ("Click a measurement", "select it (a ruler, an angle...); Delete removes it"),
    ("Mouse move", "pixel probe in the status bar (stored value, modality value, row/col, mm)"),
]


class ShortcutsDialog(QtWidgets.QDialog):
    """Every action with its shortcut, grouped by menu, plus the mouse mapping.

    ``actions``: rows from :func:`cxrviewer.ui.shell.shortcuts.action_rows` (generated from the
    window's real actions, so the list cannot drift), or plain ``QAction`` objects.
    """

    def __init__(self, actions: list, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts and mouse")
        self.resize(640, 620)
        tree = QtWidgets.QTreeWidget(self)
        tree.setHeaderLabels(["Action", "Shortcut"])
        tree.setRootIsDecorated(True)
        mouse = QtWidgets.QTreeWidgetItem(["Mouse", ""])
        for k, v in MOUSE_HELP:
            c = QtWidgets.QTreeWidgetItem([k, v])
            c.setToolTip(1, v)
            mouse.addChild(c)
        tree.addTopLevelItem(mouse)
        keys = QtWidgets.QTreeWidgetItem(["Keyboard", ""])
        groups: dict[str, QtWidgets.QTreeWidgetItem] = {}
        seen = set()
        #: (group, action text, shortcut) as listed, for tests
        self.rows: list[tuple[str, str, str]] = []
        for a in actions:
            group = getattr(a, "group", "")
            if isinstance(a, QtGui.QAction):
                text = a.text().replace("&", "").rstrip(".…")
                sc = ", ".join(s.toString(QtGui.QKeySequence.SequenceFormat.NativeText) for s in a.shortcuts())
            else:
                text, sc = a.text, a.shortcut
            if not text or (group, text, sc) in seen:
                continue
            seen.add((group, text, sc))
            self.rows.append((group, text, sc))
            parent_item = keys
            if group:
                if group not in groups:
                    groups[group] = QtWidgets.QTreeWidgetItem([group, ""])
                    tree.addTopLevelItem(groups[group])
                parent_item = groups[group]
            parent_item.addChild(QtWidgets.QTreeWidgetItem([text, sc]))
        keys.addChild(QtWidgets.QTreeWidgetItem(["Previous / next image", "Page Up / Page Down"]))
        tree.addTopLevelItem(keys)
        tree.expandAll()
        mouse.setExpanded(False)
        tree.resizeColumnToContents(0)
        self.tree = tree
        lay = QtWidgets.QVBoxLayout(self)
        # The mouse mapping in full (the tree column would elide it).
        mouse_text = QtWidgets.QLabel(
            "<b>Mouse</b><br>" + "<br>".join(f"<b>{k}</b>: {v}" for k, v in MOUSE_HELP), self
        )
        mouse_text.setWordWrap(True)
        mouse_text.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.mouse_label = mouse_text
        lay.addWidget(mouse_text)
        lay.addWidget(tree)
        bb = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close, self)
        bb.rejected.connect(self.reject)
        lay.addWidget(bb)


def about_text(extra: list[tuple[str, str]] | None = None) -> str:
    """The About text with the versions of the libraries that decide what is shown.

    ``extra`` adds rows (the AI layer adds torch, model and device).
    """
    import numpy
    import pydicom
    import pyqtgraph
    import PySide6

    from cxrviewer import __version__

    rows = [
        ("cxrviewer", __version__),
        ("Qt", QtCore.qVersion()),
        ("PySide6", PySide6.__version__),
        ("pyqtgraph", pyqtgraph.__version__),
        ("pydicom", pydicom.__version__),
        ("numpy", numpy.__version__),
        ("Python", sys.version.split()[0]),
    ]
    rows.extend(extra or [])
    table = "".join(f"<tr><td><b>{k}</b></td><td>&nbsp;{v}</td></tr>" for k, v in rows)
    return (
        "<h3>cxrviewer</h3>"
        "<p>Chest X-ray viewer with a research Normal/Abnormal model and Grad-CAM heatmaps.</p>"
        "<p><b>Not a diagnostic device.</b> Heatmaps show where the model looked, not where disease is.</p>"
        f"<table>{table}</table>"
    )


#: Extra rows for the About dialog, appended by other layers (e.g. torch, model, device).
ABOUT_EXTRA: list = []


def show_about(parent: QtWidgets.QWidget) -> QtWidgets.QMessageBox:
    from cxrviewer.about import about_info  # torch/ORT versions only if already imported

    loaded = getattr(getattr(getattr(parent, "ai", None), "controller", None), "model", None)
    rows = [(k, v) for k, v in about_info(loaded).items() if k not in ("cxrviewer", "Qt", "Python")]
    for item in ABOUT_EXTRA:
        try:
            rows.extend(item() if callable(item) else [item])
        except Exception as e:  # noqa: BLE001
            rows.append(("(error)", str(e)))
    box = QtWidgets.QMessageBox(parent)
    box.setWindowTitle("About cxrviewer")
    box.setTextFormat(QtCore.Qt.TextFormat.RichText)
    box.setText(about_text(rows))
    box.setStandardButtons(QtWidgets.QMessageBox.StandardButton.Ok)
    box.open()
    return box


# -------------------------------------------------------------------- export


class ExportDialog(QtWidgets.QDialog):
    """Options for File -> Export screenshot: what, format, anonymize, annotations."""

    def __init__(self, parent: QtWidgets.QWidget | None = None, start_dir: str = ""):
        super().__init__(parent)
        self.setWindowTitle("Export screenshot")
        self.screen_rb = QtWidgets.QRadioButton("What is on screen", self)
        self.native_rb = QtWidgets.QRadioButton("Whole image at native resolution", self)
        self.screen_rb.setChecked(True)
        self.anonymize = QtWidgets.QCheckBox("Anonymize (no name, ID, birth date, accession, institution)", self)
        self.annotations = QtWidgets.QCheckBox("Burn in annotations (corner text, rulers)", self)
        self.annotations.setChecked(True)
        self.format = QtWidgets.QComboBox(self)
        self.format.addItems(["PNG", "JPEG"])
        lay = QtWidgets.QFormLayout(self)
        box = QtWidgets.QVBoxLayout()
        box.addWidget(self.screen_rb)
        box.addWidget(self.native_rb)
        lay.addRow("Export", box)
        lay.addRow("Format", self.format)
        lay.addRow("", self.anonymize)
        lay.addRow("", self.annotations)
        bb = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Save | QtWidgets.QDialogButtonBox.StandardButton.Cancel, self
        )
        self.copy_button = bb.addButton("Copy to clipboard", QtWidgets.QDialogButtonBox.ButtonRole.ActionRole)
        bb.accepted.connect(self.accept)
        bb.rejected.connect(self.reject)
        lay.addRow(bb)

    def options(self) -> dict:
        return {
            "native": self.native_rb.isChecked(),
            "anonymize": self.anonymize.isChecked(),
            "annotations": self.annotations.isChecked(),
            "format": self.format.currentText(),
        }


# --------------------------------------------------------------- error panel


class ErrorPanel(QtWidgets.QWidget):
    """Files that could not be read, with the reason (from the scan and from decoding)."""

    countChanged = QtCore.Signal(int)

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.table = QtWidgets.QTreeWidget(self)
        self.table.setHeaderLabels(["File", "Reason"])
        self.table.setRootIsDecorated(False)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.table)
        self._paths: set[str] = set()

    def clear(self) -> None:
        self.table.clear()
        self._paths.clear()
        self.countChanged.emit(0)

    def add(self, err: FileError) -> bool:
        if err.path in self._paths:
            return False
        self._paths.add(err.path)
        it = QtWidgets.QTreeWidgetItem([os.path.basename(err.path) or err.path, err.reason])
        it.setToolTip(0, err.path)
        it.setToolTip(1, err.reason)
        self.table.addTopLevelItem(it)
        self.table.resizeColumnToContents(0)
        self.countChanged.emit(len(self._paths))
        return True

    def errors(self) -> list[tuple[str, str]]:
        """``(path, reason)`` of every listed file."""
        out = []
        for i in range(self.table.topLevelItemCount()):
            it = self.table.topLevelItem(i)
            out.append((it.toolTip(0), it.text(1)))
        return out
