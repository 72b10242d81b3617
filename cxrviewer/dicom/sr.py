"""Comprehensive 3D SR holding a TID 1500 Measurement Report: the AI result and the reader's
measurements, each referencing the source image (highdicom), and reading the AI result back.

Layout of the report (PS3.16 TID 1500):

* one TID 1501 group tracked as :data:`AI_TRACKING_ID` for the AI result: Algorithm
  Identification (TID 4019: model name, version, ``weights_sha256=...`` and
  ``threshold=...`` as parameters), the numeric P(Abnormal) and the threshold, the label as
  a qualitative evaluation (SNOMED Normal / Abnormal), the out-of-distribution status and
  reason when the model has a gate, and the source image;
* one TID 1501 group per length or angle, the value inferred from an SCOORD polyline on the
  source image (TID 300);
* one TID 1410 planar ROI group per ROI (a closed SCOORD polygon) with its statistics.

Concepts without a standard code (P(Abnormal), the threshold, the OOD verdict) use the
private scheme :data:`~cxrviewer.dicom.common.SCHEME` (PS3.16 8.2 allows "99" schemes).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import numpy as np

from cxrviewer.dicom.common import (
    MANUFACTURER,
    MODEL_NAME,
    NOT_FOR_DIAGNOSTIC,
    SCHEME,
    SERIES_NUMBERS,
    AiFinding,
    AiResult,
    DicomObjectError,
    Measurement,
    copy_patient_study,
    frame_numbers,
    new_uid,
    prepared_source,
    quiet_source_warnings,
    software_version,
    unit_concept,
    unit_text,
)

AI_TRACKING_ID = "cxrviewer AI result"
SR_TITLE_DESCRIPTION = f"cxrviewer AI result and measurements - {NOT_FOR_DIAGNOSTIC}"

#: UID of the cxrviewer device as an observer (stable across runs: uuid5 of the name).
DEVICE_UID = f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, 'https://cxrviewer.invalid/device').int}"


def _cc(value: str, scheme: str, meaning: str):
    from highdicom.sr import CodedConcept

    return CodedConcept(value, scheme, meaning)


def _codes():
    from pydicom.sr.codedict import codes

    return {
        "p_abnormal": _cc("P-ABNORMAL", SCHEME, "Probability of Abnormal"),
        "threshold": _cc("THRESHOLD", SCHEME, "Operating threshold"),
        "label": _cc("AI-LABEL", SCHEME, "AI classification"),
        "ood": _cc("OOD-STATUS", SCHEME, "Out-of-distribution status"),
        "ood_reason": _cc("OOD-REASON", SCHEME, "Out-of-distribution reason"),
        "weights": _cc("WEIGHTS-SHA256", SCHEME, "Model weights sha256"),
        "basis": _cc("MEAS-BASIS", SCHEME, "Pixel size calibration basis"),
        "finding": _cc("CXR-NORMAL-ABNORMAL", SCHEME, "Chest radiograph Normal/Abnormal classification"),
        "Normal": codes.SCT.Normal,
        "Abnormal": codes.SCT.Abnormal,
        "Length": codes.SCT.Length,
        "Angle": codes.SCT.Angle,
        "Cobb Angle": _cc("COBB", SCHEME, "Cobb angle"),
        "Cardiothoracic Ratio": _cc("CTR", SCHEME, "Cardiothoracic ratio"),
        "Mean": codes.SCT.Mean,
        "Standard Deviation": codes.SCT.StandardDeviation,
        "Minimum": codes.SCT.Minimum,
        "Maximum": codes.SCT.Maximum,
        "Area": codes.SCT.Area,
    }


def coding_scheme_item():
    """Coding Scheme Identification item documenting the private scheme (PS3.3 C.12.1.1.5)."""
    from pydicom.dataset import Dataset

    it = Dataset()
    it.CodingSchemeDesignator = SCHEME
    it.CodingSchemeName = "cxrviewer private concepts"
    it.CodingSchemeResponsibleOrganization = "cxrviewer"
    return it


def _ood_code(status: str):
    s = "".join(ch if ch.isalnum() else "-" for ch in status.strip().upper())[:16] or "UNKNOWN"
    return _cc(s, SCHEME, status.strip()[:64] or "unknown")


def _source_refs(source, frame: int):
    import highdicom as hd

    frames = frame_numbers(source, frame)
    kw = {"referenced_sop_class_uid": source.SOPClassUID, "referenced_sop_instance_uid": source.SOPInstanceUID,
          "referenced_frame_numbers": frames}
    return hd.sr.SourceImageForMeasurementGroup(**kw), hd.sr.SourceImageForRegion(**kw)


def _ai_group(ai: AiResult, source, frame: int):
    import highdicom as hd
    from highdicom.sr import RelationshipTypeValues

    c = _codes()
    group_src, _ = _source_refs(source, frame)
    params = [f"threshold={ai.threshold:.6g}"]
    if ai.weights_sha256:
        params.insert(0, f"weights_sha256={ai.weights_sha256}")
    algo = hd.sr.AlgorithmIdentification(name=ai.model_name[:64] or "unknown", version=ai.model_version[:64] or "unknown",
                                         parameters=params)
    one = unit_concept("")
    measurements = []
    if not ai.refused:
        # A refused image (out of distribution) carries no number and no verdict: only the
        # gate's status and reason below (the SR of a CT once said "Abnormal" beside them).
        measurements = [
            hd.sr.Measurement(name=c["p_abnormal"], value=round(float(ai.probability_abnormal), 6), unit=one,
                              algorithm_id=algo),
            hd.sr.Measurement(name=c["threshold"], value=round(float(ai.threshold), 6), unit=one),
        ]
        for f in ai.findings:
            # one numeric entry per finding, named by its code (SNOMED CT where one exists,
            # else the private scheme; cxrviewer.ml.findings documents which)
            value, scheme, meaning = f.code or ("FINDING", SCHEME, f.name)
            measurements.append(hd.sr.Measurement(name=_cc(value, scheme, meaning[:64]),
                                                  value=round(float(f.probability), 6), unit=one,
                                                  algorithm_id=algo))
    label = ai.label if ai.label in ("Normal", "Abnormal") and not ai.refused else None
    evaluations = []
    if label is not None:
        evaluations.append(hd.sr.QualitativeEvaluation(name=c["label"], value=c[label]))
    if ai.ood_status:
        evaluations.append(hd.sr.QualitativeEvaluation(name=c["ood"], value=_ood_code(ai.ood_status)))
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=new_uid(), identifier=AI_TRACKING_ID),
        finding_type=c["finding"],
        algorithm_id=algo,
        measurements=measurements or None,
        qualitative_evaluations=evaluations or None,
        source_images=[group_src],
    )
    # Free text the coded items cannot carry: the full hash and the OOD gate's reason.
    extra = []
    if ai.weights_sha256:
        extra.append(hd.sr.TextContentItem(name=c["weights"], value=ai.weights_sha256,
                                           relationship_type=RelationshipTypeValues.CONTAINS))
    if ai.ood_reason:
        extra.append(hd.sr.TextContentItem(name=c["ood_reason"], value=str(ai.ood_reason)[:1024],
                                           relationship_type=RelationshipTypeValues.CONTAINS))
    if extra:
        group[0].ContentSequence.extend(extra)
    return group


def _measurement_group(i: int, m: Measurement, source, frame: int):
    import highdicom as hd

    c = _codes()
    group_src, region_src = _source_refs(source, frame)
    pts = np.asarray(m.points, dtype=np.float64)
    tracking = hd.sr.TrackingIdentifier(uid=new_uid(), identifier=f"Reader {m.kind} {i + 1}")
    if m.kind in ("length", "angle", "cobb", "ctr"):
        # one polyline, or two lines (Cobb, CTR): the value is inferred from these SCOORDs (TID 300)
        lines = [pts] if m.kind in ("length", "angle") else [pts[0:2], pts[2:4]]
        coords = [hd.sr.CoordinatesForMeasurement(graphic_type="POLYLINE", graphic_data=ln, source_image=region_src)
                  for ln in lines]
        items = []
        for j, (name, value, unit) in enumerate(m.values):
            if name not in c:
                raise DicomObjectError(None, f"unknown measurement name {name!r}")
            items.append(hd.sr.Measurement(name=c[name], value=float(value), unit=unit_concept(unit),
                                           referenced_coordinates=coords if j == 0 else None))
        group = hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=tracking, measurements=items, source_images=[group_src])
        if m.basis:
            # mm against Imager Pixel Spacing is at the detector, not in the patient: say so
            from highdicom.sr import RelationshipTypeValues

            group[0].ContentSequence.append(hd.sr.TextContentItem(
                name=c["basis"], value=m.basis[:1024], relationship_type=RelationshipTypeValues.CONTAINS))
        return group
    if not np.allclose(pts[0], pts[-1]):
        pts = np.vstack([pts, pts[:1]])  # a closed SCOORD POLYLINE: first vertex = last (PS3.3 C.18.6.1.1)
    region = hd.sr.ImageRegion(graphic_type="POLYLINE", graphic_data=pts, source_image=region_src)
    items = [hd.sr.Measurement(name=c[name], value=float(value), unit=unit_concept(unit)) for name, value, unit in m.values
             if name in c]
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking, referenced_region=region, measurements=items or None)


def make_sr(
    source,
    ai: AiResult | None = None,
    measurements: Sequence[Measurement] = (),
    *,
    frame: int = 0,
    series_instance_uid: str | None = None,
    instance_number: int = 1,
    reader_call=None,
):
    """A Comprehensive 3D SR (TID 1500) in the source's study.

    Parameters
    ----------
    source
        The source image's dataset (header only is enough; it is the SR's evidence).
    ai
        The model's result for the source image, or ``None``.
    measurements
        The reader's lengths, angles and ROI statistics on the source image.
    reader_call
        The reader's own call (:class:`cxrviewer.dicom.sr_reader.ReaderCall`), in its own
        group attributed to the reader as a person, or ``None``.

    Returns
    -------
    pydicom.Dataset
        A highdicom ``Comprehensive3DSR`` (complete, unverified).
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    source = prepared_source(source)
    if ai is None and not measurements and reader_call is None:
        raise DicomObjectError(None, "nothing to report: no AI result, no measurements and no reader call")
    groups = []
    if ai is not None:
        groups.append(_ai_group(ai, source, frame))
    for i, m in enumerate(measurements):
        groups.append(_measurement_group(i, m, source, frame))
    if reader_call is not None:
        from cxrviewer.dicom.sr_reader import reader_group

        groups.append(reader_group(reader_call, _source_refs(source, frame)[0], _codes()["finding"]))
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=DEVICE_UID, name=MODEL_NAME, manufacturer_name=MANUFACTURER, model_name=software_version()[:64]),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=_cc("168731009", "SCT", "Chest X-ray"),
        imaging_measurements=groups,
    )
    with quiet_source_warnings():
        sr = hd.sr.Comprehensive3DSR(
            evidence=[source],
            content=report[0],
            series_instance_uid=series_instance_uid or new_uid(),
            series_number=SERIES_NUMBERS["sr"],
            sop_instance_uid=new_uid(),
            instance_number=instance_number,
            manufacturer=MANUFACTURER,
            is_complete=True,
        )
    copy_patient_study(sr, source)
    sr.CodingSchemeIdentificationSequence = [coding_scheme_item()]
    sr.SeriesDescription = SR_TITLE_DESCRIPTION[:64]
    sr.SoftwareVersions = software_version()
    return sr


# ---------------------------------------------------------------------------- reading back


def _code_of(item, attr: str = "ConceptNameCodeSequence") -> tuple[str, str]:
    seq = item.get(attr)
    if not seq:
        return "", ""
    return str(seq[0].get("CodeValue", "")), str(seq[0].get("CodingSchemeDesignator", ""))


def _walk(items):
    for it in items or []:
        yield it
        yield from _walk(it.get("ContentSequence"))


def _groups(ds):
    """Every measurement group container (TID 1501/1410) under Imaging Measurements."""
    for it in _walk(ds.get("ContentSequence")):
        if it.get("ValueType") == "CONTAINER" and _code_of(it) == ("125007", "DCM"):
            yield it


def _text(group, code: tuple[str, str]) -> str | None:
    for it in group.get("ContentSequence") or []:
        if _code_of(it) == code and it.get("ValueType") in ("TEXT", "UIDREF"):
            return str(it.get("TextValue", it.get("UID", "")))
    return None


def _num(group, code: tuple[str, str]) -> float | None:
    for it in group.get("ContentSequence") or []:
        if _code_of(it) == code and it.get("ValueType") == "NUM":
            mv = it.get("MeasuredValueSequence")
            if mv:
                return float(mv[0].NumericValue)
    return None


def _coded(group, code: tuple[str, str]) -> tuple[str, str] | None:
    for it in group.get("ContentSequence") or []:
        if _code_of(it) == code and it.get("ValueType") == "CODE":
            seq = it.ConceptCodeSequence[0]
            return str(seq.CodeValue), str(seq.CodeMeaning)
    return None


def _group_sources(group) -> list[str]:
    out = []
    for it in _walk(group.get("ContentSequence")):
        for ref in it.get("ReferencedSOPSequence") or []:
            out.append(str(ref.ReferencedSOPInstanceUID))
    return out


_OWN_NUMS = {"P-ABNORMAL", "THRESHOLD"}


def _finding_entries(group) -> list[tuple[str, float, tuple[str, str, str]]]:
    """``(name, probability, code)`` of each per-finding numeric entry of an AI group."""
    from cxrviewer.ml.findings import SNOMED_CODES

    by_snomed = {code: name for name, (code, _m) in SNOMED_CODES.items()}
    out = []
    for it in group.get("ContentSequence") or []:
        if it.get("ValueType") != "NUM":
            continue
        value, scheme = _code_of(it)
        if scheme == SCHEME and value in _OWN_NUMS:
            continue
        meaning = str(it.ConceptNameCodeSequence[0].CodeMeaning)
        name = by_snomed.get(value, meaning) if scheme == "SCT" else meaning
        try:
            v = float(it.MeasuredValueSequence[0].NumericValue)
        except (AttributeError, IndexError, ValueError):
            continue
        out.append((name, v, (value, scheme, meaning)))
    return out


def is_our_report(ds) -> bool:
    """True when ``ds`` is an SR with a cxrviewer AI result group."""
    return any(_text(g, ("112039", "DCM")) == AI_TRACKING_ID for g in _groups(ds))


def read_ai_results(ds) -> list[AiResult]:
    """The AI results stored in an SR we wrote (``stored=True``), one per source image.

    An SR without our group yields ``[]``; a damaged group is skipped.
    """
    out = []
    for g in _groups(ds):
        if _text(g, ("112039", "DCM")) != AI_TRACKING_ID:
            continue
        p = _num(g, ("P-ABNORMAL", SCHEME))
        t = _num(g, ("THRESHOLD", SCHEME))
        ood = _coded(g, ("OOD-STATUS", SCHEME))
        refused = ood is not None and ood[1] != "ok"
        if (p is None or t is None) and not refused:
            continue
        name = version = ""
        for it in _walk(g.get("ContentSequence")):
            code = _code_of(it)
            if code == ("111001", "DCM") and not name:
                name = str(it.get("TextValue", ""))
            elif code == ("111003", "DCM") and not version:
                version = str(it.get("TextValue", ""))
        label = _coded(g, ("AI-LABEL", SCHEME))
        srcs = _group_sources(g)
        t = 0.5 if t is None else t
        findings = tuple(AiFinding(name, v, code=code) for name, v, code in _finding_entries(g))
        try:
            out.append(AiResult(
                probability_abnormal=p,
                label=label[1] if label else ("" if p is None else ("Abnormal" if p >= t else "Normal")),
                threshold=t, findings=findings,
                model_name=name, model_version=version, weights_sha256=_text(g, ("WEIGHTS-SHA256", SCHEME)) or "",
                ood_status=ood[1] if ood else None, ood_reason=_text(g, ("OOD-REASON", SCHEME)), stored=True,
                source_sop_instance_uid=srcs[0] if srcs else ""))
        except ValueError:
            continue
    return out


def read_measurements(ds) -> list[Measurement]:
    """The reader's lengths/angles/ROIs stored in an SR we wrote (points and values)."""
    c = _codes()
    by_code = {(v.value, v.scheme_designator): k for k, v in c.items() if k[0].isupper()}
    out = []
    for g in _groups(ds):
        ident = _text(g, ("112039", "DCM")) or ""
        if not ident.startswith("Reader "):
            continue
        kind = ident.split()[1]
        values, points = [], None
        for it in _walk(g.get("ContentSequence")):
            if it.get("ValueType") == "NUM" and it.get("MeasuredValueSequence"):
                name = by_code.get(_code_of(it))
                if name:
                    mv = it.MeasuredValueSequence[0]
                    unit = str(mv.MeasurementUnitsCodeSequence[0].CodeValue)
                    values.append((name, float(mv.NumericValue), unit_text(unit)))
            elif it.get("ValueType") == "SCOORD":
                d = [float(v) for v in it.GraphicData]
                points = (points or ()) + tuple(zip(d[0::2], d[1::2], strict=False))
        if points and values and kind in ("length", "angle", "roi", "cobb", "ctr"):
            if kind == "roi" and len(points) > 3 and points[0] == points[-1]:
                points = points[:-1]
            try:
                label = ", ".join(f"{v:.1f} {u}".strip() for _n, v, u in values)
                out.append(Measurement(kind, points, tuple(values), label=label,
                                       basis=_text(g, ("MEAS-BASIS", SCHEME)) or ""))
            except ValueError:
                continue
    return out


def evidence_uids(ds) -> list[str]:
    """SOP Instance UIDs an SR names as evidence (Current Requested Procedure Evidence)."""
    out = []
    for study in ds.get("CurrentRequestedProcedureEvidenceSequence") or []:
        for series in study.get("ReferencedSeriesSequence") or []:
            for ref in series.get("ReferencedSOPSequence") or []:
                out.append(str(ref.ReferencedSOPInstanceUID))
    return out
