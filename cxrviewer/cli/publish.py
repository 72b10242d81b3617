"""``cxrviewer publish RUN_DIR [--activate]``: install a trained model into the registry."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("publish", help="install a training run's model into the registry")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a training run folder (its model/) or a model directory")
    p.add_argument("--activate", action="store_true", help="make it the active model (roll back: cxrviewer models activate OLD)")
    p.add_argument("--replace", action="store_true", help="replace an installed model of the same name")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cxrviewer.cli._common import fail
    from cxrviewer.core.errors import CxrError
    from cxrviewer.ml.registry import Registry
    from training.train import resolve_model

    try:
        src = resolve_model(args.run_dir) if not _is_fold_run(args.run_dir) else None
        if src is None:
            return fail(f"{args.run_dir}: a cross-validation run has one model per fold; publish one of its foldN/ folders")
        reg = Registry()
        entry = reg.import_dir(src, replace=args.replace, activate=args.activate, onnx=True)
    except CxrError as e:
        return fail(str(e))
    thr = entry.card.threshold
    auc = entry.card.metrics.get("auc", {})
    print(f"installed {entry.name} {entry.version} -> {entry.path}")
    if auc:
        print(f"  AUC {auc.get('value')} (95% CI {auc.get('ci95')}, {auc.get('split')}), threshold {thr}")
    print("  active model: " + (entry.name if args.activate else f"unchanged (activate with: cxrviewer models activate {entry.name})"))
    return 0


def _is_fold_run(path: str) -> bool:
    from pathlib import Path

    p = Path(path)
    return (p / "cv_summary.json").is_file() and not (p / "model").is_dir() and not (p / "card.json").is_file()
