"""The Grad-CAM heatmap: colormaps, the overlay layer on the canvas, its controls and colour bar.

The CAM is kept as a ``uint8`` index image (``round(cam * 255)``, computed in the AI worker,
off the GUI thread) and shown through a 256-entry RGBA lookup table. Colormap and threshold
changes only swap the 256-entry table, opacity is ``QGraphicsItem.setOpacity`` and toggling
is ``setVisible``: none of them touches the per-pixel array or re-runs the model.

The numpy side (tables, threshold rule, export layer) is :mod:`cxrviewer.render.colormaps`
(no Qt), shared with the exporters so an export shows exactly what the canvas shows.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from cxrviewer.render.colormaps import (  # noqa: F401 - re-exported for callers of this module
    COLORMAPS,
    DEFAULT_COLORMAP,
    DEFAULT_OPACITY,
    DEFAULT_THRESHOLD,
    cam_to_index,
    colormap_rgb,
    heat_lut,
    heat_rgba,
    threshold_index,
)

#: z value of the heatmap layer: above the radiograph (0), below rulers and text
HEATMAP_Z = 10.0

# --------------------------------------------------------------------------- Qt parts


class HeatImageItem(pg.ImageItem):
    """An ``ImageItem`` that keeps its rendered image premultiplied ARGB32.

    pyqtgraph renders a ``uint8`` image + RGBA LUT as an indexed ``QImage``, which Qt
    converts to ARGB on *every* paint (+17–30 ms per pan/zoom step for a 2000×2000 map here).
    Converting once per render (new map, colormap or threshold) makes paints the fast path.
    """

    def render(self, *args, **kwargs):  # noqa: D401 - pyqtgraph's name
        super().render(*args, **kwargs)
        q = self.qimage
        if q is not None and q.format() != QtGui.QImage.Format.Format_ARGB32_Premultiplied:
            self.qimage = q.convertToFormat(QtGui.QImage.Format.Format_ARGB32_Premultiplied)


class HeatmapLayer(QtCore.QObject):
    """A second ``ImageItem`` above the radiograph, in the image's own pixel coordinates.

    It is added to the canvas with ``canvas.add_layer(item, z)`` and takes the canvas's
    image transform (rotation, flip, pixel-spacing aspect) whenever that changes, so pixel
    ``(r, c)`` of the map covers pixel ``(r, c)`` of the image through zoom, pan, rotate and flip.
    """

    #: emitted after any visible change (map, style, visibility)
    changed = QtCore.Signal()
    #: the user-facing visibility toggle changed
    toggled = QtCore.Signal(bool)

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.item = HeatImageItem(axisOrder="row-major")
        self.item.setZValue(HEATMAP_Z)
        self.item.setVisible(False)
        self._cam: np.ndarray | None = None
        # the user's toggle (H); off at start (reader first: the image alone until the reader
        # asks). The item shows only with a map too.
        self._enabled = False
        self._colormap = DEFAULT_COLORMAP
        self._threshold = DEFAULT_THRESHOLD
        self._opacity = DEFAULT_OPACITY
        self._canvas = None
        self.item.setOpacity(self._opacity)

    # -- wiring
    def attach(self, canvas) -> None:
        """Add the layer to ``canvas``: the canvas applies its image transform to its layers
        (``ImageCanvas._apply_transform``) and exports them through :meth:`export_rgba`."""
        self._canvas = canvas
        canvas.add_layer(self.item, HEATMAP_Z, export_fn=self.export_rgba)
        self.sync_transform()

    def sync_transform(self, *args) -> None:
        """Copy the canvas's image transform onto the heatmap item."""
        if self._canvas is None:
            return
        tr = self._canvas.image_transform()
        if tr is not None:
            self.item.setTransform(tr)

    # -- state
    @property
    def cam(self) -> np.ndarray | None:
        return self._cam

    @property
    def enabled(self) -> bool:
        return self._enabled

    @property
    def colormap(self) -> str:
        return self._colormap

    @property
    def threshold(self) -> float:
        return self._threshold

    @property
    def opacity(self) -> float:
        return self._opacity

    def is_shown(self) -> bool:
        """True when a map is present and the toggle is on (what export burns in)."""
        return self._cam is not None and self._enabled

    def set_cam(self, cam_u8: np.ndarray | None) -> None:
        """Show a new map (``uint8`` index image) or clear it with ``None``."""
        self._cam = cam_u8
        if cam_u8 is None:
            self.item.clear()
        else:
            self.sync_transform()
            self.item.setImage(cam_u8, autoLevels=False, levels=(0, 255), lut=heat_lut(self._colormap, self._threshold))
        self._update_visibility()
        self.changed.emit()

    def set_enabled(self, on: bool) -> None:
        on = bool(on)
        if on == self._enabled:
            return
        self._enabled = on
        self._update_visibility()
        self.toggled.emit(on)
        self.changed.emit()

    def toggle(self) -> None:
        self.set_enabled(not self._enabled)

    def set_colormap(self, name: str) -> None:
        if name not in COLORMAPS:
            raise ValueError(f"unknown colormap {name!r}")
        self._colormap = name
        self._apply_lut()

    def set_threshold(self, t: float) -> None:
        self._threshold = min(max(float(t), 0.0), 1.0)
        self._apply_lut()

    def set_opacity(self, a: float) -> None:
        self._opacity = min(max(float(a), 0.0), 1.0)
        self.item.setOpacity(self._opacity)
        self.changed.emit()

    def lut(self) -> np.ndarray:
        return heat_lut(self._colormap, self._threshold)

    def export_rgba(self, img=None) -> np.ndarray | None:
        """The layer for a native-resolution export (``None`` when not shown)."""
        if not self.is_shown():
            return None
        return heat_rgba(self._cam, self._colormap, self._threshold, self._opacity)

    def _apply_lut(self) -> None:
        if self._cam is not None:
            # 256 entries; pyqtgraph turns a uint8 image + LUT into an indexed QImage, so this
            # is O(256), not O(pixels).
            self.item.setLookupTable(self.lut())
        self.changed.emit()

    def _update_visibility(self) -> None:
        self.item.setVisible(self._cam is not None and self._enabled)


class ColorBar(QtWidgets.QWidget):
    """A horizontal colour bar for the current colormap; below-threshold part hatched."""

    def __init__(self, layer: HeatmapLayer, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._layer = layer
        self.setMinimumHeight(34)
        self.setSizePolicy(QtWidgets.QSizePolicy.Expanding, QtWidgets.QSizePolicy.Fixed)
        self.setToolTip("Heatmap colours: low → high evidence for the Abnormal class (Grad-CAM), whatever the label. "
                        "Hatched: below the threshold (transparent).")
        layer.changed.connect(self.update)

    def paintEvent(self, ev) -> None:  # noqa: N802 - Qt name
        p = QtGui.QPainter(self)
        try:
            w, h = self.width() - 8, 14
            x0, y0 = 4, 2
            rgb = colormap_rgb(self._layer.colormap)
            img = QtGui.QImage(rgb.reshape(1, 256, 3).tobytes(), 256, 1, 256 * 3, QtGui.QImage.Format_RGB888)
            p.drawImage(QtCore.QRectF(x0, y0, w, h), img)
            t = self._layer.threshold
            if t > 0:
                p.fillRect(QtCore.QRectF(x0, y0, w * t, h), QtGui.QBrush(QtGui.QColor(128, 128, 128, 200), QtCore.Qt.BDiagPattern))
                p.setPen(QtGui.QPen(QtGui.QColor("white"), 2))
                p.drawLine(QtCore.QPointF(x0 + w * t, y0 - 1), QtCore.QPointF(x0 + w * t, y0 + h + 1))
            p.setPen(self.palette().color(QtGui.QPalette.WindowText))
            font = p.font()
            font.setPointSizeF(max(6.0, font.pointSizeF() * 0.85))
            p.setFont(font)
            p.drawText(QtCore.QRectF(x0, y0 + h + 1, w, 16), QtCore.Qt.AlignLeft, "low")
            p.drawText(QtCore.QRectF(x0, y0 + h + 1, w, 16), QtCore.Qt.AlignHCenter, f"threshold {t:.2f}")
            p.drawText(QtCore.QRectF(x0, y0 + h + 1, w, 16), QtCore.Qt.AlignRight, "high")
        finally:
            p.end()


class HeatmapControls(QtWidgets.QWidget):
    """Toggle, opacity, colormap, threshold and the colour bar for one :class:`HeatmapLayer`."""

    def __init__(self, layer: HeatmapLayer, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.layer = layer
        form = QtWidgets.QFormLayout(self)
        form.setContentsMargins(4, 4, 4, 4)
        self.show_box = QtWidgets.QCheckBox("Show heatmap (H)")
        self.show_box.setChecked(layer.enabled)
        # through self.layer, not bound to one layer: set_layer moves the controls to another
        # viewport's layer
        self.show_box.toggled.connect(lambda on: self.layer.set_enabled(on))
        layer.toggled.connect(self._sync_toggle)
        form.addRow(self.show_box)
        self.cmap_box = QtWidgets.QComboBox()
        self.cmap_box.addItems(list(COLORMAPS))
        self.cmap_box.setCurrentText(layer.colormap)
        self.cmap_box.currentTextChanged.connect(lambda name: self.layer.set_colormap(name))
        form.addRow("Colormap", self.cmap_box)
        self.opacity_slider = QtWidgets.QSlider(QtCore.Qt.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(round(layer.opacity * 100))
        self.opacity_slider.valueChanged.connect(lambda v: self.layer.set_opacity(v / 100.0))
        form.addRow("Opacity", self.opacity_slider)
        self.threshold_slider = QtWidgets.QSlider(QtCore.Qt.Horizontal)
        self.threshold_slider.setRange(0, 100)
        self.threshold_slider.setValue(round(layer.threshold * 100))
        self.threshold_slider.valueChanged.connect(lambda v: self.layer.set_threshold(v / 100.0))
        self.threshold_slider.setToolTip("Map values below this are transparent")
        form.addRow("Threshold", self.threshold_slider)
        self.colorbar = ColorBar(layer)
        form.addRow(self.colorbar)
        #: the map always explains the Abnormal class: a Normal call's map must not read as disease
        self.legend = QtWidgets.QLabel()
        self.legend.setObjectName("heatmapLegend")
        self.legend.setWordWrap(True)
        form.addRow(self.legend)
        self.subject = ""
        self.set_subject("Abnormal")

    def set_subject(self, name: str) -> None:
        """Name what the map explains: ``"Abnormal"`` (two-class model) or the finding chosen
        in a multi-finding model's list (``"Cardiomegaly"``)."""
        from html import escape

        self.subject = name
        self.legend.setText(f"Heatmap: evidence for <b>{escape(name)}</b> (Grad-CAM: where the model looked, "
                            "not where disease is)")
        what = "the Abnormal class" if name == "Abnormal" else name
        self.colorbar.setToolTip(f"Heatmap colours: low → high evidence for {what} (Grad-CAM), whatever the "
                                 "label. Hatched: below the threshold (transparent).")

    def set_layer(self, layer: HeatmapLayer) -> None:
        """Control another viewport's ``layer``: its own on/off state is kept (per viewport);
        colormap, opacity and threshold are the reader's one choice, so they carry over."""
        if layer is self.layer:
            return
        self.layer.toggled.disconnect(self._sync_toggle)
        self.layer.changed.disconnect(self.colorbar.update)
        self.layer = self.colorbar._layer = layer
        layer.toggled.connect(self._sync_toggle)
        layer.changed.connect(self.colorbar.update)
        layer.set_colormap(self.cmap_box.currentText())
        layer.set_opacity(self.opacity_slider.value() / 100.0)
        layer.set_threshold(self.threshold_slider.value() / 100.0)
        self._sync_toggle(layer.enabled)

    def _sync_toggle(self, on: bool) -> None:
        blocker = QtCore.QSignalBlocker(self.show_box)
        self.show_box.setChecked(on)
        del blocker
