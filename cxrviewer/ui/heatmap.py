"""The Grad-CAM heatmap: colormaps, the overlay layer on the canvas, its controls and colour bar.

The CAM is kept as a ``uint8`` index image (``round(cam * 255)``, computed in the AI worker,
off the GUI thread) and shown through a 256-entry RGBA lookup table. Colormap and threshold
changes only swap the 256-entry table, opacity is ``QGraphicsItem.setOpacity`` and toggling
is ``setVisible``: none of them touches the per-pixel array or re-runs the model.

The numpy functions (:func:`colormap_rgb`, :func:`heat_lut`, :func:`cam_to_index`,
:func:`composite`) are what the exporter (on screen and headless) burns in, so an export shows
exactly what the canvas shows.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

#: colormaps offered in the UI; jet is the seed's, the others are perceptually uniform
COLORMAPS: tuple[str, ...] = ("jet", "viridis", "inferno", "magma")
DEFAULT_COLORMAP = "jet"
DEFAULT_OPACITY = 0.45
DEFAULT_THRESHOLD = 0.2
#: z value of the heatmap layer: above the radiograph (0), below rulers and text
HEATMAP_Z = 10.0

# matplotlib's "jet" segment data (x, value) per channel, so the seed's look is reproduced
# without importing matplotlib (~1 s and not a viewer dependency).
_JET = {
    "r": ((0.0, 0.0), (0.35, 0.0), (0.66, 1.0), (0.89, 1.0), (1.0, 0.5)),
    "g": ((0.0, 0.0), (0.125, 0.0), (0.375, 1.0), (0.64, 1.0), (0.91, 0.0), (1.0, 0.0)),
    "b": ((0.0, 0.5), (0.11, 1.0), (0.34, 1.0), (0.65, 0.0), (1.0, 0.0)),
}


@lru_cache(maxsize=16)
def _colormap_rgb_cached(name: str) -> bytes:
    x = np.linspace(0.0, 1.0, 256)
    if name == "jet":
        chans = [np.interp(x, [p[0] for p in _JET[c]], [p[1] for p in _JET[c]]) for c in "rgb"]
        rgb = np.stack(chans, axis=1)
        return np.round(rgb * 255.0).astype(np.uint8).tobytes()
    cmap = pg.colormap.get(name)
    if cmap is None:  # pragma: no cover - names come from COLORMAPS
        raise ValueError(f"unknown colormap {name!r}")
    lut = cmap.getLookupTable(0.0, 1.0, 256, alpha=False, mode="byte")
    return np.ascontiguousarray(lut[:, :3], dtype=np.uint8).tobytes()


def colormap_rgb(name: str) -> np.ndarray:
    """The colormap as a ``(256, 3)`` uint8 RGB table (RGB order, never OpenCV's BGR)."""
    if name not in COLORMAPS:
        raise ValueError(f"unknown colormap {name!r}; choose one of {', '.join(COLORMAPS)}")
    return np.frombuffer(_colormap_rgb_cached(name), dtype=np.uint8).reshape(256, 3).copy()


def threshold_index(threshold: float) -> int:
    """Smallest CAM index (0–255) that is shown for ``threshold`` in ``[0, 1]``.

    A pixel is visible exactly when ``cam_u8 >= threshold_index(threshold)``.
    """
    t = min(max(float(threshold), 0.0), 1.0)
    return int(np.ceil(t * 255.0 - 1e-9))


def heat_lut(name: str, threshold: float) -> np.ndarray:
    """``(256, 4)`` uint8 RGBA table: the colormap, transparent below the threshold."""
    rgb = colormap_rgb(name)
    alpha = np.full((256, 1), 255, dtype=np.uint8)
    alpha[: threshold_index(threshold)] = 0
    return np.ascontiguousarray(np.concatenate([rgb, alpha], axis=1))


def cam_to_index(cam: np.ndarray | None) -> np.ndarray | None:
    """Float CAM in ``[0, 1]`` -> ``uint8`` index image (done in the worker: it is the one
    per-pixel pass over a possibly 2000×2000 map)."""
    if cam is None:
        return None
    c = np.nan_to_num(np.asarray(cam, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    out = np.empty(c.shape, dtype=np.uint8)
    np.clip(c * np.float32(255.0) + np.float32(0.5), 0.0, 255.0, out=c)
    out[...] = c  # truncation after +0.5 == round half up
    return out


def composite(
    base: np.ndarray,
    cam_u8: np.ndarray,
    colormap: str = DEFAULT_COLORMAP,
    threshold: float = DEFAULT_THRESHOLD,
    opacity: float = DEFAULT_OPACITY,
) -> np.ndarray:
    """Burn the heatmap into an 8-bit image, exactly as the canvas shows it.

    Parameters
    ----------
    base
        ``(rows, cols)`` grayscale or ``(rows, cols, 3)`` RGB uint8 display pixels.
    cam_u8
        ``(rows, cols)`` index image from :func:`cam_to_index` (same geometry as ``base``).

    Returns
    -------
    numpy.ndarray
        ``(rows, cols, 3)`` uint8 RGB: ``base`` unchanged where the map is below the
        threshold, ``base·(1−opacity) + colour·opacity`` elsewhere.
    """
    if cam_u8.shape[:2] != base.shape[:2]:
        raise ValueError(f"heatmap {cam_u8.shape[:2]} and image {base.shape[:2]} differ in size")
    rgb = np.repeat(base[:, :, None], 3, axis=2) if base.ndim == 2 else base[:, :, :3].copy()
    mask = cam_u8 >= threshold_index(threshold)
    if not mask.any() or opacity <= 0:
        return rgb
    colors = colormap_rgb(colormap)[cam_u8[mask]].astype(np.float32)
    a = np.float32(min(max(opacity, 0.0), 1.0))
    blended = rgb[mask].astype(np.float32) * (1 - a) + colors * a
    rgb[mask] = np.clip(np.round(blended), 0, 255).astype(np.uint8)
    return rgb


# --------------------------------------------------------------------------- Qt parts


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
        self.item = pg.ImageItem(axisOrder="row-major")
        self.item.setZValue(HEATMAP_Z)
        self.item.setVisible(False)
        self._cam: np.ndarray | None = None
        self._enabled = True  # the user's toggle (H); the item shows only with a map too
        self._colormap = DEFAULT_COLORMAP
        self._threshold = DEFAULT_THRESHOLD
        self._opacity = DEFAULT_OPACITY
        self._canvas = None
        self.item.setOpacity(self._opacity)

    # -- wiring
    def attach(self, canvas) -> None:
        """Add the layer to ``canvas`` (needs ``add_layer``; follows ``image_transform``)."""
        self._canvas = canvas
        canvas.add_layer(self.item, HEATMAP_Z)
        for name in ("transformChanged", "imageTransformChanged", "viewTransformChanged"):
            sig = getattr(canvas, name, None)
            if sig is not None:
                sig.connect(self.sync_transform)
                break
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

    def burn_in(self, base: np.ndarray) -> np.ndarray:
        """``base`` (native-resolution display pixels) with this layer composited, if shown."""
        if not self.is_shown():
            return base if base.ndim == 3 else np.repeat(base[:, :, None], 3, axis=2)
        return composite(base, self._cam, self._colormap, self._threshold, self._opacity)

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
        self.setToolTip("Heatmap colours: low → high model attention. Hatched: below the threshold (transparent).")
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
        self.show_box.toggled.connect(layer.set_enabled)
        layer.toggled.connect(self._sync_toggle)
        form.addRow(self.show_box)
        self.cmap_box = QtWidgets.QComboBox()
        self.cmap_box.addItems(list(COLORMAPS))
        self.cmap_box.setCurrentText(layer.colormap)
        self.cmap_box.currentTextChanged.connect(layer.set_colormap)
        form.addRow("Colormap", self.cmap_box)
        self.opacity_slider = QtWidgets.QSlider(QtCore.Qt.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(round(layer.opacity * 100))
        self.opacity_slider.valueChanged.connect(lambda v: layer.set_opacity(v / 100.0))
        form.addRow("Opacity", self.opacity_slider)
        self.threshold_slider = QtWidgets.QSlider(QtCore.Qt.Horizontal)
        self.threshold_slider.setRange(0, 100)
        self.threshold_slider.setValue(round(layer.threshold * 100))
        self.threshold_slider.valueChanged.connect(lambda v: layer.set_threshold(v / 100.0))
        self.threshold_slider.setToolTip("Map values below this are transparent")
        form.addRow("Threshold", self.threshold_slider)
        self.colorbar = ColorBar(layer)
        form.addRow(self.colorbar)

    def _sync_toggle(self, on: bool) -> None:
        blocker = QtCore.QSignalBlocker(self.show_box)
        self.show_box.setChecked(on)
        del blocker
