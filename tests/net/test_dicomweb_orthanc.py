"""DICOMweb (QIDO-RS, WADO-RS, STOW-RS) against a real Orthanc that requires basic auth."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pydicom
import pytest

from cxrviewer.net import api
from cxrviewer.net.common import NetError, StudyQuery
from cxrviewer.net.nodes import WebNode
from cxrviewer.net.store import LocalStore

RG1_STUDY = "1.3.6.1.4.1.5962.1.2.9.20040826185059.5457"


def test_stow_qido_wado_round_trip(web_node, rg1_unci, rg1_j2kr, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    WEB_PASSWORD = web_node.password
    assert api.echo(web_node)["ok"]
    sent = api.send(web_node, [rg1_unci, rg1_j2kr])
    assert sent.sent == 2 and not sent.failed
    # wildcards, the PN '^' separator, date range and modality through QIDO-RS
    for q in (StudyQuery(patient_name="Compressed*"), StudyQuery(patient_name="CompressedSamples^RG1"),
              StudyQuery(study_date="20040826-20040827", modality="CR"), StudyQuery(patient_id="9RG?")):
        rows = api.find(web_node, q)
        assert RG1_STUDY in [r["study_uid"] for r in rows], q
    row = next(r for r in api.find(web_node, StudyQuery(study_uid=RG1_STUDY)))
    assert row["patient_id"] == "9RG1" and row["modalities"] == ["CR"] and row["n_instances"] == 2
    assert api.find(web_node, StudyQuery(patient_name="Nobody*")) == []

    store = LocalStore(tmp_path)
    res = api.retrieve(web_node, RG1_STUDY, store)
    assert (res.total, res.fetched, res.failed) == (2, 2, 0)
    for src in (rg1_unci, rg1_j2kr):
        orig = pydicom.dcmread(src)
        got = pydicom.dcmread(store.path_for(RG1_STUDY, orig.SOPInstanceUID))
        assert got.file_meta.TransferSyntaxUID == orig.file_meta.TransferSyntaxUID  # transfer-syntax=*
        assert np.array_equal(got.pixel_array, orig.pixel_array)
    store.files(RG1_STUDY)[0].unlink()
    again = api.retrieve(web_node, RG1_STUDY, store)
    assert (again.fetched, again.already_present) == (1, 1)
    # the password never reaches a log record
    assert WEB_PASSWORD not in caplog.text
    assert all(WEB_PASSWORD not in str(r.args) for r in caplog.records)


def test_wrong_password_and_server_down(web_node, caplog):
    caplog.set_level(logging.DEBUG)
    WEB_PASSWORD = web_node.password
    bad = replace(web_node, password="wrong-" + WEB_PASSWORD)
    with pytest.raises(NetError) as e:
        api.find(bad, StudyQuery())
    assert str(e.value).startswith(f"test-web ({web_node.url}): HTTP 401")
    assert "wrong-" not in str(e.value) and "wrong-" not in caplog.text
    down = WebNode("down", "http://127.0.0.1:9/dicom-web", timeout=5)
    with pytest.raises(NetError, match=r"^down \(http://127\.0\.0\.1:9/dicom-web\): connection refused"):
        api.echo(down)


def test_tls_verification_is_on_by_default():
    n = WebNode("w", "https://pacs.example/dicom-web")
    assert n.verify_tls is True
    from cxrviewer.net.web import _client

    assert _client(n)._session.verify is True  # builds a session; opens no connection
    assert _client(replace(n, ca_bundle="/etc/site-ca.pem"))._session.verify == "/etc/site-ca.pem"
    assert _client(replace(n, verify_tls=False))._session.verify is False
    tok = _client(replace(n, token="tok-123"))._session
    assert tok.headers["Authorization"] == "Bearer tok-123" and tok.auth is None and tok.trust_env is False


def test_server_killed_mid_wado_retrieve(fresh_orthanc, tmp_path, tool):
    from cxrviewer.bench._orthanc import synthetic_study

    tool(fresh_orthanc.dicomweb, "Orthanc's DICOMweb plugin", "orthanc-dicomweb")
    study, files = synthetic_study(tmp_path / "src", 10, 256, 256)
    for f in files:
        fresh_orthanc.upload(f)
    node = WebNode("web", fresh_orthanc.dicomweb_url, timeout=10)
    store = LocalStore(tmp_path / "store")

    def progress(done, total):
        if done == 3:
            fresh_orthanc.kill()

    with pytest.raises(NetError) as e:
        api.retrieve(node, study, store, progress=progress)
    assert str(e.value).startswith(f"web ({node.url}): WADO-RS cut after 3 of 10 instances")
    assert len(store.files(study)) == 3 and store.partial_files() == []
    for f in store.files(study):
        assert pydicom.dcmread(f).pixel_array.shape == (256, 256)


def test_hung_server_times_out_with_the_reason():
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)  # the kernel accepts the connection; nobody ever answers
    try:
        node = WebNode("hung", f"http://127.0.0.1:{srv.getsockname()[1]}/dicom-web", timeout=1.5)
        with pytest.raises(NetError, match=r"^hung \(http://127\.0\.0\.1:\d+/dicom-web\): no response within 1\.5 s"):
            api.echo(node)
    finally:
        srv.close()
