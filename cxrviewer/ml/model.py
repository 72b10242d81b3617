"""The training network (the demo's ResNet-50 with a two-class head), and where it runs.

Everything that builds or places the model lives here so training, inference and the
registry agree on one architecture. torch is imported at module import: import this
module lazily (the viewer does it in its worker thread, after the window is up).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from cxrviewer.core.errors import CxrError
from cxrviewer.ml.arch import resnet50 as _resnet50

#: class order of the head's outputs (index 1 is the one the probability is about)
CLASSES: tuple[str, str] = ("Normal", "Abnormal")

#: the architecture training builds (the registry, cxrviewer.ml.arch, knows every one)
ARCHITECTURE = _resnet50.NAME
#: feature width of ResNet-50's layer4 / input width of the head
FEATURES = _resnet50.FEATURES

# torchvision's ImageNet checkpoints, newest first; looked up in the local torch hub
# cache only (never downloaded).
_IMAGENET_FILES = ("resnet50-11ad3fa6.pth", "resnet50-0676ba61.pth")


def build_model(dropout: float = 0.0) -> nn.Module:
    """ResNet-50 (random init) with the head ``Linear(2048, 2)``.

    Parameters
    ----------
    dropout
        Probability of an ``nn.Dropout`` before the linear head (0: none, and the head is
        the plain ``fc`` Linear, so state-dict keys are torchvision's ``fc.weight``/``fc.bias``;
        otherwise ``fc`` is ``Sequential(Dropout, Linear)`` with keys ``fc.1.*``).

    Returns
    -------
    torch.nn.Module
        The model in eval mode (call ``.train()`` to train).
    """
    from cxrviewer.ml.arch import resnet50

    return resnet50.build_net(len(CLASSES), 3, dropout)


def head_linear(model: nn.Module) -> nn.Linear:
    """The final ``nn.Linear`` of the head (``model.fc`` or the Linear inside it)."""
    fc = model.fc
    if isinstance(fc, nn.Linear):
        return fc
    linears = [m for m in fc.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise TypeError("model.fc contains no nn.Linear")
    return linears[-1]


def pick_device(pref: str = "auto") -> torch.device:
    """The device to run on: ``"auto"`` -> CUDA, else Apple MPS, else CPU.

    An explicit ``"cuda"``/``"cuda:1"``/``"mps"``/``"cpu"`` is honoured, with a
    :class:`CxrError` when that device is not available (rather than a silent CPU fallback).
    """
    pref = (pref or "auto").strip().lower()
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(pref)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CxrError(
            None, f"device {pref!r} requested but CUDA is not available; use --device cpu or auto"
        )
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise CxrError(
                None,
                f"device {pref!r} requested but MPS is not available; use --device cpu or auto",
            )
    return dev


def imagenet_checkpoint() -> Path | None:
    """torchvision's ResNet-50 ImageNet checkpoint in the local torch hub cache, or None."""
    ckpt_dir = Path(torch.hub.get_dir()) / "checkpoints"
    for name in _IMAGENET_FILES:
        p = ckpt_dir / name
        if p.is_file():
            return p
    return None


def imagenet_init(model: nn.Module) -> nn.Module:
    """Load ImageNet weights into the backbone (not the head) from the local torch cache only.

    Raises
    ------
    CxrError
        When no checkpoint is cached: no download is ever attempted (the app runs offline);
        the message names the offline alternatives.
    """
    p = imagenet_checkpoint()
    if p is None:
        where = Path(torch.hub.get_dir()) / "checkpoints"
        raise CxrError(
            where,
            "no ImageNet ResNet-50 weights in the local torch cache and cxrviewer never downloads; "
            f"copy {_IMAGENET_FILES[-1]} there, or start from a model directory with --init PATH, "
            "or train without pretraining (--pretrained none)",
        )
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # a corrupt or hostile cache file
        raise CxrError(p, f"cannot load ImageNet weights safely: {e}") from None
    backbone = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing, unexpected = model.load_state_dict(backbone, strict=False)
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing or unexpected:
        raise CxrError(
            p,
            f"not a ResNet-50 checkpoint (missing {missing[:3]}, unexpected {list(unexpected)[:3]})",
        )
    return model
