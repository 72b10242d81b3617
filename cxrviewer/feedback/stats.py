"""How well the model agrees with this site's readers (pure functions of the calls).

The reader's call is the reference: *sensitivity* is the share of the readers' Abnormal calls
the model also called Abnormal, *specificity* the share of their Normal calls it called Normal.
Each current call (latest per reader and image) counts once, so an image two readers called
counts twice, once against each. Calls made without a scored model output (no model on
screen, or an image the out-of-distribution gate refused) count in ``n`` but not in the
model figures, which are ``None`` when no call has one.

Intervals are 95 %: Wilson score intervals for proportions (Wilson 1927; good at small n
and near 0 or 1, unlike the Wald interval), and the large-sample standard error of Cohen's
kappa, ``sqrt(po (1 - po) / (n (1 - pe)^2))`` (Cohen 1960), for kappa.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from cxrviewer.feedback.store import Call

Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval of ``k`` successes in ``n`` trials (``None`` when n = 0)."""
    if n <= 0:
        return None
    p = k / n
    den = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def cohen_kappa(tp: int, fp: int, tn: int, fn: int) -> tuple[float | None, tuple[float, float] | None]:
    """Cohen's kappa of two raters on a 2x2 table, with its 95 % interval.

    ``None`` when undefined: no pairs, or both raters gave one same label to every image
    (chance agreement 1).
    """
    n = tp + fp + tn + fn
    if n == 0:
        return None, None
    po = (tp + tn) / n
    model_pos, reader_pos = (tp + fp) / n, (tp + fn) / n
    pe = model_pos * reader_pos + (1 - model_pos) * (1 - reader_pos)
    if pe >= 1.0:
        return None, None
    k = (po - pe) / (1 - pe)
    se = math.sqrt(po * (1 - po) / (n * (1 - pe) ** 2))
    return k, (max(-1.0, k - Z95 * se), min(1.0, k + Z95 * se))


def _ratio(k: int, n: int) -> float | None:
    return k / n if n else None


def agreement_stats(calls: Iterable[Call], model: str | None = None) -> dict[str, Any]:
    """The figures of ``cxrviewer feedback stats`` and of the model card's agreement line.

    Parameters
    ----------
    calls
        Current calls (:meth:`FeedbackStore.current`).
    model
        Only calls made with this model (by name) on screen.

    Returns
    -------
    dict
        ``n``, ``n_readers``, ``n_with_model``, ``agreement`` (+ ``agreement_ci``), ``kappa``
        (+ ``kappa_ci``), ``sensitivity``/``specificity`` (+ ``_ci``), the 2x2 table ``tp``,
        ``fp``, ``tn``, ``fn`` (positive = Abnormal, the reader as reference), ``readers``
        (calls per reader), ``models`` (calls per model name and version) and ``interval``.
    """
    calls = [c for c in calls if model is None or (c.model and c.model.name == model)]
    tp = fp = tn = fn = 0
    readers: dict[str, int] = {}
    models: dict[str, int] = {}
    for c in calls:
        readers[c.reader] = readers.get(c.reader, 0) + 1
        if c.model is None:
            continue
        tag = f"{c.model.name} {c.model.version}"
        models[tag] = models.get(tag, 0) + 1
        if not c.model.scored or c.model.label not in ("normal", "abnormal"):
            continue
        m_pos, r_pos = c.model.label == "abnormal", c.label == "abnormal"
        tp += m_pos and r_pos
        fp += m_pos and not r_pos
        tn += (not m_pos) and (not r_pos)
        fn += (not m_pos) and r_pos
    paired = tp + fp + tn + fn
    kappa, kappa_ci = cohen_kappa(tp, fp, tn, fn)
    return {
        "model": model,
        "n": len(calls),
        "n_readers": len(readers),
        "n_with_model": paired,
        "agreement": _ratio(tp + tn, paired),
        "agreement_ci": wilson(tp + tn, paired),
        "kappa": kappa,
        "kappa_ci": kappa_ci,
        "sensitivity": _ratio(tp, tp + fn),
        "sensitivity_ci": wilson(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "specificity_ci": wilson(tn, tn + fp),
        "tp": tp, "fp": fp, "tn": tn, "fn": fn,
        "readers": dict(sorted(readers.items())),
        "models": dict(sorted(models.items())),
        "interval": "95 % Wilson score (proportions); large-sample SE (kappa)",
    }


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.0f} %"


def _ci(ci: tuple[float, float] | None) -> str:
    return "" if ci is None else f" [{100 * ci[0]:.0f}–{100 * ci[1]:.0f}]"


def agreement_line(stats: dict[str, Any]) -> str:
    """One line for the model card dialog: "Agreement with this site's readers: ..."."""
    head = "Agreement with this site's readers"
    if not stats["n_with_model"]:
        return f"{head}: no reader calls with this model's output yet"
    kappa = "–" if stats["kappa"] is None else f"{stats['kappa']:.2f}"
    kci = "" if stats["kappa_ci"] is None else f" [{stats['kappa_ci'][0]:.2f}–{stats['kappa_ci'][1]:.2f}]"
    return (f"{head}: n {stats['n_with_model']} calls by {stats['n_readers']} reader"
            f"{'s' if stats['n_readers'] != 1 else ''}, kappa {kappa}{kci}, "
            f"sensitivity {_pct(stats['sensitivity'])}{_ci(stats['sensitivity_ci'])}, "
            f"specificity {_pct(stats['specificity'])}{_ci(stats['specificity_ci'])} (95 % intervals)")
