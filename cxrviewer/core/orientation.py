"""Orientation markers: which patient direction each edge of the displayed image faces.

Pure functions (no Qt, no pydicom objects). The letters follow PS3.3 C.7.6.1.1.1:
A (anterior) / P (posterior), R (right) / L (left), H (head) / F (foot).

* Patient Orientation (0020,0020) gives two values: the patient direction of the rows (the
  way the column index grows, i.e. towards the image's right edge) and of the columns
  (towards the bottom edge). A PA chest is typically ``L\\F``.
* Image Orientation (Patient) (0020,0037) gives the same two directions as direction cosines
  in the patient coordinate system (+x = L, +y = P, +z = H, PS3.3 C.7.6.2.1.1); they are
  turned into letters here (:func:`letters_from_cosines`).

When the header says neither, there are no letters: nothing is ever invented.

The reader's view is a rotation by quarter turns clockwise and then horizontal / vertical
flips in screen axes (:class:`cxrviewer.render.export.ViewState`); :func:`edge_letters` says
which letters end up at the top, right, bottom and left edge midpoints.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_OPPOSITE = {"A": "P", "P": "A", "R": "L", "L": "R", "H": "F", "F": "H"}
#: A direction cosine below this (about 78 degrees off the axis) adds no letter.
OBLIQUE_MIN = 0.25

EDGES = ("top", "right", "bottom", "left")


def opposite(direction: str) -> str:
    """``"LF"`` -> ``"RH"``: the opposite of each letter."""
    return "".join(_OPPOSITE[c] for c in direction)


def parse_patient_orientation(value: str | Sequence[str] | None) -> tuple[str, str] | None:
    """Patient Orientation (``"L\\F"`` or ``["L", "F"]``) -> ``("L", "F")``; ``None`` when
    absent or not two valid direction strings (letters A P R L H F, each axis at most once)."""
    if value is None:
        return None
    parts = value.split("\\") if isinstance(value, str) else [str(v) for v in value]
    parts = [p.strip().upper() for p in parts]
    if len(parts) != 2 or not all(parts):
        return None
    for p in parts:
        if any(c not in _OPPOSITE for c in p) or len(set(p)) != len(p):
            return None
        axes = [{"A": 0, "P": 0, "R": 1, "L": 1, "H": 2, "F": 2}[c] for c in p]
        if len(set(axes)) != len(axes):
            return None
    return parts[0], parts[1]


def letters_from_cosines(v: Sequence[float]) -> str:
    """A direction (patient coordinates: +x L, +y P, +z H) -> letters, strongest first,
    e.g. ``(0.9, 0, -0.3)`` -> ``"LF"``; components under :data:`OBLIQUE_MIN` are dropped."""
    a = np.asarray(v, dtype=float)
    order = np.argsort(-np.abs(a), kind="stable")
    out = ""
    for i in order:
        if abs(a[i]) < OBLIQUE_MIN:
            continue
        out += ("L", "P", "H")[i] if a[i] > 0 else ("R", "A", "F")[i]
    return out


def directions_from_header(
    patient_orientation: str | Sequence[str] | None, image_orientation: Sequence[float] | None
) -> tuple[str, str] | None:
    """``(row direction, column direction)`` from Patient Orientation, else from Image
    Orientation (Patient); ``None`` when neither gives a usable answer."""
    po = parse_patient_orientation(patient_orientation)
    if po is not None:
        return po
    if image_orientation is None:
        return None
    try:
        iop = [float(x) for x in image_orientation]
    except (TypeError, ValueError):
        return None
    if len(iop) != 6 or not all(np.isfinite(iop)):
        return None
    row, col = letters_from_cosines(iop[:3]), letters_from_cosines(iop[3:])
    if not row or not col:
        return None
    return row, col


def _view_matrix(rotation: int, flip_h: bool, flip_v: bool) -> np.ndarray:
    """Image vectors (x right, y down) -> screen vectors, as the canvas draws them."""
    rot = np.array([[0, -1], [1, 0]])  # a clockwise quarter turn with y down: +x -> +y
    m = np.linalg.matrix_power(rot, rotation % 4)
    if flip_h:
        m = np.diag([-1, 1]) @ m
    if flip_v:
        m = np.diag([1, -1]) @ m
    return m


def edge_letters(
    directions: tuple[str, str] | None, rotation: int = 0, flip_h: bool = False, flip_v: bool = False
) -> dict[str, str]:
    """Letters at the edge midpoints of the displayed image.

    Parameters
    ----------
    directions
        ``(row direction, column direction)`` from :func:`directions_from_header`; ``None``
        gives ``{}`` (no letters).
    rotation, flip_h, flip_v
        The view: clockwise quarter turns, then flips in screen axes.

    Returns
    -------
    ``{"top": ..., "right": ..., "bottom": ..., "left": ...}``, or ``{}``.
    """
    if directions is None:
        return {}
    row, col = directions
    # Image-axis unit vectors and the letters they point to.
    by_vector = {(1, 0): row, (-1, 0): opposite(row), (0, 1): col, (0, -1): opposite(col)}
    m = _view_matrix(rotation, flip_h, flip_v)
    inv = m.T  # orthogonal
    screen = {"right": (1, 0), "left": (-1, 0), "bottom": (0, 1), "top": (0, -1)}
    out = {}
    for edge in EDGES:
        v = inv @ np.array(screen[edge])
        out[edge] = by_vector[(int(v[0]), int(v[1]))]
    return out


def laterality(image_laterality: str, series_laterality: str) -> str:
    """Image Laterality (0020,0062), else Laterality (0020,0060): ``"R"``, ``"L"`` or ``"B"``
    (both); ``""`` when neither says, or says ``"U"`` (an unpaired part: no side to show)."""
    for v in (image_laterality, series_laterality):
        v = (v or "").strip().upper()
        if v in ("R", "L", "B"):
            return v
    return ""
