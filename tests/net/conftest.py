"""Fixtures for the PACS/DICOMweb tests: a real Orthanc on free loopback ports.

Without Orthanc (Debian ``orthanc``): a failure in CI, a skip with the reason elsewhere
(``need_tool`` in tests/conftest.py). The session
Orthanc requires HTTP basic auth, so every DICOMweb test also exercises credentials.
"""

from __future__ import annotations

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
