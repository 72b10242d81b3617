"""pydicom's (and its decoder plugins') warnings, routed to the log and to the file's entry.

pydicom reports what it tolerated in a file ("Expected explicit VR, but found implicit VR",
"128 bytes of excess padding", "End of file reached before delimiter") with
:func:`warnings.warn`. Left alone they reach stderr (the CLI) or, under ``-W error`` (the test
suite), turn a readable file into an exception. Inside :func:`collect` they become notes on
the file they concern: logged at INFO with the file's name (the log file keeps them, the
console does not), and returned to the caller to put on the file's scan entry or image.

Warnings raised by anything else inside the block (numpy's RuntimeWarnings from our own
arithmetic, a DeprecationWarning) are re-issued unchanged, so they keep meaning a bug.

``warnings.catch_warnings`` swaps process-wide state (Python < 3.14), so the blocks of
different threads are serialised by a lock; blocks nested in one thread share the outer
block's notes.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

_log = logging.getLogger(__name__)

#: Top-level packages whose warnings describe the file being read.
_SOURCES = frozenset({"pydicom", "pylibjpeg", "openjpeg", "libjpeg", "jpeg_ls", "rle", "gdcm", "PIL"})

_LOCK = threading.RLock()
_local = threading.local()

#: Most notes kept per file (a corrupt multi-frame file can warn once per frame).
MAX_NOTES = 20


def _from_dicom_library(filename: str) -> bool:
    parts = os.path.normpath(filename or "").split(os.sep)
    return any(p in _SOURCES for p in parts)


def _clean(message: str, path: str | None) -> str:
    text = " ".join(str(message).split())
    if path:
        text = text.replace(path, os.path.basename(path) or path)
    return text


@contextmanager
def collect(path: str | os.PathLike | None = None) -> Iterator[list[str]]:
    """Capture the DICOM libraries' warnings raised in the block as notes on ``path``.

    Yields the list the notes are appended to when the block ends (also when it raises,
    so a file that fails keeps the notes that explain it). Nested in the same thread, the
    inner block yields the outer block's list.
    """
    outer = getattr(_local, "notes", None)
    if outer is not None:
        yield outer
        return
    p = None if path is None else os.fspath(path)
    notes: list[str] = []
    caught: list[warnings.WarningMessage] = []
    try:
        with _LOCK:
            _local.notes = notes
            try:
                with warnings.catch_warnings(record=True) as recorded:
                    warnings.simplefilter("always")
                    caught = recorded
                    yield notes
            finally:
                _local.notes = None
    finally:
        # also when the block raised: a failing file keeps the notes that explain it
        others = []
        for w in caught:
            if _from_dicom_library(w.filename):
                note = _clean(str(w.message), p)
                if note not in notes and len(notes) < MAX_NOTES:
                    notes.append(note)
                    _log.info("%s: pydicom: %s", p or "(dataset)", note)
            else:
                others.append(w)
        for w in others:
            # outside the block: the caller's filters apply (an error under the suite's -W error)
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
