"""``cxrviewer models fit-ood NAME_OR_DIR --images DIR`` (or ``--data PATH [--val-data PATH]``): fit a model's OOD gate.

Extracts the pooled layer4 features of the training images through the normal inference
engine (the viewer's preprocessing and backend), fits the shrunk-covariance Mahalanobis gate
(:func:`cxrviewer.ml.ood.fit_feature_gate`) and chooses its threshold on the validation
images so that ``--keep`` of them pass; writes ``ood.npz`` into the model folder and the
``ood`` entry of its card.

Which images: every ``--data`` set in any layout ``cxrviewer train`` reads (NIH CSV, class
folders, ``path,label[,patient_id][,split]`` CSV) or a plain folder of images. Images of a
set's predefined ``train`` split (or of sets without splits) are fitted; its ``val`` split
(or every ``--val-data`` image) sets the threshold; ``test`` images are never used. With no
validation images a patient-wise 20 % of the training images is held out for it.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path


def add_parser(msub) -> None:
    p = msub.add_parser(
        "fit-ood", help="fit a model's out-of-distribution gate on its training images (writes ood.npz)"
    )
    p.add_argument("model", help="registry model name or model directory")
    p.add_argument("--data", "--images", dest="data", action="append", required=True, metavar="PATH",
                   help="images to fit on: a folder of your site's own chest films (--images DIR), or any "
                        "layout `cxrviewer train` reads; repeatable. Works for every installed model; until it "
                        "has run, only the header rules check what the model may score")
    p.add_argument("--val-data", action="append", default=[],
                   help="validation images for the threshold (default: the data's val split); repeatable")
    p.add_argument("--keep", type=float, default=0.95,
                   help="share of validation images the threshold keeps (default 0.95)")
    p.add_argument("--dims", type=int, default=256, help="eigenpairs stored (default 256)")
    p.add_argument("--max-images", type=int, default=0, help="at most this many images per role (0: all)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="auto", choices=["auto", "onnxruntime", "torch"])
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="print the card entry as JSON")
    p.set_defaults(func=run)


def _samples(path: str):
    """``[(path, patient, split)]`` of a labelled set, else every image of a folder."""
    from cxrviewer.core.errors import CxrError

    try:
        from training import data as D

        ds = D.load_dataset(path)
        return [(s.path, s.patient, s.split) for s in ds.samples]
    except ImportError:  # a viewer-only install without the training module
        pass
    except CxrError:
        pass
    from cxrviewer.core.study_index import scan

    res = scan(path)
    return [(i.path, i.path, None) for i in res.instances()]


def _hold_out(items: list[tuple[str, str, str | None]], seed: int) -> tuple[list[str], list[str]]:
    """Patient-wise 80/20 of ``items`` -> (fit paths, validation paths)."""
    patients = sorted({p for _, p, _ in items})
    random.Random(seed).shuffle(patients)
    val_pat = set(patients[: max(1, round(0.2 * len(patients)))])
    return [x for x, p, _ in items if p not in val_pat], [x for x, p, _ in items if p in val_pat]


def select(data: list[str], val_data: list[str], seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    """(fit paths, validation paths, notes) following the rules in the module docstring."""
    fit: list[tuple[str, str, str | None]] = []
    val: list[str] = []
    notes: list[str] = []
    for d in data:
        items = _samples(d)
        tr = [x for x in items if x[2] in (None, "train")]
        va = [x[0] for x in items if x[2] == "val"]
        te = sum(1 for x in items if x[2] == "test")
        fit += tr
        if not val_data:
            val += va
        notes.append(f"{d}: {len(tr)} training, {len(va)} validation, {te} test images (test never used)")
    for d in val_data:
        items = _samples(d)
        val += [x[0] for x in items if x[2] != "test"]
        notes.append(f"{d}: validation images for the threshold")
    if not val:
        paths, val = _hold_out(fit, seed)
        notes.append(f"no validation images given: a patient-wise 20% ({len(val)}) of the training images held out")
        return paths, val, notes
    return [x[0] for x in fit], val, notes


def run(args: argparse.Namespace) -> int:
    from cxrviewer.cli._common import TtyProgress, fail, print_json
    from cxrviewer.core.errors import CxrError
    from cxrviewer.ml import ood
    from cxrviewer.ml.inference import Engine
    from cxrviewer.ml.registry import Registry

    try:
        model_dir = Path(args.model) if Path(args.model).is_dir() else Registry().get(args.model).path
        fit_paths, val_paths, notes = select(args.data, args.val_data, args.seed)
        if args.max_images > 0:
            rnd = random.Random(args.seed)
            for lst in (fit_paths, val_paths):
                rnd.shuffle(lst)
                del lst[args.max_images :]
        if len(fit_paths) < 3:
            return fail(f"only {len(fit_paths)} training images found in {', '.join(args.data)}", 1)
        engine = Engine.load(model_dir, backend=args.backend, device=args.device)
        f_tr, _, sk_tr = ood.image_features(engine, fit_paths, args.batch_size, TtyProgress("training features"))
        f_va, _, sk_va = ood.image_features(engine, val_paths, args.batch_size, TtyProgress("validation features"))
        if len(f_tr) < 3 or len(f_va) < 1:
            return fail(f"too few readable images ({len(f_tr)} training, {len(f_va)} validation)", 1)
        gate = ood.fit_feature_gate(f_tr, f_va, keep=args.keep, dims=args.dims)
        gate.extra.update({"data": list(map(str, args.data)), "val_data": list(map(str, args.val_data)),
                           "model_version": engine.version})
        entry = ood.save_feature_gate(model_dir, gate)
    except (CxrError, ValueError) as e:
        return fail(str(e), 1)
    for p, r in sk_tr + sk_va:
        print(f"unreadable: {p}: {r}", file=sys.stderr)
    if args.json:
        print_json(entry)
    else:
        for n in notes:
            print(n)
        print(f"OOD gate of {engine.name} {engine.version}: {len(f_tr)} training / {len(f_va)} validation images, "
              f"threshold {entry['threshold']:.2f} keeps {entry['keep_rate_val']:.1%} of validation and "
              f"{entry['keep_rate_train']:.1%} of training images (shrinkage {entry['shrinkage']:.3f}, "
              f"{entry['dims']} dims) -> {model_dir / ood.OOD_FILE}")
    return 0
