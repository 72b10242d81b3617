"""Guard against a PySide6 reference-count bug on Python < 3.12.

Measured here (PySide6 6.12.0, CPython 3.11.7): every Python-side ``Signal.emit()`` returns
``True`` without taking a reference, so each emit steals one reference from the ``True``
singleton (and some calls do the same to ``None``). pyqtgraph emits signals on every mouse
move and range change, so after some thousands of emits CPython aborts with
"Fatal Python error: bool_dealloc: deallocating True or False" (or ``none_dealloc``).
CPython 3.12 made these singletons immortal (PEP 683), which hides the bug there.

We do the same by hand: add a very large count to the reference counts of ``True``, ``False``
and ``None``. They are never deallocated anyway, so this changes nothing else.
"""

from __future__ import annotations

import ctypes
import sys

_APPLIED = False
_BOOST = 1 << 40  # ~1e12 emits before the count could reach zero again


def apply() -> bool:
    """Make ``None``/``True``/``False`` effectively immortal on CPython < 3.12 (idempotent)."""
    global _APPLIED
    if _APPLIED or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    for obj in (None, True, False):
        ref = ctypes.c_ssize_t.from_address(id(obj))  # ob_refcnt is the first field
        ref.value += _BOOST
    _APPLIED = True
    return True
