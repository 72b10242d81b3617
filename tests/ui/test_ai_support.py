"""Support for the AI-in-the-viewer tests (no tests here): a tiny real stand-in engine and images.

The stand-in has the agreed ``Engine`` surface (``predict``, ``predict_batch``, ``name``,
``version``, ``device``, ``backend``, ``threshold``, ``card``) and computes a deterministic
function of the pixels, so tests about threading, caching and geometry don't pay for a
ResNet-50; the tests about the real model use ``cxrviewer.ml.inference.Engine``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class StandInPrediction:
    probabilities: tuple
    probability_abnormal: float
    label: str
    threshold: float
    cam: np.ndarray | None
    cam_class: int
    model_name: str
    model_version: str
    device: str
    backend: str
    elapsed_ms: float
    gate: object = None  # cxrviewer.ml.ood.GateOutcome, when the stand-in refuses the image

    @property
    def scored(self) -> bool:
        return self.gate is None or self.gate.ok


class StandInEngine:
    """P(Abnormal) = mean display value of the image; CAM = the normalised pixels."""

    def __init__(self, delay_s: float = 0.0, name: str = "standin", version: str = "1") -> None:
        self.delay_s = delay_s
        self.calls = 0
        self.calls_lock = threading.Lock()
        self.name, self.version, self.device, self.backend = name, version, "cpu", "numpy"
        self.threshold = 0.5
        # a test AUC whose interval clears 0.70: the verdict may be shown (cxrviewer.ml.policy)
        self.card = {"name": name, "version": version, "threshold": 0.5,
                     "metrics": {"auc": {"value": 0.9, "ci95": [0.85, 0.94], "split": "test"}}}
        self.seen: list[str] = []
        #: file names containing this are refused as out of distribution (tests of the gate's UI)
        self.refuse_marker = "ood"

    def predict(self, img, cam: bool = True, target_class=None) -> StandInPrediction:
        t0 = time.perf_counter()
        with self.calls_lock:
            self.calls += 1
            self.seen.append(img.path)
        if self.delay_s:
            time.sleep(self.delay_s)
        a = np.asarray(img.stored, dtype=np.float32)
        if a.ndim == 3:
            a = a.mean(axis=2)
        lo, hi = float(a.min()), float(a.max())
        norm = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
        p = float(a.mean() / (255.0 if a.max() <= 255 else 65535.0))
        label = "Abnormal" if p >= self.threshold else "Normal"
        gate = None
        if self.refuse_marker and self.refuse_marker in Path(img.path).name:
            from cxrviewer.ml.ood import refused

            gate = refused("Modality CT: the model reads chest radiographs (CR or DX) only", "header")
        return StandInPrediction((1 - p, p), p, label, self.threshold, norm.astype(np.float32) if cam else None,
                                 1, self.name, self.version, self.device, self.backend,
                                 (time.perf_counter() - t0) * 1e3, gate)

    def predict_batch(self, imgs, cam: bool = False):
        return [self.predict(i, cam=cam) for i in imgs]


def write_pngs(folder: Path, n: int, size: tuple[int, int] = (40, 30)) -> list[Path]:
    """``n`` distinct grayscale PNGs (different content, so different sha256 and results)."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        rng = np.random.default_rng(i)
        a = (rng.random(size) * 60 + 20 + 7 * i).clip(0, 255).astype(np.uint8)
        p = folder / f"img_{i:03d}.png"
        assert cv2.imwrite(str(p), a)
        out.append(p)
    return out


def ai_integration(qtbot, tmp_path: Path, factory):
    """An ``AiIntegration`` on a bare window and canvas with its own settings file (call ``shutdown()`` after)."""
    from PySide6 import QtCore, QtWidgets

    from cxrviewer.ui.ai.integration import AiIntegration
    from cxrviewer.ui.canvas.canvas import ImageCanvas

    win = QtWidgets.QMainWindow()
    canvas = ImageCanvas()
    win.setCentralWidget(canvas)
    settings = QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    integ = AiIntegration(win, canvas, None, engine_factory=factory, settings=settings)
    qtbot.addWidget(win)
    return integ
