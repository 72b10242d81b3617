"""Inference: one model, two backends (ONNX Runtime or torch), predictions with Grad-CAM.

:class:`Engine` loads a model directory (default: the registry's active model) and runs it
through

``onnxruntime``
    An ONNX export of the model with two outputs, the logits and layer4's activations. The
    Grad-CAM map is computed in numpy in closed form, ``ReLU(Σ_k w_ck A_k)`` (exactly
    Grad-CAM's map for a GAP + linear head, see :mod:`cxrviewer.ml.cam`), from the
    activations and the fc weights, which are read from the safetensors file with
    ``safetensors.numpy``. When the ``.onnx`` file already exists (beside the weights, or in
    the user cache keyed by the weights' sha256) this path never imports torch, so a
    viewer-only install can leave torch out. Measured here ~0.6x the eager torch forward.
``torch``
    The reference: eager torch, ``channels_last``, ``torch.inference_mode`` for plain
    inference, and the head-only exact Grad-CAM when a map is wanted.

``backend="auto"`` picks ONNX Runtime when it is installed and the model exports (on a GPU
machine whose onnxruntime has no CUDA provider, torch on the GPU instead), else torch.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cxrviewer import paths
from cxrviewer.core.errors import CxrError
from cxrviewer.core.types import LoadedImage
from cxrviewer.ml import ood
from cxrviewer.ml.cam import closed_form_cam_numpy, closed_form_cams_all, normalize_cam
from cxrviewer.ml.card import ModelCard, as_card
from cxrviewer.ml.extras import TRAIN_EXTRA_HINT
from cxrviewer.ml.onnx_model import (  # noqa: F401 - re-exported: the ONNX side of the engine
    ONNX_FILE,
    export_onnx,
    export_onnx_for_dir,
    find_onnx,
    onnx_cache_path,
)
from cxrviewer.ml.preprocess import PreprocessSpec, ResizeMapping, preprocess
from cxrviewer.ml.registry import (
    ModelError,
    Registry,
    read_card,
    verify_checksum,
)

log = logging.getLogger(__name__)

CLASSES = ("Normal", "Abnormal")
#: the class every heatmap explains unless a caller asks for another
CAM_CLASS = 1


def calibration_temperature(card: ModelCard | dict[str, Any]) -> float:
    """The card's ``calibration.temperature`` (a positive finite number), else 1.0."""
    if isinstance(card, ModelCard):
        return card.temperature
    cal = card.get("calibration")
    t = cal.get("temperature") if isinstance(cal, dict) else None
    try:
        t = float(t)
    except (TypeError, ValueError):
        return 1.0
    return t if np.isfinite(t) and t > 0 else 1.0
BACKENDS = ("auto", "onnxruntime", "torch")


@dataclass(frozen=True)
class FindingScore:
    """One finding of a multi-label model for one image.

    ``probability`` is on the card's scale (torchxrayvision's op_norm: 0.5 at the operating
    point); ``op_point`` is ``None`` for a finding without one, which is then never
    ``positive`` (its number is the plain sigmoid and must not be read against 0.5).
    """

    name: str
    probability: float
    op_point: float | None
    positive: bool

    @property
    def has_op_point(self) -> bool:
        return self.op_point is not None


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one image.

    ``cam`` is float32 ``(rows, cols)`` in [0, 1] in the original image geometry (or None);
    ``cam_class`` the class it explains (by default Abnormal, whatever the label).
    ``gate`` is the out-of-distribution gate's outcome (:mod:`cxrviewer.ml.ood`): when it is
    not ``ok`` the probability is still computed, but callers show it only when the user
    asks ("Score anyway", ``infer --score-all``), with a caution. ``temperature`` is the
    calibration temperature applied (``softmax(logits / T)``; 1.0 = uncalibrated).
    """

    probabilities: tuple[float, float]
    probability_abnormal: float
    label: str
    threshold: float
    cam: np.ndarray | None
    cam_class: int | None
    model_name: str
    model_version: str
    device: str
    backend: str
    elapsed_ms: float
    gate: ood.GateOutcome = ood.PASSED
    temperature: float = 1.0
    #: multi-label models: every finding's score (empty for the two-class demo)
    findings: tuple[FindingScore, ...] = ()
    #: multi-label models with ``cam``: every finding's low-resolution map ``(C, h, w)`` from
    #: the same forward pass, sent back to the image on demand by :meth:`finding_map`
    finding_maps: np.ndarray | None = None
    mapping: ResizeMapping | None = None

    @property
    def multi_label(self) -> bool:
        return bool(self.findings)

    def finding_map(self, name: str) -> np.ndarray | None:
        """The heatmap of finding ``name`` in the original geometry (float32 [0, 1]), or None
        when maps were not computed. The UI's per-finding heatmap chooser calls this."""
        if self.finding_maps is None or self.mapping is None:
            return None
        for i, f in enumerate(self.findings):
            if f.name == name:
                return np.clip(self.mapping.to_original(self.finding_maps[i]), 0.0, 1.0).astype(np.float32)
        raise KeyError(name)

    def ranked_findings(self) -> list[FindingScore]:
        """Findings by probability, highest first (what the AI panel lists)."""
        return sorted(self.findings, key=lambda f: -f.probability)

    @property
    def scored(self) -> bool:
        """Whether the gate let this image be scored (else it is shown only on request)."""
        return self.gate.ok

    @property
    def caution(self) -> str:
        """What every display of this result must say beside it ("" when nothing)."""
        if not self.gate.ok:
            return f"scored anyway although out of distribution: {self.gate.reason}"
        return self.gate.caution


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Softmax over the last axis of ``logits / temperature`` (temperature scaling,
    Guo et al. 2017: ``T > 1`` softens over-confident probabilities)."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float64)


# --------------------------------------------------------------------------- ONNX files


def _gpu_present() -> bool:
    """A cheap guess whether an NVIDIA GPU exists, without importing torch."""
    return Path("/proc/driver/nvidia").exists() or shutil.which("nvidia-smi") is not None


def _ort_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def read_fc_weight_numpy(weights_file: Path) -> np.ndarray:
    """The head's weight ``(2, 2048)`` as float32 from a safetensors file, without torch."""
    from safetensors import safe_open

    with safe_open(str(weights_file), framework="np") as f:
        keys = set(f.keys())
        for k in ("fc.weight", "fc.1.weight"):
            if k in keys:
                return np.asarray(f.get_tensor(k), dtype=np.float32)
    raise ModelError(weights_file, "no fc.weight tensor (not a model of this project)")


# --------------------------------------------------------------------------- backends


class _OrtBackend:
    name = "onnxruntime"

    def __init__(self, onnx_path: Path, fc_weight: np.ndarray, device: str):
        import onnxruntime as ort

        so = ort.SessionOptions()
        # Spin-waiting threads keep cores busy between runs (they stole both cores from the
        # GUI here); a desktop app wants them asleep.
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.add_session_config_entry("session.inter_op.allow_spinning", "0")
        so.intra_op_num_threads = max(1, min(os.cpu_count() or 1, 8))
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CPUExecutionProvider"]
        if device != "cpu" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(str(onnx_path), so, providers=providers)
        used = self.session.get_providers()
        self.device = "cuda" if used and used[0] == "CUDAExecutionProvider" else "cpu"
        self.fc_weight = fc_weight
        self.lock = threading.Lock()

    def run(
        self, x: np.ndarray, cam: bool, target: Sequence[int] | None
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """-> (logits, maps or None, pooled layer4 features ``(n, 2048)``)."""
        with self.lock:
            logits, acts = self.session.run(
                None, {"input": np.ascontiguousarray(x, dtype=np.float32)}
            )
        maps = None
        if cam:
            assert target is not None
            maps = closed_form_cam_numpy(acts, self.fc_weight, np.asarray(target))
        return logits.astype(np.float32), maps, ood.gap_features(acts)

    def run_acts(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """-> (logits, layer4 activations): one pass, for multi-label heads."""
        with self.lock:
            logits, acts = self.session.run(None, {"input": np.ascontiguousarray(x, dtype=np.float32)})
        return logits.astype(np.float32), acts


BF16_TOLERANCE = 0.005


def _calibration_batch(size: int = 224) -> np.ndarray:
    """The RG1 radiograph and its mirror image (or a smooth synthetic image), preprocessed."""
    try:
        from cxrviewer.core.dicom_io import load_image

        sample = paths.sample_paths()[0]
        arr, _ = preprocess(load_image(sample), PreprocessSpec(size=size))
    except (IndexError, CxrError, OSError):
        yy, xx = np.mgrid[:size, :size] / size
        u8 = (255 * (0.5 + 0.4 * np.sin(6 * xx) * np.cos(4 * yy))).astype(np.uint8)
        from cxrviewer.ml.preprocess import normalize

        arr = normalize(u8, PreprocessSpec(size=size))
    return np.stack([arr, arr[:, :, ::-1]]).astype(np.float32)


class _TorchBackend:
    name = "torch"

    def __init__(self, model: Any, device: str, bf16: bool = False):
        import torch

        from cxrviewer.ml.model import pick_device

        self.torch = torch
        self.dev = pick_device(device)
        self.device = self.dev.type
        self.model = model.to(self.dev).eval()
        # channels_last: ~0.86x the contiguous forward time here (oneDNN's native layout).
        self.model = self.model.to(memory_format=torch.channels_last)
        self.bf16 = False
        #: max |P(bf16) - P(fp32)| measured when bf16 was requested (None: not requested)
        self.bf16_max_prob_diff: float | None = None
        if bf16:
            self.bf16 = self._bf16_ok()

    def _bf16_ok(self, tolerance: float | None = None) -> bool:
        """bf16 autocast only if it keeps the probabilities within ``tolerance`` of fp32 on a
        radiograph-like calibration batch (the RG1 sample when installed)."""
        torch = self.torch
        tolerance = BF16_TOLERANCE if tolerance is None else tolerance
        x = _calibration_batch()
        t = self._input(x)
        with torch.inference_mode():
            p32 = softmax(self.model(t).float().cpu().numpy())
            with torch.autocast(device_type=self.dev.type, dtype=torch.bfloat16):
                p16 = softmax(self.model(t).float().cpu().numpy())
        self.bf16_max_prob_diff = float(np.abs(p16 - p32).max())
        if self.bf16_max_prob_diff > tolerance:
            log.warning(
                "bf16 autocast disabled: probabilities moved by %.4f (> %.3f)",
                self.bf16_max_prob_diff,
                tolerance,
            )
            return False
        return True

    def _input(self, x: np.ndarray):
        t = self.torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.dev)
        return t.contiguous(memory_format=self.torch.channels_last)

    def _autocast(self):
        if self.bf16:
            return self.torch.autocast(device_type=self.dev.type, dtype=self.torch.bfloat16)
        return contextlib.nullcontext()

    def run_acts(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """-> (logits, layer4 activations): one pass, for multi-label heads."""
        from cxrviewer.ml.cam import backbone_features, head_logits

        with self.torch.inference_mode(), self._autocast():
            acts = backbone_features(self.model, self._input(x))
            logits = head_logits(self.model, acts)
        return logits.float().cpu().numpy(), acts.float().cpu().numpy()

    @property
    def fc_weight(self) -> np.ndarray:
        from cxrviewer.ml.model import head_linear

        return head_linear(self.model).weight.detach().float().cpu().numpy()

    def run(
        self, x: np.ndarray, cam: bool, target: Sequence[int] | None
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """-> (logits, maps or None, pooled layer4 features ``(n, 2048)``)."""
        from cxrviewer.ml.cam import backbone_features, head_logits

        torch = self.torch
        t = self._input(x)
        if not cam:
            with torch.inference_mode(), self._autocast():
                acts = backbone_features(self.model, t)
                logits = head_logits(self.model, acts)
                feats = acts.float().mean(dim=(2, 3)).cpu().numpy()
                return logits.float().cpu().numpy(), None, feats
        # Exact Grad-CAM at layer4 through the head only (cam.head_gradcam), with the
        # class chosen by the caller (which needs the logits first: both come from one pass).
        with torch.no_grad(), self._autocast():
            acts = backbone_features(self.model, t)
        acts = acts.float().detach().requires_grad_(True)
        with torch.enable_grad():
            logits = head_logits(self.model, acts)
            if target is None:
                cls = logits.argmax(1)
            else:
                cls = torch.as_tensor(list(target), dtype=torch.long, device=logits.device)
            (grads,) = torch.autograd.grad(logits.gather(1, cls[:, None]).sum(), acts)
        with torch.no_grad():
            raw = torch.relu((grads.mean(dim=(2, 3), keepdim=True) * acts).sum(dim=1))
            feats = acts.mean(dim=(2, 3)).cpu().numpy()
        return logits.detach().float().cpu().numpy(), normalize_cam(raw.cpu().numpy()), feats


# --------------------------------------------------------------------------- engine


class Engine:
    """A loaded model ready to predict. Create with :meth:`Engine.load`.

    Attributes
    ----------
    card, name, version, threshold
        From the model card.
    device
        ``"cpu"``, ``"cuda"`` or ``"mps"``.
    backend
        ``"onnxruntime"`` or ``"torch"``.
    temperature
        The card's ``calibration.temperature`` (1.0 when absent): probabilities are
        ``softmax(logits / temperature)`` and the card's threshold is on that scale.
    precision
        ``"fp32"`` or ``"int8"`` (the quantized ONNX graph, :mod:`cxrviewer.ml.quantize`).
    gate, gate_error
        The learned out-of-distribution check (``ood.npz``; ``None`` when the model has none
        or its file fails verification, ``gate_error`` then says why).
    """

    precision = "fp32"

    def __init__(self, model_dir: Path, card: dict[str, Any], impl: Any):
        self.model_dir = model_dir
        from cxrviewer.ml.validation import card_with_validations

        # with the site's own validations of these weights (a bundled model's live in the
        # user's data): what the verdict policy reads beside every number
        self.card: ModelCard = card_with_validations(model_dir, as_card(card))
        card = self.card
        self.multi_label = card.multi_label
        self.findings = card.findings
        self._op_points = np.array(
            [np.nan if f.op_point is None else f.op_point for f in card.findings], dtype=np.float64)
        self.name = card.name
        self.version = card.version
        self.threshold = card.threshold
        self.spec = PreprocessSpec.from_dict(card.preprocessing)
        self.temperature = calibration_temperature(card)
        self._impl = impl
        self.backend: str = impl.name
        self.device: str = impl.device
        self._lazy_torch: Any = None
        self.gate: ood.FeatureGate | None = None
        self.gate_error = ""
        try:
            self.gate = ood.load_feature_gate(model_dir, card)
        except CxrError as e:
            # The model still loads (the viewer stays usable); every result then carries a
            # caution saying the learned check is off and why.
            self.gate_error = str(e)
            log.warning("OOD gate of %s not used: %s", model_dir, e)

    @classmethod
    def load(
        cls,
        model_dir: str | os.PathLike | None = None,
        backend: str = "auto",
        device: str = "auto",
        bf16: bool = False,
        precision: str = "fp32",
    ) -> Engine:
        """Load ``model_dir`` (None: the registry's active model).

        Parameters
        ----------
        backend
            ``"auto"``, ``"onnxruntime"`` or ``"torch"``.
        device
            ``"auto"`` (CUDA, else MPS, else CPU), or an explicit torch device string.
        bf16
            torch backend only: bfloat16 autocast (pays only on CPUs with AMX or on GPUs).
        precision
            ``"fp32"``, ``"int8"`` (the model's verified quantized graph, ONNX Runtime only) or
            ``"auto"`` (int8 where its record qualifies and was measured on a CPU like this one), see
            :mod:`cxrviewer.ml.quantize`.

        Raises
        ------
        CxrError
            No model installed, or a model that fails verification.
        """
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
        if precision == "int8" and backend == "torch":
            raise CxrError(None, "precision int8 runs on ONNX Runtime: use --backend onnxruntime or auto")
        if model_dir is None:
            entry = Registry().active()
            if entry is None:
                raise CxrError(
                    None,
                    "no model installed: import one with `cxrviewer models import DIR` or train one with `cxrviewer train`",
                )
            model_dir = entry.path
        model_dir = Path(model_dir)
        card = read_card(model_dir)
        wfile = verify_checksum(model_dir, card)

        use_ort = backend == "onnxruntime" or precision == "int8"
        if backend == "auto" and precision != "int8":
            want_gpu = device != "cpu"
            use_ort = _ort_available() and not bf16
            if use_ort and want_gpu and _gpu_present():
                import onnxruntime as ort

                # A GPU without onnxruntime's CUDA provider: torch on the GPU is far faster.
                use_ort = "CUDAExecutionProvider" in ort.get_available_providers()
        if use_ort:
            if not _ort_available():
                raise CxrError(
                    None, "backend 'onnxruntime' requested but onnxruntime is not installed"
                )
            try:
                return cls._load_ort(model_dir, card, wfile, device, precision)
            except CxrError:
                if backend == "onnxruntime" or precision == "int8":
                    raise
            except Exception as e:  # export or session failure: torch is the reference path
                if backend == "onnxruntime" or precision == "int8":
                    raise CxrError(model_dir, f"ONNX Runtime backend unavailable: {e}") from e
                log.warning(
                    "ONNX Runtime backend unavailable for %s (%s); using torch", model_dir, e
                )
        try:
            from cxrviewer.ml.registry import load_model_dir

            model, card = load_model_dir(model_dir)
        except ImportError as e:  # a viewer-only install without torch
            raise CxrError(
                model_dir,
                f"this model has no {ONNX_FILE} and torch is not installed ({e}): import it where torch "
                f"is available (`cxrviewer models import DIR` writes {ONNX_FILE}), or {TRAIN_EXTRA_HINT}",
            ) from None
        return cls(model_dir, card, _TorchBackend(model, device, bf16=bf16))

    @classmethod
    def _load_ort(cls, model_dir: Path, card: dict[str, Any], wfile: Path, device: str,
                  precision: str = "fp32") -> Engine:
        from cxrviewer.ml.quantize import choose

        int8 = choose(precision, model_dir, card, device)  # None: float32
        onnx_path = int8 or find_onnx(model_dir, card)
        model = None
        if onnx_path is None:
            # Lazy export into the user cache (needs torch, once per weights).
            from cxrviewer.ml.registry import load_model_dir

            model, card = load_model_dir(model_dir)
            size = PreprocessSpec.from_dict(card.preprocessing).size
            onnx_path = export_onnx(
                model,
                onnx_cache_path(card.weights_sha256),
                card.weights_sha256,
                size,
            )
        if wfile.suffix == ".safetensors":
            fc = read_fc_weight_numpy(wfile)
        else:
            if model is None:
                from cxrviewer.ml.registry import load_model_dir

                model, card = load_model_dir(model_dir)
            from cxrviewer.ml.model import head_linear

            fc = head_linear(model).weight.detach().float().numpy()
        eng = cls(model_dir, card, _OrtBackend(onnx_path, fc, "cpu" if device == "cpu" else "auto"))
        eng.precision = "int8" if int8 else "fp32"
        return eng

    @property
    def gate_mode(self) -> str:
        """``"learned"`` or ``"header_rules_only"`` (:func:`cxrviewer.ml.ood.gate_mode`)."""
        return ood.gate_mode(self.gate)[0]

    @property
    def gate_mode_text(self) -> str:
        """The line the AI panel shows about the out-of-distribution check."""
        return ood.gate_mode(self.gate)[1]

    @property
    def features_dim(self) -> int:
        from cxrviewer.ml import arch

        return int(arch.get(self.card.architecture).FEATURES)

    # ---- prediction
    def prepare(self, img: LoadedImage) -> tuple[np.ndarray, ResizeMapping]:
        """The model input of ``img`` (the one preprocessing function) and its mapping."""
        return preprocess(img, self.spec)

    def _label(self, p_abn: float) -> str:
        return CLASSES[1] if p_abn >= self.threshold else CLASSES[0]

    @staticmethod
    def _target(target_class: int | None) -> int:
        # The heatmap explains the Abnormal class whatever the label: a Normal call's map in
        # the same colours would read as disease ("evidence for Abnormal" is what it shows).
        if target_class is None:
            return CAM_CLASS
        if target_class not in (0, 1):
            raise ValueError(f"target_class must be 0 or 1, not {target_class!r}")
        return int(target_class)

    def forward(
        self, x: np.ndarray, cam: bool = False, target_class: int | None = None
    ) -> tuple[np.ndarray, np.ndarray | None, list[int] | None, np.ndarray]:
        """Batch ``(n, 3, S, S)`` -> (calibrated probabilities ``(n, 2)``, low-res maps or
        None, classes explained or None, pooled layer4 features ``(n, 2048)``): one pass."""
        if self.multi_label:
            # One pass gives every finding's probability and (closed-form Grad-CAM on the
            # linear head) every finding's map: maps are (n, C, h, w), targets None.
            logits, acts = self._impl.run_acts(x)
            maps = closed_form_cams_all(acts, self._impl.fc_weight) if cam else None
            return self.head_probs(logits), maps, None, ood.gap_features(acts)
        targets = [self._target(target_class)] * x.shape[0] if cam else None
        logits, maps, feats = self._impl.run(x, cam, targets)
        return softmax(logits, self.temperature), maps, targets, feats

    def head_probs(self, logits: np.ndarray) -> np.ndarray:
        """Multi-label logits ``(n, C)`` -> probabilities on the card's scale: sigmoid, then
        op_norm when the card says so (findings without an operating point keep the sigmoid)."""
        from cxrviewer.ml.xrv import op_norm, sigmoid

        p = sigmoid(np.asarray(logits, dtype=np.float64) / self.temperature)
        return op_norm(p, self._op_points) if self.card.op_norm else p

    def positive(self, probs_row: np.ndarray) -> np.ndarray:
        """Which findings are at or above their operating point (never one without it)."""
        has = np.isfinite(self._op_points)
        cut = np.full_like(self._op_points, 0.5) if self.card.op_norm else np.where(has, self._op_points, 1.0)
        return has & (np.asarray(probs_row, dtype=np.float64) >= cut)

    def summary(self, probs_row: np.ndarray) -> tuple[float, str]:
        """``(probability_abnormal, label)`` of one row of :meth:`forward`'s probabilities.

        Two-class model: P(Abnormal) against the card's threshold. Multi-label model: the
        highest probability among findings that have an operating point; Abnormal when it is
        >= 0.5 (op_norm scale: at or above some finding's operating point)."""
        row = np.asarray(probs_row, dtype=np.float64)
        if not self.multi_label:
            p = float(row[1])
            return p, self._label(p)
        has = np.isfinite(self._op_points)
        p = float(row[has].max()) if has.any() else float(row.max())
        return p, (CLASSES[1] if bool(self.positive(row).any()) else CLASSES[0])

    def finding_scores(self, probs_row: np.ndarray) -> tuple[FindingScore, ...]:
        if not self.multi_label:
            return ()
        pos = self.positive(probs_row)
        return tuple(FindingScore(f.name, float(probs_row[i]), f.op_point, bool(pos[i]))
                     for i, f in enumerate(self.findings))

    def run_arrays(
        self, x: np.ndarray, cam: bool = False, target_class: int | None = None
    ) -> tuple[np.ndarray, np.ndarray | None, list[int] | None]:
        """Batch ``(n, 3, S, S)`` -> (probabilities ``(n, 2)``, low-res maps or None, classes)."""
        probs, maps, targets, _ = self.forward(x, cam, target_class)
        return probs, maps, targets

    def features(self, imgs: Sequence[LoadedImage]) -> np.ndarray:
        """Pooled layer4 features ``(n, 2048)`` float32 of images (what the OOD gate reads)."""
        if not imgs:
            return np.zeros((0, self.features_dim), np.float32)
        x = np.stack([self.prepare(im)[0] for im in imgs])
        return self.forward(x, cam=False)[3].astype(np.float32)

    def _prediction(
        self,
        probs: np.ndarray,
        cam: np.ndarray | None,
        cls: int | None,
        ms: float,
        gate: ood.GateOutcome = ood.PASSED,
        finding_maps: np.ndarray | None = None,
        mapping: ResizeMapping | None = None,
    ) -> Prediction:
        p_abn, label = self.summary(probs)
        return Prediction(
            probabilities=(1.0 - p_abn, p_abn) if self.multi_label else (float(probs[0]), float(probs[1])),
            probability_abnormal=p_abn,
            label=label,
            threshold=0.5 if self.multi_label else self.threshold,
            findings=self.finding_scores(probs),
            finding_maps=finding_maps,
            mapping=mapping,
            cam=cam,
            cam_class=cls,
            model_name=self.name,
            model_version=self.version,
            device=self.device,
            backend=self.backend,
            elapsed_ms=ms,
            gate=gate,
            temperature=self.temperature,
        )

    def assess(self, img: LoadedImage, feat: np.ndarray | None) -> ood.GateOutcome:
        """The OOD gate's outcome for ``img`` with its pooled features (header rules first)."""
        return ood.assess(img, feat, self.gate, self.gate_error)

    def predict(
        self, img: LoadedImage, cam: bool = True, target_class: int | None = None
    ) -> Prediction:
        """Predict one image; with ``cam`` the Grad-CAM map (of ``target_class``, default
        Abnormal) in the original geometry. Always scores; ``Prediction.gate`` says whether
        the score may be shown without the user asking."""
        t0 = time.perf_counter()
        x, mapping = self.prepare(img)
        probs, maps, targets, feats = self.forward(x[None], cam=cam, target_class=target_class)
        full = None
        gate = self.assess(img, feats[0])
        if self.multi_label:
            top = int(np.argmax(probs[0]))
            if maps is not None:  # the top finding's map at full size; the others on demand
                full = np.clip(mapping.to_original(maps[0][top]), 0.0, 1.0).astype(np.float32, copy=False)
            ms = (time.perf_counter() - t0) * 1000.0
            return self._prediction(probs[0], full, top if maps is not None else None, ms, gate,
                                    None if maps is None else maps[0], mapping)
        if maps is not None:
            full = np.clip(mapping.to_original(maps[0]), 0.0, 1.0).astype(np.float32, copy=False)
        ms = (time.perf_counter() - t0) * 1000.0
        return self._prediction(probs[0], full, targets[0] if targets else None, ms, gate)

    def explain(
        self,
        img: LoadedImage,
        method: str = "gradcam++",
        target_layer: str = "layer4",
        target_class: int | None = None,
    ) -> tuple[np.ndarray, int]:
        """Another explanation of ``img`` through torch's general hook path (any target layer,
        Grad-CAM or Grad-CAM++): ``(map in original geometry float32 [0, 1], class explained)``.

        The ONNX Runtime backend has no gradients, so this loads the torch model once (lazily).
        """
        from cxrviewer.ml.cam import gradcam

        torch_model = self._torch_model()
        import torch

        x, mapping = self.prepare(img)
        t = torch.from_numpy(x)[None].to(next(torch_model.parameters()).device)
        target_class = self._target(target_class)
        m = "gradcam++" if method == "gradcam++" else "hook"
        r = gradcam(torch_model, t, target_class, method=m, target_layer=target_layer)[0]
        return r.to_original(mapping), r.class_idx

    def _torch_model(self):
        if isinstance(self._impl, _TorchBackend):
            return self._impl.model
        if getattr(self, "_lazy_torch", None) is None:
            from cxrviewer.ml.registry import load_model_dir

            self._lazy_torch, _ = load_model_dir(self.model_dir)
        return self._lazy_torch

    def predict_batch(self, imgs: Sequence[LoadedImage], cam: bool = False) -> list[Prediction]:
        """Predict several images in one batch (elapsed_ms is the batch's time per image)."""
        if not imgs:
            return []
        t0 = time.perf_counter()
        prepped = [self.prepare(im) for im in imgs]
        x = np.stack([p[0] for p in prepped])
        probs, maps, targets, feats = self.forward(x, cam=cam)
        out_maps: list[np.ndarray | None] = [None] * len(imgs)
        if self.multi_label:
            ms = (time.perf_counter() - t0) * 1000.0 / len(imgs)
            out = []
            for i, (_, m) in enumerate(prepped):
                top = int(np.argmax(probs[i]))
                full = None if maps is None else np.clip(m.to_original(maps[i][top]), 0.0, 1.0).astype(np.float32)
                out.append(self._prediction(probs[i], full, top if maps is not None else None, ms,
                                            self.assess(imgs[i], feats[i]),
                                            None if maps is None else maps[i], m))
            return out
        if maps is not None:
            out_maps = [
                np.clip(m.to_original(maps[i]), 0.0, 1.0).astype(np.float32, copy=False)
                for i, (_, m) in enumerate(prepped)
            ]
        ms = (time.perf_counter() - t0) * 1000.0 / len(imgs)
        return [
            self._prediction(
                probs[i], out_maps[i], targets[i] if targets else None, ms,
                self.assess(imgs[i], feats[i]),
            )
            for i in range(len(imgs))
        ]


__all__ = [
    "Engine",
    "FindingScore",
    "Prediction",
    "calibration_temperature",
    "export_onnx",
    "export_onnx_for_dir",
    "find_onnx",
    "onnx_cache_path",
    "softmax",
]
