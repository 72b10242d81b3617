"""Shared fixtures. Qt runs offscreen; user dirs point into a temp folder per test session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Never touch the real user's registry, cache or logs from a test.
_TMP = Path(tempfile.mkdtemp(prefix="cxrviewer-tests-"))
for var, sub in (("CXRVIEWER_DATA_DIR", "data"), ("CXRVIEWER_CACHE_DIR", "cache"), ("CXRVIEWER_LOG_DIR", "log")):
    os.environ.setdefault(var, str(_TMP / sub))

REPO = Path(__file__).resolve().parents[1]
# CXRVIEWER_SHARED_DATA: the same data seen from a git worktree elsewhere
SHARED_DATA = Path(os.environ.get("CXRVIEWER_SHARED_DATA") or (REPO.parent / "shared" / "data")).resolve()


def need_tool(found: object, what: str, package: str) -> None:
    """A Debian tool a test runs (Orthanc, dcmtk, dicom3tools, a C compiler), which ``.ci/run``
    installs. Missing: the test fails and names the package to install. It never skips, so
    that neither CI nor a developer's run can pass by leaving the check out. Python tools
    (import-linter, PyInstaller, ...) are never looked up here: tests run them through
    ``sys.executable``, from the venv's dev install."""
    if found:
        return
    pytest.fail(f"{what} is not installed: install the Debian package '{package}' "
                "(.ci/run installs it; the README lists the test suite's packages)", pytrace=False)


@pytest.fixture(scope="session")
def tool():
    """:func:`need_tool` for test modules (they cannot import this conftest by name)."""
    return need_tool


@pytest.fixture(scope="session")
def dciodvfy_tool() -> None:
    """dicom3tools' validator present (see :func:`need_tool`)."""
    from cxrviewer.dicom.validate import dciodvfy_path

    need_tool(dciodvfy_path(), "dciodvfy", "dicom3tools")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (read-only); tests using it skip with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"../shared/data is absent ({SHARED_DATA}): real-data test skipped (a user's clone has none)")
    return SHARED_DATA


def _rg1(name: str) -> Path:
    from pydicom.data import get_testdata_file

    p = get_testdata_file(name, download=False)
    if not p:
        pytest.skip(f"pydicom-data's {name} is not installed")
    return Path(p)


@pytest.fixture(scope="session")
def rg1_unci() -> Path:
    return _rg1("RG1_UNCI.dcm")


@pytest.fixture(scope="session")
def rg1_uncr() -> Path:
    return _rg1("RG1_UNCR.dcm")


@pytest.fixture(scope="session")
def rg1_j2kr() -> Path:
    return _rg1("RG1_J2KR.dcm")


@pytest.fixture(scope="session")
def rg1_j2ki() -> Path:
    return _rg1("RG1_J2KI.dcm")
