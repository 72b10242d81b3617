"""Which files a scan reads: a folder walk (hidden files skipped, symlink loops ended), one
file, or the files a DICOMDIR references, whatever the DICOMDIR file is called (it is known by
its Media Storage SOP Class, PS3.10 7.2)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from cxrviewer.core import dicom_warnings
from cxrviewer.core.dicom_io import DICOMDIR_SOP_CLASS, read_dataset
from cxrviewer.core.errors import ScanPathError
from cxrviewer.core.types import FileError

#: File names that are DICOMDIRs without reading them.
DICOMDIR_NAMES = {"DICOMDIR"}


def _s(v) -> str:
    return "" if v is None else str(v).strip().replace("\x00", "")


def iter_files(root: str | os.PathLike, errors: list[FileError] | None = None) -> Iterator[str]:
    """Every non-hidden regular file under ``root``, depth first in name order.

    Follows directory symlinks but never the same directory twice (so symlink loops end).
    A folder that cannot be listed is skipped and, when ``errors`` is given, reported there.
    """
    root = os.fspath(root)
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            st = os.stat(d)
        except OSError:
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:
            continue
        seen.add(key)
        try:
            with os.scandir(d) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            if errors is not None:
                why = "permission denied" if isinstance(e, PermissionError) else (e.strerror or str(e))
                errors.append(FileError(d, f"folder cannot be listed ({why}); its files were not scanned"))
            continue
        subdirs = []
        for e in entries:
            if e.name.startswith("."):
                continue
            try:
                if e.is_dir(follow_symlinks=True):
                    subdirs.append(e.path)
                elif e.is_file(follow_symlinks=True):
                    yield e.path
            except OSError:
                continue
        stack.extend(reversed(subdirs))


def _dicomdir_files(path: str) -> list[str] | None:
    """Files referenced by a DICOMDIR (PS3.10 7.2, PS3.3 F.3), or ``None`` when it can't be
    read as one.

    Parsed directly from the Directory Record Sequence rather than with
    ``pydicom.fileset.FileSet``, which stages a temporary folder for writing that a
    read-only scan has no use for. A referenced file that is missing is still listed, so
    the scan reports it instead of silently showing fewer images.
    """
    try:
        ds = read_dataset(path, stop_before_pixels=True)
        seq = ds.get("DirectoryRecordSequence")
        if seq is None:
            return None
        base = os.path.dirname(os.path.abspath(path))
        files = set()
        for rec in seq:
            fid = rec.get("ReferencedFileID")
            if fid is None:
                continue
            parts = [str(fid)] if isinstance(fid, (str, bytes)) else [str(x) for x in fid]
            parts = [x.strip() for x in parts if str(x).strip()]
            if parts:
                files.add(os.path.join(base, *parts))
        return sorted(files)
    except Exception:  # noqa: BLE001 - fall back to scanning its folder
        return None


def collect_paths(path: str | os.PathLike, errors: list[FileError] | None = None) -> list[str]:
    """The files a scan of ``path`` reads (a folder, one file, or a DICOMDIR); folders that
    cannot be listed go to ``errors``."""
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise ScanPathError(p, "no such file or folder") from None
    except PermissionError:
        raise ScanPathError(p, "permission denied") from None
    except OSError as e:
        raise ScanPathError(p, f"cannot read: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        if not os.access(p, os.R_OK | os.X_OK):
            raise ScanPathError(p, "permission denied (folder not readable)")
        # A DICOMDIR inside a scanned folder is an index of files the walk finds anyway:
        # neither an image nor an error.
        return [f for f in iter_files(p, errors) if Path(f).name.upper() not in DICOMDIR_NAMES]
    if Path(p).name.upper() == "DICOMDIR" or _has_dicomdir_sop_class(p):
        files = _dicomdir_files(p)
        if files is not None:
            return files
        return [f for f in iter_files(os.path.dirname(p) or ".") if Path(f).name.upper() != "DICOMDIR"]
    return [p]


def _has_dicomdir_sop_class(path: str) -> bool:
    """Whether ``path``'s File Meta names it a DICOMDIR (reads the meta group only)."""
    try:
        from pydicom.filereader import read_file_meta_info

        with dicom_warnings.collect(path):
            meta = read_file_meta_info(path)
        return _s(meta.get("MediaStorageSOPClassUID")) == DICOMDIR_SOP_CLASS
    except Exception:  # noqa: BLE001 - not DICOM, no meta: not a DICOMDIR by its class
        return False
