"""Where resources and user data live: installed package, source checkout, PyInstaller bundle.

One function per location, so no module guesses paths on its own.
"""

from __future__ import annotations

import importlib.resources
import os
import sys
from pathlib import Path

APP_NAME = "cxrviewer"
# resources/ installs as this package-data subpackage (setup.py maps the folder into it)
RESOURCES_PACKAGE = "cxrviewer._resources"


def _checkout_resources() -> Path | None:
    """``resources/`` beside this package when it runs from a source tree (a checkout on
    ``PYTHONPATH``, an editable install, an unpacked sdist): that tree's own copy, even when
    another cxrviewer is installed in the environment."""
    root = Path(__file__).resolve().parent.parent
    res = root / "resources"
    if (root / "pyproject.toml").is_file() and res.is_dir():
        return res
    return None


def _package_resources() -> Path | None:
    """The installed package data (wheel, sdist, ``pip install .``) through ``importlib.resources``;
    None when the subpackage is not installed or not a folder on disk (a zipped install)."""
    try:
        found = importlib.resources.files(RESOURCES_PACKAGE)
    except ModuleNotFoundError:
        return None
    # onnxruntime, Qt and pydicom open files by path: only an unzipped install qualifies
    return found if isinstance(found, Path) and found.is_dir() else None


def resources_dir() -> Path:
    """The resources folder (theme, icons, sample study, models, .desktop file).

    In this order: ``$CXRVIEWER_RESOURCES``; ``sys._MEIPASS/resources`` in a PyInstaller
    bundle; the source tree's ``resources/`` when this package runs from one; the installed
    package data ``cxrviewer._resources`` (``importlib.resources``). When none exists, the
    path where an install would have it, so that messages name it.
    """
    env = os.environ.get("CXRVIEWER_RESOURCES")
    if env:
        return Path(env)
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    found = _checkout_resources() or _package_resources()
    return found if found is not None else Path(__file__).resolve().parent / "_resources"


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
