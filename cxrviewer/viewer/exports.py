"""Where an export goes by default (Qt-free, so the rule is tested without a dialog).

Each kind of DICOM object has its own default name (``<source stem>_sc.dcm``, ``_sr.dcm``,
``_gsps.dcm``), so exporting an SR after an SC never proposes the SC's file. The folder is the
one last exported to, else the source image's folder when it is writable, else the user's
documents folder. Whether an existing file may be replaced is the reader's call: the dialog
asks (:func:`needs_confirmation`).
"""

from __future__ import annotations

import os
from pathlib import Path

#: export kind (as the Export as DICOM dialog names them) -> file name suffix
SUFFIXES: dict[str, str] = {"sc-view": "_sc.dcm", "sc-native": "_sc.dcm", "sc": "_sc.dcm",
                            "sr": "_sr.dcm", "gsps": "_gsps.dcm"}


def _writable_dir(p: str | os.PathLike | None) -> bool:
    return bool(p) and os.path.isdir(p) and os.access(p, os.W_OK | os.X_OK)


def default_folder(source: str | os.PathLike, last_dir: str | os.PathLike | None = None) -> Path:
    """The last export folder if it still exists and is writable, else the source's folder when
    writable (a CD or a read-only archive is not), else the documents folder (else home)."""
    if _writable_dir(last_dir):
        return Path(last_dir)
    beside = Path(source).parent
    if _writable_dir(beside):
        return beside
    docs = Path.home() / "Documents"
    return docs if _writable_dir(docs) else Path.home()


def default_name(kind: str, source: str | os.PathLike) -> str:
    """``<source stem><suffix>``: e.g. ``chest.dcm`` and ``sr`` -> ``chest_sr.dcm``."""
    try:
        suffix = SUFFIXES[kind]
    except KeyError:
        raise ValueError(f"unknown export kind {kind!r}: one of {', '.join(SUFFIXES)}") from None
    stem = Path(source).stem or "image"
    return stem + suffix


def default_path(kind: str, source: str | os.PathLike, last_dir: str | os.PathLike | None = None) -> Path:
    """:func:`default_folder` / :func:`default_name`."""
    return default_folder(source, last_dir) / default_name(kind, source)


def with_kind(path: str | os.PathLike, old_kind: str, new_kind: str) -> Path:
    """``path`` with its kind suffix swapped (when the reader picks another kind in the dialog,
    a default name follows; a name the reader typed is kept: returned unchanged)."""
    p = Path(path)
    old, new = SUFFIXES.get(old_kind, ""), SUFFIXES.get(new_kind, "")
    if old and new and p.name.endswith(old):
        return p.with_name(p.name[: -len(old)] + new)
    return p


def needs_confirmation(path: str | os.PathLike) -> bool:
    """An export to ``path`` would replace an existing file (the reader must say yes first)."""
    return os.path.lexists(path)
