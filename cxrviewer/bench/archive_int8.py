"""``cxrviewer bench archive``'s INT8 keys: ``int8_speedup``, ``int8_auc_delta``, ``int8_cam_pearson``, ...

``int8_cpu`` names the CPU they were measured on (vendor, model, INT8 kernel class, flags) and
``int8_quantized_for`` the recipe (:func:`cxrviewer.ml.cpu_isa.recipe_isa`); on a CPU that
gets the full-range graph, ``int8_reduce_range`` adds the figures of the graph CPUs without
VNNI get.

float32 vs the model's INT8 graph on the model's own test split, at the archive run's batch
size, in the same process (see :func:`cxrviewer.bench.int8.measure_int8`). Where the test
split cannot be read (no shared data, a card without its sources), the keys are absent and
``int8_skipped`` says why: the bench goes on.
"""

from __future__ import annotations

from typing import Any


def measure(ctx: Any) -> dict[str, Any]:
    """The measurer :data:`cxrviewer.bench.archive.MEASURERS` names (``ctx``: its ArchiveContext)."""
    from cxrviewer.bench.int8 import measure_int8
    from cxrviewer.core.errors import CxrError

    try:
        out = measure_int8(ctx.model_dir, batch=ctx.batch_size)
        if out["int8_quantized_for"] != "avx2":
            # this CPU does not need the reduce-range graph, but CPUs without VNNI get it:
            # measured here too, its accuracy is theirs (its integers cannot saturate), its
            # speed is this CPU's
            r = measure_int8(ctx.model_dir, batch=ctx.batch_size, isa="avx2")
            out["int8_reduce_range"] = {k[len("int8_"):]: v for k, v in r.items()
                                        if k not in ("int8_cpu", "int8_kernel")}
        return out
    except CxrError as e:
        return {"int8_skipped": str(e)}
