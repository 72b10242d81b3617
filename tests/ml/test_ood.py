"""The OOD gate: header rules on real files, the Ledoit-Wolf Mahalanobis check, its file and card entry."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from cxrviewer.core.dicom_io import load_image
from cxrviewer.core.errors import CxrError
from cxrviewer.ml import ood


def _pyd(name: str):
    from pydicom.data import get_testdata_file

    p = get_testdata_file(name, download=False)
    if not p:
        pytest.skip(f"pydicom test file {name} is not installed")
    return p


# --------------------------------------------------------------------------- header rules


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("CT_small.dcm", "Modality CT"),
        ("MR_small.dcm", "Modality MR"),
        ("rtdose.dcm", "Modality RTDOSE"),
    ],
)
def test_non_radiograph_modalities_refused_with_reason(name, words):
    out = ood.check_header(load_image(_pyd(name)))
    assert out.status == ood.OUT_OF_DISTRIBUTION and not out.ok
    assert words in out.reason and "CR or DX" in out.reason and out.rule == "header"


def test_chest_cr_passes(rg1_unci):
    out = ood.check_header(load_image(rg1_unci))
    assert out.ok and out.reason == "" and out.caution == ""


def test_rg3_tibia_refused():
    img = load_image(_pyd("RG3_UNCI.dcm"))
    out = ood.check_header(img)
    assert not out.ok, (img.header.modality, img.header.body_part, out)


def _dicom(tmp_path, name, rows=512, cols=512, **extra):
    from cxrviewer.core.synthetic import SECONDARY_CAPTURE, chest_like, make_dataset, write_dataset

    sop = extra.pop("sop_class", None)
    px = chest_like(rows, cols, bits=12)
    kw = {"sop_class": sop} if sop else {}
    ds = make_dataset(px, extra=extra, **kw)
    _ = SECONDARY_CAPTURE
    return load_image(write_dataset(ds, tmp_path / f"{name}.dcm"))


def test_rules_on_synthetic_headers(tmp_path):
    from cxrviewer.core.synthetic import SECONDARY_CAPTURE

    ok = ood.check_header(_dicom(tmp_path, "dx", Modality="DX", BodyPartExamined="CHEST", ViewPosition="PA"))
    assert ok.ok and not ok.caution
    absent = ood.check_header(_dicom(tmp_path, "nobody", Modality="CR"))
    assert absent.ok  # Body Part Examined absent: allowed
    lat = ood.check_header(_dicom(tmp_path, "lat", Modality="DX", ViewPosition="LL"))
    assert not lat.ok and "View Position LL" in lat.reason and "lateral" in lat.reason
    knee = ood.check_header(_dicom(tmp_path, "knee", Modality="DX", BodyPartExamined="KNEE"))
    assert not knee.ok and "Body Part Examined KNEE" in knee.reason
    small = ood.check_header(_dicom(tmp_path, "small", rows=128, cols=200, Modality="DX"))
    assert not small.ok and "200×128" in small.reason
    sc = ood.check_header(
        _dicom(tmp_path, "sc", Modality="SC", BodyPartExamined="CHEST", sop_class=SECONDARY_CAPTURE)
    )
    assert sc.ok and "secondary capture" in sc.caution and "DX-like" in sc.caution


def test_colour_refused_grey_rgb_allowed(tmp_path):
    import cv2

    rng = np.random.default_rng(0)
    grey = rng.integers(0, 255, (300, 300), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "grey_rgb.png"), cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
    col = rng.integers(0, 255, (300, 300, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "colour.png"), col)
    assert ood.check_header(load_image(tmp_path / "grey_rgb.png")).ok
    out = ood.check_header(load_image(tmp_path / "colour.png"))
    assert not out.ok and "greyscale" in out.reason


def test_combine_first_refusal_wins_cautions_accumulate():
    a = ood.GateOutcome(caution="c1")
    b = ood.refused("r1", "header")
    c = ood.GateOutcome("ok", "", "c2", "", 3.0, 5.0)
    out = ood.combine(a, b, c)
    assert out.status == ood.OUT_OF_DISTRIBUTION and out.reason == "r1"
    assert out.caution == "c1; c2" and out.distance == 3.0 and out.threshold == 5.0
    assert ood.combine(a, c).ok


# --------------------------------------------------------------------------- learned check


def _naive_ledoit_wolf(z: np.ndarray) -> float:
    """Ledoit & Wolf (2004), Lemma 3.2-3.4, written from the paper's definitions."""
    n, p = z.shape
    s = z.T @ z / n
    mu = np.trace(s) / p
    d2 = np.sum((s - mu * np.eye(p)) ** 2) / p
    b2 = sum(np.sum((np.outer(x, x) - s) ** 2) / p for x in z) / n**2
    return float(min(b2, d2) / d2)


def test_ledoit_wolf_matches_the_paper():
    rng = np.random.default_rng(1)
    for n, p in ((40, 10), (15, 30)):
        z = rng.normal(size=(n, p)) @ rng.normal(size=(p, p))
        z -= z.mean(0)
        _, delta, _ = ood.ledoit_wolf(z)
        assert abs(delta - _naive_ledoit_wolf(z)) < 1e-9
    # more samples than dimensions on isotropic data -> much shrinkage; strong structure -> little
    iso = rng.normal(size=(30, 60))
    assert ood.ledoit_wolf(iso - iso.mean(0))[1] > 0.5


def _features(rng, n, p=64, shift=0.0):
    base = rng.normal(size=(p, p)) * 0.3 + np.eye(p)
    return np.maximum(rng.normal(size=(n, p)) @ base + 2.0 + shift, 0.0)


def test_fit_keeps_95_percent_and_refuses_far_points():
    rng = np.random.default_rng(2)
    tr, va, test_in = _features(rng, 400), _features(rng, 200), _features(rng, 500)
    far = _features(rng, 100, shift=3.0)
    g = ood.fit_feature_gate(tr, va, keep=0.95, dims=32)
    assert g.keep_rate_val >= 0.95 and g.n_train == 400 and g.n_val == 200 and g.dims == 32
    assert np.mean(g.distance(test_in) <= g.threshold) > 0.85  # fresh in-distribution points pass
    assert np.mean(g.distance(far) > g.threshold) > 0.95  # shifted ones are refused
    one = g.check(far[0])
    assert not one.ok and one.rule == "features" and one.distance > one.threshold
    assert "unlike the images" in one.reason


def test_low_rank_storage_is_exact_at_full_rank():
    """With every eigenpair kept the stored form is the full Ledoit-Wolf Mahalanobis distance."""
    rng = np.random.default_rng(3)
    tr, va = _features(rng, 50, p=20), _features(rng, 30, p=20)
    g = ood.fit_feature_gate(tr, va, dims=19)
    z = (tr - tr.mean(0)) / g.scale.astype(np.float64)
    s, delta, mu = ood.ledoit_wolf(z)
    prec = np.linalg.inv((1 - delta) * s + delta * mu * np.eye(20))
    zv = (va - g.mean.astype(np.float64)) / g.scale.astype(np.float64)
    want = np.sqrt(np.einsum("ij,jk,ik->i", zv, prec, zv))
    # 19 of 20 pairs kept: the 20th is the "rest", so exact
    assert np.allclose(g.distance(va), want, rtol=1e-4)


def test_fit_rejects_bad_inputs():
    rng = np.random.default_rng(4)
    with pytest.raises(ValueError, match="at least 3"):
        ood.fit_feature_gate(rng.normal(size=(2, 8)), rng.normal(size=(5, 8)))
    with pytest.raises(ValueError, match="validation features"):
        ood.fit_feature_gate(rng.normal(size=(10, 8)), rng.normal(size=(5, 7)))
    with pytest.raises(ValueError, match="keep"):
        ood.fit_feature_gate(rng.normal(size=(10, 8)), rng.normal(size=(5, 8)), keep=1.0)


def test_save_load_roundtrip_and_checksum(tmp_path):
    rng = np.random.default_rng(5)
    d = tmp_path / "m"
    d.mkdir()
    card = {"name": "m", "version": "1", "weights_sha256": "ab" * 32, "threshold": 0.4}
    (d / "card.json").write_text(json.dumps(card))
    assert ood.load_feature_gate(d, card) is None  # no entry: no gate
    g = ood.fit_feature_gate(_features(rng, 100, p=2048 // 16), _features(rng, 40, p=2048 // 16), dims=16)
    entry = ood.save_feature_gate(d, g)
    newcard = json.loads((d / "card.json").read_text())
    assert newcard["ood"] == entry
    for k in ("file", "sha256", "threshold", "keep_rate_val", "feature"):
        assert k in entry
    assert entry["file"] == "ood.npz" and entry["feature"] == "layer4_gap"
    assert {k: v for k, v in newcard.items() if k != "ood"} == card  # nothing else touched
    g2 = ood.load_feature_gate(d)
    x = _features(rng, 10, p=128)
    assert np.allclose(g2.distance(x), g.distance(x), rtol=1e-6)
    assert g2.threshold == g.threshold and g2.keep_rate_val == g.keep_rate_val
    # an altered file is refused with the file named
    raw = bytearray((d / "ood.npz").read_bytes())
    raw[-10] ^= 0xFF
    (d / "ood.npz").write_bytes(bytes(raw))
    with pytest.raises(CxrError, match="checksum mismatch") as ei:
        ood.load_feature_gate(d)
    assert ei.value.path.endswith("ood.npz")
    (d / "ood.npz").unlink()
    with pytest.raises(CxrError, match="missing"):
        ood.load_feature_gate(d)


# --------------------------------------------------------------------------- in the engine


def test_engine_applies_gate(resnet_dir, rg1_unci, tmp_path):
    """The engine's outcome = header rules + the stored gate on the same forward pass's features."""
    from cxrviewer.ml.inference import Engine

    d = tmp_path / "gated"
    shutil.copytree(resnet_dir, d)
    e0 = Engine.load(d, backend="onnxruntime", device="cpu")
    assert e0.gate is None
    ct = load_image(_pyd("CT_small.dcm"))
    rg1 = load_image(rg1_unci)
    p_ct = e0.predict(ct, cam=False)
    assert not p_ct.scored and "Modality CT" in p_ct.gate.reason and 0 <= p_ct.probability_abnormal <= 1
    assert "scored anyway" in p_ct.caution
    p_rg = e0.predict(rg1, cam=False)
    assert p_rg.scored and "no learned out-of-distribution check" in p_rg.caution
    # a gate fitted on RG1 variants: RG1 itself is near, the CT far
    variants = [rg1]
    for k in range(1, 12):
        from dataclasses import replace

        a = np.ascontiguousarray(rg1.stored[k * 20 :, k * 15 :])
        variants.append(replace(rg1, stored=a, modality=a.astype(np.float32), padding_mask=None))
    f = e0.features(variants)
    assert f.shape == (12, 2048) and np.isfinite(f).all()
    ood.save_feature_gate(d, ood.fit_feature_gate(f[:8], f[8:], dims=7))
    e = Engine.load(d, backend="onnxruntime", device="cpu")
    assert e.gate is not None
    p = e.predict(rg1, cam=False)
    want = float(e.gate.distance(e.features([rg1]))[0])
    assert abs(p.gate.distance - want) < 1e-3 * max(1.0, want)
    assert p.scored == (want <= e.gate.threshold)
    batch = e.predict_batch([rg1, ct])
    assert batch[0].gate.distance == pytest.approx(p.gate.distance, rel=1e-3)
    assert not batch[1].scored and batch[1].gate.rule == "header"
    # an altered ood.npz: the model still loads, every result says the check is off
    (d / "ood.npz").write_bytes(b"garbage")
    e2 = Engine.load(d, backend="onnxruntime", device="cpu")
    assert e2.gate is None and "checksum" in e2.gate_error
    assert "checksum" in e2.predict(rg1, cam=False).caution
