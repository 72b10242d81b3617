"""The window keeps the viewer model in step: what each viewport shows, its view, its
measurements and the AI result live in ``window.model`` (exports read them from there)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import open_and_wait, ramp, write_cr


def test_the_model_follows_the_viewports(qtbot, viewer, study_dir):
    open_and_wait(qtbot, viewer, study_dir)
    m = viewer.model
    img = viewer.current_image
    assert m.current_image.path == img.path and m.current_image.sop_uid == img.header.sop_instance_uid
    assert m.active.window is not None and m.active.window.width == pytest.approx(viewer.canvas.window()[1])
    viewer.canvas.rotate(1)
    viewer.canvas.flip_h()
    assert (m.active.view.rotation, m.active.view.flip_h) == (1, True)
    viewer.measure_tools.add("ruler", [(5.0, 5.0), (25.0, 5.0)])
    (r,) = m.active.measurements
    assert r.kind == "ruler" and r.unit.startswith("mm") and r.value == pytest.approx(4.0, rel=1e-3)
    grid = viewer.viewports
    grid.set_layout("1x2")
    assert m.layout == "1x2"
    other = str(study_dir / "img3.dcm")
    with qtbot.waitSignal(grid.opened, timeout=15000, check_params_cb=lambda i, _img: i == 1):
        grid.open(1, other)
    assert m[1].image.path == other and m.active_index == 0  # opened beside, not made active
    grid.set_active(1)
    assert m.active_index == 1 and m.current_image.path == other
    grid.set_layout("1x1")  # the hidden viewport's model hands the focus back
    assert m.active_index == 0


def test_opening_another_folder_empties_the_other_viewports_in_the_model(qtbot, viewer, study_dir, tmp_path):
    open_and_wait(qtbot, viewer, study_dir)
    grid = viewer.viewports
    grid.set_layout("1x2")
    with qtbot.waitSignal(grid.opened, timeout=15000, check_params_cb=lambda i, _img: i == 1):
        grid.open(1, str(study_dir / "img2.dcm"))
    d = tmp_path / "other"
    d.mkdir()
    write_cr(d / "x.dcm", ramp(32, 32, seed=9))
    open_and_wait(qtbot, viewer, d)
    assert viewer.model[1].image is None and viewer.model[0].image.path == str(d / "x.dcm")


def test_intent_sent_to_the_model_reaches_the_viewports(qtbot, viewer, study_dir):
    open_and_wait(qtbot, viewer, study_dir)
    m, grid = viewer.model, viewer.viewports
    m.set_layout("2x2")
    assert grid.layout_name() == "2x2" and viewer.viewport_binding.layout_actions["2x2"].isChecked()
    target = str(study_dir / "img2.dcm")
    with qtbot.waitSignal(grid.opened, timeout=15000, check_params_cb=lambda i, _img: i == 3):
        m.request_open(3, target)
    assert grid.path(3) == target and m[3].image.path == target
    m.set_active(3)
    assert grid.active == 3 and viewer.canvas is grid.canvas(3)
    # a window set on the model is the one the canvas shows (and the W/L panel follows)
    from cxrviewer.viewer import Window

    m[3].set_window(Window(1234.0, 567.0))
    assert grid.canvas(3).window() == (1234.0, 567.0)
    assert viewer.wl_panel.center.value() == pytest.approx(1234.0)
    # and a view: orientation, zoom (x fit) and centre (fraction of the image)
    from cxrviewer.viewer import ViewTransform

    c = grid.canvas(3)
    m[3].set_view(ViewTransform(zoom=2.0, center=(0.4, 0.6), rotation=1, flip_h=True))
    v = c.view_state()
    assert (v.rotation, v.flip_h, v.flip_v) == (1, True, False)
    assert grid.relative_view(c) == pytest.approx((0.4, 0.6, 2.0), abs=0.02)
    assert m[3].view.rotation == 1 and m[3].view.zoom == pytest.approx(2.0, abs=0.02)


def test_measurements_on_the_model_are_drawn_and_drawn_ones_reach_the_model(qtbot, viewer, study_dir):
    from conftest import drag, image_point_to_viewport
    from PySide6 import QtCore, QtWidgets

    open_and_wait(qtbot, viewer, study_dir)
    vp, c, tools = viewer.model.active, viewer.canvas, viewer.measure_tools
    panel = tools.panel
    # added on the model, no mouse: on the canvas, in the panel, with the registry's value
    r = vp.add_measurement("ruler", [(5.0, 5.0), (25.0, 5.0)])
    a = vp.add_measurement("angle", [(30.0, 10.0), (10.0, 10.0), (10.0, 30.0)])
    assert r.value == pytest.approx(4.0, rel=1e-3) and a.value == pytest.approx(90.0)
    ruler, m = tools.measurements
    assert ruler.kind == "ruler" and ruler.points() == [(5.0, 5.0), (25.0, 5.0)]
    assert m.kind == "angle" and np.allclose(m.points(), [(30, 10), (10, 10), (10, 30)])
    assert [n for n, _v, _o in panel.entries()] == ["Length", "Angle"] and "90.0°" in panel.as_text()
    assert [x.label for x in vp.measurements] == [ruler.text(), "90.0°"]  # the registry's text, as drawn
    # moved and removed on the model: the canvas follows
    vp.move_measurement(1, [(30.0, 10.0), (10.0, 10.0), (30.0, 30.0)])
    assert tools.measurements[1].text() == "45.0°" and panel.as_text().endswith("Angle: 45.0°")
    vp.remove_measurement(0)
    assert [m.kind for m in tools.measurements] == ["angle"] and [n for n, _v, _o in panel.entries()] == ["Angle"]
    # undo goes back through the model (the ruler comes back on the canvas)
    viewer.annotation_history.undo()
    assert [x.kind for x in vp.measurements] == ["ruler", "angle"]
    assert [m.kind for m in tools.measurements] == ["ruler", "angle"]
    # drawn with the mouse: in the model
    QtWidgets.QApplication.processEvents()  # the panel that appeared has resized the canvas
    viewer.tool_actions["rect"].trigger()
    drag(c, QtCore.Qt.MouseButton.LeftButton, image_point_to_viewport(c, 10, 40), image_point_to_viewport(c, 40, 60))
    last = vp.measurements[-1]
    assert last.kind == "rect" and last.unit == "mm2" and last.value > 0 and len(vp.measurements) == 3
    assert np.allclose(last.points, [(10, 40), (40, 60)], atol=1.5)  # one screen pixel


def test_invert_is_two_way_like_the_window_and_the_view(qtbot, viewer, study_dir):
    from dataclasses import replace

    open_and_wait(qtbot, viewer, study_dir)
    m, grid = viewer.model, viewer.viewports
    grid.set_layout("1x2")
    with qtbot.waitSignal(grid.opened, timeout=15000, check_params_cb=lambda i, _img: i == 1):
        grid.open(1, str(study_dir / "img2.dcm"))
    # set on the model: the canvas inverts, and the Invert action shows the active viewport's
    m[0].set_view(replace(m[0].view, invert=True))
    assert grid.canvas(0).view_state().invert and viewer.act_invert.isChecked()
    m[1].set_view(replace(m[1].view, invert=True))  # not the active one: the action stays as it is
    assert grid.canvas(1).view_state().invert and viewer.act_invert.isChecked()
    m[0].set_view(replace(m[0].view, invert=False))
    assert not grid.canvas(0).view_state().invert and not viewer.act_invert.isChecked()
    assert grid.canvas(1).view_state().invert
    # the reader's Invert action: in the model
    viewer.act_invert.trigger()
    assert m[0].view.invert and grid.canvas(0).view_state().invert
    grid.set_active(1)
    assert viewer.act_invert.isChecked()  # viewport 1 is inverted
    viewer.act_invert.trigger()
    assert not m[1].view.invert and not grid.canvas(1).view_state().invert and m[0].view.invert


def test_deleting_is_intent_sent_to_the_model(qtbot, viewer, study_dir):
    open_and_wait(qtbot, viewer, study_dir)
    vp, tools = viewer.model.active, viewer.measure_tools
    vp.add_measurement("ruler", [(5.0, 5.0), (25.0, 5.0)])
    vp.add_measurement("ruler", [(5.0, 15.0), (25.0, 15.0)])
    vp.add_measurement("ellipse", [(10.0, 30.0), (30.0, 50.0)])
    vp.add_measurement("angle", [(30.0, 10.0), (10.0, 10.0), (10.0, 30.0)])
    r1, r2, ell, ang = tools.measurements
    # the panel's Delete on the ellipse: gone from the model; the angle stays the same item
    panel = tools.panel
    panel.table.selectRow(2)
    assert tools.selected is ell
    panel.delete_selected()
    assert [m.kind for m in vp.measurements] == ["ruler", "ruler", "angle"] and tools.measurements == [r1, r2, ang]
    # the Delete key: the selected measurement, then (none selected) the last ruler
    tools.select(ang)
    viewer.act_del_ruler.trigger()
    assert [m.kind for m in vp.measurements] == ["ruler", "ruler"] and tools.measurements == [r1, r2]
    viewer.act_del_ruler.trigger()
    assert [m.points for m in vp.measurements] == [((5.0, 5.0), (25.0, 5.0))] and tools.measurements == [r1]
