"""Every model folder carries model.onnx, recorded in card.json and verified on load.

The file holds the graph only; its weights are external data pointing into model.safetensors
(float16 with a Cast to float32), so the bundled model adds ~100 KB, not ~94 MB.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from cxrviewer import paths
from cxrviewer.core.errors import CxrError
from cxrviewer.ml.onnx_model import (
    ONNX_FILE,
    card_onnx,
    safetensors_layout,
)
from cxrviewer.ml.registry import read_card, sha256_file


def _bundled():
    d = paths.resource("models", "cxr-resnet50-demo")
    if not (d / "card.json").is_file():
        pytest.skip("the bundled demo model is not in this checkout")
    return d


def test_the_bundled_model_ships_a_small_verified_onnx_pointing_into_its_weights():
    onnx = pytest.importorskip("onnx", reason="onnx is in the train/dev extra")
    d = _bundled()
    card = read_card(d)
    p = card_onnx(d, card)
    # after replacing the bundled weights: `cxrviewer models onnx resources/models/cxr-resnet50-demo`
    assert p == d / ONNX_FILE and card["onnx_sha256"] == sha256_file(p), "run `cxrviewer models onnx DIR`"
    assert p.stat().st_size < 1_000_000  # graph only
    proto = onnx.load(str(p), load_external_data=False)
    ext = [t for t in proto.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    layout = safetensors_layout(d / "model.safetensors")
    assert len(ext) >= 250  # every conv/bn/fc tensor of ResNet-50
    for t in ext:
        meta = {e.key: e.value for e in t.external_data}
        assert meta["location"] == "model.safetensors"
        key = t.name.removeprefix("m.").removesuffix("::stored")
        assert layout[key][2:] == (int(meta["offset"]), int(meta["length"]))


def test_bundled_onnx_matches_torch_on_the_sample(rg1_unci):
    pytest.importorskip("torch")
    import torch

    from cxrviewer.core.dicom_io import load_image
    from cxrviewer.ml.inference import Engine

    d = _bundled()
    img = load_image(rg1_unci)
    ort_e = Engine.load(d, backend="onnxruntime", device="cpu")
    assert ort_e.backend == "onnxruntime"
    tor_e = Engine.load(d, backend="torch", device="cpu")
    a, b = ort_e.predict(img, cam=True), tor_e.predict(img, cam=True)
    assert abs(a.probability_abnormal - b.probability_abnormal) < 1e-4
    assert np.corrcoef(a.cam.ravel(), b.cam.ravel())[0, 1] > 0.9999
    del torch


def test_an_altered_onnx_file_is_refused_with_its_name(tmp_path):
    from cxrviewer.ml.inference import Engine

    d = tmp_path / "m"
    shutil.copytree(_bundled(), d)
    with open(d / ONNX_FILE, "ab") as f:
        f.write(b"\0")
    with pytest.raises(CxrError, match=r"model\.onnx.*checksum mismatch"):
        Engine.load(d, backend="onnxruntime", device="cpu")
    card = json.loads((d / "card.json").read_text())
    card["onnx_file"] = "../elsewhere.onnx"
    (d / "card.json").write_text(json.dumps(card))
    with pytest.raises(CxrError, match="plain file name"):
        card_onnx(d, read_card(d))


def test_publish_and_import_write_model_onnx_into_the_card(tmp_path, monkeypatch, resnet_dir):
    pytest.importorskip("onnx", reason="writing model.onnx needs the train extra")
    from cxrviewer.ml.registry import Registry

    monkeypatch.setenv("CXRVIEWER_DATA_DIR", str(tmp_path / "data"))
    src = tmp_path / "src"
    shutil.copytree(resnet_dir, src)
    for f in src.glob("model.onnx*"):
        f.unlink()
    card = json.loads((src / "card.json").read_text())
    card.pop("onnx_file", None)
    card.pop("onnx_sha256", None)
    (src / "card.json").write_text(json.dumps(card))
    entry = Registry().import_dir(src, activate=True, onnx=True)
    got = read_card(entry.path)
    assert got["onnx_file"] == ONNX_FILE and card_onnx(entry.path, got) is not None
    assert not (src / ONNX_FILE).exists()  # the source folder is never written
    # float32 weights: referenced as they are, no Cast needed; graph only
    assert (entry.path / ONNX_FILE).stat().st_size < 1_000_000
    # a stale or altered file is refused on load, by name (rewriting it: `cxrviewer models onnx DIR`)
    (entry.path / ONNX_FILE).write_bytes(b"junk")
    with pytest.raises(CxrError, match="checksum mismatch"):
        card_onnx(entry.path, read_card(entry.path))
