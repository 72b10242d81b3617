"""The rectangle tool for burned-in text: before a de-identified capture of an image whose
pixels may carry text (US, SC, OT, XC, or Burned In Annotation YES), the reader drags
rectangles over the text; they become :class:`cxrviewer.dicom.burnedin.MaskRegion` in image
pixel coordinates (stored orientation, every frame) and the export blanks them
(:func:`cxrviewer.dicom.burnedin.mask_loaded_image`) and records them as the reader's assertion.

The image is shown as stored (no rotation or flip: the regions are in the file's own pixel
grid, as ``--mask-region X Y W H`` on the command line), at the window on screen.
"""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from cxrviewer.dicom.burnedin import MaskRegion


def _qimage(arr: np.ndarray) -> QtGui.QImage:
    a = np.ascontiguousarray(arr.astype(np.uint8, copy=False))
    if a.ndim == 2:
        h, w = a.shape
        return QtGui.QImage(a.data, w, h, w, QtGui.QImage.Format.Format_Grayscale8).copy()
    h, w = a.shape[:2]
    a = np.ascontiguousarray(a[..., :3])
    return QtGui.QImage(a.data, w, h, 3 * w, QtGui.QImage.Format.Format_RGB888).copy()


class MaskCanvas(QtWidgets.QWidget):
    """The image, fitted to the widget; a left-button drag draws a rectangle to blank.

    Signals
    -------
    masksChanged(list)
        The regions (``MaskRegion``, image pixels) after a rectangle was added or removed.
    """

    masksChanged = QtCore.Signal(list)

    def __init__(self, display: np.ndarray, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("maskCanvas")
        self.image = _qimage(display)
        self.rows, self.cols = display.shape[:2]
        self.regions: list[MaskRegion] = []
        self._start: QtCore.QPointF | None = None
        self._now: QtCore.QPointF | None = None
        self.setMinimumSize(320, 240)
        self.setCursor(QtCore.Qt.CursorShape.CrossCursor)

    # ------------------------------------------------------------------ geometry
    def _target(self) -> QtCore.QRectF:
        """Where the image is drawn (fitted, centred, aspect kept)."""
        s = min(self.width() / self.cols, self.height() / self.rows)
        w, h = self.cols * s, self.rows * s
        return QtCore.QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def to_image(self, p: QtCore.QPointF) -> tuple[float, float]:
        """A widget point in image pixel coordinates (clamped to the image)."""
        t = self._target()
        x = (p.x() - t.left()) / t.width() * self.cols
        y = (p.y() - t.top()) / t.height() * self.rows
        return min(max(x, 0.0), float(self.cols)), min(max(y, 0.0), float(self.rows))

    def to_widget(self, x: float, y: float) -> QtCore.QPointF:
        t = self._target()
        return QtCore.QPointF(t.left() + x / self.cols * t.width(), t.top() + y / self.rows * t.height())

    def region_between(self, a: QtCore.QPointF, b: QtCore.QPointF) -> MaskRegion | None:
        """The whole-pixel region covering the drag from ``a`` to ``b`` (``None``: empty). The
        edges round outwards: a region covers every pixel the drawn rectangle touches."""
        (x0, y0), (x1, y1) = self.to_image(a), self.to_image(b)
        left, right = int(np.floor(min(x0, x1))), int(np.ceil(max(x0, x1)))
        top, bottom = int(np.floor(min(y0, y1))), int(np.ceil(max(y0, y1)))
        right, bottom = min(right, self.cols), min(bottom, self.rows)
        if right - left < 1 or bottom - top < 1:
            return None
        return MaskRegion(left, top, right - left, bottom - top)

    # ------------------------------------------------------------------ editing
    def add(self, region: MaskRegion) -> None:
        region.check_inside(self.rows, self.cols)
        self.regions.append(region)
        self.update()
        self.masksChanged.emit(list(self.regions))

    def remove_last(self) -> None:
        if self.regions:
            self.regions.pop()
            self.update()
            self.masksChanged.emit(list(self.regions))

    def clear(self) -> None:
        if self.regions:
            self.regions.clear()
            self.update()
            self.masksChanged.emit([])

    # ------------------------------------------------------------------ Qt
    def mousePressEvent(self, ev: QtGui.QMouseEvent) -> None:  # noqa: N802
        if ev.button() == QtCore.Qt.MouseButton.LeftButton:
            self._start = self._now = ev.position()
            self.update()

    def mouseMoveEvent(self, ev: QtGui.QMouseEvent) -> None:  # noqa: N802
        if self._start is not None:
            self._now = ev.position()
            self.update()

    def mouseReleaseEvent(self, ev: QtGui.QMouseEvent) -> None:  # noqa: N802
        if self._start is None or ev.button() != QtCore.Qt.MouseButton.LeftButton:
            return
        r = self.region_between(self._start, ev.position())
        self._start = self._now = None
        if r is not None:
            self.add(r)
        else:
            self.update()

    def paintEvent(self, _ev) -> None:  # noqa: N802
        p = QtGui.QPainter(self)
        p.fillRect(self.rect(), QtGui.QColor(20, 20, 22))
        p.drawImage(self._target(), self.image)
        pen = QtGui.QPen(QtGui.QColor("#ffcc00"), 2)
        p.setPen(pen)
        for r in self.regions:  # drawn as they will be written: black
            rect = QtCore.QRectF(self.to_widget(r.x, r.y), self.to_widget(r.x + r.w, r.y + r.h))
            p.fillRect(rect, QtGui.QColor(0, 0, 0))
            p.drawRect(rect)
        if self._start is not None and self._now is not None:
            p.setPen(QtGui.QPen(QtGui.QColor("#ffcc00"), 1, QtCore.Qt.PenStyle.DashLine))
            p.drawRect(QtCore.QRectF(self._start, self._now).normalized())
        p.end()


class MaskDialog(QtWidgets.QDialog):
    """Draw the regions to blank; OK keeps them (:attr:`regions`)."""

    def __init__(self, display: np.ndarray, reason: str, regions=(), parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Blank burned-in text")
        self.resize(900, 760)
        lay = QtWidgets.QVBoxLayout(self)
        head = QtWidgets.QLabel(
            f"This image may carry text in its pixels ({reason}). Drag a rectangle over every piece of text "
            "(names, IDs, dates, the institution): those regions are written black in every frame of the "
            "de-identified copy, and the copy records them as your assertion that the text is covered.")
        head.setWordWrap(True)
        lay.addWidget(head)
        self.canvas = MaskCanvas(display, self)
        for r in regions:
            self.canvas.add(r)
        lay.addWidget(self.canvas, 1)
        row = QtWidgets.QHBoxLayout()
        self.summary = QtWidgets.QLabel("")
        self.summary.setObjectName("maskSummary")
        undo = QtWidgets.QPushButton("Remove last")
        undo.clicked.connect(lambda _=False: self.canvas.remove_last())
        clear = QtWidgets.QPushButton("Clear")
        clear.clicked.connect(lambda _=False: self.canvas.clear())
        row.addWidget(self.summary, 1)
        row.addWidget(undo)
        row.addWidget(clear)
        lay.addLayout(row)
        self.buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Ok | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)
        self.canvas.masksChanged.connect(self._changed)
        self._changed(self.canvas.regions)

    @property
    def regions(self) -> list[MaskRegion]:
        return list(self.canvas.regions)

    def _changed(self, regions: list) -> None:
        self.summary.setText(
            f"{len(regions)} region{'s' if len(regions) != 1 else ''} to blank"
            + (": " + "; ".join(f"x {r.x} y {r.y} w {r.w} h {r.h}" for r in regions) if regions else
               " — drag over the text"))
