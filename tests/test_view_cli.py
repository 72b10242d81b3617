"""`cxrviewer view` and `cxrviewer-gui` without a display say what to do instead of letting Qt abort."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cxrviewer.ui.launch import no_display_reason

ROOT = Path(__file__).resolve().parents[1]


def test_no_display_reason_rules():
    assert no_display_reason({}, "linux") is not None
    assert no_display_reason({"DISPLAY": ":0"}, "linux") is None
    assert no_display_reason({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert no_display_reason({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert no_display_reason({}, "win32") is None


@pytest.mark.parametrize("entry", [
    ["-m", "cxrviewer", "--sample"],
    # the cxrviewer-gui script's function, which must not need the CLI package
    ["-c", "import sys, cxrviewer.ui.launch as l; rc = l.main(['--sample']);"
           "sys.exit(rc if 'cxrviewer.cli' not in sys.modules else 99)"],
])
def test_view_without_display_exits_with_one_line(tmp_path, entry):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, *entry], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no display" in lines[0] and "xvfb-run" in lines[0]


def test_debian_package_names_follow_debians_rule():
    from cxrviewer.ui.launch import debian_package

    assert debian_package("libxcb-cursor.so.0") == "libxcb-cursor0"
    assert debian_package("libxkbcommon-x11.so.0") == "libxkbcommon-x11-0"
    assert debian_package("libEGL.so.1") == "libegl1"
    assert debian_package("libdbus-1.so.3") == "libdbus-1-3"


def test_a_platform_plugin_with_a_missing_library_is_named_in_one_line(tmp_path, tool):
    """A real shared object whose dependency is gone, loaded the way the check loads Qt's xcb
    plugin: the message names the missing library and the package to install."""
    import shutil

    from cxrviewer.ui.launch import qt_platform_problem

    cc = shutil.which("cc") or shutil.which("gcc")
    tool(cc, "a C compiler (cc, to build the stand-in plugin)", "gcc")
    dep = tmp_path / "dep"
    dep.mkdir()
    (tmp_path / "a.c").write_text("int cxr_missing(void) { return 7; }\n")
    (tmp_path / "b.c").write_text("int cxr_missing(void);\nint plugin_entry(void) { return cxr_missing(); }\n")
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(dep / "libcxrmissing.so.3"), "-Wl,-soname,libcxrmissing.so.3",
                    str(tmp_path / "a.c")], check=True)
    plugin = tmp_path / "libqxcb.so"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(plugin), str(tmp_path / "b.c"),
                    str(dep / "libcxrmissing.so.3")], check=True)
    shutil.rmtree(dep)
    msg = qt_platform_problem(plugin=plugin)
    assert msg is not None and "\n" not in msg
    assert "libcxrmissing.so.3" in msg and "sudo apt-get install libcxrmissing3" in msg


def test_the_real_xcb_plugin_check_agrees_with_the_loader():
    import ctypes

    from cxrviewer.ui.launch import _xcb_plugin, qt_platform_problem

    plugin = _xcb_plugin()
    if plugin is None:
        pytest.skip("this PySide6 has no xcb platform plugin")
    try:
        ctypes.CDLL(str(plugin))
        loads = True
    except OSError:
        loads = False
    msg = qt_platform_problem({"DISPLAY": ":0"}, "linux")
    assert (msg is None) == loads
    assert msg is None or "apt-get install" in msg
    # not the X11 plugin: nothing to check
    assert qt_platform_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert qt_platform_problem({"WAYLAND_DISPLAY": "w-0"}, "linux") is None
    assert qt_platform_problem({}, "win32") is None
