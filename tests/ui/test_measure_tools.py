"""Measurement tools on the real canvas: values with their basis, real drags, the panel, the
native export, annotations off; the ruler as one more kind, drawn as intent sent to the model."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import drag, image_point_to_viewport, ramp, show_image, write_cr
from PySide6 import QtCore, QtGui

from cxrviewer.core import measure as M


@pytest.fixture
def calibrated(qtbot, viewer, tmp_path):
    img = show_image(qtbot, viewer, write_cr(tmp_path / "cal.dcm", ramp(80, 100, seed=4), pixel_spacing=(0.2, 0.25)))
    return viewer, img


def test_each_tool_reports_its_value_with_the_basis(calibrated):
    w, img = calibrated
    t = w.measure_tools
    sp = (0.2, 0.25)
    ang = t.add("angle", [(60, 20), (20, 20), (20, 60)])
    assert ang.value() == ("Angle", f"{M.angle_deg((20, 20), (60, 20), (20, 60), sp):.1f}°")
    cobb = t.add("cobb", [(10, 10), (50, 10), (10, 40), (50, 52)])
    assert cobb.text() == f"Cobb {M.cobb_angle_deg(((10, 10), (50, 10)), ((10, 40), (50, 52)), sp):.1f}°"
    ctr = t.add("ctr", [(5, 50), (95, 50), (30, 40), (70, 40)])
    assert ctr.text().startswith("CTR 0.44 (heart 10.0 / thorax 22.5 mm)")
    el = t.add("ellipse", [(10.2, 12.7), (60.4, 50.1)])
    st = el.stats()
    mask = M.roi_mask((img.rows, img.cols), "ellipse", (10.2, 12.7), (60.4, 50.1))
    ref = img.modality[mask].astype(np.float64)
    assert st.n == ref.size and st.mean == pytest.approx(ref.mean(), abs=1e-6) and st.sd == pytest.approx(ref.std(), abs=1e-6)
    assert st.area_mm2 == pytest.approx(ref.size * 0.05, abs=1e-6)
    assert el.text().endswith("mm²")
    rc = t.add("rect", [(0, 0), (10, 10)])
    assert rc.stats().n == 100 and rc.stats().min == pytest.approx(float(img.modality[:10, :10].min()))
    # the panel lists them with their values; Copy gives the text
    t.add("ruler", [(0, 0), (40, 0)])  # listed first, as "Length", whenever it was drawn
    panel = t.panel
    names = [n for n, _v, _o in panel.entries()]
    assert names == ["Length", "Angle", "Cobb Angle", "Cardiothoracic Ratio", "Ellipse ROI", "Rectangle ROI"]
    text = panel.copy()
    assert QtGui.QGuiApplication.clipboard().text() == text and "Length: 10.0 mm" in text and "CTR 0.44" in text
    assert panel.table.rowCount() == 6 and t.dock.isVisibleTo(w)


def test_uncalibrated_image_says_px(qtbot, viewer, tmp_path):
    show_image(qtbot, viewer, write_cr(tmp_path / "u.dcm", ramp(40, 40)))
    t = viewer.measure_tools
    assert "px" in t.add("ctr", [(0, 0), (30, 0), (0, 5), (10, 5)]).text()
    assert t.add("rect", [(0, 0), (4, 5)]).text().endswith("20 px²")


def test_drawing_with_the_mouse_and_following_rotation(calibrated, qtbot):
    w, img = calibrated
    c = w.canvas
    w.tool_actions["ellipse"].trigger()
    assert c.tool() == "ellipse"
    a, b = image_point_to_viewport(c, 20, 15), image_point_to_viewport(c, 70, 55)
    drag(c, QtCore.Qt.MouseButton.LeftButton, a, b)
    (m,) = w.measure_tools.measurements
    (x0, y0), (x1, y1) = m.points()
    assert (x0, y0, x1, y1) == pytest.approx((20, 15, 70, 55), abs=1.5)  # one screen pixel
    # the two-line tools take two drags
    w.tool_actions["cobb"].trigger()
    qtbot.wait(50)  # the Measurements panel appeared: let the canvas take its new size first
    drag(c, QtCore.Qt.MouseButton.LeftButton, image_point_to_viewport(c, 10, 10), image_point_to_viewport(c, 60, 10))
    drag(c, QtCore.Qt.MouseButton.LeftButton, image_point_to_viewport(c, 10, 60), image_point_to_viewport(c, 60, 70))
    cobb = w.measure_tools.measurements[-1]
    assert len(cobb.points()) == 4 and cobb.text().startswith("Cobb ")
    assert np.allclose(cobb.points(), [(10, 10), (60, 10), (10, 60), (60, 70)], atol=1.5)
    # the angle: first arm from the vertex, then the second arm's end
    w.tool_actions["angle"].trigger()
    qtbot.wait(50)  # the Measurements panel appeared: let the canvas take its new size first
    # (away from the ellipse: a drag that starts on an ROI moves that ROI)
    drag(c, QtCore.Qt.MouseButton.LeftButton, image_point_to_viewport(c, 85, 70), image_point_to_viewport(c, 95, 70))
    drag(c, QtCore.Qt.MouseButton.LeftButton, image_point_to_viewport(c, 90, 76), image_point_to_viewport(c, 85, 58))
    ang = w.measure_tools.measurements[-1]
    assert ang.kind == "angle" and np.allclose(ang.points(), [(95, 70), (85, 70), (85, 58)], atol=1.5)
    assert ang.text() == "90.0°" or abs(float(ang.text()[:-1]) - 90) < 8
    # rotating the view keeps the measurement on the same pixels
    before = m.points()
    w.act_rot_cw.trigger()
    # (to 1/100 pixel: the points go through the rotated view's transforms and back in floats)
    assert np.allclose(m.points(), before, atol=0.01), (m.points(), before)
    scr = c.image_to_scene(70, 55)
    h = m.rois[0].getHandles()[0]
    hs = h.scenePos()
    assert abs(hs.x() - scr.x()) < 2 and abs(hs.y() - scr.y()) < 2


def test_the_angle_is_not_left_one_armed(calibrated, qtbot):
    # the reader's bug: the second drag, started on the vertex as one does, grabbed the
    # half-drawn angle's handle, and a one-armed "Angle 0.0°" stayed (4 of 5 tries)
    w, img = calibrated
    c = w.canvas
    t = w.measure_tools
    w.tool_actions["angle"].trigger()
    qtbot.wait(50)  # the Measurements panel may appear: let the canvas take its new size first
    drag(c, QtCore.Qt.MouseButton.LeftButton, image_point_to_viewport(c, 40, 40), image_point_to_viewport(c, 70, 40))
    (half,) = t.measurements
    assert not half.complete() and half.text() == "drag the second arm" and w.model.active.measurements == ()
    qtbot.wait(50)
    drag(c, QtCore.Qt.MouseButton.LeftButton, image_point_to_viewport(c, 40, 40), image_point_to_viewport(c, 40, 10))
    (ang,) = t.measurements
    assert ang.complete() and np.allclose(ang.points(), [(70, 40), (40, 40), (40, 10)], atol=1.5)
    assert abs(float(ang.text()[:-1]) - 90) < 5
    assert [m.kind for m in w.model.active.measurements] == ["angle"]
    # a first arm, then another tool: nothing is left behind
    drag(c, QtCore.Qt.MouseButton.LeftButton, image_point_to_viewport(c, 80, 60), image_point_to_viewport(c, 95, 60))
    assert len(t.measurements) == 2
    w.tool_actions["ruler"].trigger()
    assert t.measurements == [ang]
    assert [(name, m) for name, _text, m in w.measure_tools.panel.entries()] == [("Angle", ang)]


def test_export_burns_them_in_and_annotations_off_hides_them(calibrated):
    w, img = calibrated
    c = w.canvas
    base = c.render_array(native=True, annotations=False)
    w.measure_tools.add("rect", [(10, 10), (60, 50)])
    with_m = c.render_array(native=True)
    diff = np.any(with_m != base, axis=-1)
    assert diff[10, 10:60].any() and diff[50, 10:60].any()  # the outline's edges
    assert not diff[30, 30]  # the inside untouched
    grab_on = c.render_array(native=False)
    grab_off = c.render_array(native=False, annotations=False)
    assert (grab_on != grab_off).any()
    assert all(it.isVisible() for it in w.measure_tools.items())  # shown again after the grab


def test_delete_and_next_image_clears(calibrated, qtbot):
    w, _img = calibrated
    t = w.measure_tools
    t.add("angle", [(1, 1), (5, 5), (9, 1)])
    m2 = t.add("rect", [(0, 0), (5, 5)])
    t.panel.refresh()
    t.panel.table.selectRow(1)
    assert t.selected is m2
    t.panel.delete_selected()
    assert [m.kind for m in t.measurements] == ["angle"]
    t.delete()
    assert t.measurements == [] and t.panel.table.rowCount() == 0


def test_arrow_and_text_label(calibrated, qtbot):
    w, img = calibrated
    t, c = w.measure_tools, w.canvas
    base = c.render_array(native=True, annotations=False)
    w.tool_actions["arrow"].trigger()
    qtbot.wait(50)
    drag(c, QtCore.Qt.MouseButton.LeftButton, image_point_to_viewport(c, 80, 60), image_point_to_viewport(c, 40, 30))
    (arrow,) = t.measurements
    (tx, ty), (hx, hy) = arrow.points()
    assert abs(tx - 80) < 1.5 and abs(hy - 30) < 1.5 and arrow.head.isVisible()
    # the head sits on the point shown and points along the shaft, on screen
    hs = arrow.head.scenePos()
    ps = c.image_to_scene(hx, hy)
    assert abs(hs.x() - ps.x()) < 1 and abs(hs.y() - ps.y()) < 1
    lab = t.add("text", [(20, 70)], note="effusion?")
    assert lab.value() == ("Text Label", "effusion?") and lab.label.isVisible()
    # a click with the Text tool asks for the text (the dialog is replaced by a function here)
    t.ask_text = lambda: ("apex", True)
    w.tool_actions["text"].trigger()
    qtbot.wait(50)  # the panel appeared after the arrow
    pos = image_point_to_viewport(c, 30, 20)
    from PySide6.QtTest import QTest

    QTest.mouseClick(c.graphics.viewport(), QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier, pos)
    assert [m.note for m in t.measurements if m.kind == "text"] == ["effusion?", "apex"]
    p = t.measurements[-1].points()[0]
    assert abs(p[0] - 30) < 1.5 and abs(p[1] - 20) < 1.5
    # burned into the native export: shaft between tail and head, head strokes
    out = c.render_array(native=True)
    diff = np.any(out != base, axis=-1)
    assert diff[43:48, 58:63].any() and diff[28:33, 38:43].any()  # on the shaft / at the head
    # rotation turns the arrow head with the shaft
    w.act_rot_cw.trigger()
    hs2 = arrow.head.scenePos()
    ps2 = c.image_to_scene(hx, hy)
    assert abs(hs2.x() - ps2.x()) < 1 and abs(hs2.y() - ps2.y()) < 1
    assert "Text Label: effusion?" in t.panel.as_text()


def test_a_ruler_drawn_with_the_mouse_is_the_models(calibrated, qtbot):
    # before: the ruler was the canvas's own, copied into the model after the fact
    w, img = calibrated
    c, t, vp = w.canvas, w.measure_tools, w.model.active
    seen = []
    vp.measurements_changed.connect(seen.append)
    w.tool_actions["ruler"].trigger()
    assert c.tool() == "ruler"
    qtbot.wait(50)
    drag(c, QtCore.Qt.MouseButton.LeftButton, image_point_to_viewport(c, 10, 20), image_point_to_viewport(c, 70, 20))
    (r,) = vp.measurements
    assert len(seen) == 1  # one intent when the drag ended, none while it moved
    assert r.kind == "ruler" and np.allclose(r.points, [(10, 20), (70, 20)], atol=1.5)
    assert r.unit == "mm" and r.value == pytest.approx(M.length(r.points[0], r.points[1], (0.2, 0.25)))
    assert r.label == f"{r.value:.1f} mm"  # the text as the ruler always wrote it
    (drawn,) = t.measurements
    assert drawn.kind == "ruler" and drawn.index == 0 and np.allclose(drawn.points(), r.points)
    assert t.panel.entries() == [("Length", r.label, drawn)] and t.panel.table.rowCount() == 1
    # its length is on the image: the panel does not open and shrink the canvas under the reader
    assert not t.dock.isVisibleTo(w)
    # burned into the export
    plain = c.render_array(native=True, annotations=False)
    assert np.any(c.render_array(native=True) != plain)


def test_a_ruler_set_on_the_model_is_drawn_and_removed_without_the_mouse(calibrated):
    w, img = calibrated
    c, t, vp = w.canvas, w.measure_tools, w.model.active
    before = c.render_array(native=True)
    vp.add_measurement("ruler", [(5.0, 5.0), (45.0, 5.0)])
    (r,) = t.measurements
    assert r.kind == "ruler" and r.points() == [(5.0, 5.0), (45.0, 5.0)] and r.text() == "10.0 mm"
    assert all(it.isVisible() for it in r.items()) and r.rois[0].scene() is c.graphics.scene()
    assert [n for n, _v, _o in t.panel.entries()] == ["Length"]
    assert np.any(c.render_array(native=True) != before)
    vp.remove_measurement(0)
    assert t.measurements == [] and r.rois[0].scene() is None and t.panel.table.rowCount() == 0
    assert np.array_equal(c.render_array(native=True), before)


def test_dragging_a_ruler_end_moves_it_on_the_model(calibrated, qtbot):
    w, img = calibrated
    c, t, vp = w.canvas, w.measure_tools, w.model.active
    vp.add_measurement("ruler", [(10.0, 10.0), (50.0, 10.0)])
    vp.add_measurement("angle", [(60.0, 60.0), (40.0, 60.0), (40.0, 80.0)])
    moved = []
    vp.measurements_changed.connect(moved.append)
    (r, ang) = t.measurements
    w.tool_actions["wl"].trigger()  # the ends are handles in any tool
    qtbot.wait(50)
    drag(c, QtCore.Qt.MouseButton.LeftButton, image_point_to_viewport(c, 50, 10), image_point_to_viewport(c, 70, 30))
    assert len(vp.measurements) == 2 and len(moved) == 1  # moved, not added
    new = vp.measurements[0]
    assert new.kind == "ruler" and new.points[0] == (10.0, 10.0) and np.allclose(new.points[1], (70, 30), atol=1.5)
    assert new.value == pytest.approx(M.length(new.points[0], new.points[1], (0.2, 0.25)))
    assert t.measurements == [r, ang] and r.text() == new.label  # the same items, the new length


def test_tools_on_a_bare_canvas_have_a_model_of_their_own(qtbot, tmp_path):
    # no window, no bridge (a bench, a test): the same path, intent to the tools' own model
    from cxrviewer.core.dicom_io import load_image
    from cxrviewer.ui.canvas.canvas import ImageCanvas
    from cxrviewer.ui.reading.measure_tools import MeasureTools

    c = ImageCanvas()
    qtbot.addWidget(c)
    c.resize(400, 400)
    c.show()
    qtbot.waitExposed(c)
    tools = MeasureTools(c)
    c.set_image(load_image(write_cr(tmp_path / "b.dcm", ramp(80, 100), pixel_spacing=(0.5, 0.5))))
    qtbot.wait(20)
    vp = tools.model
    assert vp is not None and vp.pixels is c.img
    c.set_tool("ruler")
    drag(c, QtCore.Qt.MouseButton.LeftButton, image_point_to_viewport(c, 10, 10), image_point_to_viewport(c, 10, 50))
    (r,) = vp.measurements
    assert r.kind == "ruler" and r.value == pytest.approx(20.0, abs=0.75) and r.label.endswith(" mm")
    vp.add_measurement("rect", [(20, 20), (40, 40)])
    assert [m.kind for m in tools.measurements] == ["ruler", "rect"]
    c.set_image(load_image(write_cr(tmp_path / "c.dcm", ramp(60, 60))))  # another image: none
    assert vp.measurements == () and tools.measurements == []


def test_a_label_near_the_right_or_top_edge_stays_inside_the_viewport(calibrated, qtbot):
    # seen in a 2x2 hanging: an ellipse's statistics line ran off the viewport's right edge
    w, _img = calibrated
    c, t = w.canvas, w.measure_tools
    qtbot.waitUntil(lambda: c.graphics.viewport().width() > 100)
    c.zoom_by(3.0)  # the image fills the viewport: its edge is the viewport's
    view = c.graphics.viewport()

    def image_at(px, py):
        return c.scene_to_image(c.graphics.mapToScene(QtCore.QPoint(px, py)))

    def label_rect(m):
        return c.graphics.mapFromScene(m.label.sceneBoundingRect()).boundingRect()

    x, y = image_at(view.width() - 12, view.height() // 2)
    m = t.add("ellipse", [(x - 6, y), (x, y + 6)])  # its label sits at the box's top right
    r = label_rect(m)
    assert r.width() > 60 and tuple(m.label.anchor) == (1.0, 1.0)
    assert r.right() <= view.width() and r.left() >= 0
    x, y = image_at(view.width() // 3, 3)
    m2 = t.add("ruler", [(x - 5, y + 2), (x, y + 1)])  # its label above its end point: no room
    r2 = label_rect(m2)
    assert tuple(m2.label.anchor) == (0.0, 0.0) and r2.top() >= 0
    # back in the middle after a pan: the usual side again
    c.fit()
    qtbot.waitUntil(lambda: tuple(m2.label.anchor) == (0.0, 1.0))
