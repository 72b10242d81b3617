"""`cxrviewer infer` gives a truncated file the same reason as `scan` and `export` (issue 13,
outside-corpus edge cases): truncated JPEG 2000 and native pixel data, renamed DICOMDIRs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cxrviewer.cli import main
from cxrviewer.core.study_index import scan


def _testdata(name: str) -> Path:
    from pydicom.data import get_testdata_file

    p = get_testdata_file(name, download=False)
    if p is None:
        pytest.skip(f"pydicom(-data)'s test file {name} is not installed")
    return Path(p)


def test_infer_scan_and_export_agree_on_truncated_files(tmp_path, capsys, resnet_dir, rg1_unci, monkeypatch):
    monkeypatch.setenv("CXRVIEWER_DATA_DIR", str(tmp_path / "data"))
    d = tmp_path / "study"
    d.mkdir()
    shutil.copy(rg1_unci, d / "rg1.dcm")
    j2k = _testdata("emri_small_jpeg_2k_lossless.dcm").read_bytes()
    (d / "j2k_cut.dcm").write_bytes(j2k[:-1000])  # ends inside the last fragment
    shutil.copy(_testdata("MR_truncated.dcm"), d / "mr_cut.dcm")
    shutil.copy(_testdata("DICOMDIR-implicit"), d / "index")  # a DICOMDIR by its SOP class, not its name
    scanned = {Path(e.path).name: e.reason for e in scan(d, workers=0).errors}
    assert set(scanned) == {"j2k_cut.dcm", "mr_cut.dcm"}  # the renamed DICOMDIR is no error
    assert all(r.startswith("truncated") for r in scanned.values()), scanned

    out = tmp_path / "res.json"
    assert main(["infer", str(d), "--out", str(out), "--model", str(resnet_dir)]) == 0
    doc = json.loads(out.read_text())
    assert [Path(r["path"]).name for r in doc["results"]] == ["rg1.dcm"]
    assert {Path(e["path"]).name: e["reason"] for e in doc["errors"]} == scanned
    for name, reason in scanned.items():
        capsys.readouterr()
        assert main(["export", str(d / name), "--out", str(tmp_path / "x.png")]) == 2
        assert capsys.readouterr().err.strip().endswith(f"{d / name}: {reason}")
