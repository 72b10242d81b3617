"""`cxrviewer bench archive` on a tiny archive: every local key is there and plausible."""

from __future__ import annotations

import json

from cxrviewer.cli import main


def test_bench_archive_local_keys(resnet_dir, capsys):
    rc = main(["bench", "archive", "--n", "12", "--batch-size", "2", "--model", str(resnet_dir),
               "--only", "local", "--json"])
    assert rc == 0
    r = json.loads(capsys.readouterr().out)
    assert r["n"] == 12 and r["source"]
    assert r["images_per_s_1"] > 0 and r["images_per_s_2"] > 0
    stages = r["stage_ms_per_image"]
    for k in ("header_scan", "decode", "content_key", "preprocess", "inference"):
        assert stages[k] > 0, k
    assert 0 < r["resume_noop_s"] < 30  # a complete output: every file skipped after a stat
    assert r["resume_rows_exact"] is True  # the killed-and-resumed run has every image once
    if r["resume_overhead_s"] is not None:  # None only when the run ended before the kill
        assert 0.0 < r["killed_at_fraction"] < 1.0
        assert r["resume_run_s"] > 0 and r["fresh_remaining_s"] > 0 and r["peak_rss_mb"] > 50
    assert "images_per_s_ray" not in r and "int8_speedup" not in r  # --only local


def test_bench_archive_merge_keys(resnet_dir, capsys):
    """The Parquet merge figures: the streamed and the in-memory merge write the same rows
    (2 % of the paths twice: the later row wins), each with its peak RSS."""
    import pytest

    pytest.importorskip("pyarrow", reason="pyarrow (the parquet extra) is not installed")
    rc = main(["bench", "archive", "--n", "2", "--batch-size", "40", "--model", str(resnet_dir),
               "--only", "merge", "--merge-rows", "400", "--json"])
    assert rc == 0
    r = json.loads(capsys.readouterr().out)
    assert r["merge_rows"] == 400 and r["merge_parts"] == 11  # 408 rows, 40 a part
    assert r["merge_same_output"] is True
    assert r["merge_peak_rss_mb"] > 20 and r["merge_inmemory_peak_rss_mb"] > 20 and r["merge_s"] > 0
    assert "images_per_s_1" not in r and "int8_speedup" not in r  # --only merge
