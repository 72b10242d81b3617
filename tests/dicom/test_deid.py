"""De-identified copies (PS3.15 Table E.1-1 via dicom-anonymizer's table + dicognito's
pseudonyms): no identifying value of the source survives anywhere in the output, at any depth
(checked element by element and in the file's bytes), the change list names what changed,
references stay consistent under one seed, and the result still validates."""

from __future__ import annotations

import datetime

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from cxrviewer.dicom.build import export_object
from cxrviewer.dicom.common import AiResult, Measurement, ReaderView, source_dataset, write_dataset
from cxrviewer.dicom.deid import Deidentifier, deidentify, summarize
from cxrviewer.dicom.gsps import make_gsps, read_gsps
from cxrviewer.dicom.sc import make_sc
from cxrviewer.dicom.sr import make_sr, read_ai_results
from cxrviewer.dicom.validate import dciodvfy_path, validate_file

AI = AiResult(0.7, "Abnormal", 0.4, "m", "1")
RULER = Measurement.length((1, 2), (30, 40), 5.0, "mm")


@pytest.fixture(scope="module")
def src(rg1_unci):
    return source_dataset(rg1_unci)


def _code(value, meaning):
    c = Dataset()
    c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = value, "DCM", meaning
    return c


@pytest.fixture(scope="module")
def identified(rg1_unci, tmp_path_factory):
    """RG1 (a CR) with identifying values added where sites put them, top level and nested."""
    ds = pydicom.dcmread(rg1_unci)
    ds.DeviceSerialNumber = "SN-9931-SECRET"
    ds.DeviceUID = "1.2.826.0.1.3680043.99.4242"
    ds.OperatorsName = "Operator^Olga"
    ds.PerformingPhysicianName = "Performer^Paul"
    ds.ReferringPhysicianName = "Referrer^Rita"
    ds.StationName = "XRAY-ROOM-7"
    ds.InstitutionAddress = "12 Hospital Road, Springfield"
    ds.InstitutionalDepartmentName = "Thorax Unit West"
    ds.PatientAddress = "3 Elm Street, Shelbyville"
    ds.OtherPatientIDs = "MRN-556677"
    ds.PatientComments = "allergic to latex, Springfield"
    ds.ProtocolName = "CHEST PA Springfield"
    ds.SeriesDescription = "Chest Olga Special"
    ds.AcquisitionDateTime = "20190304101530.123456+0100"
    ds.PatientSex = "F"
    req = Dataset()
    req.RequestedProcedureID = "RP-8812"
    req.ScheduledProcedureStepID = "SPS-441"
    req.RequestedProcedureDescription = "chest for Olga Operator"
    ds.RequestAttributesSequence = [req]
    p = tmp_path_factory.mktemp("src") / "identified.dcm"
    ds.save_as(p)
    return p


def _e11_tags() -> set[int]:
    """Every tag of Table E.1-1, straight from the library's table (not from our wrapper)."""
    from dicomanonymizer.dicom_anonymization_databases import dicomfields_2026c as t

    return {(x[0] << 16) | x[1] for x in t.ALL_TAGS if len(x) == 2}


def _values(elem) -> list[str]:
    v = elem.value
    if v is None or v == "":
        return []
    if isinstance(v, bytes):
        return [v.decode("latin-1")]
    if isinstance(v, pydicom.multival.MultiValue) or isinstance(v, list):
        return [str(x) for x in v if str(x)]
    return [str(v)]


def source_identifiers(ds) -> dict[str, str]:
    """``{value: keyword}`` for every E.1-1 attribute of the source with a value, at any depth.

    TM values are left out: a whole-day date shift keeps the time of day by construction
    (checked separately: every DA moved by the same non-zero number of days)."""
    tags = _e11_tags()
    out: dict[str, str] = {}

    def walk(d):
        for elem in d:
            if elem.VR == "SQ":
                for it in elem.value or []:
                    walk(it)
                continue
            if int(elem.tag) in tags and elem.VR != "TM" and int(elem.tag) != 0x7FE00010:
                for v in _values(elem):
                    out[v.strip()] = elem.keyword
    walk(ds)
    out.pop("", None)
    return out


def output_values(ds):
    """``(path, value)`` for every element of the output at any depth, file meta included."""
    def walk(d, prefix):
        for elem in d:
            kw = elem.keyword or str(elem.tag)
            if elem.VR == "SQ":
                for i, it in enumerate(elem.value or []):
                    yield from walk(it, f"{prefix}{kw}[{i}].")
            elif int(elem.tag) != 0x7FE00010:
                for v in _values(elem):
                    yield prefix + kw, v.strip()
    yield from walk(ds.file_meta, "meta.")
    yield from walk(ds, "")


def assert_no_leak(source, out_path):
    """No identifying value of ``source`` anywhere in the file at ``out_path``: as a whole
    element value or inside one (values of 4+ characters; a shorter one, such as a sex "F",
    in the same attribute: "F" is also a Patient Orientation), or in the raw bytes (6+
    characters, where a chance match in binary data is negligible)."""
    check_values(source_identifiers(source), out_path)


def check_values(ids: dict[str, str], out_path, minimum: int = 11) -> None:
    assert len(ids) >= minimum, ids  # the check has something to find
    out = pydicom.dcmread(out_path)
    raw = out_path.read_bytes()
    for path, v in output_values(out):
        leaf = path.rsplit(".", 1)[-1]
        for s, kw in ids.items():
            if len(s) >= 4:
                assert s not in v, f"{kw} of the source survives at {path}: {v!r}"
            else:
                assert not (v == s and leaf == kw), f"{kw} of the source survives at {path}: {v!r}"
    for s, kw in ids.items():
        if len(s) >= 6:
            assert s.encode() not in raw, f"{kw} of the source survives in the bytes"


def _valid(p):
    if dciodvfy_path() is not None:
        v = validate_file(p)
        assert v.errors == (), "\n".join(v.errors)


def _with_reader(sr):
    """The SR with a person observer (TID 1003), as the reader-feedback lane adds one."""
    pn = Dataset()
    pn.RelationshipType, pn.ValueType = "HAS OBS CONTEXT", "PNAME"
    pn.ConceptNameCodeSequence = [_code("121008", "Person Observer Name")]
    pn.PersonName = "Reader^Rachel"
    org = Dataset()
    org.RelationshipType, org.ValueType = "HAS OBS CONTEXT", "TEXT"
    org.ConceptNameCodeSequence = [_code("121009", "Person Observer's Organization Name")]
    org.TextValue = "Springfield Reading Group"
    sr.ContentSequence = [pn, org, *sr.ContentSequence]
    return sr


@pytest.mark.parametrize("kind", ["sc", "sr", "gsps"])
def test_no_identifying_value_of_the_source_survives(identified, tmp_path, kind):
    """Every E.1-1 value of the source (Device Serial Number inside Contributing Equipment
    Sequence, the reader's name in the SR content, ...) is gone, and the object validates."""
    view = ReaderView(100.0, 200.0, measurements=(RULER,))
    res = export_object(kind, identified, tmp_path / f"{kind}.dcm", view=view, ai=AI,
                        pixels=np.full((64, 64), 90, np.uint8) if kind == "sc" else None,
                        anonymize=True, seed="test-seed", pixels_clean=True)
    src = pydicom.dcmread(identified, stop_before_pixels=True)
    # the leak really was there before de-identification (highdicom copies the equipment)
    plain = export_object(kind, identified, tmp_path / f"{kind}-plain.dcm", view=view, ai=AI,
                          pixels=np.full((64, 64), 90, np.uint8) if kind == "sc" else None).dataset
    ids = source_identifiers(src)
    assert sum(v in ids for _, v in output_values(plain)) >= 5
    if kind in ("sc", "sr"):
        assert any(v == "SN-9931-SECRET" for p, v in output_values(plain) if p.startswith("ContributingEquipment"))
    assert_no_leak(src, res.path)
    back = pydicom.dcmread(res.path)
    assert back.PatientIdentityRemoved == "YES"
    codes = {it.CodeValue for it in back.DeidentificationMethodCodeSequence}
    assert {"113100", "113107"} <= codes  # Basic Profile, modified dates
    lines = summarize(res.changes)
    for kw in ("PatientName", "PatientID", "PatientBirthDate", "StudyInstanceUID", "SOPInstanceUID"):
        assert any(line.startswith("replaced " + kw) for line in lines), (kw, lines)
    assert "removed StudyDescription" in lines
    _valid(res.path)


def test_reader_name_in_sr_content_is_deidentified(identified, tmp_path):
    src = pydicom.dcmread(identified, stop_before_pixels=True)
    sr = _with_reader(make_sr(source_dataset(identified), AI, (RULER,)))
    ids = source_identifiers(src) | {"Reader^Rachel": "PersonName", "Springfield Reading Group": "TextValue"}
    out, _ = deidentify(sr, seed="s")
    p = write_dataset(out, tmp_path / "sr.dcm")
    check_values(ids, p)
    raw = p.read_bytes()
    assert b"Rachel" not in raw and b"Springfield" not in raw
    (ai,) = read_ai_results(out)  # the report is still readable
    assert ai.probability_abnormal == pytest.approx(0.7)
    _valid(p)


def test_same_seed_keeps_references(src):
    """An SR and its source image de-identified with one seed still point at each other."""
    sr, _ = deidentify(make_sr(src, AI), seed="shared")
    img, _ = deidentify(src, seed="shared", own=False)
    (ai,) = read_ai_results(sr)
    assert ai.source_sop_instance_uid == img.SOPInstanceUID != src.SOPInstanceUID
    assert sr.StudyInstanceUID == img.StudyInstanceUID
    pr, _ = deidentify(make_gsps(src, ReaderView()), seed="shared")
    assert read_gsps(pr).applies_to(img.SOPInstanceUID)


def test_sc_with_possible_phi_in_pixels_is_not_marked_clean(src):
    out, _ = deidentify(make_sc(src, np.zeros((32, 32), np.uint8)), seed="s", pixels_clean=False)
    assert out.BurnedInAnnotation == "YES"
    assert out.PatientIdentityRemoved == "NO"


def _date(v: str) -> datetime.date:
    return datetime.datetime.strptime(v[:8], "%Y%m%d").date()


def test_dates_shift_by_whole_nonzero_days_over_many_seeds(identified):
    """For 120 seeds: every DA and DT moves by one and the same whole number of days (never
    zero), times of day stay with their dates, and a seed gives the same shift every time."""
    src = pydicom.dcmread(identified, stop_before_pixels=True)
    shifts = set()
    for i in range(120):
        d = Deidentifier(f"seed-{i}")
        out, _ = d(src, own=False)
        days = {(_date(out[k].value) - _date(src[k].value)).days for k in ("StudyDate", "ContentDate")}
        days.add((_date(out.AcquisitionDateTime) - _date(src.AcquisitionDateTime)).days)
        assert days == {d.shift_days}, days
        assert d.shift_days != 0 and -730 < d.shift_days <= -62
        assert out.AcquisitionDateTime[8:] == src.AcquisitionDateTime[8:].split("+")[0]  # time kept, zone gone
        assert out.StudyTime == src.StudyTime  # the pair moved together: whole days leave the time of day
        assert Deidentifier(f"seed-{i}").shift_days == d.shift_days
        shifts.add(d.shift_days)
    assert len(shifts) > 80  # the seed really drives it


def test_deidentified_copy_of_the_image_itself(identified, tmp_path):
    """``cxrviewer deid``'s copy of the source file: no E.1-1 value survives (pixels kept)."""
    from cxrviewer.dicom.deid_files import copy_deidentified

    rep = copy_deidentified([identified], tmp_path / "out", seed="k")
    (o,) = rep.outcomes
    assert o.status == "written", o.reason
    out = tmp_path / "out" / f"{o.sop_instance_uid}.dcm"
    assert_no_leak(pydicom.dcmread(identified, stop_before_pixels=True), out)
    back = pydicom.dcmread(out)
    assert back.PixelData == pydicom.dcmread(identified).PixelData
    if dciodvfy_path() is not None:
        assert set(validate_file(out).errors) <= set(validate_file(identified).errors)


@pytest.mark.parametrize("name", ["examples_palette.dcm", "examples_ybr_color.dcm", "US1_J2KR.dcm"])
def test_ultrasound_copies_keep_no_identifying_value(name, tmp_path):
    """pydicom's ultrasound files (palette, multi-frame JPEG, JPEG 2000) as masked copies."""
    from pydicom.data import get_testdata_file

    from cxrviewer.dicom.burnedin import MaskRegion
    from cxrviewer.dicom.deid_files import copy_deidentified

    path = get_testdata_file(name, download=False)
    if not path:
        pytest.skip(f"pydicom's {name} is not installed")
    rep = copy_deidentified([path], tmp_path, seed="k", masks=[MaskRegion(0, 0, 40, 20)])
    (o,) = rep.outcomes
    assert o.status == "written", o.reason
    src = pydicom.dcmread(path, stop_before_pixels=True)
    ids = source_identifiers(src)
    assert len(ids) >= 10, ids  # names, UIDs, dates, institution, station...
    check_values(ids, tmp_path / f"{o.sop_instance_uid}.dcm", minimum=10)
