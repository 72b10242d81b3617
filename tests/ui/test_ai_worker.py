"""The AI worker thread: results through signals, stale results dropped, cancel, cache, errors."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("pytestqt", reason="pytest-qt is needed for the Qt tests")

from test_ai_support import StandInEngine, write_pngs  # noqa: E402

from cxrviewer.ui.ai.workers import AiController, AnalyzeResult, WorkerError  # noqa: E402


@pytest.fixture
def make_controller(qtbot):
    made = []

    def make(engine=None, fail: str | None = None, **kw):
        eng = engine or StandInEngine()

        def factory(model_dir):
            # runs on the worker thread, like Engine.load
            if fail:
                raise RuntimeError(fail)
            factory.thread = threading.current_thread()
            return eng

        ctrl = AiController(engine_factory=factory, **kw)
        made.append(ctrl)
        ctrl.engine, ctrl.factory = eng, factory
        return ctrl

    yield make
    for c in made:
        c.shutdown()


def _loaded(qtbot, ctrl):
    with qtbot.waitSignal(ctrl.modelChanged, timeout=10000) as blk:
        ctrl.load_model(None)
    assert blk.args[0] is not None
    return blk.args[0]


def test_model_loads_on_the_worker_thread_and_reports_device(qtbot, make_controller):
    ctrl = make_controller()
    info = _loaded(qtbot, ctrl)
    assert ctrl.factory.thread is not threading.main_thread()
    assert info.device == "cpu" and info.name == "standin" and ctrl.ready


def test_selecting_an_image_produces_a_result(qtbot, make_controller, tmp_path):
    ctrl = make_controller()
    _loaded(qtbot, ctrl)
    (p,) = write_pngs(tmp_path, 1)
    with qtbot.waitSignal(ctrl.resultReady, timeout=10000) as blk:
        rid = ctrl.analyze(p)
    res: AnalyzeResult = blk.args[0]
    assert res.request_id == rid and res.path == str(p) and not res.from_cache
    assert res.key.startswith("c:") and len(res.key) == 2 + 64  # content key
    assert 0.0 < res.probability < 1.0
    assert res.cam_u8 is not None and res.cam_u8.dtype == np.uint8 and res.cam_u8.shape == (40, 30)
    assert res.prediction.cam is None  # the float CAM is not kept twice


def test_fast_sequence_of_selections_shows_only_the_last(qtbot, make_controller, tmp_path):
    ctrl = make_controller(StandInEngine(delay_s=0.15))
    _loaded(qtbot, ctrl)
    paths = write_pngs(tmp_path, 6)
    shown: list[AnalyzeResult] = []
    ctrl.resultReady.connect(shown.append)
    for p in paths[:-1]:
        ctrl.analyze(p)
    with qtbot.waitSignal(ctrl.resultReady, timeout=10000, check_params_cb=lambda r: r.path == str(paths[-1])):
        last = ctrl.analyze(paths[-1])
    qtbot.wait(300)  # anything stale still in flight would arrive now
    assert [r.path for r in shown] == [str(paths[-1])]
    assert shown[0].request_id == last
    # superseded requests still queued were skipped, not computed
    assert ctrl.engine.calls < len(paths)


def test_reselecting_is_instant_from_the_cache(qtbot, make_controller, tmp_path):
    ctrl = make_controller()
    _loaded(qtbot, ctrl)
    a, b = write_pngs(tmp_path, 2)
    for p in (a, b):
        with qtbot.waitSignal(ctrl.resultReady, timeout=10000):
            ctrl.analyze(p)
    assert ctrl.engine.calls == 2
    got = []
    ctrl.resultReady.connect(got.append)
    ctrl.analyze(a)  # emitted synchronously: no round trip through the worker
    assert len(got) == 1 and got[0].from_cache and got[0].cam_u8 is not None
    assert ctrl.engine.calls == 2


def test_cache_is_per_model_version(qtbot, make_controller, tmp_path):
    ctrl = make_controller()
    _loaded(qtbot, ctrl)
    (a,) = write_pngs(tmp_path, 1)
    with qtbot.waitSignal(ctrl.resultReady, timeout=10000):
        ctrl.analyze(a)
    ctrl.engine.version = "2"  # "another model": the old result must not be reused
    _loaded(qtbot, ctrl)
    with qtbot.waitSignal(ctrl.resultReady, timeout=10000) as blk:
        ctrl.analyze(a)
    assert not blk.args[0].from_cache and ctrl.engine.calls == 2


def test_folder_run_reports_progress_and_every_result(qtbot, make_controller, tmp_path):
    ctrl = make_controller()
    _loaded(qtbot, ctrl)
    paths = write_pngs(tmp_path, 5)
    badges, progress = [], []
    ctrl.badgeReady.connect(badges.append)
    ctrl.progress.connect(lambda rid, d, t: progress.append((d, t)))
    with qtbot.waitSignal(ctrl.finished, timeout=10000) as blk:
        ctrl.analyze_many(paths)
    s = blk.args[0]
    assert (s.done, s.total, s.cancelled, s.failed) == (5, 5, False, 0)
    assert sorted(r.path for r in badges) == sorted(map(str, paths))
    assert progress[-1] == (5, 5)
    assert not ctrl.batch_running


def test_cancel_stops_a_folder_run_between_images(qtbot, make_controller, tmp_path):
    ctrl = make_controller(StandInEngine(delay_s=0.1))
    _loaded(qtbot, ctrl)
    paths = write_pngs(tmp_path, 20)
    ctrl.progress.connect(lambda rid, d, t: ctrl.cancel() if d == 2 else None)
    with qtbot.waitSignal(ctrl.finished, timeout=10000) as blk:
        ctrl.analyze_many(paths)
    s = blk.args[0]
    assert s.cancelled
    # at most the image already in its forward pass when Cancel came is finished after it
    assert 2 <= s.done <= 3 and ctrl.engine.calls == s.done


def test_single_request_is_served_during_a_folder_run(qtbot, make_controller, tmp_path):
    ctrl = make_controller(StandInEngine(delay_s=0.05))
    _loaded(qtbot, ctrl)
    paths = write_pngs(tmp_path / "folder", 12)
    (other,) = write_pngs(tmp_path / "single", 1, size=(20, 20))
    done = []
    ctrl.finished.connect(done.append)
    ctrl.analyze_many(paths)
    qtbot.wait(120)
    with qtbot.waitSignal(ctrl.resultReady, timeout=10000):
        ctrl.analyze(other)
    assert not done, "the single image waited for the whole folder"
    qtbot.waitUntil(lambda: bool(done), timeout=10000)


def test_unreadable_image_comes_back_as_an_error(qtbot, make_controller, tmp_path):
    ctrl = make_controller()
    _loaded(qtbot, ctrl)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    with qtbot.waitSignal(ctrl.errored, timeout=10000) as blk:
        ctrl.analyze(bad)
    err: WorkerError = blk.args[0]
    assert err.kind == "image" and err.path == str(bad) and "PNG" in err.message


def test_model_load_failure_is_reported_and_leaves_no_model(qtbot, make_controller, tmp_path):
    ctrl = make_controller(fail="checksum mismatch in model.safetensors")
    with qtbot.waitSignal(ctrl.errored, timeout=10000) as blk:
        ctrl.load_model("/nowhere")
    assert blk.args[0].kind == "model" and "checksum mismatch" in blk.args[0].message
    assert not ctrl.ready and ctrl.model_error
    (p,) = write_pngs(tmp_path, 1)
    with qtbot.waitSignal(ctrl.errored, timeout=2000) as blk2:
        ctrl.analyze(p)
    assert "no model" in blk2.args[0].message
