"""Engine: ONNX Runtime agrees with torch; predictions, labels, classes, batches, caching."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from cxrviewer.core.errors import CxrError
from cxrviewer.ml.cam import pearson
from cxrviewer.ml.inference import Engine, Prediction, find_onnx


@pytest.fixture(scope="module")
def engines(resnet_dir):
    ort = Engine.load(resnet_dir, backend="onnxruntime", device="cpu")
    tch = Engine.load(resnet_dir, backend="torch", device="cpu")
    return ort, tch


def _images(rg1_unci):
    """The real radiograph plus two variants (flipped, cropped) so the check is not one sample."""
    from dataclasses import replace

    from cxrviewer.core.dicom_io import load_image

    img = load_image(rg1_unci)

    def variant(f):
        mod = None if img.modality is None else np.ascontiguousarray(f(img.modality))
        return replace(
            img, stored=np.ascontiguousarray(f(img.stored)), modality=mod, padding_mask=None
        )

    flipped = variant(lambda a: a[:, ::-1])
    cropped = variant(lambda a: a[200:1400, 300:1500])
    return [img, flipped, cropped]


def test_ort_agrees_with_torch(engines, rg1_unci):
    ort, tch = engines
    assert ort.backend == "onnxruntime" and tch.backend == "torch"
    assert ort.device == "cpu" and tch.device == "cpu"
    for img in _images(rg1_unci):
        a = ort.predict(img, cam=True)
        b = tch.predict(img, cam=True)
        assert np.max(np.abs(np.array(a.probabilities) - np.array(b.probabilities))) <= 1e-4
        assert a.cam_class == b.cam_class and a.label == b.label
        assert a.cam.shape == b.cam.shape == (img.rows, img.cols)
        assert b.cam.max() > 0
        assert pearson(a.cam, b.cam) >= 0.9999
    # explaining the other class agrees too
    other = 1 - a.cam_class
    a2 = ort.predict(img, cam=True, target_class=other)
    b2 = tch.predict(img, cam=True, target_class=other)
    assert a2.cam_class == b2.cam_class == other
    if b2.cam.max() > 0:
        assert pearson(a2.cam, b2.cam) >= 0.9999


def test_prediction_fields_and_threshold(engines, rg1_unci, resnet_dir, tmp_path):
    ort, _ = engines
    img = _images(rg1_unci)[0]
    p = ort.predict(img)
    assert isinstance(p, Prediction)
    assert abs(sum(p.probabilities) - 1.0) < 1e-6 and p.probability_abnormal == p.probabilities[1]
    assert (
        p.label == ("Abnormal" if p.probability_abnormal >= 0.5 else "Normal")
        and p.threshold == 0.5
    )
    assert p.cam.dtype == np.float32 and 0.0 <= p.cam.min() and p.cam.max() <= 1.0
    assert p.cam_class == 1  # the heatmap explains Abnormal whatever the label
    assert p.model_name == "test-resnet" and p.model_version == "1.0" and p.elapsed_ms > 0
    assert ort.predict(img, cam=False).cam is None
    # a card threshold on the other side of p flips the label (not the class explained)
    d = tmp_path / "thr"
    shutil.copytree(resnet_dir, d)
    card = json.loads((d / "card.json").read_text())
    card["threshold"] = (
        min(1.0, p.probability_abnormal + 0.01)
        if p.label == "Abnormal"
        else max(0.0, p.probability_abnormal - 0.01)
    )
    (d / "card.json").write_text(json.dumps(card))
    e2 = Engine.load(d, backend="onnxruntime", device="cpu")
    p2 = e2.predict(img)
    assert p2.label != p.label and p2.cam_class == p.cam_class == 1
    assert abs(p2.probability_abnormal - p.probability_abnormal) < 1e-6


def test_batch_equals_single(engines, rg1_unci):
    imgs = _images(rg1_unci)[1:]
    for eng in engines:
        batch = eng.predict_batch(imgs, cam=True)
        assert len(batch) == 2
        for img, b in zip(imgs, batch, strict=True):
            s = eng.predict(img, cam=True)
            assert abs(s.probability_abnormal - b.probability_abnormal) < 1e-4
            assert s.cam_class == b.cam_class and pearson(s.cam, b.cam) >= 0.9999
        assert eng.predict_batch([]) == []
        assert all(p.cam is None for p in eng.predict_batch(imgs[:2]))


def test_ort_path_does_not_import_torch(engines, resnet_dir, rg1_unci):
    ort, _ = engines
    assert find_onnx(resnet_dir, ort.card) is not None  # exported into the cache by the fixture
    code = (
        "import sys\n"
        "from cxrviewer.core.dicom_io import load_image\n"
        "from cxrviewer.ml.inference import Engine\n"
        f"e = Engine.load({str(resnet_dir)!r}, backend='auto', device='cpu')\n"
        f"p = e.predict(load_image({str(rg1_unci)!r}))\n"
        "print(e.backend, round(p.probability_abnormal, 6), 'torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    backend, prob, torch_loaded = out.stdout.split()
    assert backend == "onnxruntime" and torch_loaded == "False"
    assert (
        abs(float(prob) - ort.predict(_images(rg1_unci)[0], cam=False).probability_abnormal) < 1e-5
    )


def test_engine_load_errors(tmp_path, monkeypatch, resnet_dir):
    monkeypatch.setenv("CXRVIEWER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CXRVIEWER_RESOURCES", str(tmp_path / "res"))
    with pytest.raises(CxrError, match="no model installed"):
        Engine.load()
    with pytest.raises(ValueError, match="backend"):
        Engine.load(resnet_dir, backend="tensorrt")
    with pytest.raises(CxrError, match="not a model directory"):
        Engine.load(tmp_path / "nothing")
    # the registry's active model is the default
    from cxrviewer.ml.registry import Registry

    Registry().import_dir(resnet_dir, activate=True)
    e = Engine.load(backend="onnxruntime", device="cpu")
    assert e.name == "test-resnet" and e.model_dir.parent == tmp_path / "data" / "models"


def test_no_torch_and_no_onnx_is_a_clear_error(resnet_dir, tmp_path):
    # A viewer-only install (torch absent) with a model that was never exported.
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # import torch -> ImportError\n"
        "from cxrviewer.core.errors import CxrError\n"
        "from cxrviewer.ml.inference import Engine\n"
        "try:\n"
        f"    Engine.load({str(resnet_dir)!r})\n"
        "except CxrError as e:\n"
        "    print('ERR', e)\n"
    )
    env = dict(os.environ, CXRVIEWER_CACHE_DIR=str(tmp_path / "fresh-cache"))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert (
        out.stdout.startswith("ERR")
        and "no model.onnx" in out.stdout
        and "torch is not installed" in out.stdout
        and "pip install 'cxrviewer[train]'" in out.stdout
    )


def test_bf16_only_within_tolerance(resnet_dir):
    import cxrviewer.ml.inference as inf

    e = Engine.load(resnet_dir, backend="torch", device="cpu", bf16=True)
    diff = e._impl.bf16_max_prob_diff
    assert diff is not None and e._impl.bf16 == (diff <= inf.BF16_TOLERANCE)
    # a tolerance nothing meets: bf16 is refused (fp32 is used)
    assert e._impl._bf16_ok(tolerance=-1.0) is False


def test_cuda_torch_agrees_with_cpu(resnet_dir, engines, rg1_unci):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine (GPU path checked on a GPU runner)")
    gpu = Engine.load(resnet_dir, backend="torch", device="cuda")
    assert gpu.device == "cuda"
    img = _images(rg1_unci)[0]
    a, b = gpu.predict(img), engines[1].predict(img)
    # cuDNN/TF32 convolutions differ slightly from oneDNN fp32
    assert abs(a.probability_abnormal - b.probability_abnormal) <= 1e-3
    assert a.cam_class == b.cam_class and pearson(a.cam, b.cam) >= 0.999
    auto = Engine.load(resnet_dir, backend="auto", device="auto")
    assert auto.device == "cuda"  # ORT's CUDA provider, or torch on the GPU when ORT lacks it


def test_explain_general_path(engines, rg1_unci):
    ort, tch = engines
    img = _images(rg1_unci)[0]
    p = ort.predict(img)
    # plain Grad-CAM through hooks at layer4 = the engine's exact map
    m, c = ort.explain(img, method="gradcam")
    assert c == p.cam_class and m.shape == (img.rows, img.cols) and m.dtype == np.float32
    assert pearson(m, p.cam) >= 0.9999
    # Grad-CAM++ at layer3, the other class, through the torch engine
    m2, c2 = tch.explain(
        img, method="gradcam++", target_layer="layer3", target_class=1 - p.cam_class
    )
    assert (
        c2 == 1 - p.cam_class
        and m2.shape == (img.rows, img.cols)
        and 0 <= m2.min()
        and m2.max() <= 1
    )


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_calibration_temperature_applied(engines, resnet_dir, rg1_unci, tmp_path, backend):
    """p = softmax(logits / T) with T from card["calibration"]["temperature"], both backends."""
    base = engines[0] if backend == "onnxruntime" else engines[1]
    img = _images(rg1_unci)[0]
    p1 = base.predict(img, cam=False)
    assert base.temperature == 1.0 and p1.temperature == 1.0
    d = tmp_path / "cal"
    shutil.copytree(resnet_dir, d)
    card = json.loads((d / "card.json").read_text())
    card["calibration"] = {"temperature": 2.5, "ece_before": 0.2, "ece_after": 0.05, "n": 100}
    (d / "card.json").write_text(json.dumps(card))
    e = Engine.load(d, backend=backend, device="cpu")
    p = e.predict(img, cam=False)
    assert e.temperature == 2.5 and p.temperature == 2.5

    def logit(q: float) -> float:
        return float(np.log(q) - np.log1p(-q))

    # two classes: the calibrated log-odds are the raw log-odds divided by T
    assert abs(logit(p.probability_abnormal) - logit(p1.probability_abnormal) / 2.5) < 1e-4
    assert abs(p.probability_abnormal - 0.5) < abs(p1.probability_abnormal - 0.5) or abs(
        p1.probability_abnormal - 0.5
    ) < 1e-6
    # a nonsense temperature is ignored (T = 1), never a crash or NaN
    from cxrviewer.ml.inference import calibration_temperature

    for bad in (0, -1, "x", None, float("nan")):
        assert calibration_temperature({"calibration": {"temperature": bad}}) == 1.0
    assert calibration_temperature({}) == 1.0
