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
as :class:`cxrviewer.ui.heatmap.HeatImageItem` does for the heatmap, so paints (pan, zoom,
the other viewport's repaint) do not convert it again.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtGui


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

    def setImage(self, image=None, autoLevels=None, levelSamples=65536, **kwargs):  # noqa: N802 - pyqtgraph's name
        if image is not None:
            self._dec_src = self._dec = None  # the same array object may come back changed
        return super().setImage(image, autoLevels, levelSamples, **kwargs)

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
        if full is None or full.ndim != 2 or f == (1, 1):
            super().render()
        else:
            if self._dec_src is not full or self._dec_factors != f:
                self._dec = np.ascontiguousarray(full[:: f[1], :: f[0]])
                self._dec_src, self._dec_factors = full, f
            # pyqtgraph renders self.image; paint() later uses the full array's shape for the rect
            self.image = self._dec
            try:
                super().render()
            finally:
                self.image = full
        q = self.qimage
        if q is not None and q.format() == QtGui.QImage.Format.Format_Indexed8:
            # a grayscale window comes back as an indexed image, which Qt converts on every
            # paint (2.6 ms for 683x834 here); converted once it paints in 0.4 ms
            self.qimage = q.convertToFormat(QtGui.QImage.Format.Format_RGB32)
