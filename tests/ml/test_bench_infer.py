"""`cxrviewer bench infer` runs and reports every key of the contract (tiny settings)."""

from __future__ import annotations

import argparse


def test_bench_infer_keys(resnet_dir):
    from cxrviewer.bench import infer

    p = argparse.ArgumentParser()
    infer.add_arguments(p)
    args = p.parse_args(
        ["--reps", "1", "--warmup", "0", "--batch", "2", "--model", str(resnet_dir)]
    )
    out = infer.run(args)
    for k in (
        "forward_ms",
        "gradcam_ms",
        "gradcam_over_forward",
        "textbook_gradcam_ms",
        "speedup_vs_textbook",
        "cam_pearson_vs_textbook",
        "end_to_end_ms",
        "batch_images_per_s",
        "default_batch_images_per_s",
        "backend",
    ):
        assert k in out, k
    assert out["model"] == "test-resnet 1.0" and out["backend"] in ("onnxruntime", "torch")
    assert out["cam_pearson_vs_textbook"] >= 0.9999
    assert out["batch_path_max_prob_diff_vs_eager"] <= 1e-4
    assert all(
        out[k] > 0 for k in ("forward_ms", "gradcam_ms", "textbook_gradcam_ms", "end_to_end_ms")
    )
