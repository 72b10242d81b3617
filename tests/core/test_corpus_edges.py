"""Regressions found by running pydicom's and pydicom-data's test files (issue 13, "Edge cases
found by running an outside DICOM corpus"): enhanced multi-frame functional groups, a
YBR_FULL_422 size check, truncated JPEG 2000, decoder messages, DICOMDIRs by SOP class, and
pydicom's warnings routed to the log and the file's entry.

pydicom's own test files are used as they are (read-only); truncated and enhanced variants
are generated here.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset

from cxrviewer.cli import main
from cxrviewer.core import dicom_warnings
from cxrviewer.core.dicom_io import DICOMDIR_REASON, load_image
from cxrviewer.core.display import levels_for_preset, render
from cxrviewer.core.errors import DicomReadError
from cxrviewer.core.study_index import read_record, scan
from cxrviewer.core.synthetic import add_functional_groups, make_dataset, write_dataset
from cxrviewer.core.window import voi_linear

ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.1"


def _testdata(name: str) -> str:
    from pydicom.data import get_testdata_file

    p = get_testdata_file(name, download=False)
    if p is None:
        pytest.skip(f"pydicom(-data)'s test file {name} is not installed")
    return str(p)


def _scan_reason(path) -> str | None:
    result = scan(path, workers=0)
    if result.instances():
        return None
    assert len(result.errors) == 1, result.errors
    return result.errors[0].reason


def _load_reason(path) -> str:
    with pytest.raises(DicomReadError) as e:
        load_image(path)
    assert str(path) in str(e.value)
    return e.value.reason


def _export_png(tmp_path, src, *extra) -> np.ndarray:
    out = tmp_path / "out.png"
    rc = main(["export", str(src), "--out", str(out), "--native", "--no-annotations", *extra])
    assert rc == 0
    return np.asarray(Image.open(out))


# --------------------------------------------------------------- enhanced multi-frame


def test_enhanced_ct_rescale_and_window_come_from_the_shared_functional_groups(tmp_path, capsys):
    path = _testdata("eCT_Supplemental.dcm")
    ds = pydicom.dcmread(path)
    shared = ds.SharedFunctionalGroupsSequence[0]
    pvt = shared.PixelValueTransformationSequence[0]
    voi = shared.FrameVOILUTSequence[0]
    slope, intercept = float(pvt.RescaleSlope), float(pvt.RescaleIntercept)
    assert "RescaleIntercept" not in ds and intercept != 0  # only in the functional groups
    stored = ds.pixel_array
    for frame in range(int(ds.NumberOfFrames)):
        img = load_image(path, frame)
        np.testing.assert_allclose(img.modality, stored[frame] * slope + intercept)
        assert (img.rescale_slope, img.rescale_intercept) == (slope, intercept)
        assert img.units == str(pvt.RescaleType)  # the macro's Rescale Type, not a guess
        # the file's window, not Auto
        p = img.default_preset
        assert (p.source, p.center, p.width) == ("header", float(voi.WindowCenter), float(voi.WindowWidth))
        assert "Frame VOI LUT" in p.explanation
        pm = shared.PixelMeasuresSequence[0]
        assert img.geometry is not None
        assert (img.geometry.row_spacing_mm, img.geometry.col_spacing_mm) == tuple(float(v) for v in pm.PixelSpacing)
        # the canvas's levels on the stored array give the same window
        lo, hi = levels_for_preset(img, p)
        assert lo == pytest.approx(float(voi.WindowCenter) - 0.5 - (float(voi.WindowWidth) - 1) / 2 - intercept)
        # export: the display pipeline with the file's window on the rescaled values
        expected = np.floor(voi_linear(stored[frame] * slope + intercept, float(voi.WindowCenter),
                                       float(voi.WindowWidth)) * 255 + 0.5).astype(np.uint8)
        np.testing.assert_array_equal(render(img), expected)
        np.testing.assert_array_equal(_export_png(tmp_path, path, "--frame", str(frame)), expected)
        capsys.readouterr()


def _enhanced(tmp_path, *, per_frame_rescale: bool, top_level_rescale: bool = False) -> tuple[str, np.ndarray]:
    """Three frames: shared rescale (-1024, x1) and window; frame 1 overrides both per frame."""
    rng = np.random.default_rng(7)
    arr = rng.integers(0, 4096, (3, 12, 10)).astype(np.uint16)
    ds = make_dataset(arr, sop_class=ENHANCED_CT)
    ds.Modality = "CT"
    if top_level_rescale:  # a converter's leftover: the functional groups must still win
        ds.RescaleSlope, ds.RescaleIntercept = 1, 0
    frames = [{"FrameContentSequence": {"InStackPositionNumber": k + 1}} for k in range(3)]
    frames[1]["FrameVOILUTSequence"] = {"WindowCenter": -600, "WindowWidth": 1500,
                                        "WindowCenterWidthExplanation": "LUNG"}
    if per_frame_rescale:
        frames[1]["PixelValueTransformationSequence"] = {"RescaleSlope": 2, "RescaleIntercept": -1000,
                                                         "RescaleType": "HU"}
    add_functional_groups(ds, {
        "PixelValueTransformationSequence": {"RescaleSlope": 1, "RescaleIntercept": -1024, "RescaleType": "HU"},
        "FrameVOILUTSequence": {"WindowCenter": 40, "WindowWidth": 400},
        "PixelMeasuresSequence": {"PixelSpacing": [0.5, 0.25], "SliceThickness": 1},
    }, frames)
    return write_dataset(ds, tmp_path / "enhanced.dcm"), arr


@pytest.mark.parametrize("top_level_rescale", [False, True])
def test_per_frame_functional_groups_override_shared(tmp_path, top_level_rescale, capsys):
    path, arr = _enhanced(tmp_path, per_frame_rescale=True, top_level_rescale=top_level_rescale)
    expect = {0: (1.0, -1024.0, 40.0, 400.0, "Header window 1"),
              1: (2.0, -1000.0, -600.0, 1500.0, "LUNG"),
              2: (1.0, -1024.0, 40.0, 400.0, "Header window 1")}
    for frame, (m, b, c, w, name) in expect.items():
        img = load_image(path, frame)
        np.testing.assert_allclose(img.modality, arr[frame].astype(np.float64) * m + b)
        assert (img.rescale_slope, img.rescale_intercept, img.units) == (m, b, "HU")
        assert [(p.name, p.center, p.width) for p in img.presets] == [(name, c, w)]
        assert (img.geometry.row_spacing_mm, img.geometry.col_spacing_mm) == (0.5, 0.25)
        # a probe reads modality values: stored * slope + intercept of *this* frame
        assert float(img.modality[3, 4]) == float(arr[frame, 3, 4]) * m + b
        expected = np.floor(voi_linear(arr[frame] * m + b, c, w) * 255 + 0.5).astype(np.uint8)
        np.testing.assert_array_equal(_export_png(tmp_path, path, "--frame", str(frame)), expected)
        capsys.readouterr()


def test_frame_voi_without_per_frame_rescale_uses_shared_rescale(tmp_path):
    path, arr = _enhanced(tmp_path, per_frame_rescale=False)
    img = load_image(path, 1)
    assert (img.rescale_slope, img.rescale_intercept) == (1.0, -1024.0)
    assert img.default_preset.name == "LUNG"


# --------------------------------------------------------------- YBR_FULL_422 and truncation


def test_ybr_full_422_uncompressed_is_an_image_and_its_truncation_is_caught(tmp_path):
    src = _testdata("SC_ybr_full_422_uncompressed.dcm")
    ds = pydicom.dcmread(src)
    assert ds.PhotometricInterpretation == "YBR_FULL_422"
    result = scan(src, workers=0)
    assert result.errors == [] and len(result.instances()) == 1
    img = load_image(src)
    np.testing.assert_array_equal(img.stored, ds.pixel_array)  # pydicom's RGB conversion
    # the same file cut inside its pixel data: scan and load agree, in the same words
    cut = tmp_path / "ybr_cut.dcm"
    data = Path(src).read_bytes()
    cut.write_bytes(data[: len(data) - 1000])
    reason = _scan_reason(cut)
    assert reason is not None and reason.startswith("truncated")
    assert str(ds.Rows * ds.Columns * 2) in reason  # 4:2:2 is two samples per pixel, not three
    assert _load_reason(cut) == reason


def test_truncated_native_pixel_data_same_reason_in_scan_and_load():
    path = _testdata("MR_truncated.dcm")
    reason = _scan_reason(path)
    assert reason is not None and reason.startswith("truncated")
    assert _load_reason(path) == reason


@pytest.mark.parametrize("cut", ["delimiter", "mid_fragment", "item_header"])
def test_truncated_jpeg2000_same_reason_in_scan_load_and_export(tmp_path, cut, capsys):
    src = _testdata("emri_small_jpeg_2k_lossless.dcm")
    data = Path(src).read_bytes()
    assert data.endswith(b"\xfe\xff\xdd\xe0\x00\x00\x00\x00")  # the Sequence Delimitation Item
    n = {"delimiter": 8, "mid_fragment": 8 + 1000, "item_header": 8 + 3752 + 4}[cut]
    bad = tmp_path / f"j2k_{cut}.dcm"
    bad.write_bytes(data[:-n])
    reason = _scan_reason(bad)
    assert reason is not None and reason.startswith("truncated"), reason
    assert "not an image" not in reason
    assert _load_reason(bad) == reason
    rc = main(["export", str(bad), "--out", str(tmp_path / "x.png")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.endswith(f"{bad}: {reason}") and "\n" not in err
    assert not (tmp_path / "x.png").exists()


def test_pydicom_data_truncated_jpeg2000_file():
    path = _testdata("emri_small_jpeg_2k_lossless_too_short.dcm")
    reason = _scan_reason(path)
    assert reason is not None and reason.startswith("truncated") and "(FFFE,E0DD)" in reason
    assert _load_reason(path) == reason


def test_header_only_problem_is_refused_by_scan_and_load_alike():
    path = _testdata("badVR.dcm")  # Number of Frames '1A'
    reason = _scan_reason(path)
    assert reason is not None and "is not an integer" in reason
    assert _load_reason(path) == reason


# --------------------------------------------------------------- decoder messages


def test_decoder_failure_keeps_every_plugins_reason():
    path = _testdata("JPEG-lossy.dcm")
    ds = pydicom.dcmread(path)
    with pytest.raises(Exception) as raw:  # noqa: PT011 - whatever pydicom raises, we compare texts
        _ = ds.pixel_array
    plugin_lines = [ln.strip() for ln in str(raw.value).strip().splitlines()[1:] if ln.strip()]
    if not plugin_lines:
        pytest.skip("pydicom gave a one-line decoder error here (a single plugin installed)")
    reason = _load_reason(path)
    assert "\n" not in reason
    assert reason.startswith("pixel data could not be decoded")
    for line in plugin_lines:
        assert line[:200] in reason, line


# --------------------------------------------------------------- DICOMDIR by SOP class


@pytest.mark.parametrize("name", ["DICOMDIR-bigEnd", "DICOMDIR-implicit", "DICOMDIR-reordered", "DICOMDIR-nopatient"])
def test_dicomdir_recognised_by_media_storage_sop_class(name):
    ref = _testdata("DICOMDIR")
    path = str(Path(ref).parent / name)
    if not Path(path).is_file():
        pytest.skip(f"pydicom's {name} is not installed")
    assert pydicom.dcmread(path, stop_before_pixels=True).file_meta.MediaStorageSOPClassUID == "1.2.840.10008.1.3.10"
    rec = read_record(path)
    assert rec.dicomdir and rec.error == DICOMDIR_REASON  # not "corrupt"
    assert _load_reason(path) == DICOMDIR_REASON
    # scanned as a DICOMDIR: the files it references, as the one named DICOMDIR gives
    got = scan(path, workers=0)
    want = scan(ref, workers=0)
    assert got.instances() and {i.path for i in got.instances()} <= {i.path for i in want.instances()} | {
        e.path for e in want.errors}
    assert not any("corrupt" in e.reason for e in got.errors)


def test_renamed_dicomdir_in_a_folder_is_neither_image_nor_error(tmp_path):
    ref = _testdata("DICOMDIR")
    folder = tmp_path / "media"
    folder.mkdir()
    (folder / "index.dcm").write_bytes(Path(ref).read_bytes())
    write_dataset(make_dataset(np.zeros((8, 8), np.uint16)), folder / "img.dcm")
    result = scan(folder, workers=0)
    assert result.errors == [] and [Path(i.path).name for i in result.instances()] == ["img.dcm"]


# --------------------------------------------------------------- pydicom's warnings


def test_pydicom_warnings_go_to_the_entry_and_the_log_not_stderr(tmp_path, caplog):
    header_warn = _testdata("SC_rgb_jpeg.dcm")  # "Expected explicit VR, but found implicit VR"
    pixel_warn = _testdata("MR_small_padded.dcm")  # "... excess padding to be removed"
    # this suite runs with warnings as errors: reading must not raise
    with caplog.at_level(logging.INFO, logger="cxrviewer.core.dicom_warnings"):
        rec = read_record(header_warn)
        img = load_image(pixel_warn)
    assert rec.instance is not None and any("implicit VR" in w for w in rec.warnings)
    assert any("excess padding" in w for w in img.warnings)
    logged = caplog.text
    assert "implicit VR" in logged and "excess padding" in logged
    assert Path(pixel_warn).name in logged
    # the scan's entry carries them (JSON key "warnings")
    folder = tmp_path / "f"
    folder.mkdir()
    for p in (header_warn, pixel_warn):
        (folder / Path(p).name).write_bytes(Path(p).read_bytes())
    doc = scan(folder, workers=0).to_dict()
    inst = [i for p in doc["patients"] for s in p["studies"] for se in s["series"] for i in se["instances"]]
    by_name = {Path(i["path"]).name: i["warnings"] for i in inst}
    assert any("implicit VR" in w for w in by_name["SC_rgb_jpeg.dcm"])


def test_cli_scan_and_export_print_no_pydicom_warning(tmp_path):
    src = _testdata("MR_small_padded.dcm")
    src2 = _testdata("SC_rgb_jpeg.dcm")
    for cmd in (["scan", src2, "--json"], ["export", src, "--out", str(tmp_path / "a.png")],
                ["export", src2, "--out", str(tmp_path / "b.png")]):
        proc = subprocess.run([sys.executable, "-m", "cxrviewer", *cmd], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == "", proc.stderr
    doc = json.loads(subprocess.run([sys.executable, "-m", "cxrviewer", "scan", src2, "--json"],
                                    capture_output=True, text=True, timeout=120).stdout)
    inst = doc["patients"][0]["studies"][0]["series"][0]["instances"][0]
    assert any("implicit VR" in w for w in inst["warnings"])


def test_collect_reissues_other_warnings_and_restores_filters():
    before = list(warnings.filters)
    with pytest.raises(RuntimeWarning, match="ours"):  # -W error: a warning of our own code is still a bug
        with dicom_warnings.collect("x.dcm") as notes:
            warnings.warn("ours", RuntimeWarning, stacklevel=1)
    assert notes == []
    assert warnings.filters == before


def test_collect_from_threads_keeps_each_files_notes():
    padded = _testdata("MR_small_padded.dcm")
    plain = _testdata("CT_small.dcm")
    before = list(warnings.filters)
    out: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def work(path: str, key: str) -> None:
        try:
            for _ in range(5):
                out[key] = load_image(path).warnings
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(p, k)) for p, k in ((padded, "padded"), (plain, "plain"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert any("excess padding" in w for w in out["padded"]) and out["plain"] == []
    assert warnings.filters == before


def test_app_console_handler_drops_pydicom_records(tmp_path, capsys):
    from cxrviewer import logsetup

    logsetup.setup_logging(logging.INFO, log_file=tmp_path / "app.log")
    try:
        logging.getLogger("pydicom").warning("Expected explicit VR, but found implicit VR")
        logging.getLogger("cxrviewer.test").warning("a real problem")
        for h in logging.getLogger().handlers:
            h.flush()
        err = capsys.readouterr().err
        text = (tmp_path / "app.log").read_text(encoding="utf-8")
    finally:
        logsetup.teardown_logging()
    assert "implicit VR" not in err and "a real problem" in err
    assert "implicit VR" in text


def test_object_entry_carries_pydicom_warnings(tmp_path):
    """An SR whose body is implicit VR under an explicit VR File Meta (as pydicom's
    SC_rgb_jpeg.dcm): listed as an object, pydicom's note on its entry."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset as write_body
    from pydicom.filewriter import write_file_meta_info

    from cxrviewer.core.synthetic import BASIC_TEXT_SR

    ds = make_dataset(None, sop_class=BASIC_TEXT_SR)
    buf = DicomBytesIO()
    buf.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(buf, ds.file_meta, enforce_standard=True)  # says explicit VR little endian
    buf.is_little_endian, buf.is_implicit_VR = True, True
    write_body(buf, Dataset(ds))
    path = tmp_path / "sr.dcm"
    path.write_bytes(buf.getvalue())
    result = scan(path, workers=0)
    assert result.errors == []
    (obj,) = result.objects()
    assert any("implicit VR" in w for w in obj.warnings)
    assert any("implicit VR" in w for w in result.to_dict()["patients"][0]["studies"][0]["objects"][0]["warnings"])
