"""The ``cxrviewer`` command: argparse with one module per subcommand.

Each module in :data:`COMMANDS` defines ``add_parser(subparsers)`` (which must import
nothing heavy: no torch, no Qt) and sets ``func`` on its parser. A subcommand's heavy
imports happen inside its ``func``. ``view`` is the default when no subcommand is given.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: subcommand modules, in help order
COMMANDS = [
    "cxrviewer.cli.view",
    "cxrviewer.cli.scan",
    "cxrviewer.cli.export",
    "cxrviewer.cli.deid",
    "cxrviewer.cli.infer",
    "cxrviewer.cli.models",
    "cxrviewer.cli.train",
    "cxrviewer.cli.feedback",
    "cxrviewer.cli.evaluate",
    "cxrviewer.cli.publish",
    "cxrviewer.cli.pacs",
    "cxrviewer.cli.selftest",
    "cxrviewer.cli.bench",
]


def build_parser() -> argparse.ArgumentParser:
    from cxrviewer import __version__

    parser = argparse.ArgumentParser(
        prog="cxrviewer",
        description="Chest X-ray viewer with a research Normal/Abnormal model and Grad-CAM. "
        "Not a diagnostic device.",
    )
    parser.add_argument("--version", action="version", version=f"cxrviewer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # not written yet in this checkout
                continue
            raise
        mod.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    known = set(parser._subparsers._group_actions[0].choices) if parser._subparsers else set()  # type: ignore[union-attr]
    # `cxrviewer`, `cxrviewer PATH` and `cxrviewer --sample` all mean `cxrviewer view ...`.
    if "view" in known and (not argv or (argv[0] not in known and argv[0] not in ("-h", "--help", "--version"))):
        argv = ["view", *argv]
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        rc = args.func(args)
    except KeyboardInterrupt:
        print("cxrviewer: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return int(rc or 0)
