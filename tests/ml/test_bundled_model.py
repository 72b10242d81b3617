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


def test_bundled_card_is_consistent():
    """Structural facts of the card: calibration, localization and metrics agree with its own data
    description and with the files beside it (no metric value is hard-coded here)."""
    import json

    from cxrviewer.ml.registry import read_card, sha256_file

    for d in _bundled():
        card = read_card(d)
        size = card["preprocessing"]["size"]
        td = card["training_data"]
        assert td["image_size"] == size
        assert td["leak_check"].startswith("patients in more than one split: 0 ")
        auc = card["metrics"]["auc"]
        assert auc["split"] == "test" and auc["ci95"][0] <= auc["value"] <= auc["ci95"][1]
        cal = card.get("calibration")
        if cal is not None:
            assert cal["temperature"] > 0 and cal["n"] == td["splits"]["val"]["images"]
            assert 0.0 <= cal["ece_after"] <= 1.0 and 0.0 <= cal["ece_before"] <= 1.0
            assert cal.get("threshold_scale") == "calibrated"
        loc = card.get("localization")
        if loc is not None:
            assert loc["mass_n"] <= td["splits"][loc["split"]]["images"]
            assert 0.0 <= loc["outer_ring_mass_median"] <= 1.0
            if loc["pointing_n"]:
                assert loc["pointing_game"] == pytest.approx(loc["pointing_hits"] / loc["pointing_n"])
                assert 0.0 <= loc["centre_baseline"] <= 1.0
        ood = card.get("ood")
        if ood is not None:
            assert sha256_file(d / ood["file"]) == ood["sha256"]
        for key in ("onnx_file",):
            if card.get(key):
                assert (d / card[key]).is_file()
        # report.md shows the figures the card states
        report = (d / "report.md").read_text(encoding="utf-8")
        if cal is not None:
            assert f"T = {cal['temperature']:.3f}" in report
        json.dumps(card.to_dict())  # plain JSON (no NaN objects)


def test_bundled_models_ship_a_working_ood_gate(rg1_unci, tmp_path):
    """Every bundled model has its OOD statistics (ood.npz + card["ood"]): a CT is refused by
    the header rules, a face-like picture by the learned check, the RG1 chest CR passes both."""
    import cv2
    from pydicom.data import get_testdata_file

    from cxrviewer.bench.ood import _photo_like
    from cxrviewer.core.dicom_io import load_image
    from cxrviewer.ml.inference import Engine

    pics = _photo_like(tmp_path)
    rg1 = load_image(rg1_unci)
    ct = get_testdata_file("CT_small.dcm", download=False)
    for d in _bundled():
        e = Engine.load(d, backend="onnxruntime", device="cpu")
        assert e.gate is not None, f"{d}: no OOD statistics (cxrviewer models fit-ood)"
        assert e.card["ood"]["keep_rate_val"] >= 0.95 and e.card["ood"]["feature"] == "layer4_gap"
        p = e.predict(rg1, cam=False)
        assert p.scored and p.gate.distance <= p.gate.threshold, p.gate
        if ct:
            assert not e.predict(load_image(ct), cam=False).scored
        face = e.predict(load_image(pics[0]), cam=False)  # greyscale: passes the header rules
        assert not face.scored and face.gate.rule == "features", face.gate
        assert cv2.imread(pics[0]) is not None


def test_readme_states_the_bundled_models_test_auc():
    """The README's demo-model section quotes the card's test AUC with its interval (not a stale one)."""
    from pathlib import Path

    readme = Path(__file__).resolve().parents[2] / "README.md"
    if not readme.is_file():
        pytest.skip("no README.md beside the tests (an installed package)")
    from cxrviewer.ml.registry import read_card

    text = readme.read_text(encoding="utf-8")
    for d in _bundled():
        auc = read_card(d)["metrics"]["auc"]
        quoted = f"{auc['value']:.2f} [{auc['ci95'][0]:.2f}, {auc['ci95'][1]:.2f}]"
        assert quoted in text, f"README should quote {d.name}'s test AUC {quoted}"
