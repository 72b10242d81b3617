"""The export renderer: image + overlay layers + rulers + corner text -> an RGB/gray array.

No Qt here: the viewer's File -> Export screenshot (native resolution) and the headless
``cxrviewer export`` call the same :func:`render_export`, and saving is separate
(:func:`save_image`), so tests assert on pixels.

With no layers, no rulers, no text, no view change and ``native=True`` the result is exactly
:func:`cxrviewer.core.display.render` (rows x cols, uint8 grayscale): the display pipeline's
output for that window, which can be checked against the DICOM standard.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from cxrviewer.core.display import render
from cxrviewer.core.geometry import display_aspect
from cxrviewer.core.types import LoadedImage, WindowPreset
from cxrviewer.render.overlay_text import CornerText

#: An overlay layer: RGBA ``(rows, cols, 4)`` in the image's original geometry (uint8, or
#: float in [0, 1]), or a callable building one from the image.
Layer = Union[np.ndarray, Callable[[LoadedImage], np.ndarray]]  # noqa: UP007 - runtime alias on py3.10

FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG"}


@dataclass(frozen=True)
class ViewState:
    """How the image is oriented on screen. Order: rotate (clockwise, quarter turns), then
    flip horizontally, then vertically, both in screen axes (what the reader sees)."""

    rotation: int = 0
    flip_h: bool = False
    flip_v: bool = False
    invert: bool = False

    @property
    def is_identity(self) -> bool:
        return self.rotation % 4 == 0 and not (self.flip_h or self.flip_v or self.invert)


@dataclass(frozen=True)
class RulerSpec:
    """A measured line in image coordinates (x = column, y = row, continuous: pixel
    ``(r, c)`` covers ``[c, c+1] x [r, r+1]``) and its label."""

    p0: tuple[float, float]
    p1: tuple[float, float]
    label: str


def map_point(x: float, y: float, rows: int, cols: int, view: ViewState) -> tuple[float, float]:
    """Image coordinates -> coordinates in the oriented image (same rules as the canvas)."""
    h, w = rows, cols
    for _ in range(view.rotation % 4):
        # clockwise quarter turn: (x, y) -> (h - y, x); the new image is h wide, w high
        x, y = h - y, x
        h, w = w, h
    if view.flip_h:
        x = w - x
    if view.flip_v:
        y = h - y
    return x, y


def orient(a: np.ndarray, view: ViewState) -> np.ndarray:
    """Apply rotation and flips to an array in original geometry (first two axes)."""
    k = view.rotation % 4
    if k:
        a = np.rot90(a, k=-k, axes=(0, 1))
    if view.flip_h:
        a = a[:, ::-1]
    if view.flip_v:
        a = a[::-1]
    return np.ascontiguousarray(a)


def _layer_rgba(layer: Layer, img: LoadedImage) -> np.ndarray:
    arr = layer(img) if callable(layer) else layer
    arr = np.asarray(arr)
    if arr.shape[:2] != (img.rows, img.cols) or arr.ndim != 3 or arr.shape[2] != 4:
        raise ValueError(
            f"overlay layer has shape {arr.shape}; expected ({img.rows}, {img.cols}, 4) RGBA "
            "in the image's original geometry"
        )
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    return np.clip(arr.astype(np.float32), 0.0, 1.0)


def base_pixels(img: LoadedImage, preset: WindowPreset | None, invert: bool = False) -> np.ndarray:
    """The display pipeline's 8-bit output, optionally inverted by the reader's Invert toggle
    (padding stays black, as on the canvas)."""
    out = render(img, preset)
    if invert and not img.is_color:
        out = 255 - out
        if img.padding_mask is not None:
            out[img.padding_mask] = 0
    return out


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: bitmap font only
        return ImageFont.load_default()


def render_export(
    img: LoadedImage,
    preset: WindowPreset | None,
    view: ViewState = ViewState(),
    layers: Sequence[Layer] = (),
    text: CornerText | None = None,
    rulers: Sequence[RulerSpec] = (),
    *,
    native: bool = True,
    max_size: int = 1024,
) -> np.ndarray:
    """Render ``img`` with its visible layers burned in.

    Parameters
    ----------
    preset
        The window (``None`` = the file's window, else the robust default).
    view
        Rotation, flips and invert as on screen.
    layers
        Overlay layers (e.g. the Grad-CAM heatmap), bottom to top, alpha-composited.
    text
        Corner text to burn in; ``None`` for none.
    rulers
        Measurements to draw, in image coordinates.
    native
        ``True``: one output pixel per image pixel. ``False``: resampled so pixels are
        square in millimetres (non-square Pixel Spacing) and the longest side is at most
        ``max_size``.

    Returns
    -------
    ``uint8`` array, ``(rows, cols)`` when nothing colourful was drawn, else ``(rows, cols, 3)``.
    """
    base = base_pixels(img, preset, view.invert)
    plain = not layers and not rulers and (text is None or not (text.strings() or text.edges))
    if layers:
        rgb = (base if base.ndim == 3 else np.repeat(base[..., None], 3, axis=2)).astype(np.float32) / 255.0
        for layer in layers:
            la = _layer_rgba(layer, img)
            a = la[..., 3:4]
            rgb = rgb * (1.0 - a) + la[..., :3] * a
        base = np.floor(rgb * 255.0 + 0.5).astype(np.uint8)
    out = orient(base, view)
    scale_x = scale_y = 1.0
    if not native:
        from PIL import Image

        # Display pixels square in mm: stretch the axis with the larger spacing.
        sx, sy = display_aspect(img.geometry, view.rotation)
        w0, h0 = out.shape[1] * sx, out.shape[0] * sy
        f = min(1.0, max_size / max(w0, h0))
        nw, nh = max(1, round(w0 * f)), max(1, round(h0 * f))
        if (nw, nh) != (out.shape[1], out.shape[0]):
            out = np.asarray(Image.fromarray(out).resize((nw, nh), Image.Resampling.LANCZOS))
        scale_x, scale_y = nw / base_w(base, view), nh / base_h(base, view)
    if plain:
        return out
    return _draw_annotations(out, img, view, text, rulers, scale_x, scale_y)


def base_w(a: np.ndarray, view: ViewState) -> int:
    return a.shape[0] if view.rotation % 2 else a.shape[1]


def base_h(a: np.ndarray, view: ViewState) -> int:
    return a.shape[1] if view.rotation % 2 else a.shape[0]


def _draw_annotations(
    out: np.ndarray,
    img: LoadedImage,
    view: ViewState,
    text: CornerText | None,
    rulers: Sequence[RulerSpec],
    scale_x: float,
    scale_y: float,
) -> np.ndarray:
    from PIL import Image, ImageDraw

    im = Image.fromarray(out if out.ndim == 3 else np.repeat(out[..., None], 3, axis=2))
    d = ImageDraw.Draw(im)
    h, w = out.shape[:2]
    size = max(11, int(round(min(h, w) / 45)))
    font = _font(size)
    stroke = max(1, size // 10)
    for r in rulers:
        x0, y0 = map_point(*r.p0, img.rows, img.cols, view)
        x1, y1 = map_point(*r.p1, img.rows, img.cols, view)
        pts = [(x0 * scale_x, y0 * scale_y), (x1 * scale_x, y1 * scale_y)]
        d.line(pts, fill=(255, 220, 0), width=max(1, size // 8))
        for px, py in pts:
            rr = max(2, size // 5)
            d.ellipse([px - rr, py - rr, px + rr, py + rr], outline=(255, 220, 0), width=max(1, size // 10))
        d.text((pts[1][0] + size // 2, pts[1][1]), r.label, font=font, fill=(255, 220, 0),
               stroke_width=stroke, stroke_fill=(0, 0, 0))
    if text is not None:
        margin = max(4, size // 2)
        line_h = int(size * 1.25)
        for corner, lines in text.corners().items():
            for i, line in enumerate(lines):
                tw = d.textlength(line, font=font)
                x = margin if corner[1] == "l" else w - margin - tw
                if corner[0] == "t":
                    y = margin + i * line_h
                else:
                    y = h - margin - (len(lines) - i) * line_h
                d.text((x, y), line, font=font, fill=(235, 235, 235), stroke_width=stroke, stroke_fill=(0, 0, 0))
        for edge, letters in text.edges.items():
            tw = d.textlength(letters, font=font)
            x = {"left": margin, "right": w - margin - tw}.get(edge, (w - tw) / 2)
            y = {"top": margin, "bottom": h - margin - line_h}.get(edge, (h - line_h) / 2)
            d.text((x, y), letters, font=font, fill=(255, 255, 160), stroke_width=stroke, stroke_fill=(0, 0, 0))
    return np.asarray(im)


def format_for(path: str | os.PathLike, fmt: str | None = None) -> str:
    """PIL format name from an explicit format or the file's suffix (PNG by default)."""
    if fmt:
        key = fmt.lower().lstrip(".")
    else:
        key = Path(path).suffix.lower().lstrip(".") or "png"
    if key not in FORMATS:
        raise ValueError(f"unsupported export format {key!r}: use .png or .jpg")
    return FORMATS[key]


def encode_image(arr: np.ndarray, fmt: str = "PNG", quality: int = 92) -> bytes:
    """Encode to PNG/JPEG bytes with no patient metadata (only a Software text chunk in PNG)."""
    import io

    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    from cxrviewer import __version__

    im = Image.fromarray(arr)
    buf = io.BytesIO()
    if fmt == "PNG":
        info = PngInfo()
        info.add_text("Software", f"cxrviewer {__version__}")
        im.save(buf, format="PNG", pnginfo=info)
    else:
        # No EXIF, no comment: nothing identifying goes into the file.
        im.convert("RGB" if im.mode not in ("L", "RGB") else im.mode).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def save_image(arr: np.ndarray, path: str | os.PathLike, fmt: str | None = None, quality: int = 92) -> Path:
    """Atomically write ``arr`` as PNG or JPEG (temp file + rename; no partial file)."""
    from cxrviewer.atomic import write_bytes

    data = encode_image(arr, format_for(path, fmt), quality)
    return write_bytes(path, data)
