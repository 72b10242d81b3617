"""Where the Grad-CAM of the Abnormal class points: pointing game, border mass, a heatmap grid.

Boxes (``--boxes CSV``)
    ``path,x,y,w,h`` in the pixels of the image file at ``path`` (optional ``ref_w,ref_h``
    when the box was drawn on another size of the same image; ``path,x0,y0,x1,y1`` corners, as
    :mod:`training.synthetic` writes them, are accepted too), or NIH's
    ``BBox_List_2017.csv[.gz]`` (``Image Index``, ``Finding Label``, ``Bbox [x,y,w,h]``, drawn
    on the 1024×1024 release images: scaled to the actual file size). Images are matched by
    path, else by file name.
Pointing game
    For each image with a box, the peak of its Abnormal-class CAM (resized to the model input as
    the viewer draws it, then mapped to the image's pixels) is a *hit* when it falls inside one
    of the image's boxes (no tolerance margin). Baselines on the same images: the image centre
    as the "peak", and the expected hit rate of a uniformly random point (mean box area share).
Border mass
    The share of the non-negative Grad-CAM mass (the ReLU'd map before min-max scaling, resized
    bilinearly to the model input) in the outer seventh of each side, which is the outer ring of
    a 7×7 grid (49 % of the area), and in the bottom seventh (14 %). Defined on the input, not on
    the native grid, so a 128 px model's 4×4 map and a 224 px model's 7×7 map are measured alike.
    A map that spreads evenly scores the area shares.

numpy + OpenCV (+ matplotlib for the grid); the CAMs come from :mod:`training.postfit`.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cxrviewer.core.errors import CxrError

RING_FRACTION = 1.0 / 7.0
NIH_REF = (1024, 1024)
RING_AREA = 1.0 - (1.0 - 2 * RING_FRACTION) ** 2
BOTTOM_AREA = RING_FRACTION


@dataclass(frozen=True)
class Box:
    """One box ``(x, y, w, h)``; ``ref`` = ``(width, height)`` it was drawn on (None: the file's own)."""

    x: float
    y: float
    w: float
    h: float
    ref: tuple[int, int] | None = None
    finding: str = ""

    def scaled(self, cols: int, rows: int) -> tuple[float, float, float, float]:
        if self.ref is None:
            return self.x, self.y, self.w, self.h
        sx, sy = cols / self.ref[0], rows / self.ref[1]
        return self.x * sx, self.y * sy, self.w * sx, self.h * sy


def _text(path: Path) -> str:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8-sig")


def read_boxes(path: str | os.PathLike) -> dict[str, list[Box]]:
    """Boxes keyed by the ``path`` as written *and* by its file name.

    Raises ``CxrError`` naming the file when it is unreadable or has neither layout.
    """
    p = Path(path)
    try:
        text = _text(p)
    except OSError as e:
        raise CxrError(p, f"cannot read the box table ({e.strerror or e})") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise CxrError(p, "empty box table")
    head = [h.strip() for h in rows[0]]
    out: dict[str, list[Box]] = {}

    def add(key: str, box: Box) -> None:
        out.setdefault(key, []).append(box)
        base = os.path.basename(key)
        if base != key:
            out.setdefault(base, []).append(box)

    try:
        if head and head[0] == "Image Index":  # NIH BBox_List_2017: x,y,w,h in columns 2..5
            for r in rows[1:]:
                if len(r) >= 6 and r[0]:
                    add(r[0], Box(*(float(v) for v in r[2:6]), ref=NIH_REF, finding=r[1]))
        else:
            idx = {h.lower(): i for i, h in enumerate(head)}
            corners = all(c in idx for c in ("x0", "y0", "x1", "y1")) and "w" not in idx
            missing = [c for c in (("path", "x0", "y0", "x1", "y1") if corners else ("path", "x", "y", "w", "h"))
                       if c not in idx]
            if missing:
                raise CxrError(p, f"missing column(s) {', '.join(missing)} (expected path,x,y,w,h "
                                  "in the image's pixels, or NIH's BBox_List_2017 table)")
            for line, r in enumerate(rows[1:], start=2):
                if not any(r):
                    continue
                ref = None
                if "ref_w" in idx and "ref_h" in idx and r[idx["ref_w"]] and r[idx["ref_h"]]:
                    ref = (int(float(r[idx["ref_w"]])), int(float(r[idx["ref_h"]])))
                if corners:
                    x0, y0, x1, y1 = (float(r[idx[c]]) for c in ("x0", "y0", "x1", "y1"))
                    xywh = (x0, y0, x1 - x0, y1 - y0)
                else:
                    xywh = tuple(float(r[idx[c]]) for c in ("x", "y", "w", "h"))
                b = Box(*xywh, ref=ref, finding=r[idx["finding"]] if "finding" in idx else "")
                if b.w <= 0 or b.h <= 0:
                    raise CxrError(p, f"line {line}: box width and height must be > 0")
                add(r[idx["path"]], b)
    except (ValueError, IndexError) as e:
        raise CxrError(p, f"a box value is not a number ({e})") from None
    return out


def boxes_for(table: dict[str, list[Box]], path: str) -> list[Box]:
    """The boxes of an image: by its path, else by its file name."""
    return table.get(path) or table.get(os.path.basename(path)) or []


def to_input(m: np.ndarray, size: int) -> np.ndarray:
    """A low-resolution map -> ``(size, size)`` float32, bilinear (as the viewer draws it)."""
    import cv2

    m = np.asarray(m, dtype=np.float32)
    if m.shape == (size, size):
        return m
    return cv2.resize(m, (size, size), interpolation=cv2.INTER_LINEAR)


def border_mass(cam: np.ndarray, size: int) -> tuple[float, float]:
    """``(outer ring share, bottom band share)`` of a non-negative map's mass (nan if no mass)."""
    m = np.maximum(to_input(cam, size), 0.0).astype(np.float64)
    tot = m.sum()
    if not np.isfinite(tot) or tot <= 0:
        return float("nan"), float("nan")
    k = max(1, int(round(size * RING_FRACTION)))
    inner = m[k:size - k, k:size - k].sum()
    return float((tot - inner) / tot), float(m[size - k:, :].sum() / tot)


def peak_in_image(cam: np.ndarray, mapping) -> tuple[float, float]:
    """The CAM's peak as ``(x, y)`` in the original image's pixels (pixel centres)."""
    up = to_input(cam, mapping.size)
    r, c = np.unravel_index(int(np.argmax(up)), up.shape)
    # model-input pixel centre -> inner (unpadded) region -> original pixels
    y = (r + 0.5 - mapping.pad_top) * mapping.src_rows / mapping.inner_h
    x = (c + 0.5 - mapping.pad_left) * mapping.src_cols / mapping.inner_w
    return float(x), float(y)


def inside(x: float, y: float, boxes: list[Box], cols: int, rows: int) -> bool:
    for b in boxes:
        bx, by, bw, bh = b.scaled(cols, rows)
        if bx <= x <= bx + bw and by <= y <= by + bh:
            return True
    return False


def box_area_share(boxes: list[Box], cols: int, rows: int) -> float:
    """Area share of the union of the boxes (a uniform random point's hit chance)."""
    mask = np.zeros((rows, cols), dtype=bool)
    for b in boxes:
        bx, by, bw, bh = b.scaled(cols, rows)
        mask[max(0, int(by)):min(rows, int(np.ceil(by + bh))), max(0, int(bx)):min(cols, int(np.ceil(bx + bw)))] = True
    return float(mask.mean())


def pointing_game(items: list[dict[str, Any]], table: dict[str, list[Box]]) -> dict[str, Any]:
    """Hit rates over the items that have boxes.

    ``items``: dicts with ``path``, ``cam`` (low-res map) and ``mapping`` (ResizeMapping).
    Returns ``{"n", "hits", "pointing_game", "centre_baseline", "random_baseline", "images"}``
    (rates are None when no image has a box).
    """
    rows_out = []
    for it in items:
        bx = boxes_for(table, it["path"])
        if not bx:
            continue
        mp = it["mapping"]
        px, py = peak_in_image(it["cam"], mp)
        cx, cy = mp.src_cols / 2.0, mp.src_rows / 2.0
        rows_out.append({"path": it["path"], "peak": [px, py], "hit": inside(px, py, bx, mp.src_cols, mp.src_rows),
                         "centre_hit": inside(cx, cy, bx, mp.src_cols, mp.src_rows),
                         "box_area_share": box_area_share(bx, mp.src_cols, mp.src_rows),
                         "findings": sorted({b.finding for b in bx if b.finding})})
    n = len(rows_out)

    def rate(k: str) -> float | None:
        return float(np.mean([r[k] for r in rows_out])) if n else None

    return {"n": n, "hits": int(sum(r["hit"] for r in rows_out)), "pointing_game": rate("hit"),
            "centre_baseline": rate("centre_hit"), "random_baseline": rate("box_area_share"), "images": rows_out}


def summarize(items: list[dict[str, Any]], table: dict[str, list[Box]] | None, split: str) -> dict[str, Any]:
    """The card's ``localization`` entry from per-image CAMs of one split."""
    size = items[0]["mapping"].size if items else 0
    masses = np.array([border_mass(it["cam"], size) for it in items], dtype=np.float64).reshape(-1, 2)
    ok = np.isfinite(masses[:, 0])
    pg = pointing_game(items, table) if table else {"n": 0, "hits": 0, "pointing_game": None,
                                                    "centre_baseline": None, "random_baseline": None, "images": []}
    grid = items[0]["cam"].shape if items else (0, 0)
    return {
        "split": split,
        "cam": "Grad-CAM of the Abnormal class at layer4",
        "cam_grid": list(grid),
        "pointing_game": pg["pointing_game"],
        "centre_baseline": pg["centre_baseline"],
        "random_baseline": pg["random_baseline"],
        "pointing_n": pg["n"],
        "pointing_hits": pg["hits"],
        "outer_ring_mass_median": float(np.median(masses[ok, 0])) if ok.any() else None,
        "bottom_row_mass_median": float(np.median(masses[ok, 1])) if ok.any() else None,
        "outer_ring_area": RING_AREA,
        "bottom_row_area": BOTTOM_AREA,
        "mass_n": int(ok.sum()),
        "definition": "CAM mass share in the outer seventh of each side of the model input (the outer ring "
                      "of a 7x7 grid) and in the bottom seventh; pointing game: CAM peak inside a box, no margin",
        "_pointing_images": pg["images"],
    }


def markdown(loc: dict[str, Any], grid_png: str | None = None, title: str = "Localization") -> list[str]:
    """The report section for a ``localization`` entry."""

    def f(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    lines = [f"## {title}", "",
             f"Grad-CAM of the Abnormal class on the {loc['split']} split ({loc['mass_n']} images, "
             f"native map {loc['cam_grid'][0]}×{loc['cam_grid'][1]}).", "",
             "| measure | value | uniform map |", "|---|---|---|",
             f"| CAM mass in the outer ring (outer 1/7 of each side), median | {f(loc['outer_ring_mass_median'])} | "
             f"{loc['outer_ring_area']:.3f} |",
             f"| CAM mass in the bottom row (bottom 1/7), median | {f(loc['bottom_row_mass_median'])} | "
             f"{loc['bottom_row_area']:.3f} |", ""]
    if loc["pointing_n"]:
        lines += [f"Pointing game on {loc['pointing_n']} images with boxes: CAM peak inside a box "
                  f"{loc['pointing_hits']}/{loc['pointing_n']} = {f(loc['pointing_game'])}; image centre "
                  f"{f(loc['centre_baseline'])}; a random point {f(loc['random_baseline'])} (mean box area share). "
                  "Few images: read it as an anecdote, not an estimate.", ""]
    else:
        lines += ["Pointing game: no image of this split has a box (give --boxes).", ""]
    if grid_png:
        lines += [f"![CAM grid]({grid_png})", ""]
    return lines


def heatmap_grid(path: str | Path, items: list[dict[str, Any]], images_u8: list[np.ndarray], n: int = 16,
                 cols: int = 4, title: str = "") -> Path:
    """A PNG grid of Abnormal-class CAMs over model inputs (first ``n`` items), atomically."""
    import cv2

    from cxrviewer import atomic

    tiles = []
    for it, u8 in list(zip(items, images_u8, strict=False))[:n]:
        size = u8.shape[0]
        m = to_input(it["cam"], size)
        m = m / m.max() if m.max() > 0 else m
        heat = cv2.applyColorMap(np.uint8(np.clip(m, 0, 1) * 255), cv2.COLORMAP_JET)
        base = cv2.cvtColor(u8, cv2.COLOR_GRAY2BGR)
        tile = cv2.addWeighted(base, 0.6, heat, 0.4, 0)
        tile = cv2.resize(tile, (160, 160), interpolation=cv2.INTER_LINEAR)
        label = it.get("label_text", "")
        if label:
            cv2.putText(tile, label, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    if not tiles:
        raise ValueError("no images for the heatmap grid")
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    grid = np.vstack([np.hstack(tiles[i:i + cols]) for i in range(0, len(tiles), cols)])
    if title:
        bar = np.zeros((18, grid.shape[1], 3), dtype=np.uint8)
        cv2.putText(bar, title, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        grid = np.vstack([bar, grid])
    ok, buf = cv2.imencode(".png", grid, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    path = Path(path)
    atomic.write_bytes(path, buf.tobytes())
    return path
