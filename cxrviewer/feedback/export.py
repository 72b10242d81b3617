"""Reader calls out as a labelled CSV that ``cxrviewer train --data`` reads as it is.

Columns: :data:`COLUMNS` (``path,label,patient_id,content_key,reader,recorded_at,model,
model_version,model_probability``), then one column per finding that any exported call
spoke about (the finding's name lower-cased, spaces and punctuation as ``_``): ``1`` present,
``0`` absent, empty where that reader said nothing about it. One row per current call
(latest per image and reader, withdrawals excluded); an image two readers called has two
rows with the same ``content_key`` and ``patient_id``, so the training split (patient-wise)
never puts them on both sides.

``path`` is the newest path the image was seen at that still exists (a file renamed since
the call keeps its label when a later call saw the new name); when none exists the newest
recorded path is written and counted in ``missing`` (training then reports it unreadable).
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

from cxrviewer.feedback.store import Call, FeedbackError, FeedbackStore

COLUMNS = ("path", "label", "patient_id", "content_key", "reader", "recorded_at", "model", "model_version",
           "model_probability")


@dataclass
class ExportSummary:
    """What an export wrote (``--json`` prints it)."""

    out: str
    rows: int
    images: int
    readers: dict[str, int]
    missing: int
    finding_columns: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"out": self.out, "rows": self.rows, "images": self.images, "readers": self.readers,
                "missing": self.missing, "finding_columns": self.finding_columns}


def finding_column(name: str) -> str:
    """``"Lung Opacity"`` -> ``"lung_opacity"`` (the naming of ``infer``'s ``p_`` columns, unprefixed)."""
    col = re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")
    return col or "finding"


def parse_since(text: str | None) -> str | None:
    """``--since``: an ISO date or date-time (naive = UTC) -> the store's UTC ISO text."""
    if text is None:
        return None
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        raise FeedbackError(None, f"--since {text!r} is not an ISO date (YYYY-MM-DD or YYYY-MM-DDTHH:MM)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _path_for(store: FeedbackStore, call: Call, cache: dict[str, str | None]) -> str | None:
    """The newest existing path of the call's image (``None``: none exists any more)."""
    if call.image_key not in cache:
        paths = ([call.path] if call.path else []) + store.paths_of(call.image_key)
        cache[call.image_key] = next((p for p in paths if os.path.isfile(p)), None)
    return cache[call.image_key]


def rows(store: FeedbackStore, reader: str | None = None, since: str | None = None) -> tuple[list[dict], list[str], int]:
    """``(rows, finding columns, missing)`` of the current calls as CSV dicts."""
    calls = store.current(reader=reader, since=since)
    cols: dict[str, str] = {}
    for c in calls:
        for name in c.findings:
            cols.setdefault(finding_column(name), name)
    cache: dict[str, str | None] = {}
    out, missing = [], 0
    for c in calls:
        path = _path_for(store, c, cache)
        if path is None:
            missing += 1
            path = c.path
        r = {"path": path, "label": c.label, "patient_id": c.patient_id, "content_key": c.image_key,
             "reader": c.reader, "recorded_at": c.recorded_at,
             "model": c.model.name if c.model else "", "model_version": c.model.version if c.model else "",
             "model_probability": "" if not c.model or c.model.probability is None else f"{c.model.probability:.6f}"}
        present = {finding_column(k): v for k, v in c.finding_present().items()}
        for col in sorted(cols):
            r[col] = "" if col not in present else str(present[col])
        out.append(r)
    return out, sorted(cols), missing


def to_csv(records: list[dict], finding_cols: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=[*COLUMNS, *finding_cols], lineterminator="\n")
    w.writeheader()
    w.writerows(records)
    return buf.getvalue()


def export_csv(store: FeedbackStore, out: str | os.PathLike, reader: str | None = None,
               since: str | None = None) -> ExportSummary:
    """Write the current calls to ``out`` atomically (the caller decides about overwriting).

    Raises
    ------
    FeedbackError
        No call matches (an empty label file would only fail later, in training).
    cxrviewer.atomic.WriteError
        ``out`` cannot be written (nothing is left behind).
    """
    from cxrviewer import atomic

    records, finding_cols, missing = rows(store, reader, since)
    if not records:
        who = f" by {reader}" if reader else ""
        when = f" since {since}" if since else ""
        raise FeedbackError(None, f"no reader calls{who}{when} to export")
    atomic.write_text(out, to_csv(records, finding_cols))
    readers: dict[str, int] = {}
    for r in records:
        readers[r["reader"]] = readers.get(r["reader"], 0) + 1
    return ExportSummary(os.fspath(out), len(records), len({r["content_key"] for r in records}),
                         dict(sorted(readers.items())), missing, finding_cols)
