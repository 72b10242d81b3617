"""The viewer end to end on a read-only source folder, and with the network gone.

Through the real main window (scan, thumbnails, view every image, DICOM tags, analyse each image
and the whole folder with the real Engine on a random-init ResNet-50, export with the heatmap):

* read-only: the folder and its files are chmod read-only and, since tests run as root (for
  whom chmod stops nothing), ``open``/``os.open`` refuse and record any write-mode open of a
  path inside it. Afterwards every file's sha256, mtime and mode are unchanged, no file
  appeared in or beside the folder, and the model's lazy ONNX export sits in the user cache dir.
* offline: ``socket.socket`` and the resolver functions raise; the same paths all work.
"""

from __future__ import annotations

import builtins
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt", reason="pytest-qt is needed for the Qt tests")
pytest.importorskip("cxrviewer.ml.inference", reason="the AI engine (cxrviewer.ml.inference) is not in this checkout")
pytest.importorskip("torch", reason="building the ResNet-50 test model needs torch")

from _fs import WRITE_FLAGS, snapshot
from PIL import Image  # noqa: E402

from cxrviewer.core.synthetic import chest_like, make_dataset, write_dataset  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A real ResNet-50 (random init: ``weights=None`` never downloads) as a verified model dir."""
    import torch

    from cxrviewer.ml.model import build_model
    from cxrviewer.ml.registry import save_model_dir

    torch.manual_seed(0)
    return save_model_dir(build_model().eval(), tmp_path_factory.mktemp("models") / "rand50",
                          {"name": "rand50", "version": "0.1", "threshold": 0.5}, dtype="float16")


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory) -> Path:
    """One user cache dir for this module, so the model's ONNX export is made once."""
    return tmp_path_factory.mktemp("usercache")


def _write_study(src: Path) -> None:
    (src / "study1").mkdir(parents=True)
    # radiograph-sized (the OOD gate's header rules refuse DICOM images under 256 px a side)
    write_dataset(make_dataset(chest_like(288, 256), patient_id="RO1", instance_number=1), src / "study1" / "a.dcm")
    write_dataset(make_dataset(chest_like(288, 256, seed=2), patient_id="RO1", photometric="MONOCHROME1",
                               instance_number=2), src / "study1" / "b.dcm")
    Image.fromarray(chest_like(80, 64, bits=8).astype(np.uint8)).save(src / "chest.png")


@pytest.fixture()
def user_dirs(tmp_path, monkeypatch, module_cache):
    """Settings and logs in this test's folders, the cache in the module's."""
    data = tmp_path / "userdata"
    monkeypatch.setenv("CXRVIEWER_DATA_DIR", str(data))
    monkeypatch.setenv("CXRVIEWER_CACHE_DIR", str(module_cache))
    monkeypatch.setenv("CXRVIEWER_LOG_DIR", str(tmp_path / "userlogs"))
    return {"data": data, "cache": module_cache}


@pytest.fixture()
def readonly_source(tmp_path, monkeypatch):
    parent = tmp_path / "mount"
    src = parent / "PACS_EXPORT"
    _write_study(src)
    for dirpath, _dirs, files in os.walk(src, topdown=False):
        for f in files:
            os.chmod(os.path.join(dirpath, f), 0o444)
        os.chmod(dirpath, 0o555)
    attempts: list[str] = []
    prefix = str(src)
    real_open, real_os_open = builtins.open, os.open

    def inside(p) -> bool:
        return os.path.abspath(os.fsdecode(os.fspath(p))).startswith(prefix)

    def guarded_open(file, mode="r", *a, **kw):
        if isinstance(file, (str, bytes, os.PathLike)) and inside(file) and any(c in mode for c in "wax+"):
            attempts.append(f"open({file!r}, {mode!r})")
            raise PermissionError(13, "Permission denied (read-only source)", os.fspath(file))
        return real_open(file, mode, *a, **kw)

    def guarded_os_open(path, flags, *a, **kw):
        if inside(path) and flags & WRITE_FLAGS:
            attempts.append(f"os.open({path!r}, {flags:#o})")
            raise PermissionError(13, "Permission denied (read-only source)", os.fspath(path))
        return real_os_open(path, flags, *a, **kw)

    before = snapshot(parent)
    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)
    yield src, attempts
    monkeypatch.setattr(builtins, "open", real_open)
    monkeypatch.setattr(os, "open", real_os_open)
    after = snapshot(parent)
    assert sorted(after) == sorted(before), f"files appeared in or beside the source: {sorted(set(after) - set(before))}"
    assert after == before, "a source file or folder changed"
    for dirpath, _dirs, _files in os.walk(src):
        os.chmod(dirpath, 0o755)


@pytest.fixture()
def window(qtbot, user_dirs):
    from cxrviewer.ui.app import create_window

    w = create_window()
    qtbot.addWidget(w)
    w.resize(1100, 750)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.shutdown()
    w.close()


def _exercise(qtbot, w, src: Path, model_dir: Path, out_dir: Path) -> None:
    """Open, view, analyse and export through the main window; assert each step worked."""
    ai = w.ai
    with qtbot.waitSignal(ai.controller.modelChanged, timeout=180000) as blk:
        ai.start(model_dir)
    assert blk.args[0] is not None, ai.controller.model_error
    results = []
    ai.controller.resultReady.connect(results.append)

    with qtbot.waitSignals([w.scanFinished, w.imageLoaded], timeout=30000, order="none"):
        w.open_path(src)
    res = w.last_scan
    assert res is not None and res.errors == [] and not res.cancelled
    paths = w.browser.image_paths()
    assert len(paths) == 3 and all(str(p).startswith(str(src)) for p in paths)

    # thumbnails for the rows on screen
    w.browser.request_visible_thumbnails()
    qtbot.waitUntil(lambda: all(str(p) in w.browser.thumbs.cache for p in paths), timeout=30000)

    # view each image with the heatmap on (H): each is analysed when shown (Grad-CAM on the canvas)
    ai.act_heatmap.setChecked(True)
    for p in paths:
        if w.current_image is None or str(w.current_image.path) != str(p):
            with qtbot.waitSignal(w.imageLoaded, timeout=30000):
                w.load_path(str(p))
        qtbot.waitUntil(lambda p=p: any(r.path == str(p) for r in results), timeout=120000)
        assert w.errors.errors() == []
        if w.current_image.kind == "dicom":
            dlg = w.show_tags()
            assert dlg is not None
            dlg.close()
    assert ai.panel.result is not None and ai.heatmap.cam is not None
    r = next(r for r in results if r.path == str(paths[-1]))
    assert 0.0 <= r.probability <= 1.0 and r.cam_u8 is not None

    # the whole folder
    with qtbot.waitSignal(ai.controller.finished, timeout=180000) as blk:
        assert ai.analyze_all() is not None
    s = blk.args[0]
    assert s.total == 3 and s.done == 3 and s.failed == 0 and not s.cancelled

    # export the view (heatmap, anonymised) and the native image elsewhere
    out_dir.mkdir(parents=True, exist_ok=True)
    a = w.export_image(out_dir / "view.png", anonymize=True)
    b = w.export_image(out_dir / "native.jpg", native=True, annotations=False)
    sizes = []
    for f in (a, b):
        with Image.open(f) as im:
            sizes.append(im.size)
    img = w.current_image
    assert sizes[0][0] > 0 and sizes[1] == (img.cols, img.rows)


def test_read_only_folder_scan_view_analyse_export(qtbot, window, readonly_source, model_dir, user_dirs, tmp_path):
    src, attempts = readonly_source
    _exercise(qtbot, window, src, model_dir, tmp_path / "exports")
    # exporting into the read-only folder fails with a clear error and leaves nothing there
    from cxrviewer.atomic import WriteError

    with pytest.raises(WriteError, match="permission denied") as ei:
        window.export_image(src / "study1" / "view.png")
    assert "view.png" in str(ei.value)
    assert attempts and all("view.png" in a for a in attempts)
    attempts.clear()
    # derived data lives in the user cache dir (the model's ONNX export), never beside the images
    cached = [p for p in user_dirs["cache"].rglob("*") if p.is_file()]
    assert any(p.suffix == ".onnx" for p in cached)
    window.shutdown()
    assert attempts == [], f"tried to write into the source: {attempts}"


def test_offline_open_view_analyse_export(qtbot, no_network, model_dir, user_dirs, tmp_path):
    from cxrviewer.ui.app import create_window

    src = tmp_path / "offline"
    _write_study(src)
    # the window is built with the network already gone
    w = create_window()
    qtbot.addWidget(w)
    w.resize(1100, 750)
    w.show()
    qtbot.waitExposed(w)
    try:
        _exercise(qtbot, w, src, model_dir, tmp_path / "exports")
    finally:
        w.shutdown()
        w.close()
    assert no_network == [], f"something tried the network: {no_network}"
