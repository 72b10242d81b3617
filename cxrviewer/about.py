"""What the About dialog and ``cxrviewer selftest`` report: versions, model, device, bundle.

Cheap by design: nothing heavy is imported here. torch and onnxruntime are reported only when
something already imported them (importing torch just to print its version would cost ~5 s
and hundreds of MB, and a viewer-only bundle has no torch at all).
"""

from __future__ import annotations

import sys
from typing import Any


def _module_version(name: str) -> str | None:
    mod = sys.modules.get(name)
    return None if mod is None else str(getattr(mod, "__version__", "?"))


def is_frozen() -> bool:
    """True inside a PyInstaller bundle (``sys.frozen`` is set by the bootloader)."""
    return bool(getattr(sys, "frozen", False))


def about_info(model: Any = None) -> dict[str, str]:
    """Versions and the AI state, as ordered ``label -> text`` rows.

    Parameters
    ----------
    model
        What the viewer's AI worker reports about the loaded model (any object with
        ``name``, ``version``, ``device`` and ``backend``, e.g. ``ModelInfo`` or an
        ``Engine``). ``None``: the registry's active model is named from its card (no
        weights are read) and the device is reported as not loaded yet.

    Returns
    -------
    dict
        Only plain strings, so callers can show or print them as they are. Keys present
        always: ``cxrviewer``, ``Python``, ``Build``, ``Model``, ``Device``; ``Qt``,
        ``torch`` and ``onnxruntime`` only when that library is already imported.
    """
    from cxrviewer import __version__

    info: dict[str, str] = {"cxrviewer": __version__, "Python": sys.version.split()[0]}
    if "PySide6.QtCore" in sys.modules:
        from PySide6 import QtCore

        info["Qt"] = QtCore.qVersion()
    torch_v = _module_version("torch")
    if torch_v is not None:
        torch = sys.modules["torch"]
        cuda = getattr(getattr(torch, "version", None), "cuda", None)
        info["torch"] = f"{torch_v} ({'CUDA ' + cuda if cuda else 'CPU build'})"
    ort_v = _module_version("onnxruntime")
    if ort_v is not None:
        info["onnxruntime"] = ort_v
    info["Build"] = "bundled app (PyInstaller)" if is_frozen() else "Python environment"

    if model is not None:
        info["Model"] = f"{getattr(model, 'name', '?')} {getattr(model, 'version', '')}".strip()
        backend = getattr(model, "backend", "") or ""
        info["Device"] = f"{getattr(model, 'device', '?')}" + (f" ({backend})" if backend else "")
    else:
        try:
            from cxrviewer.ml.registry import Registry

            entry = Registry().active()
        except Exception as e:  # noqa: BLE001 - About must open whatever the registry's state
            info["Model"] = f"unavailable ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
        else:
            info["Model"] = (
                f"{entry.name} {entry.version} (not loaded)" if entry else "none installed"
            )
        info["Device"] = "not loaded yet"
    return info
