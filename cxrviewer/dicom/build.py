"""From what the viewer (or the CLI) has -- a loaded image, the reader's window, orientation
and rulers, a model's prediction, a rendering -- to a written object. Qt-free; the CLI's
``export --dicom`` and the viewer's *File -> Export as DICOM...* both call :func:`export_object`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cxrviewer.core.geometry import length
from cxrviewer.dicom.common import (
    DICOM_KINDS,
    AiFinding,
    AiResult,
    DicomObjectError,
    Measurement,
    ReaderView,
    ensure_not_source,
    source_dataset,
    write_dataset,
)


def length_measurement(img, p0: tuple[float, float], p1: tuple[float, float]) -> Measurement:
    """A ruler on ``img`` (a ``LoadedImage``) as a measurement: mm with its calibration basis
    when the header has a pixel size, else px (never a calibration the header lacks)."""
    g = getattr(img, "geometry", None)
    v, unit_label = length(g, p0, p1)
    if g is None:
        return Measurement.length(p0, p1, v, "px", label=f"{v:.1f} px")
    return Measurement.length(p0, p1, v, "mm", label=f"{v:.1f} {unit_label}", basis=g.basis)


def ai_result_from_prediction(pred, weights_sha256: str = "", card=None) -> AiResult:
    """A model prediction (``cxrviewer.ml.inference.Prediction``) as an :class:`AiResult`.

    The out-of-distribution verdict is taken from the prediction when it carries one: its
    ``gate`` (``cxrviewer.ml.ood.GateOutcome``: ``status``, ``reason``, ``caution``), or flat
    ``ood_status`` / ``ood_reason`` (or ``status`` / ``reason``) attributes. A model without a
    gate has none, and the SR then says nothing about it. A refused image gets no probability
    and no label (:attr:`AiResult.refused`). A multi-finding prediction (``pred.findings``)
    gives one :class:`AiFinding` per finding, coded from ``card`` (its findings' codes).
    """
    gate = getattr(pred, "gate", None)
    if gate is not None and getattr(gate, "status", None):
        status = gate.status
        reason = getattr(gate, "reason", "") or getattr(gate, "caution", "") or None
    else:
        status = getattr(pred, "ood_status", None) or getattr(pred, "status", None)
        reason = getattr(pred, "ood_reason", None) or getattr(pred, "reason", None)
    codes = {f.name: f.code for f in (getattr(card, "findings", None) or ())}
    findings = tuple(
        AiFinding(f.name, float(f.probability), bool(f.positive), f.op_point, codes.get(f.name))
        for f in (getattr(pred, "findings", None) or ())
    )
    return AiResult(
        probability_abnormal=float(pred.probability_abnormal), label=str(pred.label), threshold=float(pred.threshold),
        findings=findings,
        model_name=str(pred.model_name), model_version=str(pred.model_version),
        weights_sha256=str(weights_sha256 or getattr(pred, "weights_sha256", "") or ""),
        ood_status=str(status) if status else None, ood_reason=str(reason) if reason else None,
    )


def reader_view(preset=None, view=None, measurements: Sequence[Measurement] = ()) -> ReaderView:
    """A :class:`ReaderView` from a ``WindowPreset`` and an orientation (anything with
    ``rotation``, ``flip_h``, ``flip_v``, ``invert``, e.g. the export renderer's ``ViewState``)."""
    return ReaderView(
        window_center=float(preset.center) if preset is not None else None,
        window_width=float(preset.width) if preset is not None else None,
        window_name=str(getattr(preset, "name", "") or ""),
        voi_function=str(getattr(preset, "function", "LINEAR") or "LINEAR"),
        rotation=int(getattr(view, "rotation", 0) or 0) % 4,
        flip_h=bool(getattr(view, "flip_h", False)),
        flip_v=bool(getattr(view, "flip_v", False)),
        invert=bool(getattr(view, "invert", False)),
        measurements=tuple(measurements),
    )


@dataclass
class ExportResult:
    """What :func:`export_object` wrote."""

    path: Path
    kind: str
    dataset: object
    changes: list = field(default_factory=list)  # de-identification changes (deid.Change)


def build_object(kind: str, source, *, view: ReaderView | None = None, ai: AiResult | None = None,
                 pixels=None, frame: int = 0, description: str = "", reader_call=None):
    """The dataset for ``kind`` (``"sc"``, ``"sr"`` or ``"gsps"``) from the source's header
    (``reader_call``: the reader's own call, SR only, see :mod:`cxrviewer.dicom.sr_reader`)."""
    view = view or ReaderView()
    if kind == "sc":
        from cxrviewer.dicom.sc import make_sc

        if pixels is None:
            raise DicomObjectError(None, "a Secondary Capture needs a rendering")
        return make_sc(source, pixels, view=view, description=description, frame=frame)
    if kind == "sr":
        from cxrviewer.dicom.sr import make_sr

        return make_sr(source, ai, view.measurements, frame=frame, reader_call=reader_call)
    if kind == "gsps":
        from cxrviewer.dicom.gsps import make_gsps

        return make_gsps(source, view, ai=ai, frame=frame)
    raise ValueError(f"unknown DICOM object kind {kind!r}: use one of {', '.join(DICOM_KINDS)}")


def check_sc_pixels(source, masks: Sequence = (), path=None) -> str:
    """Before rendering a de-identified Secondary Capture: refuse a source whose pixels may
    carry burned-in text unless ``masks`` (``burnedin.MaskRegion``) blank it.

    Returns the regions as Deidentification Method text (``""``: no masks were needed or
    given). Raises :class:`DicomObjectError` (one line, burned-in text named as the reason).
    """
    from cxrviewer.dicom.burnedin import burned_in_risk, check_burned_in, regions_text

    check_burned_in(source, masks, path)
    return regions_text(masks) if masks and burned_in_risk(source) else ""


def export_object(kind: str, source_path: str | os.PathLike, out: str | os.PathLike, *,
                  view: ReaderView | None = None, ai: AiResult | None = None, pixels=None, frame: int = 0,
                  description: str = "", anonymize: bool = False, seed: str | None = None,
                  pixels_clean: bool = False, masks: Sequence = (), deidentifier=None,
                  reader_call=None) -> ExportResult:
    """Build ``kind`` for the image at ``source_path`` and write it atomically to ``out``.

    With ``anonymize`` the written file is the de-identified copy (PS3.15 Table E.1-1,
    :mod:`cxrviewer.dicom.deid`; ``seed`` or a shared ``deidentifier`` makes the pseudonyms,
    UIDs and date shift those of the ``cxrviewer deid`` copies made with the same seed;
    ``pixels_clean``: the SC's burned-in text has no patient data) and the result lists what
    changed. A de-identified SC of an image whose pixels may carry text (US, SC, OT, XC, or
    Burned In Annotation YES) is refused unless ``masks`` (``burnedin.MaskRegion``) are
    given; the caller renders ``pixels`` from the image with those regions blanked
    (:func:`cxrviewer.dicom.burnedin.mask_loaded_image`).

    Raises
    ------
    DicomObjectError
        The source cannot carry this object (not DICOM, colour for GSPS, nothing to report),
        or its pixels may carry burned-in text and no region is masked.
    cxrviewer.atomic.WriteError
        ``out`` cannot be written; nothing was left behind.
    """
    ensure_not_source(out, [source_path])
    src = source_dataset(source_path)
    masked = ""
    if anonymize and kind == "sc":
        masked = check_sc_pixels(src, masks, source_path)
        pixels_clean = pixels_clean or bool(masked)
    try:
        ds = build_object(kind, src, view=view, ai=ai, pixels=pixels, frame=frame, description=description,
                          reader_call=reader_call)
    except DicomObjectError as e:
        raise DicomObjectError(source_path, e.reason) from None
    except (ValueError, TypeError, AttributeError, KeyError, OverflowError) as e:
        # a header highdicom cannot take (a malformed value the source carries): one clear line
        raise DicomObjectError(source_path, f"cannot build the {kind.upper()} from this header: "
                                            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    changes: list = []
    if anonymize:
        from cxrviewer.dicom.deid import Deidentifier

        d = deidentifier or Deidentifier(seed)
        ds, changes = d(ds, own=True, pixels_clean=pixels_clean, masked_regions=masked)
    path = write_dataset(ds, out)
    return ExportResult(Path(path), kind, ds, changes)
