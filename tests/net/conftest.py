"""Fixtures for the PACS/DICOMweb tests: a real Orthanc on free loopback ports.

Without Orthanc (Debian ``orthanc``): a failure in CI, a skip with the reason elsewhere
(``need_tool`` in tests/conftest.py). The session
Orthanc requires HTTP basic auth, so every DICOMweb test also exercises credentials.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from cxrviewer.bench._orthanc import dicomweb_plugin, orthanc_binary, start_orthanc

WEB_USER = "reader"
WEB_PASSWORD = "pw-Zq8-never-logged"


def _need_orthanc(tool) -> None:
    tool(orthanc_binary(), "Orthanc", "orthanc")


@pytest.fixture(scope="session")
def orthanc(tool):
    """One Orthanc for the session (basic auth on HTTP; DIMSE open to any calling AE)."""
    _need_orthanc(tool)
    srv = start_orthanc(user=WEB_USER, password=WEB_PASSWORD)
    yield srv
    srv.stop()


@pytest.fixture()
def fresh_orthanc(tool):
    """An Orthanc of the test's own (for tests that kill it or need it empty)."""
    _need_orthanc(tool)
    srv = start_orthanc()
    yield srv
    srv.stop()


@pytest.fixture()
def dimse_node(orthanc):
    from cxrviewer.net.nodes import DimseNode

    return DimseNode("test-pacs", "127.0.0.1", orthanc.dicom_port, orthanc.aet, calling_ae="CXRTEST", timeout=20)


@pytest.fixture()
def web_node(orthanc, tool):
    from cxrviewer.net.nodes import WebNode

    tool(orthanc.dicomweb, "Orthanc's DICOMweb plugin", "orthanc-dicomweb")
    return WebNode("test-web", orthanc.dicomweb_url, username=WEB_USER, password=WEB_PASSWORD, timeout=20)


@pytest.fixture(scope="session")
def plugin_present() -> bool:
    return dicomweb_plugin() is not None


# ------------------------------------------------- other archives: dcmqrscp, qrscp
#: the move destination every test archive knows (our storage SCP binds its port)
MOVE_AE = "CXRMOVE"


def _testdata(name: str) -> Path:
    from pydicom.data import get_testdata_file

    p = get_testdata_file(name, download=False)
    if not p:
        pytest.skip(f"pydicom's/pydicom-data's {name} is not installed")
    return Path(p)


def _restudied(src: Path, dst: Path, study_uid: str, patient_id: str) -> Path:
    """``src`` as a new instance (new series and SOP UIDs) of ``study_uid``; pixel data untouched."""
    import pydicom
    from pydicom.uid import generate_uid

    ds = pydicom.dcmread(src)
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = study_uid, generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientID, ds.PatientName = patient_id, "Mixed^Study"
    ds.StudyDate = "20050101"
    ds.save_as(dst, enforce_file_format=True)
    return dst


def _small_j2k_cr(dst: Path) -> Path:
    """RG1's CR at a quarter size, JPEG 2000 lossless (pylibjpeg-openjpeg): a J2K CR study of ~0.2 MB
    (RG1_J2KR itself is 4.3 MB, which every archive × get/move would move twice)."""
    import pydicom
    from pydicom.uid import JPEG2000Lossless, generate_uid

    ds = pydicom.dcmread(_testdata("RG1_UNCR.dcm"))
    px = ds.pixel_array[::4, ::4].copy()
    ds.Rows, ds.Columns = px.shape
    ds.PixelData = px.tobytes()
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.compress(JPEG2000Lossless)
    ds.save_as(dst, enforce_file_format=True)
    return dst


@pytest.fixture(scope="session")
def make_instance():
    """``make_instance(testdata_name, dst, study_uid, patient_id)``: a test file as a new instance."""
    return lambda name, dst, study_uid, patient_id: _restudied(_testdata(name), dst, study_uid, patient_id)


@dataclass
class PeerStudies:
    """The studies every test archive holds: ``{name: [files]}``, study UIDs by name."""

    files: dict[str, list[Path]]
    uids: dict[str, str]


@pytest.fixture(scope="session")
def peer_studies(tmp_path_factory) -> PeerStudies:
    """A JPEG 2000 CR study (RG1 at a quarter size), an uncompressed CT, a JPEG 2000 US (US1_J2KR as
    distributed), and a mixed study (one JPEG 2000 US image and four uncompressed objects of four
    classes, enhanced MR included)."""
    import pydicom
    from pydicom.uid import generate_uid

    d = tmp_path_factory.mktemp("peer-studies")
    mixed = generate_uid()
    files = {
        "j2k_cr": [_small_j2k_cr(d / "cr_j2k.dcm")],
        "uncompressed_ct": [_testdata("CT_small.dcm")],
        "j2k_us": [_testdata("US1_J2KR.dcm")],
        "mixed": [_restudied(_testdata(n), d / f"mixed{i}.dcm", mixed, "MIX1")
                  for i, n in enumerate(("US1_J2KR.dcm", "CT_small.dcm", "MR_small.dcm", "US1_UNCR.dcm",
                                         "emri_small.dcm"))],
    }
    uids = {k: str(pydicom.dcmread(v[0], stop_before_pixels=True).StudyInstanceUID) for k, v in files.items()}
    return PeerStudies(files, uids)


@dataclass
class OrthancPeer:
    """Orthanc behind the same face as the dcmqrscp/qrscp peers (loaded through its REST API)."""

    srv: object
    move_port: int
    kind: str = "orthanc"

    @property
    def port(self) -> int:
        return self.srv.dicom_port

    @property
    def aet(self) -> str:
        return self.srv.aet

    def load(self, files) -> None:
        for f in files:
            self.srv.upload(f)

    def kill(self) -> None:
        self.srv.kill()

    def restart(self) -> None:
        """Orthanc again on the same configuration, ports and storage (after :meth:`kill`)."""
        import subprocess
        import time

        from cxrviewer.bench._orthanc import orthanc_binary
        from cxrviewer.bench._peers import wait_port

        with open(self.srv.log_path, "ab") as log:
            self.srv.proc = subprocess.Popen([orthanc_binary(), "--no-jobs", str(self.srv.workdir / "orthanc.json")],
                                             stdout=log, stderr=subprocess.STDOUT, cwd=self.srv.workdir,
                                             start_new_session=True)
        assert wait_port(self.port, time.monotonic() + 60, self.srv.proc), "Orthanc did not restart"

    def stop(self) -> None:
        self.srv.stop()


def _start_peer(kind: str, tool, **kw):
    from cxrviewer.bench._peers import dcmtk_tool, qrscp_available, start_dcmqrscp, start_qrscp

    if kind == "orthanc":
        from cxrviewer.bench._orthanc import free_port, start_orthanc

        _need_orthanc(tool)
        port = free_port()
        return OrthancPeer(start_orthanc(modalities={"viewer": (MOVE_AE, "127.0.0.1", port)}, dicomweb=False), port)

    tool(dcmtk_tool("storescu") and dcmtk_tool("dcmqrscp"), "dcmtk's storescu and dcmqrscp", "dcmtk")
    if kind == "qrscp":
        why = qrscp_available()
        if why:  # a dev dependency: the dev install always has it
            pytest.fail(why, pytrace=False)
        return start_qrscp(move_aet=MOVE_AE, **kw)
    return start_dcmqrscp(move_aet=MOVE_AE, **kw)


@pytest.fixture(scope="session", params=["dcmqrscp", "qrscp", "orthanc"])
def peer(request, peer_studies, tool):
    """dcmtk's dcmqrscp, pynetdicom's qrscp and Orthanc in turn, each loaded with
    :func:`peer_studies` as stored (JPEG 2000 stays JPEG 2000): dcmtk's storescu for the first
    two, Orthanc's REST API for Orthanc."""
    srv = _start_peer(request.param, tool)
    try:
        srv.load([f for fs in peer_studies.files.values() for f in fs])
        yield srv
    finally:
        srv.stop()


@pytest.fixture()
def fresh_peer_factory(tool):
    """Start archives of the test's own (for tests that kill them); all are stopped at teardown."""
    started = []

    def start(kind: str):
        srv = _start_peer(kind, tool)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()
