"""The display pipeline on synthetic datasets, one per LUT branch.

Expected values are worked out by hand from the formulas of PS3.3 C.11 and written next to
each assertion; ``render`` quantises ``y`` in [0, 1] as ``floor(255 * y + 0.5)``.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from cxrviewer.core.dicom_io import load_image
from cxrviewer.core.display import render
from cxrviewer.core.errors import DicomReadError
from cxrviewer.core.synthetic import SECONDARY_CAPTURE, chest_like, make_dataset, write_dataset


def _row(values, dtype=np.uint16) -> np.ndarray:
    """A 2-row image whose first row holds ``values`` (rows >= 2 keeps decoders honest)."""
    v = np.asarray(values, dtype=dtype)
    return np.stack([v, v])


def _lut_item(descriptor, data, explanation="", ow=False) -> Dataset:
    """A LUT item; LUT Data as US values or, like many real files, as OW bytes."""
    item = Dataset()
    item.LUTDescriptor = descriptor
    if ow:
        item.add_new(0x00283006, "OW", np.asarray(data, "<u2").tobytes())
    else:
        item.add_new(0x00283006, "US", list(data))
    if explanation:
        item.LUTExplanation = explanation
    return item


def _load(tmp_path, ds, name="x.dcm", **kw):
    return load_image(write_dataset(ds, tmp_path / name), **kw)


# --- Modality LUT (PS3.3 C.11.1) -------------------------------------------------------------


def test_rescale_slope_intercept(tmp_path):
    ds = make_dataset(_row([0, 512, 1000]), extra={
        "RescaleSlope": 2, "RescaleIntercept": -1024, "RescaleType": "US",
        "WindowCenter": 0, "WindowWidth": 1001,
    })
    img = _load(tmp_path, ds)
    # m * SV + b: 2*0-1024, 2*512-1024, 2*1000-1024
    assert img.modality[0].tolist() == [-1024.0, 0.0, 976.0]
    assert (img.rescale_slope, img.rescale_intercept) == (2.0, -1024.0)
    # LINEAR c=0 w=1001: x <= -500.5 -> 0; x > 499.5 -> 255; x=0: ((0+0.5)/1000+0.5)=0.5005 -> 128
    assert render(img)[0].tolist() == [0, 128, 255]


def test_modality_lut_sequence_wins_over_rescale(tmp_path):
    item = _lut_item([4, 10, 16], [100, 200, 300, 400])  # 4 entries from input 10, 16 bits
    item.ModalityLUTType = "US"
    ds = make_dataset(_row([9, 10, 12, 13, 50]), extra={
        "ModalityLUTSequence": Sequence([item]), "RescaleSlope": 5, "RescaleIntercept": 7,
    })
    img = _load(tmp_path, ds)
    # C.11.1.1.1: below the first mapped value -> first entry, above the last -> last entry
    assert img.modality[0].tolist() == [100.0, 100.0, 300.0, 400.0, 400.0]
    assert (img.rescale_slope, img.rescale_intercept) == (1.0, 0.0)


# --- VOI (PS3.3 C.11.2) --------------------------------------------------------------------------


def test_voi_linear_spot_values(tmp_path):
    ds = make_dataset(_row([0, 50, 100, 199, 200, 300]), extra={"WindowCenter": 100, "WindowWidth": 201})
    img = _load(tmp_path, ds)
    # C.11.2.1.2.1, c=100 w=201: y = (x - 99.5)/200 + 0.5 for -0.5 < x <= 199.5
    # x=0: 0.0025 -> floor(0.6375+0.5)=1; x=50: 0.2525 -> 64; x=100: 0.5025 -> 128;
    # x=199: 0.9975 -> 254; x=200, 300: above c - 0.5 + (w-1)/2 = 199.5 -> 255
    assert render(img)[0].tolist() == [1, 64, 128, 254, 255, 255]


def test_voi_linear_exact_spot_values(tmp_path):
    ds = make_dataset(_row([0, 50, 100, 150, 200, 250]), extra={
        "WindowCenter": 100, "WindowWidth": 200, "VOILUTFunction": "LINEAR_EXACT",
    })
    img = _load(tmp_path, ds)
    # C.11.2.1.3.2: y = (x - c)/w + 0.5 clipped: 0, 0.25, 0.5, 0.75, 1, 1
    # -> floor(255y + 0.5): 0, 64, 128, 191, 255, 255
    assert render(img)[0].tolist() == [0, 64, 128, 191, 255, 255]
    assert img.presets[0].function == "LINEAR_EXACT"


def test_voi_sigmoid_spot_values(tmp_path):
    ds = make_dataset(_row([0, 50, 100, 150, 300]), extra={
        "WindowCenter": 100, "WindowWidth": 200, "VOILUTFunction": "SIGMOID",
    })
    img = _load(tmp_path, ds)
    # C.11.2.1.3.1: y = 1/(1 + exp(-4 (x - c)/w))
    # x=0: 1/(1+e^2)=0.119203 -> 30; x=50: 1/(1+e^1)=0.268941 -> 69; x=100: 0.5 -> 128;
    # x=150: 1/(1+e^-1)=0.731059 -> 186; x=300: 1/(1+e^-4)=0.982014 -> 250
    assert render(img)[0].tolist() == [30, 69, 128, 186, 250]


def test_voi_lut_sequence_items_are_named_presets(tmp_path):
    a = _lut_item([4, 0, 8], [0, 85, 170, 255], "SOFT")
    b = _lut_item([3, 0, 16], [0, 32768, 65535], "HARD", ow=True)
    ds = make_dataset(_row([0, 1, 2, 3, 7]), extra={"VOILUTSequence": Sequence([a, b])})
    img = _load(tmp_path, ds)
    names = [p.name for p in img.presets]
    assert names == ["SOFT", "HARD"]
    assert all(p.source == "voi_lut" for p in img.presets)
    # 8-bit LUT: entries / 255 -> exactly the entries; 7 is above the last input -> last entry
    assert render(img)[0].tolist() == [0, 85, 170, 255, 255]
    # 16-bit LUT: 32768/65535 = 0.500008 -> floor(127.502+0.5) = 128
    assert render(img, img.presets[1])[0].tolist() == [0, 128, 255, 255, 255]


def test_every_header_window_pair_is_a_named_preset(tmp_path):
    ds = make_dataset(_row([0, 100, 200]), extra={
        "WindowCenter": [40, 300, 1000],
        "WindowWidth": [400, 1500, 0],  # the third is invalid (width < 1) and must be dropped
        "WindowCenterWidthExplanation": ["LUNG", "BONE", "BROKEN"],
    })
    img = _load(tmp_path, ds)
    assert [(p.name, p.center, p.width, p.source) for p in img.presets] == [
        ("LUNG", 40.0, 400.0, "header"), ("BONE", 300.0, 1500.0, "header"),
    ]
    assert all("Window Center" in p.explanation for p in img.presets)
    assert img.default_preset.name == "LUNG"


def test_unnamed_window_pairs_get_numbered_names(tmp_path):
    ds = make_dataset(_row([0, 100]), extra={"WindowCenter": [40, 300], "WindowWidth": [400, 1500]})
    img = _load(tmp_path, ds)
    assert [p.name for p in img.presets] == ["Header window 1", "Header window 2"]


# --- Inversion after VOI (PS3.3 C.7.6.3.1.2, C.11.6.1) ---------------------------------------------


def test_monochrome1_inverted_after_voi(tmp_path):
    extra = {"WindowCenter": 100, "WindowWidth": 200, "VOILUTFunction": "LINEAR_EXACT"}
    values = [0, 50, 100, 150, 200, 250]
    m1 = _load(tmp_path, make_dataset(_row(values), photometric="MONOCHROME1", extra=extra), "m1.dcm")
    # 1 - y of the LINEAR_EXACT values above: 1, 0.75, 0.5, 0.25, 0, 0 -> 255, 191, 128, 64, 0, 0.
    # Inverting *before* the window (on the stored range) would give other numbers.
    assert m1.invert
    assert render(m1)[0].tolist() == [255, 191, 128, 64, 0, 0]
    assert render(m1, apply_invert=False)[0].tolist() == [0, 64, 128, 191, 255, 255]


def test_presentation_lut_shape_inverse(tmp_path):
    extra = {"WindowCenter": 100, "WindowWidth": 200, "VOILUTFunction": "LINEAR_EXACT",
             "PresentationLUTShape": "INVERSE"}
    img = _load(tmp_path, make_dataset(_row([0, 50, 200]), extra=extra))
    assert img.photometric == "MONOCHROME2" and img.invert
    assert render(img)[0].tolist() == [255, 191, 0]
    # MONOCHROME1 with INVERSE (what DX requires) is one inversion, not two.
    both = _load(tmp_path, make_dataset(_row([0, 50, 200]), photometric="MONOCHROME1", extra=extra), "b.dcm")
    assert render(both)[0].tolist() == [255, 191, 0]
    identity = dict(extra, PresentationLUTShape="IDENTITY")
    plain = _load(tmp_path, make_dataset(_row([0, 50, 200]), extra=identity), "c.dcm")
    assert render(plain)[0].tolist() == [0, 64, 255]


# --- Padding, bits, sign ----------------------------------------------------------------------


def test_pixel_padding_excluded_from_auto_window(tmp_path):
    arr = np.zeros((40, 40), np.uint16)  # 0 = padding, 75% of the image
    arr[10:30, 10:30] = np.linspace(1000, 2000, 400).reshape(20, 20).astype(np.uint16)
    img = _load(tmp_path, make_dataset(arr, bits_stored=12, extra={"PixelPaddingValue": 0}))
    assert img.padding_mask is not None and int(img.padding_mask.sum()) == 1200
    lo = img.auto_preset.center - img.auto_preset.width / 2
    hi = img.auto_preset.center + img.auto_preset.width / 2
    assert 1000 <= lo < 1010 and 1990 < hi <= 2000  # the window spans the anatomy, not 0
    out = render(img)
    assert (out[img.padding_mask] == 0).all()
    assert out[10:30, 10:30].max() == 255 and 0 <= out[10:30, 10:30].min() <= 2


def test_pixel_padding_range_limit(tmp_path):
    arr = np.full((20, 20), 500, np.uint16)
    arr[:5] = [[0], [1], [2], [3], [4]]
    img = _load(tmp_path, make_dataset(arr, extra={"PixelPaddingValue": 0, "PixelPaddingRangeLimit": 3}))
    assert int(img.padding_mask.sum()) == 4 * 20  # 0..3 are padding, 4 is not


def test_bits_stored_masks_high_bits(tmp_path):
    # 12 of 16 bits stored; the writer left garbage in the top 4 bits (allowed by PS3.5 8.1.1).
    arr = _row([0xF000 | 100, 0x3000 | 4095, 7])
    img = _load(tmp_path, make_dataset(arr, bits_stored=12))
    assert img.stored[0].tolist() == [100, 4095, 7]
    assert img.bits_stored == 12


def test_signed_pixels(tmp_path):
    arr = _row([-1000, -1, 0, 1000], dtype=np.int16)
    img = _load(tmp_path, make_dataset(arr, extra={"WindowCenter": 0, "WindowWidth": 2001}))
    assert img.stored.dtype.kind == "i"
    assert img.modality[0].tolist() == [-1000.0, -1.0, 0.0, 1000.0]
    # LINEAR c=0 w=2001: y = (x + 0.5)/2000 + 0.5 -> x=-1000: 0.00025 -> 0; x=0: 0.50025 -> 128
    assert render(img)[0].tolist()[0] == 0 and render(img)[0].tolist()[2] == 128


def test_signed_12_bit_in_16_sign_extended_from_bits_stored(tmp_path):
    # -5 in 12-bit two's complement is 0xFFB; the top 4 bits are not a sign extension here.
    raw = _row([0x0FFB, 0x0005, 0x0800], dtype=np.uint16)
    ds = make_dataset(raw, bits_stored=12, signed=True)
    img = _load(tmp_path, ds)
    assert img.stored[0].tolist() == [-5, 5, -2048]


# --- Colour and multi-frame ---------------------------------------------------------------------


def test_rgb_secondary_capture(tmp_path):
    rgb = np.zeros((8, 10, 3), np.uint8)
    rgb[..., 0] = 200
    rgb[2:4, :, 1] = 100
    img = _load(tmp_path, make_dataset(rgb, sop_class=SECONDARY_CAPTURE))
    assert img.is_color and img.modality is None
    np.testing.assert_array_equal(render(img), rgb)


def test_ybr_full_secondary_capture_converted_to_rgb(tmp_path):
    from pydicom.pixels import convert_color_space

    rgb = np.zeros((8, 10, 3), np.uint8)
    rgb[..., 0] = 200
    rgb[:, 5:, 2] = 120
    ybr = convert_color_space(rgb, "RGB", "YBR_FULL")
    img = _load(tmp_path, make_dataset(ybr, sop_class=SECONDARY_CAPTURE, photometric="YBR_FULL"))
    assert img.is_color
    assert np.abs(render(img).astype(int) - rgb.astype(int)).max() <= 2


def test_multiframe_frame_index(tmp_path):
    frames = np.stack([np.full((6, 5), 100 * (k + 1), np.uint16) for k in range(3)])
    path = write_dataset(make_dataset(frames), tmp_path / "mf.dcm")
    for k in range(3):
        img = load_image(path, frame=k)
        assert img.n_frames == 3 and img.frame == k
        assert img.stored.shape == (6, 5) and int(img.stored[0, 0]) == 100 * (k + 1)
    with pytest.raises(DicomReadError, match="frame 3 requested"):
        load_image(path, frame=3)


# --- Defaults -----------------------------------------------------------------------------------


def test_no_window_tags_uses_robust_percentiles_not_min_max(tmp_path):
    arr = chest_like(100, 100, bits=12, seed=1)
    arr[0, 0] = 4095  # one hot pixel
    arr[0, 1] = 0  # one dead pixel
    img = _load(tmp_path, make_dataset(arr, bits_stored=12))
    assert img.presets == []
    auto = img.default_preset
    assert auto is img.auto_preset and auto.source == "auto"
    lo, hi = auto.center - auto.width / 2, auto.center + auto.width / 2
    inner = np.sort(arr.reshape(-1))[1:-1]
    assert lo > 0 and hi < 4095
    # within the 0.5-99.5 percentiles of the pixels, not the extremes
    assert np.percentile(inner, 0.2) <= lo <= np.percentile(inner, 1)
    assert np.percentile(inner, 99) <= hi <= np.percentile(inner, 99.8)


def test_invalid_window_width_falls_back_to_auto(tmp_path):
    ds = make_dataset(_row([0, 100, 200]), extra={"WindowCenter": 100, "WindowWidth": 0})
    img = _load(tmp_path, ds)
    assert img.presets == [] and img.default_preset.source == "auto"
    assert render(img).shape == (2, 3)


def test_rescale_slope_zero_is_refused(tmp_path):
    ds = make_dataset(_row([0, 100]), extra={"RescaleSlope": 0})
    with pytest.raises(DicomReadError, match="Rescale Slope"):
        _load(tmp_path, ds)


def test_dataset_without_preamble(tmp_path):
    arr = chest_like(16, 12)
    path = write_dataset(make_dataset(arr), tmp_path / "raw.dcm", preamble=False)
    with open(path, "rb") as fh:
        assert fh.read(132)[128:] != b"DICM"
    img = load_image(path)
    np.testing.assert_array_equal(img.stored, arr)


def test_not_dicom_is_a_clean_error(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello, not an image\n" * 10)
    with pytest.raises(DicomReadError, match="not a DICOM file") as e:
        load_image(p)
    assert str(p) in str(e.value)


def test_sr_without_pixels_is_a_clean_error(tmp_path):
    ds = make_dataset(None, sop_class="1.2.840.10008.5.1.4.1.1.88.11")
    with pytest.raises(DicomReadError, match="no Pixel Data"):
        _load(tmp_path, ds)


def test_big_endian_explicit(tmp_path):
    arr = chest_like(10, 8)
    ds = make_dataset(arr)
    p = tmp_path / "be.dcm"
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRBigEndian
    ds.PixelData = arr.astype(">u2").tobytes()
    pydicom.dcmwrite(p, ds, implicit_vr=False, little_endian=False, enforce_file_format=True)
    np.testing.assert_array_equal(load_image(p).stored, arr)
