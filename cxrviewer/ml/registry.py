"""Model directories and the model registry.

A model is a directory holding ``model.safetensors`` (or, for old checkpoints, a
``model.pt`` that is only ever read with ``torch.load(weights_only=True)``) and a
``card.json`` describing it (see :data:`CARD_KEYS`). Loading verifies the weights'
sha256 against the card, the architecture, the classes and every tensor's name and shape,
and refuses anything else with a :class:`~cxrviewer.core.errors.CxrError` naming the file
and the reason: model files are data, never code.

The registry is the union of the bundled models (``resources/models/<name>/``, read-only)
and the user's (``user_data_dir()/models/<name>/``). The active model's name is stored in
``user_data_dir()/active_model.json``; when nothing (valid) is active, the newest bundled
model is, else the newest user model. Imports copy into a hidden temp folder beside the
target, verify there, and rename, so a failed import leaves nothing behind and the previous
active model stays active.

torch is imported only by the functions that need tensors (:func:`save_model_dir`,
:func:`load_model_dir`, deep verification), so listing models and reading cards is cheap.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxrviewer import atomic, paths
from cxrviewer.core.errors import CxrError
from cxrviewer.core.hashing import sha256_file  # noqa: F401  (the project's one sha256 helper; re-exported)
from cxrviewer.ml.card import ModelCard, as_card

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

CARD_FILE = "card.json"
WEIGHTS_FILE = "model.safetensors"
PT_WEIGHTS_FILE = "model.pt"
ACTIVE_FILE = "active_model.json"

#: keys of card.json (save_model_dir fills the ones marked * when absent)
CARD_KEYS = (
    "name",  # * directory name in the registry
    "version",  # *
    "created",  # * ISO 8601 UTC
    "architecture",  # * "resnet50"
    "classes",  # * ["Normal", "Abnormal"]
    "head",  # * {"dropout": p}
    "preprocessing",  # * PreprocessSpec.to_dict()
    "threshold",  # * operating threshold on P(Abnormal)
    "training_data",  # free dict
    "metrics",  # {metric: {"value", "ci95", "split"}}
    "weights_sha256",  # filled by save_model_dir
    "weights_dtype",  # filled by save_model_dir
    "weights_file",  # filled by save_model_dir
    "intended_use",  # *
)

DISCLAIMER = (
    "Research and demonstration model. Not a medical device; not for diagnosis, "
    "triage or any clinical decision."
)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")


class ModelError(CxrError):
    """A model directory, card or weights file that cannot be used (the reason says why)."""


# --------------------------------------------------------------------------- helpers


def _utcnow() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def read_card(model_dir: str | os.PathLike) -> ModelCard:
    """Read and check ``card.json`` (no torch, no weights) -> a typed :class:`ModelCard`:
    name, architecture (a registered one), head and classes/findings, preprocessing, sha256.

    Raises
    ------
    ModelError
        Missing/unparsable card, or a card for something this project cannot load.
    """
    from cxrviewer.ml.preprocess import PreprocessSpec

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelError(
            model_dir,
            "not a model directory (expected a folder with card.json and model.safetensors)",
        )
    card_path = model_dir / CARD_FILE
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(
            card_path, "missing: a model directory needs card.json beside its weights"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(card_path, f"unreadable model card: {e}") from None
    if not isinstance(card, dict):
        raise ModelError(card_path, "model card must be a JSON object")
    for key in ("name", "version", "weights_sha256"):
        if not card.get(key):
            raise ModelError(card_path, f"model card lacks {key!r}")
    if not _NAME_RE.match(str(card["name"])):
        raise ModelError(
            card_path,
            f"model name {card['name']!r} must be letters, digits, '.', '_', '+', '-' (max 100)",
        )
    from cxrviewer.ml import arch as _arch
    from cxrviewer.ml.card import ModelCard

    try:
        _arch.get(card.get("architecture"))
        typed = ModelCard.from_dict(card)
        PreprocessSpec.from_dict(typed.preprocessing)
    except (TypeError, ValueError) as e:
        raise ModelError(card_path, str(e)) from None
    return typed


def weights_path(model_dir: str | os.PathLike, card: ModelCard | dict[str, Any]) -> Path:
    """The weights file of a model directory (``card["weights_file"]`` or the default names)."""
    model_dir = Path(model_dir)
    name = as_card(card).weights_file
    if name:
        if Path(name).name != name:
            raise ModelError(
                model_dir / CARD_FILE, f"weights_file {name!r} must be a plain file name"
            )
        cands = [model_dir / name]
    else:
        cands = [model_dir / WEIGHTS_FILE, model_dir / PT_WEIGHTS_FILE]
    for p in cands:
        if p.is_file():
            return p
    raise ModelError(cands[0], "weights file missing")


def verify_checksum(model_dir: str | os.PathLike, card: ModelCard | dict[str, Any] | None = None) -> Path:
    """Check the weights' sha256 against the card; return the weights path (no torch)."""
    card = read_card(model_dir) if card is None else card
    wp = weights_path(model_dir, card)
    got = sha256_file(wp)
    want = as_card(card).weights_sha256
    if got != want:
        raise ModelError(
            wp,
            f"checksum mismatch: sha256 {got[:12]}… but card.json says {want[:12]}… (corrupt or altered weights)",
        )
    return wp


# --------------------------------------------------------------------------- save / load


def _clean_key(k: str) -> str:
    # DDP and torch.compile wrap the model; their prefixes are not part of the architecture.
    for prefix in ("module.", "_orig_mod."):
        while k.startswith(prefix):
            k = k[len(prefix) :]
    return k


def _dropout_of(model: nn.Module) -> float:
    from torch import nn

    fc = getattr(model, "fc", None)
    if isinstance(fc, nn.Sequential):
        for m in fc:
            if isinstance(m, nn.Dropout):
                return float(m.p)
    return 0.0


def save_model_dir(
    model: nn.Module,
    out_dir: str | os.PathLike,
    card: dict[str, Any],
    dtype: str = "float16",
) -> Path:
    """Write ``model.safetensors`` + ``card.json`` into ``out_dir`` (each atomically).

    Parameters
    ----------
    model
        A model from :func:`cxrviewer.ml.model.build_model` (DDP/compile wrappers are unwrapped).
    card
        The model card; ``name``, ``version``, ``created``, ``architecture``, ``classes``,
        ``head``, ``preprocessing``, ``threshold`` and ``intended_use`` get defaults when
        absent; ``weights_sha256``, ``weights_dtype`` and ``weights_file`` are always set.
    dtype
        ``"float16"`` (half the size; the loader upcasts to float32) or ``"float32"``.

    Returns
    -------
    Path
        ``out_dir``.
    """
    import torch
    from safetensors.torch import save_file

    from cxrviewer.ml.preprocess import PreprocessSpec

    if dtype not in ("float16", "float32"):
        raise ValueError(f"dtype must be 'float16' or 'float32', not {dtype!r}")
    tdtype = torch.float16 if dtype == "float16" else torch.float32
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    inner = getattr(model, "module", model)
    inner = getattr(inner, "_orig_mod", inner)
    state = {}
    for k, v in inner.state_dict().items():
        t = v.detach().to("cpu")
        if t.is_floating_point():
            t = t.to(tdtype)
        state[_clean_key(k)] = t.contiguous()
    wfile = out_dir / WEIGHTS_FILE
    atomic.write_with(wfile, lambda tmp: save_file(state, str(tmp), metadata={"format": "pt"}))

    card = card.to_dict() if isinstance(card, ModelCard) else dict(card)
    card.setdefault("name", out_dir.name)
    card.setdefault("version", "0")
    card.setdefault("created", _utcnow())
    card.setdefault("architecture", "resnet50")
    card.setdefault("classes", ["Normal", "Abnormal"])
    card.setdefault("head", {"dropout": _dropout_of(inner)})
    card.setdefault("preprocessing", PreprocessSpec().to_dict())
    card.setdefault("threshold", 0.5)
    card.setdefault("intended_use", DISCLAIMER)
    card["weights_file"] = WEIGHTS_FILE
    card["weights_dtype"] = dtype
    card["weights_sha256"] = sha256_file(wfile)
    atomic.write_text(out_dir / CARD_FILE, json.dumps(card, indent=2, default=str) + "\n")
    return out_dir


def load_state_file(path: str | os.PathLike) -> dict[str, Any]:
    """Tensors from a ``.safetensors`` file, or from a ``.pt`` read with ``weights_only=True``.

    A ``.pt`` may hold a bare state dict or a checkpoint dict with ``"model"``/``"state_dict"``.
    Anything needing code to unpickle is refused.
    """
    import torch

    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as e:
            raise ModelError(
                path, f"not a valid safetensors file (truncated or corrupt): {e}"
            ) from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError for code, RuntimeError/EOFError for junk
        raise ModelError(
            path,
            "refused: not a plain tensor checkpoint (loaded with weights_only=True, which "
            f"rejects pickled code and objects): {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
        ) from None
    if isinstance(obj, dict):
        for key in ("model", "state_dict", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelError(path, "refused: the checkpoint is not a dict of tensors")
    return obj


def load_weights_into(
    model: nn.Module, state: dict[str, Any], where: str | os.PathLike
) -> nn.Module:
    """Check names, shapes and finiteness of ``state`` against ``model``, then load it (float32)."""
    import torch

    state = {_clean_key(k): v for k, v in state.items()}
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise ModelError(
            where,
            f"not a ResNet-50 with this head: {len(missing)} tensors missing (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})",
        )
    bad = [
        (k, tuple(state[k].shape), tuple(v.shape))
        for k, v in expected.items()
        if state[k].shape != v.shape
    ]
    if bad:
        k, got, want = bad[0]
        raise ModelError(
            where, f"wrong shapes in {len(bad)} tensors, e.g. {k} is {got}, expected {want}"
        )
    fixed = {}
    for k, v in state.items():
        if v.is_floating_point():
            v = v.to(torch.float32)
            if not bool(torch.isfinite(v).all()):
                raise ModelError(where, f"tensor {k} contains NaN or infinity")
        else:
            v = v.to(expected[k].dtype)
        fixed[k] = v
    model.load_state_dict(fixed, strict=True)
    return model


def load_model_dir(path: str | os.PathLike) -> tuple[nn.Module, ModelCard]:
    """Load a model directory: card, checksum, architecture, tensors -> ``(model.eval(), card)``.

    Raises
    ------
    ModelError
        Anything wrong, with the file and the reason; nothing is half-loaded.
    """
    from cxrviewer.ml import arch

    path = Path(path)
    card = read_card(path)
    wp = verify_checksum(path, card)
    state = load_state_file(wp)
    model = arch.get(card.architecture).build(card)
    load_weights_into(model, state, wp)
    return model.eval(), card


def verify_model_dir(path: str | os.PathLike) -> ModelCard:
    """Verify a model folder fully; return its card.

    With torch: :func:`load_model_dir` (checksum, architecture, every tensor). Without torch
    (the base install): the weights' checksum, the card's ONNX file and its checksum, and an
    ONNX Runtime session built from them, which fails on any missing or misshapen tensor.
    """
    from cxrviewer.ml.extras import TRAIN_EXTRA_HINT, torch_available

    if torch_available():
        return load_model_dir(path)[1]
    from cxrviewer.ml.onnx_model import card_onnx

    card = read_card(path)
    verify_checksum(path, card)
    onnx_path = card_onnx(path, card)
    if onnx_path is None:
        raise ModelError(
            Path(path) / CARD_FILE,
            f"this model has no model.onnx and torch is not installed to check or export it: {TRAIN_EXTRA_HINT}",
        )
    import onnxruntime as ort

    try:
        ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - any ORT failure means an unusable model
        raise ModelError(onnx_path, f"ONNX Runtime cannot load it: {e}") from None
    return card


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class ModelEntry:
    """One model in the registry."""

    name: str
    version: str
    path: Path
    bundled: bool
    card: ModelCard

    @property
    def created(self) -> str:
        return self.card.created

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "path": str(self.path),
            "source": "bundled" if self.bundled else "user",
            "created": self.created,
        }


class Registry:
    """Bundled models (read-only) + the user's models, and which one is active.

    Parameters
    ----------
    bundled_dir, user_dir
        Override the locations (tests); default ``resources/models`` and
        ``user_data_dir()/models``. The active-model file lives in ``user_dir``'s parent.
    """

    def __init__(
        self,
        bundled_dir: str | os.PathLike | None = None,
        user_dir: str | os.PathLike | None = None,
    ):
        self.bundled_dir = (
            Path(bundled_dir) if bundled_dir is not None else paths.resource("models")
        )
        self.user_dir = Path(user_dir) if user_dir is not None else paths.user_data_dir() / "models"
        self.active_file = self.user_dir.parent / ACTIVE_FILE

    # ---- listing
    def _scan(self, root: Path, bundled: bool) -> list[ModelEntry]:
        out = []
        if not root.is_dir():
            return out
        for d in sorted(root.iterdir()):
            if d.name.startswith(".") or not d.is_dir() or not (d / CARD_FILE).is_file():
                continue
            try:
                card = read_card(d)
            except ModelError:
                continue  # a broken folder is not a model; `models show` on it explains why
            out.append(ModelEntry(card.name, card.version, d, bundled, card))
        return out

    def list(self) -> list[ModelEntry]:
        """Every readable model; a user model shadows a bundled one of the same name."""
        by_name: dict[str, ModelEntry] = {}
        for e in self._scan(self.bundled_dir, True) + self._scan(self.user_dir, False):
            by_name[e.name] = e
        return sorted(by_name.values(), key=lambda e: (e.name.lower(), e.version))

    def get(self, name: str) -> ModelEntry:
        """The model called ``name`` (CxrError listing the known names when absent)."""
        for e in self.list():
            if e.name == name:
                return e
        known = ", ".join(e.name for e in self.list()) or "none"
        raise ModelError(None, f"no model named {name!r} (installed: {known})")

    def active_name(self) -> str | None:
        """The name stored in ``active_model.json`` (may name a missing model), or None."""
        try:
            data = json.loads(self.active_file.read_text(encoding="utf-8"))
            name = data.get("name") if isinstance(data, dict) else None
            return str(name) if name else None
        except (OSError, ValueError):
            return None

    def active(self) -> ModelEntry | None:
        """The active model: the stored choice if it is still installed, else the newest
        bundled model, else the newest user model, else None."""
        entries = self.list()
        name = self.active_name()
        for e in entries:
            if e.name == name:
                return e
        for group in ([e for e in entries if e.bundled], entries):
            if group:
                return max(group, key=lambda e: (e.created, e.version))
        return None

    # ---- changing
    def activate(self, name: str) -> ModelEntry:
        """Make ``name`` the active model after verifying it fully (checksum, architecture,
        tensors). On any failure ``active_model.json`` is not touched."""
        entry = self.get(name)
        verify_model_dir(entry.path)  # raises on anything wrong, before we write a byte
        record = {"name": entry.name, "version": entry.version, "activated": _utcnow()}
        atomic.write_text(self.active_file, json.dumps(record, indent=2) + "\n")
        return entry

    def import_dir(
        self,
        src: str | os.PathLike,
        *,
        replace: bool = False,
        activate: bool = False,
        onnx: bool = False,
    ) -> ModelEntry:
        """Install a model directory into the user registry, atomically.

        The files are copied into a hidden temp folder beside the target, fully verified there
        (:func:`verify_model_dir`), then renamed into place. An existing model of the same name
        with identical weights is left as is; with different weights it is refused unless
        ``replace``. With ``onnx`` the installed folder carries ``model.onnx`` recorded in its
        card (written with torch when the source has none), so a torch-free viewer can run it.
        """
        src = Path(src)
        card = read_card(src)
        verify_checksum(src, card)
        name = card.name
        self.user_dir.mkdir(parents=True, exist_ok=True)
        target = self.user_dir / name
        if target.exists():
            try:
                old: Any = read_card(target)
            except ModelError:
                old = {}
            same = old.get("weights_sha256") == card.weights_sha256
            if same and not replace and (not onnx or old.get("onnx_file")):
                entry = ModelEntry(name, str(old["version"]), target, False, old)
                if activate:
                    return self.activate(name)
                return entry
            if not replace and not same:
                raise ModelError(
                    target,
                    f"a different model named {name!r} (version {old.get('version', '?')}) is already installed; "
                    "import with --replace, or give the new one another name in its card.json",
                )
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.import-", dir=self.user_dir))
        try:
            for f in src.iterdir():
                # Top-level regular files only: weights, card, exported ONNX, report, plots.
                if f.is_file() and not f.name.startswith("."):
                    shutil.copy2(f, tmp / f.name)
            if onnx:
                from cxrviewer.ml.onnx_model import ensure_model_onnx

                ensure_model_onnx(tmp)
            verify_model_dir(tmp)
            if target.exists():
                old_tmp = Path(tempfile.mkdtemp(prefix=f".{name}.old-", dir=self.user_dir))
                os.replace(target, old_tmp / name)
                os.replace(tmp, target)
                shutil.rmtree(old_tmp, ignore_errors=True)
            else:
                os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                shutil.rmtree(tmp)
            raise
        entry = ModelEntry(name, card.version, target, False, read_card(target))
        if activate:
            return self.activate(name)
        return entry
