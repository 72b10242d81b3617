"""De-identified copies (dicognito, PS3.15 Basic Profile): no source PHI left anywhere in the
file, the change list names what changed, references stay consistent under one seed, and the
result still validates."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from cxrviewer.dicom.common import AiResult, Measurement, ReaderView, source_dataset, write_dataset
from cxrviewer.dicom.deid import deidentify, summarize
from cxrviewer.dicom.gsps import make_gsps, read_gsps
from cxrviewer.dicom.sc import make_sc
from cxrviewer.dicom.sr import make_sr, read_ai_results
from cxrviewer.dicom.validate import dciodvfy_path, validate_file

AI = AiResult(0.7, "Abnormal", 0.4, "m", "1")


@pytest.fixture(scope="module")
def src(rg1_unci):
    return source_dataset(rg1_unci)


def _phi(src) -> list[bytes]:
    vals = [str(src.PatientName), str(src.PatientID), str(src.PatientBirthDate), str(src.AccessionNumber),
            str(src.InstitutionName), str(src.StudyInstanceUID), str(src.SOPInstanceUID), str(src.StudyDate)]
    return [v.encode() for v in vals if v]


@pytest.mark.parametrize("kind", ["sc", "sr", "gsps"])
def test_deidentified_copy_has_no_source_phi(src, tmp_path, kind):
    if kind == "sc":
        obj = make_sc(src, np.full((64, 64), 90, np.uint8))
    elif kind == "sr":
        obj = make_sr(src, AI, (Measurement.length((1, 2), (30, 40), 5.0, "mm"),))
    else:
        obj = make_gsps(src, ReaderView(100.0, 200.0, measurements=(Measurement.length((1, 2), (30, 40), 5.0, "mm"),)))
    out, changes = deidentify(obj, seed="test-seed", pixels_clean=True)
    p = write_dataset(out, tmp_path / f"{kind}.dcm")
    data = p.read_bytes()
    for v in _phi(src):
        assert v not in data, v
    back = pydicom.dcmread(p)
    assert back.PatientIdentityRemoved == "YES"
    codes = {it.CodeValue for it in back.DeidentificationMethodCodeSequence}
    assert "113100" in codes  # Basic Application Confidentiality Profile
    lines = summarize(changes)
    for kw in ("PatientName", "PatientID", "PatientBirthDate", "StudyInstanceUID", "SOPInstanceUID"):
        assert any(line.startswith("replaced " + kw) for line in lines), (kw, lines)
    assert "removed StudyDescription" in lines
    if dciodvfy_path() is not None:
        v = validate_file(p)
        assert v.errors == (), "\n".join(v.errors)


def test_same_seed_keeps_references(src):
    """An SR and its source image de-identified with one seed still point at each other."""
    sr, _ = deidentify(make_sr(src, AI), seed="shared")
    img, _ = deidentify(src, seed="shared")
    (ai,) = read_ai_results(sr)
    assert ai.source_sop_instance_uid == img.SOPInstanceUID != src.SOPInstanceUID
    assert sr.StudyInstanceUID == img.StudyInstanceUID
    pr, _ = deidentify(make_gsps(src, ReaderView()), seed="shared")
    assert read_gsps(pr).applies_to(img.SOPInstanceUID)


def test_sc_with_possible_phi_in_pixels_is_not_marked_clean(src):
    out, _ = deidentify(make_sc(src, np.zeros((32, 32), np.uint8)), seed="s", pixels_clean=False)
    assert out.BurnedInAnnotation == "YES"
    assert out.PatientIdentityRemoved == "NO"
