"""``cxrviewer bench scan`` on a small folder: the JSON contract and the speed claim's shape."""

from __future__ import annotations

import argparse

from cxrviewer.bench import scan as bench_scan


def test_bench_scan_small(tmp_path, rg1_uncr, rg1_j2kr):
    parser = argparse.ArgumentParser()
    bench_scan.add_arguments(parser)
    args = parser.parse_args(["--files", "6", "--dir", str(tmp_path), "--naive-sample", "1"])
    out = bench_scan.run(args)
    for key in ("files", "files_per_s", "naive_files_per_s", "speedup_vs_naive", "first_study_s", "total_s",
                "naive_sample_files"):
        assert key in out
    assert out["files"] == 6 and out["images"] == 6 and out["errors"] == 0
    assert out["encodings"] == {"1.2.840.10008.1.2.1": 3, "1.2.840.10008.1.2.4.90": 3}
    assert out["naive_sample_files"] == 2 and out["naive_extrapolated"]
    # headers only vs decoding 7 MB radiographs: even 6 files show it
    assert out["speedup_vs_naive"] > 5
    assert out["first_study_s"] <= out["total_s"]
    assert len(list(tmp_path.rglob("*.dcm"))) == 6  # --dir is kept
