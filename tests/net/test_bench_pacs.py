"""``cxrviewer bench pacs --json`` on a small study: the contract keys, both tools really ran."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def test_bench_pacs_small(orthanc, tool):
    from cxrviewer.bench.pacs import dcmtk_getscu

    r = subprocess.run([sys.executable, "-m", "cxrviewer", "bench", "pacs", "--json", "--instances", "6", "--rows", "128",
                        "--cols", "128", "--repeats", "1"], capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["instances"] == 6 and out["images_per_s"] > 0
    tool(dcmtk_getscu(), "dcmtk's getscu (the peer this bench compares with)", "dcmtk")
    assert out["getscu_images_per_s"] > 0
    assert out["ratio"] == pytest.approx(out["images_per_s"] / out["getscu_images_per_s"], rel=0.05)
    from pathlib import Path

    assert not Path(out["getscu"]).read_bytes()[:2] == b"#!"  # dcmtk's binary, not pynetdicom's script
    dq = out["dcmqrscp"]  # the same study from dcmqrscp: our get/move vs dcmtk's getscu/movescu, one run
    assert dq["instances"] == 6
    for ours, theirs, ratio in (("ours_get", "getscu", "get_ratio"), ("ours_move", "movescu", "move_ratio")):
        assert dq[f"{ours}_images_per_s"] > 0 and dq[f"{theirs}_images_per_s"] > 0
        assert dq[ratio] == pytest.approx(dq[f"{ours}_images_per_s"] / dq[f"{theirs}_images_per_s"], rel=0.05)
        assert not Path(dq["tools"][theirs]).read_bytes()[:2] == b"#!"
