"""De-identified copies of our objects (PS3.15 Annex E Basic Application Level
Confidentiality Profile) through dicognito, with the list of what changed.

dicognito replaces names, IDs, UIDs (consistently within one :class:`dicognito.anonymizer.
Anonymizer`, so an SR still points at the equally de-identified image when both go through
the same seed), addresses, equipment and shifts dates/times. On top of it, for the Basic
Profile's "X" attributes dicognito keeps: free text that came from the source (Study
Description, ...) is removed, private attributes are removed, and the descriptions we wrote
ourselves (no patient data in them) are kept (Clean Descriptors Option). Deidentification
Method Code Sequence records the profile and options used.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass

#: Source free text the Basic Profile removes ("X") and dicognito keeps.
_REMOVE_FREE_TEXT = (
    "StudyDescription", "AdmittingDiagnosesDescription", "AdditionalPatientHistory", "PatientComments",
    "MedicalAlerts", "Allergies", "EthnicGroup", "PatientAge", "PatientSize", "PatientWeight",
    "InstitutionalDepartmentName", "PerformingPhysicianName", "OperatorsName", "RequestAttributesSequence",
    "ReferencedStudySequence", "ReferencedPatientSequence", "OtherPatientIDsSequence", "OtherPatientNames",
    "PatientBirthName", "PatientMotherBirthName", "CountryOfResidence", "RegionOfResidence",
)

#: (code value, meaning) in DCM for Deidentification Method Code Sequence (PS3.16 CID 7050).
_METHOD_CODES = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113105", "Clean Descriptors Option"),
    ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
)


@dataclass(frozen=True)
class Change:
    """One attribute that de-identification changed (values are never recorded: PHI)."""

    path: str  # e.g. "PatientName" or "ReferencedSeriesSequence[0].SeriesInstanceUID"
    keyword: str
    action: str  # "replaced", "removed" or "added"


def _flatten(ds, prefix: str = "") -> dict[str, tuple[str, object]]:
    out: dict[str, tuple[str, object]] = {}
    for elem in ds:
        kw = elem.keyword or f"({elem.tag.group:04X},{elem.tag.element:04X})"
        if elem.tag == 0x7FE00010:
            out[prefix + kw] = (kw, len(elem.value or b""))  # pixels are compared by size only
        elif elem.VR == "SQ":
            for i, item in enumerate(elem.value or []):
                out.update(_flatten(item, f"{prefix}{kw}[{i}]."))
            out[prefix + kw] = (kw, len(elem.value or []))
        else:
            out[prefix + kw] = (kw, str(elem.value))
    return out


def diff(before, after) -> list[Change]:
    """What changed between two datasets, attribute by attribute (nested paths included)."""
    a, b = _flatten(before), _flatten(after)
    changes = []
    for path in sorted(set(a) | set(b)):
        if path in a and path not in b:
            changes.append(Change(path, a[path][0], "removed"))
        elif path in b and path not in a:
            changes.append(Change(path, b[path][0], "added"))
        elif a[path][1] != b[path][1] and not path.endswith("]"):
            changes.append(Change(path, a[path][0], "replaced"))
    # a sequence whose length did not change is not itself a change (its items are listed)
    return [c for c in changes if not (c.action == "replaced" and isinstance(a.get(c.path, (0, ""))[1], int))]


def reencode(ds):
    """``ds`` written and read back: the dataset a receiver gets. Values become what a file
    holds (highdicom leaves ``datetime.date`` objects in DA elements, which dicognito's date
    shifter cannot parse), and the original is left untouched."""
    import io

    import pydicom

    buf = io.BytesIO()
    copy.deepcopy(ds).save_as(buf, enforce_file_format=True)
    buf.seek(0)
    return pydicom.dcmread(buf)


def deidentify(ds, *, seed: str | None = None, pixels_clean: bool = False, anonymizer=None):
    """A de-identified copy of ``ds`` and the list of changes.

    Parameters
    ----------
    seed
        dicognito's seed: the same seed maps the same UIDs/IDs the same way, so objects and
        their source images de-identified separately still reference each other.
    pixels_clean
        The caller guarantees the pixels carry no identifying burned-in text (our SC
        rendered with anonymized corner text and no dates): Burned In Annotation becomes NO
        and dicognito then sets Patient Identity Removed to YES. Otherwise it stays as it is
        and Patient Identity Removed says NO.
    anonymizer
        A ``dicognito.anonymizer.Anonymizer`` to reuse (else one is made from ``seed``).

    Returns
    -------
    (pydicom.Dataset, list[Change])
    """
    from dicognito.anonymizer import Anonymizer
    from pydicom.dataset import Dataset

    before = reencode(ds)
    out = copy.deepcopy(before)
    if pixels_clean and "BurnedInAnnotation" in out:
        out.BurnedInAnnotation = "NO"
    an = anonymizer or Anonymizer(seed=seed)
    an.anonymize(out)
    for kw in _REMOVE_FREE_TEXT:
        if kw in out:
            del out[kw]
    out.remove_private_tags()
    items = []
    for value, meaning in _METHOD_CODES:
        it = Dataset()
        it.CodeValue, it.CodingSchemeDesignator, it.CodeMeaning = value, "DCM", meaning
        items.append(it)
    out.DeidentificationMethodCodeSequence = items
    if "PixelData" not in out:
        out.PatientIdentityRemoved = "YES"  # SR / presentation state: no pixels to carry text
    elif "PatientIdentityRemoved" not in out:
        out.PatientIdentityRemoved = "NO"
    # the file meta mirrors the (new) SOP Instance UID
    if getattr(out, "file_meta", None) is not None and "SOPInstanceUID" in out:
        out.file_meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    return out, diff(before, out)


def summarize(changes: Iterable[Change]) -> list[str]:
    """One line per (action, attribute), nested occurrences counted: for a closing note."""
    counts: dict[tuple[str, str], int] = {}
    for c in changes:
        counts[(c.action, c.keyword)] = counts.get((c.action, c.keyword), 0) + 1
    return [f"{action} {kw}" + (f" (x{n})" if n > 1 else "") for (action, kw), n in sorted(counts.items())]
