"""Model ▸ Precision: the choice is kept, reloads the model, reaches Engine.load and shows."""

from __future__ import annotations

import types

import pytest

pytest.importorskip("pytestqt", reason="pytest-qt is needed for the Qt tests")

from test_ai_support import StandInEngine, ai_integration  # noqa: E402


@pytest.fixture
def ai(qtbot, tmp_path):
    seen = []

    def factory(model_dir):
        e = StandInEngine()
        e.precision = integ.precision  # what a real Engine.load would have been asked for
        seen.append(e.precision)
        return e

    integ = ai_integration(qtbot, tmp_path, factory)
    integ.seen = seen
    yield integ
    integ.shutdown()


def test_precision_menu_keeps_the_choice_and_reloads(qtbot, ai):
    from cxrviewer.ui.ai.precision import PRECISION_KEY

    menu_titles = [a.text() for a in ai.menu.actions()]
    assert "&Precision" in menu_titles and menu_titles.index("&Precision") < menu_titles.index("&Models…")
    assert ai.precision == "auto" and ai.precision_actions["auto"].isChecked()
    with qtbot.waitSignal(ai.controller.modelChanged, timeout=30000):
        ai.start()
    with qtbot.waitSignal(ai.controller.modelChanged, timeout=30000) as blk:
        ai.precision_actions["int8"].trigger()
    assert ai.seen == ["auto", "int8"] and blk.args[0].precision == "int8"
    assert ai.settings.value(PRECISION_KEY) == "int8" and ai.precision_actions["int8"].isChecked()
    assert ai.device_label.text().endswith("· int8")
    with qtbot.waitSignal(ai.controller.modelChanged, timeout=30000):
        ai.precision_actions["fp32"].trigger()
    assert "int8" not in ai.device_label.text()


def test_the_default_factory_passes_the_precision_to_the_engine():
    from cxrviewer import paths
    from cxrviewer.core.errors import CxrError
    from cxrviewer.ui.ai.precision import factory

    d = paths.resource("models", "cxr-resnet50-demo")
    if not (d / "card.json").is_file():
        pytest.skip("the bundled demo model is not in this checkout")
    # the test session's user cache holds no INT8 graph of the bundled model
    with pytest.raises(CxrError, match="cxrviewer models quantize"):
        factory(types.SimpleNamespace(precision="int8"))(str(d))
    assert factory(types.SimpleNamespace(precision="fp32"))(str(d)).precision == "fp32"
