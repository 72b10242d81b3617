"""Filesystem helpers shared by the read-only-source tests."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

#: ``os.open`` flags that would modify a file.
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def snapshot(root: Path) -> dict[str, tuple[str, int, int]]:
    """Every path under ``root`` -> (sha256 for files, mtime_ns, mode bits)."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st = os.stat(p)
            digest = ""
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as fh:
                    digest = hashlib.sha256(fh.read()).hexdigest()
            out[p] = (digest, st.st_mtime_ns, stat.S_IMODE(st.st_mode))
    return out
