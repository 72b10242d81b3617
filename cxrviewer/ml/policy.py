"""Never oversold: whether a model's number may be shown with a verdict (Qt-free).

A verdict (Normal/Abnormal, a finding called present, red) is shown only when a validation
on *this* site's patients stands behind it: a local validation recorded by
``cxrviewer evaluate --record`` or, for a model trained here, its held-out test split, with an
AUC whose 95 % interval has its lower end at or above :data:`MIN_AUC_LOWER`. Published
figures alone never suffice: they were measured on other patients and machines. Otherwise
the number is a *research score*: shown in a neutral colour with no verdict word, and one
line saying why.

For a multi-finding model the rule applies per finding (:func:`verdict_policy` with
``finding``): a local record's ``per_finding`` entry for it, never the overall one.

The AI panel, the worklist and the exports call :func:`verdict_policy`; it reads only the
card (with the user-data records merged: :func:`cxrviewer.ml.validation.card_with_validations`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: the lower end of the AUC's 95 % interval a validation must reach to earn a verdict
MIN_AUC_LOWER = 0.70

BASES = ("local", "training test split", "published", "none")


@dataclass(frozen=True)
class VerdictPolicy:
    """What may be shown for a model (or one of its findings).

    Attributes
    ----------
    verdict
        True: the label (Normal/Abnormal, finding present) may be shown. False: research score.
    reason
        One line, empty when ``verdict``: why it is a research score
        (``"not validated here: test AUC 0.59 [0.45–0.72]"``).
    basis
        Which validation stands behind the number: ``"local"``, ``"training test split"``,
        ``"published"`` or ``"none"``.
    basis_text
        That validation in words (``"local validation: AUC 0.88 [0.84–0.91], n=400, 2026-12-07"``).
    auc, auc_ci
        The figures the decision read (None when there are none).
    """

    verdict: bool
    reason: str
    basis: str
    basis_text: str
    auc: float | None = None
    auc_ci: tuple[float, float] | None = None


def _ci(v: Any) -> tuple[float, float] | None:
    if isinstance(v, (list, tuple)) and len(v) == 2:
        try:
            lo, hi = float(v[0]), float(v[1])
        except (TypeError, ValueError):
            return None
        if math.isfinite(lo) and math.isfinite(hi):
            return lo, hi
    return None


def _fmt(auc: float | None, ci: tuple[float, float] | None) -> str:
    s = f"AUC {auc:.2f}" if auc is not None else "AUC ?"
    return s + (f" [{ci[0]:.2f}–{ci[1]:.2f}]" if ci else " [no interval]")


def _local(card: Mapping[str, Any], finding: str | None) -> Mapping[str, Any] | None:
    """The newest local record for the model (``finding`` None) or for one finding."""
    recs = list(card.get("local_validations") or [])
    for r in reversed(recs):  # appended in time order: the newest counts
        if not isinstance(r, Mapping):
            continue
        if finding is None:
            if not r.get("finding"):
                return r
        else:
            if r.get("finding") == finding:
                return r
            per = r.get("per_finding")
            if isinstance(per, Mapping) and isinstance(per.get(finding), Mapping):
                return {**per[finding], "date": per[finding].get("date", r.get("date")),
                        "n": per[finding].get("n", r.get("n"))}
    return None


def verdict_policy(card: Mapping[str, Any], finding: str | None = None) -> VerdictPolicy:
    """Decide for ``card`` (a :class:`~cxrviewer.ml.card.ModelCard` or its dict), overall or
    for one ``finding`` of a multi-finding model."""
    rec = _local(card, finding)
    if rec is not None:
        auc = rec.get("auc")
        auc = float(auc) if isinstance(auc, (int, float)) and math.isfinite(float(auc)) else None
        ci = _ci(rec.get("auc_ci"))
        text = f"local validation: {_fmt(auc, ci)}, n={rec.get('n', '?')}, {rec.get('date', '?')}"
        if ci is not None and ci[0] >= MIN_AUC_LOWER:
            return VerdictPolicy(True, "", "local", text, auc, ci)
        return VerdictPolicy(False, f"not validated here: local {_fmt(auc, ci)}", "local", text, auc, ci)
    if finding is None:
        metrics = card.get("metrics") if isinstance(card.get("metrics"), Mapping) else {}
        m = metrics.get("auc") if isinstance(metrics, Mapping) else None
        if isinstance(m, Mapping) and m.get("value") is not None and (m.get("split") or "test") == "test":
            auc = float(m["value"])
            ci = _ci(m.get("ci95"))
            text = f"training test split: {_fmt(auc, ci)}"
            if ci is not None and ci[0] >= MIN_AUC_LOWER:
                return VerdictPolicy(True, "", "training test split", text, auc, ci)
            return VerdictPolicy(False, f"not validated here: test {_fmt(auc, ci)}", "training test split",
                                 text, auc, ci)
    if card.get("published"):
        return VerdictPolicy(False, "published figures only: validate on your cases", "published",
                             "published figures (other patients and machines), not verified here")
    return VerdictPolicy(False, "no validation: validate on your cases", "none", "no validation stated")


__all__ = ["BASES", "MIN_AUC_LOWER", "VerdictPolicy", "verdict_policy"]
