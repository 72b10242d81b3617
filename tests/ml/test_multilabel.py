"""A multi-finding model end to end: engine, all findings' maps, infer CSV, refused images,
SR entries per finding, evaluate --record and the "never oversold" policy.

The model is torchxrayvision's card with random weights at 64 px (the architecture and the
head are the real ones; 64 px keeps the tests to seconds). Parity with torchxrayvision itself
at 512 px is tests/ml/test_xrv.py.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

SIZE = 64


@pytest.fixture(scope="module")
def ml_dir(tmp_path_factory) -> Path:
    from cxrviewer.ml import xrv
    from cxrviewer.ml.arch import resnet50
    from cxrviewer.ml.onnx_model import write_model_onnx
    from cxrviewer.ml.registry import save_model_dir

    torch.manual_seed(1)
    net = resnet50.build_net(18, 1)
    with torch.no_grad():  # random features are large: keep the probabilities off 0/1
        net.fc.weight.mul_(0.02)
    tmp = tmp_path_factory.mktemp("ml")
    card = xrv.make_card(xrv.DEFAULT_WEIGHTS, "test-xrv", tmp / "w.pt", "0" * 64)
    card["preprocessing"]["size"] = SIZE
    d = save_model_dir(net, tmp / "test-xrv", card, dtype="float32")
    write_model_onnx(d, net)
    return d


@pytest.fixture(scope="module")
def engine(ml_dir):
    from cxrviewer.ml.inference import Engine

    return Engine.load(ml_dir, backend="onnxruntime")


def test_all_findings_maps_from_one_pass(engine, rg1_unci):
    from cxrviewer.core.dicom_io import load_image

    pred = engine.predict(load_image(rg1_unci), cam=True)
    assert len(pred.findings) == 18 and pred.finding_maps.shape[:1] == (18,)
    # the top finding's map is the one shown by default; every other one on demand
    top = pred.ranked_findings()[0]
    m = pred.finding_map(top.name)
    assert m.shape == (load_image(rg1_unci).rows, load_image(rg1_unci).cols)
    assert np.allclose(m, pred.cam, atol=1e-6)
    other = pred.finding_map(pred.ranked_findings()[-1].name)
    assert not np.allclose(other, m)  # different findings, different maps
    # the closed form equals torch's head-only Grad-CAM per finding (exact, not approximate)
    from cxrviewer.ml.cam import head_gradcam

    x, _ = engine.prepare(load_image(rg1_unci))
    tm = engine._torch_model()
    for i in (0, 7, 17):
        ref = head_gradcam(tm, torch.from_numpy(x)[None], i)[0].low_res
        assert np.corrcoef(ref.ravel(), pred.finding_maps[i].ravel())[0, 1] > 0.9999
    # no operating point: never positive, never forced to 0.5
    for f in pred.findings:
        if f.op_point is None:
            assert not f.positive
    assert pred.probability_abnormal == pytest.approx(max(f.probability for f in pred.findings if f.has_op_point))


def _run_cli(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "cxrviewer", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_infer_csv_columns_and_refused(ml_dir, rg1_unci, tmp_path):
    """One p_ column per finding + findings; a refused image (a CT) carries no probability."""
    import shutil

    from pydicom.data import get_testdata_file

    from cxrviewer.ml.archive import ALL_COLUMNS

    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(rg1_unci, src / "chest.dcm")
    shutil.copy(get_testdata_file("CT_small.dcm"), src / "ct.dcm")
    out = tmp_path / "r.csv"
    r = _run_cli("infer", str(src), "--out", str(out), "--model", str(ml_dir), "--workers", "0")
    assert r.returncode == 0, r.stderr
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
        header = rows[0].keys() if rows else []
    cols = list(header)
    assert cols[: len(ALL_COLUMNS)] == ALL_COLUMNS  # existing columns keep names and order
    assert "p_atelectasis" in cols and "p_lung_opacity" in cols and "p_enlarged_cardiomediastinum" in cols
    assert cols[-1] == "findings" and len(cols) == len(ALL_COLUMNS) + 19
    by = {Path(r["path"]).name: r for r in rows}
    chest, ct = by["chest.dcm"], by["ct.dcm"]
    ps = {c: float(chest[c]) for c in cols if c.startswith("p_")}
    with_op = [c for c in ps if c not in ("p_lung_lesion", "p_enlarged_cardiomediastinum")]
    assert float(chest["probability_abnormal"]) == pytest.approx(max(ps[c] for c in with_op), abs=1e-6)
    assert chest["label"] == ("Abnormal" if float(chest["probability_abnormal"]) >= 0.5 else "Normal")
    listed = [f for f in chest["findings"].split(";") if f]
    from cxrviewer.ml.card import finding_column

    assert all(ps[finding_column(f)] >= 0.5 for f in listed)
    assert ct["status"] != "ok"
    assert ct["probability_abnormal"] == "" and ct["label"] == "" and ct["findings"] == ""
    assert all(ct[c] == "" for c in ps)


def test_sr_of_refused_image_has_no_probability(tmp_path):
    """Today's bug: the SR of a CT carried P(Abnormal) and "AI classification = Abnormal"
    beside out_of_distribution. A refused result writes the gate's verdict only."""
    import pydicom
    from pydicom.data import get_testdata_file

    from cxrviewer.dicom.common import AiResult
    from cxrviewer.dicom.sr import make_sr, read_ai_results

    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ai = AiResult(probability_abnormal=0.9, label="Abnormal", threshold=0.5, model_name="m", model_version="1",
                  ood_status="out_of_distribution", ood_reason="modality CT is not a chest radiograph")
    sr = make_sr(ct, ai=ai)
    text = str(sr)
    assert "Probability of Abnormal" not in text and "AI classification" not in text
    assert "out_of_distribution" in text
    back = read_ai_results(sr)
    assert len(back) == 1 and back[0].refused and back[0].label == ""


def test_sr_one_entry_per_finding(engine, rg1_unci):
    import pydicom

    from cxrviewer.core.dicom_io import load_image
    from cxrviewer.dicom.build import ai_result_from_prediction
    from cxrviewer.dicom.sr import make_sr, read_ai_results

    pred = engine.predict(load_image(rg1_unci), cam=False)
    ai = ai_result_from_prediction(pred, engine.card.weights_sha256, engine.card)
    sr = make_sr(pydicom.dcmread(rg1_unci), ai=ai)
    text = str(sr)
    assert "36118008" in text and "Pneumothorax" in text  # SNOMED CT where one exists
    assert "FINDING-LUNG-OPA" in text  # private code otherwise
    back = read_ai_results(sr)[0]
    got = {f.name: f.probability for f in back.findings}
    assert len(got) == 18
    for f in pred.findings:
        assert got[f.name] == pytest.approx(f.probability, abs=1e-6)


def test_evaluate_record_and_policy(ml_dir, tmp_path):
    """evaluate --record stores local_validations (overall and per finding); models show
    prints them; the policy reads them."""
    import shutil

    from pydicom.data import get_testdata_file

    from cxrviewer.ml.policy import verdict_policy
    from cxrviewer.ml.registry import read_card

    d = tmp_path / "m"
    shutil.copytree(ml_dir, d)
    imgs = []
    for i, name in enumerate(["RG1_UNCI.dcm", "RG1_UNCR.dcm", "RG1_J2KR.dcm", "RG1_J2KI.dcm"]):
        p = get_testdata_file(name, download=False)
        if not p:
            pytest.skip("pydicom-data's RG1 files are not installed")
        q = tmp_path / f"img{i}.dcm"
        shutil.copy(p, q)
        imgs.append(q)
    data = tmp_path / "labels.csv"
    data.write_text("path,label,Pneumothorax\n" + "".join(
        f"{q},{'abnormal' if i % 2 else 'normal'},{i % 2}\n" for i, q in enumerate(imgs)))
    r = _run_cli("evaluate", "--model", str(d), "--data", str(data), "--record", "--json")
    assert r.returncode == 0, r.stderr
    card = read_card(d)
    assert len(card.local_validations) == 1
    rec = card.local_validations[0]
    for k in ("n", "n_refused", "auc", "auc_ci", "sensitivity", "specificity", "threshold", "date", "data"):
        assert k in rec, k
    assert rec["n"] == 4 and "Pneumothorax" in rec.get("per_finding", {})
    # 4 images cannot earn a verdict: the CI is wide
    pol = verdict_policy(card)
    assert not pol.verdict and "not validated here" in pol.reason
    assert pol.basis == "local" and "n=4" in pol.basis_text


def test_policy_rules():
    from cxrviewer.ml.card import ModelCard
    from cxrviewer.ml.policy import verdict_policy

    base = {"name": "m", "version": "1", "weights_sha256": "a" * 64}
    # the demo's situation: a training test split whose CI reaches below 0.70
    demo = ModelCard.from_dict({**base, "metrics": {"auc": {"value": 0.59, "ci95": [0.45, 0.72], "split": "test"}}})
    p = verdict_policy(demo)
    assert not p.verdict and p.reason == "not validated here: test AUC 0.59 [0.45–0.72]" and p.basis == "training test split"
    good = ModelCard.from_dict({**base, "metrics": {"auc": {"value": 0.9, "ci95": [0.85, 0.94], "split": "test"}}})
    assert verdict_policy(good).verdict
    # published figures alone never suffice
    pub = ModelCard.from_dict({**base, "published": {"status": "published, not verified here"}})
    p = verdict_policy(pub)
    assert not p.verdict and p.reason == "published figures only: validate on your cases" and p.basis == "published"
    none = ModelCard.from_dict(base)
    assert verdict_policy(none).basis == "none" and not verdict_policy(none).verdict
    # a local validation with a tight CI earns the verdict, and it beats the training split
    rec = {"n": 400, "n_refused": 3, "auc": 0.88, "auc_ci": [0.84, 0.91], "sensitivity": 0.8, "specificity": 0.8,
           "threshold": 0.5, "date": "2026-12-07", "data": "site.csv"}
    loc = ModelCard.from_dict({**base, "metrics": demo["metrics"], "local_validations": [rec]})
    p = verdict_policy(loc)
    assert p.verdict and p.basis == "local" and "n=400" in p.basis_text and "2026-12-07" in p.basis_text
    # per finding for multi-label models
    fin = {**rec, "per_finding": {"Effusion": {**rec, "auc_ci": [0.80, 0.9]}, "Mass": {**rec, "auc_ci": [0.5, 0.8]}}}
    ml = ModelCard.from_dict({**base, "local_validations": [fin]})
    assert verdict_policy(ml, "Effusion").verdict and not verdict_policy(ml, "Mass").verdict
    assert not verdict_policy(ml, "Nodule").verdict  # no local record for it


def test_models_show_prints_records(ml_dir, tmp_path):
    import shutil

    d = tmp_path / "data" / "models" / "test-xrv"
    shutil.copytree(ml_dir, d)
    raw = json.loads((d / "card.json").read_text())
    raw["local_validations"] = [{"n": 5, "n_refused": 0, "auc": 0.7, "auc_ci": [0.4, 0.9], "sensitivity": 0.5,
                                 "specificity": 0.5, "threshold": 0.5, "date": "2026-12-07", "data": "x.csv"}]
    (d / "card.json").write_text(json.dumps(raw))
    r = _run_cli("models", "show", "test-xrv", env_extra={"CXRVIEWER_DATA_DIR": str(tmp_path / "data")})
    assert r.returncode == 0, r.stderr
    body = json.loads("\n".join(ln for ln in r.stdout.splitlines() if not ln.startswith("#")))
    assert body["local_validations"][0]["n"] == 5 and len(body["findings"]) == 18


def test_fit_ood_images_for_any_model(ml_dir, shared_data, tmp_path):
    """Until fit-ood runs, header rules only (and the engine says so); --images DIR fits the
    learned check of a multi-finding model on a folder of the site's own films."""
    import shutil

    from cxrviewer.ml.inference import Engine

    d = tmp_path / "m"
    shutil.copytree(ml_dir, d)
    assert Engine.load(d, backend="onnxruntime").gate_mode == "header_rules_only"
    films = tmp_path / "films"
    films.mkdir()
    for p in sorted((shared_data / "nih-starter-512" / "images").rglob("*.png"))[:12]:
        shutil.copy(p, films / p.name)
    r = _run_cli("models", "fit-ood", str(d), "--images", str(films), "--dims", "8", "--json")
    assert r.returncode == 0, r.stderr
    eng = Engine.load(d, backend="onnxruntime")
    assert eng.gate_mode == "learned" and "learned check" in eng.gate_mode_text


def test_infer_parquet_and_json_multi_finding(ml_dir, rg1_unci, tmp_path):
    """Parquet carries the same per-finding columns, as numbers (null for a refused image)."""
    pq = pytest.importorskip("pyarrow.parquet")
    import shutil

    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(rg1_unci, src / "chest.dcm")
    out = tmp_path / "r.parquet"
    r = _run_cli("infer", str(src), "--out", str(out), "--model", str(ml_dir), "--workers", "0")
    assert r.returncode == 0, r.stderr
    rows = pq.read_table(out).to_pylist()
    assert len(rows) == 1 and isinstance(rows[0]["p_atelectasis"], float)
    js = tmp_path / "r.json"
    r = _run_cli("infer", str(src), "--out", str(js), "--model", str(ml_dir), "--workers", "0")
    assert r.returncode == 0, r.stderr
    (res,) = json.loads(js.read_text())["results"]
    assert res["p_atelectasis"] == pytest.approx(rows[0]["p_atelectasis"]) and "findings" in res
    assert rows[0]["probability_abnormal"] == pytest.approx(
        max(v for k, v in rows[0].items() if k.startswith("p_") and k not in ("p_lung_lesion", "p_enlarged_cardiomediastinum")))


def test_bundled_model_records_live_in_user_data():
    """The read-only bundled model's validations go to the user's data, keyed by its weights'
    sha256; its card.json is never written; the merged card carries them."""
    from cxrviewer import paths
    from cxrviewer.ml.policy import verdict_policy
    from cxrviewer.ml.registry import read_card
    from cxrviewer.ml.validation import card_with_validations, record_validation, store_path

    demo = paths.resource("models") / "cxr-resnet50-demo"
    if not (demo / "card.json").is_file():
        pytest.skip("the bundled demo model is not in this checkout")
    before = (demo / "card.json").read_bytes()
    card = read_card(demo)
    rec = {"n": 300, "n_refused": 2, "auc": 0.81, "auc_ci": [0.76, 0.86], "sensitivity": 0.7, "specificity": 0.75,
           "threshold": 0.709, "date": "2026-12-07", "data": "site.csv"}
    where = record_validation(demo, card, rec)
    try:
        assert where == store_path(card.weights_sha256) and (demo / "card.json").read_bytes() == before
        merged = card_with_validations(demo, card)
        assert merged.local_validations[-1]["n"] == 300
        assert verdict_policy(card).basis == "training test split" and not verdict_policy(card).verdict
        assert verdict_policy(merged).verdict and verdict_policy(merged).basis == "local"
        from cxrviewer.ml.inference import Engine

        # the engine the viewer loads carries them: the panel's policy sees the local validation
        assert verdict_policy(Engine.load(demo, backend="onnxruntime").card).basis == "local"
    finally:
        where.unlink(missing_ok=True)
