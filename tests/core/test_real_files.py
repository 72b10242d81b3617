"""Real files: pydicom-data's RG1 chest CR in four encodings, the SIIM DICOMs and NIH PNGs."""

from __future__ import annotations

import numpy as np
import pytest

from cxrviewer.core.dicom_io import load_image
from cxrviewer.core.display import render


@pytest.fixture(scope="module")
def rg1(rg1_unci, rg1_uncr, rg1_j2kr, rg1_j2ki):
    return {n: load_image(p) for n, p in
            (("UNCI", rg1_unci), ("UNCR", rg1_uncr), ("J2KR", rg1_j2kr), ("J2KI", rg1_j2ki))}


def test_rg1_lossless_j2k_decodes_to_the_uncompressed_reference(rg1):
    assert rg1["J2KR"].transfer_syntax == "1.2.840.10008.1.2.4.90"
    assert rg1["J2KR"].stored.shape == (1955, 1841)
    np.testing.assert_array_equal(rg1["J2KR"].stored, rg1["UNCR"].stored)


def test_rg1_lossy_j2k_decodes_to_its_reference(rg1):
    assert rg1["J2KI"].transfer_syntax == "1.2.840.10008.1.2.4.91"
    np.testing.assert_array_equal(rg1["J2KI"].stored, rg1["UNCI"].stored)
    # and lossy really is lossy: it differs from the lossless original somewhere
    assert not np.array_equal(rg1["J2KI"].stored, rg1["UNCR"].stored)


def test_rg1_header_window_monochrome1_and_no_calibration(rg1):
    img = rg1["UNCR"]
    assert img.photometric == "MONOCHROME1" and img.invert
    assert [(p.center, p.width, p.source) for p in img.presets] == [(15000.0, 30000.0, "header")]
    assert img.geometry is None  # PixelSpacing is 0: uncalibrated, measurements in pixels
    out = render(img)
    assert out.dtype == np.uint8 and out.shape == (1955, 1841)
    # MONOCHROME1: low stored values (dense tissue, the border collimation) are bright
    lo = img.stored < np.percentile(img.stored, 5)
    hi = img.stored > np.percentile(img.stored, 95)
    assert out[lo].mean() > out[hi].mean() + 100


def test_siim_monochrome1_displays_as_exact_negative(shared_data):
    d = shared_data / "dicom"
    m2 = load_image(d / "siim_chest_pa_jpeg_baseline.dcm")
    m1 = load_image(d / "siim_chest_pa_flagged_monochrome1.dcm")
    assert m2.photometric == "MONOCHROME2" and m1.photometric == "MONOCHROME1"
    assert m2.transfer_syntax == "1.2.840.10008.1.2.4.50"
    np.testing.assert_array_equal(m1.stored, m2.stored)
    a, b = render(m2), render(m1)
    np.testing.assert_array_equal(b.astype(int), 255 - a.astype(int))
    assert m2.presets == [] and m2.default_preset.source == "auto"
    g = m2.geometry
    assert g is not None and g.basis == "PixelSpacing" and (g.row_spacing_mm, g.col_spacing_mm) == (0.168, 0.168)


def test_nih_png_loads_and_renders_as_stored(shared_data):
    pngs = sorted((shared_data / "nih-full").glob("*.png"))
    assert len(pngs) >= 3
    for p in pngs:
        img = load_image(p)
        assert img.kind == "image" and not img.is_color
        assert img.stored.dtype == np.uint8 and img.stored.shape == (1024, 1024)
        assert img.default_preset.source == "full"
        # an 8-bit PNG is already a rendered image: the default display is the file itself
        np.testing.assert_array_equal(render(img), img.stored)
        assert img.header.series_description == p.name


def test_nih_small_rgb_png_is_gray(shared_data):
    p = next((shared_data / "nih1000-64" / "train" / "0_normal").glob("*.png"))
    img = load_image(p)
    # the 64 px set is RGB with equal channels: read as grayscale
    assert img.stored.shape == (64, 64) and not img.is_color
