"""Puts the viewport grid (:mod:`cxrviewer.ui.canvas.viewports`) into the main window: the View menu's
layouts and sync toggles, opening images in a given viewport, drags from the study browser,
and making the window's toolbar, panels and keys act on the active viewport.

How "act on the active viewport" works: ``window.canvas`` is always the active viewport's
canvas. When another viewport becomes active, the window's connections to the old canvas
(probe, title, tool) and those of the W/L panel, measurement panel, reading state, undo
history and AI panel move to the new canvas (each module's ``set_canvas``/``set_tools``), and
``window.current_image`` becomes its image. Every canvas has its own measurement tools and its
own heatmap layer (so the heatmap toggle, H, is per viewport); they are made with the canvas.

The main window's loader still serves the active viewport (browser selection, PgUp/PgDown,
reading state, AI). An image opened in another viewport is decoded by that viewport's own
loader and shown there with its remembered reading state, without taking the focus.
"""

from __future__ import annotations

import os

from PySide6 import QtCore, QtGui, QtWidgets

from cxrviewer.core.types import FileError, LoadedImage
from cxrviewer.ui.canvas.viewports import LAYOUTS, ViewportGrid, mime_for_paths, paths_from_mime

#: layout -> (menu text, shortcut)
LAYOUT_ACTIONS = {"1x1": ("1 × 1", "Alt+1"), "1x2": ("1 × 2 (side by side)", "Alt+2"),
                  "2x1": ("2 × 1 (one above the other)", "Alt+3"), "2x2": ("2 × 2", "Alt+4")}


def install(window) -> ViewportBinding:
    """Add layouts, sync and viewport drag-and-drop to a main window (after the AI and the
    reading tools, whose per-canvas parts it makes for every new viewport)."""
    return ViewportBinding(window)


class ViewportBinding(QtCore.QObject):
    """The main window's side of the viewport grid (see the module docstring).

    The grid's ``open`` and ``opened`` are the API for other features (prior comparison):
    ``window.viewports.open(1, path)`` shows ``path`` in viewport 1 and ``opened(1, img)``
    follows.
    """

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.grid: ViewportGrid = window.viewports
        c0 = self.grid.canvas(0)
        self._tools = {id(c0): window.measure_tools}
        self._layers = {id(c0): window.ai.heatmap if window.ai is not None else None}
        self.bridge = None  # the viewer model's mirror (below, once viewport 0 is equipped)
        self._loaders: dict[int, object] = {}
        self.grid.canvas_factory_hooks.append(self._equip)
        self._clear_ai_when_opened(c0)
        for vp in self.grid.viewports[1:]:
            self._equip(vp.canvas)
        keeper = window.reading_state
        if keeper is not None:
            # restoring an image's remembered window is not the reader moving the window
            self.grid.sync_paused = lambda: keeper.restoring
        self.grid.activeChanged.connect(self._rebind)
        self.grid.pathsDropped.connect(lambda i, paths: self.open(i, paths[0]))
        self.grid.opener = self.open
        window.imageLoaded.connect(self._active_loaded)
        self._failed_path: str | None = None  # the window's last load that failed (not pending)
        window.imageFailed.connect(lambda path, _reason: setattr(self, "_failed_path", path))
        # Opening another folder or file (a new study, maybe another patient) empties the other
        # viewports too: a previous patient's image must not stay beside the new one.
        window.openingPath.connect(lambda _path: self.clear_others())
        self._build_actions()
        self.drag_source = BrowserDragSource(window.browser)
        from cxrviewer.ui.shell.model_bridge import ModelBridge

        self.bridge = ModelBridge(window.model, self.grid, self.tools_for, self)
        for vp in window.model:  # invert set on the model: the Invert action shows the active one's
            vp.view_changed.connect(lambda view, i=vp.index: self._invert_shown(i, view.invert))

    def _invert_shown(self, index: int, on: bool) -> None:
        act = self.window.act_invert
        if index == self.grid.active and act.isChecked() != on:
            blocker = QtCore.QSignalBlocker(act)  # the canvas is inverted already (the bridge)
            act.setChecked(on)
            del blocker

    # ------------------------------------------------------------ per canvas
    def _equip(self, canvas) -> None:
        """The parts every viewport's canvas has: measurement tools and a heatmap layer."""
        w = self.window
        canvas.set_placeholder("Drag an image or a series here from Studies")
        first = self._tools.get(id(self.grid.canvas(0)))
        if first is not None:
            from cxrviewer.ui.reading.measure_tools import MeasureTools

            tools = MeasureTools(canvas, w)
            tools.panel, tools.dock = first.panel, first.dock
            self._tools[id(canvas)] = tools

            def first_measurement(t=tools) -> None:
                # as for viewport 0 (measure_tools.install): the panel appears with the first
                # measurement, not in the middle of a drag (it would resize the canvas under it)
                pressed = QtWidgets.QApplication.mouseButtons() != QtCore.Qt.MouseButton.NoButton
                if t.measurements and not t.dock.isVisible() and not t.drawing and not pressed:
                    t.dock.show()

            tools.changed.connect(first_measurement)
        if w.ai is not None:
            from cxrviewer.ui.ai.heatmap import HeatmapLayer

            layer = HeatmapLayer(w.ai)
            layer.attach(canvas)
            self._layers[id(canvas)] = layer
        self._clear_ai_when_opened(canvas)
        if self.bridge is not None:
            self.bridge.watch(len(self.grid.viewports) - 1)  # the grid calls this hook on the newest

    def _clear_ai_when_opened(self, canvas) -> None:
        """A new image in a viewport that is not the active one: its heatmap and AI text were
        the previous image's (the AI clears the active one's itself)."""

        def shown() -> None:
            if canvas is not self.window.canvas:
                layer = self._layers.get(id(canvas))
                if layer is not None:
                    layer.set_cam(None)
                canvas.set_extra_text([])

        canvas.imageShown.connect(shown)

    def tools_for(self, canvas):
        """The measurement tools of ``canvas`` (``None`` without the reading tools)."""
        return self._tools.get(id(canvas))

    def heatmap_for(self, canvas):
        """The heatmap layer of ``canvas`` (``None`` without the AI)."""
        return self._layers.get(id(canvas))

    # ------------------------------------------------------------ active viewport
    def _rebind(self, _old: int, new: int) -> None:
        w = self.window
        old_c, new_c = w.canvas, self.grid.canvas(new)
        if old_c is new_c:
            return
        if w.cine is not None:
            w.cine.stop()  # it plays the frames of the image that was active
        if (w.current_path and w.current_path != self._failed_path
                and (old_c.img is None or old_c.img.path != w.current_path)):
            # the window's loader is still decoding what the old viewport asked for: it goes
            # there, through that viewport's loader, not into the one now active
            w.loader.supersede()
            self.open(_old, w.current_path)
        w.bind_canvas(new_c)
        img = new_c.img
        w.current_image = img
        w.current_path = self.grid.viewport(new).path or (img.path if img is not None else None)
        for act, on in ((w.act_invert, new_c.view_state().invert), (w.act_overlay, new_c.overlay_visible())):
            blocker = QtCore.QSignalBlocker(act)
            act.setChecked(on)
            del blocker
        w.wl_panel.set_canvas(new_c)
        tools = self.tools_for(new_c)
        if tools is not None:
            w.measure_tools = tools
            tools.panel.set_tools(tools)
        if w.reading_state is not None:
            w.reading_state.set_canvas(new_c, tools)
        if w.annotation_history is not None and tools is not None:
            w.annotation_history.set_canvas(new_c, tools)
        if w.ai is not None:
            w.ai.set_canvas(new_c, self.heatmap_for(new_c))
        w.refresh()
        if img is None:
            w.setWindowTitle("cxrviewer")  # not the title of the image in the other viewport
        name = os.path.basename(w.current_path) if w.current_path else "empty"
        w.show_message(f"Viewport {new + 1} of {self.grid.count()}: {name}")
        self._select_in_browser(w.current_path)

    def _select_in_browser(self, path: str | None) -> None:
        """The browser shows the active viewport's image and PgDown goes on from there (its
        selection is set to that path first, so selecting it loads nothing)."""
        b = self.window.browser
        if path and b.selected_path() != path:
            b.show_path(path)

    def _active_loaded(self, img: LoadedImage) -> None:
        self._failed_path = None
        vp = self.grid.active_viewport()
        vp.path = self.window.current_path or img.path
        self._select_in_browser(vp.path)
        self.grid.opened.emit(self.grid.active, img)

    # ------------------------------------------------------------ opening
    def open(self, index: int, target: str | os.PathLike | LoadedImage, frame: int = 0) -> int | None:
        """Show ``target`` (a path, or an already decoded :class:`LoadedImage`) in viewport
        ``index``; the active viewport is not changed. Returns the load request id for a path
        (the image arrives later: the grid's ``opened``), ``None`` for a decoded image."""
        w = self.window
        vp = self.grid.viewport(index)
        if isinstance(target, LoadedImage):
            if index == self.grid.active:
                w.show_loaded(target)
            else:
                self._show(index, target)
            return None
        path = os.fspath(target)
        vp.path = path
        if index == self.grid.active:
            return w.load_path(path, frame)
        loader = self._loaders.get(index)
        if loader is None:
            from cxrviewer.ui.common.loaders import ImageLoader

            loader = self._loaders[index] = ImageLoader(self, cache_size=2)
            loader.loaded.connect(lambda rid, img, i=index: self._loaded(i, rid, img))
            loader.failed.connect(lambda rid, p, reason, i=index: self._failed(i, rid, p, reason))
        return loader.request(path, frame)

    def _loaded(self, index: int, rid: int, img: LoadedImage) -> None:
        if rid != self._loaders[index].current_id:
            return  # another image was asked for in this viewport meanwhile
        if index == self.grid.active:
            # the reader made it active while it was decoding: the window takes it over
            self.window.show_loaded(img)
            return
        self._show(index, img)

    def _show(self, index: int, img: LoadedImage) -> None:
        vp = self.grid.viewport(index)
        c = vp.canvas
        vp.path = img.path
        c.set_image(img)
        keeper = self.window.reading_state
        if keeper is not None:
            st = keeper.store.load(keeper.key_for(img))
            if st is not None:
                keeper.apply(st, canvas=c, tools=self.tools_for(c))
        self.grid.opened.emit(index, img)

    def clear_others(self) -> None:
        """Empty every viewport but the active one (image, annotations, heatmap, caption) and
        drop their loads in flight; the active one's caption goes too (its image is about to)."""
        for vp in self.grid.viewports:
            vp.set_caption("")
            if vp.index == self.grid.active:
                continue
            loader = self._loaders.get(vp.index)
            if loader is not None:
                loader.supersede()
            vp.path = None
            tools = self.tools_for(vp.canvas)
            if tools is not None:
                tools.clear()
            layer = self.heatmap_for(vp.canvas)
            if layer is not None:
                layer.set_cam(None)
            vp.canvas.set_extra_text([])
            vp.canvas.clear()

    def _failed(self, index: int, rid: int, path: str, reason: str) -> None:
        self.window.add_error(FileError(path, reason))
        if rid != self._loaders[index].current_id:
            return
        c = self.grid.canvas(index)
        c.clear()
        c.set_placeholder(f"Cannot display {os.path.basename(path)}:\n{reason}")
        self.window.show_message(f"{os.path.basename(path)}: {reason}", error=True)

    # ------------------------------------------------------------ actions
    def _build_actions(self) -> None:
        w = self.window
        m_view = w.menus["view"]
        before = w.menus["panels"].menuAction()
        m_layout = QtWidgets.QMenu("&Layout", m_view)  # a child of the menu bar's menus, as addMenu makes
        m_view.insertMenu(before, m_layout)
        w.menus["layout"] = m_layout
        group = QtGui.QActionGroup(self)
        self.layout_actions: dict[str, QtGui.QAction] = {}
        for name, (text, key) in LAYOUT_ACTIONS.items():
            a = self._add(m_layout, text, key, lambda on, n=name: on and self.grid.set_layout(n), checkable=True,
                          tip=f"{LAYOUTS[name][0]} row(s) × {LAYOUTS[name][1]} column(s) of viewports")
            group.addAction(a)
            self.layout_actions[name] = a
        self.layout_actions[self.grid.layout_name()].setChecked(True)
        self.grid.layoutChanged.connect(lambda n: self.layout_actions[n].setChecked(True))
        m_layout.addSeparator()
        self.act_next_viewport = self._add(m_layout, "&Next Viewport", "V",
                                           lambda: self.grid.set_active((self.grid.active + 1) % self.grid.count()),
                                           tip="Make the next viewport the active one (outlined)")
        self.act_sync_wl = self._add(m_layout, "Sync &Window/Level", "Shift+L", lambda on: self.grid.set_sync(wl=on),
                                     checkable=True, tip="Move every viewport's window by the same offset in modality values")
        self.act_sync_zoom = self._add(m_layout, "Sync &Zoom/Pan", "Shift+Z", lambda on: self.grid.set_sync(zoom=on),
                                       checkable=True, tip="Same relative zoom and pan in every viewport")
        self.grid.syncChanged.connect(self._sync_changed)
        m_view.insertSeparator(before)

    def _add(self, menu, text: str, key: str, slot, checkable: bool = False, tip: str = "") -> QtGui.QAction:
        # the window's own action factory: menu, window-wide shortcut, the shortcuts dialog's list
        return self.window.add_action(menu, text, slot, shortcut=key, checkable=checkable, tip=tip)

    def _sync_changed(self, wl: bool, zoom: bool) -> None:
        for a, on in ((self.act_sync_wl, wl), (self.act_sync_zoom, zoom)):
            if a.isChecked() != on:
                blocker = QtCore.QSignalBlocker(a)
                a.setChecked(on)
                del blocker

    def shutdown(self) -> None:
        for loader in self._loaders.values():
            loader.shutdown()


class BrowserDragSource(QtCore.QObject):
    """Starts a drag of image paths from the study tree and the worklist.

    An event filter on the two views' viewports (not a subclass of the browser's models):
    a left-button move past the platform's drag distance starts a ``QDrag`` carrying
    :data:`~cxrviewer.ui.canvas.viewports.MIME_PATHS` with the image under the press, or every image
    of the series/study row under it. A plain click still selects as before.

    Signals
    -------
    dragStarted(list)
        A drag of these image paths is starting (before ``QDrag.exec``, which owns its data).
    """

    dragStarted = QtCore.Signal(list)

    def __init__(self, browser) -> None:
        super().__init__(browser)
        self.browser = browser
        self._press: tuple[QtWidgets.QAbstractItemView, QtCore.QPoint] | None = None
        for view in (browser.view, browser.worklist):
            view.viewport().installEventFilter(self)

    def paths_at(self, view: QtWidgets.QAbstractItemView, index: QtCore.QModelIndex) -> list[str]:
        """The image paths a drag from ``index`` carries: its own, else its children's."""
        from cxrviewer.ui.browser.study_browser import PATH_ROLE

        first = index.siblingAtColumn(0)
        p = first.data(PATH_ROLE)
        if p:
            return [p]
        out: list[str] = []
        model = view.model()

        def walk(parent: QtCore.QModelIndex) -> None:
            for r in range(model.rowCount(parent)):
                idx = model.index(r, 0, parent)
                q = idx.data(PATH_ROLE)
                if q:
                    out.append(q)
                walk(idx)

        walk(first)
        return out

    def mime_at(self, view: QtWidgets.QAbstractItemView, pos: QtCore.QPoint) -> QtCore.QMimeData | None:
        """The drag's data for a press at ``pos`` (viewport coordinates), or ``None``."""
        idx = view.indexAt(pos)
        paths = self.paths_at(view, idx) if idx.isValid() else []
        return mime_for_paths(paths) if paths else None

    def eventFilter(self, obj, ev) -> bool:  # noqa: N802 - Qt name
        T = QtCore.QEvent.Type
        view = obj.parent()
        if ev.type() == T.MouseButtonPress and ev.button() == QtCore.Qt.MouseButton.LeftButton:
            self._press = (view, ev.position().toPoint())
            self.browser.hold_selection()  # a drag must not also open the row in the active viewport
        elif ev.type() == T.MouseButtonRelease:
            if self._press is not None:
                self.browser.release_selection()  # a click: open what the press selected
            self._press = None
        elif ev.type() == T.MouseMove and self._press is not None and ev.buttons() & QtCore.Qt.MouseButton.LeftButton:
            v, start = self._press
            if v is view and (ev.position().toPoint() - start).manhattanLength() >= QtWidgets.QApplication.startDragDistance():
                self._press = None
                self.browser.cancel_selection()
                md = self.mime_at(view, start)
                if md is not None:
                    self.dragStarted.emit(paths_from_mime(md))
                    drag = QtGui.QDrag(view)
                    drag.setMimeData(md)
                    n = len(paths := paths_from_mime(md))
                    drag.setPixmap(_drag_pixmap(f"{n} image{'s' if n != 1 else ''}" if n > 1 else os.path.basename(paths[0])))
                    drag.exec(QtCore.Qt.DropAction.CopyAction)
                    return True
        return False


def _drag_pixmap(text: str) -> QtGui.QPixmap:
    """A small label under the cursor while dragging."""
    fm = QtGui.QFontMetrics(QtWidgets.QApplication.font())
    pm = QtGui.QPixmap(fm.horizontalAdvance(text) + 16, fm.height() + 8)
    pm.fill(QtGui.QColor(47, 95, 143, 220))
    p = QtGui.QPainter(pm)
    p.setPen(QtGui.QColor("white"))
    p.drawText(pm.rect(), QtCore.Qt.AlignmentFlag.AlignCenter, text)
    p.end()
    return pm
