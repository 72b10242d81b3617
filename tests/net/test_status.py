"""DIMSE statuses worded with their meaning; only 0xA801 ever speaks of the move destination."""

from __future__ import annotations

import pytest

from cxrviewer.net.status import find_status, retrieve_status, store_status


def test_retrieve_statuses_name_what_happened():
    assert retrieve_status(0xA702).startswith("0xA702: ") and "transfer syntax we accept" in retrieve_status(0xA702)
    assert "does not know the move destination" in retrieve_status(0xA801)
    assert "unable to process" in retrieve_status(0xC413) and retrieve_status(0xC413).startswith("0xC413")
    assert "out of resources" in retrieve_status(0xA701)
    assert "identifier does not match" in retrieve_status(0xA900)
    assert "unexpected" in retrieve_status(0x1234)
    assert "disk full" in store_status(0xA700) and "unable to process" in find_status(0xC001)


@pytest.mark.parametrize("code", [0xA700, 0xA701, 0xA702, 0xA7FF, 0xA900, 0xC000, 0xC413, 0xCFFF, 0xB000, 0xFE00])
def test_no_other_status_claims_an_unknown_destination(code):
    assert "destination" not in retrieve_status(code).lower()
