"""The layers' arrows point one way: core and ml and training never import Qt; core no torch.

import-linter (the contracts in ``pyproject.toml``, run through this venv's Python) sees every import statement,
including the ones inside functions; the ``sys.modules`` checks below prove what actually gets
imported at run time (through third-party packages too).
"""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# import-linter has no ``python -m`` entry point; this is what its ``lint-imports`` script runs
# (click reads the options from sys.argv). .ci/run calls it the same way.
LINT_IMPORTS = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def test_import_linter_contracts_are_kept(tmp_path):
    # through this venv's Python, never a `lint-imports` found (or not) on PATH: a missing
    # import-linter is a broken dev install, a failure, not a skip
    import importlib.util

    assert importlib.util.find_spec("importlinter") is not None, (
        "import-linter is not installed in this venv: it is in the dev extra (pip install -e '.[dev]')")
    r = subprocess.run(
        [sys.executable, "-c", LINT_IMPORTS, "--no-logo", "--cache-dir", str(tmp_path / "cache"),
         str(ROOT / "pyproject.toml")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert re.search(r"Contracts: [1-9][0-9]* kept, 0 broken", r.stdout), r.stdout[-2000:]


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True, text=True, check=True,
    ).stdout
    return set(out.split())


def test_core_imports_neither_qt_nor_torch():
    mods = _modules_after(
        "import cxrviewer.core.study_index, cxrviewer.core.dicom_io, cxrviewer.core.display, cxrviewer.core.window"
    )
    assert "PySide6" not in mods
    assert "torch" not in mods
    assert "pyqtgraph" not in mods


def test_ml_and_training_import_no_qt():
    import importlib.util

    targets = ["cxrviewer.core", "cxrviewer.ml", "cxrviewer.ml.preprocess"]
    for extra in ("cxrviewer.ml.model", "cxrviewer.ml.cam", "cxrviewer.ml.inference", "cxrviewer.ml.registry", "training", "training.train"):
        if importlib.util.find_spec(extra.split(".")[0]) and _spec_exists(extra):
            targets.append(extra)
    mods = _modules_after("\n".join(f"import {t}" for t in targets))
    assert "PySide6" not in mods, targets
    assert "pyqtgraph" not in mods, targets


def _spec_exists(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def test_render_and_the_headless_export_import_no_qt_and_not_the_ui_package():
    mods = _modules_after("import cxrviewer.render.compose, cxrviewer.cli.export, cxrviewer.selftest")
    assert "PySide6" not in mods
    assert "pyqtgraph" not in mods
    assert "cxrviewer.ui" not in mods
    assert "torch" not in mods
