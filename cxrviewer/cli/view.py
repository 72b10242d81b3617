"""``cxrviewer [view] [PATH] [--sample]``: open the viewer window."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("view", help="open the viewer (the default command)")
    p.add_argument("path", nargs="?", help="folder, file or DICOMDIR to open")
    p.add_argument("--sample", action="store_true", help="open the bundled sample study (RG1 chest CR)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cxrviewer.ui.launch import open_viewer

    return open_viewer(args.path, sample=args.sample)
