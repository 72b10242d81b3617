"""TorchXRayVision's published chest models, imported as ordinary model folders.

``cxrviewer models import-xrv resnet50-res512-all --weights FILE`` turns the state dict that
torchxrayvision publishes (a torchvision ResNet-50 with a 1-channel stem and an 18-output
head) into ``model.safetensors`` + ``card.json`` + ``model.onnx``. The file is read with
``torch.load(weights_only=True)`` (never unpickled code) and checksummed; the card records
where it came from, its stated licence, the findings with their operating points, the exact
preprocessing, and the publication, marked "published, not verified here".

The catalogue below is data copied from torchxrayvision 1.5.7 (``models.model_urls``): the
library is not imported at run time. Its pipeline is reproduced in
:mod:`cxrviewer.ml.preprocess` (``pipeline="xrv"``) and its operating-point normalisation in
:func:`op_norm`; ``tests/ml/test_xrv.py`` checks both against torchxrayvision itself.

Downloading happens only in :func:`fetch_weights`, which only the explicit ``import-xrv``
command calls (into the user cache); offline it fails in one line naming the URL and
``--weights``.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from cxrviewer import paths
from cxrviewer.core.errors import CxrError
from cxrviewer.core.hashing import sha256_file

NAN = float("nan")

#: torchxrayvision's published weights this project can import (metadata only)
CATALOGUE: dict[str, dict[str, Any]] = {
    "resnet50-res512-all": {
        "description": "ResNet-50 trained by torchxrayvision on PadChest, NIH ChestX-ray14, RSNA Pneumonia, "
                       "SIIM-ACR Pneumothorax and VinDr-CXR (pc-nih-rsna-siim-vin) at 512x512",
        "weights_url": "https://github.com/mlmed/torchxrayvision/releases/download/v1/"
                       "pc-nih-rsna-siim-vin-resnet50-test512-e400-state.pt",
        "labels": ["Atelectasis", "Consolidation", "Infiltration", "Pneumothorax", "Edema", "Emphysema",
                   "Fibrosis", "Effusion", "Pneumonia", "Pleural_Thickening", "Cardiomegaly", "Nodule", "Mass",
                   "Hernia", "Lung Lesion", "Fracture", "Lung Opacity", "Enlarged Cardiomediastinum"],
        "op_threshs": [0.51570356, 0.50444704, 0.53787947, 0.50723547, 0.5025118, 0.5035252, 0.5038076,
                       0.51862943, 0.5078151, 0.50724894, 0.5056339, 0.510706, 0.5053923, 0.5020846, NAN,
                       0.5080557, 0.5138526, NAN],
        "input_resolution": 512,
        "architecture": "resnet50",
        "in_channels": 1,
    },
}

DEFAULT_WEIGHTS = "resnet50-res512-all"
LICENCE = "Apache-2.0 (torchxrayvision's stated licence for its code and released weights)"
CITATION = ("Cohen JP, Viviano JD, Bertin P, Morrison P, Torabian P, Guarrera M, Lungren MP, Chaudhari A, "
            "Brooks R, Hashir M, Bertrand H. TorchXRayVision: A library of chest X-ray datasets and models. "
            "Medical Imaging with Deep Learning (MIDL) 2022. arXiv:2111.00595")
PUBLISHED_STATUS = "published, not verified here"


def default_name(weights: str) -> str:
    return f"xrv-{weights}"


def entry(weights: str) -> dict[str, Any]:
    try:
        return CATALOGUE[weights]
    except KeyError:
        raise CxrError(None, f"unknown torchxrayvision weights {weights!r} (known: {', '.join(CATALOGUE)})") from None


def weights_filename(weights: str) -> str:
    """The file name torchxrayvision stores these weights under (its cache uses it too)."""
    return os.path.basename(entry(weights)["weights_url"])


# --------------------------------------------------------------------------- numbers


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function in float64 without overflow for large |z| (tanh form)."""
    z = np.asarray(z, dtype=np.float64)
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def op_norm(p: np.ndarray, op_points: np.ndarray) -> np.ndarray:
    """torchxrayvision's ``models.op_norm`` on sigmoid probabilities ``(n, C)``: a finding with an
    operating point ``t`` maps ``p < t`` to ``p / (2t)`` and ``p >= t`` to
    ``1 - (1 - p) / (2 (1 - t))`` (so ``t`` reads 0.5). A finding without one (NaN) keeps
    its plain sigmoid here, where torchxrayvision would write 0.5: a missing operating point
    must never look like a model sitting exactly on it."""
    p = np.asarray(p, dtype=np.float64)
    t = np.broadcast_to(np.asarray(op_points, dtype=np.float64), p.shape)
    has = np.isfinite(t)
    tt = np.where(has, t, 0.5)
    low = p / (tt * 2.0)
    high = 1.0 - (1.0 - p) / ((1.0 - tt) * 2.0)
    return np.where(has, np.where(p < tt, low, high), p)


# --------------------------------------------------------------------------- card


def make_card(weights: str, name: str, source_file: Path, source_sha256: str) -> dict[str, Any]:
    """The card of an imported torchxrayvision model (before the weights' own checksums)."""
    from cxrviewer.ml.findings import finding_code
    from cxrviewer.ml.preprocess import PreprocessSpec

    e = entry(weights)
    findings = []
    for label, t in zip(e["labels"], e["op_threshs"], strict=True):
        has = t is not None and math.isfinite(t)
        findings.append({"name": label, "op_point": float(t) if has else None,
                         "code": list(finding_code(label))})
    spec = PreprocessSpec(size=int(e["input_resolution"]), window_policy="default", equalize=False,
                          resize="stretch", pipeline="xrv", channels=int(e["in_channels"]))
    no_op = [f["name"] for f in findings if f["op_point"] is None]
    return {
        "name": name,
        "version": "1.5.7",  # torchxrayvision release whose catalogue and pipeline this reproduces
        "architecture": e["architecture"],
        "classes": ["Normal", "Abnormal"],
        "head": {"kind": "sigmoid", "dropout": 0.0, "op_norm": True},
        "findings": findings,
        "preprocessing": spec.to_dict(),
        "threshold": 0.5,
        "source": {
            "library": "torchxrayvision",
            "weights": weights,
            "description": e["description"],
            "url": e["weights_url"],
            "file": source_file.name,
            "file_sha256": source_sha256,
            "pipeline": "torchxrayvision 1.5.7: datasets.normalize(img, 255) -> XRayCenterCrop -> "
                        "XRayResizer(512) (skimage) -> model -> sigmoid -> op_norm",
        },
        "licence": LICENCE,
        "published": {
            "status": PUBLISHED_STATUS,
            "citation": CITATION,
            "figures": "see the citation (AUC per finding on the publisher's held-out splits of its "
                       "training datasets); measured on other patients and machines, not on yours",
            "findings_without_op_point": no_op,
        },
        "probability_scale": "op_norm: a finding at its operating point reads 0.5; findings without an "
                             f"operating point ({', '.join(no_op) or 'none'}) keep the plain sigmoid and are never "
                             "called positive",
        "threshold_rule": "probability_abnormal = highest op_norm probability among findings with an operating "
                          "point; Abnormal when >= 0.5 (at or above some finding's operating point)",
        "intended_use": "Research model published by torchxrayvision. Not a medical device; not for diagnosis, "
                        "triage or any clinical decision. Validate it on your own labelled cases "
                        "(`cxrviewer evaluate --record`) before reading anything into its numbers.",
        "imported": {"by": "cxrviewer models import-xrv"},
    }


# --------------------------------------------------------------------------- fetch + import


def cache_file(weights: str) -> Path:
    return paths.user_cache_dir() / "xrv" / weights_filename(weights)


def fetch_weights(weights: str, url: str | None = None, timeout: float = 30.0) -> Path:
    """Download the published weights into the user cache (only ``import-xrv`` calls this).

    Raises
    ------
    CxrError
        One line naming the URL and ``--weights`` when the download fails (offline).
    """
    url = url or entry(weights)["weights_url"]
    dest = cache_file(weights)
    if dest.is_file() and dest.stat().st_size > 0:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".part-", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310
            shutil.copyfileobj(resp, out, 1 << 20)
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError, ValueError) as e:
        Path(tmp).unlink(missing_ok=True)
        reason = getattr(e, "reason", None) or e
        raise CxrError(None, f"cannot download {url} ({reason}); download it elsewhere and pass --weights FILE") from None
    return dest


def import_xrv(
    weights: str = DEFAULT_WEIGHTS,
    weights_file: str | os.PathLike | None = None,
    *,
    name: str | None = None,
    activate: bool = False,
    replace: bool = False,
    url: str | None = None,
    registry: Any = None,
) -> Any:
    """Install torchxrayvision's ``weights`` into the user registry -> its ``ModelEntry``.

    The state dict is loaded with ``weights_only=True``, checked tensor by tensor against the
    architecture the card describes, written as float32 safetensors (bit-exact with the
    published float32 tensors) with its card and ``model.onnx``, verified, then installed
    atomically by :meth:`~cxrviewer.ml.registry.Registry.import_dir`.
    """
    from cxrviewer.ml import arch
    from cxrviewer.ml.card import ModelCard
    from cxrviewer.ml.onnx_model import write_model_onnx
    from cxrviewer.ml.registry import Registry, load_state_file, load_weights_into, save_model_dir

    entry(weights)  # unknown names fail before any download
    src = Path(weights_file) if weights_file is not None else fetch_weights(weights, url)
    if not src.is_file():
        raise CxrError(src, "weights file not found")
    state = load_state_file(src)  # weights_only=True: pickled code is refused
    card = make_card(weights, name or default_name(weights), src, sha256_file(src))
    model = arch.get(card["architecture"]).build(ModelCard.from_dict(card))
    load_weights_into(model, state, src)
    reg = registry if registry is not None else Registry()
    reg.user_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".xrv-", dir=reg.user_dir) as tmp:
        d = Path(tmp) / card["name"]
        save_model_dir(model, d, card, dtype="float32")
        write_model_onnx(d, model)
        return reg.import_dir(d, replace=replace, activate=activate, onnx=True)


__all__ = ["CATALOGUE", "DEFAULT_WEIGHTS", "default_name", "fetch_weights", "import_xrv", "make_card",
           "op_norm", "sigmoid", "weights_filename"]
