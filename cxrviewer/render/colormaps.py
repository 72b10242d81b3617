"""Heatmap colours without Qt: colormap tables, the threshold rule, CAM -> index image.

The canvas (:mod:`cxrviewer.ui.ai.heatmap`) and every export (through
:func:`cxrviewer.render.compose.compose_export`: File -> Export, ``cxrviewer export --heatmap``,
selftest) use these same functions, so an export shows exactly what the canvas shows. No Qt, no torch, no matplotlib: the perceptually uniform maps are matplotlib's
viridis/inferno/magma tables (as pyqtgraph ships them), stored here as 256 RGB bytes each.
"""

from __future__ import annotations

import base64
from functools import lru_cache

import numpy as np

#: colormaps offered in the UI; jet is the seed's, the others are perceptually uniform
COLORMAPS: tuple[str, ...] = ("jet", "viridis", "inferno", "magma")
DEFAULT_COLORMAP = "jet"
DEFAULT_OPACITY = 0.45
DEFAULT_THRESHOLD = 0.2

# matplotlib's "jet" segment data (x, value) per channel: the seed's look, without matplotlib.
_JET = {
    "r": ((0.0, 0.0), (0.35, 0.0), (0.66, 1.0), (0.89, 1.0), (1.0, 0.5)),
    "g": ((0.0, 0.0), (0.125, 0.0), (0.375, 1.0), (0.64, 1.0), (0.91, 0.0), (1.0, 0.0)),
    "b": ((0.0, 0.5), (0.11, 1.0), (0.34, 1.0), (0.65, 0.0), (1.0, 0.0)),
}

# 256 x RGB uint8, base64 (matplotlib's tables; identical to pyqtgraph.colormap.get(name))
_TABLES = {
    "viridis": (
        "RAFURAJWRQRXRQVZRgdaRghcRgpdRgteRw1gRw5hRxBjRxFkRxNlSBRnSBZoSBdpSBhqSBpsSBttSBxuSB1vSB9w"
        "SCBxSCFzSCN0SCR1SCV2SCZ3SCh4SCl5Ryp6Ryx6Ry17Ry58Ry99RjB+RjJ+RjN/RjSARTWBRTeBRTiCRDmDRDqD"
        "RDuEQz2EQz6FQj+FQkCGQkGGQUKHQUSHQEWIQEaIP0eIP0iJPkmJPkqJPkyKPU2KPU6KPE+KPFCLO1GLO1KLOlOL"
        "OlSMOVWMOVaMOFiMOFmMN1qMN1uNNlyNNl2NNV6NNV+NNGCNNGGNM2KNM2ONMmSOMmWOMWaOMWeOMWiOMGmOMGqO"
        "L2uOL2yOLm2OLm6OLm+OLXCOLXGOLHGOLHKOLHOOK3SOK3WOKnaOKneOKniOKXmOKXqOKXuOKHyOKH2OJ36OJ3+O"
        "J4COJoGOJoKOJoKOJYOOJYSOJYWOJIaOJIeOI4iOI4mOI4qNIouNIoyNIo2NIY6NIY+NIZCNIZGMIJKMIJKMIJOM"
        "H5SMH5WLH5aLH5eLH5iLH5mKH5qKHpuKHpyJHp2JH56JH5+IH6CIH6GIH6GHH6KHIKOGIKSGIaWFIaaFIqeFIqiE"
        "I6mDJKqDJauCJayCJq2BJ62BKK6AKa9/KrB/LLF+LbJ9LrN8L7R8MbV7MrZ6NLZ5Nbd5N7h4OLl3Orp2O7t1Pbx0"
        "P7xzQL1yQr5xRL9wRsBvSMFuSsFtTMJsTsNrUMRqUsVpVMVoVsZnWMdlWshkXMhjXsliYMpgY8tfZcteZ8xcac1b"
        "bM1abs5YcM9Xc9BWddBUd9FTetFRfNJQf9NOgdNNhNRLhtVJidVIi9ZGjtZFkNdDk9dBldhAmNg+m9k8ndk7oNo5"
        "oto3pds2qNs0qtwyrdwwsN0vst0ttd4ruN4put4ovd8mwN8lwt8jxeAhyOAgyuEfzeEd0OEc0uIb1eIa2OIZ2uMZ"
        "3eMY3+MY4uQY5eQZ5+QZ6uUa7OUb7+Uc8eUd9OYe9uYg+OYh++cj/ecl"
    ),
    "inferno": (
        "AAAEAQAFAQEGAQEIAgEKAgIMAgIOAwIQBAMSBAMUBQQXBgQZBwUbCAUdCQYfCgciCwckDAgmDQgpDgkrEAktEQow"
        "EgoyFAs0FQs3Fgs5GAw8GQw+GwxBHAxDHgxFHwxIIQxKIwxMJAxPJgxRKAtTKQtVKwtXLQtZLwpbMQpcMgpeNApf"
        "NglhOAliOQljOwlkPQllPglmQApnQgpoRApoRQppRwtqSQtqSgxrTAxrTQ1sTw1sUQ5sUg5tVA9tVQ9tVxBuWRBu"
        "WhFuXBJuXRJuXxNuYRNuYhRuZBVuZRVuZxZuaRZuahdubBhubRhubxlucRluchpudBpudRtudxxteBxteh1tfB1t"
        "fR5tfx5sgB9sgiBshCBrhSFrhyFriCJqiiJqjCNpjSNpjyRpkCVokiVokyZnlSZnlydmmCdmmihlmylknSlknypj"
        "oCpjoitioyxhpSxgpi1gqC5fqS5eqy9erTBdrjBcsDFbsTJaszJatDNZtjRYtzVXuTVWujZVvDdUvThTvzlSwDpR"
        "wTpQwztPxDxOxj1Nxz5MyD9LykBKy0FJzEJIzkNHz0RG0EVF0kZE00dD1EhC1UpB10s/2Ew+2U092k4821A73VE6"
        "3lI431M34FU24VY14lc041kz5Fox5Vww5l0v514u6GAt6WEr6mMq62Qp62Yo7Gcm7Wkl7mok72wj724h8G8g8XEf"
        "8XMd8nQc83Yb83gZ9HkY9XsX9X0V9n4U9oAT94IS94QQ+IUP+IcO+IkM+YsL+YwK+Y4J+pAI+pIH+pQH+5YG+5cG"
        "+5kG+5sG+50H/J8H/KEI/KMJ/KUK/KYM/KgN/KoP/KwR/K4S/LAU/LIW/LQY+7Ya+7gd+7of+7wh+74j+sAm+sIo"
        "+sQq+sYt+ccv+cky+cs1+M03+M8699E999NA9tVD9tdG9dlJ9dtM9N1P9N9T9OFW8+Na8+Vd8uZh8uhl8upp8ext"
        "8e1x8e918fF58vJ98vSC8/WG8/aK9PiO9fmS9vqW+Pua+fyd+v2h/P+k"
    ),
    "magma": (
        "AAAEAQAFAQEGAQEIAgEJAgILAgINAwMPAwMSBAQUBQQWBgUYBgUaBwYcCAceCQcgCggiCwkkDAkmDQopDgsrEAst"
        "EQwvEg0xEw00FA42FQ44Fg87GA89GRA/GhBCHBBEHRFHHhFJIBFLIRFOIhFQJBJTJRJVJxJYKRFaKhFcLBFfLRFh"
        "LxFjMRFlMxBnNBBpNhBrOBBsOQ9uOw9wPQ9xPw9yQA90Qg91RA92RRB3RxB4SRB4ShB5TBF6ThF7TxJ7URJ8UhN8"
        "VBN9VhR9VxV+WRV+WhZ+XBZ/XRd/Xxh/YBiAYhmAZBqAZRqAZxuAaByBahyBax2BbR2Bbh6BcB+Bch+BcyCBdSGB"
        "diGBeCKBeSKCeyOCfCOCfiSCgCWCgSWBgyaBhCaBhieBiCeBiSiBiymBjCmBjiqBkCqBkSuBkyuAlCyAliyAmC2A"
        "mS2Amy5/nC5/ni9/oC9/oTB+ozB+pTF+pjF9qDJ9qjN9qzN8rTR8rjR7sDV7sjV7szZ6tTZ6tzd5uDd5ujh4vDl4"
        "vTl3vzp3wDp2wjt1xDx1xTx0xz1zyD5zyj5yzD9xzUBxz0Bw0EFv0kJv00Nu1URt1kVs2EVs2UZr20dq3Ehp3klo"
        "30po4Exn4k1m405l5E9k5VBk51Jj6FNi6VRi6lZh61dg7Fhg7Vpf7lte711e8F9e8WBd8mJd8mRc82Vc9Gdc9Glc"
        "9Wtc9mxc9m5c93Bc93Jc+HRc+HZc+Xhd+Xld+Xtd+n1e+n9e+oFf+4Nf+4Vg+4dh/Ilh/Ipi/Ixj/I5k/JBl/ZJm"
        "/ZRn/ZZo/Zhp/Zpq/Ztr/p1s/p9t/qFu/qNv/qVx/qdy/qlz/qp0/qx2/q53/rB4/rJ6/rR7/rZ8/rd+/rl//ruB"
        "/r2C/r+E/sGF/sKH/sSI/saK/siM/sqN/syP/s2Q/s+S/tGU/tOV/tWX/teZ/tia/dqc/dye/d6g/eCh/eKj/eOl"
        "/eWn/eep/emq/eus/Oyu/O6w/PCy/PK0/PS2/Pa4/Pe5/Pm7/Pu9/P2/"
    ),
}


@lru_cache(maxsize=8)
def _table(name: str) -> bytes:
    if name == "jet":
        x = np.linspace(0.0, 1.0, 256)
        chans = [np.interp(x, [p[0] for p in _JET[c]], [p[1] for p in _JET[c]]) for c in "rgb"]
        return np.round(np.stack(chans, axis=1) * 255.0).astype(np.uint8).tobytes()
    return base64.b64decode(_TABLES[name])


def colormap_rgb(name: str) -> np.ndarray:
    """The colormap as a ``(256, 3)`` uint8 table, RGB order (never OpenCV's BGR)."""
    if name not in COLORMAPS:
        raise ValueError(f"unknown colormap {name!r}; choose one of {', '.join(COLORMAPS)}")
    return np.frombuffer(_table(name), dtype=np.uint8).reshape(256, 3).copy()


def threshold_index(threshold: float) -> int:
    """Smallest CAM index (0-255) shown for ``threshold`` in ``[0, 1]``: a pixel is coloured
    exactly when ``cam_u8 >= threshold_index(threshold)``."""
    t = min(max(float(threshold), 0.0), 1.0)
    return int(np.ceil(t * 255.0 - 1e-9))


def heat_lut(name: str, threshold: float) -> np.ndarray:
    """``(256, 4)`` uint8 RGBA table: the colormap, fully transparent below the threshold."""
    alpha = np.full((256, 1), 255, dtype=np.uint8)
    alpha[: threshold_index(threshold)] = 0
    return np.ascontiguousarray(np.concatenate([colormap_rgb(name), alpha], axis=1))


def cam_to_index(cam: np.ndarray | None) -> np.ndarray | None:
    """Float CAM in ``[0, 1]`` -> ``uint8`` index image ``round(cam * 255)``.

    The AI worker does this (the one per-pixel pass over a possibly 2000x2000 map), so the GUI
    thread only swaps 256-entry tables afterwards.
    """
    if cam is None:
        return None
    c = np.nan_to_num(np.asarray(cam, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    c = c * np.float32(255.0) + np.float32(0.5)
    np.clip(c, 0.0, 255.0, out=c)
    return c.astype(np.uint8)  # truncation after +0.5 == round half up


def heat_rgba(
    cam_u8: np.ndarray,
    colormap: str = DEFAULT_COLORMAP,
    threshold: float = DEFAULT_THRESHOLD,
    opacity: float = DEFAULT_OPACITY,
) -> np.ndarray:
    """The heatmap as an export layer: float32 RGBA ``(rows, cols, 4)`` in ``[0, 1]``.

    Alpha is ``opacity`` where ``cam_u8 >= threshold_index(threshold)`` and 0 elsewhere, so
    :func:`cxrviewer.render.export.render_export` (which alpha-composites layers) changes exactly
    the pixels the canvas colours.
    """
    lut = heat_lut(colormap, threshold).astype(np.float32) / np.float32(255.0)
    lut[:, 3] *= np.float32(min(max(float(opacity), 0.0), 1.0))
    return lut[np.asarray(cam_u8, dtype=np.uint8)]


def prediction_text(pred, forced: bool = False) -> list[str]:
    """Lines describing a prediction, shown in the corner text and burned into exports.

    An image the out-of-distribution gate refused (``pred.gate``, :mod:`cxrviewer.ml.ood`) gets
    "not scored" and its reason unless ``forced`` (the reader chose *Score anyway*); then, and
    for a gate caution, the score carries the caution line wherever it is shown.
    """
    gate = getattr(pred, "gate", None)
    refused = gate is not None and not gate.ok
    if refused and not forced:
        return [
            "AI: not scored - out of distribution",
            f"{gate.reason}",
            f"{pred.model_name} {pred.model_version}",
        ]
    lines = [
        f"AI: P(Abnormal) {float(pred.probability_abnormal):.2f} -> {pred.label} "
        f"(threshold {float(pred.threshold):.2f})",
        f"{pred.model_name} {pred.model_version}",
        "Research model - not a diagnosis",
    ]
    if refused:
        lines.insert(1, f"CAUTION: scored anyway, out of distribution: {gate.reason}")
    elif gate is not None and gate.caution:
        lines.insert(1, f"Caution: {gate.caution}")
    return lines
