"""The image canvas: a pyqtgraph ``ImageItem`` in a locked-aspect ``ViewBox``.

Why it is built this way:

* The *stored* array (uint16, int16...) is the image; a window is applied with
  ``ImageItem.setLevels`` in stored units (:func:`cxrviewer.core.display.levels_for_preset`),
  so a W/L drag step costs one LUT pass inside pyqtgraph and never re-renders the array
  (ARCHITECTURE.md: ~13 ms at 2500x2048). MONOCHROME1 is an inverted lookup table, i.e. the
  inversion comes *after* the VOI, as PS3.4 requires.
* Non-linear VOI (SIGMOID, VOI LUT Sequence) is rendered once with the core pipeline and
  shown as 8-bit; dragging switches back to a LINEAR window on the stored array.
* ``imageAxisOrder='row-major'`` is set once at import (pyqtgraph #315: images shown
  transposed otherwise) and the ViewBox has y pointing down.
* Geometry (pixel aspect from Pixel Spacing, rotation, flips) is one ``QTransform`` on the
  image item: :meth:`ImageCanvas.image_transform`. Overlay layers (the AI heatmap) get the
  same transform through :meth:`ImageCanvas.add_layer`, so they stay aligned pixel-exactly.
* Measurements, the ruler included, are not the canvas's: they are the viewer model's, drawn
  (on a layer, in image coordinates) by :mod:`cxrviewer.ui.reading.measure_tools`, which
  registers its tools here (:meth:`ImageCanvas.register_tool`) and its export line specs
  (:attr:`ImageCanvas.export_specs`). The canvas keeps only the tool names (Ruler, D, included).
* Corner text is four outlined ``QLabel`` children of the canvas widget (painting their own
  outline: no graphics effect), so ``grab()`` includes them
  (:mod:`cxrviewer.ui.canvas.canvas_overlay`: the text, the labels and the export); the probe
  report and small Qt helpers are in :mod:`cxrviewer.ui.canvas.canvas_items`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from cxrviewer.core.display import levels_for_preset, render, window_from_levels
from cxrviewer.core.geometry import display_aspect, fallback_window, pixel_centre_mm
from cxrviewer.core.orientation import EDGES
from cxrviewer.core.types import LoadedImage, WindowPreset
from cxrviewer.render.export import RulerSpec, ViewState
from cxrviewer.ui.canvas.canvas_items import (  # noqa: F401 - re-exported: the canvas's public parts
    OutlinedLabel,
    ProbeInfo,
    _Layer,
    _ViewBox,
    qimage_to_rgb,
    rgb_to_qimage,
)
from cxrviewer.ui.canvas.canvas_overlay import CanvasOverlay
from cxrviewer.ui.canvas.image_item import DecimatingImageItem

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

#: the left-button tools; "ruler" (and the other measurements) is drawn by the measurement tools
#: that register it (:meth:`ImageCanvas.register_tool`): without them it does nothing
TOOLS = ("wl", "pan", "zoom", "ruler", "probe", "magnify")
TOOL_NAMES = {"wl": "Window/Level", "pan": "Pan", "zoom": "Zoom", "ruler": "Ruler", "probe": "Probe",
              "magnify": "Magnifier"}

_GRAY = np.arange(256, dtype=np.uint8)
_GRAY_INV = _GRAY[::-1].copy()


class ImageCanvas(CanvasOverlay, QtWidgets.QWidget):
    """Shows one :class:`LoadedImage` with window/level, zoom/pan/rotate/flip and reading tools.

    Signals
    -------
    windowChanged(center, width)
        The window in modality units changed (drag, preset, spin box).
    probed(object)
        A :class:`ProbeInfo` under the mouse, or ``None`` outside the image.
    viewChanged()
        Zoom, pan, rotation or flip changed.
    imageShown()
        A new image is on screen.
    cleared()
        No image is shown any more.
    frameStepRequested(int)
        The wheel turned over a multi-frame image: show the frame this many steps on.
    """

    windowChanged = QtCore.Signal(float, float)
    probed = QtCore.Signal(object)
    viewChanged = QtCore.Signal()
    imageShown = QtCore.Signal()
    cleared = QtCore.Signal()
    frameStepRequested = QtCore.Signal(int)
    toolChanged = QtCore.Signal(str)

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.graphics = pg.GraphicsView(self, background=(0, 0, 0))
        self.graphics.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.view_box = _ViewBox(self)
        self.graphics.setCentralItem(self.view_box)
        self.image_item = DecimatingImageItem(axisOrder="row-major")  # renders ~screen resolution
        self.image_item.setZValue(0)
        self.view_box.addItem(self.image_item)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.graphics)
        self.setMinimumSize(200, 200)
        self._labels: dict[str, QtWidgets.QLabel] = {}
        # Corner text ("tl"...) and the orientation letters at the edge midpoints ("top"...):
        # all outlined all round, painted by the labels themselves (OutlinedLabel: no graphics
        # effect over the image view)
        A = QtCore.Qt.AlignmentFlag
        for corner in ("tl", "tr", "bl", "br", *EDGES):
            if len(corner) == 2:
                lab = OutlinedLabel(self, color="#e8e8e8", outline=2.0)
                lab.setStyleSheet("background: transparent; font-size: 12px;")
                lab.setObjectName(f"corner_{corner}")
                lab.setAlignment((A.AlignLeft if corner[1] == "l" else A.AlignRight)
                                 | (A.AlignTop if corner[0] == "t" else A.AlignBottom))
            else:
                lab = OutlinedLabel(self)
                lab.setStyleSheet("background: transparent; font-size: 15px; font-weight: bold;")
                lab.setObjectName(f"edge_{corner}")
                lab.setAlignment(A.AlignCenter)
            lab.setAttribute(QtCore.Qt.WidgetAttribute.WA_TransparentForMouseEvents)
            self._labels[corner] = lab
        from cxrviewer.ui.canvas.magnifier import Loupe

        self.loupe = Loupe(self)  # the magnifier tool's loupe
        self._placeholder = QtWidgets.QLabel("Open a folder or file (Ctrl+O), or drop it here", self)
        self._placeholder.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self._placeholder.setStyleSheet("color: #777; font-size: 15px; background: transparent;")
        self._placeholder.setAttribute(QtCore.Qt.WidgetAttribute.WA_TransparentForMouseEvents)

        self.img: LoadedImage | None = None
        self._preset: WindowPreset | None = None
        self._center = 0.0
        self._width = 1.0
        self._nonlinear = False
        self._shown: np.ndarray | None = None  # the array given to the ImageItem
        self._view = ViewState()
        self._aspect = (1.0, 1.0)
        self._layers: list[_Layer] = []
        self._pad_item: pg.ImageItem | None = None
        self._tool = "wl"
        #: tools added by other modules (measure_tools): name -> left-drag handler(ev)
        self._tool_handlers: dict[str, Callable] = {}
        #: callables returning more annotation line specs for the native export
        self.export_specs: list[Callable[[], list[RulerSpec]]] = []
        #: callables returning more annotation items (hidden in an export without annotations)
        self.annotation_items: list[Callable[[], list]] = []
        self._overlay_visible = True
        self._extra_text: list[str] = []
        self._wl_sensitivity = 1.0
        self._probe_marker = pg.TextItem("", color=(0, 255, 160), anchor=(0, 1), fill=pg.mkBrush(0, 0, 0, 150))
        self._probe_marker.setZValue(101)
        self._probe_marker.hide()
        self.view_box.addItem(self._probe_marker, ignoreBounds=True)
        self.view_box.sigRangeChanged.connect(self._on_range_changed)
        # "Fit" is a mode, as in other viewers: the image stays fitted when the window is
        # resized, until the reader zooms or pans.
        self._fit_mode = True
        self.view_box.sigResized.connect(self._on_vb_resized)
        self.view_box.sigRangeChangedManually.connect(self._leave_fit_mode)
        self.graphics.scene().sigMouseMoved.connect(self._on_mouse_moved)

    # ------------------------------------------------------------------ image
    def set_image(self, img: LoadedImage, preset: WindowPreset | None = None, keep_view: bool = False) -> None:
        """Show ``img`` with ``preset`` (default: the file's window, else the robust one)."""
        self.img = img
        self._probe_marker.hide()
        self.probed.emit(None)  # the last image's probe text (its mm) is not this image's
        if not keep_view:
            self._view = ViewState()
        self._aspect = display_aspect(img.geometry)
        if self._pad_item is not None:
            self.remove_layer(self._pad_item)
            self._pad_item = None
        if img.padding_mask is not None and img.padding_mask.any():
            # Padding is black whatever the window or inversion (as core.display.render does).
            rgba = np.zeros((img.rows, img.cols, 4), np.uint8)
            rgba[..., 3] = np.where(img.padding_mask, 255, 0)
            self._pad_item = pg.ImageItem(rgba, axisOrder="row-major")
            self.add_layer(self._pad_item, 1)
        auto = img.auto_preset
        self._wl_sensitivity = max(auto.width if auto else 256.0, 16.0) / 400.0
        self._placeholder.hide()
        self._apply_transform()
        if img.is_color:
            self._preset = None
            self._nonlinear = False
            self.image_item.setImage(img.stored, autoLevels=False, levels=None)
            self._shown = img.stored
            self.image_item.setLookupTable(None)
            self.image_item.setLevels(None)
        else:
            self.set_preset(preset or fallback_window(img), force=True)
        self.fit()
        self._update_text()
        self.imageShown.emit()

    def clear(self) -> None:
        """Show nothing (no image open)."""
        self.img = None
        self.probed.emit(None)
        self.image_item.clear()
        self._shown = None
        if self._pad_item is not None:
            self.remove_layer(self._pad_item)
            self._pad_item = None
        self._placeholder.show()
        self._corner_lines = {}
        for lab in self._labels.values():
            lab.setText("")
        self.cleared.emit()

    def set_placeholder(self, text: str) -> None:
        """What an empty canvas says (why it is empty, or what to do)."""
        self._placeholder.setText(text)

    # ---------------------------------------------------------------- window
    def shown_array(self) -> np.ndarray | None:
        """The array the image item displays: ``img.stored`` for LINEAR windows and colour,
        an 8-bit one-off render for SIGMOID / VOI LUT Sequence."""
        return self._shown

    def current_preset(self) -> WindowPreset | None:
        """The window on screen, as a preset (a dragged window is a ``"user"`` LINEAR one)."""
        return self._preset

    def window(self) -> tuple[float, float]:
        """``(center, width)`` in modality units."""
        return self._center, self._width

    def set_preset(self, preset: WindowPreset, force: bool = False) -> None:
        """Apply a named preset (header, VOI LUT, auto, chest, user)."""
        img = self.img
        if img is None or img.is_color:
            return
        self._preset = preset
        nonlinear = preset.source == "voi_lut" or preset.function.upper() == "SIGMOID"
        if nonlinear:
            # One-off render through the core pipeline (no inversion: the LUT does that).
            u8 = render(img, preset, apply_invert=False)
            self.image_item.setImage(u8, autoLevels=False, levels=(0, 255))
            self._shown = u8
            self._nonlinear = True
        else:
            if self._nonlinear or force or self._shown is not img.stored:
                self.image_item.setImage(img.stored, autoLevels=False, levels=levels_for_preset(img, preset))
                self._shown = img.stored
            else:
                self.image_item.setLevels(levels_for_preset(img, preset))
            self._nonlinear = False
        self._center, self._width = float(preset.center), float(preset.width)
        self._update_lut()
        self._update_text()
        self.windowChanged.emit(self._center, self._width)

    def set_window(self, center: float, width: float, name: str = "User") -> None:
        """A LINEAR window in modality units: only ``setLevels`` on the stored array."""
        width = max(float(width), 1.0)
        self.set_preset(WindowPreset(name, float(center), width, "LINEAR", "user"))

    def set_levels_stored(self, lo: float, hi: float) -> None:
        """Levels in stored units (the histogram's region); converted to a LINEAR window."""
        if self.img is None:
            return
        c, w = window_from_levels(self.img, lo, hi)
        self.set_window(c, w)

    def _update_lut(self) -> None:
        img = self.img
        if img is None or img.is_color:
            return
        inv = bool(img.invert) ^ bool(self._view.invert)
        self.image_item.setLookupTable(_GRAY_INV if inv else _GRAY)

    # ------------------------------------------------------------ transform
    def view_state(self) -> ViewState:
        return self._view

    def image_transform(self) -> QtGui.QTransform:
        """Image coordinates (x = column, y = row) -> view coordinates.

        Order: centre the image, scale by the pixel aspect (Pixel Spacing), rotate clockwise
        in quarter turns, flip in screen axes. Overlay layers use the same transform.
        """
        img = self.img
        rows, cols = (img.rows, img.cols) if img is not None else (1, 1)
        sx, sy = self._aspect
        m = np.array([[1, 0, -cols / 2.0], [0, 1, -rows / 2.0], [0, 0, 1]], float)
        m = np.diag([sx, sy, 1.0]) @ m
        rot = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]], float)  # clockwise with y down
        for _ in range(self._view.rotation % 4):
            m = rot @ m
        if self._view.flip_h:
            m = np.diag([-1.0, 1.0, 1.0]) @ m
        if self._view.flip_v:
            m = np.diag([1.0, -1.0, 1.0]) @ m
        return QtGui.QTransform(m[0, 0], m[1, 0], m[0, 1], m[1, 1], m[0, 2], m[1, 2])

    def _apply_transform(self) -> None:
        t = self.image_transform()
        self.image_item.setTransform(t)
        for layer in self._layers:
            layer.item.setTransform(t)

    def _set_view(self, **kw) -> None:
        old = self._view
        self._view = replace(old, **kw)
        if (old.rotation, old.flip_h, old.flip_v) != (self._view.rotation, self._view.flip_h, self._view.flip_v):
            self._apply_transform()
            if old.rotation % 2 != self._view.rotation % 2:
                self.fit()
        self._update_lut()
        self._update_text()
        self.viewChanged.emit()

    def rotate(self, quarter_turns: int = 1) -> None:
        """Rotate clockwise by ``quarter_turns`` x 90 degrees (negative: counter-clockwise)."""
        self._set_view(rotation=(self._view.rotation + quarter_turns) % 4)

    def flip_h(self) -> None:
        self._set_view(flip_h=not self._view.flip_h)

    def flip_v(self) -> None:
        self._set_view(flip_v=not self._view.flip_v)

    def set_invert(self, on: bool) -> None:
        self._set_view(invert=bool(on))

    def reset_view(self) -> None:
        """Orientation, invert, zoom and window back to the image's defaults."""
        self._view = ViewState()
        self._apply_transform()
        self._update_lut()
        if self.img is not None and not self.img.is_color:
            self.set_preset(fallback_window(self.img))
        self.fit()
        self.viewChanged.emit()

    def fit(self) -> None:
        """Fit the whole image in the window (and keep it fitted on resize)."""
        self._fit_mode = True
        if self.img is None:
            return
        self.view_box.autoRange(items=[self.image_item], padding=0.02)

    def _on_vb_resized(self, *_a) -> None:
        if self._fit_mode and self.img is not None:
            self.view_box.autoRange(items=[self.image_item], padding=0.02)

    def _leave_fit_mode(self, *_a) -> None:
        self._fit_mode = False

    def zoom(self) -> float:
        """Screen pixels per image pixel (along the finer pixel axis)."""
        # From the view range itself (viewPixelSize() lags until the next layout pass).
        r = self.view_box.viewRect()
        return self.view_box.width() / r.width() if r.width() > 0 else 1.0

    def set_zoom(self, z: float) -> None:
        """Zoom about the view centre; ``1.0`` is 1:1 (one screen pixel per image pixel)."""
        r = self.view_box.viewRect()
        c = r.center()
        w, h = self.view_box.width() / z, self.view_box.height() / z
        self._fit_mode = False
        self.view_box.setRange(QtCore.QRectF(c.x() - w / 2, c.y() - h / 2, w, h), padding=0)

    def is_fit(self) -> bool:
        """Whether the image is in "fit to window" mode (no zoom/pan by the reader)."""
        return self._fit_mode

    def center_zoom(self) -> tuple[tuple[float, float], float]:
        """The image point (x = column, y = row) at the middle of the view, and the zoom."""
        inv, _ok = self.image_transform().inverted()
        p = inv.map(self.view_box.viewRect().center())
        return (p.x(), p.y()), self.zoom()

    def set_center_zoom(self, x: float, y: float, z: float) -> None:
        """Show image point ``(x, y)`` in the middle of the view at zoom ``z``."""
        c = self.image_transform().map(QtCore.QPointF(x, y))
        w, h = self.view_box.width() / z, self.view_box.height() / z
        self._fit_mode = False
        self.view_box.setRange(QtCore.QRectF(c.x() - w / 2, c.y() - h / 2, w, h), padding=0)

    def one_to_one(self) -> None:
        self.set_zoom(1.0)

    def zoom_by(self, factor: float) -> None:
        self._fit_mode = False
        self.view_box.scaleBy((1.0 / factor, 1.0 / factor))

    # ---------------------------------------------------------------- layers
    def add_layer(
        self,
        item: QtWidgets.QGraphicsItem,
        z: float = 10,
        export_fn: Callable[[LoadedImage], np.ndarray] | None = None,
    ) -> None:
        """Add an overlay item (e.g. an ``ImageItem`` of the heatmap, rows x cols in the
        image's original geometry) that follows the image transform.

        ``export_fn(img)`` returns the layer as RGBA ``(rows, cols, 4)`` for native-resolution
        export; without it, an RGBA uint8 ``ImageItem`` is exported as it is (times its
        opacity). Layers that are hidden (``item.isVisible()`` False) are not exported.
        """
        item.setZValue(z)
        self.view_box.addItem(item, ignoreBounds=True)
        item.setTransform(self.image_transform())
        self._layers.append(_Layer(item, export_fn))

    def remove_layer(self, item: QtWidgets.QGraphicsItem) -> None:
        self._layers = [la for la in self._layers if la.item is not item]
        self.view_box.removeItem(item)

    def annotation_specs(self) -> list[RulerSpec]:
        """The annotation line specs (the measurement tools' :attr:`export_specs`) for an export."""
        return [s for f in self.export_specs for s in f()]

    # ----------------------------------------------------------------- probe
    def scene_to_image(self, scene_pos: QtCore.QPointF) -> tuple[float, float]:
        v = self.view_box.mapSceneToView(scene_pos)
        inv, _ok = self.image_transform().inverted()
        p = inv.map(v)
        return p.x(), p.y()

    def image_to_scene(self, x: float, y: float) -> QtCore.QPointF:
        return self.view_box.mapViewToScene(self.image_transform().map(QtCore.QPointF(x, y)))

    def probe_at(self, x: float, y: float) -> ProbeInfo | None:
        """Values of the pixel containing image point ``(x, y)``; ``None`` outside."""
        img = self.img
        if img is None:
            return None
        c, r = int(math.floor(x)), int(math.floor(y))
        if not (0 <= r < img.rows and 0 <= c < img.cols):
            return None
        g = img.geometry
        xm, ym = pixel_centre_mm(g, r, c)
        if img.is_color:
            return ProbeInfo(r, c, tuple(int(v) for v in img.stored[r, c]), None, "", xm, ym, g.label if g else "")
        mod = float(img.modality[r, c]) if img.modality is not None else None
        units = img.units if img.units and img.units.upper() not in ("US",) else ""
        return ProbeInfo(r, c, float(img.stored[r, c]), mod, units, xm, ym, g.label if g else "")

    def _on_mouse_moved(self, scene_pos) -> None:
        if self.img is None:
            return
        x, y = self.scene_to_image(scene_pos)
        self.probed.emit(self.probe_at(x, y))

    # ------------------------------------------------------------- gestures
    def tool(self) -> str:
        return self._tool

    def set_tool(self, tool: str) -> None:
        """Left-button tool: ``wl`` (default), ``pan``, ``zoom``, ``probe``, ``magnify``, or one a
        module registered (``ruler`` and the other measurement tools)."""
        if tool not in TOOLS and tool not in self._tool_handlers:
            raise ValueError(f"unknown tool {tool!r}; one of {TOOLS + tuple(self._tool_handlers)}")
        self._tool = tool
        self.toolChanged.emit(tool)

    def register_tool(self, name: str, drag_handler: Callable) -> None:
        """Another left-button tool: ``drag_handler(ev)`` gets its drags (pyqtgraph events)."""
        self._tool_handlers[name] = drag_handler

    def drag_window(self, dx: float, dy: float) -> None:
        """W/L drag by ``(dx, dy)`` screen pixels: right = wider, left = narrower;
        down = higher center, up = lower center (RadPix's mapping). On MONOCHROME2 a higher
        center looks darker; on MONOCHROME1 (inverted after the VOI) it looks brighter."""
        if self.img is None or self.img.is_color:
            return
        s = self._wl_sensitivity
        self.set_window(self._center + dy * s, max(1.0, self._width + dx * s))

    def _on_drag(self, ev) -> None:
        ev.accept()
        btn = ev.button()
        B = QtCore.Qt.MouseButton
        d = ev.screenPos() - ev.lastScreenPos()
        if btn == B.RightButton:
            self.drag_window(d.x(), d.y())
            return
        if btn == B.MiddleButton or (btn == B.LeftButton and self._tool == "pan"):
            self._fit_mode = False
            a = self.view_box.mapToView(ev.pos())
            b = self.view_box.mapToView(ev.lastPos())
            self.view_box.translateBy(x=b.x() - a.x(), y=b.y() - a.y())
            return
        if btn != B.LeftButton:
            return
        if self._tool in self._tool_handlers:
            self._tool_handlers[self._tool](ev)
        elif self._tool == "wl":
            self.drag_window(d.x(), d.y())
        elif self._tool == "zoom":
            self._fit_mode = False
            f = 1.01 ** d.y()
            center = self.view_box.mapToView(ev.buttonDownPos())
            self.view_box.scaleBy((f, f), center=center)
        elif self._tool == "probe":
            self._show_probe(ev.scenePos())
        elif self._tool == "magnify":
            self.loupe.drag(ev)

    def _on_click(self, ev) -> None:
        if ev.button() != QtCore.Qt.MouseButton.LeftButton:
            return
        ev.accept()
        if self._tool in self._tool_handlers:
            self._tool_handlers[self._tool](ev)  # a click (no isStart): e.g. placing a text label
        elif self._tool == "probe":
            self._show_probe(ev.scenePos())

    def _show_probe(self, scene_pos) -> None:
        x, y = self.scene_to_image(scene_pos)
        info = self.probe_at(x, y)
        if info is None:
            self._probe_marker.hide()
            return
        self._probe_marker.setText(info.text().replace("  ", "\n"))
        self._probe_marker.setPos(self.view_box.mapSceneToView(scene_pos))
        self._probe_marker.show()

    # ------------------------------------------------------------- overlay
    def resizeEvent(self, ev) -> None:  # noqa: N802
        super().resizeEvent(ev)
        self._place_labels()

    def _on_range_changed(self, *_a) -> None:
        self._update_text()
        self.viewChanged.emit()
