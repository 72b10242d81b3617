"""Fixtures for the ML tests: model directories made here (never resources/models)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def resnet_model():
    """A random-init ResNet-50 (seeded), head scaled down so probabilities are not saturated."""
    import torch

    from cxrviewer.ml.model import build_model, head_linear

    torch.manual_seed(0)
    m = build_model()
    with torch.no_grad():
        head_linear(m).weight.mul_(0.05)
    return m.eval()


@pytest.fixture(scope="session")
def resnet_dir(tmp_path_factory, resnet_model) -> Path:
    """``resnet_model`` saved as a float32 model directory."""
    from cxrviewer.ml.registry import save_model_dir

    d = tmp_path_factory.mktemp("models") / "test-resnet"
    save_model_dir(
        resnet_model,
        d,
        {"name": "test-resnet", "version": "1.0", "threshold": 0.5},
        dtype="float32",
    )
    return d
