"""W/L sync between images of very different value ranges (found hanging a 15-bit CR beside an
8-bit JPEG CR: one right-drag on the CR swept the 8-bit image to a window of 3470 on values
0-255, i.e. black, and random drags left one at width 1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import drag, open_and_wait, write_cr
from PySide6 import QtCore

from cxrviewer.ui.canvas.viewports import SAME_RANGE, range_ratio


def _open(qtbot, w, index, path):
    with qtbot.waitSignal(w.viewports.opened, timeout=15000, check_params_cb=lambda i, _img: i == index):
        w.viewports.open(index, str(path))


def test_wl_sync_scales_the_offset_to_an_image_of_another_range(qtbot, viewer, tmp_path):
    rng = np.random.default_rng(3)
    wide = write_cr(tmp_path / "a_15bit.dcm", rng.integers(900, 26000, (96, 96)).astype(np.uint16))
    narrow = write_cr(tmp_path / "b_8bit.dcm", rng.integers(0, 256, (96, 96)).astype(np.uint16))
    same = write_cr(tmp_path / "c_15bit.dcm", rng.integers(1000, 25000, (96, 96)).astype(np.uint16))
    open_and_wait(qtbot, viewer, Path(wide).parent)
    g = viewer.viewports
    g.set_layout("2x2")
    _open(qtbot, viewer, 0, wide)
    _open(qtbot, viewer, 1, narrow)
    _open(qtbot, viewer, 2, same)
    g.set_active(0)
    g.set_sync(wl=True)
    c0, c1, c2 = g.canvas(0), g.canvas(1), g.canvas(2)
    k = range_ratio(c0, c1)
    assert k < 1 / SAME_RANGE and range_ratio(c0, c2) == 1.0
    (a_c, a_w), (b_c, b_w), (s_c, s_w) = c0.window(), c1.window(), c2.window()
    drag(c0, QtCore.Qt.MouseButton.RightButton, QtCore.QPoint(100, 100), QtCore.QPoint(160, 140))
    (a_c2, a_w2), (b_c2, b_w2), (s_c2, s_w2) = c0.window(), c1.window(), c2.window()
    dc, dw = a_c2 - a_c, a_w2 - a_w
    assert abs(dc) > 200 and abs(dw) > 200  # a drag of the 15-bit image's size
    # the image of the same range: the same offset in modality values
    assert (s_c2 - s_c, s_w2 - s_w) == pytest.approx((dc, dw))
    # the 8-bit one: the offset scaled to its range, so it stays a window on its values
    assert (b_c2 - b_c, b_w2 - b_w) == pytest.approx((dc * k, dw * k), rel=1e-6)
    assert b_w2 < 1024 and -256 < b_c2 < 512
