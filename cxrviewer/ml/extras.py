"""What the base install leaves out, and the one line that says how to get it.

The base install (``pip install cxrviewer``) runs the viewer, ``infer``, ``evaluate``,
``export --heatmap`` and ``selftest`` on ONNX Runtime; training, ONNX writing and the torch
backend need the ``train`` extra (torch, torchvision, onnx, tensorboard, matplotlib).
"""

from __future__ import annotations

import importlib.util

TRAIN_EXTRA_HINT = "pip install 'cxrviewer[train]'"
#: ``infer --engine ray`` and ``bench archive``'s Ray figure need Ray Data (the cluster extra)
CLUSTER_EXTRA_HINT = "pip install 'cxrviewer[cluster]'"


def ray_available() -> bool:
    """Whether Ray can be imported here, without importing it (~1 s, and it is the cluster
    extra's: nothing else may load it)."""
    try:
        return importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):  # a broken or stubbed ray
        return False


def torch_available() -> bool:
    """Whether torch can be imported here, without importing it (~5 s)."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):  # a broken or stubbed torch
        return False


def missing_train_extra(what: str) -> str | None:
    """One line saying that ``what`` needs the ``train`` extra, or ``None`` when torch is here."""
    if torch_available():
        return None
    return f"{what} needs torch, which this install leaves out: {TRAIN_EXTRA_HINT}"
