"""Open the viewer window, after checking that Qt can show one here (no Qt imported until then).

``cxrviewer view`` and the ``cxrviewer-gui`` script both come through :func:`open_viewer`, so the
GUI entry point needs neither the CLI package nor argparse subcommands, and a machine without a
display gets one line saying what to do instead of Qt's abort.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


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


#: The shared libraries Qt 6's X11 platform plugin links against that a minimal Debian/Ubuntu
#: desktop or Xvfb may lack (Qt 6.5+ needs xcb-cursor), besides EGL/GL, fontconfig and D-Bus.
QT_RUNTIME_LIBS = (
    "libEGL.so.1", "libGL.so.1", "libfontconfig.so.1", "libdbus-1.so.3", "libxkbcommon.so.0",
    "libxkbcommon-x11.so.0", "libX11-xcb.so.1", "libxcb-cursor.so.0", "libxcb-icccm.so.4",
    "libxcb-image.so.0", "libxcb-keysyms.so.1", "libxcb-randr.so.0", "libxcb-render-util.so.0",
    "libxcb-shape.so.0", "libxcb-shm.so.0", "libxcb-sync.so.1", "libxcb-xfixes.so.0",
    "libxcb-xkb.so.1",
)


def debian_package(soname: str) -> str:
    """The Debian package that usually ships a shared library: ``libxcb-cursor.so.0`` ->
    ``libxcb-cursor0``, ``libxkbcommon-x11.so.0`` -> ``libxkbcommon-x11-0``, ``libEGL.so.1`` ->
    ``libegl1`` (Debian's naming rule: a dash before the version when the name ends in a digit)."""
    base, _, version = soname.partition(".so")
    version = version.lstrip(".").split(".")[0]
    base = base.lower()
    return base + ("-" if base[-1:].isdigit() and version else "") + version


def _xcb_plugin() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(list(spec.submodule_search_locations)[0]) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return p if p.is_file() else None


def qt_platform_problem(
    env: dict[str, str] | None = None, platform: str | None = None, plugin: Path | None = None
) -> str | None:
    """Why Qt's X11 (xcb) platform plugin cannot load here, or ``None``.

    Qt aborts the process ("Could not load the Qt platform plugin xcb ... xcb-cursor0 or
    libxcb-cursor0 is needed") when a library the plugin links against is missing. Loading the
    plugin first with the dynamic loader names that library; say which package provides it.
    ``plugin`` overrides the plugin file (tests).
    """
    import ctypes

    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if plugin is None:
        if not platform.startswith("linux"):
            return None
        qpa = env.get("QT_QPA_PLATFORM", "")
        if qpa and not qpa.startswith("xcb"):
            return None  # offscreen, wayland, ... : not the X11 plugin
        if not qpa and env.get("WAYLAND_DISPLAY") and not env.get("DISPLAY"):
            return None
        plugin = _xcb_plugin()
        if plugin is None:
            return None
    try:
        ctypes.CDLL(str(plugin))
        return None
    except OSError as e:
        text = str(e)
    first = text.split(":", 1)[0].strip()
    missing = [first] if first and first != str(plugin) and ".so" in first else []
    missing += [lib for lib in QT_RUNTIME_LIBS if lib not in missing and not _loads(lib)]
    if not missing:
        return (f"Qt's X11 platform plugin ({plugin.name}) cannot be loaded: {text}; the Qt runtime "
                f"libraries: sudo apt-get install {qt_runtime_packages()}")
    pkgs = " ".join(dict.fromkeys(debian_package(m) for m in missing))
    return (
        f"Qt's X11 platform plugin cannot load: {', '.join(missing)} "
        f"{'is' if len(missing) == 1 else 'are'} missing; install with `sudo apt-get install {pkgs}`"
    )


def _loads(soname: str) -> bool:
    import ctypes

    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def qt_runtime_packages() -> str:
    """The Debian packages of :data:`QT_RUNTIME_LIBS`, space-separated (README, .ci/run)."""
    return " ".join(debian_package(lib) for lib in QT_RUNTIME_LIBS)


def _fail(message: str) -> int:
    print(f"cxrviewer: error: {message}", file=sys.stderr)
    return 2


def open_viewer(path: str | os.PathLike | None = None, sample: bool = False) -> int:
    """Check the path and the display, then run the viewer; returns the exit code."""
    if path and not os.path.exists(path):
        return _fail(f"{path}: no such file or folder")
    reason = no_display_reason() or qt_platform_problem()
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
