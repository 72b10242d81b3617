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
