"""Process-group facts for DDP runs (``torchrun``), and helpers that see through the DDP wrapper.

Without ``torchrun`` everything here is a no-op (``world == 1``).
"""

from __future__ import annotations

import hashlib
import os
from typing import Any


class Dist:
    """Process-group facts; ``world == 1`` without torchrun."""

    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(self.world)))
        self.enabled = self.world > 1

    def init(self, device) -> None:
        if not self.enabled:
            return
        import torch.distributed as dist

        if not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            dist.init_process_group(backend=backend)

    def gather(self, obj: Any) -> list[Any]:
        if not self.enabled:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: Any) -> Any:
        if not self.enabled:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def sync_buffers(self, model) -> None:
        """Rank 0's BatchNorm running statistics to every rank.

        DDP broadcasts buffers at the start of each forward, but the last forward of an epoch
        updates them with each rank's own batch: without this, ranks would evaluate and save
        slightly different models.
        """
        if not self.enabled:
            return
        import torch.distributed as dist

        for b in model.buffers():
            dist.broadcast(b, src=0)

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def unwrap(model):
    """The module inside a DDP wrapper (or the model itself)."""
    return getattr(model, "module", model)


def weights_digest(model) -> str:
    """sha256 over every tensor of the state dict (bytes, in key order)."""
    h = hashlib.sha256()
    for k, v in unwrap(model).state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
