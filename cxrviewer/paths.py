"""Where resources and user data live, in the source tree and in a PyInstaller bundle.

One function per location, so no module guesses paths on its own.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_NAME = "cxrviewer"


def resources_dir() -> Path:
    """The ``resources/`` folder: ``sys._MEIPASS/resources`` when frozen, else the repo's."""
    env = os.environ.get("CXRVIEWER_RESOURCES")
    if env:
        return Path(env)
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    here = Path(__file__).resolve().parent
    for cand in (here.parent / "resources", Path(sys.prefix) / "share" / APP_NAME / "resources"):
        if cand.is_dir():
            return cand
    return here.parent / "resources"


def resource(*parts: str) -> Path:
    """A path inside :func:`resources_dir`."""
    return resources_dir().joinpath(*parts)


def _platformdirs():
    import platformdirs

    return platformdirs


def user_data_dir() -> Path:
    """Model registry and other user data (overridable with ``CXRVIEWER_DATA_DIR``, which tests use)."""
    env = os.environ.get("CXRVIEWER_DATA_DIR")
    p = Path(env) if env else Path(_platformdirs().user_data_dir(APP_NAME, appauthor=False))
    p.mkdir(parents=True, exist_ok=True)
    return p


def user_cache_dir() -> Path:
    """Caches (thumbnails, results): never beside the images (``CXRVIEWER_CACHE_DIR``)."""
    env = os.environ.get("CXRVIEWER_CACHE_DIR")
    p = Path(env) if env else Path(_platformdirs().user_cache_dir(APP_NAME, appauthor=False))
    p.mkdir(parents=True, exist_ok=True)
    return p


def user_log_dir() -> Path:
    """Rotating logs (``CXRVIEWER_LOG_DIR``)."""
    env = os.environ.get("CXRVIEWER_LOG_DIR")
    p = Path(env) if env else Path(_platformdirs().user_log_dir(APP_NAME, appauthor=False))
    p.mkdir(parents=True, exist_ok=True)
    return p


def sample_paths() -> list[Path]:
    """The bundled sample study: ``resources/sample/*.dcm`` (the RG1 chest CR; provenance in
    ``resources/sample/README.md``). Empty when the folder was left out of a build."""
    folder = resource("sample")
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".dcm")
