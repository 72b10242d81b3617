"""``cxrviewer evaluate --model NAME_OR_DIR --data PATH``: re-evaluate a model on a labelled set."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="evaluate a model on any labelled set (metrics with 95% CIs)")
    p.add_argument("--model", default=None,
                   help="registry name, model directory or run directory (default: the active model)")
    p.add_argument("--data", required=True, action="append", metavar="PATH",
                   help="labelled set (NIH layout, class folders or CSV); repeatable")
    p.add_argument("--format", default="auto", choices=["auto", "nih", "csv", "folders"])
    p.add_argument("--split", default="all", choices=["all", "train", "val", "test"],
                   help="with predefined splits in the data: evaluate only this one")
    p.add_argument("--threshold", type=float, default=None, help="override the card's operating threshold")
    p.add_argument("--out", default=None, metavar="DIR", help="write report.md, metrics.json, roc.png, confusion.png here")
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int, default=0, help="image-decoding threads (0: auto)")
    p.add_argument("--max-images", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cxrviewer.cli._common import fail, print_json
    from cxrviewer.core.errors import CxrError
    from training.evaluate import evaluate_model

    try:
        res = evaluate_model(args)
    except CxrError as e:
        return fail(str(e))
    if args.json:
        print_json(res)
    return 0
