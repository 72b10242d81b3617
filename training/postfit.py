"""What a model gets once its weights are fixed: calibration, the out-of-distribution gate and the
localization checks, from one forward pass per image.

Used at the end of every training run (:func:`training.finish.finish_run`) and, for a model that
already exists, from the command line::

    python -m training.postfit --model DIR --data RUN_DIR/splits.csv [--boxes CSV] [--write]

``--data`` is a labelled set with a split column (a run's ``splits.csv``): the temperature is
fitted on its ``val`` rows, the OOD gate on ``train`` (threshold on ``val``), the localization
measured on ``test`` (or ``--loc-split``). ``--write`` stores ``calibration``, ``localization``
(and ``ood`` when :mod:`cxrviewer.ml.ood` is there) in the model's card, the threshold on the
calibrated scale, and adds the report section and plots to the model folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cxrviewer import atomic
from cxrviewer.core.errors import CxrError
from training import calibration as K
from training import data as D
from training import localization as LOC
from training import metrics as M

RELIABILITY_PNG = "reliability.png"
CAM_GRID_PNG = "cam_grid.png"


@dataclass
class Pass:
    """One forward pass over a cache: logits ``(N, 2)``, pooled layer4 ``(N, 2048)``, and the
    Abnormal class's non-negative CAM ``(N, h, w)`` (closed form: ``ReLU(w_abnormal · A)``)."""

    logits: np.ndarray
    feats: np.ndarray
    cams: np.ndarray
    labels: np.ndarray
    paths: list[str] = field(default_factory=list)

    def calibrated(self, temperature: float) -> np.ndarray:
        """P(Abnormal) = softmax(logits / T)[:, 1] (float32, like the scores of a prediction)."""
        return K.probabilities(self.logits, temperature).astype(np.float32)


def model_pass(model, cache: D.Cache, spec, device=None, batch_size: int = 32) -> Pass:
    """Logits, features and Abnormal CAMs of every cached image (fp32, inference mode)."""
    import torch

    from cxrviewer.ml.cam import backbone_features, head_logits
    from cxrviewer.ml.model import head_linear

    device = device or next(model.parameters()).device
    model.eval()
    w_abn = head_linear(model).weight[1].detach().float()
    lg, ft, cm = [], [], []
    with torch.inference_mode():
        for i in range(0, len(cache.samples), batch_size):
            u8 = torch.from_numpy(np.ascontiguousarray(cache.arrays[i:i + batch_size]))
            x = D.normalize_batch(u8.to(device), spec.mean, spec.std)
            acts = backbone_features(model, x).float()
            lg.append(head_logits(model, acts).float().cpu().numpy())
            ft.append(acts.mean(dim=(2, 3)).cpu().numpy())
            cm.append(torch.relu(torch.einsum("k,nkhw->nhw", w_abn.to(acts.device), acts)).cpu().numpy())
    n = len(cache.samples)
    return Pass(np.concatenate(lg) if lg else np.zeros((0, 2)), np.concatenate(ft) if ft else np.zeros((0, 2048)),
                np.concatenate(cm) if cm else np.zeros((0, 1, 1)), cache.labels[:n],
                [s.path for s in cache.samples])


def _mapping(path: str, spec):
    from cxrviewer.core.dicom_io import load_image
    from cxrviewer.ml.preprocess import prepare_uint8

    return prepare_uint8(load_image(path), spec)[1]


def localization(p: Pass, cache: D.Cache, spec, boxes: dict | None, split: str, out_dir: Path | None,
                 title: str = "", grid_n: int = 16, temperature: float = 1.0) -> tuple[dict[str, Any], Path | None]:
    """The ``localization`` entry of one split (+ the heatmap grid PNG when ``out_dir``)."""
    from cxrviewer.ml.preprocess import ResizeMapping

    s = spec.size
    items = []
    for i, path in enumerate(p.paths):
        has_box = bool(boxes) and bool(LOC.boxes_for(boxes, path))
        mp = _mapping(path, spec) if has_box else ResizeMapping(s, s, s, s, s)
        pr = float(K.probabilities(p.logits[i:i + 1], temperature)[0])
        items.append({"path": path, "cam": p.cams[i], "mapping": mp,
                      "label_text": f"{D.CLASSES[int(p.labels[i])][0]} p={pr:.2f}"})
    loc = LOC.summarize(items, boxes, split)
    png = None
    if out_dir is not None and items:
        # abnormal images first (the CAM explains Abnormal), a fixed spread over the split
        order = sorted(range(len(items)), key=lambda k: (-int(p.labels[k]), k))
        step = max(1, len(order) // grid_n)
        pick = order[::step][:grid_n]
        png = LOC.heatmap_grid(out_dir / CAM_GRID_PNG, [items[k] for k in pick], [cache.arrays[k] for k in pick],
                               n=grid_n, title=title or f"Abnormal-class Grad-CAM, {split} split")
    return loc, png


def fit_ood(model_dir: Path, train: Pass, val: Pass) -> tuple[dict[str, Any] | None, str]:
    """Fit and save the learned OOD gate with :mod:`cxrviewer.ml.ood` (``(entry, note)``)."""
    try:
        from cxrviewer.ml import ood
    except ImportError:
        return None, "no OOD gate: cxrviewer.ml.ood is not installed in this version"
    gate = ood.fit_feature_gate(train.feats, val.feats, keep=0.95)
    return ood.save_feature_gate(model_dir, gate), ""


def markdown(cal: dict[str, Any] | None, loc: dict[str, Any] | None, ood_entry: dict[str, Any] | None,
             rel_png: str | None, grid_png: str | None, notes: list[str]) -> str:
    lines: list[str] = []
    if cal:
        lines += ["## Calibration", "",
                  f"Temperature scaling fitted on the validation split ({cal['n']} images): T = {cal['temperature']:.3f} "
                  f"(P(Abnormal) = softmax(logits / T)). Expected calibration error of P(Abnormal) ({cal['bins']} bins): "
                  f"{cal['ece_before']:.3f} before, {cal['ece_after']:.3f} after (validation NLL {cal['nll_before']:.3f} "
                  f"-> {cal['nll_after']:.3f}). The operating threshold is on the calibrated scale; AUC and the "
                  "operating point are unchanged by the scaling.", ""]
        if rel_png:
            lines += [f"![reliability]({rel_png})", ""]
    if loc:
        lines += LOC.markdown(loc, grid_png)
    if ood_entry:
        lines += ["## Out-of-distribution gate", "",
                  f"Pooled layer4 features, fitted on the training split, threshold {ood_entry.get('threshold', float('nan')):.3f} "
                  f"keeps {ood_entry.get('keep_rate_val', float('nan')):.3f} of the validation images.", ""]
    lines += [f"Note: {n}" for n in notes]
    return "\n".join(lines).rstrip() + "\n"


def run(model, spec, caches: dict[str, D.Cache], device=None, boxes: dict | None = None,
        out_dir: Path | None = None, loc_split: str = "test", batch_size: int = 32,
        model_dir: Path | None = None) -> dict[str, Any]:
    """Calibration on ``val``, localization on ``loc_split`` (else ``val``), OOD (train→val,
    saved into ``model_dir`` when given). Returns ``{"calibration", "localization", "ood",
    "passes", "pngs", "markdown", "notes"}``."""
    notes: list[str] = []
    passes = {k: model_pass(model, c, spec, device, batch_size) for k, c in caches.items() if c.samples}
    cal = rel = None
    if "val" in passes:
        v = passes["val"]
        try:
            cal = K.calibrate(v.logits, v.labels)
        except ValueError as e:
            notes.append(f"no calibration: {e}")
        if cal and out_dir is not None:
            try:
                rel = K.plot_reliability(out_dir / RELIABILITY_PNG, v.labels, K.probabilities(v.logits),
                                         K.probabilities(v.logits, cal["temperature"]))
            except ImportError:
                notes.append("matplotlib is not installed: no reliability diagram")
    split = loc_split if loc_split in passes else ("val" if "val" in passes else None)
    loc = grid = None
    if split:
        loc, grid = localization(passes[split], caches[split], spec, boxes, split, out_dir,
                                 temperature=cal["temperature"] if cal else 1.0)
    ood_entry = None
    if model_dir is not None and "train" in passes and "val" in passes:
        ood_entry, why = fit_ood(model_dir, passes["train"], passes["val"])
        if why:
            notes.append(why)
    pngs = [p for p in (rel, grid) if p is not None]
    md = markdown(cal, loc, ood_entry, rel.name if rel else None, grid.name if grid else None, notes)
    return {"calibration": cal, "localization": loc, "ood": ood_entry, "passes": passes, "pngs": pngs,
            "markdown": md, "notes": notes}


def card_entries(res: dict[str, Any]) -> dict[str, Any]:
    """The card keys (``calibration``: the contract's four keys + details; ``localization``)."""
    out: dict[str, Any] = {}
    if res.get("calibration"):
        out["calibration"] = {k: v for k, v in res["calibration"].items()}
    if res.get("localization"):
        out["localization"] = {k: v for k, v in res["localization"].items() if not k.startswith("_")}
    return out


# --------------------------------------------------------------------------- command line

def get_args_parser(prog: str = "python -m training.postfit") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Calibrate an existing model, fit its OOD gate and measure "
                                "where its Grad-CAM points, from a labelled set with train/val/test splits.")
    p.add_argument("--model", required=True, help="model directory (or registry name)")
    p.add_argument("--data", required=True, action="append", metavar="PATH",
                   help="labelled set with a split column, e.g. a run's splits.csv (repeatable)")
    p.add_argument("--boxes", default=None, metavar="CSV", help="path,x,y,w,h boxes or NIH's BBox_List_2017.csv.gz")
    p.add_argument("--pointing-data", default=None, metavar="PATH",
                   help="labelled set whose boxed images give the pointing game when the --loc-split images have "
                        "no boxes (e.g. the few boxed images of a validation set); the CAM mass stays on --loc-split")
    p.add_argument("--loc-split", default="test", choices=["train", "val", "test"],
                   help="split whose CAMs are measured (default test)")
    p.add_argument("--out", default=None, metavar="DIR", help="where the plots and postfit.json go (default: the model dir with --write)")
    p.add_argument("--write", action="store_true",
                   help="store calibration, localization, ood and the calibrated threshold in the model's card")
    p.add_argument("--no-ood", action="store_true", help="do not fit the OOD gate")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=32)
    return p


def main(argv: list[str] | None = None) -> int:
    a = get_args_parser().parse_args(argv)
    try:
        res = postfit_model(a)
    except CxrError as e:
        print(f"postfit: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({k: res[k] for k in ("calibration", "localization", "ood", "threshold") if k in res},
                     indent=1, default=str))
    return 0


def postfit_model(a: argparse.Namespace) -> dict[str, Any]:
    from cxrviewer.ml.model import pick_device
    from cxrviewer.ml.preprocess import PreprocessSpec
    from cxrviewer.ml.registry import load_model_dir, read_card
    from training.train import resolve_model

    model_dir = resolve_model(a.model)
    model, card = load_model_dir(model_dir)
    spec = PreprocessSpec.from_dict(card.get("preprocessing"))
    samples = [s for pth in a.data for s in D.load_dataset(pth).samples]
    by = D.group_by_split(samples)
    if not by.get("val"):
        raise CxrError(a.data[0], "no 'val' rows: the temperature needs a validation split")
    device = pick_device(a.device)
    model.to(device)
    caches = {k: D.build_cache(v, spec) for k, v in by.items() if k in ("train", "val", "test") and v}
    out = Path(a.out) if a.out else (model_dir if a.write else None)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    boxes = LOC.read_boxes(a.boxes) if a.boxes else None
    res = run(model, spec, caches, device, boxes, out, a.loc_split, a.batch_size,
              model_dir=model_dir if (a.write and not a.no_ood) else None)
    entries = card_entries(res)
    if a.pointing_data and boxes and entries.get("localization") is not None:
        pts = [s for s in D.load_dataset(a.pointing_data).samples if LOC.boxes_for(boxes, s.path)]
        if not pts:
            raise CxrError(a.pointing_data, "none of its images has a box in --boxes")
        pc = D.build_cache(pts, spec)
        pp = model_pass(model, pc, spec, device, a.batch_size)
        items = [{"path": pth, "cam": pp.cams[i], "mapping": _mapping(pth, spec)} for i, pth in enumerate(pp.paths)]
        pg = LOC.pointing_game(items, boxes)
        entries["localization"].update({"pointing_game": pg["pointing_game"], "centre_baseline": pg["centre_baseline"],
                                        "random_baseline": pg["random_baseline"], "pointing_n": pg["n"],
                                        "pointing_hits": pg["hits"], "pointing_data": str(a.pointing_data)})
        res["localization"]["_pointing_images"] = pg["images"]
        res["markdown"] += (f"\nPointing game on {pg['n']} boxed images of {a.pointing_data}: CAM peak inside a box "
                            f"{pg['hits']}/{pg['n']}; image centre {pg['centre_baseline']:.3f}; a random point "
                            f"{pg['random_baseline']:.3f}.\n")
    thr = float(card.get("threshold", 0.5))
    if a.write:
        card = read_card(model_dir).to_dict()  # re-read: the OOD gate may have written its entry
        if entries.get("calibration") and not card.get("calibration"):
            t = entries["calibration"]["temperature"]
            card["threshold_uncalibrated"] = thr
            thr = K.calibrated_threshold(thr, t)
            card["threshold"] = thr
            entries["calibration"]["threshold_scale"] = "calibrated"
        card.update(entries)
        atomic.write_text(model_dir / "card.json", json.dumps(M.jsonable(card), indent=2) + "\n")
        rep = model_dir / "report.md"
        text = rep.read_text(encoding="utf-8") if rep.exists() else ""
        atomic.write_text(rep, text.rstrip() + "\n\n" + res["markdown"].replace("](", "](./"))
    if out is not None:
        dump = {**entries, "ood": res["ood"], "threshold": thr,
                "pointing_images": (res["localization"] or {}).get("_pointing_images", [])}
        atomic.write_text(out / "postfit.json", json.dumps(dump, indent=1, default=float) + "\n")
    return {**entries, "ood": res["ood"], "threshold": thr}


if __name__ == "__main__":
    sys.exit(main())
