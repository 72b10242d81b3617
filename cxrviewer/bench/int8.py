"""INT8 vs float32 on a model's own splits: the images, and the measurer ``bench archive`` calls.

A model card lists the data it was trained on (``training_data.sources``: ``path``, ``role``
``train``/``val``/``test``/``split``); :func:`split_images` turns that back into the images
of the validation split (INT8 calibration) and of the test split (the AUC and CAM checks),
read from the shared data folder. ``split`` sources are labelled sets with a predefined split
column, or ``nih-starter-512`` with the fixed patient-wise split of
:mod:`training.demo.make_lists` (the bundled demo model's). The counts are checked against the
card's ``training_data.splits``, so a reconstruction that differs from what the model was
trained with is refused instead of measured.

:func:`measure_int8` gives ``int8_speedup``, ``int8_auc_delta`` and ``int8_cam_pearson``
(see :func:`cxrviewer.ml.quantize.measure`) for ``cxrviewer bench archive`` (through :mod:`cxrviewer.bench.archive_int8`); it uses the
model's recorded INT8 graph when there is one, else quantizes a temporary one (nothing is
written to the model or the cache).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from cxrviewer.core.errors import CxrError

#: the demo recipe's fixed split of nih-starter-512 (training/demo/cpu_recipe.sh: make_lists defaults)
_MAKE_LISTS_SPLIT = ((0.6, 0.15, 0.25), 12)


def default_data_root() -> Path:
    """``$CXRVIEWER_SHARED_DATA``, else ``../shared/data`` beside the source tree."""
    env = os.environ.get("CXRVIEWER_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _source_path(text: str, data_root: Path) -> Path:
    """A card's source ``path`` ("shared/data/nih1000-64/valid", maybe with a note in
    parentheses) -> a folder under ``data_root`` (or the path itself when absolute)."""
    p = text.split(" (", 1)[0].strip()
    for prefix in ("shared/data/", "../shared/data/"):
        if p.startswith(prefix):
            return data_root / p[len(prefix):]
    return Path(p)


def split_images(card: dict[str, Any], split: str, data_root: str | os.PathLike | None = None) -> list[tuple[str, int]]:
    """``[(path, label)]`` of the model's ``split`` (``"val"`` or ``"test"``) from its card.

    Raises
    ------
    CxrError
        The card lists no sources, a source is not found under ``data_root``, or the images
        found do not add up to the card's count for that split.
    """
    try:
        from training import data as D
    except ImportError as e:
        raise CxrError(None, f"reading the model's splits needs the training module ({e}): pass --val-data/--test-data") from None
    root = Path(data_root) if data_root is not None else default_data_root()
    td = card.get("training_data") or {}
    sources = td.get("sources") or []
    if not sources:
        raise CxrError(None, "the model card lists no training data sources: pass --val-data/--test-data")
    out: list[tuple[str, int]] = []
    for src in sources:
        role, text = str(src.get("role", "")), str(src.get("path", ""))
        if role not in (split, "split"):
            continue
        folder = _source_path(text, root)
        if not folder.exists():
            raise CxrError(folder, f"the model's {split} data is not here (data root {root}): "
                           "set CXRVIEWER_SHARED_DATA or pass --data-root, --val-data/--test-data")
        if role == split:
            out += [(s.path, s.label) for s in D.load_dataset(folder).samples]
        elif "make_lists" in text:
            from training.demo.make_lists import nih_list

            fr, seed = _MAKE_LISTS_SPLIT
            rows, _ = nih_list(folder.parent, fr, seed)  # it reads <data root>/nih-starter-512
            out += [(r["path"], 0 if r["label"] == "normal" else 1) for r in rows if r["split"] == split]
        else:
            out += [(s.path, s.label) for s in D.load_dataset(folder).samples if s.split == split]
    want = ((td.get("splits") or {}).get(split) or {}).get("images")
    if want is not None and int(want) != len(out):
        raise CxrError(None, f"found {len(out)} images of the model's {split} split but its card says {want}: "
                       "pass --val-data/--test-data")
    if not out:
        raise CxrError(None, f"no images of the model's {split} split: pass --val-data/--test-data")
    return out


def labelled_images(spec: str, split: str | None) -> list[tuple[str, int]]:
    """``[(path, label)]`` of a labelled set (any layout ``cxrviewer train`` reads); its
    ``split`` rows when it has predefined splits, else all of them."""
    from training import data as D

    ds = D.load_dataset(spec)
    keep = [s for s in ds.samples if not ds.has_splits or split is None or s.split == split]
    return [(s.path, s.label) for s in keep]


def _model_dir(model: str | os.PathLike | None) -> Path:
    """``model`` as a model folder: a folder path, a registry name, or (``None``) the active model."""
    from cxrviewer.ml.registry import Registry

    if model is not None and Path(model).is_dir():
        return Path(model)
    entry = Registry().get(str(model)) if model is not None else Registry().active()
    if entry is None:
        raise CxrError(None, "no model installed")
    return entry.path


def measure_int8(model: str | os.PathLike | None = None, data_root: str | os.PathLike | None = None,
                 calibration_n: int = 64, batch: int = 8, isa: str = "auto") -> dict[str, Any]:
    """``{"int8_speedup", "int8_auc_delta", "int8_cam_pearson", ...}`` of a model on its test split.

    The recorded INT8 graph is measured when the model has one made for the same recipe
    (``isa``, see :func:`cxrviewer.ml.cpu_isa.recipe_isa`) on a CPU of this CPU's INT8 kernel
    class (it is what ``--precision`` runs); otherwise one is quantized in a temp folder on
    ``calibration_n`` validation images. ``int8_cpu`` names the CPU the figures are for.
    """
    from cxrviewer.ml import cpu_isa
    from cxrviewer.ml import quantize as Q
    from cxrviewer.ml.registry import ModelError, read_card

    recipe = cpu_isa.recipe_isa(isa)

    model_dir = _model_dir(model)
    card = read_card(model_dir)
    test = split_images(card, "test", data_root)
    tx, kept, _ = Q.preprocess_paths([p for p, _ in test], card)
    label = dict(test)
    ty = [label[p] for p in kept]
    try:
        int8_path, ent = Q.find_int8(model_dir, card)
        if ent.get("quantized_for", "vnni") != recipe or not Q.measured_here(ent)[0]:
            raise ModelError(int8_path, "recorded for another recipe or CPU")
        source = f"recorded ({ent.get('calibration_n')} calibration images)"
        m = Q.measure(model_dir, int8_path, tx, ty, batch=batch)
    except ModelError:
        val = split_images(card, "val", data_root)[: max(1, calibration_n)]
        cx, _, _ = Q.preprocess_paths([p for p, _ in val], card)
        with tempfile.TemporaryDirectory(prefix="cxrviewer-int8-bench-") as tmp:
            out = Path(tmp) / Q.INT8_FILE
            Q.quantize_graph(Q.self_contained_fp32(model_dir, card), cx, out, Path(tmp), isa=recipe)
            m = Q.measure(model_dir, out, tx, ty, batch=batch)
        source = f"quantized for this run ({len(cx)} validation images)"
    return {
        "int8_cpu": cpu_isa.describe(),
        "int8_kernel": cpu_isa.kernel_of(cpu_isa.cpu_info()),
        "int8_quantized_for": recipe,
        "int8_cam_pearson_min": m["cam_pearson_min"],
        "int8_max_prob_diff": m["max_prob_diff"],
        "int8_speedup": m["speedup"],
        "int8_auc_delta": m["auc_delta"],
        "int8_cam_pearson": m["cam_pearson"],
        "int8_test_n": m["test_n"],
        "int8_auc_fp32": m["auc_fp32"],
        "int8_auc_int8": m["auc_int8"],
        "int8_label_agreement": m["label_agreement"],
        "int8_ood_agreement": m["ood_agreement"],
        "int8_fp32_ms_per_image": m["fp32_ms_per_image"],
        "int8_ms_per_image": m["int8_ms_per_image"],
        "int8_qualifies": Q.qualifies(m),
        "int8_graph": source,
    }


def prob_spread(model: str | os.PathLike | None = None, data_root: str | os.PathLike | None = None,
                seeds: int = 10, calibration_n: int = 32, window: int = 8,
                isas: tuple[str, ...] = ("vnni", "avx2")) -> dict[str, Any]:
    """The spread of ``tests/ml/test_quantize.py``'s INT8-vs-float32 comparison.

    For each seed, ``calibration_n`` validation images drawn at random calibrate a graph per
    ``isa`` recipe; every test image gives |P(Abnormal) int8 - fp32| and the Pearson of the two
    CAMs. The test takes the max over ``window`` images, so each seed also reports the largest
    max over every window of consecutive test images. Returns per-recipe lists and their maxima.
    """
    import numpy as np

    from cxrviewer.ml import quantize as Q
    from cxrviewer.ml.cam import pearson
    from cxrviewer.ml.inference import (
        _OrtBackend,
        calibration_temperature,
        read_fc_weight_numpy,
        softmax,
    )
    from cxrviewer.ml.onnx_model import card_onnx
    from cxrviewer.ml.registry import read_card, verify_checksum

    model_dir = _model_dir(model)
    card = read_card(model_dir)
    val = split_images(card, "val", data_root)
    test = split_images(card, "test", data_root)
    vx, _, _ = Q.preprocess_paths([p for p, _ in val], card)
    tx, _, _ = Q.preprocess_paths([p for p, _ in test], card)
    fc = read_fc_weight_numpy(verify_checksum(model_dir, card))
    t = calibration_temperature(card)
    b32 = _OrtBackend(card_onnx(model_dir, card), fc, "cpu")
    l32, m32, _ = Q._run_all(b32, tx, Q.MEASURE_BATCH)[:3]
    p32 = softmax(l32, t)[:, 1]
    fp32_proto = Q.self_contained_fp32(model_dir, card)
    out: dict[str, Any] = {"test_n": len(tx), "calibration_n": calibration_n, "window": window, "seeds": seeds}
    for isa in isas:
        rows = []
        for seed in range(seeds):
            pick = np.random.default_rng(seed).choice(len(vx), size=min(calibration_n, len(vx)), replace=False)
            with tempfile.TemporaryDirectory(prefix="cxrviewer-int8-spread-") as tmp:
                f = Path(tmp) / Q.INT8_FILE
                Q.quantize_graph(fp32_proto, vx[np.sort(pick)], f, Path(tmp), isa=isa)
                l8, m8, _ = Q._run_all(_OrtBackend(f, fc, "cpu"), tx, Q.MEASURE_BATCH)[:3]
            d = np.abs(softmax(l8, t)[:, 1] - p32)
            r = np.array([pearson(a, b) for a, b in zip(m32, m8, strict=True)])
            win = max(float(d[i : i + window].max()) for i in range(0, max(1, len(d) - window + 1)))
            rows.append({"seed": seed, "max_prob_diff": round(float(d.max()), 5),
                         "p99_prob_diff": round(float(np.quantile(d, 0.99)), 5),
                         "max_window_prob_diff": round(win, 5), "last_window_prob_diff": round(float(d[-window:].max()), 5),
                         "cam_pearson_mean": round(float(r.mean()), 5), "cam_pearson_min": round(float(r.min()), 5),
                         "auc_delta": round(Q.auc([y for _, y in test], softmax(l8, t)[:, 1])
                                            - Q.auc([y for _, y in test], p32), 5)})
        out[isa] = {"runs": rows, "max_prob_diff": max(r["max_prob_diff"] for r in rows),
                    "max_last_window_prob_diff": max(r["last_window_prob_diff"] for r in rows),
                    "min_cam_pearson": min(r["cam_pearson_min"] for r in rows),
                    "min_cam_pearson_mean": min(r["cam_pearson_mean"] for r in rows)}
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    """For a stand-alone run (``python -m cxrviewer.bench.int8``)."""
    p.add_argument("--model", default=None, help="registry name or model directory (default: the active model)")
    p.add_argument("--data-root", default=None, help="the shared data folder (default: ../shared/data)")
    p.add_argument("--calibration-n", type=int, default=64)
    p.add_argument("--isa", default="auto", choices=["auto", "vnni", "avx2"], help="the recipe (see models quantize)")
    p.add_argument("--spread", type=int, default=0, metavar="SEEDS",
                   help="instead: the INT8 test's comparison over SEEDS calibration draws of 32 images, both "
                   "recipes, every test image (prob_spread)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    if getattr(args, "spread", 0):
        return prob_spread(args.model, args.data_root, seeds=args.spread)
    return measure_int8(args.model, args.data_root, args.calibration_n, isa=getattr(args, "isa", "auto"))


if __name__ == "__main__":  # pragma: no cover - a manual entry point until bench archive lands
    import json

    ap = argparse.ArgumentParser(prog="python -m cxrviewer.bench.int8")
    add_arguments(ap)
    print(json.dumps(run(ap.parse_args()), indent=2))
