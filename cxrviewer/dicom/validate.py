"""Run David Clunie's ``dciodvfy`` (Debian package ``dicom3tools``) on an object.

Used by the tests (every object we write must give 0 errors) and available to anyone who
wants the same check on their own files. No network, no downloads: the tool is local or the
check says it is absent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass


@dataclass(frozen=True)
class Validation:
    """dciodvfy's verdict: its ``Error -`` and ``Warning -`` lines, and the IOD it checked."""

    errors: tuple[str, ...]
    warnings: tuple[str, ...]
    iod: str

    @property
    def ok(self) -> bool:
        return not self.errors

    def counts(self) -> dict[str, int]:
        return {"errors": len(self.errors), "warnings": len(self.warnings)}


def dciodvfy_path() -> str | None:
    """The ``dciodvfy`` executable, or ``None`` when dicom3tools is not installed."""
    return shutil.which("dciodvfy")


def validate_file(path: str | os.PathLike, timeout_s: float = 60.0) -> Validation:
    """Validate a DICOM file against its IOD.

    Raises
    ------
    FileNotFoundError
        When ``dciodvfy`` is not installed.
    """
    exe = dciodvfy_path()
    if exe is None:
        raise FileNotFoundError("dciodvfy (Debian package dicom3tools) is not installed")
    r = subprocess.run([exe, os.fspath(path)], capture_output=True, text=True, timeout=timeout_s, check=False)
    lines = (r.stderr + "\n" + r.stdout).splitlines()
    errors = tuple(x for x in lines if x.startswith("Error"))
    warnings = tuple(x for x in lines if x.startswith("Warning"))
    iod = next((x.strip() for x in lines if x.strip() and not x.startswith(("Error", "Warning"))), "")
    return Validation(errors, warnings, iod)


def validate_dataset(ds) -> Validation:
    """Write ``ds`` to a temporary file and validate it."""
    with tempfile.TemporaryDirectory(prefix="cxrviewer-dciodvfy-") as d:
        p = os.path.join(d, "object.dcm")
        ds.save_as(p, enforce_file_format=True)
        return validate_file(p)
