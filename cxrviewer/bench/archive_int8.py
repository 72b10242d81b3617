"""``cxrviewer bench archive``'s INT8 keys: ``int8_speedup``, ``int8_auc_delta``, ``int8_cam_pearson``.

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
        return measure_int8(ctx.model_dir, batch=ctx.batch_size)
    except CxrError as e:
        return {"int8_skipped": str(e)}
