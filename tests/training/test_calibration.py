"""Temperature scaling: recovers a known temperature, lowers ECE on over-confident scores, keeps
the operating point, refuses data it cannot fit, and draws the reliability diagram."""

from __future__ import annotations

import numpy as np
import pytest

from training import calibration as K


def _overconfident(n: int, t_true: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from sigmoid(m / t_true): margins m are over-confident by t_true."""
    rng = np.random.default_rng(seed)
    m = rng.normal(0.0, 4.0, n)
    y = (rng.random(n) < K.sigmoid(m / t_true)).astype(np.int64)
    logits = np.stack([np.zeros(n), m], axis=1)  # softmax margin z1 - z0 = m
    return logits, y


def test_fit_recovers_the_temperature_and_lowers_ece():
    logits, y = _overconfident(20000, 2.5)
    t = K.fit_temperature(logits, y)
    assert t == pytest.approx(2.5, rel=0.08)
    cal = K.calibrate(logits, y)
    assert cal["temperature"] == pytest.approx(t)
    assert cal["n"] == 20000
    assert cal["ece_after"] < 0.5 * cal["ece_before"]
    assert cal["nll_after"] < cal["nll_before"]


def test_nll_is_minimal_at_the_fit():
    logits, y = _overconfident(3000, 0.6, seed=2)  # under-confident: T < 1
    t = K.fit_temperature(logits, y)
    m = K.margins(logits)
    assert t < 1.0
    assert K.nll(m, y, t) <= min(K.nll(m, y, t * 1.1), K.nll(m, y, t / 1.1))


def test_probabilities_are_softmax_over_scaled_logits():
    rng = np.random.default_rng(4)
    z = rng.normal(0, 3, (50, 2))
    t = 1.7
    e = np.exp(z / t)
    assert np.allclose(K.probabilities(z, t), e[:, 1] / e.sum(1))


def test_calibrated_threshold_keeps_the_same_cut():
    logits, _ = _overconfident(500, 2.0, seed=3)
    raw = K.probabilities(logits)
    for thr in (0.1, 0.37, 0.5, 0.83):
        thr_c = K.calibrated_threshold(thr, 2.0)
        assert np.array_equal(raw >= thr, K.probabilities(logits, 2.0) >= thr_c)


def test_ece_of_a_perfectly_calibrated_bin_is_zero_and_bins_add_up():
    p = np.array([0.25] * 4 + [0.75] * 4)
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    rel = K.reliability(p, y, bins=10)
    assert rel.count.sum() == 8 and rel.ece == pytest.approx(0.0)
    assert K.ece(np.array([0.9, 0.9]), np.array([0, 0])) == pytest.approx(0.9)


def test_one_class_or_empty_input_is_refused():
    with pytest.raises(ValueError, match="one class"):
        K.fit_temperature(np.zeros((4, 2)), np.ones(4))
    with pytest.raises(ValueError):
        K.fit_temperature(np.zeros((0, 2)), np.zeros(0))


def test_reliability_png(tmp_path):
    pytest.importorskip("matplotlib")
    logits, y = _overconfident(400, 2.0)
    out = K.plot_reliability(tmp_path / "rel.png", y, K.probabilities(logits), K.probabilities(logits, 2.0))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
