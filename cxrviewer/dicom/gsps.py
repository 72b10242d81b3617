"""Grayscale Softcopy Presentation State: what the reader saw, so other viewers show it too
(highdicom ``GrayscaleSoftcopyPresentationState``), and applying one back in the viewer.

Written: the reader's window (Softcopy VOI LUT), invert (Presentation LUT Shape, with
MONOCHROME1 taken into account), rotation/flip (Spatial Transformation: rotate clockwise,
then flip horizontally, PS3.3 C.10.6; our vertical flip is a 180 degree turn plus a
horizontal flip), every measurement as a polyline in PIXEL units with its label as text,
and the AI result with "NOT FOR DIAGNOSTIC USE" as text in DISPLAY units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from cxrviewer.dicom.common import (
    MANUFACTURER,
    MODEL_NAME,
    NOT_FOR_DIAGNOSTIC,
    SERIES_NUMBERS,
    AiResult,
    DicomObjectError,
    ReaderView,
    copy_patient_study,
    frame_numbers,
    multiframe_iod,
    new_uid,
    prepared_source,
    quiet_source_warnings,
    set_laterality,
    software_version,
)

CONTENT_LABEL = "CXRVIEWER"
LAYER_MEASUREMENTS = "MEASUREMENTS"
LAYER_AI = "AI"

_R = np.array([[0, -1], [1, 0]])  # clockwise quarter turn, y down
_FH = np.diag([-1, 1])
_FV = np.diag([1, -1])


def _view_matrix(rotation: int, flip_h: bool, flip_v: bool) -> np.ndarray:
    m = np.eye(2, dtype=int)
    for _ in range(rotation % 4):
        m = _R @ m
    if flip_h:
        m = _FH @ m
    if flip_v:
        m = _FV @ m
    return m


def to_dicom_spatial(rotation: int, flip_h: bool, flip_v: bool) -> tuple[int, bool]:
    """Our orientation (rotate, flip H, flip V, in that order) -> DICOM's (Image Rotation in
    degrees clockwise, Image Horizontal Flip after it)."""
    target = _view_matrix(rotation, flip_h, flip_v)
    for k in range(4):
        for f in (False, True):
            if np.array_equal(_view_matrix(k, f, False), target):
                return 90 * k, f
    raise AssertionError("unreachable: the 8 orientations are closed under composition")


def from_dicom_spatial(rotation_deg: int, flip: bool) -> tuple[int, bool, bool]:
    """DICOM (Image Rotation, Image Horizontal Flip) -> our ``(rotation, flip_h, flip_v)``."""
    return (int(rotation_deg) // 90) % 4, bool(flip), False


def _text_box(anchor: tuple[float, float], text: str, rows: int, cols: int) -> tuple[float, float, float, float]:
    """A bounding box (PIXEL units) beside ``anchor`` for a label of ``text``, inside the image."""
    h = max(8.0, rows / 45.0)
    w = max(h, 0.6 * h * len(text))
    x0 = min(max(0.0, anchor[0] + h / 2), max(0.0, cols - w))
    y0 = min(max(0.0, anchor[1] - h), max(0.0, rows - h))
    return (x0, y0, min(float(cols), x0 + w), min(float(rows), y0 + h))


def make_gsps(
    source,
    view: ReaderView,
    *,
    ai: AiResult | None = None,
    text_lines: Sequence[str] = (),
    frame: int = 0,
    series_instance_uid: str | None = None,
    instance_number: int = 1,
):
    """A Grayscale Softcopy Presentation State for the source image.

    Parameters
    ----------
    source
        The source image's dataset (header only is enough); must be grayscale.
    view
        Window, orientation, invert and measurements as the reader has them.
    ai
        The AI result to show as text (optional).
    text_lines
        Further text (display units, top left).
    """
    import highdicom as hd

    source = prepared_source(source)
    if int(source.get("SamplesPerPixel", 1) or 1) != 1:
        raise DicomObjectError(None, "a Grayscale Softcopy Presentation State needs a grayscale source image")
    rows, cols = int(source.Rows), int(source.Columns)
    ref_frame = frame_numbers(source, frame)
    layers = [hd.pr.GraphicLayer(layer_name=LAYER_MEASUREMENTS, order=1, description="reader's measurements"),
              hd.pr.GraphicLayer(layer_name=LAYER_AI, order=2, description=f"AI result - {NOT_FOR_DIAGNOSTIC}")]
    annotations = []
    for m in view.measurements:
        pts = np.asarray(m.points, dtype=np.float64)
        if m.kind == "roi" and not np.allclose(pts[0], pts[-1]):
            pts = np.vstack([pts, pts[:1]])
        label = m.label or ", ".join(f"{v:.1f} {u}".strip() for _n, v, u in m.values)
        lines = [pts[0:2], pts[2:4]] if m.kind in ("cobb", "ctr") else [pts]
        annotations.append(hd.pr.GraphicAnnotation(
            referenced_images=[source], graphic_layer=layers[0], referenced_frame_number=ref_frame,
            graphic_objects=[hd.pr.GraphicObject(graphic_type="POLYLINE", graphic_data=ln, units="PIXEL")
                             for ln in lines],
            text_objects=[hd.pr.TextObject(text_value=label[:1024], units="PIXEL",
                                           bounding_box=_text_box(tuple(pts[-1] if m.kind != "angle" else pts[1]),
                                                                  label, rows, cols),
                                           text_justification="LEFT")],
        ))
    lines = list(ai.text_lines()) if ai is not None else []
    lines += [str(t) for t in text_lines if str(t).strip()]
    lines.append(NOT_FOR_DIAGNOSTIC)
    texts = []
    for i, line in enumerate(lines):
        y0 = 0.02 + 0.04 * i
        texts.append(hd.pr.TextObject(text_value=line[:1024], units="DISPLAY", bounding_box=(0.02, y0, 0.98, y0 + 0.035),
                                      text_justification="LEFT"))
    annotations.append(hd.pr.GraphicAnnotation(referenced_images=[source], graphic_layer=layers[1],
                                               referenced_frame_number=ref_frame, text_objects=texts))
    voi = None
    if view.window_center is not None and view.window_width is not None and view.window_width >= 1:
        fn = (view.voi_function or "LINEAR").upper().replace(" ", "_")
        voi = [hd.pr.SoftcopyVOILUTTransformation(
            window_center=[float(view.window_center)], window_width=[float(view.window_width)],
            # a list: highdicom splits a bare string into characters (["U", "s", "e", "r"])
            window_explanation=[(view.window_name or "reader")[:64]],
            voi_lut_function=fn if fn in ("LINEAR", "LINEAR_EXACT", "SIGMOID") else "LINEAR")]
    modality_lut = None
    if multiframe_iod(source) and "SharedFunctionalGroupsSequence" not in source:
        # A legacy multi-frame image (rescale, if any, at the top level): highdicom looks for
        # it in the functional groups only, so hand it over explicitly, or say there is none.
        if "RescaleSlope" in source or "RescaleIntercept" in source:
            modality_lut = hd.ModalityLUTTransformation(
                rescale_intercept=float(source.get("RescaleIntercept", 0) or 0),
                rescale_slope=float(source.get("RescaleSlope", 1) or 1),
                rescale_type=str(source.get("RescaleType", "") or "US"))
        else:
            from pydicom.dataset import Dataset

            source.SharedFunctionalGroupsSequence = [Dataset()]  # our copy: no modality LUT to copy
    mono1 = str(source.get("PhotometricInterpretation", "")).strip().upper() == "MONOCHROME1"
    # The presentation state pipeline ends in P-values: a MONOCHROME1 image shows with its
    # usual polarity only through an INVERSE shape (PS3.3 C.11.6.1); the reader's Invert flips it.
    shape = "INVERSE" if mono1 != bool(view.invert) else "IDENTITY"
    with quiet_source_warnings():
        pr = hd.pr.GrayscaleSoftcopyPresentationState(
            referenced_images=[source],
            series_instance_uid=series_instance_uid or new_uid(),
            series_number=SERIES_NUMBERS["pr"],
            sop_instance_uid=new_uid(),
            instance_number=instance_number,
            manufacturer=MANUFACTURER,
            manufacturer_model_name=MODEL_NAME,
            software_versions=software_version(),
            device_serial_number="0",
            content_label=CONTENT_LABEL,
            content_description=f"reader's view - {NOT_FOR_DIAGNOSTIC}"[:64],
            graphic_annotations=annotations,
            graphic_layers=layers,
            voi_lut_transformations=voi,
            modality_lut_transformation=modality_lut,
            presentation_lut_transformation=hd.PresentationLUTTransformation(presentation_lut_shape=shape),
        )
    copy_patient_study(pr, source)
    rot, flip = to_dicom_spatial(view.rotation, view.flip_h, view.flip_v)
    pr.ImageRotation = rot
    pr.ImageHorizontalFlip = "Y" if flip else "N"
    tl, br = displayed_area_corners(rows, cols, rot, flip)
    for item in pr.DisplayedAreaSelectionSequence:
        item.DisplayedAreaTopLeftHandCorner = tl
        item.DisplayedAreaBottomRightHandCorner = br
    set_laterality(pr, source)
    pr.SeriesDescription = f"cxrviewer view - {NOT_FOR_DIAGNOSTIC}"[:64]
    return pr


# ---------------------------------------------------------------------------- reading back


@dataclass(frozen=True)
class PresentationState:
    """A GSPS as the viewer applies it to one referenced image."""

    sop_instance_uid: str
    referenced_sop_instance_uids: tuple[str, ...]
    window_center: float | None = None
    window_width: float | None = None
    window_name: str = ""
    voi_function: str = "LINEAR"
    rotation: int = 0
    flip_h: bool = False
    flip_v: bool = False
    inverse_shape: bool = False
    lines: tuple[tuple[tuple[tuple[float, float], ...], str], ...] = field(default_factory=tuple)
    texts: tuple[str, ...] = field(default_factory=tuple)
    label: str = ""
    #: one entry per graphic annotation (one measurement): its polylines and its label
    groups: tuple[tuple[tuple[tuple[tuple[float, float], ...], ...], str], ...] = field(default_factory=tuple)

    def measurements(self) -> list[tuple[str, list[tuple[float, float]]]]:
        """The annotations as the viewer's tools: ``(kind, points)`` with kind ``ruler``,
        ``angle``, ``cobb``, ``ctr``, ``rect`` or ``ellipse`` (rect/ellipse: the box corners).
        Shapes that match no tool (another viewer's free polylines) are left out."""
        out = []
        for polys, label in self.groups:
            if len(polys) == 2 and all(len(p) == 2 for p in polys):
                low = label.strip().lower()
                kind = "cobb" if low.startswith("cobb") else "ctr" if low.startswith("ctr") else None
                if kind is None:
                    out += [("ruler", list(p)) for p in polys]
                else:
                    out.append((kind, [*polys[0], *polys[1]]))
            elif len(polys) == 1:
                pts = list(polys[0])
                closed = len(pts) > 3 and np.allclose(pts[0], pts[-1])
                xs, ys = [p[0] for p in pts], [p[1] for p in pts]
                box = [(min(xs), min(ys)), (max(xs), max(ys))]
                if len(pts) == 2:
                    out.append(("ruler", pts))
                elif len(pts) == 3:
                    out.append(("angle", pts))
                elif closed and len(pts) == 5 and all(
                        any(np.isclose(p[0], b[0]) for b in box) and any(np.isclose(p[1], b[1]) for b in box)
                        for p in pts):
                    out.append(("rect", box))
                elif closed and len(pts) > 8:
                    out.append(("ellipse", box))
        return out

    def reader_invert(self, photometric: str) -> bool:
        """The viewer's Invert toggle for an image of ``photometric`` (MONOCHROME1 shows
        inverted through INVERSE already)."""
        return self.inverse_shape != (photometric.strip().upper() == "MONOCHROME1")

    def applies_to(self, sop_instance_uid: str) -> bool:
        return sop_instance_uid in self.referenced_sop_instance_uids


def _first(v):
    """Value 1 of a possibly multi-valued element."""
    if isinstance(v, (str, bytes, int, float)):
        return v
    try:
        return v[0] if len(v) else ""
    except TypeError:
        return v


def displayed_area_corners(rows: int, cols: int, rotation_deg: int, flip: bool) -> tuple[list[int], list[int]]:
    """Displayed Area Top Left / Bottom Right Hand Corners (column, row; 1-based) of the whole
    image after the spatial transformation: the corners are the image pixels that end up top
    left and bottom right on screen (PS3.3 C.10.4)."""
    m = _view_matrix(rotation_deg // 90, flip, False)
    corners = [(1, 1), (cols, 1), (1, rows), (cols, rows)]
    placed = [(m @ np.array([c, r]), (c, r)) for c, r in corners]
    tl = min(placed, key=lambda p: (p[0][0] + p[0][1]))[1]
    br = max(placed, key=lambda p: (p[0][0] + p[0][1]))[1]
    return list(tl), list(br)


def referenced_uids(ds) -> tuple[str, ...]:
    """SOP Instance UIDs a presentation state applies to (Referenced Series Sequence)."""
    out = []
    for series in ds.get("ReferencedSeriesSequence") or []:
        for ref in series.get("ReferencedImageSequence") or []:
            out.append(str(ref.ReferencedSOPInstanceUID))
    return tuple(out)


def read_gsps(ds, path: str | None = None) -> PresentationState:
    """Parse a presentation state (any writer's, not only ours) for the viewer.

    Raises :class:`DicomObjectError` when ``ds`` references no image.
    """
    refs = referenced_uids(ds)
    if not refs:
        raise DicomObjectError(path, "presentation state references no image")
    center = width = None
    name, fn = "", "LINEAR"
    voi = ds.get("SoftcopyVOILUTSequence")
    if voi and "WindowCenter" in voi[0] and "WindowWidth" in voi[0]:
        center, width = float(_first(voi[0].WindowCenter)), float(_first(voi[0].WindowWidth))
        name = str(_first(voi[0].get("WindowCenterWidthExplanation", "")))
        fn = str(voi[0].get("VOILUTFunction", "LINEAR") or "LINEAR")
    rotation, flip_h, flip_v = from_dicom_spatial(int(ds.get("ImageRotation", 0) or 0),
                                                  str(ds.get("ImageHorizontalFlip", "N")).upper() == "Y")
    lines, texts, groups = [], [], []
    for ann in ds.get("GraphicAnnotationSequence") or []:
        labels = [str(t.get("UnformattedTextValue", "")) for t in ann.get("TextObjectSequence") or []]
        pixel_labels = [str(t.get("UnformattedTextValue", "")) for t in ann.get("TextObjectSequence") or []
                        if str(t.get("BoundingBoxAnnotationUnits", t.get("AnchorPointAnnotationUnits", ""))) == "PIXEL"]
        graphics = [g for g in ann.get("GraphicObjectSequence") or []
                    if str(g.get("GraphicAnnotationUnits", "")) == "PIXEL" and str(g.get("GraphicType", "")) == "POLYLINE"]
        polys = []
        for i, g in enumerate(graphics):
            d = [float(v) for v in g.GraphicData]
            polys.append(tuple(zip(d[0::2], d[1::2], strict=False)))
            lines.append((polys[-1], pixel_labels[i] if i < len(pixel_labels) else ""))
        if polys:
            groups.append((tuple(polys), pixel_labels[0] if pixel_labels else ""))
        if not graphics:
            texts.extend(x for x in labels if x)
    return PresentationState(
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")), referenced_sop_instance_uids=refs,
        window_center=center, window_width=width, window_name=name, voi_function=fn,
        rotation=rotation, flip_h=flip_h, flip_v=flip_v,
        inverse_shape=str(ds.get("PresentationLUTShape", "IDENTITY")).upper() == "INVERSE",
        lines=tuple(lines), texts=tuple(texts), label=str(ds.get("ContentLabel", "")), groups=tuple(groups),
    )
