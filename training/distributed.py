"""Process-group facts for DDP runs (``torchrun``, one node or many), and helpers that see
through the DDP wrapper.

Without ``torchrun`` everything here is a no-op (``world == 1``). With it, ``RANK`` is the
*global* rank: rank 0 (one process in the whole job, on node 0) writes every file; each
node's ``LOCAL_RANK`` 0 is only the process that owns that node's first GPU.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
from typing import Any

from cxrviewer.core.errors import CxrError

#: default ``--dist-timeout`` (minutes): how long a rank waits in a collective. The other
#: ranks wait at a barrier while rank 0 writes the model (test-split evaluation, calibration,
#: the ONNX export), which can outlast torch's defaults (10 min NCCL, 30 min gloo) on big sets.
DIST_TIMEOUT_MIN = 60.0


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise CxrError(None, f"environment variable {name}={raw!r} is not an integer (set by torchrun)") from None


class Dist:
    """Process-group facts; ``world == 1`` without torchrun.

    Attributes
    ----------
    world, rank
        All processes of the job, and this one's global rank (``WORLD_SIZE``, ``RANK``).
    local_world, local_rank
        The processes on this node, and this one's index among them (``LOCAL_WORLD_SIZE``,
        ``LOCAL_RANK``): it picks the GPU, never who writes.
    nodes, node
        The nodes (torchrun's agents: ``GROUP_WORLD_SIZE``) and this one's (``GROUP_RANK``).
    """

    def __init__(self) -> None:
        self.world = _env_int("WORLD_SIZE", 1)
        self.rank = _env_int("RANK", 0)
        self.local_rank = _env_int("LOCAL_RANK", 0)
        self.local_world = _env_int("LOCAL_WORLD_SIZE", self.world)
        self.node = _env_int("GROUP_RANK", 0)
        self.nodes = _env_int("GROUP_WORLD_SIZE", max(1, self.world // max(1, self.local_world)))
        if not (0 <= self.rank < self.world and 0 <= self.local_rank < max(1, self.local_world)):
            raise CxrError(None, f"inconsistent process-group environment: RANK={self.rank} WORLD_SIZE={self.world} "
                                 f"LOCAL_RANK={self.local_rank} LOCAL_WORLD_SIZE={self.local_world} (start with torchrun)")
        self.enabled = self.world > 1

    def init(self, device, timeout_min: float = DIST_TIMEOUT_MIN) -> None:
        """Join the process group (NCCL on CUDA, gloo otherwise) and say on stderr which
        process this is: a multi-node log then tells node, rank and pid apart."""
        if not self.enabled:
            return
        import datetime

        import torch.distributed as dist

        missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(k)]
        if missing:
            raise CxrError(None, f"WORLD_SIZE={self.world} but {' and '.join(missing)} not set: start the run with "
                                 "torchrun (see the README's multi-node launch)")
        if not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=timeout_min))
        print(f"rank {self.rank}/{self.world}: node {self.node}/{self.nodes} ({socket.gethostname()}), local rank "
              f"{self.local_rank}/{self.local_world}, pid {os.getpid()}, {device}", file=sys.stderr, flush=True)

    def writer(self) -> dict[str, int]:
        """Who wrote a run's files (always global rank 0), for the checkpoint and the card."""
        return {"rank": self.rank, "node": self.node, "local_rank": self.local_rank,
                "world_size": self.world, "nodes": self.nodes}

    def check_same(self, what: str, value: str) -> None:
        """Raise on every rank when ``value`` (a digest) differs between ranks.

        Each rank plans its own splits and seeds from the command line and the data it reads;
        a node with another copy of the data, another command or another version of the code
        would silently train on a different plan (and DDP would average it in)."""
        if not self.enabled:
            return
        got = self.gather(value)
        odd = [r for r, v in enumerate(got) if v != got[0]]
        if odd:
            raise CxrError(None, f"{what} differs between the processes: rank(s) {', '.join(map(str, odd))} disagree "
                                 "with rank 0. Every node needs the same command, code and data (one shared "
                                 "filesystem path for --data and --out)")

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
            close_group()


def close_group() -> None:
    """Leave the process group if this process joined one (safe to call at any exit)."""
    if "torch.distributed" not in sys.modules:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


#: arguments that may differ between nodes without changing what is trained
PER_NODE_ARGS = ("workers", "threads", "log_interval", "json_progress", "device", "check_data", "estimate_only")


def plan_digest(splits: dict[str, list], args) -> str:
    """sha256 of the split plan (every image's path, label, patient and split) and of the
    command's training arguments: equal on every rank of a sound multi-node run."""
    from training.checkpoint import plain_args

    h = hashlib.sha256()
    for name in sorted(splits):
        for s in splits[name]:
            h.update(f"{name}\t{s.path}\t{s.label}\t{s.patient}\n".encode())
    plain = {k: v for k, v in plain_args(args).items() if k not in PER_NODE_ARGS}
    h.update(repr(sorted(plain.items())).encode())
    return h.hexdigest()


def shard_sampler(dataset, dist: Dist, seed: int):
    """The training set's sampler: each epoch one permutation seeded by ``(seed, epoch)``, the
    same on every rank, dealt out round-robin (rank r takes positions r, r + world, ...).

    The shards are disjoint and of equal length (DDP needs the same number of steps on every
    rank). Where the set does not divide by ``world``, the last ``len % world`` images of that
    epoch's permutation (fewer than ``world``, different each epoch) are left out rather than
    repeated: ``DistributedSampler``'s default pads by training some images twice.
    """
    from torch.utils.data import DistributedSampler

    return DistributedSampler(dataset, num_replicas=dist.world, rank=dist.rank, shuffle=True, seed=seed,
                              drop_last=True)


def stamp(dist: Dist) -> dict[str, Any]:
    """What a checkpoint records about its writer: the torchrun job it belongs to (see
    :func:`same_job`) and the process (global rank 0, its node, host and pid)."""
    return {"elastic_run_id": os.environ.get("TORCHELASTIC_RUN_ID"),
            "written_by": {**dist.writer(), "host": socket.gethostname(), "pid": os.getpid()}}


def same_job(run_dir) -> str | None:
    """The torchrun job id when ``run_dir`` holds a checkpoint this same job wrote, else None.

    torchrun re-runs the original command when it restarts a job's workers
    (``--max-restarts``, after a worker or a node failed), and a scheduler that requeues a
    job re-runs it too: that command then continues the job's checkpoint as ``--resume``
    would (``RUN_DIR/checkpoint.pt``, or a fold's with ``--folds``). The job is recognised by
    ``TORCHELASTIC_RUN_ID`` (``--rdzv-id``, or the id ``--standalone`` draws). torchrun's
    restart counter cannot tell: a node whose workers were still healthy restarts them as a
    membership change, with the counter still at 0. The placeholder ``none`` of a launch
    without ``--rdzv-id`` matches nothing, so a checkpoint of another run in ``--out`` is
    never continued by mistake.
    """
    from pathlib import Path

    from training.checkpoint import CHECKPOINT, load

    run_id = os.environ.get("TORCHELASTIC_RUN_ID", "")
    d = Path(run_dir)
    if run_id in ("", "none") or not d.is_dir():
        return None
    found = [p for p in (d / CHECKPOINT, *sorted(d.glob(f"fold*/{CHECKPOINT}"))) if p.is_file()]
    return run_id if found and load(found[0]).get("elastic_run_id") == run_id else None


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
