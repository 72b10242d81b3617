"""Looking at an image in the real main window: the probe (modality values in the status bar),
the wheel's zoom about the pointer, 1:1 and fit, the aspect of non-square pixels, the tag
browser, a copy to the clipboard, and the magnifier loupe.

(The first five were one-check window tests in test_viewer.py; one window reads them now.)"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import image_point_to_viewport, ramp, show_image, write_cr
from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtTest import QTest


def test_probe_zoom_tags_clipboard_and_aspect_on_one_window(qtbot, viewer, tmp_path):
    w = viewer
    # the probe reports modality values (Rescale Slope/Intercept, HU) and mm
    px = ramp(50, 60)
    show_image(qtbot, w, write_cr(tmp_path / "a.dcm", px, slope=2.0, intercept=-1024.0,
                                  rescale_type="HU", pixel_spacing=(0.5, 0.5)))
    c = w.canvas
    info = c.probe_at(12.5, 20.5)  # x = column 12, y = row 20
    assert (info.row, info.col) == (20, 12)
    assert info.stored == px[20, 12]
    assert info.modality == pytest.approx(2.0 * px[20, 12] - 1024.0)
    assert info.units == "HU"
    assert info.x_mm == pytest.approx(12.5 * 0.5) and info.mm_label == "mm"
    assert c.probe_at(-1, 3) is None
    # a real mouse move reaches the status bar
    vp_pos = image_point_to_viewport(c, 30.5, 10.5)
    with qtbot.waitSignal(c.probed, timeout=3000) as blocker:
        QTest.mouseMove(c.graphics.viewport(), vp_pos)
    got = blocker.args[0]
    assert got is not None and abs(got.row - 10) <= 1 and abs(got.col - 30) <= 1
    assert got.modality == pytest.approx(2.0 * px[got.row, got.col] - 1024.0)
    assert "HU" in w.probe_label.text()

    # the wheel zooms about the pointer; 1:1 and fit from the menu
    z0 = c.zoom()
    vp = c.graphics.viewport()
    pos = QtCore.QPointF(vp.width() / 2, vp.height() / 2)
    ev = QtGui.QWheelEvent(pos, QtCore.QPointF(vp.mapToGlobal(pos.toPoint())), QtCore.QPoint(0, 0),
                           QtCore.QPoint(0, 240), QtCore.Qt.MouseButton.NoButton,
                           QtCore.Qt.KeyboardModifier.NoModifier, QtCore.Qt.ScrollPhase.NoScrollPhase, False)
    QtWidgets.QApplication.sendEvent(vp, ev)
    assert c.zoom() > z0 * 1.1
    w.act_one.trigger()
    assert c.zoom() == pytest.approx(1.0, rel=0.02)
    w.act_fit.trigger()
    assert c.zoom() == pytest.approx(z0, rel=0.02)

    # the tag browser filters by name, by tag and finds nothing for nonsense
    dlg = w.show_tags()
    assert dlg is not None
    total = dlg.apply_filter("")
    assert total > 15
    assert dlg.apply_filter("PatientID") >= 1
    assert dlg.apply_filter("0028,0010") == 1  # Rows
    assert dlg.apply_filter("no-such-thing-xyz") == 0
    dlg.close()

    # Copy puts the view on the clipboard
    QtGui.QGuiApplication.clipboard().clear()
    w.act_copy.trigger()
    q = QtGui.QGuiApplication.clipboard().image()
    assert not q.isNull() and q.width() == c.width()

    # non-square pixels set the aspect ratio: rows 0.4 mm high, columns 0.2 mm wide
    show_image(qtbot, w, write_cr(tmp_path / "b.dcm", ramp(40, 40), pixel_spacing=(0.4, 0.2)))
    t = w.canvas.image_transform()
    width = t.map(QtCore.QPointF(40, 0)).x() - t.map(QtCore.QPointF(0, 0)).x()
    height = t.map(QtCore.QPointF(0, 40)).y() - t.map(QtCore.QPointF(0, 0)).y()
    assert height == pytest.approx(2 * width)


def test_the_magnifier_loupe_shows_the_view_around_the_cursor(qtbot, viewer, tmp_path):
    from conftest import _send

    from cxrviewer.ui.canvas.magnifier import Loupe

    y, x = np.indices((80, 100))
    board = np.where(((x // 7) + (y // 5)) % 2 == 0, 600, 3400).astype(np.uint16)  # structure to recognise
    show_image(qtbot, viewer, write_cr(tmp_path / "m.dcm", board, window=(2000.0, 4000.0)))
    c = viewer.canvas
    viewer.tool_actions["magnify"].trigger()
    assert c.tool() == "magnify" and viewer.tool_actions["magnify"].shortcut().toString() == "M"
    vp = c.graphics.viewport()
    T, L, NoB = QtCore.QEvent.Type, QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.MouseButton.NoButton
    start = image_point_to_viewport(c, 50, 40)
    end = start + QtCore.QPoint(12, 6)

    def rgb(pm):
        img = pm.toImage().convertToFormat(QtGui.QImage.Format.Format_RGB888)
        w, h, bpl = img.width(), img.height(), img.bytesPerLine()
        return np.frombuffer(bytes(img.constBits()), np.uint8).reshape(h, bpl)[:, : w * 3].reshape(h, w, 3)

    Loupe.set_factor(2.0)
    _send(vp, T.MouseButtonPress, start, L, L)
    for k in range(1, 6):
        _send(vp, T.MouseMove, start + (end - start) * (k / 5), NoB, L)
        QtWidgets.QApplication.processEvents()
    loupe = c.loupe
    for factor in (2.0, 4.0):  # the zoom may change while it is shown (the menu)
        Loupe.set_factor(factor)  # redraws the loupe on screen at once
        assert loupe.isVisible()
        # centred on the cursor (pyqtgraph rate-limits moves: the last one it took, on the path)
        at = vp.mapFromGlobal(c.mapToGlobal(loupe.geometry().center()))
        assert start.x() - 2 <= at.x() <= end.x() + 2 and start.y() - 2 <= at.y() <= end.y() + 2
        # and shows the view's pixels around it, magnified
        mag = rgb(loupe.pixmap())
        n = round((Loupe.SIZE - 4) / factor)
        src = rgb(vp.grab(QtCore.QRect(at.x() - n // 2, at.y() - n // 2, n, n)))
        small = mag[:: round(factor), :: round(factor)][: src.shape[0], : src.shape[1]].astype(int)
        err = np.abs(small - src.astype(int)).mean()
        off = rgb(vp.grab(QtCore.QRect(at.x() - n // 2 + 9, at.y() - n // 2 + 6, n, n))).astype(int)
        assert err < 20 and err < np.abs(small - off).mean() / 2  # that region, not one beside it
    _send(vp, T.MouseButtonRelease, end, L, NoB)
    assert not loupe.isVisible()
    Loupe.set_factor(9)
    assert Loupe.factor == 4.0  # 2–4×
    Loupe.set_factor(2.0)
