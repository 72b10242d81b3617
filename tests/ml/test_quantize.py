"""INT8 static quantization of the bundled demo model: made, verified on load, close to float32.

One quantization per session (32 validation images of the model's own split, ~10 s on 2 busy
cores); the model folder is a copy (the bundled one is never written).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cxrviewer import paths
from cxrviewer.core.errors import CxrError
from cxrviewer.ml import quantize as Q
from cxrviewer.ml.registry import ModelError, read_card, sha256_file

#: largest |P(Abnormal) int8 - fp32| accepted on test images, and smallest Grad-CAM Pearson of one
#: image. Measured on the bundled 2.0 model (`cxrviewer.bench.int8.prob_spread`, Intel Xeon with
#: AVX-512 VNNI, load average 2-10 from other engineers' runs): 10 calibration draws of 32 of its
#: 233 validation images x both recipes (full-range weights, what VNNI CPUs get; reduce-range
#: 7-bit weights, what CPUs without VNNI get, whose integers cannot saturate so they are the same
#: there) x all 125 test images: max |dP| 0.0336 full range, 0.0274 reduce range (p99 <= 0.025);
#: per-image CAM Pearson >= 0.9880 / 0.9846. Tolerances: 1.8x the worst |dP| (0.06) and twice
#: the worst CAM drop below 1 (0.97). The 0.0524 this test once failed with came from an AMD EPYC
#: without VNNI running full-range weights (u8s8 saturation), a graph such a CPU no longer gets.
PROB_TOLERANCE = 0.06
CAM_PEARSON_ONE_IMAGE = 0.97
CALIBRATION_N = 32
TEST_N = 16

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:onnxruntime.*")


def _bundled() -> Path:
    d = paths.resource("models", "cxr-resnet50-demo")
    if not (d / "card.json").is_file():
        pytest.skip("the bundled demo model is not in this checkout")
    return d


def _copy_model(src: Path, dst: Path, with_int8: bool = True) -> Path:
    dst.mkdir(parents=True)
    for name in ("card.json", "model.safetensors", "model.onnx", "ood.npz") + ((Q.INT8_FILE,) if with_int8 else ()):
        if (src / name).is_file():
            shutil.copy(src / name, dst / name)
    if not with_int8:
        card = json.loads((dst / "card.json").read_text())
        card.pop(Q.INT8_KEY, None)
        (dst / "card.json").write_text(json.dumps(card))
    return dst


@pytest.fixture(scope="module")
def splits(shared_data):
    pytest.importorskip("onnx", reason="quantizing needs onnx (train/dev extra)")
    from cxrviewer.bench.int8 import split_images

    card = read_card(_bundled())
    return split_images(card, "val", shared_data), split_images(card, "test", shared_data)


@pytest.fixture(scope="module")
def int8_dir(tmp_path_factory, splits) -> Path:
    val, test = splits
    d = _copy_model(_bundled(), tmp_path_factory.mktemp("int8") / "demo", with_int8=False)
    test = test[:: max(1, len(test) // TEST_N)][:TEST_N]
    path, ent = Q.quantize_model(d, [p for p, _ in val[:CALIBRATION_N]], [p for p, _ in test], [y for _, y in test],
                                 repeats=1)
    assert path == d / Q.INT8_FILE
    return d


def test_the_demo_models_splits_are_read_back_from_its_card(splits):
    val, test = splits
    card = read_card(_bundled())
    for got, name in ((val, "val"), (test, "test")):
        want = card["training_data"]["splits"][name]
        assert len(got) == want["images"] and sum(y for _, y in got) == want["abnormal"]
    assert not {p for p, _ in val} & {p for p, _ in test}  # calibration never sees a test image


def test_self_contained_fp32_copy_gives_the_same_logits():
    pytest.importorskip("onnx")
    import onnxruntime as ort

    d = _bundled()
    card = read_card(d)
    proto = Q.self_contained_fp32(d, card)
    assert all(t.data_location != 1 for t in proto.graph.initializer)  # no external data left
    assert not [n for n in proto.graph.node if n.op_type == "Cast"]
    x = np.random.default_rng(0).standard_normal((2, 3, 128, 128)).astype(np.float32)
    a = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"input": x})
    b = ort.InferenceSession(str(d / "model.onnx"), providers=["CPUExecutionProvider"]).run(None, {"input": x})
    np.testing.assert_allclose(a[0], b[0], atol=1e-5)
    np.testing.assert_allclose(a[1], b[1], atol=1e-5)


def test_int8_file_is_self_contained_quantized_and_recorded(int8_dir):
    import onnx

    card = read_card(int8_dir)
    ent = card[Q.INT8_KEY]
    p = int8_dir / ent["file"]
    assert ent["sha256"] == sha256_file(p) and ent["weights_sha256"] == card["weights_sha256"]
    assert ent["calibration_n"] == CALIBRATION_N and ent["test_n"] == TEST_N
    for k in ("auc_delta", "cam_pearson", "speedup", "default", "qualifies"):
        assert k in ent
    assert ent["default"] == Q.qualifies(ent)
    # the figures are this CPU's, made with the recipe this CPU gets
    from cxrviewer.ml import cpu_isa

    assert ent["isa"] == cpu_isa.cpu_info() and ent["quantized_for"] == cpu_isa.recipe_isa("auto")
    assert ent["reduce_range"] == (ent["quantized_for"] == "avx2")
    # measured on the bundled model's 125 test images: 96.8 % same label, 97.6 % same OOD call
    assert ent["label_agreement"] >= 0.8 and ent["ood_agreement"] >= 0.8
    assert 10e6 < p.stat().st_size < 40e6  # int8 weights (float32 would be ~94 MB)
    proto = onnx.load(str(p))
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("QuantizeLinear") > 50 and "BatchNormalization" not in ops  # BN folded, then quantized
    assert [o.name for o in proto.graph.output] == ["logits", "layer4"]  # Grad-CAM still has its activations
    assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)


def test_int8_engine_predicts_close_to_fp32_with_a_matching_heatmap(int8_dir, splits):
    from cxrviewer.core.dicom_io import load_image
    from cxrviewer.ml.cam import pearson
    from cxrviewer.ml.inference import Engine

    e8 = Engine.load(int8_dir, precision="int8")
    e32 = Engine.load(int8_dir, precision="fp32")
    assert (e8.precision, e8.backend, e32.precision) == ("int8", "onnxruntime", "fp32")
    _, test = splits
    imgs = [load_image(p) for p, _ in test[-8:]]  # images the fixture did not measure on
    p8 = np.array([p.probability_abnormal for p in e8.predict_batch(imgs)])
    p32 = np.array([p.probability_abnormal for p in e32.predict_batch(imgs)])
    assert np.abs(p8 - p32).max() <= PROB_TOLERANCE
    assert np.abs(p8 - p32).max() > 0  # really another graph
    c8, c32 = e8.predict(imgs[0]).cam, e32.predict(imgs[0]).cam
    assert c8.shape == c32.shape and pearson(c8, c32) >= CAM_PEARSON_ONE_IMAGE


def test_a_tampered_int8_file_is_refused(int8_dir, tmp_path):
    from cxrviewer.ml.inference import Engine

    d = _copy_model(int8_dir, tmp_path / "m")
    card = json.loads((d / "card.json").read_text())
    card[Q.INT8_KEY].update(auc_delta=0.0, cam_pearson=1.0, default=True)  # would be picked by auto
    (d / "card.json").write_text(json.dumps(card))
    data = bytearray((d / Q.INT8_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (d / Q.INT8_FILE).write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum mismatch"):
        Engine.load(d, precision="int8")
    assert Engine.load(d, precision="auto").precision == "fp32"  # auto falls back, with a log line


@pytest.mark.parametrize(("delta", "r", "default", "want"), [
    (0.02, 0.999, True, "fp32"),    # AUC moved too much
    (0.001, 0.95, True, "fp32"),    # heatmaps changed
    (0.001, 0.995, False, "fp32"),  # qualifies, but the record keeps it opt-in
    (-0.004, 0.995, True, "int8"),
])
def test_auto_picks_int8_only_where_the_record_qualifies(int8_dir, tmp_path, delta, r, default, want):
    from cxrviewer.ml.inference import Engine

    d = tmp_path / "m"
    d.mkdir()
    for f in int8_dir.iterdir():  # the big files are only read: links keep the test fast
        (d / f.name).symlink_to(f)
    (d / "card.json").unlink()
    card = read_card(int8_dir).to_dict()
    card[Q.INT8_KEY].update(auc_delta=delta, cam_pearson=r, default=default)
    (d / "card.json").write_text(json.dumps(card))
    assert Engine.load(d, precision="auto").precision == want


def _other_kernel_isa() -> dict:
    """A recorded ``isa`` of a CPU whose INT8 kernel class differs from this one's: this
    CPU's record with its flags edited (an AVX2-only EPYC here; a VNNI Xeon on such a CPU)."""
    from cxrviewer.ml import cpu_isa

    here = dict(cpu_isa.cpu_info())
    if cpu_isa.kernel_of(here) == "avx2":
        return {**here, "vendor": "GenuineIntel", "flags": ["sse4_1", "avx2", "avx512f", "avx512bw", "avx512_vnni"]}
    return {**here, "vendor": "AuthenticAMD", "model": "AMD EPYC 7B12", "arch": "x86_64",
            "flags": ["sse4_1", "avx2"]}


def test_auto_keeps_fp32_on_a_cpu_unlike_the_one_that_measured(int8_dir, tmp_path, caplog):
    """A qualifying default record made on a CPU with another INT8 kernel class (its isa field
    edited) or with no isa at all: auto keeps float32 and says how to measure here; int8 still
    runs on request."""
    from cxrviewer.ml import cpu_isa
    from cxrviewer.ml.inference import Engine

    d = tmp_path / "m"
    d.mkdir()
    for f in int8_dir.iterdir():
        (d / f.name).symlink_to(f)
    (d / "card.json").unlink()
    card = read_card(int8_dir)
    card[Q.INT8_KEY].update(auc_delta=0.001, cam_pearson=0.999, default=True)
    for isa, want in ((cpu_isa.cpu_info(), "int8"), (_other_kernel_isa(), "fp32"), (None, "fp32")):
        ent = dict(card[Q.INT8_KEY], isa=isa)
        if isa is None:
            ent.pop("isa")
        (d / "card.json").write_text(json.dumps({**card, Q.INT8_KEY: ent}))
        caplog.clear()
        assert Engine.load(d, precision="auto").precision == want
        if want == "fp32":
            assert "cxrviewer models quantize" in caplog.text and "this CPU is" in caplog.text
        assert Engine.load(d, precision="int8").precision == "int8"


def test_cpuinfo_decides_the_int8_kernel_class_and_the_recipe():
    from cxrviewer.ml import cpu_isa

    def info(vendor, model, flags, arch="x86_64"):
        text = f"processor\t: 0\nvendor_id\t: {vendor}\nmodel name\t: {model}\nflags\t\t: fpu sse2 {flags}\n\n"
        return cpu_isa.parse_cpuinfo(text + "processor\t: 1\n", arch)

    epyc = info("AuthenticAMD", "AMD EPYC 7B12 64-Core Processor", "sse4_1 avx avx2 fma")
    xeon = info("GenuineIntel", "Intel(R) Xeon(R) Platinum 8481C", "sse4_1 avx2 avx512f avx512bw avx512_vnni avx_vnni")
    spr = info("GenuineIntel", "Intel(R) Xeon(R) Platinum 8480+", "avx2 avx512f avx512_vnni amx_tile amx_int8 amx_bf16")
    skx = info("GenuineIntel", "Intel(R) Xeon(R) Gold 6148", "sse4_1 avx2 avx512f avx512bw")
    adl = info("GenuineIntel", "12th Gen Intel(R) Core(TM) i7-12700", "sse4_1 avx2 avx_vnni")
    arm = cpu_isa.parse_cpuinfo("processor\t: 0\nFeatures\t: fp asimd asimddp\n", "aarch64")
    assert epyc["vendor"] == "AuthenticAMD" and epyc["flags"] == ["sse4_1", "avx2"]
    kinds = [cpu_isa.kernel_of(x) for x in (epyc, xeon, spr, skx, adl, arm)]
    assert kinds == ["avx2", "avx512-vnni", "amx", "avx512", "avx-vnni", "arm64"]
    assert [cpu_isa.saturates(k) for k in kinds] == [True, False, False, True, False, False]
    assert [cpu_isa.recipe_isa("auto", x) for x in (epyc, xeon, spr, skx, adl, arm)] == \
           ["avx2", "vnni", "vnni", "avx2", "vnni", "vnni"]
    assert cpu_isa.recipe_isa("avx2", xeon) == "avx2" and cpu_isa.recipe_isa("vnni", epyc) == "vnni"
    assert "AMD EPYC 7B12" in cpu_isa.describe(epyc) and "avx2" in cpu_isa.describe(epyc)
    assert cpu_isa.kernel_of(None) == "unknown" and cpu_isa.kernel_of({"int8_kernel": "avx2"}) == "avx2"
    with pytest.raises(ValueError, match="isa must be one of"):
        cpu_isa.recipe_isa("avx512")


def test_the_no_vnni_recipe_cannot_saturate_u8s8_sums(tmp_path):
    """The avx2 recipe (reduce_range) keeps every int8 weight in [-64, 64], so a u8 x s8 pair
    sum is at most 2 x 255 x 64 = 32640 and fits the int16 lane of AVX2/AVX-512's VPMADDUBSW
    on any CPU; the vnni recipe uses the full range (up to 127: 64770 would saturate)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["y"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["y"], ["out"])],
        "conv", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 3, 16, 16])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, 8, 16, 16])],
        initializer=[numpy_helper.from_array(w, "w")])
    proto = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.standard_normal((4, 3, 16, 16)).astype(np.float32)
    peak = {}
    for isa in ("avx2", "vnni"):
        out = tmp_path / f"{isa}.onnx"
        facts = Q.quantize_graph(proto, x, out, tmp_path, isa=isa)
        assert facts["quantized_for"] == isa and facts["reduce_range"] == (isa == "avx2")
        q = [numpy_helper.to_array(t) for t in onnx.load(str(out)).graph.initializer if t.data_type == TensorProto.INT8]
        assert q, "no int8 weights"
        peak[isa] = max(int(np.abs(a.astype(np.int32)).max()) for a in q)
    assert peak["avx2"] <= 64 and 2 * 255 * peak["avx2"] <= 32767
    assert peak["vnni"] > 64


def test_int8_without_a_quantized_graph_names_the_fix(tmp_path, capsys, rg1_unci):
    from cxrviewer.cli import main
    from cxrviewer.ml.inference import Engine

    d = _copy_model(_bundled(), tmp_path / "m", with_int8=False)
    with pytest.raises(CxrError, match="cxrviewer models quantize"):
        Engine.load(d, precision="int8")
    with pytest.raises(CxrError, match="ONNX Runtime"):
        Engine.load(d, backend="torch", precision="int8")
    rc = main(["infer", str(rg1_unci), "--out", str(tmp_path / "r.csv"), "--model", str(d), "--precision", "int8"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and "has no INT8 model" in err[-1] and "cxrviewer models quantize" in err[-1]
    assert not (tmp_path / "r.csv").exists()


def test_a_read_only_models_int8_graph_lives_in_the_user_cache(int8_dir):
    bundled = _bundled()
    assert Q._bundled(bundled) and not Q._bundled(int8_dir)
    card = read_card(bundled)
    if Q.int8_entry(bundled, card) is None:
        with pytest.raises(ModelError, match="cxrviewer models quantize"):
            Q.find_int8(bundled, card)
    # the record the quantizer writes for a read-only folder: graph + int8.json, keyed by the weights
    ent = dict(read_card(int8_dir)[Q.INT8_KEY])
    cache = Q.cache_dir(card["weights_sha256"])
    cache.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copy(int8_dir / Q.INT8_FILE, cache / Q.INT8_FILE)
        (cache / "int8.json").write_text(json.dumps(ent))
        p, got = Q.find_int8(bundled, card)
        assert p == cache / Q.INT8_FILE and got["sha256"] == ent["sha256"]
        (cache / "int8.json").write_text(json.dumps({**ent, "weights_sha256": "0" * 64}))  # other weights
        assert Q.int8_entry(bundled, card) is None
        (cache / "int8.json").write_text("{not json")
        assert Q.choose("auto", bundled, card) is None  # auto: float32, with a log line
        with pytest.raises(ModelError, match="unreadable INT8 record"):
            Q.choose("int8", bundled, card)
    finally:
        shutil.rmtree(cache)


def test_auc_matches_a_hand_count():
    # pairs (pos, neg): 0.35>0.1, 0.35<0.4, 0.8>0.1, 0.8>0.4 -> 3 of 4; a tie counts half
    assert Q.auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert Q.auc([0, 1], [0.5, 0.5]) == 0.5
    assert np.isnan(Q.auc([1, 1], [0.2, 0.3]))


def test_bench_archive_int8_measurer_is_found_and_says_why_it_skips(tmp_path, monkeypatch):
    import types

    from cxrviewer.bench import archive
    from cxrviewer.bench.archive_int8 import measure

    assert archive._call("cxrviewer.bench.archive_int8:measure") is measure
    monkeypatch.setenv("CXRVIEWER_SHARED_DATA", str(tmp_path / "absent"))
    got = measure(types.SimpleNamespace(model_dir=_bundled(), batch_size=8))
    assert set(got) == {"int8_skipped"} and "test data is not here" in got["int8_skipped"]


def test_the_card_dialog_text_has_an_int8_section(int8_dir):
    from cxrviewer.ml.card_text import card_sections

    card = read_card(int8_dir)
    rows = dict(dict(card_sections(card))["INT8 (quantized graph)"])
    assert f"{card[Q.INT8_KEY]['auc_delta']:+.4f}" in rows["Test AUC"] and f"{TEST_N} test images" in rows["Test AUC"]
    assert rows["Used by default"].startswith("yes" if card[Q.INT8_KEY]["default"] else "no")
    from cxrviewer.ml import cpu_isa

    assert rows["Measured on"].startswith(cpu_isa.describe())  # whose figures these are
