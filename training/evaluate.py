"""Re-evaluate any model directory (or registry model) on any labelled set.

The images go through the model card's own preprocessing (the viewer's path), the operating
threshold is the card's unless overridden, and every metric gets a 95% bootstrap interval.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cxrviewer import atomic
from cxrviewer.core.errors import CxrError
from training import data as D
from training import metrics as M
from training.args import get_eval_args_parser as get_args_parser  # noqa: E402


def run_args(args: argparse.Namespace, prog: str = "training.evaluate") -> int:
    import sys

    try:
        res = evaluate_model(args)
    except CxrError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        json.dump(res, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return 0


def _scores_torch(model_dir: Path, cache, args: argparse.Namespace, spec) -> tuple[Any, Any, Any, Any]:
    """``(labels, logits (n, 2), pass, pooled layer4 features)`` through torch: one forward gives
    the logits, the features the OOD gate reads and the Abnormal CAMs
    (:func:`training.postfit.model_pass`)."""
    from cxrviewer.ml.model import pick_device
    from cxrviewer.ml.registry import load_model_dir
    from training.postfit import model_pass

    model, _ = load_model_dir(model_dir)
    device = pick_device(args.device)
    model.to(device)
    fwd = model_pass(model, cache, spec, device, args.batch_size)
    return fwd.labels, fwd.logits, fwd, fwd.feats


def _scores_onnx(model_dir: Path, cache, args: argparse.Namespace, spec) -> tuple[Any, Any, Any, Any]:
    """``(labels, logits (n, 2), None, pooled layer4 features)`` through ONNX Runtime (the base
    install has no torch); the same uint8 cache and the same normalisation
    (:func:`cxrviewer.ml.preprocess.normalize`). The logits are recovered from the engine's
    calibrated softmax, ``softmax(z / T)``: ``T · log p`` differs from ``z`` by a constant per
    image (exact up to float32 saturation, |z1 - z0| > ~16 T)."""
    import numpy as np

    from cxrviewer.ml.inference import Engine
    from cxrviewer.ml.preprocess import normalize

    eng = Engine.load(model_dir, backend="onnxruntime", device="cpu" if args.device == "cpu" else "auto")
    scores, feats = [], []
    for i in range(0, len(cache.arrays), max(1, args.batch_size)):
        x = np.stack([normalize(u8, spec) for u8 in cache.arrays[i:i + args.batch_size]]).astype(np.float32)
        probs, _, _, f = eng.forward(x)
        scores.append(probs)
        feats.append(f)
    p = np.concatenate(scores).astype(np.float64) if scores else np.zeros((0, 2))
    logits = np.log(np.clip(p, 1e-30, 1.0)) * eng.temperature
    f = np.concatenate(feats) if feats else np.zeros((0, 2048), np.float32)
    return np.asarray(cache.labels, dtype=np.int64), logits, None, f


def _scores_multilabel(model_dir: Path, cache, args: argparse.Namespace, spec):
    """``(engine, probabilities (n, C), overall score (n,), pooled features)`` of a multi-finding
    model through the engine (ONNX Runtime where installed): the card's scale (op_norm) and
    the summary rule of ``infer`` (highest probability among findings with an operating point)."""
    import numpy as np

    from cxrviewer.ml.inference import Engine
    from cxrviewer.ml.preprocess import normalize

    eng = Engine.load(model_dir, device="cpu" if args.device == "cpu" else "auto")
    probs, feats = [], []
    for i in range(0, len(cache.arrays), max(1, args.batch_size)):
        x = np.stack([normalize(a, spec) for a in cache.arrays[i:i + args.batch_size]]).astype(np.float32)
        p, _, _, f = eng.forward(x)
        probs.append(p)
        feats.append(f)
    P = np.concatenate(probs) if probs else np.zeros((0, len(eng.findings)))
    s = np.array([eng.summary(row)[0] for row in P], dtype=np.float64)
    return eng, P, s, (np.concatenate(feats) if feats else np.zeros((0, eng.features_dim), np.float32))


def _finding_labels(data: list[str], findings) -> dict[str, dict[str, int]]:
    """Per-finding labels of CSV data: columns named like a finding (its name, or its ``p_``
    column without the prefix, any case) holding 0/1 -> ``{real path: {finding: 0/1}}``."""
    import csv
    import os

    from cxrviewer.ml.card import finding_column

    keys = {}
    for f in findings:
        for k in (f.name, f.name.replace("_", " "), finding_column(f.name)[2:]):
            keys[k.lower()] = f.name
    out: dict[str, dict[str, int]] = {}
    for d in data:
        p = Path(d)
        if p.is_dir():
            p = p / "labels.csv"
        if p.suffix.lower() != ".csv" or not p.is_file():
            continue
        with open(p, newline="", encoding="utf-8") as fh:
            rd = csv.DictReader(fh)
            cols = {c: keys[c.strip().lower()] for c in (rd.fieldnames or []) if c.strip().lower() in keys}
            if not cols:
                continue
            for row in rd:
                raw = row.get("path") or ""
                q = Path(raw) if os.path.isabs(raw) else p.parent / raw
                lab = {}
                for c, name in cols.items():
                    v = (row.get(c) or "").strip().lower()
                    if v in ("1", "1.0", "true", "yes", "positive"):
                        lab[name] = 1
                    elif v in ("0", "0.0", "false", "no", "negative"):
                        lab[name] = 0
                out[os.path.realpath(q)] = lab
    return out


def validation_record(mets: dict, thr: float, n: int, n_refused: int, data: list[str],
                      finding: str | None = None) -> dict[str, Any]:
    """One ``local_validations`` record (the keys are a contract, see cxrviewer.ml.validation)."""
    import datetime as _dt

    rec = {
        "n": int(n), "n_refused": int(n_refused),
        "auc": mets["auc"]["value"], "auc_ci": list(mets["auc"]["ci95"]),
        "sensitivity": mets["recall"]["value"], "specificity": mets["specificity"]["value"],
        "threshold": float(thr), "date": _dt.date.today().isoformat(), "data": ", ".join(map(str, data)),
    }
    if finding is not None:
        rec["finding"] = finding
    return M.jsonable(rec)


def evaluate_model(args: argparse.Namespace) -> dict[str, Any]:
    import sys

    from cxrviewer.ml.extras import torch_available
    from cxrviewer.ml.preprocess import PreprocessSpec
    from cxrviewer.ml.registry import Registry, read_card, verify_checksum
    from training.calibration import probabilities
    from training.plan import subsample
    from training.progress import Progress
    from training.train import resolve_model

    if args.model:
        model_dir = resolve_model(args.model)
    else:
        entry = Registry().active()
        if entry is None:
            raise CxrError(None, "no model installed: give --model NAME_OR_DIR")
        model_dir = entry.path
    card = read_card(model_dir)
    verify_checksum(model_dir, card)
    spec = PreprocessSpec.from_dict(card.get("preprocessing"))
    samples: list[D.Sample] = []
    notes: list[str] = []
    for i, pth in enumerate(args.data):
        ds = D.load_dataset(pth, args.format, images=args.images)
        chosen = [s for s in ds.samples if args.split == "all" or s.split == args.split]
        if not chosen:
            raise CxrError(pth, f"no images in split {args.split!r}")
        samples += subsample(chosen, args.max_images, args.seed + i)
        notes += [f"{pth}: {n}" for n in ds.notes]
    prog = Progress(True)
    cache = D.build_cache(samples, spec, workers=args.workers, progress=lambda d, t: prog("decoding", d, t))
    if not cache.samples:
        raise CxrError(None, f"none of the {len(samples)} images could be read")
    D.check_two_classes("evaluation", cache.samples)
    if getattr(args, "boxes", None) and not torch_available():
        from cxrviewer.ml.extras import missing_train_extra

        raise CxrError(None, missing_train_extra("--boxes (Grad-CAM localization)") or "--boxes needs torch")
    per_finding: dict[str, Any] = {}
    temperature = float((card.get("calibration") or {}).get("temperature") or 1.0)
    if card.multi_label:
        import numpy as np

        eng, P, s, feats = _scores_multilabel(Path(model_dir), cache, args, spec)
        y, fwd = cache.labels, None
        s = s.astype("float32")
        thr = float(args.threshold if args.threshold is not None else 0.5)
        import os

        labels = _finding_labels(list(args.data), card.findings)
        paths_ = [os.path.realpath(smp.path) for smp in cache.samples]
        for i, f in enumerate(card.findings):
            idx = [j for j, q in enumerate(paths_) if f.name in labels.get(q, {})]
            yf = np.array([labels[paths_[j]][f.name] for j in idx], dtype=np.int64)
            if len(idx) < 2 or yf.min() == yf.max():
                continue  # no labels for it, or one class only: no AUC
            tf = 0.5 if (card.op_norm or f.op_point is None) else float(f.op_point)
            per_finding[f.name] = {"mets": M.bootstrap(yf, P[idx, i], tf, n=args.bootstrap, seed=args.seed),
                                   "threshold": tf, "n": len(idx), "op_point": f.op_point}
    else:
        y, logits, fwd, feats = (_scores_torch if torch_available() else _scores_onnx)(Path(model_dir), cache, args,
                                                                                        spec)
        # P(Abnormal) = softmax(logits / T) with the card's temperature: the scale of its threshold
        s = probabilities(logits, temperature).astype("float32")
        thr = float(args.threshold if args.threshold is not None else card.get("threshold", 0.5))
    mets = M.bootstrap(y, s, thr, n=args.bootstrap, seed=args.seed)
    conf = M.confusion(y, s, thr)
    desc = D.describe(cache.samples)
    from training.ood_fit import gate_report

    gate = gate_report(Path(model_dir), card, feats, y, s, thr, args.bootstrap, args.seed)
    res = {
        "model": str(card.get("name")), "version": str(card.get("version")), "model_dir": str(model_dir),
        "data": list(map(str, args.data)), "images": desc, "threshold": thr,
        "metrics": mets, "confusion": conf,
        "skipped": [{"path": p, "reason": r} for p, r in cache.skipped], "notes": notes,
        "temperature": temperature, "ood": gate,
    }
    if per_finding:
        res["per_finding"] = {k: {"metrics": v["mets"], "threshold": v["threshold"], "images": v["n"]}
                              for k, v in per_finding.items()}
    if getattr(args, "record", False):
        from cxrviewer.ml.validation import record_validation

        n_ref = int(gate.get("refused", 0)) if gate.get("available") else 0
        rec = validation_record(mets, thr, len(y), n_ref, list(args.data))
        rec["gate"] = "learned check fitted" if gate.get("available") else "header rules only (no fit-ood yet)"
        if per_finding:
            rec["per_finding"] = {k: validation_record(v["mets"], v["threshold"], v["n"], n_ref, list(args.data), k)
                                  for k, v in per_finding.items()}
        where = record_validation(model_dir, card, rec)
        res["recorded"] = {"file": str(where), "record": rec}
        print(f"recorded local validation (AUC {M.fmt_ci(mets['auc'])}, n={len(y)}) -> {where}",
              file=sys.stderr)
    loc = grid = None
    if getattr(args, "boxes", None) and fwd is not None:
        from training.localization import read_boxes
        from training.postfit import localization

        out_dir = Path(args.out) if args.out else None
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
        loc, grid = localization(fwd, cache, spec, read_boxes(args.boxes), "evaluation", out_dir,
                                 temperature=temperature)
        res["localization"] = {k: v for k, v in loc.items() if not k.startswith("_")}
        res["pointing_images"] = loc["_pointing_images"]
    if not getattr(args, "json", False):
        print(f"{card.get('name')} {card.get('version')} on {desc['images']} images "
              f"({desc['normal']} normal / {desc['abnormal']} abnormal, {desc['patients']} patients), threshold {thr:.4f}")
        for k in M.METRIC_NAMES:
            print(f"  {M.METRIC_TITLES[k]:<22} {M.fmt_ci(mets[k])}")
        print(f"  confusion: TP {conf['tp']} FP {conf['fp']} TN {conf['tn']} FN {conf['fn']}")
        print("  " + _gate_line(gate))
        if loc is not None:
            from training.localization import markdown as loc_markdown

            for line in loc_markdown(loc, None, "Localization")[2:]:
                if line and not line.startswith("|---"):
                    print("  " + line)
        if cache.skipped:
            print(f"  skipped {len(cache.skipped)} unreadable images:")
            for p, r in cache.skipped[:20]:
                print(f"    {p}: {r}")
    if args.out:
        from training.report import plots

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        pngs = plots(out, [], {"evaluation": (y, s)}, thr, conf)
        pngs = [p for p in pngs if p.name != "curves.png"]
        (out / "curves.png").unlink(missing_ok=True)
        atomic.write_text(out / "metrics.json", json.dumps(M.jsonable(res), indent=1) + "\n")
        lines = [f"# Evaluation of {card.get('name')} {card.get('version')}", "",
                 "> " + str(card.get("intended_use", "")), "",
                 f"Data: {', '.join(map(str, args.data))}: {desc['images']} images ({desc['normal']} normal / "
                 f"{desc['abnormal']} abnormal, {desc['patients']} patients). Threshold {thr:.4f}.", "",
                 "| metric | value [95% CI] |", "|---|---|"]
        lines += [f"| {M.METRIC_TITLES[k]} | {M.fmt_ci(mets[k])} |" for k in M.METRIC_NAMES]
        lines += ["", f"Confusion: TP {conf['tp']}, FP {conf['fp']}, TN {conf['tn']}, FN {conf['fn']}.", "",
                  _gate_line(gate) + ".", ""]
        lines += [f"![{p.stem}]({p.name})" for p in pngs]
        if loc is not None:
            from training.localization import markdown as loc_markdown

            lines += [""] + loc_markdown(loc, grid.name if grid else None)
        atomic.write_text(out / "report.md", "\n".join(lines) + "\n")
        # with --json, stdout carries the JSON only
        print(f"report: {out / 'report.md'}", file=sys.stderr if getattr(args, "json", False) else sys.stdout)
    return M.jsonable(res)


def _gate_line(gate: dict[str, Any]) -> str:
    if not gate.get("available"):
        return f"OOD gate: none ({gate.get('reason')})"
    acc = gate.get("metrics_accepted")
    return (f"OOD gate: refuses {gate['refused']} of {gate['images']} images ({gate['refusal_rate']:.1%})"
            + (f"; AUC on the accepted images {M.fmt_ci(acc['auc'])}" if acc else ""))


if __name__ == "__main__":
    raise SystemExit(run_args(get_args_parser().parse_args()))
