"""One registry of measurement kinds (the ruler included): value and DICOM content per kind."""

from __future__ import annotations

import numpy as np
import pytest

from cxrviewer.core import measure as M
from cxrviewer.core.dicom_io import load_image
from cxrviewer.core.synthetic import make_dataset, write_dataset
from cxrviewer.viewer import Measurement
from cxrviewer.viewer.measurements import REGISTRY, compute, kind, to_dicom


@pytest.fixture(scope="module")
def img(tmp_path_factory):
    y, x = np.indices((60, 80))
    px = (100 + 10 * x + y).astype(np.uint16)
    ds = make_dataset(px, bits_stored=12)
    ds.PixelSpacing = [0.2, 0.25]
    p = tmp_path_factory.mktemp("m") / "m.dcm"
    write_dataset(ds, p)
    return load_image(p)


def test_every_kind_is_declared_once_with_its_tool_key():
    assert list(REGISTRY) == ["ruler", "angle", "cobb", "ctr", "ellipse", "rect", "arrow", "text"]
    keys = [k.shortcut for k in REGISTRY.values()]
    assert len(set(keys)) == len(keys)
    with pytest.raises(ValueError, match="unknown measurement kind 'spline'"):
        kind("spline")


def test_values_in_mm_with_the_pixel_spacing(img):
    sp = (0.2, 0.25)
    assert compute(Measurement("ruler", ((0, 0), (40, 0))), img) == (pytest.approx(10.0), "mm")
    v, u = compute(Measurement("angle", ((40, 10), (10, 10), (10, 40))), img)
    assert u == "deg" and v == pytest.approx(M.angle_deg((10, 10), (40, 10), (10, 40), sp))
    v, u = compute(Measurement("ctr", ((0, 30), (80, 30), (20, 40), (60, 40))), img)
    assert (v, u) == (pytest.approx(0.5), "")
    v, u = compute(Measurement("rect", ((10, 10), (20, 20))), img)
    assert u == "mm2" and v == pytest.approx(100 * 0.2 * 0.25, rel=0.05)
    assert compute(Measurement("arrow", ((0, 0), (5, 5))), img) == (None, "")


def test_dicom_content_for_every_kind_the_ruler_included(img):
    ms = [Measurement("ruler", ((0, 0), (40, 0)), label="10.0 mm"),
          Measurement("angle", ((40, 10), (10, 10), (10, 40)), label="90°"),
          Measurement("cobb", ((0, 0), (40, 0), (0, 10), (40, 20))),
          Measurement("ellipse", ((10, 10), (30, 30))),
          Measurement("text", ((5, 5),), label="note"),
          Measurement("angle", ((1, 1), (1, 1)))]  # unfinished: left out
    out = to_dicom(img, ms)
    assert [m.kind for m in out] == ["length", "angle", "cobb", "roi"]
    assert out[0].values[0][0] == "Length" and out[0].values[0][2] == "mm"
    names = [v[0] for v in out[3].values]
    assert names == ["Mean", "Standard Deviation", "Minimum", "Maximum", "Area"]


def test_a_measurement_added_on_the_model_gets_its_value_from_the_registry(img):
    from cxrviewer.viewer import ViewportModel

    vp = ViewportModel(0)
    seen = []
    vp.measurements_changed.connect(seen.append)
    vp.set_pixels(img)
    r = vp.add_measurement("ruler", [(0, 0), (40, 0)])
    assert (r.value, r.unit) == (pytest.approx(10.0), "mm")  # 40 columns × 0.25 mm
    a = vp.add_measurement("angle", [(40, 10), (10, 10), (10, 40)])
    assert (a.value, a.unit) == compute(Measurement("angle", a.points), img)
    t = vp.add_measurement("text", [(5, 5)], label="note")
    assert (t.value, t.label) == (None, "note")
    assert [m.kind for m in vp.measurements] == ["ruler", "angle", "text"] and len(seen) == 3
    moved = vp.move_measurement(0, [(0, 0), (0, 50)])  # 50 rows × 0.2 mm
    assert moved.value == pytest.approx(10.0) and vp.measurements[0] is moved
    vp.remove_measurement(1)
    assert [m.kind for m in vp.measurements] == ["ruler", "text"]
    with pytest.raises(ValueError, match="needs 3 points"):
        vp.add_measurement("angle", [(0, 0), (1, 1)])
    with pytest.raises(ValueError, match="unknown measurement kind"):
        vp.add_measurement("spline", [(0, 0), (1, 1)])


def test_the_registry_drives_the_ruler_like_any_kind(img, monkeypatch):
    # no special case for the ruler: its value, its text (the label the canvas shows and the
    # panel lists) and its DICOM content come from its registry entry, through the model's intent
    from cxrviewer.core.geometry import length
    from cxrviewer.dicom.build import length_measurement
    from cxrviewer.viewer import ViewportModel
    from cxrviewer.viewer import measurements as registry

    vp = ViewportModel(0)
    vp.set_pixels(img)
    r = vp.add_measurement("ruler", [(10, 10), (50, 40)])
    v, unit = length(img.geometry, (10, 10), (50, 40))
    assert (r.value, r.unit, r.label) == (pytest.approx(v), "mm", f"{v:.1f} {unit}")
    assert r.label == registry.text(r, img) == REGISTRY["ruler"].text(r.points, img)
    (d,) = to_dicom(img, vp.measurements)
    assert d == length_measurement(img, (10.0, 10.0), (50.0, 40.0))
    # moved: value and text follow; removed: gone
    m = vp.move_measurement(0, [(10, 10), (10, 60)])
    assert m.value == pytest.approx(10.0) and m.label == "10.0 mm"
    vp.remove_measurement(0)
    assert vp.measurements == ()
    # every valued kind has its text from the registry, as the ruler does
    pts = {"ruler": [(0, 0), (40, 0)], "angle": [(40, 10), (10, 10), (10, 40)],
           "cobb": [(0, 0), (40, 0), (0, 10), (40, 20)], "ctr": [(0, 30), (80, 30), (20, 40), (60, 40)],
           "ellipse": [(10, 10), (30, 30)], "rect": [(10, 10), (20, 20)]}
    for key, p in pts.items():
        got = vp.add_measurement(key, p)
        assert got.label == REGISTRY[key].text(got.points, img) and got.value is not None, key
    assert [k for k, x in REGISTRY.items() if x.text is None] == ["arrow", "text"]
    # a new kind is an entry in the registry: the model needs nothing else
    twice = registry.Kind("twice", "Twice", "Shift+W", 2, lambda p, _img: (2 * M.length(p[0], p[1], None), "px"),
                          lambda p, _img, _label: [], lambda p, _img: f"{2 * M.length(p[0], p[1], None):.0f} px")
    monkeypatch.setitem(REGISTRY, "twice", twice)
    t = vp.add_measurement("twice", [(0, 0), (3, 4)])
    assert (t.value, t.unit, t.label) == (10.0, "px", "10 px")
