"""Pixel facts shown to the reader, computed once: display aspect, lengths and positions in mm,
the window used when a file has none, DICOM dates and person names as text.

The canvas, the export renderer, the corner text, the DICOM writers and selftest all call these,
so a ruler, an exported image and the on-screen image cannot disagree.
"""

from __future__ import annotations

import math

from cxrviewer.core.types import Geometry, LoadedImage, WindowPreset


def display_aspect(g: Geometry | None, rotation: int = 0) -> tuple[float, float]:
    """``(sx, sy)``: how much to stretch columns and rows so display pixels are square in mm
    (non-square Pixel Spacing); ``(1, 1)`` when uncalibrated or square. ``rotation`` in quarter
    turns swaps the axes for a rotated view."""
    if g is None or not (g.row_spacing_mm > 0 and g.col_spacing_mm > 0):
        return 1.0, 1.0
    if math.isclose(g.row_spacing_mm, g.col_spacing_mm, rel_tol=1e-6):
        return 1.0, 1.0
    m = min(g.row_spacing_mm, g.col_spacing_mm)
    sx, sy = g.col_spacing_mm / m, g.row_spacing_mm / m
    return (sy, sx) if rotation % 2 else (sx, sy)


def length(g: Geometry | None, p0: tuple[float, float], p1: tuple[float, float]) -> tuple[float, str]:
    """Distance between two image points (x = column, y = row) and its unit label: mm with the
    calibration basis (``g.label``, e.g. ``"mm (detector)"``), or ``"px"`` without a pixel size
    (never a calibration the header lacks)."""
    dx, dy = p1[0] - p0[0], p1[1] - p0[1]
    if g is None:
        return math.hypot(dx, dy), "px"
    return math.hypot(dx * g.col_spacing_mm, dy * g.row_spacing_mm), g.label


def pixel_centre_mm(g: Geometry | None, row: int, col: int) -> tuple[float | None, float | None]:
    """The centre of pixel ``(row, col)`` in mm from the image's top-left corner (``None`` when
    uncalibrated)."""
    if g is None:
        return None, None
    return (col + 0.5) * g.col_spacing_mm, (row + 0.5) * g.row_spacing_mm


def fallback_window(img: LoadedImage) -> WindowPreset:
    """The window to show when the reader picked none: the file's own (first VOI), else the
    robust 0.5-99.5 percentile window of the non-padding pixels (never min/max)."""
    if img.default_preset is not None:
        return img.default_preset
    from cxrviewer.core.window import robust_window

    c, w = robust_window(img.modality if img.modality is not None else img.stored, img.padding_mask)
    return WindowPreset("Auto", c, w, "LINEAR", "auto")


def format_date(da: str) -> str:
    """DICOM DA ``YYYYMMDD`` -> ``YYYY-MM-DD``; anything else as it is (stripped)."""
    d = (da or "").strip()
    if len(d) == 8 and d.isdigit():
        return f"{d[:4]}-{d[4:6]}-{d[6:]}"
    return d


def format_person_name(pn: str) -> str:
    """DICOM PN ``Family^Given^Middle`` -> ``Family, Given Middle``; other forms with the
    carets as spaces."""
    parts = (pn or "").split("^")
    if len(parts) >= 2 and parts[0]:
        rest = " ".join(p for p in parts[1:] if p)
        return f"{parts[0]}, {rest}" if rest else parts[0]
    return (pn or "").replace("^", " ").strip()
