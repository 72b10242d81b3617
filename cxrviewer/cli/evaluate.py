"""``cxrviewer evaluate --model NAME_OR_DIR --data PATH``: re-evaluate a model on a labelled set.

Same flags as ``python -m training.evaluate`` (its parser is used as a parent; numpy only).
"""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    from training.args import get_eval_args_parser as get_args_parser

    parent = get_args_parser(add_help=False)
    sub.add_parser("evaluate", parents=[parent], help="evaluate a model on any labelled set (metrics with 95%% CIs)",
                   description=parent.description).set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from training.evaluate import run_args

    return run_args(args, prog="cxrviewer")
