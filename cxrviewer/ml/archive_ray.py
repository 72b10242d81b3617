"""The Ray engine of ``cxrviewer infer --engine ray``: the archive stages as a Ray Data pipeline.

The same three stages as the local engine (:mod:`cxrviewer.ml.archive`), placed by Ray:

1. the resume plan on the driver, before anything is submitted: a file whose
   (path, size, mtime_ns, model, version, precision) matches a done row of the sink is
   skipped after one ``stat``
   (exactly :func:`cxrviewer.ml.archive_local.run_archive`'s rule);
2. :func:`cxrviewer.ml.archive.prepare` in Ray *tasks* (``map_batches``, one CPU each):
   decode, header rules, content key, uint8 model input;
3. :func:`cxrviewer.ml.archive.score` in ONNX Runtime *actors* (an actor pool: one per GPU,
   else ``actors_per_node`` per node), each loading the model from its path (a file share:
   every node sees the same model folder) through :meth:`Engine.load`, which verifies the
   weights' and the graph's sha256 as everywhere else, and then checks it holds the very
   weights the driver loaded;
4. the rows come back to the driver as blocks finish and go to the *same* sink
   (:class:`cxrviewer.ml.archive.ResultsSink`; one append per 0.5 s at most), so ``--out``, resume and the final
   one-row-per-image rewrite are the local engine's.

Ray is the ``cluster`` extra and only this module imports it (the Ray bench goes through it;
an import-linter contract holds it); the CLI imports this module only for ``--engine ray``. ``address=None`` starts a private local Ray
in this process (small object store, the given CPUs, no dashboard, loopback only);
``"auto"`` or ``"ray://host:10001"`` joins a running cluster, whose nodes need
``cxrviewer[cluster]`` installed at the same version and the model folder and the archive at
the same paths.

A block whose task dies (a decoder that crashes its process) is retried once by Ray; if it
dies again the block is skipped and its files are sent once more one file per block, so only
the file that kills its worker becomes a ``status=error`` row (the local engine's rule). Any
other exception in a task stops the run with its message (:class:`_DroppedBlocks`).

A decoder that hangs: each file is decoded under ``decode_timeout`` (``infer
--decode-timeout``), a watchdog that ends the task's process past the deadline and leaves a
node-local marker; Ray replaces the process and retries the block, whose retry makes the
marked file a ``status=error`` row saying it timed out (one deadline per hung file). On a
cluster a retry that lands on another node cannot see the marker: the file then hangs there
too, and after the second death it is the crash rule's error row (still bounded, never a stall).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import pickle
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from cxrviewer.core.errors import CxrError
from cxrviewer.ml.archive import (
    ERROR,
    Prepared,
    ResultsSink,
    prepare,
    reuse_row,
    score,
)
from cxrviewer.ml.archive_local import RunBook, RunStats

#: the object store of a private local Ray (MB): blocks of uint8 inputs are small (a batch
#: of 8 at 224 px is 0.4 MB), and Ray's default (30 % of RAM) would reserve GBs of /dev/shm
LOCAL_OBJECT_STORE_MB = 256
#: memory reserved per inference actor (MB): ONNX Runtime's session and arena for a batch
#: of a ResNet-50. A scheduling hint on a cluster (no node gets more actors than it can
#: hold), and it makes the actor's Ray options differ from the decode tasks', which keeps
#: Ray Data from fusing decoding into the actor (it would then decode and infer serially).
ACTOR_MEMORY_MB = 1024
#: files per decode block, in batches: enough work per task to pay for Ray's per-task
#: overhead (~ms) while leaving several blocks per CPU for balance
BATCHES_PER_BLOCK = 4
#: the driver appends rows to the sink at most this often, or when this many are waiting
SINK_INTERVAL_S = 0.5
SINK_MAX_ROWS = 4096
#: a row from an actor that says "same pixels as a done row: reuse it" (built on the driver,
#: which holds the done rows; actors only get the set of their keys)
_REUSE = "_reuse"

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- session


#: Ray's own switch (read when ray is imported) that makes a Ray started here take
#: 127.0.0.1 as its node address, so all its servers listen on loopback only. Without it a
#: local Ray binds every interface (only its token authentication in front).
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def _import_ray(local: bool) -> Any:
    """``ray`` (with ``ray.data``); for a private local Ray, imported loopback-only."""
    if local and "ray" not in sys.modules:
        os.environ[LOOPBACK_ENV] = "0"  # inherited by the raylet and its workers
    import ray
    import ray.data  # noqa: F401 - the attribute used below

    return ray


@contextlib.contextmanager
def session(
    address: str | None = None, *, num_cpus: int | None = None, object_store_mb: int | None = None
) -> Iterator[Any]:
    """Ray for the duration of the block (yields the ``ray`` module): joined at ``address``,
    or a private local one.

    A Ray already initialised in this process (a test module's, a caller's) is used as it
    is and left running.

    Parameters
    ----------
    address
        ``None``: start a local Ray in this process with ``num_cpus`` CPUs and a
        ``object_store_mb`` object store, listening on loopback only (when this is the
        process's first import of ray); ``"auto"``, ``"HOST:PORT"`` or ``"ray://…"``: join.

    Raises
    ------
    CxrError
        Ray cannot be started, or the cluster cannot be joined.
    """
    ray = _import_ray(local=address is None)
    if ray.is_initialized():
        yield ray
        return
    opts: dict[str, Any] = dict(
        include_dashboard=False,
        # worker output stays in Ray's session logs: stderr is the progress line's
        log_to_driver=False,
        logging_level=logging.ERROR,
    )
    if address is None:
        # "local" always starts a new instance (a bare init() would join a cluster named by
        # RAY_ADDRESS, or one already running on this machine)
        opts.update(
            address="local",
            num_cpus=num_cpus,
            object_store_memory=int((object_store_mb or LOCAL_OBJECT_STORE_MB) * 2**20),
        )
    else:
        opts["address"] = address
    try:
        ray.init(**opts)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise CxrError(None, f"cannot start or join Ray at {address or 'local'}: {e}") from e
    try:
        yield ray
    finally:
        ray.shutdown()


def _quiet_data_context(ray: Any) -> Any:
    """Ray Data's context with its progress bars and per-run INFO lines off (stderr carries
    our own progress line)."""
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    # a retry wave whose every file crashes leaves the actors without input: not a problem
    warnings.filterwarnings("ignore", message="The minimum number of concurrent actors",
                            category=UserWarning)
    # a dropped block's traceback (a crashed decoder): our own line and the error row say it
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)
    return ctx


# --------------------------------------------------------------------------- stages


def _marker(deadline_dir: str, path: str) -> str:
    import hashlib

    return os.path.join(deadline_dir, hashlib.sha1(path.encode("utf-8", "surrogatepass")).hexdigest() + ".timeout")


def _prepare_with_deadline(path: str, spec: Any, card: dict, timeout: float | None,
                           deadline_dir: str | None) -> Prepared:
    """:func:`prepare` under a per-file deadline that needs neither the GIL nor the driver.

    ``faulthandler.dump_traceback_later(exit=True)`` arms a C watchdog thread: past the
    deadline it writes "Timeout (…)!" and the stacks into this file's marker and ends the
    process (a hung decoder may hold the GIL, so a Python watchdog might never run). Ray then
    replaces the process and retries the block; the retry finds the non-empty marker (same
    node) and makes the file an error row instead of decoding it again. A marker stays empty
    when the process dies otherwise (a crash): that is the crash rule's business.
    """
    from cxrviewer.ml.archive_local import _maybe_crash, _maybe_hang, timeout_reason

    if not timeout or not deadline_dir:
        _maybe_crash(path)
        _maybe_hang(path)
        return prepare(path, spec, card)
    import faulthandler

    from cxrviewer.ml.archive import file_stat

    marker = _marker(deadline_dir, path)
    try:
        timed_out = os.path.getsize(marker) > 0
    except OSError:
        timed_out = False
    if timed_out:
        size, mtime = file_stat(path)
        return Prepared(path, status=ERROR, reason=timeout_reason(timeout), file_size=size, mtime_ns=mtime)
    os.makedirs(deadline_dir, exist_ok=True)
    with open(marker, "w", encoding="utf-8") as fh:
        faulthandler.dump_traceback_later(timeout, exit=True, file=fh)
        try:
            # the local engine's test hooks (CXRVIEWER_TEST_WORKER_EXIT / _HANG): this process
            # exits or blocks on a named file, as a crashing or hanging decoder would
            _maybe_crash(path)
            _maybe_hang(path)
            return prepare(path, spec, card)
        finally:
            faulthandler.cancel_dump_traceback_later()
            fh.close()
            os.unlink(marker)


def prepare_batch(batch: dict[str, np.ndarray], spec: Any, card: dict, decode_timeout: float | None = None,
                  deadline_dir: str | None = None) -> dict[str, np.ndarray]:
    """Ray task: :func:`cxrviewer.ml.archive.prepare` for each ``path`` of the batch, each
    under ``decode_timeout`` seconds (see :func:`_prepare_with_deadline`; ``deadline_dir``: a
    folder for this run's markers, created on each node).

    Returns the :class:`Prepared` items pickled (a binary column: Ray Data moves bytes
    without looking into them).
    """
    try:
        import cv2

        # one task per CPU already: OpenCV's own threads would oversubscribe the node
        cv2.setNumThreads(1)
    except ImportError:
        pass
    if decode_timeout:
        from cxrviewer.ml.archive import warm_up

        warm_up()  # a fresh task process: imports are not the first file's decode time
    out = []
    for p in batch["path"]:
        pr = _prepare_with_deadline(str(p), spec, card, decode_timeout, deadline_dir)
        out.append(pickle.dumps(pr, protocol=5))
    # the decoding process, so a test can see decoding never ran inside an actor
    return {"prepared": np.array(out, dtype=object), "pid": np.full(len(out), os.getpid())}


class Scorer:
    """Ray actor: one loaded model, :func:`cxrviewer.ml.archive.score` per batch.

    Parameters
    ----------
    model_dir, backend, device
        As :meth:`cxrviewer.ml.inference.Engine.load` (checksums verified there).
    weights_sha256
        The driver's model: an actor that loaded other weights (a different file at the
        same path on its node) refuses to score.
    load_kwargs
        Further :meth:`Engine.load` arguments the driver's engine was loaded with (its
        ``precision``, where the engine has one).
    reuse_keys
        Content keys of done rows: such items come back as reuse markers, not scored.
    """

    def __init__(
        self,
        model_dir: str,
        backend: str,
        device: str,
        weights_sha256: str,
        options: dict[str, bool],
        reuse_keys: frozenset[str],
        load_kwargs: dict[str, Any] | None = None,
    ) -> None:
        from cxrviewer.ml.inference import Engine

        # RuntimeError, not CxrError: the message must survive the trip to the driver, and
        # Ray rebuilds an exception by calling its class with its args (CxrError's differ)
        try:
            self.engine = Engine.load(model_dir, backend=backend, device=device,
                                      **(load_kwargs or {}))
        except CxrError as e:
            raise RuntimeError(str(e)) from None
        got = str(self.engine.card.get("weights_sha256", ""))
        if got != weights_sha256:
            raise RuntimeError(
                f"{model_dir}: this node's model has weights sha256 {got[:12]}…, the driver's "
                f"{weights_sha256[:12]}…: every node must see the same model folder"
            )
        self.options = options
        self.reuse_keys = reuse_keys

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        items: list[Prepared] = [pickle.loads(b) for b in batch["prepared"]]
        where = {id(p): {"_prepare_pid": int(pid), "_score_pid": os.getpid()}
                 for p, pid in zip(items, batch["pid"], strict=True)}
        rows: list[dict[str, Any]] = []
        todo: list[Prepared] = []
        for p in items:
            if p.ok and p.key in self.reuse_keys:
                rows.append({_REUSE: True, **_stage_costs(p), **where[id(p)], "path": p.path,
                             "sop_instance_uid": p.sop_instance_uid, "content_key": p.key,
                             "file_size": p.file_size, "mtime_ns": p.mtime_ns})
            else:
                todo.append(p)
        if todo:
            t0 = time.perf_counter()
            scored = score(self.engine, todo, **self.options)
            ms = (time.perf_counter() - t0) * 1e3 / len(todo)
            for p, r in zip(todo, scored, strict=True):
                r.update(_stage_costs(p), **where[id(p)], _inference_ms=ms)
                rows.append(r)
        return {"row": np.array([pickle.dumps(r, protocol=5) for r in rows], dtype=object)}


def _stage_costs(p: Prepared) -> dict[str, float]:
    return {"_decode_ms": p.decode_ms, "_key_ms": p.key_ms, "_preprocess_ms": p.preprocess_ms}


# --------------------------------------------------------------------------- the run


#: where Ray Data logs a block it dropped (``max_errored_blocks``), with the exception
_DROPPED_BLOCK_LOGGER = "ray.data._internal.execution.streaming_executor_state"


class _DroppedBlocks(logging.Handler):
    """Collects the exceptions of the blocks Ray Data dropped, instead of printing them.

    Only a dead process (a decoder that crashed, the OOM killer) may cost a block its rows
    and be redone file by file; any other exception is a bug or a broken node, and
    :meth:`check` raises it rather than calling its files unreadable.
    """

    def __init__(self, ray: Any) -> None:
        super().__init__(logging.ERROR)
        self.died = (ray.exceptions.WorkerCrashedError, ray.exceptions.OutOfMemoryError)
        self.errors: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.errors.append(record.exc_info[1])

    def check(self) -> None:
        for e in self.errors:
            if not isinstance(e, self.died):
                raise CxrError(None, f"a Ray task failed: {_root_message(e)}") from e

    @contextlib.contextmanager
    def installed(self) -> Iterator[_DroppedBlocks]:
        lg = logging.getLogger(_DROPPED_BLOCK_LOGGER)
        old = (lg.level, lg.propagate)
        lg.setLevel(logging.ERROR)
        lg.propagate = False  # its traceback is ours to report, once
        lg.addHandler(self)
        try:
            yield self
        finally:
            lg.removeHandler(self)
            lg.setLevel(old[0])
            lg.propagate = old[1]


def _root_message(e: BaseException) -> str:
    """``Type: message`` of the error a Ray task or actor raised, in one line.

    Ray hands the driver wrappers (``RayTaskError``, ``ActorDiedError``, Ray Data's
    ``SystemException``) whose text carries the remote traceback; the raised error is its
    last ``SomeError: message`` line.
    """
    chain: list[BaseException] = []
    x: BaseException | None = e
    while x is not None and x not in chain:
        chain.append(x)
        x = getattr(x, "cause", None) or x.__cause__
    found = ""
    for x in chain:
        for line in _ANSI.sub("", str(x)).splitlines():
            m = _RAISED.match(line.strip())
            if m and not m.group(1).startswith("ray."):
                found = f"{m.group(1).rsplit('.', 1)[-1]}: {m.group(2)}"
    if found:
        return found
    first = next((x for x in reversed(chain) if str(x).strip()), e)  # the innermost
    return f"{type(first).__name__}: {(_ANSI.sub('', str(first)).strip().splitlines() or [''])[0]}"


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_RAISED = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception)): (.+)$")


def _actor_plan(ray: Any, actors_per_node: int | None, use_gpu: bool) -> tuple[int, dict[str, Any]]:
    """How many inference actors and each one's Ray resources, from what the cluster has."""
    res = ray.cluster_resources()
    gpus = int(res.get("GPU", 0)) if use_gpu else 0
    if gpus:
        return gpus, {"num_gpus": 1, "num_cpus": 1}
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    cpus = int(res.get("CPU", 1))
    n = max(1, nodes) * max(1, actors_per_node or 1)
    # leave at least one CPU to the decode tasks, or the pipeline stalls on its first stage
    n = max(1, min(n, cpus - 1)) if cpus > 1 else 1
    return n, {"num_cpus": 1 if cpus > 1 else 0.5, "memory": ACTOR_MEMORY_MB * 2**20}


def _dataset(
    ray: Any,
    paths: Sequence[str],
    *,
    engine: Any,
    device: str,
    batch_size: int,
    block_files: int,
    prepare_batch_size: int | None = None,
    options: dict[str, bool],
    reuse_keys: frozenset[str],
    actors_per_node: int | None,
    decode_timeout: float | None = None,
    deadline_dir: str | None = None,
) -> Any:
    # the driver may be a laptop without a GPU: the actors' device is what was asked for
    use_gpu = device != "cpu"
    n_actors, actor_res = _actor_plan(ray, actors_per_node, use_gpu)
    blocks = max(1, math.ceil(len(paths) / max(1, block_files)))
    ds = ray.data.from_items([{"path": p} for p in paths], override_num_blocks=blocks)
    with warnings.catch_warnings():
        # Ray Data retries a task whose process died forever by default: one file that
        # crashes its decoder would stall the run. Retried once, as the local engine does,
        # then the block is dropped and its files go again alone (run_archive_ray). Ray 2.60
        # takes max_retries only through its deprecated **ray_remote_args (hence the cap
        # below 2.64 in pyproject.toml).
        warnings.simplefilter("ignore", DeprecationWarning)
        ds = ds.map_batches(
            prepare_batch,
            fn_kwargs={"spec": engine.spec, "card": dict(engine.card), "decode_timeout": decode_timeout,
                       "deadline_dir": deadline_dir},
            # Ray Data would bundle small blocks up to a batch: a retry wave needs 1 per task
            batch_size=prepare_batch_size or batch_size,
            batch_format="numpy",
            num_cpus=1,
            max_retries=1,
        )
    return ds.map_batches(
        Scorer,
        fn_constructor_kwargs={
            "model_dir": str(engine.model_dir),
            "backend": engine.backend,
            "device": device,
            "weights_sha256": str(engine.card.get("weights_sha256", "")),
            "options": options,
            "reuse_keys": reuse_keys,
            # int8 or fp32 as the driver chose (an "auto" choice is made once, there)
            "load_kwargs": {"precision": engine.precision} if hasattr(engine, "precision") else {},
        },
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=n_actors),
        **actor_res,
    )


def run_archive_ray(
    engine: Any,
    paths: Sequence[str],
    sink: ResultsSink,
    *,
    batch_size: int = 8,
    score_all: bool = False,
    cam_summary: bool = False,
    keep_maps: bool = False,
    progress: Callable[[int, int, RunStats], None] | None = None,
    on_rows: Callable[[list[dict]], None] | None = None,
    address: str | None = None,
    num_cpus: int | None = None,
    actors_per_node: int | None = None,
    device: str = "auto",
    decode_timeout: float | None = None,
) -> RunStats:
    """Score ``paths`` into ``sink`` on Ray; the counterpart of
    :func:`cxrviewer.ml.archive_local.run_archive` (same arguments, same rows, same stats).

    Parameters
    ----------
    engine
        The driver's loaded model: its folder, backend and weights are what actors load.
    address, num_cpus
        See :func:`session` (``num_cpus``: the local Ray's CPUs; ignored when joining).
    actors_per_node
        Inference actors per node on CPU nodes (default 1: ONNX Runtime already uses the
        node's cores; GPU nodes get one actor per GPU).
    device
        The actors' device (``infer --device``): ``"cpu"`` keeps them off GPUs.
    decode_timeout
        Seconds one file may take to decode in a task (None or <= 0: no deadline); past it
        the task's process ends, Ray replaces it, and the file becomes one error row saying
        it timed out (see :func:`_prepare_with_deadline`).

    Raises
    ------
    CxrError
        Ray cannot be started or joined, or an actor's model differs from the driver's.
    """
    book = RunBook(engine, paths, sink, progress, on_rows)
    st, todo, by_key, emit = book.st, book.todo, book.by_key, book.emit
    options = {"score_all": score_all, "cam_summary": cam_summary, "keep_maps": keep_maps}

    book.report()
    if not todo:
        st.elapsed_s = time.perf_counter() - book.t0
        return st
    seen: set[str] = set()

    def collect(ds: Any) -> None:
        pending: list[dict] = []
        last = time.monotonic()
        for b in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for r in (pickle.loads(x) for x in b["row"]):
                seen.add(r["path"])
                st.decode_ms += r.get("_decode_ms", 0.0)
                st.key_ms += r.get("_key_ms", 0.0)
                st.preprocess_ms += r.get("_preprocess_ms", 0.0)
                if r.get(_REUSE):
                    st.reused += 1
                    p = Prepared(r["path"], sop_instance_uid=r["sop_instance_uid"],
                                 file_size=r["file_size"], mtime_ns=r["mtime_ns"])
                    row = reuse_row(by_key[r["content_key"]], p)
                    # the stage notes ride along ("_" keys never reach the sink)
                    row.update((k, v) for k, v in r.items() if k.startswith("_") and k != _REUSE)
                    pending.append(row)
                    continue
                st.inference_ms += r.get("_inference_ms", 0.0)
                st.scored += r["status"] != ERROR
                st.timeouts += r["status"] == ERROR and "timed out after" in str(r.get("reason", ""))
                pending.append(r)
            # Blocks from many nodes arrive faster than one fsync'ed append each can take
            # (~4 ms here: ~2,000 rows/s at batch 8): group them, at most SINK_INTERVAL_S
            # apart. A kill loses at most those rows' work, never a row already written.
            if len(pending) >= SINK_MAX_ROWS or time.monotonic() - last >= SINK_INTERVAL_S:
                emit(pending)
                pending, last = [], time.monotonic()
        if pending:
            emit(pending)

    import shutil
    import tempfile
    import uuid

    timeout = float(decode_timeout) if decode_timeout and decode_timeout > 0 else None
    # node-local markers of files past their deadline, one folder per run (a path every node
    # can create: each node's temp folder)
    deadline_dir = os.path.join(tempfile.gettempdir(), f"cxrviewer-decode-{uuid.uuid4().hex}") if timeout else None
    with session(address, num_cpus=num_cpus) as ray, contextlib.ExitStack() as cleanup:
        if deadline_dir:
            cleanup.callback(shutil.rmtree, deadline_dir, True)
        ctx = _quiet_data_context(ray)
        # a block that failed twice is dropped (not the run): its files get one more try alone
        ctx.max_errored_blocks = -1
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        kw = dict(engine=engine, device=device, batch_size=batch_size, options=options,
                  reuse_keys=frozenset(by_key), actors_per_node=actors_per_node,
                  decode_timeout=timeout, deadline_dir=deadline_dir)
        # blocks of a few batches, but at least two blocks per CPU so all of them decode
        per_block = min(batch_size * BATCHES_PER_BLOCK, math.ceil(len(todo) / (2 * cpus)))
        dropped = _DroppedBlocks(ray)
        try:
            with dropped.installed():
                collect(_dataset(ray, todo, block_files=max(batch_size, per_block), **kw))
        except ray.exceptions.RayError as e:
            # an actor that cannot start (its model differs, the model folder is missing on
            # a node): one line, as every other error of `infer`; the rows so far are kept
            raise CxrError(None, f"the Ray run failed: {_root_message(e)}") from e
        dropped.check()
        lost = [p for p in todo if p not in seen]
        if lost:
            # what a twice-failed block took with it, one file per block: one crashing file
            # cannot take its neighbours' rows with it
            log.warning("%d files lost with failed Ray blocks: retrying one file per block", len(lost))
            with dropped.installed():
                collect(_dataset(ray, lost, block_files=1, prepare_batch_size=1, **kw))
            dropped.check()
    lost = [p for p in todo if p not in seen]
    if lost:
        emit([_lost_row(p, engine) for p in lost])
    st.elapsed_s = time.perf_counter() - book.t0
    return st


def _lost_row(path: str, engine: Any) -> dict[str, Any]:
    from cxrviewer.ml.archive import error_row

    return error_row(
        path,
        "the Ray task decoding this file died twice, alone in its block; the file may crash "
        "its decoder",
        engine,
    )


__all__ = ["ACTOR_MEMORY_MB", "LOCAL_OBJECT_STORE_MB", "LOOPBACK_ENV", "Scorer", "prepare_batch",
           "run_archive_ray", "session"]
