"""The pixel facts in cxrviewer.core.geometry, and that the canvas, export and corner text use them."""

from __future__ import annotations

import numpy as np
import pytest

from cxrviewer.core.geometry import (
    display_aspect,
    fallback_window,
    format_date,
    format_person_name,
    length,
    pixel_centre_mm,
)
from cxrviewer.core.types import Geometry, ImageHeader, LoadedImage, WindowPreset

G = Geometry(0.2, 0.1, "PixelSpacing", "mm")  # rows 0.2 mm apart, columns 0.1 mm


def test_display_aspect_squares_the_pixels_and_follows_rotation():
    assert display_aspect(G) == (1.0, 2.0)  # rows are twice as far apart: stretch y
    assert display_aspect(G, rotation=1) == (2.0, 1.0)
    assert display_aspect(Geometry(0.15, 0.15, "PixelSpacing", "mm")) == (1.0, 1.0)
    assert display_aspect(None) == (1.0, 1.0)
    assert display_aspect(Geometry(0.0, 0.1, "PixelSpacing", "mm")) == (1.0, 1.0)


def test_lengths_say_their_unit_and_never_invent_a_calibration():
    v, unit = length(G, (0, 0), (30, 40))  # 30 columns (3 mm), 40 rows (8 mm)
    assert unit == "mm" and v == pytest.approx(np.hypot(3.0, 8.0))
    assert length(None, (0, 0), (3, 4)) == (5.0, "px")
    assert pixel_centre_mm(G, 0, 0) == pytest.approx((0.05, 0.1))
    assert pixel_centre_mm(None, 3, 4) == (None, None)


def test_dates_and_person_names():
    assert format_date("20240131") == "2024-01-31"
    assert format_date(" 2024 ") == "2024"
    assert format_person_name("Doe^Jane^Q") == "Doe, Jane Q"
    assert format_person_name("Doe") == "Doe"
    assert format_person_name("^Jane") == "Jane"


def test_fallback_window_is_the_files_own_else_robust():
    rng = np.random.default_rng(0)
    a = rng.integers(100, 4000, (64, 64)).astype(np.uint16)
    a[0, 0] = 65000  # one hot pixel must not stretch the window (never min/max)
    img = LoadedImage(path="x", stored=a, modality=a.astype(np.float32), photometric="MONOCHROME2",
                      is_color=False, bits_stored=16, header=ImageHeader())
    w = fallback_window(img)
    assert w.name == "Auto" and w.center + w.width / 2 < 10000
    img.presets = [WindowPreset("Chest", 2000.0, 3000.0, "LINEAR", "header")]
    assert fallback_window(img) is img.presets[0]


def test_export_and_canvas_share_the_aspect():
    """The export renderer's non-native size is the core aspect (no second computation)."""
    from cxrviewer.render.export import render_export

    a = np.tile(np.arange(40, dtype=np.uint16), (20, 1))
    img = LoadedImage(path="x", stored=a, modality=a.astype(np.float32), photometric="MONOCHROME2",
                      is_color=False, bits_stored=16, header=ImageHeader(), geometry=G)
    out = render_export(img, None, native=False, max_size=1000)
    sx, sy = display_aspect(G)
    assert out.shape[:2] == (round(20 * sy), round(40 * sx))
