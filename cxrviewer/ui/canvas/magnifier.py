"""The magnifier (Tools → Magnifier, M): while the left button is down, a loupe under the
cursor shows what is around it at 2–4× (as in RadiAnt), the window, heatmap and annotations
as on screen. It magnifies the rendered view (a grab of the view's pixels), so it costs one
small grab per mouse move and never touches the image data."""

from __future__ import annotations

import weakref

from PySide6 import QtCore, QtGui, QtWidgets

#: the loupe's zoom factors (Tools → Magnifier Zoom)
FACTORS = (2.0, 3.0, 4.0)


class Loupe(QtWidgets.QLabel):
    """A square loupe, a child of the canvas (above the view, transparent for the mouse)."""

    SIZE = 200
    #: shared by every canvas (the menu sets it for all viewports)
    factor = 2.0
    _all: weakref.WeakSet = weakref.WeakSet()

    def __init__(self, canvas) -> None:
        super().__init__(canvas)
        self.canvas = canvas
        self.setObjectName("magnifier")
        self.setAttribute(QtCore.Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setStyleSheet("border: 2px solid #5aa0f0; background: black;")
        self.setFixedSize(self.SIZE, self.SIZE)
        self.hide()
        self._pos: QtCore.QPoint | None = None
        Loupe._all.add(self)

    @classmethod
    def set_factor(cls, f: float) -> None:
        """2–4× for every loupe; one on screen now is redrawn at once."""
        cls.factor = min(max(float(f), FACTORS[0]), FACTORS[-1])
        import shiboken6

        for loupe in list(cls._all):
            if shiboken6.isValid(loupe) and loupe.isVisible() and loupe._pos is not None:
                loupe.show_at(loupe._pos)

    def show_at(self, pos: QtCore.QPoint) -> None:
        """Magnify around ``pos`` (view viewport coordinates) and centre the loupe on it."""
        self._pos = QtCore.QPoint(pos)
        vp = self.canvas.graphics.viewport()
        inner = self.SIZE - 4  # inside the border
        src = round(inner / self.factor)
        region = QtCore.QRect(pos.x() - src // 2, pos.y() - src // 2, src, src)
        pm = QtGui.QPixmap(src, src)
        pm.fill(QtGui.QColor("black"))
        p = QtGui.QPainter(pm)
        p.drawPixmap(QtCore.QPoint(0, 0), vp.grab(region))  # off the view's edge stays black
        p.end()
        self.setPixmap(pm.scaled(inner, inner, QtCore.Qt.AspectRatioMode.IgnoreAspectRatio,
                                 QtCore.Qt.TransformationMode.FastTransformation))  # pixels, not blur
        at = self.canvas.graphics.mapTo(self.canvas, vp.mapTo(self.canvas.graphics, pos))
        self.move(at.x() - self.SIZE // 2, at.y() - self.SIZE // 2)
        self.show()
        self.raise_()

    def drag(self, ev) -> None:
        """The magnifier tool's drag: shown while the button is down, gone on release."""
        if ev.isFinish():
            self.hide()
            return
        vp = self.canvas.graphics
        sp = vp.mapFromScene(ev.scenePos())
        self.show_at(QtCore.QPoint(sp.x(), sp.y()))
