"""Open the viewer window, after checking that Qt can show one here (no Qt imported until then).

``cxrviewer view`` and the ``cxrviewer-gui`` script both come through :func:`open_viewer`, so the
GUI entry point needs neither the CLI package nor argparse subcommands, and a machine without a
display gets one line saying what to do instead of Qt's abort.
"""

from __future__ import annotations

import os
import sys


def no_display_reason(env: dict[str, str] | None = None, platform: str | None = None) -> str | None:
    """Why a window cannot open here, or ``None``.

    On Linux without ``DISPLAY``/``WAYLAND_DISPLAY`` (an SSH session, a container, CI) Qt
    aborts the process with a long plugin message; say what to do instead.
    """
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


def _fail(message: str) -> int:
    print(f"cxrviewer: error: {message}", file=sys.stderr)
    return 2


def open_viewer(path: str | os.PathLike | None = None, sample: bool = False) -> int:
    """Check the path and the display, then run the viewer; returns the exit code."""
    if path and not os.path.exists(path):
        return _fail(f"{path}: no such file or folder")
    reason = no_display_reason()
    if reason:
        return _fail(reason)
    from cxrviewer.ui.app import run

    return run(path, sample=sample)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cxrviewer-gui`` script: ``cxrviewer-gui [PATH] [--sample]``."""
    import argparse

    ap = argparse.ArgumentParser(prog="cxrviewer-gui", description="open the cxrviewer window")
    ap.add_argument("path", nargs="?", help="folder, file or DICOMDIR to open")
    ap.add_argument("--sample", action="store_true", help="open the bundled sample study (RG1 chest CR)")
    args = ap.parse_args(argv)
    return open_viewer(args.path, sample=args.sample)


if __name__ == "__main__":
    sys.exit(main())
