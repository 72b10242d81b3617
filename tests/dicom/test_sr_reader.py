"""The reader's call in the SR: its own group, attributed to a person (not the device that
made the AI result), valid per dciodvfy, read back intact, and gone from the de-identified copy."""

from __future__ import annotations

import pydicom
import pytest

from cxrviewer.dicom.common import AiResult, DicomObjectError, source_dataset, write_dataset
from cxrviewer.dicom.deid import deidentify
from cxrviewer.dicom.sr import _code_of, _groups, _text, make_sr, read_ai_results
from cxrviewer.dicom.sr_reader import READER_TRACKING_ID, ReaderCall, read_reader_calls
from cxrviewer.dicom.validate import validate_file

AI = AiResult(0.7, "Abnormal", 0.4, "m", "1")
READER = "Readerson^Alice"


@pytest.fixture(scope="module")
def src(rg1_unci):
    return source_dataset(rg1_unci)


def _observer(items) -> dict[tuple[str, str], object]:
    out = {}
    for it in items or []:
        if it.get("RelationshipType") == "HAS OBS CONTEXT":
            code = _code_of(it)
            out[code] = it.get("PersonName") or it.get("TextValue") or (
                it.ConceptCodeSequence[0].CodeValue if it.get("ConceptCodeSequence") else None)
    return out


def test_reader_call_beside_the_ai_result(src, tmp_path):
    call = ReaderCall(READER, "normal", {"Effusion": 0, "Mass": 1})
    sr = make_sr(src, AI, reader_call=call)
    p = write_dataset(sr, tmp_path / "sr.dcm")
    v = validate_file(p)
    assert v.errors == (), "\n".join(v.errors)
    back = pydicom.dcmread(p)
    assert read_reader_calls(back) == [call]
    (ai,) = read_ai_results(back)  # the AI's group is untouched by the reader's
    assert ai.label == "Abnormal" and ai.probability_abnormal == pytest.approx(0.7)
    # the report's own context: the device; the reader's group: a person, by name
    root = _observer(back.ContentSequence)
    assert root[("121005", "DCM")] == "121007"  # Observer Type = Device
    groups = {_text(g, ("112039", "DCM")): g for g in _groups(back)}
    reader_ctx = _observer(groups[READER_TRACKING_ID].ContentSequence)
    assert reader_ctx[("121005", "DCM")] == "121006"  # Observer Type = Person
    assert str(reader_ctx[("121008", "DCM")]) == READER
    ai_ctx = _observer(groups["cxrviewer AI result"].ContentSequence)
    assert ("121005", "DCM") not in ai_ctx and ("121008", "DCM") not in ai_ctx  # inherits the device


def test_reader_call_alone_is_a_report(src):
    sr = make_sr(src, reader_call=ReaderCall("alice", "abnormal"))
    assert read_reader_calls(sr) == [ReaderCall("alice", "abnormal")]
    assert read_ai_results(sr) == []
    with pytest.raises(DicomObjectError, match="nothing to report"):
        make_sr(src)
    with pytest.raises(ValueError, match="normal or abnormal"):
        ReaderCall("alice", "maybe")


def test_deidentified_sr_leaves_the_reader_name_out(src, tmp_path):
    sr = make_sr(src, AI, reader_call=ReaderCall(READER, "abnormal", {"Mass": 1}))
    out, _ = deidentify(sr, seed="s")
    p = write_dataset(out, tmp_path / "deid.dcm")
    data = p.read_bytes()
    for part in (b"Readerson", b"Alice"):
        assert part not in data
    v = validate_file(p)
    assert v.errors == (), "\n".join(v.errors)
    (back,) = read_reader_calls(pydicom.dcmread(p))
    assert back.label == "abnormal" and back.findings == {"Mass": 1}  # the call itself stays
    assert "Readerson" not in back.reader


def test_feedback_sr_from_the_cli(rg1_unci, tmp_path, capsys, monkeypatch):
    from cxrviewer.cli import main
    from cxrviewer.feedback import FeedbackStore, ModelOutput, load_keyed

    monkeypatch.setenv("CXRVIEWER_DATA_DIR", str(tmp_path / "d"))
    key, _ = load_keyed(rg1_unci)
    seen = ModelOutput("demo", "2.0", probability=0.81, label="abnormal", threshold=0.7, weights_sha256="ab" * 32)
    with FeedbackStore(tmp_path / "d" / "feedback.sqlite") as s:
        s.record(key, "Readerson^Alice", "normal", path=str(rg1_unci), model=seen)
    out = tmp_path / "call.dcm"
    assert main(["feedback", "sr", str(rg1_unci), "--reader", "Readerson^Alice", "--out", str(out)]) == 0
    back = pydicom.dcmread(out)
    assert validate_file(out).errors == ()
    assert read_reader_calls(back) == [ReaderCall("Readerson^Alice", "normal")]
    (ai,) = read_ai_results(back)  # the AI result the reader saw, as recorded with the call
    assert (ai.model_name, ai.model_version, ai.label) == ("demo", "2.0", "Abnormal")
    assert ai.probability_abnormal == pytest.approx(0.81)
    anon = tmp_path / "anon.dcm"
    capsys.readouterr()
    assert main(["feedback", "sr", str(rg1_unci), "--reader", "Readerson^Alice", "--out", str(anon),
                 "--anonymize"]) == 0
    assert b"Readerson" not in anon.read_bytes() and validate_file(anon).errors == ()
    assert main(["feedback", "sr", str(rg1_unci), "--reader", "bob", "--out", str(tmp_path / "x.dcm")]) == 2
    assert "bob has no call on this image" in capsys.readouterr().err
    assert main(["feedback", "sr", str(rg1_unci), "--reader", "Readerson^Alice", "--out", str(out)]) == 2
