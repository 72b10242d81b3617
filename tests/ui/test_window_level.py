"""Window/level in the real main window, on one image, along one reader's path: the file's
window first, presets from the panel, the keys and the menu, the histogram, typed values, mouse
drags (right and left), pan mode, and a sigmoid preset rendered by the core pipeline.

(These were seven one-image window tests in test_viewer.py; their checks are all here.)"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import drag, ramp, show_image, write_cr
from PySide6 import QtCore
from PySide6.QtTest import QTest

from cxrviewer.core.display import levels_for_preset, render
from cxrviewer.core.types import WindowPreset


def test_window_level_by_presets_keys_histogram_typing_and_drags(qtbot, viewer, tmp_path):
    w = viewer
    img = show_image(qtbot, w, write_cr(tmp_path / "a.dcm", ramp(), window=(1500.0, 2000.0)))
    c, panel = w.canvas, w.wl_panel
    # presets: the file's window is the default; Auto, Bone by its key 1..9, a typed width
    assert c.window() == (1500.0, 2000.0)
    names = [p.name for p in panel.presets]
    assert "Auto" in names and "Lung" in names and "Bone" in names
    assert panel.apply_preset_name("Auto")
    assert c.window() == pytest.approx((img.auto_preset.center, img.auto_preset.width))
    bone = next(p for p in panel.presets if p.name == "Bone")
    w.preset_actions[names.index("Bone")].trigger()  # keyboard 1..9
    assert c.window() == pytest.approx((bone.center, bone.width))
    assert c.image_item.getLevels() == pytest.approx(levels_for_preset(img, bone))
    assert panel.combo.currentText() == "Bone"
    panel.width.setValue(777)
    assert c.window()[1] == pytest.approx(777)
    w.act_auto.trigger()
    assert c.window() == pytest.approx((img.auto_preset.center, img.auto_preset.width))

    # the histogram's region sets the window (what a drag of the region does)
    panel.hist.setLevels(1000.0, 1999.0)
    assert c.window() == pytest.approx((1500.0, 1000.0))
    assert panel.center.value() == pytest.approx(1500)

    # digits typed into the width box are a width, not preset keys
    sb = panel.width
    sb.setFocus()
    sb.selectAll()
    QTest.keyClicks(sb, "1234")
    QTest.keyClick(sb, QtCore.Qt.Key.Key_Return)
    assert c.window()[1] == pytest.approx(1234)
    assert c.current_preset().source == "user"

    # single-key shortcuts reach the canvas: 2 = Auto (1 is the file's), R rotates
    w.activateWindow()
    c.setFocus()
    QTest.keyClick(c, QtCore.Qt.Key.Key_2)
    assert c.window() == pytest.approx((img.auto_preset.center, img.auto_preset.width))
    QTest.keyClick(c, QtCore.Qt.Key.Key_R)
    assert c.view_state().rotation == 1
    w.act_reset.trigger()
    assert c.view_state().is_identity

    # right drag: right = wider, down = higher level, left = narrower
    c0, w0 = c.window()
    mid = QtCore.QPoint(c.graphics.width() // 2, c.graphics.height() // 2)
    drag(c, QtCore.Qt.MouseButton.RightButton, mid, mid + QtCore.QPoint(120, 0))
    c1, w1 = c.window()
    assert w1 > w0 and c1 == pytest.approx(c0)
    drag(c, QtCore.Qt.MouseButton.RightButton, mid, mid + QtCore.QPoint(0, 80))
    c2, w2 = c.window()
    assert c2 > c1 and w2 == pytest.approx(w1)
    drag(c, QtCore.Qt.MouseButton.RightButton, mid, mid - QtCore.QPoint(200, 0))
    assert c.window()[1] < w2
    # the canvas levels are exactly the core's levels for that window, on the stored array
    lo, hi = c.image_item.getLevels()
    elo, ehi = levels_for_preset(img, c.current_preset())
    assert (lo, hi) == pytest.approx((elo, ehi))
    assert c.shown_array() is img.stored
    assert panel.width.value() == pytest.approx(c.window()[1], abs=1)  # the W/L panel followed

    # left drag is window/level by default, pan in pan mode (the window then stays)
    w0 = c.window()[1]
    drag(c, QtCore.Qt.MouseButton.LeftButton, mid, mid + QtCore.QPoint(60, 0))
    assert c.window()[1] > w0
    w.tool_actions["pan"].trigger()
    assert c.tool() == "pan"
    r0 = c.view_box.viewRect()
    win = c.window()
    drag(c, QtCore.Qt.MouseButton.LeftButton, mid, mid + QtCore.QPoint(50, 30))
    r1 = c.view_box.viewRect()
    assert r1.x() < r0.x() and r1.y() < r0.y()  # content follows the mouse
    assert c.window() == win

    # a sigmoid preset is rendered by the core pipeline; back to LINEAR: the stored array again
    p = WindowPreset("S", 1500, 1000, "SIGMOID", "user")
    c.set_preset(p)
    assert np.array_equal(c.image_item.image, render(img, p, apply_invert=False))
    c.set_window(1500, 1000)
    assert c.shown_array() is img.stored
