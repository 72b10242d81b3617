"""How long a run takes: a short speed check before the first epoch, the estimate printed
from it, and ``--time-budget`` (how many epochs fit, and when to stop early).

The speed check trains a *copy* of the model for a few steps on real training batches (and
times a forward pass for validation), so the run itself is untouched: same weights, same
optimizer state, same RNG stream (saved and restored around the check).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

from cxrviewer.core.errors import CxrError
from training import loops as L
from training.distributed import unwrap
from training.progress import fmt_duration

#: seconds a run needs after its last epoch besides the test/val passes (bootstrap, plots, card)
FINISH_OVERHEAD_S = 10.0


@dataclass
class Speed:
    """Measured cost of one training step and of evaluating one image."""

    step_s: float
    eval_s_per_image: float
    batch: int
    threads: int
    device: str

    @property
    def images_per_s(self) -> float:
        return self.batch / max(self.step_s, 1e-9)

    def where(self) -> str:
        """``cpu ×2`` (threads) or ``cuda ×1`` (processes are reported by the caller)."""
        return f"{self.device} ×{self.threads}" if self.device == "cpu" else self.device


@dataclass
class Estimate:
    """Seconds per epoch and for the end of the run (final evaluation, card, report)."""

    epoch_s: float
    finish_s: float
    steps_per_epoch: int
    speed: Speed

    def run_s(self, epochs: int) -> float:
        return epochs * self.epoch_s + self.finish_s


def _sync(device) -> None:
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


def _time_steps(model, criterion, dataset, device, spec, args, amp: bool, steps: int, warmup: int,
                limit_s: float = math.inf) -> tuple[float, float]:
    """(seconds per training step, seconds per evaluated image) for a copy of ``model``;
    ``(inf, inf)`` as soon as one step takes longer than ``limit_s`` (a lost comparison)."""
    import torch

    m = copy.deepcopy(unwrap(model)).to(device)
    opt = torch.optim.Adam(m.parameters(), lr=args.lr)
    n = len(dataset)
    bs = min(args.batch_size, n)
    k = 0

    def batch(size: int):
        nonlocal k
        items = [dataset[(k + i) % n] for i in range(size)]
        k += size
        return torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items])

    m.train()
    t = 0.0
    for i in range(warmup + steps):
        u8, y = batch(bs)
        t0 = time.perf_counter()
        x = L.inputs(u8, spec, device, args.channels_last)
        y = y.to(device)
        with L.autocast(device, amp):
            loss = criterion(m(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if args.clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(m.parameters(), args.clip_grad)
        opt.step()
        _sync(device)
        dt = time.perf_counter() - t0
        if dt > limit_s:
            return math.inf, math.inf
        if i >= warmup:
            t += dt
    step_s = t / max(steps, 1)
    m.eval()
    eb = min(2 * args.batch_size, n)
    ev = 0.0
    with torch.inference_mode():
        for i in range(2):
            u8, _ = batch(eb)
            t0 = time.perf_counter()
            with L.autocast(device, amp):
                m(L.inputs(u8, spec, device, args.channels_last))
            _sync(device)
            if i:
                ev = (time.perf_counter() - t0) / eb
    del m, opt
    return step_s, ev


def measure_speed(model, criterion, dataset, device, spec, args, amp: bool, steps: int = 2,
                  warmup: int = 1, log=None) -> Speed:
    """Time a few training steps of a copy of ``model`` on ``dataset`` (augmented batches).

    On a CPU with ``--threads 0`` (auto) and several threads, 1 thread is tried as well and
    the faster kept (``torch.set_num_threads`` stays at the winner): on a machine shared with
    other work, OpenMP threads that wait for each other can be several times slower than one.
    """
    import torch

    rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if device.type == "cuda" else None
    try:
        if device.type == "cpu" and getattr(args, "threads", 0) > 0:
            torch.set_num_threads(args.threads)
        threads = torch.get_num_threads() if device.type == "cpu" else 1
        if device.type == "cpu" and getattr(args, "threads", 0) == 0 and threads > 1:
            # 1 thread first: the many-thread check then gives up as soon as it has lost
            # (on a busy machine one of its steps can take as long as a whole check)
            torch.set_num_threads(1)
            s1, e1 = _time_steps(model, criterion, dataset, device, spec, args, amp, steps, warmup)
            torch.set_num_threads(threads)
            step_s, ev = _time_steps(model, criterion, dataset, device, spec, args, amp, steps, warmup,
                                     limit_s=3 * s1)
            if log:
                many = f"{args.batch_size / step_s:.1f} images/s" if math.isfinite(step_s) else "slower"
                log(f"speed check: {many} with {threads} threads, {args.batch_size / s1:.1f} images/s with 1 thread")
            if s1 < step_s:
                step_s, ev, threads = s1, e1, 1
                torch.set_num_threads(1)
        else:
            step_s, ev = _time_steps(model, criterion, dataset, device, spec, args, amp, steps, warmup)
    finally:
        torch.set_rng_state(rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
    return Speed(step_s, ev, min(args.batch_size, len(dataset)), threads, device.type)


def estimate(speed: Speed, steps_per_epoch: int, n_train: int, n_val: int, n_test: int, averaging: bool) -> Estimate:
    """Per-epoch and end-of-run seconds from a measured speed."""
    epoch_s = steps_per_epoch * speed.step_s + n_val * speed.eval_s_per_image
    # the end evaluates the shipped weights on val and test; averaging first recomputes
    # BatchNorm statistics with a pass over the training images
    finish = (n_val + n_test + (n_train if averaging else 0)) * speed.eval_s_per_image + FINISH_OVERHEAD_S
    return Estimate(epoch_s, finish, steps_per_epoch, speed)


def fit_epochs(est: Estimate, budget_s: float, spent_s: float, max_epochs: int) -> int:
    """How many epochs end within ``budget_s`` (``spent_s`` already gone); raises
    :class:`CxrError` when not even one does."""
    left = budget_s - spent_s - est.finish_s
    n = math.floor(left / est.epoch_s) if est.epoch_s > 0 else max_epochs
    if n < 1:
        raise CxrError(None, f"--time-budget {fmt_duration(budget_s)}: about {fmt_duration(est.epoch_s)} per epoch on "
                             f"{est.speed.where()}, {fmt_duration(spent_s)} already spent starting and reading the data, and "
                             f"~{fmt_duration(est.finish_s)} needed for the final evaluation: no epoch fits. "
                             "Give more time, a smaller --image-size or --max-images")
    return min(n, max_epochs)


def budget_line(est: Estimate, budget_s: float, spent_s: float, epochs: int, max_epochs: int) -> str:
    """``about 2.4 min per epoch on cpu ×2: 8 epochs fit in 20 min (...)``."""
    fits = f"{epochs} epoch{'s fit' if epochs != 1 else ' fits'} in {fmt_duration(budget_s)}"
    if epochs == max_epochs:
        fits = f"all {epochs} epochs (--epochs) fit in {fmt_duration(budget_s)}"
    return (f"time budget: about {fmt_duration(est.epoch_s)} per epoch on {est.speed.where()} "
            f"({est.speed.images_per_s:.1f} images/s): {fits} "
            f"({fmt_duration(spent_s)} spent starting, reading the data and checking the speed, "
            f"~{fmt_duration(est.finish_s)} for the final evaluation; "
            f"the run should end after about {fmt_duration(spent_s + est.run_s(epochs))})")


def estimate_line(est: Estimate, epochs: int, early_stopping: bool) -> str:
    """The duration estimate printed before the first epoch."""
    tail = " (early stopping may end it sooner)" if early_stopping else ""
    return (f"estimate: about {fmt_duration(est.epoch_s)} per epoch ({est.steps_per_epoch} steps at "
            f"{est.speed.images_per_s:.1f} images/s on {est.speed.where()}): {epochs} epoch{'s' if epochs != 1 else ''} "
            f"+ final evaluation: about {fmt_duration(est.run_s(epochs))}{tail}")


def estimate_only(args, splits: dict, sources: list[dict], dist) -> dict:
    """``--estimate-only``: decode a few training images, time a few steps, print the
    estimate of the whole run (and a JSON ``estimate`` event with ``--json-progress``)."""
    import json

    import torch

    from cxrviewer.ml.model import pick_device
    from training import data as D
    from training import nets
    from training.progress import log
    from training.train import input_spec, skipped_folders

    hint = skipped_folders(sources, args.class_map)
    for name in ("train", "val", "test"):
        if splits.get(name) or name != "test":
            D.check_two_classes(name, splits.get(name, []), hint)
    device = pick_device(args.device)
    amp = args.amp == "on" or (args.amp == "auto" and device.type == "cuda")
    spec = input_spec(args)
    n = {k: len(v) for k, v in splits.items()}
    sub = splits["train"][: max(2 * args.batch_size, 16)]
    t0 = time.perf_counter()
    cache = D.build_cache(sub, spec, workers=max(args.workers, 2))
    decode_s = (time.perf_counter() - t0) / max(len(sub), 1) * sum(n.values())
    if not cache.samples:
        raise CxrError(None, "none of the first training images could be read: " + (cache.skipped[0][1] if cache.skipped else "?"))
    torch.manual_seed(args.seed)
    model = nets.build(args.arch, args.dropout).to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    criterion = L.make_criterion(args.loss, None, device)
    ds = D.CachedDataset(cache, train=True, seed=args.seed, hflip=args.hflip, rotation=args.rotation, jitter=args.jitter)
    speed = measure_speed(model, criterion, ds, device, spec, args, amp, log=lambda m: log(m, dist.rank))
    per_rank = math.ceil(n.get("train", 0) / dist.world)
    steps = max(1, per_rank // args.batch_size if per_rank > args.batch_size else 1)
    est = estimate(speed, steps, n.get("train", 0), n.get("val", 0), n.get("test", 0), bool(args.average_last))
    epochs = args.epochs
    if args.time_budget:
        epochs = fit_epochs(est, args.time_budget, decode_s, args.epochs)
        log(budget_line(est, args.time_budget, decode_s, epochs, args.epochs), dist.rank)
    log(f"reading the data: about {fmt_duration(decode_s)} ({sum(n.values())} images)", dist.rank)
    log(estimate_line(est, epochs, bool(args.patience) and not args.average_last), dist.rank)
    ev = {"event": "estimate", "epochs": epochs, "epoch_seconds": round(est.epoch_s, 3),
          "decode_seconds": round(decode_s, 1), "run_seconds": round(decode_s + est.run_s(epochs), 1),
          "images_per_second": round(speed.images_per_s, 2), "where": speed.where(), "images": n}
    if args.json_progress and dist.rank == 0:
        print(json.dumps(ev), flush=True)
    return ev
