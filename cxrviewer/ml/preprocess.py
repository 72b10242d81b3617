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
    pipeline
        ``"imagenet"`` (the steps above) or ``"xrv"``: torchxrayvision's input exactly
        (display pixels scaled to [-1024, 1024], ``XRayCenterCrop``, ``XRayResizer`` to
        ``size`` with scikit-image's anti-aliased bilinear resize, one channel), see
        :func:`xrv_input`. ``equalize``, ``resize``, ``mean`` and ``std`` do not apply to it.
    channels
        Input channels of the network: 3 (ImageNet) or 1 (torchxrayvision).
    """

    size: int = 224
    window_policy: str = "default"
    equalize: bool = True
    resize: str = "stretch"
    detail_size: int = 0
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    pipeline: str = "imagenet"
    channels: int = 3

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        if self.pipeline == "imagenet" and self.channels == 3:
            # cards written before the xrv pipeline existed read back identically
            del d["pipeline"], d["channels"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> PreprocessSpec:
        d = dict(d or {})
        known = {f for f in cls.__dataclass_fields__}
        kw = {k: v for k, v in d.items() if k in known}
        for k in ("mean", "std"):
            if k in kw:
                kw[k] = tuple(float(x) for x in kw[k])
        for k in ("size", "detail_size", "channels"):
            if k in kw:
                kw[k] = int(kw[k] or 0)
        spec = cls(**kw)
        if spec.resize not in ("stretch", "letterbox"):
            raise ValueError(f"preprocessing.resize must be 'stretch' or 'letterbox', not {spec.resize!r}")
        if spec.detail_size and not 0 < spec.detail_size < spec.size:
            raise ValueError(f"preprocessing.detail_size must be 0 or below size {spec.size}, not {spec.detail_size}")
        if spec.pipeline not in ("imagenet", "xrv"):
            raise ValueError(f"preprocessing.pipeline must be 'imagenet' or 'xrv', not {spec.pipeline!r}")
        if spec.channels != (1 if spec.pipeline == "xrv" else 3):
            raise ValueError(f"preprocessing.channels {spec.channels} does not fit pipeline {spec.pipeline!r}")
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
    #: ``(top, left, side)`` of a centre crop taken before resizing (the xrv pipeline), or None
    crop: tuple[int, int, int] | None = None

    def to_original(self, m: np.ndarray) -> np.ndarray:
        """A map over the model input (any resolution, e.g. 7×7 or size×size) -> float32
        ``(src_rows, src_cols)``, bilinear, aligned with the original pixels."""
        import cv2

        m = np.asarray(m, dtype=np.float32)
        h, w = m.shape[:2]
        if (h, w) != (self.size, self.size):
            m = cv2.resize(m, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
        inner = m[self.pad_top : self.pad_top + self.inner_h, self.pad_left : self.pad_left + self.inner_w]
        if self.crop is not None:
            # the model saw a centre square: outside it there is no evidence (zeros)
            top, left, side = self.crop
            out = np.zeros((self.src_rows, self.src_cols), np.float32)
            out[top : top + side, left : left + side] = cv2.resize(
                np.ascontiguousarray(inner), (side, side), interpolation=cv2.INTER_LINEAR)
            return out
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
    if spec.pipeline == "xrv":
        return xrv_input(g, spec.size)
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
    """Step 4–5: uint8 ``(H, W)`` -> float32 ``(3, H, W)`` ImageNet-normalised (RGB order).

    For the xrv pipeline the array from :func:`prepare_uint8` is already the scaled float
    input: it gains its channel axis only.
    """
    if spec.pipeline == "xrv":
        return np.asarray(u8, dtype=np.float32)[None]
    x = u8.astype(np.float32) * np.float32(1.0 / 255.0)
    mean = np.asarray(spec.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(spec.std, dtype=np.float32)[:, None, None]
    return (np.broadcast_to(x, (3, *x.shape)) - mean) / std


def preprocess(img: LoadedImage, spec: PreprocessSpec) -> tuple[np.ndarray, ResizeMapping]:
    """The whole pipeline: a decoded image -> model input ``(3, size, size)`` float32 + mapping."""
    u8, mapping = prepare_uint8(img, spec)
    return normalize(u8, spec).astype(np.float32, copy=False), mapping


# --------------------------------------------------------------------------- torchxrayvision


def xrv_scale(g: np.ndarray, maxval: float = 255.0) -> np.ndarray:
    """torchxrayvision's ``datasets.normalize``: ``[0, maxval]`` -> ``[-1024, 1024]`` float32."""
    return ((2.0 * (np.asarray(g).astype(np.float32) / np.float32(maxval)) - 1.0) * 1024.0).astype(np.float32)


def center_crop_box(rows: int, cols: int) -> tuple[int, int, int]:
    """``XRayCenterCrop``'s square: ``(top, left, side)`` with its integer arithmetic."""
    side = min(rows, cols)
    return rows // 2 - side // 2, cols // 2 - side // 2, side


def _gaussian_kernel(sigma: float, truncate: float = 4.0) -> np.ndarray:
    # scipy.ndimage._gaussian_kernel1d (order 0), which skimage's anti-aliasing uses
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 / (float(sigma) ** 2) * x**2)
    return phi / phi.sum()


def _linear_axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices and weights of scipy's ``zoom(order=1, grid_mode=True, mode="grid-constant")``
    along one axis: sample ``o`` reads input coordinate ``(o + 0.5) * n_in / n_out - 0.5``;
    neighbours outside the image count as 0."""
    c = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    i0 = np.floor(c).astype(np.int64)
    w1 = c - i0
    return i0, 1.0 - w1, w1


def _gather(a: np.ndarray, i0: np.ndarray, w0: np.ndarray, w1: np.ndarray, axis: int) -> np.ndarray:
    n = a.shape[axis]
    pad = [(0, 0)] * a.ndim
    pad[axis] = (1, 1)
    ap = np.pad(a, pad)  # zeros outside: grid-constant with cval 0
    lo = np.take(ap, np.clip(i0 + 1, 0, n + 1), axis=axis)
    hi = np.take(ap, np.clip(i0 + 2, 0, n + 1), axis=axis)
    shape = [1] * a.ndim
    shape[axis] = -1
    return lo * w0.reshape(shape) + hi * w1.reshape(shape)


def skimage_resize(a: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """``skimage.transform.resize(a, (rows, cols), mode="constant", preserve_range=True)`` for a
    float 2-D array, reproduced with numpy + OpenCV (torchxrayvision's ``XRayResizer``):
    Gaussian anti-aliasing with sigma ``(factor - 1) / 2`` where shrinking (zero padding),
    bilinear sampling at pixel centres, then clipping to the input's range."""
    import cv2

    src = np.asarray(a, dtype=np.float64)
    fy, fx = src.shape[0] / rows, src.shape[1] / cols
    filt = src
    if fy > 1 or fx > 1:
        ky = _gaussian_kernel((fy - 1) / 2) if fy > 1 else np.ones(1)
        kx = _gaussian_kernel((fx - 1) / 2) if fx > 1 else np.ones(1)
        filt = cv2.sepFilter2D(src, cv2.CV_64F, kx, ky, borderType=cv2.BORDER_CONSTANT)
    iy = _linear_axis(src.shape[0], rows)
    ix = _linear_axis(src.shape[1], cols)
    out = _gather(_gather(filt, *iy, axis=0), *ix, axis=1).astype(np.float32)
    lo, hi = float(src.min()), float(src.max())
    if not lo <= 0.0 <= hi and float(out.min()) <= 0.0 <= float(out.max()):
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    return np.clip(out, lo, hi)


def xrv_input(g: np.ndarray, size: int) -> tuple[np.ndarray, ResizeMapping]:
    """Display pixels (uint8 ``(H, W)``) -> torchxrayvision's model input float32 ``(size, size)``
    in [-1024, 1024] (scale, ``XRayCenterCrop``, ``XRayResizer``) + the mapping back."""
    rows, cols = g.shape
    top, left, side = center_crop_box(rows, cols)
    x = xrv_scale(g)[top : top + side, left : left + side]
    out = skimage_resize(x, size, size)
    return out, ResizeMapping(rows, cols, size, size, size, crop=(top, left, side))
