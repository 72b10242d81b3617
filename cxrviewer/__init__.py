"""cxrviewer: a desktop chest X-ray viewer with a research Normal/Abnormal model and Grad-CAM.

Layers (arrows point one way): ``ui -> ml -> core``, ``training -> ml -> core``.
``cxrviewer.core`` imports neither Qt nor torch; ``cxrviewer.ml`` imports no Qt.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cxrviewer")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.1.0"

__all__ = ["__version__", "about_info"]


def about_info(model=None) -> dict:
    """Versions, model and device as shown in Help -> About (see :mod:`cxrviewer.about`)."""
    from cxrviewer.about import about_info as _about_info

    return _about_info(model)
