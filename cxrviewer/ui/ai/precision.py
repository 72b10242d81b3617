"""Model ▸ Precision: float32, INT8 (the model's quantized graph) or automatic, kept in QSettings.

*Automatic* (the default) runs the INT8 graph only where ``cxrviewer models quantize``
measured that it qualifies (test AUC within 0.005 of float32, CAM Pearson >= 0.99), else
float32; *INT8* insists (a model without one then shows why and how to make it); *Float32*
is the reference. Choosing one reloads the model in the worker. See
:mod:`cxrviewer.ml.quantize`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

#: QSettings key of the choice
PRECISION_KEY = "ai/precision"
CHOICES = (
    ("auto", "Automatic (INT8 where measured to qualify)"),
    ("fp32", "Float32 (reference)"),
    ("int8", "INT8 (quantized, faster on CPU)"),
)


def load(settings: QtCore.QSettings) -> str:
    """The stored precision (``"auto"`` when unset or unknown)."""
    v = str(settings.value(PRECISION_KEY, "auto"))
    return v if v in {c for c, _ in CHOICES} else "auto"


def factory(ai: Any) -> Callable[[str | None], Any]:
    """``Engine.load`` with ``ai.precision`` as it is when the worker loads (a plain str
    attribute: the worker thread never touches the QSettings object)."""
    from cxrviewer.ui.ai.workers import default_engine_factory

    return lambda model_dir: default_engine_factory(model_dir, precision=ai.precision)


def install_menu(ai: Any) -> QtWidgets.QMenu:
    """Add the Precision submenu to ``ai.menu`` (after *Active model*)."""
    menu = QtWidgets.QMenu("&Precision", ai.menu)
    ai.menu.insertMenu(ai.act_models, menu)
    group = QtGui.QActionGroup(menu)
    ai.precision_actions = {}
    for key, text in CHOICES:
        a = menu.addAction(text)
        a.setCheckable(True)
        a.setChecked(key == ai.precision)
        group.addAction(a)
        a.triggered.connect(lambda _=False, k=key: choose(ai, k))
        ai.precision_actions[key] = a
    ai.precision_menu = menu
    return menu


def choose(ai: Any, precision: str) -> None:
    """Keep ``precision`` and reload the model with it (nothing happens if unchanged)."""
    if precision == ai.precision:
        return
    ai.precision = precision
    ai.settings.setValue(PRECISION_KEY, precision)
    ai.precision_actions[precision].setChecked(True)
    ai.start(ai._model_dir)
