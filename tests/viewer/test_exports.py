"""Export defaults: a name per kind, the last folder else beside the source when writable."""

from __future__ import annotations

import os

import pytest

from cxrviewer.viewer.exports import (
    default_folder,
    default_name,
    default_path,
    needs_confirmation,
    with_kind,
)


def test_each_kind_has_its_own_default_name(tmp_path):
    src = tmp_path / "chest.dcm"
    names = {k: default_name(k, src) for k in ("sc-view", "sc-native", "sr", "gsps")}
    assert names == {"sc-view": "chest_sc.dcm", "sc-native": "chest_sc.dcm", "sr": "chest_sr.dcm",
                     "gsps": "chest_gsps.dcm"}
    with pytest.raises(ValueError, match="unknown export kind 'pdf'"):
        default_name("pdf", src)


def test_folder_is_the_last_used_else_beside_a_writable_source(tmp_path):
    src_dir = tmp_path / "study"
    src_dir.mkdir()
    src = src_dir / "chest.dcm"
    last = tmp_path / "exports"
    assert default_folder(src, None) == src_dir
    assert default_folder(src, last) == src_dir  # a last folder that no longer exists
    last.mkdir()
    assert default_path("sr", src, last) == last / "chest_sr.dcm"


def test_a_read_only_source_folder_is_not_proposed(tmp_path, monkeypatch):
    src_dir = tmp_path / "cd"
    src_dir.mkdir()
    # a CD: os.access says no (chmod would not do here: root, as CI runs, may write anyway)
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if os.fspath(p) == os.fspath(src_dir) else real(p, mode))
    assert default_folder(src_dir / "x.dcm") != src_dir


def test_kind_switch_keeps_a_typed_name_and_existing_files_need_a_yes(tmp_path):
    assert with_kind(tmp_path / "chest_sc.dcm", "sc-view", "gsps") == tmp_path / "chest_gsps.dcm"
    assert with_kind(tmp_path / "mine.dcm", "sc-view", "sr") == tmp_path / "mine.dcm"
    f = tmp_path / "chest_sr.dcm"
    assert not needs_confirmation(f)
    f.write_bytes(b"x")
    assert needs_confirmation(f)
