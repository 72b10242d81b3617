"""W/L update speed through the real canvas, offscreen (2500x2048 16-bit by default).

Each update is one ``ImageCanvas.set_window`` (``setLevels`` on the stored uint16 array)
followed by a forced paint of the view (``QGraphicsView.grab()``), so the time includes
pyqtgraph's LUT pass and Qt's rendering, not just bookkeeping.
"""

from __future__ import annotations

import argparse
import os
import time


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rows", type=int, default=2500)
    p.add_argument("--cols", type=int, default=2048)
    p.add_argument("--updates", type=int, default=120, help="W/L steps to time (default 120)")
    p.add_argument("--view", type=int, nargs=2, default=(1280, 1024), metavar=("W", "H"),
                   help="canvas size in screen pixels (default 1280 1024)")


def synthetic_image(rows: int, cols: int):
    """A 12-bit-in-16 chest-like LoadedImage (no file needed)."""
    import numpy as np

    from cxrviewer.core.types import ImageHeader, LoadedImage, WindowPreset
    from cxrviewer.core.window import robust_window

    y, x = np.mgrid[0:rows, 0:cols].astype(np.float32)
    v = 2000 + 1500 * np.sin(x / 97.0) * np.cos(y / 131.0) + 400 * ((x - cols / 2) ** 2 + (y - rows / 2) ** 2) ** 0.5 / rows
    stored = np.clip(v, 0, 4095).astype(np.uint16)
    modality = stored.astype(np.float32)
    c, w = robust_window(modality)
    auto = WindowPreset("Auto", c, w, "LINEAR", "auto")
    return LoadedImage(
        path="<synthetic>", stored=stored, modality=modality, photometric="MONOCHROME2", is_color=False,
        bits_stored=12, header=ImageHeader(modality="DX"), presets=[], auto_preset=auto,
    )


def run(args: argparse.Namespace) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import numpy as np
    from PySide6 import QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    from cxrviewer.ui.canvas import ImageCanvas

    img = synthetic_image(args.rows, args.cols)
    canvas = ImageCanvas()
    canvas.resize(*args.view)
    canvas.show()
    canvas.set_image(img)
    app.processEvents()
    canvas.graphics.grab()  # first paint builds caches; not timed
    c0, w0 = canvas.window()
    times = []
    for i in range(args.updates):
        t0 = time.perf_counter()
        canvas.set_window(c0 + 5 * (i % 40), w0 + 10 * (i % 25))
        canvas.graphics.grab()
        times.append(time.perf_counter() - t0)
    canvas.close()
    app.processEvents()
    ms = np.array(times) * 1000.0
    mean = float(ms.mean())
    return {
        "image": [args.rows, args.cols],
        "dtype": str(img.stored.dtype),
        "view": list(args.view),
        "updates": args.updates,
        "wl_update_ms": round(mean, 2),
        "wl_update_ms_p95": round(float(np.percentile(ms, 95)), 2),
        "fps": round(1000.0 / mean, 1),
        "method": "ImageCanvas.set_window (setLevels on stored uint16) + QGraphicsView.grab() per update",
    }
