"""Build the cxrviewer app with PyInstaller: ``DIST/cxrviewer/`` (onedir).

    python3 packaging/build.py --viewer-only            # ONNX Runtime, no torch (small)
    python3 packaging/build.py                          # full: torch (+CUDA if installed)
    python3 packaging/build.py --viewer-only --selftest # build, then run the frozen selftest

What it does, in order:

1. stages a copy of the resources (``cxrviewer.paths.resources_dir()``: this checkout's
   ``resources/``, the same data a wheel installs as ``cxrviewer._resources``) under the work
   folder (the source tree is never written),
   adds the sample study (pydicom-data's RG1 chest CR) under ``resources/sample/`` and any
   ``--model DIR`` under ``resources/models/``;
2. makes sure every staged model has its ONNX export (the viewer-only app infers through
   ONNX Runtime and has no torch to export one; the full app skips a first-load export) —
   exported into the staged copy when missing, with torch from this build environment;
3. runs PyInstaller on ``packaging/cxrviewer.spec``;
4. measures the bundle (total and biggest parts) and writes ``size.json`` next to it;
5. with ``--selftest``, runs ``DIST/cxrviewer/cxrviewer selftest`` in a clean environment.

Exit status: 0 on success; 2 when PyInstaller is missing or an input is unusable;
the PyInstaller or selftest status otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SPEC = HERE / "cxrviewer.spec"


class BuildError(Exception):
    """An input problem, reported as one line and exit status 2."""


def _log(msg: str) -> None:
    print(f"[build] {msg}", flush=True)


def dir_size(path: Path) -> int:
    """Bytes of regular files under ``path`` (symlinks not followed, counted once)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            p = os.path.join(root, f)
            if not os.path.islink(p):
                total += os.path.getsize(p)
    return total


def size_report(app_dir: Path, top: int = 15) -> dict:
    """Total size of the bundle and its biggest parts (first level under ``_internal``)."""
    internal = app_dir / "_internal"
    base = internal if internal.is_dir() else app_dir
    parts = []
    for p in base.iterdir():
        n = dir_size(p) if p.is_dir() else (0 if p.is_symlink() else p.stat().st_size)
        parts.append((n, p.name))
    parts.sort(reverse=True)
    total = dir_size(app_dir)
    return {
        "app_dir": str(app_dir),
        "total_bytes": total,
        "total_mib": round(total / 2**20, 1),
        "files": sum(len(f) for _r, _d, f in os.walk(app_dir)),
        "largest": [{"name": name, "mib": round(n / 2**20, 1)} for n, name in parts[:top]],
    }


# --------------------------------------------------------------------------- staging


def ensure_onnx(model_dir: Path) -> Path:
    """The model's ``model.onnx`` beside the weights, recorded and verified through its card
    (``onnx_file``, ``onnx_sha256``); written with torch from this environment when missing.

    The frozen viewer-only app runs it with ONNX Runtime (``cxrviewer.ml.onnx_model.find_onnx``)
    and never needs torch.
    """
    from cxrviewer.core.errors import CxrError
    from cxrviewer.ml.onnx_model import ONNX_FILE, card_onnx, ensure_model_onnx
    from cxrviewer.ml.registry import read_card

    try:
        have = card_onnx(model_dir, read_card(model_dir))
    except CxrError:  # named but stale or altered: write it again
        have = None
    if have is not None:
        return have
    _log(f"writing {model_dir.name}/{ONNX_FILE} (viewer-only bundles infer through ONNX Runtime)")
    try:
        out = ensure_model_onnx(model_dir)
    except (ImportError, CxrError) as e:
        raise BuildError(
            f"{model_dir}: has no valid {ONNX_FILE} and it cannot be written here ({e}); "
            "install torch in the build environment (the CPU wheel is enough)"
        ) from None
    if card_onnx(model_dir, read_card(model_dir)) != out:
        raise BuildError(f"{model_dir}: the ONNX file did not verify")
    return out


def stage_resources(work: Path, models: list[Path], sample: bool) -> Path:
    """Copy the resources to ``work/staging/resources`` and add sample, models, ONNX files.

    The source is :func:`cxrviewer.paths.resources_dir`, where the installed app finds them too
    (this checkout's ``resources/``, the package data ``cxrviewer._resources`` of an install,
    or ``$CXRVIEWER_RESOURCES``).
    """
    from cxrviewer.ml.registry import read_card, verify_checksum
    from cxrviewer.paths import resources_dir

    stage = work / "staging" / "resources"
    if stage.exists():
        shutil.rmtree(stage)
    source = resources_dir()
    if not source.is_dir():
        raise BuildError(f"{source}: no resources folder to bundle")
    _log(f"resources from {source}")
    # __init__.py only makes the folder a package for importlib.resources; the bundle finds
    # its resources through sys._MEIPASS
    shutil.copytree(
        source, stage, ignore=shutil.ignore_patterns("__pycache__", "__init__.py", ".*", "*.tmp")
    )
    if not sample:  # resources/sample/ ships the RG1 study (see its README.md)
        shutil.rmtree(stage / "sample", ignore_errors=True)
    else:
        for p in sorted((stage / "sample").glob("*.dcm")):
            _log(f"sample: {p.name}")
    (stage / "models").mkdir(exist_ok=True)
    for m in models:
        card = read_card(m)  # raises with the reason for anything unusable
        verify_checksum(m, card)
        dst = stage / "models" / str(card["name"])
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(m, dst, ignore=shutil.ignore_patterns(".*", "*.tmp", "__pycache__"))
    bundled = [d for d in sorted((stage / "models").iterdir()) if (d / "card.json").is_file()]
    if not bundled:
        _log("warning: no model bundled; the app starts with 'no model' until one is imported")
    for d in bundled:
        # Viewer-only: the only way the app can run the model. Full: spares every user the
        # one-time export (~15 s, torch) on the first load through ONNX Runtime.
        _log(f"model: {d.name} (ONNX: {ensure_onnx(d).name})")
    return stage


# --------------------------------------------------------------------------- build


def run_pyinstaller(dist: Path, work: Path, resources: Path, viewer_only: bool, clean: bool, name: str) -> int:
    cmd = [
        sys.executable, "-m", "PyInstaller", "--noconfirm",
        "--distpath", str(dist), "--workpath", str(work / "pyinstaller"),
        "--log-level", "WARN",
    ]
    if clean:
        cmd.append("--clean")
    cmd += [str(SPEC), "--", "--resources", str(resources), "--name", name]
    if viewer_only:
        cmd.append("--viewer-only")
    log = work / "pyinstaller.log"
    _log(f"PyInstaller ({'viewer-only' if viewer_only else 'full'}) -> {dist / name}; log: {log}")
    t0 = time.perf_counter()
    with open(log, "w", encoding="utf-8") as fh:
        rc = subprocess.call(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO)
    _log(f"PyInstaller finished in {time.perf_counter() - t0:.0f} s with status {rc}")
    if rc != 0:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
        print("\n".join(lines[-40:]), file=sys.stderr)
    return rc


def run_selftest(app_dir: Path, name: str, extra_env: dict | None = None, timeout: float = 600) -> int:
    """Run the frozen ``selftest`` with user dirs in a fresh temp folder (a clean user)."""
    exe = app_dir / (name + (".exe" if sys.platform == "win32" else ""))
    tmp = Path(tempfile.mkdtemp(prefix="cxrviewer-frozen-selftest-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "CXRVIEWER_"))}
    env.update(
        QT_QPA_PLATFORM="offscreen",
        CXRVIEWER_DATA_DIR=str(tmp / "data"),
        CXRVIEWER_CACHE_DIR=str(tmp / "cache"),
        CXRVIEWER_LOG_DIR=str(tmp / "log"),
    )
    env.update(extra_env or {})
    _log(f"selftest: {exe} selftest")
    try:
        return subprocess.call([str(exe), "selftest", "--out", str(tmp / "export.png")], env=env,
                               timeout=timeout, cwd=tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Build the cxrviewer app (PyInstaller, onedir).")
    ap.add_argument("--viewer-only", action="store_true",
                    help="no torch: inference through ONNX Runtime (much smaller)")
    ap.add_argument("--dist", type=Path, default=REPO / "dist", help="output folder (default dist/)")
    ap.add_argument("--work", type=Path, default=REPO / "build", help="work folder (default build/)")
    ap.add_argument("--name", default="cxrviewer", help="app folder and executable name")
    ap.add_argument("--model", type=Path, action="append", default=[],
                    help="also bundle this model directory (repeatable); resources/models/ is always bundled")
    ap.add_argument("--no-sample", action="store_true", help="do not bundle the RG1 sample study")
    ap.add_argument("--clean", action="store_true", help="clear PyInstaller's cache first")
    ap.add_argument("--selftest", action="store_true", help="run the frozen selftest after building")
    args = ap.parse_args(argv)

    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        print("build: PyInstaller is not installed: pip install -e '.[package]'", file=sys.stderr)
        return 2
    sys.path.insert(0, str(REPO))
    dist, work = args.dist.resolve(), args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        resources = stage_resources(work, [m.resolve() for m in args.model], not args.no_sample)
    except BuildError as e:
        print(f"build: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # a model that fails read_card/verify_checksum: CxrError with its reason
        print(f"build: {e}", file=sys.stderr)
        return 2
    rc = run_pyinstaller(dist, work, resources, args.viewer_only, args.clean, args.name)
    if rc != 0:
        return rc
    app_dir = dist / args.name
    report = size_report(app_dir)
    report["variant"] = "viewer-only" if args.viewer_only else "full"
    try:
        import torch

        report["torch"] = None if args.viewer_only else f"{torch.__version__} (CUDA {torch.version.cuda})"
    except ImportError:
        report["torch"] = None
    (dist / f"{args.name}-size.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    _log(f"{app_dir}: {report['total_mib']} MiB in {report['files']} files")
    for part in report["largest"][:8]:
        _log(f"  {part['mib']:8.1f} MiB  {part['name']}")
    if args.selftest:
        rc = run_selftest(app_dir, args.name)
        _log(f"frozen selftest exit status {rc}")
        return rc
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
