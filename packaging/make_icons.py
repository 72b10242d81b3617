"""Draw the application icon: ``resources/icons/cxrviewer.{svg,png,ico,icns}``.

The icon is generated (no binary art to keep in sync by hand): a dark rounded tile, two
grey lung fields, and a warm heat spot on one of them (the Grad-CAM overlay users know
from the app). Run it again after changing the drawing; the files are committed.

    python3 packaging/make_icons.py [--out resources/icons]
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Geometry on a 256-unit canvas, shared by the SVG and the raster drawing.
TILE = "#1b2430"
LUNG = "#c9d3dc"
SPINE = "#7d8a96"
HEAT = ((255, 140, 0), (230, 40, 30))  # outer, inner

SVG = f"""<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 256 256">
  <title>cxrviewer</title>
  <defs>
    <radialGradient id="heat" cx="0.5" cy="0.5" r="0.5">
      <stop offset="0" stop-color="rgb{HEAT[1]}" stop-opacity="0.95"/>
      <stop offset="0.55" stop-color="rgb{HEAT[0]}" stop-opacity="0.75"/>
      <stop offset="1" stop-color="rgb{HEAT[0]}" stop-opacity="0"/>
    </radialGradient>
  </defs>
  <rect x="8" y="8" width="240" height="240" rx="44" fill="{TILE}"/>
  <rect x="122" y="40" width="12" height="176" rx="6" fill="{SPINE}"/>
  <path d="M112 52 C 80 56, 50 100, 48 160 C 46 196, 70 212, 112 200 Z" fill="{LUNG}"/>
  <path d="M144 52 C 176 56, 206 100, 208 160 C 210 196, 186 212, 144 200 Z" fill="{LUNG}"/>
  <circle cx="170" cy="150" r="42" fill="url(#heat)"/>
</svg>
"""


def draw(size: int):
    """The icon as a Pillow RGBA image of ``size`` pixels (drawn at 4x, then downsampled)."""
    from PIL import Image, ImageChops, ImageDraw, ImageFilter

    s = 1024
    k = s / 256.0
    im = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    d.rounded_rectangle([8 * k, 8 * k, 248 * k, 248 * k], radius=44 * k, fill=TILE)
    d.rounded_rectangle([122 * k, 40 * k, 134 * k, 216 * k], radius=6 * k, fill=SPINE)

    def lung(sign: int) -> list[tuple[float, float]]:
        # cubic Bezier outlines of the SVG paths, sampled
        def bez(p0, p1, p2, p3, n=60):
            out = []
            for i in range(n + 1):
                t = i / n
                a, b, c, e = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3
                out.append(tuple(a * p0[j] + b * p1[j] + c * p2[j] + e * p3[j] for j in (0, 1)))
            return out

        def x(v: float) -> float:
            return v if sign < 0 else 256 - v

        pts = bez((x(112), 52), (x(80), 56), (x(50), 100), (x(48), 160))
        pts += bez((x(48), 160), (x(46), 196), (x(70), 212), (x(112), 200))
        return [(px * k, py * k) for px, py in pts]

    d.polygon(lung(-1), fill=LUNG)
    d.polygon(lung(+1), fill=LUNG)
    heat = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    hd = ImageDraw.Draw(heat)
    cx, cy, r = 170 * k, 150 * k, 42 * k
    for i in range(40, 0, -1):
        f = i / 40.0
        col = HEAT[0] if f > 0.5 else HEAT[1]
        hd.ellipse([cx - r * f, cy - r * f, cx + r * f, cy + r * f], fill=(*col, int(255 * (1 - f) * 0.9 + 20)))
    heat = heat.filter(ImageFilter.GaussianBlur(6 * k))
    im = Image.alpha_composite(im, heat)
    # keep the heat inside the tile's rounded corners
    mask = Image.new("L", (s, s), 0)
    ImageDraw.Draw(mask).rounded_rectangle([8 * k, 8 * k, 248 * k, 248 * k], radius=44 * k, fill=255)
    im.putalpha(ImageChops.darker(im.getchannel("A"), mask))
    return im.resize((size, size), Image.Resampling.LANCZOS)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "resources" / "icons")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    big = draw(1024)
    files = {
        "cxrviewer.svg": SVG.encode(),
    }
    buf = io.BytesIO()
    big.resize((256, 256)).save(buf, format="PNG")
    files["cxrviewer.png"] = buf.getvalue()
    buf = io.BytesIO()
    big.save(buf, format="ICO", sizes=[(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)])
    files["cxrviewer.ico"] = buf.getvalue()
    buf = io.BytesIO()
    big.save(buf, format="ICNS")
    files["cxrviewer.icns"] = buf.getvalue()
    import sys

    sys.path.insert(0, str(REPO))
    from cxrviewer.atomic import write_bytes

    for name, data in files.items():
        write_bytes(args.out / name, data)
        print(args.out / name, len(data), "bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
