"""Train the Normal/Abnormal ResNet-50 (torchvision reference-script shape).

``python -m training --data PATH --out RUN_DIR`` (the same as ``cxrviewer train``) on one
CPU, one GPU, or many through ``torchrun`` (DDP: each process reads ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``; rank 0 writes every file). Recipe defaults are the seed's:
Adam lr 1e-4, weight decay 1e-4, batch 32, up to 50 epochs, flip/rotation/jitter
augmentation; plus early stopping on validation AUC, cosine LR, gradient clipping, bf16
autocast on CUDA and channels_last.

Outputs in RUN_DIR: ``checkpoint.pt`` (every epoch, atomic), ``best.pt``, ``model/`` (the
best epoch as a registry-ready model directory with its full card, report and plots),
``report.md``, ``metrics.json``, ``history.json``, PNG plots and TensorBoard scalars in ``tb/``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
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
from training import metrics as M
from training.checkpoint import CHECKPOINT

BEST = "best.pt"
MODEL_DIR = "model"
RESULTS = "metrics.json"


from training.args import get_args_parser  # noqa: E402,F401  (re-exported: torchvision-reference shape)

# --------------------------------------------------------------------------- small helpers

def _log(msg: str, rank: int = 0) -> None:
    if rank == 0:
        print(msg, flush=True)


class Progress:
    """Epoch/batch progress with ETA on stderr, only on a terminal (and rank 0)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.t0 = time.monotonic()

    def start(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self, label: str, done: int, total: int, extra: str = "") -> None:
        if not self.enabled or total <= 0:
            return
        now = time.monotonic()
        if done < total and now - getattr(self, "_last", 0.0) < 0.1:  # ~10 redraws a second at most
            return
        self._last = now
        el = now - self.t0
        eta = el / max(done, 1) * (total - done)
        width = 24
        bar = "#" * int(width * done / total) + "-" * (width - int(width * done / total))
        sys.stderr.write(f"\r{label} [{bar}] {done}/{total} ETA {eta:5.0f}s {extra}   ")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


class Dist:
    """Process-group facts; ``world == 1`` without torchrun."""

    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(self.world)))
        self.enabled = self.world > 1

    def init(self, device) -> None:
        if not self.enabled:
            return
        import torch.distributed as dist

        if not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            dist.init_process_group(backend=backend)

    def gather(self, obj: Any) -> list[Any]:
        if not self.enabled:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: Any) -> Any:
        if not self.enabled:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def sync_buffers(self, model) -> None:
        """Rank 0's BatchNorm running statistics to every rank.

        DDP broadcasts buffers at the start of each forward, but the last forward of an epoch
        updates them with each rank's own batch: without this, ranks would evaluate and save
        slightly different models.
        """
        if not self.enabled:
            return
        import torch.distributed as dist

        for b in model.buffers():
            dist.broadcast(b, src=0)

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def _unwrap(model):
    return getattr(model, "module", model)


def weights_digest(model) -> str:
    """sha256 over every tensor of the state dict (bytes, in key order)."""
    h = hashlib.sha256()
    for k, v in _unwrap(model).state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def class_weights(spec: str, labels: np.ndarray) -> list[float] | None:
    s = (spec or "none").strip().lower()
    if s == "none":
        return None
    if s == "balanced":
        c = np.bincount(labels, minlength=2).astype(float)
        return [float(len(labels) / (2 * c[i])) for i in range(2)]
    try:
        w = [float(x) for x in s.split(",")]
    except ValueError:
        w = []
    if len(w) != 2 or any(x <= 0 for x in w):
        raise CxrError(None, f"--class-weights {spec!r}: expected none, balanced or two positive numbers W0,W1")
    return w


def make_criterion(kind: str, weights: list[float] | None, device):
    import torch
    from torch import nn

    w = torch.tensor(weights, dtype=torch.float32, device=device) if weights else None
    if kind == "ce":
        return nn.CrossEntropyLoss(weight=w)

    class OneHotBCE(nn.Module):
        """The seed's BCEWithLogits on one-hot targets; class weights as CE's weighted mean."""

        def forward(self, logits, y):
            t = torch.nn.functional.one_hot(y, 2).to(logits.dtype)
            per = torch.nn.functional.binary_cross_entropy_with_logits(logits, t, reduction="none").mean(1)
            if w is None:
                return per.mean()
            wy = w[y]
            return (per * wy).sum() / wy.sum()

    return OneHotBCE()


def subsample(samples: list[D.Sample], n: int, seed: int) -> list[D.Sample]:
    """At most ``n`` samples, proportionally from each (split, label) group, seeded."""
    if n <= 0 or len(samples) <= n:
        return samples
    rng = np.random.default_rng(seed)
    groups: dict[tuple, list[D.Sample]] = {}
    for s in samples:
        groups.setdefault((s.split or "", s.label), []).append(s)
    out = []
    for key in sorted(groups):
        g = groups[key]
        k = min(len(g), max(2, round(n * len(g) / len(samples))))
        idx = rng.permutation(len(g))[:k]
        out += [g[i] for i in sorted(idx)]
    return out


# --------------------------------------------------------------------------- data plan

def plan_splits(args) -> tuple[dict[str, list[D.Sample]], list[str], list[dict]]:
    """Read every ``--*data`` set and decide train/val/test (patient-wise, leak-free).

    Returns ``(splits, notes, sources)``; with ``--folds`` the ``"train"`` entry is the pool
    that the folds divide.
    """
    notes: list[str] = []
    sources: list[dict] = []

    def read(paths: list[str], role: str) -> list[D.DataSet]:
        out = []
        for i, pth in enumerate(paths):
            ds = D.load_dataset(pth, args.format, images=args.images)
            ds.samples = subsample(ds.samples, args.max_images, args.seed + i)
            for n in ds.notes:
                notes.append(f"{pth}: {n}")
            sources.append({"path": str(pth), "role": role, "format": ds.fmt, **D.describe(ds.samples)})
            out.append(ds)
        return out

    main_sets = read(args.data, "split")
    extra_train = [s for ds in read(args.train_data, "train") for s in ds.samples]
    val_fixed = [s for ds in read(args.val_data, "val") for s in ds.samples]
    test_fixed = [s for ds in read(args.test_data, "test") for s in ds.samples]
    predefined: dict[str, list[D.Sample]] = {"train": [], "val": [], "test": []}
    free: list[D.Sample] = []
    for ds in main_sets:
        for s in ds.samples:
            (predefined[s.split] if s.split else free).append(s)
        if ds.has_splits:
            notes.append(f"{ds.source}: predefined splits kept ({', '.join(f'{k} {len(v)}' for k, v in D.group_by_split(ds.samples).items())})")
    val_fixed += predefined["val"]
    test_fixed += predefined["test"]
    explicit = args.split is not None
    f_tr, f_va, f_te = args.split if explicit else (0.7, 0.1, 0.2)
    if args.folds:
        if args.val_data:
            raise CxrError(None, "--folds divides the data into validation folds itself: drop --val-data")
        f_va = 0.0
    if val_fixed and not explicit:
        f_va = 0.0
    if test_fixed and not explicit:
        f_te = 0.0
    candidates = free + predefined["train"]
    if candidates and (f_va > 0 or f_te > 0):
        cut = D.split_patients(candidates, (f_tr, f_va, f_te), args.seed)
        notes.append(f"patient-wise stratified split {f_tr:g}/{f_va:g}/{f_te:g} (seed {args.seed}) of {len(candidates)} images")
    else:
        cut = {"train": candidates, "val": [], "test": []}
    splits = {"train": cut["train"] + extra_train, "val": cut["val"] + val_fixed,
              "test": cut["test"] + test_fixed}
    notes += D.remove_leaks(splits)
    return splits, notes, sources


# --------------------------------------------------------------------------- loops

def _autocast(device, enabled: bool):
    import contextlib

    import torch

    if not enabled or device.type not in ("cuda", "cpu"):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _inputs(u8, spec, device, channels_last: bool):
    import torch

    x = D.normalize_batch(u8.to(device, non_blocking=True), spec.mean, spec.std)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def train_one_epoch(model, criterion, optimizer, scheduler, loader, device, epoch: int, args, spec,
                    dist: Dist, amp: bool, progress: Progress | None = None) -> dict[str, float]:
    """One pass over the (sharded) training set; returns loss, accuracy and AUC over all ranks."""
    import torch

    model.train()
    loss_sum, n_seen = 0.0, 0
    scores, labels = [], []
    total = len(loader)
    if progress:
        progress.start()
    for step, (u8, y) in enumerate(loader, start=1):
        x = _inputs(u8, spec, device, args.channels_last)
        y = y.to(device, non_blocking=True)
        with _autocast(device, amp):
            logits = model(x)
            loss = criterion(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if args.clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip_grad)
        optimizer.step()
        scheduler.step()
        if not math.isfinite(loss.item()):
            raise CxrError(None, f"loss became {loss.item()} at epoch {epoch + 1} step {step}: lower --lr")
        loss_sum += loss.item() * len(y)
        n_seen += len(y)
        scores.append(torch.softmax(logits.detach().float(), 1)[:, 1].cpu().numpy())
        labels.append(y.cpu().numpy())
        if progress:
            progress(f"epoch {epoch + 1}/{args.epochs} train", step, total, f"loss {loss_sum / n_seen:.4f}")
    s = np.concatenate(scores) if scores else np.zeros(0)
    lab = np.concatenate(labels) if labels else np.zeros(0, dtype=int)
    parts = dist.gather((loss_sum, n_seen, s, lab))
    loss_sum = sum(p[0] for p in parts)
    n_seen = sum(p[1] for p in parts)
    s = np.concatenate([p[2] for p in parts])
    lab = np.concatenate([p[3] for p in parts])
    return {"loss": loss_sum / max(n_seen, 1), "accuracy": float(np.mean((s >= 0.5) == lab)) if len(lab) else float("nan"),
            "auc": M.roc_auc(lab, s)}


def predict(model, loader, device, spec, args, amp: bool, criterion=None) -> tuple[np.ndarray, np.ndarray, float]:
    """``(labels, P(Abnormal), mean loss)`` over a loader (this process's shard)."""
    import torch

    model.eval()
    scores, labels, loss_sum, n = [], [], 0.0, 0
    with torch.inference_mode():
        for u8, y in loader:
            x = _inputs(u8, spec, device, args.channels_last)
            y = y.to(device)
            with _autocast(device, amp):
                logits = model(x).float()
            if criterion is not None:
                loss_sum += criterion(logits, y).item() * len(y)
            n += len(y)
            scores.append(torch.softmax(logits, 1)[:, 1].cpu().numpy())
            labels.append(y.cpu().numpy())
    s = np.concatenate(scores) if scores else np.zeros(0, dtype=np.float32)
    lab = np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64)
    return lab, s, loss_sum / max(n, 1)


def evaluate(model, criterion, dataset, device, spec, args, dist: Dist, amp: bool) -> dict[str, Any]:
    """Validation: every rank predicts a strided shard; results are gathered in dataset order."""
    from torch.utils.data import DataLoader, Subset

    idx = list(range(dist.rank, len(dataset), dist.world))
    loader = DataLoader(Subset(dataset, idx), batch_size=args.batch_size * 2, shuffle=False,
                        num_workers=0, pin_memory=device.type == "cuda")
    lab, s, loss = predict(model, loader, device, spec, args, amp, criterion)
    parts = dist.gather((idx, lab, s, loss, len(idx)))
    order = np.concatenate([np.asarray(p[0], dtype=np.int64) for p in parts])
    lab = np.concatenate([p[1] for p in parts])[np.argsort(order)]
    s = np.concatenate([p[2] for p in parts])[np.argsort(order)]
    n_tot = sum(p[4] for p in parts)
    loss = sum(p[3] * p[4] for p in parts) / max(n_tot, 1)
    return {"loss": loss, "accuracy": float(np.mean((s >= 0.5) == lab)), "auc": M.roc_auc(lab, s),
            "labels": lab, "scores": s}


def _accumulate(avg: dict[str, Any] | None, n: int, state: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Running mean of float tensors (integer buffers: the latest value)."""
    import torch

    if avg is None:
        return {k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).clone()
                for k, v in state.items()}, 1
    for k, v in state.items():
        v = v.detach().to("cpu")
        if v.is_floating_point():
            avg[k] += (v.float() - avg[k]) / (n + 1)
        else:
            avg[k] = v.clone()
    return avg, n + 1


def recompute_bn(model, cache: D.Cache, device, spec, args, amp: bool) -> None:
    """BatchNorm running statistics of (averaged) weights, from one pass over the unaugmented
    training images (as torch.optim.swa_utils.update_bn does)."""
    import torch
    from torch.utils.data import DataLoader

    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    moms = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the pass
    model.train()
    loader = DataLoader(D.CachedDataset(cache, train=False), batch_size=args.batch_size, shuffle=False, num_workers=0)
    with torch.no_grad():
        for u8, _ in loader:
            with _autocast(device, amp):
                model(_inputs(u8, spec, device, args.channels_last))
    for m, mom in zip(bns, moms, strict=True):
        m.momentum = mom
    model.eval()


# --------------------------------------------------------------------------- one run

class EpochSampler:
    """Yields ``epoch * N + index`` so the dataset knows the epoch even in persistent workers."""

    def __init__(self, base, n: int) -> None:
        self.base, self.n, self.epoch = base, n, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.base.set_epoch(epoch)

    def __iter__(self):
        off = self.epoch * self.n
        return (off + i for i in self.base)

    def __len__(self) -> int:
        return len(self.base)


class EpochDataset:
    def __init__(self, ds: D.CachedDataset) -> None:
        self.ds = ds
        self.n = len(ds)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, k: int):
        self.ds.epoch = k // self.n
        return self.ds[k % self.n]


def _init_from(model, ref: str) -> str:
    """Copy the weights of a model directory (or registry name) into ``model``."""
    from cxrviewer.ml.model import head_linear
    from cxrviewer.ml.registry import load_model_dir

    path = resolve_model(ref)
    src, card = load_model_dir(path)
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


def run_training(args, splits: dict[str, list[D.Sample]], out: Path, notes: list[str],
                 sources: list[dict], dist: Dist, fold: int | None = None) -> dict[str, Any]:
    """Train on ``splits`` into ``out``; rank 0 writes. Returns the final results dict."""
    import torch
    from torch.utils.data import DataLoader, DistributedSampler

    from cxrviewer.ml.model import pick_device
    from cxrviewer.ml.preprocess import PreprocessSpec
    from training import checkpoint as C
    from training import nets
    from training import report as R

    rank0 = dist.rank == 0
    t_start = time.monotonic()
    if not args.resume and (out / CHECKPOINT).exists():
        raise CxrError(out, "already holds a run (checkpoint.pt): continue it with --resume, or choose another --out")
    if dist.enabled and (args.device in ("auto", "cuda")) and torch.cuda.is_available():
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    else:
        device = pick_device(args.device)
    dist.init(device)
    amp = args.amp == "on" or (args.amp == "auto" and device.type == "cuda")
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    spec = PreprocessSpec(size=args.image_size, window_policy=args.window_policy, resize=args.resize)
    workers = args.workers if args.workers >= 0 else (min(8, max(1, (os.cpu_count() or 2) // dist.local_world)) if device.type == "cuda" else 0)

    # ---- pixels (every rank decodes: datasets here are small, and it keeps ranks independent)
    prog = Progress(rank0)
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
        D.check_two_classes(name, caches[name].samples)
    if "test" in caches:
        D.check_two_classes("test", caches["test"].samples)
    final_splits = {k: c.samples for k, c in caches.items()}
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
        _log(f"note: {n}", dist.rank)
    if skipped:
        _log(f"skipped {len(skipped)} unreadable images:", dist.rank)
        for pth, why in skipped[:20]:
            _log(f"  {pth}: {why}", dist.rank)

    train_ds = D.CachedDataset(caches["train"], train=True, seed=args.seed, hflip=args.hflip,
                               rotation=args.rotation, jitter=args.jitter)
    val_ds = D.CachedDataset(caches["val"], train=False)
    base_sampler = DistributedSampler(train_ds, num_replicas=dist.world, rank=dist.rank, shuffle=True,
                                      seed=args.seed, drop_last=False)
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
    model.to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    train_model = model
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        train_model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    cw = class_weights(args.class_weights, train_ds.labels)
    criterion = make_criterion(args.loss, cw, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = max(1, len(loader))
    total_steps = steps_per_epoch * args.epochs
    warm = int(args.warmup_epochs * steps_per_epoch)

    def lr_factor(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        if args.lr_schedule == "constant":
            return 1.0
        t = (step - warm) / max(1, total_steps - warm)
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
        _unwrap(model).load_state_dict(ck["model"])
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
    for epoch in range(start_epoch, args.epochs):
        if args.patience and bad_epochs >= args.patience:
            stopped_early = True
            break
        t0 = time.monotonic()
        sampler.set_epoch(epoch)
        tr = train_one_epoch(train_model, criterion, optimizer, scheduler, loader, device, epoch, args, spec,
                             dist, amp, prog if rank0 else None)
        dist.sync_buffers(model)
        if args.average_last and epoch >= args.epochs - args.average_last:
            avg_state, avg_n = _accumulate(avg_state, avg_n, _unwrap(model).state_dict())
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
        if rank0:
            if writer:
                for key, tag in (("loss", "Loss"), ("accuracy", "Accuracy"), ("auc", "AUC")):
                    writer.add_scalar(f"{tag}/train", tr[key], epoch + 1)
                    writer.add_scalar(f"{tag}/val", va[key], epoch + 1)
                writer.add_scalar("LR", lr_now, epoch + 1)
                writer.flush()
            if improved:
                C.save(out / BEST, {"model": {k: v.detach().cpu() for k, v in _unwrap(model).state_dict().items()},
                                    "epoch": epoch, "val_auc": best_auc})
            C.save(ck_path, {"model": _unwrap(model).state_dict(), "optimizer": optimizer.state_dict(),
                             "scheduler": scheduler.state_dict(), "epoch": epoch, "best_auc": best_auc,
                             "best_loss": best_loss, "best_epoch": best_epoch, "bad_epochs": bad_epochs, "history": history,
                             "rng": C.rng_state(), "args": C.plain_args(args), "fold": fold,
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

    # ---- final evaluation with the best epoch (rank 0)
    results: dict[str, Any] = {}
    if rank0:
        if avg_state is not None:
            _unwrap(model).load_state_dict(avg_state)
            recompute_bn(_unwrap(model), caches["train"], device, spec, args, amp)
            first = args.epochs - avg_n + 1
            selection = f"average of epochs {first}-{args.epochs} (BatchNorm statistics recomputed on the training split)"
        else:
            best_state = C.load_best(out / BEST) if (out / BEST).exists() else None
            if best_state is not None:
                _unwrap(model).load_state_dict(best_state)
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

            save_model_dir(_unwrap(model), model_dir, card_base, dtype="float16")
            # Evaluate what ships: the fp16 weights read back exactly as the viewer reads them.
            shipped, _ = load_model_dir(model_dir)
            shipped.to(device)
            if args.channels_last:
                shipped = shipped.to(memory_format=torch.channels_last)
        val_loader = DataLoader(val_ds, batch_size=args.batch_size * 2, num_workers=0)
        vy, vs, _ = predict(shipped, val_loader, device, spec, args, amp)
        if args.target_sensitivity is not None:
            thr = M.sensitivity_threshold(vy, vs, args.target_sensitivity)
            rule = f"highest threshold with validation sensitivity >= {args.target_sensitivity:g}"
        else:
            thr = M.youden_threshold(vy, vs)
            rule = "Youden's J on the validation split"
        evals = {"val": (vy, vs)}
        if "test" in caches:
            test_loader = DataLoader(D.CachedDataset(caches["test"], train=False), batch_size=args.batch_size * 2, num_workers=0)
            ty, ts, _ = predict(shipped, test_loader, device, spec, args, amp)
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
                "recipe": {k: getattr(args, k) for k in ("epochs", "batch_size", "lr", "weight_decay", "lr_schedule",
                                                           "loss", "class_weights", "dropout", "clip_grad", "patience",
                                                           "hflip", "rotation", "jitter", "pretrained", "seed", "image_size")},
                "init": init_note,
                "best_epoch": best_epoch + 1,
                "selection": selection,
                "history": [{k: (round(v, 5) if isinstance(v, float) else v) for k, v in h.items()} for h in history],
                "epochs_run": len(history),
                "device": str(device),
                "processes": dist.world,
                "amp": "bf16" if amp else "off",
                "seconds": round(elapsed, 1),
            }),
            "disclaimer": "Demonstration model, not a diagnostic device.",
            "intended_use": "Research and demonstration only. Not a medical device: not for diagnosis, triage or "
                            "any clinical decision. Retrain and validate on your own site's data before any study use.",
        })
        results["card"] = M.jsonable(card)
        text = R.report_md(card, results, history, pngs)
        atomic.write_text(out / "report.md", text)
        atomic.write_text(out / RESULTS, json.dumps(M.jsonable({k: v for k, v in results.items() if k != "card"}), indent=1) + "\n")
        if args.arch == "resnet50":
            from cxrviewer.ml.registry import save_model_dir

            save_model_dir(_unwrap(model), model_dir, card, dtype="float16")
            atomic.write_text(model_dir / "report.md", text.replace("](", "](./"))
            for png in pngs:
                atomic.write_bytes(model_dir / png.name, png.read_bytes())
        m = mets
        print(f"{report_split} ({len(ry)} images) at threshold {thr:.3f} [{rule}]: " +
              ", ".join(f"{k} {M.fmt_ci(m[k])}" for k in M.METRIC_NAMES), flush=True)
        print(f"report: {out / 'report.md'}" + (f"\nmodel: {model_dir}" if args.arch == "resnet50" else ""), flush=True)
        if args.json_progress:
            print(json.dumps(M.jsonable({"event": "done", "fold": fold, "report": str(out / "report.md"),
                                         "model_dir": str(model_dir) if args.arch == "resnet50" else None,
                                         "threshold": thr, "auc": m["auc"]})), flush=True)
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


def _main(args) -> dict[str, Any]:
    from training import report as R

    dist = Dist()
    out = Path(args.out)
    if args.resume is None and (out / CHECKPOINT).exists():
        raise CxrError(out, "already holds a run (checkpoint.pt): continue it with --resume "
                            f"{out}, or choose another --out")
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
    if dist.rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    splits, notes, sources = plan_splits(args)
    if not args.folds:
        return run_training(args, splits, out, notes, sources, dist)
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
        results.append(run_training(args, fold_splits, fold_dir, fnotes, sources, dist, fold=k))
    if dist.rank == 0 and args.fold is None:
        summary = R.cv_summary(out, results, args.folds)
        return summary
    return {"folds": results}


def cli(argv: list[str] | None = None, prog: str = "python -m training") -> int:
    """Parse and run (``python -m training``)."""
    return run_args(get_args_parser(prog=prog).parse_args(argv), prog)


def run_args(args: argparse.Namespace, prog: str = "python -m training") -> int:
    """Run parsed arguments; expected failures become one line on stderr (exit 2)."""
    try:
        main(args)
    except CxrError as e:
        print(f"{'cxrviewer' if prog.startswith('cxrviewer') else 'training'}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: continue with --resume " + str(args.out), file=sys.stderr)
        return 130
    finally:
        if "torch.distributed" in sys.modules:
            Dist().close()
    return 0
