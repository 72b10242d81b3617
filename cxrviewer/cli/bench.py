"""``cxrviewer bench NAME --json``: benchmarks that print JSON.

Each benchmark is a module ``cxrviewer.bench.NAME`` with ``add_arguments(parser)`` and
``run(args) -> dict``. Ratios are measured in one run on the same input (machines are noisy).
"""

from __future__ import annotations

import argparse
import importlib

BENCHES = ["scan", "display", "infer", "startup", "ui", "train", "fuzz", "memory", "pacs", "ood", "archive"]


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="run a benchmark and print JSON")
    bsub = p.add_subparsers(dest="bench", metavar="NAME", required=True)
    for name in BENCHES:
        try:
            mod = importlib.import_module(f"cxrviewer.bench.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"cxrviewer.bench.{name}":
                continue
            raise
        bp = bsub.add_parser(name, help=(mod.__doc__ or name).strip().splitlines()[0].replace("%", "%%"))
        bp.add_argument("--json", action="store_true", help="print JSON (the default output anyway)")
        mod.add_arguments(bp)
        bp.set_defaults(func=_runner(mod))


def _runner(mod):
    def run(args: argparse.Namespace) -> int:
        from cxrviewer.cli._common import print_json

        result = mod.run(args)
        print_json(result)
        return 0

    return run
