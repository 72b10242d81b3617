"""Training checkpoints: plain dicts (tensors, numbers, strings, ``vars(args)``), written atomically.

A checkpoint holds everything a ``--resume`` needs to continue bit-for-bit on CPU: model,
optimizer and scheduler state, the epoch, early-stopping state, history, and the torch
RNG states (augmentation randomness is derived from (seed, epoch, index) and needs no state).
It is read back with ``torch.load(weights_only=True)``: data only, never code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cxrviewer import atomic
from cxrviewer.core.errors import CxrError

CHECKPOINT = "checkpoint.pt"


def _plain(v: Any) -> Any:
    """argparse values -> types ``weights_only`` accepts (Path -> str, tuples -> lists)."""
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


def plain_args(args) -> dict[str, Any]:
    return {k: _plain(v) for k, v in vars(args).items() if not callable(v)}


def save(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Atomically ``torch.save`` a checkpoint dict (a crash leaves the previous file)."""
    import torch

    return atomic.write_with(path, lambda tmp: torch.save(state, tmp))


def load(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint (``RUN_DIR`` or the file) with ``weights_only=True``."""
    import torch

    p = Path(path)
    if p.is_dir():
        p = p / CHECKPOINT
    if not p.is_file():
        raise CxrError(p, "no checkpoint to resume from (expected RUN_DIR or RUN_DIR/checkpoint.pt)")
    try:
        ck = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - truncated file, or pickled code we refuse
        raise CxrError(p, f"unreadable checkpoint ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    if not isinstance(ck, dict) or "model" not in ck or "epoch" not in ck:
        raise CxrError(p, "not a training checkpoint of this module (no 'model'/'epoch')")
    return ck


def rng_state() -> dict[str, Any]:
    import torch

    st = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict[str, Any]) -> None:
    import torch

    if "torch" in st:
        torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all(st["cuda"])
        except (RuntimeError, IndexError):
            pass  # resumed on a machine with another GPU count: only exact on CPU anyway


def load_best(path: str | os.PathLike) -> dict[str, Any]:
    """The best epoch's state dict from ``best.pt`` (``weights_only``)."""
    import torch

    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise CxrError(path, f"unreadable best-epoch weights ({type(e).__name__})") from None
    return ck["model"]
