"""Orientation letters on the canvas (turning with rotate/flip) and in native exports; no
letters when the header has no orientation."""

from __future__ import annotations

import numpy as np
from conftest import ramp, show_image, write_cr


def _edges(w):
    return {e: w.canvas.findChild(type(w.canvas._labels["top"]), f"edge_{e}").text() for e in ("top", "right", "bottom", "left")}


def _render(label, background):
    from PySide6 import QtCore, QtGui, QtWidgets

    pm = QtGui.QPixmap(label.size())
    pm.fill(QtGui.QColor(background))
    # over the background, as on the image (no window background of its own)
    label.render(pm, QtCore.QPoint(0, 0), QtGui.QRegion(), QtWidgets.QWidget.RenderFlag.DrawChildren)
    img = pm.toImage().convertToFormat(QtGui.QImage.Format.Format_RGB888)
    w, h, bpl = img.width(), img.height(), img.bytesPerLine()
    return np.frombuffer(bytes(img.constBits()), np.uint8).reshape(h, bpl)[:, : w * 3].reshape(h, w, 3).astype(int)


def test_letters_outlined_follow_rotate_and_flip_reach_the_export_and_need_a_header(qtbot, viewer, rg1_unci, tmp_path):
    """One window (these were three window tests): the letters' outline, RG1's letters turning
    with rotate/flip and burned into a native export, no letters without orientation."""
    # the reader's bug: the yellow R/L with a shadow to one side vanished over a yellow/red heatmap
    lab = viewer.canvas._labels["left"]
    lab.setText("R")
    lab.adjustSize()
    glyph = _render(lab, "black").sum(axis=2) > 300  # the letter itself (bright on black)
    assert glyph.any()
    for heat in ("#ffffa0", "#ffff00", "#ff0000", "#00ffff"):  # its own colour and the jet extremes
        dark = _render(lab, heat).sum(axis=2) < 150  # the outline
        ys, xs = np.nonzero(glyph)
        dys, dxs = np.nonzero(dark)
        # dark pixels on every side of the letter, not only below-right as a drop shadow gives
        assert dxs.min() < xs.min() and dxs.max() > xs.max(), heat
        assert dys.min() < ys.min() and dys.max() > ys.max(), heat

    show_image(qtbot, viewer, rg1_unci)
    assert _edges(viewer) == {"top": "H", "right": "L", "bottom": "F", "left": "R"}
    viewer.act_rot_cw.trigger()
    assert _edges(viewer) == {"top": "R", "right": "H", "bottom": "L", "left": "F"}
    viewer.act_flip_h.trigger()
    assert _edges(viewer) == {"top": "R", "right": "F", "bottom": "L", "left": "H"}
    lab = viewer.canvas._labels["right"]
    assert lab.isVisible() and lab.x() > viewer.canvas.width() // 2
    viewer.act_overlay.trigger()  # Corner Text off hides the letters too
    assert not lab.isVisible()
    viewer.act_overlay.trigger()
    # Native export: the letters are burned in at the edge midpoints (only there, with no
    # corner text the rest of the edges stays as rendered).
    viewer.act_reset.trigger()
    with_letters = viewer.canvas.render_array(native=True)
    img = viewer.current_image
    from cxrviewer.render.compose import compose_export

    plain = compose_export(img, viewer.canvas.current_preset(), annotations=False)
    plain = np.repeat(plain[..., None], 3, axis=2) if plain.ndim == 2 else plain
    diff = np.any(with_letters != plain, axis=2)
    h, w = diff.shape
    mid_right = diff[h // 2 - h // 20: h // 2 + h // 20, w - w // 15:]
    mid_left = diff[h // 2 - h // 20: h // 2 + h // 20, : w // 15]
    assert mid_right.any() and mid_left.any()
    # yellow-ish letters: red and green high, blue lower
    yl = with_letters[h // 2 - h // 20: h // 2 + h // 20, w - w // 15:].reshape(-1, 3).astype(int)
    assert ((yl[:, 0] > 200) & (yl[:, 1] > 200) & (yl[:, 2] < 200)).any()

    # no orientation in the header: no letters, turned or not
    show_image(qtbot, viewer, write_cr(tmp_path / "a.dcm", ramp()))
    assert set(_edges(viewer).values()) == {""}
    viewer.act_rot_cw.trigger()
    assert set(_edges(viewer).values()) == {""}
