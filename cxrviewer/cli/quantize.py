"""``cxrviewer models quantize [MODEL]``: make a model's INT8 ONNX graph and measure it.

Calibrates ONNX Runtime static quantization on the model's validation split and measures
INT8 against float32 on its test split (AUC change, Grad-CAM Pearson, speed), both read back
from the model card's ``training_data`` in the shared data folder (``--data-root``), or given
with ``--val-data`` / ``--test-data`` (any labelled layout ``cxrviewer train`` reads; a set
with predefined splits contributes its ``val`` / ``test`` rows). Writes ``model.int8.onnx``
and its record into the model folder (``card.json`` ``int8``), or into the user cache for a
read-only (bundled) model. See :mod:`cxrviewer.ml.quantize`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(msub) -> None:
    p = msub.add_parser("quantize", help="make and measure the model's INT8 ONNX graph (--precision int8)")
    p.add_argument("model", nargs="?", default=None, help="registry model name or model directory (default: the active model)")
    p.add_argument("--data-root", default=None, help="the shared data folder the card's sources live in (default: ../shared/data)")
    p.add_argument("--val-data", action="append", default=[], help="calibration images instead of the card's validation split; repeatable")
    p.add_argument("--test-data", action="append", default=[], help="test images instead of the card's test split; repeatable")
    p.add_argument("--calibration-n", type=int, default=0,
                   help="at most this many validation images calibrate (0: all, up to 256)")
    p.add_argument("--isa", default="auto", choices=["auto", "vnni", "avx2"],
                   help="the instruction set to quantize for: auto (default) picks by this CPU; avx2: 7-bit "
                   "weights (reduce_range) that cannot saturate ONNX Runtime's u8s8 kernels on CPUs without "
                   "VNNI, also to measure that graph on a VNNI CPU; vnni: full-range weights")
    p.add_argument("--json", action="store_true", help="print the record as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cxrviewer.bench import int8 as B
    from cxrviewer.cli._common import fail, print_json, resolve_model
    from cxrviewer.core.errors import CxrError
    from cxrviewer.ml import quantize as Q
    from cxrviewer.ml.registry import Registry, read_card

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        model_dir = resolve_model(args.model)
        if model_dir is None:
            entry = Registry().active()
            if entry is None:
                return fail("no model installed: import one with `cxrviewer models import DIR`", 1)
            model_dir = entry.path
        model_dir = Path(model_dir)
        card = read_card(model_dir)
        val, val_note = _split(B, card, "val", args.val_data, args.data_root, "validation")
        test, test_note = _split(B, card, "test", args.test_data, args.data_root, "test")
        if args.calibration_n > 0:
            val = val[: args.calibration_n]
        path, ent = Q.quantize_model(model_dir, [p for p, _ in val], [p for p, _ in test], [y for _, y in test],
                                     calib_note=val_note, test_note=test_note, progress=say, isa=args.isa)
    except (CxrError, ValueError, OSError) as e:
        return fail(str(e), 1)
    if args.json:
        print_json({"path": str(path), **ent})
        return 0
    verdict = ("qualifies: `--precision auto` uses it" if ent["qualifies"]
               else "does not qualify: it stays opt-in (`--precision int8`)")
    print(f"INT8 graph of {card.name} {card.version} -> {path} ({path.stat().st_size / 2**20:.1f} MiB, "
          f"calibrated on {ent['calibration_n']} validation images)")
    if "test_n" in ent:
        print(f"test split ({ent['test_n']} images): AUC {ent['auc_fp32']:.4f} fp32 -> {ent['auc_int8']:.4f} int8 "
              f"(delta {ent['auc_delta']:+.4f}); CAM Pearson mean {ent['cam_pearson']:.4f} (min {ent['cam_pearson_min']:.4f}); "
              f"max |P diff| {ent['max_prob_diff']:.4f}; same label {ent['label_agreement']:.1%}"
              + (f", same OOD call {ent['ood_agreement']:.1%}" if ent.get("ood_agreement") is not None else "")
              + f"; speedup {ent['speedup']:.2f}x "
              f"({ent['fp32_ms_per_image']:.1f} -> {ent['int8_ms_per_image']:.1f} ms/image, batch {ent['batch']})")
    print(f"{verdict} (rule: |AUC delta| <= {Q.AUC_TOLERANCE}, CAM Pearson >= {Q.CAM_PEARSON_MIN})")
    from cxrviewer.ml import cpu_isa

    print(f"quantized for {ent['quantized_for']} ({ent['weights']}); measured on {cpu_isa.describe(ent['isa'])}: "
          "precision auto uses it only on CPUs of that INT8 kernel class")
    return 0


def _split(B, card: dict, split: str, folders: list[str] | None, data_root, name: str) -> tuple[list, str]:
    """``(labelled images, where they came from)``: the given folders, else the card's own split."""
    if folders:
        return [x for d in folders for x in B.labelled_images(d, split)], ", ".join(folders)
    return B.split_images(card, split, data_root), f"the model's {name} split (card training_data)"
