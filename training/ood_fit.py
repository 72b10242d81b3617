"""The out-of-distribution gate in ``evaluate``: how many images it refuses, and the metrics on
the images it accepts next to the metrics on all of them.

(The gate of a training run is fitted at its end by :func:`training.postfit.fit_ood`.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def gate_report(model_dir: Path, card: dict, feats: np.ndarray, y: np.ndarray, s: np.ndarray, thr: float,
                bootstrap: int, seed: int) -> dict[str, Any]:
    """The learned check of the model's gate (:mod:`cxrviewer.ml.ood`) on pooled layer4
    features ``feats`` of an evaluation set; ``y``/``s`` labels and P(Abnormal)."""
    from cxrviewer.core.errors import CxrError
    from cxrviewer.ml.ood import load_feature_gate
    from training import metrics as M

    try:
        gate = load_feature_gate(model_dir, card)
    except CxrError as e:
        return {"available": False, "reason": str(e)}
    if gate is None:
        return {"available": False, "reason": "the model card has no OOD statistics (cxrviewer models fit-ood)"}
    d = gate.distance(feats)
    ok = d <= gate.threshold
    rep: dict[str, Any] = {
        "available": True, "threshold": gate.threshold, "images": int(len(d)),
        "refused": int((~ok).sum()), "refusal_rate": float(np.mean(~ok)) if len(d) else 0.0,
        "note": "learned check on the preprocessed images; the DICOM header rules are applied by infer and the viewer",
    }
    if ok.any() and len(set(np.asarray(y)[ok].tolist())) == 2:
        rep["metrics_accepted"] = M.bootstrap(np.asarray(y)[ok], np.asarray(s)[ok], thr, n=bootstrap, seed=seed)
    return rep
