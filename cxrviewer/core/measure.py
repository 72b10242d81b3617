"""Measurement math (Qt-free): angles, Cobb angle, cardiothoracic ratio, ROI statistics.

Points are image coordinates (x = column, y = row, continuous: pixel ``(r, c)`` covers
``[c, c+1] x [r, r+1]``). Lengths and angles are computed in millimetres when the image has a
pixel spacing (``spacing = (row_mm, col_mm)``), so a non-square pixel does not skew an angle;
without one they are computed in pixels and say so (``"px"``), never claiming a calibration
the header lacks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Point = tuple[float, float]


def _phys(p: Point, spacing: tuple[float, float] | None) -> np.ndarray:
    if spacing is None:
        return np.array([p[0], p[1]], float)
    row_mm, col_mm = spacing
    return np.array([p[0] * col_mm, p[1] * row_mm], float)


def length(p0: Point, p1: Point, spacing: tuple[float, float] | None = None) -> float:
    """Distance between two points (mm with ``spacing``, else pixels)."""
    return float(np.linalg.norm(_phys(p1, spacing) - _phys(p0, spacing)))


def angle_deg(vertex: Point, a: Point, b: Point, spacing: tuple[float, float] | None = None) -> float:
    """The angle at ``vertex`` between the rays to ``a`` and ``b``, 0..180 degrees."""
    v = _phys(vertex, spacing)
    u, w = _phys(a, spacing) - v, _phys(b, spacing) - v
    nu, nw = np.linalg.norm(u), np.linalg.norm(w)
    if nu == 0 or nw == 0:
        return float("nan")
    # atan2 of cross and dot: accurate near 0 and 180 degrees, unlike acos
    return float(math.degrees(math.atan2(abs(u[0] * w[1] - u[1] * w[0]), float(u @ w))))


def cobb_angle_deg(line1: tuple[Point, Point], line2: tuple[Point, Point],
                   spacing: tuple[float, float] | None = None) -> float:
    """The Cobb angle between two lines (e.g. end plates): the angle between their directions,
    0..90 degrees (which end of a line was drawn first does not matter)."""
    d1 = _phys(line1[1], spacing) - _phys(line1[0], spacing)
    d2 = _phys(line2[1], spacing) - _phys(line2[0], spacing)
    if not np.linalg.norm(d1) or not np.linalg.norm(d2):
        return float("nan")
    a = math.degrees(math.atan2(abs(d1[0] * d2[1] - d1[1] * d2[0]), float(d1 @ d2)))
    return float(min(a, 180.0 - a))


def cardiothoracic_ratio(heart: tuple[Point, Point], thorax: tuple[Point, Point],
                         spacing: tuple[float, float] | None = None) -> float:
    """Maximal transverse heart width / maximal inner thoracic width (two horizontal spans)."""
    t = length(*thorax, spacing)
    return float("nan") if t == 0 else length(*heart, spacing) / t


def roi_mask(shape: tuple[int, int], kind: str, p0: Point, p1: Point) -> np.ndarray:
    """Pixels whose centres lie in the rectangle or the inscribed ellipse of the box ``p0``-``p1``.

    ``kind`` is ``"rect"`` or ``"ellipse"``; the box may be given by any two opposite corners.
    """
    rows, cols = shape
    x0, x1 = sorted((float(p0[0]), float(p1[0])))
    y0, y1 = sorted((float(p0[1]), float(p1[1])))
    yc, xc = np.mgrid[0:rows, 0:cols].astype(float) + 0.5
    if kind == "rect":
        return (xc >= x0) & (xc <= x1) & (yc >= y0) & (yc <= y1)
    if kind == "ellipse":
        a, b = (x1 - x0) / 2, (y1 - y0) / 2
        if a <= 0 or b <= 0:
            return np.zeros(shape, bool)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        return ((xc - cx) / a) ** 2 + ((yc - cy) / b) ** 2 <= 1.0
    raise ValueError(f"unknown ROI kind {kind!r}: 'rect' or 'ellipse'")


def roi_box(shape: tuple[int, int], p0: Point, p1: Point) -> tuple[slice, slice]:
    """The rows and columns whose pixel centres can be inside the box ``p0``-``p1``."""
    rows, cols = shape
    x0, x1 = sorted((float(p0[0]), float(p1[0])))
    y0, y1 = sorted((float(p0[1]), float(p1[1])))
    c0, c1 = max(0, math.floor(x0 - 0.5)), min(cols, math.ceil(x1 - 0.5) + 1)
    r0, r1 = max(0, math.floor(y0 - 0.5)), min(rows, math.ceil(y1 - 0.5) + 1)
    return slice(r0, max(r0, r1)), slice(c0, max(c0, c1))


def roi_values(values: np.ndarray, kind: str, p0: Point, p1: Point) -> np.ndarray:
    """``values`` under the ROI, computed in its bounding box only (a drag on a 2,500 x 2,048
    image must not build full-size masks): the same pixels as ``values[roi_mask(...)]``."""
    rs, cs = roi_box(values.shape[:2], p0, p1)
    sub = values[rs, cs]
    off = (cs.start, rs.start)
    q0 = (p0[0] - off[0], p0[1] - off[1])
    q1 = (p1[0] - off[0], p1[1] - off[1])
    return sub[roi_mask(sub.shape[:2], kind, q0, q1)]


@dataclass(frozen=True)
class RoiStats:
    """Statistics of the modality values in an ROI (SD is the population SD, ddof=0)."""

    n: int
    mean: float
    sd: float
    min: float
    max: float
    area_px: float
    area_mm2: float | None

    def text(self, units: str = "") -> str:
        u = f" {units}" if units else ""
        area = f"{self.area_mm2:.1f} mm²" if self.area_mm2 is not None else f"{self.area_px:.0f} px²"
        if self.n == 0:
            return f"empty ROI · {area}"
        return (f"mean {self.mean:.1f}{u} · SD {self.sd:.1f} · min {self.min:g} · max {self.max:g} · {area}")


def roi_stats(values: np.ndarray, mask: np.ndarray, spacing: tuple[float, float] | None = None) -> RoiStats:
    """Mean, SD, min, max of ``values[mask]`` and the area (pixel count, and mm² when calibrated)."""
    v = np.asarray(values, dtype=np.float64)[mask]
    return stats_of(v, spacing)


def stats_of(v: np.ndarray, spacing: tuple[float, float] | None = None) -> RoiStats:
    """Statistics of the values already picked by an ROI (:func:`roi_values`)."""
    v = np.asarray(v, dtype=np.float64).ravel()
    n = int(v.size)
    area_mm2 = None if spacing is None else n * float(spacing[0]) * float(spacing[1])
    if n == 0:
        nan = float("nan")
        return RoiStats(0, nan, nan, nan, nan, 0.0, area_mm2)
    return RoiStats(n, float(v.mean()), float(v.std()), float(v.min()), float(v.max()), float(n), area_mm2)


def ellipse_outline(p0: Point, p1: Point, n: int = 48) -> list[Point]:
    """Points around the ellipse inscribed in the box ``p0``-``p1`` (for drawing and export)."""
    cx, cy = (p0[0] + p1[0]) / 2, (p0[1] + p1[1]) / 2
    a, b = abs(p1[0] - p0[0]) / 2, abs(p1[1] - p0[1]) / 2
    t = np.linspace(0, 2 * np.pi, n + 1)
    return [(float(cx + a * np.cos(u)), float(cy + b * np.sin(u))) for u in t]


def rect_outline(p0: Point, p1: Point) -> list[Point]:
    (x0, y0), (x1, y1) = p0, p1
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]


def polyline_segments(points: Sequence[Point]) -> list[tuple[Point, Point]]:
    return [(points[i], points[i + 1]) for i in range(len(points) - 1)]
