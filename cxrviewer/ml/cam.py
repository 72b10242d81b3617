"""Grad-CAM for the ResNet-50 classifier: exact and about as cheap as one forward pass.

Three ways to the same map for the default target (``layer4``, followed by global average
pooling and a linear head):

``head``
    Grad-CAM with layer4's output as a leaf: run the backbone without a graph, then
    backpropagate the class score through avgpool + fc only. The gradient reaching layer4 is
    the same as in textbook Grad-CAM (nothing after layer4 differs), so the map is identical,
    for ~1.02x a forward instead of ~3.3x (no backward through the backbone).
``closed``
    No gradients at all: with a GAP + linear head, d y_c / d A_k(i,j) = w_ck / (H·W), so
    Grad-CAM's channel weights are ``w_ck / (H·W)`` and the map is ``ReLU(Σ_k w_ck A_k)``
    up to the positive factor ``1/(H·W)``, which normalisation removes. This is what the ONNX
    Runtime backend computes in numpy (see :func:`closed_form_cam_numpy`).
``hook`` / ``gradcam++``
    The general path for any target layer (forward hook + tensor hook on its output, full
    backward), with plain Grad-CAM or Grad-CAM++ weights. :class:`HookCAM` is a context
    manager that always removes its hooks.

:func:`textbook_gradcam` is the reference used by the tests and the benchmark
(``register_full_backward_hook`` on layer4, backward through the whole network).

Maps are normalised with :func:`normalize_cam` (min-max after ReLU; a flat map becomes
zeros, never NaN) and returned as float32; :meth:`CamResult.to_original` sends a map back to
the original image geometry through :class:`~cxrviewer.ml.preprocess.ResizeMapping`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

    from cxrviewer.ml.preprocess import ResizeMapping

METHODS = ("head", "closed", "hook", "gradcam++")


# --------------------------------------------------------------------------- numpy parts


def normalize_cam(m: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """ReLU then min-max to [0, 1] per map, float32; a flat (or non-finite) map -> zeros.

    ``m`` is ``(h, w)`` or ``(n, h, w)``.
    """
    a = np.nan_to_num(np.asarray(m, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    a = np.maximum(a, 0.0)
    single = a.ndim == 2
    if single:
        a = a[None]
    lo = a.min(axis=(1, 2), keepdims=True)
    hi = a.max(axis=(1, 2), keepdims=True)
    span = hi - lo
    flat = span <= eps * np.maximum(1.0, np.abs(hi))
    out = np.where(flat, 0.0, (a - lo) / np.where(flat, 1.0, span))
    out = out.astype(np.float32)
    return out[0] if single else out


def closed_form_cam_numpy(
    acts: np.ndarray, fc_weight: np.ndarray, class_idx: np.ndarray | int
) -> np.ndarray:
    """Grad-CAM of a GAP + linear head in closed form, in numpy (the ONNX Runtime path).

    Parameters
    ----------
    acts
        layer4 activations ``(n, K, h, w)`` (or ``(K, h, w)``).
    fc_weight
        The head's weight ``(C, K)``.
    class_idx
        The class explained, per image (int or ``(n,)``).

    Returns
    -------
    numpy.ndarray
        Normalised maps ``(n, h, w)`` (``(h, w)`` for a single image), float32.
    """
    acts = np.asarray(acts, dtype=np.float32)
    single = acts.ndim == 3
    if single:
        acts = acts[None]
    idx = np.broadcast_to(np.asarray(class_idx, dtype=np.int64), (acts.shape[0],))
    w = np.asarray(fc_weight, dtype=np.float32)[idx]  # (n, K)
    raw = np.einsum("nk,nkhw->nhw", w, acts, optimize=True)
    out = normalize_cam(raw)
    return out[0] if single else out


def closed_form_cams_all(acts: np.ndarray, fc_weight: np.ndarray) -> np.ndarray:
    """Every class's closed-form Grad-CAM from one set of activations (multi-label heads).

    ``acts`` ``(n, K, h, w)``, ``fc_weight`` ``(C, K)`` -> normalised maps ``(n, C, h, w)``
    float32. One einsum over the activations the forward pass already produced: the cost is
    ``C·K·h·w`` multiply-adds per image (18 findings at 16×16: ~9 M, a few ms), against a
    backbone forward of billions.
    """
    a = np.asarray(acts, dtype=np.float32)
    w = np.asarray(fc_weight, dtype=np.float32)
    raw = np.einsum("ck,nkhw->nchw", w, a, optimize=True)
    n, c, h, ww = raw.shape
    return normalize_cam(raw.reshape(n * c, h, ww)).reshape(n, c, h, ww)


# --------------------------------------------------------------------------- torch parts


def backbone_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """torchvision ResNet up to and including layer4 -> activations ``(n, 2048, h, w)``."""
    x = model.conv1(x)
    x = model.bn1(x)
    x = model.relu(x)
    x = model.maxpool(x)
    x = model.layer1(x)
    x = model.layer2(x)
    x = model.layer3(x)
    return model.layer4(x)


def head_logits(model: nn.Module, acts: torch.Tensor) -> torch.Tensor:
    """avgpool + flatten + fc: layer4 activations -> logits."""
    import torch

    return model.fc(torch.flatten(model.avgpool(acts), 1))


def _pick_class(logits: torch.Tensor, class_idx: int | None) -> torch.Tensor:
    import torch

    n, c = logits.shape
    if class_idx is None:
        return logits.argmax(dim=1)
    if not 0 <= int(class_idx) < c:
        raise ValueError(f"class_idx {class_idx} out of range for {c} classes")
    return torch.full((n,), int(class_idx), dtype=torch.long, device=logits.device)


@dataclass(frozen=True)
class CamResult:
    """One image's explanation.

    Attributes
    ----------
    logits
        The model's logits ``(C,)`` for this image, float32.
    class_idx
        The class explained.
    low_res
        Normalised map over the model input at the target layer's resolution (7×7 for
        layer4 at 224), float32 in [0, 1].
    method
        Which path computed it (:data:`METHODS` or ``"textbook"``).
    """

    logits: np.ndarray
    class_idx: int
    low_res: np.ndarray
    method: str

    def to_original(self, mapping: ResizeMapping) -> np.ndarray:
        """The map in the original image's geometry (float32 rows×cols, in [0, 1])."""
        return np.clip(mapping.to_original(self.low_res), 0.0, 1.0).astype(np.float32, copy=False)


def _results(
    logits: torch.Tensor, cls: torch.Tensor, raw: torch.Tensor, method: str
) -> list[CamResult]:
    lg = logits.detach().float().cpu().numpy()
    maps = normalize_cam(raw.detach().float().cpu().numpy())
    ci = cls.cpu().numpy()
    return [CamResult(lg[i], int(ci[i]), maps[i], method) for i in range(lg.shape[0])]


def head_gradcam(
    model: nn.Module, x: torch.Tensor, class_idx: int | None = None
) -> list[CamResult]:
    """Exact Grad-CAM at layer4 by backpropagating through the head only (see module doc)."""
    import torch

    with torch.no_grad():
        acts = backbone_features(model, x)
    acts = acts.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = head_logits(model, acts)
        cls = _pick_class(logits, class_idx)
        score = logits.gather(1, cls[:, None]).sum()
        (grads,) = torch.autograd.grad(score, acts)
    with torch.no_grad():
        weights = grads.mean(dim=(2, 3), keepdim=True)
        raw = torch.relu((weights * acts).sum(dim=1))
    return _results(logits, cls, raw, "head")


def closed_form_gradcam(
    model: nn.Module, x: torch.Tensor, class_idx: int | None = None
) -> list[CamResult]:
    """Grad-CAM at layer4 without gradients: ``ReLU(Σ_k w_ck A_k)`` (same map up to scale)."""
    import torch

    from cxrviewer.ml.model import head_linear

    with torch.no_grad():
        acts = backbone_features(model, x)
        logits = head_logits(model, acts)
        cls = _pick_class(logits, class_idx)
        w = head_linear(model).weight[cls]  # (n, K)
        raw = torch.relu(torch.einsum("nk,nkhw->nhw", w.to(acts.dtype), acts))
    return _results(logits, cls, raw, "closed")


def _resolve_layer(model: nn.Module, target_layer: str | nn.Module) -> nn.Module:
    if not isinstance(target_layer, str):
        return target_layer
    mod = model
    for part in target_layer.split("."):
        mod = mod[int(part)] if part.isdigit() else getattr(mod, part)
    return mod


class HookCAM:
    """Grad-CAM / Grad-CAM++ at any layer through hooks; a context manager.

    A forward hook on the target layer keeps its output and puts a tensor hook on it that
    keeps the gradient; the class score is backpropagated through the whole network. Every
    hook is removed on ``__exit__`` (also when the block raises) or :meth:`close`.

    Examples
    --------
    >>> with HookCAM(model, "layer3", method="gradcam++") as cam:   # doctest: +SKIP
    ...     result = cam(x)[0]
    """

    def __init__(
        self, model: nn.Module, target_layer: str | nn.Module = "layer4", method: str = "gradcam"
    ):
        if method not in ("gradcam", "gradcam++"):
            raise ValueError(f"method must be 'gradcam' or 'gradcam++', not {method!r}")
        self.model = model
        self.layer = _resolve_layer(model, target_layer)
        self.method = method
        self._handles: list[Any] = []
        self._acts: torch.Tensor | None = None
        self._grads: torch.Tensor | None = None

    def _forward_hook(self, module, inputs, output) -> None:
        self._acts = output.detach()
        if output.requires_grad:
            self._handles.append(output.register_hook(self._save_grad))

    def _save_grad(self, grad) -> None:
        self._grads = grad.detach()

    def __enter__(self) -> HookCAM:
        self._handles.append(self.layer.register_forward_hook(self._forward_hook))
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Remove every hook (idempotent) and drop the kept tensors."""
        while self._handles:
            self._handles.pop().remove()
        self._acts = self._grads = None

    def __call__(self, x: torch.Tensor, class_idx: int | None = None) -> list[CamResult]:
        import torch

        if not self._handles:
            raise RuntimeError("HookCAM used outside its `with` block (no hooks registered)")
        self._acts = self._grads = None
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)  # so the target layer's output has a graph
            logits = self.model(x)
            cls = _pick_class(logits, class_idx)
            score = logits.gather(1, cls[:, None]).sum()
            self.model.zero_grad(set_to_none=True)
            score.backward()
        # Drop this call's tensor hooks (the forward hook stays until close()).
        while len(self._handles) > 1:
            self._handles.pop().remove()
        if self._acts is None or self._grads is None:
            raise RuntimeError("the target layer was not reached by the forward/backward pass")
        a, g = self._acts.float(), self._grads.float()
        with torch.no_grad():
            if self.method == "gradcam":
                weights = g.mean(dim=(2, 3), keepdim=True)
            else:  # Grad-CAM++ (Chattopadhyay et al. 2018), exp-score closed form of alpha
                g2 = g * g
                g3 = g2 * g
                sum_a = a.sum(dim=(2, 3), keepdim=True)
                denom = 2 * g2 + sum_a * g3
                alpha = torch.where(
                    g != 0,
                    g2 / torch.where(denom != 0, denom, torch.ones_like(denom)),
                    torch.zeros_like(g),
                )
                weights = (alpha * torch.relu(g)).sum(dim=(2, 3), keepdim=True)
            raw = torch.relu((weights * a).sum(dim=1))
        return _results(logits, cls, raw, "hook" if self.method == "gradcam" else "gradcam++")


def textbook_gradcam(
    model: nn.Module, x: torch.Tensor, class_idx: int | None = None
) -> list[CamResult]:
    """Reference Grad-CAM (Selvaraju et al.): module hooks on layer4
    (``register_forward_hook`` + ``register_full_backward_hook``), backward through the
    whole network, channel weights = spatial mean of the gradient."""
    import torch

    store: dict[str, torch.Tensor] = {}

    def fwd(_m, _i, out):
        store["a"] = out.detach()

    def bwd(_m, _gin, gout):
        store["g"] = gout[0].detach()

    layer = model.layer4
    handles = [layer.register_forward_hook(fwd), layer.register_full_backward_hook(bwd)]
    try:
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            logits = model(xg)
            cls = _pick_class(logits, class_idx)
            model.zero_grad(set_to_none=True)
            logits.gather(1, cls[:, None]).sum().backward()
    finally:
        for h in handles:
            h.remove()
    with torch.no_grad():
        a, g = store["a"].float(), store["g"].float()
        raw = torch.relu((g.mean(dim=(2, 3), keepdim=True) * a).sum(dim=1))
    return _results(logits, cls, raw, "textbook")


def gradcam(
    model: nn.Module,
    x: torch.Tensor,
    class_idx: int | None = None,
    *,
    method: str = "head",
    target_layer: str | nn.Module = "layer4",
) -> list[CamResult]:
    """Explain a batch ``x`` (``(n, 3, H, W)``) with the chosen method.

    ``head`` and ``closed`` need the target ``layer4`` of a GAP + linear head (any other
    target layer goes through the hook path automatically). ``class_idx=None`` explains each
    image's predicted class.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    is_l4 = target_layer == "layer4" or target_layer is getattr(model, "layer4", None)
    if method in ("head", "closed") and is_l4:
        fn: Callable[..., list[CamResult]] = (
            head_gradcam if method == "head" else closed_form_gradcam
        )
        return fn(model, x, class_idx)
    with HookCAM(
        model, target_layer, method="gradcam++" if method == "gradcam++" else "gradcam"
    ) as cam:
        return cam(x, class_idx)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two maps (1.0 when both are identical constants)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    if den == 0:
        return 1.0 if np.allclose(a, b) else 0.0
    return float((a * b).sum() / den)
