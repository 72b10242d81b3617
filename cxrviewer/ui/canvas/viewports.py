"""The viewport grid: 1x1, 1x2, 2x1 or 2x2 image canvases, one of them active, with optional
window/level and zoom/pan synchronisation.

Why it is built this way:

* Each cell is a :class:`Viewport` frame around its own :class:`~cxrviewer.ui.canvas.canvas.ImageCanvas`,
  so every viewport keeps its image, window, zoom/pan, orientation and annotations by itself.
  Cells hidden by a smaller layout keep their canvas (and image): switching 2x2 -> 1x1 -> 2x2
  gives the same four images back.
* The grid knows nothing about the main window: it is usable alone (``bench display`` drives
  two synced viewports without a window). Binding the active viewport to the window's panels,
  menus and loader is :mod:`cxrviewer.ui.shell.viewport_binding`.
* Window/level sync is by an *offset in modality units*: when the active viewport's window
  moves by (dC, dW), every other viewport's own window moves by the same (dC, dW). Each canvas
  keeps its window in modality units and converts to its own stored units
  (:func:`cxrviewer.core.display.levels_for_preset`), so images with different Rescale
  Slope/Intercept follow in modality values, never in 8-bit display levels. Images whose value
  ranges differ by more than :data:`SAME_RANGE` (a 15-bit CR beside an 8-bit secondary capture)
  follow by the offset scaled to their own range (:func:`range_ratio`): the same offset would
  turn the narrow-range image black or white.
* Zoom/pan sync copies the *relative* view: the image point at the view centre as a fraction
  of the image size, and the zoom as a multiple of each viewport's fit-to-window zoom, so two
  images of different matrix sizes show the same anatomy region at the same relative scale.
* Only the active viewport drives sync. A click (or wheel) on a viewport activates it before
  its canvas sees the gesture, so whatever the reader drags is the source; changes that sync
  itself makes, or that a new image makes, are never sent on.
"""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from cxrviewer.ui.canvas.canvas import ImageCanvas

#: layout name -> (rows, columns)
LAYOUTS: dict[str, tuple[int, int]] = {"1x1": (1, 1), "1x2": (1, 2), "2x1": (2, 1), "2x2": (2, 2)}
#: MIME type of a drag from the study browser: image paths, one per line (UTF-8)
MIME_PATHS = "application/x-cxrviewer-paths"
#: outline of the active viewport (the theme's highlight blue, brighter so it reads on black)
ACTIVE_COLOR = "#5aa0f0"
#: the frame every cell has (the inactive ones in the window's dark grey), so activating one
#: changes only its colour, never the image area
INACTIVE_COLOR = "#2b2d31"
_BORDER = 3


def paths_from_mime(md: QtCore.QMimeData) -> list[str]:
    """The image paths a study-browser drag carries (empty for any other drag)."""
    if not md.hasFormat(MIME_PATHS):
        return []
    raw = bytes(md.data(MIME_PATHS).data()).decode("utf-8", "replace")
    return [p for p in raw.split("\n") if p]


def mime_for_paths(paths: list[str]) -> QtCore.QMimeData:
    """Mime data for a drag of image ``paths`` (the custom type plus file URLs for other apps)."""
    md = QtCore.QMimeData()
    md.setData(MIME_PATHS, QtCore.QByteArray("\n".join(paths).encode("utf-8")))
    md.setUrls([QtCore.QUrl.fromLocalFile(p) for p in paths])
    return md


#: images whose value ranges (their automatic window widths) are within this factor of each
#: other follow a W/L sync by the same offset in modality values; further apart, by the offset
#: scaled to each image's range
SAME_RANGE = 4.0


def value_range(canvas: ImageCanvas) -> float:
    """How wide an image's values spread, in modality units: its automatic window's width (the
    robust one the canvas opens with), at least 16."""
    img = canvas.img
    auto = img.auto_preset if img is not None else None
    return max(float(auto.width) if auto is not None else 256.0, 16.0)


def range_ratio(source: ImageCanvas, other: ImageCanvas) -> float:
    """What a W/L change on ``source`` is multiplied by on ``other``: 1 (the same offset in
    modality values) for images of comparable range, e.g. a current and a prior from the same
    kind of device, else the ratio of their ranges, so a drag over a 15-bit CR does not sweep
    an 8-bit image beside it to black or to a window 1 wide."""
    r = value_range(other) / value_range(source)
    return 1.0 if 1.0 / SAME_RANGE <= r <= SAME_RANGE else r


class Viewport(QtWidgets.QFrame):
    """One cell: a caption line (empty unless set) above its canvas, outlined when active.

    Signals
    -------
    pressed(Viewport)
        The mouse went down (or a wheel turned) on the canvas: the grid activates it.
    pathsDropped(Viewport, list)
        Image paths dropped from the study browser.
    """

    pressed = QtCore.Signal(object)
    pathsDropped = QtCore.Signal(object, list)

    def __init__(self, canvas: ImageCanvas, index: int, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.index = index
        self.canvas = canvas
        #: the file shown (set by whoever opens it; the canvas knows only the decoded image)
        self.path: str | None = None
        self.setObjectName(f"viewport_{index}")
        self.setAcceptDrops(True)
        self.caption = QtWidgets.QLabel("", self)
        self.caption.setObjectName("viewportCaption")
        self.caption.setStyleSheet("color: #ffd27f; background: #202226; padding: 1px 6px; font-weight: bold;")
        self.caption.hide()
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(_BORDER, _BORDER, _BORDER, _BORDER)
        lay.setSpacing(0)
        lay.addWidget(self.caption)
        lay.addWidget(canvas, 1)
        canvas.setParent(self)
        canvas.show()
        # the view's viewport gets the mouse; watching it (not consuming) activates the cell
        # before the canvas starts its drag
        canvas.graphics.viewport().installEventFilter(self)
        self._active = False
        self._drop_hover = False
        self._restyle()

    def set_active(self, on: bool) -> None:
        self._active = bool(on)
        self._restyle()

    def is_active(self) -> bool:
        return self._active

    def set_caption(self, text: str) -> None:
        """A label above the image (e.g. a prior's study date); empty hides it."""
        self.caption.setText(text)
        self.caption.setToolTip(text)
        self.caption.setVisible(bool(text))

    def border_color(self) -> str:
        """The frame's colour now: :data:`ACTIVE_COLOR` when active or a drop hovers."""
        return ACTIVE_COLOR if (self._active or self._drop_hover) else INACTIVE_COLOR

    def _restyle(self) -> None:
        # painted (paintEvent), not a style sheet: re-polishing a style sheet cost ~8 ms per
        # viewport on every click that moves the focus
        self.update()

    def paintEvent(self, ev) -> None:  # noqa: N802 - Qt name
        p = QtGui.QPainter(self)
        try:
            p.fillRect(self.rect(), QtGui.QColor(0, 0, 0))
            pen = QtGui.QPen(QtGui.QColor(self.border_color()), _BORDER)
            pen.setJoinStyle(QtCore.Qt.PenJoinStyle.MiterJoin)
            if self._drop_hover:
                pen.setStyle(QtCore.Qt.PenStyle.DashLine)
            p.setPen(pen)
            h = _BORDER / 2
            p.drawRect(QtCore.QRectF(self.rect()).adjusted(h, h, -h, -h))
        finally:
            p.end()

    def eventFilter(self, obj, ev) -> bool:  # noqa: N802 - Qt name
        if ev.type() in (QtCore.QEvent.Type.MouseButtonPress, QtCore.QEvent.Type.Wheel):
            self.pressed.emit(self)
        return False

    # ------------------------------------------------------------ drops
    def dragEnterEvent(self, ev: QtGui.QDragEnterEvent) -> None:  # noqa: N802
        if paths_from_mime(ev.mimeData()):
            ev.acceptProposedAction()
            self._drop_hover = True
            self._restyle()
        else:
            ev.ignore()  # file URLs from other apps: the main window opens them as a folder/file

    def dragMoveEvent(self, ev: QtGui.QDragMoveEvent) -> None:  # noqa: N802
        if paths_from_mime(ev.mimeData()):
            ev.acceptProposedAction()
        else:
            ev.ignore()

    def dragLeaveEvent(self, ev) -> None:  # noqa: N802
        self._drop_hover = False
        self._restyle()

    def dropEvent(self, ev: QtGui.QDropEvent) -> None:  # noqa: N802
        self._drop_hover = False
        self._restyle()
        paths = paths_from_mime(ev.mimeData())
        if not paths:
            ev.ignore()
            return
        ev.acceptProposedAction()
        self.pathsDropped.emit(self, paths)


class ViewportGrid(QtWidgets.QWidget):
    """Up to four :class:`Viewport` cells in a layout; one is active.

    Parameters
    ----------
    first
        The canvas of viewport 0 (the main window's existing canvas), or ``None`` for a new one.

    Signals
    -------
    activeChanged(int, int)
        ``(old index, new index)`` after the active viewport changed.
    layoutChanged(str)
        The layout name after a change.
    syncChanged(bool, bool)
        ``(wl, zoom)`` after :meth:`set_sync`.
    pathsDropped(int, list)
        Image paths dropped on viewport ``index`` (it is already active).
    opened(int, LoadedImage)
        An image is on screen in viewport ``index`` (after :meth:`open`, a drop, or, for the
        active viewport in the main window, any image the window shows).
    """

    activeChanged = QtCore.Signal(int, int)
    layoutChanged = QtCore.Signal(str)
    syncChanged = QtCore.Signal(bool, bool)
    pathsDropped = QtCore.Signal(int, list)
    opened = QtCore.Signal(int, object)

    def __init__(self, first: ImageCanvas | None = None, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("viewportGrid")
        self._grid = QtWidgets.QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(2)
        self.viewports: list[Viewport] = []
        #: called with each new canvas (the window's per-canvas parts: measurement tools, heatmap)
        self.canvas_factory_hooks: list = []
        self._layout = "1x1"
        self._active = 0
        self._sync_wl = False
        self._sync_zoom = False
        self._syncing = False
        #: returns True while changes are not the reader's (the main window: a remembered
        #: reading state being restored); sync passes nothing on then
        self.sync_paused = lambda: False
        #: ``opener(index, path or LoadedImage, frame)``: the main window's loaders; alone, the
        #: grid decodes on the calling thread (:meth:`_open_here`)
        self.opener = self._open_here
        #: canvas -> (image, center, width) last seen: the base of the next W/L offset
        self._last_window: dict[int, tuple[object, float, float]] = {}
        self._add_viewport(first or ImageCanvas())
        self.viewports[0].set_active(True)
        self._relayout()

    # ------------------------------------------------------------ cells
    def _add_viewport(self, canvas: ImageCanvas) -> Viewport:
        vp = Viewport(canvas, len(self.viewports), self)
        vp.pressed.connect(lambda v: self.set_active(v.index))
        vp.pathsDropped.connect(self._dropped)
        canvas.windowChanged.connect(lambda c, w, cv=canvas: self._window_changed(cv, c, w))
        canvas.view_box.sigRangeChanged.connect(lambda *_a, cv=canvas: self._range_changed(cv))
        self.viewports.append(vp)
        for hook in self.canvas_factory_hooks:
            hook(canvas)
        return vp

    def _ensure(self, n: int) -> None:
        while len(self.viewports) < n:
            self._add_viewport(ImageCanvas())

    def _relayout(self) -> None:
        rows, cols = LAYOUTS[self._layout]
        for vp in self.viewports:
            self._grid.removeWidget(vp)
            vp.hide()
        for i in range(rows * cols):
            vp = self.viewports[i]
            self._grid.addWidget(vp, i // cols, i % cols)
            vp.show()
        for r in range(2):
            self._grid.setRowStretch(r, 1 if r < rows else 0)
        for c in range(2):
            self._grid.setColumnStretch(c, 1 if c < cols else 0)
        # a lone viewport needs no outline to say it is the active one
        for vp in self.viewports:
            vp.set_active(vp.index == self._active and rows * cols > 1)

    def _dropped(self, vp: Viewport, paths: list) -> None:
        self.set_active(vp.index)
        self.pathsDropped.emit(vp.index, paths)

    # ------------------------------------------------------------ API
    def layout_name(self) -> str:
        """The current layout: ``"1x1"``, ``"1x2"``, ``"2x1"`` or ``"2x2"``."""
        return self._layout

    def set_layout(self, name: str) -> None:
        """Show ``name`` (rows x columns). Viewports beyond it are hidden, not cleared; the
        active one moves to viewport 0 if it is hidden."""
        if name not in LAYOUTS:
            raise ValueError(f"unknown layout {name!r}; one of {', '.join(LAYOUTS)}")
        rows, cols = LAYOUTS[name]
        self._ensure(rows * cols)
        self._layout = name
        if self._active >= rows * cols:
            self.set_active(0)
        self._relayout()
        self.layoutChanged.emit(name)

    def count(self) -> int:
        """How many viewports the layout shows."""
        rows, cols = LAYOUTS[self._layout]
        return rows * cols

    def viewport(self, index: int) -> Viewport:
        """Viewport ``index`` (created if the layout has not needed it yet)."""
        if not 0 <= index < 4:
            raise IndexError(f"viewport {index} does not exist (0..3)")
        self._ensure(index + 1)
        return self.viewports[index]

    def canvas(self, index: int) -> ImageCanvas:
        return self.viewport(index).canvas

    @property
    def active(self) -> int:
        """Index of the active viewport."""
        return self._active

    def active_viewport(self) -> Viewport:
        return self.viewports[self._active]

    def active_canvas(self) -> ImageCanvas:
        return self.viewports[self._active].canvas

    def set_active(self, index: int) -> None:
        """Make viewport ``index`` the one the toolbar, panels and keys act on (it must be
        shown: set the layout first)."""
        if not 0 <= index < self.count():
            raise IndexError(f"viewport {index} is not shown in layout {self._layout} (set_layout first)")
        vp = self.viewport(index)
        old = self._active
        if index == old:
            return
        self._active = index
        multi = self.count() > 1
        for v in self.viewports:
            v.set_active(v is vp and multi)
        self.activeChanged.emit(old, index)

    def open(self, index: int, target, frame: int = 0):
        """Show ``target`` (a path, or a decoded :class:`~cxrviewer.core.types.LoadedImage`)
        in viewport ``index`` without changing the active one; :attr:`opened` follows.
        In the main window a path is decoded off the GUI thread (returns the request id)."""
        return self.opener(index, target, frame)

    def _open_here(self, index: int, target, frame: int = 0) -> None:
        from cxrviewer.core.types import LoadedImage

        if not isinstance(target, LoadedImage):
            from cxrviewer.core.dicom_io import load_image

            target = load_image(str(target), frame)
        vp = self.viewport(index)
        vp.path = target.path
        vp.canvas.set_image(target)
        self.opened.emit(index, target)

    def path(self, index: int) -> str | None:
        """The file shown in viewport ``index`` (``None`` when empty)."""
        return self.viewport(index).path

    def set_caption(self, index: int, text: str) -> None:
        """Label viewport ``index`` (e.g. ``"Prior 2023-04-01"``); ``""`` removes the label."""
        self.viewport(index).set_caption(text)

    def caption(self, index: int) -> str:
        return self.viewport(index).caption.text()

    # ------------------------------------------------------------ sync
    def sync(self) -> tuple[bool, bool]:
        """``(wl, zoom)``: which synchronisations are on."""
        return self._sync_wl, self._sync_zoom

    def set_sync(self, wl: bool | None = None, zoom: bool | None = None) -> None:
        """Turn window/level and/or zoom/pan sync on or off (``None`` leaves it as it is)."""
        if wl is not None:
            self._sync_wl = bool(wl)
        if zoom is not None:
            self._sync_zoom = bool(zoom)
        # the next offset counts from what is on screen now, not from before sync was on
        self._last_window.clear()
        for vp in self.viewports:
            self._remember_window(vp.canvas)
        if self._sync_zoom:
            self._range_changed(self.active_canvas())
        self.syncChanged.emit(self._sync_wl, self._sync_zoom)

    def _remember_window(self, canvas: ImageCanvas) -> None:
        c, w = canvas.window()
        self._last_window[id(canvas)] = (canvas.img, c, w)

    def _targets(self, source: ImageCanvas, colour: bool = False) -> list[ImageCanvas]:
        """The other shown viewports with an image (colour ones only if ``colour``: they
        have no window but do zoom)."""
        return [vp.canvas for vp in self.viewports[: self.count()]
                if vp.canvas is not source and vp.canvas.img is not None and (colour or not vp.canvas.img.is_color)]

    def _window_changed(self, canvas: ImageCanvas, center: float, width: float) -> None:
        last = self._last_window.get(id(canvas))
        self._last_window[id(canvas)] = (canvas.img, center, width)
        if (self._syncing or not self._sync_wl or canvas is not self.active_canvas() or self.sync_paused()
                or last is None or last[0] is not canvas.img or canvas.img is None):
            return  # sync's own change, or a new image's first window: nothing to pass on
        dc, dw = center - last[1], width - last[2]
        if dc == 0 and dw == 0:
            return
        self._syncing = True
        try:
            for other in self._targets(canvas):
                oc, ow = other.window()
                k = range_ratio(canvas, other)
                other.set_window(oc + dc * k, max(1.0, ow + dw * k))
                self._remember_window(other)
        finally:
            self._syncing = False

    @staticmethod
    def fit_zoom(canvas: ImageCanvas) -> float:
        """Screen pixels per view unit at which the whole image fits the viewport."""
        img = canvas.img
        if img is None:
            return 1.0
        r = canvas.image_transform().mapRect(QtCore.QRectF(0, 0, img.cols, img.rows))
        vb = canvas.view_box
        if r.width() <= 0 or r.height() <= 0 or vb.width() <= 0:
            return 1.0
        return min(vb.width() / r.width(), vb.height() / r.height())

    def relative_view(self, canvas: ImageCanvas) -> tuple[float, float, float]:
        """``(fx, fy, rz)``: the view centre as a fraction of the image's columns/rows, and
        the zoom as a multiple of the fit-to-window zoom."""
        img = canvas.img
        (x, y), z = canvas.center_zoom()
        return x / max(img.cols, 1), y / max(img.rows, 1), z / self.fit_zoom(canvas)

    def _range_changed(self, canvas: ImageCanvas) -> None:
        if (self._syncing or not self._sync_zoom or canvas is not self.active_canvas() or canvas.img is None
                or self.sync_paused()):
            return
        fit = canvas.is_fit()
        fx, fy, rz = (0.0, 0.0, 1.0) if fit else self.relative_view(canvas)
        self._syncing = True
        try:
            for other in self._targets(canvas, colour=True):
                if fit:
                    other.fit()
                else:
                    oi = other.img
                    other.set_center_zoom(fx * oi.cols, fy * oi.rows, rz * self.fit_zoom(other))
        finally:
            self._syncing = False
