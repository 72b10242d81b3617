"""The radiograph's ``ImageItem``: renders at most about screen resolution.

A W/L step re-renders the image item: pyqtgraph passes *every* stored pixel through the
window's lookup table (5.1 M pixels at 2500x2048) although a fitted view shows a third of them
or fewer, and Qt then scales the result down with nearest-neighbour sampling. Two synced
viewports pay that twice per step, which kept them under 60 fps. This item renders a strided
copy of the stored array instead (every n-th row/column, n = stored pixels per screen pixel,
rounded down, so it is still at least screen resolution), made once per image and zoom step
and kept. What is drawn is what Qt's nearest-neighbour scaling showed before; zoomed to 1:1
or closer, it is the whole array as before.

pyqtgraph's own ``autoDownsample`` is not used: it averages blocks anew on every render, which
costs more than the lookup it saves. The rendered indexed image is converted to RGB32 once,
as :class:`cxrviewer.ui.ai.heatmap.HeatImageItem` does for the heatmap, so paints (pan, zoom,
the other viewport's repaint) do not convert it again.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pyqtgraph.functions as fn
from PySide6 import QtGui


def levels_index(levels, n_colors: int = 256) -> np.ndarray:
    """For every uint16 value, the lookup-table index pyqtgraph gives it for ``levels``.

    The same arithmetic as pyqtgraph's per-pixel path for a uint16 image with a <= 256-entry
    table (``rescaleData(v, n / (hi - lo), lo, uint8, clip=(0, n - 1))``), done once on the
    65536 possible values instead of on every pixel.
    """
    from pyqtgraph.functions import rescaleData

    lo, hi = float(levels[0]), float(levels[1])
    diff = (hi - lo) or 1.0
    return rescaleData(np.arange(65536, dtype=np.uint16), n_colors / diff, lo, dtype=np.uint8, clip=(0, n_colors - 1))


class DecimatingImageItem(pg.ImageItem):
    """An ``ImageItem`` whose grayscale render input is decimated to about screen resolution.

    ``image`` (and everything that reads it: probe, export, histogram) stays the full array;
    only the rendered ``QImage`` is smaller, and ``paint`` draws it over the full image's rect.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._dec_src: np.ndarray | None = None  # the array the cached copy was cut from
        self._dec_factors: tuple[int, int] = (1, 1)
        self._dec: np.ndarray | None = None
        self._factors: tuple[int, int] = (1, 1)
        self._table_key: tuple | None = None  # (lo, hi, lut bytes) of the RGB32 table
        self._table: np.ndarray | None = None
        self._rgb_buf: np.ndarray | None = None

    def setImage(self, image=None, autoLevels=None, levelSamples=65536, **kwargs):  # noqa: N802 - pyqtgraph's name
        if image is not None:
            self._dec_src = self._dec = None  # the same array object may come back changed
        return super().setImage(image, autoLevels, levelSamples, **kwargs)

    def _rgb32(self, src: np.ndarray):
        """A uint16 grayscale render straight to RGB32 through one 65536-entry table per window
        (``None`` for anything else: pyqtgraph renders it). Same pixels as pyqtgraph's indexed
        image, without its per-pixel float rescale and the later format conversion."""
        lut, levels = self.lut, self.levels
        if (src.dtype != np.uint16 or src.ndim != 2 or levels is None or np.ndim(levels) != 1
                or not isinstance(lut, np.ndarray) or lut.dtype != np.uint8 or lut.ndim != 1 or lut.shape[0] > 256):
            return None
        key = (float(levels[0]), float(levels[1]), lut.tobytes())
        if self._table_key != key:
            g = lut[levels_index(levels, lut.shape[0])].astype(np.uint32)
            self._table = np.uint32(0xFF000000) | (g << 16) | (g << 8) | g
            self._table_key = key
        self._rgb_buf = self._table.take(src)  # kept: the QImage uses this memory
        return fn.ndarray_to_qimage(self._rgb_buf, QtGui.QImage.Format.Format_RGB32)

    def factors(self) -> tuple[int, int]:
        """``(column step, row step)`` the next render uses (1, 1: the whole array)."""
        img = self.image
        if img is None or img.ndim != 2 or self.scene() is None:
            return 1, 1
        xds, yds = self._computeDownsampleFactors()
        if xds is None or yds is None:
            return 1, 1
        return int(xds), int(yds)

    def viewTransformChanged(self):  # noqa: N802 - pyqtgraph's name
        # zooming changes how many stored pixels fall on one screen pixel
        if self.factors() != self._factors:
            self._renderRequired = True
            self.update()
        super().viewTransformChanged()

    def render(self):
        full = self.image
        f = self.factors()
        self._factors = f
        src = full
        if full is not None and full.ndim == 2 and f != (1, 1):
            if self._dec_src is not full or self._dec_factors != f:
                self._dec = np.ascontiguousarray(full[:: f[1], :: f[0]])
                self._dec_src, self._dec_factors = full, f
            src = self._dec
        q = self._rgb32(src) if src is not None else None
        if q is not None:
            self.qimage = q
            self._renderRequired = False
            self._unrenderable = False
            return
        # pyqtgraph renders self.image; paint() later uses the full array's shape for the rect
        self.image = src
        try:
            super().render()
        finally:
            self.image = full
        q = self.qimage
        if q is not None and q.format() == QtGui.QImage.Format.Format_Indexed8:
            # a grayscale window comes back as an indexed image, which Qt converts on every
            # paint (2.6 ms for 683x834 here); converted once it paints in 0.4 ms
            self.qimage = q.convertToFormat(QtGui.QImage.Format.Format_RGB32)
