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
