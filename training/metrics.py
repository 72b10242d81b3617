"""Binary classification metrics with bootstrap intervals (numpy only).

Positive class = Abnormal (label 1); ``scores`` are P(Abnormal). A metric whose
denominator is zero is ``nan`` (reported as "n/a"), never a silent 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

METRIC_NAMES = ("accuracy", "precision", "recall", "specificity", "npv", "f1", "auc")
#: what the report calls each metric (the seed's medical names alongside)
METRIC_TITLES = {
    "accuracy": "Accuracy",
    "precision": "Precision / PPV",
    "recall": "Recall / sensitivity",
    "specificity": "Specificity",
    "npv": "NPV",
    "f1": "F1",
    "auc": "AUC-ROC",
}


def _div(a: float, b: float) -> float:
    return float(a) / float(b) if b else float("nan")


def confusion(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, int]:
    """TP/FP/TN/FN with "Abnormal" predicted when ``score >= threshold``."""
    y = np.asarray(labels).astype(bool)
    p = np.asarray(scores) >= threshold
    return {"tp": int(np.sum(p & y)), "fp": int(np.sum(p & ~y)),
            "tn": int(np.sum(~p & ~y)), "fn": int(np.sum(~p & y))}


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann–Whitney U, ties count one half)."""
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    ss = s[order]
    # average ranks of tied groups
    starts = np.r_[0, np.flatnonzero(np.diff(ss)) + 1]
    ends = np.r_[starts[1:], len(ss)]
    avg = (starts + ends + 1) / 2.0  # 1-based average rank
    ranks[order] = np.repeat(avg, ends - starts)
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)``; thresholds descending, first one ``+inf`` (nothing positive)."""
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-s, kind="mergesort")
    ss, yy = s[order], y[order]
    distinct = np.r_[np.flatnonzero(np.diff(ss)), len(ss) - 1]
    tps = np.cumsum(yy)[distinct]
    fps = (1 + distinct) - tps
    tpr = np.r_[0.0, tps / max(1, y.sum())]
    fpr = np.r_[0.0, fps / max(1, (~y).sum())]
    thr = np.r_[np.inf, ss[distinct]]
    return fpr, tpr, thr


def youden_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The threshold that maximises sensitivity + specificity - 1 (ties: the higher one)."""
    fpr, tpr, thr = roc_curve(labels, scores)
    j = tpr - fpr
    i = int(np.argmax(j[1:]) + 1)  # skip +inf
    return float(thr[i])


def sensitivity_threshold(labels: np.ndarray, scores: np.ndarray, target: float) -> float:
    """The highest threshold whose sensitivity is at least ``target`` (best specificity)."""
    if not 0 < target <= 1:
        raise ValueError("--target-sensitivity must be in (0, 1]")
    fpr, tpr, thr = roc_curve(labels, scores)
    ok = np.flatnonzero(tpr >= target - 1e-12)
    return float(thr[ok[0]])


def compute(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """All :data:`METRIC_NAMES` at ``threshold``."""
    c = confusion(labels, scores, threshold)
    tp, fp, tn, fn = c["tp"], c["fp"], c["tn"], c["fn"]
    prec, rec = _div(tp, tp + fp), _div(tp, tp + fn)
    f1 = _div(2 * tp, 2 * tp + fp + fn)
    return {
        "accuracy": _div(tp + tn, tp + tn + fp + fn),
        "precision": prec,
        "recall": rec,
        "specificity": _div(tn, tn + fp),
        "npv": _div(tn, tn + fn),
        "f1": f1,
        "auc": roc_auc(labels, scores),
    }


def _auc_many(y: np.ndarray, s: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """AUC of many bootstrap resamples at once (rows of ``idx``), ties as one half."""
    yy = y[idx]
    ss = s[idx]
    order = np.argsort(ss, axis=1, kind="mergesort")
    ss_sorted = np.take_along_axis(ss, order, axis=1)
    yy_sorted = np.take_along_axis(yy, order, axis=1)
    n = ss.shape[1]
    out = np.empty(idx.shape[0])
    base = np.arange(1, n + 1, dtype=np.float64)
    for r in range(idx.shape[0]):  # tie-averaged ranks need the group structure per row
        row = ss_sorted[r]
        starts = np.r_[0, np.flatnonzero(np.diff(row)) + 1]
        if len(starts) == n:
            ranks = base
        else:
            ends = np.r_[starts[1:], n]
            ranks = np.repeat((starts + ends + 1) / 2.0, ends - starts)
        pos = yy_sorted[r]
        n1 = pos.sum()
        n0 = n - n1
        out[r] = (ranks[pos].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0) if n1 and n0 else np.nan
    return out


def bootstrap(labels: np.ndarray, scores: np.ndarray, threshold: float, n: int = 1000,
              seed: int = 0, alpha: float = 0.05) -> dict[str, dict]:
    """Point value and percentile ``1-alpha`` bootstrap interval of every metric.

    Resamples images with replacement (``n`` times, seeded). A resample lacking one class
    contributes ``nan`` to the metrics it cannot define; those are left out of the interval.
    """
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    point = compute(y, s, threshold)
    out: dict[str, dict] = {k: {"value": point[k], "ci95": [float("nan"), float("nan")]} for k in METRIC_NAMES}
    if n <= 0 or len(y) < 2:
        return out
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y), size=(n, len(y)))
    yy, pp = y[idx], s[idx] >= threshold
    tp = np.sum(pp & yy, 1).astype(float)
    fp = np.sum(pp & ~yy, 1).astype(float)
    tn = np.sum(~pp & ~yy, 1).astype(float)
    fn = np.sum(~pp & yy, 1).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = {
            "accuracy": (tp + tn) / (tp + tn + fp + fn),
            "precision": tp / (tp + fp),
            "recall": tp / (tp + fn),
            "specificity": tn / (tn + fp),
            "npv": tn / (tn + fn),
            "f1": 2 * tp / (2 * tp + fp + fn),
            "auc": _auc_many(y, s, idx),
        }
    for k, v in boot.items():
        v = v[np.isfinite(v)]
        if len(v):
            lo, hi = np.quantile(v, [alpha / 2, 1 - alpha / 2])
            out[k]["ci95"] = [float(lo), float(hi)]
    return out


def fmt(v: float, digits: int = 3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def fmt_ci(m: dict, digits: int = 3) -> str:
    lo, hi = m.get("ci95", [float("nan")] * 2)
    return f"{fmt(m['value'], digits)} [{fmt(lo, digits)}, {fmt(hi, digits)}]"


def jsonable(x):
    """nan -> None recursively (JSON has no NaN)."""
    if isinstance(x, float):
        return None if math.isnan(x) or math.isinf(x) else x
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return jsonable(x.item())
    return x


def summarize_folds(values: Sequence[float]) -> dict[str, float]:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if not len(v):
        return {"mean": float("nan"), "sd": float("nan"), "n": 0}
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": int(len(v))}
