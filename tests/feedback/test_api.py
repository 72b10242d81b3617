"""The Qt-free API the viewer calls: who reads, Agree/Disagree, the Train dialog's data
source, the model card's agreement line, and export paths that follow a renamed file."""

from __future__ import annotations

import csv
import getpass
import shutil

import pytest

from cxrviewer.feedback import (
    FeedbackError,
    FeedbackStore,
    ModelOutput,
    agreement_line,
    agreement_stats,
    data_source,
    default_reader,
    export_csv,
    label_from_model,
    load_keyed,
    parse_since,
)


def test_reader_name_env_then_settings_then_os_user(tmp_path, monkeypatch):
    ini = tmp_path / "settings.ini"
    monkeypatch.delenv("CXRVIEWER_READER", raising=False)
    assert default_reader(ini) == getpass.getuser()  # no settings file
    ini.write_text('[General]\nrecent=@Invalid()\n\n[feedback]\nreader="Readerson, Alice"\n', encoding="utf-8")
    assert default_reader(ini) == "Readerson, Alice"  # QSettings quotes values with commas
    ini.write_text("[feedback]\nreader=Dr Bob\n", encoding="utf-8")
    assert default_reader(ini) == "Dr Bob"
    monkeypatch.setenv("CXRVIEWER_READER", "carol")
    assert default_reader(ini) == "carol"
    monkeypatch.delenv("CXRVIEWER_READER")
    ini.write_bytes(b"\xff\xfe not ini [[[")
    assert default_reader(ini) == getpass.getuser()  # a broken file never blocks a call


def test_agree_disagree_set_the_label_from_the_ai_result():
    shown = ModelOutput("m", "1", probability=0.8, label="abnormal", threshold=0.5)
    assert label_from_model(True, shown) == "abnormal"
    assert label_from_model(False, shown) == "normal"
    with pytest.raises(FeedbackError, match="no Normal/Abnormal label"):
        label_from_model(True, ModelOutput("m", "1", scored=False))


def test_train_dialog_source_and_model_card_line(tmp_path):
    db = tmp_path / "fb.sqlite"
    with FeedbackStore(db) as s:
        assert data_source(s).label == "Reader feedback (0 labelled images)"
        s.record("i:1", "alice", "abnormal", model=ModelOutput("m", "1", 0.9, "abnormal", 0.5))
        s.record("i:1", "bob", "normal", model=ModelOutput("m", "1", 0.9, "abnormal", 0.5))
        s.record("i:2", "alice", "normal", model=ModelOutput("m", "1", 0.2, "normal", 0.5))
        s.record("i:3", "alice", "normal")
        s.withdraw("i:3", "alice")
        src = data_source(s)
        assert src.label == "Reader feedback (2 labelled images)"
        assert (src.images, src.calls, src.readers) == (2, 3, {"alice": 2, "bob": 1})
        line = agreement_line(agreement_stats(s.current(), model="m"))
        assert line.startswith("Agreement with this site's readers: n 3 calls by 2 readers, kappa ")
        assert "sensitivity 100 % [21–100]" in line and "specificity 50 % [9–91]" in line
        assert "no reader calls" in agreement_line(agreement_stats(s.current(), model="other"))
    out = src.write_csv(tmp_path / "labels.csv")
    assert out.rows == 3 and out.images == 2


def test_export_follows_the_newest_existing_path_and_since(tmp_path, rg1_uncr):
    a = tmp_path / "a.dcm"
    shutil.copy(rg1_uncr, a)
    key, _ = load_keyed(a)
    with FeedbackStore(tmp_path / "fb.sqlite") as s:
        first = s.record(key, "alice", "abnormal", path=str(a))
        b = tmp_path / "b.dcm"
        a.rename(b)
        s.record(key, "bob", "normal", path=str(b))  # bob saw it under its new name
        summary = export_csv(s, tmp_path / "l.csv")
        assert summary.missing == 0
        with open(tmp_path / "l.csv", newline="") as fh:
            rows = {r["reader"]: r for r in csv.DictReader(fh)}
        assert rows["alice"]["path"] == rows["bob"]["path"] == str(b)  # alice's call follows the file
        b.unlink()
        assert export_csv(s, tmp_path / "l2.csv").missing == 2
        assert export_csv(s, tmp_path / "l3.csv", since=parse_since(first.recorded_at)).rows == 2
        with pytest.raises(FeedbackError, match="no reader calls since"):
            export_csv(s, tmp_path / "l4.csv", since=parse_since("2999-01-01"))
    assert not (tmp_path / "l4.csv").exists()
