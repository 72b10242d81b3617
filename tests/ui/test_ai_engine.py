"""The AI worker and the headless export with the real Engine (a random-init ResNet-50 model dir)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("pytestqt", reason="pytest-qt is needed for the Qt tests")
pytest.importorskip("cxrviewer.ml.inference", reason="the AI engine (cxrviewer.ml.inference) is not in this checkout")

from test_ai_support import write_pngs  # noqa: E402

from cxrviewer.render.colormaps import cam_to_index, threshold_index  # noqa: E402
from cxrviewer.ui.ai.workers import AiController  # noqa: E402


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
    assert res.key.startswith("c:")  # content key, never a UID
    calls = controller.engine.calls
    got = []
    controller.resultReady.connect(got.append)
    controller.analyze(rg1_unci)  # the second time: cached, synchronous, no engine call
    assert got and got[0].from_cache and controller.engine.calls == calls


def test_siim_pair_same_uid_different_pixels_two_results(qtbot, controller, shared_data, tmp_path):
    """The shared SIIM pair: one SOPInstanceUID, different pixels (the second is flagged
    MONOCHROME1, so the model sees the negative). Each gets its own result, equal to a fresh
    single-file run; neither is served from the other's cache entry."""
    from cxrviewer.core.dicom_io import load_image
    from cxrviewer.ml.inference import Engine

    a = shared_data / "dicom" / "siim_chest_pa_jpeg_baseline.dcm"
    b = shared_data / "dicom" / "siim_chest_pa_flagged_monochrome1.dcm"
    ia, ib = load_image(a), load_image(b)
    assert ia.header.sop_instance_uid == ib.header.sop_instance_uid  # the premise
    results = {}
    for p in (a, b):
        with qtbot.waitSignal(controller.resultReady, timeout=120000) as blk:
            controller.analyze(p)
        results[p] = blk.args[0]
        assert not results[p].from_cache
    ra, rb = results[a], results[b]
    assert ra.key != rb.key and controller.engine.calls == 2
    fresh = Engine.load(controller.engine.model_dir)
    for p, r in ((a, ra), (b, rb)):
        f = fresh.predict(load_image(p), cam=True)
        assert abs(r.probability - f.probability_abnormal) < 1e-5
        np.testing.assert_array_equal(r.cam_u8, cam_to_index(f.cam))
    assert abs(ra.probability - rb.probability) > 1e-4 or not np.array_equal(ra.cam_u8, rb.cam_u8)
    # selecting each again: served from the cache, each its own
    got = []
    controller.resultReady.connect(got.append)
    controller.analyze(a)
    controller.analyze(b)
    assert [g.from_cache for g in got] == [True, True] and controller.engine.calls == 2
    assert got[0].probability == ra.probability and got[1].probability == rb.probability
    # a copy of a at another path is the same content: same key
    c = tmp_path / "copy.dcm"
    c.write_bytes(a.read_bytes())
    with qtbot.waitSignal(controller.resultReady, timeout=120000) as blk:
        controller.analyze(c)
    assert blk.args[0].key == ra.key and blk.args[0].from_cache


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
