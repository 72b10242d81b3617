"""Multi-frame images: step through frames in the viewer, keeping the reader's window."""

from __future__ import annotations

import numpy as np
from conftest import show_image

from cxrviewer.core.synthetic import make_dataset, write_dataset


def _multiframe(tmp_path, n=3):
    frames = np.stack([np.full((20, 24), 100 * (k + 1), np.uint16) for k in range(n)])
    frames[:, 5, 7] = 4000  # a marker in every frame
    ds = make_dataset(frames, bits_stored=12, frames=n)
    p = tmp_path / "mf.dcm"
    write_dataset(ds, p)
    return p, frames


def test_next_and_previous_frame_keep_the_window(qtbot, viewer, tmp_path):
    p, frames = _multiframe(tmp_path)
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


def test_frame_actions_disabled_for_single_frame(qtbot, viewer, tmp_path):
    ds = make_dataset(np.full((16, 16), 50, np.uint16), bits_stored=12)
    p = tmp_path / "one.dcm"
    write_dataset(ds, p)
    show_image(qtbot, viewer, p)
    assert not viewer.act_next_frame.isEnabled()
    assert viewer.step_frame(1) is None
