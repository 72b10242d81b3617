"""Viewport layouts in the real main window: layouts keep images, the active outline follows a
click, a drop from the study browser opens the image in that viewport, W/L sync by
modality-value offset (images with different Rescale Slope/Intercept), zoom/pan sync, sync off,
heatmap toggle per viewport."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import drag, open_and_wait, ramp, write_cr
from PySide6 import QtCore, QtGui, QtTest, QtWidgets

from cxrviewer.core.display import levels_for_preset
from cxrviewer.ui.canvas.viewports import ACTIVE_COLOR, MIME_PATHS, mime_for_paths, paths_from_mime


@pytest.fixture
def two_images(tmp_path) -> tuple[Path, Path]:
    """A (slope 1, intercept 0) and B (slope 2, intercept -1000): the same modality value is a
    different stored value in each."""
    d = tmp_path / "two"
    d.mkdir()
    a = write_cr(d / "a.dcm", ramp(64, 48, seed=1), pixel_spacing=(0.2, 0.2), window=(1200.0, 1600.0), instance=1)
    b = write_cr(d / "b.dcm", ramp(80, 60, seed=2), pixel_spacing=(0.2, 0.2), slope=2.0, intercept=-1000.0,
                 window=(900.0, 2400.0), instance=2)
    return a, b


def _open(qtbot, w, index: int, path: Path):
    with qtbot.waitSignal(w.viewports.opened, timeout=15000, check_params_cb=lambda i, img: i == index):
        w.viewports.open(index, str(path))
    return w.viewports.canvas(index).img


@pytest.fixture
def side_by_side(qtbot, viewer, two_images):
    """The window in 1x2 with A in viewport 0 (opened as a folder: the browser lists both) and
    B in viewport 1."""
    a, b = two_images
    open_and_wait(qtbot, viewer, a.parent)
    viewer.viewports.set_layout("1x2")
    if Path(viewer.viewports.canvas(0).img.path) != a:
        _open(qtbot, viewer, 0, a)
    _open(qtbot, viewer, 1, b)
    qtbot.wait(20)
    return viewer, a, b


def _drag_enter(pos: QtCore.QPoint, act, md: QtCore.QMimeData) -> QtGui.QDragEnterEvent:
    import warnings

    # PySide6 marks QDragEnterEvent's only constructor deprecated (Qt 6 keeps it; there is no
    # other): built here as the drag would, the warning is not about our code
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return QtGui.QDragEnterEvent(pos, act, md, QtCore.Qt.MouseButton.NoButton, QtCore.Qt.KeyboardModifier.NoModifier)


def _mouse(widget, etype, pos: QtCore.QPoint, button, buttons) -> None:
    ev = QtGui.QMouseEvent(etype, QtCore.QPointF(pos), QtCore.QPointF(widget.mapToGlobal(pos)), button, buttons,
                           QtCore.Qt.KeyboardModifier.NoModifier)
    QtWidgets.QApplication.sendEvent(widget, ev)


def _click(canvas) -> None:
    vp = canvas.graphics.viewport()
    QtTest.QTest.mouseClick(vp, QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier,
                            vp.rect().center())


def test_layouts_the_active_viewport_and_what_each_viewport_shows(qtbot, side_by_side, tmp_path):
    """One reader's path through the grid: layouts keep images, a click moves the active
    outline and the panels with it, V steps, captions and decoded images, a decode that comes
    back after the reader moved on, reading state per image, another study empties the rest."""
    w, a, b = side_by_side
    g = w.viewports
    # layout switching keeps the images (a hidden viewport keeps its own)
    assert Path(g.canvas(0).img.path) == a and Path(g.canvas(1).img.path) == b
    assert g.viewport(1).isVisible() and g.count() == 2
    g.set_layout("1x1")
    assert not g.viewport(1).isVisible() and g.count() == 1
    g.set_layout("2x2")
    assert g.count() == 4 and all(g.viewport(i).isVisible() for i in range(4))
    assert Path(g.canvas(0).img.path) == a and Path(g.canvas(1).img.path) == b
    assert g.canvas(2).img is None
    g.set_layout("2x1")
    assert g.viewport(1).isVisible() and not g.viewport(2).isVisible()
    # the View menu's layout actions follow, and carry their shortcuts into the shortcuts dialog
    assert w.viewport_binding.layout_actions["2x1"].isChecked()
    from cxrviewer.ui.shell.shortcuts import action_rows

    rows = {r.text: r.shortcut for r in action_rows(w)}
    assert rows["1 × 2 (side by side)"] == "Alt+2" and rows["Sync Window/Level"] == "Shift+L"
    with pytest.raises(ValueError):
        g.set_layout("3x3")
    g.set_layout("1x2")

    # the active outline moves on a click, and the panels follow
    assert g.active == 0 and w.canvas is g.canvas(0)
    assert g.viewport(0).border_color() == ACTIVE_COLOR and g.viewport(1).border_color() != ACTIVE_COLOR
    _click(g.canvas(1))
    assert g.active == 1
    assert g.viewport(1).border_color() == ACTIVE_COLOR and g.viewport(0).border_color() != ACTIVE_COLOR
    # and it is what is on screen: the frame's pixels in the active colour
    shot = g.viewport(1).grab().toImage()
    assert shot.pixelColor(1, shot.height() // 2).name() == ACTIVE_COLOR
    shot0 = g.viewport(0).grab().toImage()
    assert shot0.pixelColor(1, shot0.height() // 2).name() != ACTIVE_COLOR
    # the window, the W/L panel and the measurement panel now act on viewport 1
    assert w.canvas is g.canvas(1) and Path(w.current_image.path) == b
    assert w.wl_panel.canvas is g.canvas(1)
    assert w.measure_tools.canvas is g.canvas(1) and w.measure_tools.panel.tools is w.measure_tools
    before0 = g.canvas(0).window()
    w.wl_panel.center.setValue(1234.0)
    assert g.canvas(1).window()[0] == pytest.approx(1234.0) and g.canvas(0).window() == before0
    w.act_rot_cw.trigger()
    assert g.canvas(1).view_state().rotation == 1 and g.canvas(0).view_state().rotation == 0
    # the tool follows too: a ruler drawn now lands in viewport 1
    w.tool_actions["ruler"].trigger()
    assert g.canvas(1).tool() == "ruler"
    _click(g.canvas(0))
    assert g.active == 0 and w.canvas is g.canvas(0) and Path(w.current_image.path) == a
    assert g.canvas(0).tool() == "ruler"
    w.viewport_binding.act_next_viewport.trigger()  # V
    assert g.active == 1 and w.canvas is g.canvas(1)
    w.viewport_binding.act_next_viewport.trigger()
    assert g.active == 0
    w.tool_actions["wl"].trigger()
    g.set_active(1)
    w.act_reset.trigger()  # viewport 1 back to its plain view for what follows
    g.set_active(0)

    # a caption shows and hides; an image already decoded is shown at once, the active one unchanged
    g.set_caption(1, "Prior 2023-04-01")
    assert g.caption(1) == "Prior 2023-04-01" and g.viewport(1).caption.isVisible()
    g.set_caption(1, "")
    assert not g.viewport(1).caption.isVisible()
    img = g.canvas(0).img
    with qtbot.waitSignal(g.opened, timeout=5000):
        g.open(1, img)
    assert g.canvas(1).img is img and g.path(1) == img.path and g.active == 0
    _open(qtbot, w, 1, b)

    # an image opened beside comes back with its reading state (rotation, window)
    g.set_active(1)
    w.act_rot_cw.trigger()
    w.canvas.set_window(1111.0, 777.0)
    g.set_active(0)  # leaving it writes B's state
    _open(qtbot, w, 1, a)
    assert g.canvas(1).view_state().rotation == 0
    img = _open(qtbot, w, 1, b)  # viewport 1 is not the active one: its own loader, same state
    assert Path(img.path) == b and g.active == 0
    assert g.canvas(1).view_state().rotation == 1
    assert g.canvas(1).window() == pytest.approx((1111.0, 777.0))

    # an image still loading goes to the viewport that asked, not the one active when it is back
    c = write_cr(tmp_path / "c.dcm", ramp(40, 30, seed=3), instance=3)
    g.open(0, str(c))  # viewport 0 is active: the window's loader decodes it
    g.set_active(1)  # before the decode is back
    qtbot.waitUntil(lambda: g.canvas(0).img is not None and Path(g.canvas(0).img.path) == c, timeout=15000)
    qtbot.wait(50)
    assert Path(g.canvas(1).img.path) == b and w.canvas is g.canvas(1) and Path(w.current_image.path) == b
    g.set_active(0)

    # opening another study empties the other viewports (and their captions); the layout stays
    g.set_caption(1, "Prior · 2023-04-01")
    d = tmp_path / "other"
    d.mkdir()
    c = write_cr(d / "c.dcm", ramp(40, 30, seed=5), instance=1,
                 phi={"PatientName": "Roe^Ann", "PatientID": "PID-2"})
    open_and_wait(qtbot, w, d)
    assert Path(g.canvas(0).img.path) == c
    # viewport 1 showed the previous study: it must not stay beside another patient's image
    assert g.canvas(1).img is None and g.path(1) is None and g.caption(1) == ""
    assert g.layout_name() == "1x2"  # the layout stays; only its images go


def test_a_drag_from_the_browser_opens_only_in_the_viewport_it_is_dropped_on(qtbot, side_by_side):
    # the reader's bug: dragging B into the right viewport also opened B in the left one, the
    # viewport being read (the press selected B and the selection opened it)
    w, a, b = side_by_side
    g = w.viewports
    src = w.viewport_binding.drag_source
    T, L, NoB = QtCore.QEvent.Type, QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.MouseButton.NoButton
    vp = w.browser.view.viewport()
    assert g.active == 0 and Path(w.current_path) == a
    idx = w.browser.proxy.mapFromSource(w.browser.model.by_path[str(b)].index())
    w.browser.view.scrollTo(idx)
    pos = w.browser.view.visualRect(idx).center()
    asked: list[str] = []
    w.browser.imageSelected.connect(asked.append)
    with qtbot.waitSignal(src.dragStarted, timeout=2000):
        _mouse(vp, T.MouseButtonPress, pos, L, L)
        _mouse(vp, T.MouseMove, pos + QtCore.QPoint(30, 4), NoB, L)
    _mouse(vp, T.MouseButtonRelease, pos + QtCore.QPoint(30, 4), L, NoB)
    assert asked == [] and Path(w.current_path) == a and Path(g.canvas(0).img.path) == a
    assert w.browser.selected_path() == str(a)  # the highlight stays on what is being read
    # a plain click (press and release, no drag) still opens the row in the active viewport
    with qtbot.waitSignal(w.imageLoaded, timeout=15000):
        _mouse(vp, T.MouseButtonPress, pos, L, L)
        _mouse(vp, T.MouseButtonRelease, pos, L, NoB)
    assert asked == [str(b)] and Path(g.canvas(0).img.path) == b
    with qtbot.waitSignal(w.imageLoaded, timeout=15000):  # A back in the viewport being read
        w.browser.select_path(str(a))
    assert Path(g.canvas(0).img.path) == a and Path(g.canvas(1).img.path) == b

    # a real press and move on A's row in the tree start the drag (QDrag.exec itself returns
    # at once offscreen: there is no platform drag there)
    item = w.browser.model.by_path[str(a)]
    idx = w.browser.proxy.mapFromSource(item.index())
    w.browser.view.scrollTo(idx)
    pos = w.browser.view.visualRect(idx).center()
    with qtbot.waitSignal(src.dragStarted, timeout=2000) as started:
        _mouse(vp, T.MouseButtonPress, pos, L, L)
        _mouse(vp, T.MouseMove, pos + QtCore.QPoint(30, 4), NoB, L)
    assert started.args[0] == [str(a)]
    md = mime_for_paths(started.args[0])  # the drag's own data belongs to the (finished) QDrag
    assert paths_from_mime(md) == [str(a)] and md.urls()[0].toLocalFile() == str(a)
    _mouse(vp, T.MouseButtonRelease, pos + QtCore.QPoint(30, 4), L, NoB)
    qtbot.wait(200)  # whatever the press loads goes to the active viewport 0 (A: no change)
    # a series row carries every image of the series
    series = src.paths_at(w.browser.view, idx.parent())
    assert sorted(series) == sorted([str(a), str(b)])
    # the worklist gives the same for its rows, and a drag starts from it the same way
    w.browser.set_mode("worklist")
    wl_paths = [src.paths_at(w.browser.worklist, w.browser.worklist_proxy.index(r, 0))[0]
                for r in range(w.browser.worklist_proxy.rowCount())]
    assert sorted(wl_paths) == sorted([str(a), str(b)])
    wl = w.browser.worklist
    ra = wl_paths.index(str(a))  # A's row: selecting it (the press) changes nothing on screen
    wpos = wl.visualRect(w.browser.worklist_proxy.index(ra, 1)).center()
    with qtbot.waitSignal(src.dragStarted, timeout=2000) as started_wl:
        _mouse(wl.viewport(), T.MouseButtonPress, wpos, L, L)
        _mouse(wl.viewport(), T.MouseMove, wpos + QtCore.QPoint(0, 25), NoB, L)
    _mouse(wl.viewport(), T.MouseButtonRelease, wpos + QtCore.QPoint(0, 25), L, NoB)
    assert started_wl.args[0] == [str(a)]
    qtbot.wait(200)
    # the real drop: enter and drop events sent to viewport 1, which shows B
    assert g.active == 0 and Path(g.canvas(1).img.path) == b
    target = g.viewport(1)
    p = QtCore.QPointF(target.rect().center())
    act = QtCore.Qt.DropAction.CopyAction
    enter = _drag_enter(p.toPoint(), act, md)
    QtWidgets.QApplication.sendEvent(target, enter)
    assert enter.isAccepted()
    with qtbot.waitSignal(g.opened, timeout=15000, check_params_cb=lambda i, img: i == 1):
        drop = QtGui.QDropEvent(p, act, md, NoB, QtCore.Qt.KeyboardModifier.NoModifier)
        QtWidgets.QApplication.sendEvent(target, drop)
        assert drop.isAccepted()
    assert Path(g.canvas(1).img.path) == a and Path(g.canvas(0).img.path) == a
    assert g.active == 1 and w.canvas is g.canvas(1) and Path(w.current_image.path) == a
    # a drag that is not from the browser is left to the window (it opens files and folders)
    other = QtCore.QMimeData()
    other.setText("hello")
    enter2 = _drag_enter(p.toPoint(), act, other)
    enter2.setAccepted(False)
    target.dragEnterEvent(enter2)
    assert not enter2.isAccepted() and not other.hasFormat(MIME_PATHS)


def test_sync_of_window_and_zoom_and_the_heatmap_per_viewport(qtbot, side_by_side):
    w, a, b = side_by_side
    g, vb, ai = w.viewports, w.viewport_binding, w.ai
    c0, c1 = g.canvas(0), g.canvas(1)
    # W/L sync moves the other viewport by the same modality offset (B is rescaled)
    assert c1.img.modality is not None and not np.allclose(c1.img.modality, c1.img.stored)
    g.set_sync(wl=True)
    assert vb.act_sync_wl.isChecked()
    (a_c, a_w), (b_c, b_w) = c0.window(), c1.window()
    drag(c0, QtCore.Qt.MouseButton.RightButton, QtCore.QPoint(200, 200), QtCore.QPoint(260, 240))
    (a_c2, a_w2), (b_c2, b_w2) = c0.window(), c1.window()
    dc, dw = a_c2 - a_c, a_w2 - a_w
    assert dc != 0 and dw != 0
    assert b_c2 - b_c == pytest.approx(dc) and b_w2 - b_w == pytest.approx(dw)
    # B's image levels are its new window in *its* stored units: (modality + 1000) / 2
    lo, hi = c1.image_item.levels
    want = levels_for_preset(c1.img, c1.current_preset())
    assert (lo, hi) == pytest.approx(want)
    assert lo == pytest.approx((b_c2 - b_w2 / 2 + 1000) / 2, abs=1.0)
    # sync off: the other one stays
    vb.act_sync_wl.trigger()
    assert g.sync() == (False, False)
    c0.set_window(a_c2 + 300, a_w2)
    assert c1.window() == (b_c2, b_w2)

    # zoom/pan sync, then off
    vb.act_sync_zoom.trigger()
    assert g.sync() == (False, True)
    c0.zoom_by(2.0)
    c0.view_box.translateBy(x=5, y=-3)
    r0, r1 = g.relative_view(c0), g.relative_view(c1)
    assert r0[2] > 1.5  # zoomed in from fit
    assert r1 == pytest.approx(r0, rel=1e-3)
    assert not c1.is_fit()
    c0.fit()
    assert c1.is_fit()
    # a window change is not synced (only zoom/pan is on)
    before = c1.window()
    c0.set_window(c0.window()[0] + 50, c0.window()[1])
    assert c1.window() == before
    g.set_sync(zoom=False)
    z1 = c1.zoom()
    c0.zoom_by(3.0)
    assert c1.zoom() == pytest.approx(z1)

    # the heatmap toggle is per viewport
    l0, l1 = vb.heatmap_for(c0), vb.heatmap_for(c1)
    assert l0 is not l1 and ai.heatmap is l0
    for layer, c in ((l0, c0), (l1, c1)):
        layer.set_cam(np.full((c.img.rows, c.img.cols), 200, np.uint8))
    ai.act_heatmap.setChecked(True)
    assert l0.enabled and l0.item.isVisible() and not l1.enabled and not l1.item.isVisible()
    _click(c1)
    assert ai.heatmap is l1 and not ai.act_heatmap.isChecked() and not ai.controls.show_box.isChecked()
    ai.act_heatmap.setChecked(True)
    assert l1.item.isVisible() and l0.item.isVisible()
    ai.controls.show_box.setChecked(False)
    assert not l1.item.isVisible() and l0.item.isVisible()
    _click(c0)
    assert ai.act_heatmap.isChecked()
    # a new image in a viewport drops its old heatmap
    l1.set_cam(np.full((c1.img.rows, c1.img.cols), 200, np.uint8))
    assert l1.cam is not None
    _open(qtbot, w, 1, a)
    assert l1.cam is None and Path(c1.img.path) == a


def test_bench_display_reports_two_synced_viewports():
    import argparse

    from cxrviewer.bench import display

    res = display.run(argparse.Namespace(rows=300, cols=200, updates=5, view=(320, 240)))
    assert res["synced_viewports"] == 2
    assert res["synced_fps"] == pytest.approx(1000 / res["synced_wl_update_ms"], rel=0.01)
    assert res["fps"] > 0 and res["synced_fps_median"] > 0  # the single-view keys are still there


def test_measurements_panel_lists_the_active_viewports_measurements(qtbot, side_by_side):
    w, _a, _b = side_by_side
    g, vb = w.viewports, w.viewport_binding
    _click(g.canvas(1))
    tools1 = vb.tools_for(g.canvas(1))
    assert w.measure_tools is tools1 and tools1 is not vb.tools_for(g.canvas(0))
    tools1.add("angle", [(5.0, 5.0), (20.0, 5.0), (20.0, 20.0)])
    panel = tools1.panel
    assert [n for n, _v, _o in panel.entries()] == ["Angle"] and panel.table.rowCount() == 1
    assert "90.0°" in panel.entries()[0][1]
    _click(g.canvas(0))
    assert panel.tools is vb.tools_for(g.canvas(0)) and panel.table.rowCount() == 0
    _click(g.canvas(1))
    assert panel.table.rowCount() == 1  # viewport 1 kept its angle


def test_no_black_boxes_under_the_corner_text_of_any_viewport(qtbot, viewer, tmp_path):
    # the reader's bug: black rectangles hid the image under the corner text of viewports 2 and 3
    from PySide6 import QtGui

    bright = np.full((64, 64), 3800, np.uint16)
    p = write_cr(tmp_path / "bright.dcm", bright, window=(2048.0, 4096.0))
    open_and_wait(qtbot, viewer, p)
    g = viewer.viewports
    g.set_layout("2x2")
    for i in (1, 2, 3):
        with qtbot.waitSignal(g.opened, timeout=15000, check_params_cb=lambda k, _img, i=i: k == i):
            g.open(i, str(p))
    for i in range(4):
        c = g.canvas(i)
        c.fit()
        img = c.grab().toImage().convertToFormat(QtGui.QImage.Format.Format_RGB888)
        w, h, bpl = img.width(), img.height(), img.bytesPerLine()
        a = np.frombuffer(bytes(img.constBits()), np.uint8).reshape(h, bpl)[:, : w * 3].reshape(h, w, 3)
        for name in ("tl", "tr", "bl", "br"):
            r = c._labels[name].geometry().intersected(c.graphics.geometry())
            img_rect = c.image_item.mapRectToScene(c.image_item.boundingRect())
            view_r = c.graphics.mapFromScene(img_rect).boundingRect()
            r = r.intersected(view_r.translated(c.graphics.pos()))
            if r.isEmpty():
                continue
            box = a[r.top():r.bottom() + 1, r.left():r.right() + 1].astype(int).sum(axis=2)
            # text and its shadow are thin strokes: most of the box is the (bright) image
            assert (box < 60).mean() < 0.5, (i, name, (box < 60).mean())
