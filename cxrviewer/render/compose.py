"""One export assembly: window + overlay layers + rulers + corner text (+ AI lines) -> pixels.

File -> Export (native resolution), ``cxrviewer export`` and ``selftest`` all call
:func:`compose_export`, so the three cannot drift apart. Saving is separate
(:func:`cxrviewer.render.export.save_image`), so tests assert on pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cxrviewer.core.types import LoadedImage, WindowPreset
from cxrviewer.render.colormaps import (
    DEFAULT_COLORMAP,
    DEFAULT_OPACITY,
    DEFAULT_THRESHOLD,
    cam_to_index,
    heat_rgba,
    prediction_text,
)
from cxrviewer.render.export import Layer, RulerSpec, ViewState, render_export
from cxrviewer.render.overlay_text import corner_text


def compose_export(
    img: LoadedImage,
    preset: WindowPreset | None = None,
    *,
    view: ViewState | None = None,
    layers: Sequence[Layer] = (),
    rulers: Sequence[RulerSpec] = (),
    annotations: bool = True,
    anonymize: bool = False,
    ai_lines: Sequence[str] = (),
    native: bool = True,
    max_size: int = 1024,
) -> np.ndarray:
    """Render ``img`` as exported: the window, layers and rulers burned in, with corner text.

    Parameters
    ----------
    preset
        The window; ``None`` = the file's own window (``img.default_preset``), else the
        display pipeline's robust default. Its centre, width and name go into the text.
    view
        Rotation, flips and invert as on screen (``None``: as stored).
    layers
        RGBA overlay layers in the image's original geometry (e.g. :func:`heatmap_layer`).
    rulers
        Measurements in image coordinates.
    annotations
        Burn in the corner text (and ``ai_lines`` with it).
    anonymize
        Build the text from the anonymized header: no name, ID, birth date, accession or
        institution.
    ai_lines
        Extra bottom-right lines (:func:`cxrviewer.render.colormaps.prediction_text`).
    native, max_size
        See :func:`cxrviewer.render.export.render_export`.

    Returns
    -------
    ``uint8`` array: ``(rows, cols)`` gray when nothing colourful was drawn, else RGB.
    """
    if preset is None:
        preset = img.default_preset
    text = None
    if annotations:
        text = corner_text(
            img,
            center=preset.center if preset else None,
            width=preset.width if preset else None,
            window_name=preset.name if preset else "",
            anonymize=anonymize,
            extra_br=list(ai_lines),
            view=view,
        )
    return render_export(img, preset, view or ViewState(), layers=layers, text=text, rulers=rulers,
                         native=native, max_size=max_size)


def heatmap_layer(
    cam: np.ndarray,
    colormap: str = DEFAULT_COLORMAP,
    threshold: float = DEFAULT_THRESHOLD,
    opacity: float = DEFAULT_OPACITY,
) -> np.ndarray:
    """A float CAM in ``[0, 1]`` (image geometry) -> the RGBA export layer the canvas shows."""
    cam_u8 = cam_to_index(cam)
    if cam_u8 is None:
        raise ValueError("the model returned no heatmap")
    return heat_rgba(cam_u8, colormap, threshold, opacity)


def prediction_overlay(
    pred,
    colormap: str = DEFAULT_COLORMAP,
    threshold: float = DEFAULT_THRESHOLD,
    opacity: float = DEFAULT_OPACITY,
) -> tuple[np.ndarray, list[str]]:
    """A prediction with a CAM (:class:`cxrviewer.ml.inference.Prediction`) ->
    ``(heatmap layer, text lines)`` for :func:`compose_export`'s ``layers`` and ``ai_lines``."""
    return heatmap_layer(pred.cam, colormap, threshold, opacity), prediction_text(pred)
