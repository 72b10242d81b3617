"""Model directories and the registry: round trips, refusals, atomic import/activate."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from cxrviewer.core.errors import CxrError
from cxrviewer.ml.model import CLASSES, build_model, head_linear, imagenet_init, pick_device
from cxrviewer.ml.registry import (
    ModelError,
    Registry,
    load_model_dir,
    read_card,
    save_model_dir,
    sha256_file,
)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _rewrite_card(d: Path, **changes) -> None:
    card = json.loads((d / "card.json").read_text())
    card.update(changes)
    (d / "card.json").write_text(json.dumps(card))


def test_build_model_head_and_classes():
    m = build_model()
    assert CLASSES == ("Normal", "Abnormal")
    assert head_linear(m) is m.fc and m.fc.in_features == 2048 and m.fc.out_features == 2
    md = build_model(dropout=0.3)
    assert isinstance(md.fc[0], torch.nn.Dropout) and md.fc[0].p == 0.3
    assert head_linear(md) is md.fc[1]
    assert pick_device("cpu").type == "cpu"
    assert pick_device().type in ("cpu", "cuda", "mps")


def test_imagenet_init_is_offline(monkeypatch, tmp_path):
    # An empty hub dir: the error must say there is no download and give the alternatives.
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(CxrError, match="--init PATH"):
        imagenet_init(build_model())


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_save_load_round_trip(tmp_path, resnet_model, dtype):
    d = save_model_dir(resnet_model, tmp_path / "m", {"name": "m", "version": "2"}, dtype=dtype)
    card = read_card(d)
    assert card["weights_dtype"] == dtype and card["weights_sha256"] == sha256_file(
        d / "model.safetensors"
    )
    assert card["architecture"] == "resnet50" and card["classes"] == list(CLASSES)
    assert (
        "preprocessing" in card
        and card["threshold"] == 0.5
        and "Not a medical device" in card["intended_use"]
    )
    model, card2 = load_model_dir(d)
    assert card2["name"] == "m"
    tol = 0 if dtype == "float32" else 2e-3
    ref, got = resnet_model.state_dict(), model.state_dict()
    for k in ref:
        assert got[k].dtype == ref[k].dtype, k
        if ref[k].is_floating_point():
            torch.testing.assert_close(got[k], ref[k], rtol=tol, atol=tol * 0.05 if tol else 0)
        else:
            assert torch.equal(got[k], ref[k])
    # the fp16 file is about half the size
    if dtype == "float16":
        assert (d / "model.safetensors").stat().st_size < 60e6


def test_dropout_head_round_trip(tmp_path):
    m = build_model(dropout=0.2)
    d = save_model_dir(m, tmp_path / "dm", {"name": "dm", "version": "1"}, dtype="float32")
    assert read_card(d)["head"] == {"dropout": 0.2}
    m2, _ = load_model_dir(d)
    assert isinstance(m2.fc, torch.nn.Sequential)
    assert torch.equal(head_linear(m2).weight, head_linear(m).weight)


def test_checksum_mismatch_refused(tmp_path, resnet_dir):
    d = _copy(resnet_dir, tmp_path / "bad")
    raw = bytearray((d / "model.safetensors").read_bytes())
    raw[-10] ^= 0xFF
    (d / "model.safetensors").write_bytes(bytes(raw))
    with pytest.raises(ModelError, match="checksum mismatch"):
        load_model_dir(d)


def test_truncated_safetensors_refused(tmp_path, resnet_dir):
    d = _copy(resnet_dir, tmp_path / "trunc")
    w = d / "model.safetensors"
    w.write_bytes(w.read_bytes()[:5_000_000])
    # fix the checksum so the safetensors parser itself must notice
    _rewrite_card(d, weights_sha256=sha256_file(w))
    with pytest.raises(ModelError, match="truncated or corrupt"):
        load_model_dir(d)


def test_wrong_shapes_refused(tmp_path):
    m = build_model()
    m.fc = torch.nn.Linear(2048, 3)
    d = save_model_dir(m, tmp_path / "three", {"name": "three", "version": "1"}, dtype="float32")
    with pytest.raises(ModelError, match=r"wrong shapes .*fc\.weight"):
        load_model_dir(d)


def test_wrong_architecture_refused(tmp_path, resnet_dir):
    d = _copy(resnet_dir, tmp_path / "vgg")
    _rewrite_card(d, architecture="vgg16")
    with pytest.raises(ModelError, match="architecture 'vgg16' is not supported"):
        load_model_dir(d)
    # resnet18 weights under a resnet50 card: names/shapes do not match
    from torchvision.models import resnet18

    r18 = resnet18(weights=None)
    r18.fc = torch.nn.Linear(512, 2)
    d2 = save_model_dir(r18, tmp_path / "r18", {"name": "r18", "version": "1"}, dtype="float32")
    with pytest.raises(ModelError, match="not a ResNet-50|wrong shapes"):
        load_model_dir(d2)


def test_card_problems_refused(tmp_path, resnet_dir):
    d = _copy(resnet_dir, tmp_path / "c")
    _rewrite_card(d, classes=["Cat", "Dog"])
    with pytest.raises(ModelError, match="classes"):
        load_model_dir(d)
    (d / "card.json").write_text("{not json")
    with pytest.raises(ModelError, match="unreadable model card"):
        load_model_dir(d)
    (d / "card.json").unlink()
    with pytest.raises(ModelError, match="card.json"):
        load_model_dir(d)


def _pt_dir(tmp_path: Path, name: str, obj) -> Path:
    d = tmp_path / name
    d.mkdir()
    torch.save(obj, d / "model.pt")
    (d / "card.json").write_text(
        json.dumps(
            {
                "name": name,
                "version": "1",
                "weights_file": "model.pt",
                "weights_sha256": sha256_file(d / "model.pt"),
            }
        )
    )
    return d


def test_pt_state_dict_loads_with_weights_only(tmp_path, resnet_model):
    d = _pt_dir(tmp_path, "pt", {"model": resnet_model.state_dict(), "epoch": 3})
    m, card = load_model_dir(d)
    assert torch.equal(m.fc.weight, resnet_model.fc.weight)


class _Evil:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_with_code_refused(tmp_path):
    marker = tmp_path / "pwned"
    d = _pt_dir(tmp_path, "evil", {"fc.weight": _Evil(str(marker))})
    with pytest.raises(ModelError, match="weights_only=True"):
        load_model_dir(d)
    assert not marker.exists(), "the pickle's code ran"


def test_registry_import_activate_and_failures(tmp_path, resnet_dir, resnet_model):
    reg = Registry(bundled_dir=tmp_path / "bundled", user_dir=tmp_path / "user" / "models")
    assert reg.list() == [] and reg.active() is None
    e = reg.import_dir(resnet_dir, activate=True)
    assert (
        e.name == "test-resnet"
        and (tmp_path / "user" / "models" / "test-resnet" / "model.safetensors").is_file()
    )
    assert reg.active().name == "test-resnet"
    assert json.loads(reg.active_file.read_text())["name"] == "test-resnet"
    # re-import of identical weights is a no-op
    assert reg.import_dir(resnet_dir).path == e.path

    # a second, different model
    m2 = build_model()
    d2 = save_model_dir(m2, tmp_path / "src2", {"name": "second", "version": "1"}, dtype="float16")
    reg.import_dir(d2)
    assert [x.name for x in reg.list()] == ["second", "test-resnet"]
    assert reg.active().name == "test-resnet"  # import without activate changes nothing

    # a bad import: nothing left behind, previous active model stays active
    bad = _copy(d2, tmp_path / "bad")
    _rewrite_card(bad, name="broken")
    raw = bytearray((bad / "model.safetensors").read_bytes())
    raw[-5] ^= 1
    (bad / "model.safetensors").write_bytes(bytes(raw))
    with pytest.raises(ModelError, match="checksum"):
        reg.import_dir(bad, activate=True)
    assert reg.active().name == "test-resnet"
    assert sorted(p.name for p in reg.user_dir.iterdir()) == ["second", "test-resnet"]

    # wrong shapes behind a correct checksum: refused during verification in the temp dir
    m3 = build_model()
    m3.fc = torch.nn.Linear(2048, 5)
    d3 = save_model_dir(m3, tmp_path / "src3", {"name": "five", "version": "1"}, dtype="float16")
    with pytest.raises(ModelError, match="wrong shapes"):
        reg.import_dir(d3, activate=True)
    assert sorted(p.name for p in reg.user_dir.iterdir()) == ["second", "test-resnet"]
    assert reg.active().name == "test-resnet"

    # a different model under an existing name needs replace=True
    d4 = save_model_dir(
        build_model(), tmp_path / "src4", {"name": "second", "version": "2"}, dtype="float16"
    )
    with pytest.raises(ModelError, match="already installed"):
        reg.import_dir(d4)
    assert reg.import_dir(d4, replace=True).version == "2"
    assert reg.get("second").version == "2"

    # activating a model whose file got corrupted after import fails and changes nothing
    w = reg.get("second").path / "model.safetensors"
    w.write_bytes(w.read_bytes()[:-100])
    with pytest.raises(ModelError, match="checksum"):
        reg.activate("second")
    assert reg.active().name == "test-resnet"
    with pytest.raises(ModelError, match="no model named 'nope'"):
        reg.activate("nope")
    assert reg.active().name == "test-resnet"


def test_registry_default_is_newest_bundled(tmp_path, resnet_model):
    bundled = tmp_path / "bundled"
    save_model_dir(
        resnet_model,
        bundled / "old",
        {"name": "old", "version": "1", "created": "2024-01-01T00:00:00+00:00"},
        dtype="float16",
    )
    save_model_dir(
        resnet_model,
        bundled / "new",
        {"name": "new", "version": "1", "created": "2025-01-01T00:00:00+00:00"},
        dtype="float16",
    )
    reg = Registry(bundled_dir=bundled, user_dir=tmp_path / "u" / "models")
    assert reg.active().name == "new" and reg.active().bundled
    reg.activate("old")
    assert reg.active().name == "old"
    # the stored choice vanishes -> back to the newest bundled model
    reg.active_file.write_text(json.dumps({"name": "gone"}))
    assert reg.active().name == "new"
