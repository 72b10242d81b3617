"""``cxrviewer bench archive``'s merge keys: the Parquet output's final merge, streamed vs in memory.

Writes ``--merge-rows`` synthetic result rows (default 100,000: paths of a study tree, an 8x8
CAM summary each, 2 % of the paths scored twice as a resumed run rescores changed files) as
the parts a ``--cam-summary`` run leaves, ``--batch-size`` rows a part (one part per batch, as
the local engine writes them), then merges them into one file twice, each time in a fresh
Python process: with :func:`cxrviewer.ml.archive.merge_parquet` (streamed) and with the
row-by-row merge it replaced (:func:`cxrviewer.ml.archive.merge_parquet_in_memory`). Each
reports its peak RSS (``VmHWM``; Linux) and its RSS before merging (after the imports and the
run's set of paths, which the CLI holds anyway), so the merge's own share is the difference.

``merge_peak_rss_mb`` / ``merge_inmemory_peak_rss_mb``: peak RSS of the process;
``merge_rss_mb`` / ``merge_inmemory_rss_mb``: peak minus RSS before merging;
``merge_s`` / ``merge_inmemory_s``: wall time of the merge; ``merge_rows``, ``merge_parts``;
``merge_same_output``: both wrote the same rows. Without pyarrow: ``merge_skipped``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

#: ``--merge-rows`` default
MERGE_ROWS = 100_000
#: share of rows written twice (a resumed run that rescored changed files)
RESCORED = 0.02

_CHILD = r"""
import json, os, resource, sys, time
from pathlib import Path
import pyarrow.compute, pyarrow.parquet  # noqa: F401 - imported before the baseline, as in a run
from cxrviewer.ml import archive as A

parts, out, how = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
sink = A.ParquetSink.schema_only(cam_summary=True)  # only its schema and table builder: no reading
files = sorted(parts.glob("part-*.parquet"), key=A._part_order)
keep = {l for l in (parts / "paths.txt").read_text().splitlines() if l}

def status_mb(key):
    # VmHWM, not getrusage: Linux keeps ru_maxrss across exec, so a child of a big bench
    # process would report its parent's peak; VmHWM belongs to this process's memory
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def rss_mb():
    return status_mb("VmRSS")

before = rss_mb()
t0 = time.perf_counter()
if how == "streamed":
    n = A.merge_parquet(files, out, sink._schema(), keep)
else:
    n = A.merge_parquet_in_memory(files, out, sink, keep)
took = time.perf_counter() - t0
peak = status_mb("VmHWM")
print(json.dumps({"rows": n, "s": round(took, 2), "peak_rss_mb": round(peak, 1),
                  "rss_before_mb": round(before, 1)}))
"""


def write_parts(parts: Path, n: int, per_part: int, seed: int = 0) -> int:
    """``n`` rows (+ :data:`RESCORED` of them again, later) as parts of ``per_part`` rows;
    ``parts/paths.txt`` lists the paths (the ``keep`` set). Returns the number of parts."""
    import numpy as np

    from cxrviewer.ml.archive import CAM_COLUMN, ParquetSink

    parts.mkdir(parents=True, exist_ok=True)
    sink = ParquetSink.schema_only(cam_summary=True)
    rng = np.random.default_rng(seed)
    paths = [f"/archive/P{i // 400:05d}/S{i // 4:06d}/img{i:07d}.dcm" for i in range(n)]
    order = list(rng.permutation(n)) + list(rng.choice(n, size=int(n * RESCORED), replace=False))
    (parts / "paths.txt").write_text("\n".join(paths) + "\n")
    count = 0
    for start in range(0, len(order), per_part):
        rows = []
        for i in order[start : start + per_part]:
            rows.append({
                "path": paths[i], "sop_instance_uid": f"1.2.826.0.1.3680043.8.498.{i}",
                "probability_abnormal": round(float(rng.random()), 6), "label": "Normal",
                "model": "cxr-resnet50-demo", "model_version": "2.0", "status": "ok", "reason": "",
                "content_key": f"{i:064x}", "file_size": 1_000_000 + i, "mtime_ns": 1_700_000_000_000_000_000 + i,
                "precision": "fp32", CAM_COLUMN: [round(float(v), 4) for v in rng.random(64)],
            })
        count += 1
        sink.pq.write_table(sink._table(rows), parts / f"part-1-{1_000_000 + count}-{count:06d}.parquet")
    return count


def _child(parts: Path, out: Path, how: str) -> dict[str, Any]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-c", _CHILD, str(parts), str(out), how], capture_output=True,
                       text=True, env=env, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"the {how} merge failed: {r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def measure(ctx: Any) -> dict[str, Any]:
    """The measurer :data:`cxrviewer.bench.archive.MEASURERS` names (``ctx``: its ArchiveContext)."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return {"merge_skipped": "pyarrow (the parquet extra) is not installed"}
    n = int(getattr(ctx, "merge_rows", 0) or MERGE_ROWS)
    parts = Path(ctx.tmp) / "merge.parquet.parts"
    t0 = time.perf_counter()
    nparts = write_parts(parts, n, max(1, int(ctx.batch_size)))
    write_s = time.perf_counter() - t0
    a = _child(parts, Path(ctx.tmp) / "streamed.parquet", "streamed")
    b = _child(parts, Path(ctx.tmp) / "inmemory.parquet", "inmemory")
    import pyarrow.parquet as pq

    same = pq.read_table(Path(ctx.tmp) / "streamed.parquet").equals(pq.read_table(Path(ctx.tmp) / "inmemory.parquet"))
    return {
        "merge_rows": a["rows"], "merge_parts": nparts, "merge_parts_write_s": round(write_s, 1),
        "merge_s": a["s"], "merge_peak_rss_mb": a["peak_rss_mb"],
        "merge_rss_mb": round(a["peak_rss_mb"] - a["rss_before_mb"], 1),
        "merge_inmemory_s": b["s"], "merge_inmemory_peak_rss_mb": b["peak_rss_mb"],
        "merge_inmemory_rss_mb": round(b["peak_rss_mb"] - b["rss_before_mb"], 1),
        "merge_same_output": bool(same and a["rows"] == b["rows"]),
    }
