"""INT8 inference: ONNX Runtime static quantization of a model's graph, verified on load.

``model.int8.onnx`` is made from the model's own ``model.onnx`` (whose fp16 weights are
external data inside ``model.safetensors``, see :mod:`cxrviewer.ml.onnx_model`):

1. the weights are read from the verified safetensors file and cast to float32 in memory, the
   ``Cast`` nodes dropped, and a self-contained float32 copy written to a temp folder (ONNX
   Runtime's quantizer does not follow external data into a safetensors file);
2. ``quant_pre_process`` (shape inference and ORT's basic optimisations, which fold each
   BatchNorm into its Conv: a folded Conv is quantized per output channel, an unfolded pair
   would be quantized twice);
3. ``quantize_static`` in QDQ format, int8 weights per output channel, uint8 activations
   calibrated (MinMax) on preprocessed images of the model's **validation** split, fed exactly
   as the engine feeds them (:func:`cxrviewer.ml.preprocess.preprocess`). The head (``Gemm``)
   stays float32: it is 0.02 % of the compute and the probabilities come straight out of it.
   The ``layer4`` output stays a graph output, so Grad-CAM works as in float32 (closed form
   from the activations and the float32 fc weights).

The file is self-contained (~25 MB) and recorded with its sha256 and what it was measured to
do on the model's **test** split (:func:`measure`) under ``card["int8"]``; for a model folder
that cannot be written (the bundled one: the viewer bundle's budget has no room for a second
copy of the weights) both go to the user cache, keyed by the weights' sha256. ``precision``
``"auto"`` uses the INT8 graph only where that entry says it qualifies: test AUC within
:data:`AUC_TOLERANCE` of float32 and the mean CAM Pearson at least :data:`CAM_PEARSON_MIN`,
and only on a CPU like the one that measured it (the entry's ``isa``, see
:mod:`cxrviewer.ml.cpu_isa`: without VNNI, ONNX Runtime's u8s8 kernels saturate on full-range
weights). On a CPU without VNNI the graph is quantized with 7-bit weights (``reduce_range``),
which cannot saturate; ``models quantize --isa avx2`` makes that graph on any CPU.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cxrviewer import atomic, paths
from cxrviewer.ml.registry import CARD_FILE, ModelError, read_card, sha256_file, verify_checksum

INT8_FILE = "model.int8.onnx"
#: the card (or cache sidecar) key; its entry's keys are a contract: add, rename none
INT8_KEY = "int8"
PRECISIONS = ("auto", "fp32", "int8")
#: the largest |test AUC change| that lets ``auto`` pick INT8 (the issue's rule)
AUC_TOLERANCE = 0.005
#: the smallest mean CAM Pearson (INT8 vs float32 maps on the test split) that lets ``auto`` pick INT8
CAM_PEARSON_MIN = 0.99
#: images per forward pass when measuring (``cxrviewer infer``'s default batch)
MEASURE_BATCH = 8
#: at most this many validation images calibrate (MinMax needs few; more only costs time)
MAX_CALIBRATION = 256


def quantize_hint(model_dir: str | os.PathLike) -> str:
    return f"make it with `cxrviewer models quantize {model_dir}`"


# --------------------------------------------------------------------------- where it lives


def cache_dir(weights_sha256: str) -> Path:
    """The user-cache folder of a read-only model's INT8 graph (keyed by its weights)."""
    return paths.user_cache_dir() / "int8" / str(weights_sha256)


def _writable(model_dir: Path) -> bool:
    return os.access(model_dir, os.W_OK) and os.access(model_dir / CARD_FILE, os.W_OK)


def _bundled(model_dir: Path) -> bool:
    """The registry's bundled models are read-only by contract, whatever the file modes say
    (a source checkout has them writable; the repo must not grow a 25 MB file by accident)."""
    try:
        return model_dir.resolve().is_relative_to(paths.resource("models").resolve())
    except OSError:
        return False


def int8_entry(model_dir: str | os.PathLike, card: dict[str, Any]) -> tuple[dict[str, Any], Path] | None:
    """``(entry, file)`` of the model's INT8 graph (the card's, else the user cache's), or None.

    Only an entry made from these very weights counts (``weights_sha256``); the file is not
    hashed here (:func:`find_int8` does).
    """
    model_dir = Path(model_dir)
    sha = str(card.get("weights_sha256", ""))
    ent = card.get(INT8_KEY)
    if isinstance(ent, Mapping) and ent.get("weights_sha256") == sha:
        name = str(ent.get("file", INT8_FILE))
        if Path(name).name != name:
            raise ModelError(model_dir / CARD_FILE, f"int8 file {name!r} must be a plain file name")
        return ent, model_dir / name
    side = cache_dir(sha) / "int8.json"
    if side.is_file():
        try:
            ent = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ModelError(side, f"unreadable INT8 record: {e}") from None
        if isinstance(ent, dict) and ent.get("weights_sha256") == sha:
            return ent, side.parent / INT8_FILE
    return None


def find_int8(model_dir: str | os.PathLike, card: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    """The verified INT8 graph of a model and its entry.

    Raises
    ------
    ModelError
        The model has none (the message says how to make it), or its file is missing or its
        sha256 differs from the recorded one.
    """
    found = int8_entry(model_dir, card)
    if found is None:
        raise ModelError(model_dir, f"has no INT8 model: {quantize_hint(model_dir)}")
    ent, p = found
    if not p.is_file():
        raise ModelError(p, f"missing: the INT8 record names it; {quantize_hint(model_dir)}")
    want = str(ent.get("sha256") or "").lower()
    got = sha256_file(p)
    if got != want:
        raise ModelError(
            p,
            f"checksum mismatch: sha256 {got[:12]}… but the INT8 record says {want[:12] or 'nothing'}… "
            f"(corrupt or altered INT8 file); {quantize_hint(model_dir)} again",
        )
    return p, ent


def qualifies(ent: dict[str, Any] | None) -> bool:
    """Whether a measured INT8 entry meets the rule for being the default."""
    if not isinstance(ent, dict):
        return False
    try:
        return abs(float(ent["auc_delta"])) <= AUC_TOLERANCE and float(ent["cam_pearson"]) >= CAM_PEARSON_MIN
    except (KeyError, TypeError, ValueError):
        return False


def measured_here(ent: dict[str, Any] | None, isa: dict[str, Any] | None = None) -> tuple[bool, str]:
    """Whether an INT8 record's figures hold on this CPU: ``(ok, why not)``.

    They hold only where ONNX Runtime runs the same INT8 kernel class as on the CPU that
    measured (:func:`cxrviewer.ml.cpu_isa.kernel_of`): a full-range graph measured with VNNI
    saturates on AVX2 (the issue's EPYC), and the speedup is a property of the kernel. A record
    without ``isa`` (made before it was recorded) holds nowhere for ``auto``.
    """
    from cxrviewer.ml import cpu_isa

    here = cpu_isa.cpu_info() if isa is None else isa
    rec = ent.get("isa") if isinstance(ent, dict) else None
    k_rec, k_here = cpu_isa.kernel_of(rec), cpu_isa.kernel_of(here)
    if k_rec == "unknown" or k_here == "unknown" or k_rec != k_here:
        where = cpu_isa.describe(rec) if isinstance(rec, dict) else "a CPU it did not record"
        return False, (f"its figures were measured on {where}; this CPU is {cpu_isa.describe(here)}: "
                       "measure it here with `cxrviewer models quantize`")
    return True, ""


def _cuda_session(device: str) -> bool:
    """Whether an engine session for ``device`` would run on ONNX Runtime's CUDA provider."""
    if device == "cpu":
        return False
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


def choose(precision: str, model_dir: str | os.PathLike, card: dict[str, Any], device: str = "auto") -> Path | None:
    """The INT8 graph to run for ``precision``, or None for float32.

    ``"int8"`` insists (a clear error when there is none); ``"auto"`` takes it only where the
    entry qualifies and says ``default`` **and** was measured on a CPU with this CPU's INT8
    kernel class (:func:`measured_here`), and falls back to float32 if the file fails its check.
    ``"auto"`` also keeps float32 on a CUDA session: the speedup is a CPU measurement (int8
    kernels with VNNI), and ONNX Runtime's CUDA provider runs most QDQ graphs no faster.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if precision == "fp32":
        return None
    if precision == "int8":
        path, ent = find_int8(model_dir, card)
        from cxrviewer.ml import cpu_isa

        if not ent.get("reduce_range") and cpu_isa.saturates(cpu_isa.kernel_of(cpu_isa.cpu_info())):
            import logging

            logging.getLogger(__name__).warning(
                "INT8 graph %s has full-range weights and this CPU (%s) has no VNNI: its u8s8 kernels may "
                "saturate (requantize here with `cxrviewer models quantize`)", path, cpu_isa.describe())
        return path
    try:
        found = int8_entry(model_dir, card)
        if found is None or not (qualifies(found[0]) and found[0].get("default", False)) or _cuda_session(device):
            return None
        here, why = measured_here(found[0])
        if not here:
            import logging

            logging.getLogger(__name__).warning("INT8 model not used by precision auto (float32 instead): %s", why)
            return None
        return find_int8(model_dir, card)[0]
    except ModelError as e:  # an unreadable record or an altered file: float32, said in the log
        import logging

        logging.getLogger(__name__).warning("INT8 model not used (float32 instead): %s", e)
        return None


# --------------------------------------------------------------------------- the float32 graph


def self_contained_fp32(model_dir: str | os.PathLike, card: dict[str, Any]) -> Any:
    """The model's verified ``model.onnx`` with every weight inlined as float32 (an onnx ModelProto).

    The external-data initializers point into ``model.safetensors``; they are read from there
    (after its checksum), cast to float32 and renamed to the ``Cast`` outputs they fed, and
    the ``Cast`` nodes go. Needs ``onnx``.
    """
    import onnx
    from onnx import numpy_helper

    from cxrviewer.ml.onnx_model import card_onnx, safetensors_layout

    model_dir = Path(model_dir)
    wfile = verify_checksum(model_dir, card)
    src = card_onnx(model_dir, card)
    if src is None:
        raise ModelError(model_dir, "card.json names no ONNX file: write it with `cxrviewer models onnx DIR` first")
    proto = onnx.load(str(src), load_external_data=False)
    g = proto.graph
    st_dtype = {10: np.float16, 1: np.float32}
    casts = {n.input[0]: n for n in g.node if n.op_type == "Cast" and n.input and n.name.endswith("::to_float")}
    inits = []
    with open(wfile, "rb") as fh:
        for init in g.initializer:
            if init.data_location != onnx.TensorProto.EXTERNAL:
                inits.append(init)
                continue
            ext = {e.key: e.value for e in init.external_data}
            if ext.get("location") != wfile.name or init.data_type not in st_dtype:
                raise ModelError(src, f"initializer {init.name} points at {ext.get('location')!r}, not the weights file")
            fh.seek(int(ext["offset"]))
            raw = fh.read(int(ext["length"]))
            arr = np.frombuffer(raw, dtype=st_dtype[init.data_type]).reshape(tuple(init.dims)).astype(np.float32)
            cast = casts.get(init.name)
            inits.append(numpy_helper.from_array(arr, cast.output[0] if cast is not None else init.name))
    dropped = {id(n) for n in casts.values()}
    keep = [n for n in g.node if id(n) not in dropped]
    del g.initializer[:]
    g.initializer.extend(inits)
    del g.node[:]
    g.node.extend(keep)
    layout = safetensors_layout(wfile)  # only to fail early on a weights file of another model
    if not layout:
        raise ModelError(wfile, "no tensors")
    return proto


# --------------------------------------------------------------------------- calibration


def preprocess_paths(paths_: Iterable[str], card: dict[str, Any]) -> tuple[np.ndarray, list[str], list[tuple[str, str]]]:
    """Decode and preprocess images exactly as the engine does -> (``(n, 3, S, S)``, kept, skipped)."""
    from cxrviewer.core.dicom_io import load_image
    from cxrviewer.core.errors import CxrError
    from cxrviewer.ml.preprocess import PreprocessSpec, preprocess

    spec = PreprocessSpec.from_dict(card.get("preprocessing"))
    xs, kept, skipped = [], [], []
    for p in paths_:
        try:
            xs.append(preprocess(load_image(p), spec)[0])
            kept.append(str(p))
        except (CxrError, OSError, ValueError) as e:
            skipped.append((str(p), str(e)))
    x = np.stack(xs).astype(np.float32) if xs else np.zeros((0, 3, spec.size, spec.size), np.float32)
    return x, kept, skipped


def _reader(x: np.ndarray, batch: int = 16):
    """An ONNX Runtime CalibrationDataReader over preprocessed images."""
    from onnxruntime.quantization import CalibrationDataReader

    class _Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(range(0, len(x), batch))

        def get_next(self) -> dict[str, np.ndarray] | None:
            i = next(self._it, None)
            return None if i is None else {"input": np.ascontiguousarray(x[i : i + batch])}

    return _Batches()


def quantize_graph(fp32_proto: Any, calib_x: np.ndarray, out: Path, workdir: Path,
                   isa: str = "vnni") -> dict[str, Any]:
    """Static QDQ quantization of a self-contained float32 graph into ``out``; returns its facts.

    ``isa`` ``"vnni"``: full-range int8 weights (exact on VNNI/AMX/ARM kernels, where u8 x s8
    sums go straight to int32); ``"avx2"``: ONNX Runtime's ``reduce_range`` (weights in
    [-64, 64]), so the int16 pair sums of the AVX2/AVX-512 ``VPMADDUBSW`` kernel
    (2 x 255 x 64 = 32640 <= 32767) cannot saturate: the same integers on every x86 CPU
    (see :mod:`cxrviewer.ml.cpu_isa`).
    """
    if isa not in ("vnni", "avx2"):
        raise ValueError(f"isa must be 'vnni' or 'avx2', not {isa!r}")
    reduce = isa == "avx2"
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if len(calib_x) == 0:
        raise ModelError(None, "no calibration images could be read")
    fp32 = workdir / "fp32.onnx"
    pre = workdir / "pre.onnx"
    onnx.save(fp32_proto, str(fp32))
    quant_pre_process(str(fp32), str(pre))
    head = [n.name for n in onnx.load(str(pre), load_external_data=False).graph.node if n.op_type == "Gemm"]
    quantize_static(
        str(pre), str(out), _reader(calib_x),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=head,
        calibrate_method=CalibrationMethod.MinMax,
        reduce_range=reduce,
        # uint8 activations x int8 weights is the x86 fast path (VNNI); int8 x int8 ran at
        # 0.8x float32 here, uint8 x int8 at 0.27x
        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
    )
    weights = ("int8 per output channel, 7-bit range [-64, 64] (reduce_range: no u8s8 saturation without VNNI)"
               if reduce else "int8 per output channel")
    return {"format": "QDQ", "weights": weights, "activations": "uint8 (MinMax, asymmetric)",
            "float_nodes": head, "quantized_for": isa, "reduce_range": reduce}


# --------------------------------------------------------------------------- measuring


def auc(y: Sequence[int], score: Sequence[float]) -> float:
    """ROC AUC (Mann-Whitney, ties count half); nan with one class only."""
    y = np.asarray(y, dtype=np.int64)
    s = np.asarray(score, dtype=np.float64)
    pos, neg = s[y == 1], s[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order), np.float64)
    allv = np.concatenate([pos, neg])[order]
    # average ranks over ties
    i = 0
    while i < len(allv):
        j = i
        while j + 1 < len(allv) and allv[j + 1] == allv[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2.0) / (len(pos) * len(neg)))


def _run_all(backend: Any, x: np.ndarray, batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(logits, CAMs of the Abnormal class, pooled features, seconds) over ``x`` in batches."""
    logits, maps, feats = [], [], []
    t0 = time.perf_counter()
    for i in range(0, len(x), batch):
        xb = x[i : i + batch]
        lg, m, f = backend.run(xb, True, [1] * len(xb))
        logits.append(lg)
        maps.append(m)
        feats.append(f)
    return np.concatenate(logits), np.concatenate(maps), np.concatenate(feats), time.perf_counter() - t0


def _gate_agreement(model_dir: Path, card: dict[str, Any], f32: np.ndarray, f8: np.ndarray) -> float | None:
    """Share of images on which the learned OOD check decides alike with either graph's
    features (it was fitted on float32 features; None without a gate)."""
    from cxrviewer.core.errors import CxrError
    from cxrviewer.ml import ood

    try:
        gate = ood.load_feature_gate(model_dir, card)
    except CxrError:
        return None
    if gate is None:
        return None
    return float(np.mean((gate.distance(f32) <= gate.threshold) == (gate.distance(f8) <= gate.threshold)))


def measure(model_dir: str | os.PathLike, int8_path: Path, test_x: np.ndarray, test_y: Sequence[int],
            batch: int = MEASURE_BATCH, repeats: int = 3) -> dict[str, Any]:
    """float32 vs INT8 of one model on the same preprocessed test images, in one process.

    Returns ``auc_fp32``, ``auc_int8``, ``auc_delta`` (INT8 - float32), ``cam_pearson`` (mean
    over images of the Pearson correlation of the two low-resolution Abnormal-class maps, the
    layer4 grid both backends compute), ``cam_pearson_min``, ``max_prob_diff``, ``speedup``
    (float32 seconds / INT8 seconds, best of ``repeats`` interleaved passes, ``batch`` images a
    pass as ``cxrviewer infer``), ``label_agreement`` (same side of the card's threshold),
    ``ood_agreement`` (the learned OOD check decides alike; None without one) and ``test_n``.
    """
    from cxrviewer.ml.cam import pearson
    from cxrviewer.ml.inference import (
        _OrtBackend,
        calibration_temperature,
        read_fc_weight_numpy,
        softmax,
    )
    from cxrviewer.ml.onnx_model import card_onnx

    model_dir = Path(model_dir)
    card = read_card(model_dir)
    wfile = verify_checksum(model_dir, card)
    fc = read_fc_weight_numpy(wfile)
    t = calibration_temperature(card)
    b32 = _OrtBackend(card_onnx(model_dir, card), fc, "cpu")
    b8 = _OrtBackend(int8_path, fc, "cpu")
    _run_all(b32, test_x[:batch], batch)  # warm-up: first runs allocate
    _run_all(b8, test_x[:batch], batch)
    t32, t8 = [], []
    for _ in range(max(1, repeats)):
        l32, m32, f32, s32 = _run_all(b32, test_x, batch)
        l8, m8, f8, s8 = _run_all(b8, test_x, batch)
        t32.append(s32)
        t8.append(s8)
    p32, p8 = softmax(l32, t)[:, 1], softmax(l8, t)[:, 1]
    a32, a8 = auc(test_y, p32), auc(test_y, p8)
    r = np.array([pearson(a, b) for a, b in zip(m32, m8, strict=True)])
    thr = float(card.get("threshold", 0.5))
    ood_ok = _gate_agreement(model_dir, card, f32, f8)
    return {
        "test_n": int(len(test_x)),
        "auc_fp32": round(a32, 6),
        "auc_int8": round(a8, 6),
        "auc_delta": round(a8 - a32, 6),
        "cam_pearson": round(float(r.mean()), 6),
        "cam_pearson_min": round(float(r.min()), 6),
        "max_prob_diff": round(float(np.abs(p8 - p32).max()), 6),
        "label_agreement": round(float(np.mean((p8 >= thr) == (p32 >= thr))), 6),
        "ood_agreement": None if ood_ok is None else round(ood_ok, 6),
        "speedup": round(min(t32) / min(t8), 3),
        "fp32_ms_per_image": round(1000 * min(t32) / len(test_x), 2),
        "int8_ms_per_image": round(1000 * min(t8) / len(test_x), 2),
        "batch": int(batch),
    }


# --------------------------------------------------------------------------- the whole job


def quantize_model(
    model_dir: str | os.PathLike,
    calib_paths: Sequence[str],
    test_paths: Sequence[str],
    test_labels: Sequence[int],
    *,
    calib_note: str = "validation split",
    test_note: str = "test split",
    progress: Callable[[str], None] | None = None,
    repeats: int = 3,
    isa: str = "auto",
) -> tuple[Path, dict[str, Any]]:
    """Quantize ``model_dir``'s graph, measure it against float32 and record it.

    Parameters
    ----------
    calib_paths
        Images of the model's validation split (at most :data:`MAX_CALIBRATION` are used).
    test_paths, test_labels
        Images of its test split (labels 0 Normal / 1 Abnormal) for the AUC and CAM checks.
    repeats
        Timed passes of each graph over the test images (the best counts), see :func:`measure`.
    isa
        The instruction set to quantize for (:data:`cxrviewer.ml.cpu_isa.ISAS`): ``"auto"``
        picks by this CPU (reduce-range weights where its kernel would saturate), ``"avx2"``
        forces the reduce-range recipe (to measure it on a VNNI CPU), ``"vnni"`` full range.

    Returns
    -------
    (path, entry)
        The written ``model.int8.onnx`` (in the model folder, or the user cache for a
        read-only one) and its record (also in the card or the cache's ``int8.json``).
    """
    from cxrviewer.ml import cpu_isa

    say = progress or (lambda _m: None)
    recipe = cpu_isa.recipe_isa(isa)
    model_dir = Path(model_dir)
    card = read_card(model_dir)
    calib_paths = list(calib_paths)[:MAX_CALIBRATION]
    say(f"preprocessing {len(calib_paths)} calibration images")
    cx, ckept, cskip = preprocess_paths(calib_paths, card)
    say(f"preprocessing {len(test_paths)} test images")
    label_of = dict(zip(map(str, test_paths), test_labels, strict=True))
    tx, tkept, tskip = preprocess_paths(test_paths, card)
    ty = [int(label_of[p]) for p in tkept]
    in_place = _writable(model_dir) and not _bundled(model_dir)
    target = model_dir / INT8_FILE if in_place else cache_dir(str(card["weights_sha256"])) / INT8_FILE
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cxrviewer-int8-") as tmp:
        say("quantizing (calibrating on the validation images)")
        facts = quantize_graph(self_contained_fp32(model_dir, card), cx, Path(tmp) / INT8_FILE, Path(tmp), isa=recipe)
        seconds = time.perf_counter() - t0
        say(f"measuring float32 vs INT8 on {len(tx)} test images")
        m = measure(model_dir, Path(tmp) / INT8_FILE, tx, ty, repeats=repeats) if len(tx) else {}
        data = (Path(tmp) / INT8_FILE).read_bytes()
    import onnxruntime

    entry: dict[str, Any] = {
        "file": INT8_FILE,
        "sha256": "",
        "weights_sha256": str(card["weights_sha256"]),
        "onnx_sha256": str(card.get("onnx_sha256", "")),
        "calibration_n": len(cx),
        "calibration_data": calib_note,
        "calibration_skipped": len(cskip),
        "test_data": test_note,
        "test_skipped": len(tskip),
        **facts,
        **m,
        "rule": f"default only where |auc_delta| <= {AUC_TOLERANCE} and cam_pearson >= {CAM_PEARSON_MIN}",
        "quantize_seconds": round(seconds, 1),
        "onnxruntime": onnxruntime.__version__,
        # the CPU these figures hold for: `auto` trusts them only on the same INT8 kernel class
        "isa": dict(cpu_isa.cpu_info()),
        "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
    }
    entry["qualifies"] = qualifies(entry)
    entry["default"] = entry["qualifies"]
    _save(model_dir, target, data, entry, in_place)
    return target, entry


def _save(model_dir: Path, target: Path, data: bytes, entry: dict[str, Any], in_place: bool) -> None:
    """Write the graph, then its record (the record names the hash of what is on disk)."""
    import hashlib

    entry["sha256"] = hashlib.sha256(data).hexdigest()
    atomic.write_bytes(target, data)
    if in_place:
        card = json.loads((model_dir / CARD_FILE).read_text(encoding="utf-8"))
        card[INT8_KEY] = entry
        atomic.write_text(model_dir / CARD_FILE, json.dumps(card, indent=2) + "\n")
    else:
        atomic.write_text(target.parent / "int8.json", json.dumps(entry, indent=2) + "\n")
