"""Cine and frames of a multi-frame image, in one window along one reader's path: a single
frame has nothing to play; the cine bar shows Frame n/N, its slider and the wheel step frames
(Ctrl+wheel zooms); frames step by the menu keeping the reader's window and wrapping; play at
the chosen speed wraps in order and stops on pause.

(These were four window tests: two here and two in test_frames.py.)"""

from __future__ import annotations

import numpy as np
from conftest import ramp, show_image, write_cr
from PySide6 import QtCore, QtGui, QtWidgets

from cxrviewer.core.synthetic import make_dataset, write_dataset


def _multiframe(path, n):
    frames = np.stack([np.full((20, 24), 100 * (k + 1), np.uint16) for k in range(n)])
    frames[:, 5, 7] = 4000  # a marker in every frame
    write_dataset(make_dataset(frames, bits_stored=12, frames=n), path)
    return path, frames


def test_cine_bar_frames_wheel_and_play_on_one_window(qtbot, viewer, tmp_path):
    # the reader's bug: no on-screen controls, no frame number, and the wheel zoomed
    cine, bar = viewer.cine, viewer.cine.bar
    # a single frame: no bar, no frame actions, nothing to play
    show_image(qtbot, viewer, write_cr(tmp_path / "one.dcm", ramp()))
    assert not bar.isVisible()
    assert not viewer.act_next_frame.isEnabled()
    assert viewer.step_frame(1) is None
    assert not cine.action.isEnabled() and cine.play() is False

    # three frames: Next/Previous Frame keep the reader's window, and wrap
    p, frames = _multiframe(tmp_path / "mf3.dcm", 3)
    img = show_image(qtbot, viewer, p)
    assert img.n_frames == 3 and img.frame == 0
    assert viewer.act_next_frame.isEnabled() and viewer.act_prev_frame.isEnabled()
    assert "frame 1/3" in viewer.status_label.text()
    viewer.canvas.set_window(1234.0, 567.0)
    with qtbot.waitSignal(viewer.imageLoaded, timeout=10000) as blk:
        viewer.act_next_frame.trigger()
    nxt = blk.args[0]
    assert nxt.frame == 1 and np.array_equal(nxt.stored, frames[1])
    assert viewer.canvas.window() == (1234.0, 567.0)  # the reader's window survives the frame change
    with qtbot.waitSignal(viewer.imageLoaded, timeout=10000) as blk:
        viewer.act_prev_frame.trigger()
    assert blk.args[0].frame == 0
    with qtbot.waitSignal(viewer.imageLoaded, timeout=10000) as blk:
        viewer.act_prev_frame.trigger()  # wraps around
    assert blk.args[0].frame == 2 and np.array_equal(blk.args[0].stored, frames[2])
    assert "frame 3/3" in viewer.status_label.text()

    # five frames: the bar, its slider, Frame n/N on the bar and in the corner text
    p, _ = _multiframe(tmp_path / "mf5.dcm", 5)
    show_image(qtbot, viewer, p)
    assert cine.action.isEnabled()
    assert bar.isVisible() and bar.slider.maximum() == 4 and bar.frame_label.text() == "Frame 1 / 5"
    assert "Frame 1/5" in viewer.canvas.corner_text().bl
    with qtbot.waitSignal(viewer.imageLoaded, timeout=10000):
        bar.slider.setValue(3)
    assert viewer.current_image.frame == 3 and bar.frame_label.text() == "Frame 4 / 5"
    assert "Frame 4/5" in viewer.canvas.corner_text().bl
    # the wheel over the image steps frames; Ctrl+wheel zooms and keeps the frame
    vp = viewer.canvas.graphics.viewport()
    pos = QtCore.QPointF(vp.rect().center())

    def wheel(dy: int, mods) -> None:
        ev = QtGui.QWheelEvent(pos, QtCore.QPointF(vp.mapToGlobal(pos.toPoint())), QtCore.QPoint(0, 0),
                               QtCore.QPoint(0, dy), QtCore.Qt.MouseButton.NoButton, mods,
                               QtCore.Qt.ScrollPhase.NoScrollPhase, False)
        QtWidgets.QApplication.sendEvent(vp, ev)

    zoom = viewer.canvas.zoom()
    with qtbot.waitSignal(viewer.imageLoaded, timeout=10000):
        wheel(-120, QtCore.Qt.KeyboardModifier.NoModifier)  # down: the next frame
    assert viewer.current_image.frame == 4 and viewer.canvas.zoom() == zoom
    wheel(120, QtCore.Qt.KeyboardModifier.ControlModifier)
    assert viewer.canvas.zoom() > zoom * 1.01 and viewer.current_image.frame == 4
    # play/pause on the bar, at the bar's speed (the menu follows)
    bar.fps.setValue(25)
    assert cine.fps == 25
    bar.play_button.click()
    assert cine.playing() and cine.action.isChecked()
    bar.play_button.click()
    assert not cine.playing() and bar.play_button.text().endswith("Play")

    # play from the menu: frames in order, wrapping, until paused
    qtbot.wait(100)  # (no frame is in flight from the bar's play: it was paused at once)
    start = viewer.current_image.frame
    cine.set_fps(30)
    seen = []
    viewer.imageLoaded.connect(lambda im: seen.append(im.frame))
    cine.action.trigger()
    assert cine.playing() and cine.action.isChecked()
    qtbot.waitUntil(lambda: len(seen) >= 4, timeout=10000)
    assert seen[:4] == [(start + k) % 5 for k in range(1, 5)]  # in order, wrapping
    cine.action.trigger()
    assert not cine.playing() and not cine.action.isChecked()
    n = len(seen)
    qtbot.wait(300)
    assert len(seen) <= n + 1  # at most the frame already requested

    # another image, a single frame: nothing to play
    show_image(qtbot, viewer, write_cr(tmp_path / "one_again.dcm", ramp(seed=1)))
    assert not cine.action.isEnabled() and cine.play() is False and not bar.isVisible()
