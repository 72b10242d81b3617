"""``cxrviewer infer PATH --out RESULTS``: score every image under PATH, streaming and resumable.

Scans PATH like the viewer (folder, file or DICOMDIR), then decodes and preprocesses in
``--workers`` processes while the parent runs batched inference, and appends the rows as
they come (:mod:`cxrviewer.ml.archive`, :mod:`cxrviewer.ml.archive_local`). One row per
image (frame 0 of multi-frame instances) with the columns
``path, sop_instance_uid, probability_abnormal, label, model, model_version, status, reason``
then ``content_key, file_size, mtime_ns, precision`` (``.csv``; ``.parquet`` the same, plus
``cam_summary`` with ``--cam-summary``; ``.json`` a document
``{"model", "model_version", "results": [rows], "errors": [...]}`` written at the end).
Unreadable files get ``status=error`` rows with the reason (in JSON: ``errors``) and are
listed on stderr; they never stop the run. Run again with the same ``--out`` after an
interruption (Ctrl+C, kill -9, power loss): done images are skipped, the result has exactly
one row per image.

``status`` is otherwise the out-of-distribution gate's outcome (:mod:`cxrviewer.ml.ood`):
``ok`` or ``out_of_distribution``; ``reason`` says why an image was refused (or, for ``ok``,
the caution its score carries). A refused image gets an empty ``probability_abnormal`` and
``label`` (and no heatmap) unless ``--score-all``. Probabilities are calibrated when the
model card has a temperature.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any


def __getattr__(name: str) -> Any:
    # COLUMNS (the CSV contract) lives with the archive stages; imported lazily so that
    # `cxrviewer --help` does not load numpy for it
    if name == "COLUMNS":
        from cxrviewer.ml.archive import COLUMNS

        return COLUMNS
    raise AttributeError(name)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "infer", help="predict Normal/Abnormal for every image under PATH (CSV/JSON)"
    )
    p.add_argument("path", help="folder, file or DICOMDIR")
    p.add_argument(
        "--out",
        required=True,
        help="results file: .csv, .parquet or .json; run again with the same --out to resume",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="decode/preprocess processes (default: the cores; in this process when there are at most "
        "two batches; 0 = in this process)",
    )
    p.add_argument(
        "--engine",
        default="local",
        choices=["local", "ray"],
        help="local: decode processes on this machine (default); ray: the same stages as a Ray "
        "Data pipeline (the cluster extra: pip install 'cxrviewer[cluster]')",
    )
    p.add_argument(
        "--address",
        default=None,
        help="--engine ray: the cluster to join ('auto', 'HOST:PORT' or 'ray://HOST:10001'); "
        "default: a private local Ray with --workers CPUs",
    )
    p.add_argument(
        "--cam-summary",
        action="store_true",
        help=".parquet only: add an 8x8 Grad-CAM summary (64 floats) per scored image",
    )
    p.add_argument(
        "--model",
        default=None,
        help="registry model name or model directory (default: the active model)",
    )
    p.add_argument(
        "--cam-dir",
        default=None,
        help="also write a Grad-CAM overlay PNG per image into this folder",
    )
    p.add_argument(
        "--decode-timeout",
        type=float,
        default=None,
        metavar="S",
        help="seconds one file may take to decode before its worker is replaced and the file becomes a "
        "status=error row saying it timed out (default 120; 0 = no deadline). Decoding in this process "
        "(--workers 0, or a run of at most two batches without --decode-timeout) has no deadline",
    )
    p.add_argument("--batch-size", type=int, default=8, help="images per forward pass (default 8)")
    p.add_argument(
        "--score-all",
        action="store_true",
        help="also fill probability and label for images the out-of-distribution gate refuses "
        "(their status and reason still say so)",
    )
    p.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "onnxruntime", "torch"],
        help="inference backend",
    )
    p.add_argument(
        "--device", default="auto", help="auto (CUDA, else MPS, else CPU), cpu, cuda, mps"
    )
    p.add_argument(
        "--precision", default="auto", choices=["auto", "fp32", "int8"],
        help="int8: the model's quantized ONNX graph (`cxrviewer models quantize`); auto (default): "
        "int8 only where its record qualifies (test AUC within 0.005, CAM Pearson >= 0.99) and was measured on "
        "a CPU of this CPU's INT8 kernel class, else fp32",
    )
    p.set_defaults(func=run)


def overlay_png(display_u8, cam, alpha: float = 0.4) -> bytes:
    """The display image (gray uint8, or RGB for colour files) with the map colour-mapped (jet, as the seed) on top,
    encoded as PNG."""
    import cv2
    import numpy as np

    disp = np.ascontiguousarray(display_u8)
    # colour PNG/JPEG radiographs come back from the display pipeline as RGB
    gray = cv2.cvtColor(disp, cv2.COLOR_RGB2BGR if disp.ndim == 3 else cv2.COLOR_GRAY2BGR)
    heat = cv2.applyColorMap(np.clip(cam * 255.0 + 0.5, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
    # weight the heat by the map itself so cold regions keep the radiograph readable
    a = (alpha * np.clip(cam, 0.0, 1.0))[..., None]
    out = (gray.astype(np.float32) * (1.0 - a) + heat.astype(np.float32) * a).astype(np.uint8)
    ok, buf = cv2.imencode(".png", out)
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def _cam_name(path: str, uid: str) -> str:
    from pathlib import Path

    from cxrviewer.core.hashing import sha256_parts

    tag = sha256_parts(path)[:10]
    return f"{Path(path).stem}_{tag}_cam.png"


class Progress:
    """Images/s and ETA on stderr: a line redrawn at most twice a second on a terminal;
    nothing while running otherwise (logs stay clean), the summary line comes at the end."""

    def __init__(self, enabled: bool | None = None, interval: float = 0.5) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.interval = interval
        self._last = 0.0

    def __call__(self, done: int, total: int, st: Any) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._last < self.interval and done < total):
            return
        self._last = now
        rate = st.images_per_s
        left = total - done
        eta = f"{left / rate:.0f} s" if rate > 0 else "?"
        skipped = f", {st.skipped} already done" if st.skipped else ""
        sys.stderr.write(
            f"\rinferring {done}/{total} ({100 * done / max(total, 1):.1f} %{skipped}) "
            f"{rate:.1f} images/s, ETA {eta}   "
        )
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from cxrviewer import atomic
    from cxrviewer.cli._common import TtyProgress, fail, resolve_model
    from cxrviewer.core.errors import CxrError, ScanPathError
    from cxrviewer.core.study_index import scan
    from cxrviewer.ml.archive import ERROR, error_row, finding_columns, open_sink
    from cxrviewer.ml.archive_local import DECODE_TIMEOUT_S, default_workers, run_archive
    from cxrviewer.ml.inference import Engine

    if args.batch_size < 1:
        return fail("--batch-size must be at least 1")
    workers = default_workers() if args.workers is None else args.workers
    if workers < 0:
        return fail("--workers must be 0 or more")
    decode_timeout = DECODE_TIMEOUT_S if args.decode_timeout is None else args.decode_timeout
    if decode_timeout < 0:
        return fail("--decode-timeout must be 0 (no deadline) or more")
    out = Path(args.out)
    if args.cam_summary and out.suffix.lower() not in (".parquet", ".pq"):
        return fail("--cam-summary needs a .parquet output")
    runner, extra = run_archive, {"workers": workers, "decode_timeout": decode_timeout}
    if args.engine == "ray":
        # the cluster extra: imported only here, never by a local run
        from cxrviewer.ml.extras import CLUSTER_EXTRA_HINT, ray_available

        if not ray_available():
            return fail(f"--engine ray needs Ray: {CLUSTER_EXTRA_HINT}")
        from cxrviewer.ml.archive_ray import run_archive_ray

        runner = run_archive_ray
        extra = {"address": args.address, "num_cpus": workers or None, "device": args.device,
                 "decode_timeout": decode_timeout}
    elif args.address:
        return fail("--address needs --engine ray")
    try:
        result = scan(args.path, progress=TtyProgress("scanning"))
    except ScanPathError as e:
        return fail(str(e))
    paths = [inst.path for inst in result.instances()]
    try:
        engine = Engine.load(resolve_model(args.model), backend=args.backend, device=args.device,
                             precision=args.precision)
        sink = open_sink(out, args.cam_summary, model=engine.name, model_version=engine.version,
                         extra=finding_columns(engine.card))
    except CxrError as e:
        return fail(str(e), 1)
    cam_dir = Path(args.cam_dir) if args.cam_dir else None

    def ours(path: str) -> bool:
        # our own outputs inside PATH (results, parts, journal, overlays) are not images
        if sink.owns(path):
            return True
        return cam_dir is not None and os.path.abspath(path).startswith(os.path.abspath(cam_dir) + os.sep)

    paths = [p for p in paths if not ours(p)]
    scan_failed = [e for e in result.errors if not ours(e.path)]
    if (args.workers is None and args.decode_timeout is None and "workers" in extra
            and len(paths) <= 2 * args.batch_size):
        # a couple of batches: starting decode processes (~1 s each) would cost more than
        # they save, so the default decodes in this process (an explicit --decode-timeout
        # keeps a worker: only a worker can be replaced when a decoder hangs)
        workers = extra["workers"] = 0

    def write_cams(rows: list[dict]) -> None:
        from cxrviewer.core.dicom_io import load_image
        from cxrviewer.core.display import render

        for r in rows:
            if "_map" not in r:
                continue
            img = load_image(r["path"])  # decoded again: only --cam-dir pays for full-res maps
            full = np.clip(r["_mapping"].to_original(r["_map"]), 0.0, 1.0)
            atomic.write_bytes(
                cam_dir / _cam_name(r["path"], r["sop_instance_uid"]), overlay_png(render(img), full)
            )

    done_rows = sink.done_rows()
    # files the scan could not read are rows too (written once: a rerun keeps the old row)
    scan_errors = [e for e in scan_failed
                   if (done_rows.get(e.path) or {}).get("reason") != " ".join(e.reason.split())]
    try:
        sink.append([error_row(e.path, e.reason, engine) for e in scan_errors])
        st = runner(
            engine, paths, sink, batch_size=args.batch_size, **extra,
            score_all=args.score_all, cam_summary=args.cam_summary, keep_maps=cam_dir is not None,
            progress=Progress(), on_rows=write_cams if cam_dir is not None else None,
        )
        keep = set(paths) | {e.path for e in scan_failed}
        rows = sink.finalize(keep)
    except KeyboardInterrupt:
        sink.close()
        print(f"\ninterrupted: the rows so far are kept ({sink.out}); run the same command "
              "again to resume", file=sys.stderr)
        return 130
    except CxrError as e:
        sink.close()
        return fail(str(e), 1)

    errors = [r for r in rows if r["status"] == ERROR]
    scored = len(rows) - len(errors)
    refused = sum(r["status"] not in (ERROR, "ok") for r in rows)
    for e in errors:
        print(f"unreadable: {e['path']}: {e['reason']}", file=sys.stderr)
    print(
        f"{scored} images -> {out} (model {engine.name} {engine.version}, {engine.backend} on {engine.device}); "
        f"{refused} out of distribution ({'scored anyway' if args.score_all else 'not scored'}); "
        f"{len(errors)} unreadable; this run: {st.total - st.skipped} of {st.total} images in "
        f"{st.elapsed_s:.1f} s ({st.images_per_s:.1f} images/s, "
        f"{'Ray' if args.engine == 'ray' else f'{workers} workers'}"
        f"{f', {st.worker_restarts} restarted' if st.worker_restarts else ''}"
        f"{f', {st.timeouts} timed out' if getattr(st, 'timeouts', 0) else ''}"
        f"{f', {st.skipped} already done' if st.skipped else ''})",
        file=sys.stderr,
    )
    if not scored:
        return fail(f"no readable images under {args.path}", 1)
    return 0
