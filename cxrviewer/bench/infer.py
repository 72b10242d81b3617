"""ResNet-50 inference and Grad-CAM: forward, head-only vs textbook Grad-CAM, end to end, batches.

Any installed model (``--model NAME``): the two-class demo or a multi-label model such as an
``import-xrv`` one. For a multi-label model ``gradcam_ms`` is every finding's map from one
pass (the backbone once, then the closed-form map of each finding from layer4 and the linear
head: exactly Grad-CAM's map for a GAP + linear head), so ``gradcam_over_forward`` covers all
findings; the textbook comparison explains the top finding. ``engine_*`` keys time the
engine's own backend (ONNX Runtime where installed): ``engine_forward_ms``,
``engine_cam_all_ms`` (forward + all maps), ``engine_gradcam_over_forward`` and
``images_per_s`` (batched, maps off).

Everything is measured in one run on the same input (the RG1 chest radiograph from
pydicom-data, preprocessed by the one preprocessing function at the model's size), as the
median of ``--reps`` repetitions after ``--warmup`` untimed ones. The model is the
registry's active model, or a seeded random-init ResNet-50 when none is installed (the JSON
says which): timings and the Grad-CAM identity do not depend on the weights.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reps", type=int, default=7, help="timed repetitions (median reported)")
    p.add_argument("--warmup", type=int, default=2, help="untimed warm-up runs")
    p.add_argument("--batch", type=int, default=8, help="batch size for the throughput figures")
    p.add_argument(
        "--model",
        default=None,
        help="registry name or model directory (default: active, else random)",
    )
    p.add_argument(
        "--bf16", action="store_true", help="also measure bf16 autocast (torch) and its error"
    )


def _interleaved_ms(fns: dict[str, Callable[[], Any]], reps: int, warmup: int) -> dict[str, float]:
    """Median ms of each function, timed in rotation so load changes hit all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(max(1, reps)):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append((time.perf_counter() - t0) * 1000.0)
    return {k: statistics.median(v) for k, v in times.items()}


def _median_ms(fn: Callable[[], Any], reps: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, reps)):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


def run(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    from cxrviewer import paths
    from cxrviewer.core.dicom_io import load_image
    from cxrviewer.ml import arch
    from cxrviewer.ml.cam import (
        backbone_features,
        closed_form_cams_all,
        head_gradcam,
        head_logits,
        pearson,
        textbook_gradcam,
    )
    from cxrviewer.ml.card import as_card
    from cxrviewer.ml.inference import Engine, softmax
    from cxrviewer.ml.model import build_model, head_linear
    from cxrviewer.ml.preprocess import PreprocessSpec, preprocess
    from cxrviewer.ml.registry import Registry, load_model_dir, save_model_dir

    reps, warm = args.reps, args.warmup
    samples = paths.sample_paths()
    if not samples:
        raise SystemExit("cxrviewer: error: the RG1 sample (pydicom-data) is not installed")
    sample = samples[0]

    tmp = None
    if args.model and Path(args.model).is_dir():
        model_dir: Path | None = Path(args.model)
    elif args.model:
        model_dir = Registry().get(args.model).path
    else:
        entry = Registry().active()
        model_dir = entry.path if entry else None
    if model_dir is not None:
        model, card = load_model_dir(model_dir)
        model_desc = f"{card['name']} {card['version']}"
    else:
        torch.manual_seed(0)
        model = build_model().eval()
        with torch.no_grad():
            # random-init features are large: a smaller head keeps the probabilities away
            # from 0/1, so the exactness figures below are not trivially tiny
            head_linear(model).weight.mul_(0.05)
        tmp = tempfile.TemporaryDirectory(prefix="cxrviewer-bench-")
        # Saved (fp32, deterministic bytes) so the ONNX export is cached across runs.
        model_dir = save_model_dir(
            model,
            Path(tmp.name) / "random",
            {"name": "random-init-resnet50", "version": "0"},
            dtype="float32",
        )
        card = {"name": "random-init-resnet50", "preprocessing": PreprocessSpec().to_dict()}
        model_desc = "random-init resnet50 (no model installed)"
    spec = PreprocessSpec.from_dict(card.get("preprocessing"))
    typed = as_card({"version": "0", **card}) if not hasattr(card, "multi_label") else card
    multi = typed.multi_label

    img = load_image(sample)
    arr, mapping = preprocess(img, spec)
    x1 = torch.from_numpy(arr)[None]
    xb_np = np.repeat(arr[None], args.batch, axis=0)
    xb = torch.from_numpy(xb_np)

    # --- torch, fp32, batch 1, channels_last (the torch path of the engine)
    m_cl = model.to(memory_format=torch.channels_last).eval()
    x1_cl = x1.contiguous(memory_format=torch.channels_last)

    def fwd():
        with torch.inference_mode():
            return m_cl(x1_cl)

    fc_w = head_linear(m_cl).weight.detach().float().numpy()

    def all_findings_cam():
        # every finding's exact Grad-CAM map from one backbone pass (closed form on the head)
        with torch.inference_mode():
            acts = backbone_features(m_cl, x1_cl)
            logits = head_logits(m_cl, acts)
        return logits, closed_form_cams_all(acts.float().numpy(), fc_w)

    t = _interleaved_ms(
        {
            "forward": fwd,
            "gradcam": all_findings_cam if multi else (lambda: head_gradcam(m_cl, x1_cl)),
            "textbook": lambda: textbook_gradcam(m_cl, x1_cl),
        },
        reps,
        warm,
    )
    forward_ms, gradcam_ms, textbook_ms = t["forward"], t["gradcam"], t["textbook"]
    head = head_gradcam(m_cl, x1_cl)[0]
    ref = textbook_gradcam(m_cl, x1_cl)[0]

    # --- end to end through the engine's default backend: decode, preprocess, infer, CAM, map back
    engine = Engine.load(model_dir, backend="auto", device="cpu")

    def e2e():
        return engine.predict(load_image(sample), cam=True)

    end_to_end_ms = _median_ms(e2e, reps, warm)
    et = _interleaved_ms(
        {"forward": lambda: engine.forward(arr[None], cam=False),
         "cam": lambda: engine.forward(arr[None], cam=True)},
        reps, warm,
    )

    # --- batch throughput: fastest exact fp32 path vs plain eager torch
    def ort_batch():
        return engine.run_arrays(xb_np, cam=False)

    xb_cl = xb.contiguous(memory_format=torch.channels_last)

    def torch_cl_batch():
        with torch.inference_mode():
            return m_cl(xb_cl)

    m_plain = arch.get(typed.architecture).build(typed) if model_dir is not None else build_model().eval()
    m_plain.load_state_dict(model.state_dict())
    m_plain = m_plain.to(memory_format=torch.contiguous_format)

    def torch_plain_batch():
        with torch.no_grad():
            return m_plain(xb)

    breps = max(3, reps // 2)
    fns = {"default": torch_plain_batch, "torch_channels_last": torch_cl_batch}
    if engine.backend == "onnxruntime":
        fns["onnxruntime"] = ort_batch
    bt = _interleaved_ms(fns, breps, 1)
    default_ms = bt.pop("default")
    candidates = bt
    best = min(candidates, key=candidates.get)
    batch_ips = args.batch / (candidates[best] / 1000.0)
    default_ips = args.batch / (default_ms / 1000.0)

    # exactness of the batch path used for the throughput figure
    def probs_of(logits):
        return engine.head_probs(logits) if multi else softmax(logits, engine.temperature)

    with torch.no_grad():
        ref_p = probs_of(m_plain(xb[:1]).numpy())
    got_p = (
        engine.run_arrays(xb_np[:1])[0]
        if best == "onnxruntime"
        else probs_of(torch_cl_batch()[:1].float().numpy())
    )

    out: dict[str, Any] = {
        "model": model_desc,
        "input": f"{Path(sample).name} {img.rows}x{img.cols} -> {spec.size}x{spec.size}",
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "forward_ms": round(forward_ms, 2),
        "gradcam_ms": round(gradcam_ms, 2),
        "gradcam_over_forward": round(gradcam_ms / forward_ms, 3),
        "textbook_gradcam_ms": round(textbook_ms, 2),
        "speedup_vs_textbook": round(textbook_ms / gradcam_ms, 2),
        "cam_pearson_vs_textbook": round(pearson(head.low_res, ref.low_res), 7),
        "cam_pearson_vs_textbook_original_geometry": round(
            pearson(head.to_original(mapping), ref.to_original(mapping)), 7
        ),
        "findings": len(typed.findings) if multi else None,
        "gradcam_covers": f"all {len(typed.findings)} findings" if multi else "the Abnormal class",
        "end_to_end_ms": round(end_to_end_ms, 2),
        "engine_forward_ms": round(et["forward"], 2),
        "engine_cam_all_ms": round(et["cam"], 2),
        "engine_gradcam_over_forward": round(et["cam"] / et["forward"], 3),
        "images_per_s": round(batch_ips, 2),
        "batch_size": args.batch,
        "batch_images_per_s": round(batch_ips, 2),
        "batch_path": best,
        "batch_path_max_prob_diff_vs_eager": float(np.abs(np.asarray(got_p) - ref_p).max()),
        "batch_ms_by_path": {k: round(v, 2) for k, v in candidates.items()},
        "default_batch_images_per_s": round(default_ips, 2),
        "batch_speedup_vs_default": round(batch_ips / default_ips, 2),
        "backend": engine.backend,
        "reps": reps,
        # other processes competing for the cores make absolute times noisy; ratios are
        # measured interleaved in one run and hold up much better
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "cpu_count": os.cpu_count(),
    }
    if args.bf16:

        def fwd_bf16():
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                return m_cl(x1_cl)

        out["bf16_forward_ms"] = round(_median_ms(fwd_bf16, reps, warm), 2)
        with torch.inference_mode():
            p32 = softmax(m_cl(xb_cl).float().numpy())
            p16 = softmax(fwd_bf16().float().numpy())
        out["bf16_max_prob_diff"] = float(np.abs(p16 - p32[:1]).max())
    if tmp is not None:
        tmp.cleanup()
    return out
