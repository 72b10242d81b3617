"""The reader's own call in the TID 1500 report, attributed to a person, not to the device.

The AI result's group inherits the report's observation context: the cxrviewer *device*
(TID 1004). The reader's call is a separate TID 1501 group tracked as
:data:`READER_TRACKING_ID` that overrides the observer for its content (PS3.3 C.17.3.2.2
observation context inheritance; PS3.16 TID 1002): ``HAS OBS CONTEXT`` Observer Type =
Person (DCM 121006) and Person Observer Name (DCM 121008) = the reader. It holds the
Normal/Abnormal call as a qualitative evaluation (SNOMED CT Normal/Abnormal, as the AI's
label) and, for a multi-finding model, each finding the reader spoke about as Present
(SCT 52101004) or Absent (SCT 272519000). The reader's free-text note is *not* written: it may
name the patient, and the report travels with the image.

De-identification (:func:`cxrviewer.dicom.deid.deidentify`) treats the Person Observer Name
like every other PN value in the file, so the reader's name does not survive it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cxrviewer.dicom.common import SCHEME

READER_TRACKING_ID = "cxrviewer reader call"
#: the concept of the reader's Normal/Abnormal call
READER_LABEL = ("READER-LABEL", SCHEME, "Reader classification")


@dataclass(frozen=True)
class ReaderCall:
    """A reader's call on the source image, as written into the SR.

    ``reader`` is the person's name as the store keeps it (written as a DICOM PN: a plain
    name is its family-name component); ``label`` ``"normal"``/``"abnormal"``; ``findings``
    finding name -> 1 present / 0 absent.
    """

    reader: str
    label: str
    findings: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.label not in ("normal", "abnormal"):
            raise ValueError(f"reader label must be normal or abnormal, not {self.label!r}")
        if not self.reader.strip():
            raise ValueError("the reader's name is empty")


def _finding_code(name: str):
    from highdicom.sr import CodedConcept

    value = "F-" + "".join(ch if ch.isalnum() else "-" for ch in name.strip().upper())[:14]
    return CodedConcept(value, SCHEME, name.strip()[:64])


def reader_group(call: ReaderCall, group_source, finding_concept):
    """The TID 1501 group of ``call`` (``group_source``: the source image reference,
    ``finding_concept``: the AI group's finding type, so both groups answer one question)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    present, absent = codes.SCT.Present, codes.SCT.Absent
    evaluations = [hd.sr.QualitativeEvaluation(
        name=hd.sr.CodedConcept(*READER_LABEL),
        value=codes.SCT.Abnormal if call.label == "abnormal" else codes.SCT.Normal)]
    for name, value in sorted(call.findings.items()):
        evaluations.append(hd.sr.QualitativeEvaluation(name=_finding_code(name), value=present if value else absent))
    from cxrviewer.dicom.common import new_uid

    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=new_uid(), identifier=READER_TRACKING_ID),
        finding_type=finding_concept,
        qualitative_evaluations=evaluations,
        source_images=[group_source],
    )
    person = hd.sr.ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(name=_pn(call.reader)),
    )
    # the observer override comes first in the group, before the content it applies to
    seq = group[0].ContentSequence
    items = list(person) + list(seq)
    del seq[:]
    seq.extend(items)
    return group


def _pn(name: str) -> str:
    """A reader's name as a PN value: kept as typed when already DICOM-style (``^``), else as
    the family-name component (a trailing ``^`` says so, PS3.5 6.2.1.2); backslashes (the
    value separator) become spaces."""
    pn = name.strip().replace("\\", " ")[:63]
    return pn if "^" in pn else pn + "^"


def read_reader_calls(ds) -> list[ReaderCall]:
    """The reader calls stored in an SR we wrote (``[]`` when none)."""
    from cxrviewer.dicom.sr import _code_of, _groups, _text

    out = []
    for g in _groups(ds):
        if _text(g, ("112039", "DCM")) != READER_TRACKING_ID:
            continue
        reader, label, findings = "", None, {}
        for it in g.get("ContentSequence") or []:
            code = _code_of(it)
            if code == ("121008", "DCM"):
                reader = str(it.get("PersonName", "")).rstrip("^")
            elif it.get("ValueType") == "CODE" and it.get("ConceptCodeSequence"):
                cc = it.ConceptCodeSequence[0]
                value = (str(cc.get("CodeValue") or cc.get("LongCodeValue") or ""), str(cc.CodingSchemeDesignator))
                if code == READER_LABEL[:2]:
                    label = {"17621005": "normal", "263654008": "abnormal"}.get(value[0])
                elif code[1] == SCHEME and code[0].startswith("F-"):
                    findings[str(it.ConceptNameCodeSequence[0].CodeMeaning)] = int(value[0] == "52101004")
        if label and reader:
            out.append(ReaderCall(reader, label, findings))
    return out
