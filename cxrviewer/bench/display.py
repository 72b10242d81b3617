"""W/L update speed through the real canvas, offscreen (2500x2048 16-bit by default).

Each update is one ``ImageCanvas.set_window`` (``setLevels`` on the stored uint16 array)
followed by a forced paint of the view (``QGraphicsView.grab()``), so the time includes
pyqtgraph's LUT pass and Qt's rendering, not just bookkeeping.

``synced_viewports``/``synced_fps``: the same W/L steps in a 1x2 viewport grid with W/L sync
on (the second viewport's image has another Rescale Slope/Intercept, so it follows in modality
values through its own levels); each step paints both views.
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


def rescaled(img, slope: float = 2.0, intercept: float = -1000.0):
    """The same picture as ``img`` stored with another rescale (modality = slope*stored + intercept)."""
    import dataclasses

    import numpy as np

    stored = np.clip((img.modality - intercept) / slope, 0, 65535).astype(np.uint16)
    return dataclasses.replace(img, stored=stored, modality=stored.astype(np.float32) * slope + intercept)


def synced_wl_times(img, updates: int, view: tuple[int, int]) -> tuple[list[float], list[float]]:
    """Seconds per W/L step in two synced viewports (1x2 grid of ``view`` size), both painted:
    ``(wall, cpu)``. The process CPU time says what a step costs when other jobs share the
    cores (wall time then includes waiting for one)."""
    import time

    from PySide6 import QtWidgets

    from cxrviewer.ui.canvas.viewports import ViewportGrid

    app = QtWidgets.QApplication.instance()
    grid = ViewportGrid()
    grid.resize(*view)
    grid.set_layout("1x2")
    grid.show()
    grid.open(0, img)
    grid.open(1, rescaled(img))
    grid.set_sync(wl=True)
    app.processEvents()
    c0, c1 = grid.canvas(0), grid.canvas(1)
    for c in (c0, c1):
        c.graphics.grab()  # first paint builds caches; not timed
    base0, base1 = c0.window(), c1.window()
    times, cpu = [], []
    for i in range(updates):
        t0, p0 = time.perf_counter(), time.process_time()
        c0.set_window(base0[0] + 5 * (i % 40), base0[1] + 10 * (i % 25))
        c0.graphics.grab()
        c1.graphics.grab()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - p0)
    # the second viewport followed by the same offset in modality units (else the figure is void)
    d0 = (c0.window()[0] - base0[0], c0.window()[1] - base0[1])
    d1 = (c1.window()[0] - base1[0], c1.window()[1] - base1[1])
    if max(abs(d0[0] - d1[0]), abs(d0[1] - d1[1])) > 1e-6:
        raise RuntimeError(f"W/L sync did not follow: {d0} vs {d1}")
    grid.close()
    app.processEvents()
    return times, cpu


def run(args: argparse.Namespace) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import numpy as np
    from PySide6 import QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    from cxrviewer.ui.canvas.canvas import ImageCanvas

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
    wall, cpu = synced_wl_times(img, args.updates, tuple(args.view))
    sms = np.array(wall) * 1000.0
    smean = float(sms.mean())
    cpu_ms = float(np.mean(cpu)) * 1000.0
    return {
        "image": [args.rows, args.cols],
        "dtype": str(img.stored.dtype),
        "view": list(args.view),
        "updates": args.updates,
        "wl_update_ms": round(mean, 2),
        "wl_update_ms_p95": round(float(np.percentile(ms, 95)), 2),
        "fps": round(1000.0 / mean, 1),
        "method": "ImageCanvas.set_window (setLevels on stored uint16) + QGraphicsView.grab() per update",
        "synced_viewports": 2,
        "synced_fps": round(1000.0 / smean, 1),
        # the median step: a shared, loaded machine adds long outliers to the mean
        "synced_fps_median": round(1000.0 / float(np.median(sms)), 1),
        "synced_wl_update_ms": round(smean, 2),
        "synced_wl_update_ms_p95": round(float(np.percentile(sms, 95)), 2),
        "synced_cpu_ms_per_update": round(cpu_ms, 2),
        "synced_fps_cpu": round(1000.0 / cpu_ms, 1) if cpu_ms > 0 else None,
        "synced_method": "1x2 ViewportGrid, W/L sync on (second image rescaled: slope 2, intercept -1000); "
                         "set_window on viewport 0, sync sets viewport 1, both views grabbed per update",
    }
