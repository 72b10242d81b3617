"""Saved nodes: 0600 file, credentials never in repr/describe/messages; no socket is opened."""

from __future__ import annotations

import os
import stat

import pytest

from cxrviewer.net.common import StudyQuery
from cxrviewer.net.nodes import DimseNode, NodeBook, NodeError, WebNode


def test_book_round_trip_is_private(tmp_path):
    p = tmp_path / "pacs_nodes.json"
    book = NodeBook(path=p)
    book.local_ae = "READER1"
    book.put(DimseNode("pacs", "10.0.0.5", 104, "MAINPACS", retrieve="move", store_port=11113))
    book.put(WebNode("web", "https://pacs.example/dicom-web", username="u", password="hunter2-secret"))
    book.put(WebNode("tok", "https://pacs.example/dicom-web", token="tok-abc-secret"))
    book.save()
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    again = NodeBook.load(p)
    assert again.local_ae == "READER1"
    assert again.get("pacs") == book.get("pacs") and again.get("web").password == "hunter2-secret"
    # the default calling AE follows our own AE title
    assert again.with_local_ae(again.get("pacs")).calling_ae == "READER1"
    book.save()  # a second save keeps 0600
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    for n in again.nodes.values():
        for text in (repr(n), str(n), n.describe()):
            assert "hunter2" not in text and "tok-abc" not in text
    with pytest.raises(NodeError, match="no PACS node named 'nope'"):
        again.get("nope")


def test_bad_nodes_are_refused_with_the_reason():
    with pytest.raises(NodeError, match="called AE title"):
        DimseNode("x", "h", 104, "A" * 17)
    with pytest.raises(NodeError, match="port 0"):
        DimseNode("x", "h", 0, "PACS")
    with pytest.raises(NodeError, match="not in the URL"):
        WebNode("x", "https://user:pw@pacs.example/dicom-web")
    with pytest.raises(NodeError, match="not an http"):
        WebNode("x", "ftp://pacs.example")
    with pytest.raises(ValueError, match="study date"):
        StudyQuery(study_date="2024")
    assert StudyQuery(study_date="20240101-").study_date == "20240101-"


def test_broken_node_file_names_the_file(tmp_path):
    p = tmp_path / "pacs_nodes.json"
    p.write_text("{not json")
    with pytest.raises(NodeError) as e:
        NodeBook.load(p)
    assert str(p) in str(e.value)
