"""Reader feedback: each reader's call on each image, kept by content, offline (Qt-free).

The viewer, the CLI (``cxrviewer feedback ...``) and the training module use this package;
it imports only :mod:`cxrviewer.core`, :mod:`cxrviewer.ml` and :mod:`cxrviewer.paths`.

What the viewer calls (everything below runs off the GUI thread or in well under a
millisecond on the store; the key costs one pixel hash, which the viewer already memoises):

* ``key = image_key(loaded_image)`` (or ``image_key(pixel_digest, frame)``);
* ``store = FeedbackStore()`` once per window (``close()`` on exit);
* ``store.record(key, reader, "abnormal", findings={...}, note=..., path=..., frame=...,
  patient_id=..., model=ModelOutput.from_prediction(pred, card, content_key))`` for a
  keystroke; ``label_from_model(agree, model_output)`` for *Agree*/*Disagree*;
* ``store.withdraw(key, reader)``; ``store.latest(key, reader)`` for the reader's own call;
  ``store.calls_for(key)`` / ``store.calls_for_many(keys)`` for browser/worklist rows (every
  reader's current call), ``store.calls_by_path(paths)`` as a hint for rows whose pixels are
  not hashed yet;
* ``agreement_stats(store.current(), model=name)`` and :func:`agreement_line` for the model
  card dialog; :func:`data_source` for the Train dialog's "Reader feedback (N labelled
  images)" entry, whose :meth:`FeedbackSource.write_csv` gives the file for ``--data``.

The reader's name is :func:`default_reader` (``$CXRVIEWER_READER``, else the setting
``feedback/reader`` in ``settings.ini``, else the OS user).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from cxrviewer.feedback.export import (
    COLUMNS,
    ExportSummary,
    export_csv,
    finding_column,
    parse_since,
)
from cxrviewer.feedback.keys import READER_SETTING, default_reader, image_key, load_keyed
from cxrviewer.feedback.stats import agreement_line, agreement_stats, cohen_kappa, wilson
from cxrviewer.feedback.store import (
    DB_NAME,
    LABELS,
    Call,
    FeedbackError,
    FeedbackStore,
    ModelOutput,
    default_db_path,
)

__all__ = [
    "COLUMNS", "DB_NAME", "LABELS", "READER_SETTING", "Call", "ExportSummary", "FeedbackError",
    "FeedbackSource", "FeedbackStore", "ModelOutput", "agreement_line", "agreement_stats",
    "cohen_kappa", "data_source", "default_db_path", "default_reader", "export_csv",
    "finding_column", "image_key", "label_from_model", "load_keyed", "parse_since", "wilson",
]


def label_from_model(agree: bool, model: ModelOutput) -> str:
    """*Agree* / *Disagree* with the AI result on screen -> the reader's label.

    Raises :class:`FeedbackError` when the model gave no label (image not scored).
    """
    if not model.scored or model.label not in LABELS:
        raise FeedbackError(None, "the AI result on screen has no Normal/Abnormal label to agree or disagree with")
    if agree:
        return model.label
    return "normal" if model.label == "abnormal" else "abnormal"


@dataclass(frozen=True)
class FeedbackSource:
    """The Train dialog's data source "Reader feedback (N labelled images)"."""

    images: int
    calls: int
    readers: dict[str, int] = field(default_factory=dict)
    db_path: str = ""

    @property
    def label(self) -> str:
        return f"Reader feedback ({self.images} labelled image{'s' if self.images != 1 else ''})"

    def write_csv(self, out: str | os.PathLike, reader: str | None = None, since: str | None = None) -> ExportSummary:
        """Export the calls to ``out`` (the file the dialog passes to ``--data``)."""
        with FeedbackStore(self.db_path or None) as store:
            return export_csv(store, out, reader=reader, since=since)


def data_source(store: FeedbackStore) -> FeedbackSource:
    """How many images the readers labelled (current calls), for the Train dialog."""
    calls = store.current()
    readers: dict[str, int] = {}
    for c in calls:
        readers[c.reader] = readers.get(c.reader, 0) + 1
    return FeedbackSource(images=len({c.image_key for c in calls}), calls=len(calls),
                          readers=dict(sorted(readers.items())), db_path=str(store.path))
