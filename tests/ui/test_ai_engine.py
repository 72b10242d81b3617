"""The AI worker and the headless export with the real Engine (a random-init ResNet-50 model dir)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("pytestqt", reason="pytest-qt is needed for the Qt tests")
pytest.importorskip("cxrviewer.ml.inference", reason="the AI engine (cxrviewer.ml.inference) is not in this checkout")

from test_ai_support import write_pngs  # noqa: E402

from cxrviewer.render.colormaps import cam_to_index, threshold_index  # noqa: E402
from cxrviewer.ui.workers import AiController  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    import torch

    from cxrviewer.ml.model import build_model
    from cxrviewer.ml.onnx_model import write_model_onnx
    from cxrviewer.ml.registry import save_model_dir

    torch.manual_seed(0)
    d = save_model_dir(build_model(), tmp_path_factory.mktemp("m") / "rand50",
                       {"name": "rand50", "version": "0.1", "threshold": 0.5}, dtype="float32")
    write_model_onnx(d)  # as publish/import would: the workers never export (torch) themselves
    return d


class Counting:
    """The real engine, with its ``predict`` calls counted (attributes delegated)."""

    def __init__(self, engine) -> None:
        self._e = engine
        self.calls = 0
        self.lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self._e, name)

    def predict(self, img, cam=True, target_class=None):
        with self.lock:
            self.calls += 1
        return self._e.predict(img, cam=cam, target_class=target_class)


@pytest.fixture
def controller(qtbot, model_dir):
    from cxrviewer.ml.inference import Engine

    holder = {}

    def factory(d):
        holder["engine"] = Counting(Engine.load(d))
        return holder["engine"]

    c = AiController(engine_factory=factory)
    with qtbot.waitSignal(c.modelChanged, timeout=120000) as blk:
        c.load_model(model_dir)
    assert blk.args[0] is not None, c.model_error
    c.engine = holder["engine"]
    yield c
    c.shutdown()


def test_real_engine_result_with_cam_in_original_geometry(qtbot, controller, rg1_unci):
    info = controller.model
    assert info.name == "rand50" and info.version == "0.1" and info.device
    with qtbot.waitSignal(controller.resultReady, timeout=120000) as blk:
        controller.analyze(rg1_unci)
    res = blk.args[0]
    pred = res.prediction
    assert pred.model_name == "rand50" and pred.label in ("Normal", "Abnormal")
    assert abs(sum(pred.probabilities) - 1.0) < 1e-4 and 0.0 <= res.probability <= 1.0
    assert res.cam_u8 is not None and res.cam_u8.shape == (1955, 1841) and res.cam_u8.dtype == np.uint8
    assert res.key.startswith("dicom:")
    calls = controller.engine.calls
    got = []
    controller.resultReady.connect(got.append)
    controller.analyze(rg1_unci)  # the second time: cached, synchronous, no engine call
    assert got and got[0].from_cache and controller.engine.calls == calls


def test_real_engine_fast_selection_shows_only_the_last(qtbot, controller, tmp_path):
    paths = write_pngs(tmp_path, 5, size=(96, 80))
    shown = []
    controller.resultReady.connect(shown.append)
    for p in paths[:-1]:
        controller.analyze(p)
    with qtbot.waitSignal(controller.resultReady, timeout=120000,
                          check_params_cb=lambda r: r.path == str(paths[-1])):
        controller.analyze(paths[-1])
    qtbot.wait(200)
    assert [r.path for r in shown] == [str(paths[-1])]
    assert controller.engine.calls <= 2  # at most the one already running + the last


def test_real_engine_cancel_stops_a_folder_run(qtbot, controller, tmp_path):
    paths = write_pngs(tmp_path, 12, size=(96, 80))
    controller.progress.connect(lambda rid, d, t: controller.cancel() if d == 1 else None)
    with qtbot.waitSignal(controller.finished, timeout=120000) as blk:
        controller.analyze_many(paths)
    s = blk.args[0]
    assert s.cancelled and 1 <= s.done <= 2 < s.total


def test_cli_export_heatmap_differs_exactly_above_threshold(model_dir, tmp_path, capsys):
    from cxrviewer.cli import main
    from cxrviewer.core.dicom_io import load_image
    from cxrviewer.ml.inference import Engine

    (p,) = write_pngs(tmp_path, 1, size=(120, 100))
    plain, heat = tmp_path / "plain.png", tmp_path / "heat.png"
    assert main(["export", str(p), "--out", str(plain), "--native", "--no-annotations"]) == 0
    assert main(["export", str(p), "--out", str(heat), "--native", "--no-annotations", "--heatmap",
                 "--model", str(model_dir), "--heatmap-threshold", "0.3", "--heatmap-opacity", "0.5"]) == 0
    a, b = load_image(plain).stored, load_image(heat).stored
    assert a.shape == (120, 100) and b.shape == (120, 100, 3)
    cam = Engine.load(str(model_dir)).predict(load_image(p), cam=True).cam
    above = cam_to_index(cam) >= threshold_index(0.3)
    assert 0 < above.sum()
    differs = (b != a[..., None]).any(axis=2)
    np.testing.assert_array_equal(differs, above)
