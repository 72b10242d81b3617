"""``cxrviewer [view] [PATH] [--sample]``: open the viewer window."""

from __future__ import annotations

import argparse
import os


def add_parser(sub) -> None:
    p = sub.add_parser("view", help="open the viewer (the default command)")
    p.add_argument("path", nargs="?", help="folder, file or DICOMDIR to open")
    p.add_argument("--sample", action="store_true", help="open the bundled sample study (RG1 chest CR)")
    p.set_defaults(func=run)


def no_display_reason(env: dict[str, str] | None = None, platform: str | None = None) -> str | None:
    """Why a window cannot open here, or ``None``.

    On Linux without ``DISPLAY``/``WAYLAND_DISPLAY`` (an SSH session, a container, CI) Qt
    aborts the process with a long plugin message; say what to do instead.
    """
    import sys

    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux") or env.get("QT_QPA_PLATFORM"):
        return None
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return None
    return (
        "no display to open the window on (DISPLAY and WAYLAND_DISPLAY are unset): run it in a desktop "
        "session, or under a virtual screen (`xvfb-run cxrviewer --sample`); `cxrviewer selftest` checks "
        "an install without a display"
    )


def run(args: argparse.Namespace) -> int:
    from cxrviewer.cli._common import fail

    if args.path and not os.path.exists(args.path):
        return fail(f"{args.path}: no such file or folder")
    reason = no_display_reason()
    if reason:
        return fail(reason)
    from cxrviewer.ui.app import run as run_app

    return run_app(args.path, sample=args.sample)
