"""The AI panel at 1280x720: its controls keep their height (the dock scrolls) instead of
being pressed below their minimum and drawn over each other, as an Xvfb screenshot showed."""

from __future__ import annotations

from conftest import show_image
from PySide6 import QtWidgets


def test_ai_panel_controls_keep_their_height_at_1280x720(qtbot, viewer, rg1_unci):
    show_image(qtbot, viewer, rg1_unci)
    viewer.resize(1280, 720)
    for _ in range(5):
        QtWidgets.QApplication.processEvents()
    panel = viewer.ai.panel
    squeezed = [
        (type(c).__name__, c.objectName() or getattr(c, "text", lambda: "")(), c.height(), c.minimumSizeHint().height())
        for c in panel.findChildren(QtWidgets.QWidget)
        if c.isVisible() and isinstance(c, (QtWidgets.QAbstractButton, QtWidgets.QSlider, QtWidgets.QComboBox))
        and c.height() < c.minimumSizeHint().height()
    ]
    assert squeezed == []
