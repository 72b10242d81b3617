"""Plain data types shared by every layer (no Qt, no torch)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

#: Header fields that identify a patient; never burned into an anonymized export,
#: never written to logs.
PHI_FIELDS = (
    "patient_name",
    "patient_id",
    "patient_birth_date",
    "accession_number",
    "institution_name",
)


@dataclass(frozen=True)
class WindowPreset:
    """A named VOI: a window (center/width/function) or one item of the VOI LUT Sequence.

    ``source`` says where it came from: ``"header"`` (Window Center/Width pair),
    ``"voi_lut"`` (VOI LUT Sequence item), ``"auto"`` (robust percentile default),
    ``"builtin"`` (chest presets), ``"full"`` (the full range of an 8-bit image file),
    ``"user"``.
    """

    name: str
    center: float
    width: float
    function: str = "LINEAR"
    source: str = "header"
    explanation: str = ""
    lut_index: int | None = None  # index into VoiLut list when source == "voi_lut"


@dataclass(frozen=True)
class VoiLut:
    """One item of the VOI LUT Sequence (0028,3010)."""

    descriptor: tuple[int, int, int]
    data: np.ndarray
    explanation: str = ""


@dataclass(frozen=True)
class Geometry:
    """Pixel size and what it is calibrated against.

    ``basis`` is ``"PixelSpacing"``, ``"ImagerPixelSpacing"`` or
    ``"ImagerPixelSpacing/EstimatedRadiographicMagnificationFactor"``; ``label`` is the short
    unit text shown next to a measurement, e.g. ``"mm (detector)"``.
    """

    row_spacing_mm: float
    col_spacing_mm: float
    basis: str
    label: str
    description: str = ""


@dataclass
class ImageHeader:
    """The header fields the viewer shows (overlay, browser, tag summary)."""

    patient_name: str = ""
    patient_id: str = ""
    #: Issuer of Patient ID (0010,0021): the same Patient ID from two issuers is two patients
    issuer_of_patient_id: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    patient_age: str = ""
    accession_number: str = ""
    institution_name: str = ""
    study_date: str = ""
    study_time: str = ""
    study_description: str = ""
    series_description: str = ""
    modality: str = ""
    view_position: str = ""
    body_part: str = ""
    series_number: str = ""
    instance_number: str = ""
    manufacturer: str = ""
    sop_instance_uid: str = ""
    study_instance_uid: str = ""
    series_instance_uid: str = ""
    #: Patient Orientation (0020,0020) as written, e.g. ``"L\\F"`` ('' when absent)
    patient_orientation: str = ""
    #: Image Orientation (Patient) (0020,0037): six direction cosines, or ``()``
    image_orientation: tuple[float, ...] = ()
    #: Image Laterality (0020,0062), else Laterality (0020,0060): R, L or B ('' when neither)
    laterality: str = ""

    def anonymized(self) -> ImageHeader:
        """A copy with every PHI field emptied."""
        d = asdict(self)
        for k in PHI_FIELDS:
            d[k] = ""
        # it only qualifies the (emptied) Patient ID; not in PHI_FIELDS, whose values are also
        # scrubbed from logs, where an issuer's short common word would mangle unrelated text
        d["issuer_of_patient_id"] = ""
        return ImageHeader(**d)


@dataclass
class LoadedImage:
    """One decoded frame with everything the display pipeline needs.

    ``stored`` holds the stored values (BitsStored applied, sign resolved) for grayscale,
    or RGB uint8 for colour. ``modality`` is the Modality LUT output (float32) for grayscale
    and ``None`` for colour.
    """

    path: str
    stored: np.ndarray
    modality: np.ndarray | None
    photometric: str
    is_color: bool
    bits_stored: int
    header: ImageHeader
    presets: list[WindowPreset] = field(default_factory=list)
    voi_luts: list[VoiLut] = field(default_factory=list)
    invert: bool = False  # MONOCHROME1 or Presentation LUT Shape INVERSE (one inversion)
    padding_mask: np.ndarray | None = None
    geometry: Geometry | None = None
    units: str = ""  # Rescale Type / modality units, e.g. "HU", "US" (unspecified)
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0
    frame: int = 0
    n_frames: int = 1
    transfer_syntax: str = ""
    kind: str = "dicom"  # "dicom" or "image" (PNG/JPEG)
    auto_preset: WindowPreset | None = None
    #: What pydicom or a decoder tolerated in the file (its warnings), one line each.
    warnings: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return int(self.stored.shape[0])

    @property
    def cols(self) -> int:
        return int(self.stored.shape[1])

    @property
    def default_preset(self) -> WindowPreset | None:
        """The header's first VOI if any, else the robust default (never min/max)."""
        for p in self.presets:
            if p.source in ("header", "voi_lut", "full"):
                return p
        return self.auto_preset


@dataclass
class InstanceInfo:
    """One file (or DICOM instance) in the study index: header facts only, no pixels."""

    path: str
    kind: str  # "dicom" | "image"
    sop_instance_uid: str = ""
    instance_number: int | None = None
    acquisition_time: str = ""
    rows: int | None = None
    columns: int | None = None
    number_of_frames: int = 1
    modality: str = ""
    view_position: str = ""
    photometric_interpretation: str = ""
    transfer_syntax: str = ""
    image_comments: str = ""
    #: pydicom's warnings while reading the header (what it tolerated in the file).
    warnings: list[str] = field(default_factory=list)
    #: Image Laterality, else Laterality: R, L or B ('' when neither); matched by prior search
    laterality: str = ""
    #: Body Part Examined, upper case ('' when absent)
    body_part: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ObjectInfo:
    """A non-image instance the viewer reads: a structured report (``kind="sr"``) or a
    presentation state (``kind="pr"``), listed with its study instead of as an error."""

    path: str
    kind: str  # "sr" | "pr"
    sop_class_uid: str
    sop_instance_uid: str = ""
    series_instance_uid: str = ""
    series_number: str = ""
    series_description: str = ""
    modality: str = ""
    content_date: str = ""
    content_time: str = ""
    #: SOP Instance UIDs of the images it refers to (PR: Referenced Series Sequence;
    #: SR: Current Requested Procedure Evidence Sequence).
    referenced_sop_instance_uids: list[str] = field(default_factory=list)
    #: pydicom's warnings while reading the header (what it tolerated in the file).
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SeriesInfo:
    series_instance_uid: str
    series_number: str = ""
    series_description: str = ""
    modality: str = ""
    instances: list[InstanceInfo] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "instances"}
        d["instances"] = [i.to_dict() for i in self.instances]
        return d


@dataclass
class StudyInfo:
    study_instance_uid: str
    study_date: str = ""
    study_time: str = ""
    study_description: str = ""
    accession_number: str = ""
    series: list[SeriesInfo] = field(default_factory=list)
    #: SR and presentation-state instances of this study (not images; never in ``series``).
    objects: list[ObjectInfo] = field(default_factory=list)
    #: Issuer of Patient ID of its files ('' when absent). Kept per study because the browser
    #: groups patients by Patient ID alone; prior selection must tell issuers apart.
    issuer_of_patient_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k not in ("series", "objects")}
        d["series"] = [s.to_dict() for s in self.series]
        d["objects"] = [o.to_dict() for o in self.objects]
        return d

    @property
    def n_images(self) -> int:
        return sum(len(s.instances) for s in self.series)


@dataclass
class PatientInfo:
    patient_id: str
    patient_name: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    studies: list[StudyInfo] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "studies"}
        d["studies"] = [s.to_dict() for s in self.studies]
        return d


@dataclass(frozen=True)
class FileError:
    """A file that could not be indexed or decoded, and why."""

    path: str
    reason: str
    #: pydicom's warnings while reading the file, often the detail behind ``reason``.
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"path": self.path, "reason": self.reason}
        if self.warnings:
            d["warnings"] = list(self.warnings)
        return d


@dataclass
class ScanResult:
    patients: list[PatientInfo] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    files_seen: int = 0
    cancelled: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "patients": [p.to_dict() for p in self.patients],
            "errors": [e.to_dict() for e in self.errors],
            "files_seen": self.files_seen,
            "cancelled": self.cancelled,
        }

    def instances(self) -> list[InstanceInfo]:
        """Every instance in browser order (patient, study, series, instance)."""
        return [
            i
            for p in self.patients
            for st in p.studies
            for se in st.series
            for i in se.instances
        ]

    def objects(self) -> list[ObjectInfo]:
        """Every SR / presentation state found, in study order."""
        return [o for p in self.patients for st in p.studies for o in st.objects]
