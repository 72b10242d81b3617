"""DIMSE against three archives: dcmtk's dcmqrscp (forking), pynetdicom's qrscp and Orthanc.

Each holds a JPEG 2000 CR study, an uncompressed CT, a JPEG 2000 US and a mixed study (one
JPEG 2000 image beside four uncompressed objects), loaded as stored. dcmqrscp and qrscp never
transcode compressed data: what comes back must arrive in its stored syntax, pixel data
byte for byte.
"""

from __future__ import annotations

import threading

import numpy as np
import pydicom
import pytest

from cxrviewer.net import api
from cxrviewer.net.common import NetError, StudyQuery
from cxrviewer.net.nodes import DimseNode
from cxrviewer.net.store import LocalStore

COMPRESSED_PREFIX = "1.2.840.10008.1.2.4."
MOVE_AE = "CXRMOVE"  # the move destination every test archive knows (tests/net/conftest.py)


def _node(peer, retrieve: str = "get", timeout: float = 20) -> DimseNode:
    return DimseNode(peer.kind, "127.0.0.1", peer.port, peer.aet, calling_ae=MOVE_AE, retrieve=retrieve,
                     store_port=peer.move_port, store_bind="127.0.0.1", timeout=timeout)


def _assert_same_instances(store: LocalStore, study: str, sources) -> None:
    got = {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID): f for f in store.files(study)}
    assert len(got) == len(sources) and store.partial_files() == []
    for src in sources:
        orig = pydicom.dcmread(src)
        back = pydicom.dcmread(got[str(orig.SOPInstanceUID)])
        ts = str(orig.file_meta.TransferSyntaxUID)
        if ts.startswith(COMPRESSED_PREFIX):
            # as stored: same syntax, the encapsulated stream byte for byte (nothing decoded on the way)
            assert str(back.file_meta.TransferSyntaxUID) == ts
            assert back.PixelData == orig.PixelData
        assert np.array_equal(back.pixel_array, orig.pixel_array)


def test_echo_and_find_deduplicated(peer, peer_studies):
    assert api.echo(_node(peer))["ok"]
    rows = api.find(_node(peer), StudyQuery(patient_id="MIX1"))
    # qrscp answers one row per instance (5 here): merged into one study, and said so
    assert [r["study_uid"] for r in rows] == [peer_studies.uids["mixed"]]
    if peer.kind == "qrscp":
        assert any("merged by Study Instance UID" in n for n in rows.notes)
    everything = api.find(_node(peer), StudyQuery())
    assert sorted(r["study_uid"] for r in everything) == sorted(set(peer_studies.uids.values()))


def test_find_applies_a_modality_filter_the_archive_ignored(peer, peer_studies):
    rows = api.find(_node(peer), StudyQuery(modality="US"))
    assert sorted(r["study_uid"] for r in rows) == sorted({peer_studies.uids["j2k_us"], peer_studies.uids["mixed"]})
    assert all("US" in r["modalities"] for r in rows)
    if peer.kind == "qrscp":  # it ignores ModalitiesInStudy and does not return it: checked at the series level
        assert any("ignored the modality filter 'US'" in n and "series level" in n for n in rows.notes)
    assert api.find(_node(peer), StudyQuery(modality="MG")) == []


@pytest.mark.parametrize("mode", ["get", "move"])
@pytest.mark.parametrize("study", ["j2k_cr", "uncompressed_ct", "j2k_us", "mixed"])
def test_retrieve_every_study_as_stored(peer, peer_studies, tmp_path, mode, study):
    store = LocalStore(tmp_path)
    uid = peer_studies.uids[study]
    res = api.retrieve(_node(peer, mode), uid, store)
    n = len(peer_studies.files[study])
    assert (res.fetched, res.failed, res.failures) == (n, 0, [])
    _assert_same_instances(store, uid, peer_studies.files[study])
    again = api.retrieve(_node(peer, mode), uid, store)
    assert (again.fetched, again.already_present, again.failed) == (0, n, 0)


def test_send_then_find_and_get(peer, tmp_path, make_instance):
    from pydicom.uid import generate_uid

    study = generate_uid()
    src = make_instance("MR_small.dcm", tmp_path / "mr.dcm", study, "SENT1")
    res = api.send(_node(peer), [src])
    assert (res.sent, res.failed) == (1, [])
    assert [r["study_uid"] for r in api.find(_node(peer), StudyQuery(patient_id="SENT1"))] == [study]
    got = api.retrieve(_node(peer), study, LocalStore(tmp_path / "store"))
    assert (got.fetched, got.failed) == (1, 0)


def test_move_to_an_unknown_destination_names_the_destination(peer, tmp_path, peer_studies):
    node = DimseNode(peer.kind, "127.0.0.1", peer.port, peer.aet, calling_ae="STRANGER", retrieve="move",
                     store_port=peer.move_port, store_bind="127.0.0.1", timeout=20)
    with pytest.raises(NetError) as e:
        api.retrieve(node, peer_studies.uids["uncompressed_ct"], LocalStore(tmp_path))
    msg = str(e.value)
    assert msg.startswith(f"{peer.kind} ({peer.aet}@127.0.0.1:") and "'STRANGER'" in msg
    if peer.kind == "orthanc":  # Orthanc answers 0xC000 (not 0xA801): worded as such, with what we saw
        assert "0xC000" in msg and "0xA801" not in msg and "never connected to our storage SCP" in msg
    else:
        assert "0xA801" in msg and "move destination" in msg


@pytest.mark.parametrize(("kind", "mode"), [("dcmqrscp", "get"), ("dcmqrscp", "move"), ("qrscp", "get"),
                                           ("qrscp", "move"), ("orthanc", "move")])  # Orthanc's C-GET: test_dimse_orthanc
def test_kill_9_mid_transfer_then_resume(fresh_peer_factory, tmp_path, kind, mode):
    """The archive is ``kill -9``-ed after 3 instances: the message says it closed the connection
    (not a timeout), only complete files are left, and the repeated retrieve (UID list, or one by
    one where the archive cannot take a list) fetches exactly the rest."""
    from cxrviewer.bench._orthanc import synthetic_study

    peer = fresh_peer_factory(kind)
    study, files = synthetic_study(tmp_path / "src", 10, 256, 256, patient_id="KILL1")
    peer.load(files)
    store = LocalStore(tmp_path / "store")
    killed = threading.Event()

    def progress(done, total):
        if done >= 3 and not killed.is_set():
            killed.set()
            peer.kill()

    node = _node(peer, mode, timeout=30)
    with pytest.raises(NetError) as e:
        api.retrieve(node, study, store, progress=progress)
    assert killed.is_set()
    msg = str(e.value)
    assert "closed the connection" in msg and "timeout" not in msg, msg
    have = store.files(study)
    assert 3 <= len(have) < 10 and store.partial_files() == []
    peer.restart()
    res = api.retrieve(node, study, store)
    assert (res.fetched, res.already_present, res.failed) == (10 - len(have), len(have), 0)
    _assert_same_instances(store, study, files)
    # qrscp cannot take the list of missing UIDs (0xC413 on C-GET, 0xA801 on C-MOVE): asked one by one
    assert any("refused a list of instance UIDs" in w for w in res.warnings) == (kind == "qrscp"), res.warnings


class _FullDisk(LocalStore):
    """A store whose disk is full for one instance (ENOSPC), as a real disk would say it."""

    def __init__(self, root, full_for: str) -> None:
        super().__init__(root)
        self.full_for = full_for

    def write(self, study_uid: str, sop_uid: str, data: bytes):
        if sop_uid == self.full_for:
            raise OSError(28, "No space left on device")
        return super().write(study_uid, sop_uid, data)


def test_an_instance_that_fails_has_its_reason(peer, peer_studies, tmp_path):
    files = peer_studies.files["mixed"]
    victim = str(pydicom.dcmread(files[2], stop_before_pixels=True).SOPInstanceUID)
    res = api.retrieve(_node(peer), peer_studies.uids["mixed"], _FullDisk(tmp_path, victim))
    assert (res.total, res.fetched, res.failed) == (5, 4, 1)
    assert res.failures == [{"sop_instance_uid": victim, "reason": res.failures[0]["reason"]}]
    assert "No space left on device" in res.failures[0]["reason"]
    assert res.to_dict()["failures"] == res.failures


def test_an_archive_that_stops_answering_is_a_timeout_not_a_closed_connection():
    """A real SCP whose C-FIND handler never answers (a hung archive): the words are *timeout*."""
    from pynetdicom import AE, evt

    from cxrviewer.net.dimse import FIND_STUDY_ROOT, QR_SYNTAXES

    release = threading.Event()

    def hang(event):
        release.wait(60)  # released at teardown
        yield 0x0000, None

    scp = AE(ae_title="HUNG")
    scp.add_supported_context(FIND_STUDY_ROOT, list(QR_SYNTAXES))
    server = scp.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_FIND, hang)])
    try:
        node = DimseNode("hung", "127.0.0.1", server.server_address[1], "HUNG", timeout=1.5)
        with pytest.raises(NetError) as e:
            api.find(node, StudyQuery())
        msg = str(e.value)
        assert msg.startswith("hung (HUNG@127.0.0.1:") and "no answer within 1.5 s (timeout" in msg, msg
        assert "closed" not in msg
    finally:
        release.set()
        server.shutdown()


@pytest.mark.parametrize("kind", ["dcmqrscp", "qrscp"])
def test_move_destination_at_a_port_nobody_listens_on(fresh_peer_factory, tmp_path, kind, make_instance):
    """The archive knows our AE title but at another port: the message points at the destination entry,
    never at transfer syntaxes."""
    from pydicom.uid import generate_uid

    from cxrviewer.bench._orthanc import free_port

    peer = fresh_peer_factory(kind)
    study = generate_uid()
    peer.load([make_instance("CT_small.dcm", tmp_path / "ct.dcm", study, "PORT1")])
    node = DimseNode(peer.kind, "127.0.0.1", peer.port, peer.aet, calling_ae=MOVE_AE, retrieve="move",
                     store_port=free_port(), store_bind="127.0.0.1", timeout=20)
    with pytest.raises(NetError) as e:
        api.retrieve(node, study, LocalStore(tmp_path / "store"))
    msg = str(e.value)
    assert f"{MOVE_AE!r}" in msg and "transfer syntax" not in msg, msg
    assert "never connected to our storage SCP" in msg or "could not reach it" in msg, msg
