"""Undo / Redo of rulers and measurements; Delete removes the selected measurement."""

from __future__ import annotations

from conftest import drag, image_point_to_viewport, open_and_wait, ramp, write_cr
from PySide6 import QtCore


def _kinds(w):
    """(the other measurements' kinds, how many rulers)."""
    ms = w.measure_tools.measurements
    return [m.kind for m in ms if m.kind != "ruler"], sum(m.kind == "ruler" for m in ms)


def test_undo_redo_steps_through_drawn_annotations(qtbot, viewer, tmp_path):
    d = tmp_path / "s"
    d.mkdir()
    for i in range(2):
        write_cr(d / f"{i}.dcm", ramp(60, 50, seed=i), pixel_spacing=(0.2, 0.2), instance=i + 1)
    open_and_wait(qtbot, viewer, d)
    c, h = viewer.canvas, viewer.annotation_history
    assert not viewer.annotation_history.act_undo.isEnabled()
    viewer.tool_actions["ruler"].trigger()
    drag(c, QtCore.Qt.MouseButton.LeftButton, image_point_to_viewport(c, 5, 5), image_point_to_viewport(c, 40, 5))
    viewer.tool_actions["rect"].trigger()
    drag(c, QtCore.Qt.MouseButton.LeftButton, image_point_to_viewport(c, 10, 10), image_point_to_viewport(c, 30, 40))
    viewer.measure_tools.add("angle", [(1, 1), (20, 20), (30, 5)])
    assert _kinds(viewer) == (["rect", "angle"], 1)
    assert viewer.annotation_history.act_undo.isEnabled()
    viewer.annotation_history.act_undo.trigger()
    assert _kinds(viewer) == (["rect"], 1)
    h.undo()
    assert _kinds(viewer) == ([], 1)
    h.undo()
    assert _kinds(viewer) == ([], 0) and not h.can_undo()
    h.redo()
    h.redo()
    assert _kinds(viewer) == (["rect"], 1)
    rect_pts = next(m for m in viewer.measure_tools.measurements if m.kind == "rect").points()
    assert rect_pts[0][0] < rect_pts[1][0]
    # a new change drops the redo steps
    viewer.measure_tools.add("ellipse", [(2, 2), (8, 8)])
    assert not h.can_redo() and _kinds(viewer) == (["rect", "ellipse"], 1)
    # Delete removes the selected measurement (not a ruler)
    viewer.measure_tools.select(next(m for m in viewer.measure_tools.measurements if m.kind == "rect"))
    viewer.act_del_ruler.trigger()
    assert _kinds(viewer) == (["ellipse"], 1)
    viewer.act_del_ruler.trigger()  # nothing selected: the ruler, as before
    assert _kinds(viewer) == (["ellipse"], 0)
    h.undo()
    h.undo()
    assert _kinds(viewer) == (["rect", "ellipse"], 1)
    # another image: a history of its own
    with qtbot.waitSignal(viewer.imageLoaded, timeout=10000):
        viewer.act_next.trigger()
    assert _kinds(viewer) == ([], 0) and not h.can_undo()
    with qtbot.waitSignal(viewer.imageLoaded, timeout=10000):
        viewer.act_prev.trigger()
    assert _kinds(viewer) == (["rect", "ellipse"], 1)  # what Undo left, kept by the reading state


def test_a_ruler_end_can_be_dragged_after_drawing(qtbot, viewer, tmp_path):
    from conftest import show_image

    show_image(qtbot, viewer, write_cr(tmp_path / "r.dcm", ramp(60, 80), pixel_spacing=(0.5, 0.5)))
    c = viewer.canvas
    viewer.tool_actions["ruler"].trigger()
    qtbot.wait(50)  # the window's layout settles before the points are computed
    drag(c, QtCore.Qt.MouseButton.LeftButton, image_point_to_viewport(c, 10, 10), image_point_to_viewport(c, 50, 10))
    (r,) = viewer.measure_tools.measurements
    assert r.kind == "ruler" and r.text().endswith(" mm") and abs(float(r.text()[:-3]) - 20.0) < 1.0  # 40 px x 0.5 mm, within 2 px
    # grab the far end and move it: the same ruler, longer, no new one (after the
    # double-click interval: a press where the last release was would be a double click)
    from PySide6 import QtWidgets

    qtbot.wait(QtWidgets.QApplication.doubleClickInterval() + 100)
    drag(c, QtCore.Qt.MouseButton.LeftButton, image_point_to_viewport(c, 50, 10), image_point_to_viewport(c, 70, 10))
    assert viewer.measure_tools.measurements == [r]
    p0, p1 = r.points()
    assert abs(p1[0] - 70) < 1.5 and abs(p0[0] - 10) < 1.5 and abs(p0[1] - 10) < 1.5
    assert r.text() == f"{abs(p1[0] - p0[0]) * 0.5:.1f} mm" and abs(p1[0] - p0[0]) > 55
    assert viewer.model.active.measurements[0].points == tuple(r.points())  # moved on the model
    # the start end too
    qtbot.wait(QtWidgets.QApplication.doubleClickInterval() + 100)
    drag(c, QtCore.Qt.MouseButton.LeftButton, image_point_to_viewport(c, 10, 10), image_point_to_viewport(c, 10, 40))
    assert viewer.measure_tools.measurements == [r] and abs(r.points()[0][1] - 40) < 1.5
    viewer.annotation_history.undo()  # one step per edit
    (back,) = viewer.measure_tools.measurements
    assert abs(back.points()[0][1] - 10) < 1.5
