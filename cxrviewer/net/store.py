"""The local store retrieved instances land in: ``ROOT/<StudyInstanceUID>/<SOPInstanceUID>.dcm``.

Each instance is written atomically (temporary file beside it, fsync, rename), so a transfer
cut mid-study leaves only complete files: a repeated retrieve lists what is there and asks the
node for the rest. UIDs from the network are checked before they become file names (a UID is
digits and dots, PS3.5 9.1), so a hostile peer cannot write outside the store.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from cxrviewer.core.errors import CxrError

_UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
SUFFIX = ".dcm"


class StoreError(CxrError):
    """An instance could not be put in the store (bad UID, disk)."""


def check_uid(uid: str, what: str = "UID") -> str:
    uid = (uid or "").strip().rstrip("\x00")
    if not uid or len(uid) > 64 or not _UID_RE.match(uid):
        raise StoreError(None, f"{what} {uid[:80]!r} is not a valid DICOM UID")
    return uid


def default_root() -> Path:
    """``<user data dir>/pacs``: where the viewer keeps retrieved studies."""
    from cxrviewer.paths import user_data_dir

    return user_data_dir() / "pacs"


class LocalStore:
    """A folder of retrieved studies.

    Parameters
    ----------
    root
        The store's folder (created on first write); default :func:`default_root`.
    """

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    def study_dir(self, study_uid: str) -> Path:
        return self.root / check_uid(study_uid, "Study Instance UID")

    def path_for(self, study_uid: str, sop_uid: str) -> Path:
        return self.study_dir(study_uid) / f"{check_uid(sop_uid, 'SOP Instance UID')}{SUFFIX}"

    def present(self, study_uid: str) -> set[str]:
        """SOP Instance UIDs of the complete instances already stored for the study."""
        d = self.study_dir(study_uid)
        if not d.is_dir():
            return set()
        # Temporary files start with a dot (cxrviewer.atomic): never counted as present.
        return {p.name[: -len(SUFFIX)] for p in d.iterdir()
                if p.name.endswith(SUFFIX) and not p.name.startswith(".") and p.stat().st_size > 0}

    def partial_files(self) -> list[Path]:
        """Leftover temporary files (should always be empty; the tests check it)."""
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.rglob(".*") if p.is_file())

    def write(self, study_uid: str, sop_uid: str, data: bytes) -> Path:
        """Atomically store one encoded instance (DICOM file format bytes)."""
        from cxrviewer.atomic import write_bytes

        target = self.path_for(study_uid, sop_uid)
        return write_bytes(target, data)

    def files(self, study_uid: str) -> list[Path]:
        d = self.study_dir(study_uid)
        return sorted(p for p in d.glob(f"*{SUFFIX}") if not p.name.startswith(".")) if d.is_dir() else []
