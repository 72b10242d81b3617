"""Measurement tools on pyqtgraph ROIs: angle, Cobb angle, cardiothoracic ratio, ellipse and
rectangle ROI statistics, and the *Measurements* panel.

Every tool's shapes are children of one container item that the canvas keeps on its image
transform (:meth:`ImageCanvas.add_layer`), so their coordinates are *image* coordinates (x =
column, y = row) through zoom, rotation, flips and non-square pixels; their handles stay
editable. The numbers come from :mod:`cxrviewer.core.measure` (Qt-free, tested against
numpy), in mm when the header has a pixel spacing and in pixels (``px``) when it has none.

Drawing (left button with the tool chosen in Tools):

* **Angle** (G): drag the first arm from the vertex, then drag anywhere to place the second arm's end.
* **Cobb angle** (C): drag one line, then the other.
* **CTR** (X): drag the inner thoracic width, then the heart width.
* **Ellipse ROI** (E) / **Rectangle ROI** (Q): drag the box.
* **Arrow** (Shift+A): drag from the tail to the point shown. **Text label** (Shift+T): click
  where the text goes and type it.

Delete (the panel's button, or Tools → Delete Selected Ruler for rulers) removes; the panel's
*Copy* puts every measurement of the image on the clipboard as text.
"""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from cxrviewer.core import measure as M
from cxrviewer.render.export import RulerSpec
from cxrviewer.viewer.measurements import REGISTRY as MEASUREMENT_KINDS

COLOR = (120, 255, 120)
SELECTED = (0, 200, 255)
#: tool id -> (menu name, shortcut, points a finished measurement has), from the one
#: measurement registry (the ruler is the canvas's own tool)
TOOLS = {k: (m.name, m.shortcut, m.points) for k, m in MEASUREMENT_KINDS.items() if k != "ruler"}


class _EllipseROI(pg.EllipseROI):
    """An ellipse ROI without the rotate handle: its box is its geometry."""

    def _addHandles(self):  # noqa: N802 - pyqtgraph's name
        self.addScaleHandle([1, 1], [0, 0])
        self.addScaleHandle([0, 0], [1, 1])


def _ignore_event(ev) -> None:
    """A mouse event for an item that is not taking the mouse now (see set_interactive)."""
    if hasattr(ev, "ignore"):
        ev.ignore()


class Measurement:
    """One measurement: its kind, its points (image coordinates) and its ROI items."""

    def __init__(self, tools: MeasureTools, kind: str, points: list[tuple[float, float]], note: str = ""):
        self.tools = tools
        self.kind = kind
        self.note = note  # the text of a text label or an arrow
        #: an angle of which only the first arm is drawn yet (its second arm lies on the first:
        #: no angle to show, and not a measurement until the second drag)
        self.partial = False
        self.rois: list[pg.ROI] = []
        self.head: pg.ArrowItem | None = None
        self.label = pg.TextItem("", color=COLOR, anchor=(0, 1), fill=pg.mkBrush(0, 0, 0, 140))
        self.label.setParentItem(tools.container)
        pen = pg.mkPen(COLOR, width=2)
        if kind == "angle":
            self.rois = [pg.PolyLineROI(points, closed=False, pen=pen, movable=True)]
        elif kind == "arrow":
            self.rois = [pg.LineSegmentROI([points[0], points[1]], pen=pen)]
            self.head = pg.ArrowItem(headLen=16, tipAngle=30, pen=pen, brush=pg.mkBrush(COLOR))
            self.head.setParentItem(tools.container)
            self.head.setZValue(101)
        elif kind == "text":
            t = pg.TargetItem(points[0], size=9, symbol="o", pen=pen, movable=True)
            self.rois = [t]
        elif kind in ("cobb", "ctr"):
            self.rois = [pg.LineSegmentROI([points[0], points[1]], pen=pen)]
            if len(points) >= 4:
                self.rois.append(pg.LineSegmentROI([points[2], points[3]], pen=pen))
        elif kind in ("ellipse", "rect"):
            (x0, y0), (x1, y1) = points[0], points[1]
            pos, size = (min(x0, x1), min(y0, y1)), (max(abs(x1 - x0), 1e-3), max(abs(y1 - y0), 1e-3))
            cls = _EllipseROI if kind == "ellipse" else pg.RectROI
            kw = {} if kind == "ellipse" else {"centered": False, "sideScalers": False}
            roi = cls(pos, size, pen=pen, rotatable=False, **kw)
            if kind == "rect":
                roi.addScaleHandle([0, 0], [1, 1])
            self.rois = [roi]
        else:
            raise ValueError(f"unknown measurement {kind!r}; one of {sorted(TOOLS)}")
        for r in self.rois:
            self._own(r)
        self.update()

    def _own(self, roi: pg.ROI) -> None:
        roi.setParentItem(self.tools.container)
        roi.setZValue(100)
        if isinstance(roi, pg.TargetItem):
            roi.sigPositionChanged.connect(lambda *_: self.update())
            roi.sigPositionChangeFinished.connect(lambda *_: self.tools.changed.emit())
            return
        roi.sigRegionChanged.connect(lambda *_: self.update())
        roi.sigRegionChangeFinished.connect(lambda *_: self.tools.changed.emit())
        roi.sigClicked.connect(lambda *_: self.tools.select(self))
        roi.setAcceptedMouseButtons(QtCore.Qt.MouseButton.LeftButton)

    def add_second_line(self, p0, p1) -> None:
        roi = pg.LineSegmentROI([p0, p1], pen=pg.mkPen(COLOR, width=2))
        self.rois.append(roi)
        self._own(roi)
        self.update()

    # ----------------------------------------------------------- geometry
    def points(self) -> list[tuple[float, float]]:
        """The defining points in image coordinates."""
        out: list[tuple[float, float]] = []
        for r in self.rois:
            if isinstance(r, pg.TargetItem):
                out.append((r.pos().x(), r.pos().y()))
            elif isinstance(r, (pg.LineSegmentROI, pg.PolyLineROI)):
                for _name, p in r.getLocalHandlePositions():
                    q = r.mapToParent(p)
                    out.append((q.x(), q.y()))
            else:
                pos, size = r.pos(), r.size()
                out += [(pos.x(), pos.y()), (pos.x() + size.x(), pos.y() + size.y())]
        return out

    def complete(self) -> bool:
        return not self.partial and len(self.points()) >= TOOLS[self.kind][2]

    def set_interactive(self, on: bool) -> None:
        """Whether its handles and lines take the mouse. Off while the measurement waits for
        its second drag, which the reader naturally starts on the vertex or the first line:
        that press must reach the tool, not move the half-drawn shape. (pyqtgraph's scene
        picks the item to drag from its own hover events, not from Qt's accepted buttons:
        the items' hover and drag handlers are shadowed per instance while off.)"""
        items: list = []
        for r in self.rois:
            items.append(r)
            items += list(r.getHandles()) if hasattr(r, "getHandles") else []
            items += list(getattr(r, "segments", []))
        for it in items:
            for name in ("hoverEvent", "mouseDragEvent", "mouseClickEvent"):
                if on:
                    it.__dict__.pop(name, None)
                else:
                    setattr(it, name, _ignore_event)

    def value(self) -> tuple[str, str]:
        """``(name, value text)`` for the panel and the label."""
        img = self.tools.canvas.img
        g = img.geometry if img is not None else None
        sp = (g.row_spacing_mm, g.col_spacing_mm) if g is not None else None
        pts = self.points()
        name = TOOLS[self.kind][0]
        if self.kind in ("arrow", "text"):
            return name, self.note
        if self.kind == "angle":
            if self.partial:
                return name, "drag the second arm"
            a, v, b = pts[:3]
            return name, f"{M.angle_deg(v, a, b, sp):.1f}°"
        if self.kind == "cobb":
            if len(pts) < 4:
                return name, "draw the second line"
            return name, f"Cobb {M.cobb_angle_deg((pts[0], pts[1]), (pts[2], pts[3]), sp):.1f}°"
        if self.kind == "ctr":
            unit = g.label if g is not None else "px"
            thorax = M.length(pts[0], pts[1], sp)
            if len(pts) < 4:
                return name, f"thorax {thorax:.1f} {unit}: now draw the heart width"
            heart = M.length(pts[2], pts[3], sp)
            return name, f"CTR {M.cardiothoracic_ratio((pts[2], pts[3]), (pts[0], pts[1]), sp):.2f} (heart {heart:.1f} / thorax {thorax:.1f} {unit})"
        st = self.stats()
        if st is None:
            return name, "statistics need a grayscale image"
        unit = img.units if img is not None and img.units and img.units.upper() != "US" else ""
        area = (f"{st.area_mm2:.1f} {g.label.replace('mm', 'mm²', 1)}" if st.area_mm2 is not None and g is not None
                else f"{st.area_px:.0f} px²")
        if st.n == 0:
            return name, f"no pixel centre inside · {area}"
        u = f" {unit}" if unit else ""
        return name, f"mean {st.mean:.1f}{u} · SD {st.sd:.1f} · min {st.min:g} · max {st.max:g} · {area}"

    def stats(self) -> M.RoiStats | None:
        img = self.tools.canvas.img
        if img is None or img.is_color or self.kind not in ("ellipse", "rect"):
            return None
        p0, p1 = self.points()[:2]
        g = img.geometry
        values = img.modality if img.modality is not None else img.stored
        return M.stats_of(M.roi_values(values, self.kind, p0, p1),
                          (g.row_spacing_mm, g.col_spacing_mm) if g is not None else None)

    def text(self) -> str:
        return self.value()[1]

    def anchor(self) -> tuple[float, float]:
        pts = self.points()
        if self.kind in ("arrow", "text"):
            return pts[0]  # the text at the tail, where it does not hide what the arrow shows
        if self.kind == "angle":
            return pts[1]
        if self.kind in ("ellipse", "rect"):
            return (max(pts[0][0], pts[1][0]), min(pts[0][1], pts[1][1]))
        return pts[-1]

    def update(self) -> None:
        text = self.text()
        self.label.setText(text, color=SELECTED if self.tools.selected is self else COLOR)
        self.label.setPos(*self.anchor())
        self.label.setVisible(bool(text))
        if self.head is not None:
            tail, head = self.points()[:2]
            c = self.tools.canvas
            a, b = c.image_to_scene(*tail), c.image_to_scene(*head)
            dx, dy = b.x() - a.x(), b.y() - a.y()
            # ArrowItem: angle 0 points left, rotated clockwise on screen (y down)
            self.head.setStyle(angle=math.degrees(math.atan2(-dy, -dx)))
            self.head.setPos(*head)

    def specs(self) -> list[RulerSpec]:
        """Line segments for the native export, the label on the last one."""
        pts = self.points()
        if self.kind == "text":
            return [RulerSpec(pts[0], pts[0], self.note)]
        if self.kind == "arrow":
            return _arrow_specs(pts[0], pts[1], self.note, self.tools.canvas.img)
        if self.kind == "angle":
            segs = M.polyline_segments(pts[:3])
        elif self.kind in ("cobb", "ctr"):
            segs = [(pts[i], pts[i + 1]) for i in range(0, len(pts) - 1, 2)]
        elif self.kind == "ellipse":
            segs = M.polyline_segments(M.ellipse_outline(pts[0], pts[1]))
        else:
            segs = M.polyline_segments(M.rect_outline(pts[0], pts[1]))
        out = [RulerSpec(a, b, "") for a, b in segs]
        if out:  # the value at the end of the last segment, as rulers have theirs
            out[-1] = RulerSpec(out[-1].p0, out[-1].p1, self.text())
        return out

    def items(self) -> list[QtWidgets.QGraphicsItem]:
        return [*self.rois, self.label, *([self.head] if self.head is not None else [])]

    def remove(self) -> None:
        for it in self.items():
            sc = it.scene()
            it.setParentItem(None)
            if sc is not None:
                sc.removeItem(it)


def _arrow_specs(tail, head, note: str, img) -> list[RulerSpec]:
    """An arrow for the export: the shaft (its text at the tail) and two head strokes, the head
    about 2.5% of the image's size."""
    size = 0.025 * max(img.rows, img.cols) if img is not None else 10.0
    dx, dy = head[0] - tail[0], head[1] - tail[1]
    n = math.hypot(dx, dy) or 1.0
    ux, uy = dx / n, dy / n
    out = [RulerSpec(head, tail, note)]
    for s in (1, -1):
        c, si = math.cos(math.radians(25)), s * math.sin(math.radians(25))
        bx, by = -(ux * c - uy * si), -(uy * c + ux * si)
        out.append(RulerSpec(head, (head[0] + size * bx, head[1] + size * by), ""))
    return out


class MeasureTools(QtCore.QObject):
    """The measurement tools of one canvas (and its main window's Tools menu and panel)."""

    changed = QtCore.Signal()

    def __init__(self, canvas, parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self.canvas = canvas
        self.container = pg.ItemGroup()
        canvas.add_layer(self.container, 100)  # follows the image transform; exports nothing itself
        self.measurements: list[Measurement] = []
        #: the viewer model's viewport these tools draw (``cxrviewer.viewer.ViewportModel``, set
        #: by the shell's model bridge): deleting and text labels are sent to it as intent
        self.model = None
        self.selected: Measurement | None = None
        self._pending: Measurement | None = None
        self._drawing: Measurement | None = None
        for tool in TOOLS:
            canvas.register_tool(tool, self._drag)
        canvas.imageShown.connect(self.clear)
        canvas.toolChanged.connect(self._drop_unfinished)
        canvas.viewChanged.connect(self._view_changed)  # arrow heads are drawn in screen space
        #: asks the reader for a text label's text: ``(text, ok)``
        self.ask_text = lambda: QtWidgets.QInputDialog.getText(canvas, "Text label", "Text:")
        canvas.export_specs.append(self.specs)
        canvas.annotation_items.append(self.items)

    # ------------------------------------------------------------- API
    @property
    def drawing(self) -> bool:
        """A measurement is being drawn (the mouse is down on it)."""
        return self._drawing is not None

    def add(self, kind: str, points: list[tuple[float, float]], emit: bool = True, note: str = "") -> Measurement:
        """Add a finished (or, for two-line tools, half-finished) measurement; ``note`` is the
        text of a text label or an arrow."""
        m = Measurement(self, kind, [tuple(map(float, p)) for p in points], note)
        self.measurements.append(m)
        if emit:
            self.changed.emit()
        return m

    def clear(self, *_a) -> None:
        for m in self.measurements:
            m.remove()
        self.measurements, self.selected, self._pending, self._drawing = [], None, None, None
        self.changed.emit()

    def select(self, m: Measurement | None) -> None:
        self.selected = m
        for x in self.measurements:
            x.update()
        self.changed.emit()

    def delete(self, m: Measurement | None = None) -> bool:
        """Delete ``m`` (else the selected, else the last): intent sent to the viewer model when
        the tools have one (:attr:`model`; the canvas then drops what the model no longer holds)."""
        m = m or self.selected or (self.measurements[-1] if self.measurements else None)
        if m is None or m not in self.measurements:
            return False
        if self.model is not None and m.complete():
            finished = [x for x in self.measurements if x.complete()]
            self.model.remove_measurement(len(self.canvas.rulers) + finished.index(m))
            return True
        self.remove(m)
        self.changed.emit()
        return True

    def delete_ruler(self, ruler=None) -> bool:
        """Delete ``ruler`` (else the selected rulers, else the last): through the viewer model
        when the tools have one, as :meth:`delete`."""
        c = self.canvas
        sel = [ruler] if ruler is not None else ([r for r in c.rulers if r.selected] or c.rulers[-1:])
        if self.model is None:
            for r in c.rulers:
                r.selected = r in sel
            return c.delete_selected_ruler() if sel else False
        for r in sel:
            if r in c.rulers:
                self.model.remove_measurement(c.rulers.index(r))
        return bool(sel)

    def remove(self, m: Measurement) -> None:
        """Take ``m``'s items off the canvas (drawing, not intent: no ``changed``)."""
        m.remove()
        self.measurements.remove(m)
        if self.selected is m:
            self.selected = None
        if self._pending is m:
            self._pending = None

    def specs(self) -> list[RulerSpec]:
        return [s for m in self.measurements for s in m.specs()]

    def _drop_unfinished(self, tool: str = "") -> None:
        """Another tool: a measurement still waiting for its second drag goes (a one-armed
        angle or a lone Cobb/CTR line measures nothing and must not be left behind)."""
        m = self._pending
        if m is None or tool == m.kind or self._drawing is not None:
            return
        self._pending = None
        if m in self.measurements and not m.complete():
            self.delete(m)

    def _view_changed(self) -> None:
        for m in self.measurements:
            if m.head is not None:
                m.update()

    def items(self) -> list[QtWidgets.QGraphicsItem]:
        return [it for m in self.measurements for it in m.items()]

    # ----------------------------------------------------------- drawing
    def _drag(self, ev) -> None:
        c = self.canvas
        if c.img is None:
            return
        tool = c.tool()
        p = c.scene_to_image(ev.scenePos())
        if tool == "text":
            if not hasattr(ev, "isStart") or ev.isFinish():  # a click, or the end of a drag
                text, ok = self.ask_text()
                if ok and text.strip():
                    if self.model is not None:
                        self.model.add_measurement("text", [p], label=text.strip())
                    else:
                        self.add("text", [p], note=text.strip())
            return
        if not hasattr(ev, "isStart"):
            return  # a click: the other tools are drawn by dragging
        if ev.isStart():
            p0 = c.scene_to_image(ev.buttonDownScenePos())
            pend = self._pending if self._pending is not None and self._pending.kind == tool else None
            if pend is not None and tool in ("cobb", "ctr"):
                pend.add_second_line(p0, p)
                self._drawing = pend
            elif pend is not None and tool == "angle":
                self._drawing = pend
            else:
                first = {"angle": [p, p0, p], "cobb": [p0, p], "ctr": [p0, p], "ellipse": [p0, p], "rect": [p0, p],
                         "arrow": [p0, p]}[tool]
                self._drawing = self.add(tool, first, emit=False)  # "changed" when the drag ends
                self._pending = self._drawing if tool in ("angle", "cobb", "ctr") else None
                if tool == "angle":
                    self._drawing.partial = True
            self._second = pend is not None
        m = self._drawing
        if m is None:
            return
        self._move_last(m, p, tool)
        if ev.isFinish():
            if self._second or tool in ("ellipse", "rect"):
                self._pending = None
                m.partial = False
                m.set_interactive(True)
            else:  # waits for its second drag, which must reach the tool (set_interactive)
                m.set_interactive(m is not self._pending)
            m.update()
            self._drawing = None
            self.changed.emit()

    def _move_last(self, m: Measurement, p, tool: str) -> None:
        """Move the point being drawn: the box corner, the line end, or an angle arm."""
        roi = m.rois[-1]
        if tool in ("ellipse", "rect"):
            x0, y0 = roi.pos().x(), roi.pos().y()
            if not hasattr(m, "_origin"):
                m._origin = (x0, y0)
            ox, oy = m._origin
            roi.setPos((min(ox, p[0]), min(oy, p[1])), update=False, finish=False)
            roi.setSize((max(abs(p[0] - ox), 1e-3), max(abs(p[1] - oy), 1e-3)), update=True, finish=False)
            return
        handles = roi.getHandles()
        if tool == "angle":
            h = handles[2] if self._second else handles[0]
            if not self._second:  # the second arm starts on the first
                roi.movePoint(handles[2], QtCore.QPointF(*p), finish=False)
        else:
            h = handles[1]
        roi.movePoint(h, QtCore.QPointF(*p), finish=False)  # coords="parent": image coordinates


class MeasurementsPanel(QtWidgets.QWidget):
    """The current image's rulers and measurements with their values; Delete and Copy."""

    def __init__(self, tools: MeasureTools, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.tools = tools
        self.table = QtWidgets.QTableWidget(0, 2, self)
        self.table.setHorizontalHeaderLabels(["Measurement", "Value"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(True)
        self.table.itemSelectionChanged.connect(self._selected)
        self.delete_button = QtWidgets.QPushButton("Delete", self)
        self.copy_button = QtWidgets.QPushButton("Copy", self)
        self.copy_button.setToolTip("Copy every measurement of this image as text")
        self.delete_button.clicked.connect(self.delete_selected)
        self.copy_button.clicked.connect(self.copy)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.delete_button)
        row.addWidget(self.copy_button)
        row.addStretch(1)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.table)
        lay.addLayout(row)
        self._rows: list[object] = []
        tools.changed.connect(self.refresh)
        tools.canvas.rulersChanged.connect(self.refresh)
        tools.canvas.imageShown.connect(self.refresh)

    def set_tools(self, tools: MeasureTools) -> None:
        """List the measurements of another viewport's ``tools`` (the active viewport changed)."""
        if tools is self.tools:
            return
        for sig in (self.tools.changed, self.tools.canvas.rulersChanged, self.tools.canvas.imageShown):
            sig.disconnect(self.refresh)
        self.tools = tools
        for sig in (tools.changed, tools.canvas.rulersChanged, tools.canvas.imageShown):
            sig.connect(self.refresh)
        self.refresh()

    def entries(self) -> list[tuple[str, str, object]]:
        """``(name, value, object)``: rulers first, then the other measurements."""
        out: list[tuple[str, str, object]] = [("Length", r.text(), r) for r in self.tools.canvas.rulers]
        out += [(*m.value(), m) for m in self.tools.measurements]
        return out

    def as_text(self) -> str:
        return "\n".join(f"{n}: {v}" for n, v, _o in self.entries())

    def refresh(self) -> None:
        ents = self.entries()
        self._rows = [o for _n, _v, o in ents]
        self.table.blockSignals(True)
        self.table.setRowCount(len(ents))
        for i, (n, v, _o) in enumerate(ents):
            for j, t in enumerate((n, v)):
                it = QtWidgets.QTableWidgetItem(t)
                it.setToolTip(t)
                self.table.setItem(i, j, it)
        self.table.blockSignals(False)

    def _selected(self) -> None:
        rows = {i.row() for i in self.table.selectedItems()}
        objs = [self._rows[r] for r in rows if r < len(self._rows)]
        m = next((o for o in objs if isinstance(o, Measurement)), None)
        if m is not None and m is not self.tools.selected:
            self.tools.select(m)

    def delete_selected(self) -> None:
        rows = sorted({i.row() for i in self.table.selectedItems()})
        for r in rows:
            o = self._rows[r] if r < len(self._rows) else None
            if isinstance(o, Measurement):
                self.tools.delete(o)
            elif o is not None and o in self.tools.canvas.rulers:
                self.tools.delete_ruler(o)
        self.refresh()

    def copy(self) -> str:
        text = self.as_text()
        QtGui.QGuiApplication.clipboard().setText(text)
        return text


def install(window) -> MeasureTools:
    """Add the tools to the Tools menu and toolbar group, and the Measurements panel."""
    tools = MeasureTools(window.canvas, window)
    panel = MeasurementsPanel(tools, window)
    dock = QtWidgets.QDockWidget("Measurements", window)
    dock.setObjectName("dock_measurements")
    dock.setWidget(panel)
    window.addDockWidget(QtCore.Qt.DockWidgetArea.LeftDockWidgetArea, dock)
    dock.hide()
    tools.panel, tools.dock = panel, dock
    menu = window.menus["tools"]
    first = menu.actions()[len(window.tool_actions)] if len(menu.actions()) > len(window.tool_actions) else None
    for tool, (name, key, _n) in TOOLS.items():
        a = QtGui.QAction(name, window)
        a.setCheckable(True)
        a.setShortcut(QtGui.QKeySequence(key))
        a.setStatusTip(f"Left button: {name}")
        a.toggled.connect(lambda on, t=tool: on and window.canvas.set_tool(t))
        window.tool_group.addAction(a)
        window.tool_actions[tool] = a
        menu.insertAction(first, a) if first is not None else menu.addAction(a)
        window.addAction(a)
        window.actions_list.append(a)
    a = QtGui.QAction("&Measurements Panel", window)
    a.setShortcut(QtGui.QKeySequence("Ctrl+Shift+M"))
    a.triggered.connect(lambda _=False: (dock.show(), dock.raise_()))
    menu.addAction(a)
    window.addAction(a)
    window.actions_list.append(a)

    def first_measurement() -> None:
        # not in the middle of a drag: the panel appearing resizes the canvas under the mouse
        pressed = QtWidgets.QApplication.mouseButtons() != QtCore.Qt.MouseButton.NoButton
        if tools.measurements and not dock.isVisible() and tools._drawing is None and not pressed:
            dock.show()

    tools.changed.connect(first_measurement)
    return tools
