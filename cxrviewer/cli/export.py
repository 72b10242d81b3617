"""``cxrviewer export INPUT --out FILE.png``: the viewer's export renderer, headless.

With ``--no-annotations --native`` and no heatmap the PNG is exactly the display pipeline's
8-bit output (rows x cols grayscale) for the chosen window, so it can be checked against the
DICOM standard. Bad input exits non-zero with a one-line reason and writes nothing.
"""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="render an image (window, annotations, heatmap) to PNG/JPEG")
    p.add_argument("input", help="DICOM, PNG or JPEG file")
    p.add_argument("--out", required=True, help="output file (.png or .jpg)")
    p.add_argument("--window", nargs=2, type=float, metavar=("CENTER", "WIDTH"),
                   help="window center and width in modality units (default: the file's, else Auto)")
    p.add_argument("--heatmap", action="store_true", help="burn in the model's Grad-CAM heatmap (needs the AI engine)")
    p.add_argument("--model", default=None, help="with --heatmap: model directory or registry name (default: the active model)")
    p.add_argument("--colormap", default="jet", choices=("jet", "viridis", "inferno", "magma"), help="heatmap colormap (default jet)")
    p.add_argument("--heatmap-threshold", type=float, default=None, help="map values below this are transparent (default 0.2)")
    p.add_argument("--heatmap-opacity", type=float, default=None, help="heatmap opacity 0-1 (default 0.45)")
    p.add_argument("--anonymize", action="store_true", help="no name, ID, birth date, accession or institution in the text; with --dicom a "
                        "de-identified copy (PS3.15 Table E.1-1)")
    p.add_argument("--no-annotations", action="store_true", help="no corner text")
    p.add_argument("--native", action="store_true",
                   help="one output pixel per image pixel (default: square display pixels, longest side <= --size)")
    p.add_argument("--size", type=int, default=1024, help="longest side without --native (default 1024)")
    p.add_argument("--frame", type=int, default=0, help="frame of a multi-frame image (default 0)")
    p.add_argument("--dicom", choices=("sc", "sr", "gsps"), default=None,
                   help="write a DICOM object into the source's study instead of PNG/JPEG: sc (Secondary "
                        "Capture of the rendering), sr (TID 1500 report: the model's result + --ruler lengths), "
                        "gsps (presentation state: window, orientation, rulers); with --anonymize a "
                        "de-identified copy (PS3.15 Basic Profile)")
    p.add_argument("--ruler", nargs=4, type=float, action="append", metavar=("X0", "Y0", "X1", "Y1"),
                   help="a length measurement between two image points (column, row); repeatable")
    p.add_argument("--rotate", type=int, default=0, choices=(0, 90, 180, 270), help="rotate clockwise (degrees)")
    p.add_argument("--flip-h", action="store_true", help="flip horizontally (after --rotate)")
    p.add_argument("--flip-v", action="store_true", help="flip vertically (after --rotate)")
    p.add_argument("--invert", action="store_true", help="invert the grayscale (as the viewer's Invert)")
    add_deid_arguments(p)
    p.set_defaults(func=run)


def add_deid_arguments(p, *, seed_help: str | None = None) -> None:
    """``--mask-region`` and ``--deid-seed`` (``export`` and ``deid`` share them)."""
    p.add_argument("--mask-region", nargs=4, action="append", metavar=("X", "Y", "W", "H"), default=None,
                   help="blank this rectangle (image pixel coordinates: first column, first row, width, "
                        "height) in the pixels, e.g. burned-in text; repeatable. A de-identified copy of an "
                        "image that may carry burned-in text (US, SC, OT, XC, or Burned In Annotation YES) "
                        "is refused without it")
    p.add_argument("--deid-seed", default=None, metavar="SEED",
                   help=seed_help or "with --anonymize: the de-identification key; the same seed gives the same "
                        "pseudonyms, UIDs and date shift as `cxrviewer deid --deid-seed` (keep it secret)")


def mask_regions(args) -> list:
    """``--mask-region`` values as ``MaskRegion``s (ValueError with the reason when bad)."""
    from cxrviewer.dicom.burnedin import MaskRegion

    return [MaskRegion.parse(v) for v in (getattr(args, "mask_region", None) or [])]


#: Override of the ``--heatmap`` provider: ``fn(img, args) -> (list of RGBA layers, text lines)``.
HEATMAP_PROVIDER = None


def heatmap_layers(img, args):
    """``([heatmap RGBA layer], prediction text lines)`` for ``img``: loads the model named by
    ``--model`` (default: the active one) and runs it with Grad-CAM. Raises ``RuntimeError``
    with a one-line reason when the AI engine is not available."""
    if HEATMAP_PROVIDER is not None:
        return HEATMAP_PROVIDER(img, args)
    try:
        from cxrviewer.ml.inference import Engine
    except ImportError as e:
        raise RuntimeError(
            f"--heatmap needs the AI engine (cxrviewer.ml.inference), which is not available: {e}"
        ) from None
    from cxrviewer.cli._common import resolve_model
    from cxrviewer.render.colormaps import DEFAULT_OPACITY, DEFAULT_THRESHOLD
    from cxrviewer.render.compose import prediction_overlay

    pred = Engine.load(resolve_model(args.model)).predict(img, cam=True)
    layer, lines = prediction_overlay(
        pred,
        args.colormap,
        DEFAULT_THRESHOLD if args.heatmap_threshold is None else args.heatmap_threshold,
        DEFAULT_OPACITY if args.heatmap_opacity is None else args.heatmap_opacity,
    )
    return [layer], lines


def run(args: argparse.Namespace) -> int:
    import os

    from cxrviewer.cli._common import fail
    from cxrviewer.core.errors import CxrError

    if args.deid_seed is not None and not args.anonymize:
        return fail("--deid-seed needs --anonymize (it keys the de-identification)")
    try:
        masks = mask_regions(args)
    except ValueError as e:
        return fail(f"--mask-region: {e}")
    if args.dicom:
        from cxrviewer.cli.export_dicom import run_dicom

        return run_dicom(args, masks)
    if not os.path.isfile(args.input):
        return fail(f"{args.input}: no such file")
    try:
        from cxrviewer.render.export import format_for

        fmt = format_for(args.out)
    except ValueError as e:
        return fail(f"{args.out}: {e}")
    if os.path.abspath(args.out) == os.path.abspath(args.input):
        return fail(f"{args.out}: refusing to overwrite the input file")
    try:
        from cxrviewer.core.dicom_io import load_image
        from cxrviewer.core.types import WindowPreset
        from cxrviewer.render.compose import compose_export
        from cxrviewer.render.export import save_image

        img = load_image(args.input, args.frame)
        if masks:
            from cxrviewer.dicom.burnedin import mask_loaded_image

            img = mask_loaded_image(img, masks)
        preset = None
        if args.window is not None:
            c, w = args.window
            if not w >= 1:
                return fail(f"--window width {w:g} must be >= 1")
            preset = WindowPreset("User", c, w, "LINEAR", "user")
        layers, ai_lines = heatmap_layers(img, args) if args.heatmap else ([], [])
        from cxrviewer.dicom.build import length_measurement
        from cxrviewer.render.export import RulerSpec, ViewState

        view = ViewState((args.rotate // 90) % 4, args.flip_h, args.flip_v, args.invert)
        rulers = [RulerSpec(m.points[0], m.points[1], m.label)
                  for m in (length_measurement(img, tuple(r[:2]), tuple(r[2:])) for r in args.ruler or [])]
        arr = compose_export(img, preset, view=view, rulers=rulers, layers=layers, annotations=not args.no_annotations,
                             anonymize=args.anonymize, ai_lines=ai_lines,
                             native=args.native, max_size=args.size)
        save_image(arr, args.out, fmt)
    except (CxrError, RuntimeError) as e:
        return fail(str(e))
    except (ValueError, OSError) as e:
        return fail(f"{args.input}: {e}")
    print(args.out)
    return 0
