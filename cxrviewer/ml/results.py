"""Results keyed by content: the one key function and the one results cache of the app.

A result belongs to the *pixels the model saw*, never to a UID: two files with the same
SOPInstanceUID and different pixels (it happens: the shared SIIM pair) are two images, and
one file's result must never be shown for the other. So the key is

``sha256(decoded pixels + how they are read (photometric, rescale, the window the model's
preprocessing uses) + frame + model name/version/weights + preprocessing + calibration)``

computed by :func:`content_key`. Hashing a decoded 2500×2048 16-bit frame takes ~20 ms, so the
viewer memoises the pixel digest per (path, frame, size, mtime) and only hashes on a miss.

:class:`ResultCache` is the app's one cache of predictions: probabilities for every image
analysed (they feed the study browser's badges) plus heatmaps in a byte-bounded LRU.
Thread-safe: the AI worker fills it, the GUI thread reads it. Qt-free.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np

from cxrviewer.core.hashing import sha256_parts
from cxrviewer.core.types import LoadedImage

KEY_VERSION = "cxr-content-v1"


def pixel_digest(img: LoadedImage) -> str:
    """sha256 of one decoded frame and everything that turns it into the model's input
    besides the model itself: photometric, MONOCHROME1 inversion, rescale, the default
    window (and its VOI LUT when it is one)."""
    preset = img.default_preset
    lut = b""
    if preset is not None and preset.source == "voi_lut" and preset.lut_index is not None:
        if 0 <= preset.lut_index < len(img.voi_luts):
            lut = np.ascontiguousarray(img.voi_luts[preset.lut_index].data).tobytes()
    how = json.dumps(
        {
            "photometric": img.photometric,
            "color": bool(img.is_color),
            "invert": bool(img.invert),
            "bits": int(img.bits_stored),
            "rescale": [float(img.rescale_slope), float(img.rescale_intercept)],
            "window": None
            if preset is None
            else [float(preset.center), float(preset.width), preset.function, preset.source],
        },
        sort_keys=True,
    )
    return sha256_parts(KEY_VERSION, np.asarray(img.stored), how, lut)


def model_identity(card: Mapping[str, Any]) -> str:
    """The parts of a model card that change its output for the same pixels."""
    cal = card.get("calibration")
    temp = cal.get("temperature") if isinstance(cal, Mapping) else None
    return json.dumps(
        {
            "name": str(card.get("name", "")),
            "version": str(card.get("version", "")),
            "weights": str(card.get("weights_sha256", "")),
            "preprocessing": card.get("preprocessing") or {},
            "temperature": temp,
            "threshold": card.get("threshold"),
            "ood": (card.get("ood") or {}).get("sha256") if isinstance(card.get("ood"), Mapping) else None,
        },
        sort_keys=True,
        default=str,
    )


def content_key(image: LoadedImage | str, frame: int, card: Mapping[str, Any]) -> str:
    """The key of one image's result under one model: ``"c:" + sha256``.

    Parameters
    ----------
    image
        The decoded frame, or its :func:`pixel_digest` when already known (memoised).
    frame
        The frame number (0-based).
    card
        The model card (name, version, weights sha256, preprocessing, calibration).
    """
    digest = image if isinstance(image, str) else pixel_digest(image)
    return "c:" + sha256_parts(KEY_VERSION, digest, str(int(frame)), model_identity(card))


class ResultCache:
    """Predictions per content key; heatmaps in a byte-bounded LRU.

    A hit that lacks the heatmap when one is wanted counts as a miss. Probabilities are kept
    for every image analysed (small); heatmaps (a few MB each at full resolution) are
    evicted oldest first beyond ``cam_budget_bytes``.
    """

    def __init__(self, cam_budget_bytes: int = 384 << 20) -> None:
        self._lock = threading.Lock()
        self._pred: dict[str, Any] = {}
        self._cams: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cam_bytes = 0
        self.budget = int(cam_budget_bytes)

    def get(self, key: str, need_cam: bool = False) -> tuple[Any, np.ndarray | None] | None:
        """``(prediction, heatmap or None)``, or ``None`` on a miss."""
        with self._lock:
            pred = self._pred.get(key)
            if pred is None:
                return None
            cam = self._cams.get(key)
            if cam is not None:
                self._cams.move_to_end(key)
            if need_cam and cam is None:
                return None
            return pred, cam

    def put(self, key: str, prediction: Any, cam: np.ndarray | None = None) -> None:
        """Store a prediction (and its heatmap, if any) under ``key``."""
        with self._lock:
            self._pred[key] = prediction
            if cam is None:
                return
            old = self._cams.pop(key, None)
            if old is not None:
                self._cam_bytes -= old.nbytes
            self._cams[key] = cam
            self._cam_bytes += cam.nbytes
            while self._cam_bytes > self.budget and len(self._cams) > 1:
                _, ev = self._cams.popitem(last=False)
                self._cam_bytes -= ev.nbytes

    @property
    def cam_bytes(self) -> int:
        with self._lock:
            return self._cam_bytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._pred)

    def clear(self) -> None:
        with self._lock:
            self._pred.clear()
            self._cams.clear()
            self._cam_bytes = 0


__all__ = ["KEY_VERSION", "ResultCache", "content_key", "model_identity", "pixel_digest"]
