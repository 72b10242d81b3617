"""A value remembered per (file, frame) while the file stays as it was (size and mtime)."""

from __future__ import annotations

import os
from typing import Generic, TypeVar

V = TypeVar("V")


def file_stamp(path: str | os.PathLike) -> tuple[int, int] | None:
    """``(size, mtime_ns)`` of ``path``, or ``None`` when it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


class FileMemo(Generic[V]):
    """Values memoised by (absolute path, frame) with the file's stamp, so a file changed on
    disk is never answered from the memo. Single dict operations: safe to share between the
    GUI thread and one worker under the GIL."""

    def __init__(self) -> None:
        self._d: dict[tuple[str, int], tuple[tuple[int, int], V]] = {}

    def get(self, path: str | os.PathLike, frame: int) -> V | None:
        """The value if the file still has the stamp it had when remembered, else ``None``."""
        m = self._d.get((os.path.abspath(path), int(frame)))
        if m is None or file_stamp(path) != m[0]:
            return None
        return m[1]

    def peek(self, path: str | os.PathLike, frame: int) -> V | None:
        """The value without checking the file (a hint: no system call)."""
        m = self._d.get((os.path.abspath(path), int(frame)))
        return None if m is None else m[1]

    def put(self, path: str | os.PathLike, frame: int, value: V,
            stamp: tuple[int, int] | None = None) -> None:
        """Remember ``value`` under ``stamp`` (default: the file's stamp now; nothing is
        remembered for a file that cannot be read)."""
        stamp = stamp or file_stamp(path)
        if stamp is not None:
            self._d[(os.path.abspath(path), int(frame))] = (stamp, value)
