"""The window comes before torch: the model loads in the AI worker after the window is shown."""

from __future__ import annotations

import os
import subprocess
import sys


def _env(tmp_path):
    env = dict(os.environ)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["CXRVIEWER_DATA_DIR"] = str(tmp_path / "data")
    return env


def test_showing_the_window_imports_no_torch(tmp_path):
    code = (
        "import sys\n"
        "from cxrviewer.ui.app import create_window, get_app\n"
        "app = get_app(); w = create_window(); w.show(); app.processEvents()\n"
        "print('AI' in w.ai.dock.windowTitle(), 'torch' in sys.modules, 'onnxruntime' in sys.modules,"
        " 'matplotlib.pyplot' in sys.modules)\n"
        "w.shutdown()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False", "False", "False"]


def test_startup_probe_reports_window_then_model_state(tmp_path):
    from cxrviewer.bench.startup import launch

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    res = launch(str(tmp_path / "no-such-model"), sample=False, timeout=120)
    assert res["window_shown_s"] is not None and 0 < res["window_shown_s"] < 60
    # a missing model: the app says so and quits; the window was up regardless
    assert res["model_ready_s"] is None and "could not be loaded" in res.get("error", "")
