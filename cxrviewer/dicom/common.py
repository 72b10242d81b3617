"""What the three writers share: the inputs (AI result, measurements), the source image's
header, our equipment identity and the atomic writer.

Coordinates everywhere are the viewer's image coordinates: x = column, y = row, continuous,
pixel ``(r, c)`` covering ``[c, c+1] x [r, r+1]``. That is also DICOM's convention for SR
SCOORD and presentation-state PIXEL units (PS3.3 C.18.6.1.2, C.10.5.1.2: the top left corner
of the top left pixel is 0\\0), so points are written unchanged.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cxrviewer.core.errors import CxrError

#: Burned into every Secondary Capture and written into Image Comments / Series Description.
NOT_FOR_DIAGNOSTIC = "NOT FOR DIAGNOSTIC USE"
MANUFACTURER = "cxrviewer"
MODEL_NAME = "cxrviewer"
#: Private coding scheme for concepts no standard code covers (PS3.16 8.2: "99" prefix).
SCHEME = "99CXRV"
#: Series Number of each object type (a new series each time; the number only groups them).
SERIES_NUMBERS = {"sc": 9901, "sr": 9902, "pr": 9903}

DICOM_KINDS = ("sc", "sr", "gsps")


class DicomObjectError(CxrError):
    """A DICOM object could not be built from this source (the reason says why)."""


@dataclass(frozen=True)
class AiFinding:
    """One finding of a multi-finding model in the SR: name, probability on the model's scale,
    whether it is at/above its operating point (never when it has none), and its code
    ``(value, scheme, meaning)``: SNOMED CT where one exists, the private scheme otherwise
    (``cxrviewer.ml.findings``)."""

    name: str
    probability: float
    positive: bool = False
    op_point: float | None = None
    code: tuple[str, str, str] | None = None


@dataclass(frozen=True)
class AiResult:
    """The model's answer for one image, as written into the SR.

    ``ood_status`` / ``ood_reason``: the out-of-distribution gate's verdict (e.g. ``"ok"``,
    ``"out_of_distribution"``) when the model has one (``cxrviewer.ml.ood``); ``None`` when
    it has none. A :attr:`refused` result carries no probability and no label anywhere
    (``probability_abnormal`` is ``None``, ``label`` empty, no findings): only the verdict.
    ``findings``: one entry per finding of a multi-finding model. ``stored`` is True for a
    result read back from an SR.
    """

    probability_abnormal: float | None
    label: str
    threshold: float
    model_name: str
    model_version: str
    weights_sha256: str = ""
    ood_status: str | None = None
    ood_reason: str | None = None
    stored: bool = False
    source_sop_instance_uid: str = ""
    findings: tuple[AiFinding, ...] = ()

    @property
    def refused(self) -> bool:
        """The out-of-distribution gate refused the image (it was not scored)."""
        return bool(self.ood_status) and self.ood_status != "ok"

    def __post_init__(self) -> None:
        if self.refused:
            # whatever the caller passed, a refused image carries no number and no verdict
            object.__setattr__(self, "probability_abnormal", None)
            object.__setattr__(self, "label", "")
            object.__setattr__(self, "findings", ())
            return
        if self.probability_abnormal is None:
            raise ValueError("P(Abnormal) is missing for an image the gate did not refuse")
        p = float(self.probability_abnormal)
        if not (math.isfinite(p) and 0.0 <= p <= 1.0):
            raise ValueError(f"P(Abnormal) must be in [0, 1], not {self.probability_abnormal!r}")

    def text_lines(self) -> list[str]:
        """Short lines for corner text / GSPS text (what the viewer shows)."""
        tag = "AI (stored)" if self.stored else "AI"
        if self.refused:
            first = f"{tag}: not scored (out of distribution)"
        else:
            first = f"{tag}: P(Abnormal) {self.probability_abnormal:.2f} -> {self.label} (thr {self.threshold:.2f})"
        lines = [first, f"{self.model_name} {self.model_version}"]
        if self.ood_status:
            lines.append(f"OOD: {self.ood_status}" + (f" ({self.ood_reason})" if self.ood_reason else ""))
        return lines


@dataclass(frozen=True)
class Measurement:
    """A reader's measurement on the source image.

    ``kind``: ``"length"`` (2 points), ``"angle"`` (3 points: end, vertex, end), ``"cobb"`` /
    ``"ctr"`` (4 points: two lines; Cobb angle, cardiothoracic ratio with the thorax line
    first) or ``"roi"`` (a closed polygon, 3+ points, with statistics). ``values``: ``(name, value, unit)``
    triples, e.g. ``("Length", 42.1, "mm")``; names are ``Length``, ``Angle``, ``Cobb Angle``,
    ``Cardiothoracic Ratio``, ``Mean``, ``Standard Deviation``, ``Minimum``, ``Maximum``, ``Area``; units ``mm``, ``px``,
    ``deg``, ``mm2``, ``px2``, ``HU`` or ``""`` (no unit). ``label`` is the text the viewer
    draws beside it. ``basis`` says what a mm value is calibrated against.
    """

    kind: str
    points: tuple[tuple[float, float], ...]
    values: tuple[tuple[str, float, str], ...]
    label: str = ""
    basis: str = ""

    def __post_init__(self) -> None:
        need = {"length": 2, "angle": 3, "roi": 3, "cobb": 4, "ctr": 4}
        if self.kind not in need:
            raise ValueError(f"measurement kind must be one of {', '.join(need)}, not {self.kind!r}")
        if len(self.points) < need[self.kind] or (self.kind != "roi" and len(self.points) != need[self.kind]):
            raise ValueError(f"a {self.kind} measurement needs {need[self.kind]} points, got {len(self.points)}")
        for x, y in self.points:
            if not (math.isfinite(x) and math.isfinite(y)):
                raise ValueError("measurement points must be finite numbers")

    @classmethod
    def length(cls, p0: tuple[float, float], p1: tuple[float, float], value: float, unit: str,
               label: str = "", basis: str = "") -> Measurement:
        """A ruler: ``value`` in ``unit`` (``"mm"`` or ``"px"``)."""
        return cls("length", (tuple(map(float, p0)), tuple(map(float, p1))), (("Length", float(value), unit),),
                   label or f"{value:.1f} {unit}", basis)


@dataclass(frozen=True)
class ReaderView:
    """What the reader sees: window (modality units), orientation and invert.

    Orientation as on the canvas: rotate clockwise ``rotation`` quarter turns, then flip
    horizontally, then vertically, in screen axes.
    """

    window_center: float | None = None
    window_width: float | None = None
    window_name: str = ""
    voi_function: str = "LINEAR"
    rotation: int = 0
    flip_h: bool = False
    flip_v: bool = False
    invert: bool = False
    measurements: tuple[Measurement, ...] = field(default_factory=tuple)


def source_dataset(path: str | os.PathLike):
    """The source image's header (no pixels) for building an object in its study.

    Raises
    ------
    DicomObjectError
        When the file is not a DICOM image with the UIDs an object must reference.
    """
    from cxrviewer.core.dicom_io import read_dataset

    p = os.fspath(path)
    if Path(p).suffix.lower() in (".png", ".jpg", ".jpeg"):
        raise DicomObjectError(p, "a DICOM object needs a DICOM source image (it goes into the "
                                  "source's study); this is a PNG/JPEG file")
    ds = read_dataset(p, stop_before_pixels=True)
    check_source(ds, p)
    return ds


def check_source(ds, path: str | None = None) -> None:
    """Refuse a source without the UIDs and image attributes every object references."""
    missing = [k for k in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "Rows", "Columns")
               if not str(ds.get(k, "") or "").strip()]
    if missing:
        raise DicomObjectError(path, "cannot reference this image from a DICOM object: it has no "
                               + ", ".join(missing))


#: Type 2 attributes of the Patient / General Study modules (and SamplesPerPixel) that the
#: highdicom constructors read from the source; a source without them gets them empty.
_TYPE2_DEFAULTS = (("PatientName", ""), ("PatientID", ""), ("PatientBirthDate", ""), ("PatientSex", ""),
                   ("AccessionNumber", ""), ("StudyID", ""), ("StudyDate", ""), ("StudyTime", ""),
                   ("ReferringPhysicianName", ""))


def prepared_source(ds, path: str | None = None):
    """A checked copy of the source header with the type 2 attributes every object copies
    present (empty when the source lacks them: many real files omit Study ID or Patient ID).

    The source dataset itself is never modified.
    """
    import copy

    check_source(ds, path)
    out = copy.deepcopy(ds)
    for kw, default in _TYPE2_DEFAULTS:
        if kw not in out:
            setattr(out, kw, default)
    if "SamplesPerPixel" not in out:
        out.SamplesPerPixel = 1
    _clean_da_tm(out)
    if multiframe_iod(out) and "NumberOfFrames" not in out:
        out.NumberOfFrames = 1  # a multi-frame IOD's instance that omits it has one frame
    if str(out.get("PatientIdentityRemoved", "")).upper() == "YES" and not (
            out.get("DeidentificationMethod") or out.get("DeidentificationMethodCodeSequence")):
        # type 1C once identity is removed; the source claims it without saying how
        out.DeidentificationMethod = "removed before cxrviewer; method not recorded"
    return out


def multiframe_iod(ds) -> bool:
    """Whether the source's IOD is a multi-frame one (its SOP class allows Number of Frames),
    which is when a reference may name a frame; a single-frame class carrying Number of Frames
    (seen in the wild) must not be referenced by frame."""
    try:
        from highdicom._standard_utils import is_multiframe_image

        return bool(is_multiframe_image(ds))
    except Exception:  # noqa: BLE001 - an unknown SOP class: go by the header
        return int(ds.get("NumberOfFrames", 1) or 1) > 1


def frame_numbers(ds, frame: int) -> list[int] | None:
    """Referenced Frame Number (1-based) for ``frame`` of a multi-frame source, else ``None``."""
    return [int(frame) + 1] if multiframe_iod(ds) else None


def _clean_da_tm(out) -> None:
    """Study/birth date and study time as DA/TM: old ACR-NEMA style values ("1995.09.26",
    "11:20:00") lose their separators; what still is not a DA/TM becomes empty (type 2)."""
    import re

    rules = (("StudyDate", ".-/", r"\d{8}"), ("PatientBirthDate", ".-/", r"\d{8}"),
             ("StudyTime", ":", r"\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?"))
    for kw, seps, pattern in rules:
        v = str(out.get(kw, "") or "").strip()
        if v:
            v = v.translate({ord(c): None for c in seps})
            setattr(out, kw, v if re.fullmatch(pattern, v) else "")


def new_uid() -> str:
    """A fresh UID (2.25 UUID form: no registered root needed)."""
    from highdicom import UID

    return str(UID())


def software_version() -> str:
    from cxrviewer import __version__

    return f"cxrviewer {__version__}"


def study_kwargs(src) -> dict:
    """Patient/study attributes copied from the source (General Study and Patient modules),
    type 2 attributes left empty where the source has none."""
    return {
        "patient_id": str(src.get("PatientID", "") or ""),
        "patient_name": src.get("PatientName", "") or "",
        "patient_birth_date": str(src.get("PatientBirthDate", "") or ""),
        "patient_sex": _sex(src.get("PatientSex")),
        "accession_number": str(src.get("AccessionNumber", "") or ""),
        "study_id": str(src.get("StudyID", "") or ""),
        "study_date": str(src.get("StudyDate", "") or "") or None,
        "study_time": str(src.get("StudyTime", "") or "") or None,
        "referring_physician_name": src.get("ReferringPhysicianName", "") or "",
    }


def _sex(v) -> str | None:
    s = str(v or "").strip().upper()
    return s if s in ("M", "F", "O") else None


def copy_patient_study(dst, src) -> None:
    """Copy the rest of the Patient and General Study modules verbatim (what highdicom's
    constructors do not), so the object files under the same patient and study.

    The object is written in UTF-8 (ISO_IR 192): names decoded from any source character set
    re-encode losslessly, and so does our own text.
    """
    dst.SpecificCharacterSet = "ISO_IR 192"
    for kw in ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex", "PatientAge",
               "PatientIdentityRemoved", "DeidentificationMethod", "DeidentificationMethodCodeSequence",
               "StudyInstanceUID", "StudyDate", "StudyTime", "StudyID", "AccessionNumber",
               "StudyDescription", "ReferringPhysicianName"):
        if kw in src and src[kw].value not in (None, ""):
            dst[kw] = src[kw]


@contextlib.contextmanager
def quiet_source_warnings():
    """highdicom warns about the *source's* values it copies (a one-component person name
    such as "ward"); that is the source's conformance, not ours, and not actionable here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*unlikely to represent the intended person name.*")
        yield


def set_laterality(dst, src) -> None:
    """General Series Laterality (type 2C for paired body parts, which dciodvfy takes a chest
    to be): the source's when it says R or L, else present and empty (unknown)."""
    lat = str(src.get("Laterality") or src.get("ImageLaterality") or "").strip().upper()
    dst.Laterality = lat if lat in ("R", "L") else None


def unit_concept(unit: str):
    """UCUM coded concept for a measurement unit."""
    from highdicom.sr import CodedConcept

    u = (unit or "").strip()
    table = {
        "mm": ("mm", "millimeter"),
        "px": ("{pixels}", "pixels"),
        "deg": ("deg", "degree"),
        "°": ("deg", "degree"),
        "mm2": ("mm2", "square millimeter"),
        "px2": ("{pixels}2", "square pixels"),
        "HU": ("[hnsf'U]", "Hounsfield unit"),
        "": ("1", "no units"),
        "1": ("1", "no units"),
    }
    if u.startswith("mm"):
        u = "mm2" if u.startswith("mm2") or u.startswith("mm²") else "mm"  # "mm (detector)" -> mm
    value, meaning = table.get(u, ("1", "no units"))
    return CodedConcept(value, "UCUM", meaning)


def unit_text(concept_value: str) -> str:
    """The viewer's unit text for a UCUM code value (inverse of :func:`unit_concept`)."""
    return {"mm": "mm", "{pixels}": "px", "deg": "deg", "mm2": "mm2", "{pixels}2": "px2",
            "[hnsf'U]": "HU", "1": ""}.get(concept_value, concept_value)


def write_dataset(ds, path: str | os.PathLike) -> Path:
    """Atomically write ``ds`` as a DICOM Part 10 file (temp file + rename).

    Raises :class:`cxrviewer.atomic.WriteError` naming the file when it cannot be written.
    """
    from cxrviewer.atomic import write_with

    def writer(tmp: Path) -> None:
        ds.save_as(tmp, enforce_file_format=True)

    return write_with(path, writer, suffix=".dcm")


def ensure_not_source(out: str | os.PathLike, sources: Sequence[str | os.PathLike]) -> None:
    """Never overwrite a source file."""
    o = os.path.abspath(os.fspath(out))
    for s in sources:
        if o == os.path.abspath(os.fspath(s)):
            raise DicomObjectError(out, "refusing to overwrite the source image")
