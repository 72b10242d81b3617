"""Fixtures for the packaging tests: a random-init ResNet-50 model directory made here.

Never written to resources/models: the bundled demo model comes from training/demo/recipe.sh.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def random_model_dir(tmp_path_factory) -> Path:
    """A seeded random-init ResNet-50 saved with the registry's own writer (float16)."""
    torch = pytest.importorskip("torch", reason="torch is needed to make a model directory")

    from cxrviewer.ml.model import build_model, head_linear
    from cxrviewer.ml.registry import save_model_dir

    torch.manual_seed(0)
    m = build_model()
    with torch.no_grad():
        head_linear(m).weight.mul_(0.05)  # probabilities away from 0/1
    d = tmp_path_factory.mktemp("packaging-models") / "selftest-random"
    save_model_dir(m.eval(), d, {"name": "selftest-random", "version": "0.0.1", "threshold": 0.5})
    return d
