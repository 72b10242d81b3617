"""Source folders are read-only to us, and nothing opens a socket.

Tests run as root, for whom chmod does not stop a write. So besides making the folder and its
files read-only, a guard on ``open``/``os.open`` fails (and records) any attempt to open a
path inside the source folder for writing, as the OS would for a normal user.
"""

from __future__ import annotations

import builtins
import importlib.util
import os
import shutil

import numpy as np
import pytest
from _fs import WRITE_FLAGS, snapshot
from PIL import Image

from cxrviewer.core.dicom_io import load_image
from cxrviewer.core.display import chest_presets, render
from cxrviewer.core.study_index import scan
from cxrviewer.core.synthetic import chest_like, make_dataset, write_dataset


@pytest.fixture()
def readonly_source(tmp_path, monkeypatch, rg1_j2ki):
    src = tmp_path / "PACS_EXPORT"
    (src / "study1").mkdir(parents=True)
    write_dataset(make_dataset(chest_like(64, 48), patient_id="RO1", instance_number=1), src / "study1" / "a.dcm")
    write_dataset(make_dataset(chest_like(64, 48, seed=2), patient_id="RO1", photometric="MONOCHROME1",
                               instance_number=2), src / "study1" / "b.dcm")
    shutil.copy(rg1_j2ki, src / "study1" / "rg1_j2ki.dcm")
    Image.fromarray(chest_like(40, 40, bits=8).astype(np.uint8)).save(src / "chest.png")
    for dirpath, _dirs, files in os.walk(src, topdown=False):
        for f in files:
            os.chmod(os.path.join(dirpath, f), 0o444)
        os.chmod(dirpath, 0o555)
    attempts: list[str] = []
    prefix = str(src)
    real_open, real_os_open = builtins.open, os.open

    def guarded_open(file, mode="r", *a, **kw):
        if isinstance(file, (str, os.PathLike)) and os.path.abspath(os.fspath(file)).startswith(prefix) \
                and any(c in mode for c in "wax+"):
            attempts.append(f"open({file!r}, {mode!r})")
            raise PermissionError(13, "Permission denied (read-only source)", os.fspath(file))
        return real_open(file, mode, *a, **kw)

    def guarded_os_open(path, flags, *a, **kw):
        if os.path.abspath(os.fspath(path)).startswith(prefix) and flags & WRITE_FLAGS:
            attempts.append(f"os.open({path!r}, {flags:#o})")
            raise PermissionError(13, "Permission denied (read-only source)", os.fspath(path))
        return real_os_open(path, flags, *a, **kw)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)
    before = snapshot(src)
    yield src, attempts
    monkeypatch.undo()
    assert snapshot(src) == before, "the source folder changed"
    for dirpath, _dirs, _files in os.walk(src):
        os.chmod(dirpath, 0o755)


def test_scan_view_analyse_export_read_only_folder(readonly_source, tmp_path):
    src, attempts = readonly_source
    result = scan(src, workers=0)
    assert result.errors == []
    paths = sorted(i.path for i in result.instances())
    assert len(paths) == 4
    from cxrviewer.ml.preprocess import PreprocessSpec, preprocess

    spec = PreprocessSpec()
    for p in paths:
        img = load_image(p)
        for preset in [None, *img.presets, *chest_presets(img)]:
            assert render(img, preset).dtype == np.uint8
        x, _mapping = preprocess(img, spec)
        assert np.isfinite(np.asarray(x)).all()
    out_dir = tmp_path / "exports"
    from cxrviewer.cli import main

    for k, p in enumerate(paths):
        out = out_dir / f"e{k}.png"
        assert main(["export", p, "--out", str(out), "--anonymize"]) == 0
        assert out.is_file() and out.stat().st_size > 0
    assert attempts == []


def test_export_into_the_read_only_folder_fails_cleanly(readonly_source, capsys):
    src, attempts = readonly_source
    from cxrviewer.cli import main

    p = str(src / "study1" / "a.dcm")
    rc = main(["export", p, "--out", str(src / "study1" / "a.png")])
    assert rc != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "permission denied" in err[0].lower()
    assert attempts  # it was tried, refused, and left nothing (the snapshot check)


# --- no network (fixture `no_network` in conftest.py) ---------------------------------------------


def test_main_paths_work_offline(no_network, tmp_path, rg1_j2ki):
    from cxrviewer.ml.preprocess import PreprocessSpec, preprocess

    folder = tmp_path / "offline"
    folder.mkdir()
    write_dataset(make_dataset(chest_like(32, 32)), folder / "x.dcm")
    shutil.copy(rg1_j2ki, folder / "rg1.dcm")
    result = scan(folder, workers=0)
    assert len(result.instances()) == 2 and result.errors == []
    for inst in result.instances():
        img = load_image(inst.path)
        assert render(img).shape == (img.rows, img.cols)
        x, _ = preprocess(img, PreprocessSpec())
        assert np.isfinite(np.asarray(x)).all()
    assert no_network == []


def test_scan_pool_offline(no_network, tmp_path):
    # the process pool talks over pipes, never sockets
    for k in range(12):
        write_dataset(make_dataset(chest_like(8, 8), instance_number=k), tmp_path / f"{k}.dcm")
    assert len(scan(tmp_path, workers=2).instances()) == 12
    assert no_network == []


@pytest.mark.skipif(importlib.util.find_spec("cxrviewer.ml.inference") is None,
                    reason="cxrviewer.ml.inference (the AI engine) is not in this checkout yet")
def test_engine_load_and_predict_offline(no_network, tmp_path, rg1_j2ki):
    """The real ResNet-50 path: build (random init: weights=None never downloads), save,
    load through the engine and predict with Grad-CAM, all with sockets refused."""
    import torch

    from cxrviewer.ml.inference import Engine
    from cxrviewer.ml.model import build_model
    from cxrviewer.ml.registry import save_model_dir

    torch.manual_seed(0)
    d = save_model_dir(build_model().eval(), tmp_path / "offline-model",
                       {"name": "offline-test", "version": "1.0", "threshold": 0.5}, dtype="float16")
    engine = Engine.load(d)
    pred = engine.predict(load_image(rg1_j2ki), cam=True)
    assert 0.0 <= pred.probability_abnormal <= 1.0
    assert pred.cam is not None and pred.cam.shape == (1955, 1841)
    assert no_network == []
