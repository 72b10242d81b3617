"""``cxrviewer export INPUT --dicom sc|sr|gsps --out FILE.dcm``: each object validates with
dciodvfy (0 errors), re-reads with pydicom and carries what the flags asked for; the SR holds
the real bundled model's result; bad input writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from cxrviewer.cli import main
from cxrviewer.dicom.gsps import read_gsps
from cxrviewer.dicom.sr import read_ai_results, read_measurements
from cxrviewer.dicom.validate import dciodvfy_path, validate_file

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "resources" / "models" / "cxr-resnet50-demo"


def _valid(path: Path) -> pydicom.Dataset:
    if dciodvfy_path() is not None:
        v = validate_file(path)
        assert v.errors == (), "\n".join(v.errors)
    return pydicom.dcmread(path)


def test_gsps_from_the_cli(rg1_unci, tmp_path, capsys):
    out = tmp_path / "view.dcm"
    rc = main(["export", str(rg1_unci), "--dicom", "gsps", "--out", str(out), "--window", "12000", "20000",
               "--rotate", "90", "--flip-h", "--invert", "--ruler", "100", "200", "900", "1200"])
    assert rc == 0, capsys.readouterr().err
    assert capsys.readouterr().out.strip() == str(out)
    src = pydicom.dcmread(rg1_unci, stop_before_pixels=True)
    ps = read_gsps(_valid(out))
    assert ps.applies_to(src.SOPInstanceUID)
    assert (ps.window_center, ps.window_width) == (12000.0, 20000.0)
    assert (ps.rotation, ps.flip_h, ps.flip_v) == (1, True, False)
    assert ps.reader_invert(src.PhotometricInterpretation) is True
    (pts, label), = ps.lines
    assert np.allclose(pts, [(100, 200), (900, 1200)]) and label.endswith("px")  # RG1 has no pixel size


def test_sc_anonymized_from_the_cli(rg1_unci, tmp_path, capsys):
    out = tmp_path / "sc.dcm"
    rc = main(["export", str(rg1_unci), "--dicom", "sc", "--out", str(out), "--anonymize", "--size", "512",
               "--ruler", "100", "200", "900", "1200"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "replaced PatientName" in err and "replaced StudyInstanceUID" in err
    back = _valid(out)
    src = pydicom.dcmread(rg1_unci, stop_before_pixels=True)
    data = out.read_bytes()
    for v in (src.PatientName, src.PatientID, src.AccessionNumber, src.StudyInstanceUID, src.PatientBirthDate):
        assert str(v).encode() not in data
    assert back.BurnedInAnnotation == "NO" and back.PatientIdentityRemoved == "YES"
    assert "NOT FOR DIAGNOSTIC USE" in back.ImageComments
    assert max(back.Rows, back.Columns) == 512 and back.PhotometricInterpretation == "RGB"


def test_sr_holds_the_bundled_models_result(rg1_unci, tmp_path, capsys):
    if not (DEMO / "card.json").is_file():
        pytest.skip("the bundled demo model is not in this checkout")
    card = json.loads((DEMO / "card.json").read_text())
    out = tmp_path / "report.dcm"
    rc = main(["export", str(rg1_unci), "--dicom", "sr", "--out", str(out), "--model", str(DEMO),
               "--ruler", "10", "20", "30", "40"])
    assert rc == 0, capsys.readouterr().err
    back = _valid(out)
    (ai,) = read_ai_results(back)
    assert (ai.model_name, ai.model_version) == (card["name"], card["version"])
    assert ai.weights_sha256 == card["weights_sha256"]
    assert ai.threshold == pytest.approx(card["threshold"], abs=1e-6)
    assert 0.0 <= ai.probability_abnormal <= 1.0
    assert ai.label == ("Abnormal" if ai.probability_abnormal >= ai.threshold else "Normal")
    (m,) = read_measurements(back)
    assert m.values[0][0] == "Length" and m.values[0][1] == pytest.approx(np.hypot(20, 20), abs=1e-3)


def test_png_source_is_refused_and_nothing_written(tmp_path, capsys):
    from PIL import Image

    p = tmp_path / "x.png"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(p)
    out = tmp_path / "x.dcm"
    rc = main(["export", str(p), "--dicom", "gsps", "--out", str(out)])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert str(p) in err and "DICOM source" in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_png_export_honours_rotation_and_rulers(rg1_unci, tmp_path, capsys):
    plain, turned = tmp_path / "a.png", tmp_path / "b.png"
    assert main(["export", str(rg1_unci), "--out", str(plain), "--native", "--no-annotations"]) == 0
    assert main(["export", str(rg1_unci), "--out", str(turned), "--native", "--no-annotations", "--rotate", "90",
                 "--ruler", "10", "10", "500", "500"]) == 0
    from PIL import Image

    a, b = np.asarray(Image.open(plain)), np.asarray(Image.open(turned))
    assert a.shape[:2] == (1955, 1841) and b.shape[:2] == (1841, 1955)
    assert b.ndim == 3  # the ruler made it colour
