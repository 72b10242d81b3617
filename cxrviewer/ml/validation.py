"""A site's own validations of a model (``cxrviewer evaluate --record``): stored, read back.

Each record (a contract; add keys, rename none)::

    {"n", "n_refused", "auc", "auc_ci", "sensitivity", "specificity", "threshold",
     "date", "data", "finding"?, "per_finding"?}

``finding`` is absent (or ``None``) for the model's overall score (P(Abnormal), or for a
multi-finding model its highest probability among findings with an operating point);
``per_finding`` maps a finding's name to a record of the same shape, where the site's CSV
had per-finding labels.

Where they live: in the model's ``card.json`` under ``local_validations`` for a model the
user installed; for a read-only (bundled) model in the user's data folder, keyed by the
weights' sha256 (``validations/<sha256>.json``), as the INT8 records are, so records never
follow different weights. :func:`card_with_validations` gives the card with both merged.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cxrviewer import atomic, paths
from cxrviewer.ml.card import ModelCard
from cxrviewer.ml.registry import CARD_FILE, ModelError

RECORD_KEYS = ("n", "n_refused", "auc", "auc_ci", "sensitivity", "specificity", "threshold", "date", "data")


def store_path(weights_sha256: str) -> Path:
    """The user-data file of a read-only model's records (keyed by its weights)."""
    return paths.user_data_dir() / "validations" / f"{weights_sha256}.json"


def _writable(model_dir: Path) -> bool:
    try:
        bundled = paths.resource("models").resolve()
        if bundled in model_dir.resolve().parents:
            return False
    except OSError:
        pass
    return os.access(model_dir / CARD_FILE, os.W_OK) and os.access(model_dir, os.W_OK)


def stored_records(weights_sha256: str) -> list[dict[str, Any]]:
    """The user-data records of the weights ``weights_sha256`` ([] when none or unreadable)."""
    p = store_path(weights_sha256)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    recs = data.get("local_validations") if isinstance(data, Mapping) else None
    return [dict(r) for r in recs if isinstance(r, Mapping)] if isinstance(recs, list) else []


def card_with_validations(model_dir: str | os.PathLike, card: ModelCard) -> ModelCard:
    """``card`` with the user-data records of its weights appended to ``local_validations``."""
    extra = stored_records(card.weights_sha256) if card.weights_sha256 else []
    if not extra:
        return card
    return card.replace(local_validations=tuple(card.local_validations) + tuple(extra))


def record_validation(model_dir: str | os.PathLike, card: ModelCard, record: Mapping[str, Any]) -> Path:
    """Append ``record`` to the model's validations; return the file written (atomically).

    A user model's ``card.json`` gains it under ``local_validations`` (its weights checksum
    and every other key unchanged); a bundled / read-only model's go to :func:`store_path`.
    """
    model_dir = Path(model_dir)
    missing = [k for k in RECORD_KEYS if k not in record]
    if missing:
        raise ValueError(f"a validation record needs {missing}")
    if _writable(model_dir):
        card_path = model_dir / CARD_FILE
        try:
            raw = json.loads(card_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ModelError(card_path, f"cannot read the model card: {e}") from None
        raw.setdefault("local_validations", []).append(dict(record))
        atomic.write_text(card_path, json.dumps(raw, indent=2) + "\n")
        return card_path
    p = store_path(card.weights_sha256)
    recs = stored_records(card.weights_sha256) + [dict(record)]
    doc = {"weights_sha256": card.weights_sha256, "model": card.name, "local_validations": recs}
    atomic.write_text(p, json.dumps(doc, indent=2) + "\n")
    return p


__all__ = ["RECORD_KEYS", "card_with_validations", "record_validation", "stored_records", "store_path"]
