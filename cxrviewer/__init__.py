"""cxrviewer: a desktop chest X-ray viewer with a research Normal/Abnormal model and Grad-CAM.

Layers (arrows point one way, enforced by ``lint-imports``, see ``pyproject.toml``):
``cli -> ui -> render -> ml -> core``, ``training -> ml -> core``. ``cxrviewer.core`` and
``cxrviewer.render`` import neither Qt nor torch; ``cxrviewer.ml`` imports no Qt.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cxrviewer")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.1.0"

__all__ = ["__version__"]
