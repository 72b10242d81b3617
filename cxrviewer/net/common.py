"""Requests, results and errors shared by the DIMSE and DICOMweb transports."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from cxrviewer.core.errors import CxrError

#: progress(done, total): called after each instance; total may be 0 while unknown
Progress = Callable[[int, int], None]

#: the study-level attributes a query returns, as (JSON key, DICOM keyword)
STUDY_FIELDS = (
    ("study_uid", "StudyInstanceUID"),
    ("patient_name", "PatientName"),
    ("patient_id", "PatientID"),
    ("birth_date", "PatientBirthDate"),
    ("study_date", "StudyDate"),
    ("study_time", "StudyTime"),
    ("accession", "AccessionNumber"),
    ("modalities", "ModalitiesInStudy"),
    ("description", "StudyDescription"),
    ("n_series", "NumberOfStudyRelatedSeries"),
    ("n_instances", "NumberOfStudyRelatedInstances"),
)

_DATE_RE = re.compile(r"^(\d{8})?(-(\d{8})?)?$")


class NetError(CxrError):
    """A network operation failed; the message names the node and the reason.

    Attributes
    ----------
    node
        :func:`cxrviewer.net.nodes.describe` of the node (no credentials).
    """

    def __init__(self, node: str, reason: str):
        self.node = node
        super().__init__(None, f"{node}: {reason}")


class Cancelled(NetError):
    """The user cancelled; what was complete before stays, nothing partial is left."""


@dataclass(frozen=True)
class StudyQuery:
    """A study-level query. Empty fields match everything; ``*`` and ``?`` are wildcards
    in names and IDs (PS3.4 C.2.2.2.4); ``study_date`` is ``YYYYMMDD``, ``YYYYMMDD-YYYYMMDD``,
    ``-YYYYMMDD`` or ``YYYYMMDD-`` (PS3.4 C.2.2.2.5)."""

    patient_id: str = ""
    patient_name: str = ""
    study_date: str = ""
    modality: str = ""
    accession: str = ""
    study_uid: str = ""
    limit: int = 0

    def __post_init__(self) -> None:
        d = self.study_date.replace(" ", "")
        if d and (not _DATE_RE.match(d) or d == "-"):
            raise ValueError(f"study date {self.study_date!r} is not YYYYMMDD or a range YYYYMMDD-YYYYMMDD")
        object.__setattr__(self, "study_date", d)


class FindResult(list):
    """The study rows of a find (a list), plus ``notes``: what we did about the archive's quirks
    (answers merged, filters it ignored applied here)."""

    def __init__(self, rows=(), notes: list[str] | None = None) -> None:
        super().__init__(rows)
        self.notes: list[str] = list(notes or [])


def dedupe_studies(rows: list[dict]) -> tuple[list[dict], int]:
    """One row per Study Instance UID (an archive may answer one per series or instance).

    Modalities of the merged rows are united; other fields come from the first row that has
    them. Returns the rows and how many answers were merged away.
    """
    out: dict[str, dict] = {}
    for r in rows:
        key = r.get("study_uid") or f"#{len(out)}"
        have = out.get(key)
        if have is None:
            out[key] = dict(r)
            continue
        for k, v in r.items():
            if k == "modalities":
                have[k] = list(dict.fromkeys(list(have[k]) + list(v)))
            elif have.get(k) in ("", None) and v not in ("", None):
                have[k] = v
    return list(out.values()), len(rows) - len(out)


def modality_match(wanted: str, modalities: list[str]) -> bool:
    """Whether a study with ``modalities`` matches the query's modality (``CR`` or ``CR\\DX``; ``*``/``?``)."""
    import fnmatch

    pats = [w.strip().upper() for w in wanted.replace(",", "\\").split("\\") if w.strip()]
    return not pats or any(fnmatch.fnmatchcase(m.upper(), p) for m in modalities for p in pats)


def date_match(study_date: str, rng: str) -> bool:
    """Whether ``study_date`` (YYYYMMDD) falls in the query's range (PS3.4 C.2.2.2.5); unknown dates match."""
    if not rng or not study_date:
        return True
    if "-" not in rng:
        return study_date == rng
    lo, hi = rng.split("-", 1)
    return (not lo or study_date >= lo) and (not hi or study_date <= hi)


@dataclass
class RetrieveResult:
    """What a retrieve did. ``folder`` holds the study's files (old and new)."""

    study_uid: str
    folder: str
    total: int = 0
    fetched: int = 0
    already_present: int = 0
    failed: int = 0
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: one ``{"sop_instance_uid", "reason"}`` per instance still missing after the retrieve
    failures: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SendResult:
    """What a send did: one entry per file that failed, with its reason."""

    sent: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    sop_instance_uids: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"sent": self.sent, "failed": [{"path": p, "reason": r} for p, r in self.failed],
                "sop_instance_uids": self.sop_instance_uids, "seconds": self.seconds}


class CancelToken:
    """A flag the UI sets and the transfer checks between instances (cooperative)."""

    def __init__(self) -> None:
        self._ev = threading.Event()

    def cancel(self) -> None:
        self._ev.set()

    @property
    def cancelled(self) -> bool:
        return self._ev.is_set()


def study_row(get: Callable[[str], object]) -> dict:
    """One result row (JSON-ready) from a getter of DICOM keywords."""
    row: dict = {}
    for key, kw in STUDY_FIELDS:
        v = get(kw)
        if v is None:
            v = ""
        if kw == "ModalitiesInStudy":
            v = [str(x) for x in v] if isinstance(v, (list, tuple)) or hasattr(v, "__iter__") and not isinstance(v, str) \
                else [x for x in str(v).split("\\") if x]
        elif kw.startswith("NumberOf"):
            try:
                v = int(v) if v != "" else None
            except (TypeError, ValueError):
                v = None
        else:
            v = str(v)
        row[key] = v
    return row
