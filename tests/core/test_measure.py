"""Measurement math against numpy on synthetic geometry with known spacing (to 1e-6)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cxrviewer.core import measure as M


def test_lengths_in_mm_and_px():
    assert M.length((0, 0), (3, 4)) == pytest.approx(5.0, abs=1e-9)
    # x is the column (col spacing), y the row (row spacing)
    assert M.length((0, 0), (10, 0), (0.2, 0.5)) == pytest.approx(5.0, abs=1e-9)
    assert M.length((0, 0), (0, 10), (0.2, 0.5)) == pytest.approx(2.0, abs=1e-9)


def test_angles_use_physical_geometry():
    assert M.angle_deg((0, 0), (10, 0), (0, 10)) == pytest.approx(90.0, abs=1e-9)
    assert M.angle_deg((5, 5), (15, 5), (15, 15)) == pytest.approx(45.0, abs=1e-9)
    # non-square pixels: 10 columns x 0.1 mm = 1 mm, 10 rows x 0.1732.. mm -> 60 degrees in mm
    sp = (math.sqrt(3) / 10, 0.1)
    assert M.angle_deg((0, 0), (10, 0), (10, 10), sp) == pytest.approx(60.0, abs=1e-6)
    rng = np.random.default_rng(3)
    for _ in range(50):
        v, a, b = rng.uniform(-50, 50, (3, 2))
        s = rng.uniform(0.05, 0.5, 2)
        u = (a - v) * s[::-1]
        w = (b - v) * s[::-1]
        ref = math.degrees(math.acos(np.clip(u @ w / np.linalg.norm(u) / np.linalg.norm(w), -1, 1)))
        assert M.angle_deg(tuple(v), tuple(a), tuple(b), tuple(s)) == pytest.approx(ref, abs=1e-6)
    assert math.isnan(M.angle_deg((0, 0), (0, 0), (1, 1)))


def test_cobb_angle_is_between_line_directions():
    l1 = ((0, 0), (10, 0))
    t = math.radians(23.0)
    l2 = ((5, 5), (5 + 10 * math.cos(t), 5 + 10 * math.sin(t)))
    assert M.cobb_angle_deg(l1, l2) == pytest.approx(23.0, abs=1e-6)
    # drawing a line the other way round gives the same Cobb angle (never 157)
    assert M.cobb_angle_deg(l1, (l2[1], l2[0])) == pytest.approx(23.0, abs=1e-6)


def test_cardiothoracic_ratio():
    assert M.cardiothoracic_ratio(((40, 100), (100, 100)), ((10, 120), (130, 120)), (0.2, 0.2)) == pytest.approx(0.5)


@pytest.mark.parametrize("kind", ["rect", "ellipse"])
@pytest.mark.parametrize("spacing", [None, (0.2, 0.3)])
def test_roi_stats_equal_numpy_on_the_same_mask(kind, spacing):
    rng = np.random.default_rng(7)
    img = rng.normal(100.0, 25.0, (60, 80)).astype(np.float32)
    p0, p1 = (12.3, 40.7), (55.9, 8.2)  # any two opposite corners
    # the mask written independently: pixel centres (c + 0.5, r + 0.5) in the box / ellipse
    mask = np.zeros(img.shape, bool)
    x0, x1, y0, y1 = 12.3, 55.9, 8.2, 40.7
    for r in range(60):
        for c in range(80):
            x, y = c + 0.5, r + 0.5
            if kind == "rect":
                mask[r, c] = x0 <= x <= x1 and y0 <= y <= y1
            else:
                mask[r, c] = ((x - (x0 + x1) / 2) / ((x1 - x0) / 2)) ** 2 + ((y - (y0 + y1) / 2) / ((y1 - y0) / 2)) ** 2 <= 1
    got_mask = M.roi_mask(img.shape, kind, p0, p1)
    assert np.array_equal(got_mask, mask)
    st = M.roi_stats(img, got_mask, spacing)
    v = img[mask].astype(np.float64)
    assert st.n == v.size > 100
    for got, ref in ((st.mean, v.mean()), (st.sd, v.std()), (st.min, v.min()), (st.max, v.max())):
        assert got == pytest.approx(ref, abs=1e-6)
    if spacing is None:
        assert st.area_mm2 is None and st.area_px == v.size
    else:
        assert st.area_mm2 == pytest.approx(v.size * 0.2 * 0.3, abs=1e-6)


def test_empty_roi_and_bad_kind():
    st = M.roi_stats(np.ones((4, 4)), M.roi_mask((4, 4), "ellipse", (1, 1), (1, 3)))
    assert st.n == 0 and math.isnan(st.mean)
    with pytest.raises(ValueError):
        M.roi_mask((4, 4), "circle", (0, 0), (1, 1))


def test_bounding_box_values_equal_the_full_mask():
    rng = np.random.default_rng(11)
    img = rng.integers(0, 4096, (50, 70)).astype(np.float32)
    for _ in range(40):
        p0, p1 = tuple(rng.uniform(-5, 75, 2)), tuple(rng.uniform(-5, 55, 2))
        for kind in ("rect", "ellipse"):
            full = img[M.roi_mask(img.shape, kind, p0, p1)]
            assert np.array_equal(np.sort(M.roi_values(img, kind, p0, p1)), np.sort(full)), (kind, p0, p1)
