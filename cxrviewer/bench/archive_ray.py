"""``bench archive``'s Ray figure: ``images_per_s_ray`` (a measurer of :mod:`cxrviewer.bench.archive`).

The Ray engine (:func:`cxrviewer.ml.archive_ray.run_archive_ray`) scores the bench's archive
into a fresh CSV on a private local Ray with this machine's CPUs. The start of Ray itself is
``ray_start_s``, outside the rate (a cluster is started once, not per run); the rate does
include the start of the inference actors and Ray Data's planning, which every run pays.
``ray_rows_exact`` says the output has exactly one row per file, and, when the local engine
ran first, ``ray_max_abs_diff_vs_local`` is the largest probability difference between the
two engines' rows (the contract: <= 1e-6).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def measure(ctx: Any) -> dict[str, Any]:
    """The Ray keys for ``bench archive`` (``ctx``: :class:`cxrviewer.bench.archive.ArchiveContext`)."""
    from cxrviewer.ml.extras import CLUSTER_EXTRA_HINT, ray_available

    if not ray_available():
        return {"images_per_s_ray": None, "ray_note": f"Ray is not installed: {CLUSTER_EXTRA_HINT}"}
    from cxrviewer.ml.archive import open_sink, read_csv_rows
    from cxrviewer.ml.archive_ray import run_archive_ray, session
    from cxrviewer.ml.inference import Engine

    engine = Engine.load(ctx.model_dir)
    out = Path(ctx.tmp) / "ray.csv"
    out.unlink(missing_ok=True)
    t0 = time.perf_counter()
    with session(None, num_cpus=os.cpu_count()):
        start_s = time.perf_counter() - t0
        sink = open_sink(out)
        st = run_archive_ray(engine, ctx.paths, sink, batch_size=ctx.batch_size)
        rows = sink.finalize()
    res: dict[str, Any] = {
        "images_per_s_ray": round(st.images_per_s, 2),
        "ray_start_s": round(start_s, 2),
        "ray_rows_exact": sorted(r["path"] for r in rows) == sorted(ctx.paths),
    }
    local = Path(ctx.tmp) / "local1.csv"  # bench archive's 1-worker run, when it ran
    if local.is_file():
        a = {r["path"]: r["probability_abnormal"] for r in read_csv_rows(local)}
        diffs = [abs(float(a[r["path"]]) - float(r["probability_abnormal"]))
                 for r in rows if a.get(r["path"]) not in (None, "") and r["probability_abnormal"] != ""]
        res["ray_max_abs_diff_vs_local"] = max(diffs) if diffs else None
    return res
