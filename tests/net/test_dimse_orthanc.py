"""DIMSE against a real Orthanc: echo, C-FIND, C-GET, C-MOVE, C-STORE and the failure cases."""

from __future__ import annotations

import socket
import threading

import numpy as np
import pydicom
import pytest

from cxrviewer.net import api
from cxrviewer.net.common import Cancelled, CancelToken, NetError, StudyQuery
from cxrviewer.net.nodes import DimseNode
from cxrviewer.net.store import LocalStore

RG1_STUDY = "1.3.6.1.4.1.5962.1.2.9.20040826185059.5457"


@pytest.fixture()
def rg1_on_pacs(orthanc, rg1_unci, rg1_j2kr):
    for f in (rg1_unci, rg1_j2kr):
        orthanc.upload(f)
    return [rg1_unci, rg1_j2kr]


def test_echo_and_wrong_ae_and_node_down(dimse_node):
    out = api.echo(dimse_node)
    assert out["ok"] and out["ms"] > 0
    wrong = DimseNode("pacs", "127.0.0.1", dimse_node.port, "NOT_ORTHANC", timeout=10)
    with pytest.raises(NetError) as e:
        api.echo(wrong)
    msg = str(e.value)
    assert msg.startswith("pacs (NOT_ORTHANC@127.0.0.1:") and "rejected" in msg and "Called AE title" in msg
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    down = DimseNode("down", "127.0.0.1", dead_port, "ORTHANC", timeout=5)
    with pytest.raises(NetError, match=r"^down \(ORTHANC@127\.0\.0\.1:\d+\): connection refused"):
        api.echo(down)


def test_wrong_ae_is_reported_as_rejected_when_pynetdicom_loses_the_race(dimse_node, monkeypatch):
    """pynetdicom 3.0 checks that its socket is connected only after sending the association
    request; when the node's A-ASSOCIATE-RJ and close get in first (1 call in 7 under pytest's
    debug logging here) it reports a bare abort. A pause after sending makes that order certain:
    the node's reason must still come through."""
    import time

    from pynetdicom.acse import ACSE

    send = ACSE.send_request

    def send_then_wait(self):
        send(self)
        time.sleep(0.3)  # the node answers and closes the connection meanwhile

    monkeypatch.setattr(ACSE, "send_request", send_then_wait)
    wrong = DimseNode("pacs", "127.0.0.1", dimse_node.port, "NOT_ORTHANC", timeout=10)
    for _ in range(3):
        with pytest.raises(NetError) as e:
            api.echo(wrong)
        msg = str(e.value)
        assert "rejected" in msg and "Called AE title" in msg, msg


def test_timeout_when_the_node_never_answers():
    """A port that accepts the TCP connection but never speaks DICOM (a hung PACS)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    try:
        node = DimseNode("hung", "127.0.0.1", srv.getsockname()[1], "ORTHANC", timeout=1.5)
        with pytest.raises(NetError, match="hung .*(timeout|timed out|no answer)"):
            api.echo(node)
    finally:
        srv.close()


def test_store_find_get_round_trip_then_only_missing(dimse_node, rg1_unci, rg1_j2kr, tmp_path):
    sent = api.send(dimse_node, [rg1_unci, rg1_j2kr])
    assert sent.sent == 2 and not sent.failed
    rows = api.find(dimse_node, StudyQuery(patient_name="Compressed*", modality="CR", study_date="20040101-20041231"))
    assert [r["study_uid"] for r in rows] == [RG1_STUDY]
    assert rows[0]["patient_id"] == "9RG1" and rows[0]["n_instances"] == 2 and rows[0]["modalities"] == ["CR"]
    assert api.find(dimse_node, StudyQuery(patient_name="Compressed*", study_date="20050101-")) == []
    assert api.find(dimse_node, StudyQuery(accession="exam Number"))[0]["study_uid"] == RG1_STUDY
    assert api.find(dimse_node, StudyQuery(patient_id="9RG?"))[0]["study_uid"] == RG1_STUDY

    store = LocalStore(tmp_path / "store")
    seen = []
    res = api.retrieve(dimse_node, RG1_STUDY, store, progress=lambda d, t: seen.append((d, t)))
    assert (res.total, res.fetched, res.already_present, res.failed) == (2, 2, 0, 0)
    assert seen[0] == (0, 2) and seen[-1] == (2, 2)
    files = store.files(RG1_STUDY)
    assert len(files) == 2 and store.partial_files() == []
    by_uid = {pydicom.dcmread(f).SOPInstanceUID: f for f in files}
    for src in (rg1_unci, rg1_j2kr):
        orig = pydicom.dcmread(src)
        got = pydicom.dcmread(by_uid[orig.SOPInstanceUID])
        # each instance arrives in the syntax it was stored in (J2K stays J2K), pixels equal
        assert got.file_meta.TransferSyntaxUID == orig.file_meta.TransferSyntaxUID
        assert np.array_equal(got.pixel_array, orig.pixel_array)

    again = api.retrieve(dimse_node, RG1_STUDY, store)
    assert (again.fetched, again.already_present) == (0, 2)
    files[0].unlink()
    third = api.retrieve(dimse_node, RG1_STUDY, store)
    assert (third.fetched, third.already_present, third.failed) == (1, 1, 0)
    assert len(store.files(RG1_STUDY)) == 2


def test_siim_pair_round_trip(dimse_node, shared_data, tmp_path):
    pair = sorted((shared_data / "dicom").glob("siim_*.dcm"))
    if len(pair) != 2:
        pytest.skip(f"the SIIM pair is not in {shared_data / 'dicom'}")
    res = api.send(dimse_node, [shared_data / "dicom"])
    assert res.sent == 2 and not res.failed
    study = str(pydicom.dcmread(pair[0], stop_before_pixels=True).StudyInstanceUID)
    rows = api.find(dimse_node, StudyQuery(study_uid=study))
    assert len(rows) == 1
    got = api.retrieve(dimse_node, study, LocalStore(tmp_path))
    # Both files carry the same SOP Instance UID (one is the other re-flagged MONOCHROME1), so the
    # PACS keeps one instance of the two.
    assert got.fetched == got.total == rows[0]["n_instances"] >= 1
    f = LocalStore(tmp_path).files(study)[0]
    assert pydicom.dcmread(f).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"


def test_send_reports_non_dicom_files(dimse_node, tmp_path, rg1_unci):
    junk = tmp_path / "notes.txt"
    junk.write_text("not dicom")
    res = api.send(dimse_node, [rg1_unci, junk])
    assert res.sent == 1 and res.failed[0][0] == str(junk) and "not a DICOM file" in res.failed[0][1]


def test_get_unknown_study_names_the_node(dimse_node, tmp_path):
    with pytest.raises(NetError, match=r"^test-pacs \(ORTHANC@.*study 1\.2\.3\.4 not found"):
        api.retrieve(dimse_node, "1.2.3.4", LocalStore(tmp_path))


def test_cancel_keeps_only_complete_instances(fresh_orthanc, tmp_path):
    from cxrviewer.bench._orthanc import synthetic_study

    study, files = synthetic_study(tmp_path / "src", 12, 256, 256)
    for f in files:
        fresh_orthanc.upload(f)
    node = DimseNode("pacs", "127.0.0.1", fresh_orthanc.dicom_port, "ORTHANC", timeout=20)
    store = LocalStore(tmp_path / "store")
    tok = CancelToken()

    def progress(done, total):
        if done >= 3:
            tok.cancel()

    with pytest.raises(Cancelled, match="cancelled after"):
        api.retrieve(node, study, store, progress=progress, cancel=tok)
    have = store.files(study)
    assert 3 <= len(have) < 12 and store.partial_files() == []
    res = api.retrieve(node, study, store)
    assert res.fetched == 12 - len(have) and res.already_present == len(have) and len(store.files(study)) == 12


def test_orthanc_killed_mid_retrieve_leaves_no_partial_file(fresh_orthanc, tmp_path):
    from cxrviewer.bench._orthanc import synthetic_study

    study, files = synthetic_study(tmp_path / "src", 20, 512, 512)
    for f in files:
        fresh_orthanc.upload(f)
    node = DimseNode("pacs", "127.0.0.1", fresh_orthanc.dicom_port, "ORTHANC", timeout=10)
    store = LocalStore(tmp_path / "store")
    killed = threading.Event()

    def progress(done, total):
        if done == 4 and not killed.is_set():
            killed.set()
            fresh_orthanc.kill()

    with pytest.raises(NetError) as e:
        api.retrieve(node, study, store, progress=progress)
    assert killed.is_set()
    assert str(e.value).startswith("pacs (ORTHANC@127.0.0.1:") and "cut after" in str(e.value)
    have = store.files(study)
    assert 4 <= len(have) < 20
    assert store.partial_files() == []
    for f in have:  # every file that is there is complete
        ds = pydicom.dcmread(f)
        assert ds.pixel_array.shape == (512, 512)


def test_c_move_to_our_own_storage_scp(tmp_path, rg1_unci, tool):
    from cxrviewer.bench._orthanc import free_port, orthanc_binary, start_orthanc

    tool(orthanc_binary(), "Orthanc", "orthanc")
    port = free_port()
    with start_orthanc(modalities={"viewer": ("CXRMOVE", "127.0.0.1", port)}, dicomweb=False) as srv:
        srv.upload(rg1_unci)
        node = DimseNode("movepacs", "127.0.0.1", srv.dicom_port, "ORTHANC", calling_ae="CXRMOVE", retrieve="move",
                         store_port=port, store_bind="127.0.0.1", timeout=20)
        store = LocalStore(tmp_path)
        res = api.retrieve(node, RG1_STUDY, store)
        assert (res.fetched, res.failed) == (1, 0)
        assert pydicom.dcmread(store.files(RG1_STUDY)[0]).SOPInstanceUID == pydicom.dcmread(rg1_unci).SOPInstanceUID
        # a destination the PACS does not know: refused, with the reason
        stranger = DimseNode("movepacs", "127.0.0.1", srv.dicom_port, "ORTHANC", calling_ae="STRANGER",
                             retrieve="move", store_port=free_port(), store_bind="127.0.0.1", timeout=20)
        with pytest.raises(NetError, match="movepacs .*C-MOVE"):
            api.retrieve(stranger, RG1_STUDY, LocalStore(tmp_path / "other"))


def test_a_pacs_without_c_get_says_to_use_c_move(tmp_path):
    """A real pynetdicom SCP that offers C-FIND but not C-GET (as some PACS do)."""
    from pynetdicom import AE

    from cxrviewer.net.dimse import FIND_STUDY_ROOT, QR_SYNTAXES

    scp = AE(ae_title="NOGET")
    scp.add_supported_context(FIND_STUDY_ROOT, list(QR_SYNTAXES))
    server = scp.start_server(("127.0.0.1", 0), block=False)
    try:
        port = server.server_address[1]
        node = DimseNode("noget", "127.0.0.1", port, "NOGET", timeout=10)
        with pytest.raises(NetError, match=r"^noget \(NOGET@127\.0\.0\.1:\d+\): the node does not offer C-GET.*C-MOVE"):
            api.retrieve(node, "1.2.3.4", LocalStore(tmp_path))
    finally:
        server.shutdown()
