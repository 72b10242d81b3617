"""Architecture registry: one module per architecture, so a name like ``"resnet50"`` is written once.

Each architecture module provides

``NAME``
    The ``architecture`` value of the model cards it serves.
``FEATURES``
    Width of the CAM layer's output (what the linear head and the OOD gate read).
``CAM_LAYER``
    The attribute of the network whose output Grad-CAM explains (GAP + linear head after it,
    so the closed-form map of :mod:`cxrviewer.ml.cam` is exact).
``build(card)``
    The network (torch, random init, eval mode) for a :class:`~cxrviewer.ml.card.ModelCard`:
    input channels from its preprocessing, one output per class (softmax head) or per
    finding (multi-label sigmoid head).

Head kinds (softmax over Normal/Abnormal, multi-label sigmoid with per-finding operating
points) are card properties (:class:`~cxrviewer.ml.card.ModelCard`), shared by every
architecture. Adding an architecture = a module here + an entry in :data:`ARCHITECTURES` +
its tests. Importing this package does not import torch.
"""

from __future__ import annotations

from types import ModuleType

from cxrviewer.ml.arch import resnet50

ARCHITECTURES: dict[str, ModuleType] = {resnet50.NAME: resnet50}
#: the architecture of cards that name none (every card before the registry)
DEFAULT = resnet50.NAME


def get(name: str | None) -> ModuleType:
    """The module of architecture ``name`` (ValueError naming the known ones)."""
    key = name or DEFAULT
    try:
        return ARCHITECTURES[key]
    except KeyError:
        raise ValueError(
            f"architecture {key!r} is not supported (known: {', '.join(sorted(ARCHITECTURES))})"
        ) from None


__all__ = ["ARCHITECTURES", "DEFAULT", "get"]
