"""Augmentations against the shortcuts a chest X-ray classifier finds first.

Measured on the first bundled model: it learned the *resolution* of its training sets (64 px
NIH images upscaled vs. sharp ones) and looked at the *film edges* (10 of 12 Grad-CAM peaks on
the bottom row of the map). Each augmentation here takes a uint8 ``(S, S)`` model input (after
the shared preprocessing, before normalisation) and removes one of those cues:

resolution (``--resolution-aug P``)
    with probability P, downscale to a random fraction in ``[--resolution-min, 1)`` of the side
    and back up (random interpolation), so sharp and blurry inputs of one class look alike and
    the viewer's full-resolution input is no surprise.
border erasing (``--border-erase P``)
    with probability P, overwrite a strip of random width (up to ``--border-max`` of the side)
    on each of the four sides independently, with black, white or the image mean: the film's
    edges, collimation and markers stop being informative.
lung-field crop (``--crop-scale A``)
    a random crop keeping at least a fraction A of the area, centred within a few pixels of
    the image centre, resized back to ``S``: the model sees the lung fields at varying zoom
    and the borders move. 1.0 turns it off.
burned-in text (``--text-aug P``)
    with probability P, draw one to three short strings (side markers, "PORTABLE", dates) in
    white or black at random places, mostly near corners, so burned-in annotation carries no
    label information.

All randomness comes from the ``numpy.random.Generator`` the caller passes (seeded per
``(seed, epoch, index)`` by :class:`training.data.CachedDataset`), so runs stay reproducible.
numpy + OpenCV only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

_WORDS = ("L", "R", "PA", "AP", "PORTABLE", "SUPINE", "ERECT", "CHEST", "12/03", "2017", "DAY 3", "(B)", "RT", "LT")


@dataclass(frozen=True)
class ShortcutAug:
    """Probabilities and ranges of the anti-shortcut augmentations (all off by default)."""

    resolution_p: float = 0.0
    resolution_min: float = 0.25
    border_p: float = 0.0
    border_max: float = 0.15
    crop_scale: float = 1.0
    text_p: float = 0.0

    @property
    def active(self) -> bool:
        return self.resolution_p > 0 or self.border_p > 0 or self.crop_scale < 1.0 or self.text_p > 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_args(cls, args: Any) -> ShortcutAug:
        """From parsed ``python -m training`` arguments (missing attributes: off)."""
        return cls(
            resolution_p=float(getattr(args, "resolution_aug", 0.0) or 0.0),
            resolution_min=float(getattr(args, "resolution_min", 0.25) or 0.25),
            border_p=float(getattr(args, "border_erase", 0.0) or 0.0),
            border_max=float(getattr(args, "border_max", 0.15) or 0.15),
            crop_scale=float(getattr(args, "crop_scale", 1.0) or 1.0),
            text_p=float(getattr(args, "text_aug", 0.0) or 0.0),
        )

    def validate(self) -> None:
        """Raise ``ValueError`` naming the flag whose value is out of range."""
        for name, v in (("--resolution-aug", self.resolution_p), ("--border-erase", self.border_p),
                        ("--text-aug", self.text_p)):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} {v:g}: a probability in [0, 1]")
        if not 0.05 <= self.resolution_min <= 1.0:
            raise ValueError(f"--resolution-min {self.resolution_min:g}: a fraction of the side in [0.05, 1]")
        if not 0.0 <= self.border_max < 0.5:
            raise ValueError(f"--border-max {self.border_max:g}: a fraction of the side in [0, 0.5)")
        if not 0.2 <= self.crop_scale <= 1.0:
            raise ValueError(f"--crop-scale {self.crop_scale:g}: the smallest kept area fraction, in [0.2, 1]")

    def __call__(self, u8: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Apply the enabled augmentations (crop, resolution, text, border: in that order)."""
        x = u8
        if self.crop_scale < 1.0:
            x = lung_crop(x, rng, self.crop_scale)
        if self.resolution_p > 0 and rng.random() < self.resolution_p:
            x = resample(x, rng, self.resolution_min)
        if self.text_p > 0 and rng.random() < self.text_p:
            x = burn_text(x, rng)
        if self.border_p > 0 and rng.random() < self.border_p:
            x = erase_borders(x, rng, self.border_max)
        return np.ascontiguousarray(x)


def resample(u8: np.ndarray, rng: np.random.Generator, min_frac: float = 0.25) -> np.ndarray:
    """Down to ``round(f * side)`` with ``f ~ U[min_frac, 1)`` (area averaging) and back up
    with a random interpolation (linear, cubic or nearest, as viewers and scanners do)."""
    import cv2

    h, w = u8.shape
    f = rng.uniform(min_frac, 1.0)
    sh, sw = max(4, round(h * f)), max(4, round(w * f))
    if (sh, sw) == (h, w):
        return u8
    small = cv2.resize(np.ascontiguousarray(u8), (sw, sh), interpolation=cv2.INTER_AREA)
    interp = (cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_NEAREST)[int(rng.integers(0, 3))]
    return cv2.resize(small, (w, h), interpolation=interp)


def erase_borders(u8: np.ndarray, rng: np.random.Generator, max_frac: float = 0.15) -> np.ndarray:
    """Overwrite a strip of width ``U[0, max_frac] * side`` on each side (each side with
    probability 0.75), filled with 0, 255 or the image mean (one fill per call)."""
    h, w = u8.shape
    x = np.array(u8, copy=True)
    fill = (0, 255, int(u8.mean()))[int(rng.integers(0, 3))]
    for side in range(4):
        if rng.random() >= 0.75:
            continue
        n = int(rng.uniform(0.0, max_frac) * (h if side < 2 else w))
        if n <= 0:
            continue
        if side == 0:
            x[:n, :] = fill
        elif side == 1:
            x[h - n:, :] = fill
        elif side == 2:
            x[:, :n] = fill
        else:
            x[:, w - n:] = fill
    return x


def lung_crop(u8: np.ndarray, rng: np.random.Generator, min_area: float = 0.7) -> np.ndarray:
    """A square-ish crop of area ``U[min_area, 1]`` centred within 5 % of the side of the
    image centre, resized back to the input size (linear)."""
    import cv2

    h, w = u8.shape
    a = rng.uniform(min_area, 1.0)
    ch, cw = max(8, round(h * np.sqrt(a))), max(8, round(w * np.sqrt(a)))
    if (ch, cw) == (h, w):
        return u8
    jy, jx = rng.uniform(-0.05, 0.05, size=2)
    top = int(np.clip(round((h - ch) / 2 + jy * h), 0, h - ch))
    left = int(np.clip(round((w - cw) / 2 + jx * w), 0, w - cw))
    crop = np.ascontiguousarray(u8[top:top + ch, left:left + cw])
    return cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)


def burn_text(u8: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw 1–3 random annotation strings, white or black, 70 % of them in a corner band."""
    import cv2

    h, w = u8.shape
    x = np.array(u8, copy=True)
    for _ in range(int(rng.integers(1, 4))):
        word = _WORDS[int(rng.integers(0, len(_WORDS)))]
        scale = rng.uniform(0.2, 0.6) * h / 128
        thick = max(1, int(round(scale * 2)))
        (tw, th), _base = cv2.getTextSize(word, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        if rng.random() < 0.7:  # corners, where markers and captions sit
            px = int(rng.uniform(0, 0.2) * w) if rng.random() < 0.5 else max(0, w - tw - int(rng.uniform(0, 0.2) * w))
            py = th + int(rng.uniform(0, 0.2) * h) if rng.random() < 0.5 else h - int(rng.uniform(0, 0.2) * h)
        else:
            px = int(rng.uniform(0, max(1, w - tw)))
            py = int(rng.uniform(th, h))
        colour = 255 if rng.random() < 0.7 else 0
        cv2.putText(x, word, (px, py), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thick, cv2.LINE_AA)
    return x


def shortcut_aug_from_args(args: Any) -> ShortcutAug:
    """:meth:`ShortcutAug.from_args`, validated: a bad value is a ``CxrError`` naming the flag."""
    from cxrviewer.core.errors import CxrError

    aug = ShortcutAug.from_args(args)
    try:
        aug.validate()
    except ValueError as e:
        raise CxrError(None, str(e)) from None
    return aug
