"""The training loop: it learns, Grad-CAM looks at the lesion, kill -9 + resume is exact,
DDP ranks agree, and the ResNet-50 path produces a registry-ready model the CLI can use."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from training.synthetic import make_dataset

TINY = ["--arch", "tiny", "--device", "cpu", "--no-tensorboard", "--bootstrap", "50"]


def _run(args: list[str], env=None, timeout=240) -> subprocess.CompletedProcess:
    e = dict(os.environ, OMP_NUM_THREADS="1", **(env or {}))
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=e)


def test_synthetic_set_learns_and_gradcam_finds_the_lesion(tmp_path):
    import torch

    from training import nets
    from training.data import normalize_batch
    from training.train import cli

    root = make_dataset(tmp_path / "syn", n_patients=100, size=64, seed=2)
    out = tmp_path / "run"
    rc = cli(["--data", str(root), "--out", str(out), *TINY, "--epochs", "8", "--image-size", "64",
              "--batch-size", "8", "--lr", "3e-3", "--split", "0.6,0.2,0.2"])
    assert rc == 0
    hist = json.loads((out / "history.json").read_text())
    assert hist[-1]["train_loss"] < 0.7 * hist[0]["train_loss"], [h["train_loss"] for h in hist]
    assert max(h["val_auc"] for h in hist) > 0.9
    res = json.loads((out / "metrics.json").read_text())
    assert res["metrics"]["auc"]["value"] > 0.9  # held-out test split
    assert res["leak_check"].startswith("patients in more than one split: 0 ")

    # Grad-CAM (the viewer's implementation) on the test positives: the peak is in the lesion box.
    cam_mod = pytest.importorskip("cxrviewer.ml.cam", reason="cxrviewer.ml.cam not written yet")
    from cxrviewer.core.dicom_io import load_image
    from cxrviewer.ml.preprocess import PreprocessSpec, prepare_uint8

    model = nets.build("tiny")
    model.load_state_dict(torch.load(out / "best.pt", weights_only=True)["model"])
    model.eval()
    fresh = make_dataset(tmp_path / "fresh", n_patients=30, size=64, seed=99)  # images never seen
    with open(fresh / "boxes.csv") as fh:
        boxes = {row["path"]: tuple(int(row[k]) for k in ("x0", "y0", "x1", "y1")) for row in csv.DictReader(fh)}
    test_pos = [fresh / rel for rel in boxes]
    spec = PreprocessSpec(size=64)
    hits, n = 0, 0
    for path in test_pos[:40]:
        u8, mapping = prepare_uint8(load_image(path), spec)
        x = normalize_batch(torch.from_numpy(u8)[None], spec.mean, spec.std)
        (r,) = cam_mod.gradcam(model, x, class_idx=1, method="hook")
        full = r.to_original(mapping)
        py, px = np.unravel_index(np.argmax(full), full.shape)
        x0, y0, x1, y1 = boxes[str(path.relative_to(fresh))]
        m = 4  # half a CAM cell (8x8 map at 64 px)
        hits += (x0 - m <= px <= x1 + m) and (y0 - m <= py <= y1 + m)
        n += 1
    assert hits >= 0.7 * n, f"Grad-CAM peak in the lesion box for {hits}/{n} positives"


def test_kill9_then_resume_ends_with_the_same_weights(tmp_path):
    import torch

    root = make_dataset(tmp_path / "syn", n_patients=80, size=32, seed=6)
    common = [sys.executable, "-m", "training", "--data", str(root), *TINY, "--epochs", "6", "--image-size", "32",
              "--batch-size", "8", "--lr", "2e-3", "--dropout", "0.2", "--average-last", "3"]
    a = _run(common + ["--out", str(tmp_path / "a")])
    assert a.returncode == 0, a.stderr

    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(common + ["--out", str(tmp_path / "b")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    ck = tmp_path / "b" / "checkpoint.pt"
    t0 = time.monotonic()
    while not ck.exists() and proc.poll() is None and time.monotonic() - t0 < 120:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = torch.load(ck, weights_only=True)["epoch"]
    assert killed_at < 5, "the run finished before it could be killed"
    b = _run(common + ["--out", str(tmp_path / "b"), "--resume", str(tmp_path / "b")])
    assert b.returncode == 0, b.stderr
    assert f"resumed after epoch {killed_at + 1}" in b.stdout
    ca = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    cb = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert ca["epoch"] == cb["epoch"] == 5
    for k, v in ca["model"].items():
        assert torch.equal(v, cb["model"][k]), k
    assert ca["avg_n"] == cb["avg_n"] == 3
    for k, v in ca["avg_state"].items():
        assert torch.equal(v, cb["avg_state"][k]), k
    assert "average of epochs 4-6" in (tmp_path / "b" / "report.md").read_text()
    assert [h["val_auc"] for h in ca["history"]] == [h["val_auc"] for h in cb["history"]]
    # A second run into the same folder without --resume is refused, not overwritten.
    c = _run(common + ["--out", str(tmp_path / "a")])
    assert c.returncode == 2 and "--resume" in c.stderr


def test_ddp_gloo_two_ranks_end_identical(tmp_path):
    root = make_dataset(tmp_path / "syn", n_patients=40, size=32, seed=7)
    r = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
              "-m", "training", "--data", str(root), "--out", str(tmp_path / "ddp"), *TINY, "--epochs", "2",
              "--image-size", "32", "--batch-size", "8"], timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    digests = dict(re.findall(r"rank (\d)/2 final weights sha256 ([0-9a-f]{64})", r.stderr))
    assert set(digests) == {"0", "1"}, r.stderr[-2000:]
    assert digests["0"] == digests["1"]
    assert "training tiny on cpu x2" in r.stdout
    assert (tmp_path / "ddp" / "report.md").is_file()


def test_resnet50_run_gives_a_model_that_evaluate_and_publish_use(tmp_path):
    root = make_dataset(tmp_path / "syn", n_patients=16, size=32, seed=8, layout="csv")
    out = tmp_path / "run"
    env = {"CXRVIEWER_DATA_DIR": str(tmp_path / "user"), "TORCH_HOME": str(tmp_path / "torch")}
    r = _run([sys.executable, "-m", "training", "--data", str(root), "--out", str(out), "--epochs", "1",
              "--image-size", "32", "--batch-size", "8", "--bootstrap", "50", "--split", "0.5,0.25,0.25",
              "--name", "synthetic-test", "--device", "cpu", "--boxes", str(root.parent / "boxes.csv"),
              "--resolution-aug", "0.5", "--border-erase", "0.5", "--crop-scale", "0.8", "--text-aug", "0.3"], env=env)
    assert r.returncode == 0, r.stderr
    card = json.loads((out / "model" / "card.json").read_text())
    # calibrated on validation, threshold on that scale; localization of the test split's CAMs
    cal = card["calibration"]
    assert {"temperature", "ece_before", "ece_after", "n"} <= set(cal) and cal["temperature"] > 0
    assert cal["n"] == card["training_data"]["splits"]["val"]["images"]
    assert "calibrated with T = " in card["threshold_rule"]
    loc = card["localization"]
    assert loc["split"] == "test" and loc["pointing_n"] == card["training_data"]["splits"]["test"]["abnormal"]
    assert card["training"]["shortcut_augmentation"]["border_p"] == 0.5
    assert card["ood"]["file"] == "ood.npz" and (out / "model" / "ood.npz").is_file()  # fitted train -> val
    report = (out / "model" / "report.md").read_text()
    assert "## Calibration" in report and "## Localization" in report
    for f in ("reliability.png", "cam_grid.png"):
        assert (out / "model" / f).is_file(), f
    assert card["architecture"] == "resnet50" and card["weights_dtype"] == "float16"
    # the run's model carries model.onnx (the viewer's torch-free install runs it), hash in the card
    from cxrviewer.ml.onnx_model import card_onnx

    assert card["onnx_file"] == "model.onnx" and card_onnx(out / "model", card) == out / "model" / "model.onnx"
    assert 0.0 <= card["threshold"] <= 1.0 and card["preprocessing"]["size"] == 32
    for k in ("accuracy", "precision", "recall", "specificity", "npv", "f1", "auc"):
        m = card["metrics"][k]
        assert set(m) == {"value", "ci95", "split"} and m["split"] == "test" and len(m["ci95"]) == 2
    assert "not a diagnostic device" in card["disclaimer"]
    assert card["training_data"]["leak_check"].startswith("patients in more than one split: 0 ")
    for f in ("roc.png", "confusion.png", "curves.png", "report.md", "best.pt", "checkpoint.pt"):
        assert (out / f).is_file(), f
    # the run ships its out-of-distribution gate (fitted on train, threshold on validation)
    ood = card["ood"]
    assert ood["file"] == "ood.npz" and (out / "model" / "ood.npz").is_file() and ood["feature"] == "layer4_gap"
    assert ood["keep_rate_val"] >= 0.95 and ood["n_train"] >= 3 and len(ood["sha256"]) == 64
    assert list((out / "tb").glob("events.out.tfevents.*"))

    ev = _run([sys.executable, "-m", "cxrviewer", "evaluate", "--model", str(out), "--data", str(root),
               "--json", "--bootstrap", "20"], env=env)
    assert ev.returncode == 0, ev.stderr
    res = json.loads(ev.stdout)
    assert res["images"]["images"] == 32 and res["threshold"] == pytest.approx(card["threshold"])
    assert res["ood"]["available"] and res["ood"]["images"] == 32 and 0 <= res["ood"]["refused"] <= 32

    pub = _run([sys.executable, "-m", "cxrviewer", "publish", str(out), "--activate"], env=env)
    assert pub.returncode == 0, pub.stderr
    assert "installed synthetic-test" in pub.stdout
    active = json.loads((tmp_path / "user" / "active_model.json").read_text())
    assert active["name"] == "synthetic-test"

    # --init from that model, and --pretrained imagenet offline gives the clear error.
    r2 = _run([sys.executable, "-m", "training", "--data", str(root), "--out", str(tmp_path / "r2"),
               "--epochs", "1", "--image-size", "32", "--init", str(out / "model"), "--max-images", "16",
               "--bootstrap", "10", "--split", "0.5,0.25,0.25", "--no-tensorboard"], env=env)
    assert r2.returncode == 0, r2.stderr
    assert "from synthetic-test 1.0" in r2.stdout
    r3 = _run([sys.executable, "-m", "training", "--data", str(root), "--out", str(tmp_path / "r3"),
               "--epochs", "1", "--image-size", "32", "--pretrained", "imagenet"], env=env)
    assert r3.returncode == 2 and "no ImageNet ResNet-50 weights" in r3.stderr and "--init" in r3.stderr


def test_bench_train_json():
    r = _run([sys.executable, "-m", "cxrviewer", "bench", "train", "--json", "--image-size", "32",
              "--batch-size", "2", "--steps", "1", "--warmup", "0", "--device", "cpu"])
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["images_per_s"] > 0 and d["device"] == "cpu"
