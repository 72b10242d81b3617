"""Cine: multi-frame images play at the chosen speed, wrapping, and stop on pause or another image."""

from __future__ import annotations

from conftest import ramp, show_image, write_cr

from cxrviewer.core.synthetic import make_dataset, write_dataset


def test_play_pause_frames(qtbot, viewer, tmp_path):
    import numpy as np

    frames = np.stack([np.full((20, 24), 100 * (k + 1), np.uint16) for k in range(3)])
    p = tmp_path / "mf.dcm"
    write_dataset(make_dataset(frames, bits_stored=12, frames=3), p)
    show_image(qtbot, viewer, p)
    cine = viewer.cine
    assert cine.action.isEnabled()
    cine.set_fps(30)
    seen = []
    viewer.imageLoaded.connect(lambda img: seen.append(img.frame))
    cine.action.trigger()
    assert cine.playing() and cine.action.isChecked()
    qtbot.waitUntil(lambda: len(seen) >= 4, timeout=10000)
    assert seen[:4] == [1, 2, 0, 1]  # in order, wrapping
    cine.action.trigger()
    assert not cine.playing() and not cine.action.isChecked()
    n = len(seen)
    qtbot.wait(300)
    assert len(seen) <= n + 1  # at most the frame already requested
    # a single-frame image: nothing to play
    show_image(qtbot, viewer, write_cr(tmp_path / "one.dcm", ramp()))
    assert not cine.action.isEnabled() and cine.play() is False


def test_cine_bar_wheel_and_frame_number(qtbot, viewer, tmp_path):
    # the reader's bug: no on-screen controls, no frame number, and the wheel zoomed
    import numpy as np
    from PySide6 import QtCore, QtGui, QtWidgets

    bar = viewer.cine.bar
    show_image(qtbot, viewer, write_cr(tmp_path / "one.dcm", ramp()))
    assert not bar.isVisible()  # a single frame: nothing to play
    frames = np.stack([np.full((20, 24), 100 * (k + 1), np.uint16) for k in range(5)])
    p = tmp_path / "mf.dcm"
    write_dataset(make_dataset(frames, bits_stored=12, frames=5), p)
    show_image(qtbot, viewer, p)
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
    assert viewer.cine.fps == 25
    bar.play_button.click()
    assert viewer.cine.playing() and viewer.cine.action.isChecked()
    bar.play_button.click()
    assert not viewer.cine.playing() and bar.play_button.text().endswith("Play")
