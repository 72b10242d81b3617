"""Calibration basis (PS3.3 10.7.1.1 / 10.7.1.3) and unsupported transfer syntaxes."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import UID

from cxrviewer.core.dicom_io import load_image
from cxrviewer.core.errors import DicomReadError, UnsupportedTransferSyntaxError
from cxrviewer.core.synthetic import make_dataset, write_any_transfer_syntax, write_dataset


def _img(tmp_path, **extra):
    return load_image(write_dataset(make_dataset(np.zeros((4, 4), np.uint16), extra=extra), tmp_path / "g.dcm"))


def test_pixel_spacing_wins(tmp_path):
    g = _img(tmp_path, PixelSpacing=[0.15, 0.16], ImagerPixelSpacing=[0.1, 0.1]).geometry
    assert (g.row_spacing_mm, g.col_spacing_mm, g.basis, g.label) == (0.15, 0.16, "PixelSpacing", "mm")


def test_imager_pixel_spacing_is_at_the_detector(tmp_path):
    g = _img(tmp_path, ImagerPixelSpacing=[0.1, 0.12]).geometry
    assert (g.row_spacing_mm, g.col_spacing_mm, g.basis) == (0.1, 0.12, "ImagerPixelSpacing")
    assert "detector" in g.label


def test_imager_pixel_spacing_corrected_by_ermf(tmp_path):
    g = _img(tmp_path, ImagerPixelSpacing=[0.1, 0.1], EstimatedRadiographicMagnificationFactor=1.25).geometry
    assert g.basis == "ImagerPixelSpacing/EstimatedRadiographicMagnificationFactor"
    assert g.row_spacing_mm == pytest.approx(0.08) and g.col_spacing_mm == pytest.approx(0.08)
    assert "magnification" in g.label


@pytest.mark.parametrize("extra", [
    {},
    {"PixelSpacing": [0, 0]},
    {"ImagerPixelSpacing": [0, 0]},
    {"PixelSpacing": [0, 0], "ImagerPixelSpacing": [0.0, 0.1]},
])
def test_absent_or_zero_spacing_is_none(tmp_path, extra):
    assert _img(tmp_path, **extra).geometry is None


def test_zero_pixel_spacing_falls_back_to_imager(tmp_path):
    g = _img(tmp_path, PixelSpacing=[0, 0], ImagerPixelSpacing=[0.2, 0.2]).geometry
    assert g.basis == "ImagerPixelSpacing"


def _compressed(tmp_path, ts: str):
    ds = make_dataset(np.zeros((8, 8), np.uint16))
    ds.file_meta.TransferSyntaxUID = UID(ts)
    ds.PixelData = encapsulate([b"\xff\x0a" + b"\x00" * 30])
    ds["PixelData"].VR = "OB"
    return write_any_transfer_syntax(ds, tmp_path / f"ts_{ts}.dcm")


def test_jpeg_xl_names_syntax_and_package(tmp_path):
    p = _compressed(tmp_path, "1.2.840.10008.1.2.4.110")
    with pytest.raises(UnsupportedTransferSyntaxError) as e:
        load_image(p)
    msg = str(e.value)
    assert p in msg and "JPEG XL Lossless (1.2.840.10008.1.2.4.110)" in msg and "pydicom" in msg


def test_made_up_syntax_is_named(tmp_path):
    p = _compressed(tmp_path, "1.2.3.4.5.6.7.8")
    with pytest.raises(UnsupportedTransferSyntaxError, match=r"1\.2\.3\.4\.5\.6\.7\.8.*no decoder"):
        load_image(p)


def test_video_syntax_is_unsupported(tmp_path):
    p = _compressed(tmp_path, "1.2.840.10008.1.2.4.100")
    with pytest.raises(UnsupportedTransferSyntaxError, match="MPEG2"):
        load_image(p)


def test_missing_plugin_names_the_package(tmp_path, monkeypatch):
    from pydicom.pixels import get_decoder

    dec = get_decoder(UID("1.2.840.10008.1.2.4.90"))
    monkeypatch.setattr(type(dec), "is_available", property(lambda self: False))
    p = _compressed(tmp_path, "1.2.840.10008.1.2.4.90")
    with pytest.raises(UnsupportedTransferSyntaxError, match="install pylibjpeg-openjpeg"):
        load_image(p)


@pytest.mark.parametrize("ts", ["1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.50"])
def test_corrupt_stream_with_installed_plugin_is_corrupt_not_unsupported(tmp_path, ts):
    p = _compressed(tmp_path, ts)
    with pytest.raises(DicomReadError, match="pixel data could not be decoded") as e:
        load_image(p)
    assert not isinstance(e.value, UnsupportedTransferSyntaxError)
    assert p in str(e.value)
