"""The Qt-free export renderer: geometry, layers, aspect, text."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from cxrviewer.core.display import render
from cxrviewer.core.types import Geometry, ImageHeader, LoadedImage, WindowPreset
from cxrviewer.render.export import RulerSpec, ViewState, map_point, orient, render_export
from cxrviewer.render.overlay_text import corner_text


def _img(rows=30, cols=40, geometry=None) -> LoadedImage:
    rng = np.random.default_rng(1)
    stored = rng.integers(0, 4096, size=(rows, cols)).astype(np.uint16)
    return LoadedImage(
        path="x.dcm", stored=stored, modality=stored.astype(np.float32), photometric="MONOCHROME2",
        is_color=False, bits_stored=12, geometry=geometry,
        header=ImageHeader(patient_name="Doe^Jane", patient_id="P1", modality="CR", study_date="20240101"),
        auto_preset=WindowPreset("Auto", 2048, 4096, "LINEAR", "auto"),
    )


@pytest.mark.parametrize("rot,fh,fv", list(itertools.product(range(4), (False, True), (False, True))))
def test_map_point_follows_orient(rot, fh, fv):
    v = ViewState(rot, fh, fv)
    a = np.zeros((30, 40), np.uint8)
    r, c = 7, 29
    a[r, c] = 255
    o = orient(a, v)
    x, y = map_point(c + 0.5, r + 0.5, 30, 40, v)
    rr, cc = np.argwhere(o == 255)[0]
    assert (cc + 0.5, rr + 0.5) == pytest.approx((x, y))


def test_plain_native_is_render_exactly():
    img = _img()
    p = WindowPreset("W", 1000, 1500, "LINEAR", "user")
    out = render_export(img, p)
    assert out.dtype == np.uint8 and out.shape == (30, 40)
    assert np.array_equal(out, render(img, p))


def test_layer_composites_only_where_alpha():
    img = _img()
    layer = np.zeros((30, 40, 4), np.float32)
    layer[5:10, 5:10] = (1.0, 0.0, 0.0, 1.0)
    out = render_export(img, None, layers=[layer])
    base = render(img, None)
    assert out.shape == (30, 40, 3)
    assert (out[5:10, 5:10] == (255, 0, 0)).all()
    mask = np.ones((30, 40), bool)
    mask[5:10, 5:10] = False
    assert np.array_equal(out[mask][:, 1], base[mask])
    with pytest.raises(ValueError, match="original geometry"):
        render_export(img, None, layers=[np.zeros((3, 3, 4))])


def test_screen_size_export_squares_the_pixels():
    img = _img(40, 40, Geometry(0.4, 0.2, "PixelSpacing", "mm"))
    out = render_export(img, None, native=False, max_size=200)
    # rows are 0.4 mm, columns 0.2 mm: the picture is twice as high as wide
    assert out.shape[0] == 2 * out.shape[1] and max(out.shape) <= 200


def test_text_and_rulers_are_burned_in_and_anonymize_drops_phi():
    img = _img(200, 200)
    text = corner_text(img, center=2048, width=4096, anonymize=True)
    assert not any("Doe" in s or "P1" in s for s in text.strings())
    named = corner_text(img, center=2048, width=4096)
    assert any("Doe" in s for s in named.strings()) and any("P1" in s for s in named.strings())
    plain = render_export(img, None)
    out = render_export(img, None, text=text, rulers=[RulerSpec((20, 100), (180, 100), "32.0 mm")])
    changed = np.any(out != np.repeat(plain[..., None], 3, axis=2), axis=2)
    assert changed[100, 60:140].all()  # the ruler line
    assert changed[:40, :].any() and changed[-40:, :].any()  # corner text top and bottom
