"""Train the Normal/Abnormal ResNet-50 (torchvision reference-script shape): the run's orchestration.

``python -m training --data PATH --out RUN_DIR`` (the same as ``cxrviewer train``) on one
CPU, one GPU, or many on one or more nodes through ``torchrun`` (DDP: each process reads
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``; global rank 0 writes every file). Recipe defaults are the seed's:
Adam lr 1e-4, weight decay 1e-4, batch 32, up to 50 epochs, flip/rotation/jitter
augmentation; plus early stopping on validation AUC, cosine LR, gradient clipping, bf16
autocast on CUDA and channels_last.

The parts live by concern: :mod:`training.args` (the command line), :mod:`training.plan`
(which images go to which split), :mod:`training.distributed` (DDP process group),
:mod:`training.loops` (train_one_epoch / evaluate / predict, losses, weight averaging),
:mod:`training.finish` (final evaluation, card, report); this module sets a run up and
drives its epochs.

Outputs in RUN_DIR: ``checkpoint.pt`` (every epoch, atomic), ``best.pt``, ``model/`` (the
best epoch as a registry-ready model directory with its full card, report and plots),
``report.md``, ``metrics.json``, ``history.json``, PNG plots and TensorBoard scalars in ``tb/``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from cxrviewer import atomic
from cxrviewer.core.errors import CxrError
from training import data as D
from training import distributed as DI
from training import metrics as M
from training.args import get_args_parser
from training.augment import shortcut_aug_from_args
from training.checkpoint import CHECKPOINT
from training.distributed import Dist, unwrap, weights_digest
from training.finish import BEST, MODEL_DIR, RESULTS, finish_run
from training.loops import (
    EpochDataset,
    EpochSampler,
    accumulate,
    class_weights,
    evaluate,
    make_criterion,
    predict,
    recompute_bn,
    train_one_epoch,
)
from training.plan import plan_splits, subsample
from training.progress import Progress, fmt_duration
from training.progress import log as _log

# Re-exported: the torchvision-reference shape (``train.get_args_parser``) and callers that
# imported these from here before the module was split.
__all__ = ["BEST", "MODEL_DIR", "RESULTS", "Dist", "Progress", "cli", "evaluate", "get_args_parser", "main",
           "plan_splits", "predict", "recompute_bn", "resolve_model", "run_args", "run_training", "subsample",
           "train_one_epoch", "weights_digest"]


# --------------------------------------------------------------------------- one run


def _init_from(model, ref: str) -> str:
    """Copy the weights of a model directory (or registry name) into ``model``."""
    from cxrviewer.ml.model import head_linear
    from cxrviewer.ml.registry import load_model_dir

    path = resolve_model(ref)
    src, card = load_model_dir(path)
    if card.multi_label or card.preprocessing.get("channels", 3) != 3:
        raise CxrError(path, "--init needs a two-class, 3-channel model of this project (this one is "
                             f"{card.head_kind} with {card.n_outputs} outputs); training here builds the demo's head")
    head_linear(model).load_state_dict(head_linear(src).state_dict())
    back = {k: v for k, v in src.state_dict().items() if not k.startswith("fc.")}
    model.load_state_dict(back, strict=False)
    return f"{card.get('name')} {card.get('version')} ({path})"


def resolve_model(ref: str) -> Path:
    """A model directory path, or the directory of a registry model called ``ref``
    (a run directory is accepted too: its ``model/``)."""
    p = Path(ref)
    if p.is_dir():
        if (p / "card.json").is_file():
            return p
        if (p / MODEL_DIR / "card.json").is_file():
            return p / MODEL_DIR
        raise CxrError(p, "not a model directory (no card.json) nor a run directory with model/")
    if os.sep in ref or ref.startswith("."):
        raise CxrError(p, "no such model directory")
    from cxrviewer.ml.registry import Registry

    return Registry().get(ref).path


def input_spec(args):
    """The card's preprocessing for ``args``: ``--image-size`` below ``--min-input-size`` is
    reduced to that size, then enlarged to the minimum model input (``detail_size``)."""
    from cxrviewer.ml.preprocess import PreprocessSpec

    size, detail = args.image_size, 0
    if args.min_input_size and args.image_size < args.min_input_size:
        size, detail = args.min_input_size, args.image_size
    return PreprocessSpec(size=size, detail_size=detail, window_policy=args.window_policy, resize=args.resize)


def skipped_folders(sources: list[dict], class_map: list[str] | None = None) -> str:
    """The sentence naming every class-less folder the data sets skipped ("" when none)."""
    from training.layouts import ClassMap, unmatched_line

    folders = [(f, n) for src in sources for f, n in src.get("unmatched_folders", [])]
    return unmatched_line(folders, ClassMap.parse(class_map)) if folders else ""


def run_training(args, splits: dict[str, list[D.Sample]], out: Path, notes: list[str],
                 sources: list[dict], dist: Dist, fold: int | None = None,
                 window: tuple[float, float] | None = None) -> dict[str, Any]:
    """Train on ``splits`` into ``out``; rank 0 writes. Returns the final results dict.

    ``window``: ``(start, deadline)`` in ``time.monotonic()`` seconds: the time this run may
    take (``--time-budget``), counted from ``start`` (before the data was read).
    """
    import torch
    from torch.utils.data import DataLoader

    from cxrviewer.ml.model import pick_device
    from training import budget as B
    from training import checkpoint as C
    from training import nets

    rank0 = dist.rank == 0
    t_start = time.monotonic()
    if not args.resume and (out / CHECKPOINT).exists():
        raise CxrError(out, "already holds a run (checkpoint.pt): continue it with --resume, or choose another --out")
    if dist.enabled and (args.device in ("auto", "cuda")) and torch.cuda.is_available():
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    else:
        device = pick_device(args.device)
    dist.init(device, args.dist_timeout)
    dist.check_same("the split plan or the training arguments", DI.plan_digest(splits, args))
    amp = args.amp == "on" or (args.amp == "auto" and device.type == "cuda")
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    spec = input_spec(args)
    workers = args.workers if args.workers >= 0 else (min(8, max(1, (os.cpu_count() or 2) // dist.local_world)) if device.type == "cuda" else 0)

    # ---- pixels (every rank decodes: datasets here are small, and it keeps ranks independent)
    # one class in a split: say so before minutes of decoding, naming the folders not read
    hint = skipped_folders(sources, args.class_map)
    for name in ("train", "val", "test"):
        if splits.get(name) or name != "test":
            D.check_two_classes(name, splits.get(name, []), hint)
    prog = Progress(rank0, interval=args.log_interval)
    caches: dict[str, D.Cache] = {}
    skipped: list[tuple[str, str]] = []
    for name in ("train", "val", "test"):
        if splits.get(name):
            prog.start()
            caches[name] = D.build_cache(splits[name], spec, workers=max(workers, 2),
                                         progress=lambda d, t, n=name: prog(f"decoding {n}", d, t))
            skipped += caches[name].skipped
    for name in ("train", "val"):
        if name not in caches:
            raise CxrError(None, f"the {name} split is empty: give more data, --val-data, or change --split")
        D.check_two_classes(name, caches[name].samples, hint)
    if "test" in caches:
        D.check_two_classes("test", caches["test"].samples, hint)
    final_splits = {k: c.samples for k, c in caches.items()}
    dist.check_same("the readable images", DI.plan_digest(final_splits, args))  # a node's own copy of the data
    if rank0:  # the exact images of each split, e.g. to evaluate another model on the same test set
        import csv
        import io

        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["path", "label", "patient_id", "split"])
        for k, v in final_splits.items():
            for smp in v:
                w.writerow([os.path.abspath(smp.path), D.CLASSES[smp.label].lower(), smp.patient, k])
        atomic.write_text(out / "splits.csv", buf.getvalue())
    leak = D.leak_line(final_splits)
    desc = {k: D.describe(v) for k, v in final_splits.items()}
    _log("data: " + "; ".join(f"{k} {v['images']} images ({v['normal']} normal / {v['abnormal']} abnormal, {v['patients']} patients)" for k, v in desc.items()), dist.rank)
    _log(leak, dist.rank)
    for n in notes:
        _log(n if n.startswith("warning:") else f"note: {n}", dist.rank)
    if skipped:
        _log(f"skipped {len(skipped)} unreadable images:", dist.rank)
        for pth, why in skipped[:20]:
            _log(f"  {pth}: {why}", dist.rank)

    train_ds = D.CachedDataset(caches["train"], train=True, seed=args.seed, hflip=args.hflip,
                               rotation=args.rotation, jitter=args.jitter,
                               shortcut_aug=shortcut_aug_from_args(args))
    val_ds = D.CachedDataset(caches["val"], train=False)
    base_sampler = DI.shard_sampler(train_ds, dist, args.seed)  # disjoint, equal shards; same permutation on every rank
    sampler = EpochSampler(base_sampler, len(train_ds))
    per_rank = len(base_sampler)
    loader = DataLoader(EpochDataset(train_ds), batch_size=args.batch_size, sampler=sampler,
                        num_workers=workers, pin_memory=device.type == "cuda",
                        drop_last=per_rank > args.batch_size, persistent_workers=workers > 0)

    # ---- model
    torch.manual_seed(args.seed)
    model = nets.build(args.arch, args.dropout)
    init_note = None
    if args.pretrained == "imagenet":
        from cxrviewer.ml.model import imagenet_init

        if args.arch != "resnet50":
            raise CxrError(None, "--pretrained imagenet needs the ResNet-50")
        imagenet_init(model)
        init_note = "ImageNet (torchvision, local cache)"
    if args.init:
        init_note = _init_from(model, args.init)
    frozen = nets.freeze_stages(model, getattr(args, "freeze", "none"))
    if frozen:
        notes.append(f"frozen (not trained): {frozen}")
    model.to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    train_model = model
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        train_model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    cw = class_weights(args.class_weights, train_ds.labels)
    if cw is not None:
        counts = np.bincount(train_ds.labels, minlength=2)
        cw_note = (f"class-balanced loss (weights normal {cw[0]:.3g}, abnormal {cw[1]:.3g}; --class-weights "
                   f"{args.class_weights}): the train split is {max(counts) / max(min(counts), 1):.1f}:1 "
                   f"({counts[0]} normal / {counts[1]} abnormal)")
        if cw_note not in notes:
            notes.append(cw_note)
        _log(f"note: {cw_note}", dist.rank)
    criterion = make_criterion(args.loss, cw, device)
    optimizer = torch.optim.Adam([q for q in model.parameters() if q.requires_grad], lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = max(1, len(loader))

    # ---- speed check: the estimate before the first epoch, and how many epochs fit the budget
    speed = B.measure_speed(model, criterion, train_ds, device, spec, args, amp,
                            log=(lambda m: _log(m, dist.rank)) if device.type == "cpu" else None)
    n_test = len(caches["test"].samples) if "test" in caches else 0
    est = B.estimate(speed, steps_per_epoch, len(train_ds), len(val_ds), n_test, bool(args.average_last))
    deadline = window[1] if window else None
    if window and not args.resume:
        budget_s, spent = window[1] - window[0], time.monotonic() - window[0]
        max_epochs = args.epochs
        chosen = dist.broadcast(B.fit_epochs(est, budget_s, spent, max_epochs))
        _log(B.budget_line(est, budget_s, spent, chosen, max_epochs), dist.rank)
        notes.append(f"--time-budget {fmt_duration(budget_s)}: {chosen} of at most {max_epochs} epochs "
                     f"(about {fmt_duration(est.epoch_s)} per epoch measured on {speed.where()})")
        args.epochs = chosen
    _log(B.estimate_line(est, args.epochs, bool(args.patience) and not args.average_last), dist.rank)
    if rank0 and args.json_progress:
        print(json.dumps({"event": "estimate", "fold": fold, "epochs": args.epochs, "epoch_seconds": round(est.epoch_s, 3),
                          "run_seconds": round(est.run_s(args.epochs), 1), "images_per_second": round(speed.images_per_s, 2),
                          "where": speed.where()}), flush=True)
    total_steps = [steps_per_epoch * args.epochs]  # a --time-budget re-plan may shorten it
    warm = int(args.warmup_epochs * steps_per_epoch)

    def lr_factor(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        if args.lr_schedule == "constant":
            return 1.0
        t = (step - warm) / max(1, total_steps[0] - warm)
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)

    # ---- resume
    start_epoch, best_auc, best_loss, best_epoch, bad_epochs, history = 0, -1.0, math.inf, -1, 0, []
    avg_state: dict[str, Any] | None = None
    avg_n = 0
    if args.average_last and args.patience:
        args.patience = 0
        notes.append(f"weights averaged over the last {args.average_last} epochs; early stopping off")
    ck_path = out / CHECKPOINT
    ck = None
    if args.resume:
        if fold is None:
            ck = C.load(args.resume)
        elif ck_path.exists():
            ck = C.load(ck_path)
    if ck is not None:
        unwrap(model).load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        scheduler.load_state_dict(ck["scheduler"])
        start_epoch = int(ck["epoch"]) + 1
        best_auc, best_epoch = float(ck["best_auc"]), int(ck["best_epoch"])
        best_loss = float(ck.get("best_loss", math.inf))
        bad_epochs = int(ck["bad_epochs"])
        history = list(ck.get("history", []))
        avg_state, avg_n = ck.get("avg_state"), int(ck.get("avg_n", 0))
        C.set_rng_state(ck["rng"])
        old = ck.get("args", {})
        diff = [k for k in ("seed", "lr", "batch_size", "image_size", "epochs", "loss", "arch")
                if k in old and old[k] != getattr(args, k)]
        if diff:
            _log(f"warning: resuming with different {', '.join(diff)} than the checkpoint: the run will not match an uninterrupted one", dist.rank)
        _log(f"resumed after epoch {start_epoch} (best val AUC {best_auc:.4f} at epoch {best_epoch + 1})", dist.rank)
    else:
        torch.manual_seed(args.seed)  # same RNG stream whether or not an init file was read

    writer = None
    if rank0 and args.tensorboard:
        try:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(out / "tb"), purge_step=start_epoch + 1 if start_epoch else None)
        except ImportError:
            _log("note: tensorboard is not installed: no TensorBoard scalars (pip install tensorboard)")

    _log(f"training {args.arch} on {device} x{dist.world} (amp {'bf16' if amp else 'off'}, channels_last {args.channels_last}, "
         f"{steps_per_epoch} steps/epoch, batch {args.batch_size}/process){' from ' + init_note if init_note else ''}", dist.rank)
    stopped_early = False
    epoch_secs: list[float] = []
    for epoch in range(start_epoch, args.epochs):
        if args.patience and bad_epochs >= args.patience:
            stopped_early = True
            break
        if epoch >= args.epochs:  # the budget re-plan below shortened the run
            break
        t0 = time.monotonic()
        per_epoch = sum(epoch_secs[-3:]) / len(epoch_secs[-3:]) if epoch_secs else est.epoch_s
        prog.after_s = (args.epochs - epoch - 1) * per_epoch + est.finish_s
        sampler.set_epoch(epoch)
        tr = train_one_epoch(train_model, criterion, optimizer, scheduler, loader, device, epoch, args, spec,
                             dist, amp, prog if rank0 else None)
        dist.sync_buffers(model)
        if args.average_last and epoch >= args.epochs - args.average_last:
            avg_state, avg_n = accumulate(avg_state, avg_n, unwrap(model).state_dict())
        va = evaluate(model, criterion, val_ds, device, spec, args, dist, amp)
        lr_now = optimizer.param_groups[0]["lr"]
        # Ties in AUC (common on small or easy validation sets) go to the lower validation loss.
        improved = va["auc"] > best_auc or (va["auc"] == best_auc and va["loss"] < best_loss)
        if improved:
            best_auc, best_loss, best_epoch, bad_epochs = va["auc"], va["loss"], epoch, 0
        else:
            bad_epochs += 1
        rec = {"epoch": epoch + 1, "train_loss": tr["loss"], "train_accuracy": tr["accuracy"], "train_auc": tr["auc"],
               "val_loss": va["loss"], "val_accuracy": va["accuracy"], "val_auc": va["auc"], "lr": lr_now,
               "seconds": time.monotonic() - t0, "best": improved}
        history.append(rec)
        epoch_secs.append(rec["seconds"])
        if deadline is not None and epoch + 1 < args.epochs:
            # Re-plan on the epochs actually measured (the machine's load changes): fewer epochs,
            # and the cosine schedule ends with the new last one instead of being cut off.
            per = sum(epoch_secs[-3:]) / len(epoch_secs[-3:])
            fit = dist.broadcast(epoch + 1 + max(0, math.floor((deadline - time.monotonic() - est.finish_s) / per)))
            if fit < args.epochs:
                stopped_early = True
                msg = (f"time budget: epochs take about {fmt_duration(per)} here (speed check: "
                       f"{fmt_duration(est.epoch_s)}): " + (f"{fit} epochs in all instead of {args.epochs}, the learning-rate "
                       "schedule shortened to match" if fit > epoch + 1 else
                       f"stopping after epoch {epoch + 1}/{args.epochs}: another would overrun the budget"))
                notes.append(msg)
                _log(msg, dist.rank)
                args.epochs = fit
                total_steps[0] = steps_per_epoch * fit
        if rank0:
            if writer:
                for key, tag in (("loss", "Loss"), ("accuracy", "Accuracy"), ("auc", "AUC")):
                    writer.add_scalar(f"{tag}/train", tr[key], epoch + 1)
                    writer.add_scalar(f"{tag}/val", va[key], epoch + 1)
                writer.add_scalar("LR", lr_now, epoch + 1)
                writer.flush()
            if improved:
                C.save(out / BEST, {"model": {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()},
                                    "epoch": epoch, "val_auc": best_auc})
            C.save(ck_path, {"model": unwrap(model).state_dict(), "optimizer": optimizer.state_dict(),
                             "scheduler": scheduler.state_dict(), "epoch": epoch, "best_auc": best_auc,
                             "best_loss": best_loss, "best_epoch": best_epoch, "bad_epochs": bad_epochs, "history": history,
                             "rng": C.rng_state(), "args": C.plain_args(args), "fold": fold, **DI.stamp(dist),
                             **({"avg_state": avg_state, "avg_n": avg_n} if avg_state is not None else {})})
            atomic.write_text(out / "history.json", json.dumps(M.jsonable(history), indent=1) + "\n")
            line = (f"epoch {epoch + 1}/{args.epochs} train loss {tr['loss']:.4f} acc {tr['accuracy']:.3f} | "
                    f"val loss {va['loss']:.4f} acc {va['accuracy']:.3f} AUC {M.fmt(va['auc'], 4)}"
                    f"{' *' if improved else ''} | lr {lr_now:.2e} | {rec['seconds']:.1f}s")
            print(line, flush=True)
            if args.json_progress:
                print(json.dumps(M.jsonable({"event": "epoch", "fold": fold, **rec, "epochs": args.epochs})), flush=True)
        dist.barrier()
    else:
        stopped_early = False
    if writer:
        writer.close()
    if dist.enabled:
        print(f"rank {dist.rank}/{dist.world} final weights sha256 {weights_digest(model)}", file=sys.stderr, flush=True)

    results: dict[str, Any] = {}
    if rank0:
        results = finish_run(args, model, out, dist, device, amp, spec, caches, history, best_epoch, best_auc,
                             avg_state, avg_n, stopped_early, desc, leak, notes, skipped, sources, init_note,
                             fold, t_start)
    dist.barrier()
    return results


# --------------------------------------------------------------------------- entry points

def main(args) -> dict[str, Any]:
    """Run what ``args`` asks (one training, or K folds). Raises CxrError on bad input."""
    import torch

    # run_training turns on deterministic algorithms for CPU runs; callers in the same
    # process (the app's tests, a notebook) get their setting back.
    prev = torch.are_deterministic_algorithms_enabled()
    try:
        return _main(args)
    finally:
        torch.use_deterministic_algorithms(prev)


def _first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet (what a mkdir creates)."""
    p = path.absolute()
    if p.exists():
        return None
    while not p.parent.exists() and p.parent != p:
        p = p.parent
    return p


def _main(args) -> dict[str, Any]:
    import training

    # A budget counts from the process start (importing torch takes a while on a busy
    # machine); a second run in the same process (tests, a notebook) counts from its call.
    t_begin = time.monotonic()
    if training.STARTED is not None:
        t_begin, training.STARTED = training.STARTED, None
    dist = Dist()
    out = Path(args.out)
    if args.resume is None and (job := DI.same_job(out)) is not None:
        args.resume = str(out)  # torchrun (--max-restarts) or a requeue re-ran this job's command
        _log(f"torchrun job {job}: continuing its checkpoint in {out}", dist.rank)
    if args.resume is None and (out / CHECKPOINT).exists():
        raise CxrError(out, "already holds a run (checkpoint.pt): continue it with --resume "
                            f"{out}, or choose another --out")
    from training.args import resolve_lr

    args.lr = resolve_lr(args)  # what the card, the checkpoint and a --resume compare
    if args.epochs < 1 or args.batch_size < 1 or args.image_size < 16:
        raise CxrError(None, "--epochs and --batch-size must be >= 1 and --image-size >= 16")
    if args.folds == 1 or args.folds < 0:
        raise CxrError(None, "--folds needs at least 2 (or 0 for a single train/val/test split)")
    if args.fold is not None and not (args.folds and 0 <= args.fold < args.folds):
        raise CxrError(None, f"--fold {args.fold} needs --folds K with 0 <= fold < K")
    # Fail before decoding any image when the starting weights are not there.
    if args.pretrained == "imagenet":
        from cxrviewer.ml.model import imagenet_checkpoint, imagenet_init

        if args.arch != "resnet50":
            raise CxrError(None, "--pretrained imagenet needs the ResNet-50")
        if imagenet_checkpoint() is None:
            imagenet_init(None)  # raises the CxrError that names the offline alternatives
    if args.init:
        from cxrviewer.ml.registry import read_card

        read_card(resolve_model(args.init))
    if args.estimate_only:
        from training.budget import estimate_only

        splits, _notes, sources = plan_splits(args)
        return estimate_only(args, splits, sources, dist)
    created = _first_missing(out) if dist.rank == 0 else None
    if dist.rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    try:
        return _run(args, out, dist, t_begin)
    except BaseException:
        # A run that ends before its first checkpoint leaves nothing behind; a folder that
        # existed before the run is never removed.
        if created is not None and created.is_dir() and not any(created.rglob(CHECKPOINT)):
            import shutil

            shutil.rmtree(created, ignore_errors=True)
        raise


def _run(args, out: Path, dist: Dist, t_begin: float) -> dict[str, Any]:
    from training import report as R

    budget = args.time_budget
    splits, notes, sources = plan_splits(args)
    for n in notes:
        if n.startswith("warning:") or ": warning:" in n:
            print(n, file=sys.stderr, flush=True)  # before minutes of decoding, where it is seen
    if not args.folds:
        return run_training(args, splits, out, notes, sources, dist,
                            window=(t_begin, t_begin + budget) if budget else None)
    max_epochs = args.epochs
    pool = splits["train"] + splits["val"]
    folds = D.kfold_patients(pool, args.folds, args.seed)
    results = []
    todo = [args.fold] if args.fold is not None else list(range(args.folds))
    for k in todo:
        fold_splits = {"train": [s for j, f in enumerate(folds) if j != k for s in f], "val": folds[k],
                       "test": splits["test"]}
        fold_dir = out / f"fold{k + 1}"
        done = fold_dir / RESULTS
        if args.resume and done.exists():
            results.append(json.loads(done.read_text()))
            _log(f"fold {k + 1}/{args.folds}: already done", dist.rank)
            continue
        _log(f"=== fold {k + 1}/{args.folds} ===", dist.rank)
        if dist.rank == 0:
            fold_dir.mkdir(parents=True, exist_ok=True)
        fnotes = notes + [f"fold {k + 1} of {args.folds}: patient-wise stratified K-fold (seed {args.seed})"]
        args.epochs = max_epochs  # each fold fits its own share of the budget
        window = None
        if budget:  # the time left, shared equally by the folds still to run
            now = time.monotonic()
            window = (now, now + (t_begin + budget - now) / (len(todo) - todo.index(k)))
        results.append(run_training(args, fold_splits, fold_dir, fnotes, sources, dist, fold=k, window=window))
    if dist.rank == 0 and args.fold is None:
        summary = R.cv_summary(out, results, args.folds)
        return summary
    return {"folds": results}


def cli(argv: list[str] | None = None, prog: str = "python -m training") -> int:
    """Parse and run (``python -m training``)."""
    return run_args(get_args_parser(prog=prog).parse_args(argv), prog)


def _sigterm_as_interrupt():
    """SIGTERM (the app's Cancel, ``kill``, a scheduler's stop) ends the run like Ctrl+C, so the
    cleanup runs (a run without a checkpoint removes the output folder it created). Returns the
    previous handler (None where signals cannot be set: Windows' SIGTERM, not the main thread)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        return None

    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError):
        return None


def run_args(args: argparse.Namespace, prog: str = "python -m training") -> int:
    """Run parsed arguments; expected failures become one line on stderr (exit 2)."""
    import signal

    if getattr(args, "check_data", False):  # before main(): no torch import for a data check
        from training.plan import check_data

        res = check_data(args)
        print(json.dumps(res) if args.json_progress else res["message"], flush=True)
        if not res["ok"]:
            print(f"{'cxrviewer' if prog.startswith('cxrviewer') else 'training'}: error: {res['message']}", file=sys.stderr)
        return 0 if res["ok"] else 2
    prev = _sigterm_as_interrupt()
    try:
        main(args)
    except CxrError as e:
        print(f"{'cxrviewer' if prog.startswith('cxrviewer') else 'training'}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        out = Path(args.out)
        if any(out.rglob(CHECKPOINT)) if out.is_dir() else False:
            print("interrupted: continue with --resume " + str(args.out), file=sys.stderr)
        else:
            print("interrupted before the first checkpoint: nothing was saved", file=sys.stderr)
        return 130
    finally:
        if prev is not None:
            signal.signal(signal.SIGTERM, prev)
        DI.close_group()
    return 0
