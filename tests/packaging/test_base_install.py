"""The base install (``pip install -e .``, no extras) has no torch, and the viewer, ``infer``,
``evaluate``, ``export --heatmap`` and ``selftest`` run on ONNX Runtime without ever trying to
import torch; ``cxrviewer train`` says in one line which extra to install.

A fresh virtual environment (no system site-packages: torch is installed system-wide here),
the package installed the way the README says minus ``[dev]``, and every command run under an
import guard that records any attempt to import torch, torchvision or onnx.

Then the same venv becomes a wheel install: ``python -m build`` (sdist, and the wheel built from
it), the editable install replaced by the wheel, and ``cxrviewer selftest`` / ``infer`` /
``export --heatmap`` run from another folder with the repository off ``sys.path``: the model,
sample, icons and theme come from the installed package (``cxrviewer._resources``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]

GUARD = r"""
import builtins, importlib, sys
BAD = {"torch", "torchvision", "onnx"}
tried = []
_imp = builtins.__import__
def _guarded(name, globals=None, locals=None, fromlist=(), level=0):
    if level == 0 and name.split(".")[0] in BAD:
        tried.append(name)
    return _imp(name, globals, locals, fromlist, level)
builtins.__import__ = _guarded
_im = importlib.import_module
def _import_module(name, package=None):
    if name.split(".")[0] in BAD:
        tried.append(name)
    return _im(name, package)
importlib.import_module = _import_module
from cxrviewer.cli import main
try:
    rc = main(sys.argv[1:])
finally:
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BAD)
    print("GUARD tried=%s loaded=%s" % (sorted(set(tried)), loaded), file=sys.stderr)
sys.exit(rc)
"""


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory):
    root = tmp_path_factory.mktemp("base-install")
    venv = root / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300, env=env)
    py = venv / "bin" / "python"
    t0 = time.perf_counter()
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "-e", str(ROOT)],
                       capture_output=True, text=True, timeout=1200, env=env)
    if r.returncode != 0 and ("No matching distribution" in r.stderr or "connection" in r.stderr.lower()):
        pytest.skip(f"the base dependencies cannot be installed here: {r.stderr.strip().splitlines()[-1]}")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    print(f"base install: {time.perf_counter() - t0:.0f} s")
    return py, root


def _isolated_env(root: Path, prefix: str = "") -> dict:
    """A child's environment: the PATH, offscreen Qt, and its own home, data, cache and log
    folders under ``root`` (``prefix`` keeps two installs' folders apart)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root / "home"),
        "QT_QPA_PLATFORM": "offscreen",
        "CXRVIEWER_DATA_DIR": str(root / f"{prefix}data"),
        "CXRVIEWER_CACHE_DIR": str(root / f"{prefix}cache"),
        "CXRVIEWER_LOG_DIR": str(root / f"{prefix}logs"),
    }


def _run(base_venv, *args, timeout=600):
    py, root = base_venv
    env = _isolated_env(root)
    r = subprocess.run([str(py), "-c", GUARD, *args], capture_output=True, text=True,
                       timeout=timeout, env=env, cwd=root)
    guard = [ln for ln in r.stderr.splitlines() if ln.startswith("GUARD ")]
    assert guard == ["GUARD tried=[] loaded=[]"], f"{args}: {guard}\n{r.stderr[-3000:]}"
    return r


@pytest.mark.slow
def test_base_install_has_no_torch(base_venv):
    py, _ = base_venv
    r = subprocess.run([str(py), "-c", "import importlib.util as u; print([m for m in ('torch', 'torchvision', 'onnx') if u.find_spec(m)])"],
                       capture_output=True, text=True, timeout=120, env={"PATH": os.environ.get("PATH", "")})
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


@pytest.mark.slow
def test_viewer_selftest_infer_export_evaluate_without_torch(base_venv, tmp_path):
    # selftest: sample, codecs, the real main window (offscreen), model, inference + Grad-CAM, export
    r = _run(base_venv, "selftest")
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    steps = [ln for ln in r.stdout.splitlines() if ln[:4] in ("PASS", "FAIL", "SKIP")]
    assert "via onnxruntime" in r.stdout and steps and all(ln.startswith("PASS") for ln in steps), r.stdout

    sample = ROOT / "resources" / "sample" / "RG1_J2KR.dcm"
    out = tmp_path / "r.csv"
    r = _run(base_venv, "infer", str(sample), "--out", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    row = out.read_text().splitlines()[1].split(",")
    assert 0.0 <= float(row[2]) <= 1.0 and row[3] in ("Normal", "Abnormal")

    png = tmp_path / "heat.png"
    r = _run(base_venv, "export", str(sample), "--heatmap", "--out", str(png))
    assert r.returncode == 0 and png.stat().st_size > 10_000, r.stderr[-3000:]

    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("normal", "abnormal"):
        (tmp_path / "ev" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray((rng.random((96, 80)) * 255).astype(np.uint8)).save(tmp_path / "ev" / cls / f"{i}.png")
    r = _run(base_venv, "evaluate", "--data", str(tmp_path / "ev"), "--bootstrap", "20", "--json")
    assert r.returncode == 0 and '"auc"' in r.stdout, r.stderr[-3000:]


@pytest.mark.slow
def test_train_without_torch_names_the_extra_in_one_line(base_venv):
    py, root = base_venv
    r = subprocess.run([str(py), "-m", "cxrviewer", "train", "--data", str(root), "--out", str(root / "run")],
                       capture_output=True, text=True, timeout=300,
                       env={"PATH": os.environ.get("PATH", ""), "HOME": str(root / "home")})
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "pip install 'cxrviewer[train]'" in lines[0]


# --------------------------------------------------------------------------- the wheel
# Last in this module on purpose: they turn the same fresh venv (its dependencies already
# installed by the base install above) into a wheel install, which saves a second
# dependency install (a minute or more) in the suite.


@pytest.fixture(scope="module")
def built_dist(tmp_path_factory):
    """``python -m build``: the sdist, then the wheel built from it (so the sdist is complete)."""
    out = tmp_path_factory.mktemp("dist")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
                       capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (wheel,) = out.glob("cxrviewer-*.whl")
    (sdist,) = out.glob("cxrviewer-*.tar.gz")
    print(f"python -m build: {time.perf_counter() - t0:.0f} s; wheel {wheel.stat().st_size / 1e6:.1f} MB, "
          f"sdist {sdist.stat().st_size / 1e6:.1f} MB")
    return wheel, sdist


RUNTIME_FILES = [  # what the app opens at run time, relative to the resources folder
    "styles/dark.qss", "icons/cxrviewer.png", "icons/cxrviewer.svg", "cxrviewer.desktop",
    "sample/RG1_J2KR.dcm", "models/cxr-resnet50-demo/card.json",
    "models/cxr-resnet50-demo/model.safetensors", "models/cxr-resnet50-demo/model.onnx",
]


@pytest.mark.slow
def test_wheel_and_sdist_carry_the_resources(built_dist):
    import tarfile
    import zipfile

    wheel, sdist = built_dist
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [f for f in RUNTIME_FILES if f"cxrviewer/_resources/{f}" not in names]
    assert not missing, f"not in the wheel: {missing}"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if n.startswith(("tests/", "resources/", "build/"))], "stray top-level folders"
    # the bundled model is ~45 MB of it; a wheel far above that has picked up something else
    assert wheel.stat().st_size < 80e6, wheel.stat().st_size
    with tarfile.open(sdist) as tf:
        snames = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    assert {"setup.py", "pyproject.toml", "resources/__init__.py"} <= snames
    assert not [f for f in RUNTIME_FILES if f"resources/{f}" not in snames]


@pytest.mark.slow
def test_wheel_install_runs_selftest_infer_and_export(base_venv, built_dist, tmp_path):
    """No editable install, no repository on sys.path, run from another folder: the resources
    come from the installed package (importlib.resources), selftest passes every step."""
    import json

    from cxrviewer import selftest

    py, root = base_venv
    wheel, _ = built_dist
    pip = [str(py), "-m", "pip", "--disable-pip-version-check"]
    env = _isolated_env(root, "w")
    r = subprocess.run([*pip, "uninstall", "-y", "cxrviewer"], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    # --no-deps: the base install above put them there; `pip check` proves the wheel's own
    # requirements are all met by them
    r = subprocess.run([*pip, "install", "-q", "--no-deps", str(wheel)], capture_output=True, text=True,
                       timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    r = subprocess.run([*pip, "check"], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout + r.stderr

    probe = ("import json, sys, cxrviewer; from cxrviewer import paths; print(json.dumps({'file': cxrviewer.__file__, "
             "'res': str(paths.resources_dir()), 'pkg': str(paths._package_resources()), 'path': sys.path}))")
    r = subprocess.run([str(py), "-c", probe], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    info = json.loads(r.stdout)
    site = Path(info["file"]).resolve().parent.parent
    assert site.name == "site-packages" and site.is_relative_to(root.resolve()), info
    assert info["res"] == info["pkg"] == str(site / "cxrviewer" / "_resources"), info
    assert not [p for p in info["path"] if p and Path(p).resolve().is_relative_to(ROOT)], info["path"]
    # CXRVIEWER_RESOURCES still wins over the installed package data
    r = subprocess.run([str(py), "-c", probe], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                       env={**env, "CXRVIEWER_RESOURCES": str(tmp_path / "site-resources")})
    assert r.returncode == 0 and json.loads(r.stdout)["res"] == str(tmp_path / "site-resources"), r.stderr[-2000:]

    exe = py.parent / "cxrviewer"
    r = subprocess.run([str(exe), "selftest", "--out", str(tmp_path / "st.png")], capture_output=True, text=True,
                       timeout=600, env=env, cwd=tmp_path)
    steps = [ln for ln in r.stdout.splitlines() if ln[:4] in ("PASS", "FAIL", "SKIP")]
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert len(steps) == len(selftest.STEPS) and all(ln.startswith("PASS") for ln in steps), r.stdout
    assert f"resources {site / 'cxrviewer' / '_resources'}" in r.stdout, r.stdout

    sample = site / "cxrviewer" / "_resources" / "sample" / "RG1_J2KR.dcm"
    out = tmp_path / "r.csv"
    r = subprocess.run([str(exe), "infer", str(sample), "--out", str(out)], capture_output=True, text=True,
                       timeout=600, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    row = out.read_text().splitlines()[1].split(",")
    assert 0.0 <= float(row[2]) <= 1.0 and row[3] in ("Normal", "Abnormal"), row

    png = tmp_path / "heat.png"
    r = subprocess.run([str(exe), "export", str(sample), "--heatmap", "--out", str(png)], capture_output=True,
                       text=True, timeout=600, env=env, cwd=tmp_path)
    assert r.returncode == 0 and png.stat().st_size > 10_000, r.stderr[-3000:]
