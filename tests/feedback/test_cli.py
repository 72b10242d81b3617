"""``cxrviewer feedback``: add (with the model's output), withdraw, export -> train end to end,
and stats against a hand computation."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cxrviewer.cli import main
from cxrviewer.feedback import FeedbackStore, ModelOutput, load_keyed
from training.synthetic import make_dataset

REPO = Path(__file__).resolve().parents[2]
TINY = ["--arch", "tiny", "--device", "cpu", "--no-tensorboard", "--bootstrap", "50"]


def _cli(*args: str, data_dir: Path, reader: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", CXRVIEWER_DATA_DIR=str(data_dir))
    env.pop("CXRVIEWER_READER", None)
    if reader:
        env["CXRVIEWER_READER"] = reader
    return subprocess.run([sys.executable, "-m", "cxrviewer", *args], capture_output=True, text=True,
                          env=env, timeout=240)


def test_add_export_train_end_to_end(tmp_path):
    data = tmp_path / "userdata"
    root = make_dataset(tmp_path / "syn", n_patients=16, size=32, seed=7, images_per_patient=1)
    images = sorted(root.rglob("*.png"))
    truth = {p: "abnormal" if p.parent.name == "abnormal" else "normal" for p in images}
    # the CLI, as a script would: with the active (bundled) model's output, and without a model
    r = _cli("feedback", "add", str(images[0]), "--label", truth[images[0]], "--note", "first", "--json",
             data_dir=data, reader="alice")
    assert r.returncode == 0, r.stderr
    first = json.loads(r.stdout)
    assert first["reader"] == "alice" and first["label"] == truth[images[0]] and first["note"] == "first"
    m = first["model"]
    assert m["name"] and m["version"] and m["weights_sha256"]
    if m["scored"]:
        assert 0.0 <= m["probability"] <= 1.0 and m["label"] in ("normal", "abnormal")
    else:  # the gate refused the synthetic film: no probability, no label
        assert m["probability"] is None and m["label"] is None
    assert first["model"]["content_key"].startswith("c:")
    r = _cli("feedback", "add", str(images[1]), "--label", truth[images[1]], "--no-model", "--reader", "bob",
             "--json", data_dir=data)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["model"] is None
    # the rest through the API the viewer uses
    with FeedbackStore(data / "feedback.sqlite") as s:
        for p in images[1:]:
            key, _ = load_keyed(p)
            s.record(key, "alice", truth[p], path=str(p))
        for p in images[2:7]:
            key, _ = load_keyed(p)
            s.record(key, "bob", truth[p], path=str(p))
    out = tmp_path / "labels.csv"
    r = _cli("feedback", "export", "--out", str(out), "--json", data_dir=data)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["rows"] == 22 and summary["images"] == 16 and summary["readers"] == {"alice": 16, "bob": 6}
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
        header = rows and list(rows[0])
    assert header == ["path", "label", "patient_id", "content_key", "reader", "recorded_at", "model",
                      "model_version", "model_probability"]
    assert {(Path(r["path"]), r["label"]) for r in rows} == set(truth.items())
    only_bob = tmp_path / "bob.csv"
    r = _cli("feedback", "export", "--out", str(only_bob), "--reader", "bob", "--json", data_dir=data)
    assert json.loads(r.stdout)["rows"] == 6
    # the export is a --data file as it is
    from training.train import cli as train_cli

    run = tmp_path / "run"
    rc = train_cli(["--data", str(out), "--out", str(run), *TINY, "--epochs", "1", "--image-size", "32",
                    "--batch-size", "8"])
    assert rc == 0
    res = json.loads((run / "metrics.json").read_text())
    assert res["sources"][0]["feedback"] == {"labels": 22, "readers": {"alice": 16, "bob": 6}}
    report = (run / "report.md").read_text()
    assert "Labels from reader feedback: 22 of 22**, from 2 readers: alice (16), bob (6)" in report
    assert "6 images called by more than one reader (0 with different labels)" in report


def test_withdraw_and_one_line_failures(tmp_path, rg1_uncr, capsys, monkeypatch):
    monkeypatch.setenv("CXRVIEWER_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("CXRVIEWER_READER", "carol")
    assert main(["feedback", "add", str(rg1_uncr), "--label", "normal", "--no-model"]) == 0
    assert main(["feedback", "withdraw", str(rg1_uncr), "--json"]) == 0
    capsys.readouterr()
    cases = [
        (["feedback", "withdraw", str(rg1_uncr)], "carol has no call on this image"),
        (["feedback", "add", str(tmp_path / "none.dcm"), "--label", "normal"], "no such file"),
        (["feedback", "export", "--out", str(tmp_path / "x.csv")], "no reader calls to export"),
        (["feedback", "export", "--out", str(tmp_path / "x.csv"), "--since", "yesterday"], "not an ISO date"),
        (["feedback", "add", str(rg1_uncr), "--label", "normal", "--no-model", "--agree", "Mass"],
         "needs the model's output"),
    ]
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"DICM" * 50)
    cases.append((["feedback", "add", str(bad), "--label", "normal", "--no-model"], str(bad)))
    for argv, msg in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and msg in err, (argv, err)
    assert not (tmp_path / "x.csv").exists()
    # an existing file is never overwritten without --force
    (tmp_path / "keep.csv").write_text("mine\n")
    assert main(["feedback", "add", str(rg1_uncr), "--label", "abnormal", "--no-model"]) == 0
    assert main(["feedback", "export", "--out", str(tmp_path / "keep.csv")]) == 2
    assert (tmp_path / "keep.csv").read_text() == "mine\n"
    assert main(["feedback", "export", "--out", str(tmp_path / "keep.csv"), "--force"]) == 0
    assert "abnormal" in (tmp_path / "keep.csv").read_text()


def _out(label: str | None, name: str = "m") -> ModelOutput:
    if label is None:  # the gate refused the image: no probability, no label
        return ModelOutput(name, "1", scored=False)
    return ModelOutput(name, "1", probability=0.9 if label == "abnormal" else 0.1, label=label, threshold=0.5)


def test_stats_match_a_hand_computation(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CXRVIEWER_DATA_DIR", str(tmp_path / "d"))
    # reader (reference) vs model: TP 6, FN 3, TN 9, FP 2 over three readers
    table = ([("abnormal", "abnormal")] * 6 + [("abnormal", "normal")] * 3 + [("normal", "normal")] * 9
             + [("normal", "abnormal")] * 2)
    readers = ("alice", "bob", "carol")
    with FeedbackStore(tmp_path / "d" / "feedback.sqlite") as s:
        for i, (reader_label, model_label) in enumerate(table):
            who = readers[i % 3]
            s.record(f"i:{i}", who, "normal" if reader_label == "abnormal" else "abnormal",
                     model=_out(model_label))  # superseded by the next call: must not count
            s.record(f"i:{i}", who, reader_label, model=_out(model_label))
        s.record("i:nomodel1", "alice", "abnormal")  # no model output: in n only
        s.record("i:nomodel2", "bob", "normal")
        s.record("i:refused", "carol", "abnormal", model=_out(None))  # not scored: in n only
        s.record("i:gone", "alice", "abnormal", model=_out("normal"))
        s.withdraw("i:gone", "alice")  # withdrawn: not counted at all
        s.record("i:other", "alice", "abnormal", model=_out("abnormal", name="other-model"))
    assert main(["feedback", "stats", "--model", "m", "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    # By hand: n = 20 paired + 1 refused = 21 calls with model m (the two without a model and
    # the other model's call are filtered out by --model); 20 scored pairs.
    assert (st["n"], st["n_readers"], st["n_with_model"]) == (21, 3, 20)
    assert (st["tp"], st["fn"], st["tn"], st["fp"]) == (6, 3, 9, 2)
    # agreement (6 + 9) / 20; chance: model 8/20 abnormal, readers 9/20: pe = .4*.45 + .6*.55 = .51
    # kappa = (.75 - .51) / (1 - .51) = 24/49; SE = sqrt(.75 * .25 / (20 * .49^2)) = 0.197601
    assert st["agreement"] == pytest.approx(0.75)
    assert st["kappa"] == pytest.approx(24 / 49)
    assert st["kappa_ci"] == pytest.approx([24 / 49 - 1.959964 * 0.197601, 24 / 49 + 1.959964 * 0.197601], abs=1e-5)
    # sensitivity 6/9, specificity 9/11; Wilson 95 % by hand (z^2 = 3.8415):
    # 6/9: centre (.6667 + .2134) / 1.4268 = .6168, half 1.96 * sqrt(.02469 + .01186) / 1.4268 = .2626
    # 9/11: centre (.8182 + .1746) / 1.3492 = .7358, half 1.96 * sqrt(.01352 + .00794) / 1.3492 = .2128
    # (both agree with scipy.stats.binomtest(k, n).proportion_ci(method="wilson"))
    assert st["sensitivity"] == pytest.approx(6 / 9)
    assert st["sensitivity_ci"] == pytest.approx([0.3542, 0.8794], abs=1e-4)
    assert st["specificity"] == pytest.approx(9 / 11)
    assert st["specificity_ci"] == pytest.approx([0.5230, 0.9486], abs=1e-4)
    # without --model: every current call counts in n; the other model's call joins the pairs
    assert main(["feedback", "stats", "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert (st["n"], st["n_with_model"], st["tp"]) == (24, 21, 7)
    # no model output at all: the model figures are null
    assert main(["feedback", "stats", "--model", "never-used", "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["n"] == 0 and st["agreement"] is None and st["kappa"] is None
    assert st["sensitivity"] is None and st["sensitivity_ci"] is None and st["specificity"] is None


def test_multi_finding_calls_export_one_column_per_finding(tmp_path, rg1_uncr, capsys, monkeypatch):
    monkeypatch.setenv("CXRVIEWER_DATA_DIR", str(tmp_path / "d"))
    key, _ = load_keyed(rg1_uncr)
    out = ModelOutput("xrv", "1", probability=0.8, label="abnormal", threshold=0.5,
                      findings={"Effusion": 0.8, "Lung Opacity": 0.6, "Mass": 0.1}, flagged=("Effusion", "Lung Opacity"))
    with FeedbackStore(tmp_path / "d" / "feedback.sqlite") as s:
        s.record(key, "alice", "abnormal", path=str(rg1_uncr), model=out,
                 findings={"Effusion": "agree", "Lung Opacity": "disagree", "Mass": "added"})
        s.record(key, "bob", "normal", path=str(rg1_uncr), model=out, findings={"Effusion": "disagree"})
    assert main(["feedback", "export", "--out", str(tmp_path / "l.csv")]) == 0
    with open(tmp_path / "l.csv", newline="") as fh:
        rows = {r["reader"]: r for r in csv.DictReader(fh)}
    assert list(rows["alice"])[9:] == ["effusion", "lung_opacity", "mass"]
    assert [rows["alice"][c] for c in ("effusion", "lung_opacity", "mass")] == ["1", "0", "1"]
    assert [rows["bob"][c] for c in ("effusion", "lung_opacity", "mass")] == ["0", "", ""]
    assert rows["alice"]["model_probability"] == "0.800000"
