"""The bundled demo model (resources/models/), when one is committed: it verifies and predicts."""

from __future__ import annotations

import numpy as np
import pytest

from cxrviewer import paths


def _bundled():
    root = paths.resource("models")
    dirs = sorted(d for d in root.iterdir() if (d / "card.json").is_file()) if root.is_dir() else []
    if not dirs:
        pytest.skip(
            f"no bundled model under {root} yet (the demo model is trained and committed separately)"
        )
    return dirs


def test_bundled_models_verify_and_agree(rg1_unci):
    from cxrviewer.core.dicom_io import load_image
    from cxrviewer.ml.cam import pearson
    from cxrviewer.ml.inference import Engine
    from cxrviewer.ml.registry import load_model_dir

    img = load_image(rg1_unci)
    for d in _bundled():
        model, card = load_model_dir(d)  # checksum, architecture, tensors
        assert card["architecture"] == "resnet50" and card["classes"] == ["Normal", "Abnormal"]
        assert 0.0 <= float(card["threshold"]) <= 1.0
        assert card.get("intended_use"), "the card must state its intended use / disclaimer"
        ort = Engine.load(d, backend="onnxruntime", device="cpu")
        tch = Engine.load(d, backend="torch", device="cpu")
        a, b = ort.predict(img), tch.predict(img)
        assert abs(a.probability_abnormal - b.probability_abnormal) <= 1e-4
        assert a.cam.shape == (img.rows, img.cols) and not np.isnan(a.cam).any()
        if b.cam.max() > 0:
            assert pearson(a.cam, b.cam) >= 0.9999
