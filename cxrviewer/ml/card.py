"""The model card as a typed, frozen value: :class:`ModelCard` (and its :class:`Finding` list).

``card.json`` stays the file format (every card written before this module reads unchanged:
the bundled demo, cards written by training and by ``models import``). :meth:`ModelCard.from_dict`
checks and types the keys this project acts on; every other key is kept verbatim in
``extra`` so a round trip (:meth:`ModelCard.to_dict`) loses nothing.

Two head kinds (see :mod:`cxrviewer.ml.arch`):

``softmax``
    Two classes, Normal / Abnormal (the demo): P(Abnormal) is ``softmax(logits / T)[1]`` and
    the card's ``threshold`` is the operating point on it.
``sigmoid``
    Multi-label: one output per :class:`Finding`, ``sigmoid(logit)``; with ``op_norm``
    (torchxrayvision's operating-point normalisation) a finding that has an operating point
    reads 0.5 exactly at it. A finding without one keeps its plain sigmoid and
    ``Finding.op_point is None``: it is never shown as at/above an operating point.

The card reads like the dict it replaces (``card["name"]``, ``card.get("metrics")``) so code
that only reads keys keeps working; it cannot be changed in place (write a new card with
:meth:`ModelCard.replace` or edit the JSON file).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

HEAD_KINDS = ("softmax", "sigmoid")
BINARY_CLASSES = ("Normal", "Abnormal")

#: keys of card.json that ModelCard types (everything else lives in ``extra``)
_TYPED = (
    "name", "version", "created", "architecture", "classes", "head", "findings", "preprocessing",
    "threshold", "weights_sha256", "weights_file", "weights_dtype", "onnx_file", "onnx_sha256",
    "intended_use", "local_validations",
)


def finding_column(name: str) -> str:
    """The CSV column of a finding: ``p_`` + its name lower-cased, spaces as underscores."""
    return "p_" + str(name).strip().lower().replace(" ", "_")


@dataclass(frozen=True)
class Finding:
    """One output of a multi-label head.

    Attributes
    ----------
    name
        As the model's publisher spells it (``"Lung Opacity"``, ``"Pleural_Thickening"``).
    op_point
        The operating point on the plain sigmoid probability, or ``None`` when the publisher
        gives none (then the finding is never called positive).
    code
        ``(value, scheme, meaning)`` of its SNOMED CT concept, or of the private scheme when
        SNOMED CT has none (see :mod:`cxrviewer.ml.findings`).
    """

    name: str
    op_point: float | None = None
    code: tuple[str, str, str] | None = None

    @property
    def column(self) -> str:
        return finding_column(self.name)

    @property
    def has_op_point(self) -> bool:
        return self.op_point is not None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "op_point": self.op_point}
        if self.code is not None:
            d["code"] = list(self.code)
        return d

    @classmethod
    def from_dict(cls, d: Any) -> Finding:
        if isinstance(d, str):
            return cls(d)
        if not isinstance(d, Mapping) or not str(d.get("name") or "").strip():
            raise ValueError(f"a finding must be an object with a name, not {d!r}")
        op = d.get("op_point")
        if op is not None:
            op = float(op)
            if not (math.isfinite(op) and 0.0 < op < 1.0):
                # NaN is how torchxrayvision writes "no operating point"; keep it None, never 0.5
                op = None
        code = d.get("code")
        code_t = tuple(str(x) for x in code) if isinstance(code, (list, tuple)) and len(code) == 3 else None
        return cls(str(d["name"]).strip(), op, code_t)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ModelCard(Mapping[str, Any]):
    """A model card (``card.json``), typed and immutable. Build with :meth:`from_dict`."""

    name: str
    version: str
    weights_sha256: str = ""
    created: str = ""
    architecture: str = "resnet50"
    head_kind: str = "softmax"
    classes: tuple[str, ...] = BINARY_CLASSES
    dropout: float = 0.0
    op_norm: bool = False
    findings: tuple[Finding, ...] = ()
    preprocessing: Mapping[str, Any] = field(default_factory=dict)
    threshold: float = 0.5
    weights_file: str = ""
    weights_dtype: str = ""
    onnx_file: str = ""
    onnx_sha256: str = ""
    intended_use: str = ""
    local_validations: tuple[Mapping[str, Any], ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    # ---- construction
    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelCard:
        """Type a parsed ``card.json`` (ValueError/TypeError on a key of the wrong kind).

        Cards without ``head.kind`` are the two-class softmax of the demo and of training.
        """
        if not isinstance(d, Mapping):
            raise TypeError("a model card must be a JSON object")
        head = d.get("head") or {}
        if not isinstance(head, Mapping):
            raise ValueError(f"head must be an object, not {head!r}")
        kind = str(head.get("kind") or "softmax")
        if kind not in HEAD_KINDS:
            raise ValueError(f"head kind {kind!r} is not one of {list(HEAD_KINDS)}")
        findings = tuple(Finding.from_dict(f) for f in (d.get("findings") or []))
        classes = tuple(str(c) for c in (d.get("classes") or BINARY_CLASSES))
        if kind == "softmax" and classes != BINARY_CLASSES:
            raise ValueError(f"classes {list(classes)} are not supported (expected {list(BINARY_CLASSES)})")
        if kind == "sigmoid":
            if not findings:
                raise ValueError("a multi-label (sigmoid) head needs its findings")
            names = [f.name for f in findings]
            if len(set(names)) != len(names):
                raise ValueError(f"findings repeat a name: {names}")
        thr = d.get("threshold", 0.5)
        if isinstance(thr, bool) or not isinstance(thr, (int, float)) or not 0.0 <= float(thr) <= 1.0:
            raise ValueError(f"threshold {thr!r} must be a number in [0, 1]")
        lv = d.get("local_validations") or []
        if not isinstance(lv, list) or not all(isinstance(r, Mapping) for r in lv):
            raise ValueError("local_validations must be a list of objects")
        pre = d.get("preprocessing") or {}
        if not isinstance(pre, Mapping):
            raise ValueError("preprocessing must be an object")
        return cls(
            name=str(d.get("name", "")),
            version=str(d.get("version", "")),
            weights_sha256=str(d.get("weights_sha256", "") or "").lower(),
            created=str(d.get("created", "") or ""),
            architecture=str(d.get("architecture") or "resnet50"),
            head_kind=kind,
            classes=classes,
            dropout=float(head.get("dropout", 0.0) or 0.0),
            op_norm=bool(head.get("op_norm", False)),
            findings=findings,
            preprocessing=dict(pre),
            threshold=float(thr),
            weights_file=str(d.get("weights_file", "") or ""),
            weights_dtype=str(d.get("weights_dtype", "") or ""),
            onnx_file=str(d.get("onnx_file", "") or ""),
            onnx_sha256=str(d.get("onnx_sha256", "") or ""),
            intended_use=str(d.get("intended_use", "") or ""),
            local_validations=tuple(dict(r) for r in lv),
            extra={k: v for k, v in d.items() if k not in _TYPED},
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``card.json`` (keys in a stable order, unknown keys kept): a deep
        copy, so changing it never changes this (frozen) card."""
        return copy.deepcopy(self._build_dict())

    def _build_dict(self) -> dict[str, Any]:
        head: dict[str, Any] = {"dropout": self.dropout}
        if self.head_kind != "softmax":
            head = {"kind": self.head_kind, "dropout": self.dropout, "op_norm": self.op_norm}
        d: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
        }
        if self.created:
            d["created"] = self.created
        d.update(architecture=self.architecture, classes=list(self.classes), head=head)
        if self.findings:
            d["findings"] = [f.to_dict() for f in self.findings]
        d.update(preprocessing=dict(self.preprocessing), threshold=self.threshold)
        for k in ("weights_sha256", "weights_file", "weights_dtype", "onnx_file", "onnx_sha256", "intended_use"):
            v = getattr(self, k)
            if v:
                d[k] = v
        if self.local_validations:
            d["local_validations"] = [dict(r) for r in self.local_validations]
        for k, v in self.extra.items():
            d.setdefault(k, v)
        return d

    def replace(self, **changes: Any) -> ModelCard:
        """A copy with fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    # ---- what callers ask
    @property
    def multi_label(self) -> bool:
        return self.head_kind == "sigmoid"

    @property
    def n_outputs(self) -> int:
        return len(self.findings) if self.multi_label else len(self.classes)

    # entries other modules write (kept in ``extra``; each module owns its keys' meaning)
    def _entry(self, key: str) -> Mapping[str, Any]:
        v = self.extra.get(key)
        return v if isinstance(v, Mapping) else {}

    @property
    def metrics(self) -> Mapping[str, Any]:
        """``{metric: {"value", "ci95", "split"}}`` measured by training (empty for imports)."""
        return self._entry("metrics")

    @property
    def calibration(self) -> Mapping[str, Any]:
        return self._entry("calibration")

    @property
    def temperature(self) -> float:
        """``calibration.temperature`` when a positive finite number, else 1.0."""
        try:
            t = float(self.calibration.get("temperature"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return 1.0
        return t if math.isfinite(t) and t > 0 else 1.0

    @property
    def ood(self) -> Mapping[str, Any]:
        """The learned out-of-distribution check's entry (:mod:`cxrviewer.ml.ood`), or {}."""
        return self._entry("ood")

    @property
    def source(self) -> Mapping[str, Any]:
        """Where an imported model came from (URL, file sha256, library), or {}."""
        return self._entry("source")

    @property
    def published(self) -> Mapping[str, Any]:
        """The publication of an imported model (citation, "published, not verified here"), or {}."""
        return self._entry("published")

    def finding(self, name: str) -> Finding:
        for f in self.findings:
            if f.name == name or f.column == name:
                return f
        raise KeyError(name)

    # ---- read-only mapping over to_dict(): code that reads keys keeps working
    def _dict(self) -> dict[str, Any]:
        cached = self.__dict__.get("_as_dict")
        if cached is None:
            cached = self.to_dict()  # its own copy: what mapping readers get cannot alter the fields
            object.__setattr__(self, "_as_dict", cached)
        return cached

    def __getitem__(self, key: str) -> Any:
        return self._dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict())

    def __len__(self) -> int:
        return len(self._dict())

    def __hash__(self) -> int:
        return hash((self.name, self.version, self.weights_sha256))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ModelCard):
            return self.to_dict() == other.to_dict()
        if isinstance(other, Mapping):
            return self.to_dict() == dict(other)
        return NotImplemented


def as_card(card: Mapping[str, Any] | ModelCard) -> ModelCard:
    """A :class:`ModelCard` from a card or a plain dict (tests and training build dicts)."""
    return card if isinstance(card, ModelCard) else ModelCard.from_dict(card)


__all__ = ["BINARY_CLASSES", "HEAD_KINDS", "Finding", "ModelCard", "as_card", "finding_column"]
