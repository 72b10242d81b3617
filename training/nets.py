"""Networks the trainer builds. The product path is always ResNet-50 (``cxrviewer.ml.model``);
``tiny`` is a small CNN with the same interface (``layer4``, ``fc``) so tests of the training
loop's mechanics (resume determinism, DDP) run in seconds. It cannot be saved as a model
directory (the registry only accepts ResNet-50)."""

from __future__ import annotations

ARCHES = ("resnet50", "tiny")


def build(arch: str = "resnet50", dropout: float = 0.0):
    import torch
    from torch import nn

    if arch == "resnet50":
        from cxrviewer.ml.model import build_model

        return build_model(dropout=dropout)
    if arch != "tiny":
        raise ValueError(f"unknown --arch {arch!r}")

    def block(cin: int, cout: int, stride: int = 2) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                             nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer1 = block(3, 16)
            self.layer2 = block(16, 32)
            self.layer3 = nn.Sequential(block(32, 64), block(64, 64, stride=1))
            # stride 1: an 8x8 CAM at 64 px, like ResNet-50's 7x7 at 224
            self.layer4 = nn.Sequential(block(64, 64, stride=1), block(64, 64, stride=1))
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            head = nn.Linear(64, 2)
            self.fc = nn.Sequential(nn.Dropout(dropout), head) if dropout > 0 else head

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return Tiny().eval()


_STAGES = ("stem", "layer1", "layer2", "layer3")


def freeze_stages(model, upto: str) -> str:
    """Stop training the stem and the residual stages up to ``upto`` (fine-tuning on a CPU:
    no backward pass through them). BatchNorm statistics there still adapt. Returns what
    was frozen, as text ('' for none)."""
    if upto in (None, "", "none"):
        return ""
    names = _STAGES[: _STAGES.index(upto) + 1]
    prefixes = tuple(("conv1.", "bn1.") if n == "stem" else (n + ".",) for n in names)
    flat = tuple(x for t in prefixes for x in t)
    for name, par in model.named_parameters():
        if name.startswith(flat):
            par.requires_grad_(False)
    return ", ".join(names)
