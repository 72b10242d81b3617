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
