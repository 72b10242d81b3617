"""Metrics against values computed by hand."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from training import metrics as M

# 10 images: 4 abnormal. Threshold 0.5 -> predicted abnormal: 0.9, 0.8, 0.6 (abn), 0.7, 0.55 (normal)
Y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
S = np.array([0.9, 0.8, 0.6, 0.3, 0.7, 0.55, 0.4, 0.2, 0.1, 0.05])


def test_confusion_metrics_by_hand():
    c = M.confusion(Y, S, 0.5)
    assert c == {"tp": 3, "fp": 2, "tn": 4, "fn": 1}
    m = M.compute(Y, S, 0.5)
    assert m["accuracy"] == pytest.approx(7 / 10)
    assert m["precision"] == pytest.approx(3 / 5)
    assert m["recall"] == pytest.approx(3 / 4)
    assert m["specificity"] == pytest.approx(4 / 6)
    assert m["npv"] == pytest.approx(4 / 5)
    assert m["f1"] == pytest.approx(2 * 0.6 * 0.75 / (0.6 + 0.75))
    # AUC: pairs (abn, normal) with abn ranked higher: 0.9:6, 0.8:6, 0.6:5, 0.3:3 -> 20/24
    assert m["auc"] == pytest.approx(20 / 24)


def test_auc_ties_count_half_and_matches_brute_force():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    s = rng.integers(0, 5, 60) / 4.0  # many ties
    pos, neg = s[y == 1], s[y == 0]
    brute = np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(pos, neg)])
    assert M.roc_auc(y, s) == pytest.approx(brute)
    idx = rng.integers(0, 60, (5, 60))
    for r, row in zip(idx, M._auc_many(y.astype(bool), s, idx), strict=True):
        assert row == pytest.approx(M.roc_auc(y[r], s[r]), nan_ok=True)
    assert math.isnan(M.roc_auc(np.ones(4), np.arange(4)))


def test_zero_denominator_is_nan_not_zero():
    m = M.compute(np.array([0, 0, 1]), np.array([0.1, 0.2, 0.3]), 0.9)  # nothing predicted abnormal
    assert math.isnan(m["precision"]) and m["recall"] == 0.0 and m["specificity"] == 1.0


def test_thresholds():
    # Youden: at 0.6 sens 3/4, spec 5/6 -> J = 0.583 (best); at 0.3: sens 1, spec 3/6 -> 0.5
    assert M.youden_threshold(Y, S) == pytest.approx(0.6)
    assert M.sensitivity_threshold(Y, S, 1.0) == pytest.approx(0.3)
    assert M.sensitivity_threshold(Y, S, 0.5) == pytest.approx(0.8)
    fpr, tpr, thr = M.roc_curve(Y, S)
    assert fpr[0] == 0 and tpr[0] == 0 and fpr[-1] == 1 and tpr[-1] == 1 and np.isinf(thr[0])


def test_bootstrap_interval_brackets_value_and_is_seeded():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    s = np.clip(y * 0.3 + rng.normal(0.4, 0.2, 200), 0, 1)
    b = M.bootstrap(y, s, 0.55, n=400, seed=7)
    for k in M.METRIC_NAMES:
        lo, hi = b[k]["ci95"]
        assert lo <= b[k]["value"] <= hi, k
        assert hi - lo < 0.3
    assert M.bootstrap(y, s, 0.55, n=400, seed=7) == b
    assert M.jsonable({"a": float("nan")}) == {"a": None}
