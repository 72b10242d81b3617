"""The PACS code opens no socket unless asked: importing it, editing nodes and listing them
from the CLI all run with every socket call refused. (requests/urllib3 are imported only when a
DICOMweb operation starts: urllib3 probes IPv6 support with a socket at import.)"""

from __future__ import annotations

import os
import stat


def test_net_layer_without_network(no_network, tmp_path, capsys):
    import cxrviewer.net.api  # noqa: F401
    import cxrviewer.net.dimse  # noqa: F401
    import cxrviewer.net.web  # noqa: F401
    from cxrviewer.cli import main
    from cxrviewer.net.nodes import DimseNode, NodeBook, WebNode
    from cxrviewer.net.store import LocalStore

    book = NodeBook(path=tmp_path / "pacs_nodes.json")
    book.put(DimseNode("pacs", "pacs.example", 104, "PACS"))
    book.put(WebNode("web", "https://pacs.example/dicom-web", token="t0ken-secret"))
    book.save()
    assert stat.S_IMODE(os.stat(book.path).st_mode) == 0o600
    assert LocalStore(tmp_path / "store").present("1.2.3") == set()
    os.environ["CXRVIEWER_DATA_DIR"], old = str(tmp_path), os.environ.get("CXRVIEWER_DATA_DIR")
    try:
        assert main(["pacs", "nodes", "list", "--json"]) == 0
    finally:
        if old is not None:
            os.environ["CXRVIEWER_DATA_DIR"] = old
    out = capsys.readouterr().out
    assert "pacs.example" in out and "t0ken-secret" not in out
    assert no_network == []
