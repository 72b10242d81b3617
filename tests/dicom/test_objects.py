"""The DICOM objects we write (SC, TID 1500 SR, GSPS): dciodvfy gives 0 errors, pydicom
re-reads them, they sit in the source study with new UIDs and reference the source image,
and what we read back is what we wrote."""

from __future__ import annotations

import itertools

import numpy as np
import pydicom
import pytest

from cxrviewer.dicom.common import (
    NOT_FOR_DIAGNOSTIC,
    AiResult,
    Measurement,
    ReaderView,
    source_dataset,
    write_dataset,
)
from cxrviewer.dicom.gsps import from_dicom_spatial, make_gsps, read_gsps, to_dicom_spatial
from cxrviewer.dicom.sc import make_sc, oriented_patient_orientation
from cxrviewer.dicom.sr import (
    evidence_uids,
    is_our_report,
    make_sr,
    read_ai_results,
    read_measurements,
)
from cxrviewer.dicom.validate import dciodvfy_path, validate_file

# fails in CI when dicom3tools is missing, skips with the reason elsewhere (tests/conftest.py)
needs_dciodvfy = pytest.mark.usefixtures("dciodvfy_tool")

# the gate passed it (a refused image carries no probability: test_refused_ai_result_has_no_score)
AI = AiResult(0.8234, "Abnormal", 0.41, "cxr-resnet50-demo", "2.0", "ab" * 32,
              "ok", "Mahalanobis distance 21.2 <= 30.1")
MEAS = (
    Measurement.length((10.5, 20.0), (100.0, 200.0), 123.4, "mm", label="123.4 mm (detector)",
                       basis="ImagerPixelSpacing"),
    Measurement("angle", ((0.0, 0.0), (50.0, 50.0), (100.0, 0.0)), (("Angle", 90.0, "deg"),)),
    Measurement("roi", ((10.0, 10.0), (60.0, 10.0), (60.0, 60.0), (10.0, 60.0)),
                (("Mean", 1234.5, ""), ("Standard Deviation", 12.0, ""), ("Area", 2500.0, "px2"))),
    Measurement("cobb", ((0.0, 0.0), (10.0, 2.0), (0.0, 20.0), (10.0, 25.0)), (("Cobb Angle", 17.0, "deg"),)),
)


@pytest.fixture(scope="module")
def src(rg1_unci):
    return source_dataset(rg1_unci)


def _write_check(ds, path) -> pydicom.Dataset:
    """Write atomically, validate with dciodvfy (0 errors), re-read with pydicom."""
    write_dataset(ds, path)
    if dciodvfy_path() is not None:
        v = validate_file(path)
        assert v.errors == (), "\n".join(v.errors)
        assert v.iod  # dciodvfy recognised the IOD
    back = pydicom.dcmread(path)
    assert back.SOPInstanceUID == ds.SOPInstanceUID
    return back


def _same_study(obj, src) -> None:
    assert obj.StudyInstanceUID == src.StudyInstanceUID
    for kw in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyDate"):
        assert str(obj.get(kw, "")) == str(src.get(kw, "")), kw
    assert obj.SeriesInstanceUID != src.SeriesInstanceUID
    assert obj.SOPInstanceUID != src.SOPInstanceUID


# ------------------------------------------------------------------------------ SC


@pytest.mark.parametrize("rgb", [True, False])
def test_sc_validates_in_source_study_with_banner(src, tmp_path, rgb):
    px = np.full((300, 280, 3) if rgb else (300, 280), 128, np.uint8)
    sc = make_sc(src, px, view=ReaderView(rotation=1), description="annotated view")
    back = _write_check(sc, tmp_path / "sc.dcm")
    _same_study(back, src)
    assert back.BurnedInAnnotation == "YES"
    assert NOT_FOR_DIAGNOSTIC in back.ImageComments
    assert NOT_FOR_DIAGNOSTIC in back.SeriesDescription
    ref = back.SourceImageSequence[0]
    assert ref.ReferencedSOPInstanceUID == src.SOPInstanceUID
    assert ref.ReferencedSOPClassUID == src.SOPClassUID
    assert back.PhotometricInterpretation == ("RGB" if rgb else "MONOCHROME2")
    # the banner is burned in: a uniform input gains dark and bright pixels in the top band only
    out = back.pixel_array
    top, bottom = out[: out.shape[0] // 6], out[out.shape[0] // 2 :]
    assert top.min() < 40 and top.max() > 220
    assert np.all(bottom == 128)


def test_sc_patient_orientation_follows_the_view():
    # RG1: rows run to the patient's left, columns to the feet
    assert oriented_patient_orientation(["L", "F"], None) == ("L", "F")
    assert oriented_patient_orientation(["L", "F"], ReaderView(rotation=1)) == ("H", "L")
    assert oriented_patient_orientation(["L", "F"], ReaderView(flip_h=True)) == ("R", "F")
    assert oriented_patient_orientation(["L", "F"], ReaderView(rotation=2)) == ("R", "H")
    assert oriented_patient_orientation(["LP", "F"], ReaderView(flip_v=True)) == ("LP", "H")
    assert oriented_patient_orientation(None, ReaderView(rotation=1)) is None


def test_sc_refuses_non_uint8(src):
    from cxrviewer.dicom.common import DicomObjectError

    with pytest.raises(DicomObjectError, match="uint8"):
        make_sc(src, np.zeros((10, 10), np.float32))


# ------------------------------------------------------------------------------ SR


def test_sr_validates_and_reads_back(src, tmp_path):
    sr = make_sr(src, AI, MEAS)
    back = _write_check(sr, tmp_path / "sr.dcm")
    _same_study(back, src)
    assert back.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    assert back.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    assert is_our_report(back)
    assert evidence_uids(back) == [src.SOPInstanceUID]
    (ai,) = read_ai_results(back)
    assert ai.stored and ai.source_sop_instance_uid == src.SOPInstanceUID
    assert (ai.probability_abnormal, ai.label, ai.threshold) == (0.8234, "Abnormal", 0.41)
    assert (ai.model_name, ai.model_version, ai.weights_sha256) == ("cxr-resnet50-demo", "2.0", "ab" * 32)
    assert (ai.ood_status, ai.ood_reason) == (AI.ood_status, AI.ood_reason)
    got = read_measurements(back)
    assert [m.kind for m in got] == ["length", "angle", "roi", "cobb"]
    for want, m in zip(MEAS, got, strict=True):
        assert m.values == want.values and m.basis == want.basis
        assert np.allclose(m.points, want.points)
    # every measurement group points at the source image
    groups = [it for it in back.ContentSequence if it.ValueType == "CONTAINER"]
    refs = {str(r.ReferencedSOPInstanceUID) for it in _walk(groups) for r in it.get("ReferencedSOPSequence") or []}
    assert refs == {src.SOPInstanceUID}


def _walk(items):
    for it in items or []:
        yield it
        yield from _walk(it.get("ContentSequence"))


def test_sr_without_ood_gate_has_no_ood_item(src, tmp_path):
    ai = AiResult(0.12, "Normal", 0.5, "m", "1")
    back = _write_check(make_sr(src, ai), tmp_path / "sr.dcm")
    (got,) = read_ai_results(back)
    assert got.ood_status is None and got.ood_reason is None and got.label == "Normal"
    assert read_measurements(back) == []


def test_sr_measurements_only_and_nothing_refused(src, tmp_path):
    from cxrviewer.dicom.common import DicomObjectError

    back = _write_check(make_sr(src, None, MEAS[:1]), tmp_path / "sr.dcm")
    assert read_ai_results(back) == [] and not is_our_report(back)
    assert [m.kind for m in read_measurements(back)] == ["length"]
    with pytest.raises(DicomObjectError, match="nothing to report"):
        make_sr(src, None, ())


def test_ai_result_rejects_impossible_probability():
    with pytest.raises(ValueError):
        AiResult(1.5, "Abnormal", 0.5, "m", "1")


# ------------------------------------------------------------------------------ GSPS


def test_spatial_mapping_matches_the_canvas():
    """Our (rotate, flip H, flip V) and DICOM's (rotate, then flip H) put every pixel at the same
    place: checked on an asymmetric array with the export renderer's own ``orient``."""
    a = np.arange(12).reshape(3, 4)

    def dicom_order(arr, deg, flip):
        out = np.rot90(arr, k=-(deg // 90))
        return out[:, ::-1] if flip else out

    from cxrviewer.render.export import ViewState, orient

    for rot, fh, fv in itertools.product(range(4), (False, True), (False, True)):
        deg, flip = to_dicom_spatial(rot, fh, fv)
        assert np.array_equal(dicom_order(a, deg, flip), orient(a, ViewState(rot, fh, fv))), (rot, fh, fv)
        r2, fh2, fv2 = from_dicom_spatial(deg, flip)
        assert np.array_equal(orient(a, ViewState(r2, fh2, fv2)), orient(a, ViewState(rot, fh, fv)))


@needs_dciodvfy
@pytest.mark.parametrize("rot,fh,fv", [(0, False, False), (1, False, True), (2, True, False), (3, True, True)])
def test_gsps_validates_and_round_trips(src, tmp_path, rot, fh, fv):
    view = ReaderView(1200.0, 3000.0, "Lung", rotation=rot, flip_h=fh, flip_v=fv, invert=True, measurements=MEAS)
    back = _write_check(make_gsps(src, view, ai=AI), tmp_path / "pr.dcm")
    _same_study(back, src)
    ps = read_gsps(back)
    assert ps.applies_to(src.SOPInstanceUID)
    assert (ps.window_center, ps.window_width, ps.window_name) == (1200.0, 3000.0, "Lung")
    deg, flip = to_dicom_spatial(rot, fh, fv)
    assert (int(back.ImageRotation), back.ImageHorizontalFlip == "Y") == (deg, flip)
    # RG1 is MONOCHROME1: the reader's Invert must come back as Invert
    assert ps.reader_invert("MONOCHROME1") is True
    assert [lbl for _pts, lbl in ps.lines][0] == "123.4 mm (detector)"
    assert np.allclose(ps.lines[0][0], MEAS[0].points)
    assert any("P(Abnormal) 0.82" in t for t in ps.texts) and NOT_FOR_DIAGNOSTIC in ps.texts


def test_gsps_presentation_lut_respects_monochrome1(src):
    plain = make_gsps(src, ReaderView(100.0, 200.0))
    assert plain.PresentationLUTShape == "INVERSE"  # MONOCHROME1 shown as usual
    assert read_gsps(plain).reader_invert("MONOCHROME1") is False


def test_gsps_refuses_colour(src):
    import copy

    from cxrviewer.dicom.common import DicomObjectError

    rgb = copy.deepcopy(src)  # Dataset.copy() is shallow: it would turn the shared fixture colour
    rgb.SamplesPerPixel = 3
    with pytest.raises(DicomObjectError, match="grayscale"):
        make_gsps(rgb, ReaderView())


# ------------------------------------------------------------------------------ writing


def test_write_is_atomic(src, tmp_path):
    """A failing write leaves the previous file as it was and no temp file behind."""
    from cxrviewer.atomic import WriteError

    target = tmp_path / "sr.dcm"
    write_dataset(make_sr(src, AI), target)
    before = target.read_bytes()
    bad = make_sr(src, AI)
    bad.add_new(0x00280010, "US", "notanumber")  # fails half-way through encoding
    with pytest.raises(WriteError, match="nothing was written"):
        write_dataset(bad, target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sr.dcm"]


def test_source_must_be_dicom(tmp_path):
    from PIL import Image

    from cxrviewer.dicom.common import DicomObjectError

    p = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(p)
    with pytest.raises(DicomObjectError, match="DICOM source"):
        source_dataset(p)


def test_refused_ai_result_has_no_score(src):
    """Whatever a caller passes, a refused result is written and read back without P(Abnormal),
    threshold or label: only the gate's status and reason."""
    ai = AiResult(0.9, "Abnormal", 0.5, "m", "1", ood_status="out_of_distribution", ood_reason="a CT")
    assert ai.refused and ai.probability_abnormal is None and ai.label == ""
    assert ai.text_lines()[0] == "AI: not scored (out of distribution)"
    sr = make_sr(src, ai)
    assert "Probability of Abnormal" not in str(sr) and "AI classification" not in str(sr)
    (back,) = read_ai_results(sr)
    assert back.refused and back.probability_abnormal is None and back.ood_reason == "a CT"


def test_ai_result_takes_the_ood_gate_when_the_prediction_has_one(src):
    """Predictions with the OOD gate (``pred.gate``: status, reason, caution) and without one."""
    from types import SimpleNamespace

    from cxrviewer.dicom.build import ai_result_from_prediction

    base = dict(probability_abnormal=0.3, label="Normal", threshold=0.5, model_name="m", model_version="2")
    plain = ai_result_from_prediction(SimpleNamespace(**base), "cd" * 32)
    assert plain.ood_status is None and plain.weights_sha256 == "cd" * 32
    gated = ai_result_from_prediction(SimpleNamespace(
        **base, gate=SimpleNamespace(status="out_of_distribution", reason="a CT, not a radiograph", caution="")))
    assert (gated.ood_status, gated.ood_reason) == ("out_of_distribution", "a CT, not a radiograph")
    (back,) = read_ai_results(make_sr(src, gated))
    assert (back.ood_status, back.ood_reason) == ("out_of_distribution", "a CT, not a radiograph")
    ok = ai_result_from_prediction(SimpleNamespace(**base, gate=SimpleNamespace(status="ok", reason="", caution="")))
    assert ok.ood_status == "ok" and ok.ood_reason is None


@needs_dciodvfy
@pytest.mark.parametrize("kind", ["sc", "sr", "gsps"])
@pytest.mark.parametrize("anonymize", [False, True])
def test_dciodvfy_reports_no_errors(src, tmp_path, kind, anonymize):
    """The acceptance check itself: dciodvfy's verdict on each object (and its de-identified
    copy) has 0 errors; only the known warnings remain (the source's one-word referring
    physician name, an empty Laterality, our private coding scheme)."""
    from cxrviewer.dicom.deid import deidentify

    view = ReaderView(1200.0, 3000.0, rotation=3, flip_h=True, measurements=MEAS)
    obj = {"sc": lambda: make_sc(src, np.full((120, 100, 3), 70, np.uint8), view=view),
           "sr": lambda: make_sr(src, AI, MEAS),
           "gsps": lambda: make_gsps(src, view, ai=AI)}[kind]()
    if anonymize:
        obj, _ = deidentify(obj, seed="s", pixels_clean=True)
    p = write_dataset(obj, tmp_path / f"{kind}.dcm")
    v = validate_file(p)
    assert v.counts()["errors"] == 0, "\n".join(v.errors)
    known = ("Retired Person Name form", "<Laterality>", "<99CXRV>")
    assert all(any(k in w for k in known) for w in v.warnings), v.warnings


@pytest.mark.parametrize("name", ["emri_small.dcm", "eCT_Supplemental.dcm"])
def test_multi_frame_sources_reference_the_frame(tmp_path, name):
    """A legacy multi-frame MR (rescale at the top level, no functional groups) and an enhanced
    CT: the objects reference the frame the reader was on, and still validate."""
    from pydicom.data import get_testdata_file

    p = get_testdata_file(name, download=False)
    if not p:
        pytest.skip(f"pydicom-data's {name} is not installed")
    mf = source_dataset(p)
    m = (Measurement.length((1.0, 2.0), (10.0, 20.0), 5.0, "mm"),)
    pr = _write_check(make_gsps(mf, ReaderView(100.0, 200.0, measurements=m), frame=1), tmp_path / "pr.dcm")
    assert pr.GraphicAnnotationSequence[0].ReferencedImageSequence[0].ReferencedFrameNumber == 2
    assert "SharedFunctionalGroupsSequence" not in mf or name == "eCT_Supplemental.dcm"  # source untouched
    sr = _write_check(make_sr(mf, AI, m, frame=1), tmp_path / "sr.dcm")
    (ai,) = read_ai_results(sr)
    assert ai.source_sop_instance_uid == mf.SOPInstanceUID
    sc = _write_check(make_sc(mf, np.zeros((40, 30), np.uint8), frame=1), tmp_path / "sc.dcm")
    assert sc.SourceImageSequence[0].ReferencedFrameNumber == 2


@needs_dciodvfy
@pytest.mark.parametrize("name", ["693_UNCI.dcm", "OT-PAL-8-face.dcm", "J2K_pixelrep_mismatch.dcm",
                                  "rtdose_1frame.dcm", "SC_rgb_2frame.dcm", "ExplVR_BigEnd.dcm"])
def test_odd_real_sources_still_give_valid_objects(tmp_path, name):
    """Headers found by running every pydicom-data file through the writers: identity removed
    without a method, ACR-NEMA dates/times ("1996.10.29", "15:18:59"), an oblique Patient
    Orientation ("PF"), a multi-frame IOD without Number of Frames, a single-frame SOP class
    carrying two frames, big endian. Each object validates with 0 errors."""
    from pydicom.data import get_testdata_file

    p = get_testdata_file(name, download=False)
    if not p:
        pytest.skip(f"pydicom-data's {name} is not installed")
    s = source_dataset(p)
    m = (Measurement.length((1.0, 2.0), (3.0, 4.0), 5.0, "mm"),)
    objs = [make_sr(s, AI, m), make_sc(s, np.zeros((20, 20), np.uint8), view=ReaderView(rotation=1))]
    if int(s.get("SamplesPerPixel", 1)) == 1:
        objs.append(make_gsps(s, ReaderView(100.0, 200.0, measurements=m)))
    for i, obj in enumerate(objs):
        _write_check(obj, tmp_path / f"{i}.dcm")


def test_a_header_highdicom_cannot_take_is_one_clear_error(tmp_path):
    from pydicom.data import get_testdata_file

    from cxrviewer.dicom.build import export_object
    from cxrviewer.dicom.common import DicomObjectError

    p = get_testdata_file("color-pl.dcm", download=False)  # retired Ultrasound Image Storage class
    if not p:
        pytest.skip("pydicom-data's color-pl.dcm is not installed")
    with pytest.raises(DicomObjectError) as e:
        export_object("sr", p, tmp_path / "x.dcm", ai=AI)
    assert str(p) in str(e.value) and "cannot build the SR" in str(e.value)
    assert not (tmp_path / "x.dcm").exists()
