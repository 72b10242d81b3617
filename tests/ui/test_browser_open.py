"""Opening studies in the real main window, as a reader does: a folder dropped on the window
fills the study browser and shows its first image; the reader pages through it; broken files
are listed and the window keeps working; a large folder fills progressively and can be
cancelled; the sample, a colour PNG and a DICOMDIR open too.

Each test builds one window and follows one reader's path with several checks along it
(these were 15 one-check window tests in test_viewer.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import open_and_wait, ramp, show_image, write_cr
from PySide6 import QtCore, QtGui


def _next_image(qtbot, w, act, timeout: int = 10000):
    with qtbot.waitSignal(w.imageLoaded, timeout=timeout) as blocker:
        act()
    return blocker.args[0]


def test_a_dropped_study_folder_is_listed_shown_and_paged_through(qtbot, viewer, study_dir):
    from PySide6.QtTest import QTest

    w, b = viewer, viewer.browser
    # dropped on the window: it opens (was test_drop_a_folder_opens_it)
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(study_dir))])
    ev = QtGui.QDropEvent(QtCore.QPointF(50, 50), QtCore.Qt.DropAction.CopyAction, mime,
                          QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignals([w.scanFinished, w.imageLoaded], timeout=15000, order="none"):
        w.dropEvent(ev)
    # the tree lists the three readable images and the first one is shown
    assert b.count_images() == 3
    paths = b.image_paths()
    assert [Path(p).name for p in paths] == ["img1.dcm", "img2.dcm", "img3.dcm"]
    assert w.current_image is not None and w.current_image.path == paths[0]
    # the stored array itself is the image (W/L by setLevels, not a re-rendered copy)
    assert w.canvas.shown_array() is w.current_image.stored
    assert np.shares_memory(w.canvas.image_item.image, w.current_image.stored)
    assert b.selected_path() == paths[0]
    # the corrupt file is listed with its reason, in a visible panel
    errs = w.errors.errors()
    assert any(Path(p).name == "broken.dcm" and reason for p, reason in errs), errs
    assert w.errors_dock.isVisibleTo(w)
    # the folder is remembered in File → Recent
    assert w.settings.recent()[0] == str(study_dir)
    assert any(a.text() == str(study_dir) for a in w.recent_menu.actions())
    # thumbnails are made off the GUI thread, cached, and drawn in the tree
    qtbot.waitUntil(lambda: paths[0] in b.thumbs.cache, timeout=10000)
    q = b.thumbs.cache[paths[0]]
    assert max(q.width(), q.height()) == b.thumbs.size
    idx = b.proxy.mapFromSource(b.model.by_path[paths[0]].index())
    icon = idx.data(QtCore.Qt.ItemDataRole.DecorationRole)
    assert icon is not None and not icon.isNull()
    # Page Down pressed in the tree: the next image
    b.view.setFocus()
    img = _next_image(qtbot, w, lambda: QTest.keyClick(b.view, QtCore.Qt.Key.Key_PageDown))
    assert img.path == paths[1]
    # a row selected, then Page Up
    assert _next_image(qtbot, w, lambda: b.select_path(paths[2])).path == paths[2]
    assert _next_image(qtbot, w, w.act_prev.trigger).path == paths[1]
    assert w.canvas.img.path == paths[1]
    # the broken file did not stop the window: the next image still opens
    _next_image(qtbot, w, lambda: b.select_path(paths[0]))
    _next_image(qtbot, w, lambda: b.select_next(1))
    assert Path(w.current_image.path).name == "img2.dcm"
    # AI badges sort and filter the rows, and the default order comes back
    p1, p2, p3 = paths
    b.set_badge(p1, "0.10 Normal", 0.10)
    b.set_badge(p2, "0.90 Abnormal", 0.90)
    b.set_badge(p3, "0.55 Abnormal", 0.55)
    b.sort_by_badge(descending=True)
    assert b.image_paths() == [p2, p3, p1]
    b.set_badge_filter(0.5)
    assert b.image_paths() == [p2, p3]
    b.set_badge_filter(None)
    b.sort_default()
    assert b.image_paths() == [p1, p2, p3]
    assert b.badge(p2) == ("0.90 Abnormal", 0.9)


def test_undecodable_pixels_show_in_the_error_panel(qtbot, viewer, tmp_path):
    p = write_cr(tmp_path / "ok.dcm", ramp())
    bad = tmp_path / "trunc.dcm"
    data = p.read_bytes()
    bad.write_bytes(data[: len(data) - 3000])  # header intact, pixel data cut short
    open_and_wait(qtbot, viewer, tmp_path)
    assert any(Path(e[0]).name == "trunc.dcm" for e in viewer.errors.errors())
    # Decoding it anyway (e.g. from a stale tree) reports the reason and clears the canvas.
    viewer.errors.clear()
    with qtbot.waitSignal(viewer.imageFailed, timeout=10000) as blocker:
        viewer.load_path(str(bad))
    assert blocker.args[0] == str(bad) and "pixel data" in blocker.args[1]
    assert viewer.current_image is None and viewer.canvas.img is None
    assert [Path(e[0]).name for e in viewer.errors.errors()] == ["trunc.dcm"]
    # Still usable: the good image opens.
    with qtbot.waitSignal(viewer.imageLoaded, timeout=10000):
        viewer.load_path(str(p))
    assert viewer.canvas.img.path == str(p)


def _many(root: Path, n: int) -> Path:
    root.mkdir()
    src = write_cr(root / "000.dcm", ramp(16, 16)).read_bytes()
    for i in range(1, n):
        (root / f"{i:03d}.dcm").write_bytes(src)  # same UIDs: the index keeps each file once per path
    return root


def test_a_large_folder_fills_progressively_and_a_scan_can_be_cancelled(qtbot, viewer, tmp_path):
    # the tree fills while the scan runs and the first image comes before it ends
    d = _many(tmp_path / "many", 150)
    partials = []
    viewer.scanner.partial.connect(lambda rid, res: partials.append(len(res.instances())))
    with qtbot.waitSignals([viewer.scanFinished, viewer.imageLoaded], timeout=30000, order="none"):
        viewer.open_path(d)
    assert len(partials) >= 2 and partials[0] < partials[-1]
    assert viewer.browser.count_images() == partials[-1]
    # another large folder, cancelled while it is read
    qtbot.waitUntil(lambda: not viewer.scanner.running(), timeout=15000)  # its thread ends after scanFinished
    d2 = _many(tmp_path / "more", 200)
    with qtbot.waitSignal(viewer.scanner.partial, timeout=10000):
        viewer.open_path(d2)
    viewer.cancel_scan()
    assert not viewer.cancel_button.isVisibleTo(viewer)
    assert "cancelled" in viewer.status_label.text().lower()


def test_the_sample_a_colour_png_and_a_dicomdir_open(qtbot, viewer, rg1_unci, tmp_path):
    from PIL import Image
    from pydicom.data import get_testdata_file

    # the sample: RG1 is MONOCHROME1, an inverted LUT after the VOI
    with qtbot.waitSignal(viewer.imageLoaded, timeout=20000):
        viewer.open_sample()
    assert viewer.current_image.invert
    assert viewer.canvas.image_item.lut[0] == 255
    # a colour image shows as it is, without a window
    rgb = np.zeros((30, 40, 3), np.uint8)
    rgb[..., 0] = 200
    rgb[10:20, 10:30, 2] = 255
    p = tmp_path / "c.png"
    Image.fromarray(rgb).save(p)
    img = show_image(qtbot, viewer, p)
    assert img.is_color
    assert not viewer.wl_panel.isEnabled()
    out = viewer.canvas.render_array(native=True, annotations=False)
    assert np.array_equal(out, rgb)
    # a DICOMDIR (last: skipped where pydicom's test file is not installed)
    dicomdir = get_testdata_file("DICOMDIR")
    if not dicomdir:
        pytest.skip("pydicom's DICOMDIR test file is not installed")
    open_and_wait(qtbot, viewer, dicomdir, timeout=30000)
    assert viewer.browser.count_images() > 10
    assert viewer.current_image is not None
