"""What the viewer says about reader calls: row text and tooltip, the panel's lines, the model
card's agreement rows. Pure functions of :class:`cxrviewer.feedback.Call` objects (no Qt), so
they are tested without a window."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cxrviewer.feedback import Call, agreement_line

LABEL_TEXT = {"normal": "Normal", "abnormal": "Abnormal"}
#: the browser's Call column (narrow dock): the full words are in the tooltip
SHORT_TEXT = {"normal": "N", "abnormal": "A"}
#: row/panel colours: Abnormal amber, Normal green (readable on the dark theme)
LABEL_COLOUR = {"normal": "#7bd88f", "abnormal": "#ffb35c"}


def when(recorded_at: str) -> str:
    """A stored UTC time as local ``YYYY-MM-DD HH:MM`` (what a reader reads as "when")."""
    try:
        return datetime.fromisoformat(recorded_at).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return recorded_at


def model_words(call: Call) -> str:
    """How the call relates to the AI result recorded with it ("" when none was on screen)."""
    m = call.model
    if m is None:
        return ""
    who = f"{m.name} {m.version}".strip()
    if not m.scored or m.label not in LABEL_TEXT:
        return f"AI {who}: not scored"
    verb = "agrees with" if m.label == call.label else "disagrees with"
    p = f" {m.probability:.2f}" if m.probability is not None else ""
    return f"{verb} AI {who} ({LABEL_TEXT[m.label]}{p})"


def call_line(call: Call) -> str:
    """One line per call: ``alice: Abnormal, 2026-12-07 03:12 (agrees with AI ...)``."""
    extra = model_words(call)
    findings = ", ".join(f"{n} {v}" for n, v in sorted(call.findings.items()))
    parts = [f"{call.reader}: {LABEL_TEXT.get(call.label or '', call.label or '?')}, {when(call.recorded_at)}"]
    if extra:
        parts.append(f"({extra})")
    if findings:
        parts.append(f"[{findings}]")
    line = " ".join(parts)
    if call.note:
        line += f" — note: {call.note}"
    return line


def row_cell(calls: Sequence[Call], reader: str) -> tuple[str, str, str | None]:
    """The browser/worklist cell for an image's current calls: ``(text, tooltip, label)``.

    Compact, as the keys (the browser dock is narrow and its thumbnails need the room): this
    reader's own call as ``A`` (Abnormal) or ``N`` (Normal) with ``+1`` for each other reader
    who called the image; only other readers' calls in parentheses, ``(A)``, ``(N×2)``, or
    ``(A/N)`` when they differ. The tooltip names every
    reader, the time and the AI result recorded with the call. ``label`` (for the colour) is
    the reader's own label, else the others' when they agree, else ``None``. No calls:
    ``("", "", None)``.
    """
    if not calls:
        return "", "", None
    mine = next((c for c in calls if c.reader == reader), None)
    others = [c for c in calls if c.reader != reader]
    if mine is not None:
        text = SHORT_TEXT[mine.label] + (f"+{len(others)}" if others else "")
        label = mine.label
    else:
        labels = {c.label for c in others}
        label = next(iter(labels)) if len(labels) == 1 else None
        if label is None:
            text = "(A/N)"
        else:
            text = f"({SHORT_TEXT[label]}" + (f"×{len(others)})" if len(others) > 1 else ")")
    ordered = ([mine] if mine else []) + sorted(others, key=lambda c: c.reader)
    tip = "Reader calls:\n" + "\n".join(call_line(c) for c in ordered)
    return text, tip, label


def agreement_rows(stats: dict[str, Any]) -> list[tuple[str, str]]:
    """The model card dialog's section "Agreement with this site's readers" as (label, text)
    rows, from :func:`cxrviewer.feedback.agreement_stats`."""

    def pct(v, ci) -> str:
        if v is None:
            return "– (no calls of that kind yet)"
        return f"{100 * v:.0f} %" + ("" if ci is None else f" (95 % CI {100 * ci[0]:.0f}–{100 * ci[1]:.0f} %)")

    line = agreement_line(stats)
    if not stats["n_with_model"]:
        return [("Reader calls", line.split(": ", 1)[1])]
    kappa = "–" if stats["kappa"] is None else f"{stats['kappa']:.2f}"
    if stats["kappa_ci"] is not None:
        kappa += f" (95 % CI {stats['kappa_ci'][0]:.2f}–{stats['kappa_ci'][1]:.2f})"
    readers = ", ".join(f"{r} ({n})" for r, n in stats["readers"].items())
    return [
        ("Reader calls", f"n = {stats['n_with_model']} with this model's output on screen "
                         f"({stats['n']} calls in all), {stats['n_readers']} reader"
                         f"{'s' if stats['n_readers'] != 1 else ''}: {readers}"),
        ("Agreement", pct(stats["agreement"], stats["agreement_ci"])),
        ("Cohen's kappa", kappa),
        ("Sensitivity", pct(stats["sensitivity"], stats["sensitivity_ci"])
         + f" — {stats['tp']} of {stats['tp'] + stats['fn']} reader-Abnormal calls"),
        ("Specificity", pct(stats["specificity"], stats["specificity_ci"])
         + f" — {stats['tn']} of {stats['tn'] + stats['fp']} reader-Normal calls"),
        ("Reference", "the readers' current calls (Abnormal = positive); Wilson intervals, large-sample SE "
                      "for kappa; this workstation only"),
    ]
