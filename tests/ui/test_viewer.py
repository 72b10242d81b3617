"""The viewer, driven like a reader would: real window, real DICOM files, real mouse events."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import drag, image_point_to_viewport, ramp, show_image, write_cr
from PySide6 import QtCore

from cxrviewer.core.display import render

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


def test_view_command_line(tmp_path, capsys):
    from cxrviewer.cli import build_parser, main

    a = build_parser().parse_args(["view", "--sample"])
    assert a.sample and a.path is None and a.func is not None
    assert main([str(tmp_path / "nope")]) != 0  # `cxrviewer PATH` = `cxrviewer view PATH`
    assert "no such file" in capsys.readouterr().err


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

