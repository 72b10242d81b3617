"""One forward pass gives the viewer's logits and Grad-CAM; ``training.postfit --write`` adds
calibration and localization to an existing model's card, with the threshold on the calibrated
scale, and ``evaluate --boxes`` measures the same for any model."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from training.synthetic import make_dataset


def _model_dir(tmp_path, size: int = 32):
    import torch

    from cxrviewer.ml.model import build_model
    from cxrviewer.ml.preprocess import PreprocessSpec
    from cxrviewer.ml.registry import save_model_dir

    torch.manual_seed(0)
    m = build_model().eval()
    with torch.no_grad():  # an over-confident head whose Abnormal evidence is positive (a CAM with mass)
        m.fc.weight.mul_(40.0)
        m.fc.weight[1].abs_()
    card = {"name": "postfit-test", "version": "1.0", "preprocessing": PreprocessSpec(size=size).to_dict(),
            "threshold": 0.5}
    return save_model_dir(m, tmp_path / "model", card, dtype="float32")


def _split_csv(tmp_path) -> tuple:
    labels = make_dataset(tmp_path / "syn", n_patients=12, size=32, seed=3, layout="csv", images_per_patient=1)
    with open(labels, newline="") as fh:
        rows = list(csv.DictReader(fh))
    out = tmp_path / "splits.csv"
    with open(out, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "patient_id", "split"])
        for i, r in enumerate(rows):
            w.writerow([str(labels.parent / r["path"]), r["label"], r["patient_id"], ("train", "val", "test")[i // 4 % 3]])
    return out, labels.parent / "boxes.csv"


def test_model_pass_matches_the_viewer_cam_and_logits(tmp_path):
    import torch

    from cxrviewer.ml.cam import closed_form_gradcam, normalize_cam
    from cxrviewer.ml.preprocess import PreprocessSpec
    from cxrviewer.ml.registry import load_model_dir
    from training import data as D
    from training.postfit import model_pass

    model, _ = load_model_dir(_model_dir(tmp_path, size=64))
    spec = PreprocessSpec(size=64)
    rng = np.random.default_rng(0)
    cache = D.Cache([D.Sample(f"{i}.png", i % 2, str(i)) for i in range(3)],
                    rng.integers(0, 255, (3, 64, 64), dtype=np.uint8), [])
    p = model_pass(model, cache, spec, torch.device("cpu"), batch_size=2)
    x = D.normalize_batch(torch.from_numpy(cache.arrays), spec.mean, spec.std)
    with torch.no_grad():
        ref_logits = model(x).numpy()
    cams = closed_form_gradcam(model, x, class_idx=1)
    assert p.logits.shape == (3, 2) and p.feats.shape == (3, 2048) and p.cams.shape == (3, 2, 2)
    assert np.allclose(p.logits, ref_logits, atol=1e-4)
    for i in range(3):
        assert np.allclose(normalize_cam(p.cams[i]), cams[i].low_res, atol=1e-5)
    assert np.allclose(p.calibrated(1.0), torch.softmax(torch.from_numpy(ref_logits), 1)[:, 1].numpy(), atol=1e-6)


def _env(tmp_path):
    return dict(os.environ, OMP_NUM_THREADS="1", CXRVIEWER_DATA_DIR=str(tmp_path / "user"))


def test_postfit_write_and_evaluate_boxes(tmp_path, capsys):
    from training import postfit

    mdir = _model_dir(tmp_path, size=64)
    splits, boxes = _split_csv(tmp_path)
    before = json.loads((mdir / "card.json").read_text())
    assert postfit.main(["--model", str(mdir), "--data", str(splits), "--boxes", str(boxes), "--write",
                         "--pointing-data", str(splits)]) == 0
    assert '"temperature"' in capsys.readouterr().out
    card = json.loads((mdir / "card.json").read_text())
    cal = card["calibration"]
    assert {"temperature", "ece_before", "ece_after", "n"} <= set(cal) and cal["n"] == 4
    assert cal["temperature"] > 0 and cal["threshold_scale"] == "calibrated"
    assert card["weights_sha256"] == before["weights_sha256"]  # weights untouched
    assert card["threshold_uncalibrated"] == before["threshold"]
    loc = card["localization"]
    assert {"pointing_game", "centre_baseline", "outer_ring_mass_median"} <= set(loc)
    assert loc["split"] == "test" and loc["mass_n"] == 4  # the CAM mass of the test split...
    assert loc["pointing_n"] == 6 and loc["pointing_data"] == str(splits)  # ...the pointing game on --pointing-data
    assert 0.0 <= loc["outer_ring_mass_median"] <= 1.0
    for f in ("reliability.png", "cam_grid.png", "postfit.json"):
        assert (mdir / f).is_file(), f
    rep = (mdir / "report.md").read_text()
    assert "## Calibration" in rep and "## Localization" in rep and "![CAM grid](./cam_grid.png)" in rep

    # evaluate applies the card's temperature: the same calls as the raw scores at the raw threshold
    ev = subprocess.run([sys.executable, "-m", "cxrviewer", "evaluate", "--model", str(mdir), "--data", str(splits),
                         "--boxes", str(boxes), "--json", "--bootstrap", "20"],
                        capture_output=True, text=True, env=_env(tmp_path), timeout=300)
    assert ev.returncode == 0, ev.stderr
    res = json.loads(ev.stdout)
    assert res["temperature"] == pytest.approx(cal["temperature"])
    assert res["threshold"] == pytest.approx(card["threshold"])
    assert res["localization"]["pointing_n"] == 6 and res["localization"]["mass_n"] == 12  # every abnormal image
    assert len(res["pointing_images"]) == 6

    # a second --write does not calibrate twice
    assert postfit.main(["--model", str(mdir), "--data", str(splits), "--write", "--no-ood"]) == 0
    assert json.loads((mdir / "card.json").read_text())["threshold"] == pytest.approx(card["threshold"])


def test_postfit_needs_a_validation_split(tmp_path, capsys):
    from training import postfit

    mdir = _model_dir(tmp_path)
    labels = make_dataset(tmp_path / "syn", n_patients=4, size=32, seed=1, layout="csv", images_per_patient=1)
    assert postfit.main(["--model", str(mdir), "--data", str(labels)]) == 2
    err = capsys.readouterr().err
    assert "no 'val' rows" in err and "labels.csv" in err
