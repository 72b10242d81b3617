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


@pytest.fixture(scope="session")
def toy_model():
    """A tiny GAP + linear CNN trained for a few seconds on blob images (see _toy.py)."""
    from _toy import train_toy

    return train_toy()


@pytest.fixture(scope="session")
def rg1_input(rg1_unci):
    """The RG1 chest radiograph: (LoadedImage, model input (1,3,224,224) tensor, ResizeMapping)."""
    import torch

    from cxrviewer.core.dicom_io import load_image
    from cxrviewer.ml.preprocess import PreprocessSpec, preprocess

    img = load_image(rg1_unci)
    arr, mapping = preprocess(img, PreprocessSpec())
    return img, torch.from_numpy(arr)[None], mapping
