"""Temperature scaling for the two-class head (Guo et al., ICML 2017), its ECE and the
reliability diagram.

The model's probability of Abnormal is ``softmax(logits / T)[1] = sigmoid((z1 - z0) / T)``.
``T`` is fitted on the validation split by minimising the negative log-likelihood (a
one-dimensional, convex problem in ``1/T``: a bounded golden-section search on ``log T``).
``T > 1`` softens over-confident outputs. Scaling by a positive ``T`` keeps the order of the
scores, so AUC and the operating point chosen on validation are unchanged; the threshold in the
card is expressed on the calibrated scale (:func:`calibrated_threshold`).

ECE here is the binary expected calibration error of P(Abnormal): images are binned by their
predicted P(Abnormal) into ``bins`` equal-width bins, and ECE is the image-weighted mean of
``|observed Abnormal fraction - mean predicted P(Abnormal)|`` over the bins. The reliability
diagram plots those two per bin, before and after scaling.

numpy only (matplotlib for the plot).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

T_RANGE = (0.05, 20.0)


def margins(logits: np.ndarray) -> np.ndarray:
    """``z1 - z0`` of ``(N, 2)`` logits (float64); a 1-D input is taken as margins already."""
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim == 1:
        return z
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(f"logits must be (N, 2) or (N,), not {z.shape}")
    return z[:, 1] - z[:, 0]


def sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))))


def probabilities(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """P(Abnormal) ``= softmax(logits / T)[:, 1]``, float64."""
    return sigmoid(margins(logits) / float(temperature))


def nll(m: np.ndarray, y: np.ndarray, temperature: float) -> float:
    """Mean binary negative log-likelihood of labels ``y`` under ``sigmoid(m / T)``."""
    s = np.asarray(m, dtype=np.float64) / temperature
    yy = np.asarray(y, dtype=np.float64)
    # log(1 + exp(-s)) for y=1, log(1 + exp(s)) for y=0, computed stably
    return float(np.mean(np.logaddexp(0.0, -s) * yy + np.logaddexp(0.0, s) * (1.0 - yy)))


def fit_temperature(logits: np.ndarray, labels: np.ndarray, bounds: tuple[float, float] = T_RANGE,
                    iters: int = 80) -> float:
    """The ``T`` in ``bounds`` minimising the validation NLL (golden-section search on log T).

    Raises ``ValueError`` when there are no images or only one class (no information to fit).
    """
    m = margins(logits)
    y = np.asarray(labels).astype(np.int64)
    if len(m) == 0 or len(m) != len(y):
        raise ValueError(f"need matching non-empty logits and labels ({len(m)} vs {len(y)})")
    if len(np.unique(y)) < 2:
        raise ValueError("the calibration split holds one class only")
    lo, hi = math.log(bounds[0]), math.log(bounds[1])
    g = (math.sqrt(5) - 1) / 2
    a, b = lo, hi
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = nll(m, y, math.exp(c)), nll(m, y, math.exp(d))
    for _ in range(iters):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = nll(m, y, math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = nll(m, y, math.exp(d))
    return float(math.exp((a + b) / 2))


@dataclass(frozen=True)
class Reliability:
    """Per-bin facts of a reliability diagram (``bins`` equal-width bins over [0, 1])."""

    edges: np.ndarray
    count: np.ndarray
    mean_p: np.ndarray      # mean predicted P(Abnormal) per bin (nan when empty)
    frac_pos: np.ndarray    # observed fraction Abnormal per bin (nan when empty)

    @property
    def ece(self) -> float:
        n = self.count.sum()
        if n == 0:
            return float("nan")
        ok = self.count > 0
        return float(np.sum(self.count[ok] * np.abs(self.frac_pos[ok] - self.mean_p[ok])) / n)


def reliability(p: np.ndarray, y: np.ndarray, bins: int = 10) -> Reliability:
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    y = np.asarray(y, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1], right=False), 0, bins - 1)
    count = np.bincount(idx, minlength=bins).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(idx, weights=p, minlength=bins) / count
        frac = np.bincount(idx, weights=y, minlength=bins) / count
    return Reliability(edges, count, mean_p, frac)


def ece(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Binary expected calibration error of P(Abnormal) (see the module doc)."""
    return reliability(p, y, bins).ece


def calibrated_threshold(threshold: float, temperature: float) -> float:
    """The uncalibrated operating threshold expressed on the calibrated scale (same cut)."""
    t = min(max(float(threshold), 1e-12), 1 - 1e-12)
    return float(sigmoid(np.array([math.log(t / (1 - t)) / temperature]))[0])


def calibrate(val_logits: np.ndarray, val_labels: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Fit ``T`` on validation; the card's ``calibration`` entry (plus the fit's details).

    Returns ``{"temperature", "ece_before", "ece_after", "n", "bins", "method", "split",
    "nll_before", "nll_after"}``.
    """
    y = np.asarray(val_labels).astype(np.int64)
    t = fit_temperature(val_logits, y)
    m = margins(val_logits)
    return {
        "temperature": t,
        "ece_before": ece(sigmoid(m), y, bins),
        "ece_after": ece(sigmoid(m / t), y, bins),
        "n": int(len(y)),
        "bins": bins,
        "split": "val",
        "method": "temperature scaling, NLL on the validation split",
        "nll_before": nll(m, y, 1.0),
        "nll_after": nll(m, y, t),
    }


def plot_reliability(path: str | Path, y: np.ndarray, p_before: np.ndarray, p_after: np.ndarray,
                     bins: int = 10, title: str = "Reliability (validation)") -> Path:
    """Reliability diagram before/after scaling, written atomically as PNG."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cxrviewer import atomic

    fig, ax = plt.subplots(figsize=(4.6, 4.2), dpi=110)
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="perfect")
    for p, lab, c in ((p_before, "before", "tab:red"), (p_after, "after", "tab:blue")):
        r = reliability(p, y, bins)
        ok = r.count > 0
        ax.plot(r.mean_p[ok], r.frac_pos[ok], marker="o", c=c, label=f"{lab} (ECE {r.ece:.3f})")
    ax.set_xlabel("predicted P(Abnormal)")
    ax.set_ylabel("observed fraction Abnormal")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    path = Path(path)
    atomic.write_bytes(path, buf.getvalue())
    return path
