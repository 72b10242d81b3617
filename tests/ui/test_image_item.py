"""The canvas's image item: renders about screen resolution, straight to RGB32, with exactly
pyqtgraph's pixels."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6 import QtGui

from cxrviewer.ui.canvas.image_item import DecimatingImageItem


def _pixels(q: QtGui.QImage) -> np.ndarray:
    q = q.convertToFormat(QtGui.QImage.Format.Format_RGB32)
    return np.frombuffer(q.constBits(), np.uint32, count=q.width() * q.height()).copy()


@pytest.mark.parametrize("levels", [(1000, 3000), (0, 65535), (2000.5, 2000.7), (40000, 100)])
@pytest.mark.parametrize("inverted", [False, True])
def test_rgb32_render_equals_pyqtgraphs_indexed_render(qapp, levels, inverted):
    img = np.random.default_rng(0).integers(0, 65535, (120, 90), dtype=np.uint16)
    lut = np.arange(256, dtype=np.uint8)
    if inverted:
        lut = lut[::-1].copy()
    ref = pg.ImageItem(axisOrder="row-major")
    ref.setImage(img, autoLevels=False, levels=levels)
    ref.setLookupTable(lut)
    ref.render()
    ours = DecimatingImageItem(axisOrder="row-major")
    ours.setImage(img, autoLevels=False, levels=levels)
    ours.setLookupTable(lut)
    ours.render()
    assert ref.qimage.format() == QtGui.QImage.Format.Format_Indexed8
    assert ours.qimage.format() == QtGui.QImage.Format.Format_RGB32
    assert np.array_equal(_pixels(ours.qimage), _pixels(ref.qimage))


def test_the_image_item_renders_about_screen_resolution_and_keeps_the_full_array(qtbot):
    from cxrviewer.bench.display import synthetic_image
    from cxrviewer.ui.canvas.canvas import ImageCanvas

    img = synthetic_image(900, 700)
    c = ImageCanvas()
    qtbot.addWidget(c)
    c.resize(300, 300)
    c.show()
    qtbot.waitExposed(c)
    c.set_image(img)
    c.graphics.grab()
    it = c.image_item
    fx, fy = it.factors()
    assert fx >= 2 and fy >= 2  # ~900 rows in ~300 screen pixels
    q = it.qimage
    assert (q.width(), q.height()) == (len(range(0, 700, fx)), len(range(0, 900, fy)))
    assert it.image.shape == img.stored.shape and np.array_equal(it.image, img.stored)  # the full array stays
    # the rendered pixels are the window's LUT of the strided stored pixels
    lo, hi = it.levels
    r, col = 3, 5
    v = float(img.stored[r * fy, col * fx])
    want = np.clip((v - lo) / (hi - lo) * 255.0, 0, 255)
    assert abs(QtGui.QColor(q.pixel(col, r)).red() - want) <= 1.0
    c.one_to_one()
    c.graphics.grab()
    assert it.factors() == (1, 1) and it.qimage.width() == 700
