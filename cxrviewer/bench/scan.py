"""Study-index speed against a naive viewer on a folder of full-size radiographs.

The folder (built in a temp dir, or ``--dir``) holds copies of pydicom-data's RG1 chest CR
(1841x1955, 15-bit) in its uncompressed and lossless JPEG 2000 encodings, with new UIDs,
spread over several patients and studies. "Naive" is what a simple viewer does: read every
file with ``pydicom.dcmread`` and decode its ``pixel_array``. Both are measured in the same
run on the same (page-cached) folder.

Decoding JPEG 2000 takes ~0.8 s a file on this class of CPU, so by default the naive reader
is timed on a sample of each encoding and its per-file time extrapolated to the whole folder
by the folder's encoding mix; ``naive_sample_files`` says how many files it really read
(``--naive-all`` reads them all).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

ENCODINGS = ("RG1_UNCR.dcm", "RG1_J2KR.dcm")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--files", type=int, default=200, help="radiographs to build (default 200)")
    p.add_argument("--dir", default=None,
                   help="folder to scan; built there when empty or absent (default: a temp dir, removed after)")
    p.add_argument("--naive-sample", type=int, default=6,
                   help="files of each encoding the naive reader decodes (default 6)")
    p.add_argument("--naive-all", action="store_true", help="decode every file naively (slow)")
    p.add_argument("--workers", type=int, default=None,
                   help="header-reading processes for the timed scan (default: the scan's own choice)")
    p.add_argument("--compare-workers", action="store_true",
                   help="also time the scan in-process and with 2 processes")


def build_folder(root: Path, n: int, patients: int = 8, studies_per_patient: int = 2) -> list[Path]:
    """Write ``n`` copies of RG1 (alternating encodings) with new UIDs under ``root``."""
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    sources = []
    for name in ENCODINGS:
        src = get_testdata_file(name, download=False)
        if not src:
            raise SystemExit(f"pydicom-data's {name} is not installed (pip install pydicom-data)")
        sources.append(pydicom.dcmread(src))
    study_uids = [[generate_uid() for _ in range(studies_per_patient)] for _ in range(patients)]
    series_uids = {s: generate_uid() for row in study_uids for s in row}
    out = []
    for k in range(n):
        ds = sources[k % len(sources)]
        pi = k % patients
        st = study_uids[pi][(k // patients) % studies_per_patient]
        ds.PatientID = f"BENCH{pi:03d}"
        ds.PatientName = f"Bench^Patient{pi:03d}"
        ds.StudyInstanceUID = st
        ds.SeriesInstanceUID = series_uids[st]
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = k + 1
        d = root / f"P{pi:03d}" / f"S{(k // patients) % studies_per_patient}"
        d.mkdir(parents=True, exist_ok=True)
        p = d / f"IM{k:05d}.dcm"
        ds.save_as(p)
        out.append(p)
    return out


def _naive(paths: list[Path]) -> float:
    """Seconds to dcmread + pixel_array every file (what a simple viewer does on open)."""
    import pydicom

    t0 = time.perf_counter()
    for p in paths:
        ds = pydicom.dcmread(p)
        _ = ds.pixel_array
    return time.perf_counter() - t0


def _timed_scan(root: Path, workers: int | None) -> dict:
    from cxrviewer.core.study_index import scan

    t0 = time.perf_counter()
    first: list[float] = []

    def on_instances(partial) -> None:
        if not first and partial.patients:
            first.append(time.perf_counter() - t0)

    result = scan(root, on_instances=on_instances, workers=workers)
    total = time.perf_counter() - t0
    return {"result": result, "total_s": total, "first_study_s": first[0] if first else total}


def run(args: argparse.Namespace) -> dict:
    from cxrviewer.core import study_index

    tmp = None
    if args.dir:
        root = Path(args.dir)
        root.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.mkdtemp(prefix="cxrviewer-bench-scan-")
        root = Path(tmp)
    try:
        t0 = time.perf_counter()
        existing = sorted(root.rglob("*.dcm"))
        built = not existing
        paths = build_folder(root, args.files) if built else existing
        build_s = time.perf_counter() - t0

        _timed_scan(root, 0)  # warm-up: imports and page cache, as a running app has them
        timed = _timed_scan(root, args.workers)
        result = timed["result"]
        n = result.files_seen

        by_ts: dict[str, list[Path]] = {}
        for inst in result.instances():
            by_ts.setdefault(inst.transfer_syntax, []).append(Path(inst.path))
        per_file: dict[str, float] = {}
        if args.naive_all:
            naive_s = _naive(paths)
            sample = len(paths)
        else:
            naive_s = 0.0
            sample = 0
            for ts, files in by_ts.items():
                picked = files[: max(1, args.naive_sample)]
                t = _naive(picked)
                per_file[ts] = t / len(picked)
                naive_s += per_file[ts] * len(files)
                sample += len(picked)
        out = {
            "files": n,
            "images": len(result.instances()),
            "errors": len(result.errors),
            "patients": len(result.patients),
            "studies": sum(len(p.studies) for p in result.patients),
            "files_per_s": n / timed["total_s"],
            "naive_files_per_s": n / naive_s if naive_s > 0 else None,
            "speedup_vs_naive": naive_s / timed["total_s"],
            "first_study_s": timed["first_study_s"],
            "total_s": timed["total_s"],
            "naive_s": naive_s,
            "naive_sample_files": sample,
            "naive_extrapolated": sample < n,
            "encodings": {ts: len(v) for ts, v in by_ts.items()},
            "naive_s_per_file": per_file,
            "workers": args.workers if args.workers is not None else study_index.default_workers(n),
            "parallel_min_files": study_index.PARALLEL_MIN_FILES,
            "chunk": study_index.CHUNK,
            "folder_built": built,
            "build_s": build_s,
            "cpu_count": os.cpu_count(),
        }
        if args.compare_workers:
            for w in (0, 2):
                t = _timed_scan(root, w)
                out[f"total_s_workers_{w}"] = t["total_s"]
                out[f"first_study_s_workers_{w}"] = t["first_study_s"]
        return out
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
