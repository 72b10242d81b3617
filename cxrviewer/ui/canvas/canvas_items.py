"""The canvas's parts: the probe report, the gesture-routing ViewBox, layers, QImage helpers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from cxrviewer.core.types import LoadedImage

if TYPE_CHECKING:  # pragma: no cover
    from cxrviewer.ui.canvas.canvas import ImageCanvas


@dataclass(frozen=True)
class ProbeInfo:
    """What the pixel probe reports for one image pixel."""

    row: int
    col: int
    stored: float | tuple[int, ...]
    modality: float | None
    units: str
    x_mm: float | None = None
    y_mm: float | None = None
    mm_label: str = ""

    def text(self) -> str:
        """The status bar line."""
        if isinstance(self.stored, tuple):
            s = f"RGB {self.stored}"
        else:
            s = f"stored {self.stored:g}"
            if self.modality is not None:
                s += f"  value {self.modality:g}" + (f" {self.units}" if self.units else "")
        s += f"  (row {self.row}, col {self.col})"
        if self.x_mm is not None and self.y_mm is not None:
            s += f"  x {self.x_mm:.1f} y {self.y_mm:.1f} {self.mm_label}"
        return s


class OutlinedLabel(QtWidgets.QLabel):
    """Text drawn as filled glyphs with a dark outline all round, so it stays readable over any
    image and any heatmap colour (a drop shadow to one side is lost on a yellow or red heatmap).
    Used for the orientation letters and the corner text.

    It paints itself (no ``QGraphicsEffect``): a widget with a graphics effect is rendered
    through an offscreen pixmap and composited over the image view, the path by which readers
    saw black boxes under the corner text. The glyphs are rendered once per text, size and
    font into a transparent pixmap, so a window/level drag (which repaints the image under the
    label every frame) only blits it. Lines follow :meth:`alignment` (left, right or centred;
    top, bottom or centred), as a ``QLabel``'s would.
    """

    OUTLINE = 3.5  # pen width in px: about 1.75 px of dark edge on each side of a stroke

    def __init__(self, parent: QtWidgets.QWidget | None = None, color: str = "#ffffa0",
                 outline: float | None = None) -> None:
        super().__init__(parent)
        self.text_color = QtGui.QColor(color)
        if outline is not None:
            self.OUTLINE = float(outline)
        self.setMargin(2)  # room for the outline
        self._cache: tuple[tuple, QtGui.QPixmap] | None = None

    def paintEvent(self, ev) -> None:  # noqa: N802 - Qt name
        text = self.text()
        if not text:
            return
        dpr = self.devicePixelRatioF()
        key = (text, self.width(), self.height(), self.font().key(), int(self.alignment()), dpr,
               self.text_color.rgba(), self.OUTLINE)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self._render(text, dpr))
        p = QtGui.QPainter(self)
        p.drawPixmap(0, 0, self._cache[1])
        p.end()

    def _render(self, text: str, dpr: float) -> QtGui.QPixmap:
        pm = QtGui.QPixmap(max(1, round(self.width() * dpr)), max(1, round(self.height() * dpr)))
        pm.setDevicePixelRatio(dpr)
        pm.fill(QtCore.Qt.GlobalColor.transparent)
        fm = self.fontMetrics()
        lines = text.split("\n")
        ls, m, al = fm.lineSpacing(), self.margin(), self.alignment()
        A = QtCore.Qt.AlignmentFlag
        block = len(lines) * ls
        if al & A.AlignTop:
            y0 = m
        elif al & A.AlignBottom:
            y0 = self.height() - m - block
        else:
            y0 = (self.height() - block) / 2
        places = []
        for i, line in enumerate(lines):
            adv = fm.horizontalAdvance(line)
            if al & A.AlignRight:
                x = self.width() - m - adv
            elif al & A.AlignHCenter:
                x = (self.width() - adv) / 2
            else:
                x = m
            places.append((QtCore.QPointF(x, y0 + i * ls + fm.ascent()), line))
        p = QtGui.QPainter(pm)
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        dark = QtGui.QColor(0, 0, 0, 235)
        if self.OUTLINE <= 2.5:
            # a 1-px halo: the glyphs drawn dark at the eight neighbouring offsets, then in
            # colour (the corner text changes on every W/L step: ~10x cheaper than stroking
            # the glyph outlines as paths)
            p.setPen(dark)
            for dx, dy in ((-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1)):
                for pt, line in places:
                    p.drawText(pt + QtCore.QPointF(dx, dy), line)
            p.setPen(self.text_color)
            for pt, line in places:
                p.drawText(pt, line)
        else:
            path = QtGui.QPainterPath()
            for pt, line in places:
                path.addText(pt, self.font(), line)
            pen = QtGui.QPen(dark, self.OUTLINE)
            pen.setJoinStyle(QtCore.Qt.PenJoinStyle.RoundJoin)
            p.strokePath(path, pen)
            p.fillPath(path, self.text_color)
        p.end()
        return pm


class _ViewBox(pg.ViewBox):
    """ViewBox whose mouse gestures are decided by the canvas (tool selector)."""

    def __init__(self, canvas: ImageCanvas):
        super().__init__(lockAspect=True, invertY=True, enableMenu=False)
        self._canvas = canvas

    def mouseDragEvent(self, ev, axis=None):  # noqa: N802 - Qt naming
        self._canvas._on_drag(ev)

    def mouseClickEvent(self, ev):  # noqa: N802
        self._canvas._on_click(ev)

    def wheelEvent(self, ev, axis=None):  # noqa: N802
        # A multi-frame image: the wheel steps frames and Ctrl+wheel zooms (as in Weasis);
        # a single frame: the wheel zooms
        c = self._canvas
        img = c.img
        ctrl = bool(ev.modifiers() & QtCore.Qt.KeyboardModifier.ControlModifier)
        if img is not None and img.n_frames > 1 and not ctrl:
            delta = ev.delta() if hasattr(ev, "delta") else ev.angleDelta().y()
            if delta:
                c.frameStepRequested.emit(-1 if delta > 0 else 1)  # wheel down: the next frame
            ev.accept()
            return
        super().wheelEvent(ev, axis)

    def resizeEvent(self, ev):  # noqa: N802
        # Zoomed in (not fitted), a resize keeps the zoom and the point in the middle, as in
        # other viewers (and so a restored reading state survives the window's first layout).
        c, keep = self._canvas, None
        old = ev.oldSize()
        if not getattr(c, "_fit_mode", True) and c.img is not None and old.width() > 0:
            r = self.viewRect()
            if r.width() > 0:
                keep = (r.center(), old.width() / r.width())
        super().resizeEvent(ev)
        if keep is not None and self.width() > 0 and self.height() > 0:
            p, w, h = keep[0], self.width() / keep[1], self.height() / keep[1]
            self.setRange(QtCore.QRectF(p.x() - w / 2, p.y() - h / 2, w, h), padding=0)


@dataclass
class _Layer:
    item: QtWidgets.QGraphicsItem
    export_fn: Callable[[LoadedImage], np.ndarray] | None


def qimage_to_rgb(qimg: QtGui.QImage) -> np.ndarray:
    """A ``QImage`` -> RGB uint8 array (copied)."""
    q = qimg.convertToFormat(QtGui.QImage.Format.Format_RGB888)
    w, h, bpl = q.width(), q.height(), q.bytesPerLine()
    buf = np.frombuffer(q.constBits(), np.uint8, count=bpl * h).reshape(h, bpl)
    return buf[:, : w * 3].reshape(h, w, 3).copy()


def rgb_to_qimage(arr: np.ndarray) -> QtGui.QImage:
    """RGB or gray uint8 array -> ``QImage`` (owns a copy of the data)."""
    a = np.ascontiguousarray(arr)
    if a.ndim == 2:
        q = QtGui.QImage(a.data, a.shape[1], a.shape[0], a.strides[0], QtGui.QImage.Format.Format_Grayscale8)
    else:
        q = QtGui.QImage(a.data, a.shape[1], a.shape[0], a.strides[0], QtGui.QImage.Format.Format_RGB888)
    return q.copy()
