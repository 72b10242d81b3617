"""Window/level panel: preset list, Auto, center/width boxes and a histogram with draggable
levels, all in the image's *modality* units (what the header's Window Center/Width mean).

It drives an :class:`~cxrviewer.ui.canvas.canvas.ImageCanvas` and follows it (a right-drag on the
canvas updates the boxes and the histogram region); a guard stops the two feeding back.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from cxrviewer.core.display import chest_presets
from cxrviewer.core.types import LoadedImage, WindowPreset
from cxrviewer.core.window import linear_window_bounds
from cxrviewer.ui.canvas.canvas import ImageCanvas


class _Histogram(pg.HistogramLUTItem):
    """A histogram with a level region but no colour gradient (the canvas owns the LUT)."""

    def __init__(self):
        super().__init__(orientation="horizontal")
        self.gradient.hide()
        self.layout.removeItem(self.gradient)
        self.vb.setMenuEnabled(False)
        self.plot.setPen(pg.mkPen((170, 170, 170)))
        self.plot.setBrush(pg.mkBrush(140, 140, 150, 110))

    def paint(self, p, *args):  # noqa: D401 - no connector lines to the hidden gradient
        return


def presets_for(img: LoadedImage) -> list[WindowPreset]:
    """Every preset offered for ``img``: the header's (by name), Auto, the chest presets."""
    out = list(img.presets)
    if img.auto_preset is not None:
        out.append(img.auto_preset)
    out.extend(chest_presets(img))
    return out


class WindowLevelPanel(QtWidgets.QWidget):
    """Preset combo + Auto button + center/width spin boxes + histogram."""

    def __init__(self, canvas: ImageCanvas, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.canvas = canvas
        self._guard = False
        self.presets: list[WindowPreset] = []
        self._hist_cache: list = []  # (image, histogram) of the last few images, see _histogram

        self.combo = QtWidgets.QComboBox(self)
        self.combo.setToolTip("Window presets: the file's own windows by name, Auto, chest presets")
        self.auto_button = QtWidgets.QPushButton("Auto", self)
        self.auto_button.setToolTip("Robust window: 0.5–99.5 percentile of the non-padding pixels")
        self.center = QtWidgets.QDoubleSpinBox(self)
        self.width = QtWidgets.QDoubleSpinBox(self)
        for sb, name in ((self.center, "Center (level)"), (self.width, "Width")):
            sb.setRange(-1e7, 1e7)
            sb.setDecimals(0)
            sb.setKeyboardTracking(False)
            sb.setToolTip(f"Window {name.lower()} in modality units")
            sb.setAccelerated(True)
        self.width.setMinimum(1)
        self.hist_widget = pg.GraphicsView(self, background=None)
        self.hist = _Histogram()
        self.hist_widget.setCentralItem(self.hist)
        self.hist_widget.setMinimumHeight(90)
        self.hist_widget.setMaximumHeight(130)
        self.units_label = QtWidgets.QLabel("", self)
        self.units_label.setObjectName("units")

        form = QtWidgets.QGridLayout(self)
        form.setContentsMargins(6, 6, 6, 6)
        form.addWidget(QtWidgets.QLabel("Preset"), 0, 0)
        form.addWidget(self.combo, 0, 1, 1, 2)
        form.addWidget(self.auto_button, 0, 3)
        form.addWidget(QtWidgets.QLabel("Center"), 1, 0)
        form.addWidget(self.center, 1, 1)
        form.addWidget(QtWidgets.QLabel("Width"), 1, 2)
        form.addWidget(self.width, 1, 3)
        form.addWidget(self.hist_widget, 2, 0, 1, 4)
        form.addWidget(self.units_label, 3, 0, 1, 4)
        form.setRowStretch(4, 1)
        form.setColumnStretch(1, 1)
        form.setColumnStretch(3, 1)

        self.combo.activated.connect(self._combo_activated)
        self.auto_button.clicked.connect(self.apply_auto)
        self.center.valueChanged.connect(self._boxes_changed)
        self.width.valueChanged.connect(self._boxes_changed)
        self.hist.sigLevelsChanged.connect(self._region_changed)
        canvas.windowChanged.connect(self._canvas_window_changed)
        canvas.imageShown.connect(self.image_changed)
        self.setEnabled(False)

    def set_canvas(self, canvas: ImageCanvas) -> None:
        """Drive and follow ``canvas`` instead (the active viewport changed)."""
        if canvas is self.canvas:
            return
        self.canvas.windowChanged.disconnect(self._canvas_window_changed)
        self.canvas.imageShown.disconnect(self.image_changed)
        self.canvas = canvas
        canvas.windowChanged.connect(self._canvas_window_changed)
        canvas.imageShown.connect(self.image_changed)
        self.image_changed()

    # ------------------------------------------------------------------ image
    def _histogram(self, img) -> tuple[np.ndarray, np.ndarray, float, float]:
        """``(bin centres, log1p(counts), lo, hi)`` of the modality values, remembered for the
        last few images by identity (switching viewports shows the same images again)."""
        cache = self._hist_cache
        for known, h in cache:
            if known is img:
                return h
        m = img.modality
        if img.padding_mask is not None:
            m = m[~img.padding_mask]
        v = m.reshape(-1)
        if v.size > 1 << 20:
            v = v[:: v.size // (1 << 20) + 1]
        lo, hi = float(v.min()), float(v.max())
        if hi <= lo:
            hi = lo + 1
        counts, edges = np.histogram(v, bins=256, range=(lo, hi))
        # log scale so the lung tail is visible next to the background peak
        h = ((edges[:-1] + edges[1:]) / 2, np.log1p(counts.astype(float)), lo, hi)
        cache[:] = [(img, h), *cache[:3]]
        return h

    def image_changed(self) -> None:
        img = self.canvas.img
        self._guard = True
        try:
            self.combo.clear()
            self.presets = []
            if img is None or img.is_color or img.modality is None:
                self.setEnabled(False)
                self.hist.plot.setData([], [])
                self.units_label.setText("Colour image: no window" if img is not None else "")
                return
            self.setEnabled(True)
            self.presets = presets_for(img)
            for p in self.presets:
                self.combo.addItem(p.name, p.name)
                tip = f"W {p.width:.0f} / L {p.center:.0f}" + (f" — {p.explanation}" if p.explanation else "")
                self.combo.setItemData(self.combo.count() - 1, tip, QtCore.Qt.ItemDataRole.ToolTipRole)
            self.combo.addItem("User", "User")
            x, y, lo, hi = self._histogram(img)
            self.hist.plot.setData(x, y)
            self.hist.vb.enableAutoRange()
            units = img.units if img.units and img.units.upper() != "US" else "unspecified units"
            self.units_label.setText(f"Modality values: {lo:g} … {hi:g} ({units})")
        finally:
            self._guard = False
        self._canvas_window_changed(*self.canvas.window())

    # ------------------------------------------------------------- actions
    def apply_preset_index(self, i: int) -> bool:
        """Apply the ``i``-th preset of the list (keyboard 1..9)."""
        if 0 <= i < len(self.presets):
            self.canvas.set_preset(self.presets[i])
            return True
        return False

    def apply_preset_name(self, name: str) -> bool:
        for p in self.presets:
            if p.name.lower() == name.lower():
                self.canvas.set_preset(p)
                return True
        return False

    def apply_auto(self) -> None:
        img = self.canvas.img
        if img is not None and img.auto_preset is not None:
            self.canvas.set_preset(img.auto_preset)

    def _combo_activated(self, i: int) -> None:
        self.apply_preset_index(i)

    def _boxes_changed(self, *_a) -> None:
        if self._guard or self.canvas.img is None:
            return
        self.canvas.set_window(self.center.value(), self.width.value())

    def _region_changed(self, *_a) -> None:
        if self._guard or self.canvas.img is None:
            return
        lo, hi = self.hist.getLevels()
        width = max(hi - lo + 1.0, 1.0)
        center = lo + 0.5 + (width - 1.0) / 2.0
        self.canvas.set_window(center, width)

    def _canvas_window_changed(self, c: float, w: float) -> None:
        if self._guard:
            return
        self._guard = True
        try:
            self.center.setValue(c)
            self.width.setValue(w)
            lo, hi = linear_window_bounds(c, w)
            self.hist.setLevels(lo, hi)
            p = self.canvas.current_preset()
            idx = self.combo.findData(p.name if p is not None and p.source != "user" else "User")
            if idx >= 0:
                self.combo.setCurrentIndex(idx)
        finally:
            self._guard = False
