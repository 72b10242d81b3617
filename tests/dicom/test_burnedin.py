"""Burned-in text and palette colour, on pydicom's real ultrasound files: a de-identified SC of
a US is refused without masks (one line naming burned-in text), masked regions are blank in
the output pixels (palette and multi-frame sources), the header says what was done, and
PALETTE COLOR images export through their palette (SC and PNG)."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.pixels import apply_color_lut

from cxrviewer.cli import main
from cxrviewer.dicom.burnedin import MaskRegion, burned_in_risk, mask_array
from cxrviewer.dicom.validate import dciodvfy_path, validate_file

#: examples_palette.dcm (US, PALETTE COLOR, 800x350): the header bar carries the
#: institution ("Philips Healthcare"), the patient's name field and the date/time; the left
#: column carries the probe and settings.
BAR = (0, 0, 800, 60)
LEFT = (0, 60, 90, 200)


def _testfile(name: str):
    from pydicom.data import get_testdata_file

    p = get_testdata_file(name, download=False)
    if not p:
        pytest.skip(f"pydicom's {name} is not installed")
    return p


@pytest.fixture(scope="module")
def palette_us():
    return _testfile("examples_palette.dcm")


@pytest.fixture(scope="module")
def multiframe_us():
    return _testfile("examples_ybr_color.dcm")  # 30 frames, YBR_FULL_422 JPEG


def _errors(p) -> set[str]:
    return set(validate_file(p).errors) if dciodvfy_path() is not None else set()


def _palette_rgb8(path) -> np.ndarray:
    ds = pydicom.dcmread(path)
    return apply_color_lut(ds.pixel_array, ds).astype(np.float64) / 257.0  # 16-bit entries


def test_risk_rule():
    from pydicom.dataset import Dataset

    def ds(**kw):
        d = Dataset()
        for k, v in kw.items():
            setattr(d, k, v)
        return d

    assert burned_in_risk(ds(Modality="US")) and burned_in_risk(ds(Modality="OT", BurnedInAnnotation="YES"))
    assert burned_in_risk(ds(Modality="CR", BurnedInAnnotation="YES"))
    assert burned_in_risk(ds(Modality="DX", SOPClassUID="1.2.840.10008.5.1.4.1.1.7"))  # an SC by class
    assert burned_in_risk(ds(Modality="US", BurnedInAnnotation="NO")) is None  # the source says it has none
    assert burned_in_risk(ds(Modality="CR")) is None and burned_in_risk(ds(Modality="DX", BurnedInAnnotation="NO")) is None


def test_mask_region_checks():
    with pytest.raises(ValueError, match="width and height"):
        MaskRegion(0, 0, 0, 5)
    with pytest.raises(ValueError, match="whole pixels"):
        MaskRegion.parse(["1.5", "0", "3", "3"])
    with pytest.raises(ValueError, match="outside the 10x8 image"):
        mask_array(np.zeros((8, 10)), [MaskRegion(5, 0, 6, 2)])
    a = mask_array(np.ones((4, 6, 3), np.uint8), [MaskRegion(1, 2, 3, 1)])
    assert a[2, 1:4].max() == 0 and a.sum() == 4 * 6 * 3 - 9


def test_us_sc_is_refused_without_masks(palette_us, tmp_path, capsys):
    out = tmp_path / "sc.dcm"
    rc = main(["export", palette_us, "--dicom", "sc", "--anonymize", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and not out.exists()
    assert len(err.splitlines()) == 1 and "burned-in text" in err and "--mask-region" in err and palette_us in err


def test_masked_sc_of_palette_us_is_blank_there(palette_us, tmp_path, capsys):
    out = tmp_path / "sc.dcm"
    regions = [str(v) for r in (BAR, LEFT) for v in ("--mask-region", *r)]
    rc = main(["export", palette_us, "--dicom", "sc", "--anonymize", "--native", "--no-annotations",
               "--out", str(out), "--deid-seed", "k", *regions])
    assert rc == 0, capsys.readouterr().err
    ds = pydicom.dcmread(out)
    px = ds.pixel_array
    src = _palette_rgb8(palette_us)
    assert px.shape == src.shape
    # the source has text there; the output has none (below our own banner, at the top centre)
    x, y, w, h = BAR
    assert src[25:y + h, x:x + w].max() > 200 and px[25:y + h, x:x + w].max() == 0
    x, y, w, h = LEFT
    assert src[y:y + h, x:x + w].max() > 200 and px[y:y + h, x:x + w].max() == 0
    # outside the masks and the banner the pixels are the palette's colours
    assert np.abs(px[60:, 100:].astype(float) - src[60:, 100:]).max() <= 1.0
    assert ds.BurnedInAnnotation == "NO" and ds.PatientIdentityRemoved == "YES"
    assert "113101" in {it.CodeValue for it in ds.DeidentificationMethodCodeSequence}  # Clean Pixel Data
    assert any("0,0,800,60" in v for v in ds.DeidentificationMethod)
    assert _errors(out) == set()


def test_masked_sc_of_a_multiframe_us_frame(multiframe_us, tmp_path, capsys):
    out = tmp_path / "sc.dcm"
    rc = main(["export", multiframe_us, "--dicom", "sc", "--anonymize", "--native", "--no-annotations",
               "--frame", "7", "--out", str(out), "--mask-region", "0", "215", "320", "25"])
    assert rc == 0, capsys.readouterr().err
    px = pydicom.dcmread(out).pixel_array
    src = pydicom.dcmread(multiframe_us).pixel_array[7]
    assert src[215:240].max() > 80 and px[215:240].max() == 0
    assert _errors(out) == set()


def test_mask_outside_the_image_is_one_line(palette_us, tmp_path, capsys):
    out = tmp_path / "sc.dcm"
    rc = main(["export", palette_us, "--dicom", "sc", "--anonymize", "--out", str(out),
               "--mask-region", "700", "0", "200", "10"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and not out.exists() and len(err.splitlines()) == 1 and "outside the 800x350 image" in err


@pytest.mark.parametrize("name", ["examples_palette.dcm", "gdcm-US-ALOKA-16.dcm"])
def test_palette_colour_png_and_sc_through_the_palette(name, tmp_path, capsys):
    """8-bit indices with 16-bit entries rendered white before (scaled by Bits Stored)."""
    path = _testfile(name)
    ref = _palette_rgb8(path)
    png = tmp_path / "p.png"
    assert main(["export", path, "--out", str(png), "--native", "--no-annotations"]) == 0, capsys.readouterr().err
    a = np.asarray(Image.open(png)).astype(float)
    assert a.shape == ref.shape and np.abs(a - ref).max() <= 1.0
    assert (a == 255).all(-1).mean() < 0.01  # not the white screen
    sc = tmp_path / "sc.dcm"
    assert main(["export", path, "--dicom", "sc", "--out", str(sc), "--native", "--no-annotations"]) == 0
    px = pydicom.dcmread(sc).pixel_array.astype(float)
    assert np.abs(px[40:] - ref[40:]).max() <= 1.0  # below the NOT FOR DIAGNOSTIC USE banner


def test_png_export_blanks_mask_regions_and_seed_needs_anonymize(palette_us, tmp_path, capsys):
    png = tmp_path / "m.png"
    rc = main(["export", palette_us, "--out", str(png), "--native", "--no-annotations", "--mask-region", *map(str, BAR)])
    assert rc == 0, capsys.readouterr().err
    a = np.asarray(Image.open(png))
    assert a[:60].max() == 0 and _palette_rgb8(palette_us)[:60].max() > 200
    rc = main(["export", palette_us, "--out", str(tmp_path / "x.png"), "--deid-seed", "k"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "--deid-seed needs --anonymize" in err and not (tmp_path / "x.png").exists()
