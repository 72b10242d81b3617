"""The epoch loops: one training pass, prediction, validation, weight averaging, and the
losses and samplers they use (no file is written here)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cxrviewer.core.errors import CxrError
from training import data as D
from training import metrics as M
from training.distributed import Dist
from training.progress import Progress

#: --class-weights auto balances the loss above this majority:minority ratio
AUTO_BALANCE_RATIO = 3.0


def class_weights(spec: str, labels: np.ndarray) -> list[float] | None:
    """Loss weight per class: ``none``, ``balanced`` (inverse frequency), ``auto`` (balanced
    above :data:`AUTO_BALANCE_RATIO`:1) or two numbers ``W0,W1``."""
    s = (spec or "none").strip().lower()
    if s == "none":
        return None
    if s == "auto":
        c = np.bincount(labels, minlength=2).astype(float)
        s = "balanced" if c.min() > 0 and c.max() / c.min() > AUTO_BALANCE_RATIO else "none"
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
        raise CxrError(None, f"--class-weights {spec!r}: expected auto, none, balanced or two positive numbers W0,W1")
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


def autocast(device, enabled: bool):
    import contextlib

    import torch

    if not enabled or device.type not in ("cuda", "cpu"):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def inputs(u8, spec, device, channels_last: bool):
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
        progress.start(args.batch_size, progress.after_s)
    for step, (u8, y) in enumerate(loader, start=1):
        x = inputs(u8, spec, device, args.channels_last)
        y = y.to(device, non_blocking=True)
        with autocast(device, amp):
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
            x = inputs(u8, spec, device, args.channels_last)
            y = y.to(device)
            with autocast(device, amp):
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


def accumulate(avg: dict[str, Any] | None, n: int, state: dict[str, Any]) -> tuple[dict[str, Any], int]:
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
            with autocast(device, amp):
                model(inputs(u8, spec, device, args.channels_last))
    for m, mom in zip(bns, moms, strict=True):
        m.momentum = mom
    model.eval()



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
