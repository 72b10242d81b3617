"""Durations as admins type and read them: ``--time-budget 1h30m`` in, ``2.4 min`` out.

One definition for the training command (``training/args.py``, ``training/progress.py``) and the
app's *Train / Refresh model…* dialog, which may not import ``training`` (layering contract).
"""

from __future__ import annotations

import re

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([smh])")


def parse_duration(text: str) -> float:
    """``"20m"``, ``"1h30m"``, ``"90s"``, ``"1.5h"`` -> seconds (a unit is required).

    Raises
    ------
    ValueError
        When ``text`` is not such a duration or adds up to zero.
    """
    t = str(text).strip().lower().replace(" ", "")
    pos, total = 0, 0.0
    for m in _PART.finditer(t):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not t or pos != len(t) or total <= 0:
        raise ValueError(f"{text!r}: expected a duration like 20m, 1h30m or 90s")
    return total


def fmt_duration(seconds: float) -> str:
    """``42 s``, ``2.4 min``, ``1 h 05 min`` (estimates: no false precision)."""
    s = max(0.0, float(seconds))
    if s < 90:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{s / 60:.1f} min".replace(".0 min", " min")
    h, m = divmod(round(s / 60), 60)
    return f"{h} h {m:02d} min"
