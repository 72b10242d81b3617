"""Dark theme by default: a Fusion palette plus ``resources/styles/dark.qss``."""

from __future__ import annotations

from PySide6 import QtGui, QtWidgets


def apply_dark_theme(app: QtWidgets.QApplication) -> None:
    """Fusion style with a dark palette (dialogs and native widgets follow it) and the QSS."""
    app.setStyle("Fusion")
    p = QtGui.QPalette()
    C = QtGui.QPalette.ColorRole
    dark, base, text = QtGui.QColor(30, 31, 34), QtGui.QColor(23, 24, 26), QtGui.QColor(216, 216, 216)
    p.setColor(C.Window, dark)
    p.setColor(C.WindowText, text)
    p.setColor(C.Base, base)
    p.setColor(C.AlternateBase, QtGui.QColor(28, 29, 32))
    p.setColor(C.ToolTipBase, QtGui.QColor(43, 45, 49))
    p.setColor(C.ToolTipText, text)
    p.setColor(C.Text, text)
    p.setColor(C.Button, QtGui.QColor(48, 50, 56))
    p.setColor(C.ButtonText, text)
    p.setColor(C.BrightText, QtGui.QColor(255, 80, 80))
    p.setColor(C.Highlight, QtGui.QColor(47, 95, 143))
    p.setColor(C.HighlightedText, QtGui.QColor(255, 255, 255))
    p.setColor(C.Link, QtGui.QColor(90, 160, 230))
    p.setColor(QtGui.QPalette.ColorGroup.Disabled, C.Text, QtGui.QColor(110, 110, 110))
    p.setColor(QtGui.QPalette.ColorGroup.Disabled, C.ButtonText, QtGui.QColor(110, 110, 110))
    app.setPalette(p)
    try:
        from cxrviewer.paths import resource

        qss = resource("styles", "dark.qss")
        if qss.is_file():
            app.setStyleSheet(qss.read_text(encoding="utf-8"))
    except OSError:
        pass  # the palette alone is a usable dark theme
