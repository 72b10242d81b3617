"""The whole loop against a real Orthanc: store RG1 (and the SIIM pair) → find → C-GET → analyse
with the bundled model → send the AI result as an SR and the view as an SC → find the new series
→ retrieve the SR and read the probability back; then the same query/retrieve over DICOMweb."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from cxrviewer.net import api
from cxrviewer.net.common import StudyQuery
from cxrviewer.net.nodes import DimseNode, WebNode
from cxrviewer.net.store import LocalStore

SHARED_DICOM = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dicom"


@pytest.fixture(scope="module")
def engine():
    from cxrviewer.ml.inference import Engine
    from cxrviewer.paths import resource

    d = resource("models", "cxr-resnet50-demo")
    if not (d / "card.json").exists():
        pytest.skip("the bundled demo model is not in this checkout")
    return Engine.load(d, device="cpu")


def _analyse_and_build(engine, path: Path, out: Path) -> tuple[float, list[Path]]:
    """Analyse one retrieved image; write its SR and SC (cxrviewer.dicom) into ``out``."""
    from cxrviewer.core.dicom_io import load_image
    from cxrviewer.core.display import render
    from cxrviewer.dicom.build import ai_result_from_prediction
    from cxrviewer.dicom.common import source_dataset, write_dataset
    from cxrviewer.dicom.sc import make_sc
    from cxrviewer.dicom.sr import make_sr

    img = load_image(path)
    pred = engine.predict(img, cam=False)
    ai = ai_result_from_prediction(pred, engine.card.get("weights_sha256", ""))
    src = source_dataset(path)
    sr = make_sr(src, ai)
    sc = make_sc(src, render(img), description="view as analysed")
    return pred.probability_abnormal, [write_dataset(sr, out / "sr.dcm"), write_dataset(sc, out / "sc.dcm")]


def _ai_from_store(store: LocalStore, study: str):
    from cxrviewer.dicom.sr import read_ai_results

    out = []
    for f in store.files(study):
        ds = pydicom.dcmread(f)
        if ds.Modality == "SR":
            out += read_ai_results(ds)
    return out


def test_find_get_analyse_send_sr_sc_and_read_back(fresh_orthanc, engine, rg1_unci, tmp_path, tool):
    pytest.importorskip("highdicom", reason="highdicom writes the SR/SC")
    node = DimseNode("orthanc", "127.0.0.1", fresh_orthanc.dicom_port, fresh_orthanc.aet, timeout=30)
    to_send = [rg1_unci]
    siim = sorted(SHARED_DICOM.glob("siim_*.dcm")) if SHARED_DICOM.is_dir() else []
    to_send += siim  # the SIIM part only where ../shared/data is present
    assert api.send(node, to_send).sent == len(to_send)
    if siim:
        siim_study = str(pydicom.dcmread(siim[0], stop_before_pixels=True).StudyInstanceUID)
        assert [r["study_uid"] for r in api.find(node, StudyQuery(study_uid=siim_study))] == [siim_study]

    [row] = api.find(node, StudyQuery(patient_id="9RG1"))
    study = row["study_uid"]
    assert row["modalities"] == ["CR"] and row["n_series"] == 1
    store = LocalStore(tmp_path / "store")
    got = api.retrieve(node, study, store)
    assert got.fetched == 1 and got.failed == 0

    (tmp_path / "objs").mkdir()
    p_abn, objs = _analyse_and_build(engine, store.files(study)[0], tmp_path / "objs")
    sent = api.send(node, objs)
    assert sent.sent == 2 and not sent.failed

    [after] = api.find(node, StudyQuery(study_uid=study))
    assert after["n_series"] == 3 and {"CR", "SR"} <= set(after["modalities"])
    assert api.find(node, StudyQuery(patient_id="9RG1", modality="SR"))[0]["study_uid"] == study

    again = api.retrieve(node, study, store)  # only the two new objects travel
    assert (again.fetched, again.already_present, again.total) == (2, 1, 3)
    [ai] = _ai_from_store(store, study)
    assert ai.stored and ai.probability_abnormal == pytest.approx(p_abn, abs=1e-6)
    assert ai.model_name == engine.name and ai.model_version == engine.version
    assert ai.source_sop_instance_uid == str(pydicom.dcmread(rg1_unci, stop_before_pixels=True).SOPInstanceUID)

    # the same query/retrieve over DICOMweb (QIDO-RS + WADO-RS), into an empty store
    tool(fresh_orthanc.dicomweb, "Orthanc's DICOMweb plugin (the DICOMweb half of this test)", "orthanc-dicomweb")
    web = WebNode("orthanc-web", fresh_orthanc.dicomweb_url, timeout=30)
    [wrow] = api.find(web, StudyQuery(patient_id="9RG1", modality="SR"))
    assert wrow["study_uid"] == study and wrow["n_instances"] == 3
    wstore = LocalStore(tmp_path / "web")
    wres = api.retrieve(web, study, wstore)
    assert (wres.fetched, wres.failed) == (3, 0)
    [wai] = _ai_from_store(wstore, study)
    assert wai.probability_abnormal == pytest.approx(p_abn, abs=1e-6)
