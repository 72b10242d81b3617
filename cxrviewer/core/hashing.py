"""The one sha256 helper of the project (files, byte strings, arrays).

Every checksum (model weights, ONNX exports, OOD statistics) and every content key
(:func:`cxrviewer.ml.results.content_key`) goes through these functions, so there is one
place that decides how a file is streamed and how an array is turned into bytes.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike, chunk: int = _CHUNK) -> str:
    """Hex sha256 of a file, streamed in ``chunk``-byte blocks (never the whole file in memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def sha256_parts(*parts: bytes | str | np.ndarray) -> str:
    """Hex sha256 over several parts, each framed by its length so ``("ab", "c")`` and
    ``("a", "bc")`` differ. Arrays contribute their dtype, shape and C-ordered bytes."""
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            a = np.ascontiguousarray(p)
            head = f"{a.dtype.str}{a.shape}".encode()
            h.update(len(head).to_bytes(8, "little") + head)
            h.update(a.nbytes.to_bytes(8, "little"))
            h.update(a)  # the C-contiguous buffer itself, no copy
            continue
        b = p.encode("utf-8", "surrogateescape") if isinstance(p, str) else bytes(p)
        h.update(len(b).to_bytes(8, "little") + b)
    return h.hexdigest()
