"""User settings (recent files, window layout, preferences) in one INI file.

Stored in :func:`cxrviewer.paths.user_data_dir` (``CXRVIEWER_DATA_DIR`` in tests) rather than
the platform registry, so tests never touch a real user's settings and an admin can read it.
"""

from __future__ import annotations

import os

from PySide6 import QtCore

MAX_RECENT = 10


def _make_private(path: str) -> None:
    """Make the settings file readable by the user only (0600) before Qt writes to it.

    It lists recent folders (often named after patients) beside the PACS node file. QSettings
    saves through QSaveFile, which keeps an existing file's mode, so creating it 0600 once is
    enough.
    """
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)
    except OSError:
        pass  # a read-only profile: Qt reports nothing either; the viewer still runs


class Settings:
    """Typed access to the few settings the viewer keeps."""

    def __init__(self, path: str | None = None):
        if path is None:
            from cxrviewer.paths import user_data_dir

            path = str(user_data_dir() / "settings.ini")
        _make_private(path)
        self.q = QtCore.QSettings(path, QtCore.QSettings.Format.IniFormat)

    # ---------------------------------------------------------------- recent
    def recent(self) -> list[str]:
        v = self.q.value("recent", [])
        if isinstance(v, str):
            v = [v]
        return [str(x) for x in (v or []) if x]

    def add_recent(self, path: str) -> list[str]:
        path = os.path.abspath(path)
        items = [p for p in self.recent() if p != path]
        items.insert(0, path)
        items = items[:MAX_RECENT]
        self.q.setValue("recent", items)
        self.q.sync()
        return items

    def clear_recent(self) -> None:
        self.q.setValue("recent", [])
        self.q.sync()

    # ----------------------------------------------------------------- misc
    def get(self, key: str, default=None, type_=None):
        v = self.q.value(key, default)
        if type_ is bool and isinstance(v, str):
            return v.lower() in ("1", "true", "yes")
        if type_ is not None and v is not None:
            try:
                return type_(v)
            except (TypeError, ValueError):
                return default
        return v

    def set(self, key: str, value) -> None:
        self.q.setValue(key, value)

    def sync(self) -> None:
        self.q.sync()
