"""A tiny GAP + linear CNN with ResNet's attribute names, trained in seconds on blob images.

"Abnormal" (class 1) images carry a bright disc (the blob) at a random place; "Normal" ones
don't. The model has the same structure as the real one where Grad-CAM cares (layer4 ->
avgpool -> fc), so every CAM path runs on it unchanged. Downsampling is conv + 2×2 average
pooling, which keeps the feature grid centred on the input (strided 3×3 convs shift it).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

SIZE = 112
RADIUS = 14.0  # bright disc of this radius (px), soft 2 px edge


def _block(i: int, o: int, down: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(i, o, 3, 1, 1, bias=False),
        nn.BatchNorm2d(o),
        nn.ReLU(inplace=True),
    ]
    if down:
        layers.append(nn.AvgPool2d(2))
    return nn.Sequential(*layers)


class ToyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, 8, 5, 1, 2, bias=False), nn.AvgPool2d(2))
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()
        self.layer1 = _block(8, 16, False)
        self.layer2 = _block(16, 16, True)
        self.layer3 = _block(16, 32, True)
        self.layer4 = _block(32, 32, True)  # 112 -> 7×7, like ResNet-50 at 224
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def blob_batch(rng: np.random.Generator, positive: np.ndarray) -> tuple[torch.Tensor, list]:
    """Normalised 3-channel images and each blob's centre (row, col) or None."""
    n = len(positive)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    x = np.full((n, SIZE, SIZE), 0.35, np.float32) + rng.normal(0, 0.05, (n, SIZE, SIZE)).astype(
        np.float32
    )
    centres: list = []
    for i in range(n):
        cy, cx = (int(v) for v in rng.integers(20, SIZE - 20, 2))
        if positive[i]:
            d = np.hypot(yy - cy, xx - cx)
            x[i] += 0.5 * np.clip((RADIUS - d) / 2.0 + 0.5, 0.0, 1.0).astype(np.float32)
            centres.append((cy, cx))
        else:
            centres.append(None)
    x = (x - 0.45) / 0.225
    return torch.from_numpy(np.repeat(x[:, None], 3, axis=1)).float(), centres


def train_toy(seed: int = 0, steps: int = 30, batch: int = 24) -> ToyNet:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = ToyNet()
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    model.train()
    for _ in range(steps):
        pos = rng.random(batch) < 0.5
        x, _ = blob_batch(rng, pos)
        y = torch.from_numpy(pos.astype(np.int64))
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    # Running BN statistics lag behind weights that moved this fast; re-estimate them with
    # the final weights (cumulative average) so eval mode matches what was trained.
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.reset_running_stats()
                mod.momentum = None
        for _ in range(3):
            model(blob_batch(rng, rng.random(batch) < 0.5)[0])
    return model.eval()
