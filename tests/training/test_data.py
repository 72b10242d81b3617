"""Data layouts, patient-wise splits and K-fold, bad data, and preprocessing parity."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from training import data as D
from training.synthetic import make_dataset


@pytest.fixture(scope="module")
def syn(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("syn") / "set", n_patients=40, size=32, seed=3)


def _cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "training", *args], capture_output=True, text=True,
                          timeout=240, cwd=cwd)


# --------------------------------------------------------------------------- layouts

def test_nih_patient_from_file_name():
    assert D.patient_from_name("00000001_000.png") == "1"
    assert D.patient_from_name("/x/00012345_010.png") == "12345"
    assert D.patient_from_name("IM-0115-0001.jpeg") is None


def test_three_layouts_read_the_same_samples(tmp_path):
    sets = {lay: D.load_dataset(make_dataset(tmp_path / lay, 10, 16, seed=1, layout=lay)) for lay in ("folders", "csv", "nih")}
    assert {k: v.fmt for k, v in sets.items()} == {"folders": "folders", "csv": "csv", "nih": "nih"}
    for ds in sets.values():
        got = sorted((Path(s.path).name, s.label, s.patient) for s in ds.samples)
        assert len(got) == 20
        assert all(name.startswith(f"{int(pid):08d}_") for name, _, pid in got)
        assert Counter(lab for _, lab, _ in got) == {0: 10, 1: 10}
    assert sorted((Path(s.path).name, s.label) for s in sets["csv"].samples) == \
        sorted((Path(s.path).name, s.label) for s in sets["nih"].samples)


def test_presplit_folders_and_split_column(tmp_path):
    for split in ("train", "valid", "test"):
        for cls in ("0_normal", "1_abnormal"):
            d = tmp_path / "ps" / split / cls
            d.mkdir(parents=True)
            cv2.imwrite(str(d / f"0000000{len(split)}_00{cls[0]}.png"), np.zeros((8, 8), np.uint8))
    ds = D.load_dataset(tmp_path / "ps")
    assert Counter(s.split for s in ds.samples) == {"train": 2, "val": 2, "test": 2}
    (tmp_path / "c.csv").write_text("path,label,patient_id,split\na.png,normal,7,val\nb.png,1,8,train\n")
    ds = D.load_dataset(tmp_path / "c.csv")
    assert [(s.label, s.patient, s.split) for s in ds.samples] == [(0, "7", "val"), (1, "8", "train")]


def test_shared_nih1000_class_folders_patient_ids(shared_data):
    ds = D.load_dataset(shared_data / "nih1000-64")
    assert ds.fmt == "folders" and len(ds.samples) == 723
    assert Counter(s.split for s in ds.samples) == {"train": 565, "val": 158}
    assert all(s.patient.isdigit() for s in ds.samples)


def test_shared_csv_layouts(shared_data):
    k = D.load_dataset(shared_data / "kermany-224" / "labels.csv")
    assert Counter(s.split for s in k.samples) == {"train": 3633, "val": 582, "test": 1001}
    n = D.load_dataset(shared_data / "nih-starter-512")
    assert n.fmt == "csv" and len(n.samples) == 499 and sum(s.label for s in n.samples) == 419


# --------------------------------------------------------------------------- splits

def _samples(n_pat: int, seed: int = 0) -> list[D.Sample]:
    rng = np.random.default_rng(seed)
    out = []
    for p in range(n_pat):
        lab = int(rng.random() < 0.3)
        for k in range(int(rng.integers(1, 4))):
            out.append(D.Sample(f"{p}_{k}.png", lab, str(p)))
    return out


def test_patient_split_no_leak_and_stratified():
    s = _samples(300)
    sp = D.split_patients(s, (0.7, 0.1, 0.2), seed=5)
    assert sum(len(v) for v in sp.values()) == len(s)
    pats = {k: {x.patient for x in v} for k, v in sp.items()}
    assert not (pats["train"] & pats["val"] or pats["train"] & pats["test"] or pats["val"] & pats["test"])
    n_pat = len({x.patient for x in s})
    for k, f in (("train", 0.7), ("val", 0.1), ("test", 0.2)):
        assert abs(len(pats[k]) - f * n_pat) <= 2
    overall = np.mean([x.label for x in s])
    for v in sp.values():  # class balance kept (patient-level strata)
        assert abs(np.mean([x.label for x in v]) - overall) < 0.08
    assert D.leak_line(sp).startswith("patients in more than one split: 0 ")
    assert D.split_patients(s, (0.7, 0.1, 0.2), seed=5) == sp  # seeded


def test_kfold_partitions_patients():
    s = _samples(200, seed=1)
    folds = D.kfold_patients(s, 5, seed=2)
    assert sorted(x.path for f in folds for x in f) == sorted(x.path for x in s)
    pats = [{x.patient for x in f} for f in folds]
    for i in range(5):
        for j in range(i + 1, 5):
            assert not pats[i] & pats[j]
        assert {0, 1} <= {x.label for x in folds[i]}
    sizes = [len(p) for p in pats]
    assert max(sizes) - min(sizes) <= 2


def test_remove_leaks_prefers_test_then_val():
    a = [D.Sample("a", 0, "1"), D.Sample("b", 1, "2")]
    sp = {"train": a + [D.Sample("c", 1, "3")], "val": [D.Sample("d", 1, "2")], "test": [D.Sample("e", 0, "1")]}
    notes = D.remove_leaks(sp)
    assert [x.path for x in sp["train"]] == ["c"] and len(sp["val"]) == 1
    assert notes and "dropped 2 images of 2 patients" in notes[0]


def test_cli_reports_no_leak_and_kfold(syn, tmp_path):
    r = _cli("--data", str(syn), "--out", str(tmp_path / "cv"), "--arch", "tiny", "--epochs", "1", "--folds", "3",
             "--image-size", "32", "--batch-size", "16", "--bootstrap", "20", "--no-tensorboard", "--json-progress")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("patients in more than one split: 0 ") == 3
    events = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert [e["fold"] for e in events if e["event"] == "epoch"] == [0, 1, 2]
    assert all(0 <= e["val_auc"] <= 1 for e in events if e["event"] == "epoch")
    assert [e["event"] for e in events].count("done") == 3
    assert (tmp_path / "cv" / "cv_summary.json").is_file() and (tmp_path / "cv" / "fold3" / "report.md").is_file()
    assert "cross-validation: val AUC" in r.stdout


# --------------------------------------------------------------------------- bad data

def test_cli_errors_for_bad_data(tmp_path, syn):
    (tmp_path / "empty").mkdir()
    r = _cli("--data", str(tmp_path / "empty"), "--out", str(tmp_path / "o1"))
    assert r.returncode == 2 and "no class folders" in r.stderr and "empty" in r.stderr
    (tmp_path / "bad.csv").write_text("file,label\nx.png,normal\n")
    r = _cli("--data", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "o2"))
    assert r.returncode == 2 and "missing column 'path'" in r.stderr
    (tmp_path / "nih").mkdir()
    (tmp_path / "nih" / "Data_Entry_2017.csv").write_text("Image Index,Finding Labels\n")
    r = _cli("--data", str(tmp_path / "nih"), "--out", str(tmp_path / "o3"))
    assert r.returncode == 2 and "missing column 'Patient ID'" in r.stderr
    one = tmp_path / "one" / "normal"
    one.mkdir(parents=True)
    for i in range(6):
        cv2.imwrite(str(one / f"{i + 1:08d}_000.png"), np.full((16, 16), 40 * i, np.uint8))
    r = _cli("--data", str(tmp_path / "one"), "--out", str(tmp_path / "o4"), "--arch", "tiny", "--image-size", "16")
    assert r.returncode == 2 and "has only Normal images" in r.stderr
    r = _cli("--data", str(syn), "--out", str(tmp_path / "o5"), "--folds", "1")
    assert r.returncode == 2 and "--folds" in r.stderr
    # `cxrviewer train` is the same command with the same messages
    r = subprocess.run([sys.executable, "-m", "cxrviewer", "train", "--data", str(tmp_path / "bad.csv"),
                        "--out", str(tmp_path / "o6")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "missing column 'path'" in r.stderr and r.stderr.startswith("cxrviewer: error:")
    r = subprocess.run([sys.executable, "-m", "cxrviewer", "evaluate", "--model", str(tmp_path / "nope"),
                        "--data", str(syn)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no such model directory" in r.stderr


def test_unreadable_images_are_skipped_and_listed(tmp_path):
    root = make_dataset(tmp_path / "s", n_patients=12, size=32, seed=4)
    bad = root / "abnormal" / "00000099_000.png"
    bad.write_bytes(b"\x89PNG not really")
    r = _cli("--data", str(root), "--out", str(tmp_path / "run"), "--arch", "tiny", "--epochs", "1",
             "--image-size", "32", "--bootstrap", "10", "--no-tensorboard", "--split", "0.5,0.25,0.25")
    assert r.returncode == 0, r.stderr
    assert "skipped 1 unreadable images" in r.stdout and str(bad) in r.stdout
    rep = (tmp_path / "run" / "report.md").read_text()
    assert "unreadable images skipped: 1" in rep and str(bad) in rep


# --------------------------------------------------------------------------- parity

def test_training_sample_equals_viewer_input(tmp_path, rg1_unci):
    """The unaugmented training sample is exactly what the viewer feeds the model."""
    import torch

    from cxrviewer.core.dicom_io import load_image
    from cxrviewer.ml.preprocess import PreprocessSpec, preprocess

    root = make_dataset(tmp_path / "p", n_patients=2, size=48, seed=5)
    png = sorted((root / "abnormal").glob("*.png"))[0]
    csv_path = tmp_path / "l.csv"
    csv_path.write_text(f"path,label\n{png},abnormal\n{rg1_unci},normal\n")
    spec = PreprocessSpec(size=64)
    cache = D.build_cache(D.load_dataset(csv_path).samples, spec)
    assert not cache.skipped
    ds = D.CachedDataset(cache, train=False)
    for i, s in enumerate(cache.samples):
        u8, _ = ds[i]
        got = D.normalize_batch(u8[None], spec.mean, spec.std)[0].numpy()
        want, _ = preprocess(load_image(s.path), spec)
        np.testing.assert_array_equal(got, want)
        assert isinstance(u8, torch.Tensor) and u8.dtype == torch.uint8
    # augmentation is seeded by (seed, epoch, index): same inputs, same output
    tr = D.CachedDataset(cache, train=True, seed=1)
    tr.set_epoch(3)
    a, b = tr[0][0], tr[0][0]
    assert torch.equal(a, b)
    tr.set_epoch(4)
    assert not torch.equal(a, tr[0][0])


def test_shared_nih_table_with_separate_images_folder(shared_data):
    ds = D.load_dataset(shared_data / "labels" / "Data_Entry_2017_v2020.csv.gz", images=shared_data / "nih-full")
    got = sorted((Path(s.path).name, s.label, s.patient) for s in ds.samples)
    assert got == [("00000001_000.png", 1, "1"), ("00000002_000.png", 0, "2"), ("00000013_003.png", 1, "13")]
    assert any("have no image file" in n for n in ds.notes)


def test_plan_splits_with_separate_sets(tmp_path):
    from training.train import get_args_parser, plan_splits

    main = make_dataset(tmp_path / "main", n_patients=40, size=16, seed=1, layout="csv")
    val = make_dataset(tmp_path / "val", n_patients=10, size=16, seed=2, first_patient=1001)

    def plan(*extra):
        args = get_args_parser().parse_args(["--data", str(main), "--val-data", str(val), "--out", "x", *extra])
        return plan_splits(args)[0]

    sp = plan()  # default: --val-data replaces the val cut; train/test keep 0.7:0.2
    assert len(sp["val"]) == 20 and len(sp["test"]) == 16 and len(sp["train"]) == 64  # 7:2 of 20+20 patients
    sp = plan("--split", "0.6,0.2,0.2")  # explicit: its val cut joins the separate set
    assert len(sp["val"]) == 20 + 16 and len(sp["test"]) == 16
    assert D.leak_line(sp).startswith("patients in more than one split: 0 ")
    # a separate set sharing patients with the test cut loses them (the test split wins)
    shared = make_dataset(tmp_path / "shared", n_patients=40, size=16, seed=3)
    args = get_args_parser().parse_args(["--data", str(main), "--val-data", str(shared), "--out", "x"])
    sp, notes, _ = plan_splits(args)
    assert D.leak_line(sp).startswith("patients in more than one split: 0 ")
    assert len(sp["val"]) == 80 - len(sp["test"]) and any("dropped" in n for n in notes)
