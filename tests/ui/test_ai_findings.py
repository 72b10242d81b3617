"""The AI panel for a multi-finding model, with a real one: torchxrayvision's ResNet-50 layout
(18 findings, 512 px) with seeded random weights, imported by ``models import-xrv``'s code path
(:func:`cxrviewer.ml.xrv.import_xrv`) exactly as ``tests/ml/test_xrv.py`` does it, and run by the
real ONNX Runtime :class:`~cxrviewer.ml.inference.Engine` in the viewer's worker thread.

Random weights: the numbers mean nothing clinically; what is tested is how the viewer shows them
(the findings list, per-finding policy, chooser, legend, corner text, model, badges, SC, gate).
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("pytestqt", reason="pytest-qt is needed for the Qt tests")

from PySide6 import QtCore, QtWidgets  # noqa: E402

from cxrviewer.core.dicom_io import load_image  # noqa: E402

TESTS = Path(__file__).resolve().parents[1]
VERDICT_WORDS = ("Normal", "Abnormal", "present", "absent", "→", "->")
#: a probability as the viewer writes it
NUMBER = re.compile(r"\b[01]\.\d\d\b")


def _xrv_helpers():
    """tests/ml/test_xrv.py's helpers (real chest PNGs, torchxrayvision's own input pipeline)."""
    spec = importlib.util.spec_from_file_location("_xrv_test_helpers", TESTS / "ml" / "test_xrv.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def xrv_model(tmp_path_factory):
    """A random-weight torchxrayvision ResNet-50 (BatchNorm statistics from two real chest
    images, so its probabilities spread like a trained network's), imported once per session,
    its Engine loaded once; plus the chest PNGs."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchxrayvision")
    from cxrviewer.ml import xrv as X
    from cxrviewer.ml.arch import resnet50
    from cxrviewer.ml.inference import Engine
    from cxrviewer.ml.registry import Registry

    h = _xrv_helpers()
    tmp = tmp_path_factory.mktemp("xrv-ui")
    # tests/conftest.py's SHARED_DATA (the conftest module is not importable by name from here)
    shared = Path(os.environ.get("CXRVIEWER_SHARED_DATA") or TESTS.parent.parent / "shared" / "data").resolve()
    shared = shared if (shared / "nih-full").is_dir() else None
    images = h._chest_pngs(shared, tmp)[:2]
    torch.manual_seed(0)
    net = resnet50.build_net(18, 1)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    net.train()
    with torch.no_grad():
        net(torch.from_numpy(np.stack([h._xrv_input(p) for p in images])))
    net.eval()
    wfile = tmp / X.weights_filename(X.DEFAULT_WEIGHTS)
    torch.save(net.state_dict(), wfile)
    reg = Registry(bundled_dir=tmp / "none", user_dir=tmp / "models")
    entry = X.import_xrv(X.DEFAULT_WEIGHTS, wfile, registry=reg)
    engine = Engine.load(entry.path, backend="onnxruntime", device="cpu")
    return SimpleNamespace(engine=engine, entry=entry, images=images)


@pytest.fixture
def xrv_viewer(qtbot, tmp_path, xrv_model):
    """A window with the real canvas and the AI integration running the imported model."""
    from cxrviewer.ui.ai.integration import AiIntegration
    from cxrviewer.ui.canvas.canvas import ImageCanvas

    win = QtWidgets.QMainWindow()
    canvas = ImageCanvas()
    win.setCentralWidget(canvas)
    win.resize(900, 700)
    settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    ai = AiIntegration(win, canvas, None, engine_factory=lambda _d: xrv_model.engine, settings=settings)
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(ai.controller.modelChanged, timeout=30000):
        ai.start()
    yield win, canvas, ai
    ai.shutdown()


def _analyze(qtbot, canvas, ai, path, heatmap=True):
    canvas.set_image(load_image(path))
    with qtbot.waitSignal(ai.controller.resultReady, timeout=30000):
        (ai.act_heatmap if heatmap else ai.act_analyze).trigger()
    return ai.panel.result


def _items(panel):
    lst = panel.findings_list
    return [lst.item(i) for i in range(lst.count())]


def _click(qtbot, lst, item):
    rect = lst.visualItemRect(item)
    lst.scrollToItem(item)
    rect = lst.visualItemRect(item)
    qtbot.mouseClick(lst.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=rect.center())


def _br(canvas):
    return canvas.corner_text().corners()["br"]


def _dicom(path: Path, png, modality: str, instance: int) -> Path:
    """A real chest film's pixels as a DICOM image of ``modality`` (one study and series):
    CR passes the gate's header rules, CT is refused by them."""
    import cv2

    from cxrviewer.core.synthetic import make_dataset, write_dataset

    a = cv2.imread(str(png), cv2.IMREAD_GRAYSCALE)
    ds = make_dataset(a, study_uid="1.2.826.0.1.3680043.8.498.77", series_uid=f"1.2.826.0.1.3680043.8.498.77.{instance}",
                      instance_number=instance,
                      extra={"Modality": modality, "BodyPartExamined": "CHEST", "ViewPosition": "PA"})
    write_dataset(ds, path)
    return path


def test_findings_listed_by_probability_as_research_scores(qtbot, xrv_viewer, xrv_model):
    """18 findings by probability; at/above the operating point marked (neutral, no verdict
    word, no red); no operating point said so, its plain number kept; published figures only;
    the header-rules-only gate said; nothing reads P(Abnormal)."""
    win, canvas, ai = xrv_viewer
    panel = ai.panel
    assert "header rules only" in panel.gate_label.text() and "fit-ood" in panel.gate_label.text()
    assert panel.gate_label.isVisibleTo(panel)
    assert "evidence for <b>the top finding</b>" in ai.controls.legend.text()  # not "Abnormal"
    res = _analyze(qtbot, canvas, ai, xrv_model.images[0], heatmap=False)
    pred = res.prediction
    assert len(pred.findings) == 18 and panel.findings_list.isVisibleTo(panel)
    items = _items(panel)
    names = [it.data(QtCore.Qt.ItemDataRole.UserRole) for it in items]
    assert names == [f.name for f in pred.ranked_findings()]
    probs = [f.probability for f in pred.ranked_findings()]
    assert probs == sorted(probs, reverse=True) and np.std(probs) > 0.01  # spread: not a saturated net
    by_name = {f.name: f for f in pred.findings}
    no_op = [f for f in pred.findings if f.op_point is None]
    assert no_op and any(f.positive for f in pred.findings if f.op_point is not None)
    for it in items:
        f = by_name[it.data(QtCore.Qt.ItemDataRole.UserRole)]
        text = it.text()
        assert text.startswith(f"{f.name} {f.probability:.2f}")
        assert not any(w in text for w in VERDICT_WORDS), text
        if f.op_point is None:
            assert "no operating point" in text and "▲" not in text and not f.positive
        else:
            assert ("▲" in text) == f.positive, text
        c = it.foreground().color()
        assert not (c.red() > 200 and c.green() < 150), (text, c.name())  # never red for a research score
    # findings without an operating point keep their own number (torchxrayvision would write 0.5)
    assert any(abs(f.probability - 0.5) > 0.01 for f in no_op)
    # the value shown is the top finding's (with an operating point), as a research score
    top = max((f for f in pred.findings if f.op_point is not None), key=lambda f: f.probability)
    assert panel.chosen == top.name and panel.findings_list.currentItem().text().startswith(top.name)
    assert panel.value_label.text().startswith(f"{top.name} {top.probability:.2f}")
    assert "research score" in panel.value_label.text()
    assert panel.bar.neutral and panel.policy_label.text() == "published figures only: validate on your cases"
    assert "published" in panel.perf_label.text() and "not verified here" in panel.perf_label.text()
    lines = _br(canvas) + panel.text_lines()
    assert not any("P(Abnormal)" in ln or "Abnormal" in ln or "Normal" in ln for ln in lines), lines
    assert f"AI: {top.name} {top.probability:.2f} research score" + (" (>= op. point)" if top.positive
                                                                     else "") in lines
    assert "published figures only: validate on your cases" in lines


def test_a_locally_validated_finding_earns_its_verdict_alone(qtbot, xrv_viewer, xrv_model):
    """The rule applies per finding: a local validation whose AUC interval clears 0.70 for one
    finding gives that finding its present/absent word; the others stay research scores."""
    win, canvas, ai = xrv_viewer
    res = _analyze(qtbot, canvas, ai, xrv_model.images[0], heatmap=False)
    pred = res.prediction
    pos = next(f for f in pred.ranked_findings() if f.positive)
    rec = {"n": 400, "date": "2026-12-01", "auc": 0.8, "auc_ci": [0.6, 0.9],
           "per_finding": {pos.name: {"n": 400, "auc": 0.9, "auc_ci": [0.86, 0.93]}}}
    info = ai.controller.model
    card = {**info.card, "local_validations": [rec]}
    ai.panel.set_model(replace(info, card=card))
    ai.panel.show_result(res)
    it = next(i for i in _items(ai.panel) if i.data(QtCore.Qt.ItemDataRole.UserRole) == pos.name)
    assert it.text() == f"{pos.name} {pos.probability:.2f} → present"
    assert it.foreground().color().red() > 200  # a validated finding present: red
    others = [i.text() for i in _items(ai.panel) if i is not it]
    assert not any("present" in t or "absent" in t for t in others)
    _click(qtbot, ai.panel.findings_list, it)
    assert ai.panel.chosen == pos.name and not ai.panel.bar.neutral
    assert "local validation: AUC 0.90 [0.86–0.93], n=400, 2026-12-01" in ai.panel.perf_label.text()
    assert not ai.panel.policy_label.isVisibleTo(ai.panel)
    assert ai.panel.text_lines()[0] == f"AI: {pos.name} {pos.probability:.2f} -> present"


def test_choosing_a_finding_shows_its_heatmap_and_names_it(qtbot, xrv_viewer, xrv_model):
    from cxrviewer.render.colormaps import cam_to_index

    win, canvas, ai = xrv_viewer
    res = _analyze(qtbot, canvas, ai, xrv_model.images[0])
    pred = res.prediction
    first = ai.panel.chosen
    np.testing.assert_array_equal(ai.heatmap.cam, cam_to_index(pred.finding_map(first)))
    assert f"evidence for <b>{first}</b>" in ai.controls.legend.text()
    # the reader clicks the lowest finding in the list
    other = _items(ai.panel)[-1]
    name = other.data(QtCore.Qt.ItemDataRole.UserRole)
    assert name != first
    calls_before = ai.controller.cache
    with qtbot.waitSignal(ai.panel.findingChosen, timeout=5000) as blk:
        _click(qtbot, ai.panel.findings_list, other)
    assert blk.args == [name] and ai.panel.chosen == name
    want = cam_to_index(pred.finding_map(name))
    np.testing.assert_array_equal(ai.heatmap.cam, want)
    assert not np.array_equal(want, cam_to_index(pred.finding_map(first)))
    assert ai.heatmap.item.isVisible() and ai.controller.cache is calls_before
    assert f"evidence for <b>{name}</b>" in ai.controls.legend.text() and name in ai.controls.colorbar.toolTip()
    br = _br(canvas)
    assert any(ln.startswith(f"AI: {name} ") for ln in br) and f"Heatmap: evidence for {name}" in br
    assert ai.panel.value_label.text().startswith(name)


def test_a_two_class_model_keeps_its_panel(qtbot, tmp_path):
    """The demo-like two-class model: no findings list, P(Abnormal), the legend says Abnormal."""
    from test_ai_support import StandInEngine, ai_integration, write_pngs

    eng = StandInEngine()
    ai = ai_integration(qtbot, tmp_path, lambda _d: eng)
    ai.window.show()
    try:
        with qtbot.waitSignal(ai.controller.modelChanged, timeout=10000):
            ai.start()
        (p,) = write_pngs(tmp_path, 1)
        _analyze(qtbot, ai.canvas, ai, p)
        panel = ai.panel
        assert not panel.findings_list.isVisibleTo(panel) and panel.chosen is None
        assert panel.title.text() == "<b>P(Abnormal)</b>" and "→" in panel.value_label.text()
        assert "evidence for <b>Abnormal</b>" in ai.controls.legend.text()
        assert not panel.gate_label.isVisibleTo(panel)  # the stand-in states no gate mode
    finally:
        ai.shutdown()


@pytest.fixture
def xrv_main(qtbot, tmp_path, xrv_model):
    """The real MainWindow (viewer model, browser, DICOM export) running the imported model."""
    from cxrviewer.ui.common.settings import Settings
    from cxrviewer.ui.shell.main_window import MainWindow

    w = MainWindow(Settings(str(tmp_path / "s.ini")))
    w.ai.controller.worker._factory = lambda _d: xrv_model.engine
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignal(w.ai.controller.modelChanged, timeout=30000):
        w.ai.start()
    yield w
    w.shutdown()


def test_viewer_model_export_and_badges_follow_the_chosen_finding(qtbot, xrv_main, xrv_model, tmp_path):
    """The viewer model's AI result names the finding shown; the SC burns that finding's map;
    the browser's AI column shows each image's top finding as a research score; a refused CT
    shows no number anywhere until the reader scores it anyway."""
    import pydicom

    from cxrviewer.render.colormaps import cam_to_index, threshold_index
    from cxrviewer.ui.ai.prediction_panel import top_finding
    from cxrviewer.ui.browser.study_browser import COL_AI

    w = xrv_main
    folder = tmp_path / "study"
    folder.mkdir()
    png = _dicom(folder / "chest.dcm", xrv_model.images[0], "CR", 1)
    ct = _dicom(folder / "ct.dcm", xrv_model.images[1], "CT", 2)
    with qtbot.waitSignals([w.scanFinished, w.imageLoaded], timeout=30000, order="none"):
        w.open_path(folder)
    with qtbot.waitSignal(w.ai.controller.finished, timeout=60000):
        w.ai.act_analyze_all.trigger()
    w.ai.flush_badges()
    # the browser: the top finding, no verdict word; the CT: not scored, no number
    text, value = w.browser.badge(str(png))
    res_png = w.ai.controller.lookup(str(png), 0, cam=False)
    top = top_finding(res_png.prediction)
    assert text == f"{top.probability:.2f} {top.name}" and value == pytest.approx(top.probability)
    text, value = w.browser.badge(str(ct))
    assert value is None and text.startswith("not scored") and not NUMBER.search(text)
    # a research score is never red in the browser either
    it = w.browser.model.by_path[str(png)]
    cell = (it.parent() or w.browser.model.invisibleRootItem()).child(it.row(), COL_AI)
    c = cell.foreground().color()
    assert not (c.red() > 200 and c.green() < 150) and c.blue() >= c.red(), c.name()
    # the worklist's AI column: the same
    from cxrviewer.ui.browser.worklist import W_AI

    wl = w.browser.worklist_model
    cells = {p: wl.item(wl.by_path[p].row(), W_AI).text() for p in (str(png), str(ct))}
    assert cells == {str(png): f"{top.probability:.2f} {top.name}",
                     str(ct): w.browser.badge(str(ct))[0]}

    with qtbot.waitSignal(w.imageLoaded, timeout=30000):
        w.load_path(str(png))
    with qtbot.waitSignal(w.ai.controller.resultReady, timeout=30000):
        w.ai.act_heatmap.trigger()  # H: the map (the folder run computed none)
    res = w.ai.panel.result
    assert w.model.active.ai.finding == top.name == w.ai.panel.chosen
    # 18 findings in the AI panel and the Reader call: the docks scroll, the window fits the screen
    for _ in range(5):
        QtWidgets.QApplication.processEvents()
    assert w.frameGeometry().height() <= w.screen().availableGeometry().height()
    assert w.ai.dock.height() >= min(w.ai.panel.sizeHint().height(), w.screen().availableGeometry().height() // 4)
    # another finding: the one whose map covers most of the film (ReLU'd Grad-CAM maps of a
    # random net are often empty in places), so the SC check below has pixels to look at
    maps = {f.name: cam_to_index(res.prediction.finding_map(f.name)) for f in res.prediction.findings}
    other = max((f for f in res.prediction.findings if f.name != top.name), key=lambda f: (maps[f.name] > 0).mean())
    it = next(i for i in _items(w.ai.panel) if i.data(QtCore.Qt.ItemDataRole.UserRole) == other.name)
    with qtbot.waitSignal(w.model.active.ai_changed, timeout=5000):
        _click(qtbot, w.ai.panel.findings_list, it)
    ai_res = w.model.active.ai
    assert ai_res.finding == other.name and ai_res.finding_probability == pytest.approx(other.probability)
    assert ai_res.lines[0].startswith(f"AI: {other.name} ") and f"Heatmap: evidence for {other.name}" in ai_res.lines

    # the SC (native) burns the chosen finding's map: it differs from the SC without the map
    # exactly where that map is above the heatmap threshold (away from the corner text)
    cam = maps[other.name]
    r, c = cam.shape
    mid = (slice(r // 4, 3 * r // 4), slice(c // 4, 3 * c // 4))
    # a threshold that leaves part of the middle coloured
    t = float(np.percentile(cam[mid][cam[mid] > 0], 50)) / 255.0
    w.ai.heatmap.set_threshold(t)
    w.ai.heatmap.set_opacity(0.7)
    with_map = pydicom.dcmread(w.dicom.export("sc-native", tmp_path / "with_sc.dcm").path).pixel_array
    w.ai.act_heatmap.trigger()
    plain = pydicom.dcmread(w.dicom.export("sc-native", tmp_path / "plain_sc.dcm").path).pixel_array
    above = cam >= threshold_index(w.ai.heatmap.threshold)
    assert with_map.shape[:2] == above.shape
    differs = (with_map != plain).any(axis=2)
    assert 0 < above[mid].sum() < above[mid].size
    np.testing.assert_array_equal(differs[mid], above[mid])

    # the refused CT: no probability, no verdict, no findings list, in the panel and the corners
    with qtbot.waitSignal(w.imageLoaded, timeout=30000):
        w.load_path(str(ct))
    qtbot.waitUntil(lambda: w.ai.panel.result is not None and w.ai.panel.result.path == str(ct), timeout=30000)
    # the folder run's cached result, published to the viewer model once the viewport shows the CT
    qtbot.waitUntil(lambda: w.model.active.ai is not None and w.model.active.ai.path == str(ct), timeout=5000)
    panel = w.ai.panel
    assert panel.value_label.text() == "Not scored" and panel.bar.probability is None
    assert "P(Abnormal)" not in panel.title.text() and "Behind the numbers: published" in panel.perf_label.text()
    assert not panel.findings_list.isVisibleTo(panel) and "Modality CT" in panel.ood_label.text()
    shown = [panel.value_label.text(), panel.ood_label.text(), *_br(w.canvas), *w.model.active.ai.lines]
    assert not any(NUMBER.search(s) or any(v in s for v in VERDICT_WORDS) for s in shown), shown
    assert w.model.active.ai.finding == "" and w.model.active.ai.finding_probability is None
    # Score anyway: the findings with their caution, everywhere
    panel.score_anyway_button.click()
    w.ai.flush_badges()
    assert panel.findings_list.isVisibleTo(panel) and "⚠" in panel.value_label.text()
    assert any("CAUTION" in ln for ln in _br(w.canvas)) and w.model.active.ai.forced
    assert "scored anyway" in w.browser.badge(str(ct))[0]


def test_back_to_a_viewport_its_map_follows_the_top_finding(qtbot, xrv_main, xrv_model, tmp_path):
    """Another viewport becomes active and back: the panel leads with the top finding again, and
    that viewport's heatmap and legend show the top finding's map, not the finding chosen before."""
    from cxrviewer.render.colormaps import cam_to_index
    from cxrviewer.ui.ai.prediction_panel import top_finding

    w = xrv_main
    a = _dicom(tmp_path / "a.dcm", xrv_model.images[0], "CR", 1)
    b = _dicom(tmp_path / "b.dcm", xrv_model.images[1], "CR", 2)
    g = w.viewports
    g.set_layout("1x2")
    for i, p in ((0, a), (1, b)):
        with qtbot.waitSignal(g.opened, timeout=30000, check_params_cb=lambda j, img, i=i: j == i):
            g.open(i, str(p))
    if g.active != 0:
        w.viewport_binding.act_next_viewport.trigger()
    with qtbot.waitSignal(w.ai.controller.resultReady, timeout=30000):
        w.ai.act_heatmap.trigger()
    res = w.ai.panel.result
    top = top_finding(res.prediction)
    other = next(f for f in res.prediction.ranked_findings()[::-1] if f.name != top.name)
    w.ai.panel.choose_finding(other.name)
    layer0 = w.ai.heatmap
    np.testing.assert_array_equal(layer0.cam, cam_to_index(res.prediction.finding_map(other.name)))
    w.viewport_binding.act_next_viewport.trigger()
    assert g.active == 1 and w.ai.heatmap is not layer0
    w.viewport_binding.act_next_viewport.trigger()
    assert g.active == 0 and w.ai.heatmap is layer0
    assert w.ai.panel.chosen == top.name and f"evidence for <b>{top.name}</b>" in w.ai.controls.legend.text()
    np.testing.assert_array_equal(layer0.cam, cam_to_index(res.prediction.finding_map(top.name)))
