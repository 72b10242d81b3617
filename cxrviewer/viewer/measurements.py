"""Measurement kinds, each declared once: its name, tool key and points, how its value is
computed, and what it puts into a DICOM object (the SR's TID 1500 content and the GSPS
graphics, both built from :class:`cxrviewer.dicom.common.Measurement`). Qt-free.

The ruler is an entry like the others (``ruler``: a length), with no special case anywhere: its
value, the text shown beside it (and listed in the Measurements panel), its SR/GSPS content all
come from here. How a kind is *drawn* on the canvas stays with the widgets
(:mod:`cxrviewer.ui.reading.measure_tools`, which draws every kind, the ruler included); adding a
kind means an entry here (compute, text, report) and its drawing there, nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cxrviewer.core import measure as M
from cxrviewer.core.geometry import length as geometry_length

_log = logging.getLogger(__name__)

Point = tuple[float, float]


def _spacing(img) -> tuple[float, float] | None:
    g = getattr(img, "geometry", None)
    return (g.row_spacing_mm, g.col_spacing_mm) if g is not None else None


def _basis(img) -> str:
    g = getattr(img, "geometry", None)
    return g.basis if g is not None else ""


def _units(img) -> str:
    u = getattr(img, "units", "") or ""
    return u if u.upper() != "US" else ""


def _length(pts: Sequence[Point], img) -> tuple[float, str]:
    sp = _spacing(img)
    return M.length(pts[0], pts[1], sp), ("mm" if sp is not None else "px")


def _angle(pts, img) -> tuple[float, str]:
    a, v, b = pts[:3]
    return M.angle_deg(v, a, b, _spacing(img)), "deg"


def _cobb(pts, img) -> tuple[float, str]:
    return M.cobb_angle_deg((pts[0], pts[1]), (pts[2], pts[3]), _spacing(img)), "deg"


def _ctr(pts, img) -> tuple[float, str]:  # the thorax line first, then the heart
    return M.cardiothoracic_ratio((pts[2], pts[3]), (pts[0], pts[1]), _spacing(img)), ""


def roi_stats(kind: str, pts, img) -> M.RoiStats | None:
    """Statistics of the modality values inside an ellipse/rectangle (``None`` on colour)."""
    if img is None or getattr(img, "is_color", False):
        return None
    values = img.modality if img.modality is not None else img.stored
    return M.stats_of(M.roi_values(values, kind, pts[0], pts[1]), _spacing(img))


def _roi_area(kind: str) -> Callable:
    def compute(pts, img) -> tuple[float, str]:
        st = roi_stats(kind, pts, img)
        if st is None:
            return float("nan"), ""
        return (st.area_mm2, "mm2") if st.area_mm2 is not None else (float(st.area_px), "px2")
    return compute


# ------------------------------------------------------------------ text
def _length_text(pts, img) -> str:
    """``"12.3 mm"``, ``"12.3 mm (detector)"``...: the unit names the calibration basis; ``px``
    without a pixel size (never a calibration the header lacks)."""
    v, unit = geometry_length(getattr(img, "geometry", None), pts[0], pts[1])
    return f"{v:.1f} {unit}"


def _angle_text(pts, img) -> str:
    return f"{_angle(pts, img)[0]:.1f}°"


def _cobb_text(pts, img) -> str:
    return f"Cobb {_cobb(pts, img)[0]:.1f}°"


def _ctr_text(pts, img) -> str:
    g, sp = getattr(img, "geometry", None), _spacing(img)
    unit = g.label if g is not None else "px"
    thorax, heart = M.length(pts[0], pts[1], sp), M.length(pts[2], pts[3], sp)
    return f"CTR {_ctr(pts, img)[0]:.2f} (heart {heart:.1f} / thorax {thorax:.1f} {unit})"


def _roi_text(kind: str) -> Callable:
    def text(pts, img) -> str:
        st = roi_stats(kind, pts, img)
        if st is None:
            return "statistics need a grayscale image"
        g = getattr(img, "geometry", None)
        area = (f"{st.area_mm2:.1f} {g.label.replace('mm', 'mm²', 1)}" if st.area_mm2 is not None and g is not None
                else f"{st.area_px:.0f} px²")
        if st.n == 0:
            return f"no pixel centre inside · {area}"
        u = f" {_units(img)}" if _units(img) else ""
        return f"mean {st.mean:.1f}{u} · SD {st.sd:.1f} · min {st.min:g} · max {st.max:g} · {area}"
    return text


# ------------------------------------------------------------------ DICOM content
def _dcm(kind, points, values, label, img):
    from cxrviewer.dicom.common import Measurement as DicomMeasurement

    return [DicomMeasurement(kind, tuple(points), tuple(values), label, _basis(img))]


def _report_length(pts, img, label):
    from cxrviewer.dicom.build import length_measurement

    return [length_measurement(img, pts[0], pts[1])]


def _report_value(dicom_kind: str, name: str, compute: Callable, n: int) -> Callable:
    def report(pts, img, label):
        value, unit = compute(pts, img)
        return _dcm(dicom_kind, pts[:n], ((name, value, unit),), label, img)
    return report


def _report_roi(kind: str) -> Callable:
    def report(pts, img, label):
        st = roi_stats(kind, pts, img)
        outline = (M.ellipse_outline if kind == "ellipse" else M.rect_outline)(pts[0], pts[1])
        vals = [("Area", st.area_mm2, "mm2") if st is not None and st.area_mm2 is not None
                else ("Area", float(st.area_px) if st is not None else 0.0, "px2")]
        if st is not None and st.n > 0:
            u = _units(img)
            vals = [("Mean", st.mean, u), ("Standard Deviation", st.sd, u), ("Minimum", st.min, u),
                    ("Maximum", st.max, u), *vals]
        return _dcm("roi", outline, vals, label, img)
    return report


def _nothing(pts, img, label):
    return []  # an arrow or a text label has no value; the capture shows it


@dataclass(frozen=True)
class Kind:
    """One measurement kind.

    Attributes
    ----------
    key
        Its id (the tool name and :attr:`cxrviewer.viewer.Measurement.kind`).
    name
        What menus and the Measurements panel call it.
    shortcut
        The tool's key.
    points
        How many points a finished one has.
    compute
        ``compute(points, img) -> (value, unit)`` (``None`` for kinds without a value).
    report
        ``report(points, img, label) -> [cxrviewer.dicom.common.Measurement]``: its content in
        an SR (TID 1500) and a GSPS (graphics); empty for kinds without a value.
    text
        ``text(points, img) -> str``: what is shown beside it and listed in the Measurements
        panel (the model's :attr:`cxrviewer.viewer.Measurement.label`); ``None`` for kinds whose
        label is the reader's own text (arrow, text label).
    """

    key: str
    name: str
    shortcut: str
    points: int
    compute: Callable[[Sequence[Point], Any], tuple[float, str]] | None
    report: Callable[[Sequence[Point], Any, str], list]
    text: Callable[[Sequence[Point], Any], str] | None = None


REGISTRY: dict[str, Kind] = {k.key: k for k in (
    Kind("ruler", "Length", "D", 2, _length, _report_length, _length_text),
    Kind("angle", "Angle", "G", 3, _angle, _report_value("angle", "Angle", _angle, 3), _angle_text),
    Kind("cobb", "Cobb Angle", "C", 4, _cobb, _report_value("cobb", "Cobb Angle", _cobb, 4), _cobb_text),
    Kind("ctr", "Cardiothoracic Ratio", "X", 4, _ctr, _report_value("ctr", "Cardiothoracic Ratio", _ctr, 4),
         _ctr_text),
    Kind("ellipse", "Ellipse ROI", "E", 2, _roi_area("ellipse"), _report_roi("ellipse"), _roi_text("ellipse")),
    Kind("rect", "Rectangle ROI", "Q", 2, _roi_area("rect"), _report_roi("rect"), _roi_text("rect")),
    Kind("arrow", "Arrow", "Shift+A", 2, None, _nothing),
    Kind("text", "Text Label", "Shift+T", 1, None, _nothing),
)}


def kind(key: str) -> Kind:
    try:
        return REGISTRY[key]
    except KeyError:
        raise ValueError(f"unknown measurement kind {key!r}: one of {', '.join(REGISTRY)}") from None


def compute(m, img) -> tuple[float | None, str]:
    """``(value, unit)`` of a :class:`cxrviewer.viewer.Measurement` on ``img``."""
    k = kind(m.kind)
    if k.compute is None:
        return None, ""
    return k.compute(tuple(m.points), img)


def text(m, img) -> str:
    """What a :class:`cxrviewer.viewer.Measurement` shows beside it on ``img``: the kind's text
    (a length with its basis, an angle, ROI statistics...), else its own label (arrow, text)."""
    k = kind(m.kind)
    if k.text is None:
        return m.label
    return k.text(tuple(m.points), img)


def own_text(m) -> str:
    """The reader's own text of ``m`` (an arrow's, a text label's: what is kept and restored);
    "" for kinds whose label the registry computes from the points."""
    return m.label if kind(m.kind).text is None else ""


def finished(m) -> bool:
    """Whether ``m`` is a known kind with all its points (a half-drawn shape is not)."""
    return m.kind in REGISTRY and len(m.points) >= REGISTRY[m.kind].points


def to_dicom(img, measurements) -> list:
    """The measurements (:class:`cxrviewer.viewer.Measurement`, any kind) as the DICOM
    objects' content, in order; a degenerate one (zero-length line) is left out with a log line."""
    out: list = []
    for m in measurements or []:
        try:
            k = kind(m.kind)
            if len(m.points) < k.points:
                continue  # not finished
            out += k.report(tuple((float(x), float(y)) for x, y in m.points), img, m.label)
        except (ValueError, TypeError, IndexError, ZeroDivisionError) as e:
            _log.warning("measurement %s left out of the DICOM object: %s", getattr(m, "kind", "?"), e)
    return out
