"""Synthetic radiograph-like images for tests and demos: Abnormal ones carry a round lesion.

Each image: dark background, a bright body with two darker lung fields, a bright
mediastinum, faint ribs and noise. An Abnormal image adds a bright blob inside one lung;
its bounding box is written to ``boxes.csv`` (``path,x0,y0,x1,y1`` in pixels) so a test
can check where Grad-CAM looks. File names follow NIH (``%08d_%03d.png``: patient, image).
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np

from cxrviewer import atomic


def radiograph(size: int, rng: np.random.Generator, lesion: bool) -> tuple[np.ndarray, tuple[int, int, int, int] | None]:
    """One uint8 image and the lesion box (x0, y0, x1, y1), or None."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = np.full((size, size), 25.0, dtype=np.float32)
    body = ((xx - 0.5) / 0.46) ** 2 + ((yy - 0.55) / 0.5) ** 2 < 1
    img[body] = 150
    lungs = []
    for cx in (0.32 + rng.normal(0, 0.01), 0.68 + rng.normal(0, 0.01)):
        cy, ax, ay = 0.5 + rng.normal(0, 0.01), 0.14, 0.3
        m = ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 < 1
        img[m] = 70
        lungs.append((cx, cy, ax, ay))
    for k in range(6):  # ribs: faint bright arcs across the lungs
        y0 = 0.25 + 0.09 * k
        band = np.abs(yy - y0 - 0.08 * (xx - 0.5) ** 2) < 0.012
        img[band & body] += 18
    img[(np.abs(xx - 0.5) < 0.07) & (yy > 0.2) & (yy < 0.85)] = 185
    box = None
    if lesion:
        cx, cy, ax, ay = lungs[int(rng.integers(0, 2))]
        lx = cx + rng.uniform(-0.5, 0.5) * ax
        ly = cy + rng.uniform(-0.5, 0.5) * ay
        r = rng.uniform(0.09, 0.13)
        d2 = ((xx - lx) ** 2 + (yy - ly) ** 2) / r**2
        img += 170 * np.exp(-d2 * 1.5) * (d2 < 1.5)
        x0, x1 = int((lx - r) * size), int(np.ceil((lx + r) * size))
        y0, y1 = int((ly - r) * size), int(np.ceil((ly + r) * size))
        box = (max(0, x0), max(0, y0), min(size, x1), min(size, y1))
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), box


def make_dataset(root: str | os.PathLike, n_patients: int = 60, size: int = 64, seed: int = 0,
                 layout: str = "folders", images_per_patient: int = 2, first_patient: int = 1) -> Path:
    """Write a labelled set under ``root`` and return the path to give ``--data``.

    layout: ``folders`` (normal/ abnormal/), ``csv`` (labels.csv with path,label,patient_id)
    or ``nih`` (Data_Entry_2017.csv + images/). Half the patients are Abnormal. Patient ids
    start at ``first_patient`` (sets meant to be disjoint need disjoint ids).
    """
    import cv2

    root = Path(root)
    rng = np.random.default_rng(seed)
    rows, boxes = [], []
    for p in range(first_patient, first_patient + n_patients):
        label = p % 2
        for k in range(images_per_patient):
            img, box = radiograph(size, rng, bool(label))
            name = f"{p:08d}_{k:03d}.png"
            if layout == "folders":
                rel = f"{'abnormal' if label else 'normal'}/{name}"
            else:
                rel = f"images/{name}"
            ok, buf = cv2.imencode(".png", img)
            atomic.write_bytes(root / rel, buf.tobytes())
            rows.append((rel, name, label, p))
            if box:
                boxes.append((rel, *box))
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["path", "x0", "y0", "x1", "y1"])
    w.writerows(boxes)
    atomic.write_text(root / "boxes.csv", out.getvalue())
    if layout == "folders":
        return root
    out = io.StringIO()
    w = csv.writer(out)
    if layout == "csv":
        w.writerow(["path", "label", "patient_id"])
        for rel, _name, label, p in rows:
            w.writerow([rel, "abnormal" if label else "normal", p])
        atomic.write_text(root / "labels.csv", out.getvalue())
        return root / "labels.csv"
    w.writerow(["Image Index", "Finding Labels", "Follow-up #", "Patient ID"])
    for _rel, name, label, p in rows:
        w.writerow([name, "Nodule" if label else "No Finding", 0, p])
    atomic.write_text(root / "Data_Entry_2017.csv", out.getvalue())
    return root
