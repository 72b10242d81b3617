"""UI responsiveness: "Analyze folder" on N images offscreen while a timer measures GUI stalls.

The real main window opens a folder of synthetic radiographs (real DICOM files written with
pydicom, each with its own SOPInstanceUID so nothing is served from the cache), loads the model
in the AI worker, then runs Model -> Analyze study/folder. A ``QTimer`` ticking every
``--tick-ms`` records when the event loop gets to run; a stall is how much later than due a
tick fired. Target: ``max_stall_ms`` <= 50 on CPU.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--images", type=int, default=20, help="images in the folder (default 20)")
    p.add_argument("--size", type=int, default=2048, help="image rows = columns (default 2048, a CR-sized image)")
    p.add_argument("--model", default=None,
                   help="model directory (default: the registry's active model, else a random-init ResNet-50)")
    p.add_argument("--tick-ms", type=float, default=5.0, help="stall-probe timer interval (default 5 ms)")
    p.add_argument("--cam", action="store_true", help="compute Grad-CAM for every image too (default: probabilities only)")
    p.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds")
    p.add_argument("--idle-s", type=float, default=3.0,
                   help="first measure the idle event loop this long (what the machine alone costs; 0: skip)")


def _write_folder(folder: str, n: int, size: int) -> list[str]:
    import numpy as np

    from cxrviewer.core.synthetic import chest_like, make_dataset, write_dataset

    out = []
    base = chest_like(size, size, bits=12, seed=0).astype(np.int32)
    for i in range(n):
        # a different image each time (shifted noise), cheap to make
        rng = np.random.default_rng(i)
        a = np.clip(base + rng.integers(-40, 40, size=(1, size)), 0, 4095).astype(np.uint16)
        ds = make_dataset(a, bits_stored=12, instance_number=i + 1,
                          extra={"WindowCenter": 2048, "WindowWidth": 4096, "ViewPosition": "PA"})
        p = os.path.join(folder, f"img_{i:03d}.dcm")
        write_dataset(ds, p)
        out.append(p)
    return out


def _model_dir(arg: str | None, tmp: str) -> tuple[str | None, str]:
    from cxrviewer.bench.startup import _model_dir as pick

    return pick(arg, tmp)


def _wait(app, cond, timeout: float) -> bool:
    from PySide6 import QtCore

    end = time.perf_counter() + timeout
    while not cond():
        if time.perf_counter() > end:
            return False
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)
        time.sleep(0.002)
    return True


def run(args: argparse.Namespace) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="cxrviewer-bench-ui-") as tmp:
        folder = os.path.join(tmp, "study")
        os.makedirs(folder)
        _write_folder(folder, args.images, args.size)
        model_dir, source = _model_dir(args.model, tmp)

        from PySide6 import QtCore

        from cxrviewer.ui.app import create_window, get_app

        app = get_app()
        w = create_window(folder)
        w.show()
        ai = w.ai
        auto_before = ai.auto_analyze
        ai.act_auto.setChecked(False)  # measure the folder run, not a competing single image
        ai.start(model_dir)
        if not _wait(app, lambda: ai.controller.ready or ai.controller.model_error, args.timeout):
            raise RuntimeError("the model did not load in time")
        if not ai.controller.ready:
            raise RuntimeError(f"no model: {ai.controller.model_error}")
        if not _wait(app, lambda: w.browser.count_images() >= args.images, args.timeout):
            raise RuntimeError("the folder scan did not finish in time")
        _wait(app, lambda: w.current_image is not None, 30)

        idle_ticks: list[float] = []
        if args.idle_s > 0:
            # the same probe with nothing analysing: stalls here come from the machine
            # (other processes, the scheduler), not from the AI
            idle = QtCore.QTimer()
            idle.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
            idle.setInterval(max(1, round(args.tick_ms)))
            idle.timeout.connect(lambda: idle_ticks.append(time.perf_counter()))
            idle_ticks.append(time.perf_counter())
            idle.start()
            _wait(app, lambda: time.perf_counter() - idle_ticks[0] > args.idle_s, args.idle_s + 5)
            idle.stop()
        ticks: list[float] = []
        timer = QtCore.QTimer()
        timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        timer.setInterval(max(1, round(args.tick_ms)))
        timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
        done: list = []
        ai.controller.finished.connect(done.append)
        timer.start()
        t0 = time.perf_counter()
        ticks.append(t0)
        ai.controller.analyze_many(w.browser.image_paths(), cam=args.cam)
        loop = QtCore.QEventLoop()
        ai.controller.finished.connect(lambda *_: loop.quit())
        QtCore.QTimer.singleShot(int(args.timeout * 1000), loop.quit)
        if not done:
            loop.exec()
        elapsed = time.perf_counter() - t0
        timer.stop()
        summary = done[0] if done else None
        ai.settings.setValue("ai/auto_analyze", auto_before)  # the user's setting, untouched
        w.close()
        w.shutdown()
    idle_gaps = np.diff(np.asarray(idle_ticks)) * 1e3
    idle_stalls = np.maximum(idle_gaps - args.tick_ms, 0.0) if idle_gaps.size else None
    gaps = np.diff(np.asarray(ticks)) * 1e3
    stalls = np.maximum(gaps - args.tick_ms, 0.0) if gaps.size else np.zeros(1)
    return {
        "images": args.images,
        "max_stall_ms": round(float(stalls.max()), 1),
        "p95_stall_ms": round(float(np.percentile(stalls, 95)), 1),
        "images_per_s": round((summary.done if summary else 0) / elapsed, 3) if elapsed > 0 else None,
        "idle_max_stall_ms": round(float(idle_stalls.max()), 1) if idle_stalls is not None else None,
        "idle_p95_stall_ms": round(float(np.percentile(idle_stalls, 95)), 1) if idle_stalls is not None else None,
        "done": summary.done if summary else 0,
        "failed": summary.failed if summary else None,
        "image_size": [args.size, args.size],
        "cam": bool(args.cam),
        "device": ai.controller.model.device if ai.controller.model else None,
        "backend": ai.controller.model.backend if ai.controller.model else None,
        "model": source,
        "target_max_stall_ms": 50,
        # other processes on a small machine inflate stalls: say how busy it was
        "loadavg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "cpus": os.cpu_count(),
    }
