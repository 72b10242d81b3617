"""Startup: seconds from process start to the main window shown, and to the model loaded.

Launches ``python -m cxrviewer view`` offscreen in a fresh process with the hidden
``CXRVIEWER_STARTUP_PROBE=1`` (the app prints ``CXRVIEWER_TIMING`` lines and quits once the
model is loaded). The clock starts just before the process is spawned, so interpreter start-up
counts. Target: ``window_shown_s`` <= 2.5 (torch loads in the AI worker after the window).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None,
                   help="model directory (default: the registry's active model; with none, a random-init "
                        "ResNet-50 is written to a temp dir so the load is still measured)")
    p.add_argument("--runs", type=int, default=1, help="launches; the median is reported (default 1)")
    p.add_argument("--sample", action="store_true", help="open the bundled sample study as well")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds before a launch is abandoned")


def _model_dir(arg: str | None, tmp: str) -> tuple[str | None, str]:
    if arg:
        return arg, "given"
    try:
        from cxrviewer.ml.registry import Registry

        if Registry().active() is not None:
            return None, "registry"
    except Exception:  # no registry module or unreadable: fall through to a random model
        pass
    from cxrviewer.ml.model import build_model
    from cxrviewer.ml.registry import save_model_dir

    d = os.path.join(tmp, "bench-random-resnet50")
    save_model_dir(build_model(), d, {"name": "bench-random", "version": "0", "threshold": 0.5})
    return d, "random-init"


def launch(model_dir: str | None, sample: bool, timeout: float) -> dict:
    """One launch; returns the parsed timings (seconds from spawn)."""
    env = dict(os.environ)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["CXRVIEWER_STARTUP_PROBE"] = "1"
    if model_dir:
        env["CXRVIEWER_MODEL"] = model_dir
    cmd = [sys.executable, "-m", "cxrviewer", "view"] + (["--sample"] if sample else [])
    t0 = time.time()
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"window_shown_s": None, "model_ready_s": None, "error": f"no result within {timeout:.0f} s"}
    res: dict = {"window_shown_s": None, "model_ready_s": None}
    for line in out.stdout.splitlines():
        parts = line.split(" ", 2)
        if len(parts) < 3 or parts[0] != "CXRVIEWER_TIMING":
            continue
        if parts[1] == "model_error":
            res["error"] = parts[2]
        elif parts[2] != "null":
            res[f"{parts[1]}_s"] = round(float(parts[2]) - t0, 3)
    if res["window_shown_s"] is None:
        tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
        res["error"] = res.get("error") or f"exit {out.returncode}: " + " | ".join(tail)
    return res


def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="cxrviewer-bench-startup-") as tmp:
        model_dir, source = _model_dir(args.model, tmp)
        runs = [launch(model_dir, args.sample, args.timeout) for _ in range(max(1, args.runs))]

    def median(key: str):
        vals = sorted(r[key] for r in runs if r.get(key) is not None)
        return vals[len(vals) // 2] if vals else None

    out = {"window_shown_s": median("window_shown_s"), "model_ready_s": median("model_ready_s"),
           "runs": len(runs), "model": source, "target_window_shown_s": 2.5}
    if hasattr(os, "getloadavg"):
        out["loadavg_1m"] = round(os.getloadavg()[0], 2)  # how busy the machine was
    errors = [r["error"] for r in runs if r.get("error")]
    if errors:
        out["error"] = errors[0]
    return out
