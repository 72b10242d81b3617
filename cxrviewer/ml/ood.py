"""The out-of-distribution gate: may this model score this image at all?

The model answers Normal/Abnormal for *any* array it is given (a head CT scored "Abnormal
0.99", a face photograph "Abnormal 0.98"). A "Normal" on a non-chest image is false
reassurance, so every input passes two checks before its score is shown:

1. **Header rules** (DICOM only, :func:`check_header`): Modality CR or DX (a greyscale
   secondary capture, SC/OT, is let through *with a caution*: it may be a digitised
   radiograph), Body Part Examined chest or absent, View Position not lateral, greyscale,
   at least :data:`MIN_SIZE` pixels a side. Each refusal names the tag and its value.
   The greyscale rule also applies to PNG/JPEG (a true-colour picture is no radiograph).
2. **A learned check** (every input, :class:`FeatureGate`): the image's layer4 features,
   global-average-pooled (2048 numbers, a by-product of the forward pass, so it costs
   nothing), and their Mahalanobis distance to the training split's features under a
   Ledoit-Wolf shrunk covariance. The threshold is the ``keep`` quantile of the validation
   split's distances, so ≥ 95 % of in-distribution images pass.

The statistics live beside the weights as ``ood.npz`` with a card entry
``card["ood"] = {"file", "sha256", "threshold", "keep_rate_val", "feature", ...}``.

Storage: the full 2048×2048 precision matrix would be 16 MB (float32). The Ledoit-Wolf
covariance ``(1-δ)S + δμI`` has S's eigenvectors, so it is stored as its top ``k``
eigenpairs plus one variance for the remaining directions (the mean of the remaining
shrunk eigenvalues), a probabilistic-PCA form: ~2 MB at ``k = 256``, and exact when ``k``
reaches the rank of ``S`` (at most ``n_train - 1``) except for that average.

numpy only: no torch, no Qt, no scikit-learn.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cxrviewer import atomic
from cxrviewer.core.errors import CxrError
from cxrviewer.core.hashing import sha256_file
from cxrviewer.core.types import LoadedImage

OOD_FILE = "ood.npz"
FEATURE = "layer4_gap"
FORMAT_VERSION = 1

OK = "ok"
OUT_OF_DISTRIBUTION = "out_of_distribution"

#: smallest accepted DICOM image side (chest CR/DX are ~1,000-3,000 px; thumbnails and
#: small secondary captures are not what the model was validated on)
MIN_SIZE = 256
ALLOWED_MODALITIES = ("CR", "DX")
DX_LIKE_MODALITIES = ("SC", "OT")
LATERAL_VIEWS = ("LL", "RL", "LAT", "LATERAL", "LLD", "RLD")
CHEST_BODY_PARTS = ("CHEST", "THORAX", "LUNG", "LUNGS", "TORSO")
#: mean |R-G| + |G-B| (8-bit levels) above which an RGB picture counts as true colour
COLOUR_CHROMA_LIMIT = 6.0


@dataclass(frozen=True)
class GateOutcome:
    """The gate's answer for one image.

    status
        ``"ok"`` or ``"out_of_distribution"``.
    reason
        Why it was refused (empty when ``ok``), in words a reader understands.
    caution
        Scored, but with a caveat the display must carry (e.g. a secondary capture).
    rule
        Which check decided: ``"header"``, ``"features"`` or ``""``.
    distance, threshold
        The learned check's distance and threshold (``None`` when it did not run).
    """

    status: str = OK
    reason: str = ""
    caution: str = ""
    rule: str = ""
    distance: float | None = None
    threshold: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == OK

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "caution": self.caution,
            "rule": self.rule,
            "distance": self.distance,
            "threshold": self.threshold,
        }


PASSED = GateOutcome()


def refused(reason: str, rule: str, **kw: Any) -> GateOutcome:
    return GateOutcome(OUT_OF_DISTRIBUTION, reason, rule=rule, **kw)


def combine(*outcomes: GateOutcome | None) -> GateOutcome:
    """One outcome from several checks: the first refusal wins; cautions accumulate; the
    learned check's distance is kept whichever check decided."""
    outs = [o for o in outcomes if o is not None]
    cautions = [o.caution for o in outs if o.caution]
    dist = next((o.distance for o in outs if o.distance is not None), None)
    thr = next((o.threshold for o in outs if o.threshold is not None), None)
    first_bad = next((o for o in outs if not o.ok), None)
    status, reason, rule = (
        (first_bad.status, first_bad.reason, first_bad.rule) if first_bad else (OK, "", "")
    )
    return GateOutcome(status, reason, "; ".join(dict.fromkeys(cautions)), rule, dist, thr)


# --------------------------------------------------------------------------- header rules


def _chroma(rgb: np.ndarray) -> float:
    """Mean |R-G| + |G-B| over a subsample: ~0 for a grey picture stored as RGB."""
    a = np.asarray(rgb)
    step = max(1, int(np.sqrt(a.shape[0] * a.shape[1] / 65536)))
    s = a[::step, ::step, :3].astype(np.int16)
    return float(np.mean(np.abs(s[..., 0] - s[..., 1]) + np.abs(s[..., 1] - s[..., 2])))


def check_header(img: LoadedImage) -> GateOutcome:
    """The header rules (DICOM) and the greyscale rule (every input).

    Returns a refusal naming the tag and its value, ``ok`` with a caution for DX-like
    secondary captures, or plain ``ok``.
    """
    h = img.header
    if img.is_color and img.stored.ndim == 3 and _chroma(img.stored) > COLOUR_CHROMA_LIMIT:
        what = f"Photometric Interpretation {img.photometric}" if img.kind == "dicom" else "a colour picture"
        return refused(f"not a greyscale radiograph ({what}); the model reads chest radiographs only", "header")
    if img.kind != "dicom":
        return PASSED
    caution = ""
    modality = (h.modality or "").strip().upper()
    if modality in DX_LIKE_MODALITIES:
        caution = (
            f"Modality {modality} (secondary capture): scored as if it were a chest radiograph (DX-like); "
            "the model was validated on CR/DX only"
        )
    elif modality not in ALLOWED_MODALITIES:
        shown = modality or "absent"
        return refused(
            f"Modality {shown}: the model reads chest radiographs (CR or DX) only", "header"
        )
    part = (h.body_part or "").strip().upper()
    if part and not any(c in part for c in CHEST_BODY_PARTS):
        return refused(f"Body Part Examined {part}: the model reads chest images only", "header")
    view = (h.view_position or "").strip().upper()
    if view in LATERAL_VIEWS:
        return refused(
            f"View Position {view} (lateral): the model reads frontal (PA/AP) chest radiographs only",
            "header",
        )
    if min(img.rows, img.cols) < MIN_SIZE:
        return refused(
            f"image {img.cols}×{img.rows} px is smaller than {MIN_SIZE} px a side: too small for a chest radiograph",
            "header",
        )
    if img.n_frames > 1:
        caution = "; ".join(
            x for x in (caution, f"frame {img.frame + 1} of a {img.n_frames}-frame image") if x
        )
    return GateOutcome(OK, "", caution, "header" if caution else "")


# --------------------------------------------------------------------------- learned check


def gap_features(layer4: np.ndarray) -> np.ndarray:
    """Global-average-pooled layer4 activations ``(n, C, h, w) -> (n, C)`` float32."""
    a = np.asarray(layer4, dtype=np.float32)
    return a.mean(axis=(2, 3)) if a.ndim == 4 else a


def ledoit_wolf(z: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Ledoit & Wolf (2004) shrinkage of the covariance of centred samples ``z`` ``(n, p)``.

    Returns ``(S, delta, mu)``: the empirical covariance ``S = zᵀz / n``, the shrinkage
    intensity ``delta`` in [0, 1] and the target scale ``mu = tr(S) / p``; the estimate is
    ``(1 - delta) S + delta mu I``. The same estimator as scikit-learn's
    ``ledoit_wolf_shrinkage`` (one block), written out to avoid the dependency.
    """
    z = np.asarray(z, dtype=np.float64)
    n, p = z.shape
    s = z.T @ z / n
    mu = float(np.trace(s) / p)
    z2 = z * z
    # beta: how noisy S is, sum_k ||z_k z_kᵀ - S||_F² / n², bounded by delta
    beta_ = float(np.sum(z2.T @ z2))
    delta_ = float(np.sum(s * s))
    beta = (beta_ / n - delta_) / n
    d2 = (delta_ - 2.0 * mu * float(np.trace(s)) + p * mu * mu)
    beta = min(beta, d2)
    delta = 0.0 if d2 <= 0 else float(beta / d2)
    return s, float(np.clip(delta, 0.0, 1.0)), mu


@dataclass(frozen=True)
class FeatureGate:
    """Shrunk-covariance Mahalanobis distance to the training features, with its threshold.

    ``distance(x) = sqrt(Σ_i (v_iᵀz)²/ℓ_i + (‖z‖² − Σ_i (v_iᵀz)²)/ℓ_rest)`` with
    ``z = (x − mean) / scale``; ``v_i, ℓ_i`` the top ``k`` eigenpairs of the Ledoit-Wolf
    covariance of the standardised training features and ``ℓ_rest`` the mean of the others.
    """

    mean: np.ndarray
    scale: np.ndarray
    basis: np.ndarray  # (k, p) float32, rows = eigenvectors
    eigvals: np.ndarray  # (k,) float64
    rest_var: float
    threshold: float
    keep: float = 0.95
    keep_rate_val: float = float("nan")
    keep_rate_train: float = float("nan")
    n_train: int = 0
    n_val: int = 0
    shrinkage: float = 0.0
    feature: str = FEATURE
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def dims(self) -> int:
        return int(self.basis.shape[0])

    def distance(self, feats: np.ndarray) -> np.ndarray:
        """Distances of features ``(n, p)`` (or one ``(p,)`` vector: a 1-element array)."""
        x = np.atleast_2d(np.asarray(feats, dtype=np.float64))
        if x.shape[1] != self.mean.shape[0]:
            raise ValueError(f"features have {x.shape[1]} dimensions, the gate {self.mean.shape[0]}")
        z = (x - self.mean) / self.scale
        proj = z @ self.basis.T.astype(np.float64)
        inside = np.sum(proj * proj / self.eigvals, axis=1)
        rest = np.maximum(np.sum(z * z, axis=1) - np.sum(proj * proj, axis=1), 0.0)
        return np.sqrt(inside + rest / self.rest_var)

    def check(self, feat: np.ndarray) -> GateOutcome:
        """The outcome for one image's pooled features."""
        d = float(self.distance(feat)[0])
        if not np.isfinite(d) or d > self.threshold:
            return refused(
                f"unlike the images this model was trained on (feature distance {d:.1f} > "
                f"threshold {self.threshold:.1f}, which keeps {self.keep_rate_val:.0%} of its validation images)",
                "features",
                distance=d,
                threshold=self.threshold,
            )
        return GateOutcome(OK, "", "", "", d, self.threshold)

    def card_entry(self) -> dict[str, Any]:
        """What the model card records about the gate (``card["ood"]`` minus file/sha256)."""
        return {
            "file": OOD_FILE,
            "threshold": float(self.threshold),
            "keep": float(self.keep),
            "keep_rate_val": float(self.keep_rate_val),
            "keep_rate_train": float(self.keep_rate_train),
            "feature": self.feature,
            "method": "Mahalanobis distance, Ledoit-Wolf shrunk covariance of standardised features "
            f"(top {self.dims} eigenpairs + isotropic remainder)",
            "dims": self.dims,
            "shrinkage": float(self.shrinkage),
            "n_train": int(self.n_train),
            "n_val": int(self.n_val),
            **{k: v for k, v in self.extra.items() if isinstance(v, (str, int, float, bool, list))},
        }


def _fit(x: np.ndarray, dims: int) -> FeatureGate:
    """The statistics of training features ``x`` (threshold still unset)."""
    n, p = x.shape
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    # Channels that are (almost) always zero after the ReLU would blow up when standardised:
    # floor their scale at a fraction of the typical channel's.
    floor = max(1e-6, 0.1 * float(np.median(std[std > 0])) if np.any(std > 0) else 1e-6)
    scale = np.maximum(std, floor)
    z = (x - mean) / scale
    s, delta, mu = ledoit_wolf(z)
    lam, vec = np.linalg.eigh(s)  # ascending
    lam, vec = lam[::-1].clip(min=0.0), vec[:, ::-1]
    shrunk = (1.0 - delta) * lam + delta * mu
    # the LW estimate is full rank only when delta > 0; keep a tiny ridge otherwise
    shrunk = np.maximum(shrunk, 1e-9 * max(mu, 1e-12))
    k = int(max(1, min(dims, p - 1, n - 1)))
    return FeatureGate(
        mean=mean.astype(np.float32),
        scale=scale.astype(np.float32),
        basis=np.ascontiguousarray(vec[:, :k].T).astype(np.float32),
        eigvals=shrunk[:k].astype(np.float64),
        rest_var=float(shrunk[k:].mean()) if k < p else float(shrunk[-1]),
        threshold=float("inf"),
        n_train=n,
        shrinkage=delta,
    )


def fit_feature_gate(
    train_feats: np.ndarray,
    val_feats: np.ndarray,
    keep: float = 0.95,
    dims: int = 256,
    folds: int = 5,
    seed: int = 0,
) -> FeatureGate:
    """Fit the learned check on the training split, choose its threshold on the validation split.

    A training image's distance to statistics that include it is optimistic (measured on the
    demo model: every training image passes, 22 % of unseen adult NIH images did not), and a
    validation split may cover only one of the training sources (the demo model's is 64 px
    NIH only). So the threshold is the ``keep`` quantile of the validation distances *and*
    the training images' out-of-fold distances (``folds``-fold cross-fitting): at least
    ``keep`` of the validation images pass, and about ``keep`` of unseen images like any
    training source.

    Parameters
    ----------
    train_feats, val_feats
        Pooled layer4 features ``(n, 2048)`` of the training and validation images
        (:func:`gap_features` of the engine's layer4 output).
    keep
        Share of validation images that must pass; the threshold is the smallest distance
        that keeps at least this share.
    dims
        Eigenpairs stored (the rest share one variance); capped by the training rank.
    folds
        Cross-fitting folds for the out-of-fold training distances (0 or 1: validation only).
    seed
        Fold assignment.

    Returns
    -------
    FeatureGate
    """
    x = np.asarray(train_feats, dtype=np.float64)
    v = np.asarray(val_feats, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 3:
        raise ValueError(f"need at least 3 training feature vectors (n, p), got shape {x.shape}")
    if v.ndim != 2 or v.shape[0] < 1 or v.shape[1] != x.shape[1]:
        raise ValueError(f"validation features must be (m, {x.shape[1]}), got shape {v.shape}")
    if not 0.5 <= keep < 1.0:
        raise ValueError(f"keep must be in [0.5, 1), not {keep}")
    n = x.shape[0]
    gate = _fit(x, dims)
    dv = gate.distance(v)
    pool = [dv]
    oof = np.zeros(0)
    folds = int(folds) if n >= 2 * max(int(folds), 2) * 3 else 0
    if folds > 1:
        fold = np.random.default_rng(seed).permutation(n) % folds
        oof = np.zeros(n)
        for f in range(folds):
            oof[fold == f] = _fit(x[fold != f], dims).distance(x[fold == f])
        pool.append(oof)
    thr = float(np.quantile(np.concatenate(pool), keep, method="higher"))
    thr = max(thr, float(np.quantile(dv, keep, method="higher")))  # >= keep of validation, always
    extra = {"folds": folds, "keep_rate_oof": float(np.mean(oof <= thr)) if oof.size else None}
    return FeatureGate(
        **{
            **gate.__dict__,
            "threshold": thr,
            "keep": float(keep),
            "n_val": int(v.shape[0]),
            "keep_rate_val": float(np.mean(dv <= thr)),
            "keep_rate_train": float(np.mean(gate.distance(x) <= thr)),
            "extra": {k: v for k, v in extra.items() if v is not None},
        }
    )


# --------------------------------------------------------------------------- files


def _gate_bytes(gate: FeatureGate) -> bytes:
    meta = {k: v for k, v in gate.card_entry().items() if k != "file"}
    meta["format_version"] = FORMAT_VERSION
    buf = io.BytesIO()
    np.savez(
        buf,
        mean=gate.mean.astype(np.float32),
        scale=gate.scale.astype(np.float32),
        basis=gate.basis.astype(np.float32),
        eigvals=gate.eigvals.astype(np.float64),
        rest_var=np.float64(gate.rest_var),
        threshold=np.float64(gate.threshold),
        meta=np.frombuffer(json.dumps(meta, sort_keys=True).encode("utf-8"), dtype=np.uint8),
    )
    return buf.getvalue()


def save_feature_gate(model_dir: str | os.PathLike, gate: FeatureGate) -> dict[str, Any]:
    """Write ``ood.npz`` into ``model_dir`` and record it as ``card["ood"]`` (both atomically).

    Returns the card entry (``file``, ``sha256``, ``threshold``, ``keep_rate_val``,
    ``feature``, ...). The weights and every other card key are left as they are.
    """
    from cxrviewer.ml.registry import CARD_FILE

    model_dir = Path(model_dir)
    card_path = model_dir / CARD_FILE
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CxrError(card_path, f"cannot read the model card: {e}") from None
    out = model_dir / OOD_FILE
    atomic.write_bytes(out, _gate_bytes(gate))
    entry = {**gate.card_entry(), "sha256": sha256_file(out)}
    card["ood"] = entry
    atomic.write_text(card_path, json.dumps(card, indent=2) + "\n")
    return entry


_CORE_META = {
    "threshold", "keep", "keep_rate_val", "keep_rate_train", "feature", "method", "dims",
    "shrinkage", "n_train", "n_val", "format_version",
}


def load_feature_gate(
    model_dir: str | os.PathLike, card: dict[str, Any] | None = None
) -> FeatureGate | None:
    """The model's learned check, or ``None`` when its card has no ``ood`` entry.

    Raises
    ------
    CxrError
        The file is missing, altered (sha256 differs from the card) or malformed.
    """
    model_dir = Path(model_dir)
    if card is None:
        from cxrviewer.ml.registry import read_card

        card = read_card(model_dir)
    entry = card.get("ood")
    if not isinstance(entry, dict) or not entry.get("file"):
        return None
    path = model_dir / Path(str(entry["file"])).name
    if not path.is_file():
        raise CxrError(path, "the model card names OOD statistics but the file is missing")
    want = str(entry.get("sha256", "")).lower()
    if want and sha256_file(path) != want:
        raise CxrError(path, "OOD statistics checksum mismatch (corrupt or altered file)")
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode("utf-8"))
            gate = FeatureGate(
                mean=z["mean"].astype(np.float32),
                scale=z["scale"].astype(np.float32),
                basis=z["basis"].astype(np.float32),
                eigvals=z["eigvals"].astype(np.float64),
                rest_var=float(z["rest_var"]),
                threshold=float(z["threshold"]),
                keep=float(meta.get("keep", 0.95)),
                keep_rate_val=float(meta.get("keep_rate_val", float("nan"))),
                keep_rate_train=float(meta.get("keep_rate_train", float("nan"))),
                n_train=int(meta.get("n_train", 0)),
                n_val=int(meta.get("n_val", 0)),
                shrinkage=float(meta.get("shrinkage", 0.0)),
                feature=str(meta.get("feature", FEATURE)),
                extra={k: v for k, v in meta.items() if k not in _CORE_META},
            )
    except (OSError, ValueError, KeyError) as e:
        raise CxrError(path, f"unreadable OOD statistics: {e}") from None
    p = gate.mean.shape[0]
    if gate.scale.shape != (p,) or gate.basis.shape[1:] != (p,) or gate.eigvals.shape != gate.basis.shape[:1]:
        raise CxrError(path, "OOD statistics have inconsistent shapes")
    return gate


def image_features(
    engine: Any,
    paths: Sequence[str | os.PathLike],
    batch_size: int = 16,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, list[str], list[tuple[str, str]]]:
    """Pooled layer4 features of image files through the inference engine (frame 0).

    Returns ``(features (n, 2048) float32, paths read, [(path, reason) skipped])``: a file
    that cannot be read is listed, never fatal.
    """
    from cxrviewer.core.dicom_io import load_image

    feats: list[np.ndarray] = []
    done: list[str] = []
    skipped: list[tuple[str, str]] = []
    batch: list[tuple[str, np.ndarray]] = []

    def flush() -> None:
        if batch:
            x = np.stack([a for _, a in batch])
            feats.append(np.asarray(engine.forward(x, cam=False)[3], dtype=np.float32))
            done.extend(p for p, _ in batch)
            batch.clear()

    for i, p in enumerate(paths):
        try:
            batch.append((os.fspath(p), engine.prepare(load_image(p))[0]))
        except CxrError as e:
            skipped.append((os.fspath(p), e.reason))
        except (OSError, ValueError, MemoryError) as e:  # a decoder's own error: one bad file
            skipped.append((os.fspath(p), f"{type(e).__name__}: {e}"))
        if len(batch) >= batch_size:
            flush()
        if progress is not None:
            progress(i + 1, len(paths))
    flush()
    out = np.concatenate(feats) if feats else np.zeros((0, 2048), np.float32)
    return out, done, skipped


HEADER_RULES_ONLY = "header_rules_only"
LEARNED = "learned"


def gate_mode(gate: FeatureGate | None) -> tuple[str, str]:
    """``(mode, one line for the reader)`` of a model's gate: :data:`LEARNED` once
    ``cxrviewer models fit-ood NAME --images DIR`` has fitted it, else :data:`HEADER_RULES_ONLY`
    (only the DICOM header and greyscale rules run; the AI panel says so)."""
    if gate is not None:
        return LEARNED, "out-of-distribution check: header rules + learned check on this model's features"
    return HEADER_RULES_ONLY, ("out-of-distribution check: header rules only (fit the learned check on your own "
                               "chest films: cxrviewer models fit-ood NAME --images DIR)")


def assess(
    img: LoadedImage, feat: np.ndarray | None, gate: FeatureGate | None, gate_error: str = ""
) -> GateOutcome:
    """Header rules, then the learned check on ``feat`` (when the model has a gate).

    A model without OOD statistics is scored with a caution saying the learned check is
    missing (``gate_error`` explains why, e.g. an altered file).
    """
    return assess_with_header(check_header(img), feat, gate, gate_error)


def assess_with_header(
    head: GateOutcome, feat: np.ndarray | None, gate: FeatureGate | None, gate_error: str = ""
) -> GateOutcome:
    """:func:`assess` given the header rules' outcome already (the archive engine runs the
    header rules where the image is decoded, in a worker, and the learned check after the
    batched forward pass in the parent)."""
    if gate is None or feat is None:
        why = gate_error or "this model has no OOD statistics (cxrviewer models fit-ood)"
        return combine(head, GateOutcome(caution=f"no learned out-of-distribution check: {why}"))
    return combine(head, gate.check(feat))


__all__ = [
    "FEATURE",
    "HEADER_RULES_ONLY",
    "LEARNED",
    "gate_mode",
    "OK",
    "OOD_FILE",
    "OUT_OF_DISTRIBUTION",
    "FeatureGate",
    "GateOutcome",
    "assess",
    "assess_with_header",
    "check_header",
    "combine",
    "fit_feature_gate",
    "gap_features",
    "image_features",
    "ledoit_wolf",
    "load_feature_gate",
    "save_feature_gate",
]
