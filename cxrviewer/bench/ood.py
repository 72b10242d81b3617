"""How often the out-of-distribution gate refuses: non-chest DICOM, photograph-like images, your sets.

``cxrviewer bench ood --json [--model NAME_OR_DIR] [--data NAME=PATH ...] [--max-images N]``
runs the model's gate (header rules, then the learned check) on

``pydicom``
    every image among pydicom's and pydicom-data's test files (CT, MR, US, NM, RT dose, SEG,
    the RG3 tibia, ... and the RG1 chest CR), with each file's outcome;
``photo-like``
    synthetic pictures made here: a face-like pattern, 1/f noise, and matplotlib's
    ``grace_hopper.jpg`` photograph (colour and greyscale) when matplotlib is installed;
``--data NAME=PATH``
    any folder or labelled set (e.g. unseen chest radiographs: the in-distribution rate).

Per set: images, refused by the header rules, by the learned check alone, by either.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="registry name or model directory (default: the active model)")
    p.add_argument("--data", action="append", default=[], metavar="NAME=PATH",
                   help="a further set to measure (folder, file list or labelled set); repeatable")
    p.add_argument("--max-images", type=int, default=0, help="at most this many images per --data set (0: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--files", action="store_true", help="list every file's outcome, not only pydicom's")


def _photo_like(folder: Path) -> list[str]:
    import cv2

    yy, xx = np.mgrid[:512, :512] / 512.0
    face = 40.0 + 140.0 * (((xx - 0.5) / 0.33) ** 2 + ((yy - 0.5) / 0.43) ** 2 < 1)
    for cx in (0.38, 0.62):
        face -= 110 * (((xx - cx) / 0.06) ** 2 + ((yy - 0.42) / 0.035) ** 2 < 1)
    face -= 60 * (((xx - 0.5) / 0.15) ** 2 + ((yy - 0.7) / 0.03) ** 2 < 1)
    face = cv2.GaussianBlur(face.astype(np.float32), (0, 0), 3)
    rng = np.random.default_rng(0)
    cv2.imwrite(str(folder / "face_pattern.png"), np.clip(face + rng.normal(0, 6, face.shape), 0, 255).astype(np.uint8))
    f = np.fft.fftfreq(512)
    amp = 1 / np.maximum(np.hypot(*np.meshgrid(f, f)), 1 / 512)
    noise = np.real(np.fft.ifft2(amp * np.exp(2j * np.pi * rng.random((512, 512)))))
    cv2.imwrite(str(folder / "pink_noise.png"), (255 * (noise - noise.min()) / np.ptp(noise)).astype(np.uint8))
    out = [str(folder / "face_pattern.png"), str(folder / "pink_noise.png")]
    try:
        import matplotlib

        src = Path(matplotlib.__file__).parent / "mpl-data" / "sample_data" / "grace_hopper.jpg"
        im = cv2.imread(str(src))
        if im is not None:
            cv2.imwrite(str(folder / "photo_colour.png"), im)
            cv2.imwrite(str(folder / "photo_grey.png"), cv2.cvtColor(im, cv2.COLOR_BGR2GRAY))
            out += [str(folder / "photo_colour.png"), str(folder / "photo_grey.png")]
    except ImportError:
        pass
    return out


def _paths(spec: str, max_images: int, seed: int) -> list[str]:
    """Every image of a labelled set (any layout ``cxrviewer train`` reads) or of a folder."""
    from cxrviewer.core.errors import CxrError

    try:
        from training import data as D

        items = [s.path for s in D.load_dataset(spec).samples]
    except (ImportError, CxrError):
        from cxrviewer.core.study_index import scan

        items = [i.path for i in scan(spec).instances()]
    if max_images > 0 and len(items) > max_images:
        random.Random(seed).shuffle(items)
        items = items[:max_images]
    return items


def measure(engine, paths: list[str], files: bool = False) -> dict[str, Any]:
    """The gate's outcome on ``paths`` (unreadable files are counted apart)."""
    from cxrviewer.core.dicom_io import load_image
    from cxrviewer.core.errors import CxrError
    from cxrviewer.ml import ood

    head = learned = either = n = 0
    rows, unreadable = [], 0
    for p in paths:
        try:
            img = load_image(p)
            x = engine.prepare(img)[0]
        except (CxrError, OSError, ValueError, MemoryError, RuntimeError, TypeError):
            unreadable += 1
            continue
        feat = engine.forward(x[None])[3][0]
        h = ood.check_header(img)
        g = engine.gate.check(feat) if engine.gate is not None else None
        n += 1
        head += not h.ok
        learned += g is not None and not g.ok
        either += (not h.ok) or (g is not None and not g.ok)
        if files:
            rows.append({"path": os.path.basename(p), "modality": img.header.modality,
                         "header": h.reason or "ok", "distance": None if g is None else round(float(g.distance), 2),
                         "learned": None if g is None else g.status})
    res: dict[str, Any] = {
        "images": n, "unreadable": unreadable,
        "refused_header": head, "refused_learned": learned, "refused": either,
        "refusal_rate": either / n if n else None,
        "learned_refusal_rate": learned / n if n and engine.gate is not None else None,
    }
    if files:
        res["files"] = rows
    return res


def run(args: argparse.Namespace) -> dict[str, Any]:
    import warnings

    from cxrviewer.ml.inference import Engine
    from cxrviewer.ml.registry import Registry

    model = args.model
    if model is not None and not Path(model).is_dir():
        model = str(Registry().get(model).path)
    engine = Engine.load(model)
    out: dict[str, Any] = {"model": engine.name, "version": engine.version,
                           "threshold": None if engine.gate is None else engine.gate.threshold, "sets": {}}
    try:
        import pydicom.data

        pyd = sorted(set(pydicom.data.get_testdata_files()))
    except ImportError:
        pyd = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's notes on its deliberately odd test files
        out["sets"]["pydicom"] = measure(engine, pyd, files=True)
        with tempfile.TemporaryDirectory() as td:
            out["sets"]["photo-like"] = measure(engine, _photo_like(Path(td)), files=True)
        for spec in args.data:
            name, _, path = spec.partition("=")
            if not path:
                name, path = Path(spec).name, spec
            out["sets"][name] = measure(engine, _paths(path, args.max_images, args.seed), files=args.files)
    return out
