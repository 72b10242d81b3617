"""Codes of chest findings for the SR (one entry per finding): SNOMED CT where one exists.

Sources: the SNOMED CT concepts of DICOM PS3.16 as pydicom ships them
(``pydicom.sr.codedict.codes.SCT``: Pneumothorax, Pulmonary edema, Pleural effusion,
Cardiomegaly, Nodule, Mass) and four well-established SNOMED CT concepts (Atelectasis
46621007, Pneumonia 233604007, Pulmonary emphysema 87433001, Fracture of bone 125605004).
Findings whose label has no SNOMED CT concept of the same meaning (torchxrayvision's
"Lung Opacity", "Enlarged Cardiomediastinum", "Lung Lesion", "Infiltration",
"Consolidation", "Fibrosis", "Pleural_Thickening", "Hernia" as labelled in its training sets)
get a code of the private scheme ``99CXRV`` (:data:`cxrviewer.dicom.common.SCHEME`):
``FINDING-`` + the upper-cased label, meaning the label itself. A guessed SNOMED code would
tell a PACS something the model never claimed, so unsure mappings stay private.
"""

from __future__ import annotations

SNOMED = "SCT"
#: the private scheme of the SR (equal to cxrviewer.dicom.common.SCHEME, which ml may not import;
#: tests/ml/test_xrv.py keeps them equal)
PRIVATE_SCHEME = "99CXRV"

#: finding label (torchxrayvision's spelling) -> (SNOMED CT code, meaning)
SNOMED_CODES: dict[str, tuple[str, str]] = {
    "Atelectasis": ("46621007", "Atelectasis"),
    "Pneumothorax": ("36118008", "Pneumothorax"),
    "Edema": ("19242006", "Pulmonary edema"),
    "Emphysema": ("87433001", "Pulmonary emphysema"),
    "Effusion": ("60046008", "Pleural effusion"),
    "Pneumonia": ("233604007", "Pneumonia"),
    "Cardiomegaly": ("287272002", "Cardiomegaly"),
    "Nodule": ("27925004", "Nodule"),
    "Mass": ("4147007", "Mass"),
    "Fracture": ("125605004", "Fracture of bone"),
}


def finding_code(name: str, private_scheme: str = PRIVATE_SCHEME) -> tuple[str, str, str]:
    """``(value, scheme, meaning)`` of a finding: SNOMED CT when known, else private."""
    if name in SNOMED_CODES:
        value, meaning = SNOMED_CODES[name]
        return value, SNOMED, meaning
    value = "FINDING-" + "".join(ch if ch.isalnum() else "-" for ch in name.upper())
    return value[:16], private_scheme, name  # the label as published: read back by name
