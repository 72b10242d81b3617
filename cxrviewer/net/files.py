"""The files a send takes: folders walked, each file read once and checked before any connection."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def dicom_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files named, and files inside folders named (recursively, hidden ones skipped)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and not any(s.startswith(".") for s in f.relative_to(p).parts))
        else:
            out.append(p)
    return out


def read_for_send(path: Path):
    """The dataset to send, or a reason it cannot be (not DICOM, no SOP class...)."""
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    try:
        ds = dcmread(path)
    except (InvalidDicomError, OSError, ValueError, EOFError) as e:
        return None, f"not a DICOM file ({e})" if isinstance(e, InvalidDicomError) else f"cannot read ({e})"
    if "SOPClassUID" not in ds or "SOPInstanceUID" not in ds:
        return None, "no SOP Class/Instance UID (not a storable DICOM object)"
    if not getattr(ds, "file_meta", None) or "TransferSyntaxUID" not in ds.file_meta:
        return None, "no transfer syntax in the file meta information"
    return ds, ""
