"""Pure numpy functions of the DICOM grayscale pipeline, each citing its section of the standard.

Order (PS3.4 N.2.1 / PS3.3 C.11): stored values -> Modality LUT -> VOI LUT (window or LUT)
-> MONOCHROME1 inversion (after VOI, never before) -> Presentation LUT Shape.

Every VOI function returns float32 in ``[0, 1]`` so that later steps (inversion, 8-bit
quantisation, colour maps) share one scale. None of them mutate their inputs or take a
pydicom ``Dataset``: callers pass numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "apply_rescale",
    "apply_lut",
    "voi_linear",
    "voi_linear_exact",
    "voi_sigmoid",
    "voi_window",
    "voi_lut_sequence",
    "invert",
    "to_uint8",
    "robust_window",
    "linear_window_bounds",
]


_F32_MAX = float(np.finfo(np.float32).max)


def _f32(v: float) -> np.float32:
    """A Python float as a *finite* float32: header values like 1e300 saturate, never inf.

    NaN (only from ``0 * inf`` when a subnormal width makes the slope infinite and the
    center is 0) maps to 0, the limit of ``c * a`` as ``c -> 0``.
    """
    v = float(v)
    if v != v:
        return np.float32(0.0)
    return np.float32(min(max(v, -_F32_MAX), _F32_MAX))


def _affine(x: np.ndarray, a: float, b: float) -> np.ndarray:
    """``a * x + b`` in float32 for finite ``x``, with ``a`` and ``b`` computed in float64 by
    the caller. Saturation to +-inf is allowed (the callers clip to [0, 1] or [-80, 80]
    next); NaN cannot arise because neither term is NaN and ``b`` is finite."""
    x = np.asarray(x, dtype=np.float32)
    with np.errstate(over="ignore"):
        out = x * _f32(a)
        out += _f32(b)
    return out


def apply_rescale(stored: np.ndarray, slope: float = 1.0, intercept: float = 0.0) -> np.ndarray:
    """Modality LUT by Rescale Slope and Intercept (PS3.3 C.11.1.1.2): ``m * SV + b``.

    Returns float32 (float64 is never needed for 16-bit radiographs and doubles memory).
    The result is always finite: hostile slopes saturate at the float32 range, and NaN or
    infinite stored values (float pixel data) become the range's ends or 0.
    """
    out = stored.astype(np.float32, copy=True)
    if out.dtype.kind == "f" and stored.dtype.kind == "f" and not np.isfinite(out).all():
        np.nan_to_num(out, copy=False, nan=0.0, posinf=_F32_MAX, neginf=-_F32_MAX)
    if slope == 1.0 and intercept == 0.0:
        return out
    if stored.dtype.kind in "iu":
        info = np.iinfo(stored.dtype)
        bound = abs(slope) * max(abs(int(info.min)), int(info.max)) + abs(intercept)
    else:
        bound = float("inf")
    with np.errstate(over="ignore"):
        if slope != 1.0:
            out *= _f32(slope)
        if intercept != 0.0:
            out += _f32(intercept)
    if bound >= _F32_MAX:
        np.clip(out, -_F32_MAX, _F32_MAX, out=out)  # inf -> the largest finite value
    return out


def apply_lut(values: np.ndarray, descriptor: Sequence[int], data: np.ndarray) -> np.ndarray:
    """Apply a Modality or VOI LUT given its LUT Descriptor (PS3.3 C.11.1.1.1 / C.11.2.1.1).

    ``descriptor`` is ``(number of entries, first input value mapped, bits per entry)``; a
    number of entries of 0 means 65536. Inputs below the first mapped value take the first
    entry; inputs above the last take the last entry.
    """
    n_entries, first, _bits = (int(descriptor[0]), int(descriptor[1]), int(descriptor[2]))
    if n_entries == 0:
        n_entries = 65536
    lut = np.asarray(data).reshape(-1)
    if lut.size == 0:
        raise ValueError("LUT Data is empty")
    if lut.size < n_entries:
        # Tolerate a short LUT by clamping to the entries present (a common writer bug).
        n_entries = lut.size
    idx = np.rint(values).astype(np.int64) - first
    np.clip(idx, 0, n_entries - 1, out=idx)
    return lut[:n_entries][idx].astype(np.float32)


def linear_window_bounds(center: float, width: float) -> tuple[float, float]:
    """The input values at which the LINEAR function reaches 0 and 1 (PS3.3 C.11.2.1.2.1)."""
    width = max(float(width), 1.0)
    lo = center - 0.5 - (width - 1.0) / 2.0
    hi = center - 0.5 + (width - 1.0) / 2.0
    return lo, hi


def voi_linear(x: np.ndarray, center: float, width: float) -> np.ndarray:
    """Window Center/Width with VOI LUT Function LINEAR (PS3.3 C.11.2.1.2.1).

    ``if x <= c - 0.5 - (w-1)/2: 0; elif x > c - 0.5 + (w-1)/2: 1;
    else ((x - (c - 0.5)) / (w - 1) + 0.5)``. Width must be >= 1; 1 is a hard threshold.
    Computed as one affine map whose coefficients are float64, so header values far outside
    the float32 range saturate instead of overflowing.
    """
    if not width >= 1:
        raise ValueError(f"Window Width {width} must be >= 1 for VOI LUT Function LINEAR")
    x = np.asarray(x, dtype=np.float32)
    if width == 1:
        # (w - 1) == 0: the function is a step at c - 0.5.
        return (x > _f32(center - 0.5)).astype(np.float32)
    a = 1.0 / (float(width) - 1.0)
    out = _affine(x, a, 0.5 - (float(center) - 0.5) * a)
    np.clip(out, 0.0, 1.0, out=out)
    return out


def voi_linear_exact(x: np.ndarray, center: float, width: float) -> np.ndarray:
    """VOI LUT Function LINEAR_EXACT (PS3.3 C.11.2.1.3.2): ``(x - c) / w + 0.5``, clipped.

    Width must be > 0.
    """
    if not width > 0:
        raise ValueError(f"Window Width {width} must be > 0 for VOI LUT Function LINEAR_EXACT")
    a = 1.0 / float(width)
    out = _affine(x, a, 0.5 - float(center) * a)
    np.clip(out, 0.0, 1.0, out=out)
    return out


def voi_sigmoid(x: np.ndarray, center: float, width: float) -> np.ndarray:
    """VOI LUT Function SIGMOID (PS3.3 C.11.2.1.3.1): ``1 / (1 + exp(-4 (x - c) / w))``."""
    if not width > 0:
        raise ValueError(f"Window Width {width} must be > 0 for VOI LUT Function SIGMOID")
    a = -4.0 / float(width)
    z = _affine(x, a, -float(center) * a)
    np.clip(z, -80.0, 80.0, out=z)  # exp overflow guard; 1/(1+e^80) is 0 in float32 anyway
    return (1.0 / (1.0 + np.exp(z))).astype(np.float32)


_VOI_FUNCTIONS = {
    "LINEAR": voi_linear,
    "LINEAR_EXACT": voi_linear_exact,
    "SIGMOID": voi_sigmoid,
}


def voi_window(x: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """Dispatch on the VOI LUT Function (0028,1056); an unknown value falls back to LINEAR,
    as the standard's default (PS3.3 C.11.2.1.3)."""
    fn = _VOI_FUNCTIONS.get((function or "LINEAR").strip().upper(), voi_linear)
    return fn(x, center, width)


def voi_lut_sequence(x: np.ndarray, descriptor: Sequence[int], data: np.ndarray) -> np.ndarray:
    """VOI LUT Sequence (PS3.3 C.11.2.1.1), output scaled to ``[0, 1]``.

    The output range is that of the LUT entries: ``2**bits - 1`` where bits is the
    descriptor's third value (clamped to 8..16 as the standard allows).
    """
    bits = int(descriptor[2])
    bits = min(max(bits, 8), 16)
    y = apply_lut(x, descriptor, data)
    top = float(2**bits - 1)
    # Some writers declare 16 bits but store 12-bit entries; scale by what is really used.
    data_max = float(np.max(data)) if np.size(data) else 0.0
    if data_max > top:
        top = data_max
    out = y / np.float32(top if top > 0 else 1.0)
    np.clip(out, 0.0, 1.0, out=out)
    return out


def invert(y01: np.ndarray) -> np.ndarray:
    """MONOCHROME1 / Presentation LUT Shape INVERSE on ``[0, 1]`` values (PS3.3 C.7.6.3.1.2,
    C.11.6.1): the minimum value is displayed white."""
    return (np.float32(1.0) - y01).astype(np.float32, copy=False)


def to_uint8(y01: np.ndarray) -> np.ndarray:
    """Quantise ``[0, 1]`` to 8 bits, rounding half up (the same rule everywhere)."""
    return np.floor(np.asarray(y01, dtype=np.float32) * np.float32(255.0) + np.float32(0.5)).astype(
        np.uint8
    )


def robust_window(
    values: np.ndarray,
    mask: np.ndarray | None = None,
    low_pct: float = 0.5,
    high_pct: float = 99.5,
    max_samples: int = 1 << 20,
) -> tuple[float, float]:
    """A default window from the 0.5–99.5 percentiles of the non-padding values.

    Never plain min/max (a single hot pixel or the padding border would wash the image out).
    Subsamples large images with a fixed stride, so the result is deterministic.

    Returns
    -------
    (center, width) with width >= 1.
    """
    v = np.asarray(values)
    if mask is not None:
        v = v[~mask]
    else:
        v = v.reshape(-1)
    if v.size == 0:
        return 0.5, 1.0
    if v.size > max_samples:
        step = int(math.ceil(v.size / max_samples))
        v = v[::step]
    v = v[np.isfinite(v)] if v.dtype.kind == "f" else v
    if v.size == 0:
        return 0.5, 1.0
    lo, hi = np.percentile(v, [low_pct, high_pct])
    lo, hi = float(lo), float(hi)
    if hi <= lo:
        hi = lo + 1.0
    width = max(hi - lo, 1.0)
    return lo + width / 2.0, width
