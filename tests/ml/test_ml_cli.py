"""`cxrviewer infer` end to end on a small folder with bad files; `cxrviewer models`."""

from __future__ import annotations

import csv
import json
import shutil

import cv2
import numpy as np
import pytest

from cxrviewer.cli import main


@pytest.fixture()
def user_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("CXRVIEWER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CXRVIEWER_RESOURCES", str(tmp_path / "res"))  # no bundled models
    return tmp_path


@pytest.fixture()
def folder(tmp_path, rg1_unci):
    d = tmp_path / "study"
    d.mkdir()
    shutil.copy(rg1_unci, d / "rg1.dcm")
    rng = np.random.default_rng(0)
    img = (rng.random((300, 260)) * 255).astype(np.uint8)
    cv2.imwrite(str(d / "chest.png"), img)
    cv2.imwrite(str(d / "colour.jpg"), np.dstack([img, img // 2, img]))  # an RGB radiograph photo
    (d / "broken.dcm").write_bytes(b"DICM" + b"\x00" * 50)  # not a DICOM file
    (d / "truncated.png").write_bytes((d / "chest.png").read_bytes()[:60])
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    return d, before


def test_infer_csv_json_and_cams(resnet_dir, folder, tmp_path, capsys):
    d, before = folder
    out = tmp_path / "res" / "results.csv"
    cams = tmp_path / "cams"
    rc = main(
        [
            "infer",
            str(d),
            "--out",
            str(out),
            "--model",
            str(resnet_dir),
            "--cam-dir",
            str(cams),
            "--batch-size",
            "2",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 0, err
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    # the contract's columns first (issue 16 adds its resume columns after them)
    assert list(rows[0].keys())[:8] == [
        "path",
        "sop_instance_uid",
        "probability_abnormal",
        "label",
        "model",
        "model_version",
        "status",
        "reason",
    ]
    by_name = {r["path"].rsplit("/", 1)[-1]: r for r in rows}
    # unreadable files are rows too (issue 16): status=error and the reason, no score
    assert set(by_name) == {"rg1.dcm", "chest.png", "colour.jpg", "broken.dcm", "truncated.png"}
    for name in ("broken.dcm", "truncated.png"):
        bad = by_name.pop(name)
        assert bad["status"] == "error" and bad["reason"] and bad["probability_abnormal"] == ""
    rows = [r for r in rows if r["status"] != "error"]
    assert (
        by_name["rg1.dcm"]["sop_instance_uid"].startswith("1.")
        and by_name["chest.png"]["sop_instance_uid"] == ""
    )
    for r in rows:
        assert r["model"] == "test-resnet" and r["model_version"] == "1.0"
        if r["path"].endswith("colour.jpg"):
            # a true-colour picture is refused by the gate: no score, the reason says why
            assert r["status"] == "out_of_distribution" and "greyscale" in r["reason"]
            assert r["probability_abnormal"] == "" and r["label"] == ""
            continue
        assert r["status"] == "ok"
        p = float(r["probability_abnormal"])
        assert 0.0 <= p <= 1.0 and r["label"] == ("Abnormal" if p >= 0.5 else "Normal")
    # the bad files are reported with reasons, not fatal
    assert "unreadable:" in err and "broken.dcm" in err and "truncated.png" in err
    # one overlay per scored image, same size as the image, actually coloured
    pngs = sorted(cams.glob("*.png"))
    assert len(pngs) == 2 and not any(p.name.startswith("colour_") for p in pngs)
    rg1_png = next(p for p in pngs if p.name.startswith("rg1_"))
    ov = cv2.imread(str(rg1_png))
    from cxrviewer.core.dicom_io import load_image

    img = load_image(d / "rg1.dcm")
    assert ov.shape == (img.rows, img.cols, 3)
    assert np.abs(ov[..., 0].astype(int) - ov[..., 2].astype(int)).max() > 50  # not gray
    # sources untouched, nothing left beside the output
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before
    assert [p.name for p in out.parent.iterdir()] == ["results.csv"]

    # JSON output
    outj = tmp_path / "results.json"
    assert main(["infer", str(d), "--out", str(outj), "--model", str(resnet_dir)]) == 0
    doc = json.loads(outj.read_text())
    assert doc["model"] == "test-resnet" and len(doc["results"]) == 3
    assert {e["path"].rsplit("/", 1)[-1] for e in doc["errors"]} == {"broken.dcm", "truncated.png"}
    assert all(e["reason"] for e in doc["errors"])
    got = {r["path"]: r["probability_abnormal"] for r in doc["results"]}
    for r in rows:
        if r["status"] == "ok":
            assert abs(got[r["path"]] - float(r["probability_abnormal"])) < 1e-5
        else:
            assert got[r["path"]] == ""
    assert {r["path"]: r["status"] for r in doc["results"]} == {r["path"]: r["status"] for r in rows}


def test_infer_gate_refuses_non_chest_and_score_all(resnet_dir, tmp_path, rg1_unci):
    """A CT and an RG3 tibia radiograph are refused with their reasons; --score-all scores them
    (status and reason still say out_of_distribution) and leaves the chest rows unchanged."""
    from pydicom.data import get_testdata_file

    d = tmp_path / "mixed"
    d.mkdir()
    shutil.copy(rg1_unci, d / "chest.dcm")
    for name in ("CT_small.dcm", "RG3_UNCI.dcm"):
        src = get_testdata_file(name, download=False)
        if not src:
            pytest.skip(f"pydicom test file {name} is not installed")
        shutil.copy(src, d / name)

    def run(*extra):
        out = tmp_path / f"r{len(extra)}.csv"
        assert main(["infer", str(d), "--out", str(out), "--model", str(resnet_dir), *extra]) == 0
        with open(out, newline="") as fh:
            return {r["path"].rsplit("/", 1)[-1]: r for r in csv.DictReader(fh)}

    plain, every = run(), run("--score-all")
    assert plain["CT_small.dcm"]["status"] == "out_of_distribution"
    assert "Modality CT" in plain["CT_small.dcm"]["reason"]
    assert plain["RG3_UNCI.dcm"]["status"] == "out_of_distribution" and plain["RG3_UNCI.dcm"]["reason"]
    for name in ("CT_small.dcm", "RG3_UNCI.dcm"):
        assert plain[name]["probability_abnormal"] == "" and plain[name]["label"] == ""
        assert every[name]["status"] == "out_of_distribution" and every[name]["reason"] == plain[name]["reason"]
        assert 0.0 <= float(every[name]["probability_abnormal"]) <= 1.0 and every[name]["label"]
    assert plain["chest.dcm"]["status"] == "ok" and plain["chest.dcm"] == every["chest.dcm"]


def test_infer_errors(user_dirs, tmp_path, capsys, resnet_dir):
    assert (
        main(
            [
                "infer",
                str(tmp_path / "missing"),
                "--out",
                str(tmp_path / "o.csv"),
                "--model",
                str(resnet_dir),
            ]
        )
        != 0
    )
    assert "missing" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    rc = main(["infer", str(tmp_path / "empty"), "--out", str(tmp_path / "o.csv")])
    assert rc == 1 and "no model installed" in capsys.readouterr().err
    rc = main(
        ["infer", str(tmp_path / "empty"), "--out", str(tmp_path / "o.csv"), "--model", "nope"]
    )
    assert rc == 1 and "no model named 'nope'" in capsys.readouterr().err


def test_models_cli(user_dirs, resnet_dir, tmp_path, capsys):
    assert main(["models", "list"]) == 0
    assert "no models installed" in capsys.readouterr().out
    assert main(["models", "import", str(resnet_dir), "--activate"]) == 0
    assert "imported test-resnet" in capsys.readouterr().out
    # a second model, then a broken one: the import fails and the active one stays
    from cxrviewer.ml.model import build_model
    from cxrviewer.ml.registry import save_model_dir

    other = save_model_dir(
        build_model(), tmp_path / "other", {"name": "other", "version": "3"}, dtype="float16"
    )
    assert main(["models", "import", str(other)]) == 0
    capsys.readouterr()
    bad = tmp_path / "bad"
    shutil.copytree(other, bad)
    card = json.loads((bad / "card.json").read_text())
    card["name"], card["weights_sha256"] = "bad", "0" * 64
    (bad / "card.json").write_text(json.dumps(card))
    assert main(["models", "import", str(bad), "--activate"]) == 1
    err = capsys.readouterr().err
    assert "checksum mismatch" in err and "active model unchanged (test-resnet)" in err

    assert main(["models", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (
        len(lines) == 2 and lines[0].startswith("  other") and lines[1].startswith("* test-resnet")
    )
    assert main(["models", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(m["name"], m["active"]) for m in listed] == [("other", False), ("test-resnet", True)]

    assert main(["models", "show", "other"]) == 0
    out = capsys.readouterr().out
    card = json.loads(out[out.index("{") :])
    assert card["name"] == "other" and card["weights_dtype"] == "float16" and "intended_use" in card

    assert main(["models", "activate", "other"]) == 0
    assert "active model: other 3" in capsys.readouterr().out
    assert main(["models", "activate", "missing"]) == 1
    assert "active model unchanged (other)" in capsys.readouterr().err
    assert main(["models", "show"]) == 0 and "other 3 (user, active)" in capsys.readouterr().out


def test_models_fit_ood_writes_the_gate(resnet_dir, tmp_path, capsys):
    """`cxrviewer models fit-ood DIR --data FOLDER`: features through the engine, ood.npz and
    card["ood"] written, the engine then refuses a CT by header and scores with the gate."""
    from cxrviewer.ml.inference import Engine

    d = tmp_path / "model"
    shutil.copytree(resnet_dir, d)
    before = json.loads((d / "card.json").read_text())
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    rng = np.random.default_rng(3)
    base = (rng.random((64, 64)) * 200).astype(np.uint8)
    for i in range(10):
        cv2.imwrite(str(imgs / f"im{i}.png"), cv2.GaussianBlur(base, (0, 0), 1 + i * 0.3))
    rc = main(["models", "fit-ood", str(d), "--data", str(imgs), "--json"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    entry = json.loads(out.out)
    card = json.loads((d / "card.json").read_text())
    assert card["ood"] == entry and (d / "ood.npz").is_file()
    assert entry["n_train"] + entry["n_val"] == 10 and entry["keep_rate_val"] >= 0.95
    assert {k: v for k, v in card.items() if k != "ood"} == before
    e = Engine.load(d, backend="onnxruntime", device="cpu")
    assert e.gate is not None and e.gate.threshold == pytest.approx(entry["threshold"])
    from cxrviewer.core.dicom_io import load_image

    p = e.predict(load_image(imgs / "im0.png"), cam=False)
    assert p.gate.distance is not None and p.gate.threshold == pytest.approx(entry["threshold"])
    # a missing model is one clear error
    assert main(["models", "fit-ood", str(tmp_path / "nope"), "--data", str(imgs)]) == 1
    assert "nope" in capsys.readouterr().err
