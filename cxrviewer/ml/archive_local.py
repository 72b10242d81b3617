"""The local archive engine: a pool of decode processes feeding batched inference.

:class:`LocalPool` hands blocks of paths to worker processes (spawned: never fork a process
that holds ONNX Runtime threads), each running :func:`cxrviewer.ml.archive.prepare_block`.
Each worker holds at most :data:`PREFETCH` blocks so it decodes the next block while the
parent runs the model. We manage the processes ourselves instead of using
``concurrent.futures``: a dead worker breaks a whole ``ProcessPoolExecutor`` and does not say
which block killed it, while here the block a dead worker was decoding is known exactly.
That block is retried once in a fresh worker; if it kills a worker again it is split into
single files, each retried once more, so only the file that crashes the decoder becomes an
error row and its neighbours are still scored.

A decoder that hangs instead of crashing is caught by a per-file deadline
(``decode_timeout``, ``infer --decode-timeout``): a worker says which file it starts before
each one, and one that is still on the same file after the deadline is killed and replaced;
that file becomes an error row saying it timed out (no retry: it would cost another
deadline), the rest of its block and the blocks queued behind it are decoded again elsewhere.
``workers=0`` decodes in the calling process, where nothing can interrupt a hung decoder: no
deadline there.

:func:`run_archive` is the whole local run: resume plan, pool, batches, sink.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any

from cxrviewer.ml.archive import (
    ERROR,
    Prepared,
    ResultsSink,
    file_stat,
    is_done,
    prepare,
    prepare_block,
    reuse_row,
    same_model,
    score,
    warm_up,
)
from cxrviewer.ml.preprocess import PreprocessSpec

#: blocks queued per worker: one being decoded, one waiting (keeps workers busy while the
#: parent runs a forward pass, without holding many decoded images in pipes)
PREFETCH = 2
#: test hook: a worker process exits (as if its decoder crashed) on a file whose name
#: contains this string; with ..._ONCE set to a file path, only until that file exists
CRASH_ENV = "CXRVIEWER_TEST_WORKER_EXIT"
CRASH_ONCE_ENV = "CXRVIEWER_TEST_WORKER_EXIT_ONCE"
#: test hook: a worker process blocks forever (as if its decoder hung) on a file whose name
#: contains this string
HANG_ENV = "CXRVIEWER_TEST_WORKER_HANG"
#: ``--decode-timeout`` default (s): generous, a 60 MB multi-frame file on a slow share
#: decodes in seconds; only a hung decoder takes minutes
DECODE_TIMEOUT_S = 120.0


def default_workers() -> int:
    """``--workers`` default: the cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def _maybe_crash(path: str) -> None:
    needle = os.environ.get(CRASH_ENV, "")
    if not needle or needle not in os.path.basename(path):
        return
    once = os.environ.get(CRASH_ONCE_ENV, "")
    if once:
        if os.path.exists(once):
            return
        with open(once, "w"):
            pass
    os._exit(70)


def _maybe_hang(path: str) -> None:
    needle = os.environ.get(HANG_ENV, "")
    if needle and needle in os.path.basename(path):
        import threading

        threading.Event().wait()  # never set: the process only ends when it is killed


def timeout_reason(seconds: float) -> str:
    """The error row's reason for a file whose decoding passed the deadline."""
    return (f"decoding timed out after {seconds:g} s (--decode-timeout); the decoder may hang on this file: "
            "its process was replaced")


def _worker_main(inbox: Any, conn: Any, spec: PreprocessSpec, card: dict) -> None:
    """A decode worker: receive ``(block_id, paths)`` on ``inbox``, send
    ``(block_id, [Prepared])`` on ``conn``."""
    # Ctrl+C reaches the whole process group; the parent decides what to do, workers just
    # end when their pipe closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import cv2

        cv2.setNumThreads(1)  # N workers x N OpenCV threads would oversubscribe the cores
    except ImportError:
        pass
    warm_up()  # before the first "starting" message: imports are not a file's decode time
    while True:
        try:
            msg = inbox.recv()
        except (EOFError, OSError):
            return  # the parent is gone (killed): nothing left to do
        if msg is None:
            return
        bid, paths = msg
        out = []
        try:
            for i, p in enumerate(paths):
                # "starting file i": the parent's deadline clock for this file
                conn.send((_START, bid, i))
                _maybe_crash(p)
                _maybe_hang(p)
                out.append(prepare(p, spec, card))
            conn.send((bid, out))
        except (BrokenPipeError, OSError):
            return


#: the tag of a worker's "starting file i of block b" message
_START = "start"


@dataclass
class _Block:
    bid: int
    paths: list[str]
    deaths: int = 0


@dataclass
class _Worker:
    proc: Any
    conn: Any  # results from the worker
    outbox: Any  # blocks to the worker
    blocks: deque = field(default_factory=deque)
    #: (index in blocks[0], monotonic start) of the file the worker decodes now
    current: tuple[int, float] | None = None


class LocalPool:
    """Decode worker processes (see the module docstring for the retry rule).

    Parameters
    ----------
    workers
        Processes; 0 decodes in the calling process (no pool).
    spec, card
        The model's preprocessing and card (what :func:`prepare_block` needs).
    decode_timeout
        Seconds a worker may spend on one file before it is killed and the file becomes an
        error row (None or <= 0: no deadline). Not with ``workers=0``.
    """

    def __init__(self, workers: int, spec: PreprocessSpec, card: dict,
                 decode_timeout: float | None = DECODE_TIMEOUT_S) -> None:
        self.n = max(0, int(workers))
        self.spec, self.card = spec, dict(card)
        self.timeout = float(decode_timeout) if decode_timeout and decode_timeout > 0 else None
        self.restarts = 0
        self.timeouts = 0
        self._ctx = mp.get_context("spawn")
        self._workers: list[_Worker] = []

    def _start(self) -> _Worker:
        # two one-way OS pipes: a duplex Pipe is a socketpair, and nothing here opens sockets
        inbox, outbox = self._ctx.Pipe(duplex=False)
        results, sender = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(
            target=_worker_main, args=(inbox, sender, self.spec, self.card), daemon=True,
            name="cxrviewer-decode",
        )
        proc.start()
        # only the worker holds these ends: its death closes the pipes for us, ours for it
        inbox.close()
        sender.close()
        return _Worker(proc, results, outbox)

    def imap(self, blocks: Iterable[list[str]]) -> Iterator[list[Prepared]]:
        """Prepared blocks in completion order (not input order)."""
        if self.n == 0:
            for paths in blocks:
                yield prepare_block(paths, self.spec, self.card)
            return
        src = iter(blocks)
        retry: deque[_Block] = deque()
        counter = [0]

        def next_block() -> _Block | None:
            if retry:
                return retry.popleft()
            paths = next(src, None)
            if paths is None:
                return None
            counter[0] += 1
            return _Block(counter[0], list(paths))

        first = next_block()
        if first is None:
            return  # nothing to decode (a resumed run that was complete): no processes
        retry.append(first)
        try:
            self._workers = [self._start() for _ in range(self.n)]
            while True:
                for w in self._workers:
                    while len(w.blocks) < PREFETCH:
                        b = next_block()
                        if b is None:
                            break
                        w.blocks.append(b)
                        try:
                            w.outbox.send((b.bid, b.paths))
                        except (BrokenPipeError, OSError):
                            break  # dead: found below through its sentinel
                busy = [w for w in self._workers if w.blocks]
                if not busy:
                    return
                ready = set(wait([w.conn for w in busy] + [w.proc.sentinel for w in busy],
                                 timeout=self._wait_s(busy)))
                out: list[list[Prepared]] = []
                for w in busy:
                    got_block = False
                    try:
                        while not got_block and (w.conn in ready or w.conn.poll()):
                            ready.discard(w.conn)
                            msg = w.conn.recv()
                            if msg[0] == _START:
                                w.current = (msg[2], time.monotonic())
                                continue
                            bid, res = msg
                            done = w.blocks.popleft()
                            assert done.bid == bid, "worker answered out of order"
                            w.current = None
                            out.append(res)
                            got_block = True
                    except (EOFError, OSError):
                        out.extend(self._died(w, retry))
                        continue
                    if got_block:
                        continue
                    if w.proc.sentinel in ready and not w.conn.poll():
                        out.extend(self._died(w, retry))
                    elif self._overdue(w):
                        out.extend(self._timed_out(w, retry))
                yield from out
        finally:
            self.close()

    def _wait_s(self, busy: list[_Worker]) -> float | None:
        """How long the pool may wait for its workers: until the nearest deadline."""
        if self.timeout is None:
            return None
        now = time.monotonic()
        starts = [w.current[1] for w in busy if w.current is not None]
        if not starts:
            return self.timeout  # nobody has said "starting" yet: look again then
        return max(0.0, min(starts) + self.timeout - now)

    def _overdue(self, w: _Worker) -> bool:
        return (self.timeout is not None and w.current is not None
                and time.monotonic() - w.current[1] >= self.timeout)

    def _replace(self, w: _Worker) -> None:
        """Kill ``w`` (whatever it is doing) and put a fresh worker in its place."""
        if w.proc.is_alive():
            w.proc.kill()  # SIGKILL: a hung decoder may be deaf to anything politer
        w.proc.join(timeout=5)  # a process stuck in the kernel (a dead share) is left behind
        w.conn.close()
        w.outbox.close()
        self._workers[self._workers.index(w)] = self._start()
        self.restarts += 1

    def _timed_out(self, w: _Worker, retry: deque[_Block]) -> list[list[Prepared]]:
        """A worker past the deadline on one file: replace it, that file is an error row,
        the rest of its block (before and after the file) and its queued blocks go again."""
        idx, _ = w.current
        w.current = None
        culprit = w.blocks.popleft()
        waiting = list(w.blocks)
        self._replace(w)
        self.timeouts += 1
        path = culprit.paths[idx]
        rest = culprit.paths[:idx] + culprit.paths[idx + 1:]
        if rest:
            retry.appendleft(_Block(culprit.bid, rest, deaths=culprit.deaths))
        retry.extend(waiting)
        size, mtime = file_stat(path)
        return [[Prepared(path, status=ERROR, reason=timeout_reason(self.timeout), file_size=size,
                          mtime_ns=mtime)]]

    def _died(self, w: _Worker, retry: deque[_Block]) -> list[list[Prepared]]:
        """Replace a dead worker; requeue its blocks; error rows for a block that died twice
        as a single file. Returns the error blocks to deliver."""
        w.proc.join(timeout=5)
        code = w.proc.exitcode
        w.current = None
        culprit = w.blocks.popleft()
        waiting = list(w.blocks)  # never started: no fault of theirs
        self._replace(w)
        culprit.deaths += 1
        failed: list[list[Prepared]] = []
        if culprit.deaths == 1:
            retry.appendleft(culprit)
        elif len(culprit.paths) > 1:
            # twice: find the file that does it, one file per block, one more try each
            retry.extendleft(_Block(-1, [p], deaths=1) for p in reversed(culprit.paths))
        else:
            size, mtime = file_stat(culprit.paths[0])
            reason = (f"the decoding process died on this file twice (exit code {code}); "
                      "the file may crash its decoder")
            failed.append([Prepared(culprit.paths[0], status=ERROR, reason=reason,
                                    file_size=size, mtime_ns=mtime)])
        retry.extend(waiting)
        return failed

    def close(self) -> None:
        """Stop the workers (politely, then by force)."""
        for w in self._workers:
            try:
                w.outbox.send(None)
            except (BrokenPipeError, OSError):
                pass
        deadline = time.monotonic() + 5
        for w in self._workers:
            w.proc.join(timeout=max(0.0, deadline - time.monotonic()))
            if w.proc.is_alive():
                w.proc.terminate()
                w.proc.join(timeout=2)
            w.conn.close()
            w.outbox.close()
        self._workers = []


@dataclass
class RunStats:
    """What a run did and what its stages cost (ms summed over images)."""

    total: int = 0
    skipped: int = 0
    reused: int = 0
    scored: int = 0
    errors: int = 0
    refused: int = 0
    worker_restarts: int = 0
    #: files whose decoding passed ``decode_timeout`` (their rows are errors)
    timeouts: int = 0
    elapsed_s: float = 0.0
    decode_ms: float = 0.0
    key_ms: float = 0.0
    preprocess_ms: float = 0.0
    inference_ms: float = 0.0

    @property
    def images_per_s(self) -> float:
        n = self.total - self.skipped
        return n / self.elapsed_s if self.elapsed_s > 0 else 0.0


class RunBook:
    """The part of a run both engines share: the resume plan, then rows into the sink.

    ``todo`` are the paths to decode (a file whose path, size, mtime and model match its row is
    skipped with one ``stat``); ``by_key`` the scored rows a copied file may reuse; ``emit``
    appends rows (``_`` keys dropped) and keeps the stats and progress current.
    """

    def __init__(self, engine: Any, paths: Sequence[str], sink: ResultsSink,
                 progress: Callable[[int, int, RunStats], None] | None,
                 on_rows: Callable[[list[dict]], None] | None) -> None:
        self.t0 = time.perf_counter()
        self.st = RunStats(total=len(paths))
        self.sink, self.progress, self.on_rows = sink, progress, on_rows
        done_rows = sink.done_rows()
        self.by_key = {k: r for k, r in sink.done_keys().items() if same_model(r, engine)}
        self.todo: list[str] = []
        for p in paths:
            size, mtime = file_stat(p)
            if is_done(done_rows.get(p), size, mtime, engine):
                self.st.skipped += 1
            else:
                self.todo.append(p)
        self.finished = self.st.skipped

    def report(self) -> None:
        self.st.elapsed_s = time.perf_counter() - self.t0
        if self.progress is not None:
            self.progress(self.finished, self.st.total, self.st)

    def emit(self, rows: list[dict]) -> None:
        if self.on_rows is not None:
            self.on_rows(rows)
        self.sink.append([{k: v for k, v in r.items() if not k.startswith("_")} for r in rows])
        for r in rows:
            self.st.errors += r["status"] == ERROR
            self.st.refused += r["status"] not in (ERROR, "ok")
        self.finished += len(rows)
        self.report()


def _chunks(seq: Sequence[str], n: int) -> Iterator[list[str]]:
    for i in range(0, len(seq), n):
        yield list(seq[i : i + n])


def run_archive(
    engine: Any,
    paths: Sequence[str],
    sink: ResultsSink,
    *,
    workers: int,
    batch_size: int = 8,
    score_all: bool = False,
    cam_summary: bool = False,
    keep_maps: bool = False,
    progress: Callable[[int, int, RunStats], None] | None = None,
    on_rows: Callable[[list[dict]], None] | None = None,
    decode_timeout: float | None = DECODE_TIMEOUT_S,
) -> RunStats:
    """Score ``paths`` into ``sink``, skipping what it already holds (see
    :mod:`cxrviewer.ml.archive` for the resume rule). Does not finalize the sink.

    Parameters
    ----------
    progress
        ``(images done, images to do, stats)`` after each batch (done counts skipped ones).
    on_rows
        Called with each batch's rows before they are written (``--cam-dir`` reads the
        ``_map`` entries there; keys starting with ``_`` never reach the sink).
    decode_timeout
        Seconds one file may take to decode in a worker before the worker is replaced and
        the file becomes an error row (see :class:`LocalPool`).
    """
    book = RunBook(engine, paths, sink, progress, on_rows)
    st, todo, by_key, emit = book.st, book.todo, book.by_key, book.emit
    pool = LocalPool(workers, engine.spec, engine.card, decode_timeout)
    buffer: list[Prepared] = []

    def flush(n: int) -> None:
        batch = buffer[:n]
        del buffer[:n]
        ti = time.perf_counter()
        rows = score(engine, batch, score_all=score_all, cam_summary=cam_summary, keep_maps=keep_maps)
        st.inference_ms += (time.perf_counter() - ti) * 1e3
        st.scored += len(batch)
        emit(rows)

    book.report()
    try:
        for block in pool.imap(_chunks(todo, max(1, batch_size))):
            direct: list[dict] = []
            for pr in block:
                st.decode_ms += pr.decode_ms
                st.key_ms += pr.key_ms
                st.preprocess_ms += pr.preprocess_ms
                if not pr.ok:
                    direct.extend(score(engine, [pr], cam_summary=cam_summary))
                elif pr.key in by_key:
                    st.reused += 1
                    direct.append(reuse_row(by_key[pr.key], pr))
                else:
                    buffer.append(pr)
            if direct:
                emit(direct)
            while len(buffer) >= batch_size:
                flush(batch_size)
        while buffer:
            flush(batch_size)
    finally:
        pool.close()
        st.worker_restarts = pool.restarts
        st.timeouts = pool.timeouts
        st.elapsed_s = time.perf_counter() - book.t0
    return st


__all__ = ["CRASH_ENV", "CRASH_ONCE_ENV", "DECODE_TIMEOUT_S", "HANG_ENV", "LocalPool", "RunStats", "default_workers", "run_archive", "timeout_reason"]
