"""``cxrviewer infer PATH --out results.csv``: run the model on every image under PATH.

Scans PATH like the viewer (folder, file or DICOMDIR), predicts each image (frame 0 of
multi-frame instances), writes one row per image with the columns
``path, sop_instance_uid, probability_abnormal, label, model, model_version, status, reason``
(a JSON document ``{"model", "model_version", "results": [rows], "errors": [...]}`` when the
output name ends in ``.json``), and optionally a Grad-CAM overlay PNG per image. Unreadable
files are listed with their reasons on stderr and in the JSON; they do not stop the run.

``status`` is the out-of-distribution gate's outcome (:mod:`cxrviewer.ml.ood`): ``ok`` or
``out_of_distribution``; ``reason`` says why an image was refused (or, for ``ok``, the caution
its score carries). A refused image gets an empty ``probability_abnormal`` and ``label``
(and no heatmap) unless ``--score-all``. Probabilities are calibrated when the model card
has a temperature.
"""

from __future__ import annotations

import argparse

#: CSV columns (a contract: add at the end, rename nothing)
COLUMNS = [
    "path", "sop_instance_uid", "probability_abnormal", "label", "model", "model_version",
    "status", "reason",
]


def add_parser(sub) -> None:
    p = sub.add_parser(
        "infer", help="predict Normal/Abnormal for every image under PATH (CSV/JSON)"
    )
    p.add_argument("path", help="folder, file or DICOMDIR")
    p.add_argument("--out", required=True, help="results file: .csv, or .json for JSON")
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
        "int8 only where its record qualifies (test AUC within 0.005, CAM Pearson >= 0.99), else fp32",
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


def run(args: argparse.Namespace) -> int:
    import csv
    import io
    import json
    import sys
    from pathlib import Path

    from cxrviewer import atomic
    from cxrviewer.cli._common import TtyProgress, fail, resolve_model
    from cxrviewer.core.dicom_io import load_image
    from cxrviewer.core.display import render
    from cxrviewer.core.errors import CxrError, ScanPathError
    from cxrviewer.core.study_index import scan
    from cxrviewer.ml.inference import Engine

    if args.batch_size < 1:
        return fail("--batch-size must be at least 1")
    try:
        result = scan(args.path, progress=TtyProgress("scanning"))
    except ScanPathError as e:
        return fail(str(e))
    errors: list[dict[str, str]] = [e.to_dict() for e in result.errors]
    instances = result.instances()
    try:
        engine = Engine.load(resolve_model(args.model), backend=args.backend, device=args.device,
                             precision=args.precision)
    except CxrError as e:
        return fail(str(e), 1)
    cam_dir = Path(args.cam_dir) if args.cam_dir else None

    rows: list[dict] = []
    refused = 0
    progress = TtyProgress("inferring")
    done = 0
    for start in range(0, len(instances), args.batch_size):
        chunk = instances[start : start + args.batch_size]
        imgs = []
        for inst in chunk:
            try:
                imgs.append((inst, load_image(inst.path)))
            except CxrError as e:
                errors.append({"path": inst.path, "reason": e.reason})
            except (
                OSError,
                ValueError,
                MemoryError,
            ) as e:  # a decoder's own error: still one bad file
                errors.append({"path": inst.path, "reason": f"{type(e).__name__}: {e}"})
        if imgs:
            preds = engine.predict_batch([im for _, im in imgs], cam=cam_dir is not None)
            for (inst, img), p in zip(imgs, preds, strict=True):
                uid = img.header.sop_instance_uid or inst.sop_instance_uid
                shown = p.scored or args.score_all
                refused += not p.scored
                rows.append(
                    {
                        "path": inst.path,
                        "sop_instance_uid": uid,
                        "probability_abnormal": round(p.probability_abnormal, 6) if shown else "",
                        "label": p.label if shown else "",
                        "model": p.model_name,
                        "model_version": p.model_version,
                        "status": p.gate.status,
                        "reason": p.gate.reason if not p.scored else p.gate.caution,
                    }
                )
                if cam_dir is not None and p.cam is not None and shown:
                    try:
                        atomic.write_bytes(
                            cam_dir / _cam_name(inst.path, uid), overlay_png(render(img), p.cam)
                        )
                    except CxrError as e:
                        return fail(str(e), 1)
        done += len(chunk)
        progress(done, len(instances))

    out = Path(args.out)
    try:
        if out.suffix.lower() == ".json":
            doc = {
                "model": engine.name,
                "model_version": engine.version,
                "results": rows,
                "errors": errors,
            }
            atomic.write_text(out, json.dumps(doc, indent=2) + "\n")
        else:
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
            atomic.write_text(out, buf.getvalue())
    except CxrError as e:
        return fail(str(e), 1)

    for e in errors:
        print(f"unreadable: {e['path']}: {e['reason']}", file=sys.stderr)
    print(
        f"{len(rows)} images -> {out} (model {engine.name} {engine.version}, {engine.backend} on {engine.device}); "
        f"{refused} out of distribution ({'scored anyway' if args.score_all else 'not scored'}); "
        f"{len(errors)} unreadable",
        file=sys.stderr,
    )
    if not rows:
        return fail(f"no readable images under {args.path}", 1)
    return 0
