"""Header readers: the overlay/browser fields, the pixel geometry and the VOI presets of a
dataset, and the small value parsers they share. Pure functions of a dataset (or anything
with its ``get``, such as :class:`cxrviewer.core.frame_groups.FrameAttributes`, which answers
for one frame of an enhanced multi-frame object); no pixel data needed.
"""

from __future__ import annotations

import math
import re

import numpy as np

from cxrviewer.core import orientation, phi
from cxrviewer.core.errors import DicomReadError
from cxrviewer.core.types import Geometry, ImageHeader, VoiLut, WindowPreset


def _s(value) -> str:
    """A header value as a plain one-line string ('' when absent)."""
    if value is None:
        return ""
    return str(value).strip().replace("\x00", "")


def _float(value, default: float | None = None) -> float | None:
    try:
        if value is None or value == "":
            return default
        f = float(value)
    except (TypeError, ValueError):
        return default
    return f if math.isfinite(f) else default


def _floats(value, keep_position: bool = False) -> list:
    """A multi-valued DS/IS element as a list of floats.

    Non-numbers are dropped, or, with ``keep_position``, kept as ``None`` so that paired
    elements (Window Center/Width, value *i* of each) stay paired.
    """
    if value is None:
        return []
    try:
        seq = list(value) if not isinstance(value, (str, bytes)) and hasattr(value, "__iter__") else [value]
    except TypeError:
        seq = [value]
    out = []
    for v in seq:
        f = _float(v)
        if f is not None or keep_position:
            out.append(f)
    return out


def _rescale_value(ds, keyword: str, tag: str, default: float, path: str) -> float:
    """Rescale Slope/Intercept: absent or empty -> default; present but not a finite number
    -> refused (the modality values, and so any measurement, would be unknown)."""
    raw = ds.get(keyword)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return default
    f = _float(raw)
    if f is None:
        raise DicomReadError(path, f"{_keyword_name(keyword)} {tag} = {_s(raw)!r} is not a finite number")
    return f


def _keyword_name(keyword: str) -> str:
    """'RescaleSlope' -> 'Rescale Slope'."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", keyword)


def _multi(value) -> str:
    """A multi-valued string element as DICOM writes it: values joined by a backslash."""
    if value is None:
        return ""
    if not isinstance(value, (str, bytes)) and hasattr(value, "__iter__"):
        return "\\".join(_s(v) for v in value)
    return _s(value)


def _orientation_cosines(value) -> tuple[float, ...]:
    """Image Orientation (Patient): six finite numbers, else ``()``."""
    v = _floats(value, keep_position=True)
    return tuple(v) if len(v) == 6 and all(x is not None for x in v) else ()


def header_from_dataset(ds) -> ImageHeader:
    """The overlay/browser fields of a dataset (header only, no pixels needed)."""
    g = ds.get
    header = ImageHeader(
        patient_name=_s(g("PatientName")),
        patient_id=_s(g("PatientID")),
        issuer_of_patient_id=_s(g("IssuerOfPatientID")),
        patient_birth_date=_s(g("PatientBirthDate")),
        patient_sex=_s(g("PatientSex")),
        patient_age=_s(g("PatientAge")),
        accession_number=_s(g("AccessionNumber")),
        institution_name=_s(g("InstitutionName")),
        study_date=_s(g("StudyDate")),
        study_time=_s(g("StudyTime")),
        study_description=_s(g("StudyDescription")),
        series_description=_s(g("SeriesDescription")),
        modality=_s(g("Modality")),
        view_position=_s(g("ViewPosition")),
        body_part=_s(g("BodyPartExamined")),
        series_number=_s(g("SeriesNumber")),
        instance_number=_s(g("InstanceNumber")),
        manufacturer=_s(g("Manufacturer")),
        sop_instance_uid=_s(g("SOPInstanceUID")),
        study_instance_uid=_s(g("StudyInstanceUID")),
        series_instance_uid=_s(g("SeriesInstanceUID")),
        patient_orientation=_multi(g("PatientOrientation")),
        image_orientation=_orientation_cosines(g("ImageOrientationPatient")),
        laterality=orientation.laterality(_s(g("ImageLaterality")), _s(g("Laterality"))),
    )
    # Every identifier the app sees is known to the log scrubber before anything can log it.
    phi.register_header(header)
    return header


def geometry_from_dataset(ds) -> Geometry | None:
    """Pixel size with its calibration basis (PS3.3 C.8.11.4, 10.7.1.1, 10.7.1.3).

    * Pixel Spacing (0028,0030), when present and non-zero, is the calibrated spacing
      (at the patient for projection radiography when the writer calibrated it).
    * Otherwise Imager Pixel Spacing (0018,1164) is the spacing *at the detector*; divided by
      Estimated Radiographic Magnification Factor (0018,1114) when that is present, it is an
      estimate at the patient ("magnification-corrected").
    * Neither, or zeros: ``None``; measurements are then in pixels.
    """
    ps = _floats(ds.get("PixelSpacing"))
    if len(ps) >= 2 and ps[0] > 0 and ps[1] > 0:
        cal = _s(ds.get("PixelSpacingCalibrationType"))
        desc = "Pixel Spacing (0028,0030)"
        if cal:
            desc += f", calibration type {cal}"
        return Geometry(ps[0], ps[1], "PixelSpacing", "mm", desc)
    ips = _floats(ds.get("ImagerPixelSpacing"))
    if len(ips) >= 2 and ips[0] > 0 and ips[1] > 0:
        ermf = _float(ds.get("EstimatedRadiographicMagnificationFactor"))
        if ermf is not None and ermf > 0 and ermf != 1.0:
            return Geometry(
                ips[0] / ermf,
                ips[1] / ermf,
                "ImagerPixelSpacing/EstimatedRadiographicMagnificationFactor",
                "mm (magnification-corrected)",
                f"Imager Pixel Spacing (0018,1164) / Estimated Radiographic Magnification Factor {ermf:g}",
            )
        return Geometry(
            ips[0], ips[1], "ImagerPixelSpacing", "mm (detector)", "Imager Pixel Spacing (0018,1164), at the detector"
        )
    return None


def presets_from_dataset(ds) -> tuple[list[WindowPreset], list[VoiLut]]:
    """Every Window Center/Width pair (0028,1050/1051) and every VOI LUT Sequence item,
    named by their explanations (0028,1055 / 0028,3003)."""
    centers = _floats(ds.get("WindowCenter"), keep_position=True)
    widths = _floats(ds.get("WindowWidth"), keep_position=True)
    expl_raw = ds.get("WindowCenterWidthExplanation")
    if expl_raw is None:
        expls: list[str] = []
    elif isinstance(expl_raw, str):
        expls = [expl_raw]
    else:
        try:
            expls = [_s(e) for e in expl_raw]
        except TypeError:
            expls = [_s(expl_raw)]
    function = _s(ds.get("VOILUTFunction")).upper() or "LINEAR"
    # an enhanced object's window comes from its Frame VOI LUT functional group: say so
    where = ds.source("WindowCenter") if hasattr(ds, "source") else ""
    where = f" ({where} functional group)" if where else ""
    presets: list[WindowPreset] = []
    for i, (c, w) in enumerate(zip(centers, widths, strict=False)):
        if c is None or w is None:
            continue  # a non-number in one of the pair (e.g. "nan"): the pair is unusable
        min_w = 1.0 if function == "LINEAR" else 0.0
        if not (w >= min_w and w > 0):
            continue  # (0028,1051) Window Width below the minimum for its function: unusable
        name = expls[i] if i < len(expls) and expls[i] else f"Header window {i + 1}"
        presets.append(
            WindowPreset(
                name=name,
                center=c,
                width=w,
                function=function,
                source="header",
                explanation=f"From the file{where}: Window Center {c:g} / Width {w:g}, {function}",
            )
        )
    luts: list[VoiLut] = []
    seq = ds.get("VOILUTSequence")
    if seq:
        for item in seq:
            try:
                desc = [int(v) for v in item.LUTDescriptor]
                if len(desc) != 3:
                    continue
                data = _lut_data(item, desc)
                if data.size == 0:
                    continue
            except Exception:  # noqa: BLE001 - a bad item is skipped, the others stay usable
                continue
            expl = _s(item.get("LUTExplanation"))
            luts.append(VoiLut((desc[0], desc[1], desc[2]), data, expl))
    for j, lut in enumerate(luts):
        lo = lut.descriptor[1]
        n = lut.descriptor[0] or 65536
        presets.append(
            WindowPreset(
                name=lut.explanation or f"VOI LUT {j + 1}",
                center=lo + n / 2.0,
                width=float(n),
                function="LUT",
                source="voi_lut",
                explanation=f"From the file: VOI LUT Sequence item {j + 1} ({n} entries from {lo})",
                lut_index=j,
            )
        )
    return presets, luts


def _lut_data(item, desc: list[int]) -> np.ndarray:
    raw = item.LUTData
    if isinstance(raw, (bytes, bytearray)):
        dtype = "<u2" if desc[2] > 8 else "u1"
        return np.frombuffer(raw, dtype=dtype).astype(np.int64)
    return np.asarray(list(raw) if not isinstance(raw, int) else [raw], dtype=np.int64)
