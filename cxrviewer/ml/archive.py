"""Scoring an archive: the stages of ``cxrviewer infer`` as plain functions (Qt-free).

The local engine (:mod:`cxrviewer.ml.archive_local`) and the Ray engine
(``cxrviewer.ml.archive_ray``) run the same three stages, so their rows are equal:

:func:`prepare`
    Runs where the file is read (a worker process, a Ray task): decode one frame, the OOD
    gate's header rules, the content key (:func:`cxrviewer.ml.results.content_key`, the one
    key function), the model input as ``uint8 (size, size)`` (the one preprocessing
    function minus its normalisation, which is 12x smaller to send than float32 and exact
    to redo in the parent). Never raises: a bad file gives a :class:`Prepared` with
    ``status="error"`` and the reason.
:func:`score`
    Runs where the model is (the parent, a Ray actor): one batched forward pass, the learned
    OOD check, calibration, optionally an 8×8 CAM summary per image; returns result rows
    (:data:`COLUMNS` then :data:`EXTRA_COLUMNS`).
:class:`ResultsSink` (:func:`open_sink`)
    Appends rows as they come, durably (see the sink classes), tells what is already done
    (:meth:`ResultsSink.done_rows`, :meth:`ResultsSink.done_keys`), and
    :meth:`ResultsSink.finalize` writes exactly one row per image, atomically.

Resume without re-decoding: every row stores the file's size and ``st_mtime_ns`` beside its
content key; a file whose (path, size, mtime_ns, model, version) match a done row is skipped
after one ``stat``. Only files that do not match are decoded, and one whose content key
equals a done row's (a copy, a touched file) reuses that row's result without inference.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cxrviewer import atomic
from cxrviewer.ml import ood
from cxrviewer.ml.preprocess import PreprocessSpec, ResizeMapping, normalize, prepare_uint8

#: the CSV columns of ``cxrviewer infer`` (a contract: add at the end, rename nothing)
COLUMNS = [
    "path", "sop_instance_uid", "probability_abnormal", "label", "model", "model_version",
    "status", "reason",
]
#: added by the archive engine: what resume needs to skip a file after one stat, and the
#: precision the model ran at (fp32 or int8: the same model card, different results)
EXTRA_COLUMNS = ["content_key", "file_size", "mtime_ns", "precision"]
ALL_COLUMNS = COLUMNS + EXTRA_COLUMNS
#: multi-finding models add, after these, one ``p_<finding>`` column per finding (the
#: card's order; :func:`cxrviewer.ml.card.finding_column`) and then :data:`FINDINGS_COLUMN`
FINDINGS_COLUMN = "findings"


def finding_columns(card: Any) -> list[str]:
    """The extra columns of a model's results: ``p_*`` per finding + ``findings`` (none for
    the two-class demo)."""
    found = list(getattr(card, "findings", ()) or ())
    return [f.column for f in found] + [FINDINGS_COLUMN] if found else []
#: parquet only (``--cam-summary``): the CAM of the Abnormal class resampled to
#: CAM_SUMMARY×CAM_SUMMARY over the image's own extent (row-major float32 in [0, 1])
CAM_COLUMN = "cam_summary"
CAM_SUMMARY = 8
ERROR = "error"
PARQUET_HINT = "pip install 'cxrviewer[parquet]'"


@dataclass
class Prepared:
    """One image after :func:`prepare`: picklable and small (~50 kB for a 224 model).

    ``u8`` is the model input before normalisation (``None`` for an error); ``head`` the
    OOD gate's header-rule outcome; ``mapping`` how the input maps onto the image (for the
    CAM); ``*_ms`` the stage costs (for ``bench archive``).
    """

    path: str
    frame: int = 0
    status: str = "ok"
    reason: str = ""
    sop_instance_uid: str = ""
    key: str = ""
    file_size: int = -1
    mtime_ns: int = -1
    u8: np.ndarray | None = None
    mapping: ResizeMapping | None = None
    head: ood.GateOutcome = field(default_factory=ood.GateOutcome)
    decode_ms: float = 0.0
    key_ms: float = 0.0
    preprocess_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status != ERROR


def file_stat(path: str) -> tuple[int, int]:
    """``(size, mtime_ns)`` of a file, ``(-1, -1)`` when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return -1, -1
    return int(st.st_size), int(st.st_mtime_ns)


def _one_line(text: str) -> str:
    # a reason must stay one CSV field on one line (the torn-line check reads lines)
    return " ".join(str(text).split())


def prepare(
    path: str, spec: PreprocessSpec, card: Mapping[str, Any], *, frame: int = 0
) -> Prepared:
    """Decode, check and preprocess one file (runs in a worker; never raises).

    Parameters
    ----------
    path
        The file (DICOM, PNG or JPEG).
    spec
        The model's preprocessing (``engine.spec``).
    card
        The model card (``engine.card``): part of the content key.
    frame
        The frame scored (0: the first, as ``cxrviewer infer`` always did).
    """
    from cxrviewer.core.dicom_io import load_image
    from cxrviewer.core.errors import CxrError
    from cxrviewer.ml.results import content_key

    size, mtime = file_stat(path)
    out = Prepared(path=path, frame=frame, file_size=size, mtime_ns=mtime)
    t0 = time.perf_counter()
    try:
        img = load_image(path, frame)
    except CxrError as e:
        out.status, out.reason = ERROR, _one_line(e.reason)
        return out
    except Exception as e:  # noqa: BLE001 - a decoder's own error is still one bad file
        out.status, out.reason = ERROR, _one_line(f"{type(e).__name__}: {e}")
        return out
    t1 = time.perf_counter()
    try:
        out.sop_instance_uid = img.header.sop_instance_uid or ""
        out.key = content_key(img, frame, card)
        t2 = time.perf_counter()
        out.head = ood.check_header(img)
        out.u8, out.mapping = prepare_uint8(img, spec)
        t3 = time.perf_counter()
    except Exception as e:  # noqa: BLE001 - odd pixels a decoder accepted: one bad file
        out.status, out.reason = ERROR, _one_line(f"cannot preprocess: {type(e).__name__}: {e}")
        out.u8 = out.mapping = None
        return out
    out.decode_ms = (t1 - t0) * 1e3
    out.key_ms = (t2 - t1) * 1e3
    out.preprocess_ms = (t3 - t2) * 1e3
    return out


def warm_up() -> None:
    """Import what :func:`prepare` imports lazily (pydicom, its codecs, OpenCV): a fresh
    worker calls this before it takes files, so the first file's decode deadline does not
    pay seconds of imports on a loaded machine."""
    import cxrviewer.core.dicom_io  # noqa: F401
    import cxrviewer.ml.results  # noqa: F401

    try:
        import cv2  # noqa: F401
    except ImportError:
        pass


def prepare_block(
    paths: Sequence[str], spec: PreprocessSpec, card: Mapping[str, Any]
) -> list[Prepared]:
    """:func:`prepare` for each path (the unit a worker process is given)."""
    return [prepare(p, spec, card) for p in paths]


def error_row(path: str, reason: str, engine: Any | None = None) -> dict[str, Any]:
    """The row of a file that could not be scored (``status="error"``)."""
    size, mtime = file_stat(path)
    return {
        "path": path, "sop_instance_uid": "", "probability_abnormal": "", "label": "",
        "model": getattr(engine, "name", ""), "model_version": getattr(engine, "version", ""),
        "status": ERROR, "reason": _one_line(reason), "content_key": "",
        "file_size": size, "mtime_ns": mtime, "precision": precision_of(engine),
    }


def precision_of(engine: Any | None) -> str:
    """``"fp32"`` or ``"int8"`` (engines before INT8 existed are fp32)."""
    return str(getattr(engine, "precision", "fp32") or "fp32")


def summarize_cam(low_res: np.ndarray, mapping: ResizeMapping, n: int = CAM_SUMMARY) -> list[float]:
    """A low-resolution map over the model input -> ``n×n`` floats over the image's own
    extent (letterbox padding cropped), row-major, rounded to 4 decimals."""
    import cv2

    m = np.asarray(low_res, dtype=np.float32)
    s = mapping.size
    m = cv2.resize(m, (s, s), interpolation=cv2.INTER_LINEAR)
    inner = m[mapping.pad_top : mapping.pad_top + mapping.inner_h,
              mapping.pad_left : mapping.pad_left + mapping.inner_w]
    small = cv2.resize(np.ascontiguousarray(inner), (n, n), interpolation=cv2.INTER_AREA)
    return [round(float(v), 4) for v in np.clip(small, 0.0, 1.0).ravel()]


def score(
    engine: Any,
    batch: Sequence[Prepared],
    *,
    score_all: bool = False,
    cam_summary: bool = False,
    keep_maps: bool = False,
) -> list[dict[str, Any]]:
    """Score a batch of prepared images in one forward pass -> one row per item, in order.

    Parameters
    ----------
    engine
        A loaded :class:`cxrviewer.ml.inference.Engine` (its ``forward``, ``spec``,
        ``threshold``, ``gate``).
    batch
        Items from :func:`prepare`; errors become ``status="error"`` rows.
    score_all
        Fill probability and label for images the OOD gate refuses (as ``--score-all``).
    cam_summary
        Add :data:`CAM_COLUMN` (``CAM_SUMMARY**2`` floats; ``None`` where not shown).
    keep_maps
        Add ``"_map"``: the raw low-resolution map (for ``--cam-dir``; strip before a sink).
    """
    rows: list[dict[str, Any]] = []
    good = [p for p in batch if p.ok]
    found: dict[int, tuple[np.ndarray, ood.GateOutcome, np.ndarray | None]] = {}
    multi = bool(getattr(engine, "multi_label", False))
    if good:
        x = np.stack([normalize(p.u8, engine.spec) for p in good]).astype(np.float32, copy=False)
        want_maps = cam_summary or keep_maps
        probs, maps, _targets, feats = engine.forward(x, cam=want_maps)
        for i, p in enumerate(good):
            gate = ood.assess_with_header(p.head, feats[i], engine.gate, engine.gate_error)
            low = None
            if maps is not None:
                # multi-label: the map of the top finding (all of them came from this pass)
                low = maps[i][int(np.argmax(probs[i]))] if multi else maps[i]
            found[id(p)] = (np.asarray(probs[i]), gate, low)
    for p in batch:
        if not p.ok:
            row = error_row(p.path, p.reason, engine)
            row["file_size"], row["mtime_ns"] = p.file_size, p.mtime_ns
            if cam_summary:
                row[CAM_COLUMN] = None
            rows.append(row)
            continue
        prow, gate, low = found[id(p)]
        prob, label = engine.summary(prow)
        shown = gate.ok or score_all
        row = {
            "path": p.path,
            "sop_instance_uid": p.sop_instance_uid,
            "probability_abnormal": round(prob, 6) if shown else "",
            "label": label if shown else "",
            "model": engine.name,
            "model_version": engine.version,
            "status": gate.status,
            "reason": _one_line(gate.caution if gate.ok else gate.reason),
            "content_key": p.key,
            "file_size": p.file_size,
            "mtime_ns": p.mtime_ns,
            "precision": precision_of(engine),
        }
        if multi:
            # a refused image (without --score-all) carries no probability in any column
            pos = engine.positive(prow)
            for i, f in enumerate(engine.findings):
                row[f.column] = round(float(prow[i]), 6) if shown else ""
            row[FINDINGS_COLUMN] = ";".join(f.name for i, f in enumerate(engine.findings) if pos[i]) if shown else ""
        if cam_summary:
            row[CAM_COLUMN] = (
                summarize_cam(low, p.mapping) if shown and low is not None else None
            )
        if keep_maps and shown and low is not None:
            row["_map"], row["_mapping"] = low, p.mapping
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- resume


def is_done(row: Mapping[str, Any] | None, size: int, mtime_ns: int, engine: Any) -> bool:
    """Whether ``row`` already scores the file with this (size, mtime_ns) under ``engine``'s
    model. Error rows are never done: a rerun retries them (a share that was offline)."""
    if not row or row.get("status") == ERROR or size < 0:
        return False
    try:
        same_file = int(row.get("file_size")) == size and int(row.get("mtime_ns")) == mtime_ns
    except (TypeError, ValueError):
        return False
    return same_file and same_model(row, engine) and bool(row.get("content_key"))


def same_model(row: Mapping[str, Any], engine: Any) -> bool:
    """Whether ``row`` was scored by ``engine``'s model, version and precision."""
    return (
        str(row.get("model")) == str(engine.name)
        and str(row.get("model_version")) == str(engine.version)
        and str(row.get("precision") or "fp32") == precision_of(engine)
    )


def reuse_row(done: Mapping[str, Any], p: Prepared) -> dict[str, Any]:
    """The row of ``p`` from a done row with the same content key (same pixels, same model:
    the same result), without inference."""
    row = dict(done)
    row.update(path=p.path, sop_instance_uid=p.sop_instance_uid,
               file_size=p.file_size, mtime_ns=p.mtime_ns)
    return row


def final_rows(rows: Iterable[Mapping[str, Any]], keep: set[str] | None) -> list[dict[str, Any]]:
    """Exactly one row per image: the last row written for each path wins (a rescored file
    replaces its old row), paths outside ``keep`` (files gone from the archive) are
    dropped, sorted by path so reruns and engines give the same file."""
    last: dict[str, dict[str, Any]] = {}
    for r in rows:
        p = str(r.get("path", ""))
        if p and (keep is None or p in keep):
            last[p] = dict(r)
    return [last[p] for p in sorted(last)]


# --------------------------------------------------------------------------- sinks


class ResultsSink:
    """Where rows go as they come. Subclasses: :class:`CsvSink`, :class:`ParquetSink`,
    :class:`JsonSink`. Use :func:`open_sink`."""

    def __init__(self, out: str | os.PathLike, cam_summary: bool = False, extra: Sequence[str] = ()) -> None:
        self.out = Path(out)
        self.cam_summary = cam_summary
        self.extra = list(extra)
        self.columns = ALL_COLUMNS + self.extra + ([CAM_COLUMN] if cam_summary else [])
        self._rows: list[dict[str, Any]] = self._read_existing()

    # subclasses
    def _read_existing(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def append(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Write ``rows`` durably before returning (a kill after this keeps them)."""
        raise NotImplementedError

    def _write_final(self, rows: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release open files (the rows written so far stay)."""

    # shared
    def own_paths(self) -> list[Path]:
        """The files and folders this sink writes (its output, parts, journal)."""
        return [self.out]

    def owns(self, path: str | os.PathLike) -> bool:
        """Whether ``path`` is one of this sink's own files: an ``--out`` inside the scanned
        folder must not come back as an unreadable "image" on the next run."""
        p = os.path.abspath(path)
        for own in self.own_paths():
            o = os.path.abspath(own)
            if p == o or p.startswith(o + os.sep):
                return True
        return False

    def done_rows(self) -> dict[str, dict[str, Any]]:
        """Rows already written before this run, by path (the last one wins)."""
        return {str(r["path"]): r for r in self._rows if r.get("path")}

    def done_keys(self) -> dict[str, dict[str, Any]]:
        """Scored rows already written, by content key (for files whose stat changed)."""
        return {str(r["content_key"]): r for r in self._rows
                if r.get("content_key") and r.get("status") != ERROR}

    def finalize(self, keep: set[str] | None = None) -> list[dict[str, Any]]:
        """Rewrite the output atomically with exactly one row per image; returns the rows."""
        self.close()
        rows = final_rows(self._read_existing(), keep)
        self._write_final(rows)
        return rows

    def _clean(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return {c: row.get(c, "") for c in self.columns}


def _csv_text(rows: Iterable[Mapping[str, Any]], columns: list[str], header: bool) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    if header:
        w.writeheader()
    w.writerows({c: ("" if r.get(c) is None else r.get(c)) for c in columns} for r in rows)
    return buf.getvalue()


def read_csv_rows(path: Path) -> list[dict[str, Any]]:
    """Complete rows of a results CSV; a torn last line (a kill mid-write) is dropped."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    end = text.rfind("\n")
    text = text[: end + 1] if end >= 0 else ""
    reader = csv.reader(io.StringIO(text))
    head = next(reader, None)
    if not head or "path" not in head:
        return []
    return [dict(zip(head, rec, strict=True)) for rec in reader if len(rec) == len(head)]


class CsvSink(ResultsSink):
    """CSV: rows appended to ``out`` itself (header first), flushed and fsync'ed per batch,
    so ``out`` can be watched while it grows. On resume the complete rows are rewritten
    atomically first (dropping a torn last line and upgrading an old header)."""

    def __init__(self, out: str | os.PathLike, cam_summary: bool = False, extra: Sequence[str] = ()) -> None:
        super().__init__(out, cam_summary, extra)
        self.columns = ALL_COLUMNS + self.extra  # CSV never carries CAM summaries (parquet does)
        atomic.write_text(self.out, _csv_text(self._rows, self.columns, header=True))
        self._fh = open(self.out, "a", encoding="utf-8", newline="")  # noqa: SIM115 - kept open

    def _read_existing(self) -> list[dict[str, Any]]:
        return read_csv_rows(self.out)

    def append(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        self._fh.write(_csv_text(rows, self.columns, header=False))
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()

    def _write_final(self, rows: list[dict[str, Any]]) -> None:
        atomic.write_text(self.out, _csv_text(rows, self.columns, header=True))


class JsonSink(CsvSink):
    """JSON is written once at the end (:func:`json_document`); while running, rows go to a
    CSV journal beside it (``<out>.partial.csv``) so a killed JSON run resumes too."""

    def __init__(
        self, out: str | os.PathLike, cam_summary: bool = False, model: str = "", model_version: str = "",
        extra: Sequence[str] = (),
    ) -> None:
        self.json_out = Path(out)
        self.model, self.model_version = model, model_version
        super().__init__(self.json_out.with_name(self.json_out.name + ".partial.csv"), cam_summary, extra)

    def own_paths(self) -> list[Path]:
        return [self.out, self.json_out]

    def _write_final(self, rows: list[dict[str, Any]]) -> None:
        atomic.write_text(self.json_out, json_document(self.model, self.model_version, rows, self.extra))
        self.out.unlink(missing_ok=True)  # only once the JSON is safely in place


def _pq():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        from cxrviewer.core.errors import CxrError

        raise CxrError(None, f"parquet output needs pyarrow: {PARQUET_HINT}") from None
    return pa, pq


#: rows per sorted run (phase 1 of :func:`merge_parquet`) and per row group of the output:
#: ~1 kB a row with a CAM summary as Arrow data, so a run is ~16 MB whatever the archive
MERGE_RUN_ROWS = 16384
#: rows per batch read back from each run while merging them (phase 2)
MERGE_READ_ROWS = 1024
#: rows per row group of a merged output (phase 2 holds one group as Python rows)
MERGE_GROUP_ROWS = 4096


def _part_order(path: Path) -> tuple[int, int, str]:
    """Parts in the order they were written: ``part-PID-TIMENS-SEQ``; by name, a resumed run
    with a smaller pid (or one with fewer digits) would sort before the run it resumed."""
    bits = path.stem.split("-")
    try:
        return int(bits[2]), int(bits[3]), path.name
    except (IndexError, ValueError):
        return 0, 0, path.name


class ParquetRows:
    """The rows of a finished Parquet output, read back a batch at a time (``len`` from its
    metadata): what :meth:`ParquetSink.finalize` returns instead of a list of every row."""

    def __init__(self, path: Path) -> None:
        self.path = path
        _pa, pq = _pq()
        self._pq = pq
        self._n = pq.ParquetFile(path).metadata.num_rows

    def __len__(self) -> int:
        return self._n

    def __iter__(self):
        for batch in self._pq.ParquetFile(self.path).iter_batches(batch_size=MERGE_READ_ROWS):
            for r in batch.to_pylist():
                if r.get("probability_abnormal") is None:
                    r["probability_abnormal"] = ""
                yield r


def _conform(t: Any, schema: Any) -> Any:
    """``t`` with exactly ``schema``'s columns: an earlier output without CAM summaries (or
    with them, when this run has none) still merges, as the row-by-row merge allowed."""
    pa, _pq_ = _pq()
    cols = []
    for f in schema:
        if f.name in t.column_names:
            cols.append(t.column(f.name).cast(f.type))
        elif pa.types.is_string(f.type):
            cols.append(pa.array([""] * t.num_rows, f.type))
        else:
            cols.append(pa.nulls(t.num_rows, f.type))
    return pa.Table.from_arrays(cols, schema=schema)


def merge_parquet(files: Sequence[Path], out: Path, schema: Any, keep: set[str] | None,
                  run_rows: int = MERGE_RUN_ROWS) -> int:
    """:func:`final_rows` of ``files`` (in write order) into ``out``, atomically, in bounded memory.

    An external merge sort, each file read once: phase 1 tags every row (of a path in
    ``keep``) with its position in write order and cuts them into runs of ``run_rows`` rows
    sorted by (path, position); phase 2 merges the runs (``MERGE_READ_ROWS`` rows of each at
    a time) and writes the last row of each path, ``MERGE_GROUP_ROWS`` rows a row group. One
    run is written straight to ``out``. Memory: one run, whatever the number of rows. An
    unreadable file is skipped, as the resume rule does. Returns the number of rows written.

    Measured here, why it is built this way: a part's table is tiny but costs ~50 kB of C++
    objects outside Arrow's pool, so parts are never held, only spilled; spills and runs are
    Arrow IPC files (writing a run as Parquet in one row group grew the process by ~25 MB
    per 10k rows, IPC by nothing); parts are read with ``ParquetFile.read`` (the
    ``read_table`` helper's dataset machinery costs ~50 MB on first use).
    """
    import heapq
    import tempfile

    pa, pq = _pq()
    import pyarrow.compute as pc

    seq_field = pa.field("_seq", pa.int64())
    tagged_schema = schema.append(seq_field)
    keys = [("path", "ascending"), ("_seq", "ascending")]

    def tagged():
        seq = 0
        for f in files:
            try:
                t = _conform(pq.ParquetFile(f).read(use_threads=False), schema)
            except Exception:  # noqa: BLE001 - an unreadable part is redone, not fatal
                continue
            t = t.append_column(seq_field, pa.array(range(seq, seq + t.num_rows), pa.int64()))
            seq += t.num_rows
            # the set lookup in Python: pc.is_in would hash all of keep again for every part
            ok = [bool(p) and (keep is None or p in keep) for p in t.column("path").to_pylist()]
            t = t.filter(pa.array(ok, pa.bool_()))
            if t.num_rows:
                yield t

    def last_of_each_path(t: Any) -> Any:
        """Rows sorted by (path, position) -> the last of each path, without ``_seq``."""
        paths = t.column("path")
        if t.num_rows > 1:
            differs = pc.not_equal(paths.slice(0, t.num_rows - 1), paths.slice(1))
            t = t.filter(pa.concat_arrays([differs.combine_chunks(), pa.array([True])]))
        return t.drop_columns(["_seq"])

    with tempfile.TemporaryDirectory(prefix="cxrviewer-merge-", dir=out.parent) as tmp:
        runs: list[Path] = []
        pending: list = []
        state: dict[str, Any] = {"n": 0, "pending_n": 0, "writer": None, "spill": None}

        def spill(final: bool = False) -> None:
            if pending:
                if state["writer"] is None:
                    state["spill"] = Path(tmp) / f"spill{len(runs):05d}.arrow"
                    state["writer"] = pa.ipc.new_file(str(state["spill"]), tagged_schema)
                state["writer"].write_table(pa.concat_tables(pending))
                pending.clear()
                state["pending_n"] = 0
            if (final or state["n"] >= run_rows) and state["writer"] is not None:
                state["writer"].close()
                runs.append(Path(tmp) / f"run{len(runs):05d}.arrow")
                with pa.OSFile(str(state["spill"])) as src:
                    t = pa.ipc.open_file(src).read_all()
                    t = t.take(pc.sort_indices(t, sort_keys=keys))
                with pa.ipc.new_file(str(runs[-1]), tagged_schema) as w:
                    w.write_table(t, max_chunksize=MERGE_READ_ROWS)
                state["spill"].unlink()
                state.update(writer=None, spill=None, n=0)

        for t in tagged():
            pending.append(t)
            state["n"] += t.num_rows
            state["pending_n"] += t.num_rows
            if state["pending_n"] >= MERGE_READ_ROWS or state["n"] >= run_rows:
                spill()
        spill(final=True)
        if len(runs) <= 1:  # everything fit one run: it is sorted already
            if runs:
                with pa.OSFile(str(runs[0])) as src:
                    table = last_of_each_path(pa.ipc.open_file(src).read_all())
                    atomic.write_with(out, lambda p: pq.write_table(table, p, row_group_size=MERGE_GROUP_ROWS))
                return table.num_rows
            atomic.write_with(out, lambda p: pq.write_table(schema.empty_table(), p))
            return 0
        written = [0]

        def cursor(run: Path):
            """(path, position, batch, row) of a run's rows in order; the rows stay Arrow data."""
            # read, not memory-mapped: a mapped run's pages would stay in this process's RSS
            with pa.OSFile(str(run)) as src:
                r = pa.ipc.open_file(src)
                for i in range(r.num_record_batches):
                    batch = r.get_batch(i)
                    paths, seqs = batch.column("path").to_pylist(), batch.column("_seq").to_pylist()
                    for j in range(batch.num_rows):
                        yield paths[j], seqs[j], batch, j

        def emit(w: Any, picks: list) -> None:
            """Write the picked rows (consecutive rows of one batch as one slice) as a row group."""
            slices: list[list] = []
            for batch, j in picks:
                last = slices[-1] if slices else None
                if last is not None and last[0] is batch and last[1] + last[2] == j:
                    last[2] += 1
                else:
                    slices.append([batch, j, 1])
            t = pa.Table.from_batches([b.slice(j, n) for b, j, n in slices], schema=tagged_schema)
            w.write_table(t.drop_columns(["_seq"]).combine_chunks())
            written[0] += len(picks)

        def write(p: Path) -> None:
            with pq.ParquetWriter(p, schema) as w:
                picks: list = []
                prev: tuple | None = None
                for r in heapq.merge(*(cursor(run) for run in runs), key=lambda r: (r[0], r[1])):
                    if prev is not None and prev[0] != r[0]:
                        picks.append((prev[2], prev[3]))  # the last row of its path (the latest written)
                        if len(picks) >= MERGE_GROUP_ROWS:
                            emit(w, picks)
                            picks = []
                    prev = r
                if prev is not None:
                    picks.append((prev[2], prev[3]))
                if picks:
                    emit(w, picks)

        atomic.write_with(out, write)
    return written[0]


def merge_parquet_in_memory(files: Sequence[Path], out: Path, sink: ParquetSink, keep: set[str] | None) -> int:
    """The merge as it was before :func:`merge_parquet`: every row as a Python dict, then one
    table (kept for ``bench archive``'s peak-RSS comparison only)."""
    _pa, pq = _pq()
    rows: list[dict[str, Any]] = []
    for f in files:
        rows += pq.read_table(f).to_pylist()
    final = final_rows(rows, keep)
    table = sink._table(final)
    atomic.write_with(out, lambda p: pq.write_table(table, p))
    return len(final)


class ParquetSink(ResultsSink):
    """Parquet: each batch becomes one small file in ``<out>.parts/`` (written to a temp
    name, fsync'ed, renamed: a kill leaves whole parts only); :meth:`finalize` merges the
    parts and any earlier ``out`` into ``out`` atomically (streamed, :func:`merge_parquet`),
    then removes the folder."""

    def __init__(self, out: str | os.PathLike, cam_summary: bool = False, extra: Sequence[str] = ()) -> None:
        self.pa, self.pq = _pq()
        self.parts = Path(str(out) + ".parts")
        super().__init__(out, cam_summary, extra)
        self.parts.mkdir(parents=True, exist_ok=True)
        for tmp in self.parts.glob("*.tmp"):  # a part a kill interrupted: never renamed
            tmp.unlink(missing_ok=True)
        self._seq = len(list(self.parts.glob("part-*.parquet")))

    @classmethod
    def schema_only(cls, cam_summary: bool = False, extra: Sequence[str] = ()) -> ParquetSink:
        """A sink with no file behind it: only its schema and table builder (the merge
        benchmark writes and merges parts with them, reading nothing)."""
        sink = cls.__new__(cls)
        sink.pa, sink.pq = _pq()
        sink.cam_summary, sink.extra = cam_summary, list(extra)
        sink.columns = ALL_COLUMNS + sink.extra + ([CAM_COLUMN] if cam_summary else [])
        return sink

    def _schema(self):
        pa = self.pa
        fields = [pa.field(c, pa.string()) for c in ALL_COLUMNS]
        fields[ALL_COLUMNS.index("probability_abnormal")] = pa.field("probability_abnormal", pa.float64())
        fields[ALL_COLUMNS.index("file_size")] = pa.field("file_size", pa.int64())
        fields[ALL_COLUMNS.index("mtime_ns")] = pa.field("mtime_ns", pa.int64())
        for c in self.extra:  # p_* are numbers (null when not shown), findings a string
            fields.append(pa.field(c, pa.string() if c == FINDINGS_COLUMN else pa.float64()))
        if self.cam_summary:
            fields.append(pa.field(CAM_COLUMN, pa.list_(pa.float32())))
        return pa.schema(fields)

    def _table(self, rows: Sequence[Mapping[str, Any]]):
        schema = self._schema()
        cols: dict[str, list] = {}
        for f in schema:
            vals = [r.get(f.name) for r in rows]
            if f.name == "probability_abnormal" or (f.name in self.extra and f.name != FINDINGS_COLUMN):
                vals = [None if v in ("", None) else float(v) for v in vals]
            elif f.name in ("file_size", "mtime_ns"):
                vals = [None if v in ("", None) else int(v) for v in vals]
            elif f.name != CAM_COLUMN:
                vals = ["" if v is None else str(v) for v in vals]
            cols[f.name] = vals
        return self.pa.table(cols, schema=schema)

    def own_paths(self) -> list[Path]:
        return [self.out, self.parts]

    def files(self) -> list[Path]:
        """The earlier output and the parts, in the order they were written."""
        files = [self.out] if self.out.exists() else []
        return files + sorted(Path(str(self.out) + ".parts").glob("part-*.parquet"), key=_part_order)

    def _read_existing(self) -> list[dict[str, Any]]:
        files = self.files()
        rows: list[dict[str, Any]] = []
        for f in files:
            try:
                recs = self.pq.read_table(f).to_pylist()
            except Exception:  # noqa: BLE001 - an unreadable part is redone, not fatal
                continue
            for r in recs:
                for c in ["probability_abnormal", *self.extra]:
                    if c in r and r[c] is None:
                        r[c] = ""
                rows.append(r)
        return rows

    def append(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        self._seq += 1
        name = self.parts / f"part-{os.getpid()}-{time.time_ns()}-{self._seq:06d}.parquet"
        tmp = name.with_suffix(".tmp")
        self.pq.write_table(self._table(rows), tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, name)

    def finalize(self, keep: set[str] | None = None) -> ParquetRows:  # type: ignore[override]
        """Merge into ``out`` without holding the rows (:func:`merge_parquet`); returns them
        as a :class:`ParquetRows` read back from ``out`` on iteration."""
        self.close()
        self._rows = []  # the resume state is spent: let it go before the merge
        merge_parquet(self.files(), self.out, self._schema(), keep)
        shutil.rmtree(self.parts, ignore_errors=True)
        return ParquetRows(self.out)

    def _write_final(self, rows: list[dict[str, Any]]) -> None:
        table = self._table(rows)
        atomic.write_with(self.out, lambda p: self.pq.write_table(table, p))
        shutil.rmtree(self.parts, ignore_errors=True)


def open_sink(
    out: str | os.PathLike, cam_summary: bool = False, *, model: str = "", model_version: str = "",
    extra: Sequence[str] = (),
) -> ResultsSink:
    """The sink for ``out`` by its extension: ``.csv`` (default), ``.parquet``, ``.json``.

    ``model``/``model_version`` head the JSON document; ``extra``: columns after
    :data:`ALL_COLUMNS` (a multi-finding model's :func:`finding_columns`).

    Raises
    ------
    CxrError
        Parquet without pyarrow installed (the message names the extra), or an output that
        cannot be written.
    """
    suffix = Path(out).suffix.lower()
    if suffix in (".parquet", ".pq"):
        return ParquetSink(out, cam_summary, extra)
    if suffix == ".json":
        return JsonSink(out, cam_summary, model, model_version, extra)
    return CsvSink(out, cam_summary, extra)


def json_document(model: str, model_version: str, rows: Sequence[Mapping[str, Any]],
                  extra: Sequence[str] = ()) -> str:
    """``{"model", "model_version", "results": [scored rows], "errors": [{path, reason}]}``
    (the JSON ``cxrviewer infer`` has always written; probabilities as numbers; a
    multi-finding model's ``extra`` columns, :func:`finding_columns`, after the others)."""
    results, errors = [], []
    for r in rows:
        if r.get("status") == ERROR:
            errors.append({"path": r["path"], "reason": r.get("reason", "")})
            continue
        d = {c: r.get(c, "") for c in [*ALL_COLUMNS, *extra]}
        for c in ["probability_abnormal", *(c for c in extra if c != FINDINGS_COLUMN)]:
            p = d[c]
            d[c] = "" if p in ("", None) else float(p)
        for c in ("file_size", "mtime_ns"):
            d[c] = int(d[c]) if str(d[c]).lstrip("-").isdigit() else d[c]
        results.append(d)
    doc = {"model": model, "model_version": model_version, "results": results, "errors": errors}
    return json.dumps(doc, indent=2) + "\n"


__all__ = [
    "ALL_COLUMNS", "CAM_COLUMN", "CAM_SUMMARY", "COLUMNS", "ERROR", "EXTRA_COLUMNS",
    "CsvSink", "JsonSink", "ParquetRows", "ParquetSink", "Prepared", "ResultsSink", "error_row",
    "file_stat", "final_rows", "is_done", "json_document", "merge_parquet", "open_sink", "precision_of", "prepare",
    "prepare_block", "read_csv_rows", "reuse_row", "same_model", "score", "summarize_cam", "warm_up",
]
