"""``cxrviewer deid INPUT... --out DIR [--deid-seed SEED]``: de-identified copies of the source
images; with the seed of ``export --anonymize --deid-seed`` a de-identified SR, GSPS or SC
references the copy. Sources are never written, outputs never overwritten, a bad file is one
line and the rest go on; ultrasound copies need masks and come out blank there."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.pixels import apply_color_lut

from cxrviewer.cli import main
from cxrviewer.dicom.gsps import read_gsps
from cxrviewer.dicom.sr import read_ai_results
from cxrviewer.dicom.validate import dciodvfy_path, validate_file

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "resources" / "models" / "cxr-resnet50-demo"


def _testfile(name: str) -> str:
    from pydicom.data import get_testdata_file

    p = get_testdata_file(name, download=False)
    if not p:
        pytest.skip(f"pydicom's {name} is not installed")
    return p


def _deid(capsys, *argv) -> tuple[int, dict, str]:
    rc = main(["deid", *argv, "--json"])
    cap = capsys.readouterr()
    return rc, json.loads(cap.out), cap.err


def _digest(paths) -> dict[str, str]:
    return {str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}


def _new_errors(copy, source) -> set[str]:
    """dciodvfy errors of the copy that the source does not already have."""
    if dciodvfy_path() is None:
        return set()
    return set(validate_file(copy).errors) - set(validate_file(source).errors)


def test_seeded_objects_reference_the_deidentified_copy(rg1_unci, tmp_path, capsys):
    rc, rep, err = _deid(capsys, str(rg1_unci), "--out", str(tmp_path / "a"), "--deid-seed", "site-key")
    assert rc == 0 and rep["written"] == 1, err
    copy_path = Path(rep["files"][0]["output"])
    copy = pydicom.dcmread(copy_path)
    src = pydicom.dcmread(rg1_unci, stop_before_pixels=True)
    assert copy.SOPInstanceUID == rep["files"][0]["sop_instance_uid"] != src.SOPInstanceUID
    assert copy.PatientName != src.PatientName and copy.PatientIdentityRemoved == "YES"
    assert copy.PixelData == pydicom.dcmread(rg1_unci).PixelData  # a CR: pixels as they were
    assert _new_errors(copy_path, rg1_unci) == set()

    # the same seed on another run: the same pseudonyms, UIDs and date shift
    rc, rep2, _ = _deid(capsys, str(rg1_unci), "--out", str(tmp_path / "b"), "--deid-seed", "site-key")
    again = pydicom.dcmread(rep2["files"][0]["output"])
    for kw in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "PatientName", "PatientID",
               "StudyDate", "ContentDate", "AccessionNumber"):
        assert again[kw].value == copy[kw].value, kw
    # a different seed: different ones
    rc, rep3, _ = _deid(capsys, str(rg1_unci), "--out", str(tmp_path / "c"), "--deid-seed", "other")
    assert pydicom.dcmread(rep3["files"][0]["output"]).SOPInstanceUID != copy.SOPInstanceUID

    gsps = tmp_path / "pr.dcm"
    assert main(["export", str(rg1_unci), "--dicom", "gsps", "--anonymize", "--deid-seed", "site-key",
                 "--out", str(gsps)]) == 0, capsys.readouterr().err
    pr = pydicom.dcmread(gsps)
    assert read_gsps(pr).applies_to(copy.SOPInstanceUID)
    assert (pr.StudyInstanceUID, pr.PatientID) == (copy.StudyInstanceUID, copy.PatientID)
    sc = tmp_path / "sc.dcm"
    assert main(["export", str(rg1_unci), "--dicom", "sc", "--anonymize", "--deid-seed", "site-key",
                 "--size", "256", "--out", str(sc)]) == 0, capsys.readouterr().err
    assert pydicom.dcmread(sc).SourceImageSequence[0].ReferencedSOPInstanceUID == copy.SOPInstanceUID
    if (DEMO / "card.json").is_file():
        sr = tmp_path / "sr.dcm"
        assert main(["export", str(rg1_unci), "--dicom", "sr", "--anonymize", "--deid-seed", "site-key",
                     "--model", str(DEMO), "--out", str(sr)]) == 0, capsys.readouterr().err
        (ai,) = read_ai_results(pydicom.dcmread(sr))
        assert ai.source_sop_instance_uid == copy.SOPInstanceUID
        assert pydicom.dcmread(sr).StudyInstanceUID == copy.StudyInstanceUID


def test_folder_with_a_bad_file_sources_untouched_never_overwritten(rg1_unci, tmp_path, capsys):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    shutil.copy(rg1_unci, src / "sub" / "Doe_John.dcm")
    (src / "broken.dcm").write_bytes(b"not dicom at all")
    before = _digest([p for p in src.rglob("*") if p.is_file()])
    out = tmp_path / "out"
    rc, rep, err = _deid(capsys, str(src), "--out", str(out), "--deid-seed", "k")
    assert rc == 2 and (rep["written"], rep["failed"]) == (1, 1)
    (line,) = err.strip().splitlines()
    assert "broken.dcm" in line and "not a DICOM file" in line
    assert _digest([p for p in src.rglob("*") if p.is_file()]) == before
    (written,) = out.iterdir()
    assert "Doe" not in written.name and written.name == rep["files"][-1]["sop_instance_uid"] + ".dcm"
    stamp = written.read_bytes()
    rc, rep, err = _deid(capsys, str(src / "sub"), "--out", str(out), "--deid-seed", "k")
    assert rc == 0 and rep["exists"] == 1 and rep["written"] == 0 and "not overwritten" in err
    assert written.read_bytes() == stamp and len(list(out.iterdir())) == 1


def test_output_inside_the_input_folder_is_refused(rg1_unci, tmp_path, capsys):
    shutil.copy(rg1_unci, tmp_path / "a.dcm")
    rc = main(["deid", str(tmp_path), "--out", str(tmp_path / "deid")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "must not be inside the input folder" in err and not (tmp_path / "deid").exists()


def test_ultrasound_copies_need_masks_and_are_blank_there(tmp_path, capsys):
    multi, palette = _testfile("examples_ybr_color.dcm"), _testfile("examples_palette.dcm")
    rc, rep, err = _deid(capsys, multi, palette, "--out", str(tmp_path / "no-masks"))
    assert rc == 2 and rep["failed"] == 2 and rep["written"] == 0
    assert all("burned-in text" in line for line in err.strip().splitlines())

    out = tmp_path / "masked"
    rc, rep, err = _deid(capsys, multi, palette, "--out", str(out), "--deid-seed", "k",
                         "--mask-region", "0", "0", "320", "30", "--mask-region", "0", "215", "320", "25")
    assert rc == 0 and rep["written"] == 2, err
    m_out, p_out = (Path(f["output"]) for f in rep["files"])
    a = pydicom.dcmread(m_out)
    px, ref = a.pixel_array, pydicom.dcmread(multi).pixel_array
    assert px.shape == ref.shape == (30, 240, 320, 3)
    assert ref[:, 215:240].max() > 80 and px[:, 215:240].max() == 0 and px[:, :30].max() == 0  # every frame
    assert abs(px[:, 30:215].astype(int) - ref[:, 30:215]).max() == 0  # the rest as decoded
    assert a.PhotometricInterpretation == "RGB" and a.LossyImageCompression == "01"
    assert a.BurnedInAnnotation == "NO" and a.PatientIdentityRemoved == "YES"
    assert "113101" in {it.CodeValue for it in a.DeidentificationMethodCodeSequence}
    assert _new_errors(m_out, multi) == set()

    b = pydicom.dcmread(p_out)
    rgb = apply_color_lut(b.pixel_array, b)
    assert b.PhotometricInterpretation == "PALETTE COLOR"
    assert rgb[:30, :320].max() == 0 and rgb[215:240, :320].max() == 0  # the darkest palette entry: black
    src_rgb = apply_color_lut(pydicom.dcmread(palette).pixel_array, pydicom.dcmread(palette))
    assert src_rgb[:30, :320].max() > 50000
    assert _new_errors(p_out, palette) == set()


def test_a_study_folder_with_our_presentation_state(rg1_unci, tmp_path, capsys):
    """A folder holding the image and a GSPS we wrote (not de-identified): the copies still
    reference each other and the GSPS keeps its window and ruler."""
    src = tmp_path / "study"
    src.mkdir()
    shutil.copy(rg1_unci, src / "img.dcm")
    assert main(["export", str(rg1_unci), "--dicom", "gsps", "--out", str(src / "pr.dcm"), "--window", "100", "200",
                 "--ruler", "10", "20", "30", "40"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    rc, rep, err = _deid(capsys, str(src), "--out", str(tmp_path / "out"))
    assert rc == 0 and rep["written"] == 2, err
    paths = {f["source"]: Path(f["output"]) for f in rep["files"]}
    img, pr = (pydicom.dcmread(paths[str(src / n)]) for n in ("img.dcm", "pr.dcm"))
    ps = read_gsps(pr)
    assert ps.applies_to(img.SOPInstanceUID) and (ps.window_center, ps.window_width) == (100.0, 200.0)
    assert len(ps.lines) == 1 and pr.PatientName == img.PatientName != ""
    if dciodvfy_path() is not None:
        assert validate_file(paths[str(src / "pr.dcm")]).errors == ()
