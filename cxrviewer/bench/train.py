"""ResNet-50 training throughput: forward + backward + Adam steps at 224 px (images/s).

The same step as ``training.train.train_one_epoch`` (uint8 batch -> normalise on the device
-> channels_last -> bf16 autocast on CUDA -> CrossEntropy -> clip -> Adam), on random
uint8 images so no data is needed. Warm-up steps are not timed.
"""

from __future__ import annotations

import argparse
import os
import time


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    p.add_argument("--batch-size", type=int, default=None, help="default: 8 on CPU, 64 on a GPU")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default: 3 on CPU, 30 on a GPU)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default: 1 on CPU, 5 on a GPU)")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--amp", default="auto", choices=["auto", "on", "off"], help="bf16 autocast (auto: CUDA only)")
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false")


def run(args: argparse.Namespace) -> dict:
    import torch

    from cxrviewer.ml.model import build_model, pick_device
    from cxrviewer.ml.preprocess import PreprocessSpec
    from training.data import normalize_batch

    device = pick_device(args.device)
    gpu = device.type != "cpu"
    bs = args.batch_size or (64 if gpu else 8)
    steps = args.steps or (30 if gpu else 3)
    warmup = args.warmup if args.warmup is not None else (5 if gpu else 1)
    amp = args.amp == "on" or (args.amp == "auto" and device.type == "cuda")
    spec = PreprocessSpec(size=args.image_size)
    torch.manual_seed(0)
    model = build_model().to(device).train()
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-4)
    crit = torch.nn.CrossEntropyLoss()
    u8 = torch.randint(0, 256, (bs, args.image_size, args.image_size), dtype=torch.uint8)
    y = torch.randint(0, 2, (bs,))
    if gpu:
        u8, y = u8.pin_memory() if device.type == "cuda" else u8, y

    def step() -> float:
        x = normalize_batch(u8.to(device, non_blocking=True), spec.mean, spec.std)
        if args.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        yy = y.to(device, non_blocking=True)
        if amp:
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
                logits = model(x)
        else:
            logits = model(x)
        loss = crit(logits.float(), yy)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()
        elif device.type == "mps":
            torch.mps.synchronize()

    for _ in range(warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    dt = time.perf_counter() - t0
    out = {
        "images_per_s": round(bs * steps / dt, 2),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "batch_size": bs,
        "steps": steps,
        "image_size": args.image_size,
        "amp": "bf16" if amp else "off",
        "channels_last": bool(args.channels_last),
        "seconds_per_step": round(dt / steps, 4),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }
    if device.type == "cuda":
        out["max_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    return out
