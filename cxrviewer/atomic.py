"""One helper for every file we write: temp file in the same folder, fsync, rename.

A failure (disk full, permission) leaves no partial file and the previous file intact, and
raises :class:`~cxrviewer.core.errors.CxrError` naming the file and the reason.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from cxrviewer.core.errors import CxrError


class WriteError(CxrError):
    """A file could not be written; nothing was left behind."""


def _reason(e: OSError) -> str:
    if e.errno == errno.ENOSPC:
        return "disk full (no space left on device); nothing was written"
    if e.errno in (errno.EACCES, errno.EPERM):
        return "permission denied; nothing was written"
    if e.errno == errno.EROFS:
        return "read-only file system; nothing was written"
    return f"{e.strerror or e}; nothing was written"


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux /proc)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def _final_mode(target: Path) -> int:
    try:
        return os.stat(target).st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target``.

    For writers that want a path (cv2.imwrite, torch.save, safetensors).
    """
    target = Path(target)
    suffix = suffix if suffix is not None else target.suffix
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # The temp name keeps the target's suffix so writers that pick a format by
        # extension (cv2.imwrite) still work; the leading dot hides it from scans.
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
        os.close(fd)
    except OSError as e:
        raise WriteError(target, _reason(e)) from None
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        # mkstemp creates 0600; give the result the mode the target had, or the mode a
        # plain open() would have given it (exports must stay readable by the user's tools).
        os.chmod(tmp_path, _final_mode(target))
        os.replace(tmp_path, target)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise WriteError(target, _reason(e)) from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def write_bytes(target: str | os.PathLike, data: bytes) -> Path:
    """Atomically write ``data`` to ``target``."""
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
    return Path(target)


def write_text(target: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    return write_bytes(target, text.encode(encoding))


def write_with(target: str | os.PathLike, writer: Callable[[Path], None], suffix: str | None = None) -> Path:
    """Atomically write ``target`` with ``writer(tmp_path)``."""
    with atomic_path(target, suffix=suffix) as tmp:
        writer(tmp)
    return Path(target)
