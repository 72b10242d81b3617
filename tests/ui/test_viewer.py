"""The viewer, driven like a reader would: real window, real DICOM files, real mouse events."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import drag, image_point_to_viewport, open_and_wait, ramp, show_image, write_cr
from PySide6 import QtCore

from cxrviewer.core.display import levels_for_preset, render


def test_open_folder_fills_tree_and_shows_first_image(qtbot, viewer, study_dir):
    open_and_wait(qtbot, viewer, study_dir)
    b = viewer.browser
    assert b.count_images() == 3
    paths = b.image_paths()
    assert [Path(p).name for p in paths] == ["img1.dcm", "img2.dcm", "img3.dcm"]
    assert viewer.current_image is not None and viewer.current_image.path == paths[0]
    # The stored array itself is the image (W/L by setLevels, not a re-rendered copy).
    assert viewer.canvas.shown_array() is viewer.current_image.stored
    assert np.shares_memory(viewer.canvas.image_item.image, viewer.current_image.stored)
    assert b.selected_path() == paths[0]


def test_select_another_image_and_page_down(qtbot, viewer, study_dir):
    open_and_wait(qtbot, viewer, study_dir)
    paths = viewer.browser.image_paths()
    with qtbot.waitSignal(viewer.imageLoaded, timeout=10000) as blocker:
        viewer.browser.select_path(paths[2])
    assert blocker.args[0].path == paths[2]
    with qtbot.waitSignal(viewer.imageLoaded, timeout=10000) as blocker:
        viewer.act_prev.trigger()  # Page Up
    assert blocker.args[0].path == paths[1]
    assert viewer.canvas.img.path == paths[1]


def test_corrupt_file_is_listed_and_the_app_keeps_working(qtbot, viewer, study_dir):
    open_and_wait(qtbot, viewer, study_dir)
    errs = viewer.errors.errors()
    assert any(Path(p).name == "broken.dcm" and reason for p, reason in errs), errs
    assert viewer.errors_dock.isVisibleTo(viewer)
    with qtbot.waitSignal(viewer.imageLoaded, timeout=10000):
        viewer.browser.select_next(1)
    assert Path(viewer.current_image.path).name == "img2.dcm"


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


def test_right_drag_changes_levels_in_the_expected_direction(qtbot, viewer, tmp_path):
    img = show_image(qtbot, viewer, write_cr(tmp_path / "a.dcm", ramp(), window=(1500.0, 2000.0)))
    c = viewer.canvas
    c0, w0 = c.window()
    mid = QtCore.QPoint(c.graphics.width() // 2, c.graphics.height() // 2)
    drag(c, QtCore.Qt.MouseButton.RightButton, mid, mid + QtCore.QPoint(120, 0))
    c1, w1 = c.window()
    assert w1 > w0 and c1 == pytest.approx(c0)  # right = wider
    drag(c, QtCore.Qt.MouseButton.RightButton, mid, mid + QtCore.QPoint(0, 80))
    c2, w2 = c.window()
    assert c2 > c1 and w2 == pytest.approx(w1)  # down = higher level
    drag(c, QtCore.Qt.MouseButton.RightButton, mid, mid - QtCore.QPoint(200, 0))
    assert c.window()[1] < w2  # left = narrower
    # The canvas levels are exactly the core's levels for that window, on the stored array.
    lo, hi = c.image_item.getLevels()
    elo, ehi = levels_for_preset(img, c.current_preset())
    assert (lo, hi) == pytest.approx((elo, ehi))
    assert c.shown_array() is img.stored
    # The W/L panel followed.
    assert viewer.wl_panel.width.value() == pytest.approx(c.window()[1], abs=1)


def test_left_drag_is_window_level_by_default_and_pan_in_pan_mode(qtbot, viewer, tmp_path):
    show_image(qtbot, viewer, write_cr(tmp_path / "a.dcm", ramp()))
    c = viewer.canvas
    mid = QtCore.QPoint(c.graphics.width() // 2, c.graphics.height() // 2)
    w0 = c.window()[1]
    drag(c, QtCore.Qt.MouseButton.LeftButton, mid, mid + QtCore.QPoint(60, 0))
    assert c.window()[1] > w0
    viewer.tool_actions["pan"].trigger()
    assert c.tool() == "pan"
    r0 = c.view_box.viewRect()
    w1 = c.window()
    drag(c, QtCore.Qt.MouseButton.LeftButton, mid, mid + QtCore.QPoint(50, 30))
    r1 = c.view_box.viewRect()
    assert r1.x() < r0.x() and r1.y() < r0.y()  # content follows the mouse
    assert c.window() == w1


def test_presets_apply(qtbot, viewer, tmp_path):
    img = show_image(qtbot, viewer, write_cr(tmp_path / "a.dcm", ramp(), window=(1500.0, 2000.0)))
    c, panel = viewer.canvas, viewer.wl_panel
    assert c.window() == (1500.0, 2000.0)  # the file's window is the default
    names = [p.name for p in panel.presets]
    assert "Auto" in names and "Lung" in names and "Bone" in names
    assert panel.apply_preset_name("Auto")
    assert c.window() == pytest.approx((img.auto_preset.center, img.auto_preset.width))
    bone = next(p for p in panel.presets if p.name == "Bone")
    viewer.preset_actions[names.index("Bone")].trigger()  # keyboard 1..9
    assert c.window() == pytest.approx((bone.center, bone.width))
    assert c.image_item.getLevels() == pytest.approx(levels_for_preset(img, bone))
    assert panel.combo.currentText() == "Bone"
    panel.width.setValue(777)
    assert c.window()[1] == pytest.approx(777)
    viewer.act_auto.trigger()
    assert c.window() == pytest.approx((img.auto_preset.center, img.auto_preset.width))


def test_sigmoid_preset_is_rendered_by_the_core_pipeline(qtbot, viewer, tmp_path):
    from cxrviewer.core.types import WindowPreset

    img = show_image(qtbot, viewer, write_cr(tmp_path / "a.dcm", ramp()))
    p = WindowPreset("S", 1500, 1000, "SIGMOID", "user")
    viewer.canvas.set_preset(p)
    assert np.array_equal(viewer.canvas.image_item.image, render(img, p, apply_invert=False))
    viewer.canvas.set_window(1500, 1000)  # back to LINEAR: the stored array again
    assert viewer.canvas.shown_array() is img.stored


#: (file attributes, the ruler's unit, its length for (10,10)-(50,40)): each basis of a length
RULER_CASES = [
    ({"pixel_spacing": (0.5, 0.25)}, "mm", math.hypot(40 * 0.25, 30 * 0.5)),
    ({"imager_spacing": (0.2, 0.2)}, "mm (detector)", 0.2 * 50),
    ({}, "px", 50.0),
]


def test_ruler_reads_mm_with_its_basis_or_px(qtbot, viewer, tmp_path):
    # one window, the three bases in turn (each image's rulers are its own)
    c = viewer.canvas

    def rulers():
        return [m for m in viewer.measure_tools.measurements if m.kind == "ruler"]

    def length(r):  # "12.3 mm (detector)" -> (12.3, "mm (detector)")
        v, u = r.text().split(" ", 1)
        return float(v), u

    for n, (kw, unit, expected) in enumerate(RULER_CASES):
        show_image(qtbot, viewer, write_cr(tmp_path / f"a{n}.dcm", ramp(80, 80), **kw))
        assert rulers() == []
        r = viewer.measure_tools.add("ruler", [(10.0, 10.0), (50.0, 40.0)])
        assert r.text() == f"{expected:.1f} {unit}", kw
        v, u = length(r)
        assert u == unit and viewer.model.active.measurements[0].value == pytest.approx(expected, rel=1e-9), kw
        # Drawn with the mouse in the Ruler tool: same length within a pixel's worth.
        viewer.tool_actions["ruler"].trigger()
        # (away from the first ruler's ends: a drag that starts on an end point edits that ruler)
        a = image_point_to_viewport(c, 20, 45)
        b = image_point_to_viewport(c, 60, 75)
        drag(c, QtCore.Qt.MouseButton.LeftButton, a, b, steps=12)
        assert len(rulers()) == 2, kw
        v2, u2 = length(rulers()[-1])
        assert u2 == unit
        tol = 1.5 * max(kw.get("pixel_spacing", kw.get("imager_spacing", (1, 1))))
        assert v2 == pytest.approx(expected, abs=tol * 1.5), kw
        viewer.act_del_ruler.trigger()
        assert len(rulers()) == 1
        viewer.act_clear_rulers.trigger()
        assert rulers() == [] and viewer.model.active.measurements == ()
        viewer.tool_actions["wl"].trigger()


def test_non_square_pixels_set_the_aspect_ratio(qtbot, viewer, tmp_path):
    show_image(qtbot, viewer, write_cr(tmp_path / "a.dcm", ramp(40, 40), pixel_spacing=(0.4, 0.2)))
    t = viewer.canvas.image_transform()
    # rows are 0.4 mm high, columns 0.2 mm wide: one row spans twice a column in the view
    w = t.map(QtCore.QPointF(40, 0)).x() - t.map(QtCore.QPointF(0, 0)).x()
    h = t.map(QtCore.QPointF(0, 40)).y() - t.map(QtCore.QPointF(0, 0)).y()
    assert h == pytest.approx(2 * w)


def test_probe_reports_modality_values(qtbot, viewer, tmp_path):
    px = ramp(50, 60)
    show_image(qtbot, viewer, write_cr(tmp_path / "a.dcm", px, slope=2.0, intercept=-1024.0,
                                       rescale_type="HU", pixel_spacing=(0.5, 0.5)))
    c = viewer.canvas
    info = c.probe_at(12.5, 20.5)  # x = column 12, y = row 20
    assert (info.row, info.col) == (20, 12)
    assert info.stored == px[20, 12]
    assert info.modality == pytest.approx(2.0 * px[20, 12] - 1024.0)
    assert info.units == "HU"
    assert info.x_mm == pytest.approx(12.5 * 0.5) and info.mm_label == "mm"
    assert c.probe_at(-1, 3) is None
    # A real mouse move reaches the status bar.
    vp = image_point_to_viewport(c, 30.5, 10.5)
    with qtbot.waitSignal(c.probed, timeout=3000) as blocker:
        from PySide6.QtTest import QTest

        QTest.mouseMove(c.graphics.viewport(), vp)
    got = blocker.args[0]
    assert got is not None and abs(got.row - 10) <= 1 and abs(got.col - 30) <= 1
    assert got.modality == pytest.approx(2.0 * px[got.row, got.col] - 1024.0)
    assert "HU" in viewer.probe_label.text()


def test_rotate_flip_keep_rulers_on_the_same_image_points(qtbot, viewer, tmp_path):
    show_image(qtbot, viewer, write_cr(tmp_path / "a.dcm", ramp(40, 60)))
    c = viewer.canvas
    r = viewer.measure_tools.add("ruler", [(5.0, 5.0), (25.0, 15.0)])
    L = r.text()
    viewer.act_rot_cw.trigger()
    viewer.act_flip_h.trigger()
    assert c.view_state().rotation == 1 and c.view_state().flip_h
    assert r.text() == L and r.points() == [(5.0, 5.0), (25.0, 15.0)]
    assert viewer.model.active.measurements[0].points == ((5.0, 5.0), (25.0, 15.0))
    # drawn where those image points are now on screen (once the scene has laid them out)
    qtbot.wait(10)
    for h, p in zip(r.rois[0].getHandles(), [(5.0, 5.0), (25.0, 15.0)], strict=True):
        s, q = h.scenePos(), c.image_to_scene(*p)
        assert abs(s.x() - q.x()) < 1 and abs(s.y() - q.y()) < 1
    x, y = c.scene_to_image(c.image_to_scene(25.0, 15.0))
    assert (x, y) == pytest.approx((25.0, 15.0), abs=1e-6)
    viewer.act_reset.trigger()
    assert c.view_state().is_identity


def _png_text_chunks(path: Path) -> bytes:
    """Every ancillary chunk's payload (tEXt, zTXt, iTXt, eXIf...) concatenated."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    i, out = 8, b""
    while i < len(data):
        n = int.from_bytes(data[i : i + 4], "big")
        ctype = data[i + 4 : i + 8]
        if ctype not in (b"IHDR", b"IDAT", b"IEND", b"PLTE"):
            out += ctype + data[i + 8 : i + 8 + n]
        i += 12 + n
    return out


def test_export_png_pixels_match_the_display_pipeline(qtbot, viewer, tmp_path):
    from PIL import Image

    img = show_image(qtbot, viewer, write_cr(tmp_path / "a.dcm", ramp(), window=(1500.0, 2000.0)))
    viewer.canvas.set_window(1400.0, 1200.0)
    out = viewer.export_image(tmp_path / "native.png", native=True, annotations=False)
    arr = np.asarray(Image.open(out))
    expected = render(img, viewer.canvas.current_preset())
    assert arr.shape[:2] == (img.rows, img.cols)
    for ch in range(3):
        assert np.array_equal(arr[..., ch], expected)
    # Invert and rotation are applied as on screen.
    viewer.act_invert.trigger()
    viewer.act_rot_cw.trigger()
    arr2 = np.asarray(Image.open(viewer.export_image(tmp_path / "rot.png", native=True, annotations=False)))
    assert np.array_equal(arr2[..., 0], np.rot90(255 - expected, k=-1))
    # What is on screen: an RGB grab of the canvas size.
    scr = viewer.canvas.render_array(native=False)
    assert scr.shape[:2] == (viewer.canvas.height(), viewer.canvas.width())
    assert scr.std() > 5


def test_cli_export_native_equals_render_exactly(tmp_path):
    from PIL import Image

    from cxrviewer.cli import main
    from cxrviewer.core.dicom_io import load_image
    from cxrviewer.core.types import WindowPreset

    src = write_cr(tmp_path / "a.dcm", ramp(70, 50), window=(1500.0, 2000.0), photometric="MONOCHROME1")
    out = tmp_path / "o.png"
    assert main(["export", str(src), "--out", str(out), "--native", "--no-annotations", "--window", "1300", "900"]) == 0
    got = np.asarray(Image.open(out))
    img = load_image(src)
    assert got.dtype == np.uint8 and got.shape == (70, 50)
    assert np.array_equal(got, render(img, WindowPreset("User", 1300, 900, "LINEAR", "user")))
    # Default window is the file's.
    assert main(["export", str(src), "--out", str(out), "--native", "--no-annotations"]) == 0
    assert np.array_equal(np.asarray(Image.open(out)), render(img, img.default_preset))


def test_cli_export_bad_input_fails_in_one_line_and_writes_nothing(tmp_path, capsys):
    from cxrviewer.cli import main

    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"this is not dicom at all" * 10)
    out = tmp_path / "o.png"
    assert main(["export", str(bad), "--out", str(out)]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.dcm" in err
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]
    assert main(["export", str(tmp_path / "missing.dcm"), "--out", str(out)]) != 0
    src = write_cr(tmp_path / "a.dcm", ramp())
    assert main(["export", str(src), "--out", str(tmp_path / "o.tiff")]) != 0
    assert main(["export", str(src), "--out", str(out), "--window", "100", "0"]) != 0
    assert not out.exists()


def test_cli_export_heatmap_without_engine_says_so(tmp_path, capsys, monkeypatch):
    from cxrviewer.cli import export as export_cli
    from cxrviewer.cli import main

    monkeypatch.setattr(export_cli, "HEATMAP_PROVIDER", None)
    # A module set to None in sys.modules cannot be imported: the engine is "not installed".
    monkeypatch.setitem(sys.modules, "cxrviewer.ml.inference", None)
    src = write_cr(tmp_path / "a.dcm", ramp())
    out = tmp_path / "o.png"
    assert main(["export", str(src), "--out", str(out), "--heatmap"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "AI engine" in err
    assert not out.exists()


def test_anonymized_export_has_no_phi_in_text_or_metadata(qtbot, viewer, tmp_path):
    from cxrviewer.cli import main

    img = show_image(qtbot, viewer, write_cr(tmp_path / "a.dcm", ramp(120, 100)))
    phi_values = ["Doe", "Jane", "PID-778899", "1951", "ACC-445566", "St Example Hospital"]
    c = viewer.canvas
    shown = " ".join(c.corner_text().strings())
    assert "PID-778899" in shown and "Doe" in shown  # the normal text does carry them
    anon = " ".join(c.corner_text(anonymize=True).strings())
    for s in phi_values:
        assert s not in anon
    assert "ANONYMIZED" in anon
    # The labels on screen are back to normal after an anonymized grab.
    a_scr = c.render_array(native=False, anonymize=True)
    n_scr = c.render_array(native=False, anonymize=False)
    assert "PID-778899" in c._labels["tl"].text()
    diff = np.argwhere(np.any(a_scr != n_scr, axis=2))
    assert diff.size  # the PHI text was removed...
    assert diff[:, 0].max() < c.height() // 2  # ...and only the top (patient/study) text changed
    for native in (True, False):
        out = viewer.export_image(tmp_path / f"anon{native}.png", native=native, anonymize=True)
        meta = _png_text_chunks(out)
        for s in phi_values:
            assert s.encode() not in meta
    jpg = viewer.export_image(tmp_path / "anon.jpg", native=True, anonymize=True)
    raw = jpg.read_bytes()
    for s in phi_values:
        assert s.encode() not in raw
    # Headless: the same.
    out = tmp_path / "cli.png"
    assert main(["export", img.path, "--out", str(out), "--anonymize"]) == 0
    meta = _png_text_chunks(out)
    for s in phi_values:
        assert s.encode() not in meta


def test_export_burns_rulers_and_text_only_when_asked(qtbot, viewer, tmp_path):
    img = show_image(qtbot, viewer, write_cr(tmp_path / "a.dcm", ramp(200, 160), pixel_spacing=(0.3, 0.3)))
    c = viewer.canvas
    plain = c.render_array(native=True, annotations=False)
    viewer.measure_tools.add("ruler", [(20.0, 20.0), (120.0, 150.0)])
    ann = c.render_array(native=True, annotations=True)
    assert plain.shape == ann.shape == (img.rows, img.cols, 3)
    changed = np.any(plain != ann, axis=2)
    assert changed.any()
    # A pixel on the ruler line changed; the rendering under it is unchanged elsewhere far away
    assert changed[85, 70] or changed[84, 69] or changed[86, 71]


def test_every_action_has_a_menu_and_a_shortcut(viewer):
    in_menus = set()
    for m in viewer.menuBar().findChildren(type(viewer.menus["file"])):
        in_menus.update(m.actions())
    missing_shortcut = [a.text() for a in viewer.actions_list if a.shortcut().isEmpty()]
    assert missing_shortcut == []
    assert all(a in in_menus for a in viewer.actions_list)
    dlg = viewer.show_shortcuts()
    assert ("View", "Rotate 90° Clockwise", "R") in dlg.rows
    mouse = dlg.tree.topLevelItem(0)
    assert any("wider" in mouse.child(i).text(1) for i in range(mouse.childCount()))
    dlg.close()


def test_tag_browser_filters(qtbot, viewer, tmp_path):
    show_image(qtbot, viewer, write_cr(tmp_path / "a.dcm", ramp()))
    dlg = viewer.show_tags()
    assert dlg is not None
    total = dlg.apply_filter("")
    assert total > 15
    assert dlg.apply_filter("PatientID") >= 1
    assert dlg.apply_filter("0028,0010") == 1  # Rows
    assert dlg.apply_filter("no-such-thing-xyz") == 0
    dlg.close()


def test_recent_files_are_remembered(qtbot, viewer, study_dir):
    open_and_wait(qtbot, viewer, study_dir)
    assert viewer.settings.recent()[0] == str(study_dir)
    assert any(a.text() == str(study_dir) for a in viewer.recent_menu.actions())


def test_badges_sort_and_filter(qtbot, viewer, study_dir):
    open_and_wait(qtbot, viewer, study_dir)
    b = viewer.browser
    p1, p2, p3 = b.image_paths()
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


def test_scan_can_be_cancelled(qtbot, viewer, tmp_path):
    d = tmp_path / "many"
    d.mkdir()
    src = write_cr(d / "0.dcm", ramp(16, 16)).read_bytes()
    for i in range(1, 200):
        (d / f"{i}.dcm").write_bytes(src)
    with qtbot.waitSignal(viewer.scanner.partial, timeout=10000):
        viewer.open_path(d)
    viewer.cancel_scan()
    assert not viewer.cancel_button.isVisibleTo(viewer)
    assert "cancelled" in viewer.status_label.text().lower()


def test_sample_opens(qtbot, viewer, rg1_unci):
    with qtbot.waitSignal(viewer.imageLoaded, timeout=20000):
        viewer.open_sample()
    img = viewer.current_image
    assert img.invert  # RG1 is MONOCHROME1: inverted LUT after the VOI
    assert viewer.canvas.image_item.lut[0] == 255


def test_importing_the_app_does_not_import_torch():
    code = (
        "import sys, cxrviewer.ui.app, cxrviewer.ui.shell.main_window, cxrviewer.cli.view, cxrviewer.cli.export;"
        "bad=[m for m in ('torch','torchvision','onnxruntime') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_bench_display_reports_the_contract_keys():
    import argparse

    from cxrviewer.bench import display

    res = display.run(argparse.Namespace(rows=300, cols=200, updates=5, view=(320, 240)))
    assert res["image"] == [300, 200]
    assert res["wl_update_ms"] > 0 and res["fps"] == pytest.approx(1000 / res["wl_update_ms"], rel=0.01)


def test_tree_fills_progressively_and_first_image_comes_before_the_scan_ends(qtbot, viewer, tmp_path):
    d = tmp_path / "many"
    d.mkdir()
    src = write_cr(d / "000.dcm", ramp(16, 16)).read_bytes()
    for i in range(1, 150):
        (d / f"{i:03d}.dcm").write_bytes(src)  # same UIDs: the index keeps each file once per path
    partials, order = [], []
    viewer.scanner.partial.connect(lambda rid, res: partials.append(len(res.instances())))
    viewer.imageLoaded.connect(lambda img: order.append("image"))
    viewer.scanFinished.connect(lambda res: order.append("finished"))
    with qtbot.waitSignals([viewer.scanFinished, viewer.imageLoaded], timeout=30000, order="none"):
        viewer.open_path(d)
    assert len(partials) >= 2 and partials[0] < partials[-1]
    assert viewer.browser.count_images() == partials[-1]


def test_thumbnails_are_made_off_thread_and_cached(qtbot, viewer, study_dir):
    open_and_wait(qtbot, viewer, study_dir)
    b = viewer.browser
    path = b.image_paths()[0]
    qtbot.waitUntil(lambda: path in b.thumbs.cache, timeout=10000)
    q = b.thumbs.cache[path]
    assert max(q.width(), q.height()) == b.thumbs.size
    idx = b.proxy.mapFromSource(b.model.by_path[path].index())
    icon = idx.data(QtCore.Qt.ItemDataRole.DecorationRole)
    assert icon is not None and not icon.isNull()


def test_keyboard_page_down_in_the_tree(qtbot, viewer, study_dir):
    from PySide6.QtTest import QTest

    open_and_wait(qtbot, viewer, study_dir)
    paths = viewer.browser.image_paths()
    viewer.browser.view.setFocus()
    with qtbot.waitSignal(viewer.imageLoaded, timeout=10000) as blocker:
        QTest.keyClick(viewer.browser.view, QtCore.Qt.Key.Key_PageDown)
    assert blocker.args[0].path == paths[1]


def test_histogram_region_sets_the_window(qtbot, viewer, tmp_path):
    show_image(qtbot, viewer, write_cr(tmp_path / "a.dcm", ramp(), window=(1500.0, 2000.0)))
    viewer.wl_panel.hist.setLevels(1000.0, 1999.0)  # what a drag of the region does
    c, w = viewer.canvas.window()
    assert (c, w) == pytest.approx((1500.0, 1000.0))
    assert viewer.wl_panel.center.value() == pytest.approx(1500)


def test_drop_a_folder_opens_it(qtbot, viewer, study_dir):
    from PySide6 import QtGui

    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(study_dir))])
    ev = QtGui.QDropEvent(QtCore.QPointF(50, 50), QtCore.Qt.DropAction.CopyAction, mime,
                          QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignals([viewer.scanFinished, viewer.imageLoaded], timeout=15000, order="none"):
        viewer.dropEvent(ev)
    assert viewer.browser.count_images() == 3


def test_copy_to_clipboard(qtbot, viewer, tmp_path):
    from PySide6 import QtGui

    show_image(qtbot, viewer, write_cr(tmp_path / "a.dcm", ramp()))
    QtGui.QGuiApplication.clipboard().clear()
    viewer.act_copy.trigger()
    q = QtGui.QGuiApplication.clipboard().image()
    assert not q.isNull() and q.width() == viewer.canvas.width()


def test_colour_image_shows_without_window(qtbot, viewer, tmp_path):
    from PIL import Image

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


def test_shortcuts_are_unique_across_the_window(viewer):
    from PySide6 import QtGui

    seen: dict[str, str] = {}
    for a in viewer.findChildren(QtGui.QAction):
        for s in a.shortcuts():
            k = s.toString()
            assert k not in seen or seen[k] == a.text(), f"{k} is bound to {seen.get(k)!r} and {a.text()!r}"
            seen[k] = a.text()


def test_about_lists_library_versions(viewer):
    import numpy
    import pydicom

    from cxrviewer.ui.shell.dialogs import show_about

    box = show_about(viewer)
    text = box.text()
    assert QtCore.qVersion() in text and pydicom.__version__ in text and numpy.__version__ in text
    assert "Not a diagnostic device" in text
    box.close()


def test_view_command_line(tmp_path, capsys):
    from cxrviewer.cli import build_parser, main

    a = build_parser().parse_args(["view", "--sample"])
    assert a.sample and a.path is None and a.func is not None
    assert main([str(tmp_path / "nope")]) != 0  # `cxrviewer PATH` = `cxrviewer view PATH`
    assert "no such file" in capsys.readouterr().err


def test_open_a_dicomdir(qtbot, viewer):
    from pydicom.data import get_testdata_file

    p = get_testdata_file("DICOMDIR")
    if not p:
        pytest.skip("pydicom's DICOMDIR test file is not installed")
    open_and_wait(qtbot, viewer, p, timeout=30000)
    assert viewer.browser.count_images() > 10
    assert viewer.current_image is not None


def test_wheel_zooms_about_the_pointer(qtbot, viewer, tmp_path):
    from PySide6 import QtGui, QtWidgets

    show_image(qtbot, viewer, write_cr(tmp_path / "a.dcm", ramp(64, 64)))
    c = viewer.canvas
    z0 = c.zoom()
    vp = c.graphics.viewport()
    pos = QtCore.QPointF(vp.width() / 2, vp.height() / 2)
    ev = QtGui.QWheelEvent(pos, QtCore.QPointF(vp.mapToGlobal(pos.toPoint())), QtCore.QPoint(0, 0),
                           QtCore.QPoint(0, 240), QtCore.Qt.MouseButton.NoButton,
                           QtCore.Qt.KeyboardModifier.NoModifier, QtCore.Qt.ScrollPhase.NoScrollPhase, False)
    QtWidgets.QApplication.sendEvent(vp, ev)
    assert c.zoom() > z0 * 1.1
    viewer.act_one.trigger()
    assert c.zoom() == pytest.approx(1.0, rel=0.02)
    viewer.act_fit.trigger()
    assert c.zoom() == pytest.approx(z0, rel=0.02)


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "RG1_UNCI.dcm"])
def test_screen_pixels_match_the_core_pipeline_within_one_level(qtbot, name):
    """setLevels on the stored array (signed, MONOCHROME1 with its inverted LUT) shows what
    core.display.render computes, within one grey level of rounding."""
    from pydicom.data import get_testdata_file

    from cxrviewer.core.dicom_io import load_image
    from cxrviewer.ui.canvas.canvas import ImageCanvas, qimage_to_rgb

    p = get_testdata_file(name, download=False)
    if not p:
        pytest.skip(f"{name} is not installed")
    img = load_image(p)
    c = ImageCanvas()
    qtbot.addWidget(c)
    c.resize(300, 300)
    c.show()
    c.set_image(img)
    for invert in (False, True):
        c.set_invert(invert)
        c.set_window(img.auto_preset.center, img.auto_preset.width * 0.7)
        c.image_item.render()
        shown = qimage_to_rgb(c.image_item.qimage)[..., 0].astype(int)
        expected = render(img, c.current_preset()).astype(int)
        if invert:
            expected = 255 - expected
        assert np.abs(shown - expected).max() <= 1


def test_typing_digits_in_the_boxes_does_not_trigger_presets(qtbot, viewer, tmp_path):
    from PySide6.QtTest import QTest

    show_image(qtbot, viewer, write_cr(tmp_path / "a.dcm", ramp(), window=(1500.0, 2000.0)))
    sb = viewer.wl_panel.width
    sb.setFocus()
    sb.selectAll()
    QTest.keyClicks(sb, "1234")
    QTest.keyClick(sb, QtCore.Qt.Key.Key_Return)
    assert viewer.canvas.window()[1] == pytest.approx(1234)
    assert viewer.canvas.current_preset().source == "user"


def test_single_key_shortcuts_reach_the_canvas(qtbot, viewer, tmp_path):
    from PySide6.QtTest import QTest

    img = show_image(qtbot, viewer, write_cr(tmp_path / "a.dcm", ramp(), window=(1500.0, 2000.0)))
    viewer.activateWindow()
    viewer.canvas.setFocus()
    QTest.keyClick(viewer.canvas, QtCore.Qt.Key.Key_2)  # preset 2 = Auto (1 is the file's)
    assert viewer.canvas.window() == pytest.approx((img.auto_preset.center, img.auto_preset.width))
    QTest.keyClick(viewer.canvas, QtCore.Qt.Key.Key_R)
    assert viewer.canvas.view_state().rotation == 1


def test_the_magnifier_loupe_shows_the_view_around_the_cursor(qtbot, viewer, tmp_path):
    import numpy as np
    from conftest import _send, image_point_to_viewport, show_image, write_cr
    from PySide6 import QtCore, QtGui, QtWidgets

    from cxrviewer.ui.canvas.magnifier import Loupe

    y, x = np.indices((80, 100))
    board = np.where(((x // 7) + (y // 5)) % 2 == 0, 600, 3400).astype(np.uint16)  # structure to recognise
    show_image(qtbot, viewer, write_cr(tmp_path / "m.dcm", board, window=(2000.0, 4000.0)))
    c = viewer.canvas
    viewer.tool_actions["magnify"].trigger()
    assert c.tool() == "magnify" and viewer.tool_actions["magnify"].shortcut().toString() == "M"
    vp = c.graphics.viewport()
    T, L, NoB = QtCore.QEvent.Type, QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.MouseButton.NoButton
    start = image_point_to_viewport(c, 50, 40)
    end = start + QtCore.QPoint(12, 6)

    def rgb(pm):
        img = pm.toImage().convertToFormat(QtGui.QImage.Format.Format_RGB888)
        w, h, bpl = img.width(), img.height(), img.bytesPerLine()
        return np.frombuffer(bytes(img.constBits()), np.uint8).reshape(h, bpl)[:, : w * 3].reshape(h, w, 3)

    Loupe.set_factor(2.0)
    _send(vp, T.MouseButtonPress, start, L, L)
    for k in range(1, 6):
        _send(vp, T.MouseMove, start + (end - start) * (k / 5), NoB, L)
        QtWidgets.QApplication.processEvents()
    loupe = c.loupe
    for factor in (2.0, 4.0):  # the zoom may change while it is shown (the menu)
        Loupe.set_factor(factor)  # redraws the loupe on screen at once
        assert loupe.isVisible()
        # centred on the cursor (pyqtgraph rate-limits moves: the last one it took, on the path)
        at = vp.mapFromGlobal(c.mapToGlobal(loupe.geometry().center()))
        assert start.x() - 2 <= at.x() <= end.x() + 2 and start.y() - 2 <= at.y() <= end.y() + 2
        # and shows the view's pixels around it, magnified
        mag = rgb(loupe.pixmap())
        n = round((Loupe.SIZE - 4) / factor)
        src = rgb(vp.grab(QtCore.QRect(at.x() - n // 2, at.y() - n // 2, n, n)))
        small = mag[:: round(factor), :: round(factor)][: src.shape[0], : src.shape[1]].astype(int)
        err = np.abs(small - src.astype(int)).mean()
        off = rgb(vp.grab(QtCore.QRect(at.x() - n // 2 + 9, at.y() - n // 2 + 6, n, n))).astype(int)
        assert err < 20 and err < np.abs(small - off).mean() / 2  # that region, not one beside it
    _send(vp, T.MouseButtonRelease, end, L, NoB)
    assert not loupe.isVisible()
    Loupe.set_factor(9)
    assert Loupe.factor == 4.0  # 2–4×
    Loupe.set_factor(2.0)
