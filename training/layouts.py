"""Class names of labelled sets: which folder (or CSV label) means Normal and which Abnormal.

Folders are matched case-insensitively against common names (:data:`DEFAULT_NAMES`: e.g.
``normal/``, ``NORMAL/``, ``0_normal/``, ``negative/`` vs ``abnormal/``, ``PNEUMONIA/``,
``1_abnormal/``, ``positive/``). ``--class-map normal=NORMAL abnormal=PNEUMONIA,COVID``
replaces the names of the classes it mentions. A folder holding images that matches no class
is skipped and *named* (a warning, and the error when a split ends up with one class), never
silently ignored.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cxrviewer.core.errors import CxrError

#: folder names (lower case) of each class when no --class-map says otherwise
DEFAULT_NAMES: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("normal", "0_normal", "negative", "0", "healthy", "no_finding", "no finding"),
    ("abnormal", "1_abnormal", "positive", "1", "pneumonia"),
)
CLASS_WORDS = ("normal", "abnormal")


@dataclass(frozen=True)
class ClassMap:
    """Lower-case folder/label name -> class index (0 Normal, 1 Abnormal)."""

    names: tuple[tuple[str, ...], tuple[str, ...]] = DEFAULT_NAMES
    explicit: tuple[bool, bool] = (False, False)

    @classmethod
    def parse(cls, items: Sequence[str] | None) -> ClassMap:
        """``["normal=NORMAL", "abnormal=PNEUMONIA,COVID"]`` -> a map; classes not named keep
        their default names. Raises :class:`CxrError` for a malformed item or a name given to
        both classes."""
        names = [list(DEFAULT_NAMES[0]), list(DEFAULT_NAMES[1])]
        explicit = [False, False]
        for item in items or []:
            key, sep, value = str(item).partition("=")
            key = key.strip().lower()
            vals = [v.strip().lower() for v in value.split(",") if v.strip()]
            if not sep or key not in CLASS_WORDS or not vals:
                raise CxrError(None, f"--class-map {item!r}: expected normal=NAME[,NAME...] or abnormal=NAME[,NAME...]")
            k = CLASS_WORDS.index(key)
            names[k] = (names[k] if explicit[k] else []) + vals
            explicit[k] = True
        both = set(names[0]) & set(names[1])
        if both:
            # an explicit name wins over the other class's default name
            for k in (0, 1):
                if not explicit[k]:
                    names[k] = [n for n in names[k] if n not in both]
            both = set(names[0]) & set(names[1])
            if both:
                raise CxrError(None, f"--class-map: {', '.join(sorted(both))} given to both classes")
        return cls((tuple(names[0]), tuple(names[1])), (explicit[0], explicit[1]))

    def label_of(self, name: str) -> int | None:
        """Class index of a folder or label name (case-insensitive), None when it matches none."""
        n = name.strip().lower()
        for k in (0, 1):
            if n in self.names[k]:
                return k
        return None

    def describe(self) -> str:
        return "; ".join(f"{CLASS_WORDS[k]}: {', '.join(self.names[k])}" for k in (0, 1))

    def to_dict(self) -> dict[str, list[str]]:
        return {CLASS_WORDS[k]: list(self.names[k]) for k in (0, 1)}


@dataclass
class FolderScan:
    """The class folders found below one folder, and the folders that matched no class."""

    classes: dict[int, list[Path]] = field(default_factory=dict)
    unmatched: list[tuple[Path, int]] = field(default_factory=list)  # (folder, images in it)


def images_in(d: Path) -> list[Path]:
    """Image files below ``d`` (recursively; extension-less files may be DICOM)."""
    from training.data import IMAGE_SUFFIXES

    return sorted(f for f in d.rglob("*") if f.is_file() and not f.name.startswith(".")
                  and (f.suffix.lower() in IMAGE_SUFFIXES or f.suffix == ""))


def scan_class_folders(p: Path, cmap: ClassMap) -> FolderScan:
    """Class folders of ``p``; a sub-folder that holds images but matches no class is listed
    in ``unmatched`` with its image count (hidden and ``__x__`` folders are not looked at)."""
    scan = FolderScan()
    for c in sorted(p.iterdir()):
        if not c.is_dir() or c.name.startswith((".", "__")):
            continue
        k = cmap.label_of(c.name)
        if k is not None:
            scan.classes.setdefault(k, []).append(c)
            continue
        n = len(images_in(c))
        if n:
            scan.unmatched.append((c, n))
    return scan


def unmatched_line(folders: Sequence[tuple[str, int]], cmap: ClassMap) -> str:
    """One sentence naming the skipped folders and how to map them."""
    if not folders:
        return ""
    names = ", ".join(f"{os.fspath(f)}{os.sep} ({n} images)" for f, n in folders[:5])
    if len(folders) > 5:
        names += f" and {len(folders) - 5} more"
    first = Path(folders[0][0]).name
    return (f"skipped {'a folder' if len(folders) == 1 else 'folders'} matching no class: {names} "
            f"[class names: {cmap.describe()}; map it with e.g. --class-map abnormal={first}]")

