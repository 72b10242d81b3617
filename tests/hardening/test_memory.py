"""Big folders stay bounded: ``cxrviewer bench memory`` reports peak RSS of a scan, and the
index keeps header facts only (no pixel data), so memory grows by far less than an image per
file."""

from __future__ import annotations

import argparse

from cxrviewer.bench import memory


def test_bench_memory_small(tmp_path):
    parser = argparse.ArgumentParser()
    memory.add_arguments(parser)
    out = memory.run(parser.parse_args(["--files", "400", "--size", "64", "--dir", str(tmp_path)]))
    assert {"files", "peak_rss_mb", "files_per_s", "baseline_rss_mb", "rss_growth_per_file_bytes"} <= set(out)
    assert out["files"] == 400 and out["images"] == 400 and out["errors"] == 0
    assert out["files_tenth"] == 40
    assert 0 < out["baseline_rss_mb"] <= out["peak_rss_mb"] < out["baseline_rss_mb"] + 100
    # header facts only: far below the 8 KiB of pixels each file holds
    assert out["rss_growth_per_file_bytes"] < out["image_bytes_per_file"]
    if out["index_rss_bytes_per_file"] is not None:  # Linux: what the finished index holds
        assert out["index_rss_bytes_per_file"] < out["image_bytes_per_file"]


def test_scan_result_holds_no_pixels(tmp_path):
    from cxrviewer.core.study_index import scan
    from cxrviewer.core.synthetic import chest_like, make_dataset, write_dataset

    for k in range(5):
        write_dataset(make_dataset(chest_like(64, 64), instance_number=k), tmp_path / f"{k}.dcm")
    result = scan(tmp_path, workers=0)
    for inst in result.instances():
        for value in vars(inst).values():
            assert not hasattr(value, "nbytes") and not isinstance(value, (bytes, bytearray))
