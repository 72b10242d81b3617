"""Multi-node training: two local ``torchrun --nnodes 2`` agents act as two nodes (gloo on CPU).

Each "node" has its own working directory, temp and cache folders; the data and ``--out``
sit in one folder both see, as on a cluster's shared filesystem. One node's worker is killed
after the first checkpoint: torchrun (``--max-restarts``) restarts both, the same command
continues the checkpoint, and the run still ends with one model, written by global rank 0.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from training.synthetic import make_dataset

ANNOUNCE = re.compile(r"rank (\d+)/(\d+): node (\d+)/(\d+) \(.*?\), local rank (\d+)/(\d+), pid (\d+), cpu")
#: what a run writes; none of it may appear anywhere but in the shared --out
OUTPUTS = ("checkpoint.pt", "best.pt", "model.safetensors", "card.json", "model.onnx", "ood.npz", "metrics.json",
           "history.json", "splits.csv", "report.md", "roc.png")


def _need_torchrun() -> None:
    pytest.importorskip("torch", reason="training needs the train extra (torch): pip install cxrviewer[train]")
    import torch.distributed as dist

    if importlib.util.find_spec("torch.distributed.run") is None or not dist.is_available():
        pytest.skip("this torch build has no torch.distributed / torchrun")
    if not dist.is_gloo_available():
        pytest.skip("this torch build has no gloo backend (the CPU process group)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_env(scratch: Path) -> dict[str, str]:
    """A node's own environment: its temp, caches and user folders (where a node-local write
    would land); PYTHONPATH is inherited, so torchrun's children import this checkout."""
    # TORCH_DISABLE_SHARE_RDZV_TCP_STORE: as the README says for --max-restarts (torch's c10d
    # agents otherwise keep one worker store across restarts, and a restarted worker can read
    # its peer's address from the killed attempt: "Connection refused", seen once in 4 runs).
    env = dict(os.environ, OMP_NUM_THREADS="1", TORCH_DISABLE_SHARE_RDZV_TCP_STORE="1")
    for var, sub in (("TMPDIR", "tmp"), ("XDG_CACHE_HOME", "cache"), ("MPLCONFIGDIR", "mpl"), ("TORCH_HOME", "torch"),
                     ("CXRVIEWER_DATA_DIR", "user"), ("CXRVIEWER_CACHE_DIR", "ucache"), ("CXRVIEWER_LOG_DIR", "log")):
        (scratch / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(scratch / sub)
    return env


def _story(log: str) -> str:
    """A node's log without tracebacks' code lines: what torchrun and the run said, for a failure message."""
    keep = [ln for ln in log.splitlines() if ln.strip() and not ln.startswith(("  ", "[rank")) and "^^^" not in ln]
    return "\n".join(keep[-80:])


def _announced(logs: list[Path]) -> dict[int, list[tuple[int, int]]]:
    """global rank -> [(node the log belongs to, pid)] from every worker's start line."""
    seen: dict[int, list[tuple[int, int]]] = {}
    for node, log in enumerate(logs):
        for m in ANNOUNCE.finditer(log.read_text(errors="replace")):
            assert (m[2], m[4], m[5], m[6]) == ("2", "2", "0", "1"), m[0]  # world 2 over 2 nodes of 1
            seen.setdefault(int(m[1]), []).append((node, int(m[7])))
    return seen


def test_two_nodes_rank0_writes_everything_once_and_a_restart_resumes(tmp_path):
    _need_torchrun()
    share = tmp_path / "share"
    data = make_dataset(share / "data", n_patients=16, size=32, seed=8, layout="csv")
    out = share / "run"
    port, job = _free_port(), f"cxr-test-{uuid.uuid4().hex[:8]}"
    train = ["-m", "training", "--data", str(data), "--out", str(out), "--epochs", "2", "--image-size", "32",
             "--batch-size", "8", "--bootstrap", "20", "--split", "0.5,0.25,0.25", "--name", "two-node-test",
             "--device", "cpu"]
    nodes, logs, procs = [tmp_path / "node0", tmp_path / "node1"], [], []
    t0 = time.monotonic()
    for node in nodes:
        node.mkdir()
        logs.append(node / "torchrun.log")
        # The README's two commands: the same on both nodes (c10d rendezvous on node 0's address).
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
               "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", job,
               "--max-restarts", "3", *train]
        with open(logs[-1], "wb") as fh:
            procs.append(subprocess.Popen(cmd, cwd=node, env=_node_env(node), stdout=fh, stderr=subprocess.STDOUT))
    try:
        # Kill rank 1's worker (the process that never writes) once the first checkpoint exists.
        while not (out / "checkpoint.pt").exists() and all(p.poll() is None for p in procs):
            assert time.monotonic() - t0 < 240, "no checkpoint after 240 s"
            time.sleep(0.01)
        first = _announced(logs)
        assert set(first) == {0, 1}, [lg.read_text()[-2000:] for lg in logs]
        os.kill(first[1][0][1], signal.SIGKILL)
        rcs = [p.wait(timeout=max(30.0, 300 - (time.monotonic() - t0))) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    seconds = time.monotonic() - t0
    text = [lg.read_text(errors="replace") for lg in logs]
    assert rcs == [0, 0], "\n=====\n".join(_story(t) for t in text)

    # At least two attempts (torchrun may need more than one round to restart both nodes),
    # each with world size 2; rank 0 on one node, rank 1 on the other.
    seen = _announced(logs)
    assert sorted(seen) == [0, 1] and len(seen[0]) == len(seen[1]) >= 2, seen
    for r in (0, 1):
        assert len({node for node, _ in seen[r]}) == 1, f"rank {r} moved between nodes: {seen}"
    writer_node = seen[0][0][0]
    rank0_pids = {pid for _, pid in seen[0]}
    log0 = text[writer_node]
    assert f"torchrun job {job}: continuing its checkpoint in {out}" in log0
    assert re.search(r"resumed after epoch [12] ", log0), log0[-3000:]
    digests = dict(re.findall(r"rank (\d)/2 final weights sha256 ([0-9a-f]{64})", "\n".join(text)))
    assert set(digests) == {"0", "1"} and digests["0"] == digests["1"]

    # Every output exists exactly once, in the shared --out, none in either node's own folders.
    for name in OUTPUTS:
        found = sorted(p.relative_to(out) for p in tmp_path.rglob(name) if not p.is_relative_to(share / "data"))
        want = {"card.json": ["model/card.json"], "model.safetensors": ["model/model.safetensors"],
                "model.onnx": ["model/model.onnx"], "ood.npz": ["model/ood.npz"],
                "report.md": ["model/report.md", "report.md"], "roc.png": ["model/roc.png", "roc.png"]}
        assert [str(p) for p in found] == want.get(name, [name]), (name, found)
    # TensorBoard names its event files after the writing process: only rank 0's pids.
    events = list(tmp_path.rglob("events.out.tfevents.*"))
    assert events and all(e.parent == out / "tb" for e in events), events
    assert {int(e.name.rsplit(".", 2)[1]) for e in events} <= rank0_pids, (events, seen)

    import torch

    ck = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert ck["epoch"] == 1 and [h["epoch"] for h in ck["history"]] == [1, 2]
    assert ck["elastic_run_id"] == job
    assert ck["written_by"]["rank"] == 0 and ck["written_by"]["pid"] in rank0_pids
    assert ck["written_by"]["world_size"] == 2 and ck["written_by"]["nodes"] == 2
    res = json.loads((out / "metrics.json").read_text())
    assert res["world_size"] == 2 and res["nodes"] == 2 and res["epochs_run"] == 2
    assert res["written_by"] == {"rank": 0, "node": 0, "local_rank": 0, "world_size": 2, "nodes": 2}

    # The model loads as the viewer loads it: safetensors checksum and the ONNX file's hash.
    from cxrviewer.ml.onnx_model import card_onnx
    from cxrviewer.ml.registry import load_model_dir

    model, card = load_model_dir(out / "model")
    assert card["name"] == "two-node-test" and card["training"]["processes"] == 2
    assert card["training"]["written_by"]["rank"] == 0 and card["training"]["nodes"] == 2
    assert card_onnx(out / "model", card) == out / "model" / "model.onnx"
    x = torch.zeros(1, 3, 32, 32)
    with torch.inference_mode():
        assert model(x).shape == (1, 2)
    print(f"two-node run with a restart: {seconds:.1f} s")


def test_nodes_with_different_commands_stop_before_training(tmp_path):
    """A node started with another seed would train on another plan: every rank stops with the
    reason right after joining (static ranks this time), and nothing is written."""
    _need_torchrun()
    share = tmp_path / "share"
    data = make_dataset(share / "data", n_patients=8, size=32, seed=3)
    out = share / "run"
    port, job = _free_port(), f"cxr-test-{uuid.uuid4().hex[:8]}"
    procs, logs = [], []
    for rank, seed in ((0, "0"), (1, "1")):
        node = tmp_path / f"node{rank}"
        node.mkdir()
        logs.append(node / "torchrun.log")
        # The README's other form: static node ranks, rank 0's node as the master.
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
               "--node-rank", str(rank), "--master-addr", "127.0.0.1", "--master-port", str(port), "--rdzv-id", job,
               "-m", "training", "--data", str(data), "--out", str(out), "--arch", "tiny", "--device", "cpu",
               "--epochs", "1", "--image-size", "32", "--seed", seed, "--no-tensorboard"]
        with open(logs[-1], "wb") as fh:
            procs.append(subprocess.Popen(cmd, cwd=node, env=_node_env(node), stdout=fh, stderr=subprocess.STDOUT))
    try:
        rcs = [p.wait(timeout=180) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    text = [lg.read_text(errors="replace") for lg in logs]
    assert all(rc != 0 for rc in rcs), rcs
    for t in text:
        assert "the split plan or the training arguments differs between the processes" in t, t[-3000:]
    assert not out.exists() or not any(out.iterdir()), list(out.rglob("*"))
    assert {m[1] for t in text for m in ANNOUNCE.finditer(t)} == {"0", "1"}  # both joined: world size 2


def _dist(monkeypatch, **env: int):
    from training.distributed import Dist

    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, str(v))
    return Dist()


@pytest.mark.parametrize("world", [1, 2, 3])
def test_each_epoch_shards_are_disjoint_and_equal(monkeypatch, world):
    """Every rank builds its own sampler (as on separate nodes); together they deal out one
    permutation per epoch: disjoint, equal shards, nothing repeated, fewer than ``world`` left out."""
    pytest.importorskip("torch", reason="training needs the train extra (torch)")
    from training.distributed import shard_sampler

    n = 41
    dropped = set()
    for epoch in range(3):
        shards = []
        for rank in range(world):
            s = shard_sampler(list(range(n)), _dist(monkeypatch, WORLD_SIZE=world, RANK=rank), seed=5)
            s.set_epoch(epoch)
            shards.append(list(s))
        assert {len(sh) for sh in shards} == {n // world}
        union = [i for sh in shards for i in sh]
        assert len(set(union)) == len(union) == n - n % world  # no image twice, no padding
        dropped |= set(range(n)) - set(union)
    if world == 3:
        assert len(dropped) > 2  # a different image is left out each epoch, not always the same ones


def test_process_group_environment(monkeypatch):
    from cxrviewer.core.errors import CxrError

    d = _dist(monkeypatch)
    assert (d.world, d.rank, d.enabled, d.nodes) == (1, 0, False, 1)
    # node 1 of 2, second GPU there: global rank 3 (a local rank 0 exists on each node; only rank 0 writes)
    d = _dist(monkeypatch, WORLD_SIZE=4, RANK=3, LOCAL_RANK=1, LOCAL_WORLD_SIZE=2, GROUP_RANK=1, GROUP_WORLD_SIZE=2)
    assert d.writer() == {"rank": 3, "node": 1, "local_rank": 1, "world_size": 4, "nodes": 2}
    assert _dist(monkeypatch, WORLD_SIZE=4, RANK=0, LOCAL_WORLD_SIZE=2).nodes == 2  # without GROUP_WORLD_SIZE
    with pytest.raises(CxrError, match="RANK=2 WORLD_SIZE=2"):
        _dist(monkeypatch, WORLD_SIZE=2, RANK=2)
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(CxrError, match="WORLD_SIZE='two' is not an integer"):
        from training.distributed import Dist

        Dist()
    pytest.importorskip("torch", reason="training needs the train extra (torch)")
    import torch

    d = _dist(monkeypatch, WORLD_SIZE=2, RANK=1)
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    with pytest.raises(CxrError, match="MASTER_ADDR and MASTER_PORT not set: start the run with torchrun"):
        d.init(torch.device("cpu"))


def test_plan_digest_sees_the_plan_and_the_recipe_not_per_node_settings():
    import argparse

    from training.data import Sample
    from training.distributed import plan_digest

    splits = {"train": [Sample("a.png", 0, "p1"), Sample("b.png", 1, "p2")], "val": [Sample("c.png", 1, "p3")]}
    args = argparse.Namespace(seed=0, lr=1e-4, epochs=3, workers=4, threads=0, device="cuda")
    ref = plan_digest(splits, args)
    assert plan_digest(splits, argparse.Namespace(**{**vars(args), "workers": 8, "device": "cuda:1"})) == ref
    assert plan_digest(splits, argparse.Namespace(**{**vars(args), "seed": 1})) != ref
    moved = {"train": splits["train"][:1], "val": splits["val"] + splits["train"][1:]}
    assert plan_digest(moved, args) != ref


def test_only_the_same_torchrun_job_continues_a_checkpoint(tmp_path, monkeypatch):
    """The rerun of a job's command (torchrun restart, requeue) continues its checkpoint; a
    launch without a job id, another job, or a checkpoint without one never does."""
    pytest.importorskip("torch", reason="training needs the train extra (torch)")
    from training import checkpoint as C
    from training.distributed import same_job, stamp

    run, folds = tmp_path / "run", tmp_path / "cv"
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job-7")
    assert same_job(run) is None  # nothing there yet
    C.save(run / "checkpoint.pt", {"model": {}, "epoch": 0, **stamp(_dist(monkeypatch))})
    C.save(folds / "fold2" / "checkpoint.pt", {"model": {}, "epoch": 0, **stamp(_dist(monkeypatch))})  # --folds
    assert same_job(run) == same_job(folds) == "job-7"
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job-8")
    assert same_job(run) is None
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")  # torchrun's placeholder without --rdzv-id
    C.save(run / "checkpoint.pt", {"model": {}, "epoch": 0, **stamp(_dist(monkeypatch))})
    assert same_job(run) is None
    monkeypatch.delenv("TORCHELASTIC_RUN_ID")
    assert same_job(run) is None
