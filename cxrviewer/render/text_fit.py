"""Corner texts that never overlap: each corner gets a box (half the width, half the height,
less room for the orientation letters), lines that are too wide are cut with an ellipsis and
lines that do not fit in the height are dropped from the end (the least important: each
corner lists its lines most important first). Qt-free: the caller measures text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

ELLIPSIS = "…"


def elide_right(text: str, measure: Callable[[str], float], max_width: float) -> str:
    """``text`` cut at the end with "…" so that ``measure(result) <= max_width`` ("" if even
    the ellipsis does not fit)."""
    if measure(text) <= max_width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # the longest prefix that fits with the ellipsis
        mid = (lo + hi + 1) // 2
        if measure(text[:mid].rstrip() + ELLIPSIS) <= max_width:
            lo = mid
        else:
            hi = mid - 1
    if lo == 0:
        return ELLIPSIS if measure(ELLIPSIS) <= max_width else ""
    return text[:lo].rstrip() + ELLIPSIS


def fit_lines(lines: Sequence[str], measure: Callable[[str], float], max_width: float, max_lines: int) -> list[str]:
    """At most ``max_lines`` lines (the first ones), each at most ``max_width`` wide."""
    out = []
    for line in list(lines)[: max(0, max_lines)]:
        t = elide_right(line, measure, max_width)
        if t:
            out.append(t)
    return out


def corner_boxes(width: float, height: float, line_height: float, margin: float = 8.0,
                 letter_room: float = 0.0) -> tuple[float, int]:
    """``(max line width, max lines)`` for each corner of a ``width`` x ``height`` canvas:
    half of it less the margins, and less ``letter_room`` (the orientation letters at the edge
    midpoints) on each side of the middle."""
    max_w = max(0.0, width / 2 - margin - letter_room / 2 - 4)
    max_h = max(0.0, height / 2 - margin - letter_room / 2 - 2)
    return max_w, int(max_h // max(line_height, 1.0))
