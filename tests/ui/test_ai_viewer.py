"""The AI inside the viewer: heatmap layer on the real canvas, toggles, geometry, export, no-model."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt", reason="pytest-qt is needed for the Qt tests")

from PySide6 import QtCore, QtWidgets  # noqa: E402
from test_ai_support import StandInEngine, write_pngs  # noqa: E402

from cxrviewer.core.dicom_io import load_image  # noqa: E402
from cxrviewer.render.colormaps import threshold_index  # noqa: E402


@pytest.fixture
def make_viewer(qtbot, tmp_path):
    """A main window with the real canvas and study browser and the AI integration."""
    from cxrviewer.ui.ai.integration import AiIntegration
    from cxrviewer.ui.canvas.canvas import ImageCanvas

    made = []

    def make(engine=None, fail: str | None = None, load=True):
        eng = engine or StandInEngine()

        def factory(model_dir):
            if fail:
                raise RuntimeError(fail)
            return eng

        win = QtWidgets.QMainWindow()
        canvas = ImageCanvas()
        win.setCentralWidget(canvas)
        win.resize(700, 520)
        settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
        ai = AiIntegration(win, canvas, None, engine_factory=factory, settings=settings)
        qtbot.addWidget(win)
        win.show()
        made.append(ai)
        ai.engine = eng
        if load:
            sig = ai.controller.errored if fail else ai.controller.modelChanged
            with qtbot.waitSignal(sig, timeout=10000):
                ai.start()
        return win, canvas, ai

    yield make
    for ai in made:
        ai.shutdown()


def _hot_png(tmp_path, shape=(30, 40), hot=(7, 29)):
    import cv2

    a = np.full(shape, 60, np.uint8)
    a[hot] = 250
    p = tmp_path / "hot.png"
    cv2.imwrite(str(p), a)
    return p


def _show(qtbot, canvas, ai, path):
    """Open ``path`` and ask for AI on screen the way a reader does: H (heatmap) the first
    time; with the heatmap on, every image opened is analysed."""
    if ai.heatmap.enabled:
        with qtbot.waitSignal(ai.controller.resultReady, timeout=10000):
            canvas.set_image(load_image(path))
        return
    canvas.set_image(load_image(path))
    with qtbot.waitSignal(ai.controller.resultReady, timeout=10000):
        ai.act_heatmap.trigger()


def _br(canvas) -> list[str]:
    return canvas.corner_text().corners()["br"]


def test_reader_first_image_alone_until_asked(qtbot, make_viewer, tmp_path):
    """The image opens alone: no analysis, no heatmap, no AI text; Analyze shows the result
    (and its corner text) but not the map; H shows the map without recomputing."""
    win, canvas, ai = make_viewer()
    assert not ai.auto_analyze and not ai.act_auto.isChecked()
    assert ai.act_auto.text() == "Analyse automatically when an image opens"
    assert not ai.heatmap.enabled and not ai.act_heatmap.isChecked()
    a, b = write_pngs(tmp_path, 2)
    canvas.set_image(load_image(a))
    qtbot.wait(200)
    assert ai.engine.calls == 0 and ai.panel.result is None and not ai.heatmap.item.isVisible()
    assert not any("AI" in line or "P(Abnormal)" in line for line in _br(canvas))
    with qtbot.waitSignal(ai.controller.resultReady, timeout=10000):
        ai.act_analyze.trigger()
    assert ai.engine.calls == 1 and "→" in ai.panel.value_label.text()
    assert any("P(Abnormal)" in line for line in _br(canvas))
    assert not ai.heatmap.item.isVisible()  # the map only when asked for (H)
    ai.act_heatmap.trigger()
    assert ai.heatmap.item.isVisible() and ai.engine.calls == 1
    # the next image: its own AI (the heatmap is on: the reader asked to see AI)
    with qtbot.waitSignal(ai.controller.resultReady, timeout=10000):
        canvas.set_image(load_image(b))
    assert ai.panel.result.path == str(b)
    # heatmap off again: the next image opens alone, the cached result of an asked-for image returns
    ai.act_heatmap.trigger()
    canvas.set_image(load_image(a))
    assert ai.panel.result is not None and ai.panel.result.from_cache and ai.engine.calls == 2
    (c,) = write_pngs(tmp_path / "more", 1, size=(50, 44))
    canvas.set_image(load_image(c))
    qtbot.wait(150)
    assert ai.panel.result is None and ai.engine.calls == 2
    assert not any("P(Abnormal)" in line for line in _br(canvas))


def test_auto_analyze_setting_restores_analysis_on_open(qtbot, make_viewer, tmp_path):
    win, canvas, ai = make_viewer()
    ai.act_auto.setChecked(True)
    assert ai.settings.value("ai/auto_analyze") in (True, "true")
    (p,) = write_pngs(tmp_path, 1)
    with qtbot.waitSignal(ai.controller.resultReady, timeout=10000):
        canvas.set_image(load_image(p))
    assert ai.engine.calls == 1 and ai.panel.result is not None
    assert any("P(Abnormal)" in line for line in _br(canvas))


def test_heatmap_legend_says_evidence_for_abnormal(qtbot, make_viewer):
    win, canvas, ai = make_viewer()
    assert "evidence for <b>Abnormal</b>" in ai.controls.legend.text()
    assert "evidence for the Abnormal class" in ai.controls.colorbar.toolTip()


def test_panel_shows_validated_performance_and_card_button(qtbot, make_viewer):
    eng = StandInEngine()
    eng.card = {
        "name": "standin", "version": "1", "threshold": 0.5,
        "metrics": {"auc": {"value": 0.81, "ci95": [0.74, 0.87], "split": "test"}},
        "training_data": {"sources": [{"path": "data/nih-full/labels.csv", "role": "split"}],
                          "splits": {"train": {"images": 800, "normal": 300, "abnormal": 500},
                                     "test": {"images": 200, "normal": 60, "abnormal": 140}}},
    }
    win, canvas, ai = make_viewer(engine=eng)
    text = ai.panel.perf_label.text()
    assert "Test AUC 0.81 [95% CI 0.74–0.87] on 200 images (60 normal)" in text
    assert "Trained on 800 images (300 normal / 500 abnormal) from nih-full" in text
    assert ai.panel.card_button.isEnabled()
    opened = []
    ai.show_card = lambda: opened.append(True)  # the dialog itself is tested in test_ai_models
    ai.panel.cardRequested.disconnect()
    ai.panel.cardRequested.connect(ai.show_card)
    ai.panel.card_button.click()
    assert opened == [True]


def test_refused_image_not_scored_until_score_anyway(qtbot, make_viewer, tmp_path):
    """An image the gate refuses: "Not scored: <reason>", no map, no score anywhere; Score
    anyway shows it with its caution in the panel, the corner text, the export text."""
    win, canvas, ai = make_viewer()
    (p,) = write_pngs(tmp_path, 1)
    ood = tmp_path / "ct_ood.png"
    ood.write_bytes(p.read_bytes())
    _show(qtbot, canvas, ai, ood)
    panel = ai.panel
    assert panel.value_label.text() == "Not scored"
    assert panel.ood_label.text().startswith("Not scored: Modality CT")
    assert panel.score_anyway_button.isVisibleTo(panel) and panel.bar.probability is None
    assert not ai.heatmap.item.isVisible()  # the map is hidden too, although H is on
    br = _br(canvas)
    assert any("not scored" in line for line in br) and not any("P(Abnormal)" in line for line in br)
    assert not any("P(Abnormal)" in line for line in panel.text_lines())
    qtbot.mouseClick(panel.score_anyway_button, QtCore.Qt.MouseButton.LeftButton)
    assert "→" in panel.value_label.text() and "⚠" in panel.value_label.text()
    assert "scored anyway" in panel.ood_label.text() and "Modality CT" in panel.ood_label.text()
    assert not panel.score_anyway_button.isVisibleTo(panel)
    assert ai.heatmap.item.isVisible()
    br = _br(canvas)
    assert any("P(Abnormal)" in line for line in br) and any("CAUTION" in line for line in br)
    assert any("CAUTION" in line for line in panel.text_lines())  # what exports burn in


def test_selecting_an_image_shows_prediction_and_heatmap(qtbot, make_viewer, tmp_path):
    win, canvas, ai = make_viewer()
    assert ai.device_label.text() == "AI: cpu · numpy"
    (p,) = write_pngs(tmp_path, 1)
    _show(qtbot, canvas, ai, p)
    assert ai.heatmap.item.isVisible() and ai.heatmap.cam.shape == (40, 30)
    assert "→" in ai.panel.value_label.text()
    assert "Research model" in ai.panel.caution.text()
    assert any("P(Abnormal)" in line for line in canvas.corner_text().corners()["br"])


def test_heatmap_toggles_without_recomputation(qtbot, make_viewer, tmp_path):
    win, canvas, ai = make_viewer()
    (p,) = write_pngs(tmp_path, 1)
    _show(qtbot, canvas, ai, p)
    calls = ai.engine.calls
    cam_before = ai.heatmap.item.image
    ai.act_heatmap.trigger()  # the H action / toolbar button
    assert not ai.heatmap.item.isVisible() and not ai.controls.show_box.isChecked()
    ai.act_heatmap.trigger()
    assert ai.heatmap.item.isVisible()
    ai.controls.cmap_box.setCurrentText("viridis")
    ai.controls.threshold_slider.setValue(50)
    ai.controls.opacity_slider.setValue(80)
    qtbot.wait(50)
    assert ai.engine.calls == calls
    assert ai.heatmap.item.image is cam_before  # the per-pixel array was never rebuilt
    assert ai.heatmap.item.opacity() == pytest.approx(0.8)
    lut = ai.heatmap.item.lut
    assert (lut[: threshold_index(0.5), 3] == 0).all() and (lut[threshold_index(0.5):, 3] == 255).all()


def test_reselecting_an_image_uses_the_cache(qtbot, make_viewer, tmp_path):
    win, canvas, ai = make_viewer()
    a, b = write_pngs(tmp_path, 2)
    _show(qtbot, canvas, ai, a)
    _show(qtbot, canvas, ai, b)
    assert ai.engine.calls == 2
    canvas.set_image(load_image(a))  # cached: the result is there synchronously
    assert ai.panel.result is not None and ai.panel.result.from_cache and ai.panel.result.path == str(a)
    assert ai.heatmap.item.isVisible() and ai.engine.calls == 2


@pytest.mark.parametrize("rotation,flip_h,flip_v", [(0, False, False), (1, False, False), (1, True, False), (3, False, True), (2, True, True)])
def test_overlay_geometry_matches_the_image_after_rotate_flip(qtbot, make_viewer, tmp_path, rotation, flip_h, flip_v):
    win, canvas, ai = make_viewer()
    hot = (7, 29)
    p = _hot_png(tmp_path, hot=hot)
    _show(qtbot, canvas, ai, p)
    cam = ai.heatmap.cam
    assert np.unravel_index(np.argmax(cam), cam.shape) == hot
    canvas.rotate(rotation)
    if flip_h:
        canvas.flip_h()
    if flip_v:
        canvas.flip_v()
    canvas.fit()
    centre = QtCore.QPointF(hot[1] + 0.5, hot[0] + 0.5)  # x = column, y = row
    assert ai.heatmap.item.mapToScene(centre) == canvas.image_item.mapToScene(centre)
    # on screen: only the hot pixel is above the threshold; where it is drawn must be where
    # the image's hot pixel is drawn
    ai.heatmap.set_threshold(0.99)
    ai.heatmap.set_opacity(1.0)
    qtbot.wait(20)
    shot = canvas.graphics.grab().toImage()
    from cxrviewer.ui.canvas.canvas import qimage_to_rgb

    rgb = qimage_to_rgb(shot).astype(int)
    coloured = np.argwhere((np.abs(rgb[..., 0] - rgb[..., 1]) > 40) | (np.abs(rgb[..., 1] - rgb[..., 2]) > 40))
    assert len(coloured) > 4
    cy, cx = coloured.mean(axis=0)
    view_pt = canvas.graphics.mapFromScene(canvas.image_item.mapToScene(centre))
    ratio = shot.devicePixelRatio()
    assert abs(cx - view_pt.x() * ratio) <= 1.5 and abs(cy - view_pt.y() * ratio) <= 1.5


def test_export_with_heatmap_differs_exactly_where_above_threshold(qtbot, make_viewer, tmp_path):
    win, canvas, ai = make_viewer()
    (p,) = write_pngs(tmp_path, 1, size=(48, 64))
    _show(qtbot, canvas, ai, p)
    canvas.rotate(1)
    canvas.flip_h()
    ai.heatmap.set_threshold(0.4)
    ai.heatmap.set_opacity(0.6)
    with_map = canvas.render_array(native=True, annotations=False)
    ai.act_heatmap.trigger()  # hide
    without = canvas.render_array(native=True, annotations=False)
    assert with_map.shape == without.shape == (64, 48, 3)
    from cxrviewer.render.export import ViewState, orient

    above = orient(ai.heatmap.cam >= threshold_index(0.4), ViewState(rotation=1, flip_h=True))
    assert 0 < above.sum() < above.size
    differs = (with_map != without).any(axis=2)
    np.testing.assert_array_equal(differs, above)


def test_export_burns_in_the_prediction_text(qtbot, make_viewer, tmp_path):
    win, canvas, ai = make_viewer()
    (p,) = write_pngs(tmp_path, 1, size=(300, 300))
    _show(qtbot, canvas, ai, p)
    with_text = canvas.render_array(native=True, annotations=True)
    canvas.set_extra_text([])
    ai.act_heatmap.trigger()
    plain_text = canvas.render_array(native=True, annotations=True)
    # the bottom-right corner holds the AI lines only when a result is shown
    br = (slice(200, 300), slice(150, 300))
    assert (with_text[br] != plain_text[br]).any()


def test_model_load_failure_leaves_the_viewer_usable(qtbot, make_viewer, tmp_path):
    win, canvas, ai = make_viewer(fail="model.safetensors: sha256 does not match card.json")
    assert not ai.controller.ready
    assert ai.device_label.text() == "AI: no model"
    assert "sha256 does not match" in ai.panel.state_label.text()
    assert ai.panel.value_label.text() == "No model"
    (p,) = write_pngs(tmp_path, 1)
    canvas.set_image(load_image(p))  # no result, no crash, nothing pending
    qtbot.wait(50)
    assert canvas.img is not None and not ai.heatmap.item.isVisible()
    canvas.set_window(100, 50)
    canvas.rotate(1)
    assert canvas.window() == (100.0, 50.0)
    ai.act_heatmap.trigger()
    ai.act_analyze.trigger()  # explicit: says why not
    assert "sha256" in ai.panel.state_label.text()
    out = canvas.render_array(native=True, annotations=False)
    assert out.shape[:2] == (30, 40)


def test_auto_analyze_setting_off_analyzes_only_on_request(qtbot, make_viewer, tmp_path):
    win, canvas, ai = make_viewer()
    ai.act_auto.setChecked(True)
    ai.act_auto.setChecked(False)
    assert ai.settings.value("ai/auto_analyze") in (False, "false")
    (p,) = write_pngs(tmp_path, 1)
    canvas.set_image(load_image(p))
    qtbot.wait(100)
    assert ai.engine.calls == 0 and ai.panel.result is None
    with qtbot.waitSignal(ai.controller.resultReady, timeout=10000):
        ai.act_analyze.trigger()
    assert ai.engine.calls == 1


@pytest.fixture
def main_window(qtbot, tmp_path):
    """The real MainWindow (with its AI) and the stand-in engine behind the worker."""
    from cxrviewer.ui.common.settings import Settings
    from cxrviewer.ui.shell.main_window import MainWindow

    eng = StandInEngine(delay_s=0.02)
    w = MainWindow(Settings(str(tmp_path / "s.ini")))
    w.ai.controller.worker._factory = lambda model_dir: eng  # runs on the worker thread
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignal(w.ai.controller.modelChanged, timeout=10000):
        w.ai.start()
    yield w, eng
    w.shutdown()


def test_unvalidated_model_is_a_research_score(qtbot, make_viewer, tmp_path):
    """Never oversold: a model whose test AUC interval reaches below 0.70 (the demo's card says
    0.59 [0.45–0.72]) shows its number as a research score: no Normal/Abnormal word anywhere,
    a neutral bar, and the one line saying why."""
    win, canvas, ai = make_viewer()
    ai.engine.card = {**ai.engine.card, "metrics": {"auc": {"value": 0.5895, "ci95": [0.452, 0.7205],
                                                            "split": "test"}}}
    ai.panel.set_model(type("Info", (), {"threshold": 0.5, "name": "demo", "version": "2", "device": "cpu",
                                          "backend": "numpy", "card": ai.engine.card})())
    (a,) = write_pngs(tmp_path, 1)
    canvas.set_image(load_image(a))
    with qtbot.waitSignal(ai.controller.resultReady, timeout=10000):
        ai.act_analyze.trigger()
    text = ai.panel.value_label.text()
    assert "research score" in text and "Normal" not in text and "Abnormal" not in text and "→" not in text
    assert ai.panel.bar.neutral
    assert ai.panel.policy_label.text() == "not validated here: test AUC 0.59 [0.45–0.72]"
    assert "training test split" in ai.panel.perf_label.text()
    lines = list(_br(canvas)) + ai.panel.text_lines()
    assert not any("-> Abnormal" in ln or "-> Normal" in ln for ln in lines)
    assert any("research score" in ln for ln in lines)


def test_folder_runs_badges_filter_sort_and_a_model_switch_in_the_main_window(qtbot, main_window, tmp_path):
    """A folder run fills the browser's badges, filters and sorts by them; another model's load
    clears them; a model not validated here labels its badges research scores (no verdict).
    (These were three MainWindow tests.)"""
    w, eng = main_window
    from cxrviewer.core.synthetic import chest_like, make_dataset, write_dataset

    folder = tmp_path / "study"
    folder.mkdir()
    paths = []
    for i in range(6):  # one DICOM series: the browser sorts images within their series
        a = (chest_like(40, 32, seed=i).astype(np.int32) * (i + 1) // 3).clip(0, 4095).astype(np.uint16)
        ds = make_dataset(a, bits_stored=12, study_uid="1.2.3.4", series_uid="1.2.3.4.5", instance_number=i + 1)
        paths.append(folder / f"im{i}.dcm")
        write_dataset(ds, paths[-1])
    with qtbot.waitSignals([w.scanFinished, w.imageLoaded], timeout=15000, order="none"):
        w.open_path(folder)
    qtbot.wait(200)
    # reader first: no AI in the browser or the panel until asked
    assert w.ai.panel.result is None and eng.calls == 0
    assert all((w.browser.badge(str(p)) or ("", None))[1] is None for p in paths)
    assert w.ai.act_analyze_all.isEnabled()
    with qtbot.waitSignal(w.ai.controller.finished, timeout=15000) as blk:
        w.ai.act_analyze_all.trigger()
    assert blk.args[0].done == 6 and not blk.args[0].cancelled
    assert w.ai.panel.result is not None  # the image on screen shows its result from the run
    probs = {}
    for p in paths:
        badge = w.browser.badge(str(p))
        assert badge is not None and badge[1] is not None, p
        probs[str(p)] = badge[1]
        assert badge[0].startswith(f"{badge[1]:.2f}")
    # the threshold filter keeps only images at or above it
    w.ai.controller.model = type(w.ai.controller.model)(**{**w.ai.controller.model.__dict__, "threshold": sorted(probs.values())[3]})
    w.ai.act_filter.setChecked(True)
    shown = set(w.browser.image_paths())
    assert shown == {p for p, v in probs.items() if v >= sorted(probs.values())[3]}
    w.ai.act_filter.setChecked(False)
    w.ai.act_sort.trigger()
    ordered = w.browser.image_paths()
    assert [probs[p] for p in ordered] == sorted(probs.values(), reverse=True)
    assert "AI:" in w.ai.device_label.text() and w.ai.menu.title() == "&Model"

    # another model's load clears the previous model's badges (auto-analysis off, so no new
    # badge races the check)
    w.ai.flush_badges()
    assert all(w.browser.badge(str(p))[1] is not None for p in paths)
    w.ai.act_auto.setChecked(False)
    other = StandInEngine(name="other", version="9")
    w.ai.controller.worker._factory = lambda model_dir: other
    with qtbot.waitSignal(w.ai.controller.modelChanged, timeout=10000):
        w.ai.start()
    for p in paths:
        text, value = w.browser.badge(str(p))
        assert value is None and "standin" not in text and not text.startswith("0."), (p, text)

    # a model not validated here: the browser's AI column follows the panel's policy, a number
    # and no Normal/Abnormal
    other.card = {**other.card, "metrics": {"auc": {"value": 0.59, "ci95": [0.45, 0.72], "split": "test"}}}
    with qtbot.waitSignal(w.ai.controller.modelChanged, timeout=10000):
        w.ai.start()  # the panel reads the (unvalidated) card of the model it loads
    with qtbot.waitSignal(w.ai.controller.finished, timeout=15000):
        w.ai.act_analyze_all.trigger()
    w.ai.flush_badges()
    for p in paths:
        text, value = w.browser.badge(str(p))
        assert value is not None and "research" in text, text
        assert "Normal" not in text and "Abnormal" not in text, text


def test_refused_image_score_anyway_h_key_and_cancel_in_the_main_window(qtbot, main_window, tmp_path):
    """A folder run: a refused image's badge says "not scored" (no value: sorting and the
    threshold filter leave it out); after Score anyway it shows the value with its caution; the
    other image comes from the cache and H computes its map then, hides and shows it; a long
    run is cancelled from its button. (These were three MainWindow tests.)"""
    w, eng = main_window
    folder = tmp_path / "mixed"
    ok, bad = write_pngs(folder, 2)
    ood = folder / "ct_ood.png"
    bad.rename(ood)
    with qtbot.waitSignals([w.scanFinished, w.imageLoaded], timeout=15000, order="none"):
        w.open_path(folder)
    qtbot.wait(100)
    assert eng.calls == 0 and not w.ai.heatmap.item.isVisible()  # reader first
    with qtbot.waitSignal(w.ai.controller.finished, timeout=15000):
        w.ai.act_analyze_all.trigger()
    w.ai.flush_badges()
    assert w.browser.badge(str(ok))[1] is not None
    text, value = w.browser.badge(str(ood))
    assert value is None and text.startswith("not scored")
    with qtbot.waitSignal(w.imageLoaded, timeout=15000):
        w.load_path(str(ood))
    qtbot.waitUntil(lambda: w.ai.panel.result is not None and w.ai.panel.result.path == str(ood), timeout=10000)
    assert w.ai.panel.value_label.text() == "Not scored"
    w.ai.panel.score_anyway_button.click()
    w.ai.flush_badges()
    text, value = w.browser.badge(str(ood))
    assert value is not None and "scored anyway" in text
    # the other image from the run: shown from the cache, and H computes its map then
    calls = eng.calls
    with qtbot.waitSignal(w.imageLoaded, timeout=15000):
        w.load_path(str(ok))
    assert w.ai.panel.result is not None and w.ai.panel.result.from_cache and eng.calls == calls
    assert not w.ai.heatmap.item.isVisible()
    w.activateWindow()
    w.canvas.setFocus()
    with qtbot.waitSignal(w.ai.controller.resultReady, timeout=15000):
        qtbot.keyClick(w.canvas, QtCore.Qt.Key.Key_H)  # H asks for the AI on screen
    qtbot.waitUntil(lambda: w.ai.heatmap.item.isVisible(), timeout=5000)
    assert eng.calls == calls + 1
    # H again hides the map, and shows it once more without recomputing
    calls = eng.calls
    qtbot.keyClick(w.canvas, QtCore.Qt.Key.Key_H)
    assert not w.ai.heatmap.item.isVisible() and not w.ai.act_heatmap.isChecked()
    qtbot.keyClick(w.canvas, QtCore.Qt.Key.Key_H)
    assert w.ai.heatmap.item.isVisible() and eng.calls == calls
    assert w.ai.act_heatmap in w.toolbar.actions()
    qtbot.keyClick(w.canvas, QtCore.Qt.Key.Key_H)  # off: the next folder's images open alone

    # a long folder run is cancelled from its button
    eng.delay_s = 0.1
    many = tmp_path / "many"
    write_pngs(many, 15)
    w.ai.act_auto.setChecked(False)
    with qtbot.waitSignal(w.scanFinished, timeout=15000):
        w.open_path(many)
    with qtbot.waitSignal(w.ai.controller.started, timeout=10000):
        w.ai.act_analyze_all.trigger()
    assert w.ai.cancel_button.isVisible() and not w.ai.act_analyze_all.isEnabled()
    with qtbot.waitSignal(w.ai.controller.finished, timeout=15000) as blk:
        qtbot.mouseClick(w.ai.cancel_button, QtCore.Qt.MouseButton.LeftButton)
    s = blk.args[0]
    assert s.cancelled and s.done < 15
    assert not w.ai.cancel_button.isVisible() and w.ai.act_analyze_all.isEnabled()
    assert "cancelled" in w.statusBar().currentMessage()
