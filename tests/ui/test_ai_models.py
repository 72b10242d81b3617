"""Model menu: list the registry's models, activate one (verified in the worker), show its card."""

from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("pytestqt", reason="pytest-qt is needed for the Qt tests")
pytest.importorskip("torch", reason="model directories need torch to be written")

from test_ai_support import StandInEngine, ai_integration  # noqa: E402


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    """Two valid model dirs (same real ResNet-50 weights, different cards) and a corrupt one."""
    from cxrviewer.ml.model import build_model
    from cxrviewer.ml.registry import save_model_dir

    root = tmp_path_factory.mktemp("models")
    a = save_model_dir(build_model(), root / "alpha", {
        "name": "alpha", "version": "1.0", "threshold": 0.4,
        "metrics": {"auc": {"value": 0.71, "ci95": [0.65, 0.77], "split": "nih-test"}},
    })
    b = root / "beta"
    shutil.copytree(a, b)
    card = json.loads((b / "card.json").read_text())
    card.update(name="beta", version="2.0")
    (b / "card.json").write_text(json.dumps(card))
    bad = root / "broken"
    shutil.copytree(a, bad)
    card.update(name="broken", version="0.1")
    (bad / "card.json").write_text(json.dumps(card))
    w = bad / card.get("weights_file", "model.safetensors")
    w.write_bytes(w.read_bytes()[:-1000])  # truncated: checksum mismatch
    return a, b, bad


@pytest.fixture
def registry(model_dirs, tmp_path, monkeypatch):
    from cxrviewer.ml.registry import Registry

    data = tmp_path / "data"
    monkeypatch.setenv("CXRVIEWER_DATA_DIR", str(data))
    (data / "models").mkdir(parents=True)
    for d in model_dirs:
        shutil.copytree(d, data / "models" / d.name)
    return Registry(bundled_dir=tmp_path / "no-bundled")


@pytest.fixture
def ai(qtbot, tmp_path, registry):
    loaded = []

    def factory(model_dir):
        loaded.append(model_dir)
        from pathlib import Path

        name = json.loads((Path(model_dir) / "card.json").read_text())["name"] if model_dir else "x"
        return StandInEngine(name=name)

    integ = ai_integration(qtbot, tmp_path, factory)
    integ.loaded = loaded
    yield integ
    integ.shutdown()


def test_models_dialog_lists_the_registry_and_shows_a_card(qtbot, registry):
    from cxrviewer.ui.ai.model_dialogs import ModelCardDialog, ModelsDialog

    dlg = ModelsDialog(registry, active_name="alpha")
    qtbot.addWidget(dlg)
    names = [dlg.table.item(r, 1).text() for r in range(dlg.table.rowCount())]
    assert names == ["alpha", "beta", "broken"]
    assert dlg.table.item(0, 0).text() == "●" and dlg.table.item(1, 0).text() == ""
    card = dlg.entries[0].card
    card_dlg = ModelCardDialog(card)
    qtbot.addWidget(card_dlg)
    assert "alpha" in card_dlg.windowTitle()
    # a readable form: intended use and warnings first, then data, metrics with intervals...
    titles = card_dlg.section_titles()
    assert titles[0] == "Intended use and warnings"
    for t in ("Training data", "Metrics (95% bootstrap intervals)", "Calibration", "Out-of-distribution gate",
              "Preprocessing"):
        assert t in titles
    assert titles.index("Training data") < titles.index("Metrics (95% bootstrap intervals)") < titles.index("Preprocessing")
    texts = [lab.text() for lab in card_dlg.value_labels]
    assert any("0.710 [95% CI 0.650–0.770] (nih-test)" in t for t in texts)
    # wrapped plain text, never JSON
    assert all(lab.wordWrap() for lab in card_dlg.value_labels)
    assert not any(t.lstrip().startswith(("{", "[")) or '": ' in t for t in texts)


def test_activate_verifies_in_the_worker_and_loads_the_model(qtbot, ai, registry):
    with qtbot.waitSignal(ai.controller.modelChanged, timeout=60000) as blk:
        ai.activate("beta")
    assert blk.args[0].name == "beta"
    assert registry.active_name() == "beta"
    assert ai.loaded[-1].endswith("beta")
    assert "beta" in ai.panel.model_label.text() or ai.panel.model_label.text().startswith("Model:")


def test_activating_a_broken_model_keeps_the_previous_one(qtbot, ai, registry):
    with qtbot.waitSignal(ai.controller.modelChanged, timeout=60000):
        ai.activate("alpha")
    with qtbot.waitSignal(ai.controller.errored, timeout=60000) as blk:
        ai.activate("broken")
    err = blk.args[0]
    assert err.kind == "model" and "broken" in err.message
    assert registry.active_name() == "alpha"
    assert ai.controller.ready and ai.controller.model.name == "alpha"
    assert "broken" in ai.panel.state_label.text()
