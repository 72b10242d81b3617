"""Writes are atomic and failures are clear: disk full or permission denied leaves no partial
file and the previous file intact (cxrviewer.atomic, used by every writer)."""

from __future__ import annotations

import builtins
import errno
import os
import stat
import tempfile

import pytest

from cxrviewer import atomic
from cxrviewer.atomic import WriteError, write_bytes, write_text, write_with
from cxrviewer.core.errors import CxrError

OLD = b"previous contents\n"


@pytest.fixture()
def target(tmp_path):
    t = tmp_path / "out" / "report.json"
    t.parent.mkdir()
    t.write_bytes(OLD)
    return t


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name != "report.json")


class _FailingFile:
    """A real file whose write() stores half of the data, then fails like a full disk."""

    def __init__(self, real, err):
        self._real, self._err = real, err

    def write(self, data):
        self._real.write(data[: len(data) // 2])
        self._real.flush()
        raise OSError(self._err, os.strerror(self._err))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._real.close()
        return False

    def __getattr__(self, name):
        return getattr(self._real, name)


@pytest.mark.parametrize("err, words", [(errno.ENOSPC, "disk full"), (errno.EACCES, "permission denied")])
def test_failing_write_leaves_previous_file_and_no_temp(target, monkeypatch, err, words):
    real_open = builtins.open

    def failing_open(file, mode="r", *a, **kw):
        fh = real_open(file, mode, *a, **kw)
        return _FailingFile(fh, err) if "w" in mode else fh

    monkeypatch.setattr(atomic, "open", failing_open, raising=False)
    with pytest.raises(WriteError) as e:
        write_bytes(target, b"new contents that will not fit\n" * 100)
    msg = str(e.value)
    assert str(target) in msg and words in msg and "nothing was written" in msg
    assert isinstance(e.value, CxrError)
    assert target.read_bytes() == OLD
    assert _leftovers(target.parent) == []


def test_no_permission_to_create_temp(target, monkeypatch):
    def denied(*a, **kw):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(WriteError, match="permission denied"):
        write_text(target, "x")
    assert target.read_bytes() == OLD and _leftovers(target.parent) == []


def test_rename_failure_removes_temp(target, monkeypatch):
    def no_space(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", no_space)
    with pytest.raises(WriteError, match="disk full"):
        write_bytes(target, b"new")
    assert target.read_bytes() == OLD and _leftovers(target.parent) == []


def test_writer_exception_propagates_and_cleans_up(target):
    def writer(path):
        path.write_bytes(b"half")
        raise ValueError("encoder failed")

    with pytest.raises(ValueError, match="encoder failed"):
        write_with(target, writer)
    assert target.read_bytes() == OLD and _leftovers(target.parent) == []


def test_writer_oserror_becomes_clear_error(target):
    def writer(path):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(WriteError, match="disk full"):
        write_with(target, writer)
    assert target.read_bytes() == OLD and _leftovers(target.parent) == []


def test_success_replaces_and_keeps_suffix_for_format_picking_writers(target):
    seen = []

    def writer(path):
        seen.append(path)
        path.write_bytes(b"fresh")

    write_with(target, writer)
    assert target.read_bytes() == b"fresh"
    assert seen[0].suffix == ".json" and seen[0].name.startswith(".")  # hidden from scans
    assert _leftovers(target.parent) == []


def test_new_file_gets_normal_permissions_not_mkstemp_0600(tmp_path):
    p = write_bytes(tmp_path / "new.png", b"x")
    mode = stat.S_IMODE(os.stat(p).st_mode)
    assert mode == 0o666 & ~atomic._umask()
    assert mode & stat.S_IRGRP  # readable by the user's other tools, like any export


def test_existing_file_keeps_its_mode(target):
    os.chmod(target, 0o640)
    write_bytes(target, b"y")
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
