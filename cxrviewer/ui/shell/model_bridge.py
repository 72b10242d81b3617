"""Keeps the viewer model (:mod:`cxrviewer.viewer`) and the viewport widgets in step.

Widgets → model: what each viewport's canvas shows (image reference, window, orientation,
invert and relative zoom/pan), the layout and the active viewport. Model → widgets: the
captions, which the model derives (so "Prior · date" cannot outlive the image it described);
window and view (invert included) set on the model; and intent sent to the model (layout,
active viewport, ``request_open``), which the grid carries out.

Measurements (the ruler included) are not mirrored at all: each viewport's measurement tools
(:mod:`cxrviewer.ui.reading.measure_tools`) are given that viewport's model, draw what it holds
and send the reader's drawing, moving and deleting to it as intent. Exports, SR and GSPS then
read the model, not a panel.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6 import QtCore

from cxrviewer.viewer import (
    ImageRef,
    ViewerModel,
    ViewportModel,
    ViewTransform,
    Window,
)


class ModelBridge(QtCore.QObject):
    """Mirror the viewport ``grid`` into ``model``; ``tools_for(canvas)`` gives a canvas's
    measurement tools (``None`` without them)."""

    def __init__(self, model: ViewerModel, grid, tools_for: Callable, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.model, self.grid, self.tools_for = model, grid, tools_for
        self._watched: set[int] = set()
        self._applying = False  # a model change being put on a canvas (its echo is not news)
        for vp in grid.viewports:
            self.watch(vp.index)
        model.set_layout(grid.layout_name())
        model.set_active(grid.active)
        grid.layoutChanged.connect(model.set_layout)
        grid.activeChanged.connect(lambda _old, new: model.set_active(new))
        # and the other way: intent sent to the model (hanging protocols) reaches the grid
        model.layout_changed.connect(lambda n: grid.layout_name() != n and grid.set_layout(n))
        model.active_changed.connect(lambda _old, new: grid.active != new and grid.set_active(new))
        model.open_requested.connect(lambda i, path, frame: grid.open(i, path, frame))
        model.captions_changed.connect(self._captions)
        self._captions(model.captions())

    def watch(self, index: int) -> None:
        """Follow viewport ``index``'s canvas (call once its measurement tools exist)."""
        if index in self._watched:
            return
        self._watched.add(index)
        c = self.grid.canvas(index)
        c.imageShown.connect(lambda i=index: self.image_shown(i))
        c.cleared.connect(lambda i=index: self.model[i].set_image(None))
        c.windowChanged.connect(lambda center, width, i=index: self.model[i].set_window(Window(center, width)))
        c.viewChanged.connect(lambda i=index: self._view(i))
        tools = self.tools_for(c)
        if tools is not None:  # they draw this viewport's measurements and send intent to it
            tools.set_model(self.model[index])
        # a window set on the model (by any feature, Qt-free) is what the canvas shows
        self.model[index].window_changed.connect(lambda win, i=index: self._apply_window(i, win))
        self.model[index].view_changed.connect(lambda view, i=index: self._apply_view(i, view))
        if c.img is not None:
            self.image_shown(index)

    def _apply_window(self, index: int, win) -> None:
        c = self.grid.canvas(index)
        if win is None or c.img is None or c.img.is_color:
            return
        if c.window() != (win.center, win.width):
            c.set_window(win.center, win.width)

    def image_shown(self, index: int) -> None:
        c = self.grid.canvas(index)
        if c.img is None:
            return
        m = self.model[index]
        m.set_pixels(c.img)  # what the model computes measurement values on
        m.set_image(ImageRef.from_image(c.img))
        center, width = c.window()
        m.set_window(Window(center, width) if width > 0 else None)
        self._view(index)

    def _apply_view(self, index: int, view) -> None:
        """Orientation, invert, zoom and centre set on the model, put on the canvas (the
        window's Invert action follows the active canvas: :meth:`ViewportBinding` keeps it)."""
        c = self.grid.canvas(index)
        if self._applying or c.img is None or self._view_of(index) == view:
            return  # the canvas's own change coming back (or nothing to show it on)
        self._applying = True
        try:
            v = c.view_state()
            if (view.rotation - v.rotation) % 4:
                c.rotate((view.rotation - v.rotation) % 4)
            if view.flip_h != c.view_state().flip_h:
                c.flip_h()
            if view.flip_v != c.view_state().flip_v:
                c.flip_v()
            if view.invert != c.view_state().invert:
                c.set_invert(view.invert)
            img = c.img
            c.set_center_zoom(view.center[0] * img.cols, view.center[1] * img.rows,
                              view.zoom * self.grid.fit_zoom(c))
        finally:
            self._applying = False
        self._view(index)  # the model takes the canvas's own (rounded) view

    def _view_of(self, index: int) -> ViewTransform | None:
        """What canvas ``index`` shows, as the model's view (``None`` without an image)."""
        c = self.grid.canvas(index)
        if c.img is None:
            return None
        v = c.view_state()
        try:
            cx, cy, z = self.grid.relative_view(c)
        except (ValueError, ZeroDivisionError):  # not laid out yet
            cx, cy, z = 0.5, 0.5, 1.0
        return ViewTransform(zoom=round(float(z), 4), center=(round(float(cx), 4), round(float(cy), 4)),
                             rotation=int(v.rotation) % 4, flip_h=bool(v.flip_h), flip_v=bool(v.flip_v),
                             invert=bool(v.invert))

    def _view(self, index: int) -> None:
        if self._applying:
            return
        view = self._view_of(index)
        if view is not None:
            self.model[index].set_view(view)

    def viewport_of(self, canvas) -> ViewportModel | None:
        """The model of the viewport whose canvas is ``canvas``."""
        for vp in self.grid.viewports:
            if vp.canvas is canvas:
                return self.model[vp.index]
        return None

    def _captions(self, captions: tuple) -> None:
        for i, text in enumerate(captions):
            if i < len(self.grid.viewports):
                self.grid.set_caption(i, text)
