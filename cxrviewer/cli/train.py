"""``cxrviewer train ...``: the same command as ``python -m training ...``.

The flags are the training module's own parser (``training.train.get_args_parser``, used
as a parent), so the two entry points cannot drift apart. Importing it loads numpy only.
"""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    from training.args import DefaultsHelpFormatter, get_args_parser

    parent = get_args_parser(add_help=False)
    sub.add_parser("train", parents=[parent], help="train a model (same as python -m training)",
                   description=parent.description, formatter_class=DefaultsHelpFormatter).set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cxrviewer.ml.extras import missing_train_extra

    missing = missing_train_extra("cxrviewer train")
    if missing:
        from cxrviewer.cli._common import fail

        return fail(missing)
    from training.train import run_args

    return run_args(args, prog="cxrviewer train")
