"""The display pipeline: a :class:`LoadedImage` and a VOI choice -> 8-bit display pixels.

This is the one place where stored values become what the reader sees; the exporter, the
model's preprocessing and the tests all call :func:`render`. The canvas applies the same
window with ``setLevels`` for speed; :func:`levels_for_preset` gives it the matching levels.
"""

from __future__ import annotations

import numpy as np

from cxrviewer.core.types import LoadedImage, WindowPreset
from cxrviewer.core.window import (
    invert,
    linear_window_bounds,
    to_uint8,
    voi_lut_sequence,
    voi_window,
)

#: Chest presets in the image's own units, offered only when the image is calibrated in HU.
CHEST_PRESETS_HU = (
    WindowPreset("Lung", -600.0, 1500.0, "LINEAR", "builtin", "Lung: W 1500 / L -600 HU"),
    WindowPreset("Mediastinum", 50.0, 350.0, "LINEAR", "builtin", "Mediastinum: W 350 / L 50 HU"),
    WindowPreset("Bone", 400.0, 1800.0, "LINEAR", "builtin", "Bone: W 1800 / L 400 HU"),
)


def chest_presets(img: LoadedImage) -> list[WindowPreset]:
    """Chest presets expressed in the image's own units.

    In HU (CT-like calibration) they are the usual absolute windows. Projection radiographs
    have no absolute unit, so the presets are relative to the image's robust range
    (0.5–99.5 percentile): lung = the whole range, mediastinum = the upper (denser) part,
    bone = the densest part. Their explanations say which kind they are.
    """
    if img.is_color or img.modality is None:
        return []
    if img.units.upper() == "HU":
        return list(CHEST_PRESETS_HU)
    auto = img.auto_preset
    if auto is None:
        return []
    lo = auto.center - auto.width / 2.0
    w = auto.width
    # For MONOCHROME1, dense tissue has *low* stored values; mirror the fractions.
    def frac(a: float, b: float) -> tuple[float, float]:
        if img.invert:
            a, b = 1.0 - b, 1.0 - a
        return lo + a * w, lo + b * w

    out = []
    for name, (a, b), what in (
        ("Lung", (0.0, 1.0), "the full robust range"),
        ("Mediastinum", (0.45, 1.0), "the denser 55% of the range"),
        ("Bone", (0.7, 1.0), "the densest 30% of the range"),
    ):
        x0, x1 = frac(a, b)
        out.append(
            WindowPreset(name, (x0 + x1) / 2.0, max(x1 - x0, 1.0), "LINEAR", "builtin",
                         f"{name}: {what} (relative; a radiograph has no absolute units)")
        )
    return out


def apply_voi(img: LoadedImage, preset: WindowPreset | None) -> np.ndarray:
    """Modality values -> VOI output in ``[0, 1]`` (before any inversion)."""
    if preset is None:
        preset = img.default_preset
    assert img.modality is not None
    if preset is None:
        from cxrviewer.core.window import robust_window

        c, w = robust_window(img.modality, img.padding_mask)
        return voi_window(img.modality, c, w, "LINEAR")
    if preset.source == "voi_lut" and preset.lut_index is not None and preset.lut_index < len(img.voi_luts):
        lut = img.voi_luts[preset.lut_index]
        return voi_lut_sequence(img.modality, lut.descriptor, lut.data)
    return voi_window(img.modality, preset.center, preset.width, preset.function)


def render(img: LoadedImage, preset: WindowPreset | None = None, *, apply_invert: bool = True) -> np.ndarray:
    """8-bit display pixels: Modality LUT (already in ``img.modality``) -> VOI -> MONOCHROME1 /
    Presentation LUT inversion (after VOI, PS3.4 N.2.1) -> 8 bits.

    Colour images are returned as stored (RGB uint8). ``preset=None`` uses the file's window,
    else the robust default.
    """
    if img.is_color:
        return img.stored
    y = apply_voi(img, preset)
    if apply_invert and img.invert:
        y = invert(y)
    out = to_uint8(y)
    if img.padding_mask is not None:
        # Padding is background: black on screen, whatever the photometric interpretation.
        out[img.padding_mask] = 0
    return out


def levels_for_preset(img: LoadedImage, preset: WindowPreset) -> tuple[float, float]:
    """``(low, high)`` in *stored* units such that a linear ramp between them on the stored
    array equals the preset's LINEAR window on modality values.

    The canvas keeps the stored array (uint16) as its image and calls ``setLevels`` with
    these, so a W/L drag never re-renders the array. Rescale is linear, so the mapping is
    exact for LINEAR; for LINEAR_EXACT the bounds are ``c ± w/2``.
    """
    if preset.function == "LINEAR_EXACT":
        lo, hi = preset.center - preset.width / 2.0, preset.center + preset.width / 2.0
    else:
        lo, hi = linear_window_bounds(preset.center, preset.width)
    m, b = img.rescale_slope or 1.0, img.rescale_intercept
    slo, shi = (lo - b) / m, (hi - b) / m
    if shi < slo:
        slo, shi = shi, slo
    return slo, shi


def window_from_levels(img: LoadedImage, lo_stored: float, hi_stored: float) -> tuple[float, float]:
    """Inverse of :func:`levels_for_preset` for LINEAR: stored-unit levels -> (center, width)
    in modality units."""
    m, b = img.rescale_slope or 1.0, img.rescale_intercept
    lo, hi = lo_stored * m + b, hi_stored * m + b
    if hi < lo:
        lo, hi = hi, lo
    width = (hi - lo) + 1.0
    center = lo + 0.5 + (width - 1.0) / 2.0
    return center, width
