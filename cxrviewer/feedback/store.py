"""The reader-feedback store: every call a reader makes on an image, in embedded SQLite.

One file, ``feedback.sqlite`` in the user data folder (:func:`cxrviewer.paths.user_data_dir`),
opened in WAL mode with ``synchronous=FULL``: each change is one transaction, so a process
killed with SIGKILL, a power cut after a commit returned, or a full disk loses at most the
change in flight and never corrupts what was committed (SQLite's own guarantees; the tests
kill a real writer and fill a real and a simulated disk). WAL lets the viewer, the CLI and
a training run read while another process writes.

Rows are never updated or deleted. A change of mind is a new row; withdrawing a call is a
row with ``withdrawn = 1``. A reader's *current* call on an image is their latest row
(highest id) when it is not a withdrawal; readers never overwrite each other's calls.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cxrviewer.core.errors import CxrError

DB_NAME = "feedback.sqlite"
SCHEMA_VERSION = 1
LABELS = ("normal", "abnormal")
#: what a reader says about one finding of a multi-finding model
FINDING_VERDICTS = ("agree", "disagree", "added")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS calls (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    image_key     TEXT NOT NULL,
    reader        TEXT NOT NULL,
    recorded_at   TEXT NOT NULL,
    withdrawn     INTEGER NOT NULL DEFAULT 0 CHECK (withdrawn IN (0, 1)),
    label         TEXT CHECK (label IN ('normal', 'abnormal')),
    findings      TEXT NOT NULL DEFAULT '{}',
    note          TEXT NOT NULL DEFAULT '',
    path          TEXT NOT NULL DEFAULT '',
    frame         INTEGER NOT NULL DEFAULT 0,
    patient_id    TEXT NOT NULL DEFAULT '',
    model_name    TEXT,
    model_version TEXT,
    model_probability REAL,
    model_label   TEXT,
    model_output  TEXT,
    CHECK (withdrawn = 1 OR label IS NOT NULL)
);
CREATE INDEX IF NOT EXISTS calls_by_image_reader ON calls (image_key, reader, id);
CREATE INDEX IF NOT EXISTS calls_by_reader ON calls (reader, id);
CREATE INDEX IF NOT EXISTS calls_by_path ON calls (path, id);
"""

#: the current call of every (image, reader): the latest row, withdrawals excluded
_CURRENT = """
SELECT c.* FROM calls c
JOIN (SELECT MAX(id) AS id FROM calls GROUP BY image_key, reader) last ON last.id = c.id
WHERE c.withdrawn = 0
"""


class FeedbackError(CxrError):
    """A call that cannot be recorded or read (bad label, unknown finding, full disk...)."""


def utcnow() -> str:
    """Now in UTC, ISO 8601 with microseconds (sorts as text)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class ModelOutput:
    """What the model said about the image when the reader made the call.

    ``probability`` is P(Abnormal) (for a multi-finding model the highest probability among
    the findings with an operating point), ``None`` when the out-of-distribution gate refused
    the image (``scored`` False: a refused image carries no probability anywhere).
    ``findings`` maps each finding to its probability; ``flagged`` lists those at or above
    their operating point. ``content_key`` is the results cache's key of this result.
    """

    name: str
    version: str
    probability: float | None = None
    label: str | None = None  # "normal" / "abnormal", None when not scored
    threshold: float | None = None
    scored: bool = True
    weights_sha256: str = ""
    content_key: str = ""
    findings: Mapping[str, float] = field(default_factory=dict)
    flagged: Sequence[str] = ()

    def to_json(self) -> str:
        return json.dumps(
            {"name": self.name, "version": self.version, "probability": self.probability,
             "label": self.label, "threshold": self.threshold, "scored": self.scored,
             "weights_sha256": self.weights_sha256, "content_key": self.content_key,
             "findings": dict(self.findings), "flagged": list(self.flagged)},
            sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelOutput:
        d = json.loads(text)
        return cls(name=d["name"], version=d["version"], probability=d.get("probability"),
                   label=d.get("label"), threshold=d.get("threshold"), scored=bool(d.get("scored", True)),
                   weights_sha256=d.get("weights_sha256", ""), content_key=d.get("content_key", ""),
                   findings=dict(d.get("findings") or {}), flagged=tuple(d.get("flagged") or ()))

    @classmethod
    def from_prediction(cls, pred: Any, card: Mapping[str, Any] | None = None,
                        content_key: str = "") -> ModelOutput:
        """From a :class:`cxrviewer.ml.inference.Prediction` (duck-typed: a multi-finding
        prediction's ``findings``/``flagged`` attributes are read when present)."""
        scored = bool(getattr(pred, "scored", True))
        raw = getattr(pred, "findings", None) or {}
        if scored and not isinstance(raw, Mapping):
            # the engine's own Prediction: a tuple of FindingScore (name, probability, positive)
            findings = {f.name: f.probability for f in raw}
            flagged = tuple(f.name for f in raw if f.positive)
        else:
            findings = dict(raw) if scored else {}
            flagged = tuple(getattr(pred, "flagged", None) or ()) if scored else ()
        return cls(
            name=str(pred.model_name), version=str(pred.model_version),
            probability=float(pred.probability_abnormal) if scored else None,
            label=str(pred.label).lower() if scored else None,
            threshold=float(pred.threshold) if scored else None, scored=scored,
            weights_sha256=str((card or {}).get("weights_sha256", "")), content_key=content_key,
            findings={str(k): float(v) for k, v in findings.items()}, flagged=flagged)


@dataclass(frozen=True)
class Call:
    """One row of the store: a reader's call on an image (or its withdrawal)."""

    id: int
    image_key: str
    reader: str
    recorded_at: str
    label: str | None
    withdrawn: bool = False
    findings: Mapping[str, str] = field(default_factory=dict)
    note: str = ""
    path: str = ""
    frame: int = 0
    patient_id: str = ""
    model: ModelOutput | None = None

    def finding_present(self) -> dict[str, int]:
        """Per finding the reader spoke about: 1 present, 0 absent.

        ``added`` means present; ``agree``/``disagree`` are relative to the model's call on
        that finding (flagged or not) at the moment of the reader's call.
        """
        flagged = set(self.model.flagged) if self.model else set()
        out: dict[str, int] = {}
        for name, verdict in self.findings.items():
            if verdict == "added":
                out[name] = 1
            else:
                model_says = name in flagged
                out[name] = int(model_says if verdict == "agree" else not model_says)
        return out

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("id", "image_key", "reader", "recorded_at", "label",
                                            "withdrawn", "note", "path", "frame", "patient_id")}
        d["findings"] = dict(self.findings)
        d["model"] = json.loads(self.model.to_json()) if self.model else None
        return d


def _row_call(r: sqlite3.Row) -> Call:
    return Call(id=r["id"], image_key=r["image_key"], reader=r["reader"], recorded_at=r["recorded_at"],
                label=r["label"], withdrawn=bool(r["withdrawn"]), findings=json.loads(r["findings"] or "{}"),
                note=r["note"], path=r["path"], frame=r["frame"], patient_id=r["patient_id"],
                model=ModelOutput.from_json(r["model_output"]) if r["model_output"] else None)


def default_db_path() -> Path:
    from cxrviewer.paths import user_data_dir

    return user_data_dir() / DB_NAME


def _check_findings(findings: Mapping[str, str], model: ModelOutput | None) -> dict[str, str]:
    out = {}
    known = set(model.findings) if model else set()
    for name, verdict in findings.items():
        name = str(name).strip()
        if not name:
            raise FeedbackError(None, "a finding needs a name")
        if verdict not in FINDING_VERDICTS:
            raise FeedbackError(None, f"finding {name!r}: verdict {verdict!r} is not one of {', '.join(FINDING_VERDICTS)}")
        if known and name not in known:
            raise FeedbackError(None, f"finding {name!r} is not one of the model's findings ({', '.join(sorted(known))})")
        if verdict != "added" and name not in known:
            raise FeedbackError(None, f"finding {name!r}: {verdict} needs the model's output for that finding")
        out[name] = verdict
    return out


class FeedbackStore:
    """The calls of every reader on this workstation.

    Thread-safe (one connection behind a lock); several processes may open the same file
    (WAL: readers never block the writer). Use as a context manager or call :meth:`close`.

    Parameters
    ----------
    path
        The database file; default ``feedback.sqlite`` in the user data folder.
    timeout_s
        How long a write waits for another process's write transaction.
    """

    def __init__(self, path: str | os.PathLike | None = None, timeout_s: float = 10.0) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN IMMEDIATE ourselves (one transaction per change)
            self._db = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None,
                                       check_same_thread=False)
        except (OSError, sqlite3.Error) as e:
            raise FeedbackError(self.path, f"cannot open the feedback database: {e}") from None
        self._db.row_factory = sqlite3.Row
        try:
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise FeedbackError(self.path, f"the feedback database cannot use WAL mode (got {mode})")
            # FULL: a commit that returned survives a power cut too (NORMAL in WAL mode
            # survives a killed process but may lose the last commits on power loss).
            self._db.execute("PRAGMA synchronous=FULL")
            with self._write():
                # statement by statement: executescript() would COMMIT our transaction first
                for stmt in filter(None, (x.strip() for x in _SCHEMA.split(";"))):
                    self._db.execute(stmt)
                self._db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        except sqlite3.DatabaseError as e:
            self._db.close()
            reason = _reason(e)
            if reason.startswith("feedback database error"):
                reason = f"not a usable feedback database: {e}"
            raise FeedbackError(self.path, reason) from None
        stored = self._query("SELECT value FROM meta WHERE key = 'schema'")
        if stored and int(stored[0][0]) > SCHEMA_VERSION:
            self._db.close()
            raise FeedbackError(self.path, f"written by a newer cxrviewer (schema {stored[0][0]}, this one reads "
                                           f"{SCHEMA_VERSION}); nothing was changed")
        with contextlib.suppress(OSError):
            os.chmod(self.path, 0o600)  # reader names and patient ids: the user's eyes only

    # ------------------------------------------------------------------ plumbing
    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any error."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise FeedbackError(self.path, _reason(e)) from None
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as e:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                if isinstance(e, sqlite3.Error):
                    raise FeedbackError(self.path, _reason(e)) from None
                raise

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as e:
                raise FeedbackError(self.path, _reason(e)) from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> FeedbackStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ changes
    def record(self, image_key: str, reader: str, label: str, *,
               findings: Mapping[str, str] | None = None, note: str = "", path: str = "",
               frame: int = 0, patient_id: str = "", model: ModelOutput | None = None,
               recorded_at: str | None = None) -> Call:
        """Record (or change: the newest call wins) ``reader``'s call on ``image_key``.

        Parameters
        ----------
        label
            ``"normal"`` or ``"abnormal"`` (case-insensitive).
        findings
            For a multi-finding model: finding name -> ``"agree"``/``"disagree"`` (with the
            model's call on that finding) or ``"added"`` (the reader's own finding, from the
            model's list when a model output is given).
        model
            The model's identity and output on screen at the moment of the call, if any.

        Raises
        ------
        FeedbackError
            A bad label or finding, an empty reader name, or a database that cannot be
            written (disk full...): nothing was recorded.
        """
        lab = str(label).strip().lower()
        if lab not in LABELS:
            raise FeedbackError(path or None, f"label {label!r} is neither normal nor abnormal")
        reader = str(reader).strip()
        if not reader:
            raise FeedbackError(path or None, "the reader's name is empty")
        if not image_key:
            raise FeedbackError(path or None, "no image key")
        fnd = _check_findings(findings or {}, model)
        row = {
            "image_key": image_key, "reader": reader, "recorded_at": recorded_at or utcnow(),
            "withdrawn": 0, "label": lab, "findings": json.dumps(fnd, sort_keys=True), "note": note or "",
            "path": os.path.abspath(path) if path else "", "frame": int(frame), "patient_id": patient_id or "",
            "model_name": model.name if model else None, "model_version": model.version if model else None,
            "model_probability": model.probability if model else None,
            "model_label": model.label if model else None,
            "model_output": model.to_json() if model else None,
        }
        return self._insert(row)

    def withdraw(self, image_key: str, reader: str, path: str = "") -> Call | None:
        """Withdraw ``reader``'s current call on ``image_key`` (history kept); ``None`` when
        there was none to withdraw."""
        if self.latest(image_key, reader) is None:
            return None
        row = {"image_key": image_key, "reader": str(reader).strip(), "recorded_at": utcnow(), "withdrawn": 1,
               "label": None, "findings": "{}", "note": "", "path": os.path.abspath(path) if path else "",
               "frame": 0, "patient_id": "", "model_name": None, "model_version": None,
               "model_probability": None, "model_label": None, "model_output": None}
        return self._insert(row)

    def _insert(self, row: dict[str, Any]) -> Call:
        cols = ", ".join(row)
        marks = ", ".join(f":{k}" for k in row)
        with self._write() as db:
            cur = db.execute(f"INSERT INTO calls ({cols}) VALUES ({marks})", row)
            new_id = cur.lastrowid
            r = db.execute("SELECT * FROM calls WHERE id = ?", (new_id,)).fetchone()
        return _row_call(r)

    # ------------------------------------------------------------------ reading
    def latest(self, image_key: str, reader: str) -> Call | None:
        """``reader``'s current call on ``image_key`` (``None``: none, or withdrawn)."""
        rows = self._query("SELECT * FROM calls WHERE image_key = ? AND reader = ? ORDER BY id DESC LIMIT 1",
                           (image_key, str(reader).strip()))
        if not rows or rows[0]["withdrawn"]:
            return None
        return _row_call(rows[0])

    def calls_for(self, image_key: str) -> list[Call]:
        """Every reader's current call on ``image_key`` (for the browser/worklist row)."""
        return self.calls_for_many([image_key]).get(image_key, [])

    def calls_for_many(self, image_keys: Sequence[str]) -> dict[str, list[Call]]:
        """Every reader's current call on each of ``image_keys`` (a worklist page at once);
        keys without a current call are absent. Uses the (image_key, reader, id) index."""
        out: dict[str, list[Call]] = {}
        keys = list(dict.fromkeys(image_keys))
        for i in range(0, len(keys), 500):  # SQLite's default limit on bound parameters is 999+
            chunk = keys[i : i + 500]
            marks = ", ".join("?" * len(chunk))
            rows = self._query(
                "SELECT c.* FROM calls c JOIN (SELECT MAX(id) AS id FROM calls WHERE image_key IN "
                f"({marks}) GROUP BY image_key, reader) last ON last.id = c.id WHERE c.withdrawn = 0 "
                "ORDER BY c.image_key, c.reader", chunk)
            for r in rows:
                out.setdefault(r["image_key"], []).append(_row_call(r))
        return out

    def calls_by_path(self, paths: Sequence[str]) -> dict[str, list[Call]]:
        """The current calls on the images last recorded at each of ``paths`` (absolute), for
        browser rows whose pixels are not hashed yet.

        A *hint* only: the file at a path may have been replaced since. Once the image is
        decoded, :meth:`calls_for` with its key is the answer (and finds renamed files too).
        """
        out: dict[str, list[Call]] = {}
        wanted = list(dict.fromkeys(os.path.abspath(p) for p in paths))
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            marks = ", ".join("?" * len(chunk))
            rows = self._query(
                "SELECT c.path AS seen, c.image_key FROM calls c JOIN (SELECT MAX(id) AS id FROM calls "
                f"WHERE path IN ({marks}) GROUP BY path) last ON last.id = c.id", chunk)
            keys = {r["seen"]: r["image_key"] for r in rows}
            current = self.calls_for_many(list(set(keys.values())))
            for seen, key in keys.items():
                if key in current:
                    out[seen] = current[key]
        return out

    def history(self, image_key: str, reader: str | None = None) -> list[Call]:
        """All rows for ``image_key`` (optionally one reader's), oldest first, withdrawals included."""
        if reader is None:
            rows = self._query("SELECT * FROM calls WHERE image_key = ? ORDER BY id", (image_key,))
        else:
            rows = self._query("SELECT * FROM calls WHERE image_key = ? AND reader = ? ORDER BY id",
                               (image_key, str(reader).strip()))
        return [_row_call(r) for r in rows]

    def current(self, reader: str | None = None, since: str | None = None,
                model: str | None = None) -> list[Call]:
        """The current calls (latest per image and reader, withdrawals excluded), oldest first.

        ``since``: an ISO 8601 UTC time; calls recorded at or after it. ``model``: calls made
        while that model (by name) was on screen.
        """
        sql, params = _CURRENT, []
        if reader is not None:
            sql += " AND c.reader = ?"
            params.append(str(reader).strip())
        if since is not None:
            sql += " AND c.recorded_at >= ?"
            params.append(since)
        if model is not None:
            sql += " AND c.model_name = ?"
            params.append(model)
        return [_row_call(r) for r in self._query(sql + " ORDER BY c.id", params)]

    def paths_of(self, image_key: str) -> list[str]:
        """Every path this image was seen at, newest first (a renamed file's old names too)."""
        rows = self._query("SELECT path, MAX(id) AS last FROM calls WHERE image_key = ? AND path != '' "
                           "GROUP BY path ORDER BY last DESC", (image_key,))
        return [r["path"] for r in rows]

    def count_rows(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM calls")[0][0])

    def integrity(self) -> str:
        """``PRAGMA integrity_check``'s answer (``"ok"`` when the file is sound)."""
        return "; ".join(str(r[0]) for r in self._query("PRAGMA integrity_check"))


def _reason(e: sqlite3.Error) -> str:
    code = getattr(e, "sqlite_errorcode", None)  # Python >= 3.11
    if code == getattr(sqlite3, "SQLITE_FULL", 13) or "full" in str(e).lower():
        return "the feedback database cannot grow (disk full); the call was not recorded, earlier calls are intact"
    if code == getattr(sqlite3, "SQLITE_BUSY", 5) or "locked" in str(e).lower():
        return "the feedback database is busy (another process is writing); the call was not recorded"
    return f"feedback database error: {e}"
