"""Measurement tools on pyqtgraph ROIs: length (the ruler), angle, Cobb angle, cardiothoracic
ratio, ellipse and rectangle ROI statistics, arrow, text label; and the *Measurements* panel.

The tools *render the viewer model and send intent to it*. What is measured is the viewport
model's (:class:`cxrviewer.viewer.ViewportModel`) list of measurements: the tools draw exactly
what it holds (:meth:`MeasureTools._render`, on its ``measurements_changed``), whoever changed
it (the mouse, undo/redo, a restored reading, a presentation state, any Qt-free feature). A
finished shape is ``add_measurement(kind, points, label)``, a handle dragged to a new place is
``move_measurement(i, points)``, Delete is ``remove_measurement(i)``; while the mouse is down
(and while a two-drag tool waits for its second drag) the shape is only a preview on the canvas,
never in the model, so a half-drawn shape (an angle's first arm, a lone Cobb or CTR line) cannot
be left behind in it. Tools that nobody gives a model (a bare canvas) make their own
:class:`~cxrviewer.viewer.ViewportModel`: there is one code path.

Every kind is declared once in :mod:`cxrviewer.viewer.measurements` (name, key, points, value,
text, DICOM content); what is here is only how it is *drawn*. A new kind is an entry there plus
its ROI in :class:`Measurement` (and, for a two-drag kind, its first shape in ``_drag``).

Every shape is a child of one container item that the canvas keeps on its image transform
(:meth:`ImageCanvas.add_layer`), so their coordinates are *image* coordinates (x = column, y =
row) through zoom, rotation, flips and non-square pixels; their handles stay editable. The
numbers come from the registry (on :mod:`cxrviewer.core.measure`, Qt-free, tested against
numpy), in mm when the header has a pixel spacing and in pixels (``px``) when it has none.

Drawing (left button with the tool chosen in Tools):

* **Ruler** (D): drag from one end to the other; a drag that starts on an end moves that end.
* **Angle** (G): drag the first arm from the vertex, then drag anywhere to place the second arm's end.
* **Cobb angle** (C): drag one line, then the other.
* **CTR** (X): drag the inner thoracic width, then the heart width.
* **Ellipse ROI** (E) / **Rectangle ROI** (Q): drag the box.
* **Arrow** (Shift+A): drag from the tail to the point shown. **Text label** (Shift+T): click
  where the text goes and type it.

A click on a shape selects it (a click beside them all, none); Delete (the panel's button, or
Tools → Delete Selected Measurement) removes the selected one, else the last ruler; the panel's
*Copy* puts every measurement of the image on the clipboard as text.
"""

from __future__ import annotations

import difflib
import logging
import math

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from cxrviewer.core import measure as M
from cxrviewer.render.export import RulerSpec
from cxrviewer.viewer import Measurement as ModelMeasurement
from cxrviewer.viewer import ViewportModel
from cxrviewer.viewer import measurements as registry
from cxrviewer.viewer.measurements import REGISTRY as MEASUREMENT_KINDS

_log = logging.getLogger(__name__)

COLOR = (120, 255, 120)
SELECTED = (0, 200, 255)
#: kinds drawn in another colour than :data:`COLOR` (the ruler keeps its yellow)
COLORS = {"ruler": (255, 220, 0)}
#: tool id -> (menu name, shortcut, points a finished measurement has), from the one
#: measurement registry
TOOLS = {k: (m.name, m.shortcut, m.points) for k, m in MEASUREMENT_KINDS.items()}
#: kinds drawn in two drags (the first one leaves a preview waiting for the second)
TWO_DRAGS = ("angle", "cobb", "ctr")


class _EllipseROI(pg.EllipseROI):
    """An ellipse ROI without the rotate handle: its box is its geometry."""

    def _addHandles(self):  # noqa: N802 - pyqtgraph's name
        self.addScaleHandle([1, 1], [0, 0])
        self.addScaleHandle([0, 0], [1, 1])


def _end_at_release(handle) -> None:
    """A handle drag ends where the button is released. (pyqtgraph's scene drops mouse moves
    closer than its rate limit, 10 ms, and its handles do not move on the release: a quick
    drag would leave the end short of where the reader let go.)"""
    own = handle.mouseDragEvent

    def drag(ev) -> None:
        if (ev.isFinish() and getattr(handle, "isMoving", False)
                and ev.button() == QtCore.Qt.MouseButton.LeftButton):
            handle.movePoint(ev.scenePos() + handle.cursorOffset, ev.modifiers(), finish=False)
        own(ev)

    handle.mouseDragEvent = drag
    handle._cxr_drag = drag  # what set_interactive puts back


def _ignore_event(ev) -> None:
    """A mouse event for an item that is not taking the mouse now (see set_interactive)."""
    if hasattr(ev, "ignore"):
        ev.ignore()


class Measurement:
    """One measurement as drawn: its kind, its points (image coordinates) and its ROI items.

    Either one of the model's measurements (:attr:`index`: its position in the model's list) or
    a preview while it is being drawn (:attr:`index` ``None``)."""

    def __init__(self, tools: MeasureTools, kind: str, points: list[tuple[float, float]], note: str = ""):
        if kind not in TOOLS:
            raise ValueError(f"unknown measurement {kind!r}; one of {sorted(TOOLS)}")
        self.tools = tools
        self.kind = kind
        self.note = note  # the text of a text label or an arrow
        #: the position in the viewport model's measurements (``None``: a preview, not in it)
        self.index: int | None = None
        #: an angle of which only the first arm is drawn yet (its second arm lies on the first:
        #: no angle to show, and not a measurement until the second drag)
        self.partial = False
        self.rois: list[pg.ROI] = []
        self.head: pg.ArrowItem | None = None
        self.color = COLORS.get(kind, COLOR)
        self._shown_selected = False
        self.label = pg.TextItem("", color=self.color, anchor=(0, 1), fill=pg.mkBrush(0, 0, 0, 140))
        self.label.setParentItem(tools.container)
        pen = pg.mkPen(self.color, width=2)
        if kind == "angle":
            self.rois = [pg.PolyLineROI(points, closed=False, pen=pen, movable=True)]
        elif kind in ("ruler", "arrow"):
            self.rois = [pg.LineSegmentROI([points[0], points[1]], pen=pen)]
            if kind == "arrow":
                self.head = pg.ArrowItem(headLen=16, tipAngle=30, pen=pen, brush=pg.mkBrush(self.color))
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
        else:  # declared in the registry, but how it is drawn is not written here yet
            raise ValueError(f"no drawing for measurement {kind!r}")
        for r in self.rois:
            self._own(r)
        self.update()

    def _own(self, roi: pg.ROI) -> None:
        roi.setParentItem(self.tools.container)
        roi.setZValue(100)
        if isinstance(roi, pg.TargetItem):
            roi.sigPositionChanged.connect(lambda *_: self.update())
            roi.sigPositionChangeFinished.connect(lambda *_: self.tools._edited(self))
            return
        for h in roi.getHandles():
            _end_at_release(h)
        roi.sigRegionChanged.connect(lambda *_: self.update())
        roi.sigRegionChangeFinished.connect(lambda *_: self.tools._edited(self))
        roi.sigClicked.connect(lambda *_: self.tools.select(self))
        roi.setAcceptedMouseButtons(QtCore.Qt.MouseButton.LeftButton)

    def add_second_line(self, p0, p1) -> None:
        roi = pg.LineSegmentROI([p0, p1], pen=pg.mkPen(self.color, width=2))
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
                    if name == "mouseDragEvent" and hasattr(it, "_cxr_drag"):
                        it.mouseDragEvent = it._cxr_drag
                else:
                    setattr(it, name, _ignore_event)

    def value(self) -> tuple[str, str]:
        """``(name, value text)`` for the panel and the label: the registry's text (a length
        with its basis, an angle, ROI statistics...), or what a half-drawn shape still needs."""
        img = self.tools.canvas.img
        pts = self.points()
        name = TOOLS[self.kind][0]
        if self.kind == "angle" and self.partial:
            return name, "drag the second arm"
        if self.kind == "cobb" and len(pts) < 4:
            return name, "draw the second line"
        if self.kind == "ctr" and len(pts) < 4:
            g = img.geometry if img is not None else None
            thorax = M.length(pts[0], pts[1], (g.row_spacing_mm, g.col_spacing_mm) if g is not None else None)
            return name, f"thorax {thorax:.1f} {g.label if g is not None else 'px'}: now draw the heart width"
        return name, registry.text(ModelMeasurement(self.kind, tuple(pts), label=self.note), img)

    def stats(self) -> M.RoiStats | None:
        if self.kind not in ("ellipse", "rect"):
            return None
        return registry.roi_stats(self.kind, self.points()[:2], self.tools.canvas.img)

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
        selected = self.tools.selected is self
        color = SELECTED if selected else self.color
        self.label.setText(text, color=color)
        self.label.setVisible(bool(text))
        self.place_label()
        if selected != self._shown_selected:  # the lines too (cheap enough, but not on every move)
            self._shown_selected = selected
            for r in self.rois:
                r.setPen(pg.mkPen(color, width=2))
        if self.head is not None:
            tail, head = self.points()[:2]
            c = self.tools.canvas
            a, b = c.image_to_scene(*tail), c.image_to_scene(*head)
            dx, dy = b.x() - a.x(), b.y() - a.y()
            # ArrowItem: angle 0 points left, rotated clockwise on screen (y down)
            self.head.setStyle(angle=math.degrees(math.atan2(-dy, -dx)))
            self.head.setPos(*head)

    def place_label(self) -> None:
        """Put the label at its point, on the side where it fits in the viewport: to the left
        of the point near the right edge, below it near the top (a long ROI statistics line
        drawn near the edge was cut off)."""
        x, y = self.anchor()
        self.label.setPos(x, y)
        c = self.tools.canvas
        view = c.graphics.viewport()
        if view.width() <= 1:
            return
        p = c.graphics.mapFromScene(c.image_to_scene(x, y))
        r = self.label.textItem.boundingRect()
        ax = 1.0 if p.x() + r.width() > view.width() - 2 and p.x() - r.width() >= 0 else 0.0
        ay = 0.0 if p.y() - r.height() < 2 and p.y() + r.height() <= view.height() else 1.0
        if tuple(self.label.anchor) != (ax, ay):
            self.label.setAnchor((ax, ay))

    def specs(self) -> list[RulerSpec]:
        """Line segments for the native export, the label on the last one."""
        pts = self.points()
        if self.kind == "text":
            return [RulerSpec(pts[0], pts[0], self.note)]
        if self.kind == "arrow":
            return _arrow_specs(pts[0], pts[1], self.note, self.tools.canvas.img)
        if self.kind == "angle":
            segs = M.polyline_segments(pts[:3])
        elif self.kind in ("ruler", "cobb", "ctr"):
            segs = [(pts[i], pts[i + 1]) for i in range(0, len(pts) - 1, 2)]
        elif self.kind == "ellipse":
            segs = M.polyline_segments(M.ellipse_outline(pts[0], pts[1]))
        else:
            segs = M.polyline_segments(M.rect_outline(pts[0], pts[1]))
        out = [RulerSpec(a, b, "") for a, b in segs]
        if out:  # the value at the end of the last segment (a ruler's length at its end)
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
    """The measurement tools of one canvas (and its main window's Tools menu and panel): they
    draw what their viewport :attr:`model` holds and send the reader's drawing to it as intent.

    ``changed`` is emitted after the drawing follows the model (and when a preview waits for its
    second drag, or the selection changes): the panel, the undo history and the reading state
    listen to it.
    """

    changed = QtCore.Signal()

    def __init__(self, canvas, parent: QtCore.QObject | None = None, model: ViewportModel | None = None):
        super().__init__(parent)
        self.canvas = canvas
        self.container = pg.ItemGroup()
        canvas.add_layer(self.container, 100)  # follows the image transform; exports nothing itself
        #: the model's measurements as drawn, in its order (each one's ``index`` is its position)
        self._shown: list[Measurement] = []
        self.selected: Measurement | None = None
        self._pending: Measurement | None = None  # a preview waiting for its second drag
        self._drawing: Measurement | None = None  # the preview under the mouse
        self._second = False
        #: the viewer model's viewport these tools draw and send intent to (:meth:`set_model`;
        #: the shell's model bridge gives the window's; a bare canvas's tools have their own)
        self.model: ViewportModel | None = None
        self.set_model(model if model is not None else ViewportModel(0))
        for tool in TOOLS:
            canvas.register_tool(tool, self._drag)
        canvas.imageShown.connect(self._image_shown)
        canvas.cleared.connect(self._image_shown)
        canvas.toolChanged.connect(self._drop_unfinished)
        canvas.viewChanged.connect(self._view_changed)  # arrow heads are drawn in screen space
        #: asks the reader for a text label's text: ``(text, ok)``
        self.ask_text = lambda: QtWidgets.QInputDialog.getText(canvas, "Text label", "Text:")
        canvas.export_specs.append(self.specs)
        canvas.annotation_items.append(self.items)

    # ------------------------------------------------------------- model
    def set_model(self, model: ViewportModel) -> None:
        """Draw ``model``'s measurements from now on (and send the reader's intent to it)."""
        if model is self.model:
            return
        if self.model is not None:
            self.model.measurements_changed.disconnect(self._render)
        self.model = model
        if model.pixels is None and self.canvas.img is not None:
            model.set_pixels(self.canvas.img)  # what its values are computed on
        model.measurements_changed.connect(self._render)
        self._render()

    @property
    def measurements(self) -> list[Measurement]:
        """What is drawn: the model's measurements in its order, then a preview being drawn
        (or waiting for its second drag), which is not in the model."""
        out = list(self._shown)
        for m in (self._pending, self._drawing):
            if m is not None and m not in out:
                out.append(m)
        return out

    @property
    def drawing(self) -> bool:
        """A measurement is being drawn (the mouse is down on it)."""
        return self._drawing is not None

    @staticmethod
    def _key(kind: str, points, note: str) -> tuple:
        return kind, tuple((round(float(x), 3), round(float(y), 3)) for x, y in points), note

    def _render(self, *_a) -> None:
        """Draw what the model holds: only the measurements that changed are drawn again (the
        others keep their items and their selection); then ``changed``."""
        want = [(i, m) for i, m in enumerate(self.model.measurements) if registry.finished(m)]
        wkeys = [self._key(m.kind, m.points, registry.own_text(m)) for _i, m in want]
        hkeys = [self._key(m.kind, m.points(), m.note) for m in self._shown]
        if wkeys != hkeys:
            shown: list[Measurement | None] = []
            ops = difflib.SequenceMatcher(None, hkeys, wkeys, autojunk=False).get_opcodes()
            for op, i1, i2, j1, j2 in ops:
                if op == "equal":
                    shown += self._shown[i1:i2]
                    continue
                for m in self._shown[i1:i2]:
                    self._discard(m)
                shown += [self._draw(m) for _i, m in want[j1:j2]]
            kept = [(m, i) for m, (i, _x) in zip(shown, want, strict=True) if m is not None]
            self._shown = [m for m, _i in kept]
            for m, i in kept:
                m.index = i
        else:
            for m, (i, _x) in zip(self._shown, want, strict=True):
                m.index = i
        self.changed.emit()

    def _draw(self, m: ModelMeasurement) -> Measurement | None:
        try:
            return Measurement(self, m.kind, [tuple(map(float, p)) for p in m.points], registry.own_text(m))
        except (ValueError, IndexError) as e:  # no drawing for its kind, too few points
            _log.warning("measurement %r not drawn: %s", m.kind, e)
            return None

    # ------------------------------------------------------------- intent
    def add(self, kind: str, points: list[tuple[float, float]], note: str = "") -> Measurement:
        """Add a finished ``kind`` measurement through ``points`` (image x, y) to the model
        (``note``: the text of a text label or an arrow); returns it as drawn."""
        self.model.add_measurement(kind, points, label=note)
        n = len(self.model.measurements) - 1
        return next(m for m in self._shown if m.index == n)

    def clear(self, *_a) -> None:
        """No measurement any more (the model's list emptied, any preview dropped)."""
        self._drop_previews()
        self.model.set_measurements(())
        self._render()

    def clear_kind(self, kind: str) -> None:
        """Remove every ``kind`` measurement (Tools → Clear All Rulers)."""
        self.model.set_measurements([m for m in self.model.measurements if m.kind != kind])

    def select(self, m: Measurement | None) -> None:
        self.selected = m
        for x in self.measurements:
            x.update()
        self.changed.emit()

    def delete(self, m: Measurement | None = None) -> bool:
        """Delete ``m`` (else the selected, else the last): ``remove_measurement`` on the model,
        which the canvas then stops drawing; a preview is dropped."""
        m = m or self.selected or (self.measurements[-1] if self.measurements else None)
        if m is None:
            return False
        if m in self._shown and m.index is not None:
            self.model.remove_measurement(m.index)
            return True
        if m is self._pending or m is self._drawing:
            self._drop_previews()
            self.changed.emit()
            return True
        return False

    def delete_ruler(self, ruler: Measurement | None = None) -> bool:
        """Delete ``ruler``, else the selected ruler, else the last one (the Delete key with no
        other measurement selected)."""
        if ruler is None:
            rulers = [m for m in self._shown if m.kind == "ruler"]
            ruler = self.selected if self.selected in rulers else (rulers[-1] if rulers else None)
        return self.delete(ruler) if ruler is not None else False

    def _edited(self, m: Measurement) -> None:
        """A handle (or the whole shape) dragged to a new place: ``move_measurement``."""
        if m in self._shown and m.index is not None and self._drawing is None:
            self.model.move_measurement(m.index, m.points())

    def specs(self) -> list[RulerSpec]:
        """The model's measurements as export line specs (previews are not exported)."""
        return [s for m in self._shown for s in m.specs()]

    def items(self) -> list[QtWidgets.QGraphicsItem]:
        return [it for m in self.measurements for it in m.items()]

    # ----------------------------------------------------------- canvas
    def _image_shown(self, *_a) -> None:
        """Another image (or none): its measurements start empty (the reading state brings
        back the ones remembered for it), computed on its pixels."""
        self._drop_previews()
        self.model.set_pixels(self.canvas.img)
        self.model.set_measurements(())
        self._render()

    def _discard(self, m: Measurement) -> None:
        m.remove()
        if self.selected is m:
            self.selected = None

    def _drop_previews(self) -> None:
        for m in {id(x): x for x in (self._pending, self._drawing) if x is not None}.values():
            self._discard(m)
        self._pending = self._drawing = None

    def _drop_unfinished(self, tool: str = "") -> None:
        """Another tool: a preview still waiting for its second drag goes (a one-armed angle or
        a lone Cobb/CTR line measures nothing and must not be left behind)."""
        m = self._pending
        if m is None or tool == m.kind or self._drawing is not None:
            return
        self._drop_previews()
        self.changed.emit()

    def _view_changed(self) -> None:
        for m in self.measurements:
            if m.head is not None:
                m.update()
            else:
                m.place_label()  # which side of its point fits (no value recomputed)

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
                    self.model.add_measurement("text", [p], label=text.strip())
            return
        if not hasattr(ev, "isStart"):  # a click beside every shape (a click on one selects it)
            if self.selected is not None:
                self.select(None)
            return
        if ev.isStart():
            p0 = c.scene_to_image(ev.buttonDownScenePos())
            pend = self._pending if self._pending is not None and self._pending.kind == tool else None
            if pend is not None and tool in ("cobb", "ctr"):
                pend.add_second_line(p0, p)
                self._drawing = pend
            elif pend is not None and tool == "angle":
                self._drawing = pend
            else:
                self._drop_previews()
                first = [p, p0, p] if tool == "angle" else [p0, p]
                self._drawing = Measurement(self, tool, first)  # a preview: the model's once finished
                self._pending = self._drawing if tool in TWO_DRAGS else None
                self._drawing.partial = tool == "angle"
            self._second = pend is not None
        m = self._drawing
        if m is None:
            return
        self._move_last(m, p, tool)
        if ev.isFinish():
            self._drawing = None
            if self._second or tool not in TWO_DRAGS:  # finished: intent sent to the model
                self._pending = None
                pts, note = m.points(), m.note
                self._discard(m)
                try:
                    self.model.add_measurement(tool, pts, label=note)  # drawn by _render
                except ValueError as e:
                    _log.warning("measurement %r not added: %s", tool, e)
                    self.changed.emit()
            else:  # waits for its second drag, which must reach the tool (set_interactive)
                m.set_interactive(False)
                m.update()
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
    """The current image's measurements with their values (rulers first); Delete and Copy."""

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
        tools.canvas.imageShown.connect(self.refresh)

    def set_tools(self, tools: MeasureTools) -> None:
        """List the measurements of another viewport's ``tools`` (the active viewport changed)."""
        if tools is self.tools:
            return
        for sig in (self.tools.changed, self.tools.canvas.imageShown):
            sig.disconnect(self.refresh)
        self.tools = tools
        for sig in (tools.changed, tools.canvas.imageShown):
            sig.connect(self.refresh)
        self.refresh()

    def entries(self) -> list[tuple[str, str, object]]:
        """``(name, value, object)``: rulers ("Length") first, then the other measurements."""
        ms = sorted(self.tools.measurements, key=lambda m: m.kind != "ruler")  # stable: drawn order
        return [(*m.value(), m) for m in ms]

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
        if tool in window.tool_actions:  # the ruler: the window's own Tools entry and toolbar button
            continue
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
        # a ruler shows its length on the image: only the other kinds (ROI statistics, CTR
        # parts) open the panel, as before the ruler joined the registry
        valued = [m for m in tools.measurements if m.kind != "ruler"]
        if valued and not dock.isVisible() and tools._drawing is None and not pressed:
            dock.show()

    tools.changed.connect(first_measurement)
    return tools
