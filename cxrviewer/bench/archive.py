"""Scoring an archive: images/s with 1 and 2 local workers, resume after kill -9, peak RSS, stage costs.

Builds a synthetic archive of ``--n`` CR DICOM files (default 2,000) from the shared NIH
radiographs (``../shared/data/nih-starter-512``, 512×512 8-bit; the JSON's ``"source"`` says
which; without the shared data, the bundled RG1 sample with a note), in a temp folder, and
measures with the active model (or ``--model``):

``images_per_s_1``, ``images_per_s_2``
    The local engine (:func:`cxrviewer.ml.archive_local.run_archive`) in this process, with
    1 and 2 decode workers, into a fresh CSV: images / seconds of the run (the model load
    and the header scan are not in it: they are ``engine_load_s`` and ``header_scan``).
``resume_overhead_s``
    A real ``cxrviewer infer --workers 2 --precision fp32`` subprocess is killed (SIGKILL) once half the
    rows are written, then the same command is run again (``resume_run_s``, wall time).
    ``fresh_remaining_s`` is the wall time of the same command, fresh, on a folder holding
    exactly the files the resumed run had left to do (hard links). The overhead is
    ``resume_run_s - fresh_remaining_s``: what resuming costs beyond scoring the rest
    (reading the done rows, one stat per done file, the final rewrite).
``resume_noop_s``
    In this process: a rerun on the complete output of the 1-worker run (read the rows, one
    stat per file, nothing to decode, the final rewrite): the part of the overhead that
    grows with the number of done images, without the subprocesses' noise.
``peak_rss_mb``
    Peak resident memory of that fresh ``cxrviewer infer --workers 2`` run, the parent and
    its decode workers summed (sampled every 0.1 s with psutil; without psutil, the
    largest single process from ``getrusage``).
``stage_ms_per_image``
    From the 1-worker run: ``decode``, ``content_key``, ``preprocess`` (worker side),
    ``inference`` (batched forward pass, OOD check, calibration: parent side),
    ``header_scan`` (``study_index.scan`` in-process), and ``mean_file_kb`` for bandwidth.

Other engines add keys through :data:`MEASURERS`: ``"module:function"`` entries, each called
with the :class:`ArchiveContext` and returning a dict merged into the result (a module that
is not installed is skipped and named in ``"skipped"``). ``images_per_s_ray`` comes from
``cxrviewer.bench.archive_ray:measure``, ``int8_speedup`` / ``int8_auc_delta`` from
``cxrviewer.bench.archive_int8:measure`` (with ``int8_cpu``: the CPU they hold for), the Parquet
merge's peak RSS (``merge_peak_rss_mb``, streamed, vs ``merge_inmemory_peak_rss_mb``) from
``cxrviewer.bench.archive_merge:measure``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: the local figures are float32, like the in-process runs and the Ray measurer's; INT8 is
#: measured on its own (``int8_speedup``), while `infer`'s default precision may pick it
FP32 = ("--precision", "fp32")

#: extra measurers (``"module:function"``) run after the local ones; keys are contracts
MEASURERS: list[str] = [
    "cxrviewer.bench.archive_ray:measure",
    "cxrviewer.bench.archive_int8:measure",
    "cxrviewer.bench.archive_merge:measure",
]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=2000, help="DICOM files in the synthetic archive (default 2000)")
    p.add_argument("--batch-size", type=int, default=8, help="images per forward pass (default 8)")
    p.add_argument("--model", default=None, help="model directory (default: the active model)")
    p.add_argument("--only", default=None, help="comma-separated measurer names to run (local, ray, int8, merge)")
    p.add_argument("--merge-rows", type=int, default=100_000,
                   help="rows of the synthetic Parquet parts the merge figures merge (default 100000)")


@dataclass
class ArchiveContext:
    """What an extra measurer gets: the archive, the model, the local figures so far."""

    archive: Path
    paths: list[str]
    model_dir: Path
    tmp: Path
    batch_size: int
    result: dict[str, Any] = field(default_factory=dict)
    #: rows the Parquet merge measurer writes and merges (``--merge-rows``)
    merge_rows: int = 100_000

    def infer_command(self, out: str | os.PathLike, *extra: str, path: str | os.PathLike | None = None) -> list[str]:
        """The ``cxrviewer infer`` command line on the archive (or ``path``) into ``out``."""
        return [sys.executable, "-m", "cxrviewer", "infer", str(path or self.archive), "--out", str(out),
                "--model", str(self.model_dir), "--batch-size", str(self.batch_size), *extra]


def shared_sources() -> tuple[list[Path], str]:
    """Source radiographs for a synthetic archive and a note saying which."""
    from cxrviewer import paths

    shared = Path(os.environ.get("CXRVIEWER_SHARED_DATA") or paths.resources_dir().parent.parent / "shared" / "data")
    starter = sorted((shared / "nih-starter-512" / "images").glob("*.png"))
    if starter:
        return starter, f"nih-starter-512 ({len(starter)} NIH ChestX-ray14 PNGs, 512x512 8-bit)"
    sample = paths.sample_paths()
    return list(sample[:1]), ("../shared/data is absent: the bundled RG1 sample only (one 1841x1955 CR, "
                             "rolled per file), so decode costs are RG1's, not the NIH set's")


def build_archive(dest: Path, n: int, sources: Sequence[str | os.PathLike], size: int | None = None) -> list[str]:
    """``n`` CR chest PA DICOM files (uncompressed) in ``dest``, cycling through ``sources``
    (PNG/JPEG/DICOM); each further cycle rolls the pixels by one more row so every file has
    its own pixels (own content key). ``size``: resize the sources first (small test files)."""
    import cv2

    from cxrviewer.core.dicom_io import load_image
    from cxrviewer.core.synthetic import make_dataset, write_dataset

    dest.mkdir(parents=True, exist_ok=True)
    base = []
    for s in sources:
        a = np.asarray(load_image(s).stored)
        if a.ndim == 3:
            a = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)
        if size:
            a = cv2.resize(a, (size, size), interpolation=cv2.INTER_AREA)
        base.append(a)
    out = []
    for i in range(n):
        src, cycle = base[i % len(base)], i // len(base)
        px = np.roll(src, cycle, axis=0) if cycle else src
        ds = make_dataset(px, patient_id=f"ARC{i // 4:06d}", instance_number=i % 4 + 1,
                          extra={"BodyPartExamined": "CHEST", "ViewPosition": "PA"})
        out.append(write_dataset(ds, dest / f"img{i:06d}.dcm"))
    return out


def _rows(csv_path: Path) -> int:
    try:
        with open(csv_path, "rb") as fh:
            return max(0, fh.read().count(b"\n") - 1)
    except FileNotFoundError:
        return 0


class _RssSampler:
    """Peak RSS (MB) of a process and its children, summed, sampled in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, 0.0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        try:
            import psutil
        except ImportError:
            return
        try:
            proc = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._stop.is_set():
            try:
                procs = [proc, *proc.children(recursive=True)]
                total = 0
                for p in procs:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak = max(self.peak, total / 2**20)
            except psutil.Error:
                return
            self._stop.wait(0.1)

    def stop(self) -> float:
        self._stop.set()
        self._t.join()
        return self.peak


def _timed(cmd: list[str], env: dict) -> tuple[float, float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    sampler = _RssSampler(p.pid)
    out, err = p.communicate()
    wall = time.perf_counter() - t0
    peak = sampler.stop()
    if not peak:
        import resource

        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {err[-2000:]}")
    return wall, peak, subprocess.CompletedProcess(cmd, p.returncode, out, err)


def measure_local(ctx: ArchiveContext) -> dict[str, Any]:
    """The local engine's keys (see the module docstring)."""
    from cxrviewer.core.study_index import scan
    from cxrviewer.ml.archive import open_sink, read_csv_rows
    from cxrviewer.ml.archive_local import run_archive
    from cxrviewer.ml.inference import Engine

    n = len(ctx.paths)
    t0 = time.perf_counter()
    engine = Engine.load(ctx.model_dir)
    res: dict[str, Any] = {"engine_load_s": round(time.perf_counter() - t0, 2),
                           "backend": engine.backend, "device": engine.device, "precision": engine.precision}
    t0 = time.perf_counter()
    scan(ctx.archive, workers=0)
    scan_ms = (time.perf_counter() - t0) * 1e3 / n
    stats = {}
    for w in (1, 2):
        sink = open_sink(ctx.tmp / f"local{w}.csv")
        st = run_archive(engine, ctx.paths, sink, workers=w, batch_size=ctx.batch_size)
        sink.finalize()
        res[f"images_per_s_{w}"] = round(st.images_per_s, 2)
        stats[w] = st
    # what resuming costs per done image, alone: a rerun on a complete output (every file
    # skipped after one stat, then the final rewrite); the subprocess figures below add noise
    t0 = time.perf_counter()
    sink = open_sink(ctx.tmp / "local1.csv")
    noop = run_archive(engine, ctx.paths, sink, workers=2, batch_size=ctx.batch_size)
    sink.finalize()
    res["resume_noop_s"] = round(time.perf_counter() - t0, 3)
    assert noop.skipped == n, "a complete output was not recognised as done"
    s1 = stats[1]
    res["stage_ms_per_image"] = {
        "header_scan": round(scan_ms, 3),
        "decode": round(s1.decode_ms / n, 3),
        "content_key": round(s1.key_ms / n, 3),
        "preprocess": round(s1.preprocess_ms / n, 3),
        "inference": round(s1.inference_ms / n, 3),
        "mean_file_kb": round(sum(os.path.getsize(p) for p in ctx.paths) / n / 1024, 1),
    }

    # kill -9 a real run at ~50 %, rerun; compare with a fresh run on what was left
    env = dict(os.environ)
    out = ctx.tmp / "killed.csv"
    proc = subprocess.Popen(ctx.infer_command(out, "--workers", "2", *FP32), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 3600
    while _rows(out) < n // 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    killed = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = {r["path"] for r in read_csv_rows(out)}
    left = [p for p in ctx.paths if p not in done]
    res["killed_at_fraction"] = round(len(done) / n, 3)
    resume_s, _, _ = _timed(ctx.infer_command(out, "--workers", "2", *FP32), env)
    rows = read_csv_rows(out)
    res.update(resume_run_s=round(resume_s, 2),
               resume_rows_exact=len(rows) == n and len({r["path"] for r in rows}) == n)
    if not killed or not left:  # the run ended before the kill (a tiny --n): nothing to compare
        res.update(fresh_remaining_s=None, resume_overhead_s=None, peak_rss_mb=None,
                   note="the killed run finished before it could be killed")
        return res
    rest = ctx.tmp / "remaining"
    rest.mkdir()
    for p in left:
        try:
            os.link(p, rest / Path(p).name)
        except OSError:
            shutil.copy2(p, rest / Path(p).name)
    fresh_s, peak, _ = _timed(ctx.infer_command(ctx.tmp / "fresh.csv", "--workers", "2", *FP32, path=rest), env)
    res.update(
        fresh_remaining_s=round(fresh_s, 2),
        resume_overhead_s=round(resume_s - fresh_s, 2),
        peak_rss_mb=round(peak, 1),
    )
    return res


def _call(spec: str) -> Callable[[ArchiveContext], dict[str, Any]] | None:
    mod, _, fn = spec.partition(":")
    try:
        m = importlib.import_module(mod)
    except ModuleNotFoundError as e:
        if e.name == mod:
            return None
        raise
    return getattr(m, fn)


def run(args: argparse.Namespace) -> dict:
    from cxrviewer.ml.registry import Registry

    if args.n < 2:
        raise SystemExit("cxrviewer: error: --n must be at least 2")
    model_dir = Path(args.model) if args.model else None
    if model_dir is None:
        entry = Registry().active()
        if entry is None:
            raise SystemExit("cxrviewer: error: no model installed (--model DIR)")
        model_dir = entry.path
    only = set(args.only.split(",")) if args.only else None
    tmp = Path(tempfile.mkdtemp(prefix="cxrviewer-bench-archive-"))
    try:
        sources, note = shared_sources()
        t0 = time.perf_counter()
        paths = build_archive(tmp / "archive", args.n, sources)
        ctx = ArchiveContext(tmp / "archive", paths, Path(model_dir), tmp, args.batch_size,
                             merge_rows=getattr(args, "merge_rows", 100_000))
        ctx.result.update(n=args.n, source=note, model=str(model_dir), batch_size=args.batch_size,
                          build_s=round(time.perf_counter() - t0, 1), cpus=os.cpu_count())
        if only is None or "local" in only:
            ctx.result.update(measure_local(ctx))
        skipped = []
        for spec in MEASURERS:
            name = spec.split(":")[0].rsplit("_", 1)[-1]
            if only is not None and name not in only:
                continue
            fn = _call(spec)
            if fn is None:
                skipped.append(spec)
                continue
            ctx.result.update(fn(ctx))
        if skipped:
            ctx.result["skipped"] = skipped
        return ctx.result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
