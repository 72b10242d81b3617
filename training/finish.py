"""The end of a run (rank 0): load the shipped weights (best epoch or the average), choose the
operating threshold on validation, measure the test split with bootstrap intervals, and write
the model directory, its card, ``report.md`` and ``metrics.json``."""

from __future__ import annotations

import datetime as _dt
import json
import time
from pathlib import Path
from typing import Any

from cxrviewer import atomic
from training import checkpoint as C
from training import data as D
from training import loops as L
from training import metrics as M
from training.augment import ShortcutAug
from training.distributed import Dist, unwrap

BEST = "best.pt"
MODEL_DIR = "model"
RESULTS = "metrics.json"


def summary_line(split: str, n: int, mets: dict[str, Any], seconds: float, epochs: int, stopped_early: bool,
                 report: Path) -> str:
    """The run's last line: how long, the held-out metrics with their 95% intervals, the report."""
    from training.progress import fmt_duration

    stop = ", stopped early" if stopped_early else ""
    return (f"done in {fmt_duration(seconds)} ({epochs} epoch{'s' if epochs != 1 else ''}{stop}): {split} ({n} images) "
            f"AUC {M.fmt_ci(mets['auc'])}, accuracy {M.fmt_ci(mets['accuracy'])}, sensitivity "
            f"{M.fmt_ci(mets['recall'])}, specificity {M.fmt_ci(mets['specificity'])}; report: {report}")


def finish_run(args, model, out: Path, dist: Dist, device, amp: bool, spec, caches: dict[str, D.Cache],
               history: list[dict], best_epoch: int, best_auc: float, avg_state: dict[str, Any] | None,
               avg_n: int, stopped_early: bool, desc: dict, leak: str, notes: list[str],
               skipped: list[tuple[str, str]], sources: list[dict], init_note: str | None,
               fold: int | None, t_start: float) -> dict[str, Any]:
    """Evaluate and write what the run ships; returns the results dict (``metrics.json``)."""
    import torch
    from torch.utils.data import DataLoader

    from training import report as R

    val_ds = D.CachedDataset(caches["val"], train=False)
    if avg_state is not None:
        unwrap(model).load_state_dict(avg_state)
        L.recompute_bn(unwrap(model), caches["train"], device, spec, args, amp)
        last = int(history[-1]["epoch"]) if history else args.epochs  # a budget may stop before args.epochs
        selection = f"average of epochs {last - avg_n + 1}-{last} (BatchNorm statistics recomputed on the training split)"
    else:
        best_state = C.load_best(out / BEST) if (out / BEST).exists() else None
        if best_state is not None:
            unwrap(model).load_state_dict(best_state)
        selection = f"epoch {best_epoch + 1} (best validation AUC)"
    shipped = model
    card_base = {
        "name": args.name or f"cxr-resnet50-{_dt.datetime.now(_dt.timezone.utc):%Y%m%d-%H%M}",
        "version": args.model_version,
        "architecture": "resnet50",
        "classes": ["Normal", "Abnormal"],
        "head": {"dropout": args.dropout},
        "preprocessing": spec.to_dict(),
        "threshold": 0.5,
    }
    model_dir = out / MODEL_DIR
    if args.arch == "resnet50":
        from cxrviewer.ml.registry import load_model_dir, save_model_dir

        save_model_dir(unwrap(model), model_dir, card_base, dtype="float16")
        # Evaluate what ships: the fp16 weights read back exactly as the viewer reads them.
        shipped, _ = load_model_dir(model_dir)
        shipped.to(device)
        if args.channels_last:
            shipped = shipped.to(memory_format=torch.channels_last)
    val_loader = DataLoader(val_ds, batch_size=args.batch_size * 2, num_workers=0)
    vy, vs, _ = L.predict(shipped, val_loader, device, spec, args, amp)
    post = _postfit(args, shipped, spec, caches, device, out, model_dir)
    temperature = (post.get("calibration") or {}).get("temperature")
    if temperature:  # the threshold is chosen on the calibrated scale
        vs = post["passes"]["val"].calibrated(temperature)
    if args.target_sensitivity is not None:
        thr = M.sensitivity_threshold(vy, vs, args.target_sensitivity)
        rule = f"highest threshold with validation sensitivity >= {args.target_sensitivity:g}"
    else:
        thr = M.youden_threshold(vy, vs)
        rule = "Youden's J on the validation split"
    if temperature:
        rule += f", on probabilities calibrated with T = {temperature:.3f}"
    evals = {"val": (vy, vs)}
    if "test" in caches:
        test_loader = DataLoader(D.CachedDataset(caches["test"], train=False), batch_size=args.batch_size * 2, num_workers=0)
        ty, ts, _ = L.predict(shipped, test_loader, device, spec, args, amp)
        if temperature:
            ts = post["passes"]["test"].calibrated(temperature)
        evals["test"] = (ty, ts)
    report_split = "test" if "test" in evals else "val"
    ry, rs = evals[report_split]
    mets = M.bootstrap(ry, rs, thr, n=args.bootstrap, seed=args.seed)
    val_mets = M.bootstrap(vy, vs, thr, n=args.bootstrap, seed=args.seed)
    card_metrics = {k: {"value": v["value"], "ci95": v["ci95"], "split": report_split} for k, v in mets.items()}
    card_metrics["val_auc"] = {"value": val_mets["auc"]["value"], "ci95": val_mets["auc"]["ci95"], "split": "val"}
    conf = M.confusion(ry, rs, thr)
    elapsed = time.monotonic() - t_start
    results = {
        "fold": fold,
        "threshold": thr,
        "threshold_rule": rule,
        "report_split": report_split,
        "metrics": mets,
        "val_metrics": val_mets,
        "confusion": conf,
        "best_epoch": best_epoch + 1,
        "best_val_auc": best_auc if avg_state is None else M.roc_auc(vy, vs),
        "selection": selection,
        "epochs_run": len(history),
        "stopped_early": stopped_early,
        "splits": desc,
        "leak_check": leak,
        "notes": notes,
        "skipped": [{"path": p, "reason": r} for p, r in skipped],
        "sources": sources,
        "device": str(device),
        "world_size": dist.world,
        "nodes": dist.nodes,
        "written_by": dist.writer(),  # global rank 0 (node 0), the only process that writes
        "seconds": elapsed,
        "init": init_note,
    }
    try:
        pngs = R.plots(out, history, evals, thr, conf)
    except ImportError:
        pngs = []
        notes.append("matplotlib is not installed: no PNG plots (pip install matplotlib)")
    training_data = {
        "sources": sources,
        "splits": desc,
        "split_method": "patient-wise stratified" + (f", fold {fold + 1}/{args.folds}" if fold is not None else ""),
        "leak_check": leak,
        "skipped_unreadable": len(skipped),
        "image_size": args.image_size,
        "notes": notes,
    }
    card = dict(card_base)
    card.update({
        "threshold": float(thr),
        "threshold_rule": rule,
        "training_data": training_data,
        "metrics": M.jsonable(card_metrics),
        "training": M.jsonable({
            "recipe": {k: getattr(args, k, None) for k in ("epochs", "batch_size", "lr", "weight_decay", "lr_schedule",
                                                       "loss", "class_weights", "dropout", "clip_grad", "patience",
                                                       "hflip", "rotation", "jitter", "pretrained", "seed", "image_size",
                                                       "warmup_epochs", "average_last", "min_input_size", "time_budget",
                                                       "class_map")},
            "shortcut_augmentation": ShortcutAug.from_args(args).to_dict(),
            "freeze": getattr(args, "freeze", "none"),
            "init": init_note,
            "best_epoch": best_epoch + 1,
            "selection": selection,
            "history": [{k: (round(v, 5) if isinstance(v, float) else v) for k, v in h.items()} for h in history],
            "epochs_run": len(history),
            "device": str(device),
            "processes": dist.world,
            "nodes": dist.nodes,
            "written_by": dist.writer(),
            "amp": "bf16" if amp else "off",
            "seconds": round(elapsed, 1),
        }),
        "disclaimer": "Demonstration model, not a diagnostic device.",
        "intended_use": "Research and demonstration only. Not a medical device: not for diagnosis, triage or "
                        "any clinical decision. Retrain and validate on your own site's data before any study use.",
    })
    card.update(post.get("card", {}))
    results["card"] = M.jsonable(card)
    text = R.report_md(card, results, history, pngs)
    if post.get("markdown"):
        text = text.rstrip() + "\n\n" + post["markdown"]
        pngs = pngs + post["pngs"]
    atomic.write_text(out / "report.md", text)
    atomic.write_text(out / RESULTS, json.dumps(M.jsonable({k: v for k, v in results.items() if k != "card"}), indent=1) + "\n")
    if args.arch == "resnet50":
        from cxrviewer.ml.registry import save_model_dir

        save_model_dir(unwrap(model), model_dir, card, dtype="float16")
        atomic.write_text(model_dir / "report.md", text.replace("](", "](./"))
        for png in pngs:
            atomic.write_bytes(model_dir / png.name, png.read_bytes())
        _write_onnx(model_dir)
    m = mets
    print(f"{report_split} ({len(ry)} images) at threshold {thr:.3f} [{rule}]: " +
          ", ".join(f"{k} {M.fmt_ci(m[k])}" for k in M.METRIC_NAMES), flush=True)
    if args.arch == "resnet50":
        print(f"model: {model_dir}", flush=True)
    print(summary_line(report_split, len(ry), mets, elapsed, len(history), stopped_early, out / "report.md"), flush=True)
    if args.json_progress:
        print(json.dumps(M.jsonable({"event": "done", "fold": fold, "report": str(out / "report.md"),
                                     "model_dir": str(model_dir) if args.arch == "resnet50" else None,
                                     "threshold": thr, "auc": m["auc"]})), flush=True)
    return results


def _postfit(args, shipped, spec, caches: dict[str, D.Cache], device, out: Path, model_dir: Path) -> dict[str, Any]:
    """Calibration, OOD gate and localization of the shipped weights (:mod:`training.postfit`);
    ``{}`` for the test-only tiny network. ``card`` holds the entries for the model card."""
    if args.arch != "resnet50":
        return {}
    from training import localization as LOC
    from training import postfit as PF

    boxes = LOC.read_boxes(args.boxes) if getattr(args, "boxes", None) else None
    post = PF.run(shipped, spec, {k: caches[k] for k in ("train", "val", "test") if k in caches}, device, boxes,
                  out, "test", args.batch_size * 2, model_dir=model_dir)
    post["card"] = PF.card_entries(post)
    if post["calibration"]:
        post["card"]["calibration"]["threshold_scale"] = "calibrated"
    if post["ood"]:
        post["card"]["ood"] = post["ood"]
    for n in post["notes"]:
        print(f"note: {n}", flush=True)
    return post


def _write_onnx(model_dir: Path) -> None:
    """``model_dir/model.onnx`` (graph only, weights read from model.safetensors), recorded in
    its card, so the viewer's torch-free base install runs the model as it comes out of training
    (``cxrviewer publish`` would write it otherwise)."""
    try:
        import onnx  # noqa: F401 - the train extra's
    except ImportError:
        print("model.onnx not written (onnx is not installed); `cxrviewer publish` writes it", flush=True)
        return
    from cxrviewer.ml.onnx_model import write_model_onnx

    write_model_onnx(model_dir)
