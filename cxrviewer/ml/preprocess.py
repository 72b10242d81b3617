"""The one preprocessing function of the project (the viewer, the CLI and training call it).

Pipeline: display pipeline of the core with the model's window policy (Modality LUT -> VOI
-> MONOCHROME1 inversion -> 8 bits) -> histogram equalisation (as the seed) -> resize
(recorded in a :class:`ResizeMapping` so heatmaps go back to the original geometry exactly)
-> 3 channels -> ImageNet normalisation. Its parameters live in the model card
(``card["preprocessing"]``), like torchvision's ``Weights.transforms``.

numpy + OpenCV only: no torch import here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from cxrviewer.core.display import render
from cxrviewer.core.types import LoadedImage

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class PreprocessSpec:
    """Input specification stored in the model card.

    window_policy
        ``"default"``: the file's first window (else the robust 0.5–99.5 % default), the
        same default the viewer opens with. ``"auto"``: always the robust default.
    resize
        ``"stretch"`` (plain resize to size×size, as the seed) or ``"letterbox"`` (keep
        the aspect ratio, pad with 0).
    detail_size
        0 (default), or a size smaller than ``size``: the image is first resized to
        detail_size×detail_size (area averaging) and then enlarged to ``size`` (bilinear), so
        the model sees the detail of a tiny image (e.g. 28 px, the MedMNIST setting) at a
        resolution where ResNet-50's stride-32 stem still leaves a feature map.
    """

    size: int = 224
    window_policy: str = "default"
    equalize: bool = True
    resize: str = "stretch"
    detail_size: int = 0
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> PreprocessSpec:
        d = dict(d or {})
        known = {f for f in cls.__dataclass_fields__}
        kw = {k: v for k, v in d.items() if k in known}
        for k in ("mean", "std"):
            if k in kw:
                kw[k] = tuple(float(x) for x in kw[k])
        for k in ("size", "detail_size"):
            if k in kw:
                kw[k] = int(kw[k] or 0)
        spec = cls(**kw)
        if spec.resize not in ("stretch", "letterbox"):
            raise ValueError(f"preprocessing.resize must be 'stretch' or 'letterbox', not {spec.resize!r}")
        if spec.detail_size and not 0 < spec.detail_size < spec.size:
            raise ValueError(f"preprocessing.detail_size must be 0 or below size {spec.size}, not {spec.detail_size}")
        if spec.window_policy not in ("default", "auto"):
            raise ValueError(f"preprocessing.window_policy must be 'default' or 'auto', not {spec.window_policy!r}")
        return spec


@dataclass(frozen=True)
class ResizeMapping:
    """How the model input relates to the original image, so maps can be sent back exactly.

    The model input is ``size×size``; the image occupies ``[pad_top : pad_top + inner_h,
    pad_left : pad_left + inner_w]`` of it (the whole input for ``stretch``).
    """

    src_rows: int
    src_cols: int
    size: int
    inner_h: int
    inner_w: int
    pad_top: int = 0
    pad_left: int = 0
    extra: dict = field(default_factory=dict)

    def to_original(self, m: np.ndarray) -> np.ndarray:
        """A map over the model input (any resolution, e.g. 7×7 or size×size) -> float32
        ``(src_rows, src_cols)``, bilinear, aligned with the original pixels."""
        import cv2

        m = np.asarray(m, dtype=np.float32)
        h, w = m.shape[:2]
        if (h, w) != (self.size, self.size):
            m = cv2.resize(m, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
        inner = m[self.pad_top : self.pad_top + self.inner_h, self.pad_left : self.pad_left + self.inner_w]
        return cv2.resize(np.ascontiguousarray(inner), (self.src_cols, self.src_rows), interpolation=cv2.INTER_LINEAR)


def display_gray(img: LoadedImage, spec: PreprocessSpec) -> np.ndarray:
    """Step 1: the core's display pipeline with the model's window policy -> uint8 (H, W)."""
    import cv2

    if img.is_color:
        return cv2.cvtColor(img.stored, cv2.COLOR_RGB2GRAY)
    preset = img.auto_preset if spec.window_policy == "auto" else img.default_preset
    return render(img, preset)


def prepare_uint8(img: LoadedImage, spec: PreprocessSpec) -> tuple[np.ndarray, ResizeMapping]:
    """Steps 1–3: display pixels -> equalised -> resized uint8 ``(size, size)`` + mapping.

    Training augments this array (flip, rotation, jitter) before :func:`normalize`.
    """
    import cv2

    g = display_gray(img, spec)
    if spec.equalize:
        g = cv2.equalizeHist(np.ascontiguousarray(g))
    rows, cols = g.shape
    s = spec.size
    if spec.detail_size:
        u8, mapping = prepare_uint8_gray(g, PreprocessSpec(size=spec.detail_size, resize=spec.resize))
        big = cv2.resize(u8, (s, s), interpolation=cv2.INTER_LINEAR)
        k = s / spec.detail_size  # the letterbox padding scales with the image
        return big, ResizeMapping(rows, cols, s, round(mapping.inner_h * k), round(mapping.inner_w * k),
                                  round(mapping.pad_top * k), round(mapping.pad_left * k))
    return prepare_uint8_gray(g, spec)


def prepare_uint8_gray(g: np.ndarray, spec: PreprocessSpec) -> tuple[np.ndarray, ResizeMapping]:
    """Step 3 alone: resize display pixels (uint8 ``(H, W)``) to the model input + mapping."""
    import cv2

    rows, cols = g.shape
    s = spec.size
    if spec.resize == "letterbox":
        scale = s / max(rows, cols)
        ih, iw = max(1, round(rows * scale)), max(1, round(cols * scale))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        inner = cv2.resize(g, (iw, ih), interpolation=interp)
        out = np.zeros((s, s), dtype=np.uint8)
        top, left = (s - ih) // 2, (s - iw) // 2
        out[top : top + ih, left : left + iw] = inner
        return out, ResizeMapping(rows, cols, s, ih, iw, top, left)
    interp = cv2.INTER_AREA if (rows > s or cols > s) else cv2.INTER_LINEAR
    out = cv2.resize(g, (s, s), interpolation=interp)
    return out, ResizeMapping(rows, cols, s, s, s)


def normalize(u8: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Step 4–5: uint8 ``(H, W)`` -> float32 ``(3, H, W)`` ImageNet-normalised (RGB order)."""
    x = u8.astype(np.float32) * np.float32(1.0 / 255.0)
    mean = np.asarray(spec.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(spec.std, dtype=np.float32)[:, None, None]
    return (np.broadcast_to(x, (3, *x.shape)) - mean) / std


def preprocess(img: LoadedImage, spec: PreprocessSpec) -> tuple[np.ndarray, ResizeMapping]:
    """The whole pipeline: a decoded image -> model input ``(3, size, size)`` float32 + mapping."""
    u8, mapping = prepare_uint8(img, spec)
    return normalize(u8, spec).astype(np.float32, copy=False), mapping
