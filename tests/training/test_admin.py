"""What a new admin trips on (issue 15): defaults in -h, --time-budget and the estimate, progress
lines without a terminal, the final summary line, class-folder names and --class-map, folders
that match no class, the class-balanced loss above 3:1, and no debris after a failed run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from training import data as D
from training.synthetic import make_dataset

TINY = ["--arch", "tiny", "--device", "cpu", "--no-tensorboard", "--bootstrap", "50", "--image-size", "32",
        "--batch-size", "8", "--workers", "0"]


def _train(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """``python -m training`` with its output in pipes: no terminal, as under nohup or cron."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "training", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture(scope="module")
def syn(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("adm") / "set", n_patients=40, size=32, seed=5)


def _rename_classes(src: Path, dst: Path, normal: str, abnormal: str) -> Path:
    shutil.copytree(src / "normal", dst / normal)
    shutil.copytree(src / "abnormal", dst / abnormal)
    return dst


# --------------------------------------------------------------------------- -h

def test_help_shows_every_flags_default(capsys):
    from cxrviewer.cli import main

    with pytest.raises(SystemExit):
        main(["train", "-h"])
    out = capsys.readouterr().out
    text = " ".join(out[out.index("options:"):].split())
    # one entry per option ("  --flag METAVAR  help..."), unwrapped
    entries = {e.split()[0]: " ".join(e.split()) for e in re.split(r"\n  (?=-)", out[out.index("options:"):])[1:]}
    for flag, default in (("--epochs", "50"), ("--lr", "auto"), ("--weight-decay", "0.0001"),
                          ("--seed", "0"), ("--batch-size", "32"), ("--time-budget", "none"),
                          ("--class-weights", "auto"), ("--log-interval", "30.0")):
        assert f"(default: {default})" in entries[flag], (flag, entries[flag])
    assert "auto: 0.001 from random weights, 0.0001 from --init or --pretrained weights" in entries["--lr"]
    import argparse

    from training.args import DefaultsHelpFormatter, get_args_parser

    fmt = DefaultsHelpFormatter("cxrviewer train")
    for action in get_args_parser()._actions:
        if not action.option_strings or action.required or action.help is argparse.SUPPRESS or action.dest == "help":
            continue
        assert "default" in fmt._get_help_string(action).lower(), action.option_strings
        assert action.option_strings[0] in text  # and it is listed


def test_durations_parse_and_wrong_ones_say_how():
    import argparse

    from training.args import parse_duration

    assert parse_duration("20m") == 1200
    assert parse_duration("1h30m") == 5400
    assert parse_duration("90s") == 90
    assert parse_duration("1.5h") == 5400
    for bad in ("20", "m", "-5m", "20 minutes", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="like 20m"):
            parse_duration(bad)


# --------------------------------------------------------------------------- budget and estimate

def test_budget_sentence_and_epoch_choice():
    from cxrviewer.core.errors import CxrError
    from training.budget import Estimate, Speed, budget_line, fit_epochs

    est = Estimate(epoch_s=144.0, finish_s=20.0, steps_per_epoch=114, speed=Speed(1.25, 0.01, 32, 2, "cpu"))
    n = fit_epochs(est, 1200.0, 10.0, 50)
    assert n == 8  # (1200 - 10 - 20) / 144 = 8.1
    line = budget_line(est, 1200.0, 10.0, n, 50)
    assert "about 2.4 min per epoch on cpu ×2 (25.6 images/s): 8 epochs fit in 20 min" in line, line
    assert fit_epochs(est, 1200.0, 30.0, 5) == 5  # --epochs caps what fits
    with pytest.raises(CxrError, match="no epoch fits"):
        fit_epochs(est, 150.0, 30.0, 50)


def test_time_budget_run_without_a_terminal(syn, tmp_path):
    """A budgeted run says what fits before the first epoch, prints progress lines on a pipe,
    ends within its budget and closes with the summary line."""
    out = tmp_path / "run"
    t0 = time.monotonic()
    r = _train("--data", str(syn), "--out", str(out), *TINY, "--epochs", "1000000", "--time-budget", "60s",
               "--log-interval", "0", "--split", "0.6,0.2,0.2")
    wall = time.monotonic() - t0
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.splitlines()
    budget = next(i for i, ln in enumerate(lines) if ln.startswith("time budget: about "))
    estimate = next(i for i, ln in enumerate(lines) if ln.startswith("estimate: about "))
    first_epoch = next(i for i, ln in enumerate(lines) if ln.startswith("epoch 1/"))
    assert budget < estimate < first_epoch
    assert " per epoch on cpu ×1 " in lines[budget] and " fit in 60 s" in lines[budget], lines[budget]
    # (--epochs is far more than any machine fits in 60 s, so the budget, not --epochs, decides)
    fitted = int(lines[budget].split("): ")[1].split(" epoch")[0])
    res = json.loads((out / "metrics.json").read_text())
    assert 1 <= res["epochs_run"] <= fitted < 1000000
    assert res["seconds"] <= 60, res["seconds"]
    # the budget counts from the start of the training package; interpreter start and exit are outside
    assert wall < 60 + 20, wall
    # progress lines, not a bar: step, images/s, ETA
    prog = [ln for ln in r.stderr.splitlines() if " train step " in ln]
    assert prog and all("images/s, ETA " in ln and "\r" not in ln for ln in prog), r.stderr[-1500:]
    # the last line: test metrics with intervals, and where the report is
    last = lines[-1]
    assert last.startswith("done in ") and "test (" in last and "AUC " in last and "accuracy " in last, last
    assert last.endswith(f"report: {out / 'report.md'}")
    assert "--time-budget 60 s:" in (out / "report.md").read_text()


def test_progress_lines_at_most_every_interval(monkeypatch, capsys):
    from training import progress as P

    now = [1000.0]
    monkeypatch.setattr(P.time, "monotonic", lambda: now[0])
    pr = P.Progress(True, interval=30.0, tty=False)
    pr.start(items_per_step=32, after_s=600.0)
    for step in range(1, 100):  # one step every 0.5 s: 49.5 s in all
        now[0] += 0.5
        pr("epoch 1/8 train", step, 200, "loss 0.5")
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err  # at 30 s, not before, and not again before 60 s
    assert err[0].startswith("epoch 1/8 train step 60/200, 64.0 images/s, ETA ")
    assert "run ETA " in err[0] and err[0].endswith("loss 0.5")


# --------------------------------------------------------------------------- data layouts

@pytest.mark.parametrize("normal,abnormal", [("NORMAL", "PNEUMONIA"), ("negative", "positive"),
                                             ("0_normal", "1_abnormal"), ("Normal", "Pneumonia")])
def test_common_class_folder_names(syn, tmp_path, normal, abnormal):
    root = _rename_classes(syn, tmp_path / "d", normal, abnormal)
    ds = D.load_dataset(root)
    assert D.describe(ds.samples)["normal"] == D.describe(ds.samples)["abnormal"] == 40
    assert not ds.unmatched


def test_unmatched_folder_is_named_and_class_map_takes_it(syn, tmp_path):
    root = _rename_classes(syn, tmp_path / "d", "NORMAL", "PNEUMONIA")
    shutil.copytree(syn / "abnormal", root / "COVID")
    ds = D.load_dataset(root)
    assert [Path(f).name for f, _ in ds.unmatched] == ["COVID"]
    assert any(n.startswith("warning: ") and "COVID" in n and "--class-map" in n for n in ds.notes)
    from training.layouts import ClassMap

    ds = D.load_dataset(root, class_map=ClassMap.parse(["normal=NORMAL", "abnormal=PNEUMONIA,COVID"]))
    assert D.describe(ds.samples)["abnormal"] == 80 and not ds.unmatched


def test_one_class_error_names_the_skipped_folder_and_removes_the_new_out(syn, tmp_path):
    root = _rename_classes(syn, tmp_path / "d", "NORMAL", "BACTERIA")
    out = tmp_path / "new" / "run"  # neither folder exists before the run
    r = _train("--data", str(root), "--out", str(out), *TINY, "--epochs", "1")
    assert r.returncode == 2
    err = r.stderr.strip().splitlines()[-1]
    assert err.startswith("training: error: ") and "only Normal images" in err, r.stderr
    assert str(root / "BACTERIA") in err and "--class-map abnormal=BACTERIA" in err, err
    assert "warning: " in r.stderr and "BACTERIA" in r.stderr  # warned before anything else ran
    assert not (tmp_path / "new").exists(), "a run that failed before its first checkpoint leaves no folder"
    # --class-map makes the same folders usable (and the run gets going)
    ok = _train("--data", str(root), "--out", str(out), *TINY, "--epochs", "1", "--class-map", "abnormal=bacteria")
    assert ok.returncode == 0, ok.stderr[-1500:]


def test_failed_run_keeps_a_folder_that_existed(syn, tmp_path):
    root = _rename_classes(syn, tmp_path / "d", "normal", "other")
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("the admin's own file")
    r = _train("--data", str(root), "--out", str(out), *TINY, "--epochs", "1")
    assert r.returncode == 2
    assert (out / "notes.txt").read_text() == "the admin's own file"


def test_sigterm_before_the_first_checkpoint_leaves_no_folder(tmp_path):
    big = make_dataset(tmp_path / "big", n_patients=60, size=32, seed=2)
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.Popen([sys.executable, "-m", "training", "--data", str(big), "--out", str(out), *TINY,
                          "--epochs", "50", "--log-interval", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    deadline = time.monotonic() + 120
    while not out.exists() and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.05)
    assert out.exists(), p.communicate()[1][-1500:]
    p.terminate()
    _, err = p.communicate(timeout=60)
    if (out / "checkpoint.pt").exists():
        pytest.skip("the first epoch finished before SIGTERM arrived (a very fast machine)")
    assert p.returncode == 130, err[-1500:]
    assert "nothing was saved" in err
    assert not out.exists()


# --------------------------------------------------------------------------- imbalance

def test_auto_class_weights_above_three_to_one():
    from training.loops import class_weights

    nine = np.array([0] * 10 + [1] * 90)
    w = class_weights("auto", nine)
    assert w is not None and w[0] == pytest.approx(5.0) and w[1] == pytest.approx(100 / 180)
    assert class_weights("auto", np.array([0] * 30 + [1] * 70)) is None  # 2.3:1
    assert class_weights("none", nine) is None


def test_imbalanced_run_states_the_balanced_loss(tmp_path):
    src = make_dataset(tmp_path / "src", n_patients=50, size=32, seed=4)
    root = tmp_path / "imb"
    shutil.copytree(src / "abnormal", root / "abnormal")
    (root / "normal").mkdir()
    for f in sorted((src / "normal").iterdir())[:12]:  # 12 normal vs 50 abnormal: 4.2:1
        shutil.copy(f, root / "normal" / f.name)
    out = tmp_path / "run"
    r = _train("--data", str(root), "--out", str(out), *TINY, "--epochs", "1", "--split", "0.5,0.25,0.25")
    assert r.returncode == 0, r.stderr[-1500:]
    assert "class-balanced loss" in r.stdout
    report = (out / "report.md").read_text()
    assert "class-balanced loss (weights normal" in report and ":1 (" in report


# --------------------------------------------------------------------------- tiny images

def test_min_input_size_enlarges_the_detail_of_tiny_images(syn):
    import cv2

    from cxrviewer.core.dicom_io import load_image
    from cxrviewer.ml.preprocess import PreprocessSpec, prepare_uint8
    from training.args import get_args_parser
    from training.train import input_spec

    args = get_args_parser().parse_args(["--data", "x", "--out", "y", "--image-size", "28", "--min-input-size", "64"])
    spec = input_spec(args)
    assert (spec.size, spec.detail_size) == (64, 28)
    assert PreprocessSpec.from_dict(spec.to_dict()) == spec  # the card carries it to the viewer
    img = load_image(next((syn / "abnormal").iterdir()))
    big, mapping = prepare_uint8(img, spec)
    small, _ = prepare_uint8(img, PreprocessSpec(size=28))
    assert big.shape == (64, 64) and (mapping.inner_h, mapping.inner_w) == (64, 64)
    assert np.array_equal(big, cv2.resize(small, (64, 64), interpolation=cv2.INTER_LINEAR))
    assert input_spec(get_args_parser().parse_args(["--data", "x", "--out", "y", "--image-size", "28"])).detail_size == 0
    with pytest.raises(ValueError, match="detail_size"):
        PreprocessSpec.from_dict({"size": 64, "detail_size": 64})
