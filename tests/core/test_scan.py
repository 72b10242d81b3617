"""The study index on hostile folders: every good image found, every bad file reported, nothing
modified; DICOMDIR; grouping and order; the ``cxrviewer scan`` contract."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxrviewer.core import dicom_io, study_index
from cxrviewer.core.errors import ScanPathError
from cxrviewer.core.study_index import scan
from cxrviewer.core.synthetic import BASIC_TEXT_SR, chest_like, make_dataset, write_dataset


def _hashes(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, _dirs, files in os.walk(root):  # os.walk does not follow symlinks: no loop
        for f in files:
            p = os.path.join(dirpath, f)
            if os.path.islink(p):
                continue
            with open(p, "rb") as fh:
                out[p] = hashlib.sha256(fh.read()).hexdigest()
    return out


def _dcm(path: Path, **kw) -> str:
    return write_dataset(make_dataset(chest_like(32, 24, seed=len(str(path))), **kw), path)


@pytest.fixture()
def junk(tmp_path) -> dict:
    """A folder with good, corrupt and non-DICOM files. Returns the expected outcome."""
    root = tmp_path / "junk"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".hiddendir").mkdir()
    good = [
        _dcm(root / "a2.dcm", patient_id="P1", patient_name="Alpha^A", study_uid="1.2.1", series_uid="1.2.1.1", instance_number=2),
        _dcm(root / "a1.dcm", patient_id="P1", patient_name="Alpha^A", study_uid="1.2.1", series_uid="1.2.1.1", instance_number=1),
        _dcm(root / "sub" / "NOEXT", patient_id="P2", patient_name="Beta^B", study_uid="1.2.2", series_uid="1.2.2.1"),
        write_dataset(make_dataset(chest_like(16, 16), patient_id="P3"), root / "sub" / "deeper" / "raw.dcm", preamble=False),
    ]
    png = root / "sub" / "chest.png"
    Image.fromarray(chest_like(20, 20, bits=8).astype(np.uint8)).save(png)
    jpg = root / "chest.jpg"
    Image.fromarray(chest_like(20, 20, bits=8).astype(np.uint8)).save(jpg)
    good += [str(png), str(jpg)]

    full = Path(good[0]).read_bytes()
    bad = {}
    (root / "trunc_header.dcm").write_bytes(full[:200])
    bad[str(root / "trunc_header.dcm")] = "corrupt or truncated"
    (root / "trunc_pixels.dcm").write_bytes(full[: len(full) - 400])
    bad[str(root / "trunc_pixels.dcm")] = "truncated"
    (root / "notes.txt").write_text("not a dicom file\n" * 20)
    bad[str(root / "notes.txt")] = "not a DICOM file"
    (root / "zero.dcm").write_bytes(b"")
    bad[str(root / "zero.dcm")] = "empty file"
    # a structured report is listed with its study (issue 13), not as unreadable
    write_dataset(make_dataset(None, sop_class=BASIC_TEXT_SR), root / "report.dcm")
    objects = [str(root / "report.dcm")]
    write_dataset(make_dataset(None, sop_class="1.2.840.10008.5.1.4.1.1.104.1"), root / "document.dcm")
    bad[str(root / "document.dcm")] = "no Pixel Data"  # an encapsulated PDF: still not an image
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)
    bad[str(root / "broken.png")] = "not a readable PNG/JPEG"
    (root / "unreadable.dcm").write_bytes(full)
    bad[str(root / "unreadable.dcm")] = "permission denied"

    # never found, never reported
    _dcm(root / ".hidden.dcm")
    _dcm(root / ".hiddendir" / "x.dcm")
    os.symlink(root, root / "sub" / "loop")  # a directory loop
    os.symlink(root / "sub" / "self", root / "sub" / "self")  # a file symlink to itself
    return {"root": root, "good": sorted(good), "bad": bad, "objects": objects}


@pytest.fixture()
def unreadable(monkeypatch):
    """Tests run as root, so chmod cannot deny a read: ``open`` refuses one file instead."""
    real_open = open

    def guarded(file, *a, **kw):
        if os.fspath(file).endswith("unreadable.dcm"):
            raise PermissionError(13, "Permission denied", os.fspath(file))
        return real_open(file, *a, **kw)

    monkeypatch.setattr(dicom_io, "open", guarded, raising=False)


def test_junk_folder(junk, unreadable):
    before = _hashes(junk["root"])
    result = scan(junk["root"], workers=0)
    found = sorted(i.path for i in result.instances())
    assert found == junk["good"]
    errors = {e.path: e.reason for e in result.errors}
    assert set(errors) == set(junk["bad"])
    for path, why in junk["bad"].items():
        assert why in errors[path], (path, errors[path])
    assert sorted(o.path for o in result.objects()) == junk["objects"]
    assert result.files_seen == len(junk["good"]) + len(junk["bad"]) + len(junk["objects"])
    assert _hashes(junk["root"]) == before


def test_grouping_and_instance_order(junk, unreadable):
    result = scan(junk["root"], workers=0)
    by_id = {p.patient_id: p for p in result.patients}
    p1 = by_id["P1"]
    assert p1.patient_name == "Alpha^A" and len(p1.studies) == 1
    (series,) = p1.studies[0].series
    assert [Path(i.path).name for i in series.instances] == ["a1.dcm", "a2.dcm"]  # by InstanceNumber
    # image files: one series per folder, named after the folder, one instance per file
    images = [p for p in result.patients if p.patient_name == "(image files)"]
    series = {se.series_description: se for p in images for st in p.studies for se in st.series}
    assert set(series) == {junk["root"].name, "sub"}
    assert [Path(i.path).name for i in series["sub"].instances] == ["chest.png"]
    assert [Path(i.path).name for i in series[junk["root"].name].instances] == ["chest.jpg"]


def test_instance_order_falls_back_to_acquisition_time(tmp_path):
    for name, t in (("x.dcm", "101500"), ("y.dcm", "090000"), ("z.dcm", "120000")):
        _dcm(tmp_path / name, study_uid="1.9", series_uid="1.9.1", instance_number=None,
             extra={"AcquisitionTime": t})
    _dcm(tmp_path / "n.dcm", study_uid="1.9", series_uid="1.9.1", instance_number=1)
    (series,) = scan(tmp_path, workers=0).patients[0].studies[0].series
    # numbered instances first, then the unnumbered ones by acquisition time
    assert [Path(i.path).name for i in series.instances] == ["n.dcm", "y.dcm", "x.dcm", "z.dcm"]


def test_pool_matches_in_process(junk):
    serial = scan(junk["root"], workers=0)
    pooled = scan(junk["root"], workers=2)
    assert pooled.to_dict() == serial.to_dict()


def test_pool_failure_falls_back_to_in_process(junk, unreadable, monkeypatch):
    from concurrent.futures.process import BrokenProcessPool

    class Broken:
        def __init__(self, *a, **kw):
            raise BrokenProcessPool("no pool here")

    monkeypatch.setattr(study_index, "ProcessPoolExecutor", Broken)
    monkeypatch.setattr(study_index, "FIRST_CHUNK", 1)
    monkeypatch.setattr(study_index, "CHUNK", 2)
    result = scan(junk["root"], workers=2)
    assert sorted(i.path for i in result.instances()) == junk["good"]


def test_ten_thousand_junk_files(tmp_path):
    root = tmp_path / "many"
    root.mkdir()
    for i in range(10_000):
        (root / f"f{i:05d}.dcm").write_bytes(b"junk %d\n" % i)
    t0 = time.perf_counter()
    result = scan(root, workers=0)
    elapsed = time.perf_counter() - t0
    assert result.files_seen == 10_000 and len(result.errors) == 10_000
    assert result.patients == []
    assert elapsed < 30, f"10,000 junk files took {elapsed:.1f} s"


def test_dicomdir(tmp_path):
    from pydicom.fileset import FileSet

    fs = FileSet()
    for k in (3, 1, 2):
        fs.add(make_dataset(chest_like(16, 16), patient_id="PD", study_uid="1.5", series_uid="1.5.1", instance_number=k))
    fs.write(tmp_path / "media")
    # FileSet stages writes in a TemporaryDirectory it never closes; close it here, or
    # its ResourceWarning surfaces later as an unraisable-exception error.
    stage = getattr(fs, "_stage", {}).get("t")
    if stage is not None:
        stage.cleanup()
    dicomdir = tmp_path / "media" / "DICOMDIR"
    assert dicomdir.is_file()
    result = scan(dicomdir, workers=0)
    assert result.errors == []
    insts = result.instances()
    assert [i.instance_number for i in insts] == [1, 2, 3]
    assert all(Path(i.path).is_file() and Path(i.path).is_relative_to(tmp_path / "media") for i in insts)
    # a folder holding a DICOMDIR: the same images, and the DICOMDIR is not an error
    folder = scan(tmp_path / "media", workers=0)
    assert folder.errors == [] and len(folder.instances()) == 3
    # a referenced file that is missing is reported, not silently dropped
    Path(insts[0].path).unlink()
    gone = scan(dicomdir, workers=0)
    assert len(gone.instances()) == 2 and [e.path for e in gone.errors] == [insts[0].path]


def test_single_file(tmp_path):
    p = _dcm(tmp_path / "one.dcm")
    result = scan(p, workers=0)
    assert [i.path for i in result.instances()] == [p] and result.files_seen == 1


def test_missing_path_raises(tmp_path):
    with pytest.raises(ScanPathError, match="no such file or folder"):
        scan(tmp_path / "nope")


def test_unlistable_subfolder_is_reported(tmp_path, monkeypatch):
    _dcm(tmp_path / "ok.dcm")
    locked = tmp_path / "locked"
    locked.mkdir()
    _dcm(locked / "hidden_from_us.dcm")
    real = os.scandir

    def scandir(p):
        if os.fspath(p) == str(locked):
            raise PermissionError(13, "Permission denied", os.fspath(p))
        return real(p)

    monkeypatch.setattr(study_index.os, "scandir", scandir)
    result = scan(tmp_path, workers=0)
    assert [Path(i.path).name for i in result.instances()] == ["ok.dcm"]
    assert [(e.path, "permission denied" in e.reason) for e in result.errors] == [(str(locked), True)]


def test_unreadable_folder_raises(tmp_path, monkeypatch):
    d = tmp_path / "locked"
    d.mkdir()
    monkeypatch.setattr(study_index.os, "access", lambda p, m: False)
    with pytest.raises(ScanPathError, match="permission denied"):
        scan(d)


# --- progress, cancel, early results -----------------------------------------------------------


@pytest.fixture()
def many_good(tmp_path) -> Path:
    root = tmp_path / "good"
    root.mkdir()
    for k in range(120):
        _dcm(root / f"i{k:03d}.dcm", patient_id=f"P{k // 40}", study_uid=f"1.7.{k // 40}", series_uid=f"1.7.{k // 40}.1",
             instance_number=k)
    return root


def test_progress_reports_monotonic_to_total(many_good):
    calls = []
    scan(many_good, workers=0, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (120, 120)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls) and len(calls) >= 2


def test_cancel_stops_early(many_good):
    calls = []
    result = scan(many_good, workers=0, progress=lambda d, t: calls.append(d), cancel=lambda: len(calls) >= 1)
    assert result.cancelled
    assert 0 < len(result.instances()) < 120


def test_first_study_reported_before_last_file_is_read(many_good, monkeypatch):
    read = []
    real = study_index.read_record

    def counting(path):
        read.append(path)
        return real(path)

    monkeypatch.setattr(study_index, "read_record", counting)
    first = {}

    def on_instances(partial):
        if not first and partial.patients:
            first["files_read"] = len(read)
            first["studies"] = sum(len(p.studies) for p in partial.patients)

    final = scan(many_good, workers=0, on_instances=on_instances)
    assert first["studies"] >= 1
    assert first["files_read"] <= study_index.FIRST_CHUNK < 120
    assert len(final.instances()) == 120


def test_snapshots_are_independent(many_good):
    snaps = []
    scan(many_good, workers=0, on_instances=snaps.append)
    n_first = len(snaps[0].instances())
    assert n_first < 120 and len(snaps[-1].instances()) == 120
    assert len(snaps[0].instances()) == n_first  # not grown by later chunks


# --- the command line contract ---------------------------------------------------------------


def test_cli_json_contract_with_bad_files(junk, unreadable, capsys):
    from cxrviewer.cli import main

    rc = main(["scan", str(junk["root"]), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert {"patients", "errors", "files_seen"} <= set(out)
    assert out["files_seen"] == len(junk["good"]) + len(junk["bad"]) + len(junk["objects"])
    assert {e["path"] for e in out["errors"]} == set(junk["bad"])
    assert all(set(e) == {"path", "reason"} for e in out["errors"])
    p = out["patients"][0]
    assert {"patient_id", "patient_name", "studies"} <= set(p)
    paths = sorted(i["path"] for p in out["patients"] for st in p["studies"] for se in st["series"] for i in se["instances"])
    assert paths == junk["good"]


def test_cli_missing_path_one_line_nonzero(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "cxrviewer", "scan", str(tmp_path / "absent"), "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "absent" in lines[0] and "no such file" in lines[0]
    assert proc.stdout == ""
