"""``cxrviewer export INPUT --dicom sc|sr|gsps --out FILE.dcm``: the viewer's DICOM objects,
headless.

* ``sc``: the export rendering (window, ``--heatmap``, rulers, corner text, orientation) as a
  Secondary Capture, "NOT FOR DIAGNOSTIC USE" burned in.
* ``sr``: a TID 1500 report with the model's result (``--model``, default the active one)
  and the ``--ruler`` lengths.
* ``gsps``: a presentation state with the window, ``--rotate``/``--flip-*``, ``--invert``,
  the rulers, and the model's result as text when ``--model`` or ``--heatmap`` is given.

``--anonymize`` writes the de-identified copy (PS3.15 Table E.1-1, :mod:`cxrviewer.dicom.deid`)
and lists on stderr what changed; ``--deid-seed`` keys it like ``cxrviewer deid`` so the object
references the de-identified copy of its image; ``--mask-region`` blanks burned-in text (a
de-identified SC of a US, SC, OT or XC image is refused without it). Bad input exits 2 with one line naming the file and the reason and
writes nothing.
"""

from __future__ import annotations

import argparse
import sys


def _view(args):
    from cxrviewer.render.export import ViewState

    return ViewState(rotation=(args.rotate // 90) % 4, flip_h=args.flip_h, flip_v=args.flip_v,
                     invert=getattr(args, "invert", False))


def _predict(img, args, cam: bool):
    """``(AiResult, Prediction)`` from the model named by ``--model`` (default: active)."""
    try:
        from cxrviewer.ml.inference import Engine
    except ImportError as e:
        raise RuntimeError(f"--dicom needs the AI engine (cxrviewer.ml.inference) for the model's result: {e}") from None
    from cxrviewer.cli._common import resolve_model
    from cxrviewer.dicom.build import ai_result_from_prediction

    engine = Engine.load(resolve_model(args.model))
    pred = engine.predict(img, cam=cam)
    return ai_result_from_prediction(pred, engine.card.weights_sha256, engine.card), pred


def run_dicom(args: argparse.Namespace, masks=()) -> int:
    import os

    from cxrviewer.cli._common import fail
    from cxrviewer.core.errors import CxrError

    if not os.path.isfile(args.input):
        return fail(f"{args.input}: no such file")
    if os.path.abspath(args.out) == os.path.abspath(args.input):
        return fail(f"{args.out}: refusing to overwrite the input file")
    try:
        from cxrviewer.core.dicom_io import load_image
        from cxrviewer.core.types import WindowPreset
        from cxrviewer.dicom.build import export_object, length_measurement, reader_view
        from cxrviewer.dicom.common import source_dataset

        src = source_dataset(args.input)  # a PNG/JPEG or a non-image is refused before any work
        if masks and args.dicom != "sc":
            return fail(f"--mask-region blanks pixels: it applies to --dicom sc and PNG/JPEG, not {args.dicom}")
        if args.anonymize and args.dicom == "sc":
            from cxrviewer.dicom.build import check_sc_pixels

            check_sc_pixels(src, masks, args.input)  # refused before any rendering
        img = load_image(args.input, args.frame)
        if masks:
            from cxrviewer.dicom.burnedin import mask_loaded_image

            img = mask_loaded_image(img, masks)
        preset = img.default_preset
        if args.window is not None:
            c, w = args.window
            if not w >= 1:
                return fail(f"--window width {w:g} must be >= 1")
            preset = WindowPreset("User", c, w, "LINEAR", "user")
        rulers = [length_measurement(img, (r[0], r[1]), (r[2], r[3])) for r in args.ruler or []]
        view = _view(args)
        ai = pred = None
        if args.dicom == "sr" or args.heatmap or (args.dicom == "gsps" and args.model):
            ai, pred = _predict(img, args, cam=args.dicom == "sc" and args.heatmap)
        pixels = None
        if args.dicom == "sc":
            pixels = _render_sc(img, preset, view, rulers, pred, args)
        res = export_object(
            args.dicom, args.input, args.out, view=reader_view(preset, view, rulers), ai=ai, pixels=pixels,
            frame=args.frame, description="native image" if args.native else "view", anonymize=args.anonymize,
            pixels_clean=args.anonymize, masks=masks, seed=args.deid_seed,
        )
    except (CxrError, RuntimeError) as e:
        return fail(str(e))
    except (ValueError, OSError) as e:
        return fail(f"{args.input}: {e}")
    if res.changes:
        from cxrviewer.dicom.deid import summarize

        print("de-identified (PS3.15 E.1-1 Basic Profile): " + "; ".join(summarize(res.changes)),
              file=sys.stderr)
    print(args.out)
    return 0


def _render_sc(img, preset, view, rulers, pred, args):
    """The SC's pixels: the export renderer's output (anonymized text without dates when
    de-identifying, so the pixels carry nothing the header no longer has)."""
    import numpy as np

    from cxrviewer.render.compose import compose_export, prediction_overlay
    from cxrviewer.render.export import RulerSpec

    layers, ai_lines = [], []
    if pred is not None and args.heatmap:
        from cxrviewer.render.colormaps import DEFAULT_OPACITY, DEFAULT_THRESHOLD

        layer, ai_lines = prediction_overlay(
            pred, args.colormap,
            DEFAULT_THRESHOLD if args.heatmap_threshold is None else args.heatmap_threshold,
            DEFAULT_OPACITY if args.heatmap_opacity is None else args.heatmap_opacity)
        layers = [layer]
    specs = [RulerSpec(m.points[0], m.points[1], m.label) for m in rulers]
    work = img
    if args.anonymize:
        work = _deidentified_header(img)
    arr = compose_export(work, preset, view=view, layers=layers, rulers=specs, annotations=not args.no_annotations,
                         anonymize=args.anonymize, ai_lines=ai_lines, native=args.native, max_size=args.size)
    return np.ascontiguousarray(arr)


def _deidentified_header(img):
    """A shallow copy of ``img`` whose header has no dates and no study description, for
    de-identified burned-in text: the Basic Profile shifts dates and removes the description
    (free text), so the pixels must not show them either."""
    import copy
    import dataclasses

    out = copy.copy(img)
    out.header = dataclasses.replace(img.header, study_date="", study_time="", study_description="")
    return out
