"""torchvision ResNet-50: the demo (3-channel ImageNet input, Linear(2048, 2) softmax head) and
torchxrayvision's ``resnet50-res512-all`` (1-channel stem, Linear(2048, 18) sigmoid head).

Both keep torchvision's module names (``conv1``, ``layer4``, ``fc``), so a state dict of either
loads by name; only the stem's input channels and the head's width differ, and both come
from the card.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

NAME = "resnet50"
#: channels of layer4's output = the head's input width
FEATURES = 2048
CAM_LAYER = "layer4"


def build_net(n_outputs: int = 2, in_channels: int = 3, dropout: float = 0.0) -> nn.Module:
    """ResNet-50 (random init, eval mode) with ``in_channels`` inputs and ``n_outputs`` logits.

    ``dropout`` > 0 puts an ``nn.Dropout`` before the Linear head (``fc`` becomes
    ``Sequential(Dropout, Linear)``, state-dict keys ``fc.1.*``); 0 keeps torchvision's
    plain ``fc`` (keys ``fc.weight``/``fc.bias``).
    """
    from torch import nn
    from torchvision.models import resnet50

    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), not {dropout!r}")
    if in_channels not in (1, 3):
        raise ValueError(f"in_channels must be 1 or 3, not {in_channels!r}")
    model = resnet50(weights=None)
    if in_channels != 3:
        # torchxrayvision's stem: the same conv with one input channel
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    head = nn.Linear(FEATURES, int(n_outputs))
    model.fc = nn.Sequential(nn.Dropout(float(dropout)), head) if dropout > 0 else head
    return model.eval()


def build(card: Any) -> nn.Module:
    """The network a :class:`~cxrviewer.ml.card.ModelCard` describes (random init)."""
    from cxrviewer.ml.card import as_card
    from cxrviewer.ml.preprocess import PreprocessSpec

    card = as_card(card)
    spec = PreprocessSpec.from_dict(card.preprocessing)
    return build_net(card.n_outputs, spec.channels, card.dropout)
