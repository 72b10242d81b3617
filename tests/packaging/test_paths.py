"""Resources are found through one function that knows the source tree and the bundle;
app metadata (icon, .desktop file, version) is present and well-formed."""

from __future__ import annotations

import configparser
import sys
from pathlib import Path

import pytest

from cxrviewer import paths

REPO = Path(__file__).resolve().parents[2]


def test_source_tree_resources(monkeypatch):
    monkeypatch.delenv("CXRVIEWER_RESOURCES", raising=False)
    monkeypatch.delattr(sys, "_MEIPASS", raising=False)
    assert paths.resources_dir() == REPO / "resources"
    assert paths.resource("styles", "dark.qss").is_file()
    assert paths.resource("icons", "cxrviewer.png").is_file()


def _fake_install(site: Path) -> None:
    """``site/cxrviewer`` with the real paths.py and an installed ``_resources`` package."""
    pkg = site / "cxrviewer"
    (pkg / "_resources" / "styles").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "paths.py").write_text(Path(paths.__file__).read_text())
    (pkg / "_resources" / "__init__.py").write_text("")
    (pkg / "_resources" / "styles" / "dark.qss").write_text("/* installed */")


def _resources_dir_in(site: Path, cwd: Path) -> str:
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "CXRVIEWER_"))}
    env["PYTHONPATH"] = str(site)
    r = subprocess.run([sys.executable, "-c", "from cxrviewer import paths; print(paths.resources_dir())"],
                       capture_output=True, text=True, timeout=60, env=env, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_installed_package_resources_through_importlib(tmp_path):
    """An install (wheel, ``pip install .``): the package data ``cxrviewer._resources``, not a
    ``resources/`` folder that happens to lie beside the package (the old lookup took
    ``site-packages/resources``, which no install has)."""
    site = tmp_path / "site-packages"
    _fake_install(site)
    (site / "resources" / "styles").mkdir(parents=True)  # a stray folder of that name
    (tmp_path / "elsewhere").mkdir()
    assert _resources_dir_in(site, tmp_path / "elsewhere") == str(site / "cxrviewer" / "_resources")


def test_a_source_tree_uses_its_own_resources(tmp_path):
    """A checkout on PYTHONPATH (or an editable install) uses its own ``resources/``, even when
    ``cxrviewer._resources`` is importable from elsewhere (another tree's editable install)."""
    site = tmp_path / "checkout"
    _fake_install(site)
    (site / "resources" / "styles").mkdir(parents=True)
    (site / "pyproject.toml").write_text("[project]\nname = 'cxrviewer'\n")
    (tmp_path / "elsewhere").mkdir()
    assert _resources_dir_in(site, tmp_path / "elsewhere") == str(site / "resources")


def test_frozen_bundle_resources(monkeypatch, tmp_path):
    """In a PyInstaller bundle sys._MEIPASS is the _internal folder; resources live under it."""
    monkeypatch.delenv("CXRVIEWER_RESOURCES", raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert paths.resources_dir() == tmp_path / "resources"
    assert paths.resource("models") == tmp_path / "resources" / "models"


def test_env_override_wins(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "bundle"), raising=False)
    monkeypatch.setenv("CXRVIEWER_RESOURCES", str(tmp_path / "elsewhere"))
    assert paths.resources_dir() == tmp_path / "elsewhere"


def test_sample_prefers_bundled_copy(monkeypatch, tmp_path, rg1_unci):
    """The bundle ships its own copy under resources/sample/ (no pydicom-data there)."""
    import shutil

    (tmp_path / "sample").mkdir()
    shutil.copy2(rg1_unci, tmp_path / "sample" / "RG1_UNCI.dcm")
    (tmp_path / "sample" / "README.txt").write_text("not a dicom")
    monkeypatch.setenv("CXRVIEWER_RESOURCES", str(tmp_path))
    assert paths.sample_paths() == [tmp_path / "sample" / "RG1_UNCI.dcm"]


def test_the_shipped_sample_is_rg1_lossless(monkeypatch, tmp_path, rg1_uncr):
    """resources/sample/ ships one file (pydicom-data is a dev dependency only): RG1 in JPEG 2000
    lossless, the same pixels as pydicom-data's uncompressed RG1_UNCR, with its provenance."""
    import pydicom

    found = paths.sample_paths()
    assert [p.name for p in found] == ["RG1_J2KR.dcm"]
    assert "WG04" in (found[0].parent / "README.md").read_text()
    a = pydicom.dcmread(found[0]).pixel_array
    b = pydicom.dcmread(rg1_uncr).pixel_array
    assert a.shape == b.shape and (a == b).all()
    monkeypatch.setenv("CXRVIEWER_RESOURCES", str(tmp_path))  # a build without the sample
    assert paths.sample_paths() == []


def test_icons_are_valid_images():
    from PIL import Image

    icons = REPO / "resources" / "icons"
    with Image.open(icons / "cxrviewer.png") as im:
        assert im.size == (256, 256) and im.mode == "RGBA"
        # a tile with transparent corners, opaque centre
        assert im.getpixel((0, 0))[3] == 0 and im.getpixel((128, 128))[3] == 255
    with Image.open(icons / "cxrviewer.ico") as im:
        assert (256, 256) in im.info["sizes"] and (16, 16) in im.info["sizes"]
    with Image.open(icons / "cxrviewer.icns") as im:
        assert im.format == "ICNS"
    svg = (icons / "cxrviewer.svg").read_text(encoding="utf-8")
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and 'viewBox="0 0 256 256"' in svg


def test_desktop_file():
    """The freedesktop entry: the keys a launcher needs, the icon name the icon files use."""
    cp = configparser.ConfigParser(interpolation=None, strict=True)
    cp.optionxform = str  # keys are case-sensitive
    cp.read(REPO / "resources" / "cxrviewer.desktop", encoding="utf-8")
    e = cp["Desktop Entry"]
    assert e["Type"] == "Application"
    assert e["Name"] == "cxrviewer"
    assert e["Exec"].split()[0] == "cxrviewer" and "%F" in e["Exec"]
    assert e["Icon"] == "cxrviewer" and (REPO / "resources" / "icons" / "cxrviewer.svg").is_file()
    assert e["Terminal"] == "false"
    assert e["Categories"] == "Science;MedicalSoftware;"  # one main category (desktop-file-validate)
    assert "application/dicom" in e["MimeType"].split(";")
    assert "not a diagnostic device" in e["Comment"]


def test_about_info_never_imports_torch():
    """About reports torch only when it is already loaded (importing it costs ~5 s)."""
    import subprocess

    code = (
        "import sys\n"
        "from cxrviewer.about import about_info\n"
        "info = about_info()\n"
        "assert 'torch' not in sys.modules, 'about_info imported torch'\n"
        "assert 'torch' not in info and info['Build'] == 'Python environment', info\n"
        "import torch\n"
        "info = about_info()\n"
        "assert info['torch'].startswith(torch.__version__), info\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_about_info_reports_loaded_model():
    from types import SimpleNamespace

    from cxrviewer.about import about_info

    info = about_info(SimpleNamespace(name="demo", version="2.0", device="cuda:0", backend="onnxruntime"))
    assert info["Model"] == "demo 2.0"
    assert info["Device"] == "cuda:0 (onnxruntime)"


@pytest.mark.parametrize("name", ["cxrviewer.spec", "build.py", "cxrviewer_entry.py", "README.md"])
def test_packaging_files_present(name):
    assert (REPO / "packaging" / name).is_file()


def test_about_dialog_shows_model_and_device(qtbot):
    """Help -> About lists Qt, the model and the device (from the AI worker when loaded)."""
    from types import SimpleNamespace

    from PySide6 import QtWidgets

    from cxrviewer.ui.shell.dialogs import show_about

    parent = QtWidgets.QWidget()
    qtbot.addWidget(parent)
    parent.ai = SimpleNamespace(controller=SimpleNamespace(
        model=SimpleNamespace(name="demo", version="3", device="cpu", backend="onnxruntime")))
    box = show_about(parent)
    text = box.text()
    box.close()
    for row in ("Qt", "PySide6", "Build", "Model", "Device"):
        assert f"<b>{row}</b>" in text
    assert "demo 3" in text and "cpu (onnxruntime)" in text
