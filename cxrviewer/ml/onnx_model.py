"""Each model folder's ``model.onnx``: written at publish/import time, verified on load.

The viewer infers through ONNX Runtime, so a base install needs no torch: ``model.onnx`` sits
beside ``model.safetensors`` and ``card.json`` records it (``onnx_file``, ``onnx_sha256``).
Loading checks both hashes (the weights' and the graph's) before a session is built.

To keep the folder small, ``model.onnx`` holds only the graph (~100 KB): every weight is ONNX
*external data* pointing at its bytes inside ``model.safetensors`` (a safetensors file is an
8-byte header length, a JSON header, then the raw little-endian tensors, which is exactly
ONNX's raw layout). Stored float16 weights are read as float16 and a ``Cast`` to float32 feeds
the graph, which ONNX Runtime folds once when the session is built, so inference runs in
float32 with the very values torch uses (fp16 -> fp32 is exact). Writing needs torch and onnx
(the ``train`` extra); reading needs onnxruntime only.

Models without an ONNX file (older folders, ``.pt`` weights) still work where torch is
installed: a standalone float32 export is made once into the user cache, keyed by the weights.
"""

from __future__ import annotations

import json
import os
import struct
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from cxrviewer import atomic, paths
from cxrviewer.ml.card import ModelCard, as_card
from cxrviewer.ml.extras import TRAIN_EXTRA_HINT
from cxrviewer.ml.registry import (
    CARD_FILE,
    ModelError,
    read_card,
    sha256_file,
    weights_path,
)

ONNX_FILE = "model.onnx"
ONNX_OPSET = 17

# safetensors dtype -> ONNX TensorProto data type (the ones a ResNet state dict uses)
_ST_TO_ONNX = {"F16": 10, "F32": 1, "BF16": 16}
_ONNX_FLOAT = 1


def onnx_cache_path(weights_sha256: str) -> Path:
    """Where the lazily exported ONNX file of a model without one lives (keyed by its weights)."""
    return paths.user_cache_dir() / "onnx" / f"{weights_sha256}.onnx"


def _sidecar(onnx_path: Path) -> Path:
    return onnx_path.with_name(onnx_path.name + ".json")


def _valid_cached(onnx_path: Path, weights_sha256: str) -> bool:
    """A cached export made from these weights, intact (its sidecar records both hashes)."""
    side = _sidecar(onnx_path)
    if not onnx_path.is_file() or not side.is_file():
        return False
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
        return meta.get("weights_sha256") == weights_sha256 and meta.get(
            "onnx_sha256"
        ) == sha256_file(onnx_path)
    except (OSError, ValueError):
        return False


def card_onnx(model_dir: str | os.PathLike, card: ModelCard | dict[str, Any]) -> Path | None:
    """The ONNX file the card names, verified against ``onnx_sha256``; ``None`` if it names none.

    Raises
    ------
    ModelError
        The card names a file that is missing, not a plain name, or whose sha256 differs.
    """
    card = as_card(card)
    name = card.onnx_file
    if not name:
        return None
    model_dir = Path(model_dir)
    if Path(str(name)).name != name:
        raise ModelError(model_dir / CARD_FILE, f"onnx_file {name!r} must be a plain file name")
    p = model_dir / str(name)
    if not p.is_file():
        raise ModelError(p, "missing: card.json names it as the model's ONNX file (onnx_file)")
    want = card.onnx_sha256.lower()
    got = sha256_file(p)
    if got != want:
        raise ModelError(
            p,
            f"checksum mismatch: sha256 {got[:12]}… but card.json says {want[:12] or 'nothing'}… "
            "(corrupt or altered ONNX file)",
        )
    return p


def find_onnx(model_dir: str | os.PathLike, card: ModelCard | dict[str, Any]) -> Path | None:
    """A verified ONNX file for this model: the card's ``onnx_file``, else a cached export."""
    p = card_onnx(model_dir, card)
    if p is not None:
        return p
    sha = as_card(card).weights_sha256
    legacy = Path(model_dir) / ONNX_FILE  # folders exported before the card recorded it
    for q in (legacy, onnx_cache_path(sha)):
        if _valid_cached(q, sha):
            return q
    return None


# --------------------------------------------------------------------------- writing (torch)


#: torch's ONNX exporter (TorchScript tracing) is not thread-safe: two AI workers exporting at
#: once aborted the process in a test; one export at a time.
_EXPORT_LOCK = threading.Lock()


def _in_channels(model: Any) -> int:
    """Input channels of the network's stem (3 for ImageNet models, 1 for torchxrayvision's)."""
    inner = getattr(model, "module", model)
    return int(getattr(getattr(inner, "conv1", None), "in_channels", 3))


def _torch_export(model: Any, out: Path, size: int, fold: bool) -> None:
    """torch -> ONNX with outputs ``logits`` and ``layer4`` (dynamic batch)."""
    with _EXPORT_LOCK:
        _torch_export_unlocked(model, out, size, fold)


def _torch_export_unlocked(model: Any, out: Path, size: int, fold: bool) -> None:
    import torch

    from cxrviewer.ml.cam import backbone_features, head_logits

    class _TwoOutputs(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            a = backbone_features(self.m, x)
            return head_logits(self.m, a), a

    # The wrapper must be in eval mode itself: the legacy exporter exports BatchNorm in
    # training mode when the top module says so (measured: wrong logits).
    wrapper = _TwoOutputs(model).eval().to("cpu", torch.float32)
    # The TorchScript-based exporter needs no onnxscript; it warns that it is legacy.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            torch.zeros(1, _in_channels(model), size, size),
            str(out),
            input_names=["input"],
            output_names=["logits", "layer4"],
            dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}, "layer4": {0: "n"}},
            opset_version=ONNX_OPSET,
            dynamo=False,
            # unfolded, every initializer is a state-dict tensor that the weights file holds
            do_constant_folding=fold,
        )


def export_onnx(
    model: Any, out_path: str | os.PathLike, weights_sha256: str, size: int = 224
) -> Path:
    """A standalone float32 export (the user-cache fallback), atomically, plus a ``.json``
    sidecar with the weights' and the file's sha256."""
    out_path = Path(out_path)
    atomic.write_with(out_path, lambda tmp: _torch_export(model, tmp, size, fold=True))
    meta = {"weights_sha256": weights_sha256, "onnx_sha256": sha256_file(out_path), "opset": ONNX_OPSET}
    atomic.write_text(_sidecar(out_path), json.dumps(meta, indent=2) + "\n")
    return out_path


def safetensors_layout(path: str | os.PathLike) -> dict[str, tuple[str, list[int], int, int]]:
    """``{key: (dtype, shape, absolute byte offset, length)}`` from a safetensors header."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        out[k] = (v["dtype"], list(v["shape"]), 8 + n + int(a), int(b) - int(a))
    return out


def _point_into_weights(model_proto: Any, weights_file: Path, prefix: str = "m.") -> int:
    """Replace each initializer that the weights file holds by external data pointing at it
    (with a ``Cast`` to float32 where it is stored in another type). Returns how many."""
    import onnx
    from onnx import helper

    layout = safetensors_layout(weights_file)
    g = model_proto.graph
    kept, casts, moved = [], [], 0
    for init in g.initializer:
        key = init.name[len(prefix):] if init.name.startswith(prefix) else init.name
        ent = layout.get(key)
        if ent is None or ent[0] not in _ST_TO_ONNX or list(init.dims) != ent[1]:
            kept.append(init)
            continue
        dtype, shape, offset, length = ent
        t = onnx.TensorProto()
        t.data_type = _ST_TO_ONNX[dtype]
        t.dims.extend(shape)
        t.data_location = onnx.TensorProto.EXTERNAL
        for k, v in (("location", weights_file.name), ("offset", str(offset)), ("length", str(length))):
            e = t.external_data.add()
            e.key, e.value = k, v
        if t.data_type == _ONNX_FLOAT:
            t.name = init.name
        else:
            t.name = init.name + "::stored"
            casts.append(helper.make_node("Cast", [t.name], [init.name], to=_ONNX_FLOAT,
                                          name=init.name + "::to_float"))
        kept.append(t)
        moved += 1
    del g.initializer[:]
    g.initializer.extend(kept)
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(casts + nodes)
    return moved


def _parity(model: Any, onnx_path: Path, size: int) -> float:
    """Largest |logit difference| between torch and ONNX Runtime on two fixed inputs."""
    import onnxruntime as ort
    import torch

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, _in_channels(model), size, size)).astype(np.float32)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(["logits"], {"input": x})[0]
    model = model.eval().to("cpu", torch.float32)
    from cxrviewer.ml.cam import backbone_features, head_logits

    with torch.inference_mode():
        want = head_logits(model, backbone_features(model, torch.from_numpy(x))).numpy()
    return float(np.abs(got - want).max())


#: largest |logit difference| accepted between the ONNX file and torch when writing it
PARITY_TOLERANCE = 1e-3


def write_model_onnx(model_dir: str | os.PathLike, model: Any = None) -> Path:
    """Write ``model_dir/model.onnx`` and record it in ``card.json`` (``onnx_file``, ``onnx_sha256``).

    With safetensors weights the file is graph-only, its weights external data inside
    ``model.safetensors``; with ``.pt`` weights it is a standalone float32 export. The result
    is checked against torch (:data:`PARITY_TOLERANCE` on the logits) before the card names it.
    Needs torch and onnx (the ``train`` extra).
    """
    try:
        import onnx
    except ImportError as e:
        raise ModelError(model_dir, f"writing model.onnx needs onnx and torch ({e}): {TRAIN_EXTRA_HINT}") from None
    from cxrviewer.ml.preprocess import PreprocessSpec
    from cxrviewer.ml.registry import load_model_dir

    model_dir = Path(model_dir)
    card = read_card(model_dir)
    if model is None:
        model, card = load_model_dir(model_dir)
    size = PreprocessSpec.from_dict(card.get("preprocessing")).size
    wfile = weights_path(model_dir, card)
    target = model_dir / ONNX_FILE

    def write(tmp: Path) -> None:
        if wfile.suffix != ".safetensors":
            _torch_export(model, tmp, size, fold=True)
            return
        _torch_export(model, tmp, size, fold=False)
        proto = onnx.load(str(tmp))
        _point_into_weights(proto, wfile)
        # the temp file sits beside the weights, so ORT resolves "model.safetensors" for the check
        onnx.save(proto, str(tmp))
        err = _parity(model, tmp, size)
        if not err <= PARITY_TOLERANCE:
            raise ModelError(model_dir, f"ONNX export differs from torch by {err:.2g} in the logits")

    atomic.write_with(target, write)
    _sidecar(target).unlink(missing_ok=True)  # the card records it now
    card = json.loads((model_dir / CARD_FILE).read_text(encoding="utf-8"))
    card["onnx_file"] = ONNX_FILE
    card["onnx_sha256"] = sha256_file(target)
    atomic.write_text(model_dir / CARD_FILE, json.dumps(card, indent=2) + "\n")
    return target


def ensure_model_onnx(model_dir: str | os.PathLike) -> Path:
    """The model's verified ``model.onnx``, written first (torch) when the card names none."""
    model_dir = Path(model_dir)
    try:
        p = card_onnx(model_dir, read_card(model_dir))
    except ModelError:  # named but missing or altered: write it again from the verified weights
        p = None
    return p if p is not None else write_model_onnx(model_dir)


def export_onnx_for_dir(model_dir: str | os.PathLike, into_model_dir: bool = True) -> Path:
    """``model.onnx`` for a model folder (``into_model_dir``, recorded in its card), or a
    standalone export into the user cache. A valid existing file is reused."""
    model_dir = Path(model_dir)
    if into_model_dir:
        return ensure_model_onnx(model_dir)
    card = read_card(model_dir)
    existing = find_onnx(model_dir, card)
    if existing is not None:
        return existing
    from cxrviewer.ml.preprocess import PreprocessSpec
    from cxrviewer.ml.registry import load_model_dir

    model, card = load_model_dir(model_dir)
    size = PreprocessSpec.from_dict(card.preprocessing).size
    return export_onnx(model, onnx_cache_path(card.weights_sha256), card.weights_sha256, size)
