"""Peak memory of scanning a big folder of small synthetic DICOM files.

The scan keeps header facts only (no pixel data), so memory should grow by a few hundred
bytes per file, not by the images. Each scan runs in a fresh child process so its peak RSS
(``getrusage(RUSAGE_SELF).ru_maxrss``) is the scan's own: the same child scanning an empty
folder gives the baseline (interpreter + pydicom), and a scan of a tenth of the folder shows
how the peak grows with the number of files.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--files", type=int, default=10_000, help="synthetic files (default 10,000)")
    p.add_argument("--size", type=int, default=64, help="rows = columns of each image (default 64)")
    p.add_argument("--dir", default=None, help="folder to build/scan (default: a temp dir, removed after)")
    p.add_argument("--workers", type=int, default=None, help="scan workers (default: the scan's own choice)")


def build_folder(root: Path, n: int, size: int = 64) -> None:
    """``n`` small CR files over 50 patients, 2 studies each (one template, new UIDs)."""
    from pydicom.uid import generate_uid

    from cxrviewer.core.synthetic import chest_like, make_dataset

    ds = make_dataset(chest_like(size, size, bits=12), bits_stored=12)
    studies = {}
    for k in range(n):
        pi, si = k % 50, (k // 50) % 2
        key = (pi, si)
        if key not in studies:
            studies[key] = (generate_uid(), generate_uid())
        ds.PatientID = f"MEM{pi:03d}"
        ds.PatientName = f"Memory^Patient{pi:03d}"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = studies[key]
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = k + 1
        d = root / f"P{pi:03d}"
        d.mkdir(parents=True, exist_ok=True)
        ds.save_as(d / f"IM{k:06d}.dcm")


def _peak_rss_bytes() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # macOS: bytes; Linux: KiB


def _current_rss_bytes() -> int | None:
    """Resident set size now (Linux /proc; None elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _child(folder: str, workers: int | None) -> dict:
    """Runs in a fresh interpreter: scan ``folder`` and report its own peak RSS, and how much
    resident memory the finished index holds (RSS after minus before, result still alive)."""
    import gc

    from cxrviewer.core.study_index import iter_files, read_record, scan

    first = next(iter_files(folder), None)
    if first is not None:
        read_record(first)  # warm-up: pydicom and its dictionaries load lazily on first read
    gc.collect()
    before = _current_rss_bytes()
    t0 = time.perf_counter()
    result = scan(folder, workers=workers)
    elapsed = time.perf_counter() - t0
    gc.collect()
    after = _current_rss_bytes()
    held = None if before is None or after is None else after - before
    out = {"files": result.files_seen, "images": len(result.instances()), "errors": len(result.errors),
           "scan_s": elapsed, "peak_rss_bytes": _peak_rss_bytes(), "index_rss_bytes": held}
    del result
    return out


def _run_child(folder: Path, workers: int | None) -> dict:
    code = ("import json,sys; from cxrviewer.bench.memory import _child; "
            f"print(json.dumps(_child({str(folder)!r}, {workers!r})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(args: argparse.Namespace) -> dict:
    tmp = None
    if args.dir:
        root = Path(args.dir)
        root.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.mkdtemp(prefix="cxrviewer-bench-memory-")
        root = Path(tmp)
    try:
        full, tenth, empty = root / "full", root / "tenth", root / "empty"
        t0 = time.perf_counter()
        for d, n in ((full, args.files), (tenth, max(1, args.files // 10))):
            if not d.is_dir() or not any(d.iterdir()):
                build_folder(d, n, args.size)
        empty.mkdir(exist_ok=True)
        build_s = time.perf_counter() - t0
        base = _run_child(empty, args.workers)
        small = _run_child(tenth, args.workers)
        big = _run_child(full, args.workers)
        mb = 1 / 2**20
        grow = (big["peak_rss_bytes"] - small["peak_rss_bytes"]) / max(1, big["files"] - small["files"])
        return {
            "files": big["files"],
            "images": big["images"],
            "errors": big["errors"],
            "files_per_s": big["files"] / big["scan_s"],
            "scan_s": big["scan_s"],
            "peak_rss_mb": big["peak_rss_bytes"] * mb,
            "baseline_rss_mb": base["peak_rss_bytes"] * mb,
            "peak_rss_mb_tenth": small["peak_rss_bytes"] * mb,
            "files_tenth": small["files"],
            "rss_growth_per_file_bytes": grow,
            "index_rss_bytes_per_file": (big["index_rss_bytes"] / max(1, big["files"])
                                         if big.get("index_rss_bytes") is not None else None),
            "image_bytes_per_file": args.size * args.size * 2,
            "workers": args.workers,
            "build_s": build_s,
            "rss_source": "getrusage ru_maxrss of a child process per scan",
            "cpu_count": os.cpu_count(),
        }
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
