"""Undo / Redo for the annotations of the image on screen (its measurements, rulers included).

Each finished change (a measurement drawn, moved, edited or deleted, Clear) is one step: a
snapshot of the viewport model's measurements (kind, points, the reader's own text). Undo sets
the previous snapshot on the model (the canvas draws what it holds), Redo the next one. The
history belongs to the image shown and starts again when another image is shown (its
annotations come back from the reading state, which then saves whatever Undo/Redo leave).
Tools → Undo (Ctrl+Z) / Redo (Ctrl+Shift+Z, Ctrl+Y).

The Delete key deletes the selected measurement, else the selected (or last) ruler.
"""

from __future__ import annotations

from PySide6 import QtCore, QtGui

from cxrviewer.viewer import Measurement
from cxrviewer.viewer import measurements as registry

Snapshot = tuple[tuple[str, tuple[tuple[float, float], ...], str], ...]


class AnnotationHistory(QtCore.QObject):
    """Undo/redo stacks of annotation snapshots for one canvas and its measure tools."""

    changed = QtCore.Signal()

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.canvas = window.canvas
        self.tools = window.measure_tools
        self._undo: list[Snapshot] = []
        self._redo: list[Snapshot] = []
        self._applying = False
        self.tools.changed.connect(self._record)
        keeper = window.reading_state
        if keeper is not None:
            keeper.restored.connect(lambda _st: self.reset())
        else:
            self.canvas.imageShown.connect(self.reset)

    def set_canvas(self, canvas, tools) -> None:
        """Follow another viewport's ``canvas`` and its measurement ``tools`` (the active
        viewport changed); the history starts again there, as for a new image."""
        self.tools.changed.disconnect(self._record)
        self.canvas, self.tools = canvas, tools
        tools.changed.connect(self._record)
        self.reset()

    def snapshot(self) -> Snapshot:
        # the reader's own text only (an arrow's, a text label's): a value's text is the registry's
        return tuple((m.kind, tuple(m.points), registry.own_text(m)) for m in self.tools.model.measurements)

    def reset(self) -> None:
        """A new image: its current annotations are the first state."""
        self._undo = [self.snapshot()] if self.canvas.img is not None else []
        self._redo = []
        self.changed.emit()

    def _record(self, *_a) -> None:
        if self._applying or self.canvas.img is None or getattr(self.tools, "_drawing", None) is not None:
            return
        snap = self.snapshot()
        if self._undo and self._undo[-1] == snap:
            return
        self._undo.append(snap)
        self._redo.clear()
        self.changed.emit()

    def can_undo(self) -> bool:
        return len(self._undo) > 1

    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> bool:
        if not self.can_undo():
            return False
        self._redo.append(self._undo.pop())
        self._apply(self._undo[-1])
        return True

    def redo(self) -> bool:
        if not self._redo:
            return False
        snap = self._redo.pop()
        self._undo.append(snap)
        self._apply(snap)
        return True

    def _apply(self, snap: Snapshot) -> None:
        self._applying = True  # on the model: the canvas draws what it holds
        try:
            self.tools.model.set_measurements([Measurement(kind, pts, label=note) for kind, pts, note in snap])
        finally:
            self._applying = False  # (the tools' "changed" told the reading state already)
        self.changed.emit()


def install(window) -> AnnotationHistory:
    """Undo/Redo actions in the Tools menu; Delete also deletes a selected measurement."""
    hist = AnnotationHistory(window)
    menu = window.menus["tools"]
    menu.addSeparator()
    acts = []
    for text, keys, slot in (("&Undo Annotation", ["Ctrl+Z"], hist.undo),
                             ("&Redo Annotation", ["Ctrl+Shift+Z", "Ctrl+Y"], hist.redo)):
        a = QtGui.QAction(text, window)
        a.setShortcuts([QtGui.QKeySequence(k) for k in keys])
        a.triggered.connect(lambda _=False, f=slot: f())
        menu.addAction(a)
        window.addAction(a)
        window.actions_list.append(a)
        acts.append(a)
    hist.act_undo, hist.act_redo = acts

    def enable() -> None:
        hist.act_undo.setEnabled(hist.can_undo())
        hist.act_redo.setEnabled(hist.can_redo())

    hist.changed.connect(enable)
    enable()
    # the Tools menu's Delete now deletes the selected measurement, else the selected ruler
    d = window.act_del_ruler
    d.triggered.disconnect()
    d.setText("&Delete Selected Measurement")

    def delete() -> None:
        if window.measure_tools.selected is not None:
            window.measure_tools.delete(window.measure_tools.selected)
        else:
            window.measure_tools.delete_ruler()

    d.triggered.connect(lambda _=False: delete())
    return hist
