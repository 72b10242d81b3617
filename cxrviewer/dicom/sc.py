"""Secondary Capture of what the reader made of an image (highdicom ``SCImage``).

The pixels are an 8-bit rendering (the annotated view, or the native image with heatmap
and annotations, from the viewer's export renderer); this module burns
:data:`~cxrviewer.dicom.common.NOT_FOR_DIAGNOSTIC` into them itself, so no SC we write can
lack it, and says so in Burned In Annotation, Image Comments and Series Description.
"""

from __future__ import annotations

import datetime
import re

import numpy as np

from cxrviewer.dicom.common import (
    MANUFACTURER,
    NOT_FOR_DIAGNOSTIC,
    SERIES_NUMBERS,
    DicomObjectError,
    ReaderView,
    copy_patient_study,
    multiframe_iod,
    new_uid,
    prepared_source,
    quiet_source_warnings,
    set_laterality,
    software_version,
)

_NEGATE = str.maketrans("LRAPHF", "RLPAFH")
_ORIENT = re.compile(r"[LRAPHF]{1,3}")


def burn_banner(pixels: np.ndarray, text: str = NOT_FOR_DIAGNOSTIC) -> np.ndarray:
    """``pixels`` with ``text`` burned in at the top centre (white on a dark box).

    Returns a new array of the same shape and dtype (uint8 gray or RGB).
    """
    from PIL import Image, ImageDraw, ImageFont

    a = np.ascontiguousarray(pixels)
    im = Image.fromarray(a)
    d = ImageDraw.Draw(im)
    h, w = a.shape[:2]
    size = max(10, int(round(min(h, w) / 32)))
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    tw = d.textlength(text, font=font)
    pad = max(2, size // 4)
    x0 = max(0, (w - tw) / 2 - pad)
    y0 = max(0, size // 2)
    box = [x0, y0, min(w - 1, x0 + tw + 2 * pad), min(h - 1, y0 + size + 2 * pad)]
    if a.ndim == 2:
        d.rectangle(box, fill=0)
        d.text((x0 + pad, y0 + pad), text, font=font, fill=255)
    else:
        d.rectangle(box, fill=(0, 0, 0))
        d.text((x0 + pad, y0 + pad), text, font=font, fill=(255, 255, 255))
    return np.asarray(im)


def oriented_patient_orientation(orientation, view: ReaderView | None) -> tuple[str, str] | None:
    """Patient Orientation (0020,0020) of the source after the reader's rotation/flips.

    ``orientation``: the source's two values (row direction, column direction), e.g.
    ``("L", "F")``; ``None`` when the source has none (then nothing can be said).
    """
    try:
        row, col = (str(v).strip().upper() for v in orientation)
    except (TypeError, ValueError):
        return None
    if not (_ORIENT.fullmatch(row) and _ORIENT.fullmatch(col)):
        return None  # empty or not made of L/R/A/P/H/F: nothing can be said
    if view is None:
        return row, col
    # linear part of the view transform acting on direction vectors (x right, y down)
    m = np.eye(2)
    rot = np.array([[0.0, -1.0], [1.0, 0.0]])  # clockwise with y down: (x, y) -> (-y, x)
    for _ in range(view.rotation % 4):
        m = rot @ m
    if view.flip_h:
        m = np.diag([-1.0, 1.0]) @ m
    if view.flip_v:
        m = np.diag([1.0, -1.0]) @ m
    letters = {(0, 1): row, (0, -1): row.translate(_NEGATE), (1, 1): col, (1, -1): col.translate(_NEGATE)}
    out = []
    for new_axis in (np.array([1.0, 0.0]), np.array([0.0, 1.0])):
        for i, e in enumerate((np.array([1.0, 0.0]), np.array([0.0, 1.0]))):
            s = float(new_axis @ (m @ e))
            if abs(s) > 0.5:
                out.append(letters[(i, 1 if s > 0 else -1)])
    return out[0], out[1]


def make_sc(
    source,
    pixels: np.ndarray,
    *,
    view: ReaderView | None = None,
    description: str = "",
    frame: int = 0,
    series_instance_uid: str | None = None,
    instance_number: int = 1,
    burn_in: bool = True,
):
    """A Secondary Capture Image in the source's study.

    Parameters
    ----------
    source
        The source image's dataset (header only is enough).
    pixels
        The rendering: ``uint8`` ``(rows, cols)`` gray or ``(rows, cols, 3)`` RGB.
    view
        The reader's orientation, for Patient Orientation (``None``: as stored).
    description
        What the capture shows (e.g. ``"annotated view"``); goes into Derivation Description
        and Image Comments.
    frame
        Source frame (0-based) for multi-frame sources (Referenced Frame Number).
    burn_in
        Burn :data:`NOT_FOR_DIAGNOSTIC` into the pixels (always, unless the caller already
        did).

    Returns
    -------
    pydicom.Dataset
        A highdicom ``SCImage`` with Burned In Annotation YES and a Source Image Sequence
        pointing at the source.
    """
    import highdicom as hd
    from pydicom.dataset import Dataset

    source = prepared_source(source)
    a = np.asarray(pixels)
    if a.dtype != np.uint8 or not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)) or min(a.shape[:2]) < 1:
        raise DicomObjectError(None, f"a Secondary Capture needs uint8 gray or RGB pixels, got {a.dtype} {a.shape}")
    if burn_in:
        a = burn_banner(a)
    photometric = "MONOCHROME2" if a.ndim == 2 else "RGB"
    orient = oriented_patient_orientation(source.get("PatientOrientation"), view)
    with quiet_source_warnings():
        sc = hd.sc.SCImage.from_ref_dataset(
            ref_dataset=source,
            pixel_array=a,
            photometric_interpretation=photometric,
            bits_allocated=8,
            coordinate_system="PATIENT",
            series_instance_uid=series_instance_uid or new_uid(),
            series_number=SERIES_NUMBERS["sc"],
            sop_instance_uid=new_uid(),
            instance_number=instance_number,
            manufacturer=MANUFACTURER,
            patient_orientation=("L", "F"),  # replaced below
            transfer_syntax_uid="1.2.840.10008.1.2.1",
        )
    # highdicom accepts single letters only; oblique values ("LP") are valid DICOM: set ours
    sc.PatientOrientation = list(orient) if orient is not None else None  # None: type 2C, empty
    copy_patient_study(sc, source)
    set_laterality(sc, source)
    now = datetime.datetime.now()
    sc.ContentDate = now.strftime("%Y%m%d")
    sc.ContentTime = now.strftime("%H%M%S")
    sc.SeriesDescription = f"cxrviewer capture - {NOT_FOR_DIAGNOSTIC}"
    what = description or "rendering"
    sc.ImageComments = f"{NOT_FOR_DIAGNOSTIC}. {what} made with {software_version()}."
    sc.BurnedInAnnotation = "YES"
    sc.RecognizableVisualFeatures = "NO"
    sc.SoftwareVersions = software_version()
    sc.DerivationDescription = f"{what} of the source image by {software_version()}; {NOT_FOR_DIAGNOSTIC}"[:1024]
    ref = Dataset()
    ref.ReferencedSOPClassUID = source.SOPClassUID
    ref.ReferencedSOPInstanceUID = source.SOPInstanceUID
    if multiframe_iod(source):
        ref.ReferencedFrameNumber = int(frame) + 1
    purpose = Dataset()
    purpose.CodeValue = "121322"
    purpose.CodingSchemeDesignator = "DCM"
    purpose.CodeMeaning = "Source image for image processing operation"
    ref.PurposeOfReferenceCodeSequence = [purpose]
    sc.SourceImageSequence = [ref]
    if photometric == "RGB":
        sc.PlanarConfiguration = 0
    return sc
